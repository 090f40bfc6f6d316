"""Mutation check of the core formulas: does the test suite notice a small wrong change?

    OMP_NUM_THREADS=1 python bench/mutation_check.py [--only NAME ...] [--list]

Each entry of :data:`MUTATIONS` is one plausible slip in a formula the project rests on
(Eq. 1 channel noise, FDS Eq. 2, classifier-free guidance, the samplers, the Gaussian
chain, per-image seeds, mixed-batch grouping, bit counts, the contour codec's size, the
instance-edge map, mIoU). For each, the script copies the repository's tracked files to a
temporary folder once, checks the unchanged copy passes the entry's tests (the baseline),
replaces the entry's ``old`` text (which must occur exactly once) by ``new``, runs the
entry's tests on the copy, and restores the file. A mutation is **caught** when the tests
fail and **missed** when they pass: a missed one is a gap in the suite (or an equivalent
change, which the entry's note must then say).

Writes ``bench/results/mutation.json`` and ``bench/results/mutation.md`` (with ``--only``,
nothing is written unless ``--out`` is given). Exit status 1 when a mutation was missed, an
entry is stale (its ``old`` text is not found exactly once) or a baseline fails.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: machine_info (also when loaded by the tests)
from machine_info import describe_machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


@dataclass(frozen=True)
class Mutation:
    """One small wrong change.

    Attributes:
        name: short id (``--only`` takes it).
        area: what it breaks (the formula / paper equation).
        path: file, relative to the repository root.
        old: exact text to replace (must occur once in ``path``).
        new: the wrong text.
        tests: pytest arguments (files or node ids) that should catch it.
    """

    name: str
    area: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


CHANNEL = ("tests/channel/test_awgn.py", "tests/channel/test_authors_code.py")
FDS = ("tests/semantics/test_fds.py",)
GUIDANCE = ("tests/diffusion/test_guidance.py",)
SAMPLERS = ("tests/diffusion/test_samplers.py",)
GAUSSIAN = ("tests/diffusion/test_gaussian.py",)
PIPELINE = ("tests/diffusion/test_pipeline.py",)
CODECS = ("tests/codecs",)
LAYOUT = ("tests/semantics/test_layout.py",)
MIOU = ("tests/evaluate/test_metrics.py",)

MUTATIONS: list[Mutation] = [
    # ------------------------------------------------------------ channel, Eq. (1)
    Mutation("eq1-psnr-over-20", "Eq. 1: sigma^2 = P / 10^(PSNR/10) written with /20 (an amplitude ratio)",
             "gesco/channel/models.py", "torch.pow(10.0, psnr / 10.0)", "torch.pow(10.0, psnr / 20.0)", CHANNEL),
    Mutation("eq1-no-power-normalisation", "Eq. 1: the maps are not normalised to P = 1 before the noise",
             "gesco/channel/models.py", "scale = torch.sqrt(power_in).clamp_min(1e-12)",
             "scale = torch.ones_like(power_in)", CHANNEL),
    Mutation("eq1-receiver-keeps-normalised", "Eq. 1: the receiver does not multiply the symbols back by s",
             "gesco/channel/models.py", "received=(z_rx * scale.view(view).to(z_rx.dtype)).to(x.dtype)",
             "received=z_rx.to(x.dtype)", CHANNEL),
    Mutation("eq1-noise-on-absent-maps", "Eq. 1: noise also lands on the padding (maps not sent)",
             "gesco/channel/models.py",
             "            noise = noise * mask.to(noise.dtype)\n        z_rx = z + noise.to(z.dtype)",
             "            noise = noise * 1.0\n        z_rx = z + noise.to(z.dtype)", CHANNEL),
    Mutation("authors-table-psnr10", "authors' code preset: the PSNR 10 std 0.36 -> 0.3",
             "gesco/channel/models.py", "    10.0: 0.36,", "    10.0: 0.3,", CHANNEL),
    # ------------------------------------------------------------ FDS, Eq. (2)
    Mutation("fds-exclude-pad", "FDS Eq. 2: AvgPool without counting the zero padding",
             "gesco/semantics/fds.py", "count_include_pad=True)", "count_include_pad=False)", FDS),
    Mutation("fds-no-maxpool", "FDS Eq. 2: the MaxPool step left out",
             "gesco/semantics/fds.py", "x = F.max_pool2d(x, kernel_size, stride=1, padding=pad)", "x = x", FDS),
    # ------------------------------------------------------------ guidance
    Mutation("guidance-paper-form", "guidance: eps_y + s (eps_y - eps_0) with the code's s (Eq. 13 vs code convention)",
             "gesco/diffusion/guidance.py", "return eps_0 + guidance_scale * (eps_y - eps_0), v",
             "return eps_y + guidance_scale * (eps_y - eps_0), v", GUIDANCE),
    Mutation("guidance-passes-swapped", "guidance: conditional and unconditional halves swapped",
             "gesco/diffusion/guidance.py", "cond, uncond = out.chunk(2)", "uncond, cond = out.chunk(2)", GUIDANCE),
    Mutation("guidance-variance-unconditional", "guidance: the variance taken from the unconditional pass",
             "gesco/diffusion/guidance.py",
             "eps_y, v = split_output(cond, image_channels)\n        eps_0, _ = split_output(uncond, image_channels)",
             "eps_y, _ = split_output(cond, image_channels)\n        eps_0, v = split_output(uncond, image_channels)",
             GUIDANCE),
    # ------------------------------------------------------------ samplers
    Mutation("x0-sign", "samplers: x0_hat = (x_t + sqrt(1 - abar) eps) / sqrt(abar) (inverse of Eq. 4, sign slip)",
             "gesco/diffusion/samplers.py", "x0 = (x - math.sqrt(1.0 - abar) * eps) / math.sqrt(abar)",
             "x0 = (x + math.sqrt(1.0 - abar) * eps) / math.sqrt(abar)", SAMPLERS),
    Mutation("ddim-eta-sigma", "DDIM: sigma without its sqrt(1 - a/a') factor",
             "gesco/diffusion/samplers.py",
             "sigma = eta * math.sqrt((1.0 - a_prev) / (1.0 - a)) * math.sqrt(1.0 - a / a_prev)",
             "sigma = eta * math.sqrt((1.0 - a_prev) / (1.0 - a))", SAMPLERS),
    Mutation("dpmpp-2m-first-order", "DPM-Solver++(2M): the second-order correction dropped",
             "gesco/diffusion/samplers.py",
             "d_eff = (1.0 + 1.0 / (2.0 * r)) * d - (1.0 / (2.0 * r)) * d_prev", "d_eff = d", SAMPLERS),
    Mutation("dpmpp-sde-noise-scale", "SDE-DPM-Solver++(2M): noise scaled by (1 - e^-2h) instead of its square root",
             "gesco/diffusion/samplers.py", "return x + sigma[i + 1] * math.sqrt(keep) * noise",
             "return x + sigma[i + 1] * keep * noise", SAMPLERS),
    Mutation("ancestral-noise-at-last-step", "ancestral sampler: noise added at the last step too",
             "gesco/diffusion/samplers.py",
             "        if i > 0:\n            x = mean + torch.exp(0.5 * logvar)",
             "        if i >= 0:\n            x = mean + torch.exp(0.5 * logvar)", SAMPLERS),
    Mutation("shared-seed", "per-image seeds: every image's noise drawn from the first image's generator",
             "gesco/diffusion/samplers.py",
             "rows = [torch.randn(tuple(shape[1:]), generator=g, device=g.device",
             "rows = [torch.randn(tuple(shape[1:]), generator=gens[0], device=g.device", SAMPLERS + PIPELINE),
    Mutation("stop-after-cleanest", "early-stop ending: the grid's k cleanest points kept instead of its k noisiest",
             "gesco/diffusion/samplers.py", "grid.respaced(list(range(n - stop_after, n)))",
             "grid.respaced(list(range(stop_after)))", ("tests/diffusion/test_sampler_contract.py",)),
    Mutation("t-range-ignored", "trainer: t drawn from the whole chain whatever t_range says",
             "gesco/train/diffusion.py",
             "t_lo, t_hi = config.t_range if config.t_range is not None else (0, diffusion.num_steps)",
             "t_lo, t_hi = (0, diffusion.num_steps)", ("tests/train/test_diffusion_training.py",)),
    # ------------------------------------------------------------ Gaussian chain
    Mutation("beta-schedule-end", "linear beta schedule ending at 0.01 instead of 0.02",
             "gesco/diffusion/gaussian.py", "torch.linspace(scale * 1e-4, scale * 0.02,",
             "torch.linspace(scale * 1e-4, scale * 0.01,", GAUSSIAN),
    Mutation("posterior-variance-beta", "posterior variance beta_tilde replaced by beta (Eq. 6)",
             "gesco/diffusion/gaussian.py",
             "self.posterior_variance = b * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)",
             "self.posterior_variance = b * 1.0", GAUSSIAN),
    Mutation("learned-variance-half-range", "learned-range variance: frac = (v + 1) / 4",
             "gesco/diffusion/gaussian.py", "frac = (v.clamp(-1, 1) + 1.0) / 2.0", "frac = (v.clamp(-1, 1) + 1.0) / 4.0",
             GAUSSIAN),
    # ------------------------------------------------------------ mixed batches
    Mutation("batch-first-settings", "mixed batch: every group sampled with the first image's settings",
             "gesco/diffusion/pipeline.py", "s0 = per[idx[0]]", "s0 = per[0]", PIPELINE),
    Mutation("group-key-without-eta", "mixed batch: images of another eta grouped together",
             "gesco/diffusion/pipeline.py",
             "self.guidance_scale, self.eta, self.mean_temperature)", "self.guidance_scale, self.mean_temperature)",
             PIPELINE),
    Mutation("group-key-without-mean-temperature", "mixed batch: images of another mean temperature grouped together",
             "gesco/diffusion/pipeline.py",
             "self.eta, self.mean_temperature)", "self.eta)", ("tests/diffusion/test_mean_temperature.py",)),
    Mutation("start-mean-scaled-by-one-minus-tau", "mean temperature: the start's mean scaled by 1 - tau, not tau",
             "gesco/diffusion/samplers.py",
             "return x_T - (1.0 - tau) * x_T.mean(dim=(2, 3), keepdim=True)",
             "return x_T - tau * x_T.mean(dim=(2, 3), keepdim=True)", ("tests/diffusion/test_mean_temperature.py",)),
    Mutation("worker-first-job-settings", "receiver worker: a claimed batch sampled with its first job's settings",
             "receiver/worker.py", "[sampling_settings(p.settings) for p in prepared]",
             "[sampling_settings(prepared[0].settings) for p in prepared]",
             ("tests/services/receiver/test_worker_mixed_batches.py",)),
    # ------------------------------------------------------------ bits
    Mutation("payload-bytes-not-bits", "bit accounting: payload counted in bytes",
             "gesco/codecs/accounting.py", "    payload_bits = 8 * len(frame.payload)\n    if include_simulation_fields:",
             "    payload_bits = len(frame.payload)\n    if include_simulation_fields:", CODECS),
    Mutation("raw-image-8-bits", "image budget: raw RGB counted at 8 bits per pixel instead of 24",
             "gesco/codecs/budget.py", "raw=h * w * 24", "raw=h * w * 8", CODECS),
    Mutation("contour-shift-1", "contour codec: boundaries followed only within 1 pixel (lossless, more bits)",
             "gesco/codecs/contour.py", "MAX_SHIFT = 3", "MAX_SHIFT = 1", CODECS),
    Mutation("rangecoder-slow-adaptation", "range coder: adaptation 1/64 instead of 1/16 (lossless, more bits)",
             "gesco/codecs/rangecoder.py", "MOVE_BITS = 4", "MOVE_BITS = 6", CODECS),
    Mutation("contour-one-mode-context", "contour codec: one mode model instead of one per reference mode (lossless)",
             "gesco/codecs/contour.py", "    return ref_mode << _MODE_BITS", "    return 0 * ref_mode", CODECS),
    Mutation("measured-snr-20log", "channel report: measured SNR as 20 log10 of a power ratio",
             "gesco/channel/models.py",
             "        snr = 10.0 * torch.log10(power / noise_power.clamp_min(1e-300))\n        return ChannelResult(\n"
             "            received=(z_rx",
             "        snr = 20.0 * torch.log10(power / noise_power.clamp_min(1e-300))\n        return ChannelResult(\n"
             "            received=(z_rx", CHANNEL),
    Mutation("guidance-scale-zero-conditional", "guidance scale 0 (unconditional) runs the conditional pass",
             "gesco/diffusion/guidance.py", "return split_output(model(x, t, null), image_channels)",
             "return split_output(model(x, t, y), image_channels)", GUIDANCE),
    Mutation("student-guided-again", "a student with folded guidance guided a second time (two passes per step)",
             "gesco/diffusion/pipeline.py", "return 1.0 if card.distilled is not None else float(guidance_scale)",
             "return float(guidance_scale)", PIPELINE + ("tests/diffusion/test_distill.py",)),
    Mutation("v-parametrisation-sign", "distilled sampler: x0 = alpha x + sigma v (v-parametrisation sign)",
             "gesco/diffusion/samplers.py", "return alpha * x - sigma * pred", "return alpha * x + sigma * pred",
             ("tests/diffusion/test_distill.py",)),
    Mutation("respaced-betas-unchanged", "respaced chain: the original betas kept instead of 1 - abar_i / abar_prev",
             "gesco/diffusion/gaussian.py", "new_betas.append(1.0 - float(self.alphas_cumprod[i]) / last)",
             "new_betas.append(float(self.betas[i]))", GAUSSIAN),
    Mutation("receiver-fds-always", "receiver: FDS applied even when the job turned it off",
             "gesco/link.py", "denoised = fds_filter(maps, kernel) if fds else maps", "denoised = fds_filter(maps, kernel)",
             ("tests/test_link.py", "tests/services/receiver/test_worker_mixed_batches.py")),
    Mutation("job-guidance-dropped", "receiver: a job's guidance scale replaced by the default",
             "gesco/link.py", "guidance_scale=float(self.guidance_scale), seed=int(self.seed))",
             "guidance_scale=2.0, seed=int(self.seed))",
             ("tests/test_link.py", "tests/test_transmit_fields.py", "tests/services/receiver/test_worker_mixed_batches.py")),
    Mutation("pad-edge-map-dropped", "Pad: the instance-edge map not re-inserted",
             "gesco/semantics/layout.py", "out[:, num_classes] = maps[:, k]", "out[:, num_classes] = 0 * maps[:, k]", LAYOUT),
    Mutation("pad-off-by-one", "Pad: present maps re-inserted one class index too low",
             "gesco/semantics/layout.py", "out[:, ids] = maps[:, :k]", "out[:, ids - 1] = maps[:, :k]", LAYOUT),
    Mutation("context-prior-weight", "context codec (the default): prior weight 0.4 -> 1.0 (lossless, other bits)",
             "gesco/codecs/context.py", "\nPRIOR = 0.4", "\nPRIOR = 1.0", CODECS),
    # ------------------------------------------------------------ layout
    Mutation("edges-horizontal-only", "instance edges: vertical neighbours ignored (4-neighbourhood)",
             "gesco/semantics/layout.py", "    edge[1:, :] |= dv\n    edge[:-1, :] |= dv\n", "", LAYOUT),
    # ------------------------------------------------------------ mIoU
    Mutation("miou-no-false-positives", "mIoU: false positives left out of the union",
             "gesco/semantics/miou.py", "fp = cm.sum(axis=0) - tp", "fp = 0 * tp", MIOU),
    Mutation("miou-ignored-pixels-scored", "mIoU: pixels of ignored target ids counted",
             "gesco/semantics/miou.py", "keep = self._scored[tgt]", "keep = np.ones_like(tgt, dtype=bool)", MIOU),
    Mutation("miou-absent-classes-zero", "mIoU: classes absent from prediction and target count as IoU 0",
             "gesco/semantics/miou.py", "present = [v for v in per_class.values() if v is not None]",
             "present = [0.0 if v is None else v for v in per_class.values()]", MIOU),
]


def copy_repository(dest: Path) -> None:
    """Copy the repository's tracked files (as they are in the work tree) to ``dest``."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout.split(b"\0")
    for raw in names:
        if not raw:
            continue
        rel = raw.decode()
        src = REPO / rel
        if not src.is_file():  # deleted in the work tree
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)


def run_tests(root: Path, tests: tuple[str, ...], timeout_s: float) -> dict:
    """Run ``tests`` on the copy at ``root``; returns rc, seconds and the last summary line."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                             cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
        rc, out = run.returncode, run.stdout + run.stderr
    except subprocess.TimeoutExpired:
        rc, out = -1, f"timed out after {timeout_s:.0f} s"
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith("FAILED") or ln.startswith("ERROR")]
    return {"rc": rc, "seconds": round(time.perf_counter() - t0, 1), "summary": lines[-1] if lines else "",
            "first_failure": failed[0] if failed else None}


def check(mutations: list[Mutation], timeout_s: float) -> dict:
    """Baselines, then every mutation; returns the results document."""
    rows, baselines = [], {}
    with tempfile.TemporaryDirectory(prefix="gesco-mutation-") as tmp:
        root = Path(tmp)
        copy_repository(root)
        for tests in sorted({m.tests for m in mutations}):
            baselines[" ".join(tests)] = base = run_tests(root, tests, timeout_s)
            print(f"baseline {' '.join(tests)}: rc {base['rc']} ({base['seconds']} s) {base['summary']}", flush=True)
        for m in mutations:
            path = root / m.path
            text = path.read_text()
            count = text.count(m.old)
            row = {**asdict(m), "tests": list(m.tests)}
            if count != 1:
                row.update(status="stale", detail=f"'old' text found {count} times in {m.path}")
            elif baselines[" ".join(m.tests)]["rc"] != 0:
                row.update(status="baseline-fails", detail=baselines[" ".join(m.tests)]["summary"])
            else:
                path.write_text(text.replace(m.old, m.new))
                try:
                    res = run_tests(root, m.tests, timeout_s)
                finally:
                    path.write_text(text)
                status = "missed" if res["rc"] == 0 else "caught"
                row.update(status=status, detail=res["first_failure"] or res["summary"], seconds=res["seconds"], rc=res["rc"])
            print(f"{row['status']:>14}  {m.name}  ({row.get('seconds', '-')} s) {row['detail']}", flush=True)
            rows.append(row)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("caught", "missed", "stale", "baseline-fails")}
    return {"machine": describe_machine(), "python": platform.python_version(), "mutations": rows, "baselines": baselines,
            "counts": counts, "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}




def markdown(doc: dict) -> str:
    c = doc["counts"]
    lines = ["# Mutation check of the core formulas", "",
             f"`python bench/mutation_check.py` on {doc['machine']}, {doc['date_utc']} UTC.", "",
             f"**{c['caught']} caught, {c['missed']} missed** of {len(doc['mutations'])} mutations "
             f"({c['stale']} stale, {c['baseline-fails']} with a failing baseline).", "",
             "| mutation | what it breaks | status | tests run | first failure |", "|---|---|---|---|---|"]
    for r in doc["mutations"]:
        detail = (r["detail"] or "").replace("|", "\\|")
        if len(detail) > 110:
            detail = detail[:107] + "..."
        lines.append(f"| `{r['name']}` | {r['area']} | {r['status']} | {', '.join(r['tests'])} | {detail} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    p.add_argument("--list", action="store_true", help="list the mutations and exit")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per test run")
    p.add_argument("--out", type=Path, help="results folder (default bench/results; with --only: none)")
    args = p.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTATIONS}
        if unknown:
            p.error(f"unknown mutations {sorted(unknown)}; --list shows them")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:32} {m.area}")
        return 0
    doc = check(chosen, args.timeout)
    out = args.out or (None if args.only else RESULTS)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "mutation.json").write_text(json.dumps(doc, indent=1) + "\n")
        (out / "mutation.md").write_text(markdown(doc))
        print(f"wrote {out / 'mutation.json'} and {out / 'mutation.md'}")
    c = doc["counts"]
    print(f"{c['caught']} caught, {c['missed']} missed, {c['stale']} stale, {c['baseline-fails']} baseline failures")
    return 0 if c["missed"] == c["stale"] == c["baseline-fails"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
