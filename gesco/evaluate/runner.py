"""The evaluation loop: every row at every PSNR on the test scenes, scored and stored.

For each row (:mod:`gesco.evaluate.methods`, planned in :mod:`gesco.evaluate.plan`), PSNR
and scene ``i`` of the split (:func:`gesco.data.synthetic.generate_scene` at the model's
resolution), one batch function makes the output images:

* the real, "Full image" and semantic rows: :mod:`gesco.evaluate.rows` (the semantic rows
  call the services' own stages: sender, channel, receiver, guided sampling);
* the digital rows send a file or the semantic frame through CRC + 5G LDPC + QAM
  (:mod:`gesco.evaluate.digital_rows`, :mod:`gesco.digital`).

Each output image is scored against the real scene (:class:`gesco.evaluate.scoring.Scorers`):
mIoU of the segmenter's prediction against the transmitted label map, LPIPS, SSIM, the colour
errors against the sent image over its label map (:func:`gesco.evaluate.metrics.colour_errors`),
and its Frechet features (the distance itself needs whole sets; :mod:`gesco.evaluate.report`
computes it).

Reproducibility: scene ``i`` uses the seed ``seed * 100000 + i``
(:func:`gesco.evaluate.config.scene_seed`) for the channel noise and the sampling noise, at
every PSNR and for every row (common random numbers). Results go to a SQLite store per image
(:class:`gesco.evaluate.store.ResultStore`), so a restart skips what is done.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gesco.devices import resolve_device
from gesco.errors import GescoInputError
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.context import EvalContext
from gesco.evaluate.digital_rows import digital_image_batch, digital_maps_batch
from gesco.evaluate.methods import Method, select_methods
from gesco.evaluate.plan import RowPlan, plan_rows, resolve_resolution, row_meta
from gesco.evaluate.rows import full_image_batch, real_batch, semantic_batch
from gesco.evaluate.scoring import Scorers, SegmenterLike, load_scorers
from gesco.evaluate.store import ResultStore, UnitResult
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.instances import EDGES_UPLOADED

#: one batch function per row kind (:attr:`gesco.evaluate.methods.Method.kind`):
#: ``(context, plan, psnr, scene indices) -> results``
BatchFn = Callable[[EvalContext, RowPlan, Any, list[int]], list[UnitResult]]
BATCH_FNS: dict[str, BatchFn] = {
    "real": real_batch, "full-image": full_image_batch, "semantic": semantic_batch,
    "digital-image": digital_image_batch, "digital-maps": digital_maps_batch,
}


# --------------------------------------------------------------------------- the loop
@dataclass
class EvaluationOutcome:
    """What :func:`run_evaluation` did.

    Attributes:
        out: the output folder; ``units_run``: images evaluated by this call;
        ``units_skipped``: images found already done in the store; ``rows``: the plan of
        every row; ``report``: paths of the written report files (see
        :func:`gesco.evaluate.report.write_report`).
    """

    out: Path
    units_run: int
    units_skipped: int
    rows: list[RowPlan]
    report: dict[str, Path]


def _pending(store: ResultStore, plans: list[RowPlan], config: EvalConfig) -> list[tuple[RowPlan, float | None, list[int]]]:
    todo = []
    for plan in plans:
        if plan.status != "ok":
            continue
        psnrs: list[float | None] = [None] if plan.method.kind == "real" else list(config.psnrs)
        for psnr in psnrs:
            done = store.done(plan.method.key, psnr)
            left = [i for i in range(config.scenes) if i not in done]
            if left:
                todo.append((plan, psnr, left))
    return todo


def open_result_store(config: EvalConfig) -> ResultStore:
    """``<out>/results.sqlite``, or with ``config.store`` the sweep's shared Postgres store
    (:mod:`gesco.evaluate.shared_store`; sweep name ``config.sweep``, else the ``--out`` folder's name)."""
    if not config.store:
        return ResultStore(Path(config.out) / "results.sqlite")
    import os
    import socket

    from gesco.evaluate.shared_store import PostgresResultStore

    return PostgresResultStore(config.store, config.sweep or Path(config.out).name,
                               worker=f"{socket.gethostname()}:{os.getpid()}", lease_s=config.lease_s)


def _run_shared_cells(store: ResultStore, plans: list[RowPlan], config: EvalConfig, ctx: EvalContext,
                      batch_fn: dict[str, BatchFn], bar: Any, poll_s: float = 2.0) -> int:
    """Evaluate the cells (row x PSNR x block of ``batch_size`` scenes) this worker can claim,
    then wait for the cells other workers hold, taking over any whose lease expired.
    Returns the images this worker evaluated."""
    ran, bs = 0, config.batch_size
    while todo := _pending(store, plans, config):
        progressed = False
        for plan, psnr, left in todo:
            for block in sorted({i // bs for i in left}):
                if not store.claim_cell(plan.method.key, psnr, block):
                    continue  # another worker holds it
                idx = [i for i in left if i // bs == block]
                bar.set_postfix_str(f"{plan.method.key} @ {'-' if psnr is None else f'{psnr:g} dB'} block {block}")
                store.add(batch_fn[plan.method.kind](ctx, plan, psnr, idx))
                store.finish_cell(plan.method.key, psnr, block)
                ran += len(idx)
                bar.update(len(idx))
                progressed = True
        if not progressed:
            time.sleep(poll_s)
    return ran


def _record_settings(store: ResultStore, config: EvalConfig, plans: list[RowPlan], resolution: tuple[int, int],
                     scorer_meta: dict[str, Any]) -> None:
    """Check that the store's results were made with these settings (refused otherwise) and
    record this run's command line."""
    store.check_meta("settings", {
        "split": config.split, "resolution": list(resolution), "seed": config.seed, "codec": config.codec,
        "guidance_scale": config.guidance_scale, **scorer_meta,
        # recorded only when not the default, so that stores made before the option stay valid
        **({"edges": config.edges} if config.edges != EDGES_UPLOADED else {}),
        **({"dataset": config.dataset, "root": str(Path(config.root).resolve())}
           if config.dataset != "synthetic" else {}),
    })
    for p in plans:
        if p.status == "ok":
            store.check_meta(f"row:{p.method.key}", row_meta(p, config))
    commands = store.get_meta("commands") or []
    command = config.command or "(called from Python: gesco.evaluate.run_evaluation)"
    if not commands or commands[-1] != command:
        commands.append(command)
    store.set_meta("commands", commands)


def _plan_meta(config: EvalConfig, study: str, shown: list[str], plans: list[RowPlan], resolution: tuple[int, int],
               device: torch.device, scorers: Scorers, scorer_meta: dict[str, Any]) -> dict[str, Any]:
    """The run's plan as the report reads it (stored as the ``plan`` meta)."""
    return {
        "study": study,
        "scenes": config.scenes,
        "psnrs": [float(p) for p in config.psnrs],
        "shown": shown,
        "rows": [p.to_dict() for p in plans],
        "resolution": list(resolution),
        "split": config.split,
        "dataset": config.dataset,
        "edges": config.edges,
        "seed": config.seed,
        "channel": config.channel,
        "channel_params": config.channel_params,
        "digital": {"ldpc_iterations": config.ldpc_iterations, "mcs_gap_db": config.mcs_gap_db,
                    "digital_budget": config.digital_budget},
        "sampler": config.sampler,
        "steps": config.steps,
        "guidance_scale": config.guidance_scale,
        "codec": config.codec,
        "device": str(device),
        "feature_space": scorers.feature_space,
        "segmenter": scorer_meta["segmenter"],
        "table5_psnr": config.table5_psnr,
        "grid_scenes": min(config.grid_scenes, config.scenes),
    }


def _run_cells(store: ResultStore, plans: list[RowPlan], config: EvalConfig, ctx: EvalContext,
               todo: list[tuple[RowPlan, float | None, list[int]]], study: str) -> int:
    """Evaluate the pending images (``todo``) in batches of ``config.batch_size``, storing each
    batch as it is done (with a shared store: the cells this worker claims). Returns the
    images evaluated by this worker (with a local store: all of ``todo``)."""
    from tqdm.auto import tqdm

    total = sum(len(left) for _, _, left in todo)
    with tqdm(total=total, desc=f"gesco evaluate ({study})", unit="img", disable=not config.progress,
              file=sys.stderr) as bar:
        if store.shared and todo:
            total = _run_shared_cells(store, plans, config, ctx, BATCH_FNS, bar)
        for plan, psnr, left in [] if store.shared else todo:
            bar.set_postfix_str(f"{plan.method.key} @ {'-' if psnr is None else f'{psnr:g} dB'}")
            for start in range(0, len(left), config.batch_size):
                idx = left[start:start + config.batch_size]
                store.add(BATCH_FNS[plan.method.kind](ctx, plan, psnr, idx))
                bar.update(len(idx))
    return total


def run_evaluation(
    config: EvalConfig,
    methods: list[Method] | None = None,
    *,
    study: str = "channel",
    segmenter: SegmenterLike | None = None,
    shown: list[str] | None = None,
) -> EvaluationOutcome:
    """Evaluate every row at every PSNR on ``config.scenes`` test scenes, then write the report.

    Stages: plan the rows (:func:`gesco.evaluate.plan.plan_rows`), load the metric models,
    check the store's settings (:func:`_record_settings`), evaluate what is not stored yet
    (:func:`_run_cells`), write the report (:func:`gesco.evaluate.report.write_report`).

    Args:
        config: the run's settings.
        methods: the rows (default: ``select_methods(config.methods)``; the real row is
            always evaluated, the Frechet distance needs its features).
        study: ``"channel"`` (Tables 1-3, 5, bits) or ``"samplers"`` (the sampler study).
        segmenter: the mIoU segmenter (default: ``load_segmenter(config.segmenter)``).
        shown: row keys to show in the report (default: ``config.methods``).
    Returns:
        :class:`EvaluationOutcome`.
    Raises:
        GescoInputError: bad settings, or an output folder holding results made with other settings.
        CheckpointError: a checkpoint that exists but cannot be used (corrupt, another
            class space or resolution), or a missing segmenter / metric weights file.
    """
    from gesco.evaluate.report import write_report

    config.validate()
    methods = methods if methods is not None else select_methods(list(config.methods))
    shown = list(shown if shown is not None else config.methods)
    plans = plan_rows(methods, config)
    resolution = resolve_resolution(plans, config)
    space = CITYSCAPES  # the synthetic scenes' label ids
    device = resolve_device(config.device)
    out = Path(config.out)
    if not config.compute and not config.store and not (out / "results.sqlite").is_file():
        raise GescoInputError(f"--no-run: {out / 'results.sqlite'} does not exist; there are no stored results to "
                              "report (check --out, or run without --no-run first)")
    out.mkdir(parents=True, exist_ok=True)

    with open_result_store(config) as store:
        scorers, scorer_meta = load_scorers(config, device, space, segmenter)
        _record_settings(store, config, plans, resolution, scorer_meta)
        plan_meta = _plan_meta(config, study, shown, plans, resolution, device, scorers, scorer_meta)
        store.set_meta("plan", plan_meta)
        ctx = EvalContext(config, resolution, space, scorers, device)
        todo = _pending(store, plans, config)
        pending = sum(len(left) for _, _, left in todo)
        expected = sum(config.scenes * (1 if p.method.kind == "real" else len(config.psnrs))
                       for p in plans if p.status == "ok")
        total = _run_cells(store, plans, config, ctx, todo if config.compute else [], study)  # --no-run: report only
        report = write_report(out, store, json.loads(json.dumps(plan_meta)))  # as stored (tuples -> lists)
    return EvaluationOutcome(out=out, units_run=total, units_skipped=expected - pending, rows=plans, report=report)
