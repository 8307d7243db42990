"""The loss: mean cross-entropy of softmax(z) against integer labels, its gradient dJ/dz, and the hit count."""

from __future__ import annotations

import numpy as np

from mlplab import kernels


class SoftmaxCrossEntropy:
    """Ends a network: takes the logits (N, classes) and the labels (N,); owns the dJ/dz buffer it returns."""

    def __init__(self) -> None:
        self._dz: dict[tuple[int, ...], np.ndarray] = {}

    def loss_and_grad(self, z: np.ndarray, y: np.ndarray) -> tuple[float, int, np.ndarray]:
        """(mean loss, rows whose argmax is y, dJ/dz) for logits z, left unchanged."""
        dz = self._dz.get(z.shape)
        if dz is None or dz.dtype != z.dtype:
            if len(self._dz) > 16:
                self._dz.clear()
            dz = self._dz[z.shape] = np.empty_like(z)
        total, hits = kernels.softmax_cross_entropy(z, y, dz, True)
        return total / len(y), hits, dz

    def loss(self, z: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """(summed loss, rows whose argmax is y) of logits z."""
        total, hits = kernels.softmax_cross_entropy(z, y, z, False)
        return float(total), int(hits)
