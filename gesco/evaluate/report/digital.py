"""The "Digital link" section of the evaluation report (rows of :mod:`gesco.evaluate.digital_rows`)."""

from __future__ import annotations

from typing import Any


def _cell(e: dict | None, source: str | None) -> str:
    if not e or not e.get("n"):
        return "not run"
    lost = e.get("lost")
    parts = [f"lost {100 * lost:.0f} %" if lost is not None else "lost ?"]
    if e.get("channel_uses_per_pixel") is not None:
        parts.append(f"{e['channel_uses_per_pixel']:.2f} uses/px")
    if source in ("jpeg", "webp") and e.get("quality") is not None:
        parts.append(f"q {e['quality']:.0f}")
    if e.get("decode_s") is not None:
        parts.append(f"dec {e['decode_s']:.2f} s")
    return ", ".join(parts)


def digital_section(index: Any, plan: dict) -> str:
    """Per digital row and PSNR: frames lost, channel uses per pixel, source quality, decode time; the MCS per PSNR."""
    from gesco.digital.mcs import DEFAULT_GAP_DB, select_mcs

    digital = [r for r in plan["rows"] if r["method"]["kind"].startswith("digital") and r["method"]["key"] in plan["shown"]]
    if not digital:
        return "_No digital rows in this run._"
    settings = plan.get("digital") or {}
    gap = float(settings.get("mcs_gap_db", DEFAULT_GAP_DB))
    psnrs = sorted(plan["psnrs"])
    channel = plan.get("channel", "awgn")
    mcs_row = ["MCS (chosen per PSNR)"] + [select_mcs(float(p), channel, gap).name for p in psnrs]
    rows = [mcs_row]
    for r in digital:
        m = r["method"]
        rows.append([m["label"]] + [_cell(index.get(m["key"], p), m.get("source")) for p in psnrs])
    header = ["Row"] + [f"{p:g} dB" for p in psnrs]
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                      + ["| " + " | ".join(row) + " |" for row in rows])
    return "\n".join([
        f"CRC24A per code block + 5G LDPC ({settings.get('ldpc_iterations', 20)} BP iterations) + Gray QAM (Sionna), "
        f"channel `{channel}` {plan.get('channel_params') or ''}, per-symbol ZF with the exact noise variance in the "
        f"demapper when the receiver has CSI. The MCS is the most efficient one within {gap:g} dB of capacity at the "
        "PSNR (ergodic Rayleigh capacity on the fading models). A frame is delivered only if every code block passes "
        "its CRC; a lost frame is shown as a grey image and scored as such. JPEG / WebP take the highest quality "
        f"whose file fits {settings.get('digital_budget', 3.0):g} channel uses per pixel (the analog full image's); PNG "
        "and the semantic frame take the channel uses they need. Channel uses = 2 x complex symbols (real channel "
        "uses, like the analog rows). Cells: share of frames lost, mean channel uses per pixel, mean quality, mean "
        "decoding seconds per frame (one CPU thread).", "", table])
