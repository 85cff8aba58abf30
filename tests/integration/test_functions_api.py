"""The Lambda control plane through boto3 against a real server."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import HELLO, ROLE
from tests.helpers import make_zip


def test_create_get_list_update_delete(lam: Any, make_function: Any) -> None:
    zip_bytes = make_zip({"app.py": HELLO})
    created = make_function(
        name="crud-fn",
        MemorySize=256,
        Timeout=10,
        Description="a test",
        Environment={"Variables": {"COLOR": "blue"}},
        EphemeralStorage={"Size": 1024},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:crud-fn"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert created["CodeSize"] == len(zip_bytes)
    assert created["State"] == "Active"
    assert created["LastUpdateStatus"] == "Successful"
    assert created["Version"] == "$LATEST"
    assert created["Environment"] == {"Variables": {"COLOR": "blue"}}
    assert created["EphemeralStorage"] == {"Size": 1024}
    assert created["PackageType"] == "Zip"
    assert created["Architectures"] == ["x86_64"]
    assert created["RevisionId"]

    got = lam.get_function(FunctionName="crud-fn")
    assert got["Configuration"]["FunctionArn"] == created["FunctionArn"]
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"]) as r:
        assert r.read() == zip_bytes

    conf = lam.get_function_configuration(FunctionName=created["FunctionArn"])
    assert conf["MemorySize"] == 256 and conf["Timeout"] == 10

    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "crud-fn" in names

    updated = lam.update_function_configuration(FunctionName="crud-fn", MemorySize=512, Timeout=20)
    assert updated["MemorySize"] == 512 and updated["RevisionId"] != created["RevisionId"]
    assert updated["Description"] == "a test"  # untouched members keep their values

    new_zip = make_zip({"app.py": HELLO + "\n# v2\n"})
    code = lam.update_function_code(FunctionName="crud-fn", ZipFile=new_zip)
    assert code["CodeSha256"] == base64.b64encode(hashlib.sha256(new_zip).digest()).decode()
    assert code["MemorySize"] == 512

    lam.delete_function(FunctionName="crud-fn")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="crud-fn")


def test_list_functions_pagination(lam: Any, make_function: Any) -> None:
    for i in range(5):
        make_function(name=f"page-fn-{i}")
    seen: list[str] = []
    marker = None
    while True:
        kw: dict[str, Any] = {"MaxItems": 2}
        if marker:
            kw["Marker"] = marker
        page = lam.list_functions(**kw)
        assert len(page["Functions"]) <= 2
        seen.extend(f["FunctionName"] for f in page["Functions"])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [n for n in seen if n.startswith("page-fn-")] == [f"page-fn-{i}" for i in range(5)]
    assert len(seen) == len(set(seen))
    paginated = [
        f["FunctionName"]
        for p in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3})
        for f in p["Functions"]
    ]
    assert set(seen) <= set(paginated)


def test_create_conflict(lam: Any, make_function: Any) -> None:
    make_function(name="dup-fn")
    with pytest.raises(lam.exceptions.ResourceConflictException) as exc:
        make_function(name="dup-fn")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_not_found_errors(lam: Any) -> None:
    for call in (
        lambda: lam.get_function(FunctionName="nope"),
        lambda: lam.get_function_configuration(FunctionName="nope"),
        lambda: lam.delete_function(FunctionName="nope"),
        lambda: lam.invoke(FunctionName="nope"),
        lambda: lam.update_function_configuration(FunctionName="nope", Timeout=5),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
            call()
        err = exc.value.response
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert (
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
            in (err["Error"]["Message"])
        )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"MemorySize": 20000}, "10240"),
        ({"Timeout": 901}, "900"),
        ({"EphemeralStorage": {"Size": 20000}}, "10240"),
        ({"Environment": {"Variables": {"BIG": "x" * 5000}}}, "4KB"),
        ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "reserved keys"),
        ({"PackageType": "Image", "Code": {"ImageUri": "repo/img:1"}}, "PackageType Image"),
        ({"Runtime": "python3.14"}, "Available runtimes"),
    ],
)
def test_create_invalid_parameters(lam: Any, kwargs: dict[str, Any], fragment: str) -> None:
    params: dict[str, Any] = {
        "FunctionName": "bad-params",
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": make_zip({"app.py": HELLO})},
    }
    params.update(kwargs)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_function(**params)
    assert fragment in exc.value.response["Error"]["Message"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="bad-params")


def test_revision_precondition(lam: Any, make_function: Any) -> None:
    fn = make_function(name="rev-fn")
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_function_configuration(FunctionName="rev-fn", Timeout=4, RevisionId="stale")
    ok = lam.update_function_configuration(
        FunctionName="rev-fn", Timeout=4, RevisionId=fn["RevisionId"]
    )
    assert ok["Timeout"] == 4


def test_account_settings(lam: Any, make_function: Any) -> None:
    make_function(name="acct-fn")
    s = lam.get_account_settings()
    assert s["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert s["AccountLimit"]["CodeSizeUnzipped"] == 262144000
    assert s["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert s["AccountUsage"]["FunctionCount"] >= 1
    assert s["AccountUsage"]["TotalCodeSize"] > 0


def test_accounts_are_isolated(server: Any, make_function: Any) -> None:
    # Only the default key exists on this server: a second account needs its own server.
    make_function(name="acct-private")
    other = server.client("lambda", key="other", secret="other")
    with pytest.raises(ClientError) as exc:
        other.get_function(FunctionName="acct-private")
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_error_wire_shape(server: Any) -> None:
    req = urllib.request.Request(server.endpoint + "/2015-03-31/functions/x", method="GET")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req)
    assert exc.value.code == 403
    assert exc.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert "message" in json.loads(exc.value.read())


def test_code_of_a_busy_environment_survives_update_and_delete(
    lam: Any, make_function: Any
) -> None:
    import threading

    make_function(
        "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n"
        "    return open('/var/task/app.py').read()[:6]\n",
        name="busy-code-fn",
        Timeout=20,
    )
    out: dict[str, Any] = {}

    def slow() -> None:
        resp = lam.invoke(FunctionName="busy-code-fn", Payload=b'{"s": 2}')
        out["resp"] = resp
        out["body"] = json.loads(resp["Payload"].read())

    t = threading.Thread(target=slow)
    t.start()
    import time

    time.sleep(0.8)
    lam.update_function_code(FunctionName="busy-code-fn", ZipFile=make_zip({"app.py": HELLO}))
    t.join()
    assert "FunctionError" not in out["resp"], out["body"]
    assert out["body"] == "import"
