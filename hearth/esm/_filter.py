"""Lambda event filtering (``FilterCriteria``) for SQS records.

A record passes when it matches *any* filter. A pattern is a JSON object whose leaves
are lists of matchers (EventBridge-style): literal strings / numbers / null (exact
match), ``{"prefix": s}``, ``{"suffix": s}``, ``{"equals-ignore-case": s}``,
``{"anything-but": v | [v…] | {"prefix": s}}``, ``{"numeric": [op, n, (op, n)]}`` and
``{"exists": bool}``. Nested objects descend into the record; an array value in the
record matches when any element does. The SQS ``body`` is matched as JSON when it parses
to an object, else as a plain string (as Lambda does).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hearth.errors import InvalidParameterValue

MAX_FILTERS = 5
_NUMERIC_OPS = {"<", "<=", "=", ">", ">="}
_MISSING = object()


def parse_filters(criteria: Any) -> list[dict[str, Any]]:
    """Validate ``FilterCriteria``; return the parsed patterns (empty: no filtering)."""
    if criteria is None:
        return []
    filters = criteria.get("Filters") if isinstance(criteria, dict) else None
    if filters is None:
        return []
    if not isinstance(filters, list) or len(filters) > MAX_FILTERS:
        raise InvalidParameterValue(
            f"Invalid filter criteria: at most {MAX_FILTERS} filters are allowed."
        )
    out = []
    for f in filters:
        raw = f.get("Pattern") if isinstance(f, dict) else None
        try:
            pattern = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            pattern = None
        if not isinstance(pattern, dict) or not _valid(pattern):
            raise InvalidParameterValue(f"Invalid filter pattern definition: {raw}")
        out.append(pattern)
    return out


def _valid(pattern: dict[str, Any], extended: bool = False) -> bool:
    for key, value in pattern.items():
        if extended and key == "$or":
            # EventBridge: any of several sub-patterns (each a non-empty object)
            if not isinstance(value, list) or len(value) < 2:
                return False
            if not all(isinstance(v, dict) and v and _valid(v, extended) for v in value):
                return False
        elif isinstance(value, dict):
            if not value or not _valid(value, extended):
                return False
        elif isinstance(value, list) and value:
            for m in value:
                if isinstance(m, dict) and not _valid_matcher(m, extended):
                    return False
        else:
            return False
    return True


def _valid_matcher(m: dict[str, Any], extended: bool = False) -> bool:
    if len(m) != 1:
        return False
    ((kind, arg),) = m.items()
    if kind in ("prefix", "suffix", "equals-ignore-case"):
        return isinstance(arg, str)
    if kind == "wildcard" and extended:
        return isinstance(arg, str)
    if kind == "exists":
        return isinstance(arg, bool)
    if kind == "anything-but":
        return True
    if kind == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            return False
        return all(
            arg[i] in _NUMERIC_OPS and isinstance(arg[i + 1], int | float)
            for i in range(0, len(arg), 2)
        )
    return False


def record_view(record: dict[str, Any]) -> dict[str, Any]:
    """The record as patterns see it: the body parsed as JSON when it is an object."""
    view = dict(record)
    try:
        body = json.loads(record["body"])
    except (ValueError, TypeError):
        body = record["body"]
    view["body"] = body if isinstance(body, dict) else record["body"]
    return view


def matches_any(patterns: list[dict[str, Any]], record: dict[str, Any]) -> bool:
    if not patterns:
        return True
    view = record_view(record)
    return any(_match(p, view) for p in patterns)


def _match(pattern: dict[str, Any], data: Any) -> bool:
    for key, want in pattern.items():
        if key == "$or" and isinstance(want, list):
            if not any(_match(alt, data) for alt in want):
                return False
            continue
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if isinstance(want, dict):
            if value is _MISSING or not _match(want, value):
                return False
        elif not _leaf(want, value):
            return False
    return True


def _leaf(matchers: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for m in matchers:
        if isinstance(m, dict) and "exists" in m:
            if (value is not _MISSING) == m["exists"]:
                return True
            continue
        if value is _MISSING:
            continue
        if any(_one(m, v) for v in values):
            return True
    return False


def _one(m: Any, v: Any) -> bool:
    if not isinstance(m, dict):
        return (m == v and type(m) is type(v)) or (_num(m) and _num(v) and m == v)
    ((kind, arg),) = m.items()
    if kind == "prefix":
        return isinstance(v, str) and v.startswith(arg)
    if kind == "suffix":
        return isinstance(v, str) and v.endswith(arg)
    if kind == "equals-ignore-case":
        return isinstance(v, str) and v.lower() == arg.lower()
    if kind == "wildcard":
        return isinstance(v, str) and _wildcard(arg).fullmatch(v) is not None
    if kind == "anything-but":
        if isinstance(arg, dict):
            return not _one(arg, v)
        banned = arg if isinstance(arg, list) else [arg]
        return all(not _one(b, v) for b in banned)
    if kind == "numeric":
        if not _num(v):
            return False
        for i in range(0, len(arg), 2):
            op, n = arg[i], arg[i + 1]
            ok = {
                "<": v < n,
                "<=": v <= n,
                "=": v == n,
                ">": v > n,
                ">=": v >= n,
            }[op]
            if not ok:
                return False
        return True
    return False


def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _wildcard(pattern: str) -> re.Pattern[str]:
    """EventBridge's ``wildcard``: ``*`` matches any run of characters (``\\*`` a star)."""
    parts = re.split(r"(?<!\\)\*", pattern)
    return re.compile(".*".join(re.escape(p.replace("\\*", "*")) for p in parts), re.DOTALL)


def valid_pattern(pattern: Any) -> bool:
    """Whether ``pattern`` (parsed JSON) is an EventBridge event pattern this matcher
    understands: the FilterCriteria language plus ``wildcard`` and ``$or``."""
    return isinstance(pattern, dict) and bool(pattern) and _valid(pattern, extended=True)


def pattern_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether one pattern matches a JSON document as it is (no SQS body parsing)."""
    return _match(pattern, event)
