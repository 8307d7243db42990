"""Two `mlplab tune` processes started at once on a fresh PostgreSQL database share one study: both work, together
they finish the trial count, neither redoes the other's trials, and both report the same best trial.

Needs a PostgreSQL server: `MLPLAB_TEST_POSTGRES_URL=postgresql://USER@HOST:PORT/DB` of a user that may create
databases (`.ci/run` starts one); skipped without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplab.experiments.study_storage import driver_url

ADMIN_URL = os.environ.get("MLPLAB_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="MLPLAB_TEST_POSTGRES_URL is not set (.ci/run starts a server)")
ROOT = Path(__file__).resolve().parents[2]
TRIALS = 8


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new, empty database on the test server (dropped afterwards); its URL."""
    import psycopg

    assert ADMIN_URL is not None
    name = f"mlplab_race_{uuid.uuid4().hex[:12]}"
    conninfo = driver_url(ADMIN_URL).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_two_processes_started_at_once_share_one_study(fresh_database: str, tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 0.05, high: 0.3, log: true}\nhidden_size: {choices: [32, 64, 128]}\n")
    command = [sys.executable, "-m", "mlplab.cli", "tune", "--config", str(ROOT / "configs/digits.yaml")]
    command += ["--space", str(space), "--trials", str(TRIALS), "--workers", "1", "--no-pruning"]
    command += ["--set", "epochs=4", "--set", "threads=1", "--storage", fresh_database, "--study-name", "S"]
    outs = [tmp_path / "a", tmp_path / "b"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [*command, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for out in outs
    ]
    results = [p.communicate(timeout=300) for p in processes]
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr and f"{TRIALS} complete, 0 pruned, 0 failed" in stdout

    study = optuna.load_study(study_name="S", storage=driver_url(fresh_database))
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == TRIALS and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == TRIALS  # nobody drew another's parameters
    assert len({t.user_attrs["owner"] for t in trials}) == 2  # both processes ran trials

    ran = [{int(d.name.removeprefix("trial-")) for d in (out / "trials").iterdir()} for out in outs]
    assert ran[0].isdisjoint(ran[1]) and ran[0] | ran[1] == set(range(TRIALS))  # each trial trained once

    best = [json.loads((out / "best.json").read_text())["best"] for out in outs]
    assert best[0]["trial"] == best[1]["trial"] == study.best_trial.number
    assert best[0]["val_acc"] == best[1]["val_acc"] == study.best_value
    assert study.best_value > 0.5
