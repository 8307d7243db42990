"""The assignment's Two-Layer Net: FC → sigmoid → FC → softmax + cross-entropy."""

from __future__ import annotations

import numpy as np

from mlplab import functional as F
from mlplab.models.base import Model


class TwoLayerNet(Model):
    """input → (W1, b1) → sigmoid → (W2, b2) → softmax; weights 0.001·N(0,1), biases 0."""

    weight_names = ("W1", "W2")

    def __init__(
        self,
        input_size: int = 784,
        hidden_size: int = 128,
        num_classes: int = 10,
        seed: int = 1024,
        dtype: str = "float32",
    ):
        super().__init__(dtype, input_size=input_size, hidden_size=hidden_size, num_classes=num_classes, seed=seed)
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": self.init_weight(rng, (input_size, hidden_size)),
            "b1": self.zeros((hidden_size,)),
            "W2": self.init_weight(rng, (hidden_size, num_classes)),
            "b2": self.zeros((num_classes,)),
        }
        self.allocate_grads()

    def _hidden(self, x: np.ndarray) -> np.ndarray:
        """sigmoid(x·W1 + b1), written into a reused buffer."""
        p = self.params
        h = np.matmul(x, p["W1"], out=self.scratch("h", len(x), p["W1"].shape[1]))
        h += p["b1"]
        return F.sigmoid(h, out=h)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self._hidden(x) @ self.params["W2"] + self.params["b2"]

    def forward(self, x: np.ndarray, y: np.ndarray, mode: str = "train") -> tuple[float, float]:
        p, g, n = self.params, self.grads, len(x)
        h = self._hidden(x)
        z = np.matmul(h, p["W2"], out=self.scratch("z", n, p["W2"].shape[1]))
        z += p["b2"]
        if mode != "train":
            loss_sum, hits = F.cross_entropy_loss_(z, y)
            return loss_sum / n, hits / n
        loss, hits = F.softmax_cross_entropy_(z, y)  # z now holds dJ/dz
        np.matmul(h.T, z, out=g["W2"])
        np.matmul(self.ones(n), z, out=g["b2"])
        dh = np.matmul(z, p["W2"].T, out=self.scratch("dh", n, h.shape[1]))
        slope = np.multiply(h, h, out=self.scratch("slope", n, h.shape[1]))
        np.subtract(h, slope, out=slope)  # σ'(a) = σ − σ²
        dh *= slope
        np.matmul(x.T, dh, out=g["W1"])
        np.matmul(self.ones(n), dh, out=g["b1"])
        return loss, hits / n
