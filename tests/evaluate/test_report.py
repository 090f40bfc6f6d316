"""The sampler study's automatic choice (:func:`gesco.evaluate.report.sampler_choice`) on hand-made summaries."""

from __future__ import annotations

from gesco.evaluate.report import FD_REL_TOLERANCE, ResultIndex, few_step_verdicts, sampler_choice

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
    return sampler_choice(ResultIndex(entries), {"rows": rows, "psnrs": [100.0]})


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


def _choose_with_passes(candidates: dict[str, tuple[float, int]]):
    """``candidates``: key -> (mIoU shift, passes per image) against a reference with FD 20 (same FD for all)."""
    base_miou = [0.40 + 0.01 * i for i in SCENES]
    base_lpips = [0.45 - 0.01 * i for i in SCENES]
    rows = [_row("ancestral-1000", "ancestral", 1000)]
    entries = [_entry("ancestral-1000", base_miou, base_lpips, 20.0)]
    for key, (dm, passes) in candidates.items():
        sampler, steps = key.removeprefix("student-").rsplit("-", 1)
        rows.append({**_row(key, sampler, int(steps)), "passes": passes})
        rows[-1]["method"]["label"] = key
        entries.append(_entry(key, [m + dm + (0.004 if i % 2 else -0.004) for i, m in enumerate(base_miou)],
                              base_lpips, 20.0))
    return sampler_choice(ResultIndex(entries), {"rows": rows, "psnrs": [100.0]})


def test_the_cheapest_in_passes_wins_and_the_few_step_target_is_absolute():
    # guided SDE at 8 steps (16 passes) and the student at 8 steps (8 passes) both match
    choice = _choose_with_passes({"dpmpp-2m-sde-8": (0.0, 16), "student-dpmpp-2m-sde-8": (-0.005, 8)})
    assert choice["choice"] == "student-dpmpp-2m-sde-8" and choice["passes"] == 8
    few = few_step_verdicts(choice)
    assert [v["row"] for v in few] == ["student-dpmpp-2m-sde-8"] and few[0]["meets"]  # 16 passes: not a candidate
    # 0.025 below the reference: more than the absolute 0.02 of the target, whatever the standard error
    few = few_step_verdicts(_choose_with_passes({"student-dpmpp-2m-sde-8": (-0.025, 8)}))
    assert not few[0]["meets"] and few[0]["details"]["100"]["miou_ok"] is False
    assert few[0]["details"]["100"]["fd_ok"] is True and abs(few[0]["details"]["100"]["miou_delta"] + 0.025) < 1e-9
