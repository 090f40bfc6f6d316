"""The authors' layout options of SpadeUNet, and that gesco's own checkpoints are untouched by them."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gesco.diffusion.checkpoint import load_checkpoint
from gesco.diffusion.unet import SpadeUNet, UNetConfig

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "fixtures" / "unet_reference" / "shipped_outputs.safetensors"
SHIPPED = ["diffusion-synthetic-64x128", "diffusion-synthetic-64x128-student", "diffusion-synthetic-64x128-clean",
           "diffusion-synthetic-64x128-nofds"]


@pytest.fixture
def one_thread():
    """The reference was recorded with one intra-op thread; another count changes float summation order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoints_give_bit_identical_outputs(name, one_thread):
    """Outputs recorded with unet.py before the layout options (commit 002d400), same inputs, exact equality.

    Recorded on the project's x86-64 CPU box with one thread (``OMP_NUM_THREADS=1``).
    """
    ref = load_file(REFERENCE)[name.replace("-", "_")]
    model, card = load_checkpoint(ROOT / "checkpoints" / name)
    assert not (model.config.spade_per_layer or model.config.resblock_updown)
    assert model.config.label_input == "onehot"
    g = torch.Generator().manual_seed(0)
    h, w = card.resolution
    x = torch.randn(1, 3, h, w, generator=g)
    y = (torch.rand(1, card.unet.label_channels, h, w, generator=g) > 0.9).float()
    with torch.no_grad():
        out = model(x, torch.tensor([417]), y)
    assert torch.equal(out, ref), f"max |diff| {(out - ref).abs().max().item():.3g}"


def test_authors_preset_has_sdm_parameter_count():
    with torch.device("meta"):
        model = SpadeUNet(UNetConfig.authors())
    assert sum(p.numel() for p in model.parameters()) == 653_984_518
    assert len(model.state_dict()) == 766 - 100  # SDM's mlp_gamma + mlp_beta are one gamma_beta conv per SPADE


def small_authors(**kw) -> UNetConfig:
    return UNetConfig.authors(base_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(2,),
                              head_channels=16, **kw)


def test_resblock_updown_and_per_layer_spade_run_at_non_square_sizes():
    model = SpadeUNet(small_authors()).eval()
    assert not hasattr(model, "label_embed")
    assert model.down[1][0].updown == "down" and model.up[1][-1].updown == "up"
    x = torch.randn(2, 3, 16, 32)
    y = torch.zeros(2, 36, 16, 32)
    y[:, 7] = 1
    with torch.no_grad():
        out = model(x, torch.tensor([1, 500]), y)
    assert out.shape == (2, 6, 16, 32) and torch.isfinite(out).all()


def test_label_input_variants_read_the_right_channels():
    torch.manual_seed(0)
    no_edge = SpadeUNet(small_authors(label_input="onehot_no_edge")).eval()
    assert no_edge.mid1.norm1.label.conv.in_channels == 35
    index = SpadeUNet(small_authors(label_input="index_edge")).eval()
    assert index.mid1.norm1.label.conv.in_channels == 2
    y = torch.zeros(1, 36, 4, 4)
    y[0, 26, :, :2] = 1
    y[0, 7, :, 2:] = 1
    y[0, 35, :, 1:3] = 1
    got = index.label_input(y)
    assert got[0, 0].tolist() == [[26, 26, 7, 7]] * 4 and torch.equal(got[0, 1], y[0, 35])
    assert torch.equal(no_edge.label_input(y), y[:, :35])
    # the edge map must not reach a model trained without one
    x = torch.randn(1, 3, 16, 32)
    y1 = torch.zeros(1, 36, 16, 32)
    y1[:, 3] = 1
    y2 = y1.clone()
    y2[:, 35, 5:9] = 1
    with torch.no_grad():
        assert torch.equal(no_edge(x, torch.tensor([9]), y1), no_edge(x, torch.tensor([9]), y2))


def test_unknown_label_input_is_refused():
    with pytest.raises(ValueError, match="label_input 'rgb' is not one of"):
        UNetConfig(label_input="rgb")
