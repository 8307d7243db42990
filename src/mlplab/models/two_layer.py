"""The assignment's Two-Layer Net: FC → sigmoid → FC → softmax + cross-entropy."""

from __future__ import annotations

import numpy as np

from mlplab import functional as F
from mlplab.blas import gemm
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

    def _half_tanh(self, x: np.ndarray) -> np.ndarray:
        """t = tanh(a/2) for a = x·W1 + b1, so that σ(a) = ½ + ½·t; the ½ rides in the GEMM (t starts as b1/2)."""
        p = self.params
        t = np.multiply(p["b1"], 0.5, out=self.scratch("h", len(x), p["W1"].shape[1]))
        gemm(x, p["W1"], out=t, alpha=0.5, beta=1.0)
        return np.tanh(t, out=t)

    def _hidden(self, x: np.ndarray) -> np.ndarray:
        """sigmoid(x·W1 + b1) = ½ + ½·tanh(a/2), written into a reused buffer."""
        h = self._half_tanh(x)
        h *= 0.5
        h += 0.5
        return h

    def _output(self, h: np.ndarray) -> np.ndarray:
        """h·W2 + b2, written into a reused buffer."""
        z = gemm(h, self.params["W2"], out=self.scratch("z", len(h), self.params["W2"].shape[1]))
        z += self.params["b2"]
        return z

    def _inference_scores(self, x: np.ndarray) -> np.ndarray:
        """The scores with σ(a) = ½ + ½·t folded into the output GEMM too: z = ½·t·W2 + (½·1ᵀW2 + b2).

        Two passes over the hidden units (bias fill, tanh) instead of four, when no gradient needs σ itself.
        """
        p = self.params
        t = self._half_tanh(x)
        z = self.scratch("z", len(x), p["W2"].shape[1])
        z[...] = 0.5 * p["W2"].sum(axis=0) + p["b2"]
        return gemm(t, p["W2"], out=z, alpha=0.5, beta=1.0)

    def scores(self, x: np.ndarray) -> np.ndarray:
        self.grads.settle()  # its buffers are the ones a training pass's factors point into
        return self._inference_scores(x).copy()

    def forward(self, x: np.ndarray, y: np.ndarray, mode: str = "train") -> tuple[float, float]:
        p, g, n = self.params, self.grads, len(x)
        g.settle()
        if mode != "train":
            loss_sum, hits = F.cross_entropy_loss_(self._inference_scores(x), y)
            return loss_sum / n, hits / n
        h = self._hidden(x)
        z = self._output(h)
        loss, hits = F.softmax_cross_entropy_(z, y)  # z now holds dJ/dz
        g.defer("W2", h, z)
        g.defer("b2", self.ones(n), z)
        dh = gemm(z, p["W2"].T, out=self.scratch("dh", n, h.shape[1]))
        slope = np.multiply(h, h, out=self.scratch("slope", n, h.shape[1]))
        np.subtract(h, slope, out=slope)  # σ'(a) = σ − σ²
        dh *= slope
        g.defer("W1", x, dh)
        g.defer("b1", self.ones(n), dh)
        return loss, hits / n
