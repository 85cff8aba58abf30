"""Real attempts to escape, from inside functions."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
from typing import Any

from tests.conftest import invoke_json

PROBE = r"""
import ctypes, errno, json, os, socket

def try_(fn):
    try:
        return "ok:%s" % (fn(),)
    except Exception as e:
        return "%s:%s" % (type(e).__name__, getattr(e, "errno", ""))

def connect(host, port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        return "connected"
    finally:
        s.close()

def write_task():
    with open("/var/task/new.txt", "w") as f:
        f.write("x")

def libc_call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    rc = getattr(libc, name)(*args)
    return "rc=%d errno=%d" % (rc, ctypes.get_errno())

def handler(event, context):
    action = event["action"]
    if action == "write_tmp":
        with open("/tmp/secret.txt", "w") as f:
            f.write(event["secret"])
        return "written"
    if action == "find_secret":
        found = []
        for root, dirs, files in os.walk("/", onerror=lambda e: None):
            if root.startswith(("/proc", "/sys", "/dev", "/usr", "/lib", "/etc", "/var/lang")):
                dirs[:] = []
                continue
            for f in files:
                if f == "secret.txt":
                    found.append(os.path.join(root, f))
        return found
    if action == "procs":
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        cmds = []
        for p in pids:
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmds.append(f.read().replace(b"\0", b" ").decode())
            except OSError:
                pass
        return {"pids": pids, "cmds": cmds, "me": os.getpid()}
    if action == "basics":
        status = open("/proc/self/status").read()
        fields = dict(l.split(":\t", 1) for l in status.splitlines() if ":\t" in l)
        return {
            "uid": os.getuid(), "gid": os.getgid(),
            "capeff": fields["CapEff"].strip(), "seccomp": fields["Seccomp"].strip(),
            "no_new_privs": fields.get("NoNewPrivs", "").strip(),
            "write_task": try_(write_task),
            "write_root": try_(lambda: open("/evil", "w")),
            "mount": libc_call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
            "unshare": libc_call("unshare", 0x20000),
            "hostname": socket.gethostname(),
            "home_visible": try_(lambda: os.listdir("/root")).startswith("ok"),
            "work_visible": os.path.exists("/work"),
        }
    if action == "connect":
        return {f"{h}:{p}": try_(lambda: connect(h, p)) for h, p in event["targets"]}
    if action == "alloc":
        blocks = []
        for _ in range(event["mb"]):
            blocks.append(bytearray(1024 * 1024))
        return len(blocks)
    if action == "forkbomb":
        n = 0
        errs = 0
        children = []
        for _ in range(5000):
            try:
                pid = os.fork()
            except OSError:
                errs += 1
                if errs > 50:
                    break
                continue
            if pid == 0:
                import time
                time.sleep(30)
                os._exit(0)
            children.append(pid)
            n += 1
        for c in children:
            try:
                os.kill(c, 9)
                os.waitpid(c, 0)
            except OSError:
                pass
        return {"forked": n, "errors": errs}
    if action == "fill_tmp":
        written = 0
        chunk = b"\xab" * (1024 * 1024)
        try:
            with open("/tmp/fill.bin", "wb") as f:
                while True:
                    f.write(chunk)
                    written += len(chunk)
                    f.flush()
        except OSError as e:
            err = errno.errorcode.get(e.errno, str(e.errno))
        os.unlink("/tmp/fill.bin")
        return {"written": written, "error": err}
    if action == "ping":
        return "pong"
"""


def test_cannot_read_other_functions_tmp(lam: Any, make_function: Any) -> None:
    a = make_function(PROBE, name="iso-a", Timeout=30)
    b = make_function(PROBE, name="iso-b", Timeout=30)
    _, r = invoke_json(lam, a["FunctionName"], {"action": "write_tmp", "secret": "s3cr3t"})
    assert r == "written"
    _, found_a = invoke_json(lam, a["FunctionName"], {"action": "find_secret"})
    assert found_a == ["/tmp/secret.txt"]  # the writer sees its own file
    _, found_b = invoke_json(lam, b["FunctionName"], {"action": "find_secret"})
    assert found_b == []


def test_cannot_see_host_processes(lam: Any, make_function: Any) -> None:
    fn = make_function(PROBE, name="iso-procs")
    _, r = invoke_json(lam, fn["FunctionName"], {"action": "procs"})
    assert len(r["pids"]) < 10, r
    assert not any("hearth" in c and "server" in c for c in r["cmds"]), r["cmds"]
    assert str(os.getpid()) not in r["pids"] or len(r["pids"]) < 10


def test_privileges_and_filesystem(lam: Any, make_function: Any) -> None:
    fn = make_function(PROBE, name="iso-basics")
    _, r = invoke_json(lam, fn["FunctionName"], {"action": "basics"})
    assert r["uid"] != 0 and r["gid"] != 0
    assert int(r["capeff"], 16) == 0
    assert r["seccomp"] == "2"
    assert r["no_new_privs"] == "1"
    assert r["write_task"].startswith("OSError:") and r["write_task"].split(":")[1] in ("30", "13")
    assert r["write_root"].startswith("OSError:")
    assert "errno=1" in r["mount"] and "errno=1" in r["unshare"]
    assert r["work_visible"] is False  # the host's files beyond the system dirs are not there
    assert r["home_visible"] is False


def test_cannot_reach_host_loopback_or_api(server: Any, lam: Any, make_function: Any) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    host_port = listener.getsockname()[1]
    accepted: list[Any] = []

    def accept() -> None:
        listener.settimeout(8)
        with contextlib.suppress(OSError):
            accepted.append(listener.accept())

    t = threading.Thread(target=accept)
    t.start()
    fn = make_function(PROBE, name="iso-net")
    targets = [["127.0.0.1", server.port], ["127.0.0.1", host_port], ["127.0.0.1", 9001]]
    _, r = invoke_json(lam, fn["FunctionName"], {"action": "connect", "targets": targets})
    t.join()
    listener.close()
    assert r[f"127.0.0.1:{server.port}"] != "ok:connected"
    assert r[f"127.0.0.1:{host_port}"] != "ok:connected"
    assert accepted == []
    # Its own Runtime API is the only thing on its loopback.
    assert r["127.0.0.1:9001"] == "ok:connected"


def test_memory_limit_contained(lam: Any, make_function: Any) -> None:
    fn = make_function(PROBE, name="iso-oom", MemorySize=128)
    resp, body = invoke_json(lam, fn["FunctionName"], {"action": "alloc", "mb": 400})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] in ("Runtime.OutOfMemory", "Runtime.ExitError")
    assert "signal: killed" in body["errorMessage"]
    resp, body = invoke_json(lam, fn["FunctionName"], {"action": "ping"})
    assert "FunctionError" not in resp and body == "pong"


def test_fork_bomb_contained(lam: Any, make_function: Any) -> None:
    fn = make_function(PROBE, name="iso-fork", MemorySize=512, Timeout=60)
    resp, body = invoke_json(lam, fn["FunctionName"], {"action": "forkbomb"})
    if "FunctionError" not in resp:
        assert body["errors"] > 0 and body["forked"] < 1100
    resp, body = invoke_json(lam, fn["FunctionName"], {"action": "ping"})
    assert body == "pong"


def test_fill_tmp_hits_enospc(lam: Any, make_function: Any, tmp_path: Any) -> None:
    before = shutil.disk_usage(tmp_path).free
    fn = make_function(PROBE, name="iso-fill", EphemeralStorage={"Size": 512}, Timeout=120)
    resp, body = invoke_json(lam, fn["FunctionName"], {"action": "fill_tmp"})
    assert "FunctionError" not in resp, body
    assert body["error"] == "ENOSPC"
    assert 400 * 1024 * 1024 < body["written"] <= 512 * 1024 * 1024
    after = shutil.disk_usage(tmp_path).free
    assert before - after < 600 * 1024 * 1024
    resp, body = invoke_json(lam, fn["FunctionName"], {"action": "ping"})
    assert body == "pong"


def test_json_roundtrip_of_probe() -> None:
    # The probe source must stay valid Python for every runtime we test with.
    compile(PROBE, "probe", "exec")
    assert json.dumps({"ok": True})
