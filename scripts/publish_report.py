"""Publish a ``gesco evaluate`` output folder under docs/.

    python scripts/publish_report.py runs/eval-main docs/evaluation

Copies the report (``report.md`` -> ``README.md``), ``results.csv``, ``results.json``,
the plots and the sample grids, not the results store or the single samples. Absolute
paths of the machine that ran the evaluation are made relative to the repository.

A published README may end with a hand-written part (the comparison with the paper):
everything from the line ``<!-- written by hand -->`` on is kept when the report is
published again, so regenerating the numbers does not erase the discussion (which then
has to be reread against the new numbers).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HAND_MARKER = "<!-- written by hand -->"
REPO = Path(__file__).resolve().parents[1]


def _relative(text: str) -> str:
    return text.replace(str(REPO) + "/", "").replace(str(REPO), ".")


def publish(src: Path, dest: Path) -> list[Path]:
    """Copy the report files of ``src`` to ``dest``; returns the files written."""
    report = src / "report.md"
    if not report.is_file():
        raise SystemExit(f"{report} does not exist: run gesco evaluate --out {src} first")
    dest.mkdir(parents=True, exist_ok=True)
    old = dest / "README.md"
    hand = ""
    if old.is_file() and HAND_MARKER in old.read_text():
        hand = old.read_text()[old.read_text().index(HAND_MARKER):]
    written = []
    text = _relative(report.read_text()).rstrip() + "\n"
    if hand:
        text += "\n" + hand
    old.write_text(text)
    written.append(old)
    for name in ("results.csv", "results.json"):
        (dest / name).write_text(_relative((src / name).read_text()))
        written.append(dest / name)
    for png in sorted(src.glob("sample_grid_*.png")) + sorted((src / "plots").glob("*.png")):
        target = dest / png.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)
        written.append(target)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="gesco evaluate output folder (holds report.md)")
    ap.add_argument("dest", type=Path, help="folder under docs/ to publish to")
    args = ap.parse_args()
    for path in publish(args.src, args.dest):
        print(path)


if __name__ == "__main__":
    main()
