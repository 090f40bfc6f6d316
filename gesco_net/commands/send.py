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

from gesco.commands.registries import CLI_REGISTRIES
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
    add_cli_flags(p, registries=CLI_REGISTRIES)
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
    """The command's stages: post the files, wait for the result, save it, print the summary."""
    import httpx

    args.sender = sender_url(args.sender)
    files = _upload_files(args)
    try:
        form = form_from_cli(args)  # only the flags given: the sender's (or the receiver's) defaults apply
    except ValueError as e:
        raise ServiceError(str(e)) from None
    key = os.environ.get(API_KEY_ENV, "").strip()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(timeout=httpx.Timeout(60.0), headers=headers, verify=_verify(args.ca)) as client:
        accepted = _post_transmit(client, args.sender, files, form, has_key=bool(key))
        job_id, result_url = accepted["id"], accepted["result_url"]
        result = _wait_for_result(client, job_id, result_url, accepted["budget"]["total_bits"], args.timeout)
        if result["status"] == "failed":
            raise ServiceError(f"job {job_id} failed: {result.get('reason')}")
        out = _save_result(client, result_url, result, Path(args.out) if args.out else default_result_path(job_id),
                           args.maps_out)
    if args.json:
        print(json.dumps({"accepted": accepted, "result": result}, indent=2))
        return 0
    _print_summary(out, job_id, accepted, result)
    return 0


def _upload_files(args: argparse.Namespace) -> dict[str, tuple[str, bytes]]:
    """The multipart files: the image and, when given, the label and instance maps."""
    files = {"image": (Path(args.image).name, _read(args.image, "image"))}
    if args.label:
        files["label"] = (Path(args.label).name, _read(args.label, "label map"))
    if args.instance:
        files["instance"] = (Path(args.instance).name, _read(args.instance, "instance map"))
    return files


def _verify(ca: str | None):
    """httpx's ``verify``: the system's CAs, or an SSL context trusting ``ca`` (``--ca``)."""
    if not ca:
        return True
    from gesco_net.tls import client_ssl_context

    return client_ssl_context(ca)


def _post_transmit(client, sender: str, files: dict, form: dict, has_key: bool) -> dict:
    """``POST /transmit`` and its 202 reply (the sender's warnings printed to stderr).

    Raises:
        ServiceError: the sender is unreachable or answered another status (a 401 / 403
            without a key says to set :data:`API_KEY_ENV`).
    """
    import httpx

    try:
        reply = client.post(sender.rstrip("/") + "/transmit", files=files, data=form)
    except httpx.HTTPError as e:
        raise ServiceError(f"cannot reach the sender at {sender} ({e}); is `gesco up` running?") from None
    if reply.status_code in (401, 403) and not has_key:
        raise ServiceError(f"the sender answered HTTP {reply.status_code}: {_detail(reply)}; "
                           f"set {API_KEY_ENV} to your API key")
    if reply.status_code != 202:
        raise ServiceError(f"the sender answered HTTP {reply.status_code}: {_detail(reply)}")
    accepted = reply.json()
    for note in accepted.get("warnings", []):
        print(f"gesco send: warning: {note}", file=sys.stderr, flush=True)
    return accepted


def _wait_for_result(client, job_id: str, result_url: str, total_bits: int, timeout_s: float) -> dict:
    """Poll the receiver's result until the job is done or failed, showing its progress
    (one line rewritten in place on a terminal, one line per state change otherwise).

    Raises:
        ServiceError: the receiver is unreachable, answered an error, or the job is still
            queued / running after ``timeout_s`` seconds.
    """
    import httpx

    tty = sys.stderr.isatty()
    _progress(f"sent {job_id}: {total_bits:,} bits; waiting for the receiver ...", tty=tty)
    start = time.monotonic()
    last_state = None
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
            return result
        state = progress_state(result)
        if tty or state != last_state:  # a terminal: one line rewritten in place; a log: one line per state
            _progress(progress_line(job_id, result, elapsed), tty=tty)
        last_state = state
        if elapsed > timeout_s:
            raise ServiceError(f"job {job_id} is still {status} after {timeout_s:.0f} s; see {result_url}")
        time.sleep(0.25 if elapsed < 10 else 1.0)


def _save_result(client, result_url: str, result: dict, out: Path, maps_out: str | None) -> Path:
    """Save the generated image to ``out`` and, with ``maps_out``, the received and denoised
    maps to ``<maps_out>_received.png`` / ``_denoised.png``; returns ``out``."""
    image = client.get(urljoin(result_url, result["links"]["image"]))
    image.raise_for_status()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(image.content)
    if maps_out:
        for link, suffix in (("received_maps", "received"), ("denoised_maps", "denoised")):
            r = client.get(urljoin(result_url, result["links"][link]))
            r.raise_for_status()
            Path(f"{maps_out}_{suffix}.png").write_bytes(r.content)
    return out


def _print_summary(out: Path, job_id: str, accepted: dict, result: dict) -> None:
    """Where the image went, the bit budget, the stage timings, the upload and its warnings."""
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
