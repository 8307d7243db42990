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

    def scores(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        hidden = F.sigmoid(x @ p["W1"] + p["b1"])
        return hidden @ p["W2"] + p["b2"]

    def forward(self, x: np.ndarray, y: np.ndarray, mode: str = "train") -> tuple[float, float]:
        p, g = self.params, self.grads
        z1 = x @ p["W1"]
        z1 += p["b1"]
        a1 = F.sigmoid(z1, out=z1)
        z2 = a1 @ p["W2"]
        z2 += p["b2"]
        loss, _, dz2 = F.softmax_cross_entropy(z2, y)
        if mode == "train":
            np.matmul(a1.T, dz2, out=g["W2"])
            np.sum(dz2, axis=0, out=g["b2"])
            dz1 = dz2 @ p["W2"].T
            dz1 *= a1
            dz1 *= 1.0 - a1
            np.matmul(x.T, dz1, out=g["W1"])
            np.sum(dz1, axis=0, out=g["b1"])
        return loss, F.accuracy(z2, y)
