"""The command line's data folder: ``gesco up`` writes its store and bit-budget log there,
``gesco send`` its results, ``gesco budget`` reads the log there; outside any checkout."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gesco.commands.budget import default_budget_log
from gesco.paths import DATA_DIR_ENV, default_data_dir
from gesco_net.cli import main as cli
from gesco_net.commands.send import default_result_path
from gesco_net.commands.up import data_paths

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_data_env(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_default_is_the_users_data_folder_outside_the_repository(no_data_env):
    assert default_data_dir() == no_data_env / ".local" / "share" / "gesco"
    assert REPO not in default_data_dir().resolve().parents


def test_environment_names_the_folder(no_data_env, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "gesco"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "mine"))  # wins over XDG_DATA_HOME
    assert default_data_dir() == tmp_path / "mine"


def test_up_send_and_budget_agree_on_the_folder(no_data_env):
    data_dir, log = data_paths(argparse.Namespace(data_dir=None, budget_log=None))
    assert data_dir == default_data_dir().resolve() and log == default_budget_log().resolve()
    assert default_result_path("0123abcd") == default_data_dir() / "results" / "0123abcd.png"
    assert default_result_path("../../etc/x").parent == default_data_dir() / "results"  # an odd id stays inside
    given = data_paths(argparse.Namespace(data_dir="elsewhere", budget_log=None))
    assert given == (Path("elsewhere").resolve(), Path("elsewhere").resolve() / "budget.jsonl")


def test_budget_without_a_log_says_where_it_looked(no_data_env, capsys):
    assert cli(["budget"]) == 2
    err = capsys.readouterr().err
    assert str(default_budget_log()) in err and "gesco up" in err and DATA_DIR_ENV in err
