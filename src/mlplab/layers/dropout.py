"""Inverted dropout: in training each unit is kept with probability 1 − p and scaled by 1/(1 − p); eval: identity."""

from __future__ import annotations

import numpy as np

from mlplab import kernels
from mlplab.errors import MlplabError
from mlplab.layers.base import Layer, OnnxGraph


class Dropout(Layer):
    """Masks drawn from `rng` (shared by a network's dropout layers, so a seeded network drops the same units)."""

    def __init__(self, p: float, rng: np.random.Generator, dtype: str | np.dtype = "float32") -> None:
        if not 0.0 <= p < 1.0:
            raise MlplabError(f"dropout must be in [0, 1), got {p}")
        super().__init__(dtype)
        self.p = p
        self.rng = rng
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if not train or self.p == 0:
            self.mask = None
            return x
        mask = self.rng.random(x.shape, dtype=self.dtype, out=self.scratch("mask", x.shape))
        y = self.scratch("y", x.shape)
        t = self.dtype.type
        kernels.dropout(x, mask, t(self.p), t(1.0 / (1.0 - self.p)), y)  # mask: uniforms → 0 or 1/(1 − p)
        self.mask = mask
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        if self.mask is None:
            return dy
        dx: np.ndarray = np.multiply(dy, self.mask, out=self.scratch("dx", dy.shape))
        return dx

    def onnx_nodes(self, graph: OnnxGraph, x: str, position: int) -> str:
        """Inverted dropout is the identity in evaluation: no node."""
        return x
