"""A plugged-in segmenter: a tiny network exported to ONNX (and TorchScript), named by
GESCO_SENDER_SEGMENTER, loaded by the sender and used (with its confidence) on uploads."""

from __future__ import annotations

import json
import sys
import warnings

import httpx
import numpy as np
import pytest
import torch

from gesco.errors import CheckpointError
from gesco.segment import load_segmenter
from gesco.segment.domain import domain_report

SKY, ROAD = 23, 7

# torch 2.13 deprecates TorchScript in favour of torch.export; user files of both kinds are supported.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


class BlueIsSky(torch.nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, 35, H, W) logits: sky where blue dominates, road elsewhere.

    A 1x1 convolution with fixed weights: logit_sky = 8 (b - r) + 8 (b - g) - 1, logit_road = 0.5,
    every other class -4.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 35, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.fill_(-4.0)
            self.conv.weight[SKY, :, 0, 0] = torch.tensor([-8.0, -8.0, 16.0])
            self.conv.bias[SKY] = -1.0
            self.conv.bias[ROAD] = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _image() -> np.ndarray:
    image = np.zeros((64, 128, 3), np.uint8)
    image[:24] = (40, 90, 230)  # a blue band on top
    image[24:] = (120, 110, 100)
    return image


def export_onnx(path, size=(32, 64)) -> None:
    model = BlueIsSky().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter (no onnxscript needed)
        torch.onnx.export(model, (torch.zeros(1, 3, *size),), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    path.with_name(path.name + ".json").write_text(json.dumps(
        {"class_space": "cityscapes", "input_size": list(size), "input_range": "[-1,1]", "output": "logits"}))


def test_onnx_export_loads_and_matches_torch(tmp_path):
    path = tmp_path / "blue.onnx"
    export_onnx(path)
    seg = load_segmenter(path)
    assert seg.resolution == (32, 64) and "blue.onnx" in seg.source
    labels, conf = seg.predict_numpy_scored(_image())
    assert labels.shape == (64, 128) and conf.shape == (64, 128)
    assert set(np.unique(labels[:22])) == {SKY} and set(np.unique(labels[26:])) == {ROAD}
    # the same numbers as the torch module it came from
    x = torch.from_numpy(_image()[::2, ::2].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = BlueIsSky()(x).softmax(1).max(1).values[0].numpy()
    assert np.allclose(conf[::2, ::2], expected, atol=1e-4)
    report = domain_report(conf, 0.85, segmenter_source=seg.source)
    assert report.scored and "blue.onnx" in (report.message or seg.source)


def test_torchscript_export_gives_the_same_labels(tmp_path):
    path = tmp_path / "blue.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(BlueIsSky().eval(), torch.zeros(1, 3, 32, 64)).save(str(path))
    (tmp_path / "blue.json").write_text(json.dumps({"class_space": "cityscapes", "input_size": [32, 64]}))
    onnx_path = tmp_path / "blue.onnx"
    export_onnx(onnx_path)
    a, b = load_segmenter(path).predict_numpy(_image()), load_segmenter(onnx_path).predict_numpy(_image())
    assert np.array_equal(a, b)


def test_onnx_without_onnxruntime_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(CheckpointError, match="install onnxruntime"):
        load_segmenter(tmp_path / "model.onnx")


def test_sender_takes_the_segmenter_from_gesco_sender_segmenter(tmp_path, monkeypatch):
    from sender.settings import SenderSettings

    path = tmp_path / "blue.onnx"
    monkeypatch.setenv("GESCO_SENDER_SEGMENTER", str(path))
    assert SenderSettings().segmenter == str(path)


def test_the_sender_segments_uploads_with_a_plugged_onnx_model(stack, tmp_path, monkeypatch):
    """End to end through the services: the ONNX model's labels are what the channel carries."""
    from svc_helpers import TINY_RESOLUTION

    from gesco.link import encode_png

    path = tmp_path / "blue.onnx"
    export_onnx(path, size=TINY_RESOLUTION)
    with stack.sender(load_segmenter=True, segmenter=str(path)) as url:
        assert httpx.get(url + "/healthz").json()["segmenter"] == "ready"
        r = httpx.post(url + "/transmit", files={"image": ("x.png", encode_png(_image()))}, data={"steps": "2"},
                       timeout=60)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["segmented"] and body["budget"]["present_classes"] == [ROAD, SKY]
    assert body["upload"]["domain_scored"]


class FakeTrainIdNet(torch.nn.Module):
    """Stands in for a Cityscapes model: 19 train-id logits at 1/4 resolution, as SegFormer gives.

    Train id 10 (sky) where blue dominates, 0 (road) elsewhere.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("road", torch.eye(19)[0].view(1, 19, 1, 1))
        self.register_buffer("sky", torch.eye(19)[10].view(1, 19, 1, 1))

    def forward(self, x: torch.Tensor):
        small = torch.nn.functional.avg_pool2d(x, 4)
        blue = (small[:, 2] - small[:, 0]).unsqueeze(1)  # (B, 1, h, w)
        return (self.road * 1.0 + self.sky * 6.0 * blue,)


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_a_train_id_model_exported_with_gesco_segment_export(tmp_path, suffix):
    from gesco.segment.export import TrainIdLogits, export_segmenter

    path = tmp_path / f"cityscapes{suffix}"
    sidecar = export_segmenter(TrainIdLogits(FakeTrainIdNet(), mean=None, std=None), path, (32, 64))
    assert json.loads(sidecar.read_text())["input_range"] == "[0,1]"
    seg = load_segmenter(path)
    labels, conf = seg.predict_numpy_scored(_image())
    assert set(np.unique(labels[:20])) == {SKY} and set(np.unique(labels[28:])) == {ROAD}
    # road pixels (RGB 120, 110, 100): road logit 1, sky 6 (b - r) = -0.47, 17 train ids at 0; the 16
    # other label ids get ~0 probability (were they open, the confidence would be 0.075, not 0.134)
    sky = np.exp(6 * (100 - 120) / 255)
    assert conf[40, 64] == pytest.approx(np.e / (np.e + 17 + sky), abs=1e-4)
