import pytest

from gesco.diffusion.unet import UNetConfig


@pytest.fixture
def tiny_unet_config() -> UNetConfig:
    """A few-thousand-parameter U-Net for fast tests (explicit test configuration)."""
    return UNetConfig(
        label_channels=36,
        base_channels=8,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_ds=(2,),
        head_channels=8,
        spade_hidden=8,
        num_groups=4,
    )
