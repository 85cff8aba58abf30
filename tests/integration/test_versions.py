"""Versions through boto3: publish, immutability, qualifiers, ARNs, preconditions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import invoke_json
from tests.helpers import make_zip

CODE = """
import os
def handler(event, context):
    return {"tag": "%s", "version": context.function_version,
            "arn": context.invoked_function_arn,
            "env": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
            "color": os.environ.get("COLOR")}
"""


def _code(tag: str) -> bytes:
    return make_zip({"app.py": CODE % tag})


def test_publish_update_latest_and_invoke_by_version(lam: Any, make_function: Any) -> None:
    fn = make_function(CODE % "one", Environment={"Variables": {"COLOR": "red"}})
    name = fn["FunctionName"]
    v1 = lam.publish_version(FunctionName=name, Description="first")
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == fn["FunctionArn"] + ":1"
    assert v1["Description"] == "first"
    assert v1["CodeSha256"] == fn["CodeSha256"]
    assert v1["RevisionId"] != fn["RevisionId"]
    # Nothing changed: publishing again returns the same version.
    assert lam.publish_version(FunctionName=name)["Version"] == "1"

    lam.update_function_code(FunctionName=name, ZipFile=_code("two"))
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"COLOR": "blue"}}
    )
    v2 = lam.publish_version(FunctionName=name)
    assert v2["Version"] == "2"

    lam.update_function_code(FunctionName=name, ZipFile=_code("three"))

    # Versions are immutable: version 1 still runs the first code and configuration.
    resp, body = invoke_json(lam, name, Qualifier="1")
    assert resp["ExecutedVersion"] == "1"
    assert body["tag"] == "one" and body["color"] == "red"
    assert body["version"] == body["env"] == "1"
    assert body["arn"] == fn["FunctionArn"] + ":1"
    resp, body = invoke_json(lam, name, Qualifier="2")
    assert resp["ExecutedVersion"] == "2" and body["tag"] == "two" and body["color"] == "blue"
    resp, body = invoke_json(lam, name)
    assert resp["ExecutedVersion"] == "$LATEST" and body["tag"] == "three"
    assert body["version"] == "$LATEST"
    # By qualified ARN, and by name:qualifier.
    resp, body = invoke_json(lam, fn["FunctionArn"] + ":1")
    assert resp["ExecutedVersion"] == "1" and body["tag"] == "one"
    resp, body = invoke_json(lam, f"{name}:2")
    assert resp["ExecutedVersion"] == "2" and body["tag"] == "two"
    resp, body = invoke_json(lam, f"{name}:$LATEST")
    assert body["tag"] == "three"

    got = lam.get_function(FunctionName=name, Qualifier="1")
    assert got["Configuration"]["Version"] == "1"
    assert got["Configuration"]["FunctionArn"] == fn["FunctionArn"] + ":1"
    assert got["Configuration"]["Environment"]["Variables"] == {"COLOR": "red"}
    conf = lam.get_function_configuration(FunctionName=name, Qualifier="2")
    assert conf["Version"] == "2" and conf["CodeSha256"] == v2["CodeSha256"]
    assert lam.get_function_configuration(FunctionName=name)["Version"] == "$LATEST"

    versions = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    # AWS lists $LATEST under its qualified ARN.
    assert versions[0]["FunctionArn"] == fn["FunctionArn"] + ":$LATEST"
    assert versions[1]["Description"] == "first"
    page = lam.list_versions_by_function(FunctionName=name, MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    rest = lam.list_versions_by_function(FunctionName=name, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2"]
    assert "NextMarker" not in rest


def test_delete_one_version_numbers_never_reused(lam: Any, make_function: Any) -> None:
    name = make_function(CODE % "a")["FunctionName"]
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=_code("b"))
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    lam.delete_function(FunctionName=name, Qualifier="2")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name, Qualifier="2")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.invoke(FunctionName=name, Qualifier="2", Payload=b"{}")
    assert exc.value.response["Error"]["Message"].endswith(f"function:{name}:2")
    # Deleting an absent version of an existing function is a no-op, as on AWS.
    lam.delete_function(FunctionName=name, Qualifier="2")
    lam.update_function_code(FunctionName=name, ZipFile=_code("c"))
    assert lam.publish_version(FunctionName=name)["Version"] == "3"
    _, body = invoke_json(lam, name, Qualifier="1")
    assert body["tag"] == "a"
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == [
        "$LATEST", "1", "3"
    ]  # fmt: skip
    # Deleting the function removes every version; a re-created one starts again at 1.
    lam.delete_function(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name, Qualifier="1")
    make_function(CODE % "new", name=name)
    assert lam.publish_version(FunctionName=name)["Version"] == "1"


def test_publish_preconditions(lam: Any, make_function: Any) -> None:
    fn = make_function(CODE % "p")
    name = fn["FunctionName"]
    with pytest.raises(ClientError) as exc:
        lam.publish_version(FunctionName=name, RevisionId="not-the-revision")
    assert exc.value.response["Error"]["Code"] == "PreconditionFailedException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc2:
        lam.publish_version(FunctionName=name, CodeSha256="bm90LXRoZS1oYXNo")
    assert "CodeSHA256" in exc2.value.response["Error"]["Message"]
    v = lam.publish_version(
        FunctionName=name, RevisionId=fn["RevisionId"], CodeSha256=fn["CodeSha256"]
    )
    assert v["Version"] == "1"


def test_version_bad_input(lam: Any, make_function: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.publish_version(FunctionName="no-such-function-v")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_versions_by_function(FunctionName="no-such-function-v")
    name = make_function(CODE % "x")["FunctionName"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_function_configuration(FunctionName=name, Qualifier="7")
    assert exc.value.response["Error"]["Message"].endswith(f"function:{name}:7")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.get_function(FunctionName=f"{name}:1", Qualifier="2")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.delete_function(FunctionName=name, Qualifier="some-alias")


def test_publish_flag_on_create_and_code_update(lam: Any, make_function: Any) -> None:
    fn = make_function(CODE % "c1", Publish=True)
    assert fn["Version"] == "1"
    assert fn["FunctionArn"].endswith(":1")
    name = fn["FunctionName"]
    updated = lam.update_function_code(FunctionName=name, ZipFile=_code("c2"), Publish=True)
    assert updated["Version"] == "2"
    _, body = invoke_json(lam, name, Qualifier="1")
    assert body["tag"] == "c1"
    _, body = invoke_json(lam, name, Qualifier="2")
    assert body["tag"] == "c2"


def test_versions_aliases_and_urls_survive_restart(tmp_path: Any) -> None:
    from tests.conftest import ROLE
    from tests.helpers import start_server
    from tests.integration.test_function_urls import request, url_host

    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        lam = srv.client("lambda")
        lam.create_function(
            FunctionName="durable", Runtime="python3.11", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": _code("v1")}, Timeout=30, Publish=True,
        )  # fmt: skip
        lam.update_function_code(FunctionName="durable", ZipFile=_code("latest"))
        lam.create_alias(FunctionName="durable", Name="live", FunctionVersion="1")
        url = lam.create_function_url_config(
            FunctionName="durable", Qualifier="live", AuthType="NONE"
        )["FunctionUrl"]
        srv.stop()
        srv = srv.restart()
        lam = srv.client("lambda")
        resp, body = invoke_json(lam, "durable", Qualifier="live")
        assert resp["ExecutedVersion"] == "1" and body["tag"] == "v1"
        _, body = invoke_json(lam, "durable")
        assert body["tag"] == "latest"
        status, _, _, data = request(srv, "GET", "/", host=url_host(url))
        assert status == 200 and json.loads(data)["tag"] == "v1"
        assert lam.publish_version(FunctionName="durable")["Version"] == "2"
    finally:
        srv.stop()
