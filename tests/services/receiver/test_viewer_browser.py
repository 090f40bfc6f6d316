"""The result viewer in a real browser: headless Chromium (Selenium + chromedriver) drives
``GET /viewer`` against the real receiver, channel and sender on loopback, with the
shipped diffusion model and segmenter (so the page shows a real result).

Skips only where no Chromium / Chrome binary exists, and fails there instead when
``GESCO_REQUIRE_BROWSER=1`` (``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``
and sets it). ``GESCO_VIEWER_SCREENSHOT=docs/images/viewer.png``
writes the README's screenshot; otherwise it goes to the test's temporary folder.
``GESCO_VIEWER_SHOTS=DIR`` also saves a full-page screenshot of each view the tests check
(out-of-domain photo, history, letterbox, compare) into DIR, to look at.
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
from imported_helpers import H, W, cityscapes_pair, import_random_authors_model, png
from svc_helpers import REPO, skip_unless_required

from gesco.codecs.accounting import frame_bits
from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.link import decode_image, decode_label_map, encode_image_frame
from gesco.semantics.classes import get_class_space

SCENE = REPO / "examples" / "street_scene.png"
LABELS = REPO / "examples" / "street_scene_labels.png"
INSTANCES = REPO / "examples" / "street_scene_instances.png"
#: the window the compare view must fit (a common laptop screen), and the tests' usual one
LAPTOP_WIDTH = 1366
WINDOW = (1500, 1150)
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
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}",
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
def portrait_photo() -> Path:
    """A real photo (Grace Hopper, 600 x 512, H x W): out of the segmenter's domain, and cropped."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


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


def fill_form(driver, image: Path, label: Path | None = None, psnr: str = "10", instance: Path | None = None,
              **settings: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.ID, "image-file").send_keys(str(image))
    if label is not None:
        driver.find_element(By.ID, "label-file").send_keys(str(label))
    if instance is not None:
        driver.find_element(By.ID, "instance-file").send_keys(str(instance))
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


def shot(driver, name: str) -> None:
    """A full-page screenshot into ``$GESCO_VIEWER_SHOTS/<name>.png`` when that is set."""
    folder = os.environ.get("GESCO_VIEWER_SHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], height + 150))
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(size["width"], size["height"])


def broken_images(driver) -> list[str]:
    """Every displayed <img> (it has a box on the page) that has not loaded or cannot: its id or alt."""
    return driver.execute_script(
        "return [...document.images].filter(i => i.getClientRects().length > 0 && "
        "(!i.complete || i.naturalWidth === 0)).map(i => i.id || i.alt || i.src)")


def no_broken_images(driver, timeout: float = 20.0) -> None:
    """Wait until every displayed image has loaded; fail naming those that do not (broken icons)."""
    try:
        wait_for(lambda: not broken_images(driver), timeout, "the displayed images to load")
    except AssertionError:
        raise AssertionError(f"displayed images that did not load: {broken_images(driver)}") from None


def list_items(driver, element_id: str) -> list[str]:
    """The texts of a list's items, [] while the list is hidden."""
    return driver.execute_script(
        "const l = document.getElementById(arguments[0]); "
        "return l.hidden ? [] : [...l.children].map(li => li.textContent)", element_id)


def box(driver, css: str) -> dict[str, float]:
    return driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect(); "
        "return {top: r.top, left: r.left, height: r.height, width: r.width, right: r.right}", css)


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
    no_broken_images(driver)
    assert list_items(driver, "warnings") == []  # a street scene of the model's ratio: nothing to warn about

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
    no_broken_images(driver)  # the label map is not displayed at all (hidden, not a broken icon)
    assert driver.execute_script("return document.getElementById('label-image').getClientRects().length") == 0
    assert severe_console_messages(driver) == []


def test_out_of_domain_photo_shows_the_warnings_and_the_crop(driver, shipped_stack, portrait_photo):
    from selenium.webdriver.common.by import By

    open_viewer(driver, shipped_stack)
    # the receiver's defaults, as a newcomer sends it (GESCO_VIEWER_SHOTS: docs/images/viewer_photo.png)
    fill_form(driver, portrait_photo, sampler=DEFAULT_SAMPLER, steps=str(DEFAULT_STEPS))
    driver.find_element(By.ID, "send-button").click()
    job_id = wait_done(driver)
    doc = httpx.get(f"{shipped_stack.receiver_url}/result/{job_id}", timeout=10).json()
    up = doc["upload"]
    assert up["out_of_domain"] and up["aspect"] == "crop" and up["source_size"] == [600, 512]
    # every warning of the result, as the API gives it
    assert list_items(driver, "warnings") == doc["warnings"] and len(doc["warnings"]) == 2
    assert any("does not look like a street scene" in w for w in list_items(driver, "warnings"))
    assert any("centre-cropped" in w for w in list_items(driver, "warnings"))
    note = text(driver, "upload-note")
    assert "upload 600x512 (H x W)" in note and "OUT OF DOMAIN" in note and f"{up['domain_score']:.3f}" in note
    # the whole photo, its cut-off rows hatched above and below the kept box (at the photo's scale)
    assert wait_for(lambda: loaded_width(driver, "sent-image"), 20, "the sent image") == 512
    assert driver.execute_script("return document.getElementById('sent-frame').dataset.aspect") == "crop"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#sent-frame .cut")) == 2
    frame, kept = box(driver, "#sent-frame"), box(driver, "#sent-frame .kept")
    top, _, bottom, _ = up["source_box"]
    assert kept["height"] / frame["height"] == pytest.approx((bottom - top) / 600, abs=0.01)
    assert (kept["top"] - frame["top"]) / frame["height"] == pytest.approx(top / 600, abs=0.01)
    assert kept["width"] == pytest.approx(frame["width"], abs=1)
    no_broken_images(driver)
    shot(driver, "out_of_domain")
    # reopened from its link: the same warnings and marks, no photo, and why the sender's timings are missing
    open_viewer(driver, shipped_stack)
    driver.get(f"{shipped_stack.receiver_url}/viewer#result={job_id}")
    assert wait_done(driver) == job_id
    assert list_items(driver, "warnings") == doc["warnings"]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#sent-frame .cut")) == 2
    assert driver.execute_script("return document.getElementById('sent-image').getClientRects().length") == 0
    assert "not stored" in table_values(driver, "timings-table")["sender"]
    no_broken_images(driver)
    shot(driver, "out_of_domain_reopened")
    assert severe_console_messages(driver) == []


def test_instance_map_is_sent_with_the_label_map(driver, shipped_stack):
    from selenium.webdriver.common.by import By

    open_viewer(driver, shipped_stack)
    fill_form(driver, SCENE, LABELS, instance=INSTANCES, steps="2")
    driver.find_element(By.ID, "send-button").click()
    job_id = wait_done(driver)
    assert f"instance map {INSTANCES.name}" in text(driver, "label-note")
    assert "instance edges from the uploaded instance map" in text(driver, "upload-note")
    doc = httpx.get(f"{shipped_stack.receiver_url}/result/{job_id}", timeout=10).json()
    assert doc["budget"]["has_edges"] and doc["budget"]["maps"] == len(doc["budget"]["present_classes"]) + 1
    no_broken_images(driver)
    # an instance map without its label map: the sender's reason, shown
    open_viewer(driver, shipped_stack)
    fill_form(driver, SCENE, instance=INSTANCES)
    driver.find_element(By.ID, "send-button").click()
    wait_for(lambda: error_shown(driver), 30, "the error")
    assert text(driver, "error").startswith("422 from the sender: instance:")


def test_colour_side_channel_control_posts_its_settings(driver, shipped_stack):
    """The viewer's appearance control: off by default (the paper's setting: the page posts
    ``appearance=off`` and nothing else of it), and when on it posts the mode, the bits and
    the repeat (0: the sender chooses it at the PSNR), which the job and the budget table show."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_viewer(driver, shipped_stack)
    assert Select(driver.find_element(By.ID, "appearance")).first_selected_option.get_attribute("value") == "off"
    assert [o.get_attribute("value") for o in Select(driver.find_element(By.ID, "appearance")).options] == [
        "off", "mean", "classes"]
    fill_form(driver, SCENE, LABELS, steps="2")
    driver.find_element(By.ID, "send-button").click()
    doc = httpx.get(f"{shipped_stack.receiver_url}/result/{wait_done(driver)}", timeout=10).json()
    assert doc["settings"]["appearance"] == "off" and doc["budget"]["appearance_bits"] == 0
    assert doc["budget"]["appearance"] is None

    open_viewer(driver, shipped_stack)
    fill_form(driver, SCENE, LABELS, psnr="1", steps="2")
    Select(driver.find_element(By.ID, "appearance")).select_by_value("mean")
    bits = driver.find_element(By.ID, "appearance-bits")
    bits.clear()
    bits.send_keys("5")
    assert driver.find_element(By.ID, "appearance-repeat").get_attribute("value") == "0"  # the sender chooses
    driver.find_element(By.ID, "send-button").click()
    job_id = wait_done(driver)
    doc = httpx.get(f"{shipped_stack.receiver_url}/result/{job_id}", timeout=10).json()
    assert (doc["settings"]["appearance"], doc["settings"]["appearance_bits"]) == ("mean", 5)
    chosen = doc["budget"]["appearance"]["repeat"]
    assert chosen > 1 and doc["settings"]["appearance_repeat"] == chosen  # 1 dB: more than one copy per bit
    assert doc["budget"]["appearance_bits"] == 15 and doc["budget"]["appearance_channel_uses"] == 15 * chosen
    shown = table_values(driver, "budget-table")
    assert shown["appearance_bits"] == "15" and shown["appearance_channel_uses"] == str(15 * chosen)
    assert f"colours mean at 5 bits x {chosen}" in text(driver, "result-settings")


def test_letterboxed_upload_is_shown_in_the_models_frame(driver, tmp_path_factory, tiny_generator):
    from selenium.webdriver.common.by import By

    with run_stack(tmp_path_factory.mktemp("letterbox"), tiny_generator, aspect="letterbox") as stack:
        square = tmp_path_factory.mktemp("square") / "square.png"
        cv2.imwrite(str(square), cv2.resize(cv2.imread(str(SCENE)), (256, 256)))
        label = square.with_name("square_labels.png")
        cv2.imwrite(str(label), cv2.resize(cv2.imread(str(LABELS), cv2.IMREAD_UNCHANGED), (256, 256),
                                           interpolation=cv2.INTER_NEAREST))
        open_viewer(driver, stack)
        fill_form(driver, square, label, sampler="ddim", steps="2")
        driver.find_element(By.ID, "send-button").click()
        job_id = wait_done(driver)
        up = httpx.get(f"{stack.receiver_url}/result/{job_id}", timeout=10).json()["upload"]
        assert up["aspect"] == "letterbox" and up["aspect_adjusted"]
        assert any("letterboxed" in w for w in list_items(driver, "warnings"))
        assert driver.execute_script("return document.getElementById('sent-frame').dataset.aspect") == "letterbox"
        wait_for(lambda: loaded_width(driver, "sent-image"), 20, "the sent image")
        H, W = tiny_generator.resolution
        frame, image = box(driver, "#sent-frame"), box(driver, "#sent-image")
        assert frame["width"] / frame["height"] == pytest.approx(W / H, rel=0.02)  # the model's frame, black
        top, left, bottom, right = up["content_box"]
        assert image["width"] / frame["width"] == pytest.approx((right - left) / W, abs=0.01)
        assert (image["left"] - frame["left"]) / frame["width"] == pytest.approx(left / W, abs=0.01)
        assert image["height"] == pytest.approx(frame["height"], abs=1)
        no_broken_images(driver)
        shot(driver, "letterbox")


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
    assert "not stored" in table_values(driver, "timings-table")["sender"]
    no_broken_images(driver)  # neither the sent image nor the label map as broken icons
    shot(driver, "history")
    # the URL itself reopens it
    driver.get(f"{shipped_stack.receiver_url}/viewer#result={listed[0]['id']}")
    assert wait_done(driver) == listed[0]["id"]


def test_compare_view_sends_one_scene_at_several_psnrs(driver, shipped_stack):
    from selenium.webdriver.common.by import By

    driver.set_window_size(LAPTOP_WIDTH, 800)
    open_viewer(driver, shipped_stack)
    inner = driver.execute_script("return window.innerWidth")
    assert inner <= LAPTOP_WIDTH
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
    no_broken_images(driver)
    # it fits the laptop window: no horizontal scrolling, the table inside its panel
    assert driver.execute_script("return document.documentElement.scrollWidth") <= inner
    assert box(driver, "#compare-table")["right"] <= box(driver, "#compare-panel")["right"]
    assert min(box(driver, "#compare-table img")["width"], 256) >= 150  # still readable
    shot(driver, "compare_1366")
    ids = driver.current_url.split("#compare=")[1].split(",")
    bits = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#compare-table tr[data-field=total_bits] td")]
    for job_id, shown, psnr in zip(ids, bits, psnrs):
        doc = httpx.get(f"{shipped_stack.receiver_url}/result/{job_id}", timeout=10).json()
        assert doc["settings"]["psnr_db"] == psnr and shown == str(doc["budget"]["total_bits"])
    assert severe_console_messages(driver) == []
    driver.set_window_size(*WINDOW)


@pytest.mark.slow  # one guided network pass at 256x512: ~25 s on one loaded core of the shared 2-core box
def test_cityscapes_pair_to_an_imported_model_at_256x512(driver, tmp_path_factory):
    """Issue 22's viewer path: the page posts a Cityscapes ``*_labelIds.png`` + ``*_instanceIds.png``
    pair to the sender, and the receiver serves the authors' layout imported by ``gesco import``
    (random weights, 256x512, edges from 8-bit instance ids as the authors' loader makes them).
    The pair is a crop off the model's 1:2 ratio, so the sender centre-crops it and warns: the
    page must show the API's warnings."""
    from selenium.webdriver.common.by import By

    from gesco.diffusion.pipeline import SemanticGenerator

    tmp = tmp_path_factory.mktemp("imported_viewer")
    generator = SemanticGenerator.load(import_random_authors_model(tmp), device="cpu")
    assert generator.resolution == (H, W)
    scene = {k: v[:, 64:960] for k, v in cityscapes_pair().items()}  # 512 x 896 (H x W): a user's crop
    paths = {}
    for kind, suffix, data in (("image", "leftImg8bit", png(scene["image"][..., ::-1].copy())),
                               ("label", "gtFine_labelIds", png(scene["label"])),
                               ("instance", "gtFine_instanceIds", png(scene["instance"]))):
        paths[kind] = tmp / f"aachen_000000_000019_{suffix}.png"
        paths[kind].write_bytes(data)
    with run_stack(tmp, generator, resolution=(H, W), instance_ids="8bit") as stack:
        open_viewer(driver, stack)
        config = httpx.get(stack.receiver_url + "/viewer/config.json", timeout=10).json()
        assert config["resolution"] == [H, W] and config["class_space"] == "cityscapes"
        fill_form(driver, paths["image"], paths["label"], instance=paths["instance"], sampler="ddim", steps="1")
        driver.find_element(By.ID, "send-button").click()
        job_id = wait_done(driver, timeout=600)
        for img in ("generated-image", "received-image", "denoised-image"):
            assert wait_for(lambda: loaded_width(driver, img), 30, img) == W
        assert driver.execute_script("return document.getElementById('generated-image').naturalHeight") == H
        # the uploaded label map, colour-coded by the receiver in the model's class space, at the upload's size
        assert wait_for(lambda: loaded_width(driver, "label-image"), 30, "the label map") == 896
        assert f"instance map {paths['instance'].name}" in text(driver, "label-note")
        note = text(driver, "upload-note")
        assert "upload 512x896 (H x W)" in note and "instance edges from the uploaded instance map" in note
        no_broken_images(driver)

        doc = httpx.get(f"{stack.receiver_url}/result/{job_id}", timeout=10).json()
        assert doc["settings"]["sampler"] == "ddim" and doc["settings"]["steps"] == 1
        assert doc["upload"]["aspect"] == "crop" and doc["upload"]["source_size"] == [512, 896]
        assert doc["upload"]["edges"] == "uploaded"
        # the API's warnings, all of them, on the page
        assert doc["warnings"] and any("centre-cropped" in w for w in doc["warnings"])
        assert list_items(driver, "warnings") == doc["warnings"]
        # the edges the authors' way: the bits sent are those of the 8-bit-id frame, not of the full ids
        budget = doc["budget"]
        assert budget["has_edges"] and budget["maps"] == len(budget["present_classes"]) + 1
        image = decode_image(paths["image"].read_bytes())
        label, instance = (decode_label_map(paths[k].read_bytes(), k) for k in ("label", "instance"))
        bits = {mode: frame_bits(encode_image_frame(image, label, instance, space=get_class_space("cityscapes"),
                                                    resolution=(H, W), frame_id=job_id, instance_ids=mode)[0])[0]
                for mode in ("8bit", "full")}
        assert bits["8bit"] != bits["full"]
        assert budget["payload_bits"] == bits["8bit"]
        shot(driver, "imported_256x512")
        assert severe_console_messages(driver) == []


@pytest.mark.parametrize("page", ["/redoc", "/docs"])
def test_api_docs_load_nothing_from_elsewhere(driver, shipped_stack, page):
    """ReDoc and Swagger UI as a browser renders them: every request and every image is local."""
    for base in (shipped_stack.sender_url, shipped_stack.receiver_url):
        driver.get(base + page)
        # rendered: ReDoc's sidebar footer (its logo lives there) or Swagger UI's operations
        ready = "a[href*='redocly']" if page == "/redoc" else ".opblock"
        wait_for(lambda: driver.execute_script(f"return document.querySelector(\"{ready}\") !== null"), 30, page)
        requested = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".concat([...document.images].map(i => i.currentSrc || i.src))")
        elsewhere = [u for u in requested if not (u.startswith(base + "/") or u.startswith("data:"))]
        assert requested and elsewhere == [], elsewhere
        assert severe_console_messages(driver) == []
