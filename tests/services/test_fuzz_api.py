"""schemathesis against both OpenAPI schemas (sender, receiver) on the live in-process stack.

A short, seeded budget (``bench/fuzz_services.py`` runs a longer one): no generated
request, valid or invalid by the schema, may get a 5xx or break the connection. The
sender gets a segmenter (a constant one), so an upload without a label map has no
legitimate reason for 503 either. The one 5xx accepted (and counted) is the documented
503 of a channel model whose optional extra is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra: pip install -e '.[dev]'")

from svc_helpers import scene_files

from gesco_net.api_fuzz import fuzz_openapi

EXAMPLES = 15
SEED = 14


class RoadEverywhere:
    def predict_numpy(self, image):
        return np.full(image.shape[:2], 7, np.uint8)


def missing_optional_extra(status: int, body: str) -> bool:
    """The documented 503 of a channel model whose optional extra is not installed (e.g. 'tdl' without Sionna)."""
    return status == 503 and "the channel cannot serve this request" in body and "pip install" in body


def test_sender_schema_fuzz_gives_no_5xx(stack):
    files = scene_files(seed=9)
    with stack.sender(inject_segmenter=RoadEverywhere()) as url:
        report = fuzz_openapi(url, max_examples=EXAMPLES, seed=SEED, files=files, accept=missing_optional_extra)
    assert report.failures == [], report.failures[:5]
    assert report.cases["POST /transmit"] >= EXAMPLES and report.cases["GET /healthz"] >= 1
    assert report.statuses[422] > 0  # the negative cases reached the validation
    assert report.statuses[202] > 0  # positive cases with real files went through the whole stack
    assert ("POST /transmit", "negative") not in report.no_cases


def test_receiver_schema_fuzz_gives_no_5xx(stack):
    report = fuzz_openapi(stack.receiver_url, max_examples=EXAMPLES, seed=SEED)
    assert report.failures == [], report.failures[:5]
    assert report.cases["GET /result/{job_id}"] >= EXAMPLES and report.statuses[404] > 0
