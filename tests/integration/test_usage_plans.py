"""Stage/route throttling, API keys and usage plans on HTTP API stages (a Hearth extension).

Real server, real HTTP over loopback, boto3 for the control plane.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROLE
from tests.helpers import ServerProcess, make_zip, start_server
from tests.integration.test_function_urls import request

OK = """
def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
"""


def _stage_api(server: ServerProcess, fn_arn: str, **stage: Any) -> tuple[Any, str, str]:
    apigw = server.client("apigatewayv2")
    api = apigw.create_api(Name="limited", ProtocolType="HTTP")
    integ = apigw.create_integration(
        ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=fn_arn,
        PayloadFormatVersion="2.0",
    )["IntegrationId"]  # fmt: skip
    for key in ("GET /items", "GET /slow"):
        apigw.create_route(ApiId=api["ApiId"], RouteKey=key, Target=f"integrations/{integ}")
    apigw.create_stage(ApiId=api["ApiId"], StageName="prod", AutoDeploy=True, **stage)
    return apigw, api["ApiId"], api["ApiEndpoint"].split("//", 1)[1]


def test_stage_and_route_throttling(server: ServerProcess, make_function: Any) -> None:
    fn = make_function(OK, Timeout=30)
    rate, burst, seconds = 10.0, 5, 4.0
    _, _, host = _stage_api(
        server, fn["FunctionArn"],
        DefaultRouteSettings={"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst},
        RouteSettings={"GET /slow": {"ThrottlingRateLimit": 1.0, "ThrottlingBurstLimit": 1}},
    )  # fmt: skip
    assert request(server, "GET", "/prod/items", host=host)[0] == 200  # warm the function
    time.sleep(burst / rate + 0.1)  # let the bucket refill
    ok = throttled = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:  # bounded: ends after `seconds`
        status, _, _, data = request(server, "GET", "/prod/items", host=host)
        if status == 200:
            ok += 1
        else:
            assert status == 429 and json.loads(data) == {"message": "Too Many Requests"}
            throttled += 1
    elapsed = time.monotonic() - start
    served_rate = (ok - burst) / elapsed
    assert abs(served_rate - rate) <= 0.1 * rate, (ok, throttled, elapsed)
    assert throttled > ok  # the loop offered far more than the limit
    # RouteSettings override the stage default for their route.
    assert request(server, "GET", "/prod/slow", host=host)[0] == 200
    status, _, _, data = request(server, "GET", "/prod/slow", host=host)
    assert status == 429 and json.loads(data) == {"message": "Too Many Requests"}


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path / "data", ["--no-egress"])
    yield srv
    srv.stop()


def test_api_keys_quota_usage_and_restart(own_server: ServerProcess) -> None:
    srv = own_server
    lam = srv.client("lambda")
    fn = lam.create_function(
        FunctionName="metered", Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": OK})}, Timeout=30,
    )  # fmt: skip
    _, api_id, host = _stage_api(srv, fn["FunctionArn"])
    gw = srv.client("apigateway")
    # Before any plan names the stage, no key is needed.
    assert request(srv, "GET", "/prod/items", host=host)[0] == 200
    plan = gw.create_usage_plan(
        name="basic", apiStages=[{"apiId": api_id, "stage": "prod"}],
        quota={"limit": 3, "period": "DAY"}, throttle={"rateLimit": 100.0, "burstLimit": 50},
    )  # fmt: skip
    assert plan["quota"] == {"limit": 3, "offset": 0, "period": "DAY"}
    assert plan["throttle"] == {"rateLimit": 100.0, "burstLimit": 50}
    key = gw.create_api_key(name="client-a", enabled=True)
    assert len(key["value"]) >= 20 and key["enabled"] is True
    linked = gw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    assert linked["id"] == key["id"] and linked["type"] == "API_KEY"
    other = gw.create_api_key(name="client-b", enabled=True)  # in no plan

    def call(api_key: str | None) -> tuple[int, Any]:
        headers = [("x-api-key", api_key)] if api_key else []
        status, _, _, data = request(srv, "GET", "/prod/items", host=host, headers=headers)
        return status, (json.loads(data) if status != 200 else data)

    assert call(None) == (403, {"message": "Forbidden"})
    assert call("not-a-key-of-this-server-123") == (403, {"message": "Forbidden"})
    assert call(other["value"]) == (403, {"message": "Forbidden"})
    for _ in range(3):
        assert call(key["value"]) == (200, b"ok")
    assert call(key["value"]) == (429, {"message": "Limit Exceeded"})

    today = dt.datetime.now(dt.UTC).date()
    usage = gw.get_usage(
        usagePlanId=plan["id"], startDate=(today - dt.timedelta(days=1)).isoformat(),
        endDate=today.isoformat(),
    )  # fmt: skip
    assert usage["items"] == {key["id"]: [[0, 3], [3, 0]]}

    # Counts survive a restart.
    srv.stop()
    srv2 = srv.restart()
    try:
        status, _, _, data = request(
            srv2, "GET", "/prod/items", host=host, headers=[("x-api-key", key["value"])]
        )
        assert status == 429 and json.loads(data) == {"message": "Limit Exceeded"}
        gw2 = srv2.client("apigateway")
        usage = gw2.get_usage(
            usagePlanId=plan["id"], startDate=today.isoformat(), endDate=today.isoformat(),
            keyId=key["id"],
        )  # fmt: skip
        assert usage["items"] == {key["id"]: [[3, 0]]}
        # Raising the quota lets the key in again; disabling the key shuts it out.
        gw2.update_usage_plan(
            usagePlanId=plan["id"],
            patchOperations=[{"op": "replace", "path": "/quota/limit", "value": "5"}],
        )
        status, *_ = request(
            srv2, "GET", "/prod/items", host=host, headers=[("x-api-key", key["value"])]
        )
        assert status == 200
        gw2.update_api_key(
            apiKey=key["id"],
            patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}],
        )
        status, *_ = request(
            srv2, "GET", "/prod/items", host=host, headers=[("x-api-key", key["value"])]
        )
        assert status == 403
    finally:
        srv2.stop()


def test_plan_throttle_and_bad_input(server: ServerProcess, make_function: Any) -> None:
    fn = make_function(OK, Timeout=30)
    _, api_id, host = _stage_api(server, fn["FunctionArn"])
    gw = server.client("apigateway")
    plan = gw.create_usage_plan(
        name="tight", apiStages=[{"apiId": api_id, "stage": "prod"}],
        throttle={"rateLimit": 0.5, "burstLimit": 1},
    )  # fmt: skip
    key = gw.create_api_key(name="k", enabled=True, value="a-fixed-key-value-of-enough-length")
    gw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    hdr = [("x-api-key", key["value"])]
    assert request(server, "GET", "/prod/items", host=host, headers=hdr)[0] == 200
    status, _, _, data = request(server, "GET", "/prod/items", host=host, headers=hdr)
    assert status == 429 and json.loads(data) == {"message": "Too Many Requests"}

    assert key["id"] in {k["id"] for k in gw.get_api_keys()["items"]}
    assert "value" not in gw.get_api_key(apiKey=key["id"])
    assert gw.get_api_key(apiKey=key["id"], includeValue=True)["value"] == key["value"]
    assert [k["id"] for k in gw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [key["id"]]
    with pytest.raises(gw.exceptions.ConflictException):
        gw.create_api_key(name="dup", value="a-fixed-key-value-of-enough-length")
    with pytest.raises(gw.exceptions.ConflictException):
        gw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.create_api_key(name="short", value="short")
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.create_usage_plan(name="x", apiStages=[{"apiId": api_id, "stage": "nope"}])
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.create_usage_plan(name="x", quota={"limit": 1, "period": "YEAR"})
    with pytest.raises(gw.exceptions.NotFoundException):
        gw.get_usage_plan(usagePlanId="nope00")
    with pytest.raises(gw.exceptions.NotFoundException):
        gw.create_usage_plan_key(usagePlanId=plan["id"], keyId="nokey", keyType="API_KEY")
    with pytest.raises(gw.exceptions.BadRequestException):
        gw.get_usage(usagePlanId=plan["id"], startDate="yesterday", endDate="2026-01-01")
    gw.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
    assert request(server, "GET", "/prod/items", host=host, headers=hdr)[0] == 403
    gw.delete_usage_plan(usagePlanId=plan["id"])
    assert request(server, "GET", "/prod/items", host=host)[0] == 200  # no plan, no key
    gw.delete_api_key(apiKey=key["id"])
    with pytest.raises(gw.exceptions.NotFoundException):
        gw.get_api_key(apiKey=key["id"])
