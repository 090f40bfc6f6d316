"""Is an upload inside the segmenter's domain? A score from the segmenter's own confidence.

When no label map is uploaded the sender segments the image; a segmenter trained on
street scenes labels anything (a portrait, a cat) as street classes without complaint,
and the receiver then generates a street scene that resembles nothing of the upload. The
score measures how sure the segmenter is:

    score = mean over content pixels p of max_c softmax(logits)[c, p]      in [1/C, 1]

(content pixels: all but letterbox bars). An upload with ``score < threshold`` is *out of
domain*: the sender still transmits it (nothing accepted is lost) but says so in its
reply, the receiver's result and ``gesco send``. :data:`DEFAULT_DOMAIN_THRESHOLD` was
chosen on the shipped segmenter (``python scripts/measure_domain_score.py``; numbers in
``docs/segmenter.md``): the 100 synthetic test scenes score 0.90-0.95 (0.88 at the lowest
as JPEG, blurred or noisy), scikit-image's photos (astronaut, coffee, chelsea, rocket)
0.67-0.72 and a scanned text page 0.83; 0.85 lies in the gap.

A segmenter that outputs labels instead of logits cannot be scored; the report says
``scored = False`` and why, rather than claiming the upload is in domain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gesco.errors import GescoInputError

#: mean max-softmax below which an upload is out of the segmenter's domain
DEFAULT_DOMAIN_THRESHOLD = 0.85
#: a pixel counts as confident at this max-softmax (for ``confident_fraction``)
CONFIDENT_PIXEL = 0.9


@dataclass(frozen=True)
class DomainReport:
    """How far an upload is from the segmenter's domain.

    Attributes:
        scored: the segmenter gave probabilities (logits); otherwise nothing below is measured.
        score: mean max-softmax over the content pixels (``None`` when not scored).
        confident_fraction: fraction of content pixels with max-softmax >= :data:`CONFIDENT_PIXEL`.
        threshold: the threshold applied.
        out_of_domain: ``score < threshold``.
        message: what the user should know (``None`` for an in-domain upload).
    """

    scored: bool
    score: float | None
    confident_fraction: float | None
    threshold: float
    out_of_domain: bool
    message: str | None


def check_threshold(threshold: float) -> float:
    if not (0.0 <= float(threshold) <= 1.0):
        raise GescoInputError(f"domain threshold must be in [0, 1], got {threshold}")
    return float(threshold)


def out_of_domain_message(score: float, threshold: float, segmenter_source: str = "") -> str:
    """The sentence shown to the user for an out-of-domain upload."""
    shipped = not segmenter_source or "segmenter-synthetic" in segmenter_source
    who = ("the shipped segmenter only knows synthetic street scenes" if shipped
           else f"the segmenter ({segmenter_source}) is unsure of most pixels")
    return (f"this image does not look like a street scene (segmenter confidence {score:.2f}, below {threshold:.2f}): "
            f"{who}, so the generated image will not resemble it. Send a label map (--label) or plug in a "
            "segmenter for your images (GESCO_SENDER_SEGMENTER, docs/segmenter.md)")


def domain_report(confidence: np.ndarray | None, threshold: float = DEFAULT_DOMAIN_THRESHOLD,
                  content: np.ndarray | None = None, segmenter_source: str = "") -> DomainReport:
    """Score an upload from the segmenter's per-pixel confidence.

    Args:
        confidence: ``(H, W)`` float max-softmax per pixel, or ``None`` (a labels-only model).
        threshold: out of domain below this mean.
        content: optional ``(H, W)`` bool, the pixels that belong to the upload (letterbox bars excluded).
        segmenter_source: where the segmenter came from (for the message).
    """
    threshold = check_threshold(threshold)
    if confidence is None:
        return DomainReport(False, None, None, threshold, False,
                            "not scored: the segmenter outputs labels, not logits, so its confidence is unknown")
    c = np.asarray(confidence, dtype=np.float64)
    if content is not None:
        c = c[np.asarray(content, dtype=bool)]
    if c.size == 0:
        raise GescoInputError("no content pixels to score")
    score = float(c.mean())
    confident = float((c >= CONFIDENT_PIXEL).mean())
    out = score < threshold
    return DomainReport(True, round(score, 4), round(confident, 4), threshold, out,
                        out_of_domain_message(score, threshold, segmenter_source) if out else None)


def segment_scored(segmenter, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and per-pixel confidence of ``image`` (``(H, W, 3)`` uint8).

    Uses the segmenter's ``predict_numpy_scored`` when it has one
    (:class:`gesco.segment.segmenter.Segmenter` does); any other object with
    ``predict_numpy`` gives labels and ``None`` (not scored).
    """
    scored = getattr(segmenter, "predict_numpy_scored", None)
    if scored is not None:
        labels, confidence = scored(image)
        return np.asarray(labels), None if confidence is None else np.asarray(confidence)
    return np.asarray(segmenter.predict_numpy(image)), None
