"""The layer contract: named params and grads, forward(x, train) → y, backward(dy) → dx, reused scratch."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from mlplab.errors import MlplabError

Shape = tuple[int, ...]


class OnnxGraph(Protocol):
    """What a layer writes its ONNX nodes with (`mlplab.export` builds one). Tensors between layers are rows
    (N, features) or NCHW images, ONNX's layout for Conv and MaxPool; mlplab's own images are NHWC."""

    def constant(self, name: str, value: np.ndarray | float) -> str:
        """A float32 initializer called `name` (a parameter's or buffer's global name: W1, running_var2)."""
        ...

    def int_constant(self, value: list[int]) -> str:
        """A fresh int64 initializer (a shape, slice bounds)."""
        ...

    def node(self, op: str, *inputs: str, **attributes: Any) -> str:
        """One `op` node reading `inputs`; returns its output, laid out as its first input."""
        ...

    def images(self, x: str, shape: Shape) -> str:
        """x as NCHW images of one-sample shape (H, W, C): reshaped and transposed when x holds rows."""
        ...

    def rows(self, x: str) -> str:
        """x as rows (N, features) in mlplab's (h, w, c) order: NCHW images transposed back and flattened."""
        ...


MAX_SCRATCH = 64
"""Scratch arrays a layer keeps before dropping them all (batch sizes seen in one run are few)."""


class Layer:
    """One differentiable piece of a network; see the package docstring for the contract."""

    weight_names: tuple[str, ...] = ()
    """Local names of the params that are weight matrices: L2 and weight decay apply to them, never to the rest."""

    def __init__(self, dtype: str | np.dtype = "float32") -> None:
        self.dtype = np.dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._scratch: dict[tuple[str, Shape], np.ndarray] = {}

    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a parameter and a zeroed gradient buffer of its shape (written by every backward)."""
        self.params[name] = np.ascontiguousarray(value, self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])
        return self.params[name]

    def add_buffer(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register state that is not a parameter (BatchNorm's running statistics): saved in model files and
        snapshots, never seen by optimizers, L2 or gradient checks."""
        self.buffers[name] = np.ascontiguousarray(value, self.dtype)
        return self.buffers[name]

    def output_shape(self, input_shape: Shape) -> Shape:
        """The shape of one sample's output for one sample's input shape (no batch axis); default: unchanged."""
        return input_shape

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        """The layer's output for batch `x`; in training, also keep what backward needs."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Write d(loss)/d(param) into `grads` and return d(loss)/dx (None when `need_dx` is false)."""
        raise NotImplementedError

    def backward_sgd(self, dy: np.ndarray, need_dx: bool, lr: float, l2: float) -> np.ndarray | None:
        """backward, then θ ← θ − lr·(g + l2·θ) for weights (l2 = 0 for other params); returns dx.

        The fast path of plain SGD (see `Network.sgd_step`). A layer may fold it into its products (Dense does:
        one GEMM per parameter, no gradient written); this generic version is correct for any layer.
        """
        dx = self.backward(dy, need_dx)
        for name, param in self.params.items():
            if l2 and name in self.weight_names:
                param *= 1.0 - lr * l2
            param -= lr * self.grads[name]
        return dx

    def onnx_nodes(self, graph: OnnxGraph, x: str, position: int) -> str:
        """Add the ONNX nodes of this layer's evaluation-mode forward reading tensor `x`; return the output tensor.

        `position` is the number of the layer's global names (W{position}): its initializers are named so.
        """
        raise MlplabError(f"no ONNX export for a {type(self).__name__} layer")

    def absorbs_input_affine(self, size: int) -> bool:
        """Whether `fold_input_affine` can fold a map of `size` input features into this layer's params."""
        return False

    def fold_input_affine(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """Make the layer take x where it took x·scale + shift (per input feature), by rewriting its params."""
        raise MlplabError(f"a {type(self).__name__} layer cannot absorb an affine map of its inputs")

    def scratch(self, key: str, shape: Shape) -> np.ndarray:
        """A work array of `shape`, kept between calls: a training step allocates nothing of size."""
        buffer = self._scratch.get((key, shape))
        if buffer is None:
            if len(self._scratch) >= MAX_SCRATCH:
                self._scratch.clear()
            buffer = self._scratch[key, shape] = np.empty(shape, self.dtype)
        return buffer

    def ones(self, n: int) -> np.ndarray:
        """An (n, 1) column of ones, kept: 1ᵀ·dy sums dy's rows as one BLAS product (bias gradients)."""
        ones = self._scratch.get(("ones", (n, 1)))
        if ones is None:
            ones = self.scratch("ones", (n, 1))
            ones.fill(1.0)
        return ones
