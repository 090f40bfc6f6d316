"""SegmenterNet shapes and size, and segmenter checkpoints (round trip, mismatch, corrupt files)."""

from __future__ import annotations

import json
import time

import pytest
import torch

from gesco.errors import CheckpointError, DTypeError, ShapeError
from gesco.segment.checkpoint import SegmenterCard, load_checkpoint, read_card, save_checkpoint, update_card
from gesco.segment.model import SegmenterConfig, SegmenterNet, count_parameters

TINY = SegmenterConfig(patch=2, widths=(8, 16), stem_convs=1, context_dilations=(1, 2))


def test_logits_shape_any_size_divisible_by_stride():
    torch.manual_seed(0)
    net = SegmenterNet().eval()
    assert net.stride == 8
    for h, w in [(64, 128), (32, 64), (48, 96), (8, 8)]:  # stride 8
        out = net(torch.rand(2, 3, h, w) * 2 - 1)
        assert out.shape == (2, 35, h, w) and out.dtype == torch.float32


def test_default_network_is_small_and_fast():
    net = SegmenterNet().eval()
    n = count_parameters(net)
    assert 300_000 < n < 1_500_000, n
    x = torch.rand(8, 3, 64, 128) * 2 - 1
    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        net(x)
        per_image = (time.perf_counter() - t0) / 8
    assert per_image < 0.2  # about 5-15 ms per 64x128 image on one CPU thread; generous for loaded machines


def test_bad_inputs_raise_named_errors():
    net = SegmenterNet(TINY)
    with pytest.raises(ShapeError, match="multiples of 4"):
        net(torch.zeros(1, 3, 30, 64))
    with pytest.raises(ShapeError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(3, 32, 64))
    with pytest.raises(DTypeError):
        net(torch.zeros(1, 3, 32, 64, dtype=torch.uint8))


def test_config_round_trip_and_validation():
    cfg = SegmenterConfig(widths=(8, 16, 32), context_dilations=(1, 3))
    assert SegmenterConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown"):
        SegmenterConfig.from_dict({"width": [8, 16]})
    with pytest.raises(ValueError):
        SegmenterConfig(widths=(8,))


def _trained_like(tmp_path):
    torch.manual_seed(1)
    net = SegmenterNet(TINY)
    with torch.no_grad():  # non-default BatchNorm statistics must survive the round trip too
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    card = SegmenterCard(model=TINY, class_space="cityscapes", resolution=(32, 64), training={"steps": 3})
    save_checkpoint(tmp_path / "seg", net, card)
    return net.eval(), card


def test_checkpoint_round_trip(tmp_path):
    net, card = _trained_like(tmp_path)
    assert (tmp_path / "seg.safetensors").exists() and (tmp_path / "seg.json").exists()
    meta = json.loads((tmp_path / "seg.json").read_text())
    assert meta["format"] == "gesco-segmenter/1" and meta["resolution"] == [32, 64]
    for p in (tmp_path / "seg", tmp_path / "seg.safetensors", tmp_path / "seg.json"):
        loaded, card2 = load_checkpoint(p, expect_model=TINY, expect_class_space="cityscapes",
                                        expect_resolution=(32, 64))
        x = torch.rand(2, 3, 32, 64) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
        assert card2.training == {"steps": 3} and not loaded.training
    update_card(tmp_path / "seg", evaluation={"miou": 0.5})
    assert read_card(tmp_path / "seg").evaluation == {"miou": 0.5}


def test_checkpoint_mismatch_names_the_field(tmp_path):
    _trained_like(tmp_path)
    with pytest.raises(CheckpointError, match=r"model\.widths"):
        load_checkpoint(tmp_path / "seg", expect_model=SegmenterConfig(patch=2, widths=(8, 24), stem_convs=1,
                                                                       context_dilations=(1, 2)))
    with pytest.raises(CheckpointError, match="class_space"):
        load_checkpoint(tmp_path / "seg", expect_class_space="ade20k")
    with pytest.raises(CheckpointError, match="resolution"):
        load_checkpoint(tmp_path / "seg", expect_resolution=(64, 128))


def test_missing_and_corrupt_files_name_file_and_command(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothere\.json.*gesco train segmenter"):
        load_checkpoint(tmp_path / "nothere")
    _trained_like(tmp_path)
    w = tmp_path / "seg.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"seg\.safetensors are corrupt.*gesco train segmenter"):
        load_checkpoint(tmp_path / "seg")
    w.unlink()
    with pytest.raises(CheckpointError, match=r"seg\.safetensors not found"):
        load_checkpoint(tmp_path / "seg")
    (tmp_path / "seg.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"seg\.json is not valid JSON"):
        load_checkpoint(tmp_path / "seg")
    (tmp_path / "seg.json").write_text(json.dumps({"format": "gesco-diffusion/1"}))
    with pytest.raises(CheckpointError, match="gesco-segmenter/1"):
        load_checkpoint(tmp_path / "seg")


def test_weights_that_do_not_fit_the_config(tmp_path):
    _trained_like(tmp_path)
    meta = json.loads((tmp_path / "seg.json").read_text())
    meta["model"]["widths"] = [8, 24]
    (tmp_path / "seg.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(tmp_path / "seg")
