"""A multi-layer perceptron of any depth: (FC → activation → dropout) × L → FC → softmax + cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from mlplab.errors import MlplabError
from mlplab.layers import Dense, Dropout, Layer, activation
from mlplab.models.base import Model


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
        if any(h < 1 for h in hidden_sizes):  # the layers check the activation, the init and the dropout
            raise MlplabError(f"hidden sizes must be ≥ 1, got {hidden_sizes}")
        layers = _layers(input_size, hidden_sizes, num_classes, activation, init, dropout, seed, dtype)
        super().__init__(layers, (input_size,), dtype, hidden_sizes=hidden_sizes)
        self.depth = len(hidden_sizes) + 1
        self.activation, self.init, self.dropout = activation, init, dropout

    @property
    def dropout_rng(self) -> np.random.Generator | None:
        """The generator every dropout layer draws its masks from (None without dropout)."""
        return next((layer.rng for layer in self.layers if isinstance(layer, Dropout)), None)

    @dropout_rng.setter
    def dropout_rng(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            if isinstance(layer, Dropout):
                layer.rng = rng


def _layers(
    input_size: int,
    hidden_sizes: list[int],
    num_classes: int,
    activation_name: str,
    init: str,
    dropout: float,
    seed: int,
    dtype: str,
) -> list[Layer]:
    rng = np.random.default_rng(seed)
    dropout_rng = np.random.default_rng([seed, 1])  # one stream for every dropout layer, in forward order
    sizes = [input_size, *hidden_sizes, num_classes]
    return dense_layers(sizes, rng, dropout_rng, activation_name, init, dropout, dtype)


def dense_layers(
    sizes: list[int],
    rng: np.random.Generator,
    dropout_rng: np.random.Generator,
    activation_name: str,
    init: str,
    dropout: float,
    dtype: str,
) -> list[Layer]:
    """[Dense → activation → dropout] between consecutive `sizes`, then a last Dense to sizes[-1] (the logits)."""
    layers: list[Layer] = []
    for fan_in, fan_out in pairwise(sizes[:-1]):
        layers += [Dense(fan_in, fan_out, rng, init, dtype=dtype), activation(activation_name, dtype)]
        if dropout:  # Dropout refuses a rate outside [0, 1)
            layers.append(Dropout(dropout, dropout_rng, dtype))
    layers.append(Dense(sizes[-2], sizes[-1], rng, init, dtype=dtype))
    return layers
