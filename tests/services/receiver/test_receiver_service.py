"""The receiver: gRPC ingest, durable store, batching worker, REST results.

Frames come from :func:`gesco.link.apply_channel` (exactly what the channel sends),
delivered straight to the receiver's gRPC port.
"""

from __future__ import annotations

import cv2
import grpc
import httpx
import numpy as np
import pytest
from conftest import wait_result
from frame_helpers import SPACE, deliver, received_frame
from svc_helpers import TINY_RESOLUTION

from gesco.errors import CheckpointError
from gesco.wire import ACK_ACCEPTED
from gesco_net.probes import grpc_health


def png(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None
    return img


def test_deliver_stores_then_worker_generates(stack):
    rx = received_frame("rx-one", psnr_db=5.0)
    ack = deliver(stack, rx)
    assert ack.status == ACK_ACCEPTED and ack.id == "rx-one"
    assert stack.receiver.store.get("rx-one") is not None  # stored before the ack
    url = f"{stack.receiver_url}/result/rx-one"
    doc = wait_result(url)
    assert doc["status"] == "done", doc
    assert doc["budget"]["payload_bits"] == rx.report.payload_bits
    assert doc["settings"]["steps"] == 2 and doc["settings"]["psnr_db"] == 5.0
    t = doc["timings"]
    for key in ("queue_wait_s", "fds_s", "sampling_s", "png_s", "total_s"):
        assert t[key] is not None and t[key] >= 0, key
    assert t["batch_size"] >= 1 and t["device"] == "cpu"
    image = httpx.get(doc["links"]["image"])
    assert image.headers["content-type"] == "image/png"
    assert png(image.content).shape == (*TINY_RESOLUTION, 3)
    for key in ("received_maps", "denoised_maps"):
        maps = png(httpx.get(doc["links"][key]).content)[:, :, ::-1]  # BGR -> RGB
        colours = {tuple(c) for c in maps.reshape(-1, 3)}
        allowed = {SPACE.colors[c] for c in rx.header.class_ids}
        assert colours <= allowed, key  # argmax over the present classes only


def test_same_seed_same_image(stack):
    for name in ("seed-a", "seed-b"):
        assert deliver(stack, received_frame(name, seed=5)).status == ACK_ACCEPTED
    images = []
    for name in ("seed-a", "seed-b"):
        assert wait_result(f"{stack.receiver_url}/result/{name}")["status"] == "done"
        images.append(httpx.get(f"{stack.receiver_url}/result/{name}/image.png").content)
    assert images[0] == images[1]


def test_unknown_id_is_404(stack):
    for path in ("/result/nope", "/result/nope/image.png", "/result/nope/received.png", "/result/..%2Fjobs"):
        r = httpx.get(stack.receiver_url + path)
        assert r.status_code == 404, path


def test_malformed_and_inconsistent_frames_are_invalid_argument(stack):
    counts = stack.receiver.store.counts()
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, b"\x12\xff\xff\xff\xff\x0f")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed ReceivedFrame" in err.value.details()
    wrong_size = received_frame("rx-wrong-size", resolution=(48, 96))
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, wrong_size)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "32x64" in err.value.details()
    nan = received_frame("rx-nan")
    nan.symbols = b"\x00\x7e" + nan.symbols[2:]  # float16 NaN in the first symbol
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, nan)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "NaN" in err.value.details()
    short = received_frame("rx-short")
    short.symbols = short.symbols[:-2]
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, short)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_id = received_frame("rx-bad-id")
    bad_id.header.id = "../../etc"  # the sender side refuses to build it; a hand-made frame
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, bad_id)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "job id" in err.value.details()
    bad_sampler = received_frame("rx-sampler")
    bad_sampler.header.transmit.sampler = "euler"
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, bad_sampler)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "sampler" in err.value.details()
    assert stack.receiver.store.counts() == counts  # nothing stored
    assert deliver(stack, received_frame("rx-after-bad")).status == ACK_ACCEPTED  # keeps serving


def test_repeated_delivery_is_idempotent_and_conflicts_are_refused(stack):
    rx = received_frame("rx-dup")
    assert deliver(stack, rx).status == ACK_ACCEPTED
    again = deliver(stack, rx)
    assert again.status == ACK_ACCEPTED and again.message == "already stored"
    other = received_frame("rx-dup", seed=9)
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, other)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_health(stack):
    assert grpc_health(f"127.0.0.1:{stack.receiver.grpc_port}", "gesco.v1.Receiver") == "SERVING"
    h = httpx.get(stack.receiver_url + "/healthz").json()
    assert h["status"] == "ok" and h["model"]["resolution"] == list(TINY_RESOLUTION) and h["max_batch"] == 4


def test_openapi_documents_every_field(stack):
    comps = httpx.get(stack.receiver_url + "/openapi.json").json()["components"]["schemas"]
    for model in ("JobResult", "JobSettings", "JobTimings", "JobLinks", "BitBudget"):
        for name, prop in comps[model]["properties"].items():
            assert "description" in prop or "$ref" in prop, f"{model}.{name}"


def test_missing_checkpoint_refuses_to_start(tmp_path, capsys):
    from receiver.__main__ import main
    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings

    missing = tmp_path / "nothing-here"
    with pytest.raises(CheckpointError) as err:
        ReceiverService(ReceiverSettings(checkpoint=missing, data_dir=tmp_path / "d", port=0, grpc_port=0))
    assert "nothing-here" in str(err.value) and "gesco train diffusion" in str(err.value)
    assert main(["--checkpoint", str(missing), "--data-dir", str(tmp_path / "d")]) == 2
    assert "cannot start" in capsys.readouterr().err


def test_a_distilled_student_refuses_settings_it_cannot_run_at_admission(tiny_generator):
    """A receiver serving a guidance-only student refuses, before storing, a job it could never sample."""
    import dataclasses

    from gesco.diffusion.pipeline import SemanticGenerator
    from gesco.diffusion.samplers import DistilledSamplerError
    from receiver.ingest import Ingest

    record = {"steps": 1000, "guidance_scale": 2.0, "parametrisation": "eps", "teacher": "t",
              "samplers": ["ddim", "dpmpp-2m", "dpmpp-2m-sde"]}
    student = SemanticGenerator(tiny_generator.model, dataclasses.replace(tiny_generator.card, distilled=record), "cpu")
    ingest = Ingest(store=None, generator=student)
    assert ingest.check(received_frame("st-ok", sampler="dpmpp-2m-sde", steps=8)).steps == 8
    for bad, words in (({"sampler": "respaced"}, "respaced"), ({"guidance_scale": 3.0}, "folded")):
        with pytest.raises(DistilledSamplerError, match=words):
            ingest.check(received_frame("st-bad", **{"sampler": "dpmpp-2m-sde", **bad}))


def test_healthz_model_says_what_a_distilled_student_runs(tiny_generator):
    """/healthz's model record names the folded guidance scale and the samplers of a student; an
    ordinary checkpoint has no such record."""
    import dataclasses

    from gesco.diffusion.pipeline import SemanticGenerator
    from receiver.generation import describe

    assert "distilled" not in describe(tiny_generator)
    record = {"steps": 1000, "guidance_scale": 2.0, "parametrisation": "eps", "teacher": "t",
              "samplers": ["ddim", "dpmpp-2m-sde-ode-mean"]}
    student = SemanticGenerator(tiny_generator.model, dataclasses.replace(tiny_generator.card, distilled=record), "cpu")
    assert describe(student)["distilled"] == {"guidance_scale": 2.0, "samplers": ["ddim", "dpmpp-2m-sde-ode-mean"],
                                              "steps": None}
    progressive = {"steps": 8, "guidance_scale": 2.0, "parametrisation": "v", "teacher": "t"}
    student = SemanticGenerator(tiny_generator.model, dataclasses.replace(tiny_generator.card, distilled=progressive),
                                "cpu")
    assert describe(student)["distilled"] == {"guidance_scale": 2.0, "samplers": ["distilled"], "steps": 8}


def test_sky_finishing_setting_reaches_the_generator_and_healthz(tiny_checkpoint, monkeypatch):
    """GESCO_RECEIVER_SKY_FINISHING_SIGMA turns on the label-aware finishing (gesco.diffusion.finishing):
    the loaded generator carries it and /healthz's model record says so; 0 (the default) leaves it off;
    a negative sigma is refused by the settings, naming the field."""
    import pydantic

    from gesco.diffusion.finishing import sky_finishing
    from receiver.generation import describe, load_generator
    from receiver.settings import ReceiverSettings

    monkeypatch.setenv("GESCO_RECEIVER_SKY_FINISHING_SIGMA", "1.5")
    settings = ReceiverSettings()
    assert settings.sky_finishing_sigma == 1.5
    on = load_generator(tiny_checkpoint, "cpu", settings.sky_finishing_sigma)
    assert on.finishing == sky_finishing(1.5)
    assert describe(on)["finishing"] == {"classes": [23], "sigma": 1.5, "alpha": 1.0}
    off = load_generator(tiny_checkpoint, "cpu")
    assert not off.finishing.classes and "finishing" not in describe(off)

    monkeypatch.setenv("GESCO_RECEIVER_SKY_FINISHING_SIGMA", "-1")
    with pytest.raises(pydantic.ValidationError, match="sky_finishing_sigma"):
        ReceiverSettings()


def test_the_finishing_is_part_of_the_model_key_only_when_on(tiny_checkpoint):
    """A worker whose finishing differs makes other images, so it must not claim the job (the
    model key); with the finishing off the key is the checkpoint's, as stored by older receivers."""
    from receiver.generation import load_generator, model_key

    off, plain = load_generator(tiny_checkpoint, "cpu"), load_generator(tiny_checkpoint, "cpu", 0.0)
    on, other = load_generator(tiny_checkpoint, "cpu", 1.5), load_generator(tiny_checkpoint, "cpu", 1.0)
    assert model_key(off) == model_key(plain)
    keys = {model_key(off), model_key(on), model_key(other)}
    assert len(keys) == 3 and model_key(on) == model_key(load_generator(tiny_checkpoint, "cpu", 1.5))
    off.finishing = None  # a generator without the attribute's value: the checkpoint alone
    assert model_key(off) == model_key(plain)


def test_mean_temperature_setting_reaches_the_jobs_healthz_and_model_key(tiny_checkpoint, tmp_path, monkeypatch, stack):
    """GESCO_RECEIVER_MEAN_TEMPERATURE (gesco.diffusion.samplers.scale_start_mean): the loaded generator samples
    with it, /healthz and each done job's record say so, the same frame and seed make another image than at
    tau = 1 (the module's stack), and tau is part of the model key (1 leaves the checkpoint's key); values
    outside [0, 1] are refused by the settings, naming the field."""
    import pydantic
    from conftest import run_stack

    from receiver.generation import describe, load_generator, model_key
    from receiver.settings import ReceiverSettings

    monkeypatch.setenv("GESCO_RECEIVER_MEAN_TEMPERATURE", "0.5")
    settings = ReceiverSettings()
    assert settings.mean_temperature == 0.5
    half = load_generator(tiny_checkpoint, "cpu", settings.sky_finishing_sigma, settings.mean_temperature)
    assert half.mean_temperature == 0.5 and describe(half)["mean_temperature"] == 0.5
    plain = load_generator(tiny_checkpoint, "cpu")
    assert plain.mean_temperature == 1.0 and describe(plain)["mean_temperature"] == 1.0
    assert model_key(load_generator(tiny_checkpoint, "cpu", 0.0, 1.0)) == model_key(plain)
    assert model_key(half) != model_key(plain)

    with run_stack(tmp_path, half) as warm:
        assert httpx.get(warm.receiver_url + "/healthz").json()["model"]["mean_temperature"] == 0.5
        assert deliver(warm, received_frame("tau-half", seed=9)).status == ACK_ACCEPTED
        doc = wait_result(f"{warm.receiver_url}/result/tau-half")
        assert doc["status"] == "done" and doc["sampling"] == {"mean_temperature": 0.5}
        cooled = httpx.get(f"{warm.receiver_url}/result/tau-half/image.png").content
    assert deliver(stack, received_frame("tau-one", seed=9)).status == ACK_ACCEPTED
    doc = wait_result(f"{stack.receiver_url}/result/tau-one")
    assert doc["status"] == "done" and doc["sampling"] == {"mean_temperature": 1.0}
    assert httpx.get(f"{stack.receiver_url}/result/tau-one/image.png").content != cooled

    for bad in ("1.5", "-0.1", "nan", "warm"):
        monkeypatch.setenv("GESCO_RECEIVER_MEAN_TEMPERATURE", bad)
        with pytest.raises(pydantic.ValidationError, match="mean_temperature"):
            ReceiverSettings()
