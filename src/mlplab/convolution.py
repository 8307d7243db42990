"""Convolution and max-pooling math on NHWC batches: padding, im2col/col2im and pooling, each beside its adjoint.

Images are kept as (N, H, W, C): im2col then lays each output pixel's receptive field out as one row of
(kernel·kernel·C) values in (ki, kj, c) order, a convolution is one GEMM of those rows with a (k·k·C, F) weight
matrix, and its (N·Ho·Wo, F) result is already the next layer's NHWC input, with no transpose in between.
Every function writes into arrays the caller owns (`out=`), so a training step allocates nothing of size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from mlplab import kernels
from mlplab.errors import MlplabError

PADDINGS = ("zeros", "circular")


@dataclass(frozen=True)
class ConvGeometry:
    """Input (H, W, C), a square kernel k, stride s, padding p (zeros, or circular: the image wraps around)."""

    height: int
    width: int
    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    mode: str = "zeros"

    def __post_init__(self) -> None:
        if self.mode not in PADDINGS:
            raise MlplabError(f"unknown padding mode {self.mode!r}; choose one of {', '.join(PADDINGS)}")
        if self.kernel < 1 or self.stride < 1 or self.padding < 0:
            raise MlplabError(
                f"kernel and stride must be ≥ 1 and padding ≥ 0, got {self.kernel}, {self.stride}, {self.padding}"
            )
        if self.kernel > min(self.padded_height, self.padded_width):
            raise MlplabError(
                f"a {self.kernel}×{self.kernel} kernel does not fit a {self.height}×{self.width} input "
                f"padded by {self.padding}"
            )
        if self.mode == "circular" and self.padding > min(self.height, self.width):
            raise MlplabError(f"circular padding {self.padding} is wider than the {self.height}×{self.width} input")

    @property
    def padded_height(self) -> int:
        return self.height + 2 * self.padding

    @property
    def padded_width(self) -> int:
        return self.width + 2 * self.padding

    @property
    def out_height(self) -> int:
        return (self.padded_height - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.padded_width - self.kernel) // self.stride + 1

    @property
    def patch(self) -> int:
        """Length of one im2col row: k·k·C."""
        return self.kernel * self.kernel * self.channels


def pad(x: np.ndarray, g: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """x (N, H, W, C) into out (N, H+2p, W+2p, C), the border zeros or the image wrapped around."""
    p, h, w = g.padding, g.height, g.width
    out[:, p : p + h, p : p + w] = x
    if p == 0:
        return out
    if g.mode == "zeros":
        out[:, :p] = 0
        out[:, p + h :] = 0
        out[:, p : p + h, :p] = 0
        out[:, p : p + h, p + w :] = 0
        return out
    # Columns on the image's rows first, then whole rows: the corners then come from the wrapped columns.
    out[:, p : p + h, :p] = x[:, :, w - p :]
    out[:, p : p + h, p + w :] = x[:, :, :p]
    out[:, :p] = out[:, h : h + p]
    out[:, p + h :] = out[:, p : 2 * p]
    return out


def pad_adjoint(dpadded: np.ndarray, g: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """The gradient w.r.t. x given that w.r.t. pad(x): the interior, plus (circular) the wrapped borders folded back.

    Overwrites `dpadded`'s borders when circular.
    """
    p, h, w = g.padding, g.height, g.width
    if p and g.mode == "circular":  # the adjoint of pad's two steps, in reverse order
        dpadded[:, h : h + p] += dpadded[:, :p]
        dpadded[:, p : 2 * p] += dpadded[:, p + h :]
        dpadded[:, p : p + h, w : w + p] += dpadded[:, p : p + h, :p]
        dpadded[:, p : p + h, p : 2 * p] += dpadded[:, p : p + h, p + w :]
    out[...] = dpadded[:, p : p + h, p : p + w]
    return out


def patches(padded: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """A strided view (N, Ho, Wo, k, k, C) of every receptive field of a padded batch: nothing copied."""
    n, _, _, c = padded.shape
    sn, sh, sw, sc = padded.strides
    s = g.stride
    return as_strided(
        padded,
        (n, g.out_height, g.out_width, g.kernel, g.kernel, c),
        (sn, s * sh, s * sw, sh, sw, sc),
        writeable=False,
    )


def im2col(padded: np.ndarray, g: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """Every receptive field as a row: out (N·Ho·Wo, k·k·C) in (ki, kj, c) order."""
    n = padded.shape[0]
    out.reshape(n, g.out_height, g.out_width, g.kernel, g.kernel, g.channels)[...] = patches(padded, g)
    return out


@kernels.compiled(nogil=True)
def _col2im(cols: np.ndarray, out: np.ndarray, kernel: int, stride: int, out_h: int, out_w: int) -> None:
    n, _, _, c = out.shape
    out[...] = 0
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                row = (b * out_h + i) * out_w + j
                for ki in range(kernel):
                    for kj in range(kernel):
                        # One pixel's C channels: contiguous in both arrays, so the compiler vectorizes the add.
                        target = out[b, i * stride + ki, j * stride + kj]
                        source = cols[row, (ki * kernel + kj) * c : (ki * kernel + kj + 1) * c]
                        for ch in range(c):
                            target[ch] += source[ch]


def col2im(cols: np.ndarray, g: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """The adjoint of im2col: each row's values added back where they were read, into out (N, H+2p, W+2p, C)."""
    _col2im(cols, out, g.kernel, g.stride, g.out_height, g.out_width)
    return out


def pooled_size(size: int, window: int) -> int:
    """Output length of non-overlapping windows along one axis (a remainder that does not fill one is dropped)."""
    return size // window


@kernels.compiled(nogil=True)
def _max_pool(x: np.ndarray, window: int, out: np.ndarray, argmax: np.ndarray) -> None:
    n, oh, ow, c = out.shape
    # Channels innermost, into local rows: a pixel's C values are contiguous, so each compare runs as a vector.
    best, at = np.empty(c, x.dtype), np.empty(c, np.int32)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best[ch] = x[b, i * window, j * window, ch]
                    at[ch] = 0
                for di in range(window):
                    for dj in range(window):
                        place = di * window + dj
                        for ch in range(c):
                            v = x[b, i * window + di, j * window + dj, ch]
                            wins = v > best[ch]  # strict: ties keep the first in row-major order
                            best[ch] = v if wins else best[ch]
                            at[ch] = place if wins else at[ch]
                for ch in range(c):
                    out[b, i, j, ch] = best[ch]
                    argmax[b, i, j, ch] = at[ch]


@kernels.compiled(nogil=True)
def _max_pool_backward(dy: np.ndarray, argmax: np.ndarray, window: int, out: np.ndarray) -> None:
    n, oh, ow, c = dy.shape
    if out.shape[1] != oh * window or out.shape[2] != ow * window:
        out[...] = 0  # rows and columns no window covers get no gradient; the loop below writes all the rest
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                grad, at = dy[b, i, j], argmax[b, i, j]
                for di in range(window):
                    for dj in range(window):
                        pixel, place = out[b, i * window + di, j * window + dj], di * window + dj
                        for ch in range(c):
                            pixel[ch] = grad[ch] if at[ch] == place else 0


def max_pool(x: np.ndarray, window: int, out: np.ndarray, argmax: np.ndarray) -> np.ndarray:
    """Max over non-overlapping window×window blocks of x (N, H, W, C) into out; argmax keeps each winner's place.

    Ties go to the first element in row-major order, as in PyTorch.
    """
    _max_pool(x, window, out, argmax)
    return out


def max_pool_backward(dy: np.ndarray, argmax: np.ndarray, window: int, out: np.ndarray) -> np.ndarray:
    """Route each pooled gradient to its window's winner; every other input gets 0."""
    _max_pool_backward(dy, argmax, window, out)
    return out
