"""HTTP API route keys: parsing, validation, and choosing the route a request takes.

A route key is ``$default`` or ``METHOD /path``: METHOD is one of GET, POST, PUT, PATCH,
DELETE, HEAD, OPTIONS or ANY; the path starts with ``/``, its segments are literals or
``{name}`` variables, and the last segment may be a greedy ``{name+}`` matching one or
more segments.

Resolution follows AWS's "most specific match" rule for HTTP APIs:

1. Only routes whose method is the request's method or ANY, and whose path matches.
2. A route without a greedy variable beats one with a greedy variable.
3. Then, segment by segment from the left, a literal beats a variable.
4. Then a longer route path (more segments) beats a shorter one.
5. Then an exact method beats ANY.
6. If nothing matched, the ``$default`` route, if there is one.

The table is compiled once per API change; matching one request walks the routes once
(routes per API are bounded by the control plane).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
DEFAULT = "$default"
_VAR = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}")
_LITERAL = re.compile(r"[A-Za-z0-9._~:@!$&'()*,;=%-]+")


class InvalidRouteKey(ValueError):
    """The message says what is wrong with the key."""


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    var: str | None = None
    greedy: bool = False


@dataclass(frozen=True, slots=True)
class RouteKey:
    key: str
    method: str  # "" for $default
    path: str
    segments: tuple[Segment, ...]

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1].greedy


def parse_route_key(key: str) -> RouteKey:
    """Validate and parse a route key; raise :class:`InvalidRouteKey`."""
    if key == DEFAULT:
        return RouteKey(key, "", "", ())
    method, sep, path = key.partition(" ")
    if not sep or method not in METHODS:
        raise InvalidRouteKey(
            f"Invalid route key: {key!r}. A route key is $default or 'METHOD /path' with"
            f" METHOD one of {', '.join(METHODS)}."
        )
    if not path.startswith("/") or " " in path:
        raise InvalidRouteKey(f"Invalid route key: {key!r}. The path must start with '/'.")
    if path == "/":
        return RouteKey(key, method, path, ())
    parts = path[1:].split("/")
    segments: list[Segment] = []
    names: set[str] = set()
    for i, part in enumerate(parts):
        if part == "":
            raise InvalidRouteKey(f"Invalid route key: {key!r}. Empty path segment.")
        m = _VAR.fullmatch(part)
        if m is not None:
            name, plus = m.group(1), m.group(2)
            if plus and i != len(parts) - 1:
                raise InvalidRouteKey(
                    f"Invalid route key: {key!r}. A greedy path variable {{{name}+}} must be"
                    " the last segment."
                )
            if name in names:
                raise InvalidRouteKey(f"Invalid route key: {key!r}. Duplicate variable {name}.")
            names.add(name)
            segments.append(Segment(part, name, bool(plus)))
        elif "{" in part or "}" in part or _LITERAL.fullmatch(part) is None:
            raise InvalidRouteKey(f"Invalid route key: {key!r}. Invalid path segment {part!r}.")
        else:
            segments.append(Segment(part))
    return RouteKey(key, method, path, tuple(segments))


@dataclass(frozen=True, slots=True)
class Match:
    key: RouteKey
    target: str
    path_parameters: dict[str, str]


def _match_path(route: RouteKey, parts: list[str]) -> dict[str, str] | None:
    segs = route.segments
    params: dict[str, str] = {}
    for i, seg in enumerate(segs):
        if seg.greedy:
            rest = parts[i:]
            if not rest or all(p == "" for p in rest):
                return None
            params[seg.var or ""] = unquote("/".join(rest))
            return params
        if i >= len(parts):
            return None
        if seg.var is not None:
            if parts[i] == "":
                return None
            params[seg.var] = unquote(parts[i])
        elif seg.text != parts[i]:
            return None
    return params if len(parts) == len(segs) else None


def _rank(route: RouteKey) -> tuple[int, tuple[int, ...], int, int]:
    """Smaller is more specific (see the module docstring's order)."""
    literal = tuple(0 if s.var is None else 1 for s in route.segments)
    return (
        1 if route.greedy else 0,
        literal,
        -len(route.segments),
        1 if route.method == "ANY" else 0,
    )


class RouteTable:
    """An API's routes, ordered once by specificity."""

    def __init__(self, routes: list[tuple[str, str]]) -> None:
        """``routes``: (route key, target) pairs; keys were validated on create."""
        self._default: str | None = None
        ranked: list[tuple[tuple[int, tuple[int, ...], int, int], RouteKey, str]] = []
        for key, target in routes:
            rk = parse_route_key(key)
            if rk.key == DEFAULT:
                self._default = target
            else:
                ranked.append((_rank(rk), rk, target))
        ranked.sort(key=lambda r: r[0])
        self._routes = [(rk, target) for _, rk, target in ranked]
        self._default_key = RouteKey(DEFAULT, "", "", ())

    def match(self, method: str, path: str) -> Match | None:
        parts = path[1:].split("/") if path not in ("", "/") else []
        for rk, target in self._routes:
            if rk.method != "ANY" and rk.method != method:
                continue
            params = _match_path(rk, parts)
            if params is not None:
                return Match(rk, target, params)
        if self._default is not None:
            return Match(self._default_key, self._default, {})
        return None
