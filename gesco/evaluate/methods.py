"""The rows of the evaluation: what each method transmits and which checkpoint it samples with.

A row (:class:`Method`) is one of three kinds:

* ``"semantic"``: GESCO's pipeline (paper section 3) through :mod:`gesco.link`, the same
  functions the three services call: the sender codes the label map, the channel adds
  noise at the PSNR of Eq. (1), the receiver applies FDS (Eq. 2, when ``fds``) and the
  diffusion model of checkpoint role ``checkpoint`` samples the image;
* ``"full-image"``: the paper's "Full image" baseline, the pixels themselves through the
  same channel (:func:`gesco.channel.transmit_image`);
* ``"real"``: the real image, untouched (the ceiling of every metric);
* ``"digital-image"``: the conventional digital link (:mod:`gesco.digital`): the image as a
  JPEG / WebP file fitted to the full image's channel uses, or as PNG, through CRC + 5G LDPC
  + QAM, the channel, demapping and decoding; a lost frame shows grey;
* ``"digital-maps"``: the semantic frame (header + lossless maps) through the same digital
  link, then the diffusion model of ``checkpoint`` samples from the exact maps; a lost
  frame shows grey.

Checkpoint roles (:data:`CHECKPOINT_ROLES`) name the diffusion models the rows need; the
user maps a role to another file with ``--checkpoint ROLE=PATH``. A role whose file does
not exist makes its rows "missing": they are listed in every table with the command
that makes the checkpoint, never dropped and never replaced by another model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.errors import GescoInputError
from gesco.paths import DEFAULT_DIFFUSION, DEFAULT_RECEIVER, DEFAULT_STUDENT, shipped_checkpoint

_CONFIG = "configs/diffusion_synthetic_64x128.yaml"


@dataclass(frozen=True)
class CheckpointRole:
    """A diffusion checkpoint the evaluation may need.

    Attributes:
        role: short name used by :class:`Method` and ``--checkpoint ROLE=PATH``.
        stem: file stem of the shipped checkpoint in ``checkpoints/``.
        description: how it was trained.
        command: shell command that trains it and copies it into ``checkpoints/``.
    """

    role: str
    stem: str
    description: str
    command: str

    def default_path(self) -> Path:
        return shipped_checkpoint(self.stem)


def _train_command(stem: str, overrides: str = "") -> str:
    run = f"runs/{stem}"
    sets = f"{overrides} --set out_dir={run}" if overrides else f" --set out_dir={run}"
    return (
        f"gesco train diffusion --config {_CONFIG}{sets} && "
        f"cp {run}/ema.safetensors checkpoints/{stem}.safetensors && cp {run}/ema.json checkpoints/{stem}.json"
    )


_DISTILL_CONFIG = "configs/distill_guidance_synthetic_64x128.yaml"
_DISTILL_RUN = "runs/distill-guidance-64x128"


#: The diffusion checkpoints of the rows, by role.
CHECKPOINT_ROLES: dict[str, CheckpointRole] = {
    r.role: r
    for r in (
        CheckpointRole("ours", DEFAULT_DIFFUSION,
                       "noisy training (channel noise at the paper's PSNRs, then FDS, on the training maps)",
                       _train_command(DEFAULT_DIFFUSION)),
        CheckpointRole("clean", f"{DEFAULT_DIFFUSION}-clean", "no noisy training (clean maps only)",
                       _train_command(f"{DEFAULT_DIFFUSION}-clean", " --set noisy.enabled=false")),
        CheckpointRole("nofds", f"{DEFAULT_DIFFUSION}-nofds",
                       "noisy training without FDS on the training maps (the authors' recipe)",
                       _train_command(f"{DEFAULT_DIFFUSION}-nofds", " --set noisy.fds=false")),
        CheckpointRole("student", DEFAULT_RECEIVER,
                       "the receiver's default: the guidance-only distilled student of `ours` (guidance 2 folded "
                       "in: one pass per step; docs/distillation.md) with its mean-colour path fitted on received "
                       "maps (docs/colour/README.md section 6.4)",
                       f"gesco train distill --config {_DISTILL_CONFIG} && "
                       f"cp {_DISTILL_RUN}/distilled.safetensors checkpoints/{DEFAULT_STUDENT}.safetensors && "
                       f"cp {_DISTILL_RUN}/distilled.json checkpoints/{DEFAULT_STUDENT}.json && "
                       f"python scripts/mean_path_fit.py checkpoints/{DEFAULT_STUDENT} "
                       f"--out checkpoints/{DEFAULT_RECEIVER} --fit-scenes 2000 --maps received"),
    )
}


@dataclass(frozen=True)
class Method:
    """One row of the evaluation tables.

    Attributes:
        key: identifier (``--methods``, file names, the results store).
        label: the row's name in the tables.
        kind: ``"semantic"``, ``"full-image"``, ``"real"``, ``"digital-image"`` or ``"digital-maps"``.
        checkpoint: checkpoint role (semantic rows only).
        fds: FDS at the receiver (Eq. 2) before sampling.
        equal_uses: downsample the maps per scene so that the frame needs no more channel
            uses than the image's pixels (:func:`equal_use_factor`).
        channel: channel preset for this row (``None``: the run's ``--channel``).
        sampler, steps: sampler for this row (``None``: the run's ``--sampler/--steps``).
        noisy_training, fds_training: how its checkpoint was trained (for Table 5).
        table5: the row appears in the ablation table (Table 5).
        source: digital-image rows: the image format (``"jpeg"``, ``"webp"``, ``"png"``).
        guidance_scale: classifier-free guidance of this row (``None``: the run's ``--guidance``).
    """

    key: str
    label: str
    kind: str
    checkpoint: str | None = None
    fds: bool = True
    equal_uses: bool = False
    channel: str | None = None
    sampler: str | None = None
    steps: int | None = None
    noisy_training: bool | None = None
    fds_training: bool | None = None
    table5: bool = False
    source: str | None = None
    guidance_scale: float | None = None

    @property
    def generative(self) -> bool:
        return self.kind in ("semantic", "digital-maps")

    @property
    def digital(self) -> bool:
        return self.kind.startswith("digital")

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("source", "guidance_scale"):  # absent, not null: result stores made before these fields still resume
            if d[key] is None:
                del d[key]
        return d


#: Every row the channel study knows, in table order.
METHODS: dict[str, Method] = {
    m.key: m
    for m in (
        Method("real", "Real images (ceiling)", "real"),
        Method("full-image", "Full image (pixels through the channel)", "full-image"),
        Method("ours", "Our method (noisy training + FDS)", "semantic", checkpoint="ours", fds=True,
               noisy_training=True, fds_training=True, table5=True),
        Method("ours-fast", f"Our method, the receiver's default (distilled student, {DEFAULT_SAMPLER}, "
               f"{DEFAULT_STEPS} passes)", "semantic", checkpoint="student", fds=True, sampler=DEFAULT_SAMPLER,
               steps=DEFAULT_STEPS, noisy_training=True, fds_training=True),
        Method("no-fds", "No FDS at inference", "semantic", checkpoint="ours", fds=False,
               noisy_training=True, fds_training=True, table5=True),
        Method("no-noisy", "No noisy training", "semantic", checkpoint="clean", fds=True,
               noisy_training=False, fds_training=False, table5=True),
        Method("neither", "Neither (no noisy training, no FDS)", "semantic", checkpoint="clean", fds=False,
               noisy_training=False, fds_training=False, table5=True),
        Method("fds-inference-only", "FDS at inference only (noisy training without FDS)", "semantic",
               checkpoint="nofds", fds=True, noisy_training=True, fds_training=False),
        Method("equal-uses", "Our method at equal channel uses (maps downsampled)", "semantic",
               checkpoint="ours", fds=True, equal_uses=True, noisy_training=True, fds_training=True),
        Method("authors-code", "Our method, authors'-code noise preset", "semantic", checkpoint="ours",
               fds=True, channel="authors-code", noisy_training=True, fds_training=True),
        Method("digital-jpeg", "Digital: JPEG at <= 3 uses/px (LDPC + QAM)", "digital-image", source="jpeg"),
        Method("digital-webp", "Digital: WebP at <= 3 uses/px (LDPC + QAM)", "digital-image", source="webp"),
        Method("digital-png", "Digital: PNG, lossless (LDPC + QAM)", "digital-image", source="png"),
        Method("digital-maps", "Digital: lossless maps (LDPC + QAM) + generation", "digital-maps", checkpoint="ours",
               fds=True, noisy_training=True, fds_training=True),
    )
}

#: Rows of a plain ``gesco evaluate`` (the authors'-code preset row and the digital rows,
#: which need the [sionna] extra, are opt-in).
DEFAULT_METHODS: tuple[str, ...] = tuple(k for k in METHODS if k != "authors-code" and not METHODS[k].digital)
#: The digital comparison (``--methods digital``): analog pixels, analog maps (ours, and at
#: equal channel uses) and the digital rows.
DIGITAL_METHODS: tuple[str, ...] = ("real", "full-image", "ours", "equal-uses", "digital-jpeg", "digital-webp",
                                    "digital-png", "digital-maps")


def select_methods(keys: list[str] | tuple[str, ...]) -> list[Method]:
    """The :class:`Method` of each key, in table order, the real-images row always included.

    The real row is always evaluated because the Frechet distance compares every row with
    the real images' features; it is shown only when asked for (see ``shown`` in the runner).

    Raises:
        GescoInputError: an unknown key.
    """
    unknown = [k for k in keys if k not in METHODS]
    if unknown:
        raise GescoInputError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    wanted = set(keys) | {"real"}
    return [m for k, m in METHODS.items() if k in wanted]


def expand_methods(keys: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``--methods`` with the alias ``digital`` replaced by :data:`DIGITAL_METHODS` (order kept, no repeats)."""
    out: list[str] = []
    for k in keys:
        for key in (DIGITAL_METHODS if k == "digital" else (k,)):
            if key not in out:
                out.append(key)
    return tuple(out)


def parse_checkpoint_overrides(items: list[str] | None) -> dict[str, str]:
    """``["ROLE=PATH", ...]`` -> ``{role: path}``.

    Raises:
        GescoInputError: malformed item or unknown role.
    """
    out: dict[str, str] = {}
    for item in items or []:
        role, sep, path = item.partition("=")
        role = role.strip()
        if not sep or not role or not path.strip():
            raise GescoInputError(f"--checkpoint expects ROLE=PATH, got {item!r}")
        if role not in CHECKPOINT_ROLES:
            raise GescoInputError(f"unknown checkpoint role {role!r}; known: {', '.join(CHECKPOINT_ROLES)}")
        out[role] = path.strip()
    return out


def checkpoint_path(role: str, overrides: dict[str, str]) -> Path:
    """The checkpoint stem of ``role``: the user's override or the shipped file."""
    if role in overrides:
        return Path(overrides[role]).expanduser()
    return CHECKPOINT_ROLES[role].default_path()


def checkpoint_exists(path: Path) -> bool:
    """Both files of a checkpoint (``.safetensors`` and ``.json``) are there."""
    from gesco.checkpoint_io import checkpoint_paths  # imports torch: not at module level (``gesco --help``)

    weights, config = checkpoint_paths(path)
    return weights.is_file() and config.is_file()


def equal_use_factor(n_maps: int, height: int, width: int, image_channels: int = 3) -> int:
    """Smallest downsampling factor ``k`` with ``n_maps * ceil(H/k) * ceil(W/k) <= C * H * W``.

    ``C * H * W`` are the channel uses of the "Full image" baseline (one real symbol per
    pixel value); ``n_maps * ceil(H/k) * ceil(W/k)`` those of ``n_maps`` maps downsampled
    ``k`` times (:mod:`gesco.codecs.downsample`).
    """
    if n_maps < 1 or height < 1 or width < 1:
        raise GescoInputError(f"need n_maps, height, width >= 1, got {n_maps}, {height}, {width}")
    budget = image_channels * height * width
    k = 1
    while n_maps * (-(-height // k)) * (-(-width // k)) > budget:
        k += 1
    return k
