"""The HTTP vocabulary shared by the server and every API handler."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Request:
    """One parsed HTTP/1.1 request.

    ``path`` is the raw (still percent-encoded) path as it came on the wire, without the
    query; ``query`` is the raw query string without ``?``. Header names are lower-case;
    repeated headers are joined with ``,``.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    client: str = ""


@dataclass(slots=True)
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who signed a request: the access key, its account, and the scope it signed for."""

    access_key: str
    account_id: str
    region: str
    service: str
