"""The layer engine: each layer's backward against finite differences, shapes checked along the chain, and the
presets being one network (the Two-Layer Net trains exactly like the equivalent MLP)."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab import gradcheck
from mlplab.data import Dataset, load
from mlplab.errors import MlplabError
from mlplab.layers import ACTIVATIONS, Dense, Dropout, Network, ReLU, Sigmoid, activation
from mlplab.models import MLP, TwoLayerNet
from mlplab.optim import SGD, Adam
from mlplab.training import fit
from tests import oracles as F

RNG = np.random.default_rng(1)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load("digits")


REFERENCE = {"sigmoid": F.sigmoid, "tanh": F.tanh, "relu": F.relu, "softsign": F.softsign}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layers_compute_the_reference_function_and_its_derivative(name: str) -> None:
    layer = activation(name, "float64")
    x = RNG.normal(0, 3, (7, 5))
    x[0, 0] = 0.3  # away from ReLU's kink
    y = layer.forward(x, train=True)
    np.testing.assert_allclose(y, REFERENCE[name](x), rtol=1e-14)
    dy = RNG.normal(size=x.shape)
    dx = layer.backward(dy)
    eps = 1e-6
    numeric = (REFERENCE[name](x + eps) - REFERENCE[name](x - eps)) / (2 * eps)
    np.testing.assert_allclose(dx, dy * numeric, rtol=1e-6, atol=1e-9)


def test_dense_backward_and_the_chain_pass_a_gradient_check() -> None:
    rng = np.random.default_rng(0)
    layers = [Dense(6, 5, rng, dtype="float64"), ReLU("float64"), Dense(5, 4, rng, bias=False, dtype="float64")]
    net = Network(layers, (6,), "float64")
    assert list(net.params) == ["W1", "b1", "W2"] and net.weight_names == ("W1", "W2")
    assert net.params["W1"] is layers[0].params["W"]  # one array, two names: updates are seen by both
    x, y = rng.random((9, 6)), rng.integers(0, 4, 9)
    results = gradcheck.check_gradients(net, x, y, reg=0.1)
    assert max(r.worst_relative_error for r in results) < 1e-6


def test_layers_that_do_not_fit_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(MlplabError, match="Dense takes 5 inputs, got samples of shape"):
        Network([Dense(6, 4, rng), Dense(5, 3, rng)], (6,))
    with pytest.raises(MlplabError, match="computes in float64"):
        Network([Dense(6, 4, rng, dtype="float64")], (6,))


def test_dropout_is_identity_in_evaluation_and_masks_the_gradient_in_training() -> None:
    layer = Dropout(0.5, np.random.default_rng(3), "float64")
    x = RNG.normal(size=(6, 8))
    assert layer.forward(x, train=False) is x
    y = layer.forward(x, train=True)
    assert set(np.unique(layer.mask)) == {0.0, 2.0}
    np.testing.assert_array_equal(y, x * layer.mask)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), layer.mask)


def test_a_training_step_allocates_no_new_work_arrays() -> None:
    model = MLP(12, [16], dropout=0.2, seed=0)
    x, y = RNG.random((8, 12)).astype(np.float32), RNG.integers(0, 10, 8)
    model.train_batch(x, y)
    kept = [dict(layer._scratch) for layer in model.layers]
    model.train_batch(x, y)
    for layer, before in zip(model.layers, kept, strict=True):
        assert layer._scratch.keys() == before.keys()
        assert all(layer._scratch[k] is before[k] for k in before)


@pytest.mark.parametrize("optimizer", [lambda: SGD(0.5, reg=0.001), lambda: Adam(0.01, reg=0.001)])
def test_the_two_layer_preset_trains_exactly_like_the_equivalent_mlp(digits, optimizer) -> None:
    two_layer = TwoLayerNet(input_size=64, hidden_size=32, seed=7)
    mlp = MLP(64, [32], activation="sigmoid", init="assignment", seed=7)
    assert [type(layer) for layer in mlp.layers] == [type(layer) for layer in two_layer.layers]
    assert [type(layer) for layer in two_layer.layers] == [Dense, Sigmoid, Dense]
    histories = [fit(m, optimizer(), digits, epochs=3, batch_size=32, seed=3) for m in (two_layer, mlp)]
    assert histories[0].train_loss == histories[1].train_loss and histories[0].test_acc == histories[1].test_acc
    for name, p in two_layer.params.items():
        np.testing.assert_array_equal(p, mlp.params[name])
