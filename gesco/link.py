"""One transmission, without the network: the sender's, the channel's and the receiver's stages.

The three services (``sender/``, ``channel/``, ``receiver/``) are thin wrappers around
this module, and the evaluation calls the very same functions, so a number measured
through HTTP and gRPC and a number measured in a loop come from identical code::

    frame, t = encode_image_frame(image, label, instance, space=space, resolution=(64, 128),
                                  transmit=TransmitSettings(psnr_db=10), frame_id="x")  # sender
    received = apply_channel(frame)                                                 # channel
    cond = received_conditioning(received)         # receiver: (C + 1, H, W), into the sampler
    record = budget_record(frame, received.report)                            # bit-budget log

Stages (paper section 3):

1. :func:`encode_image_frame` (sender, section 3.2): fit the image (area when
   shrinking) and the label / instance maps (nearest) to the model resolution, centre-
   cropping or letterboxing another aspect ratio (:mod:`gesco.data.aspect`), segment
   the image when no label map is given and score how sure the segmenter is
   (:mod:`gesco.segment.domain`), derive an instance map from the label map when none
   is given (:mod:`gesco.semantics.instances`), one-hot encode and keep the present classes
   (:func:`gesco.semantics.layout.encode_layout`), code the maps
   (:mod:`gesco.codecs`) into a ``SemanticFrame``, and record the size of the resized
   image as PNG and JPEG for the budget.
2. :func:`apply_channel` (channel, section 3.1, Eq. 1): count bits, decode the payload to
   the symbols the channel sends, normalise their power and add noise at the frame's
   PSNR (:func:`gesco.channel.get_channel`), and pack the received symbols as float16
   with a :class:`ChannelReport`.
3. :func:`received_conditioning` (receiver, Eq. 2): unpack the symbols, bring them back
   to full resolution (the codec's ``upsample``), apply FDS and ``Pad`` the absent
   classes: the ``(C + 1, H, W)`` conditioning of the diffusion model.

Randomness is reproducible: the channel noise is drawn from a generator seeded by
:func:`stage_seed` ``(frame.transmit.seed, "channel")``; the receiver's sampling uses
``frame.transmit.seed`` itself.

Uploads are decoded and checked by :mod:`gesco.uploads` (re-exported here: :func:`decode_image`,
:func:`decode_label_map`, :func:`encode_png`, the limits and their errors).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from gesco.appearance import (
    REPEAT_AUTO,
    Appearance,
    AppearanceError,
    AppearanceSettings,
    AppearanceTarget,
    choose_repeat,
    decide_appearance_bits,
    measure_appearance,
    pack_appearance,
    send_appearance_symbols,
    unpack_appearance,
)
from gesco.channel import get_channel, params_to_text, validate_channel_params
from gesco.codecs import DEFAULT_CODEC, get_codec
from gesco.codecs.accounting import frame_bits
from gesco.codecs.budget import image_bits
from gesco.data.aspect import DEFAULT_ASPECT, PAD_LABEL, AspectReport, check_aspect_mode, fit_aspect
from gesco.errors import (
    ChannelParameterError,
    DTypeError,
    GescoInputError,
    ShapeError,
)
from gesco.segment.domain import DEFAULT_DOMAIN_THRESHOLD, DomainReport, check_threshold, domain_report, segment_scored
from gesco.semantics.classes import ClassSpace
from gesco.semantics.fds import fds_filter
from gesco.semantics.instances import EDGE_SOURCES, EDGES_DERIVED, EDGES_NONE, EDGES_UPLOADED, derive_instances
from gesco.semantics.layout import authors_instance_ids, check_instance_id_mode, encode_layout, pad_maps
from gesco.transmit_fields import PSNR_RANGE_DB, default, from_wire, to_wire
from gesco.uploads import (
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_image,
    decode_label_map,
    encode_png,
    image_header,
)
from gesco.wire import gesco_pb2 as pb
from gesco.wire.frames import (
    codec_for_frame,
    frame_channel_symbols,
    make_frame,
    n_maps,
    symbols_from_bytes,
    symbols_to_bytes,
    validate_frame,
    validate_received_frame,
)
from gesco.wire.limits import FrameLimits, check_frame_limits, check_layout_symbols

if TYPE_CHECKING:
    from gesco.diffusion.pipeline import SamplingSettings

#: JPEG quality of the budget's reference (libjpeg's default)
DEFAULT_JPEG_QUALITY = 75
#: largest magnitude of a received symbol on the wire (float16)
F16_MAX = 65504.0


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class TransmitSettings:
    """What the user chooses for one transmission besides the image.

    One attribute per entry of :data:`gesco.transmit_fields.FIELDS`, the declaration every
    representation of these settings derives from (types, defaults, ranges, meanings, flags,
    wire fields; ``tests/test_transmit_fields.py`` checks that this class follows it).

    Attributes:
        psnr_db: channel PSNR of Eq. (1), in dB.
        channel: channel preset (``"awgn"``: Eq. 1 with power normalisation;
            ``"authors-code"``: the authors' noise table).
        channel_params: parameters of the channel model (``{"block_length": 64}``; see
            ``docs/channel.md``); empty = the model's defaults.
        codec: the lossless map codec (the inner codec when ``downsample > 1``).
        downsample: block-downsampling factor of the maps (1 = full maps; :func:`codec_choice`).
        sampler: the receiver's sampler (a name of :data:`gesco.defaults.SAMPLERS`; default
            ``"dpmpp-2m-sde-ode-mean"``, the receiver's default student's).
        steps: sampling steps (network evaluations).
        guidance_scale: classifier-free guidance scale ``s`` (1 = no guidance).
        seed: seed of the channel noise (through :func:`stage_seed`) and of the sampling noise.
        fds: apply the fast denoising semantic block (Eq. 2) at the receiver.
        appearance, appearance_bits, appearance_repeat: the appearance side channel
            (:class:`~gesco.appearance.AppearanceSettings`; ``"off"``: the paper's setting).
    """

    psnr_db: float = default("psnr_db")
    channel: str = default("channel")
    channel_params: dict[str, Any] = field(default_factory=dict)
    codec: str = default("codec")
    downsample: int = default("downsample")
    sampler: str = default("sampler")
    steps: int = default("steps")
    guidance_scale: float = default("guidance_scale")
    seed: int = default("seed")
    fds: bool = default("fds")
    appearance: str = default("appearance")
    appearance_bits: int = default("appearance_bits")
    appearance_repeat: int = default("appearance_repeat")

    def appearance_settings(self) -> AppearanceSettings:
        """The side channel of these settings (checked; mode ``"off"``: none)."""
        return AppearanceSettings(self.appearance, int(self.appearance_bits), int(self.appearance_repeat)).validate()

    def to_message(self, omit: Iterable[str] = ()) -> pb.TransmitParams:
        """The ``TransmitParams`` of these settings, every field present but those in ``omit``
        (the sender omits the :data:`~gesco.transmit_fields.RECEIVER_DEFAULTS` its client left
        unset: the receiver then applies its model's default)."""
        values = self.to_dict() | {"channel_params": params_to_text(self.channel_params)}
        return to_wire(values, pb.TransmitParams(), omit)

    @classmethod
    def from_message(cls, msg: pb.TransmitParams, defaults: Mapping[str, Any] | None = None) -> TransmitSettings:
        """The settings a ``TransmitParams`` carries; an unset field means its declared default,
        or ``defaults[name]`` when given (the receiver's model's, :func:`~gesco.transmit_fields.model_defaults`)."""
        return cls(**from_wire(msg, defaults))

    @classmethod
    def from_frame(cls, frame: pb.SemanticFrame, defaults: Mapping[str, Any] | None = None) -> TransmitSettings:
        """The settings of a frame: its ``transmit`` message (:meth:`from_message`; every field
        unset when absent), its codec fields (``codec`` / ``codec_params``, the inverse of
        :func:`codec_choice`) and its ``appearance`` message (unset mode: ``"off"``)."""
        codec, downsample = frame.codec or default("codec"), 1
        if codec == "downsample":
            codec, downsample = frame.codec_params.inner or default("codec"), int(frame.codec_params.factor)
        side = frame_appearance(frame)
        looks = {} if side is None else {"appearance": side.mode, "appearance_bits": side.bits,
                                         "appearance_repeat": side.repeat}
        return replace(cls.from_message(frame.transmit, defaults), codec=codec, downsample=downsample, **looks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_sampling(self) -> SamplingSettings:
        """The receiver's sampling settings of this transmission (the one conversion, used by
        the receiver and the evaluation alike)."""
        from gesco.diffusion.pipeline import SamplingSettings

        return SamplingSettings(sampler=self.sampler, steps=int(self.steps),
                                guidance_scale=float(self.guidance_scale), seed=int(self.seed))


def codec_choice(codec: str = DEFAULT_CODEC, downsample: int = 1) -> tuple[str, dict[str, int | str]]:
    """Codec name and parameters for a lossless ``codec`` and a downsampling factor.

    ``downsample = 1`` sends the full maps with ``codec``; ``k > 1`` sends ``k x k``
    block-downsampled maps (codec ``"downsample"``, ``codec`` as its inner codec).
    Raises :class:`~gesco.errors.UnknownCodecError` for a bad name or factor.
    """
    if downsample == 1:
        get_codec(codec)
        return codec, {}
    params: dict[str, int | str] = {"factor": int(downsample)}
    if codec != DEFAULT_CODEC:
        params["inner"] = codec
    get_codec("downsample", **params)
    return "downsample", params


def stage_seed(seed: int, stage: str) -> int:
    """A 63-bit seed for one random stage (``"channel"``, ...) derived from the user's seed.

    Distinct stages get independent streams, so the channel noise and the sampling noise
    are not the same Gaussian draw even though one seed drives both.
    """
    words = [int(seed) & 0xFFFFFFFF, int(seed) >> 32] + [ord(c) for c in stage]
    state = np.random.SeedSequence(words).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


# --------------------------------------------------------------------------- stage 1: sender
class Segmenter(Protocol):
    """What the sender needs from a segmenter (``gesco.segment.load_segmenter()``)."""

    def predict_numpy(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` integer class ids."""
        ...


def encode_image_frame(
    image_rgb: np.ndarray,
    label: np.ndarray | None = None,
    instance: np.ndarray | None = None,
    *,
    space: ClassSpace,
    resolution: tuple[int, int],
    frame_id: str,
    transmit: TransmitSettings | None = None,
    unset: Iterable[str] = (),
    segmenter: Segmenter | None = None,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    aspect: str = DEFAULT_ASPECT,
    domain_threshold: float = DEFAULT_DOMAIN_THRESHOLD,
    derive_edges: bool = True,
    instance_ids: str = "full",
) -> tuple[pb.SemanticFrame, dict[str, float]]:
    """The sender's stage: an image (and optionally its maps) -> a ``SemanticFrame``.

    Args:
        image_rgb: ``(h, w, 3)`` uint8 RGB, any size.
        label: optional ``(h, w)`` integer class ids of ``space`` (the ground truth, as
            GESCO transmits); ``None`` segments the resized image with ``segmenter``.
        instance: optional ``(h, w)`` integer instance ids; its edge map is appended.
            Without it (and with ``derive_edges``) the instance map is derived from the
            label map at the model resolution (:func:`gesco.semantics.instances.derive_instances`:
            connected components of the thing classes).
        space: the class space of the receiver's model.
        resolution: ``(H, W)`` of the receiver's model; everything is resized to it.
        frame_id: the frame / job id.
        transmit: the transmission settings, the one source of the frame's settings: the channel
            and receiver settings carried in ``frame.transmit``, the map codec
            (``transmit.codec`` / ``transmit.downsample``, read by :func:`codec_choice` into the
            frame's ``codec`` / ``codec_params``); its appearance side channel
            (:mod:`gesco.appearance`; beyond the paper, ``"off"`` by default: the paper's setting),
            when on, has the colours of the resized image measured, quantised and put in
            ``frame.appearance`` / ``frame.appearance_bits``.
        unset: names of :data:`~gesco.transmit_fields.RECEIVER_DEFAULTS` left unset in the frame
            (the receiver then applies its model's default; the sender passes those its client left out).
        segmenter: used when ``label`` is ``None``.
        jpeg_quality: quality of the JPEG reference size.
        aspect: how an upload of another aspect ratio is fitted (``"crop"``,
            ``"letterbox"``, ``"stretch"``; :mod:`gesco.data.aspect`).
        domain_threshold: a segmented upload whose segmenter confidence is below this is
            flagged out of domain (:mod:`gesco.segment.domain`); it is still sent.
        derive_edges: derive the instance map when none is given; ``False`` sends no edge
            map then. ``frame.upload.edges`` says which: ``"uploaded"``, ``"derived"`` or ``"none"``.
        instance_ids: how an uploaded instance map is read before its edges are made
            (:data:`gesco.semantics.layout.INSTANCE_ID_MODES`): ``"full"``, or ``"8bit"`` as the
            authors' loader (ids clipped to 255, :func:`~gesco.semantics.layout.authors_instance_ids`)
            for a receiver serving their imported weights (its card's ``conditioning.instance_ids``).
    Returns:
        ``(frame, timings)``: the validated frame with payload, reference sizes, transmit
        settings and ``frame.upload`` (aspect handling, domain score, notes); seconds spent per stage: ``"resize"``, ``"segment"`` (0 with a
        given label map), ``"encode"`` (one-hot + codec), ``"reference"`` (PNG/JPEG sizes).
    Raises:
        ShapeError, DTypeError: malformed image or maps, or maps of another size than the image.
        ClassIdError: label ids outside ``space``.
        GescoInputError: no label map and no segmenter.
        UnknownCodecError: an unusable ``transmit.codec`` / ``transmit.downsample`` pair.
    """
    transmit = transmit or TransmitSettings()
    appearance = transmit.appearance_settings()  # AppearanceError for a bad choice, before any work
    codec, codec_params = codec_choice(transmit.codec, transmit.downsample)  # UnknownCodecError, before any work
    image_rgb = check_upload_arrays(image_rgb, label, instance)
    height, width = (int(s) for s in resolution)
    check_aspect_mode(aspect)
    check_threshold(domain_threshold)
    check_instance_id_mode(instance_ids)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    image, label, instance, fit = fit_upload(image_rgb, label, instance, space, (height, width), aspect, instance_ids)
    timings["resize"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    segmented = label is None
    domain = None
    if segmented:
        label, domain = segment_upload(image, fit, segmenter, domain_threshold)
    timings["segment"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    edges = EDGES_UPLOADED if instance is not None else EDGES_DERIVED if derive_edges else EDGES_NONE
    if edges == EDGES_DERIVED:
        instance = derive_instances(label, space)
    frame = make_frame(encode_layout(label, space, instance), get_codec(codec, **codec_params), frame_id,
                       class_space=space.name)
    frame.transmit.CopyFrom(transmit.to_message(omit=unset))
    frame.upload.CopyFrom(upload_info(fit, segmented, domain, edges))
    if appearance.enabled:
        colours = measure_appearance(image, label, list(frame.class_ids), appearance.mode)
        side_bits = pack_appearance(colours, appearance)
        if appearance.repeat == REPEAT_AUTO:  # the sender chooses r from the PSNR and channel
            choice = choose_repeat(side_bits, channel=transmit.channel, psnr_db=transmit.psnr_db,
                                   channel_params=transmit.channel_params)
            appearance = replace(appearance, repeat=choice.repeat)  # the budget and replies show it
            if not choice.met:  # a warning in the sender's reply: the colours will arrive with errors
                frame.upload.notes.append(choice.note(transmit.psnr_db, transmit.channel))
        set_frame_appearance(frame, appearance, side_bits)
    timings["encode"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = image_bits(image, jpeg_quality)
    frame.png_bits, frame.jpeg_bits, frame.jpeg_quality = ref.png, ref.jpeg, ref.jpeg_quality
    timings["reference"] = time.perf_counter() - t0
    validate_frame(frame)
    return frame, timings


def check_upload_arrays(image_rgb: np.ndarray, label: np.ndarray | None, instance: np.ndarray | None) -> np.ndarray:
    """The checks of :func:`encode_image_frame` on its arrays, before any work: the image is
    ``(h, w, 3)`` uint8, each given map ``(h, w)`` of integers, an instance map comes with its
    label map. Returns the image as an array.

    Raises:
        ShapeError, DTypeError, GescoInputError: naming the array and what is wrong.
    """
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ShapeError(f"image must be (H, W, 3), got shape {image_rgb.shape}")
    if image_rgb.dtype != np.uint8:
        raise DTypeError(f"image must be uint8, got {image_rgb.dtype}")
    for name, m in (("label map", label), ("instance map", instance)):
        if m is None:
            continue
        m = np.asarray(m)
        if m.shape != image_rgb.shape[:2]:
            raise ShapeError(f"{name} is {_hw(m.shape)} but the image is {_hw(image_rgb.shape[:2])}; they must match")
        if not np.issubdtype(m.dtype, np.integer):
            raise DTypeError(f"{name} must hold integer ids, got dtype {m.dtype}")
    if label is None and instance is not None:
        raise GescoInputError("an instance map needs its label map")
    return image_rgb


def fit_upload(image_rgb: np.ndarray, label: np.ndarray | None, instance: np.ndarray | None, space: ClassSpace,
               resolution: tuple[int, int], aspect: str, instance_ids: str,
               ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, AspectReport]:
    """The resize stage of :func:`encode_image_frame`: check the label ids against ``space``
    (before resizing, so that every bad id is reported), read the instance ids as
    ``instance_ids`` says (``"8bit"``: the authors' clipping), and fit all three to
    ``resolution`` (:func:`gesco.data.aspect.fit_aspect`). Returns ``(image, label,
    instance, fit)`` at ``resolution``, the maps ``None`` where none were given."""
    if label is not None:
        label = np.asarray(label)
        space.check_ids(label)
    if instance is not None:
        instance = np.asarray(instance)
        if instance_ids == "8bit":
            instance = authors_instance_ids(instance)
    return fit_aspect(image_rgb, label, instance, resolution, aspect)


def segment_upload(image: np.ndarray, fit: AspectReport, segmenter: Segmenter | None,
                   domain_threshold: float) -> tuple[np.ndarray, DomainReport]:
    """The segment stage of :func:`encode_image_frame` (no label map uploaded): the
    segmenter's label map of the fitted ``(H, W, 3)`` image, with letterbox bars set to
    :data:`PAD_LABEL`, and the domain report of its confidence.

    Raises:
        GescoInputError: no segmenter.
        ShapeError: the segmenter returned a map of another size.
    """
    if segmenter is None:
        raise GescoInputError("no label map given and no segmenter available")
    height, width = image.shape[:2]
    label, confidence = segment_scored(segmenter, image)
    if label.shape != (height, width):
        raise ShapeError(f"segmenter returned a {_hw(label.shape)} map for a {height}x{width} image")
    content = fit.content_mask()
    if not content.all():  # letterbox bars are padding, whatever the segmenter saw there
        label = label.copy()
        label[~content] = PAD_LABEL
    return label, domain_report(confidence, domain_threshold, content, str(getattr(segmenter, "source", "")))


def upload_info(fit: AspectReport, segmented: bool, domain: DomainReport | None,
                edges: str = EDGES_UPLOADED) -> pb.UploadInfo:
    """The frame's ``UploadInfo``: how the upload was fitted, which edge map it carries
    (one of :data:`~gesco.semantics.instances.EDGE_SOURCES`) and, when segmented, its domain score."""
    if edges not in EDGE_SOURCES:
        raise GescoInputError(f"edges must be one of {list(EDGE_SOURCES)}, got {edges!r}")
    info = pb.UploadInfo(
        source_height=fit.source_size[0], source_width=fit.source_size[1], aspect=fit.mode,
        aspect_adjusted=fit.adjusted, source_box=list(fit.source_box), content_box=list(fit.content_box),
        segmented=segmented, edges=edges,
    )
    notes = [fit.note] if fit.adjusted else []
    if domain is not None:
        info.domain_threshold = domain.threshold
        if domain.scored:
            info.domain_scored = True
            info.domain_score = domain.score
            info.confident_fraction = domain.confident_fraction
            info.out_of_domain = domain.out_of_domain
        if domain.message:
            notes.append(domain.message)
    info.notes.extend(notes)
    return info


def upload_report(info: pb.UploadInfo) -> dict[str, Any]:
    """A frame's ``UploadInfo`` as the JSON the sender and the receiver return (``UploadReport``)."""
    scored = bool(info.domain_scored)
    return {
        "source_size": [int(info.source_height), int(info.source_width)],
        "aspect": info.aspect or "stretch",
        "aspect_adjusted": bool(info.aspect_adjusted),
        "source_box": [int(v) for v in info.source_box] or None,
        "content_box": [int(v) for v in info.content_box] or None,
        "segmented": bool(info.segmented),
        "domain_scored": scored,
        "domain_score": round(float(info.domain_score), 4) if scored else None,
        "confident_fraction": round(float(info.confident_fraction), 4) if scored else None,
        "domain_threshold": round(float(info.domain_threshold), 4) if info.segmented else None,
        "out_of_domain": bool(info.out_of_domain),
        "edges": info.edges or None,
        "notes": list(info.notes),
    }


def _hw(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


# --------------------------------------------------------------------------- appearance side channel
def set_frame_appearance(frame: pb.SemanticFrame, settings: AppearanceSettings, bits: np.ndarray) -> None:
    """Put the side channel's settings and information bits (packed, MSB first) into ``frame``."""
    frame.appearance.CopyFrom(pb.AppearanceParams(mode=settings.mode, bits=int(settings.bits),
                                                  repeat=int(settings.repeat)))
    frame.appearance_bits = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


def frame_appearance(frame: pb.SemanticFrame) -> AppearanceSettings | None:
    """The frame's side-channel settings (``None``: it carries none), checked.

    Raises:
        AppearanceError: an unknown mode, a bit depth or repeat out of range (a frame's repeat is
            chosen: ``>= 1``).
    """
    a = frame.appearance
    if not a.mode:
        if frame.appearance_bits:
            raise AppearanceError("the frame carries appearance bits but no appearance mode")
        return None
    if a.mode == "off":
        raise AppearanceError("appearance mode 'off' is sent as an unset mode, not as 'off'")
    return AppearanceSettings(a.mode, int(a.bits), int(a.repeat)).check_chosen()


def frame_appearance_bits(frame: pb.SemanticFrame, settings: AppearanceSettings) -> np.ndarray:
    """The frame's side-channel information bits ``(n,)`` uint8, ``n = settings.payload_bits(K)``.

    Raises:
        AppearanceError: a byte string of another length than ``ceil(n / 8)`` or with padding bits set.
    """
    n = settings.payload_bits(len(frame.class_ids))
    raw = np.frombuffer(frame.appearance_bits, dtype=np.uint8)
    if raw.size != (n + 7) // 8:
        raise AppearanceError(f"appearance_bits holds {raw.size} bytes; mode {settings.mode!r} at {settings.bits} "
                              f"bits per component with {len(frame.class_ids)} present classes needs {(n + 7) // 8}")
    bits = np.unpackbits(raw)
    if bits[n:].any():
        raise AppearanceError("appearance_bits has padding bits set beyond its last bit")
    return bits[:n]


def received_appearance(received: pb.ReceivedFrame) -> Appearance | None:
    """The receiver's side of the side channel: decide the received symbols and read the colours
    (``None`` when the frame carries no side channel).

    Raises:
        AppearanceError: symbols missing or of the wrong count for the frame's settings.
    """
    settings = frame_appearance(received.header)
    if settings is None:
        if received.appearance_symbols:
            raise AppearanceError("appearance symbols received for a frame without an appearance side channel")
        return None
    uses = settings.channel_uses(len(received.header.class_ids))
    if len(received.appearance_symbols) != 2 * uses:
        raise AppearanceError(f"{len(received.appearance_symbols)} bytes of appearance symbols received; "
                              f"the frame's side channel sends {uses} float16 symbols ({2 * uses} bytes)")
    y = np.frombuffer(received.appearance_symbols, dtype="<f2").astype(np.float32)
    return unpack_appearance(decide_appearance_bits(y, settings), settings, list(received.header.class_ids))


def appearance_target(maps: list[ReceiverMaps], received: list[Appearance | None],
                      num_classes: int) -> AppearanceTarget | None:
    """The sampler's :class:`~gesco.appearance.AppearanceTarget` for a batch: each image's received
    colours, its class regions the argmax of its denoised maps (:func:`label_from_maps`);
    ``None`` when no image of the batch has a side channel."""
    if all(a is None for a in received):
        return None
    regions = torch.stack([torch.from_numpy(label_from_maps(m.denoised, m.class_ids)) for m in maps])
    return AppearanceTarget.build(received, regions, num_classes)


# --------------------------------------------------------------------------- stage 2: channel
def check_transmit_params(frame: pb.SemanticFrame) -> None:
    """Check the channel settings a frame carries: a known preset and a sane PSNR.

    Raises:
        ChannelParameterError: unknown preset, PSNR outside :data:`PSNR_RANGE_DB` or not finite.
    """
    t = TransmitSettings.from_message(frame.transmit)  # unset fields: the declared defaults
    lo, hi = PSNR_RANGE_DB
    if not (math.isfinite(t.psnr_db) and lo <= t.psnr_db <= hi):
        raise ChannelParameterError(f"PSNR {t.psnr_db} dB is outside [{lo}, {hi}] dB")
    # ChannelParameterError for an unknown model (listing the models) or bad parameters
    validate_channel_params(t.channel, t.channel_params)


def apply_channel(frame: pb.SemanticFrame, generator: torch.Generator | None = None,
                  limits: FrameLimits | None = None) -> pb.ReceivedFrame:
    """The channel's stage: a ``SemanticFrame`` -> the ``ReceivedFrame`` for the receiver.

    Counts the frame's bits (:func:`gesco.codecs.frame_bits`), decodes the payload to the
    ``(N, h, w)`` symbols the codec sends, passes them through ``frame.transmit.channel``
    at ``frame.transmit.psnr_db`` (unset: the declared default; Eq. 1: power normalised to ``P = 1``,
    ``sigma^2 = 1 / 10^(PSNR/10)``), and packs the received symbols (multiplied back by the
    power scale) as float16. A frame with an appearance side channel (:mod:`gesco.appearance`)
    has its bits sent through the same channel model at the same PSNR (noise seeded with
    ``stage_seed(seed, "appearance")``, so the maps get the same noise with or without it);
    the report counts them in ``appearance_bits`` and ``channel_uses``.

    Args:
        frame: a frame from :func:`encode_image_frame` (or the wire).
        generator: the noise generator; ``None`` seeds one with
            ``stage_seed(frame.transmit.seed, "channel")``, so a frame always gets the
            same noise.
        limits: declared-size limits checked before decoding
            (:func:`gesco.wire.limits.check_frame_limits`; default :class:`FrameLimits`).
    Returns:
        ``ReceivedFrame`` with the header (payload cleared, ``power_scale`` set), the
        symbols and the :class:`ChannelReport`.
    Raises:
        GescoInputError subclasses: an inconsistent frame, a corrupt payload, bad channel settings.
    """
    check_frame_limits(frame, limits or FrameLimits())  # before anything is decoded
    check_transmit_params(frame)
    t = TransmitSettings.from_message(frame.transmit)  # unset fields: the declared defaults
    payload_bits, header_bits = frame_bits(frame)
    symbols = frame_channel_symbols(frame)  # (N, h, w) uint8, PayloadError when corrupt
    check_layout_symbols(frame, symbols)  # the maps are the classes (+ edges) the header lists
    if generator is None:
        generator = torch.Generator().manual_seed(stage_seed(t.seed, "channel"))
    preset = t.channel
    x = torch.from_numpy(symbols).float().unsqueeze(0)  # (1, N, h, w): one sample
    channel = get_channel(preset, **t.channel_params)
    result = channel.transmit(x, t.psnr_db, generator=generator)
    side = frame_appearance(frame)
    side_bits, side_uses, side_symbols = 0, 0, b""
    if side is not None:
        bits = frame_appearance_bits(frame, side)
        side_gen = torch.Generator().manual_seed(stage_seed(t.seed, "appearance"))
        got, side_uses = send_appearance_symbols(bits, side, channel=preset, psnr_db=t.psnr_db,
                                                 channel_params=t.channel_params, generator=side_gen)
        side_bits, side_symbols = int(bits.size), got.clamp(-F16_MAX, F16_MAX).numpy().astype("<f2").tobytes()
    header = pb.SemanticFrame()
    header.CopyFrom(frame)
    header.ClearField("payload")
    header.ClearField("appearance_bits")
    header.power_scale = float(result.scale[0])
    report = pb.ChannelReport(
        psnr_db=t.psnr_db,
        noise_variance=float(result.noise_variance[0]),
        measured_snr_db=float(result.measured_snr_db[0]),
        payload_bits=payload_bits,
        header_bits=header_bits,
        channel_uses=int(result.channel_uses[0]) + side_uses,
        channel=preset,
        power_scale=float(result.scale[0]),
        appearance_bits=side_bits,
        appearance_channel_uses=side_uses,
    )
    return pb.ReceivedFrame(
        header=header,
        # a ZF equaliser in a deep fade can exceed float16; the receiver's front end saturates
        symbols=symbols_to_bytes(result.received[0].clamp(-F16_MAX, F16_MAX)),
        symbols_shape=list(symbols.shape),
        report=report,
        appearance_symbols=side_symbols,
    )


# --------------------------------------------------------------------------- stage 3: receiver
def received_maps(received: pb.ReceivedFrame) -> torch.Tensor:
    """The received maps at full resolution, before FDS: ``(K + e, H, W)`` float32.

    Raises:
        GescoInputError subclasses: an inconsistent frame or symbols (see
        :func:`gesco.wire.validate_received_frame`).
    """
    validate_received_frame(received)
    header = received.header
    symbols = symbols_from_bytes(received.symbols, received.symbols_shape)
    maps = codec_for_frame(header).upsample(symbols, header.height, header.width)
    return maps.float()


@dataclass(frozen=True)
class ReceiverMaps:
    """The receiver's maps of one frame (``K`` present classes, ``e = has_edges``).

    Attributes:
        received: ``(K + e, H, W)`` float32 received maps at full resolution, before FDS.
        denoised: ``(K + e, H, W)`` float32 after FDS (``received`` itself without FDS).
        conditioning: ``(C + 1, H, W)`` float32, ``Pad(denoised)``: the model's input.
        class_ids: ``(K,)`` int64 ids of the present classes.
    """

    received: torch.Tensor
    denoised: torch.Tensor
    conditioning: torch.Tensor
    class_ids: np.ndarray


def receiver_maps(received: pb.ReceivedFrame, fds: bool = True, kernel: int = 3) -> ReceiverMaps:
    """Eq. (2) step by step: received maps, ``MaxPool(AvgPool(.))``, then ``Pad``.

    Args:
        received: the channel's output.
        fds: apply the FDS filter (``False``: only ``Pad``).
        kernel: FDS window (3 in the paper).
    """
    maps = received_maps(received)
    denoised = fds_filter(maps, kernel) if fds else maps
    header = received.header
    ids = np.asarray(header.class_ids, dtype=np.int64)
    cond = pad_maps(denoised, ids, header.num_classes, header.has_edges)
    return ReceiverMaps(received=maps, denoised=denoised, conditioning=cond, class_ids=ids)


def received_conditioning(received: pb.ReceivedFrame, fds: bool = True, kernel: int = 3) -> torch.Tensor:
    """The receiver's stage before sampling: Eq. (2), ``y = Pad(MaxPool(AvgPool(y_hat)))``.

    Args:
        received: the channel's output.
        fds: apply the FDS filter (``False``: only ``Pad``).
        kernel: FDS window (3 in the paper).
    Returns:
        ``(C + 1, H, W)`` float32 conditioning: class maps at their ids, absent classes
        zero, the edge map last (zero when none was sent).
    """
    return receiver_maps(received, fds, kernel).conditioning


def label_from_maps(maps: torch.Tensor, class_ids: np.ndarray | list[int]) -> np.ndarray:
    """A label map from present maps: argmax over the ``K`` class maps.

    Args:
        maps: ``(K + e, H, W)`` present maps (received or denoised), edge map last or absent.
        class_ids: ``(K,)`` ids of the present classes.
    Returns:
        ``(H, W)`` int64 class ids (each pixel gets the present class with the largest value).
    """
    ids = np.asarray(class_ids, dtype=np.int64)
    k = len(ids)
    if maps.dim() != 3 or maps.shape[0] not in (k, k + 1):
        raise ShapeError(f"expected ({k} or {k + 1}, H, W) maps for {k} classes, got {tuple(maps.shape)}")
    return ids[maps[:k].argmax(dim=0).cpu().numpy()]


def colour_labels(label: np.ndarray, space: ClassSpace) -> np.ndarray:
    """``(H, W)`` class ids -> ``(H, W, 3)`` uint8 RGB with the class space's palette."""
    label = np.asarray(label)
    space.check_ids(label)
    return space.palette()[label]


# --------------------------------------------------------------------------- budget
def budget_record(frame: pb.SemanticFrame, report: pb.ChannelReport, when: datetime | None = None) -> dict[str, Any]:
    """One line of the bit-budget log (a JSON-ready dict); see ``docs/services.md``.

    ``total_bits`` = payload + header + appearance side-channel bits (0 when off).
    ``reduction_png_pct = 100 * (1 - total_bits / png_bits)`` (and the same for JPEG):
    how much fewer bits the semantic frame needs than the image itself at the same
    resolution; ``None`` when the reference size is unknown.
    """
    when = when or datetime.now(UTC)
    total = int(report.payload_bits + report.header_bits + report.appearance_bits)
    pixels = int(frame.height) * int(frame.width)

    def reduction(ref: int) -> float | None:
        return round(100.0 * (1.0 - total / ref), 3) if ref > 0 else None

    return {
        "id": frame.id,
        "time": when.isoformat(timespec="milliseconds"),
        "height": int(frame.height),
        "width": int(frame.width),
        "class_space": frame.class_space,
        "present_classes": [int(c) for c in frame.class_ids],
        "has_edges": bool(frame.has_edges),
        "maps": n_maps(frame),
        "codec": frame.codec,
        "codec_params": {k: v for k, v in (("factor", frame.codec_params.factor), ("inner", frame.codec_params.inner),
                                          ("upsample", frame.codec_params.upsample)) if v},
        "payload_bits": int(report.payload_bits),
        "header_bits": int(report.header_bits),
        "appearance_bits": int(report.appearance_bits),
        "appearance_channel_uses": int(report.appearance_channel_uses),
        "appearance": _appearance_record(frame),
        "total_bits": total,
        "bits_per_pixel": round(total / pixels, 6) if pixels else None,
        "channel_uses": int(report.channel_uses),
        "channel_uses_per_pixel": round(report.channel_uses / pixels, 6) if pixels else None,
        "png_bits": int(frame.png_bits),
        "jpeg_bits": int(frame.jpeg_bits),
        "jpeg_quality": int(frame.jpeg_quality),
        "reduction_png_pct": reduction(int(frame.png_bits)),
        "reduction_jpeg_pct": reduction(int(frame.jpeg_bits)),
        "psnr_db": float(report.psnr_db),
        "measured_snr_db": _finite_or_none(report.measured_snr_db),
        "noise_variance": float(report.noise_variance),
        "power_scale": float(report.power_scale),
        "channel": report.channel,
        "channel_params": _channel_params(report.channel or "awgn", frame.transmit.channel_params),
    }


def _appearance_record(frame: pb.SemanticFrame) -> dict[str, Any] | None:
    a = frame.appearance
    return {"mode": a.mode, "bits": int(a.bits), "repeat": int(a.repeat)} if a.mode else None


def _channel_params(name: str, params: Any) -> dict[str, Any]:
    """The model's parameters as applied (defaults filled in) for the budget log."""
    try:
        return validate_channel_params(name, dict(params))
    except GescoInputError:  # not a frame the channel accepted; log what it carried
        return dict(params)


def _finite_or_none(x: float) -> float | None:
    return round(float(x), 4) if math.isfinite(x) else None


__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ImageTooLargeError",
    "PSNR_RANGE_DB",
    "Segmenter",
    "TransmitSettings",
    "UnsupportedImageError",
    "appearance_target",
    "apply_channel",
    "budget_record",
    "check_transmit_params",
    "codec_choice",
    "colour_labels",
    "decode_image",
    "decode_label_map",
    "encode_image_frame",
    "encode_png",
    "frame_appearance",
    "frame_appearance_bits",
    "image_header",
    "label_from_maps",
    "received_appearance",
    "received_conditioning",
    "ReceiverMaps",
    "received_maps",
    "receiver_maps",
    "set_frame_appearance",
    "stage_seed",
    "upload_info",
    "upload_report",
]
