"""The appearance side channel: a few dozen to a few hundred bits of colour per frame.

The paper's receiver sees only the semantic maps, so nothing it gets carries the scene's
lighting or paint: the colour oracle (docs/colour/README.md, section 5) shows that even a
perfect class-wise painting from the maps alone keeps a mean colour error of 23.5 (0-255).
This module adds an *optional* side channel beyond the paper (its setting stays the default,
``mode = "off"``):

* **what is sent** (:func:`measure_appearance`, sender): ``"mean"``: the image's mean RGB
  (3 numbers); ``"classes"``: the mean RGB of every present class's pixels, in the frame's
  ``class_ids`` order (``3 K`` numbers; the whole-image mean follows from them and the maps);
* **how** (:func:`pack_appearance`): every number (0-255) uniformly quantised to ``b`` bits,
  ``q = floor(v 2^b / 256)``, reconstructed at the cell centre ``(q + 1/2) 256 / 2^b``
  (largest error ``128 / 2^b``), most significant bit first: ``3 b`` bits for ``"mean"``,
  ``3 b K`` for ``"classes"``;
* **through the channel** (:func:`transmit_appearance_bits`): the bits are channel symbols in
  ``{0, 1}`` like the maps' and cross the same channel model at the frame's PSNR (power
  normalised, Eq. 1), each repeated ``r`` times (``repeat``); the receiver averages the ``r``
  received copies and decides ``1`` above ``1/2``. Bits and channel uses are both counted;
  ``repeat = 0`` (the default) lets the sender choose ``r`` (:func:`choose_repeat`): the
  smallest whose residual bit-error rate (:func:`residual_bit_error_rate`) is at most
  :data:`TARGET_BIT_ERROR_RATE`;
* **the receiver** (:func:`appearance_denoiser`): training-free conditioning. The sent mean
  is the clean image's mean, so at every sampler step the clean-image estimate
  ``x0_hat = (x_t - sigma_t eps) / alpha_t`` (inverse of paper Eq. 4) is projected onto it
  (:func:`project_x0`: per channel, ``x0_hat`` is shifted by the constant that gives its spatial
  mean, after the samplers' clamp to ``[-1, 1]``, over the whole image or over each class region
  of the *received* maps, the sent value) and the
  step's epsilon is recomputed from the projected estimate, ``eps' = (x_t - alpha_t x0') /
  sigma_t``. Every sampler that reads epsilon then takes a consistent step; none is edited.

Units: colours are 0-255 RGB outside the model and ``v / 127.5 - 1`` (the model's
``[-1, 1]``) inside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gesco.defaults import (
    APPEARANCE_BIT_DEPTH_RANGE,
    APPEARANCE_MODES,
    APPEARANCE_REPEAT_AUTO,
    APPEARANCE_REPEAT_RANGE,
    APPEARANCE_TARGET_BIT_ERROR_RATE,
)
from gesco.errors import GescoInputError, ShapeError

# APPEARANCE_MODES (gesco.defaults): "off" (the paper's setting, no side channel), "mean" (the
# image's mean RGB), "classes" (the mean RGB of every present class)
#: bits per colour component the quantiser accepts
BIT_DEPTH_RANGE: tuple[int, int] = APPEARANCE_BIT_DEPTH_RANGE
#: times each bit may be repeated on the channel (also the wire's bound, gesco.wire.bounds)
REPEAT_RANGE: tuple[int, int] = APPEARANCE_REPEAT_RANGE
#: ``repeat`` value meaning "the sender chooses" (:func:`choose_repeat`)
REPEAT_AUTO: int = APPEARANCE_REPEAT_AUTO
#: residual bit-error rate per information bit the automatic repetition aims for
TARGET_BIT_ERROR_RATE: float = APPEARANCE_TARGET_BIT_ERROR_RATE
#: bisection halvings of the shift in :func:`project_x0` (precision 4 / 2^n in [-1, 1] units)
BISECTION_STEPS = 24


class AppearanceError(GescoInputError):
    """A bad appearance setting or side-channel payload (a message names what was wrong)."""


@dataclass(frozen=True)
class AppearanceSettings:
    """The sender's choice of side channel.

    Attributes:
        mode: one of :data:`APPEARANCE_MODES` (``"off"``: nothing is sent, the paper's setting).
        bits: bits per colour component ``b`` (:data:`BIT_DEPTH_RANGE`).
        repeat: channel uses per bit ``r`` (repetition code, soft-combined at the receiver);
            :data:`REPEAT_AUTO` (0, the default): the sender chooses it (:func:`choose_repeat`)
            before the frame leaves, so a frame always carries ``r >= 1``.
    """

    mode: str = "off"
    bits: int = 6
    repeat: int = REPEAT_AUTO

    def validate(self) -> AppearanceSettings:
        if self.mode not in APPEARANCE_MODES:
            raise AppearanceError(f"appearance mode must be one of {list(APPEARANCE_MODES)}, got {self.mode!r}")
        lo, hi = BIT_DEPTH_RANGE
        if not lo <= int(self.bits) <= hi:
            raise AppearanceError(f"appearance bits per colour component must be in [{lo}, {hi}], got {self.bits}")
        lo, hi = REPEAT_RANGE
        if int(self.repeat) != REPEAT_AUTO and not lo <= int(self.repeat) <= hi:
            raise AppearanceError(f"appearance repeat must be {REPEAT_AUTO} (chosen from the PSNR and channel) "
                                  f"or in [{lo}, {hi}], got {self.repeat}")
        return self

    def check_chosen(self) -> AppearanceSettings:
        """:meth:`validate`, and the repetition chosen (``>= 1``: what a frame carries)."""
        self.validate()
        if int(self.repeat) == REPEAT_AUTO:
            raise AppearanceError(f"appearance repeat {REPEAT_AUTO} (automatic) must be chosen before the frame is "
                                  f"sent: a frame carries a repeat in {list(REPEAT_RANGE)}")
        return self

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def payload_bits(self, num_present: int) -> int:
        """Information bits of one frame with ``num_present`` present classes (0 when off)."""
        colours = {"off": 0, "mean": 1, "classes": int(num_present)}[self.mode]
        return 3 * int(self.bits) * colours

    def channel_uses(self, num_present: int) -> int:
        """Real channel symbols the side channel occupies: ``repeat x payload_bits`` (repeat chosen)."""
        return int(self.check_chosen().repeat) * self.payload_bits(num_present)


@dataclass(frozen=True)
class Appearance:
    """Colours of one scene in 0-255 RGB (float64), as measured or as received.

    Attributes:
        mode: ``"mean"`` or ``"classes"``.
        colours: ``(1, 3)`` (the image mean) or ``(K, 3)`` (one per present class).
        class_ids: ``(K,)`` int64 ids of the present classes (the frame's order); for
            ``"mean"`` too, unused.
    """

    mode: str
    colours: np.ndarray
    class_ids: np.ndarray


def measure_appearance(image: np.ndarray, label: np.ndarray, class_ids: np.ndarray | list[int],
                       mode: str) -> Appearance:
    """The sender's measurement: mean RGB of the image, or of each present class's pixels.

    Args:
        image: ``(H, W, 3)`` uint8 RGB at the model resolution (what the maps describe).
        label: ``(H, W)`` integer class ids (the transmitted label map).
        class_ids: the frame's present class ids (strictly increasing).
        mode: ``"mean"`` or ``"classes"``.
    """
    image, label = np.asarray(image), np.asarray(label)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != label.shape:
        raise ShapeError(f"appearance needs an (H, W, 3) image and its (H, W) label map, got {image.shape} "
                         f"and {label.shape}")
    ids = np.asarray(class_ids, dtype=np.int64)
    rgb = image.reshape(-1, 3).astype(np.float64)
    if mode == "mean":
        return Appearance("mean", rgb.mean(0, keepdims=True), ids)
    if mode != "classes":
        raise AppearanceError(f"nothing to measure for appearance mode {mode!r}")
    flat = label.reshape(-1)
    colours = np.empty((len(ids), 3))
    for k, c in enumerate(ids):
        sel = flat == c
        if not sel.any():
            raise AppearanceError(f"class {int(c)} is listed as present but has no pixel in the label map")
        colours[k] = rgb[sel].mean(0)
    return Appearance("classes", colours, ids)


def quantise(values: np.ndarray, bits: int) -> np.ndarray:
    """0-255 values -> integer codes ``floor(v 2^b / 256)`` in ``[0, 2^b - 1]`` (int64)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 255.0)
    return np.minimum(np.floor(v * (2 ** bits) / 256.0), 2 ** bits - 1).astype(np.int64)


def dequantise(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes -> the cell centres ``(q + 1/2) 256 / 2^b`` (float64, 0-255)."""
    return (np.asarray(codes, dtype=np.float64) + 0.5) * (256.0 / 2 ** bits)


def pack_appearance(app: Appearance, settings: AppearanceSettings) -> np.ndarray:
    """The side channel's information bits: ``(3 b n,)`` uint8 in ``{0, 1}``, MSB first per value."""
    settings.validate()
    if app.mode != settings.mode:
        raise AppearanceError(f"appearance measured for mode {app.mode!r}, settings say {settings.mode!r}")
    codes = quantise(app.colours.reshape(-1), settings.bits)
    shifts = np.arange(settings.bits - 1, -1, -1)
    return ((codes[:, None] >> shifts[None, :]) & 1).astype(np.uint8).reshape(-1)


def unpack_appearance(bits: np.ndarray, settings: AppearanceSettings, class_ids: np.ndarray | list[int]) -> Appearance:
    """Inverse of :func:`pack_appearance` at the receiver (colours at the quantiser's cell centres).

    Raises:
        AppearanceError: a bit count that does not match the mode, depth and present classes.
    """
    settings.validate()
    ids = np.asarray(class_ids, dtype=np.int64)
    bits = np.asarray(bits).reshape(-1)
    want = settings.payload_bits(len(ids))
    if bits.size != want or want == 0:
        raise AppearanceError(f"appearance payload has {bits.size} bits; mode {settings.mode!r} at "
                              f"{settings.bits} bits per component with {len(ids)} present classes needs {want}")
    if not np.isin(bits, (0, 1)).all():
        raise AppearanceError("appearance payload bits must be 0 or 1")
    weights = 1 << np.arange(settings.bits - 1, -1, -1)
    codes = (bits.reshape(-1, settings.bits).astype(np.int64) * weights).sum(1)
    return Appearance(settings.mode, dequantise(codes, settings.bits).reshape(-1, 3), ids)


def send_appearance_symbols(bits: np.ndarray, settings: AppearanceSettings, *, channel: str, psnr_db: float,
                            channel_params: dict | None = None,
                            generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """The channel's part: the bits as ``{0, 1}`` symbols, each repeated ``settings.repeat``
    times, through :func:`gesco.channel.get_channel` ``(channel, **channel_params)`` at
    ``psnr_db`` (power normalised to ``P = 1``, Eq. 1, as the maps).

    Returns:
        ``(received symbols (r n,) float32 in the signal's units, channel uses)``.
    """
    from gesco.channel import get_channel

    settings.check_chosen()
    b = np.asarray(bits, dtype=np.float32).reshape(-1)
    if b.size == 0:
        raise AppearanceError("no appearance bits to transmit")
    x = torch.from_numpy(np.repeat(b, settings.repeat))[None]  # (1, r n)
    result = get_channel(channel, **(channel_params or {})).transmit(x, float(psnr_db), generator=generator)
    return result.received[0].reshape(-1).float(), int(result.channel_uses[0])


def decide_appearance_bits(received: torch.Tensor | np.ndarray, settings: AppearanceSettings) -> np.ndarray:
    """The receiver's decision: the mean of each bit's ``r`` received copies, ``1`` above ``1/2``.

    Raises:
        AppearanceError: a symbol count that is not a multiple of ``repeat`` or not finite.
    """
    settings.check_chosen()
    y = torch.as_tensor(np.asarray(received, dtype=np.float32)).reshape(-1)
    if y.numel() == 0 or y.numel() % settings.repeat:
        raise AppearanceError(f"{y.numel()} appearance symbols received, not a positive multiple of "
                              f"repeat = {settings.repeat}")
    if not torch.isfinite(y).all():
        raise AppearanceError("appearance symbols hold NaN or inf")
    return (y.reshape(-1, settings.repeat).mean(1) > 0.5).numpy().astype(np.uint8)


def transmit_appearance_bits(bits: np.ndarray, settings: AppearanceSettings, *, channel: str, psnr_db: float,
                             channel_params: dict | None = None,
                             generator: torch.Generator | None = None) -> tuple[np.ndarray, int]:
    """:func:`send_appearance_symbols` then :func:`decide_appearance_bits`: ``(decided bits, channel uses)``."""
    received, uses = send_appearance_symbols(bits, settings, channel=channel, psnr_db=psnr_db,
                                             channel_params=channel_params, generator=generator)
    return decide_appearance_bits(received, settings), uses


# --------------------------------------------------------------------------- the repetition's choice
def q_function(x: float) -> float:
    """Gaussian tail ``Q(x) = P(N(0, 1) > x) = erfc(x / sqrt 2) / 2``."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def residual_bit_error_rate(bits: np.ndarray, repeat: int, *, channel: str, psnr_db: float,
                            channel_params: dict | None = None) -> float:
    """Probability that one information bit is decided wrong after averaging its ``r`` copies.

    The ``{0, 1}`` symbols of :func:`send_appearance_symbols` reach the receiver with Gaussian
    noise of standard deviation ``sigma_s`` per symbol in the signal's units, the channel model's
    own formula (:meth:`gesco.channel.ChannelModel.symbol_noise_std` at the symbols' mean power
    ``P = mean(b)``; AWGN, Eq. 1: ``sigma_s^2 = P / 10^(PSNR/10)``, so fewer ones mean less
    noise). The mean of ``r`` copies has noise ``sigma_s / sqrt(r)`` and the decision threshold
    is ``1/2`` away from both levels, so

        ``p = Q(sqrt(r) / (2 sigma_s))``, the same for a sent 0 and a sent 1.

    Args:
        bits: ``(n,)`` the information bits in ``{0, 1}`` (their share of ones sets ``P``;
            repeating them does not change it).
        repeat: ``r >= 1``.
    Raises:
        AppearanceError: a channel model whose noise is not one fixed Gaussian per symbol (the
            fading models: their bit-error rate depends on the drawn gains), or an empty payload.
        ChannelParameterError: an unknown channel or bad parameters (:func:`gesco.channel.get_channel`).
    """
    from gesco.channel import get_channel

    b = np.asarray(bits, dtype=np.float64).reshape(-1)
    if b.size == 0:
        raise AppearanceError("no appearance bits to transmit")
    std = get_channel(channel, **(channel_params or {})).symbol_noise_std(float(psnr_db), float(np.mean(b * b)))
    if std is None:
        raise AppearanceError(f"the appearance side channel's repetition cannot be chosen for channel {channel!r}: "
                              "its bit-error rate depends on the drawn fading gains; give appearance_repeat "
                              f"in {list(REPEAT_RANGE)}")
    if std == 0.0:
        return 0.0
    return q_function(math.sqrt(int(repeat)) / (2.0 * std))


@dataclass(frozen=True)
class RepeatChoice:
    """The sender's choice of repetition (:func:`choose_repeat`).

    Attributes:
        repeat: the chosen ``r``.
        bit_error_rate: :func:`residual_bit_error_rate` at ``r``.
        target: the rate aimed for.
        met: ``bit_error_rate <= target`` (``False``: even the largest ``r`` falls short).
    """

    repeat: int
    bit_error_rate: float
    target: float
    met: bool

    def note(self, psnr_db: float, channel: str) -> str:
        """One line saying what was chosen and whether it meets the target (the sender's reply
        carries it as a warning when it does not)."""
        head = (f"appearance_repeat chosen: {self.repeat} copies per bit at {psnr_db:g} dB on {channel!r} "
                f"(predicted residual bit-error rate {self.bit_error_rate:.2g}")
        if self.met:
            return head + f" <= target {self.target:g})"
        return head + (f", above the target {self.target:g} even at the largest repeat {REPEAT_RANGE[1]}: "
                       "expect wrong colours; send appearance 'off' or at a higher PSNR)")


def choose_repeat(bits: np.ndarray, *, channel: str, psnr_db: float, channel_params: dict | None = None,
                  target: float = TARGET_BIT_ERROR_RATE) -> RepeatChoice:
    """The smallest ``r`` in :data:`REPEAT_RANGE` whose :func:`residual_bit_error_rate` is at most
    ``target``; the largest ``r`` (``met = False``) when none is.

    The rate falls with ``r``, so this is the first ``r`` counted up from 1.
    """
    lo, hi = REPEAT_RANGE
    rate = 1.0
    for r in range(lo, hi + 1):
        rate = residual_bit_error_rate(bits, r, channel=channel, psnr_db=psnr_db, channel_params=channel_params)
        if rate <= target:
            return RepeatChoice(r, rate, float(target), True)
    return RepeatChoice(hi, rate, float(target), False)


# --------------------------------------------------------------------------- receiver
@dataclass(frozen=True)
class AppearanceTarget:
    """What the sampler's estimates are projected onto, for a batch of ``B`` images (model units).

    Attributes:
        mean: ``(B, 3)`` float32 whole-image mean in ``[-1, 1]``; ``nan`` rows: none sent.
        class_mean: ``(B, L, 3)`` float32 per-label mean (``L`` = ids of the class space);
            ``nan`` where that class's colour was not sent.
        regions: ``(B, H, W)`` int64 label map at the receiver (argmax of the received maps)
            whose regions ``class_mean`` applies to.
    """

    mean: torch.Tensor
    class_mean: torch.Tensor
    regions: torch.Tensor

    @staticmethod
    def build(received: list[Appearance | None], regions: torch.Tensor, num_labels: int) -> AppearanceTarget:
        """Stack per-image received appearances (``None``: no side channel for that image).

        Args:
            received: one entry per image.
            regions: ``(B, H, W)`` integer labels at the receiver (``label_from_maps`` of the
                denoised maps).
            num_labels: size of the class space (ids ``0 .. L - 1``).
        """
        if regions.dim() != 3 or regions.shape[0] != len(received):
            raise ShapeError(f"regions must be (B, H, W) for {len(received)} images, got {tuple(regions.shape)}")
        b = len(received)
        mean = torch.full((b, 3), float("nan"))
        class_mean = torch.full((b, num_labels, 3), float("nan"))
        for i, app in enumerate(received):
            if app is None:
                continue
            cols = torch.from_numpy(app.colours / 127.5 - 1.0).float()
            if app.mode == "mean":
                mean[i] = cols[0]
            else:
                class_mean[i, torch.from_numpy(app.class_ids)] = cols
        return AppearanceTarget(mean, class_mean, regions.long())

    def to(self, device: torch.device | str) -> AppearanceTarget:
        return AppearanceTarget(self.mean.to(device), self.class_mean.to(device), self.regions.to(device))


def _solve_shifts(x: torch.Tensor, member: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Per region and channel, the shift ``d`` with ``mean_R(clamp(x + d, -1, 1)) = m`` (bisection).

    ``x`` ``(B, 3, P)`` in ``[-1, 1]``; ``member`` ``(B, P, R)`` 0/1 region membership (each pixel
    in at most one region); ``target`` ``(B, R, 3)``; ``known`` ``(B, R)`` regions to solve.
    ``mean_R(clamp(x + d))`` is continuous and non-decreasing in ``d``, equal to -1 at ``d = -2``
    and 1 at ``d = 2``, so :data:`BISECTION_STEPS` halvings of ``[-2, 2]`` find ``d`` to ``4 / 2^n``.
    Returns ``(B, 3, P)``: ``x`` shifted and clamped (pixels of unsolved regions unchanged).
    """
    pixels = member.sum(1).clamp(min=1)[..., None]  # (B, R, 1)
    goal = target.clamp(-1.0, 1.0)
    lo = torch.full_like(goal, -2.0)
    hi = torch.full_like(goal, 2.0)
    mask = known[..., None].to(x.dtype)

    def shifted(d: torch.Tensor) -> torch.Tensor:
        return (x + torch.einsum("brc,bpr->bcp", d * mask, member)).clamp(-1.0, 1.0)

    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        mean = torch.einsum("bcp,bpr->brc", shifted(mid), member) / pixels
        below = mean < goal
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    out = shifted((lo + hi) / 2)
    untouched = torch.einsum("br,bpr->bp", known.to(x.dtype), member) == 0  # (B, P)
    return torch.where(untouched[:, None, :], x, out)


def project_x0(x0: torch.Tensor, target: AppearanceTarget) -> torch.Tensor:
    """Give ``x0`` the target's means, per class region or over the whole image, within ``[-1, 1]``.

    For each image, channel and class ``c`` with a sent colour ``m_c``, the pixels of region
    ``R_c`` (``regions == c``) are shifted by the one constant ``d`` that makes the mean of
    ``clamp(x0 + d, -1, 1)`` over ``R_c`` equal ``m_c`` (the samplers clamp ``x0_hat`` to
    ``[-1, 1]`` too, so the clamp is part of the projection); for an image with a sent
    whole-image mean ``m``, the same with every pixel as the region. Pixels of regions
    without a sent colour are returned as they were (unclamped), and so are images without a target.

    Args:
        x0: ``(B, 3, H, W)`` clean-image estimate.
    Returns:
        ``(B, 3, H, W)`` projected estimate (same dtype).
    """
    if x0.dim() != 4 or x0.shape[0] != target.mean.shape[0] or tuple(x0.shape[2:]) != tuple(target.regions.shape[1:]):
        raise ShapeError(f"x0 {tuple(x0.shape)} does not match the appearance target "
                         f"(B={target.mean.shape[0]}, regions {tuple(target.regions.shape)})")
    b, c, h, w = x0.shape
    flat = x0.float().reshape(b, c, -1)
    member = torch.nn.functional.one_hot(target.regions.reshape(b, -1), target.class_mean.shape[1]).float()
    known = torch.isfinite(target.class_mean[..., 0]) & (member.sum(1) > 0)  # (B, L)
    if known.any():
        flat = _solve_shifts(flat.clamp(-1.0, 1.0), member, torch.nan_to_num(target.class_mean), known)
    has_mean = torch.isfinite(target.mean[:, 0])  # (B,)
    if has_mean.any():
        whole = torch.ones(b, flat.shape[2], 1, dtype=flat.dtype, device=flat.device)
        solved = _solve_shifts(flat.clamp(-1.0, 1.0), whole, torch.nan_to_num(target.mean)[:, None, :],
                               has_mean[:, None])
        flat = torch.where(has_mean[:, None, None], solved, flat)
    return flat.reshape(b, c, h, w).to(x0.dtype)


def appearance_denoiser(denoiser, diffusion, target: AppearanceTarget):
    """Wrap a denoiser (:mod:`gesco.diffusion.guidance`) so that its clean-image estimate has
    the target's colours.

    ``eps -> x0_hat = (x_t - sigma_t eps) / alpha_t -> x0' = project_x0(x0_hat) ->
    eps' = (x_t - alpha_t x0') / sigma_t``, with ``alpha_t = sqrt(abar_t)``,
    ``sigma_t = sqrt(1 - abar_t)`` of ``diffusion`` at each image's time index ``t``
    (original chain). The variance output passes through unchanged.
    """

    def denoise(x: torch.Tensor, t: torch.Tensor):
        eps, v = denoiser(x, t)
        x0 = project_x0(diffusion.predict_x0(x, t, eps), target)
        return diffusion.predict_eps(x, t, x0), v

    return denoise


__all__ = [
    "APPEARANCE_MODES",
    "Appearance",
    "AppearanceError",
    "AppearanceSettings",
    "AppearanceTarget",
    "BIT_DEPTH_RANGE",
    "REPEAT_AUTO",
    "REPEAT_RANGE",
    "RepeatChoice",
    "TARGET_BIT_ERROR_RATE",
    "appearance_denoiser",
    "choose_repeat",
    "decide_appearance_bits",
    "dequantise",
    "measure_appearance",
    "pack_appearance",
    "project_x0",
    "q_function",
    "quantise",
    "residual_bit_error_rate",
    "send_appearance_symbols",
    "transmit_appearance_bits",
    "unpack_appearance",
]
