"""SnapStart: environments of a published version forked from one initialized template."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE, invoke_json
from tests.helpers import ServerProcess

SNAP = {"SnapStart": {"ApplyOn": "PublishedVersions"}}

CODE = """
import os, random, time
from snapshot_restore_py import register_before_snapshot, register_after_restore

INIT = {"rand": random.random(), "count": 0, "type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
INIT["count"] += 1
print("INIT RAN", INIT["rand"], flush=True)
HOOKS = []

@register_before_snapshot
def first_registered():
    HOOKS.append("before-1")

def second_registered():
    HOOKS.append("before-2")

register_before_snapshot(second_registered)

@register_after_restore
def restored():
    HOOKS.append(("after", random.random()))

def _try(call):
    try:
        call()
        return "allowed"
    except OSError as exc:
        return exc.errno

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    name = event.get("write")
    if name:
        open("/tmp/" + name, "w").write("x")
    status = open("/proc/self/status").read()
    return {
        "init": INIT,
        "hooks": HOOKS,
        "rand": random.random(),
        "type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        "tmp": sorted(os.listdir("/tmp")),
        "uid": os.getuid(),
        "cap_eff": status.split("CapEff:")[1].split()[0],
        "cap_bnd": status.split("CapBnd:")[1].split()[0],
        "unshare": _try(lambda: os.unshare(os.CLONE_NEWUSER)),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "hostname": os.uname().nodename,
        "cgroup": open("/proc/self/cgroup").read(),
    }
"""


def _tails(server: ServerProcess, name: str, qualifier: str, n: int) -> list[Any]:
    """``n`` concurrent invokes that each hold an environment for a second."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        client = server.client("lambda")
        barrier.wait()
        resp = client.invoke(
            FunctionName=name, Qualifier=qualifier, LogType="Tail",
            Payload=json.dumps({"sleep": 1.0, "write": f"env{i}"}),
        )  # fmt: skip
        results[i] = (
            json.loads(resp["Payload"].read()),
            base64.b64decode(resp["LogResult"]).decode(),
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def _log_messages(logs: Any, group: str, want: str, count: int) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        found = [e["message"] for e in events if want in e["message"]]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_configuration_shapes(lam: Any, make_function: Any) -> None:
    fn = make_function(CODE, runtime="python3.12", **SNAP)
    name = fn["FunctionName"]
    assert fn["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
    v1 = lam.publish_version(FunctionName=name)
    assert v1["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    got = lam.get_function_configuration(FunctionName=name, Qualifier=v1["Version"])
    assert got["SnapStart"]["OptimizationStatus"] == "On"
    latest = lam.get_function(FunctionName=name)["Configuration"]
    assert latest["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
    off = lam.update_function_configuration(FunctionName=name, SnapStart={"ApplyOn": "None"})
    assert off["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    plain = make_function(runtime="python3.12")
    assert plain["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}


def test_bad_settings_are_refused(lam: Any, make_function: Any) -> None:
    with pytest.raises(ClientError) as exc:
        make_function(CODE, runtime="python3.11", **SNAP)
    err = exc.value.response["Error"]
    assert err["Code"] == "InvalidParameterValueException"
    assert err["Message"] == "python3.11 is not supported for SnapStart enabled functions."
    with pytest.raises(ClientError) as exc:
        make_function(CODE, runtime="python3.12", SnapStart={"ApplyOn": "Always"})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "snapStart.applyOn" in exc.value.response["Error"]["Message"]
    fn = make_function(CODE, runtime="python3.11")
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=fn["FunctionName"], **SNAP)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_environments_are_forked_from_one_init(
    server: ServerProcess, lam: Any, logs: Any, make_function: Any
) -> None:
    fn = make_function(CODE, runtime="python3.12", Timeout=30, **SNAP)
    name = fn["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    results = _tails(server, name, version, 3)
    bodies = [body for body, _ in results]
    # Init ran once, in the template: every environment shows its value and count.
    assert len({json.dumps(b["init"]) for b in bodies}) == 1
    assert bodies[0]["init"]["count"] == 1
    assert bodies[0]["init"]["type"] == "snap-start"
    assert all(b["type"] == "snap-start" for b in bodies)
    # before-snapshot hooks in reverse registration order, once; after-restore in each.
    for b in bodies:
        assert b["hooks"][:2] == ["before-2", "before-1"]
        assert len(b["hooks"]) == 3 and b["hooks"][2][0] == "after"
    assert len({b["hooks"][2][1] for b in bodies}) == 3  # randomness reseeded per env
    assert len({b["rand"] for b in bodies}) == 3
    # Lambda: no log stream name in SnapStart functions.
    assert all(b["stream"] is None for b in bodies)
    # Each environment is isolated from the template and from the others.
    for i, b in enumerate(bodies):
        assert b["tmp"] == [f"env{i}"]
        assert b["uid"] != 0
        assert b["cap_eff"] == "0000000000000000" and b["cap_bnd"] == "0000000000000000"
        assert b["unshare"] == 1  # EPERM: the ordinary seccomp filter
        assert b["pids"] == [1]
    # REPORT of a restored environment: Restore Duration, no Init Duration.
    for _, tail in results:
        report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
        assert "Restore Duration: " in report and "Billed Restore Duration: " in report
        assert "Init Duration" not in report
    group = f"/aws/lambda/{name}"
    assert len(_log_messages(logs, group, "INIT RAN", 1)) == 1
    assert len(_log_messages(logs, group, "INIT_REPORT Init Duration", 1)) == 1
    # A warm invoke reuses an environment: no restore in its REPORT.
    resp = lam.invoke(FunctionName=name, Qualifier=version, LogType="Tail", Payload=b"{}")
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "Restore Duration" not in tail
    assert len(_log_messages(logs, group, "INIT RAN", 2)) == 1


def test_publishing_initializes_the_template(lam: Any, logs: Any, make_function: Any) -> None:
    name = make_function(CODE, runtime="python3.12", **SNAP)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    # Init runs when the version is published, before any invoke (as on Lambda).
    assert len(_log_messages(logs, f"/aws/lambda/{name}", "INIT_REPORT", 1)) == 1
    time.sleep(1)  # the template forks its spares ahead
    resp, body = invoke_json(lam, name, Qualifier=version, LogType="Tail")
    assert body["type"] == "snap-start"
    assert "Restore Duration" in base64.b64decode(resp["LogResult"]).decode()
    assert "-sp" in body["cgroup"], "a new environment takes a spare forked ahead"
    assert body["hooks"][2][0] == "after" and body["pids"] == [1]


def test_latest_runs_init_as_usual(lam: Any, make_function: Any) -> None:
    name = make_function(CODE, runtime="python3.12", **SNAP)["FunctionName"]
    resp, body = invoke_json(lam, name, LogType="Tail")
    assert body["type"] == "on-demand" and body["init"]["type"] == "on-demand"
    assert body["hooks"] == []  # hooks are registered, never run without SnapStart
    assert "Init Duration" in base64.b64decode(resp["LogResult"]).decode()


FAILING_RESTORE = """
from snapshot_restore_py import register_after_restore
def boom():
    raise RuntimeError("cannot reconnect")
register_after_restore(boom)
def handler(event, context):
    return "unreachable"
"""

FAILING_INIT = """
raise ValueError("init is broken")
def handler(event, context):
    return "unreachable"
"""


def test_failed_after_restore_hook_is_snapstart_exception(
    lam: Any, logs: Any, make_function: Any
) -> None:
    name = make_function(FAILING_RESTORE, runtime="python3.12", **SNAP)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    with pytest.raises(lam.exceptions.SnapStartException) as exc:
        lam.invoke(FunctionName=name, Qualifier=version, Payload=b"{}")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    found = _log_messages(logs, f"/aws/lambda/{name}", "cannot reconnect", 1)
    assert found, "the hook's error is logged"
    ok = make_function(runtime="python3.12")["FunctionName"]
    assert invoke_json(lam, ok, {"k": 1})[1]["event"] == {"k": 1}  # still serving


def test_failed_init_falls_back_to_the_usual_init_error(lam: Any, make_function: Any) -> None:
    name = make_function(FAILING_INIT, runtime="python3.12", **SNAP)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    resp, body = invoke_json(lam, name, Qualifier=version)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "init is broken"


def test_latest_uses_templates_behind_the_hearth_setting(tmp_path: Any) -> None:
    from tests.helpers import make_zip, start_server

    srv = start_server(tmp_path / "data", ["--no-egress"], env={"HEARTH_SNAPSTART_LATEST": "1"})
    try:
        lam = srv.client("lambda")
        lam.create_function(
            FunctionName="latest-snap", Runtime="python3.13", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": CODE})}, **SNAP,
        )  # fmt: skip
        resp, body = invoke_json(lam, "latest-snap", LogType="Tail")
        assert body["type"] == "snap-start" and body["hooks"][2][0] == "after"
        assert "Restore Duration" in base64.b64decode(resp["LogResult"]).decode()
        # A configuration change is a new snapshot: a new template, Init again.
        lam.update_function_configuration(FunctionName="latest-snap", Description="v2")
        body2 = invoke_json(lam, "latest-snap")[1]
        assert body2["init"]["rand"] != body["init"]["rand"]
        # The old snapshot's template is gone once its environments are.
        deadline = time.monotonic() + 10
        while "SnapStart template of latest-snap:$LATEST removed" not in srv.log_path.read_text():
            assert time.monotonic() < deadline, "the retired template was not removed"
            time.sleep(0.2)
        lam.delete_function(FunctionName="latest-snap")
        deadline = time.monotonic() + 10
        while srv.log_path.read_text().count("template of latest-snap:$LATEST removed") < 2:
            assert time.monotonic() < deadline, "the template of a deleted function stays"
            time.sleep(0.2)
    finally:
        srv.stop()


def _template_pids(function_name: str) -> list[int]:
    from tests.helpers import hearth_cgroups

    pids: set[int] = set()
    for path in hearth_cgroups():
        if "-tpl-" not in path:
            continue
        with contextlib.suppress(OSError):
            for line in Path(f"{path}/cgroup.procs").read_text().split():
                pid = int(line)
                with contextlib.suppress(OSError):
                    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                    if f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode() in environ:
                        pids.add(pid)
    # A child the template is forking sits in the template's cgroup until it joins its
    # own: only processes whose parent is not one of them are templates.
    return sorted(pid for pid in pids if _ppid(pid) not in pids)


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_a_dead_template_is_replaced(lam: Any, make_function: Any) -> None:
    name = make_function(CODE, runtime="python3.12", **SNAP)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    first = invoke_json(lam, name, Qualifier=version)[1]
    pids = _template_pids(name)
    assert pids, "the template runs in a cgroup of its own"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # its environments die with it (nested pid namespaces)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # the worker notices its environment's exit
    resp, second = invoke_json(lam, name, Qualifier=version)
    assert "FunctionError" not in resp
    assert second["type"] == "snap-start"
    assert second["init"]["rand"] != first["init"]["rand"]  # a new template ran Init


def _freezer_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            return Path(f"/sys/fs/cgroup/freezer{path}/freezer.state").read_text().strip()
        if controllers == "":  # cgroup v2
            events = Path(f"/sys/fs/cgroup{path}/cgroup.events").read_text()
            return "FROZEN" if "frozen 1" in events else "THAWED"
    raise AssertionError("no freezer cgroup")


def test_an_idle_template_is_frozen_and_still_forks(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    name = make_function(CODE, runtime="python3.12", Timeout=30, **SNAP)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    invoke_json(lam, name, Qualifier=version)
    (pid,) = _template_pids(name)
    deadline = time.monotonic() + 10
    while _freezer_state(pid) != "FROZEN":
        assert time.monotonic() < deadline, "the idle template was not frozen"
        time.sleep(0.1)
    # Two at once: the warm environment takes one, a new fork of the frozen template the other.
    bodies = [b for b, _ in _tails(server, name, version, 2)]
    assert all(b["type"] == "snap-start" for b in bodies)
    assert len({json.dumps(b["hooks"]) for b in bodies}) == 2


SNAP_LOGS = """
import logging

def handler(event, context):
    logging.error("snap\\nrecord")
    raise Exception("snap boom")
"""


def test_restored_environment_logs_through_its_own_framed_channel(
    lam: Any, logs: Any, make_function: Any
) -> None:
    """A forked environment gets a framed log channel of its own with the fork request
    (the template has none): a record and an uncaught error are one event each."""
    name = make_function(SNAP_LOGS, runtime="python3.12", **SNAP)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    resp = lam.invoke(FunctionName=name, Qualifier=version, LogType="Tail", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "Restore Duration" in tail
    group = f"/aws/lambda/{name}"
    (error,) = _log_messages(logs, group, "[ERROR] Exception: snap boom", 1)
    assert "\nTraceback (most recent call last):\n" in error
    assert error.endswith('raise Exception("snap boom")')
    (record,) = _log_messages(logs, group, "snap\nrecord", 1)
    assert record.startswith("[ERROR]\t") and record.endswith("\tsnap\nrecord\n")
    assert _log_messages(logs, group, "Traceback", 1) == [error]
