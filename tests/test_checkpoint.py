"""Exact resume: a run killed at any moment and started again ends with the same metrics.json and model.npz, byte
for byte but for wall-clock fields, as one never stopped. Real `mlplab train` processes, really SIGKILLed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplab import config as configs
from mlplab.checkpoint import CHECKPOINT_NAME, KILL_ENV, Checkpoint
from mlplab.cli import main
from mlplab.data import load
from mlplab.errors import MlplabError
from mlplab.run import make_model, make_optimizer, make_schedule, make_transform, run_checkpoint
from mlplab.training import History, fit, fit_until_memorized

pytestmark = pytest.mark.usefixtures("one_blas_thread")

WALL_CLOCK = ("epoch_seconds", "total_seconds", "seconds", "provenance")
"""metrics.json's fields that measure the moment (time taken, what machine): the only ones a resume may change."""

MODELS = {
    "softmax": ["type=SoftmaxRegression", "learning_rate=0.05"],
    "two_layer": ["type=TwoLayerNet", "hidden_size=24"],
    "mlp_dropout": ["type=MLP", "hidden_sizes=[32,16]", "dropout=0.3"],
    "cnn_bn_augment": [
        "type=CNN",
        "conv_channels=[4]",
        "kernel_size=3",
        "conv_padding=same",
        "pool=2",
        "batch_norm=true",
        "hidden_sizes=[16]",
        "augment=1",
        "elastic=2.0",
        "elastic_sigma=2.0",
    ],
}
OPTIMIZERS = {
    "sgd": ["optimizer=sgd", "learning_rate=0.1"],
    "momentum": ["optimizer=sgd", "momentum=0.9", "learning_rate=0.05"],
    "adam": ["optimizer=adam", "learning_rate=0.003"],
    "adamw_cosine": ["optimizer=adamw", "weight_decay=0.01", "learning_rate=0.003", "schedule=cosine"],
}
BASE = ["epochs=3", "batch_size=64"]


def settings(model: str, optimizer: str, *extra: str) -> list[str]:
    """--set arguments of a small digits run (the model's own learning rate wins over the optimizer's)."""
    keys = [*BASE, *OPTIMIZERS[optimizer], *MODELS[model], *extra]
    return [arg for key in keys for arg in ("--set", key)]


def train_command(sets: list[str], out: Path) -> list[str]:
    return [sys.executable, "-m", "mlplab.cli", "train", *sets, "--out", str(out)]


def run_train(sets: list[str], out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """A real `mlplab train` process; with `kill_at`, it SIGKILLs itself at that point (checkpoint.KILL_ENV)."""
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.run(train_command(sets, out), env=env, capture_output=True, text=True, timeout=300, check=False)


def reference(sets: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The uninterrupted run, in this process."""
    assert main(["train", *sets, "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def stable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in WALL_CLOCK}


def assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    """Same model.npz bytes, same metrics.json but for wall-clock fields, and no checkpoint or temporary left."""
    assert (resumed / "model.npz").read_bytes() == (uninterrupted / "model.npz").read_bytes()
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (resumed, uninterrupted))
    assert set(first) == set(second)
    assert stable(first) == stable(second)
    assert json.dumps(stable(first)) == json.dumps(stable(second))  # floats to the last digit, keys in order
    assert len(first["epoch_seconds"]) == len(second["epoch_seconds"])
    assert sorted(p.name for p in resumed.iterdir()) == ["curves.png", "metrics.json", "model.npz"]


def test_killed_while_writing_a_checkpoint_continues_from_the_epoch_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = settings("mlp_dropout", "adamw_cosine")
    ref = reference(sets, tmp_path / "ref", capsys)
    out = tmp_path / "run"
    killed = run_train(sets, out, kill_at="checkpoint:2")
    assert killed.returncode == -signal.SIGKILL
    staged = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(staged) == 1 and staged[0].startswith(f".{CHECKPOINT_NAME}.")  # epoch 2's, never renamed
    with np.load(out / CHECKPOINT_NAME) as archive:
        assert json.loads(str(archive["__checkpoint__"]))["epoch"] == 1
    assert not (out / "metrics.json").exists()
    resumed = run_train(sets, out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1/3" in resumed.stdout
    assert [line.split("/")[0] for line in resumed.stdout.splitlines() if line.startswith("epoch")] == [
        "epoch   2",
        "epoch   3",
    ]
    assert_same_run(out, ref)


def test_killed_during_and_after_the_final_write_finishes_the_same_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = settings("cnn_bn_augment", "momentum")
    ref = reference(sets, tmp_path / "ref", capsys)
    out = tmp_path / "run"
    killed = run_train(sets, out, kill_at="publishing")
    assert killed.returncode == -signal.SIGKILL
    assert (out / "model.npz").exists() and not (out / "metrics.json").exists()  # unfinished, as it reads
    killed = run_train(sets, out, kill_at="published")
    assert killed.returncode == -signal.SIGKILL
    assert (out / "metrics.json").exists() and (out / CHECKPOINT_NAME).exists()
    resumed = run_train(sets, out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 3/3" in resumed.stdout
    assert_same_run(out, ref)


def kill_at_random(sets: list[str], out: Path, rng: random.Random, epochs_seen: int, max_delay: float) -> int | None:
    """Start `mlplab train`, SIGKILL it a random moment (up to `max_delay` s) after its `epochs_seen`-th epoch line
    (during the next epoch, the checkpoint write or the final write); returns its exit status (None: killed)."""
    proc = subprocess.Popen(train_command(sets, out), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("epoch")
        if seen >= epochs_seen:
            time.sleep(rng.uniform(0.0, max_delay))
            proc.kill()
            break
    proc.communicate(timeout=300)
    return None if proc.returncode == -signal.SIGKILL else proc.returncode


def test_killed_at_random_moments_ends_as_never_stopped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = settings("two_layer", "adam", "epochs=4")
    ref = reference(sets, tmp_path / "ref", capsys)
    out = tmp_path / "run"
    rng = random.Random(23)
    for epochs_seen in (1, 3):
        kill_at_random(sets, out, rng, epochs_seen, max_delay=0.05)
    finished = run_train(sets, out)
    assert finished.returncode == 0, finished.stderr
    assert_same_run(out, ref)


def test_a_checkpoint_of_another_config_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    sets = settings("softmax", "sgd")
    assert run_train(sets, out, kill_at="checkpoint:2").returncode == -signal.SIGKILL
    before = (out / CHECKPOINT_NAME).read_bytes()
    status = main(["train", *sets, "--set", "learning_rate=0.5", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "checkpoint of a run with a different config" in err and CHECKPOINT_NAME in err
    assert (out / CHECKPOINT_NAME).read_bytes() == before  # nothing lost


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_and_optimizer_resumes_exactly_after_kills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, optimizer: str
) -> None:
    """The full grid: a kill while a checkpoint is written, one at a random moment, one during and one after the
    final write."""
    sets = settings(model, optimizer, "epochs=4", "schedule=step", "steps=[2]")
    if optimizer == "adamw_cosine":
        sets = settings(model, optimizer, "epochs=4")
    ref = reference(sets, tmp_path / "ref", capsys)
    out = tmp_path / "run"
    assert run_train(sets, out, kill_at="checkpoint:2").returncode == -signal.SIGKILL
    kill_at_random(sets, out, random.Random(f"{model}-{optimizer}"), 1, max_delay=0.1)
    for point in ("publishing", "published"):
        assert run_train(sets, out, kill_at=point).returncode in (0, -signal.SIGKILL)
    finished = run_train(sets, out)
    assert finished.returncode == 0, finished.stderr
    assert_same_run(out, ref)


# ---------------------------------------------------------------- the loops in this process


class Stop(Exception):
    """Raised from a callback: the loop dies there, as in a kill, without its epoch's checkpoint."""


def digits_parts(keys: list[str]) -> tuple[dict[str, Any], Any]:
    config = configs.resolve(None, keys)
    return config, load("digits")


def fit_config(config: dict[str, Any], dataset: Any, checkpoint: Checkpoint | None, stop_at: int = 0) -> Any:
    model = make_model(config, dataset)

    def on_epoch(epoch: int, history: History) -> None:
        if epoch == stop_at:
            raise Stop

    history = fit(
        model,
        make_optimizer(config),
        dataset,
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        seed=config["seed"],
        on_epoch=on_epoch,
        progress=False,
        schedule=make_schedule(config),
        patience=config["patience"],
        transform=make_transform(config, dataset, model.dtype.name),
        checkpoint=checkpoint,
    )
    return history, model


@pytest.mark.parametrize(
    ("model", "optimizer"), [("mlp_dropout", "momentum"), ("cnn_bn_augment", "adam"), ("two_layer", "adamw_cosine")]
)
def test_fit_resumed_in_process_matches_every_number(tmp_path: Path, model: str, optimizer: str) -> None:
    keys = [*BASE, *OPTIMIZERS[optimizer], *MODELS[model], "epochs=4", "normalize=standardize"]
    if model == "cnn_bn_augment":
        keys = keys[:-1]  # folding a standardization needs a dense first layer
    config, dataset = digits_parts(keys)
    history, full = fit_config(config, dataset, None)
    path = tmp_path / CHECKPOINT_NAME
    with pytest.raises(Stop):
        fit_config(config, dataset, run_checkpoint(config, path), stop_at=3)
    again, resumed = fit_config(config, dataset, run_checkpoint(config, path))
    assert stable(again.to_dict()) == stable(history.to_dict())
    for name, value in full.state().items():
        np.testing.assert_array_equal(resumed.state()[name], value, err_msg=name)


def test_early_stopping_killed_after_it_stopped_does_not_train_again(tmp_path: Path) -> None:
    config, dataset = digits_parts([*BASE, "epochs=30", "patience=1", "learning_rate=2.0"])
    history, _ = fit_config(config, dataset, None)
    assert history.stopped_early and history.epochs_done < 30
    path = tmp_path / CHECKPOINT_NAME
    fit_config(config, dataset, run_checkpoint(config, path))  # as if killed before its files were written
    again, _ = fit_config(config, dataset, run_checkpoint(config, path), stop_at=history.epochs_done + 1)
    assert stable(again.to_dict()) == stable(history.to_dict())


def test_fit_until_memorized_resumes_from_its_last_pass(tmp_path: Path) -> None:
    config, dataset = digits_parts(["type=MLP", "hidden_sizes=[64]", "dropout=0.2", "optimizer=adam"])
    dataset = dataset.subset(300)

    def memorize(checkpoint: Checkpoint | None, stop_at: int = 0) -> Any:
        model = make_model(config, dataset)

        def on_epoch(result: Any) -> None:
            if result.epochs == stop_at:
                raise Stop

        return fit_until_memorized(
            model,
            make_optimizer(config),
            dataset,
            batch_size=32,
            max_steps=400,
            target_acc=1.0,
            seed=3,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
        )

    full = memorize(None)
    path = tmp_path / CHECKPOINT_NAME
    identity = {"condition": "test"}
    with pytest.raises(Stop):
        memorize(Checkpoint(path, identity), stop_at=5)
    resumed = memorize(Checkpoint(path, identity))
    assert full.epochs > 5
    assert {k: v for k, v in vars(resumed).items() if k != "seconds"} == {
        k: v for k, v in vars(full).items() if k != "seconds"
    }
    with pytest.raises(MlplabError, match="different config"):
        memorize(Checkpoint(path, {"condition": "other"}))
