"""CORS as function URLs and HTTP APIs apply it: preflights answered by Hearth itself.

With a CORS configuration, an ``OPTIONS`` request carrying ``Origin`` and
``Access-Control-Request-Method`` is a preflight and never reaches the function: it gets
a 200 from a function URL, a 204 from an HTTP API (allowed origin or not), whose CORS
headers are present only if the origin is allowed. On other requests from an allowed
origin, ``Access-Control-Allow-Origin``, ``-Expose-Headers`` and ``-Allow-Credentials``
are added to the function's response (replacing any the function set, as AWS does when
CORS is configured).

Configurations use the Lambda member names (``AllowOrigins``...); HTTP APIs' are the same.
"""

from __future__ import annotations

from typing import Any

from hearth.api.types import Request, Response

_CORS_PREFIX = "access-control-"


def _allowed_origin(cors: dict[str, Any], origin: str) -> str | None:
    origins = cors.get("AllowOrigins") or []
    if "*" in origins:
        return "*" if not cors.get("AllowCredentials") else origin
    lowered = origin.lower()
    for o in origins:
        if o.lower() == lowered:
            return origin
    return None


def is_preflight(req: Request) -> bool:
    return (
        req.method == "OPTIONS"
        and "origin" in req.headers
        and "access-control-request-method" in req.headers
    )


def preflight(cors: dict[str, Any], req: Request, status: int = 200) -> Response:
    """The answer to a preflight: 200 from function URLs, 204 from HTTP APIs."""
    headers: list[tuple[str, str]] = []
    origin = _allowed_origin(cors, req.headers.get("origin", ""))
    if origin is not None:
        headers.append(("Access-Control-Allow-Origin", origin))
        methods = cors.get("AllowMethods") or []
        if methods:
            headers.append(("Access-Control-Allow-Methods", ",".join(methods)))
        allow_headers = cors.get("AllowHeaders") or []
        if allow_headers:
            headers.append(("Access-Control-Allow-Headers", ",".join(allow_headers)))
        if cors.get("AllowCredentials"):
            headers.append(("Access-Control-Allow-Credentials", "true"))
        if cors.get("MaxAge") is not None:
            headers.append(("Access-Control-Max-Age", str(cors["MaxAge"])))
        if origin != "*":
            headers.append(("Vary", "Origin"))
    return Response(status, headers, b"")


def decorate(cors: dict[str, Any], req: Request, resp: Response) -> Response:
    """Add CORS headers to a function's response for an allowed ``Origin``."""
    origin_header = req.headers.get("origin")
    if not cors or origin_header is None:
        return resp
    kept = [(k, v) for k, v in resp.headers if not k.lower().startswith(_CORS_PREFIX)]
    origin = _allowed_origin(cors, origin_header)
    if origin is not None:
        kept.append(("Access-Control-Allow-Origin", origin))
        expose = cors.get("ExposeHeaders") or []
        if expose:
            kept.append(("Access-Control-Expose-Headers", ",".join(expose)))
        if cors.get("AllowCredentials"):
            kept.append(("Access-Control-Allow-Credentials", "true"))
    resp.headers = kept
    return resp
