"""`mlplab tune`: validation is the objective, every finished trial is in the RDB storage, a rerun or a SIGKILL
loses none, hopeless trials are pruned from their per-epoch validation accuracy, and bad input is one line."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from mlplab import config as configs
from mlplab.checkpoint import CHECKPOINT_NAME, KILL_ENV
from mlplab.cli import main
from mlplab.errors import ConfigError
from mlplab.experiments.executors import SerialExecutor
from mlplab.experiments.search_space import Param, load_space
from mlplab.experiments.tune import finished_trials, run_info, run_study, val_curve

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "digits.yaml")
STORAGE = "sqlite:///{}/study.db"


def write_space(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def space(tmp_path: Path) -> Path:
    return write_space(
        tmp_path / "space.yaml", "learning_rate: {low: 0.2, high: 1.5, log: true}\nmomentum: {choices: [0.0, 0.5]}\n"
    )


def tune(out: Path, space: Path, trials: int, *extra: str, workers: int = 1) -> int:
    args = ["tune", "--config", CONFIG, "--set", "epochs=6", "--space", str(space), "--trials", str(trials)]
    return main([*args, "--sampler", "random", "--workers", str(workers), "--out", str(out), *extra])


def load(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="mlplab", storage=STORAGE.format(out))


def run_files(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*/metrics.json")}


def test_trials_persist_with_validation_as_objective_and_resume(tmp_path: Path, space: Path) -> None:
    assert tune(tmp_path, space, 3) == 0
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    for t in study.trials:
        metrics = json.loads((tmp_path / "trials" / f"trial-{t.number:04d}" / "metrics.json").read_text())
        assert t.value == metrics["best_val_acc"]  # the objective is validation accuracy ...
        assert run_info(t)["test_acc"] == metrics["test_acc"]  # ... test is only reported
        assert val_curve(t) == {i + 1: v for i, v in enumerate(metrics["val_acc"])}
        assert metrics["config"]["learning_rate"] == t.params["learning_rate"]
        assert metrics["config"]["momentum"] == t.params["momentum"]
    first = run_files(tmp_path)

    assert tune(tmp_path, space, 5, workers=2) == 0  # same --out, now in a pool: two more, the first three untouched
    study = load(tmp_path)
    assert len(finished_trials(study)) == 5 and len(study.trials) == 5
    assert {k: v for k, v in run_files(tmp_path).items() if k in first} == first

    best = json.loads((tmp_path / "best.json").read_text())
    winner = max(study.trials, key=lambda t: t.value)
    assert best["best"]["trial"] == winner.number and best["best"]["val_acc"] == winner.value
    rows = (tmp_path / "top_trials.md").read_text().splitlines()[2:]
    assert len(rows) == sum(t.state == TrialState.COMPLETE for t in study.trials)
    assert rows[0].startswith(f"| 1 | {winner.number} |")
    assert f"{100 * run_info(winner)['test_acc']:.2f}%" in rows[0]


def test_an_explicit_rdb_url_holds_the_study(tmp_path: Path, space: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'elsewhere.db'}"
    (tmp_path / "shared").mkdir()
    assert tune(tmp_path / "out", space, 2, "--storage", url, "--study-name", "lab") == 0
    assert not (tmp_path / "out" / "study.db").exists()
    study = optuna.load_study(study_name="lab", storage=url)
    assert len(finished_trials(study)) == 2


def test_hopeless_trials_are_pruned_from_their_validation_curve(tmp_path: Path) -> None:
    base = configs.resolve(CONFIG, ["epochs=8"])
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    good = {"learning_rate": Param("learning_rate", low=0.5, high=1.0, step=0.5)}
    hopeless = {"learning_rate": Param("learning_rate", low=0.001, high=0.002, step=0.001)}
    storage = STORAGE.format(tmp_path)
    run_study(base, good, 2, tmp_path, SerialExecutor(), sampler="grid", storage=storage, pruner=pruner)
    result = run_study(base, hopeless, 4, tmp_path, SerialExecutor(), sampler="grid", storage=storage, pruner=pruner)

    trials = result.study.trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert sorted(t.params["learning_rate"] for t in complete) == [0.5, 1.0]
    assert {t.params["learning_rate"] for t in pruned} == {0.001, 0.002}
    for t in pruned:
        last = max(val_curve(t))
        assert 2 <= last < base["epochs"]  # after the warm-up epoch, before the end
        median = statistics.median(val_curve(c)[last] for c in complete)
        assert val_curve(t)[last] < median
        metrics = json.loads((tmp_path / "trials" / f"trial-{t.number:04d}" / "metrics.json").read_text())
        assert metrics["status"] == "pruned" and len(metrics["val_acc"]) == last
        assert metrics["test_acc"] is None  # a pruned trial is never tested
    assert json.loads((tmp_path / "best.json").read_text())["pruned"] == 2


@pytest.mark.slow
def test_sigkill_loses_no_finished_trial(tmp_path: Path, space: Path) -> None:
    # 100 epochs: about a second per trial, so the kill reliably lands inside one (12 took 0.06 s and raced).
    command = [sys.executable, "-m", "mlplab.cli", "tune", "--config", CONFIG, "--set", "epochs=100"]
    command += ["--space", str(space), "--trials", "4", "--sampler", "random", "--workers", "1", "--out", str(tmp_path)]
    env = {**os.environ, "MLPLAB_NO_DOWNLOAD": "1"}
    first = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    done = running = 0
    while not (done and running) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if not run_files(tmp_path):  # before its first trial is saved the storage may still be being set up
            continue
        study = load(tmp_path)
        done = len(finished_trials(study))
        running = len(study.get_trials(states=(TrialState.RUNNING,)))
    os.killpg(first.pid, signal.SIGKILL)  # mid-trial: one finished, the next one running
    first.wait()
    before = {t.number: (t.params, t.value, t.datetime_complete) for t in finished_trials(load(tmp_path))}
    assert 1 <= len(before) < 4
    interrupted = [t for t in load(tmp_path).trials if t.state == TrialState.RUNNING]
    assert interrupted

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    study = load(tmp_path)
    finished = finished_trials(study)
    assert len(finished) == 4
    assert {t.number: (t.params, t.value, t.datetime_complete) for t in finished if t.number in before} == before
    for t in interrupted:
        stale = study.trials[t.number]
        if (tmp_path / "trials" / f"trial-{t.number:04d}" / "metrics.json").exists():  # killed after its files
            assert stale.state in (TrialState.COMPLETE, TrialState.PRUNED)  # recorded from them, not retrained
            continue
        assert stale.state == TrialState.FAIL and stale.number not in {f.number for f in finished}
        retry = [r for r in finished if r.user_attrs.get("retry_of") == t.number]  # its parameters run again
        assert len(retry) == 1 and retry[0].params == t.params


@pytest.mark.parametrize(
    ("space_text", "extra", "message"),
    [
        ("learnig_rate: {choices: [0.1]}\n", [], "did you mean 'learning_rate'"),
        ("learning_rate: {low: 1.0, high: 0.1}\n", [], "low < high"),
        ("momentum: {choices: [0.5, 1.5]}\n", [], "must be in [0, 1)"),
        ("learning_rate: {low: 0.1, high: 1.0, log: true}\n", ["--sampler", "grid"], "needs choices or a step"),
        ("- 1\n- 2\n", [], "expected a mapping"),
        ("learning_rate: {choices: [0.5]}\n", ["--storage", "nosuchdb://x/y"], "cannot open the Optuna storage"),
        (
            "learning_rate: {choices: [0.5]}\n",
            ["--storage", "postgresql://mlplab@127.0.0.1:9/none"],
            "postgresql://mlplab@127.0.0.1:9/none",
        ),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    tmp_path: Path, space_text: str, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    space = write_space(tmp_path / "space.yaml", space_text)
    assert tune(tmp_path / "out", space, 2, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_grid_space_from_steps() -> None:
    assert Param("batch_size", low=32, high=128, step=32).grid() == [32, 64, 96, 128]
    assert Param("reg", low=0.0, high=0.002, step=0.001).grid() == [0.0, 0.001, 0.002]
    example = load_space(Path(CONFIG).parent / "space_two_layer.yaml")
    assert set(example) == {"learning_rate", "reg", "momentum", "hidden_sizes", "batch_size"}
    assert example["hidden_sizes"].grid() == ["[64]", "[128]", "[256]"]  # lists as Optuna can store them


def test_the_command_offers_exactly_the_samplers_the_study_knows() -> None:
    from mlplab.commands import tune as command
    from mlplab.experiments import search_space
    from mlplab.experiments import tune as experiment

    assert command.SAMPLERS is experiment.SAMPLERS is search_space.SAMPLERS  # one list
    space = {"reg": Param("reg", choices=(0.0, 0.001))}
    for kind in search_space.SAMPLERS:
        assert isinstance(experiment.make_sampler(kind, space, seed=0), optuna.samplers.BaseSampler)
    with pytest.raises(ConfigError, match="unknown sampler"):
        experiment.make_sampler("annealing", space, seed=0)


def test_a_trial_the_trainer_rejects_is_failed_in_the_study_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "optimizer" not in configs.OPTIONS:
        pytest.skip("no optimizer key in this config schema")
    space = write_space(tmp_path / "space.yaml", "optimizer: {choices: [nesterov]}\nmomentum: {choices: [0.0]}\n")
    assert tune(tmp_path, space, 2) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mlplab tune: error: trial 0 (optimizer=nesterov")
    (trial,) = load(tmp_path).trials
    assert trial.state == TrialState.FAIL and run_info(trial)["status"] == "error"


def test_a_list_valued_key_is_tuned_over_its_choices_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hidden_sizes' choices are lists: Optuna stores each as its JSON text, the runs get the lists back; the old
    name hidden_size with plain widths is read as that."""
    space = write_space(tmp_path / "space.yaml", "hidden_size: {choices: [4, 8]}\n")
    assert load_space(space)["hidden_sizes"].choices == ([4], [8])
    args = ["tune", "--config", CONFIG, "--set", "epochs=1", "--space", str(space), "--trials", "2"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main([*args, "--sampler", "grid", "--workers", "1", "--out", str(tmp_path / "t")]) == 0
    assert "config key hidden_size is now hidden_sizes" in capsys.readouterr().err
    widths = sorted(
        json.loads(p.read_text())["config"]["hidden_sizes"] for p in (tmp_path / "t" / "trials").glob("*/metrics.json")
    )
    assert widths == [[4], [8]]
    assert json.loads((tmp_path / "t" / "best.json").read_text())["best"]["params"]["hidden_sizes"] in ([4], [8])
    with pytest.raises(ConfigError, match="a list-valued key is searched over choices"):
        load_space(write_space(tmp_path / "range.yaml", "hidden_sizes: {low: 4, high: 8}\n"))


def test_a_trial_killed_mid_training_is_retried_from_its_checkpoint(tmp_path: Path, space: Path) -> None:
    """SIGKILL while trial 0 writes its epoch-2 checkpoint: the rerun retries its parameters as trial 1, which takes
    over trial 0's checkpoint and ends with the files of an uninterrupted trial."""
    args = ["tune", "--config", CONFIG, "--set", "epochs=3", "--space", str(space), "--trials", "1"]
    args += ["--sampler", "random", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "mlplab.cli", *args, "--out", str(out)]
    env = {**os.environ, "MLPLAB_NO_DOWNLOAD": "1", KILL_ENV: "checkpoint:2"}
    assert subprocess.run(command, env=env, capture_output=True, timeout=120).returncode == -signal.SIGKILL
    with np.load(out / "trials" / "trial-0000" / CHECKPOINT_NAME) as archive:
        first_epoch_seconds = archive["progress/epoch_seconds"].tolist()
    assert len(first_epoch_seconds) == 1
    env.pop(KILL_ENV)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    retry = out / "trials" / "trial-0001"
    resumed = json.loads((retry / "metrics.json").read_text())
    reference = json.loads((tmp_path / "ref" / "trials" / "trial-0000" / "metrics.json").read_text())
    assert resumed["epoch_seconds"][0] == first_epoch_seconds[0]  # epoch 1 was not trained again
    wall_clock = ("epoch_seconds", "total_seconds", "provenance")
    assert {k: v for k, v in resumed.items() if k not in wall_clock} == {
        k: v for k, v in reference.items() if k not in wall_clock
    }
    assert (retry / "model.npz").read_bytes() == (tmp_path / "ref" / "trials" / "trial-0000" / "model.npz").read_bytes()
    assert not list(out.glob("trials/*/checkpoint.npz"))
