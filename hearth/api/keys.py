"""Access-key configuration: which key ids exist, their secrets and their accounts.

Keys come from two places, both optional, and are merged:

* ``HEARTH_ACCESS_KEYS`` in the environment: ``KEYID:SECRET:ACCOUNT[,KEYID:SECRET:ACCOUNT...]``.
  The key id ends at the first ``:`` and the account at the last one, so a secret may itself
  contain ``:``. Blank entries (e.g. a trailing comma) are ignored.
* a JSON config file: ``{"access_keys": [{"key_id": .., "secret": .., "account_id": ..}]}``.

An empty result means "no keys configured"; the server then falls back to
:data:`DEFAULT_TEST_KEY` (the ``test``/``test`` pair every AWS emulator accepts). Every
configuration mistake is a :class:`ValueError` so that startup can report it in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_VAR = "HEARTH_ACCESS_KEYS"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One access key. ``secret`` is kept out of ``repr`` so it never lands in a log line."""

    key_id: str
    secret: str = field(repr=False)
    account_id: str


#: Used by the server when no keys are configured.
DEFAULT_TEST_KEY = AccessKey("test", "test", "000000000000")


def _validated(key_id: str, secret: str, account_id: str, where: str) -> AccessKey:
    # A key id is the first element of a SigV4 credential scope ("KEYID/date/region/..."),
    # so it cannot contain "/" and must survive the Authorization header's "," splitting.
    if not key_id or any(c in key_id for c in "/,= ") or not key_id.isprintable():
        raise ValueError(f"{where}: invalid access key id {key_id!r}")
    if not secret:
        raise ValueError(f"{where}: access key {key_id!r} has an empty secret")
    if len(account_id) != 12 or not account_id.isascii() or not account_id.isdigit():
        raise ValueError(
            f"{where}: account id for access key {key_id!r} must be 12 digits, got {account_id!r}"
        )
    return AccessKey(key_id, secret, account_id)


def _add(keys: dict[str, AccessKey], key: AccessKey, where: str) -> None:
    existing = keys.get(key.key_id)
    if existing is not None and existing != key:
        raise ValueError(
            f"{where}: access key {key.key_id!r} is defined twice with different values"
        )
    keys[key.key_id] = key


def _parse_env(value: str) -> list[AccessKey]:
    keys = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        key_id, sep1, rest = entry.partition(":")
        secret, sep2, account_id = rest.rpartition(":")
        if not sep1 or not sep2:
            raise ValueError(f"{ENV_VAR}: entry {key_id!r}... is not KEYID:SECRET:ACCOUNT")
        keys.append(_validated(key_id, secret, account_id, ENV_VAR))
    return keys


def _parse_file(path: str) -> list[AccessKey]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise ValueError(f"{path}: cannot read access key file: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ValueError(f'{path}: expected an object with an "access_keys" list')
    entries = doc.get("access_keys", [])
    if not isinstance(entries, list):
        raise ValueError(f'{path}: "access_keys" must be a list')
    keys = []
    for i, entry in enumerate(entries):
        where = f"{path}: access_keys[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object")
        values = [entry.get(name) for name in ("key_id", "secret", "account_id")]
        key_id, secret, account_id = values
        if not (
            isinstance(key_id, str) and isinstance(secret, str) and isinstance(account_id, str)
        ):
            raise ValueError(f'{where}: "key_id", "secret" and "account_id" must be strings')
        keys.append(_validated(key_id, secret, account_id, where))
    return keys


def load_access_keys(environ: Mapping[str, str], config_file: str | None) -> dict[str, AccessKey]:
    """Return the configured keys by key id (the config file first, then the environment).

    The same key id may appear in both sources only with identical values. Raises
    :class:`ValueError` for any malformed entry, including an account id that is not 12
    digits. An empty dict means nothing was configured.
    """
    keys: dict[str, AccessKey] = {}
    if config_file is not None:
        for key in _parse_file(config_file):
            _add(keys, key, config_file)
    env_value = environ.get(ENV_VAR, "")
    for key in _parse_env(env_value):
        _add(keys, key, ENV_VAR)
    return keys
