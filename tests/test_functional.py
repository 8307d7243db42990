"""Values and derivatives of the reference formulas in tests/oracles.py (activations, softmax, cross-entropy); its
softmax is mlplab.functional's, the one predict uses."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from mlplab import choices
from mlplab.layers import ACTIVATIONS
from tests import oracles as F

EPS = 1e-6


def central_difference(f, z: np.ndarray) -> np.ndarray:
    """Elementwise derivative of an elementwise f by central differences."""
    return (f(z + EPS) - f(z - EPS)) / (2 * EPS)


def test_softmax_values() -> None:
    z = np.log(np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 1.0, 2.0, 2.0]]))
    np.testing.assert_allclose(F.softmax(z), [[0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.2, 0.2]], rtol=1e-12)


def test_softmax_is_shift_invariant_and_never_overflows() -> None:
    z = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -999.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = F.softmax(z)
        logp = F.log_softmax(z)
    expected = F.softmax(np.array([[1.0, 2.0, 0.0]]))
    np.testing.assert_allclose(p[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(p[1], expected[0][[0, 2, 1]], rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(logp, np.log(p), rtol=1e-12)


def test_log_softmax_stays_finite_where_softmax_underflows() -> None:
    z = np.array([[0.0, -800.0]])
    assert F.softmax(z)[0, 1] == 0.0
    np.testing.assert_allclose(F.log_softmax(z), [[0.0, -800.0]], atol=1e-12)


def test_cross_entropy_values() -> None:
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    assert F.cross_entropy(probs, np.array([2, 1])) == pytest.approx(-(math.log(0.7) + math.log(0.25)) / 2, rel=1e-12)
    uniform = np.full((4, 10), 0.1)
    assert F.cross_entropy(uniform, np.array([0, 3, 9, 5])) == pytest.approx(math.log(10), rel=1e-12)


def test_cross_entropy_of_a_zero_probability_is_large_but_finite() -> None:
    loss = F.cross_entropy(np.array([[1.0, 0.0]]), np.array([1]))
    assert math.isfinite(loss) and loss > 700


def test_softmax_cross_entropy_matches_its_parts_and_its_gradient() -> None:
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    original = logits.copy()
    loss, probs, dlogits = F.softmax_cross_entropy(logits, y)
    np.testing.assert_array_equal(logits, original)  # the input is left alone
    np.testing.assert_allclose(probs, F.softmax(original), rtol=1e-12)
    assert loss == pytest.approx(F.cross_entropy(probs, y), rel=1e-12)
    np.testing.assert_allclose(dlogits, (probs - np.eye(4)[y]) / 5, rtol=1e-12, atol=1e-15)
    numeric = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[i] += EPS
        minus[i] -= EPS
        numeric[i] = (F.softmax_cross_entropy(plus, y)[0] - F.softmax_cross_entropy(minus, y)[0]) / (2 * EPS)
    assert np.linalg.norm(numeric - dlogits) / np.linalg.norm(numeric + dlogits) < 1e-7


def test_softmax_cross_entropy_with_huge_logits() -> None:
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, _, _ = F.softmax_cross_entropy(logits, np.array([1, 2]))
    assert loss == pytest.approx((1e4 + math.log(3)) / 2, rel=1e-12)


def test_activation_values() -> None:
    z = np.array([-2.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(F.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-14)
    np.testing.assert_array_equal(F.relu(z), [0.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(F.tanh(z), np.tanh(z), rtol=1e-15)
    np.testing.assert_allclose(F.softsign(z), [-2 / 3, 0.0, 1 / 3, 0.75], rtol=1e-15)
    assert F.sigmoid(np.array([0.0]))[0] == 0.5


def test_sigmoid_saturates_without_overflow_and_writes_into_out() -> None:
    z = np.array([-1000.0, -50.0, 50.0, 1000.0], np.float32)
    out = np.empty_like(z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = F.sigmoid(z, out=out)
    assert result is out
    np.testing.assert_allclose(out, [0.0, 0.0, 1.0, 1.0], atol=1e-7)
    assert out.dtype == np.float32


def test_every_activation_has_an_oracle() -> None:
    assert tuple(F.ACTIVATIONS) == choices.ACTIVATIONS == tuple(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(F.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name: str) -> None:
    f, derivative = F.ACTIVATIONS[name]
    z = np.array([-3.0, -1.2, -0.3, 0.2, 0.7, 2.5])  # no point within EPS of ReLU's kink
    np.testing.assert_allclose(derivative(z, f(z)), central_difference(f, z), rtol=1e-7, atol=1e-10)


def test_standalone_derivatives() -> None:
    z = np.array([-1.5, 0.4, 2.0])
    np.testing.assert_allclose(F.sigmoid_grad_from_output(F.sigmoid(z)), central_difference(F.sigmoid, z), rtol=1e-7)
    np.testing.assert_allclose(F.tanh_grad_from_output(np.tanh(z)), central_difference(np.tanh, z), rtol=1e-7)
    np.testing.assert_allclose(F.softsign_grad(z), central_difference(F.softsign, z), rtol=1e-7)
    np.testing.assert_array_equal(F.relu_grad(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 1.0])  # subgradient 0 at 0
    assert F.sigmoid_grad_from_output(np.array([0.5]))[0] == 0.25


def test_accuracy() -> None:
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert F.accuracy(scores, np.array([1, 0, 0, 0])) == 0.75
