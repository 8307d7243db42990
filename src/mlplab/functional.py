"""Softmax: class scores to probabilities (what `predict` reports). The reference formulas of the networks' math
that the tests check layers and kernels against live in tests/oracles.py; the package computes them in
`mlplab.layers` and `mlplab.kernels`."""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Row-wise softmax, shifted by the row max so exp never overflows."""
    e: np.ndarray = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e
