"""Aliases through boto3: CRUD, invoking by alias, weighted routing, bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import invoke_json
from tests.helpers import make_zip

CODE = """
def handler(event, context):
    return {"tag": "%s", "version": context.function_version,
            "arn": context.invoked_function_arn}
"""


def _two_versions(lam: Any, make_function: Any) -> tuple[str, str]:
    fn = make_function(CODE % "one")
    name = fn["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": CODE % "two"}))
    lam.publish_version(FunctionName=name)
    return name, fn["FunctionArn"]


def test_alias_crud_and_invoke(lam: Any, make_function: Any) -> None:
    name, arn = _two_versions(lam, make_function)
    created = lam.create_alias(
        FunctionName=name, Name="live", FunctionVersion="1", Description="prod"
    )
    assert created["AliasArn"] == f"{arn}:live"
    assert created["FunctionVersion"] == "1" and created["Description"] == "prod"
    assert created["RevisionId"]
    got = lam.get_alias(FunctionName=name, Name="live")
    assert got["AliasArn"] == created["AliasArn"] and got["RevisionId"] == created["RevisionId"]

    resp, body = invoke_json(lam, name, Qualifier="live")
    assert resp["ExecutedVersion"] == "1" and body["tag"] == "one"
    assert body["version"] == "1"
    assert body["arn"] == f"{arn}:live"  # the invoked ARN keeps the alias
    resp, body = invoke_json(lam, f"{arn}:live")
    assert resp["ExecutedVersion"] == "1"
    conf = lam.get_function_configuration(FunctionName=name, Qualifier="live")
    assert conf["Version"] == "1"

    updated = lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    assert updated["FunctionVersion"] == "2" and updated["Description"] == "prod"
    assert updated["RevisionId"] != created["RevisionId"]
    resp, body = invoke_json(lam, name, Qualifier="live")
    assert resp["ExecutedVersion"] == "2" and body["tag"] == "two"

    with pytest.raises(ClientError) as exc:
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion="1", RevisionId="stale")
    assert exc.value.response["Error"]["Code"] == "PreconditionFailedException"

    lam.create_alias(FunctionName=name, Name="dev", FunctionVersion="$LATEST")
    aliases = lam.list_aliases(FunctionName=name)["Aliases"]
    assert [a["Name"] for a in aliases] == ["dev", "live"]
    only = lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]
    assert [a["Name"] for a in only] == ["live"]
    page = lam.list_aliases(FunctionName=name, MaxItems=1)
    assert len(page["Aliases"]) == 1 and page["NextMarker"]

    # A version an alias points to cannot be deleted.
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.delete_function(FunctionName=name, Qualifier="2")

    lam.delete_alias(FunctionName=name, Name="live")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as nf:
        lam.get_alias(FunctionName=name, Name="live")
    assert nf.value.response["Error"]["Message"] == f"Cannot find alias arn: {arn}:live"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")
    lam.delete_function(FunctionName=name, Qualifier="2")


def test_weighted_alias_splits_by_weight(lam: Any, make_function: Any) -> None:
    name, _ = _two_versions(lam, make_function)
    alias = lam.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    n = 200
    counts = {"1": 0, "2": 0}
    for _ in range(n):
        resp, body = invoke_json(lam, name, Qualifier="canary")
        counts[resp["ExecutedVersion"]] += 1
        assert body["version"] == resp["ExecutedVersion"]
        assert body["tag"] == ("one" if resp["ExecutedVersion"] == "1" else "two")
    # Binomial(200, 0.5): mean 100, sd ~7.07; 4.5 sd is a false-failure rate of ~7e-6.
    bound = 4.5 * math.sqrt(n * 0.25)
    assert abs(counts["2"] - n / 2) <= bound, counts
    # Weight 0 routes nothing to the second version; weight 1 everything.
    lam.update_alias(
        FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}}
    )
    ran = {invoke_json(lam, name, Qualifier="canary")[0]["ExecutedVersion"] for _ in range(20)}
    assert ran == {"1"}
    lam.update_alias(
        FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}}
    )
    ran = {invoke_json(lam, name, Qualifier="canary")[0]["ExecutedVersion"] for _ in range(20)}
    assert ran == {"2"}
    # Removing the routing config.
    lam.update_alias(FunctionName=name, Name="canary", RoutingConfig={})
    assert "RoutingConfig" not in lam.get_alias(FunctionName=name, Name="canary")


def test_alias_bad_input(lam: Any, make_function: Any) -> None:
    name, arn = _two_versions(lam, make_function)
    lam.create_alias(FunctionName=name, Name="a1", FunctionVersion="1")
    with pytest.raises(lam.exceptions.ResourceConflictException) as exc:
        lam.create_alias(FunctionName=name, Name="a1", FunctionVersion="2")
    assert exc.value.response["Error"]["Message"] == f"Alias already exists: {arn}:a1"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_alias(FunctionName=name, Name="a2", FunctionVersion="9")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_alias(FunctionName="no-such-fn-alias", Name="a2", FunctionVersion="1")
    with pytest.raises(ClientError) as exc2:
        lam.create_alias(FunctionName=name, Name="123", FunctionVersion="1")
    assert exc2.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc3:
        lam.create_alias(FunctionName=name, Name="bad", FunctionVersion="v1")
    assert exc3.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_alias(
            FunctionName=name, Name="w", FunctionVersion="$LATEST",
            RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
        )  # fmt: skip
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_alias(
            FunctionName=name, Name="w", FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
        )  # fmt: skip
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_alias(
            FunctionName=name, Name="w", FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"5": 0.5}},
        )  # fmt: skip
    with pytest.raises(ClientError) as exc4:
        lam.create_alias(
            FunctionName=name, Name="w", FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}},
        )  # fmt: skip
    assert exc4.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.update_alias(FunctionName=name, Name="nope", FunctionVersion="1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_alias(FunctionName=name, Name="nope")
