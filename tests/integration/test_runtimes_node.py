"""Node.js runtimes with Hearth's bootstrap: CommonJS, ES modules, callbacks, errors, logs."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.runtimes.node import discover_node
from tests.conftest import ROLE, invoke_json
from tests.helpers import make_zip
from tests.integration.test_runtimes_provided import wait_for_log

_ids = itertools.count()

#: The nodejs runtime this host offers (the newest found), or None.
NODE = max(discover_node(), key=lambda n: int(n[6:-2]), default=None)

CONTEXT_FIELDS = """
  event,
  awsRequestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  waits: context.callbackWaitsForEmptyEventLoop,
  calls: ++calls,
  initAt,
  execEnv: process.env.AWS_EXECUTION_ENV,
"""

CJS = (
    """
const initAt = String(Date.now()) + Math.random();
let calls = 0;
console.log('cjs init');
exports.handler = async (event, context) => {
  console.log('cjs handling', context.awsRequestId);
  console.error('multi\\nline');
  if (event.fail) throw new TypeError('asked to fail');
  return {"""
    + CONTEXT_FIELDS
    + """};
};
"""
)

ESM = (
    """
import { setTimeout as sleep } from 'node:timers/promises';
const initAt = String(Date.now()) + Math.random();
let calls = 0;
await sleep(1);
console.log('esm init');
export const handler = async (event, context) => {
  console.log('esm handling', context.awsRequestId);
  if (event.fail) throw new RangeError('asked to fail');
  return {"""
    + CONTEXT_FIELDS
    + """};
};
"""
)

CALLBACK = (
    """
const initAt = String(Date.now()) + Math.random();
let calls = 0;
let late = 'not yet';
console.log('callback init');
exports.handler = function (event, context, callback) {
  console.log('callback handling', context.awsRequestId);
  if (event.fail) return callback(new Error('asked to fail'));
  if (event.noWait) {
    context.callbackWaitsForEmptyEventLoop = false;
    setTimeout(() => { late = 'ran later'; }, 300);
    return callback(null, { late });
  }
  if (event.wait) {
    // The response waits until this timer has run (callbackWaitsForEmptyEventLoop).
    const out = {"""
    + CONTEXT_FIELDS
    + """};
    setTimeout(() => { out.late = 'timer ran'; }, 200);
    return callback(null, out);
  }
  callback(null, { late });
};
"""
)


@pytest.fixture
def create(lam: Any) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(
        files: dict[str, str | bytes],
        handler: str = "index.handler",
        modes: dict[str, int] | None = None,
        **kw: Any,
    ) -> str:
        name = f"node-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
        lam.create_function(
            FunctionName=name,
            Runtime=kw.pop("runtime", NODE),
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


@pytest.fixture(autouse=True)
def _need_node(lam: Any) -> None:
    if NODE is None:
        pytest.skip("no node 18, 20 or 22 on this host: no nodejs runtime is offered")


def check_context(lam: Any, name: str, body: dict[str, Any], resp: dict[str, Any]) -> None:
    assert body["awsRequestId"] == resp["ResponseMetadata"]["RequestId"]
    assert body["functionName"] == name
    assert body["functionVersion"] == "$LATEST"
    assert body["invokedFunctionArn"].endswith(f":function:{name}")
    assert body["memoryLimitInMB"] == "256"
    assert body["logGroupName"] == f"/aws/lambda/{name}"
    assert "[$LATEST]" in body["logStreamName"]
    assert 0 < body["remaining"] <= 9000
    assert body["waits"] is True
    assert body["execEnv"] == f"AWS_Lambda_{NODE}"


def check_error(resp: dict[str, Any], err: dict[str, Any], error_type: str) -> None:
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == error_type
    assert err["errorMessage"] == "asked to fail"
    assert isinstance(err["trace"], list)
    assert err["trace"][0] == f"{error_type}: asked to fail"


def test_commonjs(lam: Any, logs: Any, create: Any) -> None:
    name = create({"index.js": CJS}, MemorySize=256, Timeout=9)
    resp, body = invoke_json(lam, name, {"k": 1})
    assert "FunctionError" not in resp, body
    assert body["event"] == {"k": 1}
    check_context(lam, name, body, resp)
    _, again = invoke_json(lam, name, {})
    assert again["calls"] == 2 and again["initAt"] == body["initAt"]
    resp, err = invoke_json(lam, name, {"fail": True})
    check_error(resp, err, "TypeError")
    rid = body["awsRequestId"]
    # The failed (last) invocation's error line comes last: once it is there, all is.
    messages = wait_for_log(logs, f"/aws/lambda/{name}", "ERROR\tInvoke Error")
    assert any(m.rstrip("\n").endswith("\tundefined\tINFO\tcjs init") for m in messages)
    line = next(m for m in messages if f"INFO\tcjs handling {rid}" in m)
    stamp, lrid, level, text = line.rstrip("\n").split("\t")
    assert lrid == rid and level == "INFO" and text == f"cjs handling {rid}"
    assert stamp.endswith("Z") and stamp[4] == "-" and stamp[10] == "T"
    # One console call, one event: a frame of the log channel, newlines kept (as Lambda's
    # runtime writes it; without the channel they would be '\r').
    assert any(m.endswith(f"\t{rid}\tERROR\tmulti\nline\n") for m in messages), messages
    assert not any(m.startswith("line") for m in messages)
    assert any("ERROR\tInvoke Error" in m and "TypeError" in m for m in messages)


def test_esm_mjs_and_type_module(lam: Any, create: Any) -> None:
    name = create({"index.mjs": ESM}, MemorySize=256, Timeout=9)
    resp, body = invoke_json(lam, name, {"k": "esm"})
    assert "FunctionError" not in resp, body
    check_context(lam, name, body, resp)
    _, again = invoke_json(lam, name, {})
    assert again["calls"] == 2 and again["initAt"] == body["initAt"]
    resp, err = invoke_json(lam, name, {"fail": True})
    check_error(resp, err, "RangeError")
    # A .js file is an ES module when package.json says "type": "module".
    name2 = create(
        {"src/app.js": ESM, "package.json": '{"type": "module"}'},
        handler="src/app.handler",
        MemorySize=256,
        Timeout=9,
    )
    resp, body = invoke_json(lam, name2, {"k": 2})
    assert "FunctionError" not in resp, body
    assert body["event"] == {"k": 2}


def test_callback_handlers(lam: Any, create: Any) -> None:
    name = create({"index.js": CALLBACK, "other.cjs": CALLBACK}, MemorySize=256, Timeout=9)
    resp, body = invoke_json(lam, name, {"wait": True})
    assert "FunctionError" not in resp, body
    check_context(lam, name, body, resp)
    # The callback's result was serialised after the event loop emptied: the timer ran.
    assert body["late"] == "timer ran"
    _, nowait = invoke_json(lam, name, {"noWait": True})
    assert nowait == {"late": "not yet"}
    time.sleep(0.5)
    _, later = invoke_json(lam, name, {})
    assert later["late"] == "ran later"  # the timer ran after the response, same process
    resp, err = invoke_json(lam, name, {"fail": True})
    check_error(resp, err, "Error")
    other = create({"other.cjs": CALLBACK}, handler="other.handler", Timeout=9)
    resp, body = invoke_json(lam, other, {})
    assert body == {"late": "not yet"}
    # A synchronous handler that never calls back answers null once the loop is empty.
    sync = create(
        {"index.js": "exports.handler = (e) => { setTimeout(() => {}, 100); return 5; };"}
    )
    resp, body = invoke_json(lam, sync, {})
    assert "FunctionError" not in resp and body is None


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"index.js": "exports.handler = async () => 1;"},
            "missing.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'missing'",
        ),
        (
            {"index.js": "exports.other = async () => 1;"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is undefined or not exported",
        ),
        (
            {"index.js": "exports.handler = 42;"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is not a function",
        ),
        (
            {"index.js": "exports.handler = async () => 1;"},
            "index",
            "Runtime.MalformedHandlerName",
            "Bad handler",
        ),
        (
            {"index.js": "throw new Error('init boom');"},
            "index.handler",
            "Error",
            "init boom",
        ),
    ],
)
def test_init_errors(
    lam: Any, create: Any, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    name = create(files, handler=handler)
    resp, err = invoke_json(lam, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == error_type
    assert err["errorMessage"].startswith(message)
    assert isinstance(err["trace"], list)


def test_uncaught_exception_and_rejection(lam: Any, create: Any) -> None:
    code = """
exports.handler = async (event) => {
  if (event.reject) { Promise.reject(new Error('nobody caught me')); }
  else { setTimeout(() => { throw new SyntaxError('from a timer'); }, 0); }
  await new Promise((r) => setTimeout(r, 1000));
  return 'unreachable';
};
"""
    name = create({"index.js": code}, Timeout=9)
    resp, err = invoke_json(lam, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == "SyntaxError" and err["errorMessage"] == "from a timer"
    # The runtime exited after answering; let the worker see it before the next call
    # (an invocation sent to an environment whose runtime then exits gets ExitError).
    time.sleep(0.5)
    resp, err = invoke_json(lam, name, {"reject": True})
    assert err["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert err["errorMessage"] == "Error: nobody caught me"


_RIC_FILES = ("package.json", "bin", "dist")


@pytest.fixture(scope="session")
def aws_lambda_ric(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npm install aws-lambda-ric``, trimmed to what runs (cached across runs).

    Its preinstall script compiles aws-lambda-cpp and libcurl from source (autotools,
    cmake, g++; about 4 minutes here), so the built package is cached under the temp
    root. What a function needs of it is ``bin/``, ``dist/`` (with the
    ``rapid-client.node`` addon, linked only against libc/libstdc++) and ``package.json``.
    """
    cache = Path(os.environ.get("HEARTH_TEST_CACHE", "/tmp/hearth-test-cache")) / "aws-lambda-ric"
    if (cache / "dist" / "rapid-client.node").is_file():
        return cache
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot fetch aws-lambda-ric")
    missing = [
        t
        for t in ("autoreconf", "automake", "libtool", "make", "cmake", "g++")
        if shutil.which(t) is None
    ]
    if missing:
        # Without autotools, `npm install aws-lambda-ric` fails in scripts/preinstall.sh:
        # curl's ./buildconf says "exec: autoreconf: not found" (npm error code 127).
        pytest.skip(
            "aws-lambda-ric cannot be built here: its preinstall script compiles"
            " aws-lambda-cpp and libcurl from source with autotools, and this host lacks"
            f" {', '.join(missing)} (Debian: apt-get install autoconf automake libtool)"
        )
    tmp = tmp_path_factory.mktemp("npm-ric")
    res = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(tmp), "aws-lambda-ric"],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    built = tmp / "node_modules" / "aws-lambda-ric"
    if res.returncode != 0 or not (built / "dist" / "rapid-client.node").is_file():
        tail = " | ".join(res.stderr.strip().splitlines()[-4:])
        pytest.skip(f"npm install aws-lambda-ric failed to build its native addon: {tail}")
    staging = tmp / "trimmed"
    staging.mkdir()
    for name in _RIC_FILES:
        src = built / name
        if src.is_dir():
            shutil.copytree(src, staging / name)
        else:
            shutil.copy2(src, staging / name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    if not cache.exists():
        os.replace(staging, cache)
    return cache


def test_aws_lambda_ric_from_npm(lam: Any, logs: Any, create: Any, aws_lambda_ric: Path) -> None:
    """Node's official runtime interface client, unmodified, as a custom runtime."""
    files: dict[str, str | bytes] = {}
    for p in sorted(aws_lambda_ric.rglob("*")):
        if p.is_file():
            files[f"node_modules/aws-lambda-ric/{p.relative_to(aws_lambda_ric)}"] = p.read_bytes()
    files["index.js"] = CJS
    files["bootstrap"] = (
        "#!/bin/sh\nexec /usr/bin/node /var/task/node_modules/aws-lambda-ric/bin/index.mjs"
        " index.handler\n"
    )
    modes = {"bootstrap": 0o755}
    name = create(files, modes=modes, runtime="provided.al2023", MemorySize=256, Timeout=9)
    resp, body = invoke_json(lam, name, {"k": 1})
    assert "FunctionError" not in resp, body
    assert body["event"] == {"k": 1}
    assert body["awsRequestId"] == resp["ResponseMetadata"]["RequestId"]
    assert body["functionName"] == name and body["functionVersion"] == "$LATEST"
    assert body["invokedFunctionArn"].endswith(f":function:{name}")
    assert body["memoryLimitInMB"] == "256"
    assert body["logGroupName"] == f"/aws/lambda/{name}"
    assert 0 < body["remaining"] <= 9000 and body["waits"] is True
    _, again = invoke_json(lam, name, {})
    assert again["calls"] == 2 and again["initAt"] == body["initAt"]
    resp, err = invoke_json(lam, name, {"fail": True})
    check_error(resp, err, "TypeError")
    rid = body["awsRequestId"]
    messages = wait_for_log(logs, f"/aws/lambda/{name}", f"REPORT RequestId: {rid}")
    assert any(f"\t{rid}\tINFO\tcjs handling {rid}" in m for m in messages), messages
    # The client writes to the framed log channel it finds in _LAMBDA_TELEMETRY_LOG_FD:
    # a multi-line console call is one event.
    assert any(m.endswith(f"\t{rid}\tERROR\tmulti\nline\n") for m in messages), messages


OVERSIZED = """
let calls = 0;
exports.handler = async (event) => {
  calls += 1;
  return event.big ? 'x'.repeat(event.big) : { calls };
};
"""


@pytest.mark.parametrize("size", [6_400_000, 8_000_000])
def test_oversized_result_then_next_invocation(lam: Any, create: Any, size: int) -> None:
    # The runtime pipelines GET invocation/next behind its result POST. Past 6 MB the
    # result is refused (413); past the endpoint's body cap the server also closes the
    # connection, and the pipelined GET must then be sent again on a new one.
    name = create({"index.js": OVERSIZED}, MemorySize=512, Timeout=9)
    resp, body = invoke_json(lam, name, {})
    assert body == {"calls": 1}
    resp, err = invoke_json(lam, name, {"big": size})
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == "Function.ResponseSizeTooLarge"
    resp, body = invoke_json(lam, name, {})
    assert "FunctionError" not in resp, body
    assert body == {"calls": 3}  # the same environment went on serving


#: How long before the handler ran its sandbox's PID 1 (this node process) was forked,
#: from /proc (starttime in clock ticks since boot, USER_HZ 100 on Linux) and /proc/uptime.
PID1_AGE = """
const fs = require('fs');
exports.handler = async (event) => {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const started = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) / 100;
  const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return {age: uptime - started, pid: process.pid, uid: process.getuid(), event};
};
"""


def test_cold_start_from_a_spare(lam: Any, create: Any) -> None:
    """A cold start of a node function takes a spare sandbox made ahead (see
    hearth.sandbox.stems): its PID 1 existed before the function was even created, and it
    answers as any other start does."""
    first = create({"index.js": PID1_AGE})
    resp, body = invoke_json(lam, first, {"n": 0})  # makes the pool of its key if none
    assert "FunctionError" not in resp, body
    for attempt in range(3):
        time.sleep(2.0)  # the pool is filled by now
        name = create({"index.js": PID1_AGE})
        resp, body = invoke_json(lam, name, {"n": attempt})
        assert "FunctionError" not in resp, body
        assert body["event"] == {"n": attempt} and body["pid"] == 1 and body["uid"] != 0
        if body["age"] > 1.0:  # forked before this function existed: a spare
            return
    pytest.fail(f"no cold start took a spare: PID 1 was {body['age']:.2f} s old")
