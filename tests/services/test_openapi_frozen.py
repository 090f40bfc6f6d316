"""The sender's and the receiver's OpenAPI schemas are frozen: a refactor must not change the
public REST contract by accident.

The reference files under ``tests/fixtures/frozen/`` were written from the apps as they stood
before the architecture work of issue 27. A deliberate change of the API rewrites them with
``GESCO_UPDATE_FROZEN=1 python -m pytest tests/services/test_openapi_frozen.py`` and the diff of
the JSON shows the change in review.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

FROZEN = Path(__file__).resolve().parents[1] / "fixtures" / "frozen"


def _schemas(tmp_path: Path) -> dict[str, dict]:
    from receiver.app import create_app as receiver_app
    from receiver.stores import JobStore
    from sender.app import create_app as sender_app
    from sender.settings import SenderSettings

    store = JobStore(tmp_path / "store", fsync=False)
    try:
        return {
            "sender": sender_app(SenderSettings(load_segmenter=False)).openapi(),
            "receiver": receiver_app(store, {"class_space": "cityscapes"}, 1).openapi(),
        }
    finally:
        store.close()


@pytest.mark.parametrize("service", ["sender", "receiver"])
def test_openapi_schema_is_unchanged(tmp_path, service):
    got = json.loads(json.dumps(_schemas(tmp_path)[service], sort_keys=True))
    path = FROZEN / f"openapi-{service}.json"
    if os.environ.get("GESCO_UPDATE_FROZEN") == "1":
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    assert got == want, f"the {service}'s OpenAPI schema changed; if deliberate, rewrite {path} (see the module docstring)"
