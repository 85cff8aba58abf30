"""Check the raw JSON bodies a server answers against botocore's output shapes.

``watch(client)`` registers a hook on a boto3 client; every successful JSON answer is
then walked against its operation's output shape, and each disagreement (a key the model
does not have, a value of the wrong type, an enum value outside the model's set, a
required member missing, a ``null``) is appended to the list it returns. boto3 itself
would accept most of these silently: its parser drops unknown keys and casts types.
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.model import OperationModel, Shape, StructureShape

_BOUND = ("header", "headers", "statusCode", "uri", "querystring")
_ISO8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)")


def check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    """Append to ``problems`` what in ``value`` disagrees with ``shape``."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            problems.append(f"{path}: an object expected, got {value!r}")
            return
        members = {
            s.serialization.get("name", n): s
            for n, s in shape.members.items()
            if s.serialization.get("location") not in _BOUND
        }
        for key, item in value.items():
            if key not in members:
                problems.append(f"{path}: {key!r} is not in the model")
            elif item is None:
                problems.append(f"{path}.{key}: null")
            else:
                check(members[key], item, f"{path}.{key}", problems)
        for name in shape.required_members:
            member = shape.members[name]
            wire = member.serialization.get("name", name)
            if member.serialization.get("location") is None and wire not in value:
                problems.append(f"{path}: required {wire} missing")
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: a list expected, got {value!r}")
            return
        for i, item in enumerate(value):
            check(shape.member, item, f"{path}[{i}]", problems)  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: a map expected, got {value!r}")
            return
        for key, item in value.items():
            check(shape.key, key, f"{path}<key>", problems)  # type: ignore[attr-defined]
            check(shape.value, item, f"{path}[{key}]", problems)  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: a string expected, got {value!r}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: an integer expected, got {value!r}")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: a number expected, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: a boolean expected, got {value!r}")
    elif kind == "timestamp":
        # REST-JSON's default is epoch seconds unless the shape names another format
        # (apigatewayv2's dates are iso8601); Lambda's own dates are strings in the model.
        if shape.serialization.get("timestampFormat") == "iso8601":
            if not isinstance(value, str) or _ISO8601.fullmatch(value) is None:
                problems.append(f"{path}: an ISO 8601 time expected, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: epoch seconds expected, got {value!r}")
    elif kind == "blob" and not isinstance(value, str):
        problems.append(f"{path}: base64 text expected, got {value!r}")


def watch(client: Any) -> list[str]:
    """Validate every successful JSON answer ``client`` gets; returns the problem list."""
    problems: list[str] = []

    def after_call(http_response: Any, model: OperationModel, **_: Any) -> None:
        out = model.output_shape
        if http_response.status_code >= 300 or out is None or out.serialization.get("payload"):
            return
        body = http_response.content
        if body:
            check(out, json.loads(body), model.name, problems)

    client.meta.events.register("after-call.*.*", after_call)
    return problems
