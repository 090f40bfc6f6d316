"""Property-based fuzzing (hypothesis) of every decoder the services expose (issue 14).

* the channel's ``Transmit`` path: arbitrary bytes and structured-but-hostile
  ``SemanticFrame`` messages through :func:`gesco.link.apply_channel`;
* the receiver's ``Deliver`` path: hostile ``ReceivedFrame`` messages through
  :meth:`receiver.ingest.Ingest.check`;
* every map codec's decoder on random and mutated payloads;
* the sender's uploads: random and mutated PNG / JPEG bytes through ``decode_image`` /
  ``decode_label_map``.

The property: the only exceptions are the named input errors (``GescoInputError``, and
protobuf's ``DecodeError`` for bytes that are no message), and no example allocates
more than a bounded amount (traced by ``tracemalloc``: numpy's buffers are traced).
"""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
from frame_helpers import received_frame
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesco.codecs import get_codec
from gesco.codecs.lossless import LOSSLESS_CODECS
from gesco.data.synthetic import generate_scene
from gesco.errors import GescoInputError
from gesco.link import apply_channel, decode_image, decode_label_map, encode_png
from gesco.wire import ReceivedFrame, SemanticFrame

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
#: most bytes one example may allocate (traced): frames are checked before decoding
PEAK_LIMIT = 64 * 1024 * 1024


def bounded(call, *args):
    """Run ``call(*args)``; return the exception if it is an input error; check the peak allocation."""
    tracemalloc.start()
    try:
        call(*args)
        error = None
    except (GescoInputError, DecodeError) as e:
        error = e
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"{call.__name__} allocated {peak / 2**20:.0f} MiB"
    return error


CODEC_NAMES = sorted(LOSSLESS_CODECS) + ["downsample"]

frames = st.builds(
    SemanticFrame,
    id=st.one_of(st.just("fz"), st.text(max_size=8)),
    height=st.one_of(st.integers(1, 64), st.integers(0, 70000)),
    width=st.one_of(st.integers(1, 128), st.integers(0, 70000)),
    num_classes=st.one_of(st.just(35), st.integers(0, 1000)),
    class_space=st.sampled_from(["cityscapes", "", "ade20k", "nope"]),
    class_ids=st.lists(st.integers(0, 40), max_size=40),
    has_edges=st.booleans(),
    codec=st.sampled_from(CODEC_NAMES + ["", "gzip"]),
    payload=st.binary(max_size=300),
)


@FUZZ
@given(data=st.binary(max_size=400))
def test_channel_survives_arbitrary_bytes(data):
    def run(raw):
        apply_channel(SemanticFrame.FromString(raw))

    bounded(run, data)


@FUZZ
@given(frame=frames, factor=st.integers(0, 80), inner=st.sampled_from(["", "zlib", "raw", "x"]),
       psnr=st.floats(allow_nan=True, allow_infinity=True))
def test_channel_survives_hostile_frames(frame, factor, inner, psnr):
    if frame.codec == "downsample":
        frame.codec_params.factor = factor
        frame.codec_params.inner = inner
    frame.transmit.psnr_db = psnr
    bounded(apply_channel, frame)


@FUZZ
@given(cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       codec=st.sampled_from(["context", "contour", "zlib", "lzma", "raw"]))
def test_channel_survives_mutated_real_frames(cut, flips, codec):
    frame = _real_frame(codec)
    payload = bytearray(frame.payload[: max(1, len(frame.payload) - cut)])
    for pos, value in flips:
        payload[pos % len(payload)] = value
    frame.payload = bytes(payload)
    bounded(apply_channel, frame)


_REAL: dict[str, SemanticFrame] = {}


def _real_frame(codec: str) -> SemanticFrame:
    if codec not in _REAL:
        from gesco.link import TransmitSettings, encode_image_frame
        from gesco.semantics.classes import get_class_space

        s = generate_scene(3, 48, 96)
        _REAL[codec], _ = encode_image_frame(s.image, s.label, s.instance, space=get_class_space("cityscapes"),
                                             resolution=(32, 64), frame_id="real",
                                             transmit=TransmitSettings(steps=2, codec=codec))
    out = SemanticFrame()
    out.CopyFrom(_REAL[codec])
    return out


@FUZZ
@given(codec=st.sampled_from(CODEC_NAMES), payload=st.binary(max_size=200), n=st.integers(-1, 40),
       h=st.integers(-1, 300), w=st.integers(-1, 300))
def test_codec_decoders_survive_random_payloads(codec, payload, n, h, w):
    c = get_codec(codec, factor=4) if codec == "downsample" else get_codec(codec)
    bounded(c.decode, payload, n, h, w)
    bounded(c.channel_symbols, payload, n, h, w)


@FUZZ
@given(data=st.binary(max_size=300))
def test_receiver_survives_arbitrary_bytes(tiny_generator, data):
    from receiver.ingest import Ingest

    ingest = Ingest(store=None, generator=tiny_generator)  # type: ignore[arg-type]  # check() needs no store
    bounded(lambda raw: ingest.check(ReceivedFrame.FromString(raw)), data)


@FUZZ
@given(frame=frames, shape=st.lists(st.integers(0, 5000), max_size=4), symbols=st.binary(max_size=64),
       uses=st.integers(0, 2**40), psnr=st.floats(allow_nan=True, allow_infinity=True))
def test_receiver_survives_hostile_received_frames(tiny_generator, frame, shape, symbols, uses, psnr):
    from receiver.ingest import Ingest

    ingest = Ingest(store=None, generator=tiny_generator)  # type: ignore[arg-type]
    frame.ClearField("payload")
    rx = ReceivedFrame(header=frame, symbols=symbols, symbols_shape=shape)
    rx.report.channel_uses, rx.report.psnr_db = uses, psnr
    bounded(ingest.check, rx)


@FUZZ
@given(cut=st.integers(0, 2000), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
def test_receiver_survives_mutated_real_frames(tiny_generator, cut, flips):
    from receiver.ingest import Ingest

    ingest = Ingest(store=None, generator=tiny_generator)  # type: ignore[arg-type]
    raw = bytearray(_real_received().SerializeToString())
    raw = raw[: max(1, len(raw) - cut)]
    for pos, value in flips:
        raw[pos % len(raw)] = value
    bounded(lambda b: ingest.check(ReceivedFrame.FromString(bytes(b))), raw)


_RX: list[ReceivedFrame] = []


def _real_received() -> ReceivedFrame:
    if not _RX:
        _RX.append(received_frame("fuzz-rx"))
    return _RX[0]


_UPLOADS: dict[str, bytes] = {}


def _uploads() -> dict[str, bytes]:
    if not _UPLOADS:
        s = generate_scene(5, 48, 96)
        _UPLOADS["png"] = encode_png(s.image)
        _UPLOADS["jpeg"] = cv2.imencode(".jpg", s.image)[1].tobytes()
        _UPLOADS["label"] = encode_png(s.label.astype(np.uint8))
        _UPLOADS["label16"] = cv2.imencode(".png", s.instance.astype(np.uint16))[1].tobytes()
    return _UPLOADS


@FUZZ
@given(kind=st.sampled_from(["png", "jpeg", "label", "label16"]), cut=st.integers(0, 3000),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_upload_decoders_survive_mutated_files(kind, cut, flips):
    data = bytearray(_uploads()[kind])
    data = data[: max(1, len(data) - cut)]
    for pos, value in flips:
        data[pos % len(data)] = value
    bounded(decode_image, bytes(data))
    bounded(decode_label_map, bytes(data))


@FUZZ
@given(data=st.binary(max_size=200), head=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]))
def test_upload_decoders_survive_random_bytes(data, head):
    bounded(decode_image, head + data)
    bounded(decode_label_map, head + data)


def test_lzma_decoding_costs_what_the_frame_holds():
    """Preset 9 made every LZMA decode allocate a 64 MiB dictionary, however small the frame."""
    frame = _real_frame("lzma")
    tracemalloc.start()
    apply_channel(frame)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.0f} MiB to decode a {len(frame.payload)}-byte payload"
