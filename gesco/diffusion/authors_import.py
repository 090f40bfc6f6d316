"""Import the authors' published checkpoints (SDM / GESCO ``UNetModel`` state dicts) into gesco.

The paper's model (GESCO, Cityscapes 256x512) and SDM's ADE20K / COCO-Stuff models are
plain ``torch.save`` state dicts of guided-diffusion's ``UNetModel`` as edited by SDM
(fp32 master weights, keys possibly prefixed by ``module.`` or ``model.``). Their network
is :class:`gesco.diffusion.unet.SpadeUNet` with :meth:`UNetConfig.authors` (same
mathematics, other names); this module maps every key:

===================================================  ==========================================
authors' key                                         gesco key
===================================================  ==========================================
``time_embed.{0,2}``                                 ``time_embed.{0,2}``
``input_blocks.0.0``                                 ``input_conv``
``input_blocks.{j+1}.0`` (ResBlock)                  ``down.{j}.0``: ``in_layers.0`` -> ``norm1``,
                                                     ``in_layers.2`` -> ``conv1``, ``emb_layers.1``
                                                     -> ``emb``, ``out_layers.0`` -> ``norm2``,
                                                     ``out_layers.3`` -> ``conv2``,
                                                     ``skip_connection`` -> ``skip``
``input_blocks.{j+1}.0.op`` (conv Downsample)        ``down.{j}.0``
``*.1`` (AttentionBlock)                             ``norm``, ``qkv`` (rows reordered, below),
                                                     ``proj_out`` -> ``proj``
``middle_block.{0,1,2}``                             ``mid1``, ``mid_attn``, ``mid2``
``output_blocks.{k}.*`` (SDMResBlock)                ``up.{k}.*``: ``in_norm`` -> ``norm1``,
                                                     ``out_norm`` -> ``norm2``, ``in_layers.1``
                                                     -> ``conv1``, ``out_layers.2`` -> ``conv2``
``*_norm.mlp_shared.0``                              ``norm*.label.conv``
``*_norm.mlp_gamma`` + ``*_norm.mlp_beta``           ``norm*.gamma_beta`` (stacked: gamma rows,
                                                     then beta rows)
``output_blocks.{k}.{i}.conv`` (conv Upsample)       ``up.{k}.{i}``
``out.{0,2}``                                        ``out.{0,2}``
``input_blocks.*.spade_norm.*`` (GESCO only)         dropped: built but never called in GESCO
===================================================  ==========================================

Attention: the authors' ``qkv`` output rows are ordered (head, q|k|v, channel)
(``QKVAttentionLegacy``); gesco's are (q|k|v, head, channel). The importer permutes
them; nothing else changes a value.

Label variants (read off the shape of ``middle_block.0.in_norm.mlp_shared.0.weight``,
``(128, L, 3, 3)``): ``L = C + 1`` one-hot maps + the instance-edge map (SDM, GESCO with
``one_hot_label=True``), ``L = C`` for data sets trained without instances (``--no_instance
True``: ADE20K), ``L = 2`` GESCO's default ``one_hot_label=False``: the label id as one
float channel and the edge map (``UNetConfig.label_input``).

Loading is ``torch.load(weights_only=True)`` only: nothing but tensors and plain
containers is unpickled. Every refusal is a named subclass of :class:`AuthorsImportError`.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from gesco.defaults import GUIDED_SAMPLER, GUIDED_STEPS
from gesco.diffusion.authors_flags import (
    DATASETS,
    AuthorsFlags,
    AuthorsImportError,
    ClassCountError,
    DatasetPreset,
    MissingKeysError,
    NotAStateDictError,
    ResolutionMismatchError,
    ShapeMismatchError,
    UnmappableKeysError,
    UnreadableCheckpointError,
    UnsupportedFlagsError,
)
from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.unet import Attention, ResBlock, SpadeUNet, UNetConfig

#: key prefixes a checkpoint may carry (DDP's ``module.``, wrappers' ``model.``)
STRIPPED_PREFIXES = ("module.", "model.")
#: GESCO's unused per-encoder-block SPADE (``ResBlock.spade_norm``), dropped on import
DROPPED_MARKER = ".spade_norm."
#: the key whose shape says which label variant a checkpoint is
LABEL_PROBE_KEY = "middle_block.0.in_norm.mlp_shared.0.weight"


def unet_config(flags: AuthorsFlags, preset: DatasetPreset, label_input: str = "onehot") -> UNetConfig:
    """The :class:`UNetConfig` of the authors' network at ``flags`` for ``preset``'s labels."""
    if not flags.use_scale_shift_norm:
        raise UnsupportedFlagsError("use_scale_shift_norm False (time embedding added, not scale/shift) is not "
                                    "implemented by gesco's SpadeUNet")
    bad = [r for r in flags.attention_resolutions if r <= 0 or flags.image_size % r]
    if bad:
        raise UnsupportedFlagsError(f"attention_resolutions {bad} do not divide image_size {flags.image_size}")
    cfg = UNetConfig.authors(
        label_channels=preset.num_classes + 1,  # gesco's conditioning always carries the edge map (zero when absent)
        label_input=label_input,
        base_channels=flags.num_channels,
        channel_mult=flags.mult(),
        num_res_blocks=flags.num_res_blocks,
        attention_ds=tuple(flags.image_size // r for r in flags.attention_resolutions),
        head_channels=flags.num_head_channels,
        learn_sigma=flags.learn_sigma,
    )
    cfg.resblock_updown = flags.resblock_updown
    return cfg


# --------------------------------------------------------------------------- the key map

#: how a gesco tensor is made from its authors' source tensors
Op = str  # "copy" | "cat" (gamma then beta rows) | "qkv" (rows (head, qkv, ch) -> (qkv, head, ch))


@dataclass(frozen=True)
class KeyRule:
    """One gesco tensor: ``target`` made by ``op`` from the authors' ``sources``."""

    target: str
    sources: tuple[str, ...]
    op: Op = "copy"
    heads: int = 1


class _KeyRules:
    """Collects :class:`KeyRule` s block by block: a gesco module prefix ``g`` and the authors' ``s``."""

    def __init__(self) -> None:
        self.rules: list[KeyRule] = []

    def add(self, g: str, s: list[str] | str, op: Op = "copy", heads: int = 1) -> None:
        """``g``'s weight and bias from the same parameters of ``s`` (one key, or several concatenated)."""
        srcs = [s] if isinstance(s, str) else s
        for pname in ("weight", "bias"):
            self.rules.append(KeyRule(f"{g}.{pname}", tuple(f"{x}.{pname}" for x in srcs), op, heads))

    def resblock(self, g: str, s: str, block: ResBlock) -> None:
        add = self.add
        if block.spade:
            for gn, sn in (("norm1", "in_norm"), ("norm2", "out_norm")):
                add(f"{g}.{gn}.label.conv", f"{s}.{sn}.mlp_shared.0")
                add(f"{g}.{gn}.gamma_beta", [f"{s}.{sn}.mlp_gamma", f"{s}.{sn}.mlp_beta"], "cat")
            add(f"{g}.conv1", f"{s}.in_layers.1")
            add(f"{g}.emb", f"{s}.emb_layers.1")
            add(f"{g}.conv2", f"{s}.out_layers.2")
        else:
            add(f"{g}.norm1", f"{s}.in_layers.0")
            add(f"{g}.conv1", f"{s}.in_layers.2")
            add(f"{g}.emb", f"{s}.emb_layers.1")
            add(f"{g}.norm2", f"{s}.out_layers.0")
            add(f"{g}.conv2", f"{s}.out_layers.3")
        if not isinstance(block.skip, nn.Identity):
            add(f"{g}.skip", f"{s}.skip_connection")

    def attention(self, g: str, s: str, block: Attention) -> None:
        self.add(f"{g}.norm", f"{s}.norm")
        self.add(f"{g}.qkv", f"{s}.qkv", "qkv", block.heads)
        self.add(f"{g}.proj", f"{s}.proj_out")

    def layer(self, g: str, s: str, modules: nn.ModuleList, conv_name: str) -> None:
        for i, m in enumerate(modules):
            if isinstance(m, ResBlock):
                self.resblock(f"{g}.{i}", f"{s}.{i}", m)
            elif isinstance(m, Attention):
                self.attention(f"{g}.{i}", f"{s}.{i}", m)
            else:  # a conv Downsample (``.op``) / Upsample (``.conv``)
                self.add(f"{g}.{i}", f"{s}.{i}.{conv_name}")


def key_map(cfg: UNetConfig) -> list[KeyRule]:
    """Every tensor of ``SpadeUNet(cfg)`` with the authors' key(s) it comes from, in gesco's order.

    ``cfg`` must use the authors' layout (``spade_per_layer``); its down / up sampling may be
    residual blocks or convolutions, as their ``resblock_updown``.
    """
    if not cfg.spade_per_layer or cfg.mean_skip:
        raise UnsupportedFlagsError("the authors' network needs spade_per_layer=True and mean_skip=False")
    with torch.device("meta"):
        model = SpadeUNet(cfg)
    m = _KeyRules()
    m.add("time_embed.0", "time_embed.0")
    m.add("time_embed.2", "time_embed.2")
    m.add("input_conv", "input_blocks.0.0")
    for j, mods in enumerate(model.down):
        m.layer(f"down.{j}", f"input_blocks.{j + 1}", mods, "op")
    m.resblock("mid1", "middle_block.0", model.mid1)
    m.attention("mid_attn", "middle_block.1", model.mid_attn)
    m.resblock("mid2", "middle_block.2", model.mid2)
    for k, mods in enumerate(model.up):
        m.layer(f"up.{k}", f"output_blocks.{k}", mods, "conv")
    m.add("out.0", "out.0")
    m.add("out.2", "out.2")
    rules = m.rules
    expected = list(model.state_dict())
    if sorted(r.target for r in rules) != sorted(expected):  # a bug in this map, never the user's input
        raise AssertionError(f"key map out of date: {sorted(set(expected) ^ {r.target for r in rules})}")
    order = {k: i for i, k in enumerate(expected)}
    return sorted(rules, key=lambda r: order[r.target])


def _apply(rule: KeyRule, tensors: list[torch.Tensor]) -> torch.Tensor:
    if rule.op == "copy":
        return tensors[0]
    if rule.op == "cat":
        if any(t.is_meta for t in tensors):  # shapes only (torch.cat on meta tensors imports torch's compiler stack)
            if len({t.shape[1:] for t in tensors}) != 1:
                raise RuntimeError("cat of mismatched shapes")
            return torch.empty((sum(t.shape[0] for t in tensors), *tensors[0].shape[1:]), device="meta")
        return torch.cat(tensors, dim=0)
    w = tensors[0]  # qkv: (3C, ...) rows ordered (head, q|k|v, channel) -> (q|k|v, head, channel)
    rest = w.shape[1:]
    c_head = w.shape[0] // (3 * rule.heads)
    return w.reshape(rule.heads, 3, c_head, *rest).transpose(0, 1).reshape(w.shape[0], *rest)


def _invert(rule: KeyRule, t: torch.Tensor) -> list[torch.Tensor]:
    if rule.op == "copy":
        return [t]
    if rule.op == "cat":
        return list(t.chunk(2, dim=0))
    rest = t.shape[1:]
    c_head = t.shape[0] // (3 * rule.heads)
    return [t.reshape(3, rule.heads, c_head, *rest).transpose(0, 1).reshape(t.shape[0], *rest)]


def source_shapes(cfg: UNetConfig) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the authors' state dict at ``cfg`` (without GESCO's ``spade_norm``)."""
    with torch.device("meta"):
        model = SpadeUNet(cfg)
    return {k: tuple(v.shape) for k, v in to_authors_state_dict(model).items()}


def to_authors_state_dict(model: SpadeUNet) -> dict[str, torch.Tensor]:
    """The inverse map: a gesco model of the authors' layout as the authors' state dict (SDM keys)."""
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for rule in key_map(model.config):
        for key, t in zip(rule.sources, _invert(rule, sd[rule.target])):
            out[key] = t.clone() if t.device.type != "meta" else t
    return out


# --------------------------------------------------------------------------- reading a file

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _first_sentence(e: Exception) -> str:
    text = " ".join(str(e).split())
    return (text.split(". ")[0] + ".")[:200] if text else type(e).__name__


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` checked to be a flat ``{name: tensor}`` mapping.

    A ``module.`` / ``model.`` prefix shared by every key is stripped.

    Raises:
        UnreadableCheckpointError: missing, truncated, or not a ``torch.save`` file.
        NotAStateDictError: it holds other objects than tensors (refused by the weights-only
            unpickler, or a mapping with non-tensor values).
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableCheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise NotAStateDictError(f"{path}: refused by the weights-only unpickler (it holds objects other than "
                                 f"tensors, which gesco never unpickles): {_first_sentence(e)}") from None
    except Exception as e:  # whatever torch.load raises on a damaged file is reported, named
        raise UnreadableCheckpointError(f"{path}: not a readable torch.save file (truncated or corrupt?): "
                                        f"{type(e).__name__}: {_first_sentence(e)}") from None
    if not isinstance(obj, dict) or not obj:
        raise NotAStateDictError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise NotAStateDictError(f"{path}: {len(bad)} entries are not tensors (a training state, not the weights?): "
                                 f"{', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}")
    for prefix in STRIPPED_PREFIXES:
        if all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- the import

@dataclass
class ImportReport:
    """What :func:`import_state_dict` found and did."""

    variant: str  # "sdm" | "gesco" (had spade_norm keys)
    label_input: str
    dropped_keys: int
    mapped_keys: int
    parameters: int
    notes: list[str] = field(default_factory=list)


def _levels_of(sd: dict[str, torch.Tensor]) -> tuple[int, int | None]:
    """(number of output blocks, base width) of an authors' state dict."""
    outs = {int(k.split(".")[1]) for k in sd if k.startswith("output_blocks.") and k.split(".")[1].isdigit()}
    stem = sd.get("input_blocks.0.0.weight")
    return (max(outs) + 1 if outs else 0), (int(stem.shape[0]) if stem is not None and stem.dim() == 4 else None)


def detect_label_input(sd: dict[str, torch.Tensor], preset: DatasetPreset, dataset: str) -> str:
    """Which label variant a checkpoint is, checked against the data set's class count."""
    probe = sd.get(LABEL_PROBE_KEY)
    if probe is None and any(k.startswith("mid1.") for k in sd):
        raise MissingKeysError(f"no {LABEL_PROBE_KEY}: this is already a gesco checkpoint (keys mid1.*, up.*); "
                               "pass it to --checkpoint as it is")
    if probe is None or probe.dim() != 4:
        raise MissingKeysError(f"no {LABEL_PROBE_KEY} (4-d) in the checkpoint: not an SDM / GESCO UNetModel")
    got = int(probe.shape[1])
    onehot = preset.num_classes + int(preset.instances)
    if got == onehot:
        return "onehot" if preset.instances else "onehot_no_edge"
    if got == 2 and preset.instances:
        return "index_edge"
    raise ClassCountError(
        f"the checkpoint's label MLPs read {got} channels; {dataset} needs {onehot} "
        f"({preset.num_classes} classes{' + 1 edge map' if preset.instances else ', no edge map'})"
        f"{' or 2 (GESCO one_hot_label=False)' if preset.instances else ''}: a model of another data set?")


def import_state_dict(sd: dict[str, torch.Tensor], flags: AuthorsFlags, dataset: str
                      ) -> tuple[SpadeUNet, ImportReport]:
    """Build the gesco model of an authors' state dict (already read by :func:`read_state_dict`).

    Raises:
        ClassCountError, ResolutionMismatchError, UnmappableKeysError, MissingKeysError,
        ShapeMismatchError, UnsupportedFlagsError: see their docstrings; the message lists the
        offending keys.
    """
    if dataset not in DATASETS:
        raise UnsupportedFlagsError(f"unknown data set {dataset!r}; known: {', '.join(DATASETS)}")
    preset = DATASETS[dataset]
    dropped = [k for k in sd if DROPPED_MARKER in f".{k}"]
    sd = {k: v for k, v in sd.items() if DROPPED_MARKER not in f".{k}"}
    label_input = detect_label_input(sd, preset, dataset)
    cfg = unet_config(flags, preset, label_input)
    rules = key_map(cfg)
    with torch.device("meta"):
        model_meta = SpadeUNet(cfg)
    want = {k: tuple(v.shape) for k, v in model_meta.state_dict().items()}

    levels, width = _levels_of(sd)
    want_levels = len(cfg.channel_mult) * (cfg.blocks_per_level()[0] + 1)
    if levels != want_levels or (width is not None and width != cfg.base_channels):
        raise ResolutionMismatchError(
            f"the checkpoint has {levels} decoder blocks and {width} base channels; the flags (image_size "
            f"{flags.image_size}, channel_mult {list(cfg.channel_mult)}, num_res_blocks {flags.num_res_blocks}, "
            f"num_channels {flags.num_channels}) need {want_levels} and {cfg.base_channels}: a model for another "
            f"resolution or size (pass its own flags, or import the model made for this resolution)")

    needed = {s for r in rules for s in r.sources}
    unmapped = sorted(set(sd) - needed)
    if unmapped:
        raise UnmappableKeysError(f"{len(unmapped)} keys of the checkpoint map to nothing in the authors' network "
                                  f"at these flags: {', '.join(unmapped[:12])}{' ...' if len(unmapped) > 12 else ''}")
    missing = sorted(needed - set(sd))
    if missing:
        raise MissingKeysError(f"{len(missing)} keys of the authors' network are missing from the checkpoint: "
                               f"{', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}")
    state: dict[str, torch.Tensor] = {}
    bad: list[str] = []
    for rule in rules:
        srcs = [sd[s] for s in rule.sources]
        try:
            t = _apply(rule, srcs)
        except RuntimeError:
            t = None
        if t is None or tuple(t.shape) != want[rule.target]:
            bad.append(f"{'+'.join(rule.sources)} {[list(s.shape) for s in srcs]} (needs {list(want[rule.target])})")
            continue
        if preset.label_shift and label_input != "index_edge" and rule.target.endswith(".label.conv.weight"):
            # gesco's class id j reads the authors' one-hot channel (j + shift) mod C
            c = preset.num_classes
            order = [(j + preset.label_shift) % c for j in range(c)] + list(range(c, t.shape[1]))
            t = t[:, order]
        state[rule.target] = t.to(torch.float32).contiguous()
    if bad:
        raise ShapeMismatchError(f"{len(bad)} tensors have shapes that do not fit the flags: "
                                 f"{'; '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}")
    # the meta-device model takes the imported tensors as its parameters (no random init, no second copy)
    model_meta.load_state_dict(state, strict=True, assign=True)
    model = model_meta.eval()
    report = ImportReport(variant="gesco" if dropped else "sdm", label_input=label_input, dropped_keys=len(dropped),
                          mapped_keys=len(needed), parameters=sum(p.numel() for p in model.parameters()))
    if any(v.dtype == torch.float16 for v in sd.values()):
        report.notes.append("float16 tensors upcast to float32")
    return model, report


def import_checkpoint(src: str | Path, out: str | Path, dataset: str = "cityscapes",
                      flags: AuthorsFlags | None = None, progress: Callable[[str], None] | None = None
                      ) -> tuple[Path, ModelCard, ImportReport]:
    """Import ``src`` (an authors' ``.pt``) and write a gesco checkpoint ``out`` (safetensors + JSON card).

    The card records the source file's name and SHA-256, the flags, the class space, the
    label variant, what the edge map must be (:data:`DATASETS`), the resolution
    ``(image_size, aspect * image_size)`` and the authors' guidance scale.
    """
    flags = flags or AuthorsFlags()
    say = progress or (lambda _m: None)
    src = Path(src)
    t0 = time.perf_counter()
    say(f"reading {src} (torch.load, weights_only=True)")
    sd = read_state_dict(src)
    digest = sha256_file(src)
    say(f"read {len(sd)} tensors in {time.perf_counter() - t0:.1f} s; mapping")
    model, report = import_state_dict(sd, flags, dataset)
    del sd
    preset = DATASETS[dataset]
    card = ModelCard(
        unet=model.config,
        diffusion=DiffusionConfig(num_timesteps=flags.diffusion_steps, beta_schedule=flags.noise_schedule,
                                  learn_sigma=flags.learn_sigma),
        class_space=preset.class_space,
        resolution=(flags.image_size, preset.aspect * flags.image_size),
        conditioning={"edge_map": preset.instances, "edges": preset.edges, "null_label": "zeros",
                      "instance_ids": "8bit" if preset.instances else "full",
                      # the few-step setting of gesco's guided models (docs/evaluation/samplers-sde/), the
                      # cheapest validated there; quality of the authors' weights with it is unmeasured here
                      "recommended_sampling": {"sampler": GUIDED_SAMPLER, "steps": GUIDED_STEPS,
                                               "guidance_scale": preset.guidance_scale},
                      "guidance_scale": preset.guidance_scale, "label_input": report.label_input},
        training={"imported": {
            "source": src.name, "sha256": digest, "variant": report.variant, "dataset": dataset,
            "flags": flags.to_dict(), "dropped_keys": report.dropped_keys, "mapped_keys": report.mapped_keys,
            "parameters": report.parameters, "notes": report.notes,
            "importer": "gesco import (gesco.diffusion.authors_import)"}},
    )
    say(f"writing {out}")
    path = save_checkpoint(out, model, card)
    say(f"done in {time.perf_counter() - t0:.1f} s: {report.parameters:,} parameters")
    return path, card, report


def is_imported(card: ModelCard) -> bool:
    """Whether a checkpoint was made by :func:`import_checkpoint`."""
    return isinstance(card.training, dict) and "imported" in card.training


def parameter_count(cfg: UNetConfig) -> int:
    """Parameters of ``SpadeUNet(cfg)`` (built on the meta device)."""
    with torch.device("meta"):
        return sum(p.numel() for p in SpadeUNet(cfg).parameters())


__all__ = [
    "AuthorsFlags", "AuthorsImportError", "ClassCountError", "DATASETS", "DatasetPreset", "ImportReport",
    "KeyRule", "MissingKeysError", "NotAStateDictError", "ResolutionMismatchError", "ShapeMismatchError",
    "UnmappableKeysError", "UnreadableCheckpointError", "UnsupportedFlagsError", "import_checkpoint",
    "import_state_dict", "is_imported", "key_map", "parameter_count", "read_state_dict",
    "source_shapes", "to_authors_state_dict", "unet_config",
]
