"""A multi-layer perceptron of any depth: (FC → activation → dropout) × L → FC → softmax + cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from mlplab import functional as F
from mlplab.blas import matmul
from mlplab.errors import MlplabError
from mlplab.models.base import Model

INITS = ("he", "xavier", "assignment")


class MLP(Model):
    """input → [(W_i, b_i) → activation → inverted dropout] per hidden layer → (W_out, b_out) → softmax.

    Parameters are W1, b1, …, W{L+1}, b{L+1}; dropout masks come from the model's own generator, so a seeded
    model drops the same units on every run.
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: Sequence[int] = (128,),
        num_classes: int = 10,
        activation: str = "relu",
        init: str = "he",
        dropout: float = 0.0,
        seed: int = 1024,
        dtype: str = "float32",
    ):
        hidden_sizes = [int(h) for h in hidden_sizes]
        if activation not in F.ACTIVATIONS:
            raise MlplabError(f"unknown activation {activation!r}; choose one of {', '.join(F.ACTIVATIONS)}")
        if init not in INITS:
            raise MlplabError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        if not 0.0 <= dropout < 1.0:
            raise MlplabError(f"dropout must be in [0, 1), got {dropout}")
        if any(h < 1 for h in hidden_sizes):
            raise MlplabError(f"hidden sizes must be ≥ 1, got {hidden_sizes}")
        super().__init__(
            dtype,
            input_size=input_size,
            hidden_sizes=hidden_sizes,
            num_classes=num_classes,
            activation=activation,
            init=init,
            dropout=dropout,
            seed=seed,
        )
        self.activation, self.activation_grad = F.ACTIVATIONS[activation]
        self.init = init
        self.dropout = dropout
        self.depth = len(hidden_sizes) + 1
        self.weight_names = tuple(f"W{i}" for i in range(1, self.depth + 1))
        rng = np.random.default_rng(seed)
        sizes = [input_size, *hidden_sizes, num_classes]
        for i, (fan_in, fan_out) in enumerate(pairwise(sizes), start=1):
            self.params[f"W{i}"] = self.initial_weight(rng, fan_in, fan_out)
            self.params[f"b{i}"] = self.zeros((fan_out,))
        self.dropout_rng = np.random.default_rng([seed, 1])
        self.allocate_grads()

    def initial_weight(self, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
        """He: N(0, 2/fan_in), suits ReLU; Xavier (Glorot): N(0, 2/(fan_in+fan_out)); assignment: 0.001·N(0, 1)."""
        if self.init == "assignment":
            return self.init_weight(rng, (fan_in, fan_out))
        std = np.sqrt(2.0 / fan_in) if self.init == "he" else np.sqrt(2.0 / (fan_in + fan_out))
        return (std * rng.standard_normal((fan_in, fan_out))).astype(self.dtype)

    def dropout_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Inverted dropout: each unit kept with probability 1−p and scaled by 1/(1−p), so eval needs no change."""
        keep = self.dropout_rng.random(shape, dtype=self.dtype) >= self.dropout
        return keep * np.asarray(1.0 / (1.0 - self.dropout), self.dtype)

    def scores(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        a = x
        for i in range(1, self.depth):
            z = matmul(a, p[f"W{i}"])
            z += p[f"b{i}"]
            a = self.activation(z)
        out = matmul(a, p[f"W{self.depth}"])
        out += p[f"b{self.depth}"]
        return out

    def forward(self, x: np.ndarray, y: np.ndarray, mode: str = "train") -> tuple[float, float]:
        p, g = self.params, self.grads
        g.settle()
        train = mode == "train"
        drop = train and self.dropout > 0
        # Per hidden layer: its input, its pre-activation z, activation f(z), and the dropout mask (or None).
        layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
        a = x
        for i in range(1, self.depth):
            z = matmul(a, p[f"W{i}"])
            z += p[f"b{i}"]
            h = self.activation(z)
            mask = self.dropout_mask(h.shape) if drop else None
            layers.append((a, z, h, mask))
            a = h * mask if mask is not None else h
        logits = matmul(a, p[f"W{self.depth}"])
        logits += p[f"b{self.depth}"]
        loss, _, dz = F.softmax_cross_entropy(logits, y)
        if train:
            ones = self.ones(len(x))
            g.defer(f"W{self.depth}", a, dz)
            g.defer(f"b{self.depth}", ones, dz)
            for i in range(self.depth - 1, 0, -1):
                a_in, z, h, mask = layers[i - 1]
                da = matmul(dz, p[f"W{i + 1}"].T)
                if mask is not None:
                    da *= mask
                da *= self.activation_grad(z, h)
                g.defer(f"W{i}", a_in, da)
                g.defer(f"b{i}", ones, da)
                dz = da
        return loss, F.accuracy(logits, y)
