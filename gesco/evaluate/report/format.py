"""Formatting helpers of the report's markdown: numbers, mean +- std cells, tables."""

from __future__ import annotations


# --------------------------------------------------------------------------- formatting
def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 10 ** 5:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def no_value(entry: dict | None) -> str | None:
    """What a cell says when its row has no value here: ``"—"`` (no such entry), ``"missing"``
    (its checkpoint is missing) or ``"not run"`` (no scene evaluated); ``None`` otherwise."""
    if entry is None:
        return "—"
    if entry["status"] != "ok":
        return "missing"
    if entry["n"] == 0:
        return "not run"
    return None


def fmt_pm(entry: dict | None, key: str, digits: int = 3) -> str:
    """``mean ± std`` of ``key`` over the entry's scenes (``digits`` decimals), with ``(n=k)`` when partial."""
    if (empty := no_value(entry)) is not None:
        return empty
    mean, std = entry.get(f"{key}_mean"), entry.get(f"{key}_std")
    if mean is None:
        return "n/a"
    text = f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"
    return text + fmt_partial(entry, key)


def fmt_partial(entry: dict, key: str | None = None) -> str:
    """`` (n=4)`` when a cell averages fewer scenes than planned, else ``""``.

    Fewer scenes: an interrupted run, or (``key`` given) a metric some of the row's stored
    images lack (colour errors of results stored before they existed).
    """
    n = entry["n"]
    k = entry.get(f"{key}_n") if key else None
    if k is not None and k < n:
        n = k
    return f" (n={n})" if n < entry.get("n_planned", entry["n"]) else ""


def fmt_one(entry: dict | None, key: str, digits: int = 3) -> str:
    """One number of the entry (e.g. its Frechet distance), with ``(n=k)`` when partial."""
    if (empty := no_value(entry)) is not None:
        return empty
    return fmt(entry.get(key), digits) + fmt_partial(entry)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


EDGES_WORDS = {
    "uploaded": "the scenes' ground-truth instance maps (`--edges uploaded`)",
    "derived": "derived from the label maps by the sender (`--edges derived`: connected components of the thing classes)",
    "none": "none (`--edges none`)",
}


def psnr_label(p: float) -> str:
    return f"{p:g}"
