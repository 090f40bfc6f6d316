"""Model performance: cost of the SPADE U-Net and of sampling one image at 64x128 on the CPU.

What is measured (each part is a *section*; results go to ``bench/results/model.json``
and a readable summary to ``bench/results/model.md``):

* ``flops``: GFLOP per forward (``torch.utils.flop_counter.FlopCounterMode``) and how
  they split between the SPADE convolutions (per-layer ``gamma``/``beta`` convolutions,
  shared per-level label embeddings) and the rest, for ``spade_kernel`` 1 (the default)
  and 3 (the authors' code), plus the FLOPs a per-layer (unshared) label embedding would
  add (computed from the measured per-level embedding cost).
* ``forward``: seconds per network evaluation at batch 1 and batch 2 (batch 2 = the
  conditional + unconditional pass of classifier-free guidance, one batched forward),
  for 1 and 2 threads and the variants ``no_grad`` (baseline), ``inference_mode``,
  ``channels_last`` (model and inputs in NHWC memory format, inference mode) and
  ``fused_prototype`` (a candidate change defined in this file, not in gesco: fused and
  in-place elementwise ops, contiguous attention inputs; inference mode).
* ``spade``: the share of forward time spent in the SPADE convolutions (timed with
  forward hooks) and the whole forward for ``spade_kernel`` 1 vs 3.
* ``sampling``: seconds per image for DPM-Solver++(2M) with 20 guided steps through
  :class:`~gesco.diffusion.pipeline.SemanticGenerator`, against the paper's 1000-step
  ancestral sampler. The 1000-step cost is **extrapolated**: the ancestral sampler's
  per-step cost is measured on a short respaced chain (the same code,
  the ``ancestral`` sampler, one guided forward per step) and multiplied by 1000.
  ``network_evaluations`` gives the evaluation counts.
* ``memory``: peak resident set size (``VmHWM`` of ``/proc/self/status``), one fresh
  subprocess per configuration so each peak is clean.
* ``compile`` (only when asked, ``--sections compile``): ``torch.compile`` time (cold
  inductor cache in a fresh temporary folder) and compiled vs eager forward time.

Timing method: the machine is shared, so variants are interleaved (A B C A B C ...)
and medians are reported, both wall-clock and process CPU time; the load average is
recorded at the start and end of each section. Ratios measured side by side in one
run are more trustworthy than absolute times.

Weights: random weights of the default :class:`~gesco.diffusion.unet.UNetConfig` (the
CPU model; the shipped 64x128 config has the same architecture) unless ``--checkpoint``
is given. Speed does not depend on the weight values (dense convolutions); the random
weights are perturbed away from the zero-initialised output layers so that the
numerical checks between variants compare non-trivial outputs.

Usage:
    python bench/bench_model.py                           # all default sections, random weights
    python bench/bench_model.py --checkpoint              # the shipped checkpoint
    python bench/bench_model.py --sections compile        # add torch.compile (minutes), merged
    python bench/bench_model.py --sections flops memory --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gesco.data.synthetic import generate_scene
from gesco.diffusion.checkpoint import ModelCard, load_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: machine_info (also when loaded by the tests)
from machine_info import cpu_model

from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.diffusion.samplers import network_evaluations
from gesco.diffusion.unet import SPADE, Attention, LabelEmbedding, ResBlock, SpadeUNet, UNetConfig
from gesco.paths import DEFAULT_DIFFUSION, shipped_checkpoint
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.layout import full_conditioning

HEIGHT, WIDTH = 64, 128
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SECTIONS = ("flops", "forward", "spade", "sampling", "memory")
ALL_SECTIONS = DEFAULT_SECTIONS + ("compile",)
Forward = Callable[[], torch.Tensor]


# ---------------------------------------------------------------------------- setup
def machine() -> dict:
    """CPU model, core count, torch version and threads of this host."""
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_default_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


def load_model(checkpoint: Path | None, spade_kernel: int | None = None) -> tuple[SpadeUNet, ModelCard, str]:
    """The U-Net to measure (eval mode, CPU), its model card and a description of its weights.

    Random weights (seed 0) of the default :class:`UNetConfig` unless ``checkpoint``;
    ``spade_kernel`` overrides the config's (random weights only).
    """
    if checkpoint is not None and spade_kernel is None:
        model, card = load_checkpoint(checkpoint, map_location="cpu")
        return model.eval(), card, f"checkpoint {checkpoint}"
    cfg = UNetConfig() if spade_kernel is None else UNetConfig(spade_kernel=spade_kernel)
    torch.manual_seed(0)
    model = SpadeUNet(cfg).eval()
    with torch.no_grad():  # move the zero-initialised layers off zero: non-trivial outputs
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), resolution=(HEIGHT, WIDTH))
    return model, card, f"random weights, UNetConfig(spade_kernel={cfg.spade_kernel}) defaults"


def conditioning() -> torch.Tensor:
    """``(1, 36, 64, 128)`` float32 clean conditioning of synthetic scene 0."""
    scene = generate_scene(0, HEIGHT, WIDTH)
    return full_conditioning(scene.label, CITYSCAPES, scene.instance)[None]


def model_inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, t, y)`` of one forward: batch 1 conditional; batch 2 = [conditional, null map]."""
    y = conditioning()
    if batch == 2:
        y = torch.cat([y, torch.zeros_like(y)])
    elif batch != 1:
        y = y.expand(batch, -1, -1, -1).contiguous()
    g = torch.Generator().manual_seed(1)
    x = torch.randn((batch, 3, HEIGHT, WIDTH), generator=g)
    t = torch.full((batch,), 500, dtype=torch.long)
    return x, t, y


# A candidate optimisation measured here but not part of gesco: inference-only fused and
# in-place elementwise ops (the SPADE / time modulation as one ``addcmul``, in-place SiLU
# and residual add) and contiguous q, k, v so that scaled_dot_product_attention takes its
# fused CPU kernel instead of the reference (math) path. Same state_dict, same numerics to
# float rounding; it mutates intermediate tensors, so it is only valid without autograd.
def _spade_fused(self: SPADE, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    gamma, beta = self.gamma_beta(emb).chunk(2, dim=1)
    return torch.addcmul(beta, self.norm(h), gamma.add_(1.0))


def _resblock_fused(self: ResBlock, x: torch.Tensor, temb: torch.Tensor, lab: torch.Tensor | None = None) -> torch.Tensor:
    h = self.conv1(F.silu(self._norm(self.norm1, x, lab), inplace=True))
    scale, shift = self.emb(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
    h = torch.addcmul(shift, self._norm(self.norm2, h, lab), scale + 1.0)
    h = self.conv2(self.drop(F.silu(h, inplace=True)))
    return h.add_(self.skip(x))


def _attention_contiguous(self: Attention, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    qkv = self.qkv(self.norm(x).reshape(b, c, h * w))  # (B, 3C, N)
    q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
    out = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous())
    out = out.transpose(-1, -2).reshape(b, c, h * w)
    return x + self.proj(out).reshape(b, c, h, w)


@contextlib.contextmanager
def fused_elementwise():
    """Temporarily swap in the fused prototype forwards above (restored on exit)."""
    saved = SPADE.forward, ResBlock.forward, Attention.forward
    SPADE.forward, ResBlock.forward, Attention.forward = _spade_fused, _resblock_fused, _attention_contiguous
    try:
        yield
    finally:
        SPADE.forward, ResBlock.forward, Attention.forward = saved


def variants(model: SpadeUNet, batch: int) -> dict[str, Forward]:
    """The forward variants compared, each a no-argument callable returning the output."""
    x, t, y = model_inputs(batch)
    nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x_cl, y_cl = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)

    def no_grad() -> torch.Tensor:
        with torch.no_grad():
            return model(x, t, y)

    def inference_mode() -> torch.Tensor:
        with torch.inference_mode():
            return model(x, t, y)

    def channels_last() -> torch.Tensor:
        with torch.inference_mode():
            return nhwc(x_cl, t, y_cl)

    def fused_prototype() -> torch.Tensor:
        with torch.inference_mode(), fused_elementwise():
            return model(x, t, y)

    return {"no_grad": no_grad, "inference_mode": inference_mode, "channels_last": channels_last,
            "fused_prototype": fused_prototype}


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(wall seconds, process CPU seconds)`` of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def summary(walls: list[float], cpus: list[float]) -> dict:
    return {
        "wall_s_median": round(statistics.median(walls), 4),
        "cpu_s_median": round(statistics.median(cpus), 4),
        "wall_s_min": round(min(walls), 4),
        "wall_s": [round(w, 4) for w in walls],
        "cpu_s": [round(c, 4) for c in cpus],
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# ---------------------------------------------------------------------------- flops
def flop_split(model: SpadeUNet, batch: int = 1) -> dict:
    """GFLOP of one forward at ``batch``, split into SPADE convolutions and the rest."""
    x, t, y = model_inputs(batch)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x, t, y)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    prefix = type(model).__name__ + "."
    gamma_beta = sum(per_module.get(prefix + n + ".gamma_beta", 0) for n, m in model.named_modules() if isinstance(m, SPADE))
    embed_per_level = [per_module.get(prefix + f"label_embed.{i}", 0) for i in range(len(model.label_embed))]
    total = counter.get_total_flops()
    # A per-layer embedding (the authors' code) computes the level's embedding once per SPADE layer.
    spade_per_level = [0] * len(model.label_embed)
    last = len(model.config.channel_mult) - 1
    spade_per_level[last] += 4  # mid1, mid2: two SPADE norms each
    for level in model.up_levels:
        spade_per_level[level] += 2
    per_layer_extra = sum((n - 1) * f for n, f in zip(spade_per_level, embed_per_level) if n > 0)
    g = 1e-9
    return {
        "batch": batch,
        "gflop_total": round(total * g, 4),
        "gflop_spade_gamma_beta": round(gamma_beta * g, 4),
        "gflop_label_embedding": round(sum(embed_per_level) * g, 4),
        "gflop_rest": round((total - gamma_beta - sum(embed_per_level)) * g, 4),
        "spade_fraction": round((gamma_beta + sum(embed_per_level)) / total, 4),
        "label_embedding_gflop_per_level": [round(f * g, 4) for f in embed_per_level],
        "spade_layers_per_level": spade_per_level,
        "gflop_total_with_per_layer_embedding": round((total + per_layer_extra) * g, 4),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
    }


def section_flops(model: SpadeUNet) -> dict:
    k3, _, _ = load_model(None, spade_kernel=3)
    return {
        "model": {"batch1": flop_split(model, 1), "batch2": flop_split(model, 2)},
        "spade_kernel_1_random": flop_split(load_model(None, spade_kernel=1)[0], 1),
        "spade_kernel_3_random": flop_split(k3, 1),
    }


# ---------------------------------------------------------------------------- forward
def check_outputs(fns: dict[str, Forward], reference: str) -> dict[str, float]:
    """Max absolute difference of each variant's output from ``reference``'s."""
    ref = fns[reference]()
    return {name: float((fn().float() - ref).abs().max()) for name, fn in fns.items()}


def section_forward(model: SpadeUNet, repeats: int, threads: tuple[int, ...]) -> dict:
    """Seconds per forward: variants x batch {1, 2} x threads, interleaved, medians over ``repeats``."""
    fns = {b: variants(model, b) for b in (1, 2)}
    diffs = {f"batch{b}": check_outputs(fns[b], "no_grad") for b in (1, 2)}
    keys = [(n, b, v) for n in threads for b in (1, 2) for v in fns[b]]
    walls: dict[tuple, list[float]] = {k: [] for k in keys}
    cpus: dict[tuple, list[float]] = {k: [] for k in keys}
    for r in range(repeats):
        for n in threads:
            torch.set_num_threads(n)
            fns[1]["inference_mode"]()  # settle the thread pool after the switch (untimed)
            order = list(fns[1])
            order = order[r % len(order):] + order[: r % len(order)]  # rotate who goes first
            for b in (1, 2):
                for v in order:
                    w, c = timed(fns[b][v])
                    walls[(n, b, v)].append(w)
                    cpus[(n, b, v)].append(c)
    table = {}
    for n, b, v in keys:
        table.setdefault(f"threads{n}", {}).setdefault(f"batch{b}", {})[v] = summary(walls[(n, b, v)], cpus[(n, b, v)])
    return {"repeats": repeats, "max_abs_diff_vs_no_grad": diffs, "seconds": table}


# ---------------------------------------------------------------------------- spade time
class ModuleTimer:
    """Accumulates wall and CPU seconds spent inside chosen modules (forward hooks)."""

    def __init__(self, modules: list[torch.nn.Module]) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._start: list[tuple[float, float]] = []
        self.handles = []
        for m in modules:
            self.handles.append(m.register_forward_pre_hook(self._pre))
            self.handles.append(m.register_forward_hook(self._post))

    def _pre(self, module, args) -> None:
        self._start.append((time.perf_counter(), time.process_time()))

    def _post(self, module, args, out) -> None:
        w, c = self._start.pop()
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def spade_modules(model: SpadeUNet) -> list[torch.nn.Module]:
    """The SPADE-specific convolutions: every ``gamma_beta`` conv and every label embedding."""
    return [m.gamma_beta for m in model.modules() if isinstance(m, SPADE)] + [
        m for m in model.modules() if isinstance(m, LabelEmbedding)
    ]


def section_spade(repeats: int) -> dict:
    """SPADE convolutions' share of forward time, and the forward for spade_kernel 1 vs 3 (1 thread, batch 2)."""
    torch.set_num_threads(1)
    models = {k: load_model(None, spade_kernel=k)[0] for k in (1, 3)}
    x, t, y = model_inputs(2)
    out: dict = {"threads": 1, "batch": 2, "repeats": repeats}
    # whole forward, kernel 1 vs 3, interleaved
    walls = {k: [] for k in models}
    cpus = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():
            m(x, t, y)
        for _ in range(repeats):
            for k, m in models.items():
                w, c = timed(lambda: m(x, t, y))
                walls[k].append(w)
                cpus[k].append(c)
        for k, m in models.items():
            timer = ModuleTimer(spade_modules(m))
            total_w = total_c = 0.0
            for _ in range(max(2, repeats // 2)):
                w, c = timed(lambda: m(x, t, y))
                total_w += w
                total_c += c
            timer.remove()
            out[f"spade_kernel_{k}"] = {
                "forward": summary(walls[k], cpus[k]),
                "spade_conv_time_fraction_wall": round(timer.wall / total_w, 4),
                "spade_conv_time_fraction_cpu": round(timer.cpu / total_c, 4),
            }
    return out


# ---------------------------------------------------------------------------- sampling
def section_sampling(model: SpadeUNet, card: ModelCard, threads: int, dpm_repeats: int, ancestral_steps: int) -> dict:
    """Seconds per image: DPM-Solver++(2M) 20 guided steps vs the 1000-step ancestral sampler (extrapolated)."""
    torch.set_num_threads(threads)
    gen = SemanticGenerator(model, card, device="cpu")
    cond = conditioning()
    dpm = SamplingSettings(sampler="dpmpp-2m", steps=20, guidance_scale=2.0, seed=0)
    short = SamplingSettings(sampler="respaced", steps=ancestral_steps, guidance_scale=2.0, seed=0)
    gen.generate(cond, SamplingSettings(sampler="dpmpp-2m", steps=1))  # warm-up
    dpm_w, dpm_c, anc_w, anc_c = [], [], [], []
    for _ in range(dpm_repeats):
        w, c = timed(lambda: gen.generate(cond, dpm))
        dpm_w.append(w)
        dpm_c.append(c)
        w, c = timed(lambda: gen.generate(cond, short))
        anc_w.append(w / ancestral_steps)
        anc_c.append(c / ancestral_steps)
    nfe_dpm = network_evaluations("dpmpp-2m", 20, guided=True)
    nfe_anc = network_evaluations("ancestral", None, guided=True, num_timesteps=card.diffusion.num_timesteps)
    per_step_w, per_step_c = statistics.median(anc_w), statistics.median(anc_c)
    T = card.diffusion.num_timesteps
    return {
        "threads": threads,
        "guidance_scale": 2.0,
        "dpmpp_2m_20": {
            "seconds_per_image": summary(dpm_w, dpm_c),
            "forwards": nfe_dpm.forwards,
            "network_passes": nfe_dpm.passes,
        },
        "ancestral_1000": {
            "extrapolated": True,
            "how": f"per-step cost of the ancestral sampler measured over {ancestral_steps} guided steps "
            f"(sampler='respaced', steps={ancestral_steps}) x {T} steps",
            "seconds_per_step": summary(anc_w, anc_c),
            "seconds_per_image_wall": round(per_step_w * T, 1),
            "seconds_per_image_cpu": round(per_step_c * T, 1),
            "forwards": nfe_anc.forwards,
            "network_passes": nfe_anc.passes,
        },
        "nfe_ratio": nfe_anc.forwards / nfe_dpm.forwards,
        "speedup_wall": round(per_step_w * T / statistics.median(dpm_w), 1),
        "speedup_cpu": round(per_step_c * T / statistics.median(dpm_c), 1),
    }


# ---------------------------------------------------------------------------- memory
MEMORY_CONFIGS = {
    "model_loaded": "import torch + gesco, build the model, no forward",
    "forward_b1_no_grad": "one forward, batch 1, torch.no_grad",
    "forward_b2_no_grad": "one forward, batch 2 (guided), torch.no_grad",
    "forward_b2_inference_mode": "one forward, batch 2, torch.inference_mode",
    "forward_b2_channels_last": "one forward, batch 2, channels_last + inference_mode",
    "forward_b2_autograd": "one forward, batch 2, gradients recorded (no guard; for comparison)",
    "dpmpp_2m_guided": "SemanticGenerator.generate, DPM-Solver++(2M) 3 guided steps, 1 image",
}


def proc_status_mib(field: str) -> float:
    """A memory field of ``/proc/self/status`` (``VmRSS``: now, ``VmHWM``: peak) in MiB (Linux).

    ``VmHWM`` belongs to this process image only; ``getrusage(...).ru_maxrss`` is not used
    because after ``fork`` + ``exec`` it also counts the parent's resident size at the fork.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(config: str, checkpoint: Path | None) -> dict:
    """Run one memory configuration in this (fresh) process; return its RSS figures in MiB."""
    model, card, _ = load_model(checkpoint)
    loaded = proc_status_mib("VmRSS")
    if config.startswith("forward_"):
        batch = 1 if "_b1_" in config else 2
        variant = config.split(f"_b{batch}_")[1]
        x, t, y = model_inputs(batch)
        if variant == "channels_last":  # converted in place: one copy of the weights
            model.to(memory_format=torch.channels_last)
            x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
        guard = {"no_grad": torch.no_grad, "autograd": contextlib.nullcontext}.get(variant, torch.inference_mode)
        with guard():
            model(x, t, y)
    elif config == "dpmpp_2m_guided":
        SemanticGenerator(model, card).generate(conditioning(), SamplingSettings(steps=3))
    peak = proc_status_mib("VmHWM")
    return {"peak_rss_mib": round(peak, 1), "rss_after_model_mib": round(loaded, 1), "peak_above_model_mib": round(peak - loaded, 1)}


def section_memory(checkpoint: Path | None) -> dict:
    out = {}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for config, what in MEMORY_CONFIGS.items():
        cmd = [sys.executable, __file__, "--memory-child", config]
        if checkpoint is not None:
            cmd += ["--checkpoint", str(checkpoint)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        out[config] = {"what": what, **json.loads(res.stdout.strip().splitlines()[-1])}
    return {"threads": 1, **out}


# ---------------------------------------------------------------------------- compile
def compile_first_call(model: SpadeUNet) -> float:
    """Wall seconds of the first call of ``torch.compile(model)`` at batch 2 (compiles), 1 thread."""
    torch.set_num_threads(1)
    compiled = torch.compile(model)
    with torch.inference_mode():  # inputs made in inference mode, as in the pipeline
        x, t, y = model_inputs(2)
        w, _ = timed(lambda: compiled(x, t, y))
    return w


def section_compile(model: SpadeUNet, repeats: int, checkpoint: Path | None) -> dict:
    """``torch.compile`` (inductor) at batch 2, 1 thread: compile time (cold and warm cache) and speed vs eager."""
    torch.set_num_threads(1)
    cache = tempfile.mkdtemp(prefix="gesco-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # cold cache: the first-use cost
    out: dict = {"threads": 1, "batch": 2, "repeats": repeats}
    try:
        compiled = torch.compile(model)
        with torch.inference_mode():  # inputs made in inference mode, as in the pipeline
            x, t, y = model_inputs(2)
            w, c = timed(lambda: compiled(x, t, y))
            out["first_call_cold_cache_s"] = {"wall": round(w, 1), "cpu_this_process": round(c, 1)}
            t17 = torch.full_like(t, 17)
            out["second_call_other_t_s"] = round(timed(lambda: compiled(x, t17, y))[0], 3)
            eager = lambda: model(x, t, y)  # noqa: E731
            comp = lambda: compiled(x, t, y)  # noqa: E731
            out["max_abs_diff_vs_eager"] = float((comp() - eager()).abs().max())
            walls = {"eager": [], "compiled": []}
            cpus = {"eager": [], "compiled": []}
            for _ in range(repeats):
                for name, fn in (("eager", eager), ("compiled", comp)):
                    w, c = timed(fn)
                    walls[name].append(w)
                    cpus[name].append(c)
        out["seconds"] = {k: summary(walls[k], cpus[k]) for k in walls}
        saved = statistics.median(walls["eager"]) - statistics.median(walls["compiled"])
        out["forwards_to_repay_cold_compile"] = round(out["first_call_cold_cache_s"]["wall"] / saved) if saved > 0 else None
        # A new process with the cache now filled (what a restarted server pays).
        cmd = [sys.executable, __file__, "--compile-child"] + (["--checkpoint", str(checkpoint)] if checkpoint else [])
        env = dict(os.environ, OMP_NUM_THREADS="1", TORCHINDUCTOR_CACHE_DIR=cache)
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        out["first_call_warm_cache_new_process_s"] = round(float(res.stdout.strip().splitlines()[-1]), 1)
    except Exception as e:  # report, do not hide, a failed compile
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------- report

def _thread_ratio(secs: dict, b: int) -> float:
    """Wall time with 2 threads over wall time with 1 thread, no-grad forward at batch ``b``."""
    key = f"batch{b}"
    return secs["threads2"][key]["no_grad"]["wall_s_median"] / secs["threads1"][key]["no_grad"]["wall_s_median"]

def _flops_md(res: dict) -> list[str]:
    """The FLOPs per forward section."""
    lines: list[str] = []
    f = res["flops"]
    b1, k1, k3 = f["model"]["batch1"], f["spade_kernel_1_random"], f["spade_kernel_3_random"]
    lines += [
        "## FLOPs per forward",
        "",
        f"Parameters {b1['parameters_m']} M; {b1['gflop_total']} GFLOP at batch 1, "
        f"{f['model']['batch2']['gflop_total']} GFLOP at batch 2.",
        "",
        "| SPADE variant | GFLOP (batch 1) | gamma/beta convs | label embeddings | rest | SPADE share |",
        "|---|---|---|---|---|---|",
        f"| kernel 1, shared per-level embedding (default) | {k1['gflop_total']} | {k1['gflop_spade_gamma_beta']} | "
        f"{k1['gflop_label_embedding']} | {k1['gflop_rest']} | {k1['spade_fraction']:.0%} |",
        f"| kernel 3, shared per-level embedding | {k3['gflop_total']} | {k3['gflop_spade_gamma_beta']} | "
        f"{k3['gflop_label_embedding']} | {k3['gflop_rest']} | {k3['spade_fraction']:.0%} |",
        f"| kernel 3, per-layer embedding (authors' structure; computed) | {k3['gflop_total_with_per_layer_embedding']} | "
        f"{k3['gflop_spade_gamma_beta']} | "
        f"{round(k3['gflop_total_with_per_layer_embedding'] - k3['gflop_total'] + k3['gflop_label_embedding'], 4)} | "
        f"{k3['gflop_rest']} | "
        f"{1 - k3['gflop_rest'] / k3['gflop_total_with_per_layer_embedding']:.0%} |",
        "",
    ]
    return lines


def _forward_md(res: dict) -> list[str]:
    """The seconds per network evaluation (and speed-ups) section."""
    lines: list[str] = []
    fw = res["forward"]
    lines += [
        "## Seconds per network evaluation",
        "",
        f"Load average {fw['load_average_start']} at start, {fw['load_average_end']} at end; "
        f"{fw['repeats']} interleaved repeats; median wall (CPU) seconds.",
        "",
        "| threads | batch | no_grad (baseline) | inference_mode | channels_last | fused_prototype | GFLOP/s (baseline, wall) |",
        "|---|---|---|---|---|---|---|",
    ]
    gflop = {1: res.get("flops", {}).get("model", {}).get("batch1", {}).get("gflop_total"),
             2: res.get("flops", {}).get("model", {}).get("batch2", {}).get("gflop_total")}
    for tkey, per_b in fw["seconds"].items():
        for bkey, per_v in per_b.items():
            cells = [f"{s['wall_s_median']:.3f} ({s['cpu_s_median']:.3f})" for s in per_v.values()]
            g = gflop[int(bkey[-1])]
            rate = f"{g / per_v['no_grad']['wall_s_median']:.1f}" if g else "-"
            lines.append(f"| {tkey[7:]} | {bkey[5:]} | " + " | ".join(cells) + f" | {rate} |")
    lines += [
        "",
        "Speed-up over the no_grad baseline at the same threads and batch, wall (CPU); > 1 is faster:",
        "",
        "| threads | batch | inference_mode | channels_last | fused_prototype |",
        "|---|---|---|---|---|",
    ]
    for tkey, per_b in fw["seconds"].items():
        for bkey, per_v in per_b.items():
            base = per_v["no_grad"]
            cells = [
                f"{base['wall_s_median'] / s['wall_s_median']:.2f} ({base['cpu_s_median'] / s['cpu_s_median']:.2f})"
                for v, s in per_v.items() if v != "no_grad"
            ]
            lines.append(f"| {tkey[7:]} | {bkey[5:]} | " + " | ".join(cells) + " |")
    secs = fw["seconds"]
    if "threads1" in secs and "threads2" in secs:
        lines += ["", "1 thread vs 2 threads (no_grad), wall time ratio t(2 threads) / t(1 thread): " + ", ".join(
            f"batch {b}: {_thread_ratio(secs, b):.1f}x"
            for b in (1, 2)) + "."]
    lines += ["", f"Max abs output difference vs no_grad: {fw['max_abs_diff_vs_no_grad']}", ""]
    return lines


def _spade_md(res: dict) -> list[str]:
    """The the cost of SPADE section."""
    lines: list[str] = []
    s = res["spade"]
    lines += [
        "## Cost of SPADE (1 thread, batch 2)",
        "",
        "| spade_kernel | forward wall s (CPU s) | time in SPADE convs (wall / CPU) |",
        "|---|---|---|",
    ]
    for k in (1, 3):
        d = s[f"spade_kernel_{k}"]
        lines.append(
            f"| {k} | {d['forward']['wall_s_median']:.3f} ({d['forward']['cpu_s_median']:.3f}) | "
            f"{d['spade_conv_time_fraction_wall']:.0%} / {d['spade_conv_time_fraction_cpu']:.0%} |"
        )
    lines += ["", f"Load average {s['load_average_start']} -> {s['load_average_end']}.", ""]
    return lines


def _sampling_md(res: dict) -> list[str]:
    """The seconds per image per sampler section."""
    lines: list[str] = []
    s = res["sampling"]
    d, a = s["dpmpp_2m_20"], s["ancestral_1000"]
    lines += [
        f"## Seconds per image ({s['threads']} thread(s), guidance scale {s['guidance_scale']})",
        "",
        "| sampler | forwards (batch 2) | network passes | seconds per image wall (CPU) |",
        "|---|---|---|---|",
        f"| DPM-Solver++(2M), 20 steps | {d['forwards']} | {d['network_passes']} | "
        f"{d['seconds_per_image']['wall_s_median']:.1f} ({d['seconds_per_image']['cpu_s_median']:.1f}) |",
        f"| ancestral, 1000 steps (**extrapolated**) | {a['forwards']} | {a['network_passes']} | "
        f"{a['seconds_per_image_wall']:.0f} ({a['seconds_per_image_cpu']:.0f}) |",
        "",
        f"NFE ratio {s['nfe_ratio']:.0f}x; time ratio {s['speedup_wall']}x wall, {s['speedup_cpu']}x CPU. "
        f"The 1000-step figure is {a['how']}. Load average {s['load_average_start']} -> {s['load_average_end']}.",
        "",
    ]
    return lines


def _memory_md(res: dict) -> list[str]:
    """The peak memory section."""
    lines: list[str] = []
    lines += ["## Peak memory (resident set size, fresh process each, 1 thread)", "",
              "| configuration | peak RSS MiB | above loaded model MiB |", "|---|---|---|"]
    for _k, v in res["memory"].items():
        if isinstance(v, dict):
            lines.append(f"| {v['what']} | {v['peak_rss_mib']:.0f} | {v['peak_above_model_mib']:.0f} |")
    lines += [""]
    return lines


def _compile_md(res: dict) -> list[str]:
    """The torch.compile section."""
    lines: list[str] = []
    c = res["compile"]
    lines += ["## torch.compile (inductor, batch 2, 1 thread)", ""]
    if "error" in c:
        lines += [f"Failed: {c['error']}", ""]
    else:
        e, k = c["seconds"]["eager"], c["seconds"]["compiled"]
        lines += [
            f"First call (compiles) with a cold inductor cache: {c['first_call_cold_cache_s']['wall']} s wall; "
            f"in a new process with the cache filled: {c['first_call_warm_cache_new_process_s']} s; "
            f"second call at another time step: {c['second_call_other_t_s']} s.",
            "",
            f"Forward (batch 2, interleaved, {c['repeats']} repeats): eager {e['wall_s_median']:.3f} s wall "
            f"({e['cpu_s_median']:.3f} CPU), compiled {k['wall_s_median']:.3f} s ({k['cpu_s_median']:.3f} CPU); "
            f"forwards to repay the cold compile: {c['forwards_to_repay_cold_compile']}. "
            f"Max abs difference vs eager {c['max_abs_diff_vs_eager']:.1e}. "
            f"Load average {c['load_average_start']} -> {c['load_average_end']}.",
            "",
        ]
    return lines


#: the report's sections, in order: (results key, its markdown)
_SECTIONS = [
    ("flops", _flops_md),
    ("forward", _forward_md),
    ("spade", _spade_md),
    ("sampling", _sampling_md),
    ("memory", _memory_md),
    ("compile", _compile_md),
]


def markdown(res: dict) -> str:
    """A readable summary of the results JSON."""
    m = res["machine"]
    lines = [
        "# Model benchmark (SPADE U-Net, 64x128, CPU)",
        "",
        f"Machine: {m['cpu_model']}, {m['cpus']} CPUs visible, torch {m['torch']}, Python {m['python']}, "
        f"mkldnn {m['mkldnn']}. Shared with other jobs: timings are medians of interleaved runs, "
        "wall-clock and process CPU time (the CPU time is less sensitive to the load).",
        f"Weights: {res['weights']} (speed does not depend on the weight values).",
        "",
    ]
    for key, section in _SECTIONS:
        if key in res:
            lines += section(res)
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="?", type=Path, const=shipped_checkpoint(DEFAULT_DIFFUSION), default=None,
                   help="measure a checkpoint (no value: the shipped one) instead of random weights")
    p.add_argument("--sections", nargs="+", choices=ALL_SECTIONS, default=list(DEFAULT_SECTIONS))
    p.add_argument("--repeats", type=int, default=7, help="interleaved repeats per forward variant")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--ancestral-steps", type=int, default=15)
    p.add_argument("--dpm-repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "model.json",
                   help="results JSON; sections already there and not re-run are kept")
    p.add_argument("--memory-child", choices=list(MEMORY_CONFIGS), help=argparse.SUPPRESS)
    p.add_argument("--report-only", action="store_true", help="rewrite the .md from the JSON, measure nothing")
    p.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.memory_child:
        torch.set_num_threads(1)
        print(json.dumps(memory_child(a.memory_child, a.checkpoint)))
        return
    if a.compile_child:
        print(compile_first_call(load_model(a.checkpoint)[0]))
        return

    if a.report_only:
        a.out.with_suffix(".md").write_text(markdown(json.loads(a.out.read_text())) + "\n")
        return
    model, card, weights = load_model(a.checkpoint)
    res = json.loads(a.out.read_text()) if a.out.exists() else {}
    if res.get("weights") not in (None, weights):
        res = {k: v for k, v in res.items() if k not in ALL_SECTIONS}  # other weights: start over
    res.update({"machine": machine(), "weights": weights, "config": card.unet.to_dict(), "resolution": [HEIGHT, WIDTH]})
    for section in a.sections:
        start, t0 = load_average(), time.perf_counter()
        print(f"[{section}] load average {start}", file=sys.stderr, flush=True)
        if section == "flops":
            out = section_flops(model)
        elif section == "forward":
            out = section_forward(model, a.repeats, tuple(a.threads))
        elif section == "spade":
            out = section_spade(a.repeats)
        elif section == "sampling":
            fw = res.get("forward", {}).get("seconds", {})
            fastest = min(fw, key=lambda k: fw[k]["batch2"]["inference_mode"]["wall_s_median"]) if fw else "threads1"
            out = section_sampling(model, card, int(fastest[7:]), a.dpm_repeats, a.ancestral_steps)
        elif section == "memory":
            out = section_memory(a.checkpoint)
        else:
            out = section_compile(model, a.repeats, a.checkpoint)
        out = {"load_average_start": start, **out, "load_average_end": load_average(),
               "section_wall_s": round(time.perf_counter() - t0, 1)}
        res[section] = out
        print(f"[{section}] done in {out['section_wall_s']} s", file=sys.stderr, flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    a.out.with_suffix(".md").write_text(markdown(res) + "\n")
    print(markdown(res))


if __name__ == "__main__":
    main()
