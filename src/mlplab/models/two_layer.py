"""The assignment's Two-Layer Net: FC → sigmoid → FC → softmax + cross-entropy."""

from __future__ import annotations

import numpy as np

from mlplab.layers import Dense, Sigmoid
from mlplab.models.base import Model


class TwoLayerNet(Model):
    """input → (W1, b1) → sigmoid → (W2, b2) → softmax; weights 0.001·N(0,1), biases 0."""

    def __init__(
        self,
        input_size: int = 784,
        hidden_size: int = 128,
        num_classes: int = 10,
        seed: int = 1024,
        dtype: str = "float32",
    ):
        rng = np.random.default_rng(seed)
        layers = [
            Dense(input_size, hidden_size, rng, init="assignment", dtype=dtype),
            Sigmoid(dtype),
            Dense(hidden_size, num_classes, rng, init="assignment", dtype=dtype),
        ]
        super().__init__(
            layers,
            (input_size,),
            dtype,
            input_size=input_size,
            hidden_size=hidden_size,
            num_classes=num_classes,
            seed=seed,
        )
