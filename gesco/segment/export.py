"""Turning a segmentation network into a file the sender can plug in (``GESCO_SENDER_SEGMENTER``).

Most Cityscapes models (SegFormer, DeepLab, ... in the common libraries) predict the 19
*train ids* of the benchmark; gesco's class space is the 35 Cityscapes *label ids*.
:class:`TrainIdLogits` wraps such a network so it outputs label-id logits::

    logits35[:, label_id(t)] = logits19[:, t]      for the 19 train ids t
    logits35[:, other ids]   = FILL_LOGIT          (never predicted; softmax ~ 0)

so the argmax is the model's own and the max-softmax (the out-of-domain score of
:mod:`gesco.segment.domain`) is its 19-class confidence. :func:`export_segmenter` writes
an ONNX (``.onnx``) or TorchScript (``.pt``) file plus the JSON sidecar that
:func:`gesco.segment.load_segmenter` reads. ``docs/segmenter.md`` shows the whole recipe for
a SegFormer checkpoint.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from gesco.errors import GescoInputError
from gesco.semantics.classes import ClassSpace, get_class_space

#: logit of the label ids a train-id model never predicts
FILL_LOGIT = -1.0e4
#: ImageNet mean / std that most pretrained backbones expect on [0, 1] RGB
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TrainIdLogits(torch.nn.Module):
    """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``(B, 35, h, w)`` Cityscapes label-id logits.

    Args:
        net: the network; its output (a tensor, a tuple whose first item is one, or an object
            with ``.logits`` such as a ``transformers`` output) is ``(B, 19, h, w)`` train-id logits.
        space: the class space (its ``eval_ids``, in increasing order, are the train ids 0..18).
        mean, std: per-channel normalisation applied before ``net`` (``None``: none).
    """

    def __init__(self, net: torch.nn.Module, space: ClassSpace | None = None,
                 mean: tuple[float, float, float] | None = IMAGENET_MEAN,
                 std: tuple[float, float, float] | None = IMAGENET_STD) -> None:
        super().__init__()
        space = space or get_class_space("cityscapes")
        self.net = net
        self.num_classes = space.num_classes
        self.register_buffer("label_ids", torch.tensor(space.eval_ids, dtype=torch.long))
        self.normalise = mean is not None and std is not None
        self.register_buffer("mean", torch.tensor(mean or (0.0, 0.0, 0.0)).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std or (1.0, 1.0, 1.0)).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalise:
            x = (x - self.mean) / self.std
        y = self.net(x)
        if hasattr(y, "logits"):
            y = y.logits
        elif isinstance(y, (tuple, list)):
            y = y[0]
        b, _, h, w = y.shape
        out = torch.full((b, self.num_classes, h, w), FILL_LOGIT, dtype=y.dtype, device=y.device)
        return out.index_copy(1, self.label_ids, y)


def export_segmenter(model: torch.nn.Module, path: str | Path, input_size: tuple[int, int],
                     input_range: str = "[0,1]", class_space: str = "cityscapes") -> Path:
    """Write ``model`` as ONNX (``.onnx``) or TorchScript (``.pt`` / ``.ts``) with its sidecar.

    Args:
        model: ``(B, 3, H, W)`` -> ``(B, C, h, w)`` logits of ``class_space``
            (e.g. a :class:`TrainIdLogits`).
        path: the file to write; ``<path>.json`` is the sidecar.
        input_size: ``(H, W)`` the model is exported at (uploads are resized to it).
        input_range: ``"[0,1]"`` or ``"[-1,1]"``, the range ``model`` expects.
    Returns:
        the sidecar's path.
    """
    path = Path(path)
    if input_range not in ("[0,1]", "[-1,1]"):
        raise GescoInputError(f"input_range must be '[0,1]' or '[-1,1]', got {input_range!r}")
    example = torch.zeros(1, 3, *input_size)
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporters
        if path.suffix == ".onnx":
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["image"],
                              output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        elif path.suffix in (".pt", ".ts"):
            torch.jit.trace(model, example).save(str(path))
        else:
            raise GescoInputError(f"export to .onnx, .pt or .ts, not {path.suffix!r}")
    sidecar = path.with_name(path.name + ".json")
    sidecar.write_text(json.dumps({"class_space": class_space, "input_size": [int(v) for v in input_size],
                                   "input_range": input_range, "output": "logits"}, indent=1) + "\n")
    return sidecar
