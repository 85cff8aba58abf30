"""The Python bootstrap against a fake Runtime API, on every available Python 3.9 to 3.13.

Expected strings (error types, messages, log formats) are awslambdaric's, the runtime
interface client behind Lambda's managed Python runtimes.
"""

from __future__ import annotations

import json
import re
import struct
import time
from pathlib import Path
from typing import Any

from hearth.observe.frames import FrameDecoder

from .conftest import Event

NBSP = "\u00a0"

ECHO = {"fn.py": "def handler(event, context):\n    return event\n"}


def test_echo_roundtrip_and_keep_alive(runtime: Any) -> None:
    events = [Event({"n": i, "s": "x" * i}) for i in range(3)]
    run = runtime(ECHO, "fn.handler", events)
    run.api.wait_results(3)
    for event in events:
        posted = run.api.responses[event.request_id]
        assert posted.json() == event.payload
        assert posted.headers["content-type"] == "application/json"
    assert run.api.errors == {}
    # One TCP connection served init, three invocations and the fourth (parked) poll.
    run.api.wait_until(lambda: run.api.next_calls == 4)
    assert run.api.connections == 1


def test_none_result_is_null_and_bytes_pass_through(runtime: Any) -> None:
    code = {
        "fn.py": (
            "def none(event, context):\n    return None\n"
            "def raw(event, context):\n    return b'\\x00raw'\n"
        )
    }
    run = runtime(code, "fn.none", [Event({})])
    run.api.wait_results(1)
    assert next(iter(run.api.responses.values())).body == b"null"


def test_bytes_result_is_posted_raw(runtime: Any) -> None:
    code = {"fn.py": "def raw(event, context):\n    return b'\\x00raw'\n"}
    run = runtime(code, "fn.raw", [Event({})])
    run.api.wait_results(1)
    posted = next(iter(run.api.responses.values()))
    assert posted.body == b"\x00raw"
    assert posted.headers["content-type"] == "application/unknown"


def test_nested_package_handler_with_slashes_and_dots(runtime: Any) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/sub/mod.py": "def fn(event, context):\n    return {'where': __name__}\n",
    }
    run = runtime(files, "pkg/sub/mod.fn", [Event({})])
    run.api.wait_results(1)
    assert next(iter(run.api.responses.values())).json() == {"where": "pkg.sub.mod"}


def test_dotted_module_handler(runtime: Any) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/mod.py": "def fn(event, context):\n    return __name__\n",
    }
    run = runtime(files, "pkg.mod.fn", [Event({})])
    run.api.wait_results(1)
    assert next(iter(run.api.responses.values())).json() == "pkg.mod"


CONTEXT_FN = """
import os, sys

def handler(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "client_context": None if context.client_context is None else {
            "custom": context.client_context.custom,
            "env": context.client_context.env,
            "installation_id": context.client_context.client.installation_id,
            "app_title": context.client_context.client.app_title,
        },
        "identity": [context.identity.cognito_identity_id,
                     context.identity.cognito_identity_pool_id],
        "w3c": context.w3c(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "user_var": os.environ.get("USER_VAR"),
        "sys_path_head": sys.path[:3],
        "cwd": os.getcwd(),
    }
"""


def test_context_fields_and_remaining_time(runtime: Any) -> None:
    events = [Event({}, deadline_in_ms=10_000, headers={"Lambda-Runtime-Trace-Id": "Root=1-5"})]
    run = runtime({"fn.py": CONTEXT_FN}, "fn.handler", events)
    run.api.wait_results(1)
    got = run.api.responses[events[0].request_id].json()
    assert got["function_name"] == "fn"
    assert got["function_version"] == "$LATEST"
    assert got["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert got["memory_limit_in_mb"] == "256"  # a string, as awslambdaric gives it
    assert got["aws_request_id"] == events[0].request_id
    assert got["log_group_name"] == "/aws/lambda/fn"
    assert got["log_stream_name"] == "2024/01/01/[$LATEST]abcdef"
    assert 5_000 < got["remaining"] <= 10_000
    assert got["client_context"] is None
    assert got["identity"] == [None, None]  # an identity object even without the header
    assert got["trace"] == "Root=1-5"
    assert got["user_var"] == "from-user"
    task = str(run.task_root)
    assert got["sys_path_head"][0] == task
    assert got["sys_path_head"][1:] == [
        f"/opt/python/lib/{_py(run)}/site-packages",
        "/opt/python",
    ]
    assert got["cwd"] == task


def _py(run: Any) -> str:
    return str(run.proc.args[0]).rsplit("/", 1)[1]


def test_client_context_identity_and_trace_reset(runtime: Any) -> None:
    client_context = {
        "client": {"installation_id": "inst-1", "app_title": "Ünï app"},
        "custom": {"k": "v"},
        "env": {"platform": "Android"},
        "w3c": {"traceparent": "00-abc-def-01", "junk": 1},
    }
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    events = [
        Event(
            {},
            headers={
                # HTTP headers are bytes; the JSON header carries UTF-8.
                "Lambda-Runtime-Client-Context": json.dumps(client_context, ensure_ascii=False)
                .encode()
                .decode("latin-1"),
                "Lambda-Runtime-Cognito-Identity": json.dumps(identity),
                "Lambda-Runtime-Trace-Id": "Root=1-abc",
            },
        ),
        Event({}),
    ]
    run = runtime({"fn.py": CONTEXT_FN}, "fn.handler", events)
    run.api.wait_results(2)
    first = run.api.responses[events[0].request_id].json()
    assert first["client_context"] == {
        "custom": {"k": "v"},
        "env": {"platform": "Android"},
        "installation_id": "inst-1",
        "app_title": "Ünï app",
    }
    assert first["identity"] == ["id-1", "pool-1"]
    assert first["w3c"] == {"traceparent": "00-abc-def-01"}
    assert first["trace"] == "Root=1-abc"
    second = run.api.responses[events[1].request_id].json()
    assert second["trace"] is None  # removed when the next invocation has no trace header
    assert second["client_context"] is None


def test_init_runs_once_over_three_invokes(runtime: Any) -> None:
    code = (
        "print('INIT-RAN')\n"
        "state = {'inits': 0, 'calls': 0}\n"
        "state['inits'] += 1\n"
        "def handler(event, context):\n"
        "    state['calls'] += 1\n"
        "    return [state['inits'], state['calls']]\n"
    )
    events = [Event({}) for _ in range(3)]
    run = runtime({"fn.py": code}, "fn.handler", events)
    run.api.wait_results(3)
    assert [run.api.responses[e.request_id].json() for e in events] == [[1, 1], [1, 2], [1, 3]]
    assert run.stdout.count("INIT-RAN") == 1


RAISING = """
def helper(x):
    raise ValueError("bad thing: %s" % x)

def handler(event, context):
    print("before the error")
    helper(event["x"])
"""


def test_exception_becomes_error_document(runtime: Any) -> None:
    events = [Event({"x": 42}), Event({"x": 43})]
    run = runtime({"fn.py": RAISING}, "fn.handler", events)
    run.api.wait_results(2)
    posted = run.api.errors[events[0].request_id]
    assert posted.headers["lambda-runtime-function-error-type"] == "ValueError"
    doc = posted.json()
    assert set(doc) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert doc["errorType"] == "ValueError"
    assert doc["errorMessage"] == "bad thing: 42"
    assert doc["requestId"] == events[0].request_id
    path = run.task_root / "fn.py"
    assert doc["stackTrace"] == [
        f'  File "{path}", line 7, in handler\n    helper(event["x"])\n',
        f'  File "{path}", line 3, in helper\n    raise ValueError("bad thing: %s" % x)\n',
    ]
    # The error record in the log, written (and flushed) before the error was posted.
    expected = (
        "[ERROR] ValueError: bad thing: 42\n"
        "Traceback (most recent call last):\n"
        f'{NBSP * 2}File "{path}", line 7, in handler\n'
        f'{NBSP * 4}helper(event["x"])\n'
    )
    assert expected in posted.stderr
    assert "before the error" in posted.stdout
    # The environment survives a handled exception.
    assert run.api.errors[events[1].request_id].json()["errorMessage"] == "bad thing: 43"


def test_marshal_error(runtime: Any) -> None:
    code = {"fn.py": "def handler(event, context):\n    return {'x': object()}\n"}
    run = runtime(code, "fn.handler", [Event({})])
    run.api.wait_results(1)
    posted = next(iter(run.api.errors.values()))
    assert posted.headers["lambda-runtime-function-error-type"] == "Runtime.MarshalError"
    doc = posted.json()
    assert doc["errorType"] == "Runtime.MarshalError"
    assert doc["errorMessage"] == (
        "Unable to marshal response: Object of type object is not JSON serializable"
    )
    assert doc["stackTrace"] == []


def test_unmarshal_and_context_errors(runtime: Any) -> None:
    events = [
        Event(body=b"{not json"),
        Event({}, headers={"Lambda-Runtime-Client-Context": "{oops"}),
        Event(body=b"\x01raw", content_type="application/octet-stream"),
    ]
    code = {"fn.py": "def handler(event, context):\n    return repr(event)\n"}
    run = runtime(code, "fn.handler", events)
    run.api.wait_results(3)
    unmarshal = run.api.errors[events[0].request_id].json()
    assert unmarshal["errorType"] == "Runtime.UnmarshalError"
    assert unmarshal["errorMessage"].startswith("Unable to unmarshal input: Expecting")
    bad_context = run.api.errors[events[1].request_id].json()
    assert bad_context["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert bad_context["errorMessage"].startswith("Unable to parse Client Context JSON: ")
    assert run.api.responses[events[2].request_id].json() == "b'\\x01raw'"


def test_decimal_results_are_exact_numbers(runtime: Any) -> None:
    code = {
        "fn.py": (
            "from decimal import Decimal\n"
            "def handler(event, context):\n"
            "    return {'a': Decimal('1.10'), 'b': [Decimal('-3')], 'c': 'plain'}\n"
        )
    }
    run = runtime(code, "fn.handler", [Event({})])
    run.api.wait_results(1)
    assert next(iter(run.api.responses.values())).body == b'{"a": 1.10, "b": [-3], "c": "plain"}'


def _init_failure(runtime: Any, files: dict[str, str], handler: str) -> tuple[Any, dict[str, Any]]:
    run = runtime(files, handler, [Event({})])
    assert run.wait_exit() == 1
    assert len(run.api.init_errors) == 1
    assert run.api.next_calls == 0
    posted = run.api.init_errors[0]
    doc = posted.json()
    assert posted.headers["lambda-runtime-function-error-type"] == doc["errorType"]
    assert doc["requestId"] == ""
    assert "[WARNING]" in posted.stdout and "LAMBDA_WARNING: Unhandled exception." in posted.stdout
    assert f"[ERROR] {doc['errorType']}: {doc['errorMessage']}" in posted.stderr
    return run, doc


def test_init_error_malformed_handler(runtime: Any) -> None:
    _, doc = _init_failure(runtime, ECHO, "nodots")
    assert doc["errorType"] == "Runtime.MalformedHandlerName"
    assert doc["errorMessage"] == (
        "Bad handler 'nodots': not enough values to unpack (expected 2, got 1)"
    )


def test_init_error_module_not_found(runtime: Any) -> None:
    _, doc = _init_failure(runtime, ECHO, "missing.handler")
    assert doc["errorType"] == "Runtime.ImportModuleError"
    assert doc["errorMessage"] == "Unable to import module 'missing': No module named 'missing'"
    assert doc["stackTrace"] == []


def test_init_error_dependency_not_found(runtime: Any) -> None:
    files = {"fn.py": "import not_installed_dep\ndef handler(e, c):\n    pass\n"}
    _, doc = _init_failure(runtime, files, "fn.handler")
    assert doc["errorType"] == "Runtime.ImportModuleError"
    assert (
        doc["errorMessage"] == "Unable to import module 'fn': No module named 'not_installed_dep'"
    )


def test_init_error_handler_not_found(runtime: Any) -> None:
    _, doc = _init_failure(runtime, ECHO, "fn.nope")
    assert doc["errorType"] == "Runtime.HandlerNotFound"
    assert doc["errorMessage"] == "Handler 'nope' missing on module 'fn'"


def test_init_error_syntax_error(runtime: Any) -> None:
    files = {"bad.py": "x = 1\ny = 2\ndef handler(event context):\n    pass\n"}
    run, doc = _init_failure(runtime, files, "bad.handler")
    assert doc["errorType"] == "Runtime.UserCodeSyntaxError"
    assert doc["errorMessage"].startswith("Syntax error in module 'bad': ")
    assert doc["errorMessage"].endswith("(bad.py, line 3)")
    (trace,) = doc["stackTrace"]
    assert trace.startswith(f'  File "{run.task_root / "bad.py"}" Line 3\n    def handler')


def test_init_error_builtin_module_conflict(runtime: Any) -> None:
    _, doc = _init_failure(runtime, ECHO, "sys.handler")
    assert doc["errorType"] == "Runtime.BuiltInModuleConflict"
    assert doc["errorMessage"] == "Cannot use built-in module sys as a handler module"


def test_init_error_other_exception_keeps_its_type(runtime: Any) -> None:
    files = {"fn.py": "import os\nCONFIG = {}['NOT_SET_ANYWHERE']\n"}
    run, doc = _init_failure(runtime, files, "fn.handler")
    # awslambdaric reports non-import exceptions during init under their own class name.
    assert doc["errorType"] == "KeyError"
    assert doc["errorMessage"] == "'NOT_SET_ANYWHERE'"
    # As on Lambda, importlib's frames stay in; only the runtime's own frames are cut.
    assert doc["stackTrace"][-1] == (
        f'  File "{run.task_root / "fn.py"}", line 2, in <module>\n'
        "    CONFIG = {}['NOT_SET_ANYWHERE']\n"
    )
    assert "importlib" in doc["stackTrace"][0]
    assert not any("/bootstrap.py" in frame for frame in doc["stackTrace"])


LOGGING = """
import logging, sys
logger = logging.getLogger()

def quiet(event, context):
    logger.info("invisible at the default WARNING level")
    logger.warning("warned %s", event["n"])
    return "ok"

def handler(event, context):
    print("printed", event["n"])
    print("no newline yet", end="")
    sys.stderr.write("to stderr\\n")
    logger.setLevel(logging.INFO)
    logger.info("info %s", event["n"])
    context.log("context.log line\\n")
    return "ok"
"""

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_print_and_logging_output_with_request_id(runtime: Any) -> None:
    events = [Event({"n": 1}), Event({"n": 2})]
    run = runtime({"fn.py": LOGGING}, "fn.handler", events)
    run.api.wait_results(2)
    first = run.api.responses[events[0].request_id]
    # Everything the invocation wrote is readable when its response arrives.
    assert "printed 1\n" in first.stdout
    assert "no newline yet" in first.stdout
    assert "to stderr\n" in first.stderr
    assert "context.log line\n" in first.stdout
    rid = re.escape(events[0].request_id)
    assert re.search(rf"\[INFO\]\t{TS}\t{rid}\tinfo 1\n", first.stdout)
    second = run.api.responses[events[1].request_id]
    rid2 = re.escape(events[1].request_id)
    assert re.search(rf"\[INFO\]\t{TS}\t{rid2}\tinfo 2\n", second.stdout)


def test_default_log_level_is_warning(runtime: Any) -> None:
    run = runtime({"fn.py": LOGGING}, "fn.quiet", [Event({"n": 5})])
    run.api.wait_results(1)
    posted = next(iter(run.api.responses.values()))
    assert "invisible" not in posted.stdout
    assert re.search(rf"\[WARNING\]\t{TS}\treq-0000-\S+\twarned 5\n", posted.stdout)


def test_json_log_format_and_level_from_env(runtime: Any) -> None:
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    run = runtime({"fn.py": LOGGING}, "fn.quiet", [Event({"n": 7})], env=env)
    run.api.wait_results(1)
    posted = next(iter(run.api.responses.values()))
    records = [json.loads(line) for line in posted.stdout.splitlines() if line.startswith("{")]
    assert [r["message"] for r in records] == [
        "invisible at the default WARNING level",
        "warned 7",
    ]
    assert records[0]["level"] == "INFO"
    assert records[0]["requestId"].startswith("req-0000-")
    assert records[0]["logger"] == "root"
    assert re.fullmatch(TS, records[0]["timestamp"])


def test_unicode_payloads(runtime: Any, python: tuple[int, str]) -> None:
    payload = {"text": "héllo wörld ☃ 😀 日本語", "emoji": ["🚀"]}
    run = runtime(ECHO, "fn.handler", [Event(payload)])
    run.api.wait_results(1)
    posted = next(iter(run.api.responses.values()))
    assert posted.json() == payload
    # awslambdaric escapes non-ASCII up to python3.11 and writes UTF-8 from python3.12 on.
    if python[0] >= 12:
        assert "😀".encode() in posted.body
    else:
        assert b"\\ud83d\\ude00" in posted.body


def test_large_payloads_5mb(runtime: Any) -> None:
    big = "ab" * (5 * 1024 * 1024 // 2)
    code = {"fn.py": "def handler(event, context):\n    return {'len': len(event['s']), **event}\n"}
    events = [Event({"s": big}), Event({"s": "small"})]
    run = runtime(code, "fn.handler", events)
    run.api.wait_results(2, timeout=30)
    got = run.api.responses[events[0].request_id].json()
    assert got["len"] == len(big) and got["s"] == big
    assert run.api.responses[events[1].request_id].json() == {"len": 5, "s": "small"}
    assert run.api.connections == 1


def test_chunked_event_body(runtime: Any) -> None:
    events = [Event({"chunked": "yes, in 7-byte pieces"}, chunked=True), Event({"after": 1})]
    run = runtime(ECHO, "fn.handler", events)
    run.api.wait_results(2)
    assert run.api.responses[events[0].request_id].json() == events[0].payload
    assert run.api.responses[events[1].request_id].json() == {"after": 1}


def test_reconnects_when_server_drops_keep_alive(runtime: Any) -> None:
    events = [Event({"i": i}) for i in range(3)]
    run = runtime(ECHO, "fn.handler", events, close_after_post=True)
    run.api.wait_results(3)
    assert [run.api.responses[e.request_id].json() for e in events] == [{"i": i} for i in range(3)]
    # The first connection plus one per dropped connection (the last for the parked poll).
    run.api.wait_until(lambda: run.api.connections == 4)


def test_rejected_response_does_not_kill_the_environment(runtime: Any) -> None:
    events = [Event({"s": "x" * 2000}), Event({"s": "ok"})]
    run = runtime(ECHO, "fn.handler", events, max_response_bytes=1000)
    run.api.wait_results(2)
    assert run.api.rejected == [events[0].request_id]
    assert run.api.responses[events[1].request_id].json() == {"s": "ok"}
    assert "status 413" in run.stderr


def test_sys_exit_in_handler_ends_the_process(runtime: Any) -> None:
    code = {"fn.py": "import sys\ndef handler(event, context):\n    sys.exit(3)\n"}
    run = runtime(code, "fn.handler", [Event({})])
    assert run.wait_exit() == 3
    assert run.api.responses == {} and run.api.errors == {}


def test_runtime_api_unreachable_exits_nonzero(runtime: Any) -> None:
    run = runtime(ECHO, "fn.handler", [], env={"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"})
    assert run.wait_exit() == 1
    assert "hearth-runtime:" in run.stderr


def test_startup_is_quick(runtime: Any) -> None:
    """Guards against heavy imports creeping into the bootstrap (generous bound)."""
    started = time.monotonic()
    run = runtime(ECHO, "fn.handler", [Event({})])
    run.api.wait_results(1)
    assert time.monotonic() - started < 3.0


FRAMED = """\
import logging, os, threading

def handler(event, context):
    print("plain")
    logging.error("a\\nb")
    context.log("ctx\\nlog")
    threads = [
        threading.Thread(target=lambda: [logging.warning("t" * 5000) for _ in range(20)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if event.get("fail"):
        raise ValueError("framed")
    return os.environ.get("_LAMBDA_TELEMETRY_LOG_FD", "taken")
"""


def test_records_go_to_the_framed_log_channel(runtime: Any, tmp_path: Path) -> None:
    """With _LAMBDA_TELEMETRY_LOG_FD, each logging record, context.log() message and
    uncaught error is one frame (awslambdaric's layout); print stays on stdout."""
    frames = tmp_path / "frames.bin"
    events = [Event({}), Event({"fail": True})]
    run = runtime({"fn.py": FRAMED}, "fn.handler", events, frames=frames)
    run.api.wait_results(2)
    assert run.api.responses[events[0].request_id].json() == "taken"
    raw = frames.read_bytes()
    kinds = []
    pos = 0
    while pos < len(raw):  # every frame whole: threads' frames never interleave
        kind, length = struct.unpack_from(">II", raw, pos)
        kinds.append(kind)
        pos += 16 + length
    assert pos == len(raw)
    records = [m for _, m in FrameDecoder().feed(raw)]
    rid = events[0].request_id
    error_record = next(r for r in records if r.startswith("[ERROR]\t"))
    assert error_record.endswith(f"\t{rid}\ta\nb\n")
    assert "ctx\nlog" in records
    assert sum(r.endswith("t" * 5000 + "\n") for r in records) == 2 * 4 * 20
    (error,) = [r for r in records if r.startswith("[ERROR] ValueError: framed")]
    assert error.startswith("[ERROR] ValueError: framed\nTraceback (most recent call last):\n")
    assert error.endswith('raise ValueError("framed")')  # no newline, as awslambdaric
    assert 0xA55A0017 in kinds and 0xA55A0013 in kinds  # ERROR and WARNING text frames
    assert "plain\n" in run.stdout and "a\nb" not in run.stdout and "framed" not in run.stderr
