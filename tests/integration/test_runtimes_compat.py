"""Compatibility review of runtimes and layers against AWS's documentation.

Each test pins one behaviour a real client relies on and that an earlier version of
Hearth got wrong; the docstring names the AWS page it comes from.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE, invoke_json
from tests.helpers import make_zip, start_server
from tests.integration.test_runtimes_node import NODE

_ids = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}-{int(time.time() * 1000) % 10**7}"


@pytest.fixture
def create(lam: Any) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(
        files: dict[str, str],
        runtime: str,
        handler: str,
        modes: dict[str, int] | None = None,
        **kw: Any,
    ) -> str:
        name = _name("compat")
        lam.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": make_zip(files, modes)},
            **kw,
        )
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


PY_ENV = """\
import os, time
import onpath

def handler(event, context):
    keys = ("TZ", "LANG", "PYTHONPATH", "PATH")
    return {**{k: os.environ.get(k) for k in keys}, "tz": list(time.tzname), "mod": onpath.X}
"""

NODE_ENV = """\
exports.handler = async () => ({
  TZ: process.env.TZ,
  LANG: process.env.LANG,
  offset: new Date(Date.UTC(2024, 0, 15)).getTimezoneOffset(),
  mod: require('onpath').X,
});
"""

SHELL_ENV = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  curl -sS -D "$H" -o /dev/null "$API/invocation/next"
  RID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  BODY=$(printf '{"TZ":"%s","LANG":"%s","PATH":"%s","hour":"%s"}' \
    "$TZ" "$LANG" "$PATH" "$(date -d @1705320000 +%H)")
  curl -sS -o /dev/null "$API/invocation/$RID/response" -d "$BODY"
done
"""

USER_ENV = {"TZ": "America/New_York", "LANG": "C.UTF-8"}


def test_unreserved_env_vars_set_by_the_function_win_python(lam: Any, create: Any) -> None:
    """ "Using Lambda environment variables": TZ, LANG, PATH, PYTHONPATH, ... are not
    reserved and can be set in the function's configuration; the function sees its values.
    """
    name = create(
        {"app.py": PY_ENV, "src/onpath.py": "X = 'from src'\n"},
        "python3.11",
        "app.handler",
        Environment={
            "Variables": {**USER_ENV, "PYTHONPATH": "/var/task/src", "PATH": "/usr/bin:/bin"}
        },
    )
    _, out = invoke_json(lam, name)
    assert out["TZ"] == "America/New_York"
    assert out["LANG"] == "C.UTF-8"
    assert out["PATH"] == "/usr/bin:/bin"
    assert out["PYTHONPATH"] == "/var/task/src"
    assert out["tz"] == ["EST", "EDT"]
    assert out["mod"] == "from src"


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_unreserved_env_vars_set_by_the_function_win_node(lam: Any, create: Any) -> None:
    name = create(
        {"index.js": NODE_ENV, "lib/node_modules/onpath/index.js": "exports.X = 'lib';\n"},
        "nodejs20.x",
        "index.handler",
        Environment={"Variables": {**USER_ENV, "NODE_PATH": "/var/task/lib/node_modules"}},
    )
    _, out = invoke_json(lam, name)
    assert out == {"TZ": "America/New_York", "LANG": "C.UTF-8", "offset": 300, "mod": "lib"}


def test_unreserved_env_vars_set_by_the_function_win_custom_runtime(lam: Any, create: Any) -> None:
    name = create(
        {"bootstrap": SHELL_ENV},
        "provided.al2023",
        "unused",
        modes={"bootstrap": 0o755},
        Environment={"Variables": {**USER_ENV, "PATH": "/usr/bin:/bin"}},
    )
    _, out = invoke_json(lam, name)
    # 2024-01-15T12:00:00Z is 07:00 in New York.
    assert out == {
        "TZ": "America/New_York",
        "LANG": "C.UTF-8",
        "PATH": "/usr/bin:/bin",
        "hour": "07",
    }


def test_default_env_vars_without_overrides(lam: Any, create: Any) -> None:
    """Without overrides the runtime's own values stay (TZ ``:UTC``, LANG ``en_US.UTF-8``)."""
    name = create({"app.py": PY_ENV, "onpath.py": "X = 'root'\n"}, "python3.11", "app.handler")
    _, out = invoke_json(lam, name)
    assert out["TZ"] == ":UTC"
    assert out["LANG"] == "en_US.UTF-8"
    assert out["PYTHONPATH"] == "/var/runtime"
    assert out["mod"] == "root"


def test_tz_alone_on_a_forked_python_runtime(lam: Any, create: Any) -> None:
    """TZ set alone (the common case) keeps the fast forked start and still applies."""
    name = create(
        {"app.py": PY_ENV, "onpath.py": "X = 'root'\n"},
        "python3.12",
        "app.handler",
        Environment={"Variables": {"TZ": "Asia/Tokyo"}},
    )
    _, out = invoke_json(lam, name)
    assert out["TZ"] == "Asia/Tokyo"
    assert out["tz"] == ["JST", "JST"]


NODE_THROWS = """\
exports.obj = async () => { throw { code: 42 }; };
exports.num = async () => { throw 42; };
exports.str = async () => { throw 'plain'; };
exports.cbObj = (event, context, callback) => callback({ code: 7 });
exports.errLike = async () => {
  throw { name: 'Duck', message: 'quacks like an error', stack: 'Duck: quacks\\n    at pond' };
};
"""


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_node_non_error_values_thrown(lam: Any, create: Any) -> None:
    """Lambda's Node runtime (``toRapidResponse``): a thrown value that is not an Error
    answers ``errorType`` ``typeof value`` and ``errorMessage`` ``String(value)``; an
    object with string name, message and stack counts as an Error.
    """
    name = create({"index.js": NODE_THROWS}, "nodejs20.x", "index.obj")
    expected = {
        "index.obj": {"errorType": "object", "errorMessage": "[object Object]", "trace": []},
        "index.num": {"errorType": "number", "errorMessage": "42", "trace": []},
        "index.str": {"errorType": "string", "errorMessage": "plain", "trace": []},
        "index.cbObj": {"errorType": "object", "errorMessage": "[object Object]", "trace": []},
        "index.errLike": {
            "errorType": "Duck",
            "errorMessage": "quacks like an error",
            "trace": ["Duck: quacks", "    at pond"],
        },
    }
    for handler, doc in expected.items():
        if handler != "index.obj":
            lam.update_function_configuration(FunctionName=name, Handler=handler)
            lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        resp, out = invoke_json(lam, name)
        assert resp["FunctionError"] == "Unhandled", handler
        assert out == doc, handler


NODE_LOGS = """\
exports.handler = async (event) => {
  console.debug('dropped below WARN');
  console.info('dropped too');
  console.warn('careful', { n: 1 });
  console.error(new TypeError('bad type'));
  console.fatal('the end');
  if (event.fail) throw new RangeError('out of range');
  return 'ok';
};
"""


def _tail(resp: dict[str, Any]) -> list[str]:
    return base64.b64decode(resp["LogResult"]).decode().splitlines()


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_node_json_logs_and_log_level(lam: Any, create: Any) -> None:
    """ "Using Lambda advanced logging controls with Node.js": with LogFormat JSON the
    console methods write ``{timestamp, level, requestId, message}`` records (an Error adds
    errorType, errorMessage, stackTrace) and ApplicationLogLevel drops lower levels.
    """
    name = create(
        {"index.js": NODE_LOGS},
        "nodejs20.x",
        "index.handler",
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"},
    )
    resp = lam.invoke(FunctionName=name, Payload=b'{"fail": true}', LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    records = [json.loads(line) for line in _tail(resp) if line.startswith('{"timestamp"')]
    assert [r["level"] for r in records] == ["WARN", "ERROR", "FATAL", "ERROR"]
    for r in records:
        assert r["requestId"] == rid
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["timestamp"])
    warn, error, fatal, invoke_error = records
    assert warn["message"] == "careful { n: 1 }"
    assert error["message"]["errorType"] == "TypeError"
    assert error["message"]["errorMessage"] == "bad type"
    assert error["message"]["stackTrace"][0] == "TypeError: bad type"
    assert fatal["message"] == "the end"
    assert invoke_error["message"]["errorType"] == "RangeError"
    assert invoke_error["message"]["errorMessage"] == "out of range"


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_node_text_logs_keep_their_format(lam: Any, create: Any) -> None:
    """Text format (the default): ``<time>\\t<request id>\\t<LEVEL>\\t<message>``, every
    level, and the runtime's own "Invoke Error" line carries a tab before the document.
    """
    name = create({"index.js": NODE_LOGS}, "nodejs20.x", "index.handler")
    resp = lam.invoke(FunctionName=name, Payload=b'{"fail": true}', LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    lines = [line.split("\t", 3) for line in _tail(resp) if f"\t{rid}\t" in line]
    assert [parts[2] for parts in lines] == ["DEBUG", "INFO", "WARN", "ERROR", "FATAL", "ERROR"]
    assert lines[2][3] == "careful { n: 1 }"
    assert lines[5][3].startswith("Invoke Error \t{")
    doc = json.loads(lines[5][3].split("\t", 1)[1])
    assert doc["errorType"] == "RangeError"
    assert doc["errorMessage"] == "out of range"
    assert doc["stack"][0] == "RangeError: out of range"


WRAPPER = """#!/bin/bash
# AWS's example: add interpreter options, then start the runtime.
args=("$@")
export WRAPPED_BY="wrapper.sh"
export WRAPPED_ARGC="$#"
exec "${args[@]}"
"""

PY_WRAPPED = """\
import os, sys

def handler(event, context):
    return {"by": os.environ.get("WRAPPED_BY"), "argc": os.environ.get("WRAPPED_ARGC"),
            "exe": sys.executable}
"""

NODE_WRAPPED = """\
exports.handler = async () => ({
  by: process.env.WRAPPED_BY, argc: process.env.WRAPPED_ARGC,
});
"""


def test_exec_wrapper_starts_a_python_runtime(lam: Any, create: Any) -> None:
    """ "Modifying the runtime environment": AWS_LAMBDA_EXEC_WRAPPER names a script that
    Lambda runs with the runtime's command as its arguments.
    """
    name = create(
        {"app.py": PY_WRAPPED, "wrapper.sh": WRAPPER},
        "python3.11",
        "app.handler",
        modes={"wrapper.sh": 0o755},
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}},
    )
    resp, out = invoke_json(lam, name)
    assert "FunctionError" not in resp, out
    assert out["by"] == "wrapper.sh"
    assert int(out["argc"]) >= 1
    assert out["exe"].startswith("/var/lang/bin/python3.11")


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_exec_wrapper_starts_a_node_runtime(lam: Any, create: Any) -> None:
    name = create(
        {"index.js": NODE_WRAPPED, "wrapper.sh": WRAPPER},
        "nodejs20.x",
        "index.handler",
        modes={"wrapper.sh": 0o755},
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}},
    )
    resp, out = invoke_json(lam, name)
    assert "FunctionError" not in resp, out
    assert out["by"] == "wrapper.sh"


def test_exec_wrapper_is_ignored_by_custom_runtimes(lam: Any, create: Any) -> None:
    name = create(
        {"bootstrap": SHELL_ENV},
        "provided.al2023",
        "unused",
        modes={"bootstrap": 0o755},
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/missing.sh"}},
    )
    resp, out = invoke_json(lam, name)
    assert "FunctionError" not in resp, out
    assert out["TZ"] == ":UTC"


@pytest.mark.parametrize(
    ("path", "mode", "reason"),
    [
        ("/var/task/missing.sh", None, "no such file or directory"),
        ("/var/task/wrapper.sh", 0o644, "permission denied"),
    ],
)
def test_exec_wrapper_that_cannot_start_is_invalid_entrypoint(
    lam: Any, create: Any, path: str, mode: int | None, reason: str
) -> None:
    name = create(
        {"app.py": PY_WRAPPED, "wrapper.sh": WRAPPER},
        "python3.11",
        "app.handler",
        modes={"wrapper.sh": mode} if mode is not None else None,
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": path}},
    )
    resp, err = invoke_json(lam, name)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert err == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": f"RequestId: {rid} Error: fork/exec {path}: {reason}",
    }


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("exit 3", "Runtime exited with error: exit status 3"),
        ("exit 0", "Runtime exited without providing a reason"),
    ],
)
def test_custom_runtime_exiting_is_exit_error(
    lam: Any, create: Any, script: str, message: str
) -> None:
    """Lambda reports the runtime process's end as Go's ``exec`` words it: a non-zero
    status is "exit status N"; a clean exit (status 0, no error) gives no reason.
    """
    name = create(
        {"bootstrap": f"#!/bin/sh\n{script}\n"},
        "provided.al2023",
        "unused",
        modes={"bootstrap": 0o755},
    )
    resp, err = invoke_json(lam, name)
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert err == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: {message}",
    }


# -- layer version permissions ------------------------------------------------------------

OWNER, OTHER = "111111111111", "222222222222"


@pytest.fixture(scope="module")
def two_accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    keys = f"ka:secret-a:{OWNER},kb:secret-b:{OTHER}"
    srv = start_server(
        tmp_path_factory.mktemp("accounts") / "data",
        ["--no-egress"],
        env={"HEARTH_ACCESS_KEYS": keys},
    )
    try:
        yield (
            srv.client("lambda", key="ka", secret="secret-a"),
            srv.client("lambda", key="kb", secret="secret-b"),
        )
    finally:
        srv.stop()


def _error(exc: pytest.ExceptionInfo[Any]) -> tuple[int, str, str]:
    resp = exc.value.response
    return (
        resp["ResponseMetadata"]["HTTPStatusCode"],
        resp["Error"]["Code"],
        resp["Error"]["Message"],
    )


def test_layer_version_permission_shapes(two_accounts: tuple[Any, Any]) -> None:
    """AddLayerVersionPermission / GetLayerVersionPolicy / RemoveLayerVersionPermission
    as the API reference and the CLI examples show them.
    """
    owner, _ = two_accounts
    lname = _name("shared")
    lv = owner.publish_layer_version(LayerName=lname, Content={"ZipFile": make_zip({"a": "1"})})
    arn = lv["LayerVersionArn"]
    with pytest.raises(owner.exceptions.ResourceNotFoundException) as exc:
        owner.get_layer_version_policy(LayerName=lname, VersionNumber=1)
    assert _error(exc) == (
        404,
        "ResourceNotFoundException",
        "No policy is associated with the given resource.",
    )
    added = owner.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="xaccount",
        Action="lambda:GetLayerVersion",
        Principal=OTHER,
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "xaccount",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": "lambda:GetLayerVersion",
        "Resource": arn,
    }
    public = owner.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
    )
    assert json.loads(public["Statement"])["Principal"] == "*"
    assert json.loads(public["Statement"])["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}
    }
    got = owner.get_layer_version_policy(LayerName=lname, VersionNumber=1)
    assert got["RevisionId"] == public["RevisionId"] != added["RevisionId"]
    policy = json.loads(got["Policy"])
    assert policy["Version"] == "2012-10-17" and policy["Id"] == "default"
    assert [s["Sid"] for s in policy["Statement"]] == ["xaccount", "org"]

    with pytest.raises(owner.exceptions.ResourceConflictException) as exc:
        owner.add_layer_version_permission(
            LayerName=lname,
            VersionNumber=1,
            StatementId="xaccount",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
    assert _error(exc) == (
        409,
        "ResourceConflictException",
        "The statement id (xaccount) provided already exists. Please provide a new statement"
        " id, or remove the existing statement.",
    )
    with pytest.raises(owner.exceptions.PreconditionFailedException):
        owner.remove_layer_version_permission(
            LayerName=lname, VersionNumber=1, StatementId="org", RevisionId=added["RevisionId"]
        )
    removed = owner.remove_layer_version_permission(
        LayerName=lname, VersionNumber=1, StatementId="org", RevisionId=got["RevisionId"]
    )
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(owner.exceptions.ResourceNotFoundException) as exc:
        owner.remove_layer_version_permission(LayerName=lname, VersionNumber=1, StatementId="org")
    assert _error(exc)[2] == "Statement org is not found in resource policy."
    owner.remove_layer_version_permission(LayerName=lname, VersionNumber=1, StatementId="xaccount")
    with pytest.raises(owner.exceptions.ResourceNotFoundException):
        owner.get_layer_version_policy(LayerName=lname, VersionNumber=1)


def test_layer_version_permission_bad_input(two_accounts: tuple[Any, Any]) -> None:
    owner, _ = two_accounts
    lname = _name("strict")
    owner.publish_layer_version(LayerName=lname, Content={"ZipFile": make_zip({"a": "1"})})
    base = {"LayerName": lname, "VersionNumber": 1, "StatementId": "s"}
    for kw, member in (
        ({"Action": "lambda:InvokeFunction", "Principal": "*"}, "action"),
        ({"Action": "lambda:GetLayerVersion", "Principal": "someone"}, "principal"),
        (
            {"Action": "lambda:GetLayerVersion", "Principal": "*", "OrganizationId": "org-1"},
            "organizationId",
        ),
    ):
        with pytest.raises(ClientError) as exc:
            owner.add_layer_version_permission(**base, **kw)
        status, code, message = _error(exc)
        assert (status, code) == (400, "ValidationException")
        assert f"at '{member}' failed to satisfy constraint" in message
    with pytest.raises(owner.exceptions.ResourceNotFoundException) as exc:
        owner.add_layer_version_permission(
            **{**base, "VersionNumber": 9}, Action="lambda:GetLayerVersion", Principal="*"
        )
    assert _error(exc)[2] == (
        f"Layer version arn:aws:lambda:us-east-1:{OWNER}:layer:{lname}:9 does not exist."
    )


def test_layer_version_permission_lets_another_account_use_it(
    two_accounts: tuple[Any, Any],
) -> None:
    """Without a statement another account is denied; with one for it (or for ``*``) it
    may read the version by ARN and use it in a function; removing it denies again.
    """
    owner, other = two_accounts
    lname = _name("lib")
    arn = owner.publish_layer_version(
        LayerName=lname, Content={"ZipFile": make_zip({"python/shared_lib.py": "X = 41\n"})}
    )["LayerVersionArn"]
    with pytest.raises(ClientError) as exc:
        other.get_layer_version_by_arn(Arn=arn)
    assert _error(exc)[:2] == (403, "AccessDeniedException")
    with pytest.raises(ClientError) as exc:
        other.get_layer_version(LayerName=arn.rsplit(":", 1)[0], VersionNumber=1)
    assert _error(exc) == (
        403,
        "AccessDeniedException",
        f"User: arn:aws:iam::{OTHER}:root is not authorized to perform: lambda:GetLayerVersion"
        f" on resource: {arn} because no resource-based policy allows the"
        " lambda:GetLayerVersion action",
    )

    owner.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="other",
        Action="lambda:GetLayerVersion",
        Principal=OTHER,
    )
    got = other.get_layer_version_by_arn(Arn=arn)
    assert got["LayerVersionArn"] == arn and got["Content"]["CodeSize"] > 0
    by_name = other.get_layer_version(LayerName=arn.rsplit(":", 1)[0], VersionNumber=1)
    assert by_name["LayerVersionArn"] == arn
    fn = _name("uses-shared")
    other.create_function(
        FunctionName=fn,
        Runtime="python3.11",
        Role=f"arn:aws:iam::{OTHER}:role/r",
        Handler="app.handler",
        Code={
            "ZipFile": make_zip(
                {"app.py": "import shared_lib\ndef handler(e, c):\n    return shared_lib.X + 1\n"}
            )
        },
        Layers=[arn],
    )
    other.get_waiter("function_active_v2").wait(FunctionName=fn)
    assert json.loads(other.invoke(FunctionName=fn)["Payload"].read()) == 42

    owner.remove_layer_version_permission(LayerName=lname, VersionNumber=1, StatementId="other")
    with pytest.raises(ClientError) as exc:
        other.get_layer_version_by_arn(Arn=arn)
    assert _error(exc)[:2] == (403, "AccessDeniedException")
    owner.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="org-only",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
    )
    with pytest.raises(ClientError) as exc:
        other.get_layer_version_by_arn(Arn=arn)
    assert _error(exc)[:2] == (403, "AccessDeniedException")
    owner.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="public",
        Action="lambda:GetLayerVersion",
        Principal="*",
    )
    assert other.get_layer_version_by_arn(Arn=arn)["Version"] == 1
    other.delete_function(FunctionName=fn)


LATE_INIT_ERROR = r"""#!/usr/bin/python3
import http.client, json, os
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
def call(method, path, headers=None, body=b""):
    conn = http.client.HTTPConnection(HOST, int(PORT), timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"null")
while True:
    conn = http.client.HTTPConnection(HOST, int(PORT), timeout=None)
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    r.read()
    late = call("POST", "/2018-06-01/runtime/init/error",
                {"Lambda-Runtime-Function-Error-Type": "Custom.Late"},
                b'{"errorMessage": "too late", "errorType": "Custom.Late"}')
    call("POST", f"/2018-06-01/runtime/invocation/{rid}/response", body=json.dumps(late).encode())
"""


def test_runtime_init_error_after_init_is_an_invalid_state_transition(
    lam: Any, create: Any
) -> None:
    """Lambda's Runtime API takes ``init/error`` only during Init: once the runtime has
    asked for an invocation, it answers 403 ``InvalidStateTransition`` and the invocation
    goes on.
    """
    name = create(
        {"bootstrap": LATE_INIT_ERROR},
        "provided.al2023",
        "unused",
        modes={"bootstrap": 0o755},
    )
    for _ in range(2):
        resp, out = invoke_json(lam, name)
        assert "FunctionError" not in resp, out
        assert out == [
            403,
            {
                "errorMessage": "State transition from Running to InitError failed for"
                " runtime. Error: State transition is not allowed",
                "errorType": "InvalidStateTransition",
            },
        ]


NODE_STREAMING = """\
exports.plain = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  responseStream.write('Hello, ');
  await new Promise((r) => setTimeout(r, 10));
  responseStream.write(event.name + ' from ' + context.functionName);
  responseStream.end();
});
exports.http = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201, headers: { 'x-kind': 'stream' },
  });
  stream.write('body');
  stream.end();
});
exports.fails = awslambda.streamifyResponse(async () => {
  throw new TypeError('stream broke');
});
"""


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_node_streamify_response_handlers_buffered_by_invoke(lam: Any, create: Any) -> None:
    """ "Response streaming for Lambda functions": ``awslambda.streamifyResponse`` and
    ``awslambda.HttpResponseStream`` exist in the Node runtime; invoked with Invoke, the
    streamed bytes come back buffered as the payload.
    """
    name = create({"index.js": NODE_STREAMING}, "nodejs20.x", "index.plain")
    resp = lam.invoke(FunctionName=name, Payload=b'{"name": "world"}')
    assert "FunctionError" not in resp
    assert resp["Payload"].read() == f"Hello, world from {name}".encode()

    lam.update_function_configuration(FunctionName=name, Handler="index.http")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    prelude = json.dumps(
        {"statusCode": 201, "headers": {"x-kind": "stream"}}, separators=(",", ":")
    )
    assert resp["Payload"].read() == prelude.encode() + b"\0" * 8 + b"body"

    lam.update_function_configuration(FunctionName=name, Handler="index.fails")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    resp, err = invoke_json(lam, name)
    assert resp["FunctionError"] == "Unhandled"
    assert (err["errorType"], err["errorMessage"]) == ("TypeError", "stream broke")


def test_layer_name_limits_follow_the_model(lam: Any) -> None:
    """botocore's model: ``LayerName`` is 1..2048 characters matching a name of 1..140
    characters, or a layer ARN whose name part is 1..140 characters.
    """
    long_name = "n" * 120
    arn_name = f"arn:aws:lambda:us-east-1:000000000000:layer:{long_name}"
    published = lam.publish_layer_version(
        LayerName=arn_name, Content={"ZipFile": make_zip({"a": "1"})}
    )
    try:
        assert published["LayerArn"] == arn_name
        got = lam.get_layer_version(LayerName=arn_name, VersionNumber=published["Version"])
        assert got["LayerVersionArn"] == published["LayerVersionArn"]
    finally:
        lam.delete_layer_version(LayerName=long_name, VersionNumber=published["Version"])
    pattern = (
        lam.meta.service_model.operation_model("GetLayerVersion")
        .input_shape.members["LayerName"]
        .metadata["pattern"]
    )
    with pytest.raises(ClientError) as exc:
        lam.get_layer_version(LayerName="n" * 141, VersionNumber=1)
    assert _error(exc) == (
        400,
        "ValidationException",
        f"1 validation error detected: Value '{'n' * 141}' at 'layerName' failed to satisfy"
        f" constraint: Member must satisfy regular expression pattern: {pattern}",
    )


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_node_es_module_imports_packages_from_layers(lam: Any, create: Any) -> None:
    """Lambda's Node.js 18+ runtimes resolve an ES module handler's ``import`` of a
    package shipped in a layer (``nodejs/node_modules``, ``nodejs/nodeNN/node_modules``);
    the function's own ``node_modules`` come first.
    """
    assert NODE is not None
    major = NODE.removeprefix("nodejs").removesuffix(".x")
    layer = lam.publish_layer_version(
        LayerName=_name("esm-layer"),
        Content={
            "ZipFile": make_zip(
                {
                    "nodejs/node_modules/cjspkg/package.json": '{"name": "cjspkg"}',
                    "nodejs/node_modules/cjspkg/index.js": "module.exports = { v: 'cjs' };\n",
                    f"nodejs/node{major}/node_modules/esmpkg/package.json": (
                        '{"name": "esmpkg", "type": "module", "exports": "./index.js"}'
                    ),
                    f"nodejs/node{major}/node_modules/esmpkg/index.js": "export const w = 'esm';\n",
                    "nodejs/node_modules/shadowed/index.js": "module.exports = 'layer';\n",
                }
            )
        },
    )
    try:
        code = (
            "import c from 'cjspkg';\nimport { w } from 'esmpkg';\nimport s from 'shadowed';\n"
            "export const handler = async () => ({ v: c.v, w, s });\n"
        )
        name = create(
            {"index.mjs": code, "node_modules/shadowed/index.js": "module.exports = 'own';\n"},
            NODE,
            "index.handler",
            Layers=[layer["LayerVersionArn"]],
        )
        resp, out = invoke_json(lam, name)
        assert "FunctionError" not in resp, out
        assert out == {"v": "cjs", "w": "esm", "s": "own"}
    finally:
        lam.delete_layer_version(
            LayerName=layer["LayerArn"].rsplit(":", 1)[1], VersionNumber=layer["Version"]
        )
