"""Durable queues: async invoke acceptance rate and SQS → event source mapping throughput.

* async acceptance: ``wrk`` replays one pre-signed ``InvocationType=Event`` request on
  ``CONNECTIONS`` keep-alive connections for ``BENCH_WRK_SECONDS``; every 202 means the
  event was committed to SQLite (WAL, ``synchronous=FULL``, group commit). Baseline: the
  same SQLite settings committing one row per transaction from one thread (what the rate
  would be without group commit).
* async end to end: time from the first submit until every event's OnSuccess record is
  in a queue (events/s through the dispatcher into a no-op function).
* queue throughput: ``MESSAGES`` messages preloaded, then an event source mapping
  (BatchSize 10) drains them into a no-op function; messages/s until the queue is empty.
  Baseline: the same function invoked synchronously, one message per invoke, on one
  connection (messages/s without batching or the queue).
"""

from __future__ import annotations

import http.client
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._common import INVOKE_PATH, Row, create, hearth, signed_headers, time_requests
from benchmarks.bench_throughput import _lua, _wrk

EVENTS = int(os.environ.get("BENCH_ASYNC_N", "4000"))
THREADS = int(os.environ.get("BENCH_ASYNC_THREADS", "16"))
CONNECTIONS = int(os.environ.get("BENCH_ASYNC_CONNECTIONS", "32"))
MESSAGES = int(os.environ.get("BENCH_QUEUE_N", "5000"))
NOOP = "def handler(event, context):\n    return None\n"
QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:{}"


def _fire(port: int, path: str, headers: dict[str, str], n: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    ok = 0
    for _ in range(n):
        conn.request("POST", path, body=b'{"x": 1}', headers=headers)
        resp = conn.getresponse()
        resp.read()
        ok += resp.status == 202
    conn.close()
    return ok


def _sqlite_one_commit_per_row(path: Path, n: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)")
    t0 = time.perf_counter()
    for _ in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (payload) VALUES (?)", (b'{"x": 1}',))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


def _wait_count(sqs: object, url: str, want: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]  # type: ignore[attr-defined]
        visible = int(a["ApproximateNumberOfMessages"])
        inflight = int(a["ApproximateNumberOfMessagesNotVisible"])
        if (want and visible >= want) or (not want and visible + inflight == 0):
            return True
        time.sleep(0.1)
    return False


def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, hearth(Path(tmp)) as srv:
        lam, sqs = srv.client("lambda"), srv.client("sqs")
        create(srv, "noop", NOOP)
        done = sqs.create_queue(QueueName="done")["QueueUrl"]
        lam.put_function_event_invoke_config(
            FunctionName="noop",
            DestinationConfig={"OnSuccess": {"Destination": QUEUE_ARN.format("done")}},
        )
        path = INVOKE_PATH.format(name="noop")
        headers = signed_headers(srv.port, path, b'{"x": 1}')
        headers["X-Amz-Invocation-Type"] = "Event"
        t0 = time.perf_counter()
        if shutil.which("wrk"):
            rate, total, bad = _wrk(
                f"http://127.0.0.1:{srv.port}{path}",
                CONNECTIONS,
                _lua(headers, b'{"x": 1}', Path(tmp)),
            )
            total -= bad
            label = f"async Event accepted (durable), wrk {CONNECTIONS} connections"
        else:  # pragma: no cover - wrk is a Debian package the benchmarks install
            per = EVENTS // THREADS
            accepted: list[int] = []
            threads = [
                threading.Thread(
                    target=lambda: accepted.append(_fire(srv.port, path, headers, per))
                )
                for _ in range(THREADS)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            total = sum(accepted)
            rate = total / (time.perf_counter() - t0)
            label = f"async Event accepted (durable), {THREADS} clients"
        drained = _wait_count(sqs, done, total, 600)
        e2e_s = time.perf_counter() - t0
        base = _sqlite_one_commit_per_row(Path(tmp) / "base.db", 1000)
        rows.append(
            Row(
                label,
                rate,
                base,
                "events/s",
                "SQLite WAL FULL, one commit per row",
            )
        )
        rows.append(
            Row(
                "async events run end to end (202 → OnSuccess record)"
                + ("" if drained else " (timed out)"),
                total / e2e_s,
                None,
                "events/s",
                "—",
            )
        )

        work = sqs.create_queue(QueueName="work")["QueueUrl"]
        for i in range(0, MESSAGES, 10):
            sqs.send_message_batch(
                QueueUrl=work,
                Entries=[{"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)],
            )
        t0 = time.perf_counter()
        lam.create_event_source_mapping(
            EventSourceArn=QUEUE_ARN.format("work"), FunctionName="noop", BatchSize=10
        )
        emptied = _wait_count(sqs, work, 0, 600)
        esm_s = time.perf_counter() - t0
        sync = time_requests(
            srv.port, path, b'{"x": 1}', 500, signed_headers(srv.port, path, b'{"x": 1}')
        )
        sync_rate = 1000 / (sum(sync) / len(sync))
        rows.append(
            Row(
                "SQS → event source mapping → no-op function (BatchSize 10)"
                + ("" if emptied else " (timed out)"),
                MESSAGES / esm_s,
                sync_rate,
                "messages/s",
                "sequential sync invokes, one message each",
            )
        )
    return rows


def main() -> None:
    from benchmarks._common import table

    print(table(run()))


if __name__ == "__main__":
    main()
