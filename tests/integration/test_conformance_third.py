"""AWS conformance review, third pass: each test pins an AWS behaviour (from AWS's
documentation and botocore's model) by driving a real server with boto3; every bad input
is followed by a good request, so the server is shown to keep serving.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ROLE, invoke_json
from tests.helpers import ServerProcess, make_zip, start_server

CODE = "def handler(event, context):\n    return {'v': context.function_version}\n"
PREFIX = "arn:aws:lambda:us-east-1:000000000000:function:"

WHO = """
import os
def handler(event, context):
    return {"key": os.environ["AWS_ACCESS_KEY_ID"], "pid_ns": os.readlink("/proc/self/ns/pid"),
            "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose environments live 3 s (their credentials' margin, shortened)."""
    srv = start_server(
        tmp_path_factory.mktemp("lifetime") / "data",
        ["--no-egress"],
        env={"HEARTH_ENV_MAX_AGE": "3"},
    )
    yield srv
    srv.stop()


def test_a_provisioned_environment_is_recycled_with_new_credentials_and_stays_ready(
    short_lived: ServerProcess,
) -> None:
    """Lambda renews an environment's credentials by recycling it: a provisioned one is
    replaced by an initialized one first, so the configuration stays READY with its count."""
    lam = short_lived.client("lambda")
    name = "lifetime-who"
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": WHO})}, Timeout=10,
    )  # fmt: skip
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    try:
        deadline = time.monotonic() + 60
        while (
            lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)["Status"]
            != "READY"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        seen = {invoke_json(lam, name, Qualifier=version)[1]["key"]}
        while len(seen) < 3:  # two renewals
            assert time.monotonic() < deadline + 60, seen
            time.sleep(0.5)
            resp = lam.invoke(FunctionName=name, Qualifier=version, LogType="Tail")
            body = json.loads(resp["Payload"].read())
            tail = base64.b64decode(resp["LogResult"]).decode()
            # Always a provisioned environment initialized ahead: never an Init here.
            assert body["init"] == "provisioned-concurrency" and "Init Duration" not in tail
            seen.add(body["key"])
            got = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
            assert got["Status"] == "READY"
            assert got["AvailableProvisionedConcurrentExecutions"] == 1
    finally:
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        lam.delete_function(FunctionName=name)
