"""The sampler study's automatic choice (:func:`gesco.evaluate.report.sampler_choice`) on hand-made summaries."""

from __future__ import annotations

from gesco.evaluate.report import FD_REL_TOLERANCE, _Index, sampler_choice

SCENES = list(range(8))


def _row(key: str, sampler: str, steps: int) -> dict:
    return {"method": {"key": key, "kind": "semantic"}, "status": "ok", "sampler": sampler, "steps": steps, "nfe": steps}


def _entry(key: str, miou: list[float], lpips: list[float], fd: float) -> dict:
    return {"row": key, "psnr": 100.0, "n": len(SCENES), "scenes": SCENES, "fd": fd, "fd_n": len(SCENES),
            "miou_mean": sum(miou) / len(miou), "per_scene": {"miou": miou, "lpips": lpips}}


def _choose(candidates: dict[str, tuple[float, float, float]]):
    """``candidates``: key -> (mIoU shift, LPIPS shift, FD) against a reference with FD 20."""
    base_miou = [0.40 + 0.01 * i for i in SCENES]
    base_lpips = [0.45 - 0.01 * i for i in SCENES]
    rows = [_row("ancestral-1000", "ancestral", 1000)]
    entries = [_entry("ancestral-1000", base_miou, base_lpips, 20.0)]
    for key, (dm, dl, fd) in candidates.items():
        sampler, steps = key.rsplit("-", 1)
        rows.append(_row(key, sampler, int(steps)))
        entries.append(_entry(key, [m + dm for m in base_miou], [x + dl for x in base_lpips], fd))
    return sampler_choice(_Index(entries), {"rows": rows, "psnrs": [100.0]})


def test_cheapest_matching_sampler_wins():
    choice = _choose({"ddim-10": (-0.002, 0.002, 21.0), "respaced-50": (0.0, 0.0, 20.0)})
    assert choice["choice"] == "ddim-10"


def test_mean_shift_beyond_tolerance_disqualifies():
    # a constant shift has zero paired standard error: the 0.01 floor decides
    choice = _choose({"ddim-10": (-0.05, 0.0, 20.0), "respaced-50": (0.0, 0.0, 20.0)})
    assert choice["choice"] == "respaced-50"


def test_frechet_distance_above_the_relative_tolerance_disqualifies():
    too_far = 20.0 * (1 + FD_REL_TOLERANCE) * 1.01
    choice = _choose({"ddim-10": (0.0, 0.0, too_far), "respaced-50": (0.0, 0.0, 20.0)})
    assert choice["choice"] == "respaced-50"
    ddim = next(v for v in choice["verdicts"] if v["row"] == "ddim-10")
    assert ddim["details"]["100"]["fd"]["match"] is False and ddim["details"]["100"]["miou"]["match"] is True


def test_no_match_gives_no_choice():
    choice = _choose({"ddim-10": (-0.2, 0.2, 60.0)})
    assert choice["choice"] is None and "no few-step configuration" in choice["reason"]
