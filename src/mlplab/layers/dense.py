"""Dense (fully connected): y = x·W + b, W of shape (inputs, units); the bias is optional."""

from __future__ import annotations

import numpy as np

from mlplab.blas import gemm
from mlplab.choices import INITS as INITS
from mlplab.errors import MlplabError
from mlplab.layers.base import Layer, OnnxGraph, Shape


def initial_weight(rng: np.random.Generator, fan_in: int, fan_out: int, init: str) -> np.ndarray:
    """He: N(0, 2/fan_in), suits ReLU; Xavier (Glorot): N(0, 2/(fan_in+fan_out)); assignment: 0.001·N(0, 1)."""
    if init not in INITS:
        raise MlplabError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    std = 0.001 if init == "assignment" else np.sqrt(2.0 / fan_in if init == "he" else 2.0 / (fan_in + fan_out))
    weights: np.ndarray = std * rng.standard_normal((fan_in, fan_out))
    return weights


class Dense(Layer):
    """x (N, inputs) → x·W + b (N, units); params W (and b unless `bias=False`), W being the weight matrix."""

    weight_names = ("W",)

    def __init__(
        self,
        inputs: int,
        units: int,
        rng: np.random.Generator,
        init: str = "he",
        bias: bool = True,
        dtype: str | np.dtype = "float32",
    ) -> None:
        super().__init__(dtype)
        self.W = self.add_param("W", initial_weight(rng, inputs, units, init))
        self.b = self.add_param("b", np.zeros(units)) if bias else None
        self.x: np.ndarray | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        if input_shape != self.W.shape[:1]:
            raise MlplabError(f"Dense takes {self.W.shape[0]} inputs, got samples of shape {input_shape}")
        return self.W.shape[1:]

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if train:
            self.x = x
        y = self.scratch("y", (len(x), self.W.shape[1]))
        if self.b is None:
            return gemm(x, self.W, out=y)
        np.copyto(y, self.b)  # the GEMM adds x·W to the bias rows (beta = 1): no pass of its own for b
        return gemm(x, self.W, out=y, beta=1.0)

    def _dx(self, dy: np.ndarray) -> np.ndarray:
        return gemm(dy, self.W.T, out=self.scratch("dx", (len(dy), self.W.shape[0])))

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        gemm(self._input().T, dy, out=self.grads["W"])
        if self.b is not None:
            gemm(self.ones(len(dy)).T, dy, out=self.grads["b"])  # 1ᵀ·dy: the column sums, by BLAS
        return self._dx(dy) if need_dx else None

    def backward_sgd(self, dy: np.ndarray, need_dx: bool, lr: float, l2: float) -> np.ndarray | None:
        # dx first: it needs the weights before this step. Then W ← (1 − lr·l2)·W − lr·xᵀ·dy in one GEMM.
        dx = self._dx(dy) if need_dx else None
        gemm(self._input().T, dy, out=self.W, alpha=-lr, beta=1.0 - lr * l2)
        if self.b is not None:
            gemm(self.ones(len(dy)).T, dy, out=self.b, alpha=-lr, beta=1.0)
        return dx

    def _input(self) -> np.ndarray:
        if self.x is None:
            raise RuntimeError("Dense.backward before a training forward pass")
        return self.x

    def onnx_nodes(self, graph: OnnxGraph, x: str, position: int) -> str:
        """x·W + b as one Gemm (a MatMul without bias)."""
        w = graph.constant(f"W{position}", self.W)
        if self.b is None:
            return graph.node("MatMul", x, w)
        return graph.node("Gemm", x, w, graph.constant(f"b{position}", self.b))

    def absorbs_input_affine(self, size: int) -> bool:
        return self.b is not None and self.W.shape[0] == size

    def fold_input_affine(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """(x·s + t)·W + b = x·(s·W) + (b + t·W), computed in float64 (the bias is what makes it possible)."""
        if self.b is None or not self.absorbs_input_affine(len(scale)):
            super().fold_input_affine(scale, shift)
            return
        weight = self.W.astype(np.float64)
        self.b[...] = self.b + np.asarray(shift, np.float64) @ weight
        self.W[...] = np.asarray(scale, np.float64)[:, None] * weight
