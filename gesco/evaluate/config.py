"""What an evaluation runs: :class:`EvalConfig` (the flags of ``gesco evaluate``) and the
identities derived from it per scene (its seed, its frame id, the instance map the sender gets).

Reproducibility: scene ``i`` uses the seed ``seed * SEED_STRIDE + i`` (:func:`scene_seed`) for
the channel noise (through :func:`gesco.link.stage_seed`, as the channel service) and the
sampling noise (as the receiver), at every PSNR and for every row: the rows are compared on
the same draws (common random numbers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gesco.channel import PAPER_PSNRS_DB, validate_channel_params
from gesco.data.synthetic import SPLITS, SceneSample
from gesco.diffusion.samplers import GUIDED_SAMPLER, GUIDED_STEPS, check_mean_temperature
from gesco.digital.mcs import DEFAULT_GAP_DB
from gesco.errors import GescoInputError
from gesco.evaluate.methods import (
    DEFAULT_METHODS,
)
from gesco.semantics.instances import EDGES_DERIVED, EDGES_NONE, EDGES_UPLOADED
from gesco.transmit_fields import default

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
        mean_temperature: ``tau`` of every semantic row's starting noise
            (:func:`gesco.diffusion.samplers.scale_start_mean`); ``None``: each checkpoint's
            recommendation (its card's ``recommended_sampling``), else 1 (the paper's sampling).
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
    channel: str = default("channel")
    channel_params: dict[str, Any] = field(default_factory=dict)
    ldpc_iterations: int = 20
    mcs_gap_db: float = DEFAULT_GAP_DB
    digital_budget: float = 3.0
    sampler: str = GUIDED_SAMPLER
    steps: int = GUIDED_STEPS
    guidance_scale: float = default("guidance_scale")
    seed: int = 0
    mean_temperature: float | None = None
    device: str = "auto"
    batch_size: int = 16
    codec: str = default("codec")
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
        """Check every setting (the first wrong one raises :class:`~gesco.errors.GescoInputError`
        naming its flag); normalises ``split`` (``"validation"`` -> ``"val"``) and
        ``channel_params`` (the channel model's validated parameters). Returns ``self``."""
        self.split = SPLIT_ALIASES.get(self.split, self.split)
        self._check_choices()
        self._check_scenes()
        if not self.psnrs:
            raise GescoInputError("give at least one PSNR")
        if len(set(self.psnrs)) != len(self.psnrs):
            raise GescoInputError(f"PSNRs repeat: {list(self.psnrs)}")
        self.channel_params = validate_channel_params(self.channel, self.channel_params)
        self._check_counts()
        return self

    def _check_choices(self) -> None:
        """Split, edges, lease, dataset and its ``root`` are known / consistent."""
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

    def _check_scenes(self) -> None:
        """``scenes`` fits the split: its seed range (synthetic) or the images found under ``root``."""
        if self.dataset == "synthetic":
            start, stop = SPLITS[self.split]
            if not 1 <= self.scenes <= stop - start:
                raise GescoInputError(f"--scenes must be in [1, {stop - start}], got {self.scenes}")
            return
        from gesco.data.cityscapes import cityscapes_files  # DatasetLayoutError naming what is missing

        found = len(cityscapes_files(self.root, self.split))
        if not 1 <= self.scenes <= found:
            raise GescoInputError(f"--scenes must be in [1, {found}] ({found} {self.split} images under "
                                  f"{self.root}), got {self.scenes}")

    def _check_counts(self) -> None:
        """The numeric flags are in range."""
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
        if self.mean_temperature is not None:
            try:
                check_mean_temperature(self.mean_temperature)
            except GescoInputError as e:
                raise GescoInputError(f"--mean-temperature: {e}") from None


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
