"""``gesco evaluate``: the paper's tables on the synthetic test scenes (and the sampler study).

Every choice (sampler, steps, checkpoint, threshold) is made on the validation split
(``--split val``; the sampler study's default), the test split is touched once per
reported table (the default of the paper's tables).

    gesco evaluate                                   # 100 test scenes, PSNR 1 5 10 15 20 30 100, every row
    gesco evaluate --split val --scenes 50 --psnr 1 100 --methods real,ours-fast --edges derived
    gesco evaluate --scenes 20 --psnr 10 100 --methods ours,full-image,real --out runs/eval-small
    gesco evaluate --study samplers                  # quality against network evaluations
    gesco evaluate --methods digital --channel rayleigh --scenes 25 --psnr 1 5 10 20 30 100 --out runs/eval-digital-rayleigh
    gesco evaluate --report-only --out runs/eval     # rebuild the report from the stored results
    gesco evaluate --scenes 100 --no-run --out runs/eval  # one report of several partial runs (no evaluation)

Interrupt it at any time: the same command resumes, skipping finished images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gesco.commands.registries import CLI_REGISTRIES
from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS, GUIDED_SAMPLER, GUIDED_STEPS, PAPER_PSNRS_DB
from gesco.sampler_specs import FEW_STEP_SAMPLERS, GUIDANCE_ONLY_SAMPLERS
from gesco.transmit_fields import FIELDS, cli_help, cli_type, default

DEFAULT_OUT = "runs/eval"
DEFAULT_SAMPLER_OUT = "runs/eval-samplers"


def register(sub: argparse._SubParsersAction) -> None:
    from gesco.evaluate.methods import CHECKPOINT_ROLES, DEFAULT_METHODS, METHODS

    p = sub.add_parser(
        "evaluate",
        help="evaluate GESCO and its baselines on the synthetic test scenes (Tables 1-3, 5, bits)",
        description="Evaluate every row at every PSNR on the synthetic test scenes and write a report "
                    "(markdown, CSV, JSON, plots, sample grids). Resumable: rerun the same command after an interruption.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="rows: " + "; ".join(f"{k} = {m.label}" for k, m in METHODS.items())
               + "\ncheckpoint roles: " + "; ".join(f"{r.role} = checkpoints/{r.stem} ({r.description})"
                                                  for r in CHECKPOINT_ROLES.values()),
    )
    _add_scene_flags(p)
    _add_row_flags(p, DEFAULT_METHODS)
    _add_channel_flags(p)
    _add_sampling_flags(p)
    _add_run_flags(p)
    p.set_defaults(handler=lambda args: _evaluate(args, p))


def _add_scene_flags(p: argparse.ArgumentParser) -> None:
    """What is evaluated: the study, the split, the data set, the scene count, the edge maps, the PSNRs."""
    p.add_argument("--study", choices=("channel", "samplers"), default="channel",
                   help="channel: the paper's tables (default); samplers: mIoU / LPIPS against network evaluations")
    p.add_argument("--split", default=None, choices=("val", "validation", "test"),
                   help="synthetic split of the scenes: val (= validation) for every choice (sampler, steps, "
                        "checkpoints, thresholds), test once per reported table (default: test for the paper's "
                        "tables, val for --study samplers, which serves choices; docs/evaluation.md#splits)")
    p.add_argument("--dataset", default="synthetic", choices=("synthetic", "cityscapes"),
                   help="scenes: synthetic (generated; default) or cityscapes (files under --root in Cityscapes' layout, "
                        "the first --scenes images of --split sorted by name; use --split val)")
    p.add_argument("--root", default=None, help="the data set's folder (with --dataset cityscapes)")
    p.add_argument("--scenes", type=int, default=None,
                   help="number of scenes of --split (default 100; 20 for --study samplers)")
    p.add_argument("--edges", default="uploaded", choices=("uploaded", "derived", "none"),
                   help="instance-edge map the semantic rows send: uploaded (the scenes' ground-truth instance maps, "
                        "as GESCO; default), derived (what the sender derives from the label map when no instance "
                        "map is uploaded), none")
    p.add_argument("--psnr", type=cli_type("psnr_db"), nargs="+", default=None, metavar="DB",
                   help=f"channel PSNRs in dB (default {' '.join(f'{x:g}' for x in PAPER_PSNRS_DB)}; "
                        "100 10 for --study samplers)")


def _add_row_flags(p: argparse.ArgumentParser, default_methods: tuple[str, ...]) -> None:
    """The rows and the networks they use: methods, checkpoints, the mIoU segmenter, the Inception weights."""
    p.add_argument("--methods", default=",".join(default_methods),
                   help="comma-separated rows (default: all but authors-code and the digital rows; 'digital' = the "
                   "digital comparison: real, full-image, ours, equal-uses and the digital rows, needs [sionna]); see below")
    p.add_argument("--checkpoint", action="append", default=[], metavar="ROLE=PATH",
                   help="use another diffusion checkpoint for a role (ours, clean, nofds); repeatable")
    p.add_argument("--segmenter", default=None, metavar="PATH",
                   help="mIoU segmenter: gesco checkpoint, TorchScript or ONNX (default: the shipped one)")
    p.add_argument("--inception", default=None, metavar="PATH",
                   help="pytorch-fid Inception weights (pt_inception-2015-12-05-6726825d.pth) for the standard FID; "
                        "without it a named substitute Frechet distance is reported (never called FID)")


def _add_channel_flags(p: argparse.ArgumentParser) -> None:
    """The channel model (checked against the models' names when parsed) and the digital rows' link."""
    p.add_argument("--channel", default=default("channel"), type=cli_type("channel", CLI_REGISTRIES[FIELDS["channel"].registry]),
                   help=cli_help("channel") + "; an unknown name is refused with the list")
    p.add_argument("--channel-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the channel model, repeatable (e.g. block_length=64)")
    p.add_argument("--ldpc-iterations", type=int, default=20, help="digital rows: LDPC BP iterations (default 20)")
    p.add_argument("--mcs-gap", type=float, default=3.5,
                   help="digital rows: rate-adaptation gap to capacity in dB (default 3.5; gesco.digital.mcs)")
    p.add_argument("--digital-budget", type=float, default=3.0,
                   help="digital JPEG / WebP rows: channel uses per pixel the file must fit (default 3, the full image's)")


def _add_sampling_flags(p: argparse.ArgumentParser) -> None:
    """The receiver's sampling of the rows, and the sampler study's samplers and step counts
    (the default list from the registry, :data:`gesco.sampler_specs.FEW_STEP_SAMPLERS`)."""
    p.add_argument("--sampler", default=GUIDED_SAMPLER, choices=FIELDS["sampler"].choices,
                   help=f"receiver sampler of the rows without their own (default {GUIDED_SAMPLER}, the guided model's; "
                        f"the ours-fast row samples the student with {DEFAULT_SAMPLER}, {DEFAULT_STEPS} steps)")
    p.add_argument("--steps", type=cli_type("steps"), default=GUIDED_STEPS,
                   help=f"sampling steps of the rows without their own; "
                   f"{cli_help('steps', str(GUIDED_STEPS)).lower()}")
    p.add_argument("--guidance", type=cli_type("guidance_scale"), default=default("guidance_scale"),
                   help=cli_help("guidance_scale"))
    p.add_argument("--sampler-steps", type=int, nargs="+", default=None, metavar="N",
                   help="--study samplers: step counts of the few-step samplers (default 10 20 50)")
    p.add_argument("--study-samplers", nargs="+", default=None, metavar="NAME",
                   help=f"--study samplers: the few-step samplers to compare (default {' '.join(FEW_STEP_SAMPLERS)}; "
                        "any of them prefixed 'unguided-' runs without guidance, prefixed 'student-' "
                        f"({', '.join(GUIDANCE_ONLY_SAMPLERS)}) on the guidance-distilled student, checkpoint role "
                        "'student')")
    p.add_argument("--no-reference", action="store_true",
                   help="--study samplers: skip the 1000-step ancestral reference (slow on a CPU)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--mean-temperature", type=float, default=None, metavar="TAU",
                   help="scale of the starting noise's per-channel mean, in [0, 1] (1: the paper's sampling; "
                        "default: each checkpoint's recommendation, else 1; docs/colour/README.md section 6)")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """Where and how the evaluation runs: output, device, batches, report-only / no-run, the shared store."""
    p.add_argument("--out", default=None, help=f"output folder (default {DEFAULT_OUT}, {DEFAULT_SAMPLER_OUT} for samplers)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--batch-size", type=int, default=16, help="images per sampling call (default 16)")
    p.add_argument("--grid-scenes", type=int, default=3, help="scenes shown in sample grids (default 3)")
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from the stored results")
    p.add_argument("--no-run", action="store_true",
                   help="evaluate nothing: write the report of these scenes, PSNRs and rows from the results already "
                        "in --out (to combine partial runs into one report; unfinished cells show (n=k) or 'not run')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--store", default=None, metavar="URL",
                   help="postgresql://user@host:port/db: share the results with other workers running the same "
                   "command (other GPUs or machines); each claims cells (row x PSNR x block of --batch-size scenes) "
                   "and the sweep resumes after any of them dies (docs/evaluation.md)")
    p.add_argument("--sweep", default=None, help="name of the sweep in --store (default: the --out folder's name)")
    p.add_argument("--lease-s", type=float, default=900.0,
                   help="with --store: a claimed cell is taken over by another worker this long after its claim "
                   "(default 900; longer than one batch takes)")


def canonical_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """``gesco evaluate`` with every option that differs from its default, as a shell command.

    This is the command recorded in the report: rerunning it reproduces the report
    (whatever way the evaluation was started, e.g. ``python -m gesco.cli``).
    """
    import shlex

    words = ["gesco", "evaluate"]
    for action in parser._actions:
        # where the results are kept and who computes them do not change the numbers (and a URL may hold a password)
        if not action.option_strings or action.dest in ("help", "report_only", "no_progress", "store", "sweep", "lease_s"):
            continue
        value = getattr(args, action.dest, None)
        if value == action.default or value is None:
            continue
        flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
        if action.nargs == 0:  # store_true
            words.append(flag)
        elif isinstance(value, list):
            if action.nargs in ("+", "*"):
                words += [flag] + [f"{v:g}" if isinstance(v, float) else str(v) for v in value]
            else:  # append
                for v in value:
                    words += [flag, str(v)]
        else:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return " ".join(shlex.quote(w) for w in words)


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gesco.channel import parse_channel_params
    from gesco.errors import GescoInputError
    from gesco.evaluate.config import EvalConfig
    from gesco.evaluate.methods import expand_methods, parse_checkpoint_overrides
    from gesco.evaluate.runner import run_evaluation
    from gesco.evaluate.sampler_study import (
        FEW_STEP_SAMPLERS,
        STUDY_PSNRS,
        STUDY_SCENES,
        STUDY_STEPS,
        run_sampler_study,
        sampler_rows,
    )

    samplers = args.study == "samplers"
    out = Path(args.out or (DEFAULT_SAMPLER_OUT if samplers else DEFAULT_OUT))
    if args.report_only:
        return _report_only(out)
    methods = expand_methods(tuple(m.strip() for m in args.methods.split(",") if m.strip()))
    if not methods:
        raise GescoInputError("--methods is empty")
    config = EvalConfig(
        out=out,
        scenes=args.scenes if args.scenes is not None else (STUDY_SCENES if samplers else 100),
        psnrs=tuple(args.psnr) if args.psnr else (STUDY_PSNRS if samplers else PAPER_PSNRS_DB),
        methods=methods,
        checkpoints=parse_checkpoint_overrides(args.checkpoint),
        split=resolve_split(args.split, samplers),
        edges=args.edges,
        channel=args.channel,
        channel_params=parse_channel_params(args.channel, json.dumps(_key_values(args.channel_param)))
        if args.channel_param else {},
        ldpc_iterations=args.ldpc_iterations,
        mcs_gap_db=args.mcs_gap,
        digital_budget=args.digital_budget,
        sampler=args.sampler,
        steps=args.steps,
        guidance_scale=args.guidance,
        seed=args.seed,
        mean_temperature=args.mean_temperature,
        device=args.device,
        batch_size=args.batch_size,
        segmenter=args.segmenter,
        inception=args.inception,
        grid_scenes=args.grid_scenes,
        progress=not args.no_progress,
        command=canonical_command(args, parser),
        compute=not args.no_run,
        dataset=args.dataset,
        root=args.root,
        store=args.store,
        sweep=args.sweep,
        lease_s=args.lease_s,
    )
    if samplers:
        rows = sampler_rows(samplers=tuple(args.study_samplers or FEW_STEP_SAMPLERS),
                            steps=tuple(args.sampler_steps or STUDY_STEPS), reference=not args.no_reference)
        outcome = run_sampler_study(config, rows)
    else:
        outcome = run_evaluation(config)
    missing = [p.method.key for p in outcome.rows if p.status != "ok" and p.method.key in config.methods]
    if args.no_run:
        print(f"--no-run: evaluated nothing; the report covers the {outcome.units_skipped} stored images of this plan")
    else:
        print(f"evaluated {outcome.units_run} images ({outcome.units_skipped} already done) into {outcome.out}")
    if missing:
        print(f"missing rows (no checkpoint; see the report for the commands): {', '.join(missing)}")
    print(f"report: {outcome.report['markdown']}")
    return 0


def resolve_split(split: str | None, samplers: bool) -> str:
    """The split to evaluate: ``--split`` (``validation`` = ``val``), else ``val`` for the
    sampler study (it serves choices) and ``test`` for the paper's tables."""
    if split is None:
        return "val" if samplers else "test"
    return "val" if split == "validation" else split


def _key_values(items: list[str]) -> dict[str, str]:
    from gesco.errors import GescoInputError

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise GescoInputError(f"--channel-param expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _report_only(out: Path) -> int:
    from gesco.errors import GescoInputError
    from gesco.evaluate.report import write_report
    from gesco.evaluate.store import ResultStore

    db = out / "results.sqlite"
    if not db.is_file():
        raise GescoInputError(f"{db} does not exist: run gesco evaluate with --out {out} first")
    with ResultStore(db) as store:
        if store.get_meta("plan") is None:
            raise GescoInputError(f"{db} holds no finished run plan; run gesco evaluate with --out {out} first")
        paths = write_report(out, store)
    print(f"report: {paths['markdown']}")
    return 0
