"""Compiled loops (numba) for the passes NumPy cannot fuse; each is tested against the NumPy formula it replaces.

Compiled once per machine: `cache=True` keeps the machine code beside this file, or, when that directory is not
writable, in numba's user-wide cache (NUMBA_CACHE_DIR, else ~/.cache); with no writable place at all they are
compiled in every process instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np


def _compiled(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    def wrap(function: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # numba found no writable cache location
            return numba.njit(**options)(function)

    return wrap


@_compiled()
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
