"""Layers: the layer API through boto3, /opt in the sandbox, and functions' Layers."""

from __future__ import annotations

import io
import itertools
import os
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import ROLE, invoke_json
from tests.helpers import make_zip
from tests.integration.test_runtimes_node import NODE

ACCOUNT = "000000000000"
_ids = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}-{int(time.time() * 1000) % 10**7}"


@pytest.fixture
def publish(lam: Any) -> Iterator[Callable[..., dict[str, Any]]]:
    published: list[tuple[str, int]] = []

    def make(
        files: dict[str, str | bytes],
        name: str | None = None,
        modes: dict[str, int] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        resp = lam.publish_layer_version(
            LayerName=name or _name("layer"), Content={"ZipFile": make_zip(files, modes)}, **kw
        )
        lname = resp["LayerArn"].rsplit(":", 1)[1]
        published.append((lname, resp["Version"]))
        return dict(resp)

    yield make
    for lname, version in published:
        lam.delete_layer_version(LayerName=lname, VersionNumber=version)


@pytest.fixture
def create(lam: Any) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(files: dict[str, str | bytes], **kw: Any) -> str:
        name = _name("lfn")
        lam.create_function(
            FunctionName=name,
            Runtime=kw.pop("Runtime", "python3.11"),
            Role=ROLE,
            Handler=kw.pop("Handler", "app.handler"),
            Code={"ZipFile": make_zip(files)},
            **kw,
        )
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


def test_layer_api_shapes(lam: Any, publish: Any) -> None:
    lname = _name("shapes")
    zip_bytes = make_zip({"python/shapes.py": "X = 1\n"})
    v1 = publish(
        {"python/shapes.py": "X = 1\n"},
        name=lname,
        Description="first",
        CompatibleRuntimes=["python3.11", "python3.12"],
        CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT",
    )
    assert v1["Version"] == 1
    assert v1["LayerArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:{lname}"
    assert v1["LayerVersionArn"] == f"{v1['LayerArn']}:1"
    assert v1["Description"] == "first" and v1["LicenseInfo"] == "MIT"
    assert v1["CompatibleRuntimes"] == ["python3.11", "python3.12"]
    assert v1["CompatibleArchitectures"] == ["x86_64"]
    assert v1["Content"]["CodeSize"] == len(zip_bytes)
    assert v1["CreatedDate"].endswith("+0000")
    # The download URL gives the zip back, byte for byte.
    with urllib.request.urlopen(v1["Content"]["Location"]) as r:
        assert zipfile.ZipFile(io.BytesIO(r.read())).read("python/shapes.py") == b"X = 1\n"
    v2 = publish({"python/shapes.py": "X = 2\n"}, name=lname, CompatibleRuntimes=["nodejs20.x"])
    assert v2["Version"] == 2
    got = lam.get_layer_version(LayerName=lname, VersionNumber=1)
    assert got["LayerVersionArn"] == v1["LayerVersionArn"]
    assert got["Content"]["CodeSha256"] == v1["Content"]["CodeSha256"]
    by_arn = lam.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])
    assert by_arn["Version"] == 2 and by_arn["LayerArn"] == v1["LayerArn"]
    # The layer's own ARN works as LayerName too.
    assert lam.get_layer_version(LayerName=v1["LayerArn"], VersionNumber=2)["Version"] == 2
    versions = lam.list_layer_versions(LayerName=lname)["LayerVersions"]
    assert [v["Version"] for v in versions] == [2, 1]
    assert versions[1]["LayerVersionArn"] == v1["LayerVersionArn"]
    only_py = lam.list_layer_versions(LayerName=lname, CompatibleRuntime="python3.12")
    assert [v["Version"] for v in only_py["LayerVersions"]] == [1]
    layers = {ly["LayerName"]: ly for ly in lam.list_layers()["Layers"]}
    assert layers[lname]["LatestMatchingVersion"]["Version"] == 2
    assert layers[lname]["LayerArn"] == v1["LayerArn"]
    py_layers = {
        ly["LayerName"]: ly for ly in lam.list_layers(CompatibleRuntime="python3.11")["Layers"]
    }
    assert py_layers[lname]["LatestMatchingVersion"]["Version"] == 1
    # Delete: gone from the API, and the number is never reused.
    lam.delete_layer_version(LayerName=lname, VersionNumber=2)
    lam.delete_layer_version(LayerName=lname, VersionNumber=2)  # idempotent
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_layer_version(LayerName=lname, VersionNumber=2)
    assert exc.value.response["Error"]["Message"] == "The resource you requested does not exist."
    v3 = publish({"python/shapes.py": "X = 3\n"}, name=lname)
    assert v3["Version"] == 3


def test_layer_api_bad_input(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version(LayerName="no-such-layer", VersionNumber=1)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version_by_arn(Arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:nope:1")
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.get_layer_version_by_arn(Arn="arn:aws:lambda:us-east-1:111122223333:layer:theirs:1")
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.publish_layer_version(LayerName="bad name!", Content={"ZipFile": make_zip({"a": "b"})})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.publish_layer_version(LayerName="not-a-zip", Content={"ZipFile": b"not a zip"})
    assert lam.list_layer_versions(LayerName="never-published")["LayerVersions"] == []


PY_APP = """
import os, subprocess
import layerlib, sitelib, which
def handler(event, context):
    return {
        "layerlib": layerlib.VALUE, "sitelib": sitelib.VALUE, "which": which.WHO,
        "tool": subprocess.run(["hello-tool"], capture_output=True, text=True).stdout.strip(),
        "path": os.environ["PATH"], "ld": os.environ["LD_LIBRARY_PATH"],
        "writable": os.access("/opt/python", os.W_OK),
        "opt": sorted(os.listdir("/opt")),
    }
"""


def test_python_imports_from_layers_in_order(lam: Any, publish: Any, create: Any) -> None:
    first = publish(
        {
            "python/layerlib.py": "VALUE = 'from layer one'\n",
            "python/which.py": "WHO = 'first'\n",
            "bin/hello-tool": "#!/bin/sh\necho hello from opt/bin\n",
        },
        modes={"bin/hello-tool": 0o755},
    )
    second = publish(
        {
            "python/lib/python3.11/site-packages/sitelib.py": "VALUE = 'site-packages'\n",
            "python/which.py": "WHO = 'second'\n",
        }
    )
    name = create({"app.py": PY_APP}, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["Layers"] == [
        {"Arn": first["LayerVersionArn"], "CodeSize": first["Content"]["CodeSize"]},
        {"Arn": second["LayerVersionArn"], "CodeSize": second["Content"]["CodeSize"]},
    ]
    resp, body = invoke_json(lam, name, {})
    assert "FunctionError" not in resp, body
    assert body["layerlib"] == "from layer one"
    assert body["sitelib"] == "site-packages"
    assert body["which"] == "second"  # the later layer wins
    assert body["tool"] == "hello from opt/bin"
    assert "/opt/bin" in body["path"].split(":")
    assert "/opt/lib" in body["ld"].split(":")
    assert body["writable"] is False
    assert body["opt"] == ["bin", "python"]
    # Reverse the order: now the first layer's file wins.
    lam.update_function_configuration(
        FunctionName=name, Layers=[second["LayerVersionArn"], first["LayerVersionArn"]]
    )
    _, body = invoke_json(lam, name, {})
    assert body["which"] == "first"
    # Without layers the library is gone.
    lam.update_function_configuration(FunctionName=name, Layers=[])
    assert "Layers" not in lam.get_function_configuration(FunctionName=name)
    resp, err = invoke_json(lam, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == "Runtime.ImportModuleError"


def test_node_requires_from_layer(lam: Any, publish: Any, create: Any) -> None:
    if NODE is None:
        pytest.skip("no node 18, 20 or 22 on this host: no nodejs runtime is offered")
    lib = "nodejs/node_modules/layered-lib"
    layer = publish(
        {
            f"{lib}/package.json": '{"name":"layered-lib","main":"index.js"}',
            f"{lib}/index.js": "exports.greet = (n) => `hi ${n} from a layer`;",
        }
    )
    code = "const lib = require('layered-lib');\nexports.handler = async (e) => lib.greet(e.who);\n"
    name = create(
        {"index.js": code},
        Runtime=NODE,
        Handler="index.handler",
        Layers=[layer["LayerVersionArn"]],
    )
    resp, body = invoke_json(lam, name, {"who": "node"})
    assert "FunctionError" not in resp, body
    assert body == "hi node from a layer"


def test_deleted_layer_version_keeps_working(lam: Any, create: Any) -> None:
    lname = _name("deleted")
    layer = lam.publish_layer_version(
        LayerName=lname, Content={"ZipFile": make_zip({"python/layerlib.py": "VALUE = 7\n"})}
    )
    app = "import layerlib\ndef handler(e, c):\n    return layerlib.VALUE\n"
    name = create({"app.py": app}, Layers=[layer["LayerVersionArn"]])
    assert invoke_json(lam, name, {})[1] == 7
    lam.delete_layer_version(LayerName=lname, VersionNumber=layer["Version"])
    # A configuration change forces a cold start: the deleted version still mounts.
    lam.update_function_configuration(FunctionName=name, Timeout=5)
    resp, body = invoke_json(lam, name, {})
    assert "FunctionError" not in resp and body == 7
    assert (
        lam.get_function_configuration(FunctionName=name)["Layers"][0]["Arn"]
        == (layer["LayerVersionArn"])
    )
    # ... but no new function may use it.
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        create({"app.py": app}, Layers=[layer["LayerVersionArn"]])
    assert exc.value.response["Error"]["Message"] == (
        f"Layer version {layer['LayerVersionArn']} does not exist."
    )


def test_function_layers_bad_input(lam: Any, publish: Any, create: Any) -> None:
    layer = publish({"python/x.py": "X = 1\n"})
    arn = layer["LayerVersionArn"]
    other_account = f"arn:aws:lambda:us-east-1:111122223333:layer:{_name('theirs')}:1"
    with pytest.raises(lam.exceptions.ClientError) as exc:
        create({"app.py": "def handler(e, c): return 1\n"}, Layers=[other_account])
    err = exc.value.response["Error"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["Code"] == "AccessDeniedException"
    assert err["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform:"
        f" lambda:GetLayerVersion on resource: {other_account} because no resource-based"
        " policy allows the lambda:GetLayerVersion action"
    )
    others = [publish({f"python/m{i}.py": "X = 1\n"})["LayerVersionArn"] for i in range(5)]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        create({"app.py": "def handler(e, c): return 1\n"}, Layers=[arn, *others])
    assert exc.value.response["Error"]["Message"] == "Cannot reference more than 5 layers."
    missing = f"{arn.rsplit(':', 1)[0]}:99"
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        create({"app.py": "def handler(e, c): return 1\n"}, Layers=[missing])
    assert exc.value.response["Error"]["Message"] == f"Layer version {missing} does not exist."
    with pytest.raises(lam.exceptions.ClientError) as exc:
        create({"app.py": "def handler(e, c): return 1\n"}, Layers=["not-an-arn"])
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    # Five is fine, on update too.
    name = create({"app.py": "def handler(e, c): return 1\n"}, Layers=others)
    assert len(lam.get_function_configuration(FunctionName=name)["Layers"]) == 5
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_function_configuration(FunctionName=name, Layers=[arn, *others])


def _compressible(size: int) -> bytes:
    """``size`` bytes that deflate ~50:1: under the zip-bomb ratio cap (200), fast to build.

    Each 4 KiB holds 64 fresh random bytes and zeros.
    """
    n = size // 4096
    noise = os.urandom(64 * n)
    pad = bytes(4096 - 64)
    return b"".join(noise[i * 64 : (i + 1) * 64] + pad for i in range(n))


def test_code_plus_layers_over_250_mb(lam: Any, publish: Any, create: Any) -> None:
    limit = 262_144_000
    layer = publish({"data/big.bin": _compressible(140 * 1024 * 1024)})
    body = {
        "app.py": "def handler(e, c): return 1\n",
        "big.bin": _compressible(130 * 1024 * 1024),
    }
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        create(body, Layers=[layer["LayerVersionArn"]])
    msg = exc.value.response["Error"]["Message"]
    total = 140 * 1024 * 1024 + 130 * 1024 * 1024 + len(body["app.py"])
    assert msg == (
        f"Function code combined with layers exceeds the maximum allowed size of {limit} bytes."
        f" The actual size is {total} bytes."
    )


def test_custom_runtime_bootstrap_from_a_layer(lam: Any, publish: Any) -> None:
    """provided.*: no bootstrap in the package, /opt/bootstrap from a layer is used."""
    bootstrap = r"""#!/bin/bash
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H="$(mktemp)"
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  RID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  curl -sS -o /dev/null "$API/invocation/$RID/response" -d "{\"from\":\"$0\",\"echo\":$EVENT}"
done
"""
    layer = publish({"bootstrap": bootstrap}, modes={"bootstrap": 0o755})
    name = _name("optboot")
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="function.handler",
        Code={"ZipFile": make_zip({"function.sh": "echo unused\n"})},
        Layers=[layer["LayerVersionArn"]],
    )
    try:
        resp, body = invoke_json(lam, name, {"k": 1})
        assert "FunctionError" not in resp, body
        assert body == {"from": "/opt/bootstrap", "echo": {"k": 1}}
    finally:
        lam.delete_function(FunctionName=name)
