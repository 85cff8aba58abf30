"""Capture of a sandbox's stdout/stderr and framed log channel into its log stream.

The sandbox writes to one non-blocking pipe. Bytes are split into lines; each line is a
log event of the environment's stream, its newline kept (``hello\n``), as Lambda's are
(a line past 256 KB is cut into pieces; only the last carries the newline). Lines
are also kept in a bounded per-invocation buffer, so that ``LogType: Tail`` can return
the last 4 KB of the invocation's log. Events go to the sink, which batches them to
disk off the event loop.

A sandbox may also have a *framed* log channel (``_LAMBDA_TELEMETRY_LOG_FD``, see
:mod:`hearth.observe.frames`): each frame is one event, with the timestamp the runtime
gave it, however many lines it holds (a traceback, a multi-line ``logging`` record). Both
pipes are read the same way: at most two reads per readiness (one, when it returns less
than asked, the pipe is empty), and at every :meth:`OutputCapture.drain`.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from hearth.observe.frames import FrameDecoder

MAX_LINE = 256 * 1024  # a longer line is cut into pieces, as CloudWatch caps events
TAIL_BYTES = 4096
READ_SIZE = 65536


class LogSink(Protocol):
    def append_many(
        self, account_id: str, group: str, stream: str, timestamp_ms: int, messages: Sequence[str]
    ) -> None: ...


class OutputCapture:
    """``fd``: the stdout/stderr pipe; ``frames_fd``: the framed log channel's read end
    (-1: none). Both belong to the sandbox (closed by it after :meth:`stop`)."""

    def __init__(
        self,
        fd: int,
        sink: LogSink,
        account_id: str,
        group: str,
        stream: str,
        frames_fd: int = -1,
    ) -> None:
        self._fd = fd
        self._frames_fd = frames_fd
        self._frames = FrameDecoder() if frames_fd >= 0 else None
        # drain() asks which pipe has bytes with one poll(2) of both (no fd held): ~1 us,
        # where a read that finds a pipe empty costs ~1.5 us each (EAGAIN raised).
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        if frames_fd >= 0:
            self._poll.register(frames_fd, select.POLLIN)
        self._sink = sink
        self._account = account_id
        self._group = group
        self._stream = stream
        self._partial = b""
        self._tail: list[str] = []
        self._tail_bytes = 0
        self._keep_tail = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._drain_lines)
        if self._frames is not None:
            self._loop.add_reader(self._frames_fd, self._drain_frames)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            if self._frames is not None:
                self._loop.remove_reader(self._frames_fd)
            self._loop = None
        self.drain()
        self.flush_partial()
        # The backend closes the fd after this; never read a number it may reuse.
        self._stopped = True

    def detach(self) -> tuple[int, int]:
        """Stop watching the pipes and give them up (the environment is being parked, see
        :mod:`hearth.worker.fd_vault`): what they hold is read first; an incomplete line or
        frame stays here for :meth:`attach`. Returns (``fd``, ``frames_fd``)."""
        self.drain()
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            if self._frames is not None:
                self._loop.remove_reader(self._frames_fd)
            self._loop = None
        fds = self._fd, self._frames_fd
        self._fd = -1
        self._frames_fd = -1
        self._poll = select.poll()
        self._stopped = True  # drain() is a no-op until attach()
        return fds

    def attach(self, fd: int, frames_fd: int) -> None:
        """The pipes given up by :meth:`detach`, back under (new) numbers."""
        self._fd = fd
        self._frames_fd = frames_fd
        self._poll.register(fd, select.POLLIN)
        if frames_fd >= 0:
            self._poll.register(frames_fd, select.POLLIN)
        self._stopped = False
        self.start()

    def emit(self, *messages: str) -> None:
        """Platform lines (START / END / REPORT, errors) in the same stream, each already
        ending as its log event does (a text line with its newline)."""
        self._events(messages)

    def drain(self) -> None:
        """Read everything the pipes hold now (never blocks): stdout/stderr lines first,
        then frames."""
        if self._stopped:
            return
        for fd, _ in self._poll.poll(0):  # in the order registered: lines first
            if fd == self._fd:
                self._drain_lines()
            else:
                self._drain_frames()

    def _read(self, fd: int) -> bytes | None:
        """One read: bytes, or None when there is nothing now. At EOF (or an error) the
        fd is no longer watched and None is returned."""
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            if self._loop is not None:
                self._loop.remove_reader(fd)
            return None
        return data

    def _drain_lines(self) -> None:
        self._pump(self._fd, self._feed)

    def _drain_frames(self) -> None:
        self._pump(self._frames_fd, self._feed_frames)

    def _pump(self, fd: int, consume: Callable[[bytes], None]) -> None:
        """Read ``fd`` into ``consume`` until it has nothing now."""
        while not self._stopped:
            data = self._read(fd)
            if data is None:
                return
            consume(data)
            if len(data) < READ_SIZE:  # a pipe read short: it is empty now
                return

    def _feed_frames(self, data: bytes) -> None:
        assert self._frames is not None
        records = self._frames.feed(data)
        if records:
            self._records(records)

    def _records(self, records: list[tuple[int, str]]) -> None:
        """Decoded frames: one event each, consecutive ones of the same millisecond
        appended together."""
        ts, batch = records[0][0], [records[0][1]]
        for stamp, message in records[1:]:
            if stamp != ts:
                self._events(batch, ts)
                ts, batch = stamp, []
            batch.append(message)
        self._events(batch, ts)

    def _feed(self, data: bytes) -> None:
        buf = self._partial + data
        *lines, rest = buf.split(b"\n")
        events = [line.decode("utf-8", "replace") + "\n" for line in lines]
        while len(rest) > MAX_LINE:
            events.append(rest[:MAX_LINE].decode("utf-8", "replace"))
            rest = rest[MAX_LINE:]
        self._partial = rest
        if events:
            self._events(events)

    def flush_partial(self) -> None:
        """At the end: the last line without its newline, and what is left of an
        incomplete frame, each as one event."""
        if self._partial:
            self._events((self._partial.decode("utf-8", "replace"),))
            self._partial = b""
        if self._frames is not None:
            rest = self._frames.flush()
            if rest:
                self._records(rest)

    def _events(self, messages: Sequence[str], timestamp_ms: int = 0) -> None:
        """Append ``messages`` (at ``timestamp_ms``; 0: now) and keep them for the tail."""
        self._sink.append_many(
            self._account,
            self._group,
            self._stream,
            timestamp_ms or time.time_ns() // 1_000_000,
            messages,
        )
        if not self._keep_tail:
            return
        for message in messages:
            self._tail.append(message)
            self._tail_bytes += len(message)
        # Drop a line only when the rest still covers the last TAIL_BYTES (a long line
        # is kept: its end belongs to the tail).
        while len(self._tail) > 1 and self._tail_bytes - len(self._tail[0]) >= TAIL_BYTES:
            self._tail_bytes -= len(self._tail.pop(0))

    def begin_invocation(self, keep_tail: bool = True) -> None:
        """Start the tail afresh; ``keep_tail=False``: this invocation needs none (``LogType``
        is not ``Tail``), so lines are not kept at all."""
        self._tail.clear()
        self._tail_bytes = 0
        self._keep_tail = keep_tail

    def tail(self) -> str:
        """The last 4 KB of what was logged since :meth:`begin_invocation`."""
        text = "".join(self._tail)
        raw = text.encode("utf-8")
        if len(raw) > TAIL_BYTES:
            raw = raw[-TAIL_BYTES:]
        return raw.decode("utf-8", "ignore")
