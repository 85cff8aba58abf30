"""AWS conformance review: each test pins one difference from botocore's model or AWS's
documented behaviour found by driving a real server with real clients; the expected
codes, statuses and messages are AWS's. Every bad input is followed by a good request,
so the server is shown to keep serving.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import error_of, invoke_json
from tests.helpers import make_zip

CODE = "def handler(event, context):\n    return {'v': context.function_version}\n"


def test_qualifier_outside_the_model_pattern_is_a_validation_error(
    lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    for call in (
        lambda: lam.invoke(FunctionName=name, Qualifier="bad!q", Payload=b"{}"),
        lambda: lam.get_function(FunctionName=name, Qualifier="bad!q"),
        lambda: lam.get_function_configuration(FunctionName=name, Qualifier="a b"),
        lambda: lam.delete_function(FunctionName=name, Qualifier="bad!q"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        code, status, message = error_of(exc)
        assert (code, status) == ("ValidationException", 400)
        assert message.startswith("1 validation error detected: Value '")
        assert "at 'qualifier' failed to satisfy constraint: Member must satisfy" in message
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Qualifier="x" * 129, Payload=b"{}")
    assert error_of(exc)[:2] == ("ValidationException", 400)
    assert "Member must have length less than or equal to 128" in error_of(exc)[2]
    _, body = invoke_json(lam, name, Qualifier="$LATEST")
    assert body == {"v": "$LATEST"}


def test_an_arn_of_another_region_is_not_reachable(
    server: Any, lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    arn = f"arn:aws:lambda:us-west-2:000000000000:function:{name}"
    for call in (
        lambda: lam.get_function(FunctionName=arn),
        lambda: lam.invoke(FunctionName=arn, Payload=b"{}"),
        lambda: lam.list_versions_by_function(FunctionName=arn),
        lambda: lam.get_policy(FunctionName=arn),
        lambda: lam.delete_function(FunctionName=arn),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
            call()
        assert error_of(exc) == (
            "ResourceNotFoundException",
            404,
            "Functions from 'us-west-2' are not reachable in this region ('us-east-1')",
        )
    same = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert lam.get_function(FunctionName=same)["Configuration"]["FunctionName"] == name
    # An Invoke by ARN that succeeded from its own region is still refused from another.
    lam.invoke(FunctionName=same, Payload=b"{}")
    west = server.client("lambda", region_name="us-west-2")
    with pytest.raises(west.exceptions.ResourceNotFoundException) as exc:
        west.invoke(FunctionName=same, Payload=b"{}")
    assert error_of(exc)[2] == (
        "Functions from 'us-east-1' are not reachable in this region ('us-west-2')"
    )


def test_architectures_list_is_validated_against_the_model(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    cases = [
        (["x86_64", "arm64"], "Member must have length less than or equal to 1"),
        (["sparc"], "Member must satisfy enum value set: [x86_64, arm64]"),
    ]
    for archs, fragment in cases:
        with pytest.raises(ClientError) as exc:
            lam.create_function(
                FunctionName=f"{name}-x",
                Runtime="python3.12",
                Handler="app.handler",
                Role="arn:aws:iam::000000000000:role/r",
                Code={"ZipFile": make_zip({"app.py": CODE})},
                Architectures=archs,
            )
        code, status, message = error_of(exc)
        assert (code, status) == ("ValidationException", 400)
        assert f"Value '[{', '.join(archs)}]' at 'architectures'" in message
        assert fragment in message
        with pytest.raises(ClientError) as exc:
            lam.update_function_code(
                FunctionName=name, ZipFile=make_zip({"app.py": CODE}), Architectures=archs
            )
        assert error_of(exc)[:2] == ("ValidationException", 400)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=f"{name}-x")
    _, body = invoke_json(lam, name)
    assert body == {"v": "$LATEST"}


def test_provisioned_concurrency_of_an_absent_qualifier_is_not_found(
    lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    for call in (
        lambda: lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="nope"),
        lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="nope"),
        lambda: lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="99"),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
            call()
        code, status, message = error_of(exc)
        assert (code, status) == ("ResourceNotFoundException", 404)
        assert message.startswith(
            f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}:"
        )
    # An existing version without a configuration: Get says so, Delete is a no-op (204).
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    resp = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_function_code_signing_config_of_an_unsigned_function(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    resp = lam.get_function_code_signing_config(FunctionName=name)
    assert (resp["CodeSigningConfigArn"], resp["FunctionName"]) == ("", name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_function_code_signing_config(FunctionName=f"{name}-absent")
    assert error_of(exc)[:2] == ("ResourceNotFoundException", 404)
