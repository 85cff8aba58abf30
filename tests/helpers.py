"""Helpers shared by the test tiers: a real ``hearth server`` process, zips, clients."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_zip(files: Mapping[str, str | bytes], modes: Mapping[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = ((modes or {}).get(name, 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


@dataclass
class ServerProcess:
    endpoint: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    args: list[str]
    env: dict[str, str]

    def client(self, service: str = "lambda", **kw: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=kw.pop("region_name", "us-east-1"),
            aws_access_key_id=kw.pop("key", "test"),
            aws_secret_access_key=kw.pop("secret", "test"),
            config=Config(retries={"max_attempts": 1}, read_timeout=120, **kw),
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def restart(self) -> ServerProcess:
        return start_server(self.data_dir, self.args, port=self.port, env=self.env)


def start_server(
    data_dir: Path,
    extra_args: list[str] | None = None,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
    nofile: int | None = None,
) -> ServerProcess:
    port = port or free_port()
    args = list(extra_args or [])
    full_env = dict(os.environ)
    full_env.update(env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"server-{port}-{int(time.time() * 1000)}.log"
    logf = open(log_path, "wb")  # noqa: SIM115 - owned by the process for its lifetime
    cmd = [
        sys.executable,
        "-m",
        "hearth",
        "server",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]

    def limit_files() -> None:  # in the child only: ``nofile`` as its soft and hard limit
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(
        cmd + args,
        stdout=logf,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=REPO,
        preexec_fn=limit_files if nofile is not None else None,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(endpoint + "/_hearth/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start: {log_path.read_text(errors='replace')}")
        time.sleep(0.1)
    return ServerProcess(endpoint, port, data_dir, proc, log_path, args, env or {})


#: The cgroup subtree of the servers this test run starts (HEARTH_CGROUP_ROOT, set by
#: tests/conftest.py): one per run, so that runs sharing a machine never see each other's.
CGROUP_ROOT = os.environ.setdefault("HEARTH_CGROUP_ROOT", f"hearth-test-{os.getpid()}")


def hearth_cgroups() -> list[str]:
    """Sandbox cgroups of this test run's servers that exist now (v1 controllers and v2)."""
    found: list[str] = []
    for root in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_ROOT}"):
        found.extend(str(p) for p in root.iterdir() if p.is_dir())
    v2 = Path(f"/sys/fs/cgroup/{CGROUP_ROOT}")
    if v2.is_dir():
        found.extend(str(p) for p in v2.iterdir() if p.is_dir())
    return found


def sandbox_mounts(marker: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if marker in line]


def invoke_at_once(lam: Any, name: str, payloads: list[bytes], timeout: float = 120) -> list[Any]:
    """Invoke ``name`` once per payload, all released at the same moment from threads of
    their own (``lam`` needs ``max_pool_connections`` >= len(payloads) to send them at
    once); each result is the decoded payload or the ClientError."""
    from botocore.exceptions import ClientError

    results: list[Any] = [None] * len(payloads)
    barrier = threading.Barrier(len(payloads))

    def one(i: int) -> None:
        barrier.wait()
        try:
            resp = lam.invoke(FunctionName=name, Payload=payloads[i])
            results[i] = json.loads(resp["Payload"].read())
        except ClientError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results
