"""The :class:`Segmenter`: images in, label-id maps out, whatever network is behind it.

The network is the shipped gesco checkpoint by default; configuration can replace it
(:func:`load_segmenter`) with another gesco checkpoint, a user's TorchScript file
(``.pt`` / ``.ts``), a ``torch.export`` program (``.pt2``) or a user's ONNX file. Such a
file needs a JSON *sidecar* (``<file>.json`` or ``<file stem>.json``) saying how to use it::

    {"class_space": "cityscapes",        # label ids the model predicts
     "input_size": [64, 128],            # [H, W] the model expects
     "input_range": "[-1,1]",            # or "[0,1]" (RGB either way); default "[-1,1]"
     "output": "logits"}                 # (B, C, H, W) logits, or "labels": (B, H, W) ids

Images of another size are resized to ``input_size`` (area when shrinking, bilinear
otherwise) and the predicted label maps back with nearest neighbour.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gesco.data.transforms import image_to_tensor, resize_image, resize_labels
from gesco.errors import CheckpointError, ClassIdError, DTypeError, GescoInputError, ShapeError
from gesco.semantics.classes import ClassSpace, get_class_space

TORCHSCRIPT_SUFFIXES = (".pt", ".ts")
EXPORT_SUFFIXES = (".pt2",)
ONNX_SUFFIXES = (".onnx",)
_RANGES = ("[-1,1]", "[0,1]")
_OUTPUTS = ("logits", "labels")


def _nearest_labels(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour resize of ``(B, h, w)`` label maps (same rule as :func:`resize_labels`)."""
    h, w = labels.shape[-2:]
    if (h, w) == (height, width):
        return labels
    rows = ((torch.arange(height) + 0.5) * h / height).long().clamp_max(h - 1)
    cols = ((torch.arange(width) + 0.5) * w / width).long().clamp_max(w - 1)
    return labels[:, rows[:, None], cols[None, :]]


class Segmenter:
    """A segmentation network with its class space and input size.

    Args:
        model: callable ``(B, 3, H, W) float -> (B, C, H, W) logits`` (or ``(B, H, W)``
            label ids when ``output="labels"``), ``H, W = resolution``.
        class_space: the label ids it predicts.
        resolution: ``(H, W)`` the model expects.
        input_range: ``"[-1,1]"`` or ``"[0,1]"``: the value range the model wants.
        output: ``"logits"`` or ``"labels"``.
        device: where the model runs.
        source: where it came from (for messages).
        card: the checkpoint's JSON (training and evaluation records) when known.
    """

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], class_space: ClassSpace,
                 resolution: tuple[int, int], input_range: str = "[-1,1]", output: str = "logits",
                 device: str | torch.device = "cpu", source: str = "", card: dict | None = None,
                 batch_size: int = 64) -> None:
        if input_range not in _RANGES:
            raise GescoInputError(f"input_range must be one of {_RANGES}, got {input_range!r}")
        if output not in _OUTPUTS:
            raise GescoInputError(f"output must be one of {_OUTPUTS}, got {output!r}")
        self.model = model
        self.class_space = class_space
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.input_range, self.output = input_range, output
        self.device = torch.device(device)
        self.source, self.card, self.batch_size = source, card or {}, batch_size

    def __repr__(self) -> str:
        return f"Segmenter({self.source or 'in-memory'}, {self.class_space.name}, {self.resolution[0]}x{self.resolution[1]})"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device = "cpu") -> Segmenter:
        """A gesco segmenter checkpoint (stem or either file); default: the shipped one."""
        from gesco.paths import DEFAULT_SEGMENTER, shipped_checkpoint
        from gesco.segment.checkpoint import load_checkpoint

        path = shipped_checkpoint(DEFAULT_SEGMENTER) if path is None else Path(path)
        model, card = load_checkpoint(path, map_location=device)
        return cls(model, get_class_space(card.class_space), card.resolution, device=device,
                   source=str(path), card=card.to_dict())

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Label maps of a batch of images.

        Args:
            images: float ``(B, 3, H, W)`` RGB in ``[-1, 1]``, any ``H, W``.
        Returns:
            int64 ``(B, H, W)`` label ids of :attr:`class_space`, on the CPU.
        Raises:
            ShapeError, DTypeError: bad input; ClassIdError: the model produced ids
            outside its class space (a misconfigured replacement model).
        """
        if not isinstance(images, torch.Tensor):
            raise DTypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if not images.dtype.is_floating_point:
            raise DTypeError(f"images must be float in [-1, 1], got {images.dtype}")
        b, _, h, w = images.shape
        out = []
        for i in range(0, b, self.batch_size):
            out.append(self._predict_chunk(images[i : i + self.batch_size].float(), h, w))
        return torch.cat(out) if out else torch.empty((0, h, w), dtype=torch.int64)

    def _predict_chunk(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self._predict_scored_chunk(x, h, w)[0]

    def _predict_scored_chunk(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, 3, h, w)`` in [-1, 1] -> ``(B, h, w)`` int64 labels and ``(B, h, w)`` float32
        max-softmax confidence (``None`` for a model whose output is ``"labels"``)."""
        rh, rw = self.resolution
        x = x.to(self.device)
        if (h, w) != (rh, rw):
            shrink = rh <= h and rw <= w
            x = F.interpolate(x, size=(rh, rw), mode="area") if shrink else \
                F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False)
        if self.input_range == "[0,1]":
            x = (x + 1.0) * 0.5
        y = self.model(x)
        if isinstance(y, (tuple, list)):
            y = y[0]
        confidence = None
        if self.output == "logits":
            c = self.class_space.num_classes
            if y.ndim != 4 or y.shape[0] != x.shape[0] or y.shape[1] != c:
                raise ShapeError(f"segmenter {self.source} returned shape {tuple(y.shape)}, expected logits (B, {c}, H, W)")
            if y.shape[-2:] != (rh, rw):
                y = F.interpolate(y.float(), size=(rh, rw), mode="bilinear", align_corners=False)
            probs = y.float().softmax(1)
            confidence, labels = probs.max(1)
            confidence = _nearest_labels(confidence.cpu(), h, w)
        else:
            if y.ndim != 3 or y.shape[0] != x.shape[0]:
                raise ShapeError(f"segmenter {self.source} returned shape {tuple(y.shape)}, expected labels (B, H, W)")
            labels = y.long()
            if labels.shape[-2:] != (rh, rw):
                labels = _nearest_labels(labels.cpu(), rh, rw)
            self.class_space.check_ids(labels.cpu().numpy(), f"output of segmenter {self.source}")
        return _nearest_labels(labels.cpu().long(), h, w), confidence

    def predict_numpy_scored(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Label map of one image and the segmenter's confidence per pixel.

        Args:
            image: uint8 ``(H, W, 3)`` RGB, any size.
        Returns:
            ``(labels, confidence)``: uint8 ``(H, W)`` label ids as :meth:`predict_numpy`;
            float32 ``(H, W)`` max-softmax probability of the predicted class, in
            ``[1/C, 1]``, or ``None`` when the model outputs labels, not logits (then
            there is nothing to score; :mod:`gesco.segment.domain` says so).
        """
        labels, confidence = self._predict_numpy(image, scored=True)
        return labels, confidence

    def predict_numpy(self, image: np.ndarray) -> np.ndarray:
        """Label map of one image.

        Args:
            image: uint8 ``(H, W, 3)`` RGB, any size.
        Returns:
            uint8 ``(H, W)`` label ids (the image's own size; nearest-neighbour when the
            model's resolution differs).
        """
        return self._predict_numpy(image, scored=False)[0]

    @torch.no_grad()
    def _predict_numpy(self, image: np.ndarray, scored: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise DTypeError(f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image).__name__)}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ShapeError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
        if self.class_space.num_classes > 256:
            raise ClassIdError(f"class space {self.class_space.name} has more than 256 ids; use predict()")
        h, w = image.shape[:2]
        rh, rw = self.resolution
        x = image_to_tensor(resize_image(image, rh, rw))[None]
        labels, confidence = self._predict_scored_chunk(x.float(), rh, rw)
        labels_np = resize_labels(labels[0].numpy().astype(np.uint8), h, w)
        if not scored or confidence is None:
            return labels_np, None
        return labels_np, resize_labels(confidence[0].numpy().astype(np.float32), h, w)


# --------------------------------------------------------------------------- replacements
def _read_sidecar(path: Path) -> dict:
    for side in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if side.exists():
            try:
                meta = json.loads(side.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise CheckpointError(f"segmenter sidecar {side} is not valid JSON ({e})") from None
            if not isinstance(meta, dict):
                raise CheckpointError(f"segmenter sidecar {side} must hold a JSON object")
            missing = [k for k in ("class_space", "input_size") if k not in meta]
            if missing:
                raise CheckpointError(f"segmenter sidecar {side} lacks {missing} (see gesco.segment.segmenter)")
            size = meta["input_size"]
            if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
                raise CheckpointError(f"segmenter sidecar {side}: input_size must be [H, W], got {size!r}")
            meta["_sidecar"] = str(side)
            return meta
    raise CheckpointError(
        f"segmenter {path} needs a JSON sidecar {path.name}.json or {path.stem}.json with "
        '{"class_space": ..., "input_size": [H, W]} (optional "input_range", "output")'
    )


def _from_sidecar(model: Callable, path: Path, meta: dict, device: str | torch.device) -> Segmenter:
    try:
        space = get_class_space(meta["class_space"])
        return Segmenter(model, space, tuple(meta["input_size"]), meta.get("input_range", "[-1,1]"),
                         meta.get("output", "logits"), device=device, source=str(path), card=meta)
    except GescoInputError as e:
        raise CheckpointError(f"segmenter sidecar {meta['_sidecar']}: {e}") from None


class _OnnxModel:
    """Runs an ONNX file with onnxruntime (CPU) on torch tensors."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(np.asarray(out))


def _load_torchscript(path: Path, device: str | torch.device) -> Segmenter:
    """A TorchScript segmenter and its JSON sidecar."""
    if not path.is_file():
        raise CheckpointError(f"TorchScript segmenter {path} not found")
    meta = _read_sidecar(path)
    try:
        model = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError, OSError) as e:
        raise CheckpointError(f"segmenter {path} is not a loadable TorchScript file ({e})") from None
    model.eval()
    return _from_sidecar(model, path, meta, device)


def _load_export(path: Path) -> Segmenter:
    """A ``torch.export`` segmenter program and its JSON sidecar (runs on the CPU)."""
    if not path.is_file():
        raise CheckpointError(f"torch.export segmenter {path} not found")
    meta = _read_sidecar(path)
    try:
        model = torch.export.load(str(path)).module()
    except Exception as e:  # torch.export raises assorted exception types on bad archives
        raise CheckpointError(f"segmenter {path} is not a loadable torch.export program ({e})") from None
    return _from_sidecar(model, path, meta, "cpu")


def _load_onnx(path: Path) -> Segmenter:
    """An ONNX segmenter (needs onnxruntime) and its JSON sidecar (runs on the CPU)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise CheckpointError(
            f"segmenter {path} is an ONNX file: install onnxruntime (pip install onnxruntime) to use it"
        ) from None
    if not path.is_file():
        raise CheckpointError(f"ONNX segmenter {path} not found")
    meta = _read_sidecar(path)
    try:
        model = _OnnxModel(path)
    except Exception as e:  # onnxruntime raises its own exception types
        raise CheckpointError(f"segmenter {path} is not a loadable ONNX file ({e})") from None
    return _from_sidecar(model, path, meta, "cpu")


def load_segmenter(spec: str | Path | None = None, device: str | torch.device = "cpu") -> Segmenter:
    """The segmenter named by configuration.

    Args:
        spec: ``None``, ``""`` or ``"default"``: the shipped checkpoint; a path ending in
            ``.pt`` / ``.ts``: a TorchScript file; ``.pt2``: a ``torch.export`` program;
            ``.onnx``: an ONNX file (needs the ``onnxruntime`` package); anything else: a
            gesco checkpoint (stem, ``.safetensors`` or ``.json``). TorchScript, export
            and ONNX files need a JSON sidecar (see the module docstring).
    Raises:
        CheckpointError: missing or unreadable file or sidecar, or onnxruntime missing.
    """
    if spec is None or str(spec) in ("", "default"):
        return Segmenter.load(None, device)
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    if suffix in TORCHSCRIPT_SUFFIXES:
        return _load_torchscript(path, device)
    if suffix in EXPORT_SUFFIXES:
        return _load_export(path)
    if suffix in ONNX_SUFFIXES:
        return _load_onnx(path)
    return Segmenter.load(path, device)
