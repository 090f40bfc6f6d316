"""/docs and /redoc of the sender and the receiver work offline: no external URL in the pages,
and every asset they reference is served by the app itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from gesco_net.api_docs import ASSET_FILES, ASSETS_URL

#: src="..." / href="..." / url: '...' references in a page
_REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    from receiver.app import create_app as receiver_app
    from receiver.stores import JobStore
    from sender.app import create_app as sender_app
    from sender.settings import SenderSettings

    store = JobStore(tmp_path_factory.mktemp("store"), fsync=False)
    yield {"sender": sender_app(SenderSettings(load_segmenter=False)),
           "receiver": receiver_app(store, {"class_space": "cityscapes"}, 1)}
    store.close()


@pytest.mark.parametrize("service", ["sender", "receiver"])
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets(apps, service, page):
    client = TestClient(apps[service])
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I), re.findall(r"\S*https?://\S*", html)
    refs = [a or b for a, b in _REF.findall(html)]
    assert any(ref.startswith(ASSETS_URL) for ref in refs), refs
    assert "/openapi.json" in html
    for ref in refs:
        got = client.get(ref)
        assert got.status_code == 200, ref
        assert len(got.content) > 0, ref


@pytest.mark.parametrize("service", ["sender", "receiver"])
def test_every_asset_is_served(apps, service):
    client = TestClient(apps[service])
    for name in ASSET_FILES:
        r = client.get(f"{ASSETS_URL}/{name}")
        assert r.status_code == 200, name
        assert len(r.content) > 1000, name
    assert client.get(f"{ASSETS_URL}/nothing.js").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"].startswith("gesco")


@pytest.mark.parametrize("service", ["sender", "receiver"])
def test_redoc_script_draws_no_image_from_its_cdn(apps, service):
    from gesco_net.api_docs import BLANK_IMAGE, assets_dir

    assert "cdn.redoc.ly" in (assets_dir() / "redoc.standalone.js").read_text()  # what the bundle would load
    served = TestClient(apps[service]).get(f"{ASSETS_URL}/redoc.standalone.js")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/javascript")
    assert "cdn.redoc.ly" not in served.text and BLANK_IMAGE in served.text
    assert len(served.content) > 1_000_000  # the whole script, not a stub


def test_swagger_ui_has_no_validator_badge(apps):
    html = TestClient(apps["sender"]).get("/docs").text
    assert '"validatorUrl": null' in html


@pytest.mark.parametrize(("service", "page"), [("sender", "/docs"), ("receiver", "/viewer")])
def test_root_leads_to_a_page(apps, service, page):
    client = TestClient(apps[service])
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == page
    landed = client.get("/")
    assert landed.status_code == 200 and landed.headers["content-type"].startswith("text/html")


def test_root_is_open_without_a_key(tmp_path):
    from gesco_net.auth import ApiKeys
    from receiver.app import create_app as receiver_app
    from receiver.stores import JobStore

    store = JobStore(tmp_path / "store", fsync=False)
    try:
        client = TestClient(receiver_app(store, {"class_space": "cityscapes"}, 1, keys=ApiKeys(["k" * 32])))
        assert client.get("/", follow_redirects=False).status_code == 307
        assert client.get("/results").status_code == 401  # the API itself still wants the key
    finally:
        store.close()
