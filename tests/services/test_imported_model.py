"""The paper's setting end to end: the authors' layout, imported, serving 256x512 Cityscapes uploads.

The served model is the published layout at a small width with random weights, brought in
by ``gesco import`` with the flags of a 256-pixel model (imported_helpers.py). (The key map itself is
checked against the authors' own code in tests/diffusion/test_authors_import.py; the small
fixture made by their code has attention at downsampling 2, whose 32,768 positions at
256x512 need ~17 GB for the attention matrices of one guided step, so it is imported here
only to check its card.) Images are noise-like (random weights); what is checked is the
path: Cityscapes ``*_labelIds.png`` + ``*_instanceIds.png`` -> ``/transmit`` (and
``gesco send``) -> channel -> the receiver serving the imported checkpoint, and the edges
made the authors' way (8-bit ids).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import run_stack, wait_result
from imported_helpers import H, W, cityscapes_pair, import_random_authors_model, png

from gesco.diffusion.authors_import import AuthorsFlags, import_checkpoint
from gesco.diffusion.pipeline import SemanticGenerator
from gesco.link import encode_image_frame
from gesco.semantics.classes import get_class_space
from gesco.semantics.layout import authors_instance_ids, instance_edges
from gesco_net.cli import main as cli

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "authors"
#: the small fixture's network (model_channels 32, channel_mult 1,1, one block per level, two heads, attention
#: at downsampling 2) declared as a 256-pixel model: --attention_resolutions 128 = downsampling 2
FIXTURE_256 = AuthorsFlags(image_size=256, num_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                           attention_resolutions=(128,), num_head_channels=16)


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A random-weight authors' state dict (their keys) of SERVED_256, through ``gesco import``."""
    return import_random_authors_model(tmp_path_factory.mktemp("imported"))


def test_authors_edges_clip_instance_ids_to_8_bits():
    scene = cityscapes_pair(64, 128)
    full = instance_edges(scene["instance"])
    authors = instance_edges(authors_instance_ids(scene["instance"]))
    boundary = (slice(34, 46), slice(63, 65))  # between the two touching cars
    assert full[boundary].all() and not authors[boundary].any()
    assert authors[32:48, 31].all()  # car against road: an edge either way
    space = get_class_space("cityscapes")
    frames = {mode: encode_image_frame(scene["image"], scene["label"], scene["instance"], space=space,
                                       resolution=(64, 128), frame_id="x", instance_ids=mode)[0]
              for mode in ("full", "8bit")}
    assert frames["full"].payload != frames["8bit"].payload


def test_imported_cards_load_at_256x512(imported, tmp_path):
    import_checkpoint(FIX / "sdm_small_cityscapes.pt", tmp_path / "fixture", "cityscapes", FIXTURE_256)
    for path in (imported, tmp_path / "fixture"):
        gen = SemanticGenerator.load(path, device="cpu")
        assert gen.resolution == (H, W) and gen.card.conditioning["instance_ids"] == "8bit"
        assert gen.model.config.spade_per_layer and gen.model.config.resblock_updown


@pytest.mark.slow  # 3 network passes at 256x512, ~2 min on the loaded shared 2-core box (per-SPADE MLPs at full size)
def test_cityscapes_pair_through_the_services_to_the_imported_model(imported, tmp_path, capsys):
    gen = SemanticGenerator.load(imported, device="cpu")
    scene = cityscapes_pair()
    files = {"image": ("x_leftImg8bit.png", png(scene["image"][..., ::-1].copy())),
             "label": ("x_gtFine_labelIds.png", png(scene["label"])),
             "instance": ("x_gtFine_instanceIds.png", png(scene["instance"]))}
    with run_stack(tmp_path, gen, resolution=(H, W), instance_ids="8bit") as stack:
        r = httpx.post(stack.sender_url + "/transmit", files=files,
                       data={"psnr_db": "10", "steps": "1", "sampler": "dpmpp-2m-sde", "guidance_scale": "2",
                             "seed": "3"}, timeout=120)
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["upload"]["edges"] == "uploaded"
        doc = wait_result(accepted["result_url"], timeout=300)
        assert doc["status"] == "done", doc
        pixels = cv2.imdecode(np.frombuffer(httpx.get(doc["links"]["image"]).content, np.uint8), cv2.IMREAD_COLOR)
        assert pixels.shape == (H, W, 3)
        # gesco send with the same pair
        for fname, data in files.values():
            (tmp_path / fname).write_bytes(data)
        out = tmp_path / "result.png"
        code = cli(["send", str(tmp_path / "x_leftImg8bit.png"), "--label", str(tmp_path / "x_gtFine_labelIds.png"),
                    "--instance", str(tmp_path / "x_gtFine_instanceIds.png"), "--psnr", "5", "--steps", "1",
                    "--guidance", "1", "--sampler", "dpmpp-2m-sde", "--sender", stack.sender_url, "--out", str(out)])
        assert code == 0, capsys.readouterr()
        assert cv2.imread(str(out)).shape == (H, W, 3)


def test_unset_sampling_resolves_to_the_imported_cards_recommendation(imported, tmp_path):
    """A frame leaving sampler / steps / guidance unset gets the imported model's recommended
    sampling (dpmpp-2m-sde, 20 steps, guidance 2) at the receiver; the paper's 1000-step
    ancestral chain stays selectable explicitly."""
    from gesco.link import TransmitSettings, apply_channel
    from gesco.transmit_fields import RECEIVER_DEFAULTS
    from receiver.ingest import Ingest
    from receiver.stores import JobStore

    gen = SemanticGenerator.load(imported, device="cpu")
    recommended = gen.card.conditioning["recommended_sampling"]
    assert recommended == {"sampler": "dpmpp-2m-sde", "steps": 20, "guidance_scale": 2.0}
    scene = cityscapes_pair(H, W)
    store = JobStore(tmp_path / "store", fsync=False)
    try:
        ingest = Ingest(store, gen)
        for transmit, unset, want in (
            (TransmitSettings(seed=1), RECEIVER_DEFAULTS, recommended),
            (TransmitSettings(sampler="ancestral"), ("steps", "guidance_scale"),
             {"sampler": "ancestral", "steps": 20, "guidance_scale": 2.0}),
        ):
            frame, _ = encode_image_frame(scene["image"], scene["label"], scene["instance"],
                                          space=get_class_space("cityscapes"), resolution=(H, W), frame_id="x",
                                          transmit=transmit, unset=unset, instance_ids="8bit")
            settings = ingest.check(apply_channel(frame))
            assert {n: getattr(settings, n) for n in want} == want
    finally:
        store.close()
