"""The assignment models: gradients against finite differences, their exact semantics, and pickle-free files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlplab import gradcheck
from mlplab.errors import MlplabError
from mlplab.models import Model, SoftmaxRegression, TwoLayerNet, build_model, model_class
from tests import oracles as F

EPS = 1e-5  # small enough not to cross a ReLU kink at the 0.001·N(0,1) init, large enough for float64 round-off


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def numeric_gradient(objective, param: np.ndarray) -> np.ndarray:
    """Central finite differences of objective() with respect to every entry of `param`."""
    coords = list(np.ndindex(param.shape))
    return gradcheck.numeric_gradient(objective, param, coords, EPS).reshape(param.shape)


def small_model(name: str, seed: int = 5) -> Model:
    return build_model(name, input_size=12, hidden_size=7, num_classes=10, seed=seed, dtype="float64")


def batch(n: int = 6, d: int = 12, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, d)), rng.integers(0, 10, n)


@pytest.mark.parametrize("init", ["assignment", "spread"])
@pytest.mark.parametrize("name", ["SoftmaxRegression", "TwoLayerNet"])
def test_gradients_match_central_differences(name: str, init: str) -> None:
    model = small_model(name)
    if init == "spread":  # weights like a trained network's, where every unit is far from saturation and zero
        rng = np.random.default_rng(11)
        for p in model.params.values():
            p[...] = rng.normal(0.0, 0.5, p.shape)
    x, y = batch()
    model.train_batch(x, y)
    analytic = {k: g.copy() for k, g in model.grads.items()}
    assert all(np.abs(g).max() > 0 for g in analytic.values())
    for param_name, param in model.params.items():
        numeric = numeric_gradient(lambda: model.evaluate_batch(x, y)[0], param)
        assert rel_error(analytic[param_name], numeric) < 1e-6, param_name


@pytest.mark.parametrize("name", ["SoftmaxRegression", "TwoLayerNet"])
def test_gradient_of_the_regularized_objective(name: str) -> None:
    """grads + reg·W on weights only (what the optimizer adds) is the gradient of J = CE + reg/2·Σ‖W‖²."""
    model, reg = small_model(name), 0.3
    rng = np.random.default_rng(2)
    for p in model.params.values():
        p[...] = rng.normal(0.0, 0.5, p.shape)
    x, y = batch()
    model.train_batch(x, y)
    for param_name, param in model.params.items():
        full = model.grads[param_name] + (reg * param if param_name in model.weight_names else 0.0)
        numeric = numeric_gradient(lambda: model.evaluate_batch(x, y)[0] + model.regularization(reg), param)
        assert rel_error(full, numeric) < 1e-6, param_name


@pytest.mark.parametrize("name", ["SoftmaxRegression", "TwoLayerNet"])
def test_train_and_eval_modes_agree(name: str) -> None:
    model = small_model(name)
    rng = np.random.default_rng(1)
    for p in model.params.values():
        p[...] = rng.normal(0.0, 0.5, p.shape)
    x, y = batch(n=40)
    before = {k: g.copy() for k, g in model.grads.items()}
    eval_loss, eval_acc = model.evaluate_batch(x, y)
    assert all(np.array_equal(before[k], model.grads[k]) for k in before)  # eval leaves the gradients alone
    train_loss, train_acc = model.train_batch(x, y)
    assert train_loss == pytest.approx(eval_loss, rel=1e-12)
    assert train_acc == eval_acc == F.accuracy(model.scores(x), y)


def test_softmax_regression_is_relu_then_softmax_without_bias() -> None:
    model = small_model("SoftmaxRegression")
    assert set(model.params) == {"W1"} and model.weight_names == ("W1",)
    rng = np.random.default_rng(4)
    model.params["W1"][...] = rng.normal(0.0, 1.0, (12, 10))
    x, y = batch()
    z = x @ model.params["W1"]
    assert (z < 0).any()  # so the ReLU matters
    loss, _ = model.evaluate_batch(x, y)
    assert loss == pytest.approx(F.cross_entropy(F.softmax(np.maximum(z, 0)), y), rel=1e-12)
    assert loss != pytest.approx(F.cross_entropy(F.softmax(z), y), rel=1e-3)
    np.testing.assert_allclose(model.scores(x), np.maximum(z, 0), rtol=1e-12)
    assert model.scores(np.zeros((1, 12))).tolist() == [[0.0] * 10]  # no bias


def test_two_layer_net_is_sigmoid_hidden_layer_then_softmax() -> None:
    model = small_model("TwoLayerNet")
    rng = np.random.default_rng(4)
    for p in model.params.values():
        p[...] = rng.normal(0.0, 1.0, p.shape)
    p = model.params
    x, y = batch()
    logits = (1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))) @ p["W2"] + p["b2"]
    loss, acc = model.evaluate_batch(x, y)
    assert loss == pytest.approx(F.cross_entropy(F.softmax(logits), y), rel=1e-12)
    assert acc == F.accuracy(logits, y)
    np.testing.assert_allclose(model.scores(x), logits, rtol=1e-12)


def test_two_layer_net_init() -> None:
    model = TwoLayerNet(input_size=20, hidden_size=8, num_classes=10, seed=42)
    rng = np.random.default_rng(42)
    expected_w1 = 0.001 * rng.standard_normal((20, 8))
    expected_w2 = 0.001 * rng.standard_normal((8, 10))
    np.testing.assert_array_equal(model.params["W1"], expected_w1.astype(np.float32))
    np.testing.assert_array_equal(model.params["W2"], expected_w2.astype(np.float32))
    assert not model.params["b1"].any() and not model.params["b2"].any()
    assert model.params["b1"].shape == (8,) and model.params["b2"].shape == (10,)
    assert {p.dtype for p in model.params.values()} == {np.dtype(np.float32)}
    assert model.weight_names == ("W1", "W2")
    same = TwoLayerNet(input_size=20, hidden_size=8, seed=42)
    other = TwoLayerNet(input_size=20, hidden_size=8, seed=43)
    assert np.array_equal(same.params["W1"], model.params["W1"])
    assert not np.array_equal(other.params["W1"], model.params["W1"])
    x, y = batch(n=50, d=20)
    assert model.evaluate_batch(x, y)[0] == pytest.approx(np.log(10), abs=1e-3)  # tiny weights: uniform


def test_softmax_regression_init() -> None:
    model = SoftmaxRegression(input_size=20, seed=7)
    expected = (0.001 * np.random.default_rng(7).standard_normal((20, 10))).astype(np.float32)
    np.testing.assert_array_equal(model.params["W1"], expected)


def test_regularization_counts_weights_never_biases() -> None:
    model = small_model("TwoLayerNet")
    p = model.params
    expected = 0.5 * 0.2 * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
    assert model.regularization(0.2) == pytest.approx(expected, rel=1e-12)
    p["b1"] += 5.0
    p["b2"] -= 3.0
    assert model.regularization(0.2) == pytest.approx(expected, rel=1e-12)


def test_state_is_a_copy_and_load_state_restores_it() -> None:
    model = small_model("TwoLayerNet")
    state = model.state()
    model.params["W1"] += 1.0
    assert not np.array_equal(state["W1"], model.params["W1"])
    w1 = model.params["W1"]
    model.load_state(state)
    assert model.params["W1"] is w1  # restored in place: optimizers keep their references
    np.testing.assert_array_equal(model.params["W1"], state["W1"])


def test_model_class_aliases_and_unknown_type() -> None:
    assert model_class("softmax") is SoftmaxRegression
    assert model_class("two_layer") is TwoLayerNet
    assert model_class("TwoLayerNet") is TwoLayerNet
    assert Model.registry["SoftmaxRegression"] is SoftmaxRegression
    with pytest.raises(MlplabError, match=r"unknown model type 'ThreeLayerNet'; choose one of .*TwoLayerNet"):
        model_class("ThreeLayerNet")


def test_build_model_passes_only_accepted_hyperparameters() -> None:
    model = build_model("SoftmaxRegression", input_size=5, hidden_size=99, learning_rate=0.1, seed=1)
    assert model.params["W1"].shape == (5, 10)
    assert model.hyper == {"input_size": 5, "num_classes": 10, "seed": 1, "dtype": "float32"}


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("name", ["SoftmaxRegression", "TwoLayerNet"])
def test_save_load_round_trip_without_pickle(tmp_path: Path, name: str) -> None:
    model = small_model(name, seed=9)
    for p in model.params.values():
        p += 0.25  # not the init a fresh model would have
    path = tmp_path / "model.npz"
    model.save(path, dataset="digits", best_epoch=3)
    with np.load(path, allow_pickle=False) as archive:  # every entry readable without pickle
        contents = {key: archive[key] for key in archive.files}
    assert all(a.dtype != object for a in contents.values())
    header = json.loads(str(contents["__header__"]))
    assert header["model"] == name and header["meta"] == {"dataset": "digits", "best_epoch": 3}
    loaded, meta = Model.load(path)
    assert type(loaded) is type(model) and meta == {"dataset": "digits", "best_epoch": 3}
    assert loaded.hyper == model.hyper
    for key, p in model.params.items():
        np.testing.assert_array_equal(loaded.params[key], p)
        assert loaded.params[key].dtype == p.dtype
    x, y = batch()
    assert loaded.evaluate_batch(x, y) == model.evaluate_batch(x, y)
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, no leftovers


def write_npz(path: Path, header: dict | None, **arrays: np.ndarray) -> Path:
    extra = {"__header__": np.array(json.dumps(header))} if header is not None else {}
    np.savez(path, **extra, **arrays)
    return path


TWO_LAYER = {"format": 1, "model": "TwoLayerNet", "hyper": {"input_size": 4, "hidden_size": 3}, "meta": {}}
GOOD_PARAMS = {
    "param/W1": np.zeros((4, 3)),
    "param/b1": np.zeros(3),
    "param/W2": np.zeros((3, 10)),
    "param/b2": np.zeros(10),
}


def bad_model_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "model.npz"
    if case == "garbage bytes":
        path.write_bytes(b"this is not a zip archive at all")
    elif case == "empty file":
        path.write_bytes(b"")
    elif case == "no header":
        write_npz(path, None, **GOOD_PARAMS)
    elif case == "header not json":
        np.savez(path, __header__=np.array("{not json"), **GOOD_PARAMS)
    elif case == "pickled object":
        np.savez(path, __header__=np.array([{"model": "TwoLayerNet"}], dtype=object), **GOOD_PARAMS)
    elif case == "unknown model":
        write_npz(path, {**TWO_LAYER, "model": "Transformer"}, **GOOD_PARAMS)
    elif case == "missing parameter":
        write_npz(path, TWO_LAYER, **{k: v for k, v in GOOD_PARAMS.items() if k != "param/b2"})
    elif case == "wrong shape":
        write_npz(path, TWO_LAYER, **{**GOOD_PARAMS, "param/W1": np.zeros((5, 3))})
    elif case == "missing file":
        pass
    return path


BAD_MODEL_FILES = {
    "garbage bytes": "not an mlplab model file",
    "empty file": "not an mlplab model file",
    "no header": "not an mlplab model file (KeyError",
    "header not json": "not an mlplab model file (JSONDecodeError",
    "pickled object": "not an mlplab model file (it holds pickled objects)",
    "unknown model": "unknown model type 'Transformer'",
    "missing parameter": "parameters ['W1', 'W2', 'b1'] do not match TwoLayerNet",
    "wrong shape": "parameter W1 has shape (5, 3), expected (4, 3)",
    "missing file": "no such model file",
}


@pytest.mark.parametrize("case", BAD_MODEL_FILES)
def test_bad_model_files(tmp_path: Path, case: str) -> None:
    path = bad_model_file(tmp_path, case)
    with pytest.raises(MlplabError) as info:
        Model.load(path)
    assert BAD_MODEL_FILES[case] in str(info.value)
