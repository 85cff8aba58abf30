"""Presigned-style download URLs for stored packages (function code, layer content).

Like a presigned S3 URL: ``…/<sha>.zip?Expires=<epoch>&Signature=<hmac>``, valid for ten
minutes, checked with a server secret and a constant-time compare. A *scope* keeps the
signatures of different stores apart (a layer URL never opens function code).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TTL_SECONDS = 600


class SignedUrls:
    def __init__(self, secret: bytes, scope: str = "") -> None:
        self._secret = secret
        self._scope = scope

    def _sign(self, sha: str, expires: int) -> str:
        msg = f"{self._scope}{sha}:{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def url(self, host: str, prefix: str, sha: str) -> str:
        """``http://<host><prefix><sha>.zip?Expires=…&Signature=…``."""
        expires = int(time.time()) + TTL_SECONDS
        return (
            f"http://{host}{prefix}{sha}.zip?Expires={expires}&Signature={self._sign(sha, expires)}"
        )

    def valid(self, sha: str, expires: str, signature: str) -> bool:
        """Whether a URL's query is genuine and unexpired."""
        try:
            exp = int(expires)
        except ValueError:
            return False
        return exp >= time.time() and hmac.compare_digest(self._sign(sha, exp), signature)
