"""`mlplab sweep`: the writeup's table and files, real numbers, parallel = serial, diverged runs, resume after
SIGKILL, and bad input as one line with exit status 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import pytest
from threadpoolctl import threadpool_limits

from mlplab import config as configs
from mlplab.checkpoint import CHECKPOINT_NAME, KILL_ENV
from mlplab.cli import main
from mlplab.experiments.commentary import sweep_commentary
from mlplab.run import train_run

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "digits.yaml")
TIMING = {"epoch_seconds", "total_seconds", "provenance"}


def sweep(out: Path, *values: str, workers: int = 1, extra: tuple[str, ...] = ()) -> int:
    args = ["sweep", "learning_rate", *values, "--config", CONFIG, "--set", "epochs=8", *extra]
    return main([*args, "--workers", str(workers), "--out", str(out)])


def numbers(metrics: dict) -> dict:
    """A run's metrics without its wall-clock timings."""
    return {k: v for k, v in metrics.items() if k not in TIMING}


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    assert sweep(out, "1", "0.5", "0.05") == 0
    return out


def test_results_table_and_figures(serial: Path) -> None:
    results = json.loads((serial / "results.json").read_text())
    assert list(results) == ["1", "0.5", "0.05"]
    for label, metrics in results.items():
        run_dir = serial / "runs" / f"learning_rate={label}"
        assert metrics == json.loads((run_dir / "metrics.json").read_text())
        assert metrics["config"]["learning_rate"] == float(label)
        assert len(metrics["val_acc"]) == 8 and metrics["status"] == "ok"
        assert matplotlib.image.imread(run_dir / "curves.png").shape[1] >= 800
        assert (run_dir / "model.npz").stat().st_size > 10_000

    lines = (serial / "table.md").read_text().splitlines()
    assert lines[0] == "| learning_rate | 1 | 0.5 | 0.05 |"
    best = {label: m["best_epoch"] for label, m in results.items()}
    expected = {
        "Training accuracy": [results[v]["train_acc"][best[v] - 1] for v in results],
        "Validation accuracy": [results[v]["best_val_acc"] for v in results],
        "Test accuracy": [results[v]["test_acc"] for v in results],
    }
    assert [line.split(" | ")[0].strip("| ") for line in lines[2:]] == list(expected)
    for line, values in zip(lines[2:], expected.values(), strict=True):
        assert line.split(" | ")[1:] == [f"{100 * v:.2f}%" for v in values[:-1]] + [f"{100 * values[-1]:.2f}% |"]
    overlay = matplotlib.image.imread(serial / "val_acc.png")
    assert overlay.shape[0] > 300 and overlay.shape[1] > 500
    report = (serial / "report.md").read_text()
    assert "\n".join(lines) in report and "![" in report and (serial / "report.html").stat().st_size > 50_000


def test_numbers_are_those_of_a_plain_training_run(serial: Path) -> None:
    results = json.loads((serial / "results.json").read_text())
    config = configs.resolve(CONFIG, ["epochs=8", "learning_rate=0.5"])
    with threadpool_limits(1):  # as the sweep's workers: BLAS's thread count changes the rounding of products
        metrics, _ = train_run(config)
    assert numbers(json.loads(json.dumps(metrics))) == numbers(results["0.5"])


def test_commentary_names_the_validation_winner(serial: Path) -> None:
    results = json.loads((serial / "results.json").read_text())
    ranked = sorted(results, key=lambda v: results[v]["best_val_acc"], reverse=True)
    first = sweep_commentary("learning_rate", results)[0]
    margin = 100 * (results[ranked[0]]["best_val_acc"] - results[ranked[1]]["best_val_acc"])
    assert first.startswith(f"**learning_rate = {ranked[0]}** gives the best validation accuracy")
    assert f"{margin:.2f} points ahead of learning_rate = {ranked[1]}" in first


def test_parallel_gives_the_serial_numbers(serial: Path, tmp_path: Path) -> None:
    assert sweep(tmp_path, "1", "0.5", "0.05", workers=2) == 0
    parallel = json.loads((tmp_path / "results.json").read_text())
    reference = json.loads((serial / "results.json").read_text())
    assert {k: numbers(m) for k, m in parallel.items()} == {k: numbers(m) for k, m in reference.items()}


def test_a_diverged_run_is_recorded_and_the_rest_go_on(tmp_path: Path) -> None:
    assert sweep(tmp_path, "1e6", "0.5") == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["1e6"]["status"] == "diverged" and results["1e6"]["epochs_done"] == 0
    assert not (tmp_path / "runs" / "learning_rate=1e6" / "model.npz").exists()  # no snapshot, no model
    assert results["0.5"]["status"] == "ok" and results["0.5"]["test_acc"] > 0.5
    table = (tmp_path / "table.md").read_text()
    assert "| Status | diverged | ok |" in table and "| Test accuracy | — |" in table
    assert "learning_rate = 1e6 diverged" in (tmp_path / "report.md").read_text()


def finished_runs(out: Path) -> dict[str, tuple[int, int, str]]:
    """Finished run directories: the mtimes of metrics.json and model.npz and the metrics text."""
    return {
        p.parent.name: (p.stat().st_mtime_ns, (p.parent / "model.npz").stat().st_mtime_ns, p.read_text())
        for p in (out / "runs").glob("*/metrics.json")
    }


@pytest.mark.slow
def test_sigkill_then_rerun_redoes_no_finished_run(tmp_path: Path) -> None:
    values = ["0.5", "0.4", "0.3", "0.2", "0.1"]
    command = [sys.executable, "-m", "mlplab.cli", "sweep", "learning_rate", *values, "--config", CONFIG]
    # ≈ 1 s a run, so the kill lands mid-sweep (12 epochs took 0.06 s and raced the poll)
    command += ["--set", "epochs=100", "--workers", "2", "--out", str(tmp_path)]
    env = {**os.environ, "MLPLAB_NO_DOWNLOAD": "1"}
    first = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not finished_runs(tmp_path) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)  # the sweep's whole process group: parent and pool workers
    first.wait()
    before = finished_runs(tmp_path)
    assert 1 <= len(before) < len(values), "the kill should land mid-sweep"

    command[command.index("--workers") + 1] = "1"  # the rerun may use any executor: same runs, same numbers
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    after = finished_runs(tmp_path)
    assert {name: after[name] for name in before} == before  # not rerun, not rewritten
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results) == values
    for label in values:
        assert results[label] == json.loads(after[f"learning_rate={label}"][2])
    redone = [line for line in again.stdout.splitlines() if line.startswith("learning_rate=")]
    assert len(redone) == len(values) - len(before)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["learnig_rate", "0.1"], "did you mean 'learning_rate'"),
        (["learning_rate", "0.1", "0.10"], "give the same learning_rate"),
        (["learning_rate", "-1"], "must be > 0"),
        (["learning_rate", "0.1", "--dataset", "mnist", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
        (["learning_rate", "0.1", "--workers", "0"], "--workers must be ≥ 1"),
        (["learning_rate", "0.1", "--dask-scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_resuming_with_another_config_is_refused_and_loses_nothing(
    serial: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy"
    assert sweep(out, "0.5") == 0
    kept = finished_runs(out)
    assert sweep(out, "0.5", extra=("--set", "seed=7")) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a run made with a different config" in err and len(err.splitlines()) == 1
    assert finished_runs(out) == kept


def test_a_run_made_before_a_config_key_existed_is_reused(serial: Path, tmp_path: Path) -> None:
    """Its metrics.json lacks the newer key (here `flip`, added later): it ran at that key's default."""
    out = tmp_path / "older"
    assert sweep(out, "0.5") == 0
    metrics_path = out / "runs" / "learning_rate=0.5" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    del metrics["config"]["flip"]
    metrics_path.write_text(json.dumps(metrics))
    kept = finished_runs(out)
    assert sweep(out, "0.5") == 0
    assert finished_runs(out) == kept
    assert sweep(out, "0.5", extra=("--set", "flip=true")) == 2  # a run at the non-default value is another run
    assert finished_runs(out) == kept


def test_a_run_stored_under_old_key_names_is_reused(serial: Path, tmp_path: Path) -> None:
    """A metrics.json written before hidden_size → hidden_sizes, augment → shift and steps → milestones."""
    out = tmp_path / "old-names"
    assert sweep(out, "0.5", extra=("--set", "schedule=step")) == 0
    metrics_path = out / "runs" / "learning_rate=0.5" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    config = metrics["config"]
    assert (config["hidden_sizes"], config["shift"], config["milestones"]) == ([128], 0, [6, 8])
    config["hidden_size"], config["augment"], config["steps"] = 128, 0, [6, 8]
    for key in ("hidden_sizes", "shift", "milestones"):
        del config[key]
    metrics_path.write_text(json.dumps(metrics))
    kept = finished_runs(out)
    assert sweep(out, "0.5", extra=("--set", "schedule=step")) == 0
    assert finished_runs(out) == kept  # recognised: nothing trained again
    assert sweep(out, "0.5", extra=("--set", "schedule=step", "--set", "shift=1")) == 2  # another run still is
    assert finished_runs(out) == kept


def test_a_run_killed_mid_training_continues_from_its_checkpoint(tmp_path: Path) -> None:
    """SIGKILL while the first run writes its epoch-2 checkpoint: the rerun continues that run from epoch 1 and the
    sweep ends with the files of one never killed."""
    args = ["sweep", "learning_rate", "0.5", "0.1", "--config", CONFIG, "--set", "epochs=3", "--set", "dropout=0.2"]
    args += ["--set", "type=MLP", "--set", "hidden_sizes=[32]", "--set", "optimizer=adam", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "mlplab.cli", *args, "--out", str(out)]
    env = {**os.environ, "MLPLAB_NO_DOWNLOAD": "1", KILL_ENV: "checkpoint:2"}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    first = out / "runs" / "learning_rate=0.5"
    assert not (first / "metrics.json").exists() and (first / CHECKPOINT_NAME).exists()
    env.pop(KILL_ENV)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    ref = json.loads((tmp_path / "ref" / "results.json").read_text())
    resumed = json.loads((out / "results.json").read_text())
    assert {k: numbers(m) for k, m in resumed.items()} == {k: numbers(m) for k, m in ref.items()}
    for name in ("learning_rate=0.5", "learning_rate=0.1"):
        run = out / "runs" / name
        assert (run / "model.npz").read_bytes() == (tmp_path / "ref" / "runs" / name / "model.npz").read_bytes()
        assert not (run / CHECKPOINT_NAME).exists()
