"""Where tensors live: the one resolver of device settings (``"auto"``, ``"cpu"``, ``"cuda:1"``, ...).

Training, sampling, the evaluation and the receiver all take a device setting and pass it
through :func:`resolve_device`, so ``"auto"`` means the same everywhere and a device the
machine does not have is refused with a message instead of failing at the first tensor.
"""

from __future__ import annotations

import torch

from gesco.errors import GescoInputError


def resolve_device(spec: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """A device setting -> a ``torch.device`` this machine has.

    Args:
        spec: ``"auto"`` (CUDA if available, else the CPU), or any ``torch.device`` string
            (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) or object.
        local_rank: the process's GPU under ``torchrun``; ``"auto"`` picks ``cuda:local_rank``.
    Returns:
        The device.
    Raises:
        GescoInputError: an unparseable setting, or a CUDA / MPS device this machine lacks.
    """
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as e:
        raise GescoInputError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N ({e})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GescoInputError(f"device {spec!r} asked for, but CUDA is not available here: use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GescoInputError(f"device {spec!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise GescoInputError(f"device {spec!r} asked for, but MPS is not available here: use auto or cpu")
    return device
