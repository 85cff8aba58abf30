"""Decoder of Lambda's framed telemetry log channel (``_LAMBDA_TELEMETRY_LOG_FD``).

Lambda gives each execution environment a pipe for log records besides stdout/stderr;
its number is in ``_LAMBDA_TELEMETRY_LOG_FD``. The runtime interface clients (awslambdaric
for Python, the Node.js and Java RICs) write each record to it as one *frame*, so that a
record spanning several lines (a traceback, a multi-line ``logging`` message) stays one
log event. A frame, all integers big-endian:

* 4 bytes: frame type. The high 16 bits are the magic ``0xA55A``; in the low bits, bit 0
  says text (1) or JSON (0), bit 1 says a timestamp follows (set in every frame the
  current clients write: ``0xA55A0003`` plain text, ``0xA55A0002 | level << 2`` JSON or
  text with a level, e.g. ``0xA55A0017`` an ERROR text record), bits 2-4 the level.
  ``0xA55A0001`` is the first version of the protocol: a text frame without timestamp.
* 4 bytes: length of the message in bytes.
* 8 bytes (when bit 1 is set): the record's time, microseconds since the epoch.
* the message (UTF-8).

The bytes come from inside the sandbox and are untrusted: the decoder keeps at most one
frame's head (:data:`MAX_MESSAGE` bytes and a header) buffered whatever lengths it is
told, truncates a longer message to :data:`MAX_MESSAGE` bytes and discards the rest as it
arrives, replaces invalid UTF-8, takes the time of reading for a timestamp that CloudWatch
would refuse (more than 14 days old or 2 hours ahead), and, on bytes that are no frame
header, gives them back as one text event (they are the function's own output) and looks
for the next magic. It never raises on input.
"""

from __future__ import annotations

import struct
import time

__all__ = ["MAX_MESSAGE", "FrameDecoder"]

#: A longer message is truncated to this many bytes (CloudWatch's event size, as stdout
#: lines are cut, see hearth.worker.output).
MAX_MESSAGE = 256 * 1024
_MAGIC = 0xA55A
_MAGIC_BYTES = b"\xa5\x5a"
_HAS_TIMESTAMP = 0x2
_PAST_MS = 14 * 24 * 3600 * 1000  # PutLogEvents' bounds for an event's timestamp
_FUTURE_MS = 2 * 3600 * 1000
_HEAD = struct.Struct(">II")
_FULL = struct.Struct(">IIQ")


class FrameDecoder:
    """Incremental decoder of one environment's frame stream.

    :meth:`feed` takes the bytes of each read and returns the complete records they end,
    as ``(timestamp_ms, message)``; a partial frame waits for the next read.
    """

    __slots__ = ("_buf", "_max", "_skip")

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buf = b""
        self._skip = 0
        """Bytes of a truncated frame's message still to discard."""
        self._max = max_message

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (bounded by a header + ``max_message``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, str]]:
        skip = self._skip
        if skip:
            if len(data) <= skip:
                self._skip = skip - len(data)
                return []
            data = data[skip:]
            self._skip = 0
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, str]] = []
        append = out.append
        pos, end = 0, len(buf)
        now_ms = time.time_ns() // 1_000_000
        lo, hi = now_ms - _PAST_MS, now_ms + _FUTURE_MS
        cap = self._max
        full, short = _FULL.unpack_from, _HEAD.unpack_from
        while True:  # one header unpack, one slice and one decode per frame
            if end - pos >= 16:
                kind, length, stamp = full(buf, pos)
            elif end - pos >= 8:
                kind, length = short(buf, pos)
                stamp = -1
            else:
                break
            if kind >> 16 != _MAGIC:
                pos = self._garbage(buf, pos, out)
                continue
            if kind & _HAS_TIMESTAMP:
                if stamp < 0:  # its header is not complete yet
                    break
                start = pos + 16
                ts = stamp // 1000
                if ts < lo or ts > hi:
                    ts = now_ms
            else:
                start, ts = pos + 8, now_ms
            if length <= cap:
                stop = start + length
                if stop > end:
                    break
                if length:
                    append((ts, buf[start:stop].decode("utf-8", "replace")))
                pos = stop
                continue
            stop = start + cap  # too long: truncated, the rest of its message discarded
            if stop > end:
                break
            append((ts, buf[start:stop].decode("utf-8", "replace")))
            rest = length - cap
            if end - stop >= rest:
                pos = stop + rest
            else:
                self._skip = rest - (end - stop)
                pos = end
        self._buf = buf[pos:] if pos < end else b""
        return out

    def flush(self) -> list[tuple[int, str]]:
        """At the end of the stream (the writer is gone): what is left of an incomplete
        frame, its message so far (or the bytes, if they are no frame header), as one
        record; nothing if nothing is left."""
        buf, self._buf, self._skip = self._buf, b"", 0
        if not buf:
            return []
        head = 0
        if len(buf) >= 8 and buf[:2] == _MAGIC_BYTES:
            head = 16 if _HEAD.unpack_from(buf)[0] & _HAS_TIMESTAMP else 8
        text = buf[head:].decode("utf-8", "replace")
        return [(time.time_ns() // 1_000_000, text)] if text else []

    def _garbage(self, buf: bytes, pos: int, out: list[tuple[int, str]]) -> int:
        """Bytes at ``pos`` that are no frame header: up to the next magic (or all but
        the last byte, which may begin one) become one text event. Returns the new
        position."""
        nxt = buf.find(_MAGIC_BYTES, pos + 1)
        if nxt < 0:
            nxt = len(buf) - 1
        text = buf[pos : min(nxt, pos + self._max)].decode("utf-8", "replace")
        out.append((time.time_ns() // 1_000_000, text))
        return nxt
