"""Request and trace ids: the shapes Lambda uses, unique, never shared across a fork."""

from __future__ import annotations

import os
import re
import uuid

from hearth.ids import new_request_id, new_trace_id


def test_request_id_is_a_version_4_uuid() -> None:
    for _ in range(2000):  # crosses several refills of the buffered bits
        rid = new_request_id()
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_request_ids_are_distinct() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000


def test_trace_id_is_an_xray_header() -> None:
    tid = new_trace_id()
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", tid)
    assert new_trace_id() != tid


def test_a_forked_child_does_not_reuse_the_parents_bits() -> None:
    new_request_id()  # the buffer holds unused bits now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, new_request_id().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert child != new_request_id()
