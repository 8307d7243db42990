"""Scale-out on a real Dask cluster (scheduler and two worker processes on loopback): the same numbers as a serial
run, every result persisted by the parent as it arrives, and Optuna trials told into the storage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from mlplab import config as configs
from mlplab.cli import main
from mlplab.experiments.executors import DaskExecutor, SerialExecutor
from mlplab.experiments.search_space import Param
from mlplab.experiments.sweep import run_sweep, value_configs
from mlplab.experiments.tune import finished_trials, run_study, val_curve

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # a scheduler and two worker processes start for this module

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "digits.yaml")
TIMING = {"epoch_seconds", "total_seconds", "provenance"}


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A LocalCluster: a scheduler and two single-threaded worker processes on 127.0.0.1."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        silence_logs=40,
        env={"MLPLAB_NO_DOWNLOAD": "1"},
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def numbers(results: dict) -> dict:
    return {label: {k: v for k, v in m.items() if k not in TIMING} for label, m in results.items()}


def test_sweep_on_the_cluster_matches_serial(
    scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = ["1", "0.5", "0.2"]
    args = ["sweep", "learning_rate", *values, "--config", CONFIG, "--set", "epochs=4"]
    assert main([*args, "--dask-scheduler", scheduler, "--out", str(tmp_path / "dask")]) == 0
    assert sum(line.startswith("learning_rate=") for line in capsys.readouterr().out.splitlines()) == 3

    key, value_config = value_configs("learning_rate", values, CONFIG, ["epochs=4"])
    serial = run_sweep(key, value_config, tmp_path / "serial", SerialExecutor())
    on_cluster = json.loads((tmp_path / "dask" / "results.json").read_text())
    assert numbers(on_cluster) == numbers(json.loads(json.dumps(serial.runs)))
    for label in values:  # the parent wrote each run's files from what the workers sent back
        run_dir = tmp_path / "dask" / "runs" / f"learning_rate={label}"
        assert {"metrics.json", "curves.png", "model.npz"} <= {p.name for p in run_dir.iterdir()}


def test_optuna_trials_run_on_the_cluster(scheduler: str, tmp_path: Path) -> None:
    base = configs.resolve(CONFIG, ["epochs=6"])
    space = {"learning_rate": Param("learning_rate", low=0.3, high=1.2, log=True)}
    with DaskExecutor(scheduler) as executor:
        assert executor.slots == 2
        result = run_study(base, space, 4, tmp_path, executor, sampler="random")
    finished = finished_trials(result.study)
    assert len(finished) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in finished)
    for t in finished:
        metrics = json.loads((tmp_path / "trials" / f"trial-{t.number:04d}" / "metrics.json").read_text())
        assert metrics["config"]["learning_rate"] == t.params["learning_rate"]
        assert val_curve(t) == {i + 1: v for i, v in enumerate(metrics["val_acc"])}


def test_randomize_conditions_on_the_cluster_write_their_diagnostics_through_the_parent(
    scheduler: str, tmp_path: Path
) -> None:
    from mlplab.experiments import randomize as rz

    settings = rz.Settings(subset=200, hidden=32, max_steps=20, seed=1)
    names = ["true-labels", "random-labels"]
    with DaskExecutor(scheduler) as executor:
        on_cluster = rz.randomize(names, settings, tmp_path / "dask", executor, progress=False)
    serial = rz.randomize(names, settings, tmp_path / "serial", SerialExecutor(), progress=False)
    for results in (on_cluster, serial):
        for entry in results.values():
            entry.pop("seconds"), entry.pop("provenance")
    assert on_cluster == serial
    for name in names:  # the workers share no files: the parent wrote what they sent back
        for file in ("diagnostics.json", "model.npz"):
            assert (tmp_path / "dask" / name / file).read_bytes() == (tmp_path / "serial" / name / file).read_bytes()
