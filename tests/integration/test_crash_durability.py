"""kill -9 with a backlog: ≥ 1,000 accepted async events and ≥ 1,000 queue messages
consumed by an event source mapping; after a restart every one is accounted for.

Accounting:
* async events: each finished event writes exactly one OnSuccess record to a results
  queue, in the same transaction that deletes the event. Every request id that got a 202
  must appear there; ``approximateInvokeCount - 1`` summed is the duplicate count (an
  invocation cut short by the kill runs again).
* queue messages: a message is deleted only after a successful invocation, so a drained
  queue with an empty dead-letter queue means every message was processed at least once.
  The consumer also logs each message id; ids logged more than once are duplicates (a
  lower bound: log lines written behind in the last moment before the kill may be lost).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.conftest import ROLE
from tests.helpers import make_zip, start_server

N_EVENTS = 1000
N_MESSAGES = 1000
# Slow enough that backlogs build up: the dispatcher runs 2 at a time (env below).
NOOP = "import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return {'ok': 1}\n"
CONSUMER = """
import time
def handler(event, context):
    time.sleep(0.2)
    print("GOT " + " ".join(r["messageId"] for r in event["Records"]))
    return {}
"""


def _create(lam: Any, name: str, code: str) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})},
    )


def _counts(sqs: Any, url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_kill9_with_backlog_loses_nothing(tmp_path: Path) -> None:
    env = {"HEARTH_ASYNC_RETRY_DELAYS": "1,1", "HEARTH_ASYNC_CONCURRENCY": "2"}
    srv = start_server(tmp_path / "data", ["--no-egress"], env=env)
    try:
        lam, sqs = srv.client("lambda"), srv.client("sqs")
        _create(lam, "sink", NOOP)
        _create(lam, "consumer", CONSUMER)
        results = sqs.create_queue(QueueName="results")["QueueUrl"]
        work = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
        dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
        sqs.set_queue_attributes(
            QueueUrl=work,
            Attributes={
                "RedrivePolicy": json.dumps(
                    {
                        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:work-dlq",
                        "maxReceiveCount": 10,
                    }
                )
            },
        )
        lam.put_function_event_invoke_config(
            FunctionName="sink",
            DestinationConfig={
                "OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:results"}
            },
        )
        sent_ids: list[str] = []
        for i in range(0, N_MESSAGES, 10):
            res = sqs.send_message_batch(
                QueueUrl=work,
                Entries=[{"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)],
            )
            assert not res.get("Failed")
            sent_ids += [s["MessageId"] for s in res["Successful"]]

        accepted: list[str] = []

        local = threading.local()

        def submit(i: int) -> str | None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = srv.client("lambda")
            try:
                r = client.invoke(
                    FunctionName="sink", InvocationType="Event", Payload=json.dumps({"i": i})
                )
            except Exception:
                return None  # the server died under this request: not accepted
            return str(r["ResponseMetadata"]["RequestId"]) if r["StatusCode"] == 202 else None

        with ThreadPoolExecutor(8) as pool:
            accepted = [rid for rid in pool.map(submit, range(N_EVENTS)) if rid]
        assert len(accepted) == N_EVENTS
        lam.create_event_source_mapping(
            EventSourceArn="arn:aws:sqs:us-east-1:000000000000:work",
            FunctionName="consumer",
            BatchSize=10,
            ScalingConfig={"MaximumConcurrency": 4},
        )
        # Mid-flight: some of both backlogs done, much still queued.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done_events = _counts(sqs, results)[0]
            left = sum(_counts(sqs, work))
            if done_events >= 50 and left <= N_MESSAGES - 50:
                break
            time.sleep(0.05)
        before_kill = (_counts(sqs, results)[0], sum(_counts(sqs, work)))
        assert before_kill[0] < N_EVENTS and before_kill[1] > 0, before_kill
    finally:
        srv.stop(signal.SIGKILL)
    time.sleep(1)  # let the killed server's sandboxes die before the sweep at start
    srv = srv.restart()
    try:
        lam, sqs, logs = srv.client("lambda"), srv.client("sqs"), srv.client("logs")
        records: dict[str, dict[str, Any]] = {}
        extra = 0
        deadline = time.monotonic() + 240
        while len(records) < N_EVENTS and time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=results, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            msgs = got.get("Messages", [])
            for m in msgs:
                rec = json.loads(m["Body"])
                rid = rec["requestContext"]["requestId"]
                if rid in records:
                    extra += 1
                records[rid] = rec
            if msgs:
                sqs.delete_message_batch(
                    QueueUrl=results,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(msgs)
                    ],
                )
        missing = set(accepted) - set(records)
        assert not missing, f"{len(missing)} accepted async events lost"
        assert all(r["requestContext"]["condition"] == "Success" for r in records.values())
        duplicates = sum(
            r["requestContext"]["approximateInvokeCount"] - 1 for r in records.values()
        )
        # Queue messages: the work queue drains, nothing is dead-lettered.
        deadline = time.monotonic() + 240
        while sum(_counts(sqs, work)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _counts(sqs, work) == (0, 0)
        assert _counts(sqs, dlq) == (0, 0)
        time.sleep(1.5)  # consumer log lines are written behind
        seen: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": "/aws/lambda/consumer", "filterPattern": "GOT"}
        while True:
            page = logs.filter_log_events(**kwargs)
            for e in page["events"]:
                seen += e["message"].split()[1:]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        logged = set(seen)
        msg_duplicates = len(seen) - len(logged)
        print(
            f"\ncrash test: killed with {before_kill[0]} of {N_EVENTS} events and"
            f" {N_MESSAGES - before_kill[1]} of {N_MESSAGES} messages done;"
            f" async duplicates {duplicates} (+{extra} duplicate records),"
            f" message duplicates (from logs) {msg_duplicates},"
            f" message ids without a log line {len(set(sent_ids) - logged)}"
        )
        assert logged <= set(sent_ids)
    finally:
        srv.stop()
