"""The framed log channel's decoder (hearth.observe.frames): frames as the runtime
interface clients write them, split anywhere; and hostile or garbage input, which must
neither raise, nor hang, nor make it buffer more than one truncated frame."""

from __future__ import annotations

import os
import random
import struct
import time

from hearth.observe.frames import MAX_MESSAGE, FrameDecoder

TEXT = 0xA55A0003
ERROR_TEXT = 0xA55A0017
JSON_INFO = 0xA55A000E
LEGACY = 0xA55A0001


def now_us() -> int:
    return time.time_ns() // 1000


def frame(message: bytes, kind: int = TEXT, stamp: int | None = None) -> bytes:
    if kind & 0x2:
        ts = now_us() if stamp is None else stamp
        return struct.pack(">IIQ", kind, len(message), ts) + message
    return struct.pack(">II", kind, len(message)) + message


def test_one_frame_is_one_record_with_its_timestamp() -> None:
    stamp = now_us() - 5_000_000
    out = FrameDecoder().feed(frame(b"[ERROR] Exception: boom\nTraceback:\n  x", stamp=stamp))
    assert out == [(stamp // 1000, "[ERROR] Exception: boom\nTraceback:\n  x")]


def test_frame_kinds_and_several_frames_in_one_read() -> None:
    data = frame(b"a\n", ERROR_TEXT) + frame(b'{"level":"INFO"}', JSON_INFO) + frame(b"old", LEGACY)
    out = FrameDecoder().feed(data)
    assert [m for _, m in out] == ["a\n", '{"level":"INFO"}', "old"]
    t = time.time() * 1000
    assert all(abs(ts - t) < 60_000 for ts, _ in out)


def test_split_at_every_byte() -> None:
    data = frame(b"first\nline") + frame("é ünïcode".encode()) + frame(b"", TEXT) + frame(b"z")
    for cut in range(len(data) + 1):
        dec = FrameDecoder()
        out = dec.feed(data[:cut]) + dec.feed(data[cut:])
        assert [m for _, m in out] == ["first\nline", "é ünïcode", "z"], cut
        assert dec.buffered == 0


def test_byte_by_byte() -> None:
    data = frame(b"x" * 100) + frame(b"y")
    dec = FrameDecoder()
    out = []
    for i in range(len(data)):
        out += dec.feed(data[i : i + 1])
    assert [m for _, m in out] == ["x" * 100, "y"]


def test_oversized_frame_is_truncated_and_the_rest_skipped() -> None:
    big = b"a" * (MAX_MESSAGE + 10_000)
    data = frame(big) + frame(b"after")
    dec = FrameDecoder()
    out = []
    for i in range(0, len(data), 65536):  # as the pipe delivers it
        out += dec.feed(data[i : i + 65536])
        assert dec.buffered <= 16 + MAX_MESSAGE
    assert [len(m) for _, m in out] == [MAX_MESSAGE, 5]
    assert out[1][1] == "after"


def test_huge_declared_length_buffers_no_more_than_the_cap() -> None:
    dec = FrameDecoder(max_message=1000)
    head = struct.pack(">IIQ", TEXT, 0xFFFFFFFF, now_us())
    assert dec.feed(head + b"b" * 999) == []
    assert dec.buffered == 16 + 999
    (out,) = dec.feed(b"b" * 5000)  # the cap reached: emitted, the rest discarded
    assert out[1] == "b" * 1000
    assert dec.buffered == 0
    assert dec.feed(b"c" * 100_000) == []  # still part of that frame's 4 GiB
    assert dec.buffered == 0


def test_unreasonable_timestamps_take_the_time_of_reading() -> None:
    t = time.time() * 1000
    for stamp in (0, 1_600_000_000_000_000, now_us() + 10 * 3600 * 10**6, 2**64 - 1):
        ((ts, msg),) = FrameDecoder().feed(frame(b"m", stamp=stamp))
        assert msg == "m" and abs(ts - t) < 60_000, stamp


def test_invalid_utf8_is_replaced() -> None:
    ((_, msg),) = FrameDecoder().feed(frame(b"ok \xff\xfe end"))
    assert msg == "ok \ufffd\ufffd end"


def test_garbage_becomes_text_and_the_next_frame_is_found() -> None:
    dec = FrameDecoder()
    out = dec.feed(b"not a frame at all\n" + frame(b"real"))
    assert [m for _, m in out] == ["not a frame at all\n", "real"]
    assert dec.buffered == 0


def test_garbage_without_magic_is_bounded() -> None:
    dec = FrameDecoder(max_message=1000)
    out = dec.feed(b"\x00" * 50_000)
    assert [len(m) for _, m in out] == [1000]  # one event, cut at the cap
    assert dec.buffered == 1  # the last byte might begin a magic
    assert [m for _, m in dec.feed(frame(b"then"))] == ["\x00", "then"]


def test_random_input_never_raises_nor_grows() -> None:
    rng = random.Random(42)
    dec = FrameDecoder(max_message=4096)
    magic = struct.pack(">I", TEXT)
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.3:
            chunk = os.urandom(rng.randrange(1, 200))
        elif kind < 0.6:  # a plausible header with a random length
            chunk = magic + struct.pack(">IQ", rng.randrange(0, 10_000), rng.getrandbits(64))
        else:
            chunk = frame(os.urandom(rng.randrange(0, 300)))
        for ts, msg in dec.feed(chunk):
            assert isinstance(ts, int) and isinstance(msg, str)
            assert len(msg) <= 4096
        assert dec.buffered <= 16 + 4096 + 200


def test_flush_gives_what_is_left() -> None:
    dec = FrameDecoder()
    assert dec.feed(frame(b"cut short by a kill")[:-6]) == []
    assert [m for _, m in dec.flush()] == ["cut short by "]
    assert dec.flush() == [] and dec.buffered == 0
    assert dec.feed(b"junk") == []
    assert [m for _, m in dec.flush()] == ["junk"]
    assert dec.feed(frame(b"x")[:12]) == []
    assert dec.flush() == []  # a header alone: no message


def test_empty_frames_make_no_event() -> None:
    assert FrameDecoder().feed(frame(b"") + frame(b"", LEGACY)) == []
