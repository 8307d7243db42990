"""MaxPool2D: the max of each non-overlapping window×window block of NHWC images; backward routes to the winner."""

from __future__ import annotations

import numpy as np

from mlplab import convolution as conv
from mlplab.errors import MlplabError
from mlplab.layers.base import Layer, OnnxGraph, Shape


class MaxPool2D(Layer):
    """x (N, H, W, C) → (N, H//w, W//w, C); rows and columns that do not fill a window are dropped, as in PyTorch.

    Max-pooling commutes with any nondecreasing activation, so ReLU may follow it on a quarter of the values.
    """

    def __init__(self, window: int = 2, dtype: str | np.dtype = "float32") -> None:
        if window < 1:
            raise MlplabError(f"a pooling window must be ≥ 1, got {window}")
        super().__init__(dtype)
        self.window = window
        self.argmax: np.ndarray | None = None  # each window's winner, as di·window + dj
        self._argmax: dict[Shape, np.ndarray] = {}
        self.input_shape: Shape = ()

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3 or min(input_shape[:2]) < self.window:
            raise MlplabError(
                f"MaxPool2D({self.window}) takes (H, W, C) images of at least that size, got {input_shape}"
            )
        h, w, c = input_shape
        return conv.pooled_size(h, self.window), conv.pooled_size(w, self.window), c

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        n, h, w, c = x.shape
        shape = (n, *self.output_shape((h, w, c)))
        argmax = self._argmax.get(shape)
        if argmax is None:
            if len(self._argmax) > 16:
                self._argmax.clear()
            argmax = self._argmax[shape] = np.empty(shape, np.uint8 if self.window < 16 else np.int32)
        y = conv.max_pool(x, self.window, self.scratch("y", shape), argmax)
        self.argmax = argmax if train else None
        self.input_shape = x.shape
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        if self.argmax is None:
            raise RuntimeError("MaxPool2D.backward before a training forward pass")
        return conv.max_pool_backward(dy, self.argmax, self.window, self.scratch("dx", self.input_shape))

    def onnx_nodes(self, graph: OnnxGraph, x: str, position: int) -> str:
        """One MaxPool on the NCHW images a convolution left."""
        return graph.node("MaxPool", x, kernel_shape=[self.window] * 2, strides=[self.window] * 2)
