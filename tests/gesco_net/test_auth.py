"""API keys, identities, bearer parsing and origins (the HTTP / gRPC behaviour is in tests/services)."""

from __future__ import annotations

import hashlib

import pytest

from gesco_net.auth import (
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


def test_no_exposure_warning_for_containers_published_on_loopback():
    """Issue 25: every container warned about 0.0.0.0 although compose publishes on 127.0.0.1 only."""
    import logging

    from gesco_net.auth import ApiKeys, warn_if_exposed

    log = logging.getLogger("gesco.test.exposed")
    assert warn_if_exposed("the sender", "0.0.0.0", ApiKeys([]), log)  # a host process on every interface
    for published in ("127.0.0.1", "none"):
        assert not warn_if_exposed("the sender", "0.0.0.0", ApiKeys([]), log, published)
    assert warn_if_exposed("the sender", "0.0.0.0", ApiKeys([]), log, "0.0.0.0")  # GESCO_BIND=0.0.0.0


def test_compose_tells_each_service_where_its_ports_are_published():
    from pathlib import Path

    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    env = {name: doc["services"][name]["environment"] for name in ("sender", "channel", "receiver")}
    assert env["sender"]["GESCO_SENDER_PUBLISHED_ON"] == "${GESCO_BIND:-127.0.0.1}"
    assert env["receiver"]["GESCO_RECEIVER_PUBLISHED_ON"] == "${GESCO_BIND:-127.0.0.1}"
    assert env["channel"]["GESCO_CHANNEL_PUBLISHED_ON"] == "none"
