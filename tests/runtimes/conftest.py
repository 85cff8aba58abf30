"""A fake Lambda Runtime API and a harness that runs the Python bootstrap against it.

The bootstrap runs as a plain subprocess of each available interpreter (3.9 to 3.13) with
Lambda's environment, ``AWS_LAMBDA_RUNTIME_API`` pointing at :class:`FakeRuntimeAPI` and
``LAMBDA_TASK_ROOT`` at a temp dir holding the function code; no sandbox is needed.

The fake server is a threaded ``http.server`` speaking keep-alive HTTP/1.1. It hands out
the queued events on ``GET /next`` (then blocks, as Lambda does, until shut down), records
every result, error and init error with its headers, counts TCP connections, and snapshots
the runtime's stdout/stderr files at the moment each result arrives, which lets tests check
that log output was flushed before the result was posted.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

BOOTSTRAP = Path(__file__).resolve().parents[2] / "hearth" / "runtimes" / "python" / "bootstrap.py"
PREFIX = "/2018-06-01/runtime"
MINORS = (9, 10, 11, 12, 13)


def _find_interpreter(minor: int) -> str | None:
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    for root in filter(None, roots):
        hits = sorted(glob.glob(f"{root}/versions/3.{minor}.*/bin/python3.{minor}"))
        if hits:
            return hits[-1]
    return shutil.which(f"python3.{minor}")


INTERPRETERS = {minor: _find_interpreter(minor) for minor in MINORS}


@pytest.fixture(
    params=[
        pytest.param(
            minor,
            id=f"py3.{minor}",
            marks=pytest.mark.skipif(
                INTERPRETERS[minor] is None, reason=f"python3.{minor} not installed"
            ),
        )
        for minor in MINORS
    ]
)
def python(request: pytest.FixtureRequest) -> tuple[int, str]:
    """(minor version, interpreter path) for each available Python 3.9 to 3.13."""
    path = INTERPRETERS[request.param]
    assert path is not None
    return request.param, path


@dataclass
class Event:
    """One invocation the fake hands out on ``/next``."""

    payload: Any = None
    body: bytes | None = None  # raw body; overrides ``payload``
    request_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    deadline_in_ms: int = 30_000
    chunked: bool = False
    content_type: str | None = "application/json"

    def encoded(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.payload).encode()


@dataclass
class Posted:
    body: bytes
    headers: dict[str, str]
    stdout: str = ""
    stderr: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the runtime is killed mid-poll at teardown; resets are expected


class FakeRuntimeAPI:
    def __init__(
        self,
        events: list[Event],
        *,
        close_after_post: bool = False,
        max_response_bytes: int | None = None,
    ) -> None:
        for i, event in enumerate(events):
            if not event.request_id:
                event.request_id = f"req-{i:04d}-8476a536-e9f4-11e8-9739-2dfe598c3fcd"
        self.events = list(events)
        self.close_after_post = close_after_post
        self.max_response_bytes = max_response_bytes
        self.responses: dict[str, Posted] = {}
        self.errors: dict[str, Posted] = {}
        self.init_errors: list[Posted] = []
        self.rejected: list[str] = []
        self.connections = 0
        self.next_calls = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        port = self._server.server_address[1]
        return f"127.0.0.1:{port}"

    def _snapshot(self) -> tuple[str, str]:
        def read(path: Path | None) -> str:
            return path.read_text(errors="replace") if path and path.exists() else ""

        return read(self.stdout_path), read(self.stderr_path)

    def wait_results(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.responses) + len(self.errors) + len(self.rejected) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out: {len(self.responses)} responses, {len(self.errors)} errors,"
                        f" {len(self.init_errors)} init errors; stdout/stderr: {self._snapshot()}"
                    )
                self._cond.wait(left)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for the runtime")
                self._cond.wait(left)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def setup(self) -> None:
                super().setup()
                with api._cond:
                    api.connections += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b'{"status":"OK"}') -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404)
                    return
                with api._cond:
                    api.next_calls += 1
                    event = api.events.pop(0) if api.events else None
                    api._cond.notify_all()
                if event is None:  # like Lambda: park the poll until the environment ends
                    api._closing.wait()
                    self.close_connection = True
                    return
                body = event.encoded()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", event.request_id)
                deadline = int(time.time() * 1000) + event.deadline_in_ms
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:fn",
                )
                if event.content_type:
                    self.send_header("Content-Type", event.content_type)
                for name, value in event.headers.items():
                    self.send_header(name, value)
                if event.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 7):
                        piece = body[i : i + 7]
                        self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\nX-Trailer: y\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                out, err = api._snapshot()
                posted = Posted(body, headers, out, err)
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                with api._cond:
                    if parts == ["init", "error"]:
                        api.init_errors.append(posted)
                        status = 202
                    elif len(parts) == 3 and parts[0] == "invocation" and parts[2] == "response":
                        if (
                            api.max_response_bytes is not None
                            and len(body) > api.max_response_bytes
                        ):
                            api.rejected.append(parts[1])
                            status = 413
                        else:
                            api.responses[parts[1]] = posted
                            status = 202
                    elif len(parts) == 3 and parts[0] == "invocation" and parts[2] == "error":
                        api.errors[parts[1]] = posted
                        status = 202
                    else:
                        status = 404
                    api._cond.notify_all()
                self._reply(status)
                if api.close_after_post:
                    # Drop the keep-alive connection silently (no "Connection: close"), as an
                    # idle-timeout on the server side would.
                    self.close_connection = True

        return Handler


@dataclass
class Run:
    api: FakeRuntimeAPI
    proc: subprocess.Popen[bytes]
    task_root: Path
    stdout_path: Path
    stderr_path: Path
    returncode: int | None = None

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_exit(self, timeout: float = 15.0) -> int:
        self.returncode = self.proc.wait(timeout)
        return self.returncode


def lambda_env(minor: int, api: str, task_root: Path, handler: str) -> dict[str, str]:
    return {
        "AWS_LAMBDA_RUNTIME_API": api,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]abcdef",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python3.{minor}",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "USER_VAR": "from-user",
    }


@pytest.fixture
def runtime(python: tuple[int, str], tmp_path: Path) -> Iterator[Any]:
    """Start the bootstrap: ``runtime(files, handler, events, **options) -> Run``.

    ``files`` maps paths under the task root to source text. The process is killed and the
    fake server shut down at teardown.
    """
    minor, interpreter = python
    runs: list[Run] = []

    def start(
        files: dict[str, str],
        handler: str,
        events: list[Event] | None = None,
        env: dict[str, str] | None = None,
        frames: Path | None = None,
        **api_options: Any,
    ) -> Run:
        task_root = tmp_path / "task"
        for rel, source in files.items():
            path = task_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source)
        task_root.mkdir(exist_ok=True)
        api = FakeRuntimeAPI(events or [], **api_options)
        api.stdout_path = tmp_path / "stdout.log"
        api.stderr_path = tmp_path / "stderr.log"
        environ = lambda_env(minor, api.address, task_root, handler)
        environ.update(env or {})
        # ``frames``: a file as the framed log channel (_LAMBDA_TELEMETRY_LOG_FD)
        log_fd = os.open(frames, os.O_WRONLY | os.O_CREAT | os.O_APPEND) if frames else -1
        if frames:
            environ["_LAMBDA_TELEMETRY_LOG_FD"] = str(log_fd)
        with open(api.stdout_path, "wb") as out, open(api.stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    [interpreter, "-s", "-B", str(BOOTSTRAP)],
                    cwd=task_root,
                    env=environ,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(log_fd,) if frames else (),
                )
            finally:
                if frames:
                    os.close(log_fd)
        run = Run(api, proc, task_root, api.stdout_path, api.stderr_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(5)
        run.api.close()
