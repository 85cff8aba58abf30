"""Compatibility review of the Lambda core against botocore's model and AWS's behaviour.

Each test pins one discrepancy found by driving a real server with boto3 the way a user
would; the expected codes and messages are AWS's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import invoke_json
from tests.helpers import make_zip

CODE = "def handler(event, context):\n    return {'v': context.function_version}\n"


def test_delete_function_latest_qualifier_keeps_the_function(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    for kw in ({"FunctionName": name, "Qualifier": "$LATEST"}, {"FunctionName": f"{name}:$LATEST"}):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            lam.delete_function(**kw)
        assert exc.value.response["Error"]["Message"] == (
            "$LATEST version cannot be deleted without deleting the function."
        )
    _, body = invoke_json(lam, name)
    assert body == {"v": "$LATEST"}


def test_delete_aliased_version_names_the_aliases(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    with pytest.raises(lam.exceptions.ResourceConflictException) as exc:
        lam.delete_function(FunctionName=name, Qualifier=version)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert exc.value.response["Error"]["Message"] == (
        "Unable to delete version because the following aliases reference it: [live]"
    )


def test_update_code_changes_architecture(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    resp = lam.update_function_code(
        FunctionName=name, ZipFile=make_zip({"app.py": CODE}), Architectures=["arm64"]
    )
    assert resp["Architectures"] == ["arm64"]
    assert lam.get_function_configuration(FunctionName=name)["Architectures"] == ["arm64"]
    resp = lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": CODE}))
    assert resp["Architectures"] == ["arm64"]
