"""HTTP APIs (apigatewayv2 subset) through boto3, served over real HTTP on loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import ServerProcess
from tests.integration.test_function_urls import request

ECHO = """
def handler(event, context):
    if event.get("body") == "fail":
        raise RuntimeError("boom")
    if event.get("version") == "1.0":
        import json
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps(event)}
    return event
"""


@pytest.fixture(scope="module")
def apigw(server: ServerProcess) -> Any:
    return server.client("apigatewayv2")


def _host(api: dict[str, Any]) -> str:
    return str(api["ApiEndpoint"]).split("//", 1)[1]


def _api(apigw: Any, fn_arn: str, **kw: Any) -> tuple[dict[str, Any], str, str]:
    api = apigw.create_api(Name="test-api", ProtocolType="HTTP", **kw)
    v2 = apigw.create_integration(
        ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=fn_arn,
        PayloadFormatVersion="2.0",
    )["IntegrationId"]  # fmt: skip
    v1 = apigw.create_integration(
        ApiId=api["ApiId"], IntegrationType="AWS_PROXY",
        IntegrationUri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn_arn}/invocations",
        PayloadFormatVersion="1.0",
    )["IntegrationId"]  # fmt: skip
    return api, v2, v1


def test_http_api_end_to_end(server: ServerProcess, apigw: Any, make_function: Any) -> None:
    fn = make_function(ECHO, Timeout=30)
    api, v2, v1 = _api(apigw, fn["FunctionArn"])
    api_id = api["ApiId"]
    assert api["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{server.port}"
    assert api["ProtocolType"] == "HTTP"
    for key, target in [
        ("GET /items/{id}", v2),
        ("ANY /{proxy+}", v2),
        ("$default", v2),
        ("POST /v1/{rest+}", v1),
    ]:
        route = apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{target}")
        assert route["RouteKey"] == key and route["Target"] == f"integrations/{target}"
    host = _host(api)
    # No stage yet: nothing is served.
    assert request(server, "GET", "/items/1", host=host)[0] == 404
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    apigw.create_stage(
        ApiId=api_id, StageName="prod", AutoDeploy=True, StageVariables={"color": "blue"}
    )

    status, hdrs, _, data = request(server, "GET", "/items/42?x=1", host=host)
    assert status == 200, data
    assert "apigw-requestid" in hdrs
    ev = json.loads(data)
    assert ev["version"] == "2.0"
    assert ev["routeKey"] == "GET /items/{id}"
    assert ev["rawPath"] == "/items/42" and ev["rawQueryString"] == "x=1"
    assert ev["pathParameters"] == {"id": "42"}
    assert "stageVariables" not in ev
    rc = ev["requestContext"]
    assert rc["apiId"] == api_id and rc["stage"] == "$default"
    assert rc["routeKey"] == "GET /items/{id}" and rc["http"]["method"] == "GET"
    assert rc["requestId"] == hdrs["apigw-requestid"]

    # Named stage: the stage is in rawPath (as on AWS) but not in route matching.
    status, _, _, data = request(server, "DELETE", "/prod/a/b", host=host)
    ev = json.loads(data)
    assert status == 200
    assert ev["routeKey"] == "ANY /{proxy+}" and ev["pathParameters"] == {"proxy": "a/b"}
    assert ev["rawPath"] == "/prod/a/b" and ev["requestContext"]["stage"] == "prod"
    assert ev["stageVariables"] == {"color": "blue"}
    # $default route for what nothing else matches; the path-based form.
    status, _, _, data = request(server, "GET", f"/_hearth/execute-api/{api_id}/")
    assert status == 200 and json.loads(data)["routeKey"] == "$default"

    # Payload format 1.0.
    status, _, _, data = request(
        server, "POST", "/prod/v1/x/y?a=1&a=2", host=host,
        headers=[("Content-Type", "text/plain"), ("X-H", "1")], body=b"hi",
    )  # fmt: skip
    assert status == 200, data
    ev = json.loads(data)
    assert ev["version"] == "1.0" and ev["httpMethod"] == "POST"
    assert ev["resource"] == "/v1/{rest+}" and ev["path"] == "/prod/v1/x/y"
    assert ev["pathParameters"] == {"rest": "x/y"}
    assert ev["queryStringParameters"] == {"a": "2"}
    assert ev["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert ev["headers"]["x-h"] == "1" and ev["multiValueHeaders"]["x-h"] == ["1"]
    assert ev["stageVariables"] == {"color": "blue"}
    assert ev["requestContext"]["stage"] == "prod" and ev["body"] == "hi"
    assert ev["isBase64Encoded"] is False

    # Function error → 500; unknown API → 404.
    status, _, _, data = request(server, "POST", "/x", host=host, body=b"fail")
    assert status == 500 and json.loads(data) == {"message": "Internal Server Error"}
    status, _, _, data = request(server, "GET", "/", host="zzzzzzzzzz.execute-api.localhost")
    assert status == 404 and json.loads(data) == {"message": "Not Found"}
    # Oversized body → 413.
    big = b"x" * (10 * 1024 * 1024 + 1)
    assert request(server, "POST", "/x", host=host, body=big)[0] == 413

    # Read back, update, delete.
    assert apigw.get_api(ApiId=api_id)["Name"] == "test-api"
    assert api_id in {a["ApiId"] for a in apigw.get_apis()["Items"]}
    routes = apigw.get_routes(ApiId=api_id)["Items"]
    assert {r["RouteKey"] for r in routes} == {
        "GET /items/{id}", "ANY /{proxy+}", "$default", "POST /v1/{rest+}"
    }  # fmt: skip
    stages = {s["StageName"]: s for s in apigw.get_stages(ApiId=api_id)["Items"]}
    assert stages["prod"]["StageVariables"] == {"color": "blue"}
    apigw.update_stage(ApiId=api_id, StageName="prod", StageVariables={"color": "red"})
    _, _, _, data = request(server, "GET", "/prod/z", host=host)
    assert json.loads(data)["stageVariables"] == {"color": "red"}
    assert apigw.get_integration(ApiId=api_id, IntegrationId=v1)["PayloadFormatVersion"] == "1.0"
    rid = next(r["RouteId"] for r in routes if r["RouteKey"] == "$default")
    apigw.delete_route(ApiId=api_id, RouteId=rid)
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_route(ApiId=api_id, RouteId=rid)
    apigw.delete_stage(ApiId=api_id, StageName="$default")
    # Without $default stage, an unknown first segment is an unknown stage → 404.
    status, _, _, data = request(server, "GET", "/staging/items/1", host=host)
    assert status == 404 and json.loads(data) == {"message": "Not Found"}
    apigw.delete_api(ApiId=api_id)
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_api(ApiId=api_id)
    assert request(server, "GET", "/prod/items/1", host=host)[0] == 404


def test_cors_preflight(server: ServerProcess, apigw: Any, make_function: Any) -> None:
    fn = make_function(ECHO, Timeout=30)
    api, v2, _ = _api(
        apigw, fn["FunctionArn"],
        CorsConfiguration={"AllowOrigins": ["https://a.example"], "AllowMethods": ["GET"],
                           "AllowHeaders": ["x-a"], "MaxAge": 60},
    )  # fmt: skip
    apigw.create_route(ApiId=api["ApiId"], RouteKey="ANY /{p+}", Target=f"integrations/{v2}")
    apigw.create_stage(ApiId=api["ApiId"], StageName="$default")
    host = _host(api)
    pre = [("Origin", "https://a.example"), ("Access-Control-Request-Method", "GET")]
    status, hdrs, _, data = request(server, "OPTIONS", "/x", host=host, headers=pre)
    assert status == 204 and data == b""
    assert hdrs["access-control-allow-origin"] == "https://a.example"
    assert hdrs["access-control-allow-methods"] == "GET"
    assert hdrs["access-control-allow-headers"] == "x-a"
    assert hdrs["access-control-max-age"] == "60"
    status, hdrs, _, _ = request(
        server, "GET", "/x", host=host, headers=[("Origin", "https://a.example")]
    )
    assert status == 200 and hdrs["access-control-allow-origin"] == "https://a.example"


def test_bad_input(apigw: Any, make_function: Any) -> None:
    fn = make_function(ECHO, Timeout=30)
    api, v2, _ = _api(apigw, fn["FunctionArn"])
    api_id = api["ApiId"]
    for key in ["GET", "FETCH /x", "GET x", "GET /{proxy+}/x", "GET /a//b", "$DEFAULT"]:
        with pytest.raises(apigw.exceptions.BadRequestException):
            apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{v2}")
    apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=f"integrations/{v2}")
    with pytest.raises(apigw.exceptions.ConflictException):
        apigw.create_route(ApiId=api_id, RouteKey="GET /a")
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_route(ApiId=api_id, RouteKey="GET /b", Target="integrations/nope")
    for uri in ["not-an-arn", "arn:aws:s3:::bucket", "arn:aws:lambda:us-east-1:123:function:x",
                "arn:aws:lambda:us-east-1:111111111111:function:other-account"]:  # fmt: skip
        with pytest.raises(apigw.exceptions.BadRequestException):
            apigw.create_integration(
                ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri,
                PayloadFormatVersion="2.0",
            )  # fmt: skip
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
            PayloadFormatVersion="3.0",
        )  # fmt: skip
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY",
                                 IntegrationUri="https://example.com")  # fmt: skip
    with pytest.raises(apigw.exceptions.ConflictException):
        apigw.delete_integration(ApiId=api_id, IntegrationId=v2)
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.create_api(Name="ws", ProtocolType="WEBSOCKET", RouteSelectionExpression="$x")
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_api(ApiId="nonexisten")
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.create_route(ApiId="nonexisten", RouteKey="GET /x")
    apigw.create_stage(ApiId=api_id, StageName="prod")
    with pytest.raises(apigw.exceptions.ConflictException):
        apigw.create_stage(ApiId=api_id, StageName="prod")
    with pytest.raises(ClientError) as exc:
        apigw.create_stage(ApiId=api_id, StageName="bad name!")
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.update_stage(
            ApiId=api_id, StageName="prod",
            DefaultRouteSettings={"ThrottlingRateLimit": -1.0},
        )  # fmt: skip
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_stage(ApiId=api_id, StageName="nope")


def test_quick_create_with_alias_target(
    server: ServerProcess, apigw: Any, lam: Any, make_function: Any
) -> None:
    fn = make_function(ECHO, Timeout=30)
    lam.publish_version(FunctionName=fn["FunctionName"])
    lam.create_alias(FunctionName=fn["FunctionName"], Name="live", FunctionVersion="1")
    api = apigw.create_api(Name="quick", ProtocolType="HTTP", Target=fn["FunctionArn"] + ":live")
    status, _, _, data = request(server, "GET", "/anything", host=_host(api))
    assert status == 200, data
    assert json.loads(data)["routeKey"] == "$default"
