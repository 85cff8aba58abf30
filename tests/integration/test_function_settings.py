"""Settings beside a configuration: tags, runtime management, recursion (no RevisionId change)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_tag_list_untag(lam: Any, make_function: Any) -> None:
    fn = make_function(Tags={"team": "core"})
    arn, rev = fn["FunctionArn"], fn["RevisionId"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core"}
    resp = lam.tag_resource(Resource=arn, Tags={"env": "prod", "team": "platform"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "platform", "env": "prod"}
    got = lam.get_function(FunctionName=fn["FunctionName"])
    assert got["Tags"] == {"team": "platform", "env": "prod"}
    assert got["Configuration"]["RevisionId"] == rev  # tags are not configuration
    version = lam.publish_version(FunctionName=fn["FunctionName"])["Version"]
    lam.untag_resource(Resource=arn, TagKeys=["team", "absent"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "prod"}
    # Every version shows the function's tags.
    assert lam.get_function(FunctionName=fn["FunctionName"], Qualifier=version)["Tags"] == {
        "env": "prod"
    }


def test_bad_tag_requests(lam: Any, make_function: Any) -> None:
    fn = make_function()
    arn = fn["FunctionArn"]
    with pytest.raises(ClientError) as exc:
        lam.list_tags(Resource=arn + ":1")
    assert _error(exc)[0] == "InvalidParameterValueException"
    assert "aliases and versions are not supported" in _error(exc)[1]
    with pytest.raises(ClientError) as exc:
        lam.list_tags(Resource=arn.replace(fn["FunctionName"], "no-such-function"))
    assert _error(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.list_tags(Resource=arn.replace("000000000000", "111111111111"))
    assert _error(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.tag_resource(Resource=arn, Tags={"aws:reserved": "x"})
    assert _error(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.tag_resource(Resource=arn, Tags={f"k{i}": "v" for i in range(51)})
    assert _error(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.tag_resource(Resource=arn, Tags={"k": "v" * 257})
    assert _error(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        make_function(Tags={"aws:x": "y"})
    assert _error(exc)[0] == "InvalidParameterValueException"
    assert lam.list_tags(Resource=arn)["Tags"] == {}  # the server keeps serving


def test_runtime_management_and_recursion_configs(lam: Any, make_function: Any) -> None:
    fn = make_function()
    name, arn, rev = fn["FunctionName"], fn["FunctionArn"], fn["RevisionId"]
    got = lam.get_runtime_management_config(FunctionName=name)
    assert (got["UpdateRuntimeOn"], got["FunctionArn"]) == ("Auto", arn)
    put = lam.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="FunctionUpdate")
    assert put["UpdateRuntimeOn"] == "FunctionUpdate" and put["FunctionArn"] == arn
    version_arn = "arn:aws:lambda:us-east-1::runtime:0123456789abcdef"
    lam.put_runtime_management_config(
        FunctionName=name, UpdateRuntimeOn="Manual", RuntimeVersionArn=version_arn
    )
    got = lam.get_runtime_management_config(FunctionName=name)
    assert got["RuntimeVersionArn"] == version_arn
    version = lam.publish_version(FunctionName=name)["Version"]
    got = lam.get_runtime_management_config(FunctionName=name, Qualifier=version)
    assert got["FunctionArn"] == f"{arn}:{version}" and got["UpdateRuntimeOn"] == "Manual"
    with pytest.raises(ClientError) as exc:
        lam.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="Manual")
    assert _error(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="Sometimes")
    assert _error(exc)[0] == "ValidationException"

    assert lam.get_function_recursion_config(FunctionName=name)["RecursiveLoop"] == "Terminate"
    put_loop = lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
    assert put_loop["RecursiveLoop"] == "Allow"
    assert lam.get_function_recursion_config(FunctionName=name)["RecursiveLoop"] == "Allow"
    with pytest.raises(ClientError) as exc:
        lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Maybe")
    assert _error(exc)[0] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_recursion_config(FunctionName=name + "-missing")
    latest = lam.get_function_configuration(FunctionName=name)
    assert latest["RevisionId"] == rev
