"""Conv2D: a square-kernel convolution of NHWC images as im2col + one GEMM, with zero or circular padding."""

from __future__ import annotations

import math

import numpy as np

from mlplab import convolution as conv
from mlplab.blas import gemm
from mlplab.errors import MlplabError
from mlplab.layers.base import Layer, OnnxGraph, Shape


class Conv2D(Layer):
    """x (N, H, W, C), or (N, H·W·C) rows of the same images → (N, Ho, Wo, F); params W (k·k·C, F) and b (F,)
    unless `bias=False` (as before a BatchNorm, whose β takes the bias's place).

    W's rows are in (ki, kj, c) order, the order of an im2col row; a filter is a column. Like PyTorch's Conv2d it
    computes a cross-correlation (the kernel is not flipped). He init N(0, 2/(k·k·C)).
    """

    weight_names = ("W",)

    def __init__(
        self,
        geometry: conv.ConvGeometry,
        filters: int,
        rng: np.random.Generator,
        dtype: str | np.dtype = "float32",
        bias: bool = True,
    ) -> None:
        if filters < 1:
            raise MlplabError(f"a convolution needs ≥ 1 filters, got {filters}")
        super().__init__(dtype)
        self.geometry = geometry
        std = math.sqrt(2.0 / geometry.patch)
        self.W = self.add_param("W", std * rng.standard_normal((geometry.patch, filters)))
        self.b = self.add_param("b", np.zeros(filters)) if bias else None
        self.cols: np.ndarray | None = None

    @property
    def filters(self) -> int:
        return int(self.W.shape[1])

    def output_shape(self, input_shape: Shape) -> Shape:
        g = self.geometry
        image = (g.height, g.width, g.channels)
        if tuple(input_shape) != image and tuple(input_shape) != (math.prod(image),):
            raise MlplabError(f"Conv2D takes {g.height}×{g.width}×{g.channels} images, got samples of {input_shape}")
        return g.out_height, g.out_width, self.filters

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        g, n = self.geometry, len(x)
        images = x.reshape(n, g.height, g.width, g.channels)
        padded = conv.pad(images, g, self.scratch("padded", (n, g.padded_height, g.padded_width, g.channels)))
        cols = conv.im2col(padded, g, self.scratch("cols", (n * g.out_height * g.out_width, g.patch)))
        self.cols = cols if train else None
        y = self.scratch("y", (len(cols), self.filters))
        if self.b is None:
            gemm(cols, self.W, out=y)
        else:
            np.copyto(y, self.b)  # the GEMM adds cols·W to the bias rows (beta = 1)
            gemm(cols, self.W, out=y, beta=1.0)
        return y.reshape(n, g.out_height, g.out_width, self.filters)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self.cols is None:
            raise RuntimeError("Conv2D.backward before a training forward pass")
        g, n = self.geometry, len(dy)
        rows = dy.reshape(-1, self.filters)
        if g.patch > self.filters:
            # dWᵀ = dyᵀ·cols, then one small transposed copy: for long, narrow products like this OpenBLAS is
            # markedly faster producing the wide (filters × patch) matrix than the tall one (measured 1.3–1.6×).
            transposed = gemm(rows.T, self.cols, out=self.scratch("dWt", (self.filters, g.patch)))
            np.copyto(self.grads["W"], transposed.T)
        else:
            gemm(self.cols.T, rows, out=self.grads["W"])
        if self.b is not None:
            gemm(self.ones(len(rows)).T, rows, out=self.grads["b"])  # column sums, by BLAS
        if not need_dx:
            return None
        dcols = gemm(rows, self.W.T, out=self.scratch("dcols", self.cols.shape))
        dpadded = conv.col2im(dcols, g, self.scratch("dpadded", (n, g.padded_height, g.padded_width, g.channels)))
        return conv.pad_adjoint(dpadded, g, self.scratch("dx", (n, g.height, g.width, g.channels)))

    def onnx_nodes(self, graph: OnnxGraph, x: str, position: int) -> str:
        """One Conv on NCHW images, its kernel as ONNX's (filters, C, k, k); circular padding as wrapped slices
        (opset 17's Pad has no wrap mode)."""
        g = self.geometry
        images = graph.images(x, (g.height, g.width, g.channels))
        kernel = self.W.reshape(g.kernel, g.kernel, g.channels, -1).transpose(3, 2, 0, 1)
        pads = [g.padding] * 4
        if g.mode == "circular" and g.padding:
            images, pads = _wrap(graph, images, g.padding, g.height, g.width), [0] * 4
        bias = [] if self.b is None else [graph.constant(f"b{position}", self.b)]
        return graph.node(
            "Conv",
            images,
            graph.constant(f"W{position}", kernel),
            *bias,
            kernel_shape=[g.kernel, g.kernel],
            strides=[g.stride, g.stride],
            pads=pads,
        )


def _wrap(graph: OnnxGraph, x: str, pad: int, height: int, width: int) -> str:
    """NCHW x padded by `pad` on every side with the image wrapped around: the last rows above, the first below,
    then the same with columns."""

    def cut(start: int, stop: int, axis: int) -> str:
        bounds = graph.int_constant([start]), graph.int_constant([stop]), graph.int_constant([axis])
        return graph.node("Slice", x, *bounds)

    for axis, size in ((2, height), (3, width)):
        x = graph.node("Concat", cut(size - pad, size, axis), x, cut(0, pad, axis), axis=axis)
    return x
