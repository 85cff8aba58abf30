"""Tags of HTTP APIs and their stages: TagResource, UntagResource, GetTags.

Resources are named by ARN, ``arn:aws:apigateway:<region>::/apis/<api-id>`` or
``.../apis/<api-id>/stages/<stage-name>``; the tags live in the resource's ``tags``
member of the API document, so GetApi / GetStage report them too. Limits follow API
Gateway's: at most 50 tags, keys 1-128 and values 0-256 characters, no ``aws:`` keys.
"""

from __future__ import annotations

import re
from typing import Any

from hearth.gateway.apis_store import ApiDoc
from hearth.gateway.errors import BadRequest, NotFound

_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:apigateway:[a-z0-9-]+::/apis/(?P<api>[a-z0-9]+)"
    r"(?:/stages/(?P<stage>[^/]+))?"
)
MAX_TAGS = 50


def parse_arn(arn: str) -> tuple[str, str | None]:
    """(api id, stage name or None) of a taggable resource's ARN, or BadRequest."""
    m = _ARN.fullmatch(arn)
    if m is None:
        raise BadRequest(f"Invalid resource ARN specified: {arn}")
    return m.group("api"), m.group("stage")


def _tags_of(d: ApiDoc, stage: str | None) -> dict[str, str]:
    if stage is None:
        tags: dict[str, str] = d.api.setdefault("tags", {})
        return tags
    item = d.stages.get(stage)
    if item is None:
        raise NotFound(f"Invalid Stage identifier specified {d.account_id}:{stage}", "Stage")
    stage_tags: dict[str, str] = item.setdefault("tags", {})
    return stage_tags


def get_tags(d: ApiDoc, stage: str | None) -> dict[str, str]:
    return dict(_tags_of(d, stage))


def tag(d: ApiDoc, stage: str | None, body: dict[str, Any]) -> None:
    new = body.get("tags")
    if not isinstance(new, dict):
        raise BadRequest("Invalid input: tags must be a map of strings")
    for k, v in new.items():
        if not isinstance(v, str) or not 1 <= len(k) <= 128 or len(v) > 256:
            raise BadRequest(f"Invalid tag {k!r}: keys are 1-128 and values 0-256 characters")
        if k.lower().startswith("aws:"):
            raise BadRequest(f"Invalid tag {k!r}: the aws: prefix is reserved")
    tags = _tags_of(d, stage)
    if len(set(tags) | set(new)) > MAX_TAGS:
        raise BadRequest(f"A resource can have at most {MAX_TAGS} tags")
    tags.update(new)


def untag(d: ApiDoc, stage: str | None, keys: list[str]) -> None:
    tags = _tags_of(d, stage)
    for k in keys:
        tags.pop(k, None)
