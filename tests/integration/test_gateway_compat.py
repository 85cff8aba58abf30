"""Compatibility of the HTTP front door with AWS, driven as users drive it.

Function URLs, HTTP APIs (boto3 ``apigatewayv2``) and usage plans (boto3 ``apigateway``)
against botocore's models and AWS's documentation, plus a Mangum/Starlette app behind an
HTTP API in both payload formats.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import ServerProcess
from tests.integration.test_function_urls import STARLETTE_APP, _pip_target, request

ROLE = "arn:aws:iam::000000000000:role/r"

ECHO_V1 = """
import json
def handler(event, context):
    b = event.get("body") or ""
    if b.startswith("RET:"):
        return json.loads(b[4:])
    return {"statusCode": 200, "body": json.dumps(event)}
"""


@pytest.fixture(scope="module")
def apigw(server: ServerProcess) -> Any:
    return server.client("apigatewayv2")


def _host(api_id: str, server: ServerProcess) -> str:
    return f"{api_id}.execute-api.localhost:{server.port}"


def _http_api(apigw: Any, fn_arn: str, version: str, route: str = "ANY /{proxy+}") -> str:
    api_id: str = apigw.create_api(Name=f"compat-{version}", ProtocolType="HTTP")["ApiId"]
    iid = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn_arn,
        PayloadFormatVersion=version,
    )["IntegrationId"]  # fmt: skip
    apigw.create_route(ApiId=api_id, RouteKey=route, Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="$default")
    return api_id


# -- deployments: the CLI's "create-deployment --stage-name" step ------------------------


def test_deployments_lifecycle(apigw: Any, make_function: Any, server: ServerProcess) -> None:
    fn = make_function(ECHO_V1)
    api_id = apigw.create_api(Name="deploy", ProtocolType="HTTP")["ApiId"]
    iid = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
        PayloadFormatVersion="2.0",
    )["IntegrationId"]  # fmt: skip
    apigw.create_route(ApiId=api_id, RouteKey="GET /hi", Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="prod")
    dep = apigw.create_deployment(ApiId=api_id, StageName="prod", Description="first")
    assert dep["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert dep["DeploymentStatus"] == "DEPLOYED" and dep["AutoDeployed"] is False
    assert dep["Description"] == "first" and dep["CreatedDate"].tzinfo is not None
    dep_id = dep["DeploymentId"]
    assert apigw.get_stage(ApiId=api_id, StageName="prod")["DeploymentId"] == dep_id
    got = apigw.get_deployment(ApiId=api_id, DeploymentId=dep_id)
    assert got["DeploymentId"] == dep_id and got["DeploymentStatus"] == "DEPLOYED"
    items = apigw.get_deployments(ApiId=api_id)["Items"]
    assert [d["DeploymentId"] for d in items] == [dep_id]
    upd = apigw.update_deployment(ApiId=api_id, DeploymentId=dep_id, Description="renamed")
    assert upd["Description"] == "renamed"
    # The deployed stage serves.
    status, _, _, data = request(server, "GET", "/prod/hi", host=_host(api_id, server))
    assert status == 200, data
    # A deployment a stage uses cannot be deleted; an unused one can.
    with pytest.raises(ClientError) as exc:
        apigw.delete_deployment(ApiId=api_id, DeploymentId=dep_id)
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    spare = apigw.create_deployment(ApiId=api_id)["DeploymentId"]
    apigw.delete_deployment(ApiId=api_id, DeploymentId=spare)
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_deployment(ApiId=api_id, DeploymentId=spare)
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.create_deployment(ApiId=api_id, StageName="nostage")
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.create_deployment(ApiId="nosuchapi0", StageName="prod")


# -- payload format 1.0 -------------------------------------------------------------------


def test_v1_multi_value_headers_keep_commas(
    apigw: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(ECHO_V1)
    api_id = _http_api(apigw, fn["FunctionArn"], "1.0")
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    accept = "text/html,application/xhtml+xml"
    status, _, _, data = request(
        server, "GET", "/p", host=_host(api_id, server),
        headers=[("User-Agent", ua), ("Accept", accept)],
    )  # fmt: skip
    assert status == 200, data
    ev = json.loads(data)
    assert ev["headers"]["user-agent"] == ua
    assert ev["multiValueHeaders"]["user-agent"] == [ua]
    assert ev["multiValueHeaders"]["accept"] == [accept]


# -- response mapping -----------------------------------------------------------------------


def test_boolean_header_values_are_json_literals(
    apigw: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(ECHO_V1)
    api_id = _http_api(apigw, fn["FunctionArn"], "2.0")
    answer = {"statusCode": 200, "headers": {"X-Flag": True, "X-N": 3}, "body": "ok"}
    status, hdrs, _, data = request(
        server, "POST", "/r", host=_host(api_id, server), body=b"RET:" + json.dumps(answer).encode()
    )
    assert status == 200 and data == b"ok"
    assert hdrs["x-flag"] == "true" and hdrs["x-n"] == "3"


# -- Mangum behind an HTTP API ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mangum_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pkg = tmp_path_factory.mktemp("mangum-pkg")
    _pip_target(pkg)
    (pkg / "app.py").write_text(STARLETTE_APP.replace("handler = Mangum", HEADERS_ROUTE))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(pkg.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, str(path.relative_to(pkg)))
    return buf.getvalue()


HEADERS_ROUTE = """
async def headers(request: Request) -> JSONResponse:
    return JSONResponse({"ua": request.headers.get("user-agent"), "path": request.url.path})


app.router.routes.append(Route("/headers", headers))
handler = Mangum"""


@pytest.mark.parametrize("version", ["2.0", "1.0"])
def test_mangum_starlette_behind_http_api(
    server: ServerProcess, lam: Any, apigw: Any, mangum_zip: bytes, version: str
) -> None:
    name = f"mangum-api-{version.replace('.', '')}-{int(time.time())}"
    fn = lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": mangum_zip}, Timeout=30, MemorySize=256,
    )  # fmt: skip
    try:
        host = _host(_http_api(apigw, fn["FunctionArn"], version), server)
        status, hdrs, _, data = request(server, "GET", "/items/42?q=find", host=host)
        assert status == 200, data
        assert json.loads(data) == {"id": "42", "q": "find"}
        assert hdrs["content-type"] == "application/json"
        status, _, _, data = request(
            server, "POST", "/echo", host=host,
            headers=[("Content-Type", "application/json"), ("X-Token", "t0k")],
            body=b'{"n": [1, 2]}',
        )  # fmt: skip
        assert status == 201, data
        assert json.loads(data) == {"got": {"n": [1, 2]}, "token": "t0k"}
        status, _, raw, data = request(
            server, "GET", "/cookies", host=host, headers=[("Cookie", "a=1; b=2")]
        )
        assert status == 200 and json.loads(data) == {"seen": {"a": "1", "b": "2"}}
        set_cookies = [v for k, v in raw if k.lower() == "set-cookie"]
        assert [c.split(";")[0] for c in set_cookies] == ["session=abc123", "theme=dark"]
        status, hdrs, _, data = request(server, "GET", "/image.png", host=host)
        assert status == 200 and hdrs["content-type"] == "image/png"
        assert data == bytes(range(256))
        ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        status, _, _, data = request(
            server, "GET", "/headers", host=host, headers=[("User-Agent", ua)]
        )
        assert status == 200 and json.loads(data) == {"ua": ua, "path": "/headers"}
        status, _, _, data = request(server, "GET", "/missing", host=host)
        assert status == 404
    finally:
        lam.delete_function(FunctionName=name)


# -- resource policies: the "add-permission" step of function URL and API set-ups ---------


def test_add_permission_get_policy_remove_permission(lam: Any, make_function: Any) -> None:
    fn = make_function(ECHO_V1)
    name, arn = fn["FunctionName"], fn["FunctionArn"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as nf:
        lam.get_policy(FunctionName=name)
    assert nf.value.response["Error"]["Message"] == "The resource you requested does not exist."
    resp = lam.add_permission(
        FunctionName=name, StatementId="FunctionURLAllowPublicAccess",
        Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE",
    )  # fmt: skip
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(resp["Statement"]) == {
        "Sid": "FunctionURLAllowPublicAccess",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunctionUrl",
        "Resource": arn,
        "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
    }
    source = "arn:aws:execute-api:us-east-1:000000000000:abcdef1234/*/*"
    lam.add_permission(
        FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com", SourceArn=source,
    )  # fmt: skip
    lam.add_permission(
        FunctionName=name, StatementId="acct", Action="lambda:InvokeFunction",
        Principal="111122223333",
    )  # fmt: skip
    got = lam.get_policy(FunctionName=name)
    policy = json.loads(got["Policy"])
    assert policy["Version"] == "2012-10-17" and got["RevisionId"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert list(by_sid) == ["FunctionURLAllowPublicAccess", "apigw", "acct"]
    assert by_sid["apigw"]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert by_sid["apigw"]["Condition"] == {"ArnLike": {"AWS:SourceArn": source}}
    assert by_sid["acct"]["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    # Bad input, each with Lambda's error.
    with pytest.raises(lam.exceptions.ResourceConflictException) as conflict:
        lam.add_permission(
            FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction", Principal="*"
        )
    assert conflict.value.response["Error"]["Message"] == (
        "The statement id (apigw) provided already exists. Please provide a new statement id,"
        " or remove the existing statement."
    )
    with pytest.raises(ClientError) as bad:
        lam.add_permission(FunctionName=name, StatementId="x", Action="invoke", Principal="*")
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.add_permission(
            FunctionName=name, StatementId="x", Action="lambda:InvokeFunction", Principal="*",
            Qualifier="nosuchalias",
        )  # fmt: skip
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.remove_permission(FunctionName=name, StatementId="apigw", RevisionId="stale")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as missing:
        lam.remove_permission(FunctionName=name, StatementId="nosuch")
    assert missing.value.response["Error"]["Message"] == (
        "Statement nosuch is not found in resource policy."
    )
    for sid in ("FunctionURLAllowPublicAccess", "apigw", "acct"):
        lam.remove_permission(FunctionName=name, StatementId=sid)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name)


def test_aws_cli_function_url_setup(server: ServerProcess, make_function: Any) -> None:
    """The documented CLI steps: create-function-url-config, then add-permission."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    fn = make_function(ECHO_V1)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", server.endpoint, "lambda"]

    def cli(*args: str) -> Any:
        out = subprocess.run([*aws, *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else None

    url = cli("create-function-url-config", "--function-name", fn["FunctionName"],
              "--auth-type", "NONE")["FunctionUrl"]  # fmt: skip
    stmt = cli("add-permission", "--function-name", fn["FunctionName"],
               "--statement-id", "FunctionURLAllowPublicAccess",
               "--action", "lambda:InvokeFunctionUrl", "--principal", "*",
               "--function-url-auth-type", "NONE")["Statement"]  # fmt: skip
    assert json.loads(stmt)["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    status, _, _, data = request(server, "GET", "/cli?x=1", host=url.split("//", 1)[1].rstrip("/"))
    assert status == 200 and json.loads(data)["rawQueryString"] == "x=1"


def test_disabled_execute_api_endpoint_is_forbidden(
    apigw: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(ECHO_V1)
    api_id = _http_api(apigw, fn["FunctionArn"], "2.0")
    assert request(server, "GET", "/x", host=_host(api_id, server))[0] == 200
    api = apigw.update_api(ApiId=api_id, DisableExecuteApiEndpoint=True)
    assert api["DisableExecuteApiEndpoint"] is True
    status, _, _, data = request(server, "GET", "/x", host=_host(api_id, server))
    assert status == 403 and json.loads(data) == {"message": "Forbidden"}
    apigw.update_api(ApiId=api_id, DisableExecuteApiEndpoint=False)
    assert request(server, "GET", "/x", host=_host(api_id, server))[0] == 200


def test_tags_of_apis_and_stages(apigw: Any) -> None:
    api_id = apigw.create_api(Name="tagged", ProtocolType="HTTP", Tags={"team": "a"})["ApiId"]
    apigw.create_stage(ApiId=api_id, StageName="dev")
    arn = f"arn:aws:apigateway:us-east-1::/apis/{api_id}"
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {"team": "a"}
    resp = apigw.tag_resource(ResourceArn=arn, Tags={"env": "test", "team": "b"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {"team": "b", "env": "test"}
    assert apigw.get_api(ApiId=api_id)["Tags"] == {"team": "b", "env": "test"}
    apigw.untag_resource(ResourceArn=arn, TagKeys=["team", "absent"])
    assert apigw.get_tags(ResourceArn=arn)["Tags"] == {"env": "test"}
    stage_arn = f"{arn}/stages/dev"
    apigw.tag_resource(ResourceArn=stage_arn, Tags={"tier": "1"})
    assert apigw.get_stage(ApiId=api_id, StageName="dev")["Tags"] == {"tier": "1"}
    assert apigw.get_tags(ResourceArn=stage_arn)["Tags"] == {"tier": "1"}
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_tags(ResourceArn="arn:aws:apigateway:us-east-1::/apis/nosuchapi0")
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.tag_resource(ResourceArn=f"{arn}/stages/nostage", Tags={"a": "b"})
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.tag_resource(ResourceArn=arn, Tags={"aws:x": "y"})
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.get_tags(ResourceArn="arn:aws:lambda:us-east-1:000000000000:function:f")


# -- API keys and usage plans (boto3 "apigateway") ------------------------------------------


def test_usage_plan_lists_page_and_filter(server: ServerProcess, apigw: Any) -> None:
    v1 = server.client("apigateway")
    keys = [v1.create_api_key(name=f"pg-{i}-{time.time_ns()}", enabled=True) for i in range(3)]
    first = v1.get_api_keys(limit=2)
    assert len(first["items"]) == 2 and first["position"]
    listed = [k["id"] for pg in v1.get_paginator("get_api_keys").paginate(
        PaginationConfig={"PageSize": 2}) for k in pg["items"]]  # fmt: skip
    assert len(listed) == len(set(listed)) and {k["id"] for k in keys} <= set(listed)
    api_id = apigw.create_api(Name="plans", ProtocolType="HTTP")["ApiId"]
    apigw.create_stage(ApiId=api_id, StageName="prod")
    stage = [{"apiId": api_id, "stage": "prod"}]
    with_key = v1.create_usage_plan(name="with-key", apiStages=stage)["id"]
    without = v1.create_usage_plan(name="without-key")["id"]
    v1.create_usage_plan_key(usagePlanId=with_key, keyId=keys[0]["id"], keyType="API_KEY")
    v1.create_usage_plan_key(usagePlanId=with_key, keyId=keys[1]["id"], keyType="API_KEY")
    by_key = v1.get_usage_plans(keyId=keys[0]["id"])["items"]
    assert [p["id"] for p in by_key] == [with_key]
    assert v1.get_usage_plans(keyId=keys[2]["id"])["items"] == []
    all_plans = {p["id"] for p in v1.get_usage_plans(limit=500)["items"]}
    assert {with_key, without} <= all_plans
    named = v1.get_usage_plan_keys(usagePlanId=with_key, nameQuery=keys[1]["name"])["items"]
    assert [k["id"] for k in named] == [keys[1]["id"]]
    one = v1.get_usage_plan_keys(usagePlanId=with_key, limit=1)
    assert len(one["items"]) == 1 and one["position"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v2/apis"), ("POST", "/apikeys"), ("POST", "/usageplans")],
)
def test_body_that_is_not_json_is_a_bad_request(
    server: ServerProcess, method: str, path: str
) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = AWSRequest(method=method, url=server.endpoint + path, data=b"{not json",
                        headers={"Content-Type": "application/json"})  # fmt: skip
    SigV4Auth(Credentials("test", "test"), "apigateway", "us-east-1").add_auth(signed)
    status, hdrs, _, data = request(
        server, method, path, headers=list(signed.headers.items()), body=b"{not json"
    )
    assert status == 400 and hdrs["x-amzn-errortype"] == "BadRequestException"
    assert "message" in json.loads(data)


SLOW = """
import time
def handler(event, context):
    time.sleep(3)
    return {"statusCode": 200, "body": "late"}
"""


def test_integration_timeout_is_service_unavailable(
    apigw: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(SLOW, Timeout=10)
    api_id = apigw.create_api(Name="slow", ProtocolType="HTTP")["ApiId"]
    iid = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
        PayloadFormatVersion="2.0", TimeoutInMillis=1000,
    )["IntegrationId"]  # fmt: skip
    apigw.create_route(ApiId=api_id, RouteKey="$default", Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="$default")
    start = time.monotonic()
    status, _, _, data = request(server, "GET", "/", host=_host(api_id, server))
    assert status == 503 and json.loads(data) == {"message": "Service Unavailable"}
    assert time.monotonic() - start < 2.9
    # A generous timeout lets the same function answer.
    apigw.update_integration(ApiId=api_id, IntegrationId=iid, TimeoutInMillis=30000)
    status, _, _, data = request(server, "GET", "/", host=_host(api_id, server))
    assert status == 200 and data == b"late"


def test_deleting_an_alias_deletes_its_url_and_policy(
    lam: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(ECHO_V1)
    name = fn["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    url = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE")
    host = url["FunctionUrl"].split("//", 1)[1].rstrip("/")
    assert url["FunctionArn"].endswith(":live")
    assert request(server, "GET", "/", host=host)[0] == 200
    lam.add_permission(
        FunctionName=name, Qualifier="live", StatementId="s", Principal="*",
        Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE",
    )  # fmt: skip
    lam.delete_alias(FunctionName=name, Name="live")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=name, Qualifier="live")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name, Qualifier="live")
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []
    status, _, _, data = request(server, "GET", "/", host=host)
    assert status == 404 and json.loads(data) == {"message": "Not Found"}


def test_stage_variables_in_the_integration_uri(
    apigw: Any, make_function: Any, server: ServerProcess
) -> None:
    blue = make_function(ECHO_V1)
    green = make_function(ECHO_V1.replace("json.dumps(event)", '"green"'))
    prefix = blue["FunctionArn"].rsplit(":", 1)[0]
    api_id = apigw.create_api(Name="stagevars", ProtocolType="HTTP")["ApiId"]
    iid = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
        IntegrationUri=prefix + ":${stageVariables.fn}",
    )["IntegrationId"]  # fmt: skip
    apigw.create_route(ApiId=api_id, RouteKey="GET /who", Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="blue", StageVariables={"fn": blue["FunctionName"]})
    apigw.create_stage(
        ApiId=api_id, StageName="green", StageVariables={"fn": green["FunctionName"]}
    )
    apigw.create_stage(ApiId=api_id, StageName="bare")
    host = _host(api_id, server)
    status, _, _, data = request(server, "GET", "/blue/who", host=host)
    assert status == 200 and json.loads(data)["requestContext"]["stage"] == "blue"
    assert request(server, "GET", "/green/who", host=host)[3] == b"green"
    status, _, _, data = request(server, "GET", "/bare/who", host=host)
    assert status == 500 and json.loads(data) == {"message": "Internal Server Error"}


def test_aws_iam_route_needs_a_signature(
    apigw: Any, make_function: Any, server: ServerProcess
) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fn = make_function(ECHO_V1)
    api_id = _http_api(apigw, fn["FunctionArn"], "2.0", route="GET /private")
    route = apigw.get_routes(ApiId=api_id)["Items"][0]
    upd = apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], AuthorizationType="AWS_IAM")
    assert upd["AuthorizationType"] == "AWS_IAM"
    host = _host(api_id, server)
    status, _, _, data = request(server, "GET", "/private", host=host)
    assert status == 403 and json.loads(data) == {"message": "Forbidden"}
    signed = AWSRequest(method="GET", url=f"http://{host}/private?a=1")
    SigV4Auth(Credentials("test", "test"), "execute-api", "us-east-1").add_auth(signed)
    headers = [(k, v) for k, v in signed.headers.items() if k.lower() != "host"]
    status, _, _, data = request(server, "GET", "/private?a=1", host=host, headers=headers)
    assert status == 200, data
    iam = json.loads(data)["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == "test" and iam["accountId"] == "000000000000"
    forged = [(k, v[:-4] + "0000" if k == "Authorization" else v) for k, v in headers]
    assert request(server, "GET", "/private?a=1", host=host, headers=forged)[0] == 403
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], AuthorizationType="JWT")


def test_version_policies_are_their_own(lam: Any, make_function: Any) -> None:
    fn = make_function(ECHO_V1)
    name = fn["FunctionName"]
    v1 = lam.publish_version(FunctionName=name)["Version"]
    stmt = lam.add_permission(
        FunctionName=name, Qualifier=v1, StatementId="v", Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
    )["Statement"]  # fmt: skip
    assert json.loads(stmt)["Resource"] == f"{fn['FunctionArn']}:{v1}"
    assert json.loads(stmt)["Principal"] == {"Service": "events.amazonaws.com"}
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name)  # the unqualified function has none
    assert json.loads(lam.get_policy(FunctionName=f"{name}:{v1}")["Policy"])["Statement"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.get_policy(FunctionName=f"{name}:{v1}", Qualifier="other")
    lam.delete_function(FunctionName=name, Qualifier=v1)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name, Qualifier=v1)


def test_http_api_preflight_is_204_function_url_preflight_200(
    apigw: Any, lam: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(ECHO_V1)
    cors = {"AllowOrigins": ["https://a.example"], "AllowMethods": ["GET"]}
    api_id = apigw.create_api(Name="cors", ProtocolType="HTTP", CorsConfiguration=cors)["ApiId"]
    iid = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
        PayloadFormatVersion="2.0",
    )["IntegrationId"]  # fmt: skip
    apigw.create_route(ApiId=api_id, RouteKey="GET /x", Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="$default")
    pre = [("Origin", "https://a.example"), ("Access-Control-Request-Method", "GET")]
    status, hdrs, _, data = request(
        server, "OPTIONS", "/x", host=_host(api_id, server), headers=pre
    )
    assert status == 204 and data == b""
    assert hdrs["access-control-allow-origin"] == "https://a.example"
    url = lam.create_function_url_config(
        FunctionName=fn["FunctionName"], AuthType="NONE", Cors=cors
    )
    host = url["FunctionUrl"].split("//", 1)[1].rstrip("/")
    status, hdrs, _, _ = request(server, "OPTIONS", "/x", host=host, headers=pre)
    assert status == 200 and hdrs["access-control-allow-origin"] == "https://a.example"


def test_v1_identity_has_every_documented_member(
    apigw: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(ECHO_V1)
    api_id = _http_api(apigw, fn["FunctionArn"], "1.0")
    status, _, _, data = request(
        server, "GET", "/id", host=_host(api_id, server), headers=[("User-Agent", "ua/1")]
    )
    assert status == 200, data
    identity = json.loads(data)["requestContext"]["identity"]
    assert identity["sourceIp"] == "127.0.0.1" and identity["userAgent"] == "ua/1"
    for member in ("accessKey", "accountId", "caller", "user", "userArn", "cognitoIdentityId"):
        assert member in identity and identity[member] is None


def test_aws_iam_url_refusal_is_access_denied(
    lam: Any, make_function: Any, server: ServerProcess
) -> None:
    fn = make_function(ECHO_V1)
    url = lam.create_function_url_config(FunctionName=fn["FunctionName"], AuthType="AWS_IAM")
    host = url["FunctionUrl"].split("//", 1)[1].rstrip("/")
    status, hdrs, _, data = request(server, "GET", "/", host=host)
    assert status == 403 and json.loads(data) == {"Message": "Forbidden"}
    assert hdrs["x-amzn-errortype"] == "AccessDeniedException"


def test_stage_deployment_id(apigw: Any) -> None:
    api_id = apigw.create_api(Name="stage-dep", ProtocolType="HTTP")["ApiId"]
    dep = apigw.create_deployment(ApiId=api_id)["DeploymentId"]
    stage = apigw.create_stage(ApiId=api_id, StageName="v1", DeploymentId=dep)
    assert stage["DeploymentId"] == dep
    dep2 = apigw.create_deployment(ApiId=api_id)["DeploymentId"]
    assert (
        apigw.update_stage(ApiId=api_id, StageName="v1", DeploymentId=dep2)["DeploymentId"] == dep2
    )
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.create_stage(ApiId=api_id, StageName="v2", DeploymentId="nosuch")
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.update_stage(ApiId=api_id, StageName="v1", DeploymentId="nosuch")
    assert apigw.get_stage(ApiId=api_id, StageName="v1")["DeploymentId"] == dep2
