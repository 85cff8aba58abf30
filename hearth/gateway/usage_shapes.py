"""Shapes of the API Gateway v1 usage-plan subset: validation and small builders."""

from __future__ import annotations

import datetime as dt
import secrets
import string
from typing import Any

from hearth.gateway.errors import BadRequest


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def random_id(n: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def check_throttle(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise BadRequest("Invalid throttle: must be an object")
    out: dict[str, Any] = {}
    if v.get("rateLimit") is not None:
        if not isinstance(v["rateLimit"], int | float) or v["rateLimit"] < 0:
            raise BadRequest("Invalid throttle.rateLimit: must be a number >= 0")
        out["rateLimit"] = float(v["rateLimit"])
    if v.get("burstLimit") is not None:
        if not isinstance(v["burstLimit"], int) or v["burstLimit"] < 0:
            raise BadRequest("Invalid throttle.burstLimit: must be an integer >= 0")
        out["burstLimit"] = v["burstLimit"]
    return out


def check_quota(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise BadRequest("Invalid quota: must be an object")
    limit, period = v.get("limit"), v.get("period")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise BadRequest("Invalid quota.limit: must be an integer >= 0")
    if period not in ("DAY", "WEEK", "MONTH"):
        raise BadRequest("Invalid quota.period: must be DAY, WEEK or MONTH")
    if v.get("offset"):
        raise BadRequest("quota.offset is not supported by Hearth; use 0.")
    return {"limit": limit, "offset": 0, "period": period}


def plan_key_doc(key: dict[str, Any]) -> dict[str, Any]:
    return {"id": key["id"], "type": "API_KEY", "value": key["value"], "name": key["name"]}


def page(items: list[dict[str, Any]], q: dict[str, str]) -> dict[str, Any]:
    """One page of a v1 list: ``limit`` (default 25, at most 500) from ``position``.

    The position token is the offset of the next item; the wire member is ``item``
    (botocore's ``items``), with ``position`` only when more items follow.
    """
    try:
        limit = int(q.get("limit") or 25)
        offset = int(q.get("position") or 0)
    except ValueError:
        raise BadRequest("Invalid position or limit") from None
    if not 1 <= limit <= 500 or offset < 0:
        raise BadRequest("Invalid position or limit: limit must be 1 to 500")
    out: dict[str, Any] = {"item": items[offset : offset + limit]}
    if offset + limit < len(items):
        out["position"] = str(offset + limit)
    return out
