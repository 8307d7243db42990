"""The Python API as a notebook uses it: figures returned, progress bars where someone watches, one call to train
from a config dict, and long calls that use every core like the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import mlplab
from mlplab import config as configs
from mlplab import data, models, optim, training
from mlplab.experiments import randomize as rz
from mlplab.experiments.executors import SerialExecutor
from mlplab.experiments.figures import randomization_figure
from mlplab.experiments.sweep import run_sweep, value_configs
from mlplab.run import train_run


def test_history_plot_returns_the_curves_as_a_figure() -> None:
    ds = data.load("digits")
    model = models.TwoLayerNet(input_size=ds.input_size, seed=0)
    history = training.fit(model, optim.SGD(0.2, momentum=0.9), ds, epochs=3, batch_size=8, seed=0, progress=False)
    fig = history.plot("digits")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_axis, acc_axis = fig.axes
    np.testing.assert_allclose(loss_axis.lines[1].get_ydata(), history.val_loss)
    np.testing.assert_allclose(acc_axis.lines[1].get_ydata(), 100 * np.asarray(history.val_acc))
    assert fig.get_suptitle() == "digits"
    assert fig._repr_html_ is not None or hasattr(fig, "savefig")  # displayable and savable


def test_fit_shows_a_bar_only_when_asked_or_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = data.load("digits").subset(200)
    model = models.SoftmaxRegression(input_size=ds.input_size, seed=0)
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    training.fit(model, optim.SGD(0.1), ds, epochs=1, batch_size=50, progress=None)
    assert stderr.getvalue() == ""  # not a terminal, not a notebook: quiet
    assert not training.interactive()
    training.fit(model, optim.SGD(0.1), ds, epochs=1, batch_size=50, progress=True)
    assert "epoch 1/1" in stderr.getvalue() and "/4 [" in stderr.getvalue()  # a bar of the 4 batches
    monkeypatch.setattr(stderr, "isatty", lambda: True)
    assert training.interactive()


def test_train_from_a_config_dict_equals_the_cli_run(tmp_path: Path) -> None:
    layout = {"Train": {"type": "MLP", "learning_rate": 0.01, "optimizer": "adam"}, "network": {"hidden_sizes": [32]}}
    metrics, model = mlplab.train(layout, tmp_path, epochs=3, threads=1, progress=False)
    assert isinstance(model, models.MLP) and model.params["W1"].shape == (64, 32)
    assert metrics["config"]["hidden_sizes"] == [32] and metrics["config"]["epochs"] == 3
    assert {p.name for p in tmp_path.iterdir()} == {"metrics.json", "curves.png", "model.npz", "diagnostics.json"}
    flat = configs.resolve(None, ["type=MLP", "learning_rate=0.01", "optimizer=adam", "hidden_sizes=[32]"])
    same, _ = train_run({**flat, "epochs": 3, "threads": 1})
    assert same["val_acc"] == metrics["val_acc"] and same["test_acc"] == metrics["test_acc"] > 0.5
    with pytest.raises(mlplab.errors.ConfigError, match="did you mean 'epochs'"):
        mlplab.train(epoch=3)


def test_a_sweep_plots_as_a_figure(tmp_path: Path) -> None:
    key, value_config = value_configs("learning_rate", ["0.2", "0.05"], None, ["epochs=2", "threads=1"])
    result = run_sweep(key, value_config, tmp_path, SerialExecutor())
    fig = result.plot()
    assert isinstance(fig, Figure)
    assert [line.get_label() for line in fig.axes[0].lines] == ["learning_rate = 0.2", "learning_rate = 0.05"]


def test_randomize_uses_a_pool_like_the_cli_and_plots_as_a_figure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    made: list[int | None] = []

    def make_executor(workers: int | None = None) -> SerialExecutor:
        made.append(workers)  # None: one worker per core, as `mlplab randomize` without --workers
        return SerialExecutor()

    monkeypatch.setattr(rz, "make_executor", make_executor)
    settings = rz.Settings(subset=200, hidden=32, max_steps=60, batch_size=50)
    results = rz.randomize(["true-labels"], settings, tmp_path, progress=False)
    assert made == [None] and list(results) == ["true-labels"]
    figure = randomization_figure(results, "digits")
    assert isinstance(figure, Figure) and len(figure.axes) == 3
