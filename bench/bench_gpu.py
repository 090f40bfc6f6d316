"""GPU benchmark: the paper-size SPADE U-Net per guided step, and the receiver's sampling.

One short script to run when a GPU is lent (it must finish within 5 minutes on an H200;
``--max-seconds`` guards the total). Results go to ``--out`` (default
``bench/results/gpu.json``) and a readable table next to it (``.md``); both are rewritten
after every measurement, so a run cut short still leaves what it measured.

What is measured:

1. ``unet``: the paper's Cityscapes U-Net (:meth:`UNetConfig.paper_cityscapes`, 585 M
   parameters) at 256x512 with **random weights** (speed does not depend on the weight
   values; the zero-initialised output layers are re-initialised so the outputs compared
   between variants are not trivially zero), real conditioning (synthetic test scenes,
   :func:`gesco.train.diffusion.make_batch`). One *guided step* is one call of
   :func:`~gesco.diffusion.guidance.guided_denoiser` (guidance scale 2): one forward at
   batch ``2B`` for ``B`` images (conditional + null map), plus the concatenations and the
   guidance arithmetic. ``B`` = 1 and 4. Variants, in the order they run:

   * ``eager_bf16``: eager PyTorch, fp32 weights, ``torch.autocast`` bf16, NCHW;
   * ``eager_bf16_channels_last``: the same with model and inputs in channels-last (NHWC);
   * ``cuda_graph``: the whole guided step (autocast bf16, the faster eager layout at B=1)
     captured once in a ``torch.cuda.CUDAGraph`` with static inputs; each step copies
     ``x_t`` and ``t`` into the static buffers and replays (the copy is timed);
   * ``compile``: ``torch.compile`` of the U-Net (``--compile-mode``, default ``default``;
     ``dynamic=False``, so each batch size compiles once, its first call is reported as
     ``setup_s``), autocast bf16, same layout as ``cuda_graph``. Runs last: it is the slow,
     risky one.

   Reported per row: median milliseconds per guided step over ``--repeats`` timed calls
   (after ``--warmup`` untimed ones, ``torch.cuda.synchronize`` before and after each call),
   guided steps/s, seconds per image and images/s at 50 steps (the default sampler) and at
   1000 steps (the paper's ancestral sampler; **extrapolated** from the per-step time),
   peak GPU memory (``torch.cuda.max_memory_allocated``, weights included) and the max
   absolute difference of the guided epsilon from ``eager_bf16`` on the same inputs.

2. ``sampling``: the receiver's sampling as shipped: :meth:`SemanticGenerator.load` (the
   receiver's default 64x128 checkpoint, the guidance-distilled student),
   :meth:`SemanticGenerator.generate` with the default sampler (:data:`DEFAULT_SAMPLER`,
   :data:`DEFAULT_STEPS` steps, guidance 2 folded in: one pass per step) on real conditioning
   of synthetic test scenes, batch 1 and 64, in fp32 (as the pipeline runs) and under bf16
   autocast (a candidate): seconds per batch and per image (median of
   ``--sampling-repeats``, after one 2-step warm-up call at the same batch).

Variants that fail (compile errors, out of memory, ...) are recorded with the error text;
variants that would overrun ``--max-seconds`` are skipped with a note (a hard deadline,
``SIGALRM``, also interrupts one that is already running, e.g. a long compile).

``--unet authors`` measures the authors' published network instead (:meth:`UNetConfig.authors`:
the layout ``gesco import`` gives their checkpoints, a label MLP per SPADE and residual down/up
blocks, 653,984,518 parameters; docs/pretrained.md); with ``--tiny`` a tiny network of that
layout.

``--tiny`` runs the whole script on the CPU in seconds (a tiny U-Net, 32x64, batches 1
and 2, 2 sampling steps with a tiny random-weight model wrapped in the same
``SemanticGenerator``; CUDA graphs need CUDA and compile variants are skipped on the CPU
unless ``--compile-on-cpu``): it keeps the script from rotting (tests/bench).

Usage:
    python bench/bench_gpu.py                                # on a GPU machine, < 5 min
    python bench/bench_gpu.py --skip-compile                 # eager + CUDA graphs + sampling, ~1 min
    python bench/bench_gpu.py --tiny --device cpu --threads 1   # smoke run on the CPU
    python bench/bench_gpu.py --unet authors --skip-sampling    # the imported published model's layout
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # before importing torch: the time guard counts the imports too

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gesco.data.synthetic import SyntheticScenes
from gesco.diffusion.checkpoint import ModelCard
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator, sampling_cost
from gesco.diffusion.samplers import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.semantics.classes import CITYSCAPES
from gesco.train.diffusion import make_batch

RESULTS = Path(__file__).resolve().parent / "results"
GUIDANCE = 2.0
T_STEP = 500  # time index of the timed steps (the cost does not depend on it)
UNET_VARIANTS = ("eager_bf16", "eager_bf16_channels_last", "compile", "cuda_graph")  # table order
GOAL_S_PER_IMAGE = 1.0  # at 256x512, 50 steps
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


#: the U-Nets ``--unet`` chooses: ``(full config, tiny config, description)``
def unet_choice(name: str, tiny: bool) -> tuple[UNetConfig, str]:
    """The U-Net config of ``--unet`` (``paper``: gesco's own layout at the paper's size; ``authors``:
    the authors' layout, what ``gesco import`` gives their checkpoints) and its description."""
    if name == "authors":
        if tiny:
            return (UNetConfig.authors(base_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(2,),
                                       head_channels=32), "tiny U-Net of the authors' layout, random weights (smoke run)")
        return UNetConfig.authors(), ("the authors' published Cityscapes network (UNetConfig.authors(), the layout of "
                                      "`gesco import`), random weights")
    if tiny:
        return tiny_config(), "tiny U-Net, random weights (smoke run)"
    return UNetConfig.paper_cityscapes(), "paper Cityscapes U-Net, UNetConfig.paper_cityscapes(), random weights"


def tiny_config() -> UNetConfig:
    """A tiny U-Net with the paper model's structure (SPADE kernel 3, attention), for CPU smoke runs."""
    return UNetConfig(
        label_channels=36,
        base_channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_ds=(2,),
        head_channels=16,
        spade_hidden=16,
        spade_kernel=3,
        num_groups=8,
    )


# ---------------------------------------------------------------------------- budget
class Deadline(Exception):
    """Raised by the SIGALRM handler when the total time budget runs out."""


class Budget:
    """Wall-clock budget of the whole run (``--max-seconds``)."""

    def __init__(self, seconds: float, start: float | None = None) -> None:
        self.seconds = float(seconds)
        self.start = time.perf_counter() if start is None else start

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    @contextlib.contextmanager
    def hard_stop(self, reserve: float = 3.0):
        """Raise :class:`Deadline` inside the block when the budget (less ``reserve`` s) is spent.

        Uses ``SIGALRM`` (Unix, main thread only); elsewhere a no-op. Python runs the handler
        between bytecodes, so a long C call (one kernel, one synchronize) finishes first.
        """
        usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        if not usable:
            yield
            return

        def handler(signum, frame):
            raise Deadline(f"time guard: --max-seconds {self.seconds:.0f} reached")

        previous = signal.signal(signal.SIGALRM, handler)
        entered = time.perf_counter()
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, max(0.01, self.left() - reserve))
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if old_delay > 0:  # someone else's alarm (e.g. pytest-timeout): give it back, less the time spent
                signal.setitimer(signal.ITIMER_REAL, max(0.001, old_delay - (time.perf_counter() - entered)), old_interval)


# ---------------------------------------------------------------------------- helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: torch.dtype | None, cache_enabled: bool = True):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache_enabled)


def timed_calls(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> tuple[list[float], object]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones; also the last output."""
    out = None
    for _ in range(warmup):
        out = fn()
    sync(device)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times, out


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def allocated_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.memory_allocated(device) / 2**20, 1)


def is_deadline(e: BaseException | None) -> bool:
    """Whether ``e`` is, or was raised from, the time guard's :class:`Deadline` (dynamo wraps errors)."""
    seen = 0
    while e is not None and seen < 20:
        if isinstance(e, Deadline):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def error_text(e: BaseException) -> str:
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    text = f"{type(e).__name__}: {e}"
    tail = "".join(tb[-3:])
    return (text[:1500] + "\n--- traceback tail ---\n" + tail[-1500:]).strip()


def conditioning(n: int, height: int, width: int) -> torch.Tensor:
    """``(n, 36, H, W)`` clean conditioning of the first ``n`` synthetic test scenes."""
    ds = SyntheticScenes(split="test", size=n, height=height, width=width)
    return make_batch(ds, list(range(n)), CITYSCAPES)["cond"]


def machine(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "cpus": os.cpu_count(),
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info["gpu_memory_gib"] = round(p.total_memory / 2**30, 1)
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        info["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return info


# ---------------------------------------------------------------------------- the U-Net
def build_unet(cfg: UNetConfig, device: torch.device, seed: int = 0) -> SpadeUNet:
    """Random-weight U-Net built directly on ``device`` (eval mode).

    The zero-initialised layers (``conv2`` of each residual block, attention ``proj``, the
    output convolution) get their default initialisation instead, so the outputs are not
    trivially zero and the variants' numerical agreement means something.
    """
    torch.manual_seed(seed)
    with torch.device(device):
        model = SpadeUNet(cfg)
    with torch.no_grad():
        for m in model.modules():
            w = getattr(m, "weight", None)
            if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)) and w is not None and not bool(w.any()):
                m.reset_parameters()
    return model.eval()


def set_layout(model: SpadeUNet, channels_last: bool) -> None:
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class UNetBench:
    """The guided step of one model at several batch sizes, with fixed seeded inputs."""

    def __init__(self, model: SpadeUNet, cond: torch.Tensor, device: torch.device, dtype: torch.dtype | None,
                 warmup: int, repeats: int) -> None:
        self.model, self.device, self.dtype = model, device, dtype
        self.warmup, self.repeats = warmup, repeats
        self.cond = cond
        self.height, self.width = cond.shape[-2:]
        self.reference: dict[int, torch.Tensor] = {}  # eager_bf16 epsilon per batch size
        self.step_s: dict[int, float] = {}  # eager_bf16 median per batch size (time estimates)

    def inputs(self, b: int, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(1)
        x = torch.randn((b, 3, self.height, self.width), generator=g).to(self.device)
        t = torch.full((b,), T_STEP, dtype=torch.long, device=self.device)
        y = self.cond[torch.arange(b) % self.cond.shape[0]].to(self.device)
        if channels_last:
            x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
        return x, t, y

    def row(self, variant: str, b: int, times: list[float], eps: torch.Tensor, **extra) -> dict:
        step = statistics.median(times)
        diff = None
        if b in self.reference:
            diff = float((eps.float() - self.reference[b]).abs().max())
        return {
            "variant": variant,
            "images": b,
            "forward_batch": 2 * b,
            "status": "ok",
            "ms_per_guided_step": round(step * 1e3, 3),
            "ms_min": round(min(times) * 1e3, 3),
            "ms_all": [round(s * 1e3, 3) for s in times],
            "guided_steps_per_s": round(1.0 / step, 3),
            "s_per_image_50_steps": round(50 * step / b, 4),
            "images_per_s_50_steps": round(b / (50 * step), 4),
            "s_per_image_1000_steps_extrapolated": round(1000 * step / b, 3),
            "images_per_s_1000_steps_extrapolated": round(b / (1000 * step), 5),
            "peak_mem_mib": peak_mib(self.device),
            "max_abs_diff_vs_eager_bf16": diff,
            **extra,
        }

    def eager(self, variant: str, b: int, channels_last: bool) -> dict:
        set_layout(self.model, channels_last)
        x, t, y = self.inputs(b, channels_last)
        den = guided_denoiser(self.model, y, GUIDANCE, self.model.config.image_channels)
        reset_peak(self.device)

        def step():
            with torch.no_grad(), autocast(self.device, self.dtype):
                return den(x, t)[0]

        times, eps = timed_calls(step, self.device, self.warmup, self.repeats)
        r = self.row(variant, b, times, eps, layout="channels_last" if channels_last else "nchw")
        if variant == "eager_bf16":
            self.reference[b] = eps.float().clone()
            self.step_s[b] = statistics.median(times)
        return r

    def cuda_graph(self, b: int, channels_last: bool) -> dict:
        if self.device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        set_layout(self.model, channels_last)
        x, t, y = self.inputs(b, channels_last)
        static_x, static_t = x.clone(), t.clone()
        den = guided_denoiser(self.model, y, GUIDANCE, self.model.config.image_channels)
        reset_peak(self.device)
        t0 = time.perf_counter()
        # autocast's weight-cast cache must be off while capturing (the casts go into the graph)
        ctx = lambda: autocast(self.device, self.dtype, cache_enabled=False)  # noqa: E731
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.no_grad(), ctx():
            for _ in range(3):  # warm-up on a side stream before capture (cuDNN autotuning, allocator)
                den(static_x, static_t)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), ctx(), torch.cuda.graph(graph):
            static_eps = den(static_x, static_t)[0]
        sync(self.device)
        capture_s = time.perf_counter() - t0

        def step():
            static_x.copy_(x)  # a sampler would write x_t and t into the static buffers each step
            static_t.copy_(t)
            graph.replay()
            return static_eps

        try:
            times, eps = timed_calls(step, self.device, self.warmup, self.repeats)
            return self.row("cuda_graph", b, times, eps, layout="channels_last" if channels_last else "nchw",
                            setup_s=round(capture_s, 2), setup="warm-up (3 calls) + capture")
        finally:
            graph = static_eps = None  # free the captured graph and its output buffer
            torch.cuda.empty_cache()

    def compiled(self, compiled_model: torch.nn.Module, b: int, channels_last: bool, mode: str) -> dict:
        set_layout(self.model, channels_last)
        x, t, y = self.inputs(b, channels_last)
        den = guided_denoiser(compiled_model, y, GUIDANCE, self.model.config.image_channels)
        reset_peak(self.device)

        def step():
            with torch.no_grad(), autocast(self.device, self.dtype):
                return den(x, t)[0]

        t0 = time.perf_counter()
        step()
        sync(self.device)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        step()
        sync(self.device)
        second = time.perf_counter() - t0
        times, eps = timed_calls(step, self.device, max(0, self.warmup - 2), self.repeats)
        return self.row("compile", b, times, eps, layout="channels_last" if channels_last else "nchw",
                        setup_s=round(first, 2), setup=f"first call (compiles), {mode}, dynamic=False",
                        second_call_ms=round(second * 1e3, 3))


# ---------------------------------------------------------------------------- sampling
def sampling_row(gen: SemanticGenerator, cond: torch.Tensor, b: int, dtype_name: str, dtype: torch.dtype | None,
                 steps: int, repeats: int) -> dict:
    """Seconds per image of ``gen.generate`` at batch ``b`` with the default sampler (two network
    passes per step for a guided checkpoint, one for the receiver's guidance-distilled student)."""
    device = gen.device
    cost = sampling_cost(gen.card, DEFAULT_SAMPLER, steps, GUIDANCE)
    y = cond[torch.arange(b) % cond.shape[0]]
    settings = [SamplingSettings(sampler=DEFAULT_SAMPLER, steps=steps, guidance_scale=GUIDANCE, seed=i) for i in range(b)]
    warm = [SamplingSettings(sampler=DEFAULT_SAMPLER, steps=min(2, steps), guidance_scale=GUIDANCE, seed=i) for i in range(b)]
    reset_peak(device)
    with autocast(device, dtype):
        gen.generate(y, warm)
        times, imgs = timed_calls(lambda: gen.generate(y, settings), device, 0, repeats)
    per_batch = statistics.median(times)
    return {
        "precision": dtype_name,
        "batch": b,
        "status": "ok",
        "sampler": DEFAULT_SAMPLER,
        "steps": steps,
        "guidance_folded": gen.distilled is not None,
        "passes_per_image": cost.passes,
        "forward_batch": cost.batch_factor * b,
        "s_per_batch": round(per_batch, 4),
        "s_all": [round(s, 4) for s in times],
        "s_per_image": round(per_batch / b, 5),
        "images_per_s": round(b / per_batch, 3),
        "ms_per_step": round(per_batch / steps * 1e3, 3),
        "peak_mem_mib": peak_mib(device),
        "finite": bool(torch.isfinite(imgs).all()),
    }


# ---------------------------------------------------------------------------- report
def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def markdown(res: dict) -> str:
    m = res["meta"]
    mach = m["machine"]
    lines = [
        "# GPU benchmark (bench/bench_gpu.py)",
        "",
        f"Device: **{mach['device_name']}** ({mach['device']}), torch {mach['torch']}, CUDA {mach['cuda']}, "
        f"cuDNN {mach['cudnn']}; autocast dtype {m['dtype']}; cudnn.benchmark {mach.get('cudnn_benchmark', '-')}. "
        f"Run took {m['elapsed_s']:.0f} s of a {m['max_seconds']:.0f} s budget"
        + (" (**--tiny** smoke run, not a measurement)" if m["tiny"] else "") + ".",
        "",
        f"## U-Net, one guided step ({m['unet']['what']})",
        "",
        f"{fmt(m['unet'].get('params_m'))} M parameters, {m['unet']['resolution'][0]}x{m['unet']['resolution'][1]}, "
        f"guidance scale {GUIDANCE}: one step = one forward at batch 2B for B images. Median of "
        f"{m['repeats']} timed calls after {m['warmup']} warm-up calls. Goal: <= {GOAL_S_PER_IMAGE:g} s per "
        "image at 50 steps. Per-image times at 1000 steps are extrapolated from the per-step time.",
        "",
        "| variant | B | forward batch | ms / guided step | guided steps/s | s / image, 50 steps | images/s, 50 steps "
        "| s / image, 1000 steps (extrap.) | peak MiB | setup s | max abs diff vs eager | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {v: i for i, v in enumerate(UNET_VARIANTS)}
    for r in sorted(res["unet"], key=lambda r: (order.get(r["variant"], 99), r["images"])):
        if r["status"] == "ok":
            lines.append(
                f"| {r['variant']} ({r.get('layout', '')}) | {r['images']} | {r['forward_batch']} | "
                f"{r['ms_per_guided_step']:.1f} | {r['guided_steps_per_s']:.2f} | {r['s_per_image_50_steps']:.3f} | "
                f"{r['images_per_s_50_steps']:.2f} | {r['s_per_image_1000_steps_extrapolated']:.1f} | "
                f"{fmt(r['peak_mem_mib'], '.0f')} | {fmt(r.get('setup_s'))} | "
                f"{fmt(r['max_abs_diff_vs_eager_bf16'], '.1e')} | ok |"
            )
        else:
            why = (r.get("error") or r.get("note") or "").splitlines()[0][:160].replace("|", "/")
            lines.append(f"| {r['variant']} | {r['images']} | {r['forward_batch']} | - | - | - | - | - | - | - | - | "
                         f"{r['status']}: {why} |")
    s = m["sampling"]
    lines += [
        "",
        f"## Receiver sampling ({s['what']})",
        "",
        f"`SemanticGenerator.generate`, sampler {s['sampler']!r}, {s['steps']} steps, guidance {GUIDANCE} (folded into "
        "the student's one pass per step, else two passes per step), "
        f"real conditioning (synthetic test scenes); median of {s['repeats']} calls after a 2-step warm-up.",
        "",
        "| precision | batch | passes / image | s / batch | s / image | images/s | ms / step | peak MiB | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["sampling"]:
        if r["status"] == "ok":
            lines.append(f"| {r['precision']} | {r['batch']} | {r['passes_per_image']} | {r['s_per_batch']:.3f} | "
                         f"{r['s_per_image']:.4f} | {r['images_per_s']:.1f} | {r['ms_per_step']:.1f} | "
                         f"{fmt(r['peak_mem_mib'], '.0f')} | ok |")
        else:
            why = (r.get("error") or r.get("note") or "").splitlines()[0][:160].replace("|", "/")
            lines.append(f"| {r['precision']} | {r['batch']} | - | - | - | - | - | - | {r['status']}: {why} |")
    if res.get("notes"):
        lines += ["", "## Notes", ""] + [f"* {n}" for n in res["notes"]]
    return "\n".join(lines) + "\n"


def save(res: dict, out: Path, budget: Budget) -> None:
    res["meta"]["elapsed_s"] = round(budget.elapsed(), 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    tmp.replace(out)
    out.with_suffix(".md").write_text(markdown(res))


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="tiny U-Net, 32x64, batches 1 and 2, 2 steps: a CPU smoke run")
    p.add_argument("--unet", choices=("paper", "authors"), default="paper",
                   help="paper: gesco's layout at the paper's size (default); authors: the authors' published network "
                        "(UNetConfig.authors(), what `gesco import` makes of their checkpoints)")
    p.add_argument("--skip-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument("--variants", nargs="+", choices=UNET_VARIANTS, default=list(UNET_VARIANTS),
                   help="U-Net variants to run (default all; e.g. --variants eager_bf16 compile to retry compile)")
    p.add_argument("--compile-on-cpu", action="store_true", help="run the compile variant on the CPU too")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode (default; 'max-autotune-no-cudagraphs' autotunes for minutes)")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend ('eager' or 'aot_eager' only check the tracing, e.g. in the CPU test)")
    p.add_argument("--compile-estimate", type=float, default=None,
                   help="seconds a compile is expected to take; skipped when less is left (default 75 on GPU)")
    p.add_argument("--skip-sampling", action="store_true")
    p.add_argument("--max-seconds", type=float, default=280.0, help="total time guard")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="autocast dtype of the U-Net variants")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="images per guided step (default 1 4; tiny 1 2)")
    p.add_argument("--sampling-batches", type=int, nargs="+", default=None, help="default 1 64; tiny 1 2")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls per variant (default 3; tiny 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per variant (default 10; tiny 2)")
    p.add_argument("--sampling-repeats", type=int, default=None, help="default 3; tiny 1")
    p.add_argument("--checkpoint", default=None, help="sampling checkpoint (default: the shipped one)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (CPU runs)")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="leave torch.backends.cudnn.benchmark off")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON, .md alongside (default bench/results/gpu.json; tiny: gpu_tiny.json)")
    a = p.parse_args(argv)
    if torch.device(a.device).type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: CUDA is not available in this torch ({torch.__version__})")
    tiny = a.tiny
    a.batches = a.batches or ([1, 2] if tiny else [1, 4])
    a.sampling_batches = a.sampling_batches or ([1, 2] if tiny else [1, 64])
    a.warmup = a.warmup if a.warmup is not None else (1 if tiny else 3)
    a.repeats = a.repeats if a.repeats is not None else (2 if tiny else 10)
    a.sampling_repeats = a.sampling_repeats if a.sampling_repeats is not None else (1 if tiny else 3)
    a.out = a.out or RESULTS / ("gpu_tiny.json" if tiny else "gpu.json")
    return a


class Run:
    """One benchmark run: its arguments, time guard, device and the results written as they come."""

    def __init__(self, a: argparse.Namespace, budget: Budget, device: torch.device, res: dict) -> None:
        self.a, self.budget, self.device, self.res = a, budget, device, res
        self.dtype = DTYPES[a.dtype]
        self.out: Path = a.out

    def log(self, msg: str) -> None:
        print(f"[{self.budget.elapsed():6.1f} s] {msg}", file=sys.stderr, flush=True)

    def record(self, rows: list, base: dict, fn: Callable[[], dict], need_s: float = 0.0) -> dict | None:
        """Run one measurement into ``rows``; skip it when ``need_s`` exceeds the time left."""
        budget = self.budget
        name = " ".join(f"{k}={v}" for k, v in base.items())
        if budget.left() < need_s:
            row = {**base, "status": "skipped",
                   "note": f"time guard: {budget.left():.0f} s left of --max-seconds {self.a.max_seconds:.0f}, "
                           f"needs ~{need_s:.0f} s"}
            self.log(f"skip {name}: {row['note']}")
        else:
            self.log(f"run {name}")
            try:
                with budget.hard_stop():
                    row = {**base, **fn()}
            except Deadline as e:
                row = {**base, "status": "timeout", "error": str(e)}
            except Exception as e:
                row = {**base, "status": "timeout" if is_deadline(e) else "error", "error": error_text(e)}
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.log(f"  -> {row['status']} {row.get('ms_per_guided_step', row.get('s_per_image', ''))}")
        rows.append(row)
        self.save()
        return row if row["status"] == "ok" else None

    def skip(self, rows: list, base: dict, note: str) -> None:
        rows.append({**base, "status": "skipped", "note": note})
        self.save()

    def save(self) -> None:
        save(self.res, self.out, self.budget)


def _meta(a: argparse.Namespace, argv: list[str] | None, device: torch.device, cfg: UNetConfig, unet_what: str,
          resolution: tuple[int, int], samp_steps: int) -> dict:
    """The results' ``meta``: machine, precision, repeats, the U-Net and the sampling setup."""
    return {
        "machine": machine(device),
        "dtype": f"autocast {a.dtype}" if DTYPES[a.dtype] is not None else "fp32 (no autocast)",
        "tiny": a.tiny,
        "max_seconds": a.max_seconds,
        "elapsed_s": 0.0,
        "warmup": a.warmup,
        "repeats": a.repeats,
        "guidance_scale": GUIDANCE,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "unet": {
            "what": unet_what,
            "config": cfg.to_dict(),
            "resolution": list(resolution),
            "weights": "random (seed 0; zero-initialised layers re-initialised); fp32 weights",
        },
        "sampling": {
            "what": ("tiny random-weight model in SemanticGenerator, 32x64 (smoke run)" if a.tiny
                     else "the receiver's default 64x128 checkpoint (the distilled student), SemanticGenerator.load()"),
            "sampler": DEFAULT_SAMPLER,
            "steps": samp_steps,
            "repeats": a.sampling_repeats,
        },
    }


def _row(v: str, b: int) -> dict:
    """The key fields of a U-Net row: variant, images, forward batch (cond + uncond)."""
    return {"variant": v, "images": b, "forward_batch": 2 * b}


def _estimate(ub: UNetBench | None, b: int, calls: int) -> float:
    """Seconds of ``calls`` guided steps at batch ``b`` from the eager measurement (+ slack)."""
    s = ub.step_s.get(b) if ub else None
    return 0.0 if s is None else calls * s * 1.5 + 5.0


UNSELECTED = "not selected (--variants)"


def _unet_rows(run: Run, cfg: UNetConfig, height: int, width: int) -> tuple[Any, UNetBench | None, bool]:
    """Section 1: the U-Net's guided step, eager (NCHW, channels_last) and as a CUDA graph.
    Returns the model, its bench (``None`` if the setup failed) and whether channels_last won."""
    a, res, device = run.a, run.res, run.device
    run.log(f"building {res['meta']['unet']['what']} on {device}")
    model = None
    try:
        model = build_unet(cfg, device)
        res["meta"]["unet"]["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
        res["meta"]["unet"]["weights_mib"] = allocated_mib(device)
        cond = conditioning(max(a.batches), height, width)
        ub = UNetBench(model, cond, device, run.dtype, a.warmup, a.repeats)
    except Exception as e:
        res["meta"]["unet"]["params_m"] = float("nan")
        res["notes"].append(f"U-Net setup failed: {error_text(e)}")
        return model, None, False
    calls = a.warmup + a.repeats + 4
    for b in a.batches:
        if "eager_bf16" not in a.variants:
            run.skip(res["unet"], _row("eager_bf16", b), UNSELECTED)
            continue
        run.record(res["unet"], _row("eager_bf16", b), lambda: ub.eager("eager_bf16", b, False))
    for b in a.batches:
        if "eager_bf16_channels_last" not in a.variants:
            run.skip(res["unet"], _row("eager_bf16_channels_last", b), UNSELECTED)
            continue
        run.record(res["unet"], _row("eager_bf16_channels_last", b),
                   lambda: ub.eager("eager_bf16_channels_last", b, True), _estimate(ub, b, calls))
    # the faster eager layout at the smallest batch carries on to CUDA graphs and compile
    by = {(r["variant"], r["images"]): r for r in res["unet"] if r["status"] == "ok"}
    b0 = min(a.batches)
    nchw, cl = by.get(("eager_bf16", b0)), by.get(("eager_bf16_channels_last", b0))
    use_cl = bool(cl and (nchw is None or cl["ms_per_guided_step"] < nchw["ms_per_guided_step"]))
    res["meta"]["unet"]["layout_for_graph_and_compile"] = "channels_last" if use_cl else "nchw"
    for b in a.batches:
        if "cuda_graph" not in a.variants:
            run.skip(res["unet"], _row("cuda_graph", b), UNSELECTED)
        elif device.type != "cuda":
            run.skip(res["unet"], _row("cuda_graph", b), "CUDA graphs need a CUDA device")
        else:
            run.record(res["unet"], _row("cuda_graph", b), lambda: ub.cuda_graph(b, use_cl), _estimate(ub, b, calls + 3))
    return model, ub, use_cl


def _sampling_generator(run: Run, cfg: UNetConfig, height: int, width: int) -> tuple[Any, Any]:
    """The sampling section's generator and conditioning (``(None, None)`` if the setup failed, with a note)."""
    a, res, device = run.a, run.res, run.device
    try:
        if a.tiny:
            card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), resolution=(height, width))
            gen = SemanticGenerator(build_unet(cfg, device, seed=1), card, device)
        else:
            gen = SemanticGenerator.load(a.checkpoint, device=device)
        res["meta"]["sampling"]["checkpoint"] = None if a.tiny else str(a.checkpoint or "shipped default")
        res["meta"]["sampling"]["card_unet"] = gen.card.unet.to_dict()
        res["meta"]["sampling"]["resolution"] = list(gen.resolution)
        return gen, conditioning(max(a.sampling_batches), *gen.resolution)
    except Exception as e:
        res["notes"].append(f"sampling setup failed: {error_text(e)}")
        return None, None


def _sampling_rows(run: Run, cfg: UNetConfig, height: int, width: int, samp_steps: int) -> None:
    """Section 2: the receiver's sampling, fp32 and under autocast, per batch."""
    a, res = run.a, run.res
    sb = {"precision": None, "batch": None}
    if a.skip_sampling:
        for b in a.sampling_batches:
            run.skip(res["sampling"], {**sb, "precision": "fp32", "batch": b}, "--skip-sampling")
        return
    gen, scond = _sampling_generator(run, cfg, height, width)
    precisions = [("fp32", None)] + ([(a.dtype, run.dtype)] if run.dtype is not None else [])
    for pname, pdt in precisions:
        for b in a.sampling_batches:
            rb = {**sb, "precision": pname if pdt is None else f"autocast {pname}", "batch": b}
            if gen is None:
                run.skip(res["sampling"], rb, "sampling setup failed (see notes)")
                continue
            need = 5.0 if run.device.type == "cuda" else 0.0
            run.record(res["sampling"], rb, lambda: sampling_row(gen, scond, b, rb["precision"], pdt, samp_steps,
                                                                 a.sampling_repeats), need)


def _compile_rows(run: Run, model: Any, ub: UNetBench, use_cl: bool) -> None:
    """Section 3: ``torch.compile`` of the U-Net (last: slow and risky)."""
    a, res, device = run.a, run.res, run.device
    compile_estimate = a.compile_estimate if a.compile_estimate is not None else (75.0 if device.type == "cuda" else 0.0)
    res["meta"]["compile"] = {"backend": a.compile_backend, "mode": a.compile_mode, "dynamic": False}
    if a.skip_compile or "compile" not in a.variants or (device.type != "cuda" and not a.compile_on_cpu):
        why = ("--skip-compile" if a.skip_compile else UNSELECTED if "compile" not in a.variants
               else "compile skipped on the CPU (pass --compile-on-cpu)")
        for b in a.batches:
            run.skip(res["unet"], _row("compile", b), why)
        return
    try:
        kw = {"mode": a.compile_mode} if a.compile_backend == "inductor" else {}
        compiled = torch.compile(model, backend=a.compile_backend, dynamic=False, **kw)
    except Exception as e:
        for b in a.batches:
            res["unet"].append({**_row("compile", b), "status": "error", "error": error_text(e)})
        run.save()
        return
    calls = a.warmup + a.repeats + 4
    for b in a.batches:
        run.record(res["unet"], _row("compile", b),
                   lambda: ub.compiled(compiled, b, use_cl, f"{a.compile_backend}/{a.compile_mode}"),
                   compile_estimate + _estimate(ub, b, calls))


def _notes(run: Run) -> None:
    """The closing notes: the fastest U-Net row against the goal, what the timings are."""
    res = run.res
    ok = [r for r in res["unet"] if r["status"] == "ok"]
    if ok and not run.a.tiny:
        best = min(ok, key=lambda r: r["s_per_image_50_steps"])
        res["notes"].append(
            f"Fastest U-Net row: {best['variant']} at B={best['images']}: {best['s_per_image_50_steps']:.2f} s per image "
            f"at 50 steps (goal <= {GOAL_S_PER_IMAGE:g} s at 256x512: "
            f"{'met' if best['s_per_image_50_steps'] <= GOAL_S_PER_IMAGE else 'not met'})."
        )
    res["notes"].append("U-Net timings use random weights (speed does not depend on the weight values); "
                        "the 1000-step figures are extrapolated from the per-step time.")


def main(argv: list[str] | None = None, start: float | None = None) -> dict:
    """Run the benchmark; ``start``: ``time.perf_counter()`` the time guard counts from (default now)."""
    a = parse_args(argv)
    budget = Budget(a.max_seconds, start)
    device = torch.device(a.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if a.threads:
        torch.set_num_threads(a.threads)
    if device.type == "cuda" and not a.no_cudnn_benchmark:
        torch.backends.cudnn.benchmark = True

    cfg, unet_what = unet_choice(a.unet, a.tiny)
    height, width = (32, 64) if a.tiny else (256, 512)
    samp_steps = 2 if a.tiny else DEFAULT_STEPS
    res: dict = {"meta": _meta(a, argv, device, cfg, unet_what, (height, width), samp_steps),
                 "unet": [], "sampling": [], "notes": []}
    run = Run(a, budget, device, res)
    run.save()
    model, ub, use_cl = _unet_rows(run, cfg, height, width)
    _sampling_rows(run, cfg, height, width, samp_steps)
    if ub is not None:
        _compile_rows(run, model, ub, use_cl)
    _notes(run)
    run.save()
    run.log(f"wrote {run.out} and {run.out.with_suffix('.md')}")
    return res

if __name__ == "__main__":
    print(markdown(main(start=_T_START)), flush=True)
    sys.stderr.flush()
    # Exit at once: a compile cut short by the time guard can leave inductor's worker pool busy,
    # and waiting for it at interpreter exit could overrun the time budget. Results are saved.
    os._exit(0)
