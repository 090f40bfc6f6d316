"""What the batches of one evaluation share (:class:`EvalContext`: scenes, models, settings)
and the one way a batch of output images is scored, saved and stored (:func:`score_batch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gesco.data.synthetic import SceneSample, generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.diffusion.pipeline import SemanticGenerator
from gesco.errors import CheckpointError
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.scoring import Scorers
from gesco.evaluate.store import UnitResult
from gesco.link import (
    encode_png,
)
from gesco.semantics.classes import ClassSpace


class EvalContext:
    """Scenes, models and settings shared by the batches of one run.

    Attributes:
        config, resolution, space, scorers, device: the run's settings, ``(H, W)``, class
            space, metrics and device.
        samples: folder of the saved sample images (``<out>/samples``).
        row_cache: state a row keeps across its batches (the digital link, the digital-maps
            images sampled once per scene); keyed by a name of the row's module.
    """

    def __init__(self, config: EvalConfig, resolution: tuple[int, int], space: ClassSpace, scorers: Scorers,
                 device: torch.device) -> None:
        self.config, self.resolution, self.space, self.scorers, self.device = config, resolution, space, scorers, device
        self._scenes: dict[int, SceneSample] = {}
        self._files: Any = None
        self._generators: dict[str, Any] = {}
        self.samples = Path(config.out) / "samples"
        self.row_cache: dict[str, Any] = {}

    def scene(self, i: int) -> SceneSample:
        if i not in self._scenes:
            if self.config.dataset == "synthetic":
                self._scenes[i] = generate_scene(split_seed(self.config.split, i), *self.resolution)
            else:
                if self._files is None:
                    from gesco.data.cityscapes import CityscapesDataset

                    self._files = CityscapesDataset(self.config.root, self.config.split, *self.resolution)
                image, label, instance = self._files.load(i)
                if instance is None:
                    instance = label.astype(np.int64)
                self._scenes[i] = SceneSample(image=image, label=label, instance=instance)
        return self._scenes[i]

    def instance_ids(self, path: str | None) -> str:
        """How a row's checkpoint reads instance ids (its card's ``conditioning.instance_ids``)."""
        if path is None:
            return "full"
        return str(self.generator(path).card.conditioning.get("instance_ids", "full"))

    def real(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` real images in ``[-1, 1]`` and ``(B, H, W)`` int64 label maps."""
        images = torch.stack([image_to_tensor(self.scene(i).image) for i in idx])
        labels = torch.stack([torch.from_numpy(self.scene(i).label.astype(np.int64)) for i in idx])
        return images, labels

    def generator(self, path: str) -> Any:
        if path not in self._generators:
            gen = SemanticGenerator.load(path, device=self.device, mean_temperature=self.config.mean_temperature)
            if gen.space.name != self.space.name:
                raise CheckpointError(f"checkpoint {path} is for class space {gen.space.name}, the scenes are {self.space.name}")
            self._generators[path] = gen
        return self._generators[path]

    def save_sample(self, row: str, psnr: float | None, scene: int, image: np.ndarray) -> None:
        if scene >= self.config.grid_scenes:
            return
        folder = self.samples / row / ("real" if psnr is None else f"psnr{psnr:g}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"scene{scene:03d}.png").write_bytes(encode_png(image))


def score_batch(ctx: EvalContext, row: str, psnr: float, idx: list[int], images: torch.Tensor,
                extra: list[dict[str, Any]]) -> list[UnitResult]:
    """Score a row's output images against the real scenes, save the grid scenes' images, and
    make the stored results.

    Args:
        ctx: the run's context.
        row: the row's key; ``psnr``: the channel PSNR in dB; ``idx``: the scene indices.
        images: ``(B, 3, H, W)`` float in ``[-1, 1]``, one per scene of ``idx``.
        extra: one dict per image of the row's own measurements (bits, channel uses, ...),
            merged after the metrics of :meth:`Scorers.score`.
    """
    real, labels = ctx.real(idx)
    metrics, feats = ctx.scorers.score(images, real, labels)
    uint8 = SemanticGenerator.to_uint8(images)
    out = []
    for j, i in enumerate(idx):
        ctx.save_sample(row, psnr, i, uint8[j])
        out.append(UnitResult(row, psnr, i, {**metrics[j], **extra[j]}, feats[j]))
    return out
