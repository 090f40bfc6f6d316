"""``gesco send IMAGE``: transmit an image through running services and save the result.

Posts the image (and optionally its label / instance maps) to the sender's
``POST /transmit`` (``--sender``, else ``$GESCO_SENDER_URL``, else
http://127.0.0.1:8000), prints the sender's warnings (aspect handling, an upload the
segmenter does not recognise), polls the receiver's result URL, saves the generated
image and prints the bit budget and the timings. Progress (sampling step k of n and an
ETA) is one line rewritten in place on a terminal, and one line per state change
(queued, preparing, sampling, writing, done) when stderr is a file or a pipe.

Services with API keys (docs/security.md): the key is read from the environment
variable ``GESCO_API_KEY`` (never from the command line, where other users of the
machine could read it in the process list) and sent as ``Authorization: Bearer``.
HTTPS services with a private CA: ``--ca ca.pem`` (or ``GESCO_CA``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

from gesco.errors import GescoError, GescoInputError
from gesco.paths import default_data_dir
from gesco.transmit_fields import add_cli_flags, form_from_cli

#: environment variable with the sender's base URL (``--sender`` overrides it)
SENDER_URL_ENV = "GESCO_SENDER_URL"
DEFAULT_SENDER_URL = "http://127.0.0.1:8000"


def sender_url(flag: str | None) -> str:
    """The sender's base URL: ``--sender``, else ``$GESCO_SENDER_URL``, else ``http://127.0.0.1:8000``."""
    return flag or os.environ.get(SENDER_URL_ENV) or DEFAULT_SENDER_URL


#: environment variable holding the API key
API_KEY_ENV = "GESCO_API_KEY"
#: environment variable holding the CA certificate path
CA_ENV = "GESCO_CA"


class ServiceError(GescoError):
    """A service refused the request or could not be reached."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("send", help="transmit an image through the running services (see `gesco up`)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", help="PNG or JPEG image")
    p.add_argument("--label", help="label map: PNG of class ids, the image's size (default: the sender segments)")
    p.add_argument("--instance", help="instance map: PNG of instance ids (needs --label)")
    # one flag per transmission setting (gesco.transmit_fields.FIELDS)
    add_cli_flags(p, registries={"gesco.channel.CHANNELS": _channel_names})
    p.add_argument("--out", default=None,
                   help="where to save the generated image (default DATA_DIR/results/<job id>.png, "
                   "DATA_DIR = $GESCO_DATA_DIR, else ~/.local/share/gesco)")
    p.add_argument("--maps-out", help="also save the received and denoised maps as PREFIX_received.png / _denoised.png")
    p.add_argument("--sender", default=None,
                   help=f"sender base URL (default ${SENDER_URL_ENV}, else {DEFAULT_SENDER_URL})")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the result")
    p.add_argument("--json", action="store_true", help="print the final result document as JSON")
    p.add_argument("--ca", default=os.environ.get(CA_ENV) or None,
                   help=f"CA certificate (PEM) of HTTPS services (default: ${CA_ENV}; `gesco certs` makes one)")
    p.set_defaults(handler=_send)


def _channel_names() -> list[str]:
    """The channel models' names (imported when ``--channel`` is parsed: the models import torch)."""
    from gesco.channel import CHANNELS

    return sorted(CHANNELS)


def _read(path: str, what: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise GescoInputError(f"{what} {p} not found")
    return p.read_bytes()


def _detail(reply) -> str:
    try:
        detail = reply.json().get("detail")
    except ValueError:
        return reply.text[:500]
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(str(x) for x in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)


def _progress(line: str, final: bool = False, tty: bool = False) -> None:
    if tty:
        sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def progress_state(result: dict) -> tuple:
    """What counts as a state change for a log: the status and, while running, the stage."""
    p = result.get("progress") or {}
    return result["status"], p.get("stage")


def default_result_path(job_id: str) -> Path:
    """Where ``gesco send`` saves a result without ``--out``: ``DATA_DIR/results/<job id>.png``
    (the id as the sender gave it, with anything but letters, digits, ``-`` and ``_`` replaced)."""
    safe = re.sub(r"[^0-9A-Za-z_-]", "_", str(job_id))[:64] or "result"
    return default_data_dir() / "results" / f"{safe}.png"


def progress_line(job_id: str, result: dict, elapsed: float) -> str:
    """``job ID: running, sampling step 12/50, ETA 3.1 s (8.0 s)`` from a result document."""
    line = f"job {job_id}: {result['status']}"
    p = result.get("progress")
    if p:
        if p.get("stage") == "sampling" and p.get("steps"):
            line += f", sampling step {p['step']}/{p['steps']}"
            if p.get("eta_s") is not None:
                line += f", ETA {p['eta_s']:.1f} s"
        else:
            line += f", {p.get('stage')}"
        if p.get("batch_size", 1) > 1:
            line += f" (batch of {p['batch_size']})"
    return line + f" ({elapsed:.1f} s)"


def format_budget(budget: dict) -> str:
    """The budget of one transmission as aligned lines."""
    def pct(v):
        return "n/a" if v is None else f"{v:.1f} %"

    snr = budget.get("measured_snr_db")
    rows = [
        ("classes sent", f"{len(budget['present_classes'])} {budget['present_classes']}"
         + (" + edge map" if budget.get("has_edges") else "")),
        ("maps", f"{budget['height']}x{budget['width']}, codec {budget['codec']} {budget.get('codec_params') or ''}".rstrip()),
        ("payload bits", f"{budget['payload_bits']:,}"),
        ("header bits", f"{budget['header_bits']:,}"),
        ("total bits", f"{budget['total_bits']:,} ({budget['bits_per_pixel']:.3f} bit/pixel)"),
        ("channel uses", f"{budget['channel_uses']:,} ({budget['channel_uses_per_pixel']:.2f} per pixel)"),
        ("PNG reference", f"{budget['png_bits']:,} bits -> reduction {pct(budget['reduction_png_pct'])}"),
        (f"JPEG q{budget['jpeg_quality']} reference", f"{budget['jpeg_bits']:,} bits -> reduction {pct(budget['reduction_jpeg_pct'])}"),
        ("channel", f"{budget['channel']} {budget.get('channel_params') or ''}, PSNR {budget['psnr_db']:g} dB requested, "
         + (f"{snr:.2f} dB measured" if snr is not None else "noise-free")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _send(args: argparse.Namespace) -> int:
    import httpx

    args.sender = sender_url(args.sender)

    files = {"image": (Path(args.image).name, _read(args.image, "image"))}
    if args.label:
        files["label"] = (Path(args.label).name, _read(args.label, "label map"))
    if args.instance:
        files["instance"] = (Path(args.instance).name, _read(args.instance, "instance map"))
    try:
        form = form_from_cli(args)  # only the flags given: the sender's (or the receiver's) defaults apply
    except ValueError as e:
        raise ServiceError(str(e)) from None
    url = args.sender.rstrip("/") + "/transmit"
    key = os.environ.get(API_KEY_ENV, "").strip()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    verify = True
    if args.ca:
        from gesco_net.tls import client_ssl_context

        verify = client_ssl_context(args.ca)
    with httpx.Client(timeout=httpx.Timeout(60.0), headers=headers, verify=verify) as client:
        try:
            reply = client.post(url, files=files, data=form)
        except httpx.HTTPError as e:
            raise ServiceError(f"cannot reach the sender at {args.sender} ({e}); is `gesco up` running?") from None
        if reply.status_code in (401, 403) and not key:
            raise ServiceError(f"the sender answered HTTP {reply.status_code}: {_detail(reply)}; "
                               f"set {API_KEY_ENV} to your API key")
        if reply.status_code != 202:
            raise ServiceError(f"the sender answered HTTP {reply.status_code}: {_detail(reply)}")
        accepted = reply.json()
        job_id, result_url = accepted["id"], accepted["result_url"]
        for note in accepted.get("warnings", []):
            print(f"gesco send: warning: {note}", file=sys.stderr, flush=True)
        tty = sys.stderr.isatty()
        _progress(f"sent {job_id}: {accepted['budget']['total_bits']:,} bits; waiting for the receiver ...", tty=tty)
        start = time.monotonic()
        status, last_state = None, None
        while True:
            try:
                r = client.get(result_url)
            except httpx.HTTPError as e:
                raise ServiceError(f"cannot reach the receiver at {result_url} ({e})") from None
            if r.status_code != 200:
                raise ServiceError(f"the receiver answered HTTP {r.status_code}: {_detail(r)}")
            result = r.json()
            status = result["status"]
            elapsed = time.monotonic() - start
            if status in ("done", "failed"):
                _progress(f"job {job_id}: {status} after {elapsed:.1f} s", final=True, tty=tty)
                break
            state = progress_state(result)
            if tty:  # one line, rewritten in place
                _progress(progress_line(job_id, result, elapsed), tty=True)
            elif state != last_state:  # a log: one line per state change
                _progress(progress_line(job_id, result, elapsed), tty=False)
            last_state = state
            if elapsed > args.timeout:
                raise ServiceError(f"job {job_id} is still {status} after {args.timeout:.0f} s; see {result_url}")
            time.sleep(0.25 if elapsed < 10 else 1.0)
        if status == "failed":
            raise ServiceError(f"job {job_id} failed: {result.get('reason')}")
        image = client.get(urljoin(result_url, result["links"]["image"]))
        image.raise_for_status()
        out = Path(args.out) if args.out else default_result_path(job_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(image.content)
        if args.maps_out:
            for link, suffix in (("received_maps", "received"), ("denoised_maps", "denoised")):
                r = client.get(urljoin(result_url, result["links"][link]))
                r.raise_for_status()
                Path(f"{args.maps_out}_{suffix}.png").write_bytes(r.content)
    if args.json:
        print(json.dumps({"accepted": accepted, "result": result}, indent=2))
        return 0
    t_s, t_r = accepted["timings"], result["timings"]
    print(f"saved {out}  (job {job_id})")
    print("bit budget:")
    print(format_budget(result["budget"]))
    print("timings (s): " + ", ".join(
        f"{k} {v:.3f}" for k, v in (
            ("segment", t_s["segment_s"]), ("encode", t_s["encode_s"]), ("channel", t_s["channel_s"]),
            ("queue wait", t_r.get("queue_wait_s")), ("FDS", t_r.get("fds_s")), ("sampling", t_r.get("sampling_s")),
            ("PNG", t_r.get("png_s")),
        ) if v is not None
    ) + f"  [batch {t_r.get('batch_size')}, {t_r.get('device')}]")
    upload = result.get("upload") or accepted.get("upload")
    if upload:
        print("upload: " + format_upload(upload))
    for note in result.get("warnings") or accepted.get("warnings", []):
        print(f"warning: {note}")
    return 0


def format_upload(upload: dict) -> str:
    """One line on how the upload was prepared: its size, aspect handling, domain score and edge map."""
    h, w = upload["source_size"]
    parts = [f"{h}x{w} (H x W)", f"aspect {upload['aspect']}" + (" (adjusted)" if upload["aspect_adjusted"] else "")]
    if not upload["segmented"]:
        parts.append("label map uploaded")
    elif upload["domain_scored"]:
        verdict = "OUT OF DOMAIN" if upload["out_of_domain"] else "in domain"
        parts.append(f"segmented, confidence {upload['domain_score']:.2f} "
                     f"(threshold {upload['domain_threshold']:.2f}): {verdict}")
    else:
        parts.append("segmented, confidence not measurable")
    edges = upload.get("edges")
    if edges:
        parts.append({"uploaded": "instance edges uploaded",
                      "derived": "instance edges derived from the label map (touching objects of one class merge)",
                      "none": "no instance edges"}.get(edges, f"instance edges: {edges}"))
    return ", ".join(parts)
