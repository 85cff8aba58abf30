"""Functions' temporary credentials: issued per account, checked statelessly."""

from __future__ import annotations

from hearth.api.session_keys import SessionKeys


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_issued_credentials_resolve_to_their_account_only_with_their_token() -> None:
    clock = Clock()
    keys = SessionKeys(b"s" * 32, clock=clock, lifetime=3600)
    env = keys.issue("123456789012")
    key_id, secret, token = (
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]
    )  # fmt: skip
    assert key_id.startswith("ASIA") and "/" not in key_id and "=" not in key_id
    key = keys.resolve(key_id, token)
    assert key is not None
    assert (key.key_id, key.secret, key.account_id) == (key_id, secret, "123456789012")
    assert keys.resolve(key_id, None) is None
    assert keys.resolve(key_id, secret) is None
    assert keys.resolve("AKIA" + key_id[4:], token) is None
    assert keys.resolve("ASIA!!notbase32", token) is None
    # Another issue is another key; another server secret accepts neither.
    assert keys.issue("123456789012")["AWS_ACCESS_KEY_ID"] != key_id
    assert SessionKeys(b"t" * 32, clock=clock).resolve(key_id, token) is None
    # Expired: refused.
    clock.now += 3601
    assert keys.resolve(key_id, token) is None
