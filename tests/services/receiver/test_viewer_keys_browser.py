"""The result viewer with API keys on (issue 25), in headless Chromium (see test_viewer_browser.py).

The key is typed into the page's password field: the page sends it as an ``Authorization``
header on its API calls (history, result, label colouring, the sender's ``/transmit``) and
fetches the images with it; it is not written to the URL, to cookies or to web storage.
Without the key the history call is refused (401) and the page says so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest
from svc_helpers import TINY_RESOLUTION, UvicornThread
from test_viewer_browser import LABELS, SCENE, driver, fill_form, loaded_width, text, wait_done, wait_for  # noqa: F401

from gesco_net.probes import free_port

KEY = "viewer-key-0123456789abcdef"


@dataclass
class KeyedStack:
    receiver_url: str


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory, tiny_generator):
    from channel.server import create_server
    from channel.settings import ChannelSettings
    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings
    from sender.app import create_app
    from sender.settings import SenderSettings

    tmp = tmp_path_factory.mktemp("keyed-viewer")
    rest, rgrpc, cport, sport = (free_port() for _ in range(4))
    with contextlib.ExitStack() as exits:
        receiver = ReceiverService(ReceiverSettings(
            port=rest, grpc_port=rgrpc, data_dir=tmp / "data", device="cpu", fsync=False, api_keys=KEY,
            sender_url=f"http://127.0.0.1:{sport}"), generator=tiny_generator).start()
        exits.callback(receiver.stop)
        exits.enter_context(UvicornThread(receiver.app, rest))
        channel = create_server(ChannelSettings(port=cport, receiver_address=f"127.0.0.1:{rgrpc}",
                                                budget_log=tmp / "budget.jsonl")).start()
        exits.callback(channel.stop)
        sender = create_app(SenderSettings(
            port=sport, channel_address=f"127.0.0.1:{cport}", receiver_url=f"http://127.0.0.1:{rest}",
            height=TINY_RESOLUTION[0], width=TINY_RESOLUTION[1], load_segmenter=False, api_keys=KEY))
        exits.enter_context(UvicornThread(sender, sport))
        yield KeyedStack(receiver_url=f"http://127.0.0.1:{rest}")


def test_viewer_sends_the_typed_key_and_keeps_it_out_of_urls_and_storage(driver, keyed_stack):  # noqa: F811
    from selenium.webdriver.common.by import By

    driver.get(keyed_stack.receiver_url + "/viewer")
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), 20, "the page")
    wait_for(lambda: "401" in text(driver, "error"), 20, "the refused history")  # no key yet
    box = driver.find_element(By.ID, "api-key")
    box.send_keys(KEY)
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", box)
    fill_form(driver, SCENE, LABELS, steps="2")
    driver.find_element(By.ID, "send-button").click()
    wait_done(driver)
    assert wait_for(lambda: loaded_width(driver, "generated-image"), 20, "the generated image") == TINY_RESOLUTION[1]
    assert wait_for(lambda: loaded_width(driver, "label-image"), 20, "the colour-coded label map")
    assert driver.execute_script("return document.getElementById('generated-image').src").startswith("blob:")
    # the key is in no URL, cookie or storage of the page
    assert KEY not in driver.current_url
    stored = driver.execute_script("return JSON.stringify([document.cookie, Object.entries(localStorage), "
                                   "Object.entries(sessionStorage)])")
    assert KEY not in stored
    # the history, refused before, now lists the job
    driver.find_element(By.ID, "history-refresh").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#history-list button"), 20, "the history")
