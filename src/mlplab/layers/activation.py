"""Elementwise activations; each backward reads only the layer's own output y, so the input is never kept."""

from __future__ import annotations

import numpy as np

from mlplab import choices, kernels
from mlplab.errors import MlplabError
from mlplab.layers.base import Layer, OnnxGraph


class Activation(Layer):
    """y = f(x) elementwise; dx = dy · f'(x), with f' written in terms of y.

    Forward passes stay NumPy calls (its tanh is vectorized; a compiled loop calls the scalar libm one); the
    backward passes that NumPy needs several calls for are one compiled pass.
    """

    onnx_op = ""
    """The ONNX operator computing f."""

    def __init__(self, dtype: str | np.dtype = "float32") -> None:
        super().__init__(dtype)
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        y = self.apply(x, self.scratch("y", x.shape))
        if train:
            self.y = y
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        if self.y is None:
            raise RuntimeError(f"{type(self).__name__}.backward before a training forward pass")
        return self.apply_grad(dy, self.y, self.scratch("dx", dy.shape))

    def apply(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out ← f(x)."""
        raise NotImplementedError

    def apply_grad(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out ← dy · f'(x), given y = f(x)."""
        raise NotImplementedError

    def onnx_nodes(self, graph: OnnxGraph, x: str, position: int) -> str:
        """The ONNX operator of the same name: Relu, Sigmoid, Tanh, Softsign."""
        return graph.node(self.onnx_op, x)


class ReLU(Activation):
    """max(x, 0); f' = 1 where y > 0, else 0 (the subgradient 0 at x = 0)."""

    onnx_op = "Relu"

    def apply(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.maximum(x, 0, out=out)
        return out

    def apply_grad(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        kernels.relu_grad(dy, y, out)
        return out


class Sigmoid(Activation):
    """σ(x) = ½ + ½·tanh(x/2) (overflow-free); f' = σ − σ²."""

    onnx_op = "Sigmoid"

    def apply(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.multiply(x, 0.5, out=out)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out

    def apply_grad(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        kernels.sigmoid_grad(dy, y, out)
        return out


class Tanh(Activation):
    """tanh(x); f' = 1 − y²."""

    onnx_op = "Tanh"

    def apply(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.tanh(x, out=out)
        return out

    def apply_grad(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.multiply(y, y, out=out)
        np.subtract(1.0, out, out=out)
        out *= dy
        return out


class Softsign(Activation):
    """x / (1 + |x|); f' = 1/(1 + |x|)² = (1 − |y|)²."""

    onnx_op = "Softsign"

    def apply(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.abs(x, out=out)
        out += 1.0
        np.divide(x, out, out=out)
        return out

    def apply_grad(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.abs(y, out=out)
        np.subtract(1.0, out, out=out)
        out *= out
        out *= dy
        return out


ACTIVATIONS: dict[str, type[Activation]] = dict(zip(choices.ACTIVATIONS, (Sigmoid, Tanh, ReLU, Softsign), strict=True))
"""The one activation registry: name (`choices.ACTIVATIONS`, in that order) → layer class."""


def activation(name: str, dtype: str | np.dtype = "float32") -> Activation:
    """The activation layer called `name` (sigmoid, tanh, relu, softsign)."""
    if name not in ACTIVATIONS:
        raise MlplabError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](dtype)
