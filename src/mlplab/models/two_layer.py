"""The assignment's Two-Layer Net: FC → sigmoid → FC → softmax + cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlplab.errors import MlplabError
from mlplab.layers import Dense, Sigmoid
from mlplab.models.base import Model


class TwoLayerNet(Model):
    """input → (W1, b1) → sigmoid → (W2, b2) → softmax; weights 0.001·N(0,1), biases 0.

    `hidden_sizes` is the hidden layer's width: a list of one, as MLP and CNN list theirs, or that one int; the older
    keyword `hidden_size=n` is still taken as `hidden_sizes=[n]` (model files written before say it).
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: int | Sequence[int] = (128,),
        num_classes: int = 10,
        seed: int = 1024,
        dtype: str = "float32",
        *,
        hidden_size: int | None = None,
    ):
        if hidden_size is not None:
            hidden_sizes = hidden_size
        widths = [hidden_sizes] if isinstance(hidden_sizes, int) else [int(h) for h in hidden_sizes]
        if len(widths) != 1:
            raise MlplabError(f"TwoLayerNet has one hidden layer: hidden_sizes takes one width, got {widths}")
        rng = np.random.default_rng(seed)
        layers = [
            Dense(input_size, widths[0], rng, init="assignment", dtype=dtype),
            Sigmoid(dtype),
            Dense(widths[0], num_classes, rng, init="assignment", dtype=dtype),
        ]
        super().__init__(
            layers,
            (input_size,),
            dtype,
            input_size=input_size,
            hidden_sizes=widths,
            num_classes=num_classes,
            seed=seed,
        )
