"""``gesco budget [LOG]``: summarise a bit-budget log (JSON lines written by the channel).

Without ``LOG`` it reads the log ``gesco up`` writes by default: ``budget.jsonl`` in the
data folder (``$GESCO_DATA_DIR``, else ``~/.local/share/gesco``; :func:`gesco.paths.default_data_dir`).

One row per transmission (id, size, classes, payload / header / total bits, channel
uses, PNG and JPEG sizes, reductions, PSNR requested and measured, preset), then the
totals and means. ``--csv`` writes the rows as CSV instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from gesco.errors import GescoInputError
from gesco.paths import BUDGET_LOG_NAME, DATA_DIR_ENV, default_data_dir

COLUMNS: list[tuple[str, str]] = [
    ("id", "id"),
    ("shape", "HxW"),
    ("classes", "classes"),
    ("payload_bits", "payload"),
    ("header_bits", "header"),
    ("total_bits", "total bits"),
    ("channel_uses", "ch. uses"),
    ("png_bits", "PNG bits"),
    ("jpeg_bits", "JPEG bits"),
    ("reduction_png_pct", "vs PNG %"),
    ("reduction_jpeg_pct", "vs JPEG %"),
    ("psnr_db", "PSNR dB"),
    ("measured_snr_db", "meas. dB"),
    ("channel", "channel"),
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("budget", help="summarise a bit-budget log as a table",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", nargs="?", default=None,
                   help="bit-budget log (default: the one `gesco up` writes, DATA_DIR/budget.jsonl with "
                   "DATA_DIR = $GESCO_DATA_DIR, else ~/.local/share/gesco)")
    p.add_argument("--last", type=int, help="only the last N transmissions")
    p.add_argument("--csv", action="store_true", help="write the rows as CSV")
    p.set_defaults(handler=_budget)


def read_budget_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a log, in order (blank lines skipped).

    Raises:
        GescoInputError: the file is missing or a line is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise GescoInputError(f"bit-budget log {p} not found")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise GescoInputError(f"{p}, line {n}: not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise GescoInputError(f"{p}, line {n}: expected a JSON object, got {type(rec).__name__}")
        out.append(rec)
    return out


def _cell(rec: dict, key: str) -> str:
    if key == "shape":
        return f"{rec.get('height')}x{rec.get('width')}"
    if key == "classes":
        n = len(rec.get("present_classes", []))
        return f"{n}+e" if rec.get("has_edges") else str(n)
    if key == "id":
        return str(rec.get("id", ""))[:12]
    v = rec.get(key)
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summarise(records: list[dict]) -> str:
    """The table and the summary lines of ``records`` as text."""
    header = [title for _, title in COLUMNS]
    rows = [[_cell(r, key) for key, _ in COLUMNS] for r in records]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    numeric = {i for i, (k, _) in enumerate(COLUMNS) if k not in ("id", "shape", "channel")}

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    out = [line(header), "|" + "|".join(("-" * (w + 1) + ":") if i in numeric else ("-" * (w + 2))
                                       for i, w in enumerate(widths)) + "|"]
    out += [line(r) for r in rows]

    def mean(key):
        vals = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        return statistics.fmean(vals) if vals else None

    total = sum(r.get("total_bits", 0) for r in records)
    png = sum(r.get("png_bits", 0) for r in records)
    jpeg = sum(r.get("jpeg_bits", 0) for r in records)
    out.append("")
    out.append(f"{len(records)} transmission(s); {total:,} bits in all "
               f"(mean {total / len(records):,.0f}: payload {mean('payload_bits'):,.0f} + header {mean('header_bits'):,.0f}); "
               f"mean channel uses {mean('channel_uses'):,.0f}")
    if png:
        out.append(f"all images as PNG: {png:,} bits -> semantic frames use {100 * (1 - total / png):.1f} % fewer bits")
    if jpeg:
        out.append(f"all images as JPEG: {jpeg:,} bits -> semantic frames use {100 * (1 - total / jpeg):.1f} % fewer bits")
    return "\n".join(out)


def default_budget_log() -> Path:
    """The log of ``gesco up`` with its default data folder."""
    return default_data_dir() / BUDGET_LOG_NAME


def _budget(args: argparse.Namespace) -> int:
    if args.log is None:
        args.log = default_budget_log()
        if not args.log.is_file():
            raise GescoInputError(
                f"no bit-budget log at {args.log} (gesco up's default data folder) yet: it appears after the "
                f"first transmission of `gesco up`; for another folder give the log's path or set {DATA_DIR_ENV}")
    records = read_budget_log(args.log)
    if args.last:
        records = records[-args.last:]
    if not records:
        raise GescoInputError(f"bit-budget log {args.log} holds no transmissions")
    if args.csv:
        keys = [k for k, _ in COLUMNS if k not in ("shape", "classes")] + ["height", "width", "present_classes", "has_edges"]
        w = csv.DictWriter(sys.stdout, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({**r, "present_classes": " ".join(str(c) for c in r.get("present_classes", []))})
        return 0
    print(summarise(records))
    return 0
