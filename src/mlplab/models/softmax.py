"""The assignment's Softmax Regression: FC (no bias) → ReLU → softmax + cross-entropy."""

from __future__ import annotations

import numpy as np

from mlplab.layers import Dense, ReLU
from mlplab.models.base import Model


class SoftmaxRegression(Model):
    """One fully-connected layer input→classes without bias, then ReLU, then softmax; W1 is 0.001·N(0,1)."""

    def __init__(self, input_size: int = 784, num_classes: int = 10, seed: int = 1024, dtype: str = "float32"):
        rng = np.random.default_rng(seed)
        layers = [Dense(input_size, num_classes, rng, init="assignment", bias=False, dtype=dtype), ReLU(dtype)]
        super().__init__(layers, (input_size,), dtype)
