"""Command-line config overrides (gesco.config)."""

from gesco.config import apply_overrides


def test_overrides_parse_numbers_lists_and_booleans():
    out = apply_overrides({"a": {"b": 1}}, ["a.b=2", "lr=2e-4", "x=1.5E+3", "flag=true", "l=[1, 2]", "name=run-1"])
    assert out == {"a": {"b": 2}, "lr": 2e-4, "x": 1500.0, "flag": True, "l": [1, 2], "name": "run-1"}
    assert isinstance(out["lr"], float)


def test_overrides_keep_strings_that_only_look_numeric_in_part():
    out = apply_overrides({}, ["tag=2e-4x", "path=runs/1e3"])
    assert out == {"tag": "2e-4x", "path": "runs/1e3"}
