"""The fork path: Python environments forked from a per-runtime zygote behave like exec'd ones."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROLE, invoke_json
from tests.helpers import make_zip, start_server

KSM_RUN = Path("/sys/kernel/mm/ksm/run")

PROBE = """
import os, sys, random
FORKED = "decimal" in sys.modules  # pre-loaded by the zygote only, never by the bootstrap
R = random.random()
def merge_any():  # PR_GET_MEMORY_MERGE (Linux 6.4+): -1 where unknown
    import ctypes
    return ctypes.CDLL(None, use_errno=True).prctl(68, 0, 0, 0, 0)
def handler(event, context):
    import email.mime.text, encodings.idna, sqlite3, zoneinfo  # lazily, from the sandbox's stdlib
    try:
        open("/var/task/x", "w")
        writable = True
    except OSError:
        writable = False
    return {
        "forked": FORKED, "r": R, "pid": os.getpid(), "uid": os.getuid(), "cwd": os.getcwd(),
        "exe": sys.executable, "argv": sys.argv, "path": sys.path, "task_writable": writable,
        "name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"), "tz": os.environ.get("TZ"),
        "host_paths": [p for p in sys.path if "pyenv" in p or "/work/" in p],
        "merge_any": merge_any(),
    }
"""


def test_forked_environments_are_isolated_and_complete(lam: Any, make_function: Any) -> None:
    make_function(PROBE, name="zygote-probe")
    seen = []
    deadline = time.monotonic() + 60
    while len([s for s in seen if s["forked"]]) < 3:
        assert time.monotonic() < deadline, "no environment was forked from a zygote"
        lam.update_function_configuration(FunctionName="zygote-probe", Description=str(len(seen)))
        resp, body = invoke_json(lam, "zygote-probe")
        assert "FunctionError" not in resp, body
        seen.append(body)
    forked = [s for s in seen if s["forked"]]
    for body in forked:
        assert body["pid"] == 1 and body["uid"] != 0 and body["cwd"] == "/var/task"
        assert body["exe"].startswith("/var/lang/bin/python3.11")
        assert body["argv"] == ["/var/runtime/bootstrap.py"]
        assert body["path"][0] == "/var/task" and body["host_paths"] == []
        assert body["task_writable"] is False
        assert body["name"] == "zygote-probe" and body["tz"] == ":UTC"
        assert body["merge_any"] in (0, -1)  # memory merging is off by default
    # Each fork re-seeds its randomness: no two environments share a random stream.
    assert len({b["r"] for b in forked}) == len(forked)


IMMORTAL_PROBE = """
import gc, json, os, random, sys
FORKED = "decimal" in sys.modules
R = random.random()
def handler(event, context):
    if event.get("exit"):  # a normal interpreter exit (finalization) with zygote objects
        del sys.modules["decimal"], json.dumps
        sys.exit(event["exit"])
    s = "".join(["x", str(os.getpid())])
    s += "y"  # in-place concatenation of a new (mortal) string
    import ctypes, subprocess
    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    os.environ["HEARTH_SET"] = "1"
    del os.environ["AWS_REGION"]
    seen_by_child = subprocess.run(["/usr/bin/env"], capture_output=True, text=True).stdout
    return {
        "environ": sorted(f"{k}={v}" for k, v in os.environ.items()),
        "child_environ": sorted(seen_by_child.splitlines()),
        "c_tz": getenv(b"TZ").decode(), "c_name": getenv(b"AWS_LAMBDA_FUNCTION_NAME").decode(),
        "forked": FORKED, "r": R, "gc": gc.isenabled(), "s": s,
        "json_refs": sys.getrefcount(json), "new_refs": sys.getrefcount(s),
    }
"""


@pytest.mark.parametrize(
    "runtime", ["python3.9", "python3.10", "python3.11", "python3.12", "python3.13"]
)
def test_forked_environments_on_immortal_objects(
    lam: Any, make_function: Any, runtime: str
) -> None:
    """3.12+: the zygote's objects are immortal in its sandboxes (their reference counts are
    not written, see _zygote_main.immortalize); the function's own objects are counted, the
    collector runs, randomness differs per environment and the interpreter exits cleanly."""
    name = f"zyg-imm-{runtime.replace('.', '')}"
    try:
        make_function(IMMORTAL_PROBE, name=name, runtime=runtime)
    except Exception as exc:  # the host may lack this interpreter
        if "runtime" in str(exc).lower():
            pytest.skip(f"{runtime}: {exc}")
        raise
    forked = []
    deadline = time.monotonic() + 60
    while len(forked) < 2:
        assert time.monotonic() < deadline, "no environment was forked from a zygote"
        lam.update_function_configuration(FunctionName=name, Description=str(len(forked)))
        resp, body = invoke_json(lam, name)
        assert "FunctionError" not in resp, body
        if body["forked"]:
            forked.append(body)
    for body in forked:
        # the process's environment is the function's, in os.environ and the C environ
        assert body["environ"] == body["child_environ"] and "HEARTH_SET=1" in body["environ"]
        assert not [e for e in body["environ"] if e.startswith(("AWS_REGION=", "LC_CTYPE="))]
        assert body["c_tz"] == ":UTC" and body["c_name"] == name
        assert body["gc"] is True and body["s"].endswith("y")
        assert body["new_refs"] < 100
        assert (body["json_refs"] >= 2**31) is (runtime in ("python3.12", "python3.13"))
    assert forked[0]["r"] != forked[1]["r"]
    resp, body = invoke_json(lam, name, {"exit": 3})
    assert body["errorType"] == "Runtime.ExitError" and "exit status 3" in body["errorMessage"]


def test_functions_shipping_shared_libraries_start_by_exec(lam: Any, make_function: Any) -> None:
    """LD_LIBRARY_PATH (``/var/task/lib``) is read at process start: such functions exec."""
    make_function({"app.py": PROBE, "lib/README": "libraries for LD_LIBRARY_PATH"}, name="zyg-lib")
    for i in range(4):
        lam.update_function_configuration(FunctionName="zyg-lib", Description=str(i))
        resp, body = invoke_json(lam, "zyg-lib")
        assert "FunctionError" not in resp, body
        assert body["forked"] is False
        time.sleep(0.3)


@pytest.mark.skipif(not KSM_RUN.exists(), reason="no KSM in this kernel")
def test_memory_merge_opts_forked_sandboxes_in(tmp_path: Path) -> None:
    """``--memory-merge``: the zygote's PR_SET_MEMORY_MERGE reaches its sandboxes, ksmd runs."""
    saved = KSM_RUN.read_text()
    srv = start_server(tmp_path / "data", ["--no-egress", "--memory-merge"])
    try:
        lam = srv.client("lambda")
        lam.create_function(
            FunctionName="zyg-merge", Runtime="python3.11", Handler="app.handler", Role=ROLE,
            Code={"ZipFile": make_zip({"app.py": PROBE})},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "no environment was forked from a zygote"
            resp, body = invoke_json(lam, "zyg-merge")
            assert "FunctionError" not in resp, body
            if body["forked"]:
                break
            lam.update_function_configuration(
                FunctionName="zyg-merge", Description=str(time.time())
            )
        if body["merge_any"] == -1:
            pytest.skip("no PR_SET_MEMORY_MERGE (Linux < 6.4)")
        assert body["merge_any"] == 1
        assert KSM_RUN.read_text().strip() == "1"
    finally:
        srv.stop()
        KSM_RUN.write_text(saved.strip())


HASH_PROBE = """
import sys
FORKED = "decimal" in sys.modules  # pre-loaded by the zygote only
def handler(event, context):
    return {"forked": FORKED, "hash": hash("hearth-hash-secret-probe")}
"""


def test_accounts_never_share_a_zygote(tmp_path: Path) -> None:
    """A forked sandbox inherits its zygote's ``str`` hash secret (fixed at interpreter
    start): one account's functions share it, another account's never do."""
    keys = "ka:sa:111111111111,kb:sb:222222222222"
    srv = start_server(tmp_path / "data", ["--no-egress"], env={"HEARTH_ACCESS_KEYS": keys})
    try:
        hashes: dict[str, set[int]] = {}
        for key, secret in (("ka", "sa"), ("kb", "sb")):
            lam = srv.client("lambda", key=key, secret=secret)
            forked: list[int] = []
            deadline = time.monotonic() + 60
            i = 0
            while len(forked) < 2:  # two environments forked from the account's zygote
                assert time.monotonic() < deadline, "no environment was forked from a zygote"
                name = f"hash-{key}-{i}"
                lam.create_function(
                    FunctionName=name,
                    Runtime="python3.11",
                    Role=ROLE,
                    Handler="app.handler",
                    Code={"ZipFile": make_zip({"app.py": HASH_PROBE})},
                )
                resp, body = invoke_json(lam, name)
                assert "FunctionError" not in resp, body
                if body["forked"]:
                    forked.append(body["hash"])
                i += 1
            hashes[key] = set(forked)
        assert len(hashes["ka"]) == 1  # the same zygote: forks of it share its secret
        assert len(hashes["kb"]) == 1
        assert hashes["ka"] != hashes["kb"]  # ... and each account has a zygote of its own
    finally:
        srv.stop()
