"""Temporary credentials for functions: what Lambda's execution role gives them.

Lambda sets ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` in
every execution environment (the execution role's session), so that an AWS SDK inside the
function signs its calls with no configuration. Hearth does the same with credentials that
Hearth itself accepts, for the function's account only, so ``boto3`` inside a function can
call back into Hearth (when the operator lets the sandbox reach the endpoint at all).

Design (stateless, nothing stored, nothing of the operator's keys handed out):

* key id: ``ASIA`` + base32 of (account id, expiry, random nonce), AWS's prefix for
  temporary keys; anyone can read the account and expiry from it, nobody can forge one;
* secret: ``HMAC-SHA256(master, "secret\\0" + key id)``, the session token:
  ``HMAC-SHA256(master, "token\\0" + key id)``, both base64;
* ``master`` is derived from the server's own random secret (in its data directory), never
  from an operator's access key; rotating that file revokes every issued credential.

A request signed with such a key is verified like any other (:mod:`hearth.api.sigv4`),
after :meth:`SessionKeys.resolve` has checked the expiry and the ``X-Amz-Security-Token``
(missing or wrong: AWS's ``UnrecognizedClientException``, as for an unknown key). The
principal is the account; credentials last 12 hours. As on Lambda they are never renewed
inside an environment: the worker recycles every environment (provisioned ones replaced
first, SnapStart templates too) an hour before they expire (:mod:`hearth.worker.lifetimes`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Callable

from hearth.api.keys import AccessKey

PREFIX = "ASIA"
LIFETIME = 12 * 3600
_LAYOUT = struct.Struct(">QI6s")  # account id (as an integer), expiry (epoch s), nonce


class SessionKeys:
    def __init__(
        self,
        server_secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        lifetime: int = LIFETIME,
    ) -> None:
        # A key of its own, so these credentials and the server's other uses of its secret
        # (signed code URLs) can never stand for one another.
        self._master = hmac.new(server_secret, b"hearth function session keys", "sha256").digest()
        self._clock = clock
        self._lifetime = lifetime

    def _mac(self, kind: str, key_id: str) -> str:
        digest = hmac.new(self._master, f"{kind}\0{key_id}".encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def issue(self, account_id: str) -> dict[str, str]:
        """Fresh credentials of ``account_id``, as the environment variables Lambda sets."""
        expiry = int(self._clock()) + self._lifetime
        raw = _LAYOUT.pack(int(account_id), expiry, secrets.token_bytes(6))
        key_id = PREFIX + base64.b32encode(raw).decode().rstrip("=")
        return {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": self._mac("secret", key_id),
            "AWS_SESSION_TOKEN": self._mac("token", key_id),
        }

    def resolve(self, key_id: str, token: str | None) -> AccessKey | None:
        """The access key behind an issued key id, if it is genuine, unexpired and
        presented with its session token; else None (the caller's "invalid token")."""
        if not key_id.startswith(PREFIX) or token is None:
            return None
        body = key_id[len(PREFIX) :]
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
            account, expiry, _ = _LAYOUT.unpack(raw)
        except (binascii.Error, ValueError, struct.error):
            return None
        if expiry < self._clock() or account >= 10**12:
            return None
        if not hmac.compare_digest(token.encode(), self._mac("token", key_id).encode()):
            return None
        return AccessKey(key_id, self._mac("secret", key_id), f"{account:012d}")
