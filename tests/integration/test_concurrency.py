"""Reserved concurrency, the account limit and 429 throttling, through boto3.

A server of its own runs with a small account limit (6, keeping 2 unreserved) so the
account-wide pool can be exhausted by a few parallel slow invokes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.conftest import ROLE
from tests.helpers import ServerProcess, make_zip, start_server

SLOW = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""

LIMIT = 6
MIN_UNRESERVED = 2


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("conc")
    server = start_server(
        base / "data",
        ["--no-egress"],
        env={
            "HEARTH_ACCOUNT_CONCURRENCY": str(LIMIT),
            "HEARTH_MIN_UNRESERVED_CONCURRENCY": str(MIN_UNRESERVED),
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: ServerProcess) -> Any:
    # Client-side validation off: the server's own checks are under test.
    return srv.client("lambda", parameter_validation=False)


@pytest.fixture
def fn(lam: Any) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(name: str) -> str:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": SLOW})},
            Timeout=30,
        )
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(ClientError):
            lam.delete_function(FunctionName=name)


def _parallel(srv: ServerProcess, name: str, n: int, sleep: float) -> list[Any]:
    """Invoke ``name`` n times at once; each result is a response dict or a ClientError."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        client = srv.client("lambda")
        barrier.wait()
        try:
            resp = client.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}))
            resp["Payload"].read()
            results[i] = resp
        except ClientError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def _throttles(results: list[Any]) -> list[ClientError]:
    return [r for r in results if isinstance(r, ClientError)]


def test_reserved_zero_throttles_every_invoke_and_delete_restores(lam: Any, fn: Any) -> None:
    name = fn("conc-zero")
    assert (
        lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
    )
    put = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert put["ReservedConcurrentExecutions"] == 0
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 0}
    with pytest.raises(lam.exceptions.TooManyRequestsException) as ei:
        lam.invoke(FunctionName=name, Payload=b"{}")
    err = ei.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert err["Error"]["Message"] == "Rate Exceeded."
    assert err["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
    lam.delete_function_concurrency(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    assert resp["StatusCode"] == 200 and json.loads(resp["Payload"].read()) == {"ok": True}


def test_reserved_n_throttles_exactly_the_excess(srv: ServerProcess, lam: Any, fn: Any) -> None:
    name = fn("conc-two")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    results = _parallel(srv, name, 5, sleep=2.0)
    throttled = _throttles(results)
    assert len(throttled) == 3, results
    for exc in throttled:
        assert exc.response["Error"]["Code"] == "TooManyRequestsException"
        assert exc.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert sum(1 for r in results if isinstance(r, dict) and r["StatusCode"] == 200) == 2
    # The slots come back: sequential invokes all succeed afterwards.
    for _ in range(3):
        assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200


def test_account_limit_shared_by_unreserved_functions(
    srv: ServerProcess, lam: Any, fn: Any
) -> None:
    reserved = fn("conc-reserved")
    free = fn("conc-free")
    lam.put_function_concurrency(FunctionName=reserved, ReservedConcurrentExecutions=2)
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["ConcurrentExecutions"] == LIMIT
    assert settings["UnreservedConcurrentExecutions"] == LIMIT - 2
    # The unreserved pool is LIMIT - 2 = 4: six parallel invokes → exactly two throttled.
    results = _parallel(srv, free, 6, sleep=2.0)
    throttled = _throttles(results)
    assert len(throttled) == 2, results
    for exc in throttled:
        assert exc.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    # Deleting the reservation gives its share back to the unreserved pool.
    lam.delete_function_concurrency(FunctionName=reserved)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == LIMIT
    results = _parallel(srv, free, LIMIT, sleep=1.0)
    assert _throttles(results) == []


def test_put_function_concurrency_validation(lam: Any, fn: Any) -> None:
    name = fn("conc-valid")
    with pytest.raises(ClientError) as ei:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=-1)
    assert ei.value.response["Error"]["Code"] == "ValidationException"
    assert ei.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to"
        " satisfy constraint: Member must have value greater than or equal to 0"
    )
    with pytest.raises(ClientError) as ei:
        lam.put_function_concurrency(FunctionName=name)
    assert ei.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as ei2:
        lam.put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=LIMIT - MIN_UNRESERVED + 1
        )
    assert ei2.value.response["Error"]["Message"] == (
        "Specified ReservedConcurrentExecutions for function decreases account's"
        f" UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
    )
    # Exactly down to the minimum is allowed, and replacing a reservation counts only once.
    lam.put_function_concurrency(
        FunctionName=name, ReservedConcurrentExecutions=LIMIT - MIN_UNRESERVED
    )
    lam.put_function_concurrency(
        FunctionName=name, ReservedConcurrentExecutions=LIMIT - MIN_UNRESERVED
    )
    lam.delete_function_concurrency(FunctionName=name)
    for call in (
        lambda: lam.put_function_concurrency(
            FunctionName="conc-nope", ReservedConcurrentExecutions=1
        ),
        lambda: lam.get_function_concurrency(FunctionName="conc-nope"),
        lambda: lam.delete_function_concurrency(FunctionName="conc-nope"),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as ei3:
            call()
        assert ei3.value.response["Error"]["Message"] == (
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:conc-nope"
        )


def test_deleting_a_function_drops_its_reservation(lam: Any, fn: Any) -> None:
    gone = fn("conc-gone")
    kept = fn("conc-kept")
    lam.put_function_concurrency(FunctionName=gone, ReservedConcurrentExecutions=1)
    lam.put_function_concurrency(FunctionName=kept, ReservedConcurrentExecutions=1)
    lam.delete_function(FunctionName=gone)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == LIMIT - 1
    fn("conc-gone")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=gone)
    lam.delete_function_concurrency(FunctionName=kept)


def test_a_client_that_goes_away_leaves_its_invocation_running(
    srv: ServerProcess, lam: Any, fn: Any
) -> None:
    """As on Lambda, an invocation runs to its end when its client disconnects: it keeps
    its concurrency slot meanwhile, and its environment is warm for the next invoke."""
    name = fn("conc-gone")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200  # warm now
    impatient = boto3.client(
        "lambda",
        endpoint_url=srv.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=0.5),
    )
    with pytest.raises(ReadTimeoutError):
        impatient.invoke(FunctionName=name, Payload=json.dumps({"sleep": 2.0}))
    # Still running: its slot is taken.
    with pytest.raises(lam.exceptions.TooManyRequestsException) as ei:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert ei.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    time.sleep(2.5)
    resp = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert resp["StatusCode"] == 200 and json.loads(resp["Payload"].read()) == {"ok": True}
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "REPORT RequestId" in tail and "Init Duration" not in tail, tail


def test_provisioned_concurrency_is_held_back_from_other_functions(
    srv: ServerProcess, lam: Any, fn: Any
) -> None:
    """Provisioned concurrency counts against the account (AWS: ClaimedAccountConcurrency
    is reserved plus provisioned): with LIMIT 6 and 2 provisioned for A, another function's
    on-demand invokes get 4, and A's provisioned environments stay usable meanwhile."""
    held = fn("conc-held")
    other = fn("conc-other")
    version = lam.publish_version(FunctionName=held)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=held, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    try:
        deadline = time.monotonic() + 60
        while (
            lam.get_provisioned_concurrency_config(FunctionName=held, Qualifier=version)["Status"]
            != "READY"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == (
            LIMIT - 2
        )
        results: list[Any] = []
        flood = threading.Thread(target=lambda: results.extend(_parallel(srv, other, 6, 3.0)))
        flood.start()
        # While the other function holds the whole on-demand pool, A's two provisioned
        # slots are still A's.
        time.sleep(1.0)
        mine = _parallel(srv, f"{held}:{version}", 2, sleep=0.0)
        flood.join(120)
        assert _throttles(mine) == [], mine
        throttled = _throttles(results)
        assert len(throttled) == 2, results
        for exc in throttled:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert exc.response["Error"]["Code"] == "TooManyRequestsException"
            assert exc.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    finally:
        lam.delete_provisioned_concurrency_config(FunctionName=held, Qualifier=version)
    # Deleting the configuration gives its share back.
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == LIMIT
    assert _throttles(_parallel(srv, other, 5, sleep=1.0)) == []
