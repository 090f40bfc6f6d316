"""The evaluation loop: every row at every PSNR on the test scenes, scored and stored.

For each row (:mod:`gesco.evaluate.methods`), PSNR and scene ``i`` of the synthetic test
split (:func:`gesco.data.synthetic.generate_scene` at the model's resolution):

* semantic rows call the services' own stages, in order:
  :func:`gesco.link.encode_image_frame` (sender; the scene's ground-truth label and
  instance maps, as GESCO transmits them), :func:`gesco.link.apply_channel` (channel,
  Eq. 1), :func:`gesco.link.received_conditioning` (receiver, Eq. 2 with or without FDS)
  and :meth:`gesco.diffusion.pipeline.SemanticGenerator.generate` (guided sampling);
* the "Full image" row sends the pixels with :func:`gesco.channel.transmit_image`;
* the digital rows send a file or the semantic frame through CRC + 5G LDPC + QAM
  (:mod:`gesco.evaluate.digital_rows`, :mod:`gesco.digital`);
* the real row keeps the image.

Each output image is scored against the real scene (:class:`Scorers`): mIoU of the
segmenter's prediction against the transmitted label map, LPIPS, SSIM, the colour errors
against the sent image over its label map (:func:`gesco.evaluate.metrics.colour_errors`),
and its Frechet features (the distance itself needs whole sets; :mod:`gesco.evaluate.report` computes it).

Reproducibility: scene ``i`` uses the seed ``seed * 100000 + i``
(:func:`scene_seed`) for the channel noise (through :func:`gesco.link.stage_seed`, as the
channel service) and the sampling noise (as the receiver), at every PSNR and for every
row: the rows are compared on the same draws (common random numbers). Results go to a
SQLite store per image (:class:`gesco.evaluate.store.ResultStore`), so a restart skips
what is done.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from gesco.channel import PAPER_PSNRS_DB, get_channel, transmit_image, validate_channel_params
from gesco.codecs import DEFAULT_CODEC
from gesco.codecs.budget import image_bits
from gesco.data.synthetic import SPLITS, SceneSample, generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.defaults import DEFAULT_GUIDANCE
from gesco.devices import resolve_device
from gesco.diffusion.checkpoint import read_card
from gesco.diffusion.pipeline import SemanticGenerator, sampling_cost
from gesco.diffusion.samplers import GUIDED_SAMPLER, GUIDED_STEPS
from gesco.digital.mcs import DEFAULT_GAP_DB
from gesco.errors import CheckpointError, GescoInputError
from gesco.evaluate.digital_rows import digital_image_batch, digital_maps_batch
from gesco.evaluate.methods import (
    CHECKPOINT_ROLES,
    DEFAULT_METHODS,
    Method,
    checkpoint_exists,
    checkpoint_path,
    equal_use_factor,
    select_methods,
)
from gesco.evaluate.metrics import LPIPS, AlexNetRelu5Features, FrechetScorer, MeanIoU, colour_errors, ssim
from gesco.evaluate.store import ResultStore, UnitResult
from gesco.link import (
    TransmitSettings,
    apply_channel,
    budget_record,
    codec_choice,
    colour_labels,
    encode_image_frame,
    encode_png,
    received_conditioning,
    stage_seed,
)
from gesco.semantics.classes import CITYSCAPES, ClassSpace
from gesco.semantics.instances import EDGES_DERIVED, EDGES_NONE, EDGES_UPLOADED
from gesco.wire.frames import n_maps

#: scenes per seed: scene ``i`` of seed ``s`` uses ``s * SEED_STRIDE + i`` (the test split's size)
SEED_STRIDE = SPLITS["test"][1] - SPLITS["test"][0]
#: the splits an evaluation may run on: validation for every choice, test once per reported table
EVAL_SPLITS = ("val", "test")
#: other names accepted for a split
SPLIT_ALIASES = {"validation": "val"}
#: where the scenes come from (see :class:`EvalConfig`)
EVAL_DATASETS = ("synthetic", "cityscapes")

#: which instance-edge map the semantic rows send (see :class:`EvalConfig`)
EDGE_MODES = (EDGES_UPLOADED, EDGES_DERIVED, EDGES_NONE)
#: resolution when no diffusion checkpoint is available (only the real / full-image rows)
FALLBACK_RESOLUTION = (64, 128)


# --------------------------------------------------------------------------- configuration
@dataclass
class EvalConfig:
    """What ``gesco evaluate`` runs (the CLI's flags).

    Attributes:
        out: output folder (results store, report, plots, samples).
        scenes: number of test scenes ``N`` (scenes ``0..N-1`` of ``split``).
        psnrs: channel PSNRs in dB (Eq. 1).
        methods: row keys (:data:`gesco.evaluate.methods.METHODS`).
        checkpoints: ``{role: path}`` overrides of the checkpoint roles.
        channel: channel model (:data:`gesco.channel.CHANNELS`).
        channel_params: its parameters (validated; empty = the model's defaults).
        ldpc_iterations, mcs_gap_db: the digital rows' LDPC iterations and rate-adaptation gap.
        digital_budget: channel uses per pixel the digital JPEG / WebP files must fit.
        sampler, steps, guidance_scale: the receiver's sampling settings of the rows that do not
            set their own (default: the guided model's, :data:`~gesco.defaults.GUIDED_SAMPLER`
            at :data:`~gesco.defaults.GUIDED_STEPS` steps; the ``ours-fast`` row samples the
            student with the receiver's default settings).
        seed: base seed (see :func:`scene_seed`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        batch_size: images per sampling call.
        codec: lossless map codec (the equal-uses row downsamples with it as inner codec).
        split: synthetic split of the scenes: ``"val"`` (the validation split, for every
            choice: sampler, steps, checkpoints, thresholds) or ``"test"`` (touched once per
            reported table); :data:`EVAL_SPLITS`.
        edges: which instance-edge map the semantic rows send (:data:`EDGE_MODES`):
            ``"uploaded"`` the scene's ground-truth instance map (as GESCO transmits),
            ``"derived"`` the one the sender derives from the label map when none is uploaded
            (:func:`gesco.semantics.instances.derive_instances`), ``"none"`` no edge map.
        resolution: ``(H, W)``; ``None``: the diffusion checkpoints' resolution.
        segmenter: segmenter spec for :func:`gesco.segment.load_segmenter` (``None``: shipped).
        inception: pytorch-fid Inception weights file for the standard FID (``None``: the
            named substitute "FD-AlexNet-relu5 (substitute; not FID)").
        lpips_weights: LPIPS weights file (``None``: the shipped asset).
        grid_scenes: scenes whose images are saved for the sample grids.
        table5_psnr: PSNR of the ablation table (the paper's 10 dB).
        progress: show a progress bar.
        command: the command line recorded in the report.
        dataset: where the scenes come from: ``"synthetic"`` (generated, the default) or
            ``"cityscapes"`` (the files under ``root`` in Cityscapes' layout, :mod:`gesco.data.cityscapes`:
            scenes ``0..N-1`` of ``split`` sorted by name, resized to the resolution, labels and
            instances nearest; ``"test"`` reads the ``test`` folder, whose public labels are empty:
            use ``val``).
        root: the data set's folder (``dataset`` other than synthetic).
        store: ``postgresql://...``: the results live in that database, shared with other
            workers of the same sweep, which claim cells (:mod:`gesco.evaluate.shared_store`);
            ``None``: ``<out>/results.sqlite``, one worker.
        sweep: the sweep's name in ``store`` (``None``: the ``out`` folder's name).
        lease_s: a cell claimed by a worker that died is taken over after this many seconds.
        compute: evaluate the missing images; ``False`` only writes the report of this plan
            from the results already stored (``--no-run``: combine partial runs into one
            report; cells with fewer scenes than planned show ``(n=k)``, empty ones ``not run``).
    """

    out: Path
    scenes: int = 100
    psnrs: tuple[float, ...] = PAPER_PSNRS_DB
    methods: tuple[str, ...] = DEFAULT_METHODS
    checkpoints: dict[str, str] = field(default_factory=dict)
    channel: str = "awgn"
    channel_params: dict[str, Any] = field(default_factory=dict)
    ldpc_iterations: int = 20
    mcs_gap_db: float = DEFAULT_GAP_DB
    digital_budget: float = 3.0
    sampler: str = GUIDED_SAMPLER
    steps: int = GUIDED_STEPS
    guidance_scale: float = DEFAULT_GUIDANCE
    seed: int = 0
    device: str = "auto"
    batch_size: int = 16
    codec: str = DEFAULT_CODEC
    split: str = "test"
    edges: str = EDGES_UPLOADED
    resolution: tuple[int, int] | None = None
    segmenter: str | None = None
    inception: str | None = None
    lpips_weights: str | None = None
    grid_scenes: int = 3
    table5_psnr: float = 10.0
    progress: bool = True
    command: str | None = None
    compute: bool = True
    dataset: str = "synthetic"
    root: str | None = None
    store: str | None = None
    sweep: str | None = None
    lease_s: float = 900.0

    def validate(self) -> EvalConfig:
        self.split = SPLIT_ALIASES.get(self.split, self.split)
        start, stop = SPLITS.get(self.split, (0, 0))
        if self.split not in EVAL_SPLITS:
            raise GescoInputError(f"unknown evaluation split {self.split!r}; known: {list(EVAL_SPLITS)} "
                                  f"('validation' = 'val'; the train split is what the models were fitted on)")
        if self.edges not in EDGE_MODES:
            raise GescoInputError(f"unknown edges {self.edges!r}; known: {list(EDGE_MODES)}")
        if self.lease_s <= 0:
            raise GescoInputError(f"--lease-s must be positive, got {self.lease_s:g}")
        if self.dataset not in EVAL_DATASETS:
            raise GescoInputError(f"unknown dataset {self.dataset!r}; known: {list(EVAL_DATASETS)}")
        if (self.dataset == "synthetic") != (self.root is None):
            raise GescoInputError("--root is the folder of --dataset cityscapes (and only of it)" if self.root is None
                                  or self.dataset != "synthetic" else "--root needs --dataset cityscapes")
        if self.dataset == "synthetic" and not 1 <= self.scenes <= stop - start:
            raise GescoInputError(f"--scenes must be in [1, {stop - start}], got {self.scenes}")
        if self.dataset != "synthetic":
            from gesco.data.cityscapes import cityscapes_files  # DatasetLayoutError naming what is missing

            found = len(cityscapes_files(self.root, self.split))
            if not 1 <= self.scenes <= found:
                raise GescoInputError(f"--scenes must be in [1, {found}] ({found} {self.split} images under "
                                      f"{self.root}), got {self.scenes}")
        if not self.psnrs:
            raise GescoInputError("give at least one PSNR")
        if len(set(self.psnrs)) != len(self.psnrs):
            raise GescoInputError(f"PSNRs repeat: {list(self.psnrs)}")
        self.channel_params = validate_channel_params(self.channel, self.channel_params)
        if self.ldpc_iterations < 1:
            raise GescoInputError(f"--ldpc-iterations must be >= 1, got {self.ldpc_iterations}")
        if not self.digital_budget > 0:
            raise GescoInputError(f"--digital-budget must be > 0 channel uses per pixel, got {self.digital_budget}")
        if self.batch_size < 1:
            raise GescoInputError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.seed < 0:
            raise GescoInputError(f"--seed must be >= 0, got {self.seed}")
        if self.grid_scenes < 0:
            raise GescoInputError(f"--grid-scenes must be >= 0, got {self.grid_scenes}")
        return self


def eval_frame_id(row: str, psnr: float, scene: int) -> str:
    """The frame id of one evaluated image: 32 hex digits derived from ``(row, psnr, scene)``.

    The id is counted in the frame's header bits; giving it the length of the sender
    service's ids (``uuid4().hex``) makes the evaluation's bits those of the services and
    equal across rows and PSNRs for the same scene.
    """
    return hashlib.sha256(f"eval-{row}-{psnr:g}-{scene}".encode()).hexdigest()[:32]


def sent_instance(scene: SceneSample, config: EvalConfig) -> np.ndarray | None:
    """The instance map the sender gets for ``scene``: the ground truth with ``edges="uploaded"``,
    else ``None`` (the sender then derives one, or sends no edge map with ``edges="none"``)."""
    return scene.instance if config.edges == EDGES_UPLOADED else None


def scene_seed(seed: int, scene: int) -> int:
    """Seed of scene ``scene``'s transmission: ``seed * 100000 + scene`` (distinct for every pair)."""
    return int(seed) * SEED_STRIDE + int(scene)


def file_digest(path: str | Path) -> str | None:
    """First 16 hex digits of the SHA-256 of a weights file (a stem: its ``.safetensors``)."""
    p = Path(path)
    for candidate in (p, p.with_suffix(".safetensors"), Path(str(p) + ".safetensors")):
        if candidate.is_file():
            h = hashlib.sha256()
            with open(candidate, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()[:16]
    return None


# --------------------------------------------------------------------------- scoring
class SegmenterLike(Protocol):
    """What the evaluation needs of a segmenter (:class:`gesco.segment.Segmenter`)."""

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in ``[-1, 1]`` -> ``(B, H, W)`` int64 label ids."""
        ...


class Scorers:
    """The per-image metrics: segmenter mIoU, LPIPS, SSIM, colour errors and Frechet features.

    Args:
        segmenter: predicts label maps of generated images (the mIoU evaluator).
        space: the class space of the label maps.
        lpips: an :class:`~gesco.evaluate.metrics.LPIPS` module.
        frechet: a :class:`~gesco.evaluate.metrics.FrechetScorer` (its feature extractor is used).
        device: where the metric networks run.
    """

    def __init__(self, segmenter: SegmenterLike, space: ClassSpace, lpips: LPIPS, frechet: FrechetScorer,
                 device: torch.device) -> None:
        self.segmenter, self.space, self.device = segmenter, space, device
        self.lpips = lpips.to(device)
        self.extractor = frechet.extractor
        if isinstance(self.extractor, torch.nn.Module):
            self.extractor = self.extractor.to(device)
        self.feature_space = {"key": self.extractor.key, "name": self.extractor.name, "dim": int(self.extractor.dim)}

    @torch.no_grad()
    def score(self, images: torch.Tensor, real: torch.Tensor, labels: torch.Tensor) -> tuple[list[dict], np.ndarray]:
        """Per-image metrics of a batch.

        Args:
            images: ``(B, 3, H, W)`` float in ``[-1, 1]``: the received / generated images.
            real: ``(B, 3, H, W)`` float in ``[-1, 1]``: the scenes' real images.
            labels: ``(B, H, W)`` int64: the transmitted label maps.
        Returns:
            ``(metrics, features)``: one dict per image with ``miou`` (mean IoU over the
            classes present in that image's target or prediction, ``None`` if none),
            ``confusion`` (sparse ``{target * C + predicted: pixels}``), ``lpips``,
            ``ssim``, ``mean_colour_error``, ``class_colour_error`` (0-255 units, ``None``
            when no class of the label map has ``MIN_CLASS_PIXELS`` pixels) and
            ``class_colour`` (``{"<label id>": [error, pixels]}``), all against ``real``
            (:func:`~gesco.evaluate.metrics.colour_errors`; 0 for the real row by
            construction, computed like every other row); and the ``(B, D)`` float32
            Frechet features of ``images``.
        """
        x = images.to(self.device, torch.float32).clamp(-1.0, 1.0)
        y = real.to(self.device, torch.float32)
        predicted = self.segmenter.predict(x).cpu()
        lp = self.lpips(x, y).float().cpu()
        ss = ssim((x + 1.0) / 2.0, (y + 1.0) / 2.0).float().cpu()  # SSIM takes [0, 1]
        feats = self.extractor(x).float().cpu().numpy()
        colour = colour_errors(x, y, labels, value_range=(-1.0, 1.0)).records()
        out = []
        for b in range(x.shape[0]):
            scorer = MeanIoU(self.space)
            scorer.update(predicted[b], labels[b])
            miou = scorer.compute().miou
            nz = np.flatnonzero(scorer.confusion)
            out.append({
                "miou": None if np.isnan(miou) else float(miou),
                "confusion": {str(int(k)): int(scorer.confusion.flat[k]) for k in nz},
                "lpips": float(lp[b]),
                "ssim": float(ss[b]),
                **colour[b],
            })
        return out, feats


# --------------------------------------------------------------------------- rows and their status
@dataclass
class RowPlan:
    """A row of this run and whether it can be evaluated.

    ``status`` is ``"ok"`` or ``"missing"`` (its checkpoint file does not exist; ``command``
    makes it). ``sampler``, ``steps``, ``nfe`` (network forwards per image) and
    ``passes`` (forwards times images per forward) are set for semantic rows.
    """

    method: Method
    status: str = "ok"
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    checkpoint_training: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    channel: str | None = None
    sampler: str | None = None
    steps: int | None = None
    nfe: int | None = None
    passes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["method"] = self.method.to_dict()
        return d


def row_guidance(method: Method, config: EvalConfig) -> float:
    """The guidance scale a row samples with: its own, else the run's ``--guidance``."""
    return float(config.guidance_scale if method.guidance_scale is None else method.guidance_scale)


def plan_rows(methods: list[Method], config: EvalConfig) -> list[RowPlan]:
    """Resolve each row's checkpoint, channel and sampler; mark rows whose checkpoint is missing."""
    plans = []
    for m in methods:
        plan = RowPlan(m, channel=m.channel or config.channel)
        if m.generative:
            role = CHECKPOINT_ROLES[m.checkpoint]  # type: ignore[index]
            path = checkpoint_path(role.role, config.checkpoints)
            plan.checkpoint = str(path)
            plan.sampler = m.sampler or config.sampler
            plan.steps = int(m.steps or config.steps)
            exists = checkpoint_exists(path)
            card = read_card(path) if exists else None
            # a distilled student has the guidance folded in: one pass per step at its scale
            cost = sampling_cost(card, plan.sampler, plan.steps, row_guidance(m, config))
            plan.nfe, plan.passes = cost.forwards, cost.passes
            if plan.sampler == "ancestral":
                plan.steps = cost.forwards  # the whole chain, T steps
            if exists:
                plan.checkpoint_sha256 = file_digest(path)
            else:
                plan.status = "missing"
                plan.command = role.command if role.role not in config.checkpoints else (
                    f"(the file given with --checkpoint {role.role}=... does not exist); default: {role.command}")
        plans.append(plan)
    return plans


def _resolution(plans: list[RowPlan], config: EvalConfig) -> tuple[int, int]:
    """The evaluation's ``(H, W)``: ``config.resolution`` or the (common) one of the checkpoints."""
    found: dict[tuple[int, int], str] = {}
    for p in plans:
        if p.status == "ok" and p.checkpoint:
            card = read_card(p.checkpoint)
            found.setdefault(tuple(int(v) for v in card.resolution), p.checkpoint)  # type: ignore[arg-type]
            p.checkpoint_training = {k: card.training.get(k) for k in ("steps", "name", "noisy", "wall_time_s")
                                     if k in card.training}
    if config.resolution is not None:
        res = tuple(int(v) for v in config.resolution)
        wrong = {r: c for r, c in found.items() if r != res}
        if wrong:
            raise CheckpointError(f"--resolution {res} differs from the checkpoints' {wrong}")
        return res  # type: ignore[return-value]
    if len(found) > 1:
        raise CheckpointError(f"the checkpoints have different resolutions: {found}; evaluate them separately")
    return next(iter(found)) if found else FALLBACK_RESOLUTION


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


class _Context:
    """Scenes, models and settings shared by the batches of one run."""

    def __init__(self, config: EvalConfig, resolution: tuple[int, int], space: ClassSpace, scorers: Scorers,
                 device: torch.device) -> None:
        self.config, self.resolution, self.space, self.scorers, self.device = config, resolution, space, scorers, device
        self._scenes: dict[int, SceneSample] = {}
        self._files: Any = None
        self._generators: dict[str, Any] = {}
        self.samples = Path(config.out) / "samples"

    def scene(self, i: int) -> SceneSample:
        if i not in self._scenes:
            if self.config.dataset == "synthetic":
                self._scenes[i] = generate_scene(split_seed(self.config.split, i), *self.resolution)
            else:
                if self._files is None:
                    from gesco.data.cityscapes import CityscapesDataset

                    self._files = CityscapesDataset(self.config.root, self.config.split, *self.resolution)
                image, label, instance = self._files.load(i)
                if instance is None:
                    instance = label.astype(np.int64)
                self._scenes[i] = SceneSample(image=image, label=label, instance=instance)
        return self._scenes[i]

    def instance_ids(self, path: str | None) -> str:
        """How a row's checkpoint reads instance ids (its card's ``conditioning.instance_ids``)."""
        if path is None:
            return "full"
        return str(self.generator(path).card.conditioning.get("instance_ids", "full"))

    def real(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` real images in ``[-1, 1]`` and ``(B, H, W)`` int64 label maps."""
        images = torch.stack([image_to_tensor(self.scene(i).image) for i in idx])
        labels = torch.stack([torch.from_numpy(self.scene(i).label.astype(np.int64)) for i in idx])
        return images, labels

    def generator(self, path: str) -> Any:
        if path not in self._generators:
            gen = SemanticGenerator.load(path, device=self.device)
            if gen.space.name != self.space.name:
                raise CheckpointError(f"checkpoint {path} is for class space {gen.space.name}, the scenes are {self.space.name}")
            self._generators[path] = gen
        return self._generators[path]

    def save_sample(self, row: str, psnr: float | None, scene: int, image: np.ndarray) -> None:
        if scene >= self.config.grid_scenes:
            return
        folder = self.samples / row / ("real" if psnr is None else f"psnr{psnr:g}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"scene{scene:03d}.png").write_bytes(encode_png(image))


def _real_batch(ctx: _Context, plan: RowPlan, psnr: float | None, idx: list[int]) -> list[UnitResult]:
    real, labels = ctx.real(idx)
    metrics, feats = ctx.scorers.score(real, real, labels)
    out = []
    for j, i in enumerate(idx):
        ctx.save_sample("real", None, i, ctx.scene(i).image)
        if i < ctx.config.grid_scenes:
            folder = ctx.samples / "label"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"scene{i:03d}.png").write_bytes(encode_png(colour_labels(ctx.scene(i).label, ctx.space)))
        out.append(UnitResult(plan.method.key, None, i, metrics[j], feats[j]))
    return out


def _full_image_batch(ctx: _Context, plan: RowPlan, psnr: float, idx: list[int]) -> list[UnitResult]:
    """The "Full image" baseline: each pixel value one real symbol through the channel."""
    real, labels = ctx.real(idx)
    channel = get_channel(plan.channel or ctx.config.channel, **_row_channel_params(ctx.config, plan))
    received, extra = [], []
    for j, i in enumerate(idx):
        gen = torch.Generator().manual_seed(stage_seed(scene_seed(ctx.config.seed, i), "channel"))
        rx, res = transmit_image((real[j:j + 1] + 1.0) / 2.0, channel, psnr, generator=gen)  # [0, 1] pixels
        received.append(rx * 2.0 - 1.0)
        h, w = ctx.resolution
        ref = image_bits(ctx.scene(i).image)
        extra.append({
            "total_bits": ref.raw, "png_bits": ref.png, "jpeg_bits": ref.jpeg, "raw_bits": ref.raw,
            "channel_uses": int(res.channel_uses[0]), "channel_uses_per_pixel": int(res.channel_uses[0]) / (h * w),
            "measured_snr_db": _finite(float(res.measured_snr_db[0])),
        })
    images = torch.cat(received)
    metrics, feats = ctx.scorers.score(images, real, labels)
    uint8 = SemanticGenerator.to_uint8(images)
    out = []
    for j, i in enumerate(idx):
        ctx.save_sample(plan.method.key, psnr, i, uint8[j])
        out.append(UnitResult(plan.method.key, psnr, i, {**metrics[j], **extra[j]}, feats[j]))
    return out


def _semantic_batch(ctx: _Context, plan: RowPlan, psnr: float, idx: list[int]) -> list[UnitResult]:
    """GESCO through the services' stages (:mod:`gesco.link`), then guided sampling."""
    cfg, (h, w) = ctx.config, ctx.resolution
    conds, settings, extra = [], [], []
    for i in idx:
        scene = ctx.scene(i)
        transmit = TransmitSettings(psnr_db=float(psnr), channel=plan.channel or cfg.channel, sampler=plan.sampler,
                                    steps=int(plan.steps), guidance_scale=row_guidance(plan.method, cfg),
                                    seed=scene_seed(cfg.seed, i), fds=plan.method.fds,
                                    channel_params=_row_channel_params(cfg, plan))

        def encode(factor: int):
            codec, params = codec_choice(cfg.codec, factor)
            frame, _ = encode_image_frame(scene.image, scene.label, sent_instance(scene, cfg), space=ctx.space,
                                          resolution=(h, w), frame_id=eval_frame_id(plan.method.key, psnr, i),
                                          codec=codec, codec_params=params, transmit=transmit,
                                          derive_edges=cfg.edges != EDGES_NONE,
                                          instance_ids=ctx.instance_ids(plan.checkpoint))
            return frame

        factor = 1
        frame = encode(factor)
        if plan.method.equal_uses:
            factor = equal_use_factor(n_maps(frame), h, w)
            if factor > 1:
                frame = encode(factor)
        received = apply_channel(frame)                                      # the channel service's stage
        conds.append(received_conditioning(received, fds=transmit.fds))       # the receiver's stage
        record = budget_record(frame, received.report)
        extra.append({
            "total_bits": record["total_bits"], "payload_bits": record["payload_bits"],
            "header_bits": record["header_bits"], "channel_uses": record["channel_uses"],
            "channel_uses_per_pixel": record["channel_uses"] / (h * w), "maps": record["maps"],
            "png_bits": record["png_bits"], "jpeg_bits": record["jpeg_bits"], "raw_bits": 24 * h * w,
            "downsample": factor, "measured_snr_db": record["measured_snr_db"],
        })
        # the receiver samples with the frame's settings and seed (receiver/generation.py)
        settings.append(transmit.to_sampling())
    generator = ctx.generator(plan.checkpoint)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    images = generator.generate(torch.stack(conds), settings)
    per_image = (time.perf_counter() - t0) / len(idx)
    real, labels = ctx.real(idx)
    metrics, feats = ctx.scorers.score(images, real, labels)
    uint8 = SemanticGenerator.to_uint8(images)
    out = []
    for j, i in enumerate(idx):
        ctx.save_sample(plan.method.key, psnr, i, uint8[j])
        out.append(UnitResult(plan.method.key, psnr, i, {**metrics[j], **extra[j], "seconds": per_image}, feats[j]))
    return out


def _row_channel_params(config: EvalConfig, plan: RowPlan) -> dict[str, Any]:
    """The run's channel parameters, for rows on the run's channel (a row's own preset takes its defaults)."""
    return dict(config.channel_params) if (plan.channel or config.channel) == config.channel else {}


def _row_meta(plan: RowPlan, config: EvalConfig) -> dict[str, Any]:
    """What a stored row's results depend on (checked when a run resumes into the same folder)."""
    meta = {"method": plan.method.to_dict(), "channel": plan.channel, "sampler": plan.sampler, "steps": plan.steps,
            "checkpoint_sha256": plan.checkpoint_sha256}
    params = _row_channel_params(config, plan)
    # recorded only when they matter, so that stores made before channel parameters existed still resume
    if plan.method.digital or params != validate_channel_params(plan.channel or config.channel, {}):
        meta["channel_params"] = params
    if plan.method.digital:
        meta |= {"ldpc_iterations": config.ldpc_iterations, "mcs_gap_db": config.mcs_gap_db,
                 "digital_budget": config.digital_budget}
    return meta


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def load_scorers(config: EvalConfig, device: torch.device, space: ClassSpace,
                 segmenter: SegmenterLike | None = None) -> tuple[Scorers, dict[str, Any]]:
    """The metric models and a description of them (for the store's settings)."""
    if segmenter is None:
        from gesco.segment import load_segmenter

        segmenter = load_segmenter(config.segmenter, device=device)
    seg_space = getattr(segmenter, "class_space", space)
    if seg_space.name != space.name:
        raise CheckpointError(f"the segmenter predicts {seg_space.name} ids, the scenes use {space.name}")
    lpips = LPIPS.load(config.lpips_weights)
    # the substitute feature space is the AlexNet inside LPIPS (= FrechetScorer.substitute(), loaded once)
    frechet = FrechetScorer.fid(config.inception) if config.inception else FrechetScorer(AlexNetRelu5Features(lpips.features))
    scorers = Scorers(segmenter, space, lpips, frechet, device)
    source = str(getattr(segmenter, "source", "") or config.segmenter or "in-memory")
    described = {
        "segmenter": source,
        "segmenter_sha256": file_digest(source) if source != "in-memory" else None,
        "feature_space": scorers.feature_space["key"],
        "inception_sha256": file_digest(config.inception) if config.inception else None,
        "lpips_sha256": file_digest(config.lpips_weights) if config.lpips_weights else "shipped",
    }
    return scorers, described


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


def _run_shared_cells(store: ResultStore, plans: list[RowPlan], config: EvalConfig, ctx: _Context,
                      batch_fn: dict[str, Any], bar: Any, poll_s: float = 2.0) -> int:
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


def run_evaluation(
    config: EvalConfig,
    methods: list[Method] | None = None,
    *,
    study: str = "channel",
    segmenter: SegmenterLike | None = None,
    shown: list[str] | None = None,
) -> EvaluationOutcome:
    """Evaluate every row at every PSNR on ``config.scenes`` test scenes, then write the report.

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
    from tqdm.auto import tqdm

    from gesco.evaluate.report import write_report

    config.validate()
    methods = methods if methods is not None else select_methods(list(config.methods))
    shown = list(shown if shown is not None else config.methods)
    plans = plan_rows(methods, config)
    resolution = _resolution(plans, config)
    space = CITYSCAPES  # the synthetic scenes' label ids
    device = resolve_device(config.device)
    out = Path(config.out)
    if not config.compute and not config.store and not (out / "results.sqlite").is_file():
        raise GescoInputError(f"--no-run: {out / 'results.sqlite'} does not exist; there are no stored results to "
                              "report (check --out, or run without --no-run first)")
    out.mkdir(parents=True, exist_ok=True)

    with open_result_store(config) as store:
        scorers, scorer_meta = load_scorers(config, device, space, segmenter)
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
                store.check_meta(f"row:{p.method.key}", _row_meta(p, config))
        commands = store.get_meta("commands") or []
        command = config.command or "(called from Python: gesco.evaluate.run_evaluation)"
        if not commands or commands[-1] != command:
            commands.append(command)
        store.set_meta("commands", commands)
        plan_meta = {
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
        store.set_meta("plan", plan_meta)
        ctx = _Context(config, resolution, space, scorers, device)
        todo = _pending(store, plans, config)
        pending = sum(len(left) for _, _, left in todo)
        if not config.compute:
            todo = []  # --no-run: report what is stored
        total = sum(len(left) for _, _, left in todo)
        expected = sum(config.scenes * (1 if p.method.kind == "real" else len(config.psnrs))
                       for p in plans if p.status == "ok")
        batch_fn = {"real": _real_batch, "full-image": _full_image_batch, "semantic": _semantic_batch,
                    "digital-image": digital_image_batch, "digital-maps": digital_maps_batch}
        with tqdm(total=total, desc=f"gesco evaluate ({study})", unit="img", disable=not config.progress,
                  file=sys.stderr) as bar:
            if store.shared and todo:
                total = _run_shared_cells(store, plans, config, ctx, batch_fn, bar)
            for plan, psnr, left in [] if store.shared else todo:
                bar.set_postfix_str(f"{plan.method.key} @ {'-' if psnr is None else f'{psnr:g} dB'}")
                for start in range(0, len(left), config.batch_size):
                    idx = left[start:start + config.batch_size]
                    store.add(batch_fn[plan.method.kind](ctx, plan, psnr, idx))
                    bar.update(len(idx))
        report = write_report(out, store, json.loads(json.dumps(plan_meta)))  # as stored (tuples -> lists)
    return EvaluationOutcome(out=out, units_run=total, units_skipped=expected - pending, rows=plans, report=report)

