"""Batching, evaluation and the fit loop: order, shuffling, the best-by-validation snapshot, divergence, MNIST."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from mlplab import config as configs
from mlplab.corruptions import corrupt_labels
from mlplab.data import Dataset, load
from mlplab.errors import MlplabError
from mlplab.models import MLP, Model, SoftmaxRegression, TwoLayerNet
from mlplab.optim import SGD, Adam
from mlplab.run import train_run
from mlplab.training import History, batches, evaluate, fit, fit_until_memorized
from tests.conftest import position

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load("digits")


def collect(iterator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copy each batch out: batches() reuses its buffer."""
    return [(x.copy(), y.copy()) for x, y in iterator]


def record_forward_calls(model: Model, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, np.ndarray]]:
    """Keep (mode, positions of the rows) of every forward pass; the real forward still does the work."""
    calls: list[tuple[str, np.ndarray]] = []
    real = model.forward

    def forward(x: np.ndarray, train: bool = False) -> np.ndarray:
        calls.append(("train" if train else "eval", position(x, 255.0)))
        return real(x, train)

    monkeypatch.setattr(model, "forward", forward)
    return calls


# ---------------------------------------------------------------- batches


def test_batches_in_order_with_a_short_last_batch(synthetic_mnist: Path) -> None:
    split = load("mnist", synthetic_mnist).train
    got = collect(batches(split, 32, 255.0))
    assert [len(y) for _, y in got] == [32, 32, 16]
    x = np.concatenate([b for b, _ in got])
    y = np.concatenate([b for _, b in got])
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, split.x / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, split.y)
    assert x.min() >= 0.0 and x.max() == 1.0


def test_batches_in_float64_and_larger_than_the_split(synthetic_mnist: Path) -> None:
    split = load("mnist", synthetic_mnist).val
    ((x, y),) = collect(batches(split, 1000, 255.0, "float64"))
    assert x.shape == (20, 144) and x.dtype == np.float64
    np.testing.assert_array_equal(y, split.y)


def test_seeded_shuffling_and_a_new_order_every_pass(synthetic_mnist: Path) -> None:
    split = load("mnist", synthetic_mnist).train

    def passes(seed: int, count: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(count):
            got = collect(batches(split, 32, 255.0, rng=rng))
            assert [len(y) for _, y in got] == [32, 32, 16]
            order = np.concatenate([position(x, 255.0) for x, _ in got])
            labels = np.concatenate([y for _, y in got])
            np.testing.assert_array_equal(labels, order % 10)  # each label travels with its image
            out.append(order)
        return out

    first, second = passes(7, 2)
    assert sorted(first) == list(range(80)) and sorted(second) == list(range(80))  # every sample once
    assert not np.array_equal(first, np.arange(80))  # shuffled
    assert not np.array_equal(first, second)  # reshuffled on the next pass
    again = passes(7, 2)
    assert np.array_equal(again[0], first) and np.array_equal(again[1], second)  # same seed, same orders
    assert not np.array_equal(passes(8, 1)[0], first)


# ---------------------------------------------------------------- evaluate


def test_evaluate_averages_over_uneven_batches_in_order(synthetic_mnist: Path, monkeypatch) -> None:
    ds = load("mnist", synthetic_mnist)
    model = TwoLayerNet(input_size=144, hidden_size=6, seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    for p in model.params.values():
        p[...] = rng.normal(0.0, 0.3, p.shape)
    whole = model.evaluate_batch(ds.val.x / 255.0, ds.val.y)
    calls = record_forward_calls(model, monkeypatch)
    loss, acc = evaluate(model, ds.val, 255.0, batch_size=7)
    assert loss == pytest.approx(whole[0], rel=1e-12) and acc == pytest.approx(whole[1], rel=1e-12)
    assert [mode for mode, _ in calls] == ["eval"] * 3
    np.testing.assert_array_equal(np.concatenate([p for _, p in calls]), np.arange(80, 100))


# ---------------------------------------------------------------- fit


def test_fit_orders_training_shuffled_per_epoch_and_evaluation_in_file_order(
    synthetic_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = load("mnist", synthetic_mnist)
    model = TwoLayerNet(input_size=144, hidden_size=8, seed=1)
    calls = record_forward_calls(model, monkeypatch)
    history = fit(model, SGD(0.5), ds, epochs=3, batch_size=32, seed=5)
    train = [p for mode, p in calls if mode == "train"]
    evals = [p for mode, p in calls if mode != "train"]
    assert [len(p) for p in train] == [32, 32, 16] * 3
    epochs = [np.concatenate(train[i : i + 3]) for i in range(0, 9, 3)]
    assert all(sorted(e) == list(range(80)) for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    # After each epoch the validation split in order, then once the test split in order.
    assert len(evals) == 4
    for p in evals[:3]:
        np.testing.assert_array_equal(p, np.arange(80, 100))
    np.testing.assert_array_equal(evals[3], np.arange(1000, 1020))
    assert history.epochs_done == 3 and history.status == "ok"


def test_fit_learns_digits_and_tests_the_best_validation_snapshot(digits: Dataset) -> None:
    model = TwoLayerNet(input_size=64, hidden_size=128, seed=1024)
    snapshots: dict[int, dict[str, np.ndarray]] = {}
    seen: list[int] = []

    def on_epoch(epoch: int, history: History) -> None:
        seen.append(epoch)
        snapshots[epoch] = model.state()

    history = fit(model, SGD(0.5, reg=0.001), digits, epochs=30, batch_size=16, seed=1024, on_epoch=on_epoch)
    assert seen == list(range(1, 31)) and history.status == "ok"
    for curve in (history.train_loss, history.train_acc, history.val_loss, history.val_acc, history.epoch_seconds):
        assert len(curve) == 30
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.best_epoch == int(np.argmax(history.val_acc)) + 1  # the first of the best
    assert history.best_val_acc == max(history.val_acc)
    assert history.best_epoch < 30  # so the snapshot is not simply the last model
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, snapshots[history.best_epoch][name])
    assert (history.test_loss, history.test_acc) == evaluate(model, digits.test, digits.pixel_max)
    assert history.test_acc >= 0.93
    model.load_state(snapshots[30])
    assert evaluate(model, digits.val, digits.pixel_max)[1] == history.val_acc[-1]


def test_fit_on_softmax_regression(digits: Dataset) -> None:
    model = SoftmaxRegression(input_size=64, seed=1024)
    history = fit(model, SGD(0.1, reg=0.001), digits, epochs=5, batch_size=16, seed=1024)
    assert history.status == "ok"
    assert history.train_loss[-1] < history.train_loss[0] < np.log(10) + 0.01
    assert history.test_acc > 0.2  # well above chance; ReLU on the logits holds this model back


def test_same_seed_same_numbers(digits: Dataset) -> None:
    def run(seed: int) -> dict:
        model = TwoLayerNet(input_size=64, hidden_size=32, seed=seed)
        result = fit(model, SGD(0.5, reg=0.001, momentum=0.5), digits, epochs=3, batch_size=32, seed=seed).to_dict()
        result.pop("epoch_seconds")
        return result

    first = run(3)
    assert run(3) == first
    assert run(4)["train_loss"] != first["train_loss"]


def test_divergence_stops_and_keeps_the_epochs_done(digits: Dataset) -> None:
    model = TwoLayerNet(input_size=64, hidden_size=16, seed=1)

    def blow_up_after_two(epoch: int, history: History) -> None:
        if epoch == 2:
            model.params["W2"][0, 0] = np.nan  # the next training loss is NaN

    history = fit(model, SGD(0.5), digits, epochs=6, batch_size=64, seed=1, on_epoch=blow_up_after_two)
    assert history.status == "diverged" and history.epochs_done == 2
    assert len(history.val_acc) == len(history.epoch_seconds) == 2
    assert all(np.isfinite(history.train_loss))
    assert history.best_epoch in (1, 2) and history.test_acc is not None  # the finite snapshot is still tested
    assert np.isfinite(model.params["W2"]).all() and np.abs(model.params["W2"]).max() < 1e3


@pytest.mark.parametrize("lr", [1e4, 1e5, 1e6])
@pytest.mark.parametrize("model_class", [TwoLayerNet, SoftmaxRegression])
def test_a_huge_learning_rate_diverges_without_warnings(digits: Dataset, model_class: type[Model], lr: float) -> None:
    model = model_class(input_size=64, seed=1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even when testing a huge pre-divergence snapshot
        history = fit(model, SGD(lr, reg=0.001), digits, epochs=5, batch_size=64, seed=1024)
    assert history.status == "diverged" and history.epochs_done < 5
    assert len(history.train_loss) == history.epochs_done


@pytest.mark.parametrize("model_class", [TwoLayerNet, SoftmaxRegression])
def test_no_overflow_warning_at_learning_rate_one(digits: Dataset, model_class: type[Model]) -> None:
    model = model_class(input_size=64, seed=1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = fit(model, SGD(1.0, reg=0.001), digits, epochs=5, batch_size=64, seed=1024)
        evaluate(model, digits.test, digits.pixel_max)
    assert history.status == "ok"


def test_float64_training(digits: Dataset) -> None:
    config = configs.resolve(CONFIGS / "digits.yaml", ["epochs=2", "dtype=float64"])
    metrics, model = train_run(config, dataset=digits)
    assert model.params["W1"].dtype == np.float64 and metrics["epochs_done"] == 2


@pytest.mark.mnist
@pytest.mark.slow
def test_default_two_layer_config_on_mnist(mnist_dir: Path) -> None:
    config = configs.resolve(CONFIGS / "two_layer.yaml", data_dir=str(mnist_dir))
    assert (config["dataset"], config["type"], config["epochs"]) == ("mnist", "TwoLayerNet", 10)
    hyper = (config["learning_rate"], config["batch_size"], config["reg"], config["hidden_sizes"])
    assert hyper == (0.1, 64, 0.001, [128])
    start = time.perf_counter()
    metrics, _ = train_run(config)
    seconds = time.perf_counter() - start
    assert metrics["status"] == "ok" and metrics["epochs_done"] == 10
    assert metrics["dataset"]["train"] == 48_000 and metrics["dataset"]["test"] == 10_000
    assert metrics["test_acc"] >= 0.915, metrics["test_acc"]
    print(f"MNIST two-layer default: test acc {metrics['test_acc']:.4f} in {seconds:.1f} s")


# ---------------------------------------------------------------- fit_until_memorized


def test_loop_stops_as_soon_as_the_whole_training_split_is_fit(digits: Dataset) -> None:
    model = MLP(64, (128,), seed=0)
    run = fit_until_memorized(model, Adam(0.005), digits, batch_size=128, max_steps=2_000, seed=0)
    per_epoch = math.ceil(len(digits.train) / 128)
    assert run.status == "fit" and run.steps_to_fit == run.steps < 2_000
    assert run.steps == run.epochs * per_epoch and run.epochs_to_fit == run.epochs
    assert run.check_steps == [i * per_epoch for i in range(run.epochs + 1)]
    assert run.check_acc[-1] >= 0.99 > max(run.check_acc[:-1])  # not one pass later than needed
    assert (run.train_loss, run.train_acc) == evaluate(model, digits.train, digits.pixel_max)
    assert (run.test_loss, run.test_acc) == evaluate(model, digits.test, digits.pixel_max)
    assert run.test_acc > 0.9


def test_loop_spends_exactly_the_step_budget_when_it_cannot_fit(digits: Dataset) -> None:
    noisy = corrupt_labels(digits, 1.0, seed=0)
    optimizer = Adam(0.001)
    run = fit_until_memorized(MLP(64, (32,), seed=0), optimizer, noisy, batch_size=128, max_steps=25, seed=0)
    assert run.status == "budget" and run.steps_to_fit is None and run.epochs_to_fit is None
    assert run.steps == 25 and optimizer.t == 25 and len(run.step_loss) == 25
    assert run.check_steps == [0, 9, 18, 25]  # 9 steps per pass, the third cut short by the budget
    assert run.epochs == 3 and run.train_acc == run.check_acc[-1] < 0.99


def test_loop_records_every_steps_loss_and_learns(digits: Dataset) -> None:
    fresh = MLP(64, (64,), seed=1)
    start = evaluate(fresh, digits.train, digits.pixel_max)
    run = fit_until_memorized(fresh, Adam(0.002), digits, batch_size=64, max_steps=60, seed=1)
    assert len(run.step_loss) == run.steps == 60
    assert all(math.isfinite(v) for v in run.step_loss)
    assert (run.check_loss[0], run.check_acc[0]) == start
    assert np.mean(run.step_loss[-10:]) < 0.5 * np.mean(run.step_loss[:10])
    assert run.check_loss == sorted(run.check_loss, reverse=True)


def test_loop_reports_divergence_and_stops(digits: Dataset) -> None:
    run = fit_until_memorized(MLP(64, (32,), seed=0), SGD(1e30), digits, batch_size=64, max_steps=50)
    assert run.status == "diverged" and run.steps < 50 and run.steps_to_fit is None


def test_step_budget_below_one_is_refused(digits: Dataset) -> None:
    with pytest.raises(MlplabError, match="budget"):
        fit_until_memorized(MLP(64, (8,)), Adam(0.01), digits, batch_size=64, max_steps=0)
