"""One BLAS call that numpy does not expose: out ← α·a@b + β·out, scaling and accumulating in place."""

from __future__ import annotations

import numpy as np

# Imported with this module, not on first use: threadpoolctl limits only the BLAS libraries already loaded when a
# limit is entered, and a worker's one-thread limit missing scipy's OpenBLAS made two workers slower than one.
from scipy.linalg import blas

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """out ← alpha·(a @ b) + beta·out for 2-D a, b and a C-ordered out (1-D out is taken as one row); returns out.

    With beta = 1 − lr·reg and alpha = −lr this is a whole SGD + L2 step of a weight matrix whose gradient is a@b,
    done by BLAS's threads in the product's own pass: numpy's matmul can only overwrite `out`.
    """
    c = out.reshape(1, -1) if out.ndim == 1 else out
    routine = _GEMM.get(c.dtype)
    if routine is None or a.dtype != c.dtype or b.dtype != c.dtype or not c.flags.c_contiguous:
        c[...] = alpha * (a @ b) + (beta * c if beta else 0.0)
        return out
    # BLAS is column-major: c's memory read column-major is cᵀ, and cᵀ = bᵀ·aᵀ. An operand that is C-ordered is
    # passed as its transpose (column-major, as is); one that is not is passed as is, with BLAS's transpose flag.
    bt, trans_b = (b.T, 0) if b.flags.c_contiguous else (b, 1)
    at, trans_a = (a.T, 0) if a.flags.c_contiguous else (a, 1)
    target = c.T
    if routine(alpha, bt, at, beta, target, trans_b, trans_a, 1) is not target:  # f2py wrote a copy instead
        raise RuntimeError("BLAS gemm did not write in place")
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in a new array, through the same BLAS (scipy's) as `gemm`: for the products a training step makes
    outside the layers (augment's elastic smoothing).

    Dense and Conv2D make their products with `gemm`, so a step uses one OpenBLAS thread pool: two (numpy's and
    scipy's) used in turn each keep their threads spinning after a call and starve the other, which made a step
    several times slower. BatchNorm's column sums are the exception, numpy's `dot` (a gemv, measured several times
    faster there than a one-row gemm; see layers/batch_norm.py).
    """
    return gemm(a, b, out=np.empty((a.shape[0], b.shape[1]), np.result_type(a, b)))
