import json

import pytest

from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.unet import UNetConfig
from gesco.segment.model import SegmenterConfig
from gesco.segment.train import SegmenterTrainConfig
from gesco.semantics.noisy import NoisyMapsConfig
from gesco.train.diffusion import DiffusionTrainConfig
from gesco.train.distill import DistillConfig

ALL = [DiffusionConfig, UNetConfig, NoisyMapsConfig, SegmenterConfig, DiffusionTrainConfig, DistillConfig,
       SegmenterTrainConfig]


@pytest.mark.parametrize("cls", ALL)
def test_defaults_round_trip_through_json(cls):
    config = cls()
    d = json.loads(json.dumps(config.to_dict()))  # JSON-ready: tuples became lists
    assert cls.from_dict(d) == config


def test_nested_configs_are_built_and_unknown_fields_named():
    d = DiffusionTrainConfig().to_dict()
    d["unet"]["base_channels"] = 16
    d["noisy"]["psnrs_db"] = [1, 10]
    d["noisy"]["weights"] = [1, 1]
    c = DiffusionTrainConfig.from_dict(d)
    assert isinstance(c.unet, UNetConfig) and c.unet.base_channels == 16
    assert isinstance(c.noisy, NoisyMapsConfig) and c.noisy.psnrs_db == (1.0, 10.0)
    with pytest.raises(ValueError, match=r"unknown training config fields \['nonsense'\]"):
        DiffusionTrainConfig.from_dict({"nonsense": 1})
    with pytest.raises(ValueError, match=r"unknown UNetConfig fields \['depth'\]"):
        DiffusionTrainConfig.from_dict({"unet": {"depth": 3}})


def test_optional_nested_config_and_tuples():
    assert DistillConfig.from_dict({"noisy": None}).noisy is None
    assert isinstance(DistillConfig.from_dict({"noisy": {}}).noisy, NoisyMapsConfig)
    seg = SegmenterConfig.from_dict({"widths": [8, 16]})
    assert seg.widths == (8, 16)


def test_from_dict_runs_the_cross_field_check():
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        SegmenterTrainConfig.from_dict({"batch_size": 1})
