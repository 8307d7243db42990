"""MLP: hand-written gradients against finite differences, dropout in train vs eval, init scales, training."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab import config as configs
from mlplab import data, gradcheck, optim
from mlplab.errors import MlplabError
from mlplab.models import MLP, Model, build_model
from mlplab.run import train_run
from mlplab.training import batches, evaluate, fit

ACTIVATIONS = ["sigmoid", "tanh", "relu", "softsign"]


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


@pytest.fixture(scope="module")
def batch(digits) -> tuple[np.ndarray, np.ndarray]:
    x, y = next(batches(digits.train, 16, digits.pixel_max, "float64"))
    return x.copy(), y.copy()


def randomized(model: Model, seed: int = 0) -> Model:
    """Every parameter (biases too) drawn at random, so no gradient is trivially zero."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(0, 0.5, p.shape)
    return model


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [[10], [9, 7, 5]])
def test_gradients_match_finite_differences(batch, activation, hidden):
    x, y = batch
    model = randomized(MLP(64, hidden, activation=activation, dtype="float64"))
    results = gradcheck.check_gradients(model, x, y, reg=0.01)
    assert [r.name for r in results] == list(model.params)
    assert len(results) == 2 * (len(hidden) + 1)
    assert max(r.worst_relative_error for r in results) < 1e-6


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradients_with_a_fixed_dropout_mask(batch, activation):
    """Reseeding the model's dropout generator before every pass fixes the mask, so J is differentiable."""
    x, y = batch
    model = randomized(MLP(64, [12, 8], activation=activation, dropout=0.4, dtype="float64"))

    def train_loss() -> float:
        model.dropout_rng = np.random.default_rng(5)
        return model.train_batch(x, y)[0]

    masked_loss = train_loss()
    assert masked_loss != pytest.approx(model.evaluate_batch(x, y)[0])  # the mask really changes J
    analytic = {name: g.copy() for name, g in model.grads.items()}
    rng = np.random.default_rng(0)
    for name, param in model.params.items():
        coords = gradcheck.sample_coords(param.shape, 30, rng)
        numeric = gradcheck.numeric_gradient(train_loss, param, coords)
        picked = np.array([analytic[name][c] for c in coords])
        assert gradcheck.relative_error(picked, numeric).max() < 1e-6, name


def test_dropped_units_pass_no_gradient(batch):
    x, y = batch
    model = randomized(MLP(64, [12], activation="tanh", dropout=0.5, dtype="float64"))
    model.dropout_rng = np.random.default_rng(1)
    model.train_batch(x[:1], y[:1])
    kept = model.layers[2].mask[0] > 0  # Dense, Tanh, Dropout, Dense
    assert 0 < kept.sum() < 12
    assert np.all(model.grads["b1"][~kept] == 0) and np.all(model.grads["W1"][:, ~kept] == 0)
    assert np.all(model.grads["b1"][kept] != 0)
    assert np.all(model.grads["W2"][~kept] == 0)  # a dropped unit's output was 0


def test_dropout_only_in_training(digits):
    x, y = next(batches(digits.val, 64, digits.pixel_max))
    model = MLP(64, [32], dropout=0.5, seed=3)
    eval_losses = {model.evaluate_batch(x, y)[0] for _ in range(3)}
    train_losses = {model.train_batch(x, y)[0] for _ in range(3)}
    assert len(eval_losses) == 1  # eval is deterministic
    assert len(train_losses) == 3  # a new mask every training pass
    assert eval_losses.pop() not in train_losses
    plain = MLP(64, [32], dropout=0.0, seed=3)
    assert plain.train_batch(x, y)[0] == plain.evaluate_batch(x, y)[0]
    np.testing.assert_array_equal(plain.scores(x), model.scores(x))  # same seed, same weights


def dropout_mask(seed: int) -> np.ndarray:
    """The mask a seeded MLP's dropout layer draws in its first training pass over a (400, 250) hidden layer."""
    model = MLP(4, [250], dropout=0.25, seed=seed)
    model.train_batch(np.ones((400, 4), np.float32), np.zeros(400, int))
    return model.layers[2].mask.copy()


def test_dropout_mask_is_inverted_and_seeded():
    mask = dropout_mask(7)
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.75)}
    assert np.mean(mask == 0) == pytest.approx(0.25, abs=0.01)
    assert mask.mean() == pytest.approx(1.0, abs=0.02)  # expected activation unchanged: eval needs no rescaling
    np.testing.assert_array_equal(dropout_mask(7), mask)
    assert not np.array_equal(dropout_mask(8), mask)


@pytest.mark.parametrize(
    ("init", "expected_std"),
    [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / (400 + 300))), ("assignment", 0.001)],
)
def test_init_scales(init, expected_std):
    model = MLP(400, [300], init=init, seed=0)
    assert model.params["W1"].std() == pytest.approx(expected_std, rel=0.02)
    assert model.params["W1"].mean() == pytest.approx(0, abs=0.05 * expected_std)
    assert not model.params["b1"].any()


def test_shapes_names_and_weight_names():
    model = MLP(20, [16, 8, 4], num_classes=3)
    shapes = {name: p.shape for name, p in model.params.items()}
    assert shapes == {
        "W1": (20, 16),
        "b1": (16,),
        "W2": (16, 8),
        "b2": (8,),
        "W3": (8, 4),
        "b3": (4,),
        "W4": (4, 3),
        "b4": (3,),
    }
    assert model.weight_names == ("W1", "W2", "W3", "W4")
    assert all(p.dtype == np.float32 for p in model.params.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activation": "gelu"}, "activation"),
        ({"init": "lecun"}, "init"),
        ({"dropout": 1.0}, "dropout"),
        ({"hidden_sizes": [8, 0]}, "hidden"),
    ],
)
def test_bad_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(MlplabError, match=message):
        MLP(8, **{"hidden_sizes": [4], **kwargs})


def test_save_load_round_trip(tmp_path, batch):
    x, _ = batch
    model = MLP(64, [12, 6], activation="tanh", init="xavier", dropout=0.3, seed=2)
    model.save(tmp_path / "m.npz", dataset="digits")
    loaded, meta = Model.load(tmp_path / "m.npz")
    assert isinstance(loaded, MLP) and meta == {"dataset": "digits"}
    assert loaded.hyper == model.hyper and loaded.dropout == 0.3
    np.testing.assert_array_equal(loaded.scores(x.astype(np.float32)), model.scores(x.astype(np.float32)))


def test_built_by_alias_and_from_config():
    model = build_model("mlp", input_size=64, hidden_sizes=[5, 4], hidden_size=99, momentum=0.9, activation="tanh")
    assert [p.shape for p in model.params.values()][:4] == [(64, 5), (5,), (5, 4), (4,)]
    config = configs.resolve(None, ["type=mlp", "hidden_sizes=[32, 16]", "dropout=0.2", "init=xavier"])
    assert config["type"] == "MLP" and config["hidden_sizes"] == [32, 16]


@pytest.mark.parametrize("bad", ["hidden_sizes=[]", "hidden_sizes=[0]", "hidden_sizes=12", "activation=elu"])
def test_bad_config_values_are_refused(bad):
    with pytest.raises(MlplabError, match=bad.split("=")[0]):
        configs.resolve(None, [bad])


@pytest.mark.parametrize(
    ("optimizer", "lr"),
    [(optim.SGD(0.1, momentum=0.9, nesterov=True), 0.1), (optim.Adam(0.003), 0.003), (optim.AdamW(0.003), 0.003)],
)
def test_trains_on_digits(digits, optimizer, lr):
    model = MLP(64, [64], seed=0)
    history = fit(model, optimizer, digits, epochs=8, batch_size=32, seed=0)
    assert history.status == "ok" and optimizer.lr == lr
    assert history.train_loss[-1] < 0.3 * history.train_loss[0]
    assert history.best_val_acc >= 0.95
    assert history.test_acc == pytest.approx(evaluate(model, digits.test, digits.pixel_max)[1])
    assert history.test_acc >= 0.93


def test_same_seed_same_numbers(digits):
    config = configs.resolve(None, ["type=MLP", "hidden_sizes=[24]", "dropout=0.3", "epochs=3", "optimizer=adam"])
    config["learning_rate"] = 0.003
    first, _ = train_run(config, dataset=digits)
    second, _ = train_run(config, dataset=digits)
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_acc"):
        assert first[key] == second[key]
    config["seed"] += 1
    assert train_run(config, dataset=digits)[0]["train_loss"] != first["train_loss"]
