"""End to end: ``gesco up`` starts the three real services as processes on free loopback
ports (real HTTP, real gRPC); a synthetic scene is POSTed, the result polled, the image
and the bit budget checked; ``gesco send`` and ``gesco budget`` run against them; Ctrl-C
(SIGINT) stops everything cleanly.
"""

from __future__ import annotations

import json
import signal

import cv2
import httpx
import numpy as np
import pytest
from conftest import wait_result
from svc_helpers import TINY_RESOLUTION, scene_files, service_env, spawn

from gesco_net.cli import main as cli
from gesco_net.probes import free_port, grpc_health, http_ok, wait_until


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_checkpoint):
    tmp = tmp_path_factory.mktemp("e2e")
    ports = {name: free_port() for name in ("sender", "channel", "receiver", "receiver_grpc")}
    # no --data-dir: gesco up takes its default data folder, $GESCO_DATA_DIR here
    args = ["-m", "gesco_net.cli", "up", "--checkpoint", str(tiny_checkpoint),
            "--sender-port", str(ports["sender"]), "--channel-port", str(ports["channel"]),
            "--receiver-port", str(ports["receiver"]), "--receiver-grpc-port", str(ports["receiver_grpc"]),
            "--device", "cpu", "--batch-size", "2", "--no-segmenter"]
    env = service_env(GESCO_DATA_DIR=str(tmp / "data"), GESCO_RECEIVER_TORCH_THREADS="1", GESCO_RECEIVER_LOG_LEVEL="WARNING",
                      GESCO_SENDER_LOG_LEVEL="WARNING", GESCO_CHANNEL_LOG_LEVEL="WARNING")
    log = tmp / "up.log"
    up = spawn(args, env, log)
    sender = f"http://127.0.0.1:{ports['sender']}"
    receiver = f"http://127.0.0.1:{ports['receiver']}"
    try:
        wait_until(lambda: "all services are running" in log.read_text(), timeout=150, what="gesco up",
                   alive=lambda: up.poll() is None)
    except Exception:
        up.kill()
        raise AssertionError(log.read_text()[-3000:]) from None
    yield {"up": up, "log": log, "sender": sender, "receiver": receiver, "ports": ports, "tmp": tmp,
           "budget_log": tmp / "data" / "budget.jsonl"}
    if up.poll() is None:
        up.kill()


def test_post_poll_image_and_budget(services):
    files = scene_files(seed=4)
    r = httpx.post(services["sender"] + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                   data={"psnr_db": "10", "steps": "2", "seed": "1"}, timeout=60)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["result_url"].startswith(services["receiver"])
    doc = wait_result(accepted["result_url"], timeout=120)
    assert doc["status"] == "done", doc
    image = httpx.get(doc["links"]["image"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    pixels = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape == (*TINY_RESOLUTION, 3)
    # the budget: sender reply, receiver result and the channel's log line agree
    logged = [json.loads(line) for line in services["budget_log"].read_text().splitlines()]
    mine = [rec for rec in logged if rec["id"] == accepted["id"]]
    assert len(mine) == 1
    for key in ("payload_bits", "header_bits", "channel_uses", "png_bits", "jpeg_bits", "present_classes"):
        assert accepted["budget"][key] == doc["budget"][key] == mine[0][key], key
    assert mine[0]["total_bits"] < mine[0]["png_bits"]
    assert abs(mine[0]["measured_snr_db"] - 10.0) < 0.5
    # gesco up tells the receiver's viewer page where the sender is
    assert httpx.get(services["receiver"] + "/viewer/config.json").json()["sender_url"] == services["sender"]


def test_appearance_side_channel_end_to_end(services):
    """The side channel (beyond the paper) as a form field: counted in the budget, recorded in the
    job, and the generated image has the sent mean colour (within the 6-bit quantiser's 2 + rounding)."""
    files = scene_files(seed=4, height=TINY_RESOLUTION[0], width=TINY_RESOLUTION[1])
    upload = {k: (f"{k}.png", v) for k, v in files.items()}
    bad = httpx.post(services["sender"] + "/transmit", files=upload, data={"appearance": "texture"}, timeout=60)
    assert bad.status_code == 422 and "appearance" in bad.text
    r = httpx.post(services["sender"] + "/transmit", files=upload, timeout=60,
                   data={"psnr_db": "100", "steps": "2", "seed": "1", "appearance": "mean", "appearance_bits": "6"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["budget"]["appearance_bits"] == 18 and accepted["budget"]["appearance_channel_uses"] == 18
    assert accepted["budget"]["appearance"] == {"mode": "mean", "bits": 6, "repeat": 1}  # chosen: 1 copy at 100 dB
    doc = wait_result(accepted["result_url"], timeout=120)
    assert doc["status"] == "done", doc
    assert doc["settings"]["appearance"] == "mean" and doc["budget"]["appearance_bits"] == 18
    sent = cv2.imdecode(np.frombuffer(files["image"], np.uint8), cv2.IMREAD_COLOR)
    got = cv2.imdecode(np.frombuffer(httpx.get(doc["links"]["image"]).content, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(got.reshape(-1, 3).mean(0) - sent.reshape(-1, 3).mean(0)).max() < 3.0


def test_gesco_send_and_budget(services, tmp_path, capsys):
    files = scene_files(seed=8)
    for name, data in files.items():
        (tmp_path / f"{name}.png").write_bytes(data)
    out = tmp_path / "result.png"
    code = cli(["send", str(tmp_path / "image.png"), "--label", str(tmp_path / "label.png"),
                "--instance", str(tmp_path / "instance.png"), "--psnr", "5", "--steps", "2",
                "--out", str(out), "--maps-out", str(tmp_path / "maps"), "--sender", services["sender"]])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, printed
    # stderr is not a terminal here: one progress line per state change, none repeated
    progress = [line for line in captured.err.splitlines() if line.startswith("job ")]
    assert progress and progress[-1].split(":")[1].strip().startswith("done"), captured.err
    states = [line.rsplit(" (", 1)[0].split(", sampling step")[0] for line in progress]
    assert len(states) == len(set(states)) and len(progress) <= 6, captured.err
    assert "upload: 48x96 (H x W), aspect crop" in printed and "instance edges uploaded" in printed
    assert f"{TINY_RESOLUTION[0]}x{TINY_RESOLUTION[1]}, codec" in printed  # sizes as H x W, one spelling
    assert cv2.imread(str(out)).shape == (*TINY_RESOLUTION, 3)
    assert (tmp_path / "maps_received.png").is_file() and (tmp_path / "maps_denoised.png").is_file()
    assert "total bits" in printed and "PSNR 5 dB requested" in printed
    assert cli(["budget", str(services["budget_log"])]) == 0
    table = capsys.readouterr().out
    assert "vs PNG %" in table and "transmission(s)" in table
    # gesco up said where its log is, and gesco budget finds it there without being told
    assert f"budget    {services['budget_log']}   (`gesco budget` shows it" in services["log"].read_text()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GESCO_DATA_DIR", str(services["tmp"] / "data"))
        assert cli(["budget"]) == 0
        assert capsys.readouterr().out == table
        # without --out the result goes to the data folder, named by its job id
        assert cli(["send", str(tmp_path / "image.png"), "--label", str(tmp_path / "label.png"), "--steps", "2",
                    "--sender", services["sender"]]) == 0
        saved = capsys.readouterr().out.split("saved ", 1)[1].split()[0]
    job_id = json.loads(services["budget_log"].read_text().splitlines()[-1])["id"]
    assert saved == str(services["tmp"] / "data" / "results" / f"{job_id}.png")
    assert cv2.imread(saved).shape == (*TINY_RESOLUTION, 3)
    # a fading channel with parameters, end to end through `gesco up`'s services
    code = cli(["send", str(tmp_path / "image.png"), "--label", str(tmp_path / "label.png"), "--psnr", "20",
                "--steps", "2", "--channel", "rayleigh", "--channel-param", "block_length=64",
                "--channel-param", "equalizer=zf", "--out", str(tmp_path / "rayleigh.png"), "--sender", services["sender"]])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "rayleigh {'block_length': 64, 'equalizer': 'zf'}" in printed
    assert "instance edges derived from the label map" in printed  # no --instance: the sender derived them
    assert cv2.imread(str(tmp_path / "rayleigh.png")).shape == (*TINY_RESOLUTION, 3)
    last = json.loads(services["budget_log"].read_text().splitlines()[-1])
    assert last["channel"] == "rayleigh" and last["channel_params"] == {"block_length": 64, "equalizer": "zf"}
    # an unknown model is refused by the command line (before uploading) with the list of models,
    # and a bad parameter by the sender with the model's parameters
    with pytest.raises(SystemExit) as exit_:
        cli(["send", str(tmp_path / "image.png"), "--label", str(tmp_path / "label.png"), "--channel", "fading",
             "--sender", services["sender"]])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --channel" in err and "rayleigh-nocsi" in err and "tdl" in err
    assert cli(["send", str(tmp_path / "image.png"), "--label", str(tmp_path / "label.png"), "--channel", "rayleigh",
                "--channel-param", "block_length=-2", "--sender", services["sender"]]) == 2
    assert "block_length" in capsys.readouterr().err
    # a bad request prints the sender's reason and exits 2
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    assert cli(["send", str(tmp_path / "junk.png"), "--sender", services["sender"]]) == 2
    assert "415" in capsys.readouterr().err


def test_ctrl_c_stops_every_service(services):
    up, ports = services["up"], services["ports"]
    up.send_signal(signal.SIGINT)
    assert up.wait(60) == 0, services["log"].read_text()[-3000:]
    assert not http_ok(f"http://127.0.0.1:{ports['sender']}/healthz")
    assert not http_ok(f"http://127.0.0.1:{ports['receiver']}/healthz")
    assert grpc_health(f"127.0.0.1:{ports['channel']}") == "UNREACHABLE"
    assert "Traceback" not in services["log"].read_text()
