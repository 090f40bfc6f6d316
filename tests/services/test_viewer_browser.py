"""The result viewer in a real browser: headless Chromium (Selenium + chromedriver) drives
``GET /viewer`` against the real receiver, channel and sender on loopback, with the
shipped diffusion model and segmenter (so the page shows a real result).

Skips only where no Chromium / Chrome binary exists, and fails there instead when
``GESCO_REQUIRE_BROWSER=1`` (``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``
and sets it). ``GESCO_VIEWER_SCREENSHOT=docs/images/viewer.png``
writes the README's screenshot; otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import cv2
import httpx
import pytest
from conftest import run_stack
from svc_helpers import REPO, skip_unless_required

from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS

SCENE = REPO / "examples" / "street_scene.png"
LABELS = REPO / "examples" / "street_scene_labels.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FAST = {"sampler": "ddim", "steps": "4"}  # a fast sampler setting: 4 network evaluations


def browser_binary() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = browser_binary()
    if binary is None:
        skip_unless_required("GESCO_REQUIRE_BROWSER",
                             f"no Chromium / Chrome binary on this machine (looked for {', '.join(BROWSERS)}); "
                             "install Debian's chromium and chromium-driver (.ci/run does)")
    chromedriver = shutil.which("chromedriver")
    if chromedriver is None:
        pytest.fail(f"{binary} is installed but chromedriver is not (Debian: apt-get install chromium-driver)")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1150",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # both paths given: Selenium Manager (which could download drivers) is not used
    d = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def shipped_stack(tmp_path_factory):
    """The three services with the shipped diffusion model and segmenter (CPU)."""
    from gesco.segment import load_segmenter
    from receiver.generation import load_generator

    generator = load_generator(None, "cpu")
    with run_stack(tmp_path_factory.mktemp("viewer"), generator, segmenter=load_segmenter(None),
                   resolution=tuple(generator.resolution)) as stack:
        yield stack


# ---------------------------------------------------------------------------- helpers
def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def open_viewer(driver, stack) -> None:
    driver.get_log("browser")  # drop the messages of earlier tests
    driver.get(stack.receiver_url + "/viewer")
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), 20, "the page")


def fill_form(driver, image: Path, label: Path | None = None, psnr: str = "10", **settings: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.ID, "image-file").send_keys(str(image))
    if label is not None:
        driver.find_element(By.ID, "label-file").send_keys(str(label))
    settings = {**FAST, **settings}
    Select(driver.find_element(By.ID, "sampler")).select_by_value(settings["sampler"])
    for field, value in (("psnr", psnr), ("steps", settings["steps"])):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)


def text(driver, element_id: str) -> str:
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)


def loaded_width(driver, element_id: str) -> int:
    """naturalWidth of an <img> once it has loaded (0 while loading or broken)."""
    return driver.execute_script(
        "const i = document.getElementById(arguments[0]); return i.complete && i.getAttribute('src') ? i.naturalWidth : 0",
        element_id)


def table_values(driver, table_id: str) -> dict[str, str]:
    return driver.execute_script(
        "const out = {}; for (const tr of document.querySelectorAll(`#${arguments[0]} tr[data-field]`)) "
        "out[tr.dataset.field] = tr.querySelector('td').textContent; return out", table_id)


def same_number(shown: str, value) -> bool:
    """What the page shows against the API's value (the page rounds floats to 3 decimals or 3 digits)."""
    if value is None:
        return shown == "\u2014"
    if isinstance(value, list):
        return shown == ", ".join(str(v) for v in value)
    if isinstance(value, bool) or isinstance(value, str):
        return shown == str(value)
    if isinstance(value, int):
        return shown == str(value)
    return math.isclose(float(shown), value, rel_tol=5e-3, abs_tol=5e-4)


def severe_console_messages(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def error_shown(driver) -> bool:
    return driver.execute_script("return !document.getElementById('error').hidden")


def wait_done(driver, timeout: float = 90.0) -> str:
    wait_for(lambda: text(driver, "result-status") in ("done", "failed") or error_shown(driver), timeout, "the result")
    assert text(driver, "result-status") == "done", text(driver, "error")
    return text(driver, "result-id")


# ---------------------------------------------------------------------------- tests
def test_upload_with_label_map_shows_result_and_budget(driver, shipped_stack, tmp_path):
    from selenium.webdriver.common.by import By

    open_viewer(driver, shipped_stack)
    # the receiver's default sampler and steps here (the README's screenshot); the other tests take ddim 2 or 4
    fill_form(driver, SCENE, LABELS, psnr="5", sampler=DEFAULT_SAMPLER, steps=str(DEFAULT_STEPS))
    driver.find_element(By.ID, "send-button").click()
    job_id = wait_done(driver)
    height, width = shipped_stack.receiver.generator.resolution
    assert wait_for(lambda: loaded_width(driver, "generated-image"), 20, "the generated image") == width
    for img in ("received-image", "denoised-image"):
        assert wait_for(lambda: loaded_width(driver, img), 20, img) == width
    scene_width = cv2.imread(str(SCENE)).shape[1]
    assert wait_for(lambda: loaded_width(driver, "sent-image"), 20, "the sent image") == scene_width
    assert wait_for(lambda: loaded_width(driver, "label-image"), 20, "the label map") == scene_width
    assert text(driver, "sent-name") == SCENE.name
    assert text(driver, "label-note").startswith(LABELS.name)

    doc = httpx.get(f"{shipped_stack.receiver_url}/result/{job_id}", timeout=10).json()
    assert doc["settings"]["sampler"] == DEFAULT_SAMPLER and doc["settings"]["steps"] == DEFAULT_STEPS
    assert doc["settings"]["psnr_db"] == 5
    budget = table_values(driver, "budget-table")
    assert set(budget) >= {"total_bits", "png_bits", "jpeg_bits", "channel_uses_per_pixel", "bits_per_pixel"}
    for field, shown in budget.items():
        assert same_number(shown, doc["budget"][field]), (field, shown, doc["budget"][field])
    assert doc["budget"]["total_bits"] < doc["budget"]["png_bits"]
    timings = table_values(driver, "timings-table")
    for key in ("queue_wait_s", "fds_s", "sampling_s", "png_s", "total_s", "batch_size", "device"):
        assert same_number(timings[f"receiver.{key}"], doc["timings"][key]), key
    for key in ("decode_s", "resize_s", "encode_s", "reference_s", "channel_s"):  # the sender's reply, kept by the page
        assert float(timings[f"sender.{key}"]) >= 0, key
    assert severe_console_messages(driver) == []
    # the page's screenshot (README)
    out = Path(os.environ.get("GESCO_VIEWER_SCREENSHOT") or tmp_path / "viewer.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(out))
    shot = cv2.imread(str(out))
    assert shot is not None and shot.shape[0] > 500


def test_upload_without_label_map_escapes_file_names(driver, shipped_stack, tmp_path):
    from selenium.webdriver.common.by import By

    image = tmp_path / '<img src=x onerror="window.pwned=1">scene &amp; <b>.png'
    shutil.copy(SCENE, image)
    open_viewer(driver, shipped_stack)
    fill_form(driver, image)
    driver.find_element(By.ID, "send-button").click()
    wait_done(driver)
    assert wait_for(lambda: loaded_width(driver, "generated-image"), 20, "the generated image")
    assert text(driver, "sent-name") == image.name
    assert "segmenter" in text(driver, "label-note")
    assert float(table_values(driver, "timings-table")["sender.segment_s"]) > 0  # the sender segmented it
    assert driver.execute_script("return document.querySelectorAll('main b, img[src=x]').length") == 0
    assert driver.execute_script("return window.pwned === undefined")
    assert severe_console_messages(driver) == []


def test_bad_upload_shows_the_senders_reason(driver, shipped_stack, tmp_path):
    from selenium.webdriver.common.by import By

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"<script>window.pwned=1</script> not an image")
    direct = httpx.post(shipped_stack.sender_url + "/transmit", files={"image": ("junk.png", junk.read_bytes())}, timeout=30)
    assert direct.status_code == 415
    open_viewer(driver, shipped_stack)
    fill_form(driver, junk)
    driver.find_element(By.ID, "send-button").click()
    wait_for(lambda: error_shown(driver), 30, "the error")
    assert text(driver, "error") == f"415 from the sender: {direct.json()['detail']}"
    assert driver.execute_script("return document.getElementById('error').children.length") == 0
    # a parameter out of range: the sender's 422 (pydantic's message) is shown too
    fill_form(driver, SCENE, psnr="500")
    driver.find_element(By.ID, "send-button").click()
    wait_for(lambda: text(driver, "error").startswith("422 from the sender: psnr_db"), 30, "the 422")
    assert driver.execute_script("return window.pwned === undefined")


def test_history_reopens_a_result(driver, shipped_stack):
    from selenium.webdriver.common.by import By

    listed = httpx.get(shipped_stack.receiver_url + "/results", timeout=10).json()["results"]
    assert listed, "the earlier tests stored results"
    open_viewer(driver, shipped_stack)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#history-list button"), 20, "the history")
    buttons = driver.find_elements(By.CSS_SELECTOR, "#history-list button")
    assert [b.text for b in buttons] == [r["id"] for r in listed]
    buttons[-1].click()  # the oldest
    assert wait_done(driver) == listed[-1]["id"]
    assert driver.current_url.endswith(f"#result={listed[-1]['id']}")
    assert wait_for(lambda: loaded_width(driver, "generated-image"), 20, "the generated image")
    assert "not stored" in text(driver, "sent-note")
    # the URL itself reopens it
    driver.get(f"{shipped_stack.receiver_url}/viewer#result={listed[0]['id']}")
    assert wait_done(driver) == listed[0]["id"]


def test_compare_view_sends_one_scene_at_several_psnrs(driver, shipped_stack):
    from selenium.webdriver.common.by import By

    open_viewer(driver, shipped_stack)
    fill_form(driver, SCENE, LABELS, steps="2")
    psnrs = driver.execute_script("return fetch('/viewer/config.json').then(r => r.json()).then(c => c.compare_psnrs_db)")
    driver.find_element(By.ID, "compare-button").click()
    statuses = "#compare-table tr[data-field=status] td"
    wait_for(lambda: [c.text for c in driver.find_elements(By.CSS_SELECTOR, statuses)] == ["done"] * len(psnrs), 120,
             "the compare view")
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#compare-table thead th")][1:]
    assert heads == [f"{p:g} dB" for p in psnrs]
    assert driver.execute_script("return [...document.querySelectorAll('#compare-table img')]"
                                 ".every(i => i.complete && i.naturalWidth > 0)")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#compare-table img")) == 3 * len(psnrs)
    ids = driver.current_url.split("#compare=")[1].split(",")
    bits = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#compare-table tr[data-field=total_bits] td")]
    for job_id, shown, psnr in zip(ids, bits, psnrs):
        doc = httpx.get(f"{shipped_stack.receiver_url}/result/{job_id}", timeout=10).json()
        assert doc["settings"]["psnr_db"] == psnr and shown == str(doc["budget"]["total_bits"])
    assert severe_console_messages(driver) == []
