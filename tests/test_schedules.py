"""Learning-rate schedules, warm-up and early stopping: factors by hand, and what fit does with them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlplab import config as configs
from mlplab import data
from mlplab.errors import ConfigError
from mlplab.models import MLP, TwoLayerNet
from mlplab.optim import SGD, Adam
from mlplab.run import make_schedule, train_run
from mlplab.schedules import Schedule
from mlplab.training import fit


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


def test_step_schedule_is_the_assignments():
    """steps [6, 8]: epochs 1–6 at the base rate, 7–8 at 0.1×, 9–10 at 0.01×; constant within an epoch."""
    factors = Schedule("step", milestones=(6, 8), gamma=0.1).factors(epochs=10, steps_per_epoch=3)
    per_epoch = factors.reshape(10, 3)
    assert np.all(per_epoch == per_epoch[:, :1])
    np.testing.assert_allclose(per_epoch[:, 0], [1, 1, 1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_schedule_values():
    factors = Schedule("cosine").factors(epochs=4, steps_per_epoch=5)
    assert len(factors) == 20
    assert factors[0] == 1.0 and factors[10] == pytest.approx(0.5)
    assert factors[5] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert factors[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 19 / 20))) and factors[-1] > 0
    assert np.all(np.diff(factors) < 0)


def test_warmup_ramps_linearly_then_hands_over():
    factors = Schedule("cosine", warmup_epochs=1).factors(epochs=3, steps_per_epoch=4)
    np.testing.assert_allclose(factors[:4], [0.25, 0.5, 0.75, 1.0])
    # The cosine then runs over the 8 steps left: 1 at its first step, 0.5 half-way.
    assert factors[4] == 1.0 and factors[8] == pytest.approx(0.5)
    plain = Schedule("none", warmup_epochs=0.5).factors(epochs=2, steps_per_epoch=4)
    np.testing.assert_allclose(plain, [0.5, 1, 1, 1, 1, 1, 1, 1])
    stepped = Schedule("step", warmup_epochs=1, milestones=(1,), gamma=0.5).factors(epochs=2, steps_per_epoch=2)
    np.testing.assert_allclose(stepped, [0.5, 1.0, 0.5, 0.5])


def test_no_schedule_is_inactive():
    assert not Schedule().active
    assert Schedule("none", warmup_epochs=1).active and Schedule("cosine").active
    assert make_schedule(configs.resolve()) is None
    with pytest.raises(ConfigError, match="schedule"):
        Schedule("linear")


def test_fit_follows_the_schedule(digits):
    # digits: 1,077 training images in batches of 100 → 11 steps per epoch.
    optimizer = SGD(0.2, momentum=0.9)
    schedule = Schedule("step", warmup_epochs=1, milestones=(2, 3), gamma=0.5)
    history = fit(MLP(64, [16]), optimizer, digits, epochs=4, batch_size=100, seed=0, schedule=schedule)
    assert history.lr == pytest.approx([0.2, 0.2, 0.1, 0.05])
    assert optimizer.base_lr == 0.2
    cosine = fit(MLP(64, [16]), Adam(0.01), digits, epochs=3, batch_size=100, seed=0, schedule=Schedule("cosine"))
    assert cosine.lr == pytest.approx([0.01 * 0.5 * (1 + math.cos(math.pi * k / 33)) for k in (10, 21, 32)])


def test_constant_rate_without_a_schedule(digits):
    optimizer = SGD(0.3)
    history = fit(TwoLayerNet(64, 16), optimizer, digits, epochs=2, batch_size=64, seed=0)
    assert history.lr == [0.3, 0.3] and not history.stopped_early


def test_early_stopping_waits_patience_epochs(digits):
    # A rate too small to change any prediction: validation accuracy never beats epoch 1.
    history = fit(MLP(64, [16]), SGD(1e-12), digits, epochs=20, batch_size=64, seed=0, patience=3)
    assert history.stopped_early and history.epochs_done == 4 and history.best_epoch == 1
    assert history.test_acc is not None
    # Even with no improvement after epoch 1, patience 3 lets epochs 2–3 run; stopping needs 3 stale epochs.
    short = fit(MLP(64, [16]), SGD(1e-12), digits, epochs=3, batch_size=64, seed=0, patience=3)
    assert not short.stopped_early and short.epochs_done == 3


def test_early_stopping_keeps_the_best_model(digits):
    config = configs.resolve(
        None, ["type=MLP", "hidden_sizes=[32]", "epochs=40", "patience=2", "learning_rate=0.5", "momentum=0.9"]
    )
    metrics, _ = train_run(config, dataset=digits)
    assert metrics["stopped_early"] and metrics["epochs_done"] < 40
    assert metrics["epochs_done"] == metrics["best_epoch"] + 2
    assert metrics["best_val_acc"] == max(metrics["val_acc"])


def test_schedule_keys_in_configs():
    config = configs.resolve(None, ["schedule=step", "milestones=[3, 5]", "gamma=0.5", "warmup_epochs=1"])
    schedule = make_schedule(config)
    assert schedule == Schedule("step", warmup_epochs=1.0, milestones=(3, 5), gamma=0.5)
    assert configs.resolve()["milestones"] == [6, 8] and configs.resolve()["patience"] == 0


@pytest.mark.parametrize(
    "bad", ["schedule=exp", "milestones=[8, 6]", "milestones=[0]", "gamma=0", "warmup_epochs=-1", "patience=-2"]
)
def test_bad_schedule_values_are_refused(bad):
    with pytest.raises(ConfigError, match=bad.split("=")[0]):
        configs.resolve(None, [bad])
