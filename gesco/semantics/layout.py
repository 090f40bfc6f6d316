"""Semantic layouts: one-hot maps of the present classes and the instance-edge map.

Paper section 3.2 (Sender): the label map is one-hot encoded over the class space,
the maps of classes absent from the image are dropped (only the present ones are
sent, their ids go in the header), and an instance-edge map is appended when
instances are known. The receiver pads the dropped classes back as zero maps
(the ``Pad`` of Eq. 2).

Shapes (``C`` classes in the space, ``K`` present, ``H x W`` pixels):

* label map: ``(H, W)`` integer, values in ``[0, C)``
* instance map: ``(H, W)`` integer (Cityscapes convention: ``id * 1000 + k`` for things)
* present maps: ``(K + e, H, W)`` uint8 in {0, 1}, ``e = 1`` with an edge map (last)
* full conditioning: ``(C + 1, H, W)`` float, the edge map last (zero when absent)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gesco.errors import ClassIdError, DTypeError, GescoInputError, ShapeError
from gesco.semantics.classes import ClassSpace


def _check_label_map(label: np.ndarray, what: str = "label map") -> np.ndarray:
    label = np.asarray(label)
    if label.ndim != 2:
        raise ShapeError(f"{what} must be 2-D (H, W), got shape {label.shape}")
    if label.size == 0:
        raise ShapeError(f"{what} is empty (shape {label.shape})")
    if not np.issubdtype(label.dtype, np.integer):
        raise DTypeError(f"{what} must hold integer class ids, got dtype {label.dtype}")
    return label


#: how instance ids are read before their edge map is made: ``"full"`` as given; ``"8bit"``
#: as the authors' data loader reads Cityscapes' 16-bit ``*_instanceIds.png``
#: (:func:`authors_instance_ids`). A checkpoint's card says which its model was trained on
#: (``conditioning.instance_ids``, absent = ``"full"``).
INSTANCE_ID_MODES = ("full", "8bit")


def authors_instance_ids(instance: np.ndarray) -> np.ndarray:
    """Instance ids as the authors' loader reads them: ``PIL.Image.convert("L")`` clips to [0, 255].

    Cityscapes ids of thing instances are ``label_id * 1000 + k`` (24000 and up), so every
    instance of every thing class becomes 255: touching cars, or a person in front of a
    car, then have no edge between them, and their edge map only outlines thing regions
    against stuff. Their weights were trained on (and expect) exactly that edge map.

    Args:
        instance: ``(H, W)`` integer instance ids (any integer dtype).
    Returns:
        ``(H, W)`` int32 ids in [0, 255].
    """
    inst = _check_label_map(instance, "instance map")
    return np.clip(inst, 0, 255).astype(np.int32)


def check_instance_id_mode(mode: str) -> str:
    if mode not in INSTANCE_ID_MODES:
        raise GescoInputError(f"instance_ids must be one of {list(INSTANCE_ID_MODES)}, got {mode!r}")
    return mode


def instance_edges(instance: np.ndarray) -> np.ndarray:
    """Instance-edge map: a pixel is an edge if a 4-neighbour has a different instance id.

    Args:
        instance: ``(H, W)`` integer instance ids.
    Returns:
        ``(H, W)`` uint8 in {0, 1}.
    """
    inst = _check_label_map(instance, "instance map")
    edge = np.zeros(inst.shape, dtype=bool)
    dv = inst[1:, :] != inst[:-1, :]  # vertical neighbours differ
    dh = inst[:, 1:] != inst[:, :-1]  # horizontal neighbours differ
    edge[1:, :] |= dv
    edge[:-1, :] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    return edge.astype(np.uint8)


@dataclass(frozen=True)
class SemanticLayout:
    """What the sender transmits: the maps of the present classes (+ the edge map).

    Attributes:
        maps: ``(K + e, H, W)`` uint8 in {0, 1}; class maps in the order of
            ``class_ids``, then the edge map when ``has_edges``.
        class_ids: ``(K,)`` int64, strictly increasing ids of the present classes.
        num_classes: ``C``, the size of the class space.
        has_edges: whether the last map is the instance-edge map.
    """

    maps: np.ndarray
    class_ids: np.ndarray
    num_classes: int
    has_edges: bool

    @property
    def height(self) -> int:
        return int(self.maps.shape[1])

    @property
    def width(self) -> int:
        return int(self.maps.shape[2])

    def label_map(self) -> np.ndarray:
        """Back to an ``(H, W)`` label map (argmax over the present classes)."""
        k = len(self.class_ids)
        return self.class_ids[np.argmax(self.maps[:k], axis=0)].astype(np.int64)


def encode_layout(
    label: np.ndarray,
    space: ClassSpace,
    instance: np.ndarray | None = None,
) -> SemanticLayout:
    """One-hot encode a label map and keep the present classes only (section 3.2).

    Args:
        label: ``(H, W)`` integer class ids in ``[0, C)``.
        space: the class space (gives ``C``).
        instance: optional ``(H, W)`` instance ids of the same shape; its edge map is appended.
    Returns:
        The :class:`SemanticLayout` (a class is present if at least one pixel has it).
    Raises:
        ShapeError, DTypeError, ClassIdError: on malformed input.
    """
    label = _check_label_map(label)
    space.check_ids(label)
    if instance is not None:
        instance = _check_label_map(instance, "instance map")
        if instance.shape != label.shape:
            raise ShapeError(f"instance map shape {instance.shape} differs from label map shape {label.shape}")
    class_ids = np.unique(label).astype(np.int64)
    maps = (label[None, :, :] == class_ids[:, None, None]).astype(np.uint8)
    if instance is not None:
        maps = np.concatenate([maps, instance_edges(instance)[None]], axis=0)
    return SemanticLayout(maps=maps, class_ids=class_ids, num_classes=space.num_classes, has_edges=instance is not None)


def check_class_ids(class_ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Validate header class ids: 1-D, unique, increasing, inside ``[0, C)``."""
    ids = np.asarray(class_ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ClassIdError(f"class ids must be 1-D, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ClassIdError(f"class ids {ids.tolist()} fall outside the class space [0, {num_classes})")
    if ids.size > 1 and np.any(np.diff(ids) <= 0):
        raise ClassIdError(f"class ids must be unique and increasing, got {ids.tolist()}")
    return ids


def pad_maps(
    maps: torch.Tensor,
    class_ids: np.ndarray | torch.Tensor,
    num_classes: int,
    has_edges: bool,
) -> torch.Tensor:
    """The ``Pad`` of Eq. (2): put the received maps back at their class index.

    Absent classes get exact zero maps; the edge channel (last) is zero when no edge map
    was sent.

    Args:
        maps: ``(K + e, H, W)`` or ``(B, K + e, H, W)`` float maps in the order of ``class_ids``.
        class_ids: ``(K,)`` ids of the maps.
        num_classes: ``C``.
        has_edges: whether the last of ``maps`` is the edge map.
    Returns:
        ``(C + 1, H, W)`` or ``(B, C + 1, H, W)``, same dtype and device as ``maps``.
    """
    squeeze = maps.dim() == 3
    if squeeze:
        maps = maps.unsqueeze(0)
    if maps.dim() != 4:
        raise ShapeError(f"maps must be (K, H, W) or (B, K, H, W), got shape {tuple(maps.shape)}")
    ids = torch.as_tensor(np.asarray(class_ids), dtype=torch.long, device=maps.device)
    check_class_ids(ids.cpu().numpy(), num_classes)
    k = ids.numel()
    if maps.shape[1] != k + int(has_edges):
        raise ShapeError(
            f"{maps.shape[1]} maps received but the header lists {k} classes"
            f"{' + an edge map' if has_edges else ''}"
        )
    b, _, h, w = maps.shape
    out = maps.new_zeros((b, num_classes + 1, h, w))
    out[:, ids] = maps[:, :k]
    if has_edges:
        out[:, num_classes] = maps[:, k]
    return out[0] if squeeze else out


def full_conditioning(label: np.ndarray, space: ClassSpace, instance: np.ndarray | None = None) -> torch.Tensor:
    """Clean ``(C + 1, H, W)`` float32 conditioning of a label map (no channel)."""
    lay = encode_layout(label, space, instance)
    return pad_maps(torch.from_numpy(lay.maps).float(), lay.class_ids, space.num_classes, lay.has_edges)
