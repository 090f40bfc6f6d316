"""docs/security.md and docs/services.md together list every setting of the three services."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("module, name", [("sender.settings", "SenderSettings"), ("channel.settings", "ChannelSettings"),
                                          ("receiver.settings", "ReceiverSettings")])
def test_every_setting_is_documented(module, name):
    import importlib

    cls = getattr(importlib.import_module(module), name)
    prefix = cls.model_config["env_prefix"]
    text = (DOCS / "security.md").read_text() + (DOCS / "services.md").read_text()
    missing = [f"{prefix}{field.upper()}" for field in cls.model_fields if f"{prefix}{field.upper()}" not in text]
    assert not missing, f"not in docs/security.md or docs/services.md: {missing}"
