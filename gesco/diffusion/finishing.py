"""Label-aware finishing: smooth a generated image inside class regions, never across them.

The receiver's images carry a fine grain where the real scenes are smooth (the sky most
visibly; :mod:`gesco.evaluate.metrics.grain`, issue 24 item 4). This stage smooths the image
inside each region of the **received** label map by a normalised convolution (Knutsson and
Westin, 1993): a Gaussian blur that only averages pixels of the pixel's own class, so no colour
leaks across a class boundary. For a class ``c`` with mask ``m_c`` (1 where the received label
map is ``c``) and the Gaussian ``G_sigma``::

    s_c = G_sigma * (x . m_c) / G_sigma * m_c                       (per channel)
    y   = x + alpha * sum_{c in classes} m_c . (s_c - x)

``classes`` is the set of classes smoothed (the flat ones: sky, road, ...); pixels of other
classes are returned unchanged. ``alpha = 1`` replaces a smoothed class's pixels by their
in-class average, ``alpha = 0`` is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gesco.errors import GescoInputError, ShapeError


@dataclass(frozen=True)
class Finishing:
    """The settings of :func:`finish` (see the module doc).

    Attributes:
        classes: the label ids smoothed; empty: the identity.
        sigma: the Gaussian's standard deviation in pixels (> 0).
        alpha: blend in ``[0, 1]`` between the image (0) and its in-class average (1).
    """

    classes: tuple[int, ...] = ()
    sigma: float = 1.0
    alpha: float = 1.0

    def validate(self) -> None:
        """Raise :class:`GescoInputError` naming the first invalid field."""
        if not self.sigma > 0:
            raise GescoInputError(f"finishing sigma must be > 0 pixels, got {self.sigma}")
        if not 0.0 <= self.alpha <= 1.0:
            raise GescoInputError(f"finishing alpha must be in [0, 1], got {self.alpha}")
        if any(c < 0 for c in self.classes):
            raise GescoInputError(f"finishing classes must be label ids >= 0, got {list(self.classes)}")


#: the label id of the sky (Cityscapes), the one class whose real interior is smooth in the synthetic scenes
SKY = 23


def sky_finishing(sigma: float) -> Finishing:
    """The measured setting (docs/grain.md): the sky only, ``alpha = 1``; ``sigma = 0``: off (the identity)."""
    return Finishing(classes=(SKY,), sigma=float(sigma)) if sigma > 0 else Finishing()


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """``(2r + 1,)`` float32 normalised 1-D Gaussian, ``r = ceil(3 sigma)``."""
    r = max(1, int(torch.tensor(3.0 * sigma).ceil().item()))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable zero-padded blur of ``(N, C, H, W)`` float32 (zero padding: outside the image has no weight)."""
    c, r = x.shape[1], k.numel() // 2
    kh = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    kv = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0)), kh, groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r)), kv, groups=c)


def received_labels(cond: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` int64: the receiver's label map of a ``(B, C + 1, H, W)`` conditioning (argmax over
    its ``C`` class maps; the last channel, the edge map, is left out)."""
    if cond.dim() != 4 or cond.shape[1] < 2:
        raise ShapeError(f"finishing: conditioning must be (B, C + 1, H, W), got {tuple(cond.shape)}")
    return cond[:, :-1].argmax(dim=1)


def finish(images: torch.Tensor, labels: torch.Tensor, settings: Finishing) -> torch.Tensor:
    """Smooth ``images`` inside the regions of ``settings.classes`` in ``labels`` (the module's formula).

    Args:
        images: ``(B, 3, H, W)`` float images (any range; the output keeps it: a convex combination
            of input pixels).
        labels: ``(B, H, W)`` integer label ids, the receiver's label map of each image.
        settings: which classes, how wide, how strong.
    Returns:
        ``(B, 3, H, W)`` float32, a new tensor; pixels outside the smoothed classes are unchanged.
    Raises:
        ShapeError: ``labels`` do not match the images' ``(B, H, W)``.
        GescoInputError: invalid settings.
    """
    settings.validate()
    if images.dim() != 4 or labels.shape != (images.shape[0], *images.shape[2:]):
        raise ShapeError(f"finishing: labels {tuple(labels.shape)} do not match images {tuple(images.shape)}")
    x = images.detach().to(torch.float32).cpu()
    out = x.clone()
    if not settings.classes or settings.alpha == 0.0:
        return out
    lab = labels.detach().cpu()
    k = gaussian_kernel(settings.sigma)
    for c in settings.classes:
        m = (lab == c).unsqueeze(1).to(torch.float32)  # (B, 1, H, W)
        if not m.any():
            continue
        num = _blur(x * m, k)
        den = _blur(m, k).clamp_min(1e-12)
        s = num / den
        out = out + settings.alpha * m * (s - x)
    return out


__all__ = ["SKY", "Finishing", "finish", "gaussian_kernel", "received_labels", "sky_finishing"]
