"""Provisioned concurrency: environments initialized ahead, used first, spilling to on-demand."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import ServerProcess

CODE = """
import os, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""


def _wait_ready(lam: Any, name: str, qualifier: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        doc = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if doc["Status"] != "IN_PROGRESS":
            return dict(doc)
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)


def _parallel(server: ServerProcess, name: str, qualifier: str, n: int) -> list[Any]:
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        client = server.client("lambda")
        barrier.wait()
        try:
            resp = client.invoke(
                FunctionName=name, Qualifier=qualifier, LogType="Tail",
                Payload=json.dumps({"sleep": 1.5}),
            )  # fmt: skip
            results[i] = (
                json.loads(resp["Payload"].read()),
                base64.b64decode(resp["LogResult"]).decode(),
            )
        except ClientError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_provisioned_environments_serve_first_then_spill(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    make_function(CODE, name="pc-fn", Timeout=30)
    version = lam.publish_version(FunctionName="pc-fn")["Version"]
    put = lam.put_provisioned_concurrency_config(
        FunctionName="pc-fn", Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] == "IN_PROGRESS"
    ready = _wait_ready(lam, "pc-fn", version)
    assert ready["Status"] == "READY", ready
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    listed = lam.list_provisioned_concurrency_configs(FunctionName="pc-fn")
    [item] = listed["ProvisionedConcurrencyConfigs"]
    assert item["FunctionArn"].endswith(f":function:pc-fn:{version}")
    assert item["Status"] == "READY"

    results = _parallel(server, "pc-fn", version, 3)
    assert all(isinstance(r, tuple) for r in results), results
    provisioned = [r for r in results if r[0]["init"] == "provisioned-concurrency"]
    on_demand = [r for r in results if r[0]["init"] == "on-demand"]
    assert len(provisioned) == 2 and len(on_demand) == 1, results
    for _, tail in provisioned:
        assert "REPORT RequestId" in tail and "Init Duration" not in tail
    assert "Init Duration" in on_demand[0][1]

    lam.delete_provisioned_concurrency_config(FunctionName="pc-fn", Qualifier=version)
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException) as ei:
        lam.get_provisioned_concurrency_config(FunctionName="pc-fn", Qualifier=version)
    assert ei.value.response["Error"]["Message"] == (
        "No Provisioned Concurrency Config found for this function"
    )
    assert (
        lam.list_provisioned_concurrency_configs(FunctionName="pc-fn")[
            "ProvisionedConcurrencyConfigs"
        ]
        == []
    )


def test_provisioned_concurrency_on_an_alias(lam: Any, make_function: Any) -> None:
    make_function(CODE, name="pc-alias")
    version = lam.publish_version(FunctionName="pc-alias")["Version"]
    lam.create_alias(FunctionName="pc-alias", Name="live", FunctionVersion=version)
    lam.put_provisioned_concurrency_config(
        FunctionName="pc-alias", Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert _wait_ready(lam, "pc-alias", "live")["Status"] == "READY"
    resp = lam.invoke(FunctionName="pc-alias", Qualifier="live", LogType="Tail")
    assert json.loads(resp["Payload"].read()) == {"init": "provisioned-concurrency"}
    assert "Init Duration" not in base64.b64decode(resp["LogResult"]).decode()


def test_provisioned_concurrency_errors(server: ServerProcess, make_function: Any) -> None:
    lam = server.client("lambda", parameter_validation=False)
    make_function(CODE, name="pc-errors")
    version = lam.publish_version(FunctionName="pc-errors")["Version"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as ei:
        lam.put_provisioned_concurrency_config(
            FunctionName="pc-errors", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert ei.value.response["Error"]["Message"] == (
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    )
    with pytest.raises(ClientError) as ei2:
        lam.put_provisioned_concurrency_config(
            FunctionName="pc-errors", Qualifier=version, ProvisionedConcurrentExecutions=0
        )
    assert ei2.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as ei2:
        lam.put_provisioned_concurrency_config(
            FunctionName="pc-errors", ProvisionedConcurrentExecutions=1
        )
    assert ei2.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.put_provisioned_concurrency_config(
            FunctionName="pc-errors", Qualifier="99", ProvisionedConcurrentExecutions=1
        )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_provisioned_concurrency_configs(FunctionName="pc-nope")
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName="pc-errors", Qualifier=version)
