"""OutputCapture (hearth.worker.output) with both of a sandbox's pipes: stdout lines and
the framed log channel, read into events of one stream and LogResult's tail."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Sequence

from hearth.worker.output import OutputCapture


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def append_many(
        self, account_id: str, group: str, stream: str, timestamp_ms: int, messages: Sequence[str]
    ) -> None:
        self.events.extend((timestamp_ms, m) for m in messages)


def frame(message: bytes, stamp_us: int) -> bytes:
    return struct.pack(">IIQ", 0xA55A0017, len(message), stamp_us) + message


def pipes() -> tuple[int, int, int, int]:
    out_r, out_w = os.pipe()
    log_r, log_w = os.pipe()
    os.set_blocking(out_r, False)
    os.set_blocking(log_r, False)
    return out_r, out_w, log_r, log_w


def test_frames_and_lines_drained_into_events_and_tail() -> None:
    out_r, out_w, log_r, log_w = pipes()
    sink = Sink()
    cap = OutputCapture(out_r, sink, "1", "g", "s", frames_fd=log_r)
    cap.begin_invocation()
    stamp = time.time_ns() // 1000 - 3_000_000
    os.write(out_w, b"x\ny")
    os.write(log_w, frame(b"[ERROR] E: boom\nTraceback (most recent call last):\n  f", stamp))
    cap.drain()
    assert [m for _, m in sink.events] == [
        "x\n",
        "[ERROR] E: boom\nTraceback (most recent call last):\n  f",
    ]
    assert sink.events[1][0] == stamp // 1000
    assert cap.tail() == "x\n[ERROR] E: boom\nTraceback (most recent call last):\n  f"
    cap.emit("END\n")
    os.close(out_w)
    os.close(log_w)
    cap.stop()  # the partial line is flushed
    assert [m for _, m in sink.events][-2:] == ["END\n", "y"]
    for fd in (out_r, log_r):
        os.close(fd)


def test_readers_on_the_loop_and_eof() -> None:
    async def main() -> Sink:
        out_r, out_w, log_r, log_w = pipes()
        sink = Sink()
        cap = OutputCapture(out_r, sink, "1", "g", "s", frames_fd=log_r)
        cap.start()
        now = time.time_ns() // 1000
        os.write(log_w, frame(b"a\nb\n", now)[:10])  # a frame split across reads
        await asyncio.sleep(0.05)
        os.write(log_w, frame(b"a\nb\n", now)[10:] + b"garbage")
        os.write(out_w, b"line\n")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(sink.events) >= 2:
                break
        os.close(log_w)  # EOF: the reader goes, the other stays
        await asyncio.sleep(0.05)
        os.write(out_w, b"after\n")
        await asyncio.sleep(0.05)
        os.close(out_w)
        await asyncio.sleep(0.05)
        cap.stop()
        for fd in (out_r, log_r):
            os.close(fd)
        return sink

    sink = asyncio.run(main())
    messages = [m for _, m in sink.events]
    assert sorted(messages[:2]) == ["a\nb\n", "line\n"]
    # "garbage" is too short for a header: it waits for more, and comes out at the end.
    assert messages[2:] == ["after\n", "garbage"]


def test_without_a_log_channel_lines_only() -> None:
    out_r, out_w = os.pipe()
    os.set_blocking(out_r, False)
    sink = Sink()
    cap = OutputCapture(out_r, sink, "1", "g", "s")
    os.write(out_w, b"one\ntwo\n")
    cap.drain()
    assert [m for _, m in sink.events] == ["one\n", "two\n"]
    os.close(out_w)
    cap.stop()
    os.close(out_r)
