"""SGD steps worked out by hand: L2 on weight matrices only, plain and with momentum."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab.models import SoftmaxRegression, TwoLayerNet, build_model
from mlplab.optim import SGD


def tiny_net() -> TwoLayerNet:
    """A 2-2-2 net with round-number parameters and gradients."""
    model = TwoLayerNet(input_size=2, hidden_size=2, num_classes=2, dtype="float64")
    model.params["W1"][...] = [[1.0, 2.0], [3.0, 4.0]]
    model.params["b1"][...] = [1.0, -1.0]
    model.params["W2"][...] = [[-1.0, 0.5], [2.0, 0.0]]
    model.params["b2"][...] = [0.0, 3.0]
    model.grads["W1"][...] = [[0.1, 0.2], [0.3, 0.4]]
    model.grads["b1"][...] = [0.2, 0.2]
    model.grads["W2"][...] = [[1.0, -1.0], [0.0, 2.0]]
    model.grads["b2"][...] = [-0.4, 0.4]
    return model


def test_one_sgd_step_by_hand() -> None:
    model = tiny_net()
    SGD(lr=0.5, reg=0.1).step(model)
    # W ← W − lr·(g + reg·W);  b ← b − lr·g (no L2 on biases)
    np.testing.assert_allclose(model.params["W1"], [[0.9, 1.8], [2.7, 3.6]], rtol=1e-15)
    np.testing.assert_allclose(model.params["W2"], [[-1.45, 0.975], [1.9, -1.0]], rtol=1e-15)
    np.testing.assert_allclose(model.params["b1"], [0.9, -1.1], rtol=1e-15)
    np.testing.assert_allclose(model.params["b2"], [0.2, 2.8], rtol=1e-15)


def test_momentum_two_steps_by_hand() -> None:
    model = tiny_net()
    sgd = SGD(lr=0.5, momentum=0.9)
    sgd.step(model)  # v = −0.5·g;  θ = θ + v
    np.testing.assert_allclose(model.params["b1"], [0.9, -1.1], rtol=1e-15)
    model.grads["b1"][...] = [0.4, -0.2]
    model.grads["W1"][...] = 0.0
    sgd.step(model)  # v = 0.9·v − 0.5·g
    np.testing.assert_allclose(model.params["b1"], [0.9 - 0.09 - 0.2, -1.1 - 0.09 + 0.1], rtol=1e-14)
    # A zero gradient leaves W1 moving on its velocity: 0.9 times its first step.
    np.testing.assert_allclose(model.params["W1"], [[0.95 - 0.045, 1.9 - 0.09], [2.85 - 0.135, 3.8 - 0.18]], rtol=1e-14)


def test_step_from_a_real_forward_pass() -> None:
    rng = np.random.default_rng(0)
    model = TwoLayerNet(input_size=6, hidden_size=5, num_classes=10, seed=3, dtype="float64")
    for p in model.params.values():
        p[...] = rng.normal(0.0, 0.5, p.shape)
    x, y = rng.random((8, 6)), rng.integers(0, 10, 8)
    loss_before, _ = model.train_batch(x, y)
    before = model.state()
    grads = {k: g.copy() for k, g in model.grads.items()}
    lr, reg = 0.05, 0.01
    SGD(lr=lr, reg=reg).step(model)
    for name, p in model.params.items():
        decay = reg * before[name] if name in ("W1", "W2") else 0.0
        np.testing.assert_allclose(p, before[name] - lr * (grads[name] + decay), rtol=1e-13, atol=1e-16)
    loss_after, _ = model.evaluate_batch(x, y)
    assert loss_after < loss_before  # a small step down the gradient lowers the loss


def test_huge_reg_shrinks_weights_and_leaves_biases_alone() -> None:
    model = TwoLayerNet(input_size=3, hidden_size=2, num_classes=2, dtype="float64")
    model.params["b1"][...] = [1.0, 2.0]
    weights = model.state()
    for g in model.grads.values():
        g[...] = 0.0
    SGD(lr=0.1, reg=5.0).step(model)
    np.testing.assert_allclose(model.params["W1"], 0.5 * weights["W1"], rtol=1e-15)
    np.testing.assert_array_equal(model.params["b1"], [1.0, 2.0])


def test_no_reg_means_plain_gradient_descent() -> None:
    model = SoftmaxRegression(input_size=2, num_classes=2, dtype="float64")
    model.params["W1"][...] = [[1.0, 2.0], [3.0, 4.0]]
    model.grads["W1"][...] = [[1.0, 1.0], [-1.0, 0.0]]
    SGD(lr=0.25).step(model)
    np.testing.assert_array_equal(model.params["W1"], [[0.75, 1.75], [3.25, 4.0]])
    assert model.grads["W1"].tolist() == [[1.0, 1.0], [-1.0, 0.0]]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_float32_parameters_stay_float32(momentum: float) -> None:
    model = TwoLayerNet(input_size=4, hidden_size=3, num_classes=2)
    x, y = np.ones((2, 4), np.float32), np.array([0, 1])
    model.train_batch(x, y)
    SGD(lr=0.1, reg=0.001, momentum=momentum).step(model)
    assert {p.dtype for p in model.params.values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("name", ["TwoLayerNet", "SoftmaxRegression", "MLP"])
def test_fused_sgd_step_equals_backward_then_step(name: str) -> None:
    # sgd_step folds θ ← (1 − lr·reg)·θ − lr·g into the backward pass's GEMMs; its twin writes every gradient
    # (train_batch) and steps through the optimizer: both must land on the same parameters.
    rng = np.random.default_rng(5)
    fused = build_model(name, input_size=6, hidden_size=5, hidden_sizes=[5, 4], num_classes=10, dtype="float64")
    for p in fused.params.values():
        p[...] = rng.normal(0.0, 0.5, p.shape)
    twin = build_model(name, **fused.hyper)
    twin.load_state(fused.state())
    x, y = rng.random((8, 6)), rng.integers(0, 10, 8)
    before = twin.state()
    lr, reg = 0.05, 0.01
    assert fused.sgd_step(x, y, lr, reg) == twin.train_batch(x, y)
    written = {k: g.copy() for k, g in twin.grads.items()}
    SGD(lr=lr, reg=reg).step(twin)
    for key, p in fused.params.items():
        decay = reg * before[key] if key in fused.weight_names else 0.0
        expected = before[key] - lr * (written[key] + decay)
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(twin.params[key], expected, rtol=1e-12, atol=1e-15)


def test_after_a_fused_step_gradients_are_unreadable_until_the_next_backward() -> None:
    model = TwoLayerNet(input_size=4, hidden_size=3, num_classes=2, dtype="float64")
    x, y = np.ones((2, 4)), np.array([0, 1])
    model.sgd_step(x, y, 0.1)
    assert "W1" in model.grads and list(model.grads) == ["W1", "b1", "W2", "b2"]
    with pytest.raises(RuntimeError, match="no gradient of W1: the last step was a fused sgd_step"):
        model.grads["W1"]
    model.train_batch(x, y)
    assert model.grads["W1"].shape == (4, 3)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_gradients_are_readable_by_every_mapping_method_and_no_step_changes_them(momentum: float) -> None:
    rng = np.random.default_rng(6)
    model = TwoLayerNet(input_size=5, hidden_size=4, num_classes=3, dtype="float64")
    x, y = rng.random((6, 5)), rng.integers(0, 3, 6)
    model.train_batch(x, y)
    grads = model.grads
    assert "W1" in grads and grads.get("W1") is grads["W1"] and set(dict(grads)) == set(model.params)
    copies = {k: g.copy() for k, g in grads.items()}
    assert all(np.array_equal(a, b) for a, b in zip(grads.values(), copies.values(), strict=True))
    SGD(lr=0.1, reg=0.5, momentum=momentum).step(model)
    for key, g in grads.items():
        np.testing.assert_array_equal(g, copies[key])  # L2 went into the optimizer's scratch, not the gradient


def test_a_subclass_update_rule_is_always_called() -> None:
    class Clipped(SGD):
        """SGD whose every step is clipped to ±0.01 per coordinate."""

        def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
            param -= np.clip(self.lr * grad, -0.01, 0.01)

    assert SGD(lr=1.0).fuses_into_backward and not Clipped(lr=1.0).fuses_into_backward
    model = TwoLayerNet(input_size=5, hidden_size=4, num_classes=3, dtype="float64", seed=0)
    before = model.state()
    model.train_batch(np.random.default_rng(0).random((6, 5)) * 100, np.arange(6) % 3)
    Clipped(lr=1.0).step(model)
    for key, p in model.params.items():
        assert np.abs(p - before[key]).max() <= 0.01 + 1e-15
