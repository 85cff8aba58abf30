"""A lean HTTP/1.1 server on asyncio protocols, parsed with ``httptools``.

Written by hand rather than on an ASGI stack because it is the hot path: research
(``shared/research/hotpath-floor.md``) measured uvicorn + starlette at twice the server
CPU per invoke of a bare protocol server. What it does:

- keep-alive HTTP/1.1 (and 1.0 with ``Connection: keep-alive``), pipelining in order;
- request bodies by ``Content-Length`` or chunked, capped at ``max_body`` bytes (a larger
  one gets a 413 from ``on_too_large`` and the connection is closed);
- one handler call per request, strictly in order; a client that pipelines more
  than ``MAX_PIPELINED`` requests is paused until they are served (bounded memory);
- header count and size bounded by httptools' limits plus our own header byte cap.

A handler returns a coroutine (run as a task), or, on the hot paths that need no task, a
:class:`Response` at once or a :class:`~hearth.deferred.Deferred` one (a parked request,
a long-poll or a warm Invoke: the response is written as it is settled, and it is
cancelled if the client goes away).

*Corking* (``cork=True``, the Runtime API endpoints): a 2xx answer to a request that came
in the same read as a following request which parks is held back and written together
with that request's answer. A runtime that pipelines ``POST .../response`` with the next
``GET .../next`` (Hearth's Python and Node runtimes do) thus gets the 202 and its next
event in one write: every write that wakes another process costs the server ~12-60 µs on
this paravirtualised VM (``shared/research/hotpath-floor.md``), and the runtime is not
woken for the 202 alone. A runtime that does not pipeline gets each answer at once.

The same class serves the public API and every sandbox's Runtime API endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import httptools

from hearth.api.types import Request, Response
from hearth.deferred import Deferred

log = logging.getLogger(__name__)

Handler = Callable[[Request], "Awaitable[Response] | Deferred[Response] | Response"]
"""A coroutine function, or a function answering a Response, or a Deferred one (a
parked request, answered when it is settled)."""

MAX_HEADER_BYTES = 64 * 1024
#: Header names as they come on the wire -> lower-cased str: a client sends the same few
#: names on every request (one dict lookup instead of a decode and a lower per header).
_NAMES: dict[bytes, str] = {}
_MAX_NAMES = 512
MAX_PIPELINED = 16  # requests parsed ahead of the one being served, per connection
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def encode_response(resp: Response, keep_alive: bool) -> bytes:
    """Serialise a response head and body into one buffer (one write, one syscall)."""
    status = resp.status
    parts = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"]
    for name, value in resp.headers:
        parts.append(f"{name}: {value}\r\n")
    parts.append(f"Content-Length: {len(resp.body)}\r\n")
    if not keep_alive:
        parts.append("Connection: close\r\n")
    parts.append("\r\n")
    head = "".join(parts).encode("latin-1")
    return head + resp.body if resp.body else head


class HttpProtocol(asyncio.Protocol):
    """One connection. Requests are handled strictly one at a time, in order."""

    def __init__(
        self,
        handler: Handler,
        max_body: int,
        on_too_large: Callable[[Request], Response],
        tasks: set[asyncio.Task[None]],
        cork: bool = False,
    ) -> None:
        self._handler = handler
        self._max_body = max_body
        self._on_too_large = on_too_large
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_len = 0
        self._too_large = False
        self._pending: deque[tuple[Request, bool]] = deque()
        self._task: asyncio.Future[Any] | Deferred[Any] | None = None
        """The request being served: its task, or the future it is parked on."""
        self._closed = False
        self._paused = False
        self._peer = ""
        self._tasks = tasks
        self._cork = cork
        self._feeding = False
        self._out: list[bytes] = []
        """Corked answers, written before the next one."""
        self._parked_req: tuple[Request, bool] = (Request("", "", "", {}, b""), False)

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        # Kept: before Python 3.12 each get_running_loop() is a getpid system call.
        self._loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._pending.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        self._feeding = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400)
        except httptools.HttpParserError:
            self._fail(400)
        finally:
            self._feeding = False
        if self._out and not self._parked():
            self._flush()

    # -- httptools callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._body_len = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_HEADER_BYTES:
            raise httptools.HttpParserError("url too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise httptools.HttpParserError("headers too large")
        key = _NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_NAMES) < _MAX_NAMES:
                _NAMES[name] = key
        val = value.decode("latin-1")
        old = self._headers.get(key)
        self._headers[key] = val if old is None else f"{old},{val}"

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body_len += len(body)
        if self._body_len > self._max_body:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        raw = self._url.decode("latin-1")
        path, _, query = raw.partition("?")
        method = self._parser.get_method().decode("latin-1")
        req = Request(method, path, query, self._headers, b"".join(self._body), self._peer)
        keep_alive = self._parser.should_keep_alive() and not self._too_large
        if self._too_large:
            self._write(self._on_too_large(req), keep_alive=False)
            return
        self._pending.append((req, keep_alive))
        if len(self._pending) > MAX_PIPELINED and not self._paused:
            self._paused = True
            if self._transport is not None:
                self._transport.pause_reading()
        if self._task is None:
            self._start_next()

    # -- dispatch ---------------------------------------------------------------------
    def _start_next(self) -> None:
        """Serve pipelined requests in order until one has to wait (or none is left)."""
        while True:
            # Reading pauses only when a client pipelines past MAX_PIPELINED requests:
            # pausing and resuming around every request would cost two epoll_ctl calls.
            if self._paused and len(self._pending) <= MAX_PIPELINED // 2:
                self._paused = False
                if self._transport is not None and not self._closed:
                    self._transport.resume_reading()
            if not self._pending or self._closed:
                self._task = None
                return
            req, keep_alive = self._pending.popleft()
            try:
                answer = self._handler(req)
            except Exception:
                answer = self._internal_error(req)
            if isinstance(answer, Response):
                self._write(answer, keep_alive)
                if not keep_alive:
                    self._task = None
                    return
                continue
            if isinstance(answer, Deferred):
                if answer.done():  # settled already: no different from a Response
                    self._write(self._outcome(answer, req), keep_alive)
                    if not keep_alive:
                        self._task = None
                        return
                    continue
                self._task = answer
                self._parked_req = (req, keep_alive)
                answer.then(self._parked_done)
                return
            loop = self._loop or asyncio.get_running_loop()
            task = loop.create_task(self._run(answer, req, keep_alive))
            self._task = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return

    def _parked(self) -> bool:
        task = self._task
        return task is not None and not task.done()

    def _parked_done(self, fut: Deferred[Response]) -> None:
        if fut.cancelled() or self._task is not fut:
            return  # the connection went away (connection_lost cancelled it)
        req, keep_alive = self._parked_req
        resp = self._outcome(fut, req)
        self._finish(resp, keep_alive)

    def _outcome(self, fut: Deferred[Response], req: Request) -> Response:
        exc = fut.exception()
        return fut.result() if exc is None else self._internal_error(req, exc)

    async def _run(self, answer: Awaitable[Response], req: Request, keep_alive: bool) -> None:
        try:
            resp = await answer
        except asyncio.CancelledError:
            raise
        except Exception:
            resp = self._internal_error(req)
        self._finish(resp, keep_alive)

    def _finish(self, resp: Response, keep_alive: bool) -> None:
        self._write(resp, keep_alive)
        if keep_alive:
            self._start_next()
        else:
            self._task = None

    @staticmethod
    def _internal_error(req: Request, exc: BaseException | None = None) -> Response:
        log.error(
            "unhandled error serving %s %s",
            req.method,
            req.path,
            exc_info=exc if exc is not None else True,
        )
        return Response(500, [("Content-Type", "text/plain")], b"internal error")

    def _write(self, resp: Response, keep_alive: bool) -> None:
        t = self._transport
        if t is None or self._closed or t.is_closing():
            return
        data = encode_response(resp, keep_alive)
        if self._cork and self._feeding and keep_alive and 200 <= resp.status < 300:
            self._out.append(data)  # see the module docstring: sent with the next answer
            return
        if self._out:
            self._out.append(data)
            data = b"".join(self._out)
            self._out.clear()
        t.write(data)
        if not keep_alive:
            t.close()
            self._closed = True

    def _flush(self) -> None:
        t = self._transport
        data = b"".join(self._out)
        self._out.clear()
        if t is not None and not self._closed and not t.is_closing():
            t.write(data)

    def _fail(self, status: int) -> None:
        self._write(Response(status, [("Content-Type", "text/plain")], b"bad request"), False)


def _same(proto: HttpProtocol) -> HttpProtocol:
    return proto


class _Detached(asyncio.Protocol):
    """Takes the place of a parked connection's protocol on the transport that is closed."""


class HttpServer:
    """Serves ``handler`` on a TCP listener (or an already-bound socket)."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        on_too_large: Callable[[Request], Response] | None = None,
        cork: bool = False,
    ) -> None:
        """``cork``: hold 2xx answers of pipelined requests (see the module docstring)."""
        self._handler = handler
        self._max_body = max_body
        self._on_too_large = on_too_large or (lambda _req: Response(413, [], b""))
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._cork = cork
        self._protocols: weakref.WeakSet[HttpProtocol] = weakref.WeakSet()
        """Its connections (for :meth:`parkable`; one add per connection, not per request)."""

    def _factory(self) -> HttpProtocol:
        proto = HttpProtocol(
            self._handler, self._max_body, self._on_too_large, self._tasks, self._cork
        )
        self._protocols.add(proto)
        return proto

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(self._factory, sock=sock)
        else:
            self._server = await loop.create_server(
                self._factory, host, port, reuse_address=True, backlog=1024
            )

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    # -- parking (hearth.worker.fd_vault): the listener and connections leave the loop ----
    def parkable(self) -> tuple[int, list[tuple[HttpProtocol, int]]] | None:
        """The listener's fd and each open connection's (with its protocol), if every
        connection is quiet: nothing being handled by a task, nothing parsed ahead, nothing
        waiting to be written (a request parked on a Deferred, such as the Runtime API's
        ``GET /next``, is quiet). None if not."""
        server = self._server
        if server is None or self._tasks or len(server.sockets) != 1:
            return None
        conns: list[tuple[HttpProtocol, int]] = []
        for proto in list(self._protocols):
            t = proto._transport
            if proto._closed or t is None or t.is_closing():
                continue
            if (
                isinstance(proto._task, asyncio.Future)
                or proto._pending
                or proto._paused
                or t.get_write_buffer_size()
            ):
                return None
            sock = t.get_extra_info("socket")
            if sock is None:
                return None
            conns.append((proto, sock.fileno()))
        return server.sockets[0].fileno(), conns

    def park(self, conns: list[tuple[HttpProtocol, int]]) -> None:
        """Close the server's copies of the listener and of ``conns`` (from
        :meth:`parkable`), which someone else holds open meanwhile: no FIN is sent (the
        socket stays open while another descriptor refers to it), and each protocol keeps
        its state (a parked request, corked answers) for :meth:`unpark`."""
        if self._server is not None:
            self._server.close()  # closes the listening socket's fd, nothing else
            self._server = None
        for proto, _ in conns:
            t = proto._transport
            if t is not None:
                t.set_protocol(_Detached())  # its connection_lost is not the protocol's
                t.abort()  # the loop forgets the fd (epoll) and closes it
            proto._transport = None

    async def unpark(
        self, listener: socket.socket, conns: list[tuple[HttpProtocol, socket.socket]]
    ) -> None:
        """Serve again: ``listener`` (the same listening socket, a new descriptor) and each
        connection under its old protocol, which finds its parked request as it was."""
        loop = asyncio.get_running_loop()
        for proto, sock in conns:
            sock.setblocking(False)
            await loop.connect_accepted_socket(functools.partial(_same, proto), sock)
        listener.setblocking(False)
        self._server = await loop.create_server(self._factory, sock=listener)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
