"""A study shared through one SQLite file by two `mlplab tune` processes with different --out directories: each
best.json names the run directory where the best trial really ran (host and absolute path), not a guess under its
own --out. (tests/experiments/test_tune_postgres.py checks the same over PostgreSQL.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.experiments.test_tune_postgres import assert_best_run_dir_is_where_it_ran

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_out_directories_sharing_one_sqlite_study_name_the_real_run_dir(tmp_path: Path) -> None:
    import optuna

    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 0.05, high: 0.3, log: true}\n")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [sys.executable, "-m", "mlplab.cli", "tune", "--config", str(ROOT / "configs/digits.yaml")]
    command += ["--space", str(space), "--trials", "6", "--workers", "1", "--no-pruning", "--storage", storage]
    command += ["--set", "epochs=3", "--set", "threads=1", "--study-name", "S"]
    outs = [tmp_path / "a", tmp_path / "b"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    processes = [
        subprocess.Popen(
            [*command, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for out in outs
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0 and "Traceback" not in stderr, stderr

    study = optuna.load_study(study_name="S", storage=storage)
    owners = {t.user_attrs["owner"] for t in study.trials}
    assert len(owners) == 2, owners  # both processes ran trials, so one of them reports the other's best trial
    for trial in study.trials:  # every trial records where it ran
        info = trial.user_attrs["run"]
        assert info["host"] == socket.gethostname() and Path(info["run_dir"], "metrics.json").is_file()
    best = [json.loads((out / "best.json").read_text())["best"] for out in outs]
    assert best[0]["trial"] == best[1]["trial"] == study.best_trial.number
    assert_best_run_dir_is_where_it_ran(best, outs)
    ran_in = Path(best[0]["run_dir"]).parent.parent
    other = next(out for out in outs if out.absolute() != ran_in)
    assert not (other / "trials" / f"trial-{best[0]['trial']:04d}").exists()  # the old guess named a missing path
