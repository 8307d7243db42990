"""Compiled loops (numba) for the passes NumPy cannot fuse, each tested against the NumPy formula it replaces, and
`compiled`, the one decorator every compiled function of mlplab is made with (convolution's and augment's too).

Compiled once per machine: the machine code is cached in NUMBA_CACHE_DIR when that is set, else beside the source
(its __pycache__), else in numba's user-wide cache (~/.cache/numba), whichever is writable first; with no writable
place at all, each function is compiled in every process instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np


def compiled(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """numba.njit with the package's options, cached where numba can write, else compiled in each process: every
    compiled function of mlplab (here, in convolution.py and augment.py) is made by this decorator."""

    def wrap(function: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, error_model="numpy", **options)(function)
        except RuntimeError:  # numba found no writable cache location
            return numba.njit(error_model="numpy", **options)(function)

    return wrap


@compiled()
def softmax_cross_entropy(z: np.ndarray, y: np.ndarray, dz: np.ndarray, with_grad: bool) -> tuple[float, int]:
    """(Σ cross-entropy of softmax(z) over rows, rows whose first argmax is y); with_grad: dz ← d(mean CE)/dz.

    z is left unchanged; each row is shifted by its max, so exp never overflows.
    """
    n, classes = z.shape
    loss = 0.0
    hits = 0
    for i in range(n):
        best = 0
        top = z[i, 0]
        for j in range(1, classes):
            if z[i, j] > top:
                top = z[i, j]
                best = j
        if best == y[i]:
            hits += 1
        total = 0.0  # float64 sums and exponentials, whatever z's dtype: the loss is a metric too
        for j in range(classes):
            total += math.exp(float(z[i, j]) - float(top))
        loss += math.log(total) - (float(z[i, y[i]]) - float(top))
        if with_grad:
            scale = 1.0 / (total * n)
            for j in range(classes):
                dz[i, j] = math.exp(float(z[i, j]) - float(top)) * scale
            dz[i, y[i]] -= 1.0 / n
    return loss, hits


# Scalars come in as numpy scalars of the arrays' dtype (np.float32(lr) for float32 params), so that every
# product below is rounded to that dtype exactly as the NumPy formula it replaces rounds it.


@compiled()
def gather_scaled(source: np.ndarray, rows: np.ndarray, factor: Any, out: np.ndarray) -> None:
    """out[i] ← source[rows[i]] · factor in out's dtype: a shuffled batch gathered, cast and scaled in one pass."""
    for i in range(len(rows)):
        row = rows[i]
        for j in range(out.shape[1]):
            out[i, j] = source[row, j] * factor


@compiled()
def slice_scaled(source: np.ndarray, start: int, factor: Any, out: np.ndarray) -> None:
    """out[i] ← source[start + i] · factor in out's dtype: an in-order batch cast and scaled in one pass."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = source[start + i, j] * factor


# Elementwise kernels take C-contiguous arrays of one shape and walk them as flat views.


@compiled()
def relu_grad(dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """out ← dy where y > 0, else 0."""
    dy_, y_, out_ = dy.reshape(dy.size), y.reshape(y.size), out.reshape(out.size)
    for i in range(dy_.size):
        out_[i] = dy_[i] if y_[i] > 0 else 0


@compiled()
def sigmoid_grad(dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """out ← dy · (y − y²): σ' in terms of y = σ(x)."""
    dy_, y_, out_ = dy.reshape(dy.size), y.reshape(y.size), out.reshape(out.size)
    for i in range(dy_.size):
        s = y_[i]
        out_[i] = dy_[i] * (s - s * s)


@compiled()
def dropout(x: np.ndarray, uniform: np.ndarray, p: Any, keep: Any, out: np.ndarray) -> None:
    """Inverted dropout: uniform becomes the mask (keep = 1/(1−p) where uniform ≥ p, else 0); out ← x · mask."""
    x_, u_, out_ = x.reshape(x.size), uniform.reshape(uniform.size), out.reshape(out.size)
    zero = keep - keep
    for i in range(x_.size):
        m = keep if u_[i] >= p else zero
        u_[i] = m
        out_[i] = x_[i] * m


@compiled()
def sgd(param: np.ndarray, grad: np.ndarray, lr: Any) -> None:
    """θ ← θ − lr·g."""
    p_, g_ = param.reshape(param.size), grad.reshape(grad.size)
    for i in range(p_.size):
        p_[i] -= lr * g_[i]


@compiled()
def momentum(param: np.ndarray, grad: np.ndarray, velocity: np.ndarray, lr: Any, mu: Any, nesterov: bool) -> None:
    """v ← μv − lr·g, then θ ← θ + v, or with Nesterov θ ← θ + μv − lr·g."""
    p_, g_, v_ = param.reshape(param.size), grad.reshape(grad.size), velocity.reshape(velocity.size)
    for i in range(p_.size):
        g = g_[i]
        v = v_[i] * mu - lr * g
        v_[i] = v
        if nesterov:
            p_[i] = p_[i] + mu * v - lr * g
        else:
            p_[i] += v


@compiled()
def adam(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    beta1: Any,
    c1: Any,
    beta2: Any,
    c2: Any,
    step_size: Any,
    eps: Any,
    decay: Any,
) -> None:
    """One Adam step in one pass: m ← β₁m + c₁g; v ← β₂v + c₂g²; θ ← decay·θ − m / (√v + eps) · step_size.

    c₁ = 1 − β₁ and c₂ = 1 − β₂ (rounded from float64, as NumPy rounds them); step_size and eps carry both bias
    corrections; decay is AdamW's 1 − lr·λ (1 for Adam: no multiply). One thread: split over numba's threads it
    was faster only on an idle machine, and many times slower whenever another process held a core.
    """
    p_, g_, m_, v_ = param.reshape(param.size), grad.reshape(grad.size), m.reshape(m.size), v.reshape(v.size)
    one = decay - decay + 1
    for i in range(p_.size):
        g = g_[i]
        mi = m_[i] * beta1 + g * c1
        vi = v_[i] * beta2 + g * g * c2
        m_[i] = mi
        v_[i] = vi
        p = p_[i]
        if decay != one:
            p = p * decay
        p_[i] = p - mi / (np.sqrt(vi) + eps) * step_size


@compiled()
def shift_images(x: np.ndarray, dy: np.ndarray, dx: np.ndarray, height: int, width: int, out: np.ndarray) -> None:
    """out[i] ← image i of x (rows of height·width pixels) moved by (dy[i], dx[i]) whole pixels, 0 moved in."""
    for i in range(x.shape[0]):
        first, stop = max(0, dx[i]), min(width, width + dx[i])  # the columns that come from inside the image
        for r in range(height):
            row, source_row = r * width, r - dy[i]
            if not 0 <= source_row < height or first >= stop:
                out[i, row : row + width] = 0
                continue
            out[i, row : row + first] = 0
            out[i, row + stop : row + width] = 0
            source = source_row * width - dx[i]
            for c in range(first, stop):
                out[i, row + c] = x[i, source + c]
