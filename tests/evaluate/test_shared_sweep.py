"""``gesco evaluate --store postgresql://...``: workers share one result store and claim cells.

Two worker processes run the same sweep at once (each cell evaluated once, one report's
numbers in both output folders, equal to a run on one worker); a cell left claimed by a
worker that died is taken over once its lease has expired; a malformed or unreachable store
is a named error.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time

import pytest
from test_evaluate import assets  # noqa: F401  (the tiny diffusion and segmenter checkpoints)

from gesco.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENES = 3


def argv(out, assets, *extra):  # noqa: F811
    return ["evaluate", "--scenes", str(SCENES), "--psnr", "10", "--methods", "real,ours", "--steps", "2",
            "--sampler", "ddim", "--segmenter", str(assets["segmenter"]), "--device", "cpu", "--batch-size", "1",
            "--grid-scenes", "1", "--no-progress", "--out", str(out), *extra]


NUMBERS = ("row", "psnr", "status", "n", "miou_mean", "miou_pooled", "lpips_mean", "ssim_mean", "mean_colour_error_mean",
           "fd", "total_bits", "channel_uses")  # the results (not the timings)


def table(out) -> list[dict]:
    rows = list(csv.DictReader(open(out / "results.csv")))
    return sorted(({k: r[k] for k in NUMBERS} for r in rows), key=lambda r: (r["row"], r["psnr"]))


def cells(url: str, sweep: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT row, psnr, block, worker, done FROM eval_cells WHERE sweep = %s "
                            "ORDER BY row, psnr, block", (sweep,)).fetchall()


@pytest.mark.slow
def test_two_workers_share_a_sweep_and_each_cell_is_evaluated_once(postgres, assets, tmp_path):  # noqa: F811
    url = postgres.database()
    env = {**os.environ, "GESCO_CHECKPOINT_DIR": str(assets["checkpoints"]), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-m", "gesco.cli",
                               *argv(tmp_path / f"w{i}", assets, "--store", url, "--sweep", "s1")],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    done = cells(url, "s1")
    assert len(done) == 2 * SCENES and all(c[4] for c in done)  # real and ours@10, one cell per scene, all done
    evaluated = sum(int(o.split("evaluated ")[1].split()[0]) for o in outputs)
    assert evaluated == 2 * SCENES, outputs  # no image evaluated twice
    assert table(tmp_path / "w0") == table(tmp_path / "w1")
    # the same numbers as one worker on its own SQLite store, run as the workers are (a process of one
    # torch thread: float sums round differently with another thread count, ~1e-8 in LPIPS)
    alone = subprocess.run([sys.executable, "-m", "gesco.cli", *argv(tmp_path / "alone", assets)], env=env, cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert alone.returncode == 0, alone.stdout
    assert table(tmp_path / "alone") == table(tmp_path / "w0")


def test_a_cell_of_a_dead_worker_is_taken_over_after_its_lease(postgres, assets, tmp_path, monkeypatch, capsys):  # noqa: F811
    import psycopg

    url = postgres.database()
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    from gesco.evaluate.shared_store import PostgresResultStore

    dead = PostgresResultStore(url, "s2", worker="dead:1", lease_s=1.0)
    assert dead.claim_cell("ours", 10.0, 1) is True  # then the worker dies without finishing the cell
    dead.close()
    time.sleep(1.1)
    assert main(argv(tmp_path / "survivor", assets, "--store", url, "--sweep", "s2", "--lease-s", "60")) == 0
    assert "evaluated 6 images" in capsys.readouterr().out
    with psycopg.connect(url) as conn:
        (worker, done), = conn.execute("SELECT worker, done FROM eval_cells WHERE sweep = 's2' AND row = 'ours' "
                                       "AND block = 1").fetchall()
    assert done and worker != "dead:1"
    # a second run of the same sweep finds every cell done: nothing to evaluate
    assert main(argv(tmp_path / "again", assets, "--store", url, "--sweep", "s2")) == 0
    assert "evaluated 0 images (6 already done)" in capsys.readouterr().out


def test_a_live_claim_is_respected_and_bad_store_urls_are_named_errors(postgres, tmp_path):
    from gesco.evaluate.shared_store import PostgresResultStore, SharedStoreError

    url = postgres.database()
    a = PostgresResultStore(url, "s3", worker="a", lease_s=60)
    b = PostgresResultStore(url, "s3", worker="b", lease_s=60)
    try:
        assert a.claim_cell("ours", 10.0, 0) and not b.claim_cell("ours", 10.0, 0)
        assert a.claim_cell("ours", 10.0, 0)  # its own claim again (a restart of the same worker name)
        a.finish_cell("ours", 10.0, 0)
        assert not b.claim_cell("ours", 10.0, 0)  # done: nobody claims it again
    finally:
        a.close()
        b.close()
    with pytest.raises(SharedStoreError, match="malformed --store URL"):
        PostgresResultStore("postgresql://u@h/db?nosuchoption=1", "s", "w")
    with pytest.raises(SharedStoreError, match="cannot reach") as err:
        PostgresResultStore(f"postgresql://u:secret@/db?host={tmp_path}&connect_timeout=1", "s", "w")
    assert "secret" not in str(err.value)
