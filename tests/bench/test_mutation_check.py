"""bench/mutation_check.py: its list stays applicable, and it tells caught from missed."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mutation_check(load_script):
    return load_script("bench/mutation_check.py")


def test_every_mutation_applies_once_and_names_existing_tests(mutation_check):
    """A refactor that moves a formula makes its entry stale: this names it (the script would
    report it 'stale' too, but only when someone runs it)."""
    names = [m.name for m in mutation_check.MUTATIONS]
    assert len(names) == len(set(names))
    for m in mutation_check.MUTATIONS:
        text = (REPO / m.path).read_text()
        assert text.count(m.old) == 1, f"{m.name}: 'old' found {text.count(m.old)} times in {m.path}"
        assert m.new != m.old and m.tests
        for t in m.tests:
            assert (REPO / t.split("::")[0]).exists(), f"{m.name}: no {t}"


@pytest.mark.slow
def test_check_reports_caught_missed_and_stale(mutation_check):
    """Three entries on the FDS: a real slip (caught), a comment (missed: the tests cannot
    see it), and a text that is not in the file (stale)."""
    fds = ("tests/semantics/test_fds.py",)
    m = mutation_check.Mutation
    doc = mutation_check.check([
        m("slip", "FDS", "gesco/semantics/fds.py", "count_include_pad=True)", "count_include_pad=False)", fds),
        m("comment", "none", "gesco/semantics/fds.py", "count_include_pad=True)", "count_include_pad=True)  # same", fds),
        m("gone", "none", "gesco/semantics/fds.py", "no such text", "x", fds),
    ], timeout_s=300)
    assert [r["status"] for r in doc["mutations"]] == ["caught", "missed", "stale"]
    assert doc["counts"] == {"caught": 1, "missed": 1, "stale": 1, "baseline-fails": 0}
    assert "FAILED" in doc["mutations"][0]["detail"]
    assert "count_include_pad=True)" in (REPO / "gesco/semantics/fds.py").read_text()  # the repository is untouched
    assert "| `slip` | FDS | caught |" in mutation_check.markdown(doc)
