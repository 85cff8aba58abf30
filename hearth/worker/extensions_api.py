"""The Lambda Extensions API (``/2020-01-01/extension/...``), served per environment.

External extensions are the executables in ``/opt/extensions`` (from layers); Hearth's
launcher starts them in the background before the runtime. They talk to the same
``127.0.0.1:9001`` endpoint as the runtime; :meth:`ExtensionsHub.wrap` routes their
paths here and everything else to the Runtime API.

Lifecycle, as on Lambda:

1. **Init** ends when every expected extension (by name: an external extension registers
   under its file name) has registered and every registered one has called
   ``event/next``, and the runtime has called ``invocation/next``: the environment
   holds the runtime's first ``next`` in :meth:`wait_ready` until then. Registration
   closes at that point.
2. **Invoke**: each invocation is sent as an ``INVOKE`` event to the extensions that
   subscribed to it, when it is handed to the runtime. The caller gets its answer when
   the runtime responds; the environment takes the *next* invocation only when every
   extension has called ``event/next`` again (``wait_ready`` again).
3. **Shutdown**: subscribers get ``SHUTDOWN`` (``shutdownReason``, ``deadlineMs``); the
   environment waits until each has exited or called ``event/next`` once more, or the
   deadline (2 s for a spin-down), then kills the sandbox.

The launcher runs each extension in a subshell that reports its exit on
``POST /2020-01-01/extension/hearth/exited`` (Hearth's own path, not AWS's): Lambda's
supervisor sees extension processes end, the worker cannot see past the sandbox's exec.

Error answers follow AWS's runtime interface emulator: 403 with ``errorType``
``Extension.MissingExtensionIdentifier``, ``Extension.InvalidExtensionIdentifier``,
``Extension.UnknownExtensionIdentifier``, ``Extension.InvalidExtensionName``,
``Extension.RegistrationClosed``, ``Extension.InvalidExtensionState``,
``Extension.InvalidEventType``, ``Extension.MissingHeader``, ``InvalidRequestFormat``.

Every extension holds at most one undelivered event (an environment runs one invocation
at a time and waits for readiness before the next), so the queues are bounded by
construction; :data:`MAX_EXTENSIONS` (10, Lambda's limit) bounds their number.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from hearth.api.types import Request, Response
from hearth.runtimes.provided import with_extensions
from hearth.runtimes.registry import RuntimeLaunch
from hearth.sandbox.base import Mount

PREFIX = "/2020-01-01/extension/"
MAX_EXTENSIONS = 10
EVENTS = ("INVOKE", "SHUTDOWN")
SPINDOWN_GRACE = 2.0
FAILURE_GRACE = 0.3
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_JSON = [("Content-Type", "application/json")]
_ACCEPTED = Response(202, list(_JSON), b'{"status":"OK"}')

Handler = Callable[[Request], Awaitable[Response]]


def extensions_in(opt_dir: str | None) -> list[str]:
    """Names of the extensions the launcher will start from ``<opt_dir>/extensions``.

    The same rule as the launcher's ``[ -f ] && [ -x ]`` for the sandbox's
    unprivileged user: a regular file (symlinks followed) executable by others.
    """
    if not opt_dir:
        return []
    folder = os.path.join(opt_dir, "extensions")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        try:
            st = os.stat(os.path.join(folder, name))
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and st.st_mode & 0o001:
            found.append(name)
    return found


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, list(_JSON), body)


@dataclass(slots=True, eq=False)
class _Extension:
    id: str
    name: str
    events: frozenset[str]
    ready: bool = False
    """Waiting in (or about to call) ``event/next`` with nothing to do."""
    exited: bool = False
    pending: collections.deque[bytes] = field(default_factory=lambda: collections.deque(maxlen=2))
    waiter: asyncio.Future[bytes] | None = None


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    name: str
    version: str
    handler: str
    account_id: str


class ExtensionsHub:
    """The Extensions API state of one environment."""

    def __init__(
        self,
        expected: Sequence[str],
        info: FunctionInfo,
        on_fatal: Callable[[str, str], None],
    ) -> None:
        self.expected = frozenset(list(expected)[:MAX_EXTENSIONS])
        """Names of the external extensions the launcher starts (their file names)."""
        self._info = info
        self._on_fatal = on_fatal
        self._by_id: dict[str, _Extension] = {}
        self._closed = False
        self._deadline: float | None = None
        """Wall-clock deadline of the last INVOKE (bounds the extensions' post-processing)."""
        self._changed = asyncio.Event()

    # -- routing ----------------------------------------------------------------------
    def wrap(self, runtime_api: Handler) -> Handler:
        """One handler for the endpoint: extension paths here, the rest to the runtime."""

        async def handle(req: Request) -> Response:
            if req.path.startswith(PREFIX):
                return await self.handle(req)
            return await runtime_api(req)

        return handle

    async def handle(self, req: Request) -> Response:
        verb = req.path[len(PREFIX) :]
        routes: dict[str, tuple[str, Callable[[Request], Awaitable[Response]]]] = {
            "register": ("POST", self._register),
            "event/next": ("GET", self._next),
            "init/error": ("POST", self._init_error),
            "exit/error": ("POST", self._exit_error),
            "hearth/exited": ("POST", self._exited),
        }
        route = routes.get(verb)
        if route is None:
            return _error(404, "UnknownPath", f"Unknown path {req.path}")
        if req.method != route[0]:
            return _error(405, "MethodNotAllowed", f"{verb} takes {route[0]}")
        return await route[1](req)

    def _lookup(self, req: Request) -> _Extension | Response:
        ext_id = req.headers.get("lambda-extension-identifier", "")
        if not ext_id:
            return _error(
                403,
                "Extension.MissingExtensionIdentifier",
                "Missing Lambda-Extension-Identifier header",
            )
        if _UUID.fullmatch(ext_id) is None:
            return _error(
                403, "Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier"
            )
        ext = self._by_id.get(ext_id)
        if ext is None:
            return _error(
                403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {ext_id}"
            )
        return ext

    # -- endpoints --------------------------------------------------------------------
    async def _register(self, req: Request) -> Response:
        name = req.headers.get("lambda-extension-name", "")
        if not name:
            return _error(403, "Extension.InvalidExtensionName", "Empty extension name")
        try:
            doc = json.loads(req.body or b"{}")
            events = doc.get("events", []) if isinstance(doc, dict) else None
            if not isinstance(events, list):
                raise ValueError("events must be a list")
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(403, "InvalidRequestFormat", str(exc))
        for event in events:
            if event not in EVENTS:
                return _error(
                    403,
                    "Extension.InvalidEventType",
                    f"{event}: invalid event type for an extension",
                )
        if self._closed:
            return _error(
                403, "Extension.RegistrationClosed", "Extension registration closed already"
            )
        if any(e.name == name for e in self._by_id.values()):
            return _error(
                403,
                "Extension.InvalidExtensionState",
                "Extension with this name already registered",
            )
        if len(self._by_id) >= MAX_EXTENSIONS:
            return _error(
                403, "Extension.TooManyExtensions", f"Extension limit ({MAX_EXTENSIONS}) reached"
            )
        ext = _Extension(str(uuid.uuid4()), name, frozenset(events))
        self._by_id[ext.id] = ext
        info = self._info
        body: dict[str, str] = {
            "functionName": info.name,
            "functionVersion": info.version,
            "handler": info.handler,
        }
        if "accountId" in req.headers.get("lambda-extension-accept-feature", ""):
            body["accountId"] = info.account_id
        headers = [*_JSON, ("Lambda-Extension-Identifier", ext.id)]
        return Response(200, headers, json.dumps(body).encode())

    async def _next(self, req: Request) -> Response:
        ext = self._lookup(req)
        if isinstance(ext, Response):
            return ext
        if ext.pending:
            ext.ready = False
            return self._event_response(ext.pending.popleft())
        ext.ready = True
        self._changed.set()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        ext.waiter = fut
        try:
            body = await fut
        finally:
            if ext.waiter is fut:
                ext.waiter = None
        return self._event_response(body)

    @staticmethod
    def _event_response(body: bytes) -> Response:
        headers = [*_JSON, ("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))]
        return Response(200, headers, body)

    async def _init_error(self, req: Request) -> Response:
        return self._report(req, "init")

    async def _exit_error(self, req: Request) -> Response:
        return self._report(req, "exit")

    def _report(self, req: Request, phase: str) -> Response:
        ext = self._lookup(req)
        if isinstance(ext, Response):
            return ext
        error_type = req.headers.get("lambda-extension-function-error-type", "")
        if not error_type:
            return _error(
                403,
                "Extension.MissingHeader",
                "Missing Lambda-Extension-Function-Error-Type header",
            )
        kind = "Extension.InitError" if phase == "init" else "Extension.ExitError"
        self._on_fatal(kind, f"Extension {ext.name} reported {phase} error: {error_type}")
        return _ACCEPTED

    async def _exited(self, req: Request) -> Response:
        """The launcher's report that an extension process ended (Hearth's own path).

        An exited extension no longer holds the environment up. One that exits during
        Init without having registered fails Init with ``Extension.Crash``.
        """
        name = req.headers.get("lambda-extension-name", "")
        status = req.body.decode("ascii", "replace").strip()
        found = [e for e in self._by_id.values() if e.name == name]
        for ext in found:
            ext.exited = True
        if not found and name in self.expected and not self._closed:
            self._on_fatal(
                "Extension.Crash",
                f"extension {name} exited before registering (exit status {status})",
            )
        self._changed.set()
        return _ACCEPTED

    # -- the environment's side -------------------------------------------------------
    def is_ready(self) -> bool:
        registered = {e.name for e in self._by_id.values()}
        return self.expected <= registered and all(
            e.ready or e.exited for e in self._by_id.values()
        )

    async def wait_ready(self) -> None:
        """Until every expected extension is registered and waiting in ``event/next``.

        During Init the environment's init timeout bounds the wait. After an invocation
        the bound is that invocation's deadline: extensions still busy then make the
        environment fail (``Extension.TimedOut``: it is reset, as Lambda resets an
        environment whose invoke phase overran), instead of holding it forever.
        """
        while not self.is_ready():
            self._changed.clear()
            remaining = None if self._deadline is None else self._deadline - time.time()
            if remaining is not None and remaining <= 0:
                self._deadline = None
                self._on_fatal(
                    "Extension.TimedOut",
                    "extensions did not finish before the invocation's deadline",
                )
                remaining = None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        self._closed = True

    def _send(self, ext: _Extension, body: bytes) -> None:
        ext.ready = False
        if ext.waiter is not None and not ext.waiter.done():
            ext.waiter.set_result(body)
        else:
            ext.pending.append(body)

    def dispatch_invoke(self, request_id: str, deadline_ms: int, arn: str, trace_id: str) -> None:
        self._deadline = deadline_ms / 1000
        body = json.dumps(
            {
                "eventType": "INVOKE",
                "deadlineMs": deadline_ms,
                "requestId": request_id,
                "invokedFunctionArn": arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
            }
        ).encode()
        for ext in self._by_id.values():
            if "INVOKE" in ext.events:
                self._send(ext, body)

    async def shutdown(self, reason: str) -> None:
        """Send SHUTDOWN to its subscribers; wait until each is back in ``event/next``."""
        grace = SPINDOWN_GRACE if reason == "spindown" else FAILURE_GRACE
        subscribers = [e for e in self._by_id.values() if "SHUTDOWN" in e.events]
        if not subscribers:
            return
        deadline = time.time() + grace
        body = json.dumps(
            {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": int(deadline * 1000)}
        ).encode()
        for ext in subscribers:
            self._send(ext, body)
        loop = asyncio.get_running_loop()
        end = loop.time() + grace
        while not all(e.ready or e.exited for e in subscribers):
            remaining = end - loop.time()
            if remaining <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return

    def close(self) -> None:
        """Fail every pending ``event/next`` (the environment is gone)."""
        self._closed = True
        for ext in self._by_id.values():
            if ext.waiter is not None and not ext.waiter.done():
                ext.waiter.cancel()
        self._changed.set()


def layered_launch(launch: RuntimeLaunch, opt_dir: str) -> tuple[RuntimeLaunch, list[str]]:
    """Mount a function's merged layers at /opt; start extensions first if there are any.

    Returns the launch and the names of the extensions the environment must wait for.
    """
    mounts = (*launch.mounts, Mount(opt_dir, "/opt"))
    launch = RuntimeLaunch(argv=launch.argv, mounts=mounts, env=launch.env)
    names = extensions_in(opt_dir)
    if names:
        launch = with_extensions(launch)
    return launch, names
