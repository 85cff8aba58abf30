"""HTTP API route keys: validation and most-specific-match resolution (AWS's rules)."""

from __future__ import annotations

import pytest

from hearth.gateway.routes import InvalidRouteKey, RouteTable, parse_route_key

ROUTES = [
    "GET /pets/dog/1",
    "GET /pets/dog/{id}",
    "GET /pets/{type}/{id}",
    "GET /pets/{proxy+}",
    "ANY /pets/{type}/{id}",
    "POST /pets",
    "ANY /items/{id}",
    "GET /items/special",
    "ANY /{proxy+}",
    "GET /",
    "$default",
]
TABLE = RouteTable([(k, f"t:{k}") for k in ROUTES])


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("GET", "/pets/dog/1", "GET /pets/dog/1", {}),
        ("GET", "/pets/dog/2", "GET /pets/dog/{id}", {"id": "2"}),
        ("GET", "/pets/cat/1", "GET /pets/{type}/{id}", {"type": "cat", "id": "1"}),
        ("POST", "/pets/cat/1", "ANY /pets/{type}/{id}", {"type": "cat", "id": "1"}),
        ("DELETE", "/pets/dog/1", "ANY /pets/{type}/{id}", {"type": "dog", "id": "1"}),
        ("GET", "/pets/a/b/c", "GET /pets/{proxy+}", {"proxy": "a/b/c"}),
        ("GET", "/pets/x", "GET /pets/{proxy+}", {"proxy": "x"}),
        ("POST", "/pets/a/b/c", "ANY /{proxy+}", {"proxy": "pets/a/b/c"}),
        ("POST", "/pets", "POST /pets", {}),
        ("GET", "/pets", "ANY /{proxy+}", {"proxy": "pets"}),
        ("GET", "/items/special", "GET /items/special", {}),
        ("POST", "/items/special", "ANY /items/{id}", {"id": "special"}),
        ("PATCH", "/items/a%20b", "ANY /items/{id}", {"id": "a b"}),
        ("GET", "/", "GET /", {}),
        ("POST", "/", "$default", {}),
        ("GET", "/anything/else/here", "ANY /{proxy+}", {"proxy": "anything/else/here"}),
    ],
)
def test_most_specific_match(method: str, path: str, route: str, params: dict[str, str]) -> None:
    m = TABLE.match(method, path)
    assert m is not None
    assert m.key.key == route
    assert m.target == f"t:{route}"
    assert m.path_parameters == params


def test_no_default_no_match() -> None:
    table = RouteTable([("GET /a/{b}", "x")])
    assert table.match("GET", "/a") is None
    assert table.match("GET", "/a/b/c") is None
    assert table.match("POST", "/a/b") is None
    assert table.match("GET", "/a/") is None
    m = table.match("GET", "/a/b")
    assert m is not None and m.path_parameters == {"b": "b"}


def test_greedy_needs_a_segment() -> None:
    table = RouteTable([("ANY /{proxy+}", "x")])
    assert table.match("GET", "/") is None
    m = table.match("GET", "/a/")
    assert m is not None and m.path_parameters == {"proxy": "a/"}


@pytest.mark.parametrize(
    "key",
    [
        "",
        "GET",
        "FETCH /a",
        "get /a",
        "GET a",
        "GET /a//b",
        "GET /{proxy+}/more",
        "GET /{a}/{a}",
        "GET /a{b}",
        "GET /a b",
        "$DEFAULT",
        "GET /{}",
    ],
)
def test_invalid_route_keys(key: str) -> None:
    with pytest.raises(InvalidRouteKey):
        parse_route_key(key)


@pytest.mark.parametrize(
    "key", ["$default", "GET /", "ANY /{proxy+}", "POST /a/{b}/c", "DELETE /v1/x.json"]
)
def test_valid_route_keys(key: str) -> None:
    assert parse_route_key(key).key == key
