"""A convolutional network: (Conv2D [→ BatchNorm] → MaxPool2D → activation) per block → Flatten → MLP head."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlplab.choices import CONV_PADDINGS
from mlplab.convolution import ConvGeometry
from mlplab.errors import MlplabError
from mlplab.layers import BatchNorm, Conv2D, Flatten, Layer, MaxPool2D, activation
from mlplab.models.base import Model
from mlplab.models.mlp import dense_layers


class CNN(Model):
    """images → [Conv2D(k×k, c_i) → MaxPool2D(pool) → activation] per entry of conv_channels → Flatten →
    [Dense → activation → dropout] per hidden size → Dense → softmax.

    Pooling comes before the activation: max-pooling commutes with every nondecreasing activation (all of the
    lab's), so this is the usual conv → activation → pool network with the activation on a pool²-th of the values.
    Parameters are W1, b1 … for the convolutions, then the dense layers'; conv weights are (k·k·C, filters) in
    (ki, kj, c) row order on NHWC images.

    With `batch_norm` each convolution is followed by a BatchNorm (before pooling and the activation) and has no
    bias, BatchNorm's β taking its place (as PyTorch users write `Conv2d(..., bias=False)`): the parameters are
    then W1, gamma2, beta2 (buffers running_mean2, running_var2), W3, gamma4, … and then the dense layers'.
    """

    def __init__(
        self,
        input_size: int = 784,
        image_shape: Sequence[int] | None = None,
        num_classes: int = 10,
        conv_channels: Sequence[int] = (32, 64),
        kernel_size: int = 5,
        conv_padding: str = "valid",
        pool: int = 2,
        hidden_sizes: Sequence[int] = (128,),
        activation: str = "relu",
        init: str = "he",
        dropout: float = 0.0,
        batch_norm: bool = False,
        seed: int = 1024,
        dtype: str = "float32",
    ):
        shape = _image_shape(input_size, image_shape)
        conv_channels, hidden_sizes = [int(c) for c in conv_channels], [int(h) for h in hidden_sizes]
        if conv_padding not in CONV_PADDINGS:
            raise MlplabError(f"unknown conv_padding {conv_padding!r}; choose one of {', '.join(CONV_PADDINGS)}")
        if not conv_channels or min(conv_channels) < 1 or any(h < 1 for h in hidden_sizes):
            raise MlplabError(f"conv_channels and hidden_sizes must be ≥ 1, got {conv_channels}, {hidden_sizes}")
        if kernel_size < 1 or pool < 1:
            raise MlplabError(f"kernel_size and pool must be ≥ 1, got {kernel_size}, {pool}")
        if not isinstance(batch_norm, bool):
            raise MlplabError(f"batch_norm must be true or false, got {batch_norm!r}")
        layers = _layers(
            shape,
            num_classes,
            conv_channels,
            kernel_size,
            conv_padding,
            pool,
            hidden_sizes,
            activation,
            init,
            dropout,
            batch_norm,
            seed,
            dtype,
        )
        super().__init__(
            layers,
            (input_size,),
            dtype,
            input_size=input_size,
            image_shape=list(shape),
            num_classes=num_classes,
            conv_channels=conv_channels,
            kernel_size=kernel_size,
            conv_padding=conv_padding,
            pool=pool,
            hidden_sizes=hidden_sizes,
            activation=activation,
            init=init,
            dropout=dropout,
            seed=seed,
            batch_norm=batch_norm,
        )


def _image_shape(input_size: int, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """(H, W, C) from the data's image shape ((H, W) means one channel), or a square one-channel image."""
    if image_shape is None:
        side = round(input_size**0.5)
        if side * side != input_size:
            raise MlplabError(f"CNN needs image_shape for {input_size} inputs, which are not a square image")
        image_shape = (side, side)
    shape = (*(int(s) for s in image_shape), 1)[:3]
    if len(image_shape) not in (2, 3) or shape[0] * shape[1] * shape[2] != input_size:
        raise MlplabError(f"image_shape {list(image_shape)} does not hold {input_size} inputs")
    return shape[0], shape[1], shape[2]


def _layers(
    image: tuple[int, int, int],
    num_classes: int,
    conv_channels: list[int],
    kernel: int,
    padding: str,
    pool: int,
    hidden_sizes: list[int],
    activation_name: str,
    init: str,
    dropout: float,
    batch_norm: bool,
    seed: int,
    dtype: str,
) -> list[Layer]:
    rng = np.random.default_rng(seed)
    dropout_rng = np.random.default_rng([seed, 1])
    layers: list[Layer] = []
    h, w, c = image
    for block, filters in enumerate(conv_channels, start=1):
        pad = 0 if padding == "valid" else kernel // 2
        mode = "circular" if padding == "circular" else "zeros"
        try:
            geometry = ConvGeometry(h, w, c, kernel, 1, pad, mode)
        except MlplabError as exc:
            raise MlplabError(f"CNN block {block}: {exc}") from None
        h, w, c = geometry.out_height, geometry.out_width, filters
        layers.append(Conv2D(geometry, filters, rng, dtype, bias=not batch_norm))
        if batch_norm:
            layers.append(BatchNorm(filters, dtype=dtype))
        if pool > 1:
            if min(h, w) < pool:
                raise MlplabError(f"CNN: a {h}×{w} feature map is smaller than the {pool}×{pool} pooling window")
            layers.append(MaxPool2D(pool, dtype))
            h, w = h // pool, w // pool
        layers.append(activation(activation_name, dtype))
    layers.append(Flatten(dtype))
    sizes = [h * w * c, *hidden_sizes, num_classes]
    return [*layers, *dense_layers(sizes, rng, dropout_rng, activation_name, init, dropout, dtype)]
