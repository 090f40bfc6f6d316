"""API keys, identities, bearer parsing and origins (the HTTP / gRPC behaviour is in tests/services)."""

from __future__ import annotations

import hashlib

import pytest

from gesco.serving.auth import (
    ApiKeys,
    ConfigError,
    bearer_token,
    key_identity,
    origin_of,
    parse_origins,
    read_keys,
    read_secret,
    with_loopback_aliases,
)

KEY = "k" * 16


def test_identity_is_a_truncated_sha256_and_keys_are_not_kept():
    assert key_identity(KEY) == hashlib.sha256(KEY.encode()).hexdigest()[:32]
    keys = ApiKeys([KEY])
    assert keys.enabled and keys.identify(KEY) == key_identity(KEY)
    assert keys.identify(KEY + "x") is None and keys.identify(None) is None and keys.identify("") is None
    assert KEY not in repr(vars(keys))
    assert not ApiKeys([]).enabled


def test_read_keys_from_setting_and_file(tmp_path):
    f = tmp_path / "keys"
    f.write_text(f"# clients\n{'a' * 20}\n\n{'b' * 20}\n")
    assert read_keys(f" {KEY} ,", f) == [KEY, "a" * 20, "b" * 20]
    assert read_keys("", None) == []
    with pytest.raises(ConfigError, match="at least 16"):
        read_keys("short")
    with pytest.raises(ConfigError, match="cannot read"):
        read_keys(None, tmp_path / "missing")
    (tmp_path / "one").write_text(KEY + "\n")
    assert read_secret(None, tmp_path / "one") == KEY
    with pytest.raises(ConfigError, match="one key"):
        read_secret(None, f)


def test_settings_refuse_short_keys():
    from sender.app import create_app
    from sender.settings import SenderSettings

    with pytest.raises(ConfigError):
        create_app(SenderSettings(api_keys="tooshort", load_segmenter=False))


@pytest.mark.parametrize("value, token", [
    (f"Bearer {KEY}", KEY), (f"bearer   {KEY} ", KEY), (f"Basic {KEY}", None), ("Bearer", None), (None, None), ("", None),
])
def test_bearer_token(value, token):
    assert bearer_token(value) == token


def test_origins():
    assert origin_of("HTTP://LocalHost:8002/viewer?x=1") == "http://localhost:8002"
    assert origin_of("https://example.org:443") == "https://example.org"
    with pytest.raises(ConfigError):
        origin_of("ftp://x")
    assert set(with_loopback_aliases("http://127.0.0.1:8002")) == {
        "http://127.0.0.1:8002", "http://localhost:8002", "http://[::1]:8002"}
    assert with_loopback_aliases("https://testbed.example") == ["https://testbed.example"]
    assert parse_origins("https://a.example, http://b.example:81") == ["https://a.example", "http://b.example:81"]
