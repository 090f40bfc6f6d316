"""Channel models: power normalisation, AWGN per Eq. (1), the authors'-code preset,
Rayleigh block fading (with and without CSI) and the 3GPP TDL model over OFDM.

Use :func:`get_channel` to pick a model by name and :meth:`ChannelModel.transmit` to
send a batch of real symbols through it. Training, evaluation and the channel service
all call this module; there is no second copy of the noise model.
"""

from gesco.channel.baseline import transmit_image
from gesco.channel.fading import RayleighBlockChannel, RayleighNoCSIChannel  # registers the fading models
from gesco.channel.models import (
    CHANNELS,
    PAPER_PSNRS_DB,
    AuthorsCodeChannel,
    AWGNChannel,
    ChannelModel,
    ChannelResult,
    channel_catalogue,
    get_channel,
    noise_variance_for_psnr,
    params_to_text,
    parse_channel_params,
    register_channel,
    validate_channel_params,
)
from gesco.channel.ofdm import TDLOFDMChannel  # registers "tdl" (Sionna is imported only when it is built)

__all__ = [
    "AuthorsCodeChannel",
    "AWGNChannel",
    "CHANNELS",
    "ChannelModel",
    "ChannelResult",
    "get_channel",
    "noise_variance_for_psnr",
    "PAPER_PSNRS_DB",
    "RayleighBlockChannel",
    "RayleighNoCSIChannel",
    "TDLOFDMChannel",
    "channel_catalogue",
    "params_to_text",
    "parse_channel_params",
    "register_channel",
    "transmit_image",
    "validate_channel_params",
]
