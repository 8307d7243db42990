"""Flatten: (N, H, W, C) images to (N, H·W·C) rows for a dense head, as views (nothing copied)."""

from __future__ import annotations

import math

import numpy as np

from mlplab.layers.base import Layer, OnnxGraph, Shape


class Flatten(Layer):
    """Each sample's array as one row, in its memory order (for NHWC: (h, w, c)); backward reshapes back."""

    def __init__(self, dtype: str | np.dtype = "float32") -> None:
        super().__init__(dtype)
        self.input_shape: Shape = ()

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.input_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy.reshape(self.input_shape) if need_dx else None

    def onnx_nodes(self, graph: OnnxGraph, x: str, position: int) -> str:
        """NCHW images back to mlplab's (h, w, c) order, then flattened."""
        return graph.rows(x)
