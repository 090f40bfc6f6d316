"""The authors' flags, data-set presets and the importer's named errors (no torch import).

Split from :mod:`gesco.diffusion.authors_import` so that ``gesco import --help`` builds
its parser without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gesco.errors import CheckpointError


class AuthorsImportError(CheckpointError):
    """An authors' checkpoint that gesco refuses to import (the subclass names why)."""


class UnreadableCheckpointError(AuthorsImportError):
    """The file is missing, truncated, or not a ``torch.save`` file."""


class NotAStateDictError(AuthorsImportError):
    """The file unpickles to something other than a mapping of names to tensors."""


class ClassCountError(AuthorsImportError):
    """The checkpoint's label input does not fit the class space asked for."""


class ResolutionMismatchError(AuthorsImportError):
    """The checkpoint is a network for another image size (another number of levels or widths)."""


class UnmappableKeysError(AuthorsImportError):
    """The checkpoint has keys the authors' network at these flags does not have."""


class MissingKeysError(AuthorsImportError):
    """The checkpoint lacks keys the authors' network at these flags has."""


class ShapeMismatchError(AuthorsImportError):
    """A tensor's shape does not fit the authors' network at these flags."""


class UnsupportedFlagsError(AuthorsImportError):
    """Flags of the authors' code that gesco's network does not implement."""


@dataclass(frozen=True)
class DatasetPreset:
    """What the authors' code does for one data set.

    Attributes:
        class_space: gesco's class space of the labels.
        num_classes: the authors' ``--num_classes`` (one-hot maps).
        instances: trained with the instance-edge map (``--no_instance False``).
        aspect: width / height of the images (Cityscapes 2: 256x512).
        guidance_scale: ``--s`` of their sampling script for this data set.
        edges: how the edge map they trained on was made (for the model card).
        label_shift: the authors' one-hot channel of gesco's class id ``j`` is
            ``(j + label_shift) mod num_classes``. 0 except ADE20K, whose loader subtracts 1
            from the raw ids (``arr_class - 1``, uint8: 0 "other" wraps to 255, then 150), where
            gesco's ``ade20k`` space keeps the raw ids (0 = other).
    """

    class_space: str
    num_classes: int
    instances: bool
    aspect: int
    guidance_scale: float
    edges: str
    label_shift: int = 0


DATASETS: dict[str, DatasetPreset] = {
    "cityscapes": DatasetPreset(
        "cityscapes", 35, True, 2, 2.0,
        "4-neighbour changes of *_instanceIds.png read as 8-bit ('L'): ids over 255 (every car, person, ... "
        "instance) clip to 255, so touching instances of thing classes have no edge between them "
        "(gesco.semantics.layout.authors_instance_ids)"),
    "ade20k": DatasetPreset("ade20k", 151, False, 1, 1.5, "none: trained with --no_instance True", label_shift=-1),
    "coco-stuff": DatasetPreset(
        "coco-stuff", 183, True, 1, 1.5,
        "4-neighbour changes of the instance map read as 8-bit ('L'); ids over 255 clip to 255"),
}


@dataclass
class AuthorsFlags:
    """The authors' command-line flags that fix the network (``image_train.py`` / ``image_sample.py``).

    Defaults are the published ones of the paper's Cityscapes model and SDM's ADE20K /
    COCO-Stuff models: ``--image_size 256 --num_channels 256 --num_res_blocks 2
    --attention_resolutions 32,16,8 --num_head_channels 64 --resblock_updown True
    --use_scale_shift_norm True --learn_sigma True --diffusion_steps 1000 --noise_schedule
    linear``; ``channel_mult`` empty = their default for the image size.
    """

    image_size: int = 256
    num_channels: int = 256
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] = ()
    attention_resolutions: tuple[int, ...] = (32, 16, 8)
    num_head_channels: int = 64
    resblock_updown: bool = True
    use_scale_shift_norm: bool = True
    learn_sigma: bool = True
    diffusion_steps: int = 1000
    noise_schedule: str = "linear"

    #: the authors' default ``channel_mult`` per image size (``script_util.create_model``)
    DEFAULT_MULT = {256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}

    def mult(self) -> tuple[int, ...]:
        if self.channel_mult:
            return tuple(int(m) for m in self.channel_mult)
        if self.image_size not in self.DEFAULT_MULT:
            raise UnsupportedFlagsError(f"image_size {self.image_size} has no default channel_mult in the authors' "
                                        f"code ({sorted(self.DEFAULT_MULT)}); pass --channel-mult")
        return self.DEFAULT_MULT[self.image_size]

    def to_dict(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "num_channels": self.num_channels,
                "num_res_blocks": self.num_res_blocks, "channel_mult": list(self.mult()),
                "attention_resolutions": list(self.attention_resolutions),
                "num_head_channels": self.num_head_channels, "resblock_updown": self.resblock_updown,
                "use_scale_shift_norm": self.use_scale_shift_norm, "learn_sigma": self.learn_sigma,
                "diffusion_steps": self.diffusion_steps, "noise_schedule": self.noise_schedule}


