import pytest
import torch

from gesco.diffusion.unet import SPADE, Attention, ResBlock, SpadeUNet, UNetConfig


def test_forward_shapes_and_learned_sigma(tiny_unet_config):
    m = SpadeUNet(tiny_unet_config)
    x = torch.randn(3, 3, 16, 32)
    y = torch.zeros(3, 36, 16, 32)
    out = m(x, torch.tensor([0, 500, 999]), y)
    assert out.shape == (3, 6, 16, 32)
    cfg = UNetConfig(**{**tiny_unet_config.to_dict(), "learn_sigma": False})
    assert SpadeUNet(cfg)(x, torch.zeros(3), y).shape == (3, 3, 16, 32)


def test_encoder_never_sees_semantics_decoder_does(tiny_unet_config):
    """Encoder blocks use plain GroupNorm; middle and decoder blocks use SPADE (paper Fig. 6)."""
    m = SpadeUNet(tiny_unet_config)
    enc = [b for layer in m.down for b in layer if isinstance(b, ResBlock)]
    dec = [b for layer in m.up for b in layer if isinstance(b, ResBlock)] + [m.mid1, m.mid2]
    assert enc and all(not b.spade for b in enc)
    assert dec and all(b.spade and isinstance(b.norm1, SPADE) and isinstance(b.norm2, SPADE) for b in dec)
    for b in dec:
        assert not b.norm2.norm.affine  # GroupNorm without affine parameters inside SPADE


def test_output_depends_on_the_map(tiny_unet_config):
    torch.manual_seed(0)
    m = SpadeUNet(tiny_unet_config)
    # zero-initialised output layers would hide the dependence: perturb every parameter
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(1, 3, 16, 32)
    t = torch.tensor([10])
    y1 = torch.zeros(1, 36, 16, 32)
    y2 = y1.clone()
    y2[:, 7, :8] = 1
    assert not torch.allclose(m(x, t, y1), m(x, t, y2))


def test_paper_cityscapes_configuration_builds_and_runs():
    """Channels 256,256,512,512,1024,1024; attention at 32,16,8 (of 256 px); 64 channels per head."""
    cfg = UNetConfig.paper_cityscapes()
    with torch.device("meta"):  # build without the (slow) random init of 585M weights
        m = SpadeUNet(cfg)
    n_params = sum(p.numel() for p in m.parameters())
    # 585.2M with this file's block layout (2 encoder / 3 decoder blocks per level);
    # pinned so that an accidental architecture change is noticed.
    assert n_params == 585_200_646
    level_channels = [256 * k for k in cfg.channel_mult]
    assert level_channels == [256, 256, 512, 512, 1024, 1024]
    attn = [mod for mod in m.modules() if isinstance(mod, Attention)]
    assert {a.heads for a in attn} == {512 // 64, 1024 // 64}
    # attention only at downsampling factors 8, 16, 32 (feature maps 32x64, 16x32, 8x16 at 256x512)
    m = m.to_empty(device="cpu")
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.01, 0.01)
    x = torch.randn(1, 3, 32, 32)  # the smallest size the 5 downsamplings allow
    with torch.inference_mode():
        out = m(x, torch.tensor([3]), torch.zeros(1, 36, 32, 32))
    assert out.shape == (1, 6, 32, 32)
    assert torch.isfinite(out).all()


def test_size_must_be_divisible(tiny_unet_config):
    m = SpadeUNet(tiny_unet_config)
    try:
        m(torch.randn(1, 3, 15, 32), torch.zeros(1), torch.zeros(1, 36, 15, 32))
    except ValueError as e:
        assert "divisible" in str(e)
    else:
        raise AssertionError("odd size accepted")


def test_config_round_trip_and_unknown_field(tiny_unet_config):
    d = tiny_unet_config.to_dict()
    assert UNetConfig.from_dict(d) == tiny_unet_config
    try:
        UNetConfig.from_dict({**d, "nonsense": 1})
    except ValueError as e:
        assert "nonsense" in str(e)
    else:
        raise AssertionError("unknown field accepted")


@pytest.mark.parametrize("num_groups, sees_mean", [(32, False), (8, True)])
def test_output_head_sees_the_feature_mean_only_with_shared_groups(num_groups, sees_mean):
    """The colour-cast cause (docs/training.md): GroupNorm with one channel per group is an
    InstanceNorm, so the output's spatial mean cannot depend on the features' means."""
    from gesco.diffusion.unet import SpadeUNet, UNetConfig

    torch.manual_seed(0)
    m = SpadeUNet(UNetConfig(base_channels=32, num_groups=num_groups)).eval()
    torch.nn.init.normal_(m.out[2].weight, std=0.05)  # the zero-initialised output conv
    h = torch.randn(2, 32, 16, 32)
    with torch.no_grad():
        change = (m.out(h + torch.randn(1, 32, 1, 1)) - m.out(h)).mean((2, 3)).abs().max()
    assert (float(change) > 1e-2) == sees_mean


def test_mean_skip_starts_at_zero_and_passes_the_input_mean(tiny_unet_config):
    from dataclasses import replace

    from gesco.diffusion.unet import MEAN_PATH_PREFIXES, SpadeUNet

    torch.manual_seed(0)
    plain = SpadeUNet(tiny_unet_config).eval()
    skip = SpadeUNet(replace(tiny_unet_config, mean_skip=True)).eval()
    missing, unexpected = skip.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(MEAN_PATH_PREFIXES) for k in missing) and missing
    torch.nn.init.normal_(plain.out[2].weight, std=0.05)
    skip.out[2].weight.data.copy_(plain.out[2].weight)
    c, h, w = tiny_unet_config.image_channels, 16, 32
    x = torch.randn(2, c, h, w)
    t = torch.tensor([999, 10])
    y = torch.zeros(2, tiny_unet_config.label_channels, h, w)
    with torch.no_grad():
        torch.testing.assert_close(skip(x, t, y), plain(x, t, y))  # zero-initialised: the same model
        torch.nn.init.zeros_(skip.mean_skip.weight)
        skip.mean_skip.bias.copy_(torch.eye(c).flatten())  # G(t) = I
        shift = torch.tensor([0.3, -0.2, 0.1])[None, :, None, None]
        d_eps = skip(x + shift, t, y)[:, :c] - skip(x, t, y)[:, :c]
        d_plain = plain(x + shift, t, y)[:, :c] - plain(x, t, y)[:, :c]
    # the skip adds exactly G(t) * shift to every pixel of eps; the variance output is untouched
    torch.testing.assert_close(d_eps - d_plain, shift.expand(2, c, h, w), atol=1e-5, rtol=0)

    # Q(t) mean(y): a label-dependent constant added to eps, zero for the null label
    with torch.no_grad():
        torch.nn.init.zeros_(skip.mean_skip.bias)
        skip.mean_prior.bias.fill_(0.5)
        y1 = torch.zeros_like(y)
        y1[:, 0, : h // 2] = 1.0  # class 0 covers half the image
        d_prior = skip(x, t, y1)[:, :c] - plain(x, t, y1)[:, :c]
    torch.testing.assert_close(d_prior, torch.full((2, c, h, w), 0.25), atol=1e-5, rtol=0)
