"""hearth.queues and hearth.esm._filter, fast tier: MD5s, attribute rules, the engine on a
real SQLite file (group commit, visibility, redrive, bounds) and event filtering."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from hearth.errors import InvalidParameterValue
from hearth.esm._filter import matches_any, parse_filters
from hearth.events._records import MAX_RECORD, Outcome, record
from hearth.events._table import EventRow
from hearth.queues import SCHEMA, NewMessage, QueueDb, QueueEngine, md5_of_body
from hearth.queues._errors import InvalidAttributeValue, OverLimit, SqsError
from hearth.queues._model import (
    MessageAttribute,
    md5_of_attributes,
    parse_message_attributes,
    validate_queue_attributes,
)


def test_md5_of_attributes_matches_the_documented_encoding() -> None:
    # Known value: boto3's documentation example computes this for {"a": String "b"}.
    attrs = [MessageAttribute("a", "String", "b", None)]
    raw = b"\x00\x00\x00\x01a\x00\x00\x00\x06String\x01\x00\x00\x00\x01b"
    assert md5_of_attributes(attrs) == hashlib.md5(raw).hexdigest()
    # Order-independent (sorted by name), binary values use transport type 2.
    two = [
        MessageAttribute("z", "Binary", None, b"\x00"),
        MessageAttribute("a", "String", "b", None),
    ]
    raw2 = raw + b"\x00\x00\x00\x01z\x00\x00\x00\x06Binary\x02\x00\x00\x00\x01\x00"
    assert md5_of_attributes(two) == hashlib.md5(raw2).hexdigest()


def test_attribute_rules() -> None:
    with pytest.raises(SqsError):
        parse_message_attributes({"n": {"DataType": "Number", "StringValue": "x1"}})
    with pytest.raises(SqsError):
        parse_message_attributes({"AWS.x": {"DataType": "String", "StringValue": "v"}})
    with pytest.raises(SqsError):
        parse_message_attributes(
            {f"k{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
        )
    with pytest.raises(InvalidAttributeValue):
        validate_queue_attributes({"VisibilityTimeout": "43201"}, fifo=False, creating=True)
    assert validate_queue_attributes({"DelaySeconds": 5}, fifo=False, creating=True) == {
        "DelaySeconds": "5"
    }


def _engine(tmp_path: Path, **kw: int) -> tuple[QueueDb, QueueEngine]:
    db = QueueDb(tmp_path / "q.db")
    return db, QueueEngine(db, **kw)


def test_engine_visibility_redrive_and_bound(tmp_path: Path) -> None:
    async def main() -> None:
        db, eng = _engine(tmp_path, max_messages=3)
        await db.open(SCHEMA)
        await eng.open()
        dlq = await eng.create_queue("000000000000", "us-east-1", "dlq", {}, {})
        policy = json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 1})
        q = await eng.create_queue("000000000000", "us-east-1", "q", {"RedrivePolicy": policy}, {})
        await eng.send(q, [NewMessage("a", md5_of_body("a"))])
        (m,) = await eng.receive(q, 10, 0, visibility=0)
        assert m.receive_count == 1
        assert await eng.receive(q, 10, 0) == []  # moved on the second receive
        (moved,) = await eng.receive(dlq, 10, 0, visibility=0)
        assert moved.message_id == m.message_id and moved.source_arn == q.arn
        (again,) = await eng.receive(dlq, 10, 0, visibility=30)
        # A stale receipt deletes nothing; the current one does; another queue's is invalid.
        assert await eng.delete(dlq, [eng.check_receipt(dlq, moved.receipt_handle)]) == 0
        assert await eng.delete(dlq, [eng.check_receipt(dlq, again.receipt_handle)]) == 1
        with pytest.raises(SqsError):
            eng.check_receipt(dlq, m.receipt_handle)
        await eng.send(q, [NewMessage(str(i), md5_of_body(str(i))) for i in range(3)])
        with pytest.raises(OverLimit):
            await eng.send(q, [NewMessage("x", md5_of_body("x"))])
        await db.aclose()

    asyncio.run(main())


def test_group_commit_batches_concurrent_writers(tmp_path: Path) -> None:
    async def main() -> None:
        db, eng = _engine(tmp_path)
        await db.open(SCHEMA)
        await eng.open()
        q = await eng.create_queue("000000000000", "us-east-1", "g", {}, {})
        before = db.commits
        await asyncio.gather(
            *(eng.send(q, [NewMessage("m", md5_of_body("m"))]) for _ in range(200))
        )
        assert db.commits - before < 200  # several sends share one commit
        assert (await eng.counts(q))[0] == 200
        await db.aclose()

    asyncio.run(main())


def test_oversized_record_drops_payloads() -> None:
    ev = EventRow(1, "rid", "000000000000", "us-east-1", "f", None, b'{"a": 1}', "", 0.0, 1, 0)
    big = json.dumps({"x": "y" * MAX_RECORD}).encode()
    out = Outcome("Success", status_code=200, executed_version="$LATEST", response=big)
    doc = json.loads(record(ev, "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST", out, 1))
    assert "responsePayload" not in doc and doc["requestPayload"] == {"a": 1}


def test_filter_patterns() -> None:
    pats = parse_filters(
        {
            "Filters": [
                {"Pattern": json.dumps({"body": {"k": ["v", {"prefix": "p-"}]}})},
                {"Pattern": json.dumps({"body": {"n": [{"numeric": [">=", 1, "<", 3]}]}})},
                {"Pattern": json.dumps({"body": ["plain"]})},
                {
                    "Pattern": json.dumps(
                        {"body": {"z": [{"exists": False}], "w": [{"anything-but": ["no"]}]}}
                    )
                },
            ]
        }
    )

    def rec(body: object) -> dict[str, object]:
        return {"body": body if isinstance(body, str) else json.dumps(body)}

    assert matches_any(pats, rec({"k": "v"}))
    assert matches_any(pats, rec({"k": "p-1"}))
    assert matches_any(pats, rec({"n": 2}))
    assert not matches_any(pats, rec({"n": 3, "z": 1}))
    assert matches_any(pats, rec("plain"))
    assert not matches_any(pats, rec("other"))
    assert matches_any(pats, rec({"w": "yes"}))
    assert not matches_any(pats, rec({"w": "no"}))
    assert matches_any(pats, rec({"k": ["x", "v"]}))  # any element of an array
    for bad in ('{"body": 5}', "not json", '{"body": {"k": [{"numeric": ["!", 1]}]}}'):
        with pytest.raises(InvalidParameterValue):
            parse_filters({"Filters": [{"Pattern": bad}]})


def test_retention_period_drops_old_messages(tmp_path: Path) -> None:
    async def main() -> None:
        db, eng = _engine(tmp_path)
        await db.open(SCHEMA)
        await eng.open()
        q = await eng.create_queue(
            "000000000000", "us-east-1", "r", {"MessageRetentionPeriod": "60"}, {}
        )
        await eng.send(q, [NewMessage("old", md5_of_body("old"))])
        await eng.send(q, [NewMessage("new", md5_of_body("new"))])
        await db.run(lambda c: c.execute("UPDATE sqs_messages SET sent=sent-61 WHERE body='old'"))
        got = await eng.receive(q, 10, 0)
        assert [m.body for m in got] == ["new"]
        assert await eng.counts(q) == (0, 1, 0)
        await db.aclose()

    asyncio.run(main())
