"""The assignment's Softmax Regression: FC (no bias) → ReLU → softmax + cross-entropy."""

from __future__ import annotations

import numpy as np

from mlplab import functional as F
from mlplab.blas import gemm
from mlplab.models.base import Model


class SoftmaxRegression(Model):
    """One fully-connected layer input→classes without bias, then ReLU, then softmax."""

    weight_names = ("W1",)

    def __init__(self, input_size: int = 784, num_classes: int = 10, seed: int = 1024, dtype: str = "float32"):
        super().__init__(dtype, input_size=input_size, num_classes=num_classes, seed=seed)
        rng = np.random.default_rng(seed)
        self.params = {"W1": self.init_weight(rng, (input_size, num_classes))}
        self.allocate_grads()

    def scores(self, x: np.ndarray) -> np.ndarray:
        return F.relu(x @ self.params["W1"])

    def forward(self, x: np.ndarray, y: np.ndarray, mode: str = "train") -> tuple[float, float]:
        n, classes = len(x), self.params["W1"].shape[1]
        self.grads.settle()
        z = gemm(x, self.params["W1"], out=self.scratch("z", n, classes))
        a = np.maximum(z, 0, out=self.scratch("a", n, classes))
        if mode != "train":
            loss_sum, hits = F.cross_entropy_loss_(a, y)
            return loss_sum / n, hits / n
        loss, hits = F.softmax_cross_entropy_(a, y)  # a now holds dJ/da
        a *= z > 0
        self.grads.defer("W1", x, a)
        return loss, hits / n
