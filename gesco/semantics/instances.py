"""Instance maps derived from a label map, for uploads that come without one.

GESCO conditions on the class maps plus an instance-edge map (paper section 3.2); the
edge map needs instance ids, which a user's upload or the sender's segmenter usually
does not give. :func:`derive_instances` builds a stand-in from the label map alone:

* every *thing* class of the space (``ClassSpace.thing_ids``: person, rider, car, truck,
  bus, caravan, trailer, train, motorcycle, bicycle in Cityscapes) is split into its
  connected components (8-connectivity); component ``k`` (``k = 0, 1, ...``, in
  row-major order of first pixel) of class ``c`` gets the id ``c * 1000 + k``, the
  Cityscapes ``*_instanceIds.png`` convention;
* every *stuff* pixel keeps its label id (also the Cityscapes convention).

Its edge map (:func:`gesco.semantics.layout.instance_edges`) therefore holds every class
boundary and the outline of every separate thing. What it cannot recover: two instances
of one class that touch (a row of parked cars, a group of people) form one component
and lose the edge between them; the uploaded instance map keeps it.

The sender's reply and the receiver's result name which edge map a frame carries
(:data:`EDGE_SOURCES`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gesco.errors import GescoInputError
from gesco.semantics.classes import ClassSpace
from gesco.semantics.layout import _check_label_map

#: the instance map was uploaded with the label map (or is the data set's ground truth)
EDGES_UPLOADED = "uploaded"
#: derived from the label map by :func:`derive_instances`
EDGES_DERIVED = "derived"
#: no edge map is sent (the receiver's edge channel is zero)
EDGES_NONE = "none"
#: what ``UploadInfo.edges`` (and the ``upload.edges`` field of the replies) may say
EDGE_SOURCES = (EDGES_UPLOADED, EDGES_DERIVED, EDGES_NONE)

#: instance id of component ``k`` of thing class ``c``: ``c * INSTANCE_STRIDE + k``
INSTANCE_STRIDE = 1000

_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def derive_instances(label: np.ndarray, space: ClassSpace) -> np.ndarray:
    """A Cityscapes-style instance map from a label map: connected components of things.

    Args:
        label: ``(H, W)`` integer class ids of ``space``.
        space: the class space; its ``thing_ids`` are split into components.
    Returns:
        ``(H, W)`` int64: ``c * 1000 + k`` on the ``k``-th 8-connected component of thing
        class ``c``, the label id ``c`` on stuff.
    Raises:
        ShapeError, DTypeError, ClassIdError: malformed label map or ids outside ``space``.
        GescoInputError: a thing class with more than 1000 components (ids would collide).
    """
    label = _check_label_map(label)
    space.check_ids(label)
    out = label.astype(np.int64)  # a copy: stuff keeps its label id
    for c in np.unique(label):
        if int(c) not in space.thing_ids:
            continue
        components, n = ndimage.label(label == c, structure=_EIGHT_NEIGHBOURS)
        if n > INSTANCE_STRIDE:
            raise GescoInputError(f"class {int(c)} has {n} separate regions; at most {INSTANCE_STRIDE} "
                                  "instances per class can be numbered")
        mask = components > 0
        out[mask] = int(c) * INSTANCE_STRIDE + components[mask] - 1
    return out


__all__ = ["EDGES_DERIVED", "EDGES_NONE", "EDGES_UPLOADED", "EDGE_SOURCES", "INSTANCE_STRIDE", "derive_instances"]
