"""Function tags: TagResource, UntagResource and ListTags (botocore's Lambda model).

* ``GET /2017-03-31/tags/{ARN}`` → ``{"Tags": {...}}``;
* ``POST /2017-03-31/tags/{ARN}`` with ``{"Tags": {...}}`` → 204, merged into the tags;
* ``DELETE /2017-03-31/tags/{ARN}?tagKeys=a&tagKeys=b`` → 204.

``{ARN}`` is a function's unqualified ARN (a version's or alias's is refused with AWS's
message; another account's function does not exist for the caller). Tags belong to the
function: ``GetFunction`` of any version shows them, and changing them changes neither
the configuration nor its ``RevisionId``. Limits as AWS documents them: 50 tags per
resource, keys of 1-128 characters, values of at most 256, the ``aws:`` prefix reserved.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from hearth.api.functions import FunctionsApi
from hearth.api.names import path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import json_response, parse_json_body, validation_error
from hearth.errors import InvalidParameterValue, ResourceNotFound

MAX_TAGS = 50
_PATH = r"/2017-03-31/tags/(?P<arn>.+)"
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[a-zA-Z0-9-_]{1,64})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?"
)
_ANY_LAMBDA_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:.+")
_NO_CONTENT = Response(204, [], b"")


class TagsApi:
    def __init__(self, functions: FunctionsApi) -> None:
        self._functions = functions

    def register(self, add_route: Any) -> None:
        add_route("GET", _PATH, self._list)
        add_route("POST", _PATH, self._tag)
        add_route("DELETE", _PATH, self._untag)

    def _name(self, p: Principal, m: re.Match[str]) -> str:
        """The name of the function the request's ``{ARN}`` names."""
        arn = path_param(m.group("arn"))
        match = _FUNCTION_ARN.fullmatch(arn)
        if match is None:
            if _ANY_LAMBDA_ARN.fullmatch(arn) and len(arn) <= 10000:
                raise InvalidParameterValue(f"Tagging is not supported for resource {arn}.")
            raise validation_error(
                arn, "resource", "satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:.*"
            )
        if match.group("account") != p.account_id:
            raise ResourceNotFound(f"Function not found: {arn}")
        if match.group("qualifier"):
            raise InvalidParameterValue(
                "Tags on function aliases and versions are not supported. Please specify a"
                " function ARN."
            )
        return match.group("name")

    async def _list(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = self._name(p, m)
        tags = await self._functions.tags(p.account_id, p.region, name)
        return json_response(200, {"Tags": tags})

    async def _tag(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = self._name(p, m)
        body = parse_json_body(req.body)
        new = body.get("Tags")
        if new is None:
            raise validation_error(None, "tags", "not be null")
        if not isinstance(new, dict) or not new:
            raise InvalidParameterValue("Tags must be a non-empty map of strings.")
        check_tags(new)

        def change(tags: dict[str, str]) -> dict[str, str]:
            merged = {**tags, **{str(k): str(v) for k, v in new.items()}}
            if len(merged) > MAX_TAGS:
                raise InvalidParameterValue(
                    f"Number of tags exceeds resource tag limit of {MAX_TAGS}."
                )
            return merged

        await self._functions.change_tags(p.account_id, p.region, name, change)
        return _NO_CONTENT

    async def _untag(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = self._name(p, m)
        keys = {v for k, v in parse_qsl(req.query, keep_blank_values=True) if k == "tagKeys"}
        if not keys:
            raise validation_error(None, "tagKeys", "not be null")

        def change(tags: dict[str, str]) -> dict[str, str]:
            return {k: v for k, v in tags.items() if k not in keys}

        await self._functions.change_tags(p.account_id, p.region, name, change)
        return _NO_CONTENT


def check_tags(tags: dict[Any, Any]) -> None:
    """Keys of 1-128 characters, not ``aws:``-prefixed; string values of at most 256."""
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValue(f"Number of tags exceeds resource tag limit of {MAX_TAGS}.")
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise validation_error(key, "tags.key", "have length between 1 and 128")
        if not isinstance(value, str) or len(value) > 256:
            raise validation_error(value, f"tags.{key}", "have length less than or equal to 256")
        if key.lower().startswith("aws:"):
            raise InvalidParameterValue("User-defined tag keys cannot start with 'aws:'.")
