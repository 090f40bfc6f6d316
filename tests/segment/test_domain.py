"""The out-of-domain score: the shipped segmenter is sure of the synthetic streets and
unsure of a real photo (matplotlib's sample portrait of Grace Hopper)."""

from __future__ import annotations

import numpy as np
import pytest

from gesco.data.aspect import fit_aspect
from gesco.segment.domain import DEFAULT_DOMAIN_THRESHOLD, domain_report, segment_scored


def test_score_is_the_mean_max_softmax_over_content_pixels():
    conf = np.array([[0.2, 0.4], [1.0, 1.0]], np.float32)
    r = domain_report(conf, threshold=0.7)
    assert r.scored and r.score == pytest.approx(0.65) and r.confident_fraction == 0.5
    assert r.out_of_domain and "does not look like a street scene" in r.message
    assert "send a label map" in r.message.lower()
    inside = domain_report(conf, threshold=0.7, content=np.array([[False, False], [True, True]]))
    assert inside.score == 1.0 and not inside.out_of_domain and inside.message is None


def test_labels_only_segmenter_is_not_scored_and_says_so():
    r = domain_report(None)
    assert not r.scored and r.score is None and not r.out_of_domain and "not scored" in r.message


def test_a_segmenter_without_scores_still_segments():
    class LabelsOnly:  # test double: the Segmenter protocol's predict_numpy alone
        def predict_numpy(self, image):
            return np.zeros(image.shape[:2], np.uint8)

    labels, conf = segment_scored(LabelsOnly(), np.zeros((4, 8, 3), np.uint8))
    assert labels.shape == (4, 8) and conf is None


@pytest.fixture(scope="module")
def shipped():
    from gesco.segment import Segmenter

    return Segmenter.load()


def _score(seg, image):
    image, _, _, fit = fit_aspect(image, None, None, seg.resolution, "crop")
    _, conf = segment_scored(seg, image)
    return domain_report(conf, DEFAULT_DOMAIN_THRESHOLD, fit.content_mask())


def test_synthetic_streets_are_in_domain(shipped):
    from gesco.data.synthetic import generate_scene, split_seed

    for i in range(5):
        r = _score(shipped, generate_scene(split_seed("test", i)).image)
        assert r.scored and not r.out_of_domain, r


def test_a_portrait_photo_is_out_of_domain(shipped):
    import cv2
    from matplotlib import cbook

    bgr = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    r = _score(shipped, np.ascontiguousarray(bgr[:, :, ::-1]))
    assert r.out_of_domain and r.score < DEFAULT_DOMAIN_THRESHOLD, r
