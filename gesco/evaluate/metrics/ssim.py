"""SSIM, the structural similarity index of Wang, Bovik, Sheikh and Simoncelli (2004),
batched in PyTorch.

For two images with values in ``[0, L]`` (``L = data_range``, 1 by default), per colour
channel and pixel, with Gaussian-weighted local statistics (window 11x11, sigma 1.5)::

    mu_x = G * x,  sigma_x^2 = G * x^2 - mu_x^2,  sigma_xy = G * (x y) - mu_x mu_y
    SSIM = ((2 mu_x mu_y + C1) (2 sigma_xy + C2)) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2))
    C1 = (0.01 L)^2,  C2 = (0.03 L)^2

The map is computed only where the window fits inside the image ("valid" filtering,
as the authors' MATLAB ``ssim_index`` and scikit-image's ``structural_similarity``
with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``), averaged
over positions, then over the RGB channels (each channel scored on its own; not on
luminance). Checked against scikit-image in ``tests/evaluate/test_metrics.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gesco.errors import DTypeError, GescoInputError, ShapeError

WINDOW_SIZE = 11
SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = SIGMA, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, ``(size,)``, summing to 1."""
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    taps = torch.exp(-(coords**2) / (2 * sigma**2))
    return taps / taps.sum()


def _filter_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of ``(N, 1, H, W)`` maps, valid region only."""
    k = taps.numel()
    x = F.conv2d(x, taps.view(1, 1, k, 1))
    return F.conv2d(x, taps.view(1, 1, 1, k))


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of each image pair.

    Args:
        x, y: ``(B, C, H, W)`` float images (C = 3 for RGB, any C works), same shape,
            values in ``[0, data_range]``, ``H, W >= 11``.
        data_range: ``L`` in the constants ``C1 = (K1 L)^2, C2 = (K2 L)^2``.
    Returns:
        ``(B,)`` tensor of the input's dtype: SSIM averaged over positions and channels,
        in ``[-1, 1]``, 1 for identical images.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise DTypeError(f"SSIM {name}: expected a float torch.Tensor, got {getattr(t, 'dtype', type(t))}")
        if t.dim() != 4:
            raise ShapeError(f"SSIM {name}: expected shape (B, C, H, W), got {tuple(t.shape)}")
    if x.shape != y.shape:
        raise ShapeError(f"SSIM: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[2] < WINDOW_SIZE or x.shape[3] < WINDOW_SIZE:
        raise ShapeError(f"SSIM needs H, W >= {WINDOW_SIZE}, got {tuple(x.shape[2:])}")
    if data_range <= 0:
        raise GescoInputError(f"SSIM data_range must be positive, got {data_range}")
    for name, t in (("x", x), ("y", y)):
        if t.numel() and (float(t.min()) < -1e-3 * data_range or float(t.max()) > data_range * (1 + 1e-3)):
            raise GescoInputError(
                f"SSIM {name}: values must lie in [0, {data_range}], got [{float(t.min()):.4g}, {float(t.max()):.4g}]"
            )

    b, c, h, w = x.shape
    # float64 inside: sigma^2 = E[x^2] - E[x]^2 cancels badly in float32 on flat regions.
    xs = x.to(torch.float64).reshape(b * c, 1, h, w)
    ys = y.to(torch.float64).reshape(b * c, 1, h, w)
    taps = gaussian_window(dtype=torch.float64).to(xs.device)
    mu_x, mu_y = _filter_valid(xs, taps), _filter_valid(ys, taps)
    var_x = _filter_valid(xs * xs, taps) - mu_x**2
    var_y = _filter_valid(ys * ys, taps) - mu_y**2
    cov_xy = _filter_valid(xs * ys, taps) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.reshape(b, c, -1).mean(dim=(1, 2)).to(x.dtype)
