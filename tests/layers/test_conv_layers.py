"""Conv2D, MaxPool2D and Flatten layers: every gradient against central finite differences, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab.convolution import ConvGeometry
from mlplab.errors import MlplabError
from mlplab.gradcheck import numeric_gradient
from mlplab.layers.base import Layer
from mlplab.layers.conv2d import Conv2D
from mlplab.layers.flatten import Flatten
from mlplab.layers.max_pool import MaxPool2D

EPS = 1e-6


def numeric(f, array: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f() w.r.t. every coordinate of `array`."""
    return numeric_gradient(f, array, list(np.ndindex(array.shape)), EPS).reshape(array.shape)


def check_layer(layer: Layer, x: np.ndarray, seed: int = 0) -> None:
    """L = Σ dy·layer(x): backward's dx and parameter gradients must match finite differences of L."""
    dy = np.random.default_rng(seed).normal(size=layer.forward(x, train=True).shape)

    def loss() -> float:
        return float(np.sum(dy * layer.forward(x, train=False)))

    layer.forward(x, train=True)
    dx = layer.backward(dy, need_dx=True)
    analytic = {name: g.copy() for name, g in layer.grads.items()}
    np.testing.assert_allclose(dx, numeric(loss, x), rtol=1e-6, atol=1e-8)
    for name, param in layer.params.items():
        np.testing.assert_allclose(analytic[name], numeric(loss, param), rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("mode", ["zeros", "circular"])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 1, 1), (3, 2, 1), (2, 1, 0), (5, 2, 2), (1, 1, 0)])
def test_conv2d_gradients(kernel: int, stride: int, padding: int, mode: str) -> None:
    rng = np.random.default_rng(1)
    layer = Conv2D(ConvGeometry(6, 5, 2, kernel, stride, padding, mode), 3, rng, dtype="float64")
    layer.b[...] = rng.normal(size=3)
    check_layer(layer, rng.normal(size=(2, 6, 5, 2)))


def test_conv2d_takes_flat_rows_and_skips_dx_when_not_needed() -> None:
    rng = np.random.default_rng(2)
    layer = Conv2D(ConvGeometry(4, 4, 1, 3, 1, 1), 2, rng, dtype="float64")
    assert layer.output_shape((16,)) == (4, 4, 2)
    rows = rng.normal(size=(3, 16))
    y = layer.forward(rows, train=True)
    assert y.shape == (3, 4, 4, 2)
    np.testing.assert_array_equal(y, layer.forward(rows.reshape(3, 4, 4, 1), train=True))
    assert layer.backward(np.ones_like(y), need_dx=False) is None
    np.testing.assert_allclose(layer.grads["b"], [48.0, 48.0])
    with pytest.raises(MlplabError, match="takes 4×4×1 images"):
        layer.output_shape((15,))


def test_conv2d_without_bias_is_the_product_alone() -> None:
    geometry = ConvGeometry(5, 5, 2, 3, 1, 1, "circular")
    plain = Conv2D(geometry, 3, np.random.default_rng(0), dtype="float64", bias=False)
    biased = Conv2D(geometry, 3, np.random.default_rng(0), dtype="float64")
    assert list(plain.params) == ["W"] and plain.b is None and plain.weight_names == ("W",)
    x = np.random.default_rng(4).normal(size=(2, 5, 5, 2))
    np.testing.assert_allclose(plain.forward(x, train=False), biased.forward(x, train=False), rtol=1e-14)
    check_layer(plain, x)


def test_max_pool_gradients_and_shape() -> None:
    rng = np.random.default_rng(3)
    layer = MaxPool2D(2, dtype="float64")
    assert layer.output_shape((7, 6, 3)) == (3, 3, 3)
    check_layer(layer, rng.normal(size=(2, 7, 6, 3)))
    with pytest.raises(MlplabError, match="MaxPool2D"):
        layer.output_shape((1, 5, 3))


def test_flatten_is_a_view_and_backward_restores_the_shape() -> None:
    layer = Flatten(dtype="float64")
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    y = layer.forward(x, train=True)
    assert y.shape == (2, 12) and np.shares_memory(x, y)
    assert layer.output_shape((3, 2, 2)) == (12,)
    np.testing.assert_array_equal(layer.backward(y), x)
