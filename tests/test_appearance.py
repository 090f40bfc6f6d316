"""The appearance side channel (gesco/appearance.py): measurement, quantiser, bits, channel, projection."""

import numpy as np
import pytest
import torch

from gesco.appearance import (
    Appearance,
    AppearanceError,
    AppearanceSettings,
    AppearanceTarget,
    appearance_denoiser,
    dequantise,
    measure_appearance,
    pack_appearance,
    project_x0,
    quantise,
    transmit_appearance_bits,
    unpack_appearance,
)
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion


def scene(h: int = 8, w: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    label = np.zeros((h, w), np.int64)
    label[:, w // 2:] = 7
    label[: h // 2, :4] = 23
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return image, label


def test_measure_mean_and_classes():
    image, label = scene()
    m = measure_appearance(image, label, [0, 7, 23], "mean")
    assert np.allclose(m.colours[0], image.reshape(-1, 3).mean(0))
    c = measure_appearance(image, label, [0, 7, 23], "classes")
    assert c.colours.shape == (3, 3)
    assert np.allclose(c.colours[1], image[label == 7].mean(0))
    with pytest.raises(AppearanceError, match="class 9 is listed as present but has no pixel"):
        measure_appearance(image, label, [0, 7, 9], "classes")


def test_quantiser_error_bound_and_round_trip_of_bits():
    v = np.linspace(0, 255, 1001)
    for b in (1, 3, 6, 8):
        err = np.abs(dequantise(quantise(v, b), b) - v)
        assert err.max() <= 128 / 2 ** b + 1e-9
    image, label = scene()
    st = AppearanceSettings("classes", 5)
    app = measure_appearance(image, label, [0, 7, 23], "classes")
    bits = pack_appearance(app, st)
    assert bits.shape == (st.payload_bits(3),) == (3 * 5 * 3,)
    assert set(np.unique(bits)) <= {0, 1}
    back = unpack_appearance(bits, st, [0, 7, 23])
    assert np.allclose(back.colours, dequantise(quantise(app.colours, 5), 5))
    # MSB first: 255 at 3 bits is 111, 0 is 000
    assert pack_appearance(Appearance("mean", np.array([[255.0, 0.0, 128.0]]), np.array([0])),
                           AppearanceSettings("mean", 3)).tolist() == [1, 1, 1, 0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("bad, match", [
    (AppearanceSettings("colour"), "appearance mode must be one of"),
    (AppearanceSettings("mean", 0), r"bits per colour component must be in \[1, 8\], got 0"),
    (AppearanceSettings("mean", 6, 17), r"repeat must be 0 \(chosen from the PSNR and channel\) or in \[1, 16\], got 17"),
    (AppearanceSettings("mean", 6, -1), r"or in \[1, 16\], got -1"),
])
def test_bad_settings_are_named(bad, match):
    with pytest.raises(AppearanceError, match=match):
        bad.validate()


def test_wrong_bit_count_is_refused():
    with pytest.raises(AppearanceError, match="has 17 bits; mode 'mean' at 6 bits per component with 2 present classes needs 18"):
        unpack_appearance(np.zeros(17, np.uint8), AppearanceSettings("mean", 6), [1, 2])


def test_channel_clean_is_exact_and_repetition_lowers_errors():
    bits = np.random.default_rng(1).integers(0, 2, 600).astype(np.uint8)
    clean, uses = transmit_appearance_bits(bits, AppearanceSettings("mean", 6, 1), channel="awgn", psnr_db=100)
    assert (clean == bits).all() and uses == 600
    errs = {}
    for r in (1, 16):
        got, uses = transmit_appearance_bits(bits, AppearanceSettings("mean", 6, r), channel="awgn", psnr_db=1,
                                             generator=torch.Generator().manual_seed(0))
        assert uses == 600 * r
        errs[r] = int((got != bits).sum())
    assert errs[1] > 60 and errs[16] < errs[1] / 5  # ~21 % uncoded at 1 dB; 16 copies: ~0.3 %


def test_projection_sets_region_and_image_means():
    torch.manual_seed(0)
    x0 = 0.2 * torch.randn(2, 3, 8, 16)
    regions = torch.zeros(2, 8, 16, dtype=torch.long)
    regions[:, :, 8:] = 7
    img0 = Appearance("classes", np.array([[10.0, 20.0, 30.0], [200.0, 100.0, 50.0]]), np.array([0, 7]))
    img1 = Appearance("mean", np.array([[150.0, 127.5, 90.0]]), np.array([0, 7]))
    target = AppearanceTarget.build([img0, img1], regions, 35)
    out = project_x0(x0, target)
    to255 = lambda t: (t + 1) * 127.5  # noqa: E731
    assert torch.allclose(to255(out[0, :, :, :8].mean((1, 2))), torch.tensor([10.0, 20.0, 30.0]), atol=0.5)
    assert torch.allclose(to255(out[0, :, :, 8:].mean((1, 2))), torch.tensor([200.0, 100.0, 50.0]), atol=0.5)
    assert torch.allclose(to255(out[1].mean((1, 2))), torch.tensor([150.0, 127.5, 90.0]), atol=0.05)
    # what is not sent is not touched: the texture (deviation from the mean) is kept in unclipped regions
    assert torch.allclose(out[1] - out[1].mean((1, 2), keepdim=True), x0[1] - x0[1].mean((1, 2), keepdim=True),
                          atol=1e-5)
    none = AppearanceTarget.build([None, None], regions, 35)
    assert torch.equal(project_x0(x0, none), x0)


def test_denoiser_wrapper_is_consistent_with_the_projection():
    diffusion = GaussianDiffusion(DiffusionConfig())
    x = torch.randn(1, 3, 8, 16)
    t = torch.tensor([500])
    eps = torch.randn(1, 3, 8, 16)
    target = AppearanceTarget.build([Appearance("mean", np.array([[60.0, 90.0, 200.0]]), np.array([0]))],
                                    torch.zeros(1, 8, 16, dtype=torch.long), 35)
    wrapped = appearance_denoiser(lambda x, t: (eps, None), diffusion, target)
    eps2, v = wrapped(x, t)
    a, s = diffusion.sqrt_alphas_cumprod[500].float(), diffusion.sqrt_one_minus_alphas_cumprod[500].float()
    x0 = (x - s * eps2) / a  # what a sampler reads back
    assert v is None
    assert torch.allclose(x0, project_x0((x - s * eps) / a, target), atol=1e-4)
    assert torch.allclose((x0.mean((2, 3))[0] + 1) * 127.5, torch.tensor([60.0, 90.0, 200.0]), atol=1.0)
