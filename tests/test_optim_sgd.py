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
    loss_before, _ = model.forward(x, y, mode="train")
    before = model.state()
    grads = {k: g.copy() for k, g in model.grads.items()}
    lr, reg = 0.05, 0.01
    SGD(lr=lr, reg=reg).step(model)
    for name, p in model.params.items():
        decay = reg * before[name] if name in ("W1", "W2") else 0.0
        np.testing.assert_allclose(p, before[name] - lr * (grads[name] + decay), rtol=1e-13, atol=1e-16)
    loss_after, _ = model.forward(x, y, mode="eval")
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
    model.forward(x, y, mode="train")
    SGD(lr=0.1, reg=0.001, momentum=momentum).step(model)
    assert {p.dtype for p in model.params.values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("name", ["TwoLayerNet", "SoftmaxRegression", "MLP"])
def test_fused_step_on_factored_gradients_equals_the_written_out_step(name: str) -> None:
    # One model steps straight from the factors the forward pass kept (one GEMM per parameter); its twin reads
    # every gradient first (multiplying them out) and so takes the plain θ ← (1 − lr·reg)·θ − lr·g path.
    rng = np.random.default_rng(5)
    fused = build_model(name, input_size=6, hidden_size=5, hidden_sizes=[5, 4], num_classes=10, dtype="float64")
    for p in fused.params.values():
        p[...] = rng.normal(0.0, 0.5, p.shape)
    twin = build_model(name, **fused.hyper)
    twin.load_state(fused.state())
    x, y = rng.random((8, 6)), rng.integers(0, 10, 8)
    for model in (fused, twin):
        model.forward(x, y, mode="train")
    written = {k: g.copy() for k, g in twin.grads.items()}
    before = twin.state()
    lr, reg = 0.05, 0.01
    SGD(lr=lr, reg=reg).step(fused)
    SGD(lr=lr, reg=reg).step(twin)
    for key, p in fused.params.items():
        decay = reg * before[key] if key in fused.weight_names else 0.0
        expected = before[key] - lr * (written[key] + decay)
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(twin.params[key], expected, rtol=1e-12, atol=1e-15)


def test_a_gradient_applied_from_its_factors_cannot_be_read_afterwards() -> None:
    model = TwoLayerNet(input_size=4, hidden_size=3, num_classes=2, dtype="float64")
    x, y = np.ones((2, 4)), np.array([0, 1])
    model.forward(x, y, mode="train")
    SGD(lr=0.1).step(model)
    with pytest.raises(RuntimeError, match="W1 went straight into the weights"):
        model.grads["W1"]
    model.forward(x, y, mode="train")  # a new training pass makes every gradient readable again
    assert model.grads["W1"].shape == (4, 3)


@pytest.mark.parametrize("between", ["forward", "scores"])
def test_gradients_left_factored_survive_an_evaluation_pass(between: str) -> None:
    # forward(eval) and scores reuse the buffers the factors point into, so they multiply them out first.
    rng = np.random.default_rng(6)
    model = TwoLayerNet(input_size=5, hidden_size=4, num_classes=3, dtype="float64")
    for p in model.params.values():
        p[...] = rng.normal(0.0, 0.5, p.shape)
    twin = TwoLayerNet(input_size=5, hidden_size=4, num_classes=3, dtype="float64")
    twin.load_state(model.state())
    x, y = rng.random((6, 5)), rng.integers(0, 3, 6)
    model.forward(x, y, mode="train")
    other = rng.random((6, 5))  # same batch size: same scratch buffers
    model.forward(other, y, mode="eval") if between == "forward" else model.scores(other)
    twin.forward(x, y, mode="train")
    for key in model.params:
        np.testing.assert_array_equal(model.grads[key], twin.grads[key])
