"""Importing the authors' SDM / GESCO checkpoints (gesco.diffusion.authors_import, ``gesco import``).

The fixtures under tests/fixtures/authors/ were made by running the authors' own
``UNetModel`` outside this repository (docs/pretrained.md, "How the fixtures were made"):
a small random-weight SDM state dict with its outputs on fixed inputs, GESCO's extra
``spade_norm`` tensors and 2-channel label MLPs, and the key/shape census of the
full published config.
"""

import json
from pathlib import Path

import pytest
import torch

from gesco.cli import main as cli_main
from gesco.diffusion.authors_import import (
    DATASETS,
    AuthorsFlags,
    ClassCountError,
    MissingKeysError,
    NotAStateDictError,
    ResolutionMismatchError,
    ShapeMismatchError,
    UnmappableKeysError,
    UnreadableCheckpointError,
    import_checkpoint,
    import_state_dict,
    key_map,
    read_state_dict,
    source_shapes,
    to_authors_state_dict,
    unet_config,
)
from gesco.diffusion.checkpoint import load_checkpoint
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.errors import CheckpointError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "authors"
#: the authors' flags of the small fixture
SMALL = AuthorsFlags(image_size=64, num_channels=32, num_res_blocks=1, channel_mult=(1, 1),
                     attention_resolutions=(32,), num_head_channels=16)


@pytest.fixture(scope="module")
def sdm_small() -> dict[str, torch.Tensor]:
    return read_state_dict(FIX / "sdm_small_cityscapes.pt")


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return torch.load(FIX / "sdm_small_io.pt", weights_only=True)


def run(model: SpadeUNet, io: dict, y: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad():
        return model(io["x"], io["t"], (io["y"] if y is None else y).float())


def test_small_sdm_import_reproduces_the_authors_outputs(sdm_small, io):
    model, report = import_state_dict(sdm_small, SMALL, "cityscapes")
    assert report.variant == "sdm" and report.label_input == "onehot" and report.mapped_keys == 198
    err = (run(model, io) - io["out"]).abs().max().item()
    assert err <= 1e-5, err
    assert io["out"][1].abs().mean() > 0.1  # the null-label half is not trivially zero either


def test_gesco_variant_drops_spade_norm_and_gives_the_same_outputs(sdm_small, io):
    extra = torch.load(FIX / "gesco_small_spade_norm_extra.pt", weights_only=True)
    assert extra and all(".spade_norm." in k for k in extra)
    census = json.loads((FIX / "census.json").read_text())
    assert len(sdm_small) + len(extra) == census["small"]["gesco_onehot_keys"]
    model, report = import_state_dict({**sdm_small, **extra}, SMALL, "cityscapes")
    assert report.variant == "gesco" and report.dropped_keys == len(extra)
    assert (run(model, io) - io["out"]).abs().max().item() <= 1e-5


def test_gesco_two_channel_variant_reads_label_index_and_edges(sdm_small, io):
    extra = torch.load(FIX / "gesco_small_2ch_extra.pt", weights_only=True)
    out_index = torch.load(FIX / "gesco_small_2ch_io.pt", weights_only=True)["out_index"]
    model, report = import_state_dict({**sdm_small, **extra}, SMALL, "cityscapes")
    assert report.label_input == "index_edge"
    # gesco feeds its one-hot conditioning; the model turns it into the authors' (label id, edge) input
    assert (run(model, io) - out_index).abs().max().item() <= 1e-5


def test_prefixes_are_stripped(tmp_path, sdm_small, io):
    for prefix in ("module.", "model."):
        path = tmp_path / "p.pt"
        torch.save({prefix + k: v for k, v in sdm_small.items()}, path)
        model, _ = import_state_dict(read_state_dict(path), SMALL, "cityscapes")
        assert (run(model, io) - io["out"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("census_key, keys, params", [
    ("sdm_cityscapes", 766, 653_984_518),
    ("gesco_cityscapes_onehot", 868, 674_707_206),
    ("gesco_cityscapes_2ch", 868, 672_748_806),
])
def test_full_config_census_matches_the_key_map(census_key, keys, params):
    census = json.loads((FIX / "census.json").read_text())[census_key]
    assert census["keys"] == keys and census["parameters"] == params
    shapes = {k: tuple(v) for k, v in census["shapes"].items()}
    kept = {k: v for k, v in shapes.items() if ".spade_norm." not in k}
    label_input = "index_edge" if census_key.endswith("2ch") else "onehot"
    cfg = unet_config(AuthorsFlags(), DATASETS["cityscapes"], label_input)
    assert source_shapes(cfg) == kept  # every key mapped, every shape as the authors' network has it
    with torch.device("meta"):
        gesco_params = sum(p.numel() for p in SpadeUNet(cfg).parameters())
    dropped = sum(torch.Size(v).numel() for k, v in shapes.items() if ".spade_norm." in k)
    assert gesco_params + dropped == params
    assert len(key_map(cfg)) == 666


def test_full_size_import_on_meta_tensors_maps_every_key():
    """The published config end to end through the checks, without 2.6 GB of memory."""
    census = json.loads((FIX / "census.json").read_text())["gesco_cityscapes_onehot"]
    sd = {k: torch.empty(v, device="meta") for k, v in census["shapes"].items()}
    model, report = import_state_dict(sd, AuthorsFlags(), "cityscapes")
    assert report.variant == "gesco" and report.dropped_keys == 102 and report.mapped_keys == 766
    assert report.parameters == 653_984_518 and model.config == UNetConfig.authors()


def test_round_trip_through_the_authors_keys():
    torch.manual_seed(3)
    cfg = unet_config(SMALL, DATASETS["cityscapes"])
    model = SpadeUNet(cfg).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    back, _ = import_state_dict(to_authors_state_dict(model), SMALL, "cityscapes")
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert torch.equal(a, b), k


# ---------------------------------------------------------------------- refusals, each named

def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "trunc.pt"
    path.write_bytes((FIX / "sdm_small_cityscapes.pt").read_bytes()[:100_000])
    with pytest.raises(UnreadableCheckpointError, match="not a readable torch.save file"):
        read_state_dict(path)


def test_pickle_of_objects_is_refused_without_running_it(tmp_path):
    path = tmp_path / "obj.pt"
    torch.save({"model": torch.nn.Linear(2, 2), "step": 190000}, path)
    with pytest.raises(NotAStateDictError, match="weights-only unpickler"):
        read_state_dict(path)
    path2 = tmp_path / "state.pt"
    torch.save({"weight": torch.zeros(2), "step": 190000}, path2)
    with pytest.raises(NotAStateDictError, match="step"):
        read_state_dict(path2)


def test_wrong_class_count_is_refused(sdm_small):
    with pytest.raises(ClassCountError, match="read 36 channels; ade20k needs 151"):
        import_state_dict(sdm_small, SMALL, "ade20k")


def test_missing_key_is_refused_by_name(sdm_small):
    sd = dict(sdm_small)
    del sd["output_blocks.1.1.qkv.weight"]
    with pytest.raises(MissingKeysError, match=r"output_blocks\.1\.1\.qkv\.weight"):
        import_state_dict(sd, SMALL, "cityscapes")


def test_unknown_key_is_refused_by_name(sdm_small):
    with pytest.raises(UnmappableKeysError, match="label_emb.weight"):
        import_state_dict({**sdm_small, "label_emb.weight": torch.zeros(3)}, SMALL, "cityscapes")


def test_wrong_shape_is_refused_by_name(sdm_small):
    sd = dict(sdm_small)
    sd["out.2.weight"] = torch.zeros(3, 32, 3, 3)  # learn_sigma False output
    with pytest.raises(ShapeMismatchError, match=r"out\.2\.weight"):
        import_state_dict(sd, SMALL, "cityscapes")


def test_a_64x128_model_offered_for_256x512_is_refused():
    """An authors' network at --image_size 64 (4 levels) imported with the 256 flags (6 levels)."""
    small64 = AuthorsFlags(image_size=64, num_channels=32, num_res_blocks=2, attention_resolutions=(16, 8),
                           num_head_channels=32)
    with torch.device("meta"):
        model = SpadeUNet(unet_config(small64, DATASETS["cityscapes"]))
    sd = {k: torch.zeros(v.shape) for k, v in to_authors_state_dict(model).items()}
    with pytest.raises(ResolutionMismatchError, match="image_size 256"):
        import_state_dict(sd, AuthorsFlags(), "cityscapes")


def test_gesco_own_64x128_checkpoint_is_refused_by_name():
    root = Path(__file__).resolve().parents[2]
    sd = read_state_dict(root / "checkpoints" / "diffusion-synthetic-64x128.safetensors")  # torch.load reads it
    with pytest.raises(MissingKeysError, match="already a gesco checkpoint"):
        import_state_dict(sd, AuthorsFlags(), "cityscapes")


# ---------------------------------------------------------------------- the written checkpoint

def test_import_writes_a_checkpoint_gesco_loads(tmp_path, io):
    src = FIX / "sdm_small_cityscapes.pt"
    path, card, _ = import_checkpoint(src, tmp_path / "sdm-small", "cityscapes", SMALL)
    model, card2 = load_checkpoint(tmp_path / "sdm-small")
    assert card2.class_space == "cityscapes" and card2.resolution == (64, 128)
    imp = card2.training["imported"]
    assert imp["source"] == "sdm_small_cityscapes.pt" and len(imp["sha256"]) == 64
    assert imp["flags"]["channel_mult"] == [1, 1] and card2.conditioning["edge_map"] is True
    assert "clip to 255" in card2.conditioning["edges"] and card2.conditioning["guidance_scale"] == 2.0
    assert card2.conditioning["instance_ids"] == "8bit"
    assert card2.conditioning["recommended_sampling"] == {"sampler": "dpmpp-2m-sde", "steps": 20, "guidance_scale": 2.0}
    assert (run(model, io) - io["out"]).abs().max().item() <= 1e-5


def test_cli_import_and_its_named_error(tmp_path, capsys):
    rc = cli_main(["import", str(FIX / "sdm_small_cityscapes.pt"), "--out", str(tmp_path / "m"), "--image-size", "64",
                   "--num-channels", "32", "--num-res-blocks", "1", "--channel-mult", "1,1",
                   "--attention-resolutions", "32", "--num-head-channels", "16"])
    assert rc == 0 and (tmp_path / "m.safetensors").is_file()
    assert "gesco up --checkpoint" in capsys.readouterr().out
    rc = cli_main(["import", str(FIX / "sdm_small_cityscapes.pt"), "--out", str(tmp_path / "n")])
    err = capsys.readouterr().err
    assert rc == 2 and "decoder blocks" in err and not (tmp_path / "n.safetensors").exists()


def test_errors_are_checkpoint_errors():
    assert issubclass(ClassCountError, CheckpointError)
    assert UNetConfig.authors().spade_per_layer


@pytest.mark.parametrize("dataset, channels, label_input, space, resolution", [
    ("ade20k", 151, "onehot_no_edge", "ade20k", (64, 64)),
    ("coco-stuff", 184, "onehot", "coco-stuff", (64, 64)),
])
def test_sdm_ade20k_and_coco_stuff_go_into_their_class_spaces(tmp_path, dataset, channels, label_input, space,
                                                              resolution):
    """SDM's other published models: ADE20K (151 labels, --no_instance True) and COCO-Stuff (183 + edges)."""
    torch.manual_seed(1)
    cfg = unet_config(SMALL, DATASETS[dataset], label_input)
    model = SpadeUNet(cfg).eval()
    sd = to_authors_state_dict(model)
    assert sd["middle_block.0.in_norm.mlp_shared.0.weight"].shape[1] == channels
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "sdm.pt")
    _, card, report = import_checkpoint(tmp_path / "sdm.pt", tmp_path / "out", dataset, SMALL)
    assert report.label_input == label_input and card.class_space == space and card.resolution == resolution
    assert card.conditioning["edge_map"] is (dataset != "ade20k")
    loaded, _ = load_checkpoint(tmp_path / "out")
    assert loaded.config.label_channels == channels + (dataset == "ade20k")  # gesco's conditioning: C + 1 maps
    src = sd["middle_block.0.in_norm.mlp_shared.0.weight"]
    got = loaded.state_dict()["mid1.norm1.label.conv.weight"]
    if dataset == "ade20k":  # SDM's loader: channel = raw id - 1, raw 0 ("other") -> channel 150
        assert torch.equal(got[:, 0], src[:, 150]) and torch.equal(got[:, 1:], src[:, :150])
    else:
        assert torch.equal(got, src)
    with pytest.raises(ClassCountError, match="cityscapes needs 36"):
        import_state_dict(sd, SMALL, "cityscapes")
