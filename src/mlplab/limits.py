"""Sizes checked before memory is spent: a model whose parameters would not fit is refused with one line."""

from __future__ import annotations

import itertools
import math
import os
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlplab.errors import MlplabError

EVAL_BATCH = 2000  # samples per evaluation batch (training.evaluate, predict)
COPIES_IN_TRAINING = 5  # parameters, gradients, the best-by-validation snapshot and up to two optimizer moments


def seconds_from_env(name: str, default: float) -> float:
    """A timeout: `default` seconds, or the environment variable `name` when set (tests, slow networks)."""
    text = os.environ.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        raise MlplabError(f"{name} must be a number of seconds, got {text[:40]!r}") from None
    if not 0 < value < 86400:
        raise MlplabError(f"{name} must be between 0 and 86400 seconds, got {value}")
    return value


def memory_budget() -> int:
    """Bytes this process may use: physical memory, or less under an address-space limit."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        total = 1 << 40
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return min(total, soft) if soft != resource.RLIM_INFINITY else total


def layer_widths(model: str, hyper: Mapping[str, Any]) -> Sequence[int] | None:
    """Input, hidden and output widths of the dense models, from their constructor arguments (None if unknown)."""
    inputs, classes = hyper.get("input_size", 784), hyper.get("num_classes", 10)
    hidden: Any
    if model == "SoftmaxRegression":
        hidden = []
    elif model == "TwoLayerNet" and "hidden_size" in hyper:  # a model file written before hidden_sizes
        hidden = [hyper["hidden_size"]]
    elif model in ("TwoLayerNet", "MLP"):
        hidden = hyper.get("hidden_sizes", [128])
        if not isinstance(hidden, list | tuple):
            return None
    else:
        return None
    widths = [inputs, *hidden, classes]
    if not _positive_ints(widths):
        return None  # the constructor reports a bad width itself
    return widths


@dataclass(frozen=True)
class Footprint:
    """Floats a model takes: its parameters, and per sample the arrays of a training step and of evaluation."""

    parameters: int
    per_sample_training: int
    per_sample_evaluation: int

    def bytes(self, itemsize: int, train_batch: int | None) -> int:
        """Parameters times the copies training keeps, an evaluation batch and, when training, a training batch."""
        floats = COPIES_IN_TRAINING * self.parameters + EVAL_BATCH * self.per_sample_evaluation
        if train_batch:
            floats += train_batch * self.per_sample_training
        return itemsize * floats


def dense_footprint(widths: Sequence[int], inputs: int | None = None) -> Footprint:
    """Dense layers: W and b per pair of widths; per sample each layer's output and activation (and in training
    their gradients)."""
    parameters = sum(a * b + b for a, b in itertools.pairwise(widths))
    outputs = sum(widths[1:])
    first = widths[0] if inputs is None else inputs
    return Footprint(parameters, first + 4 * outputs, first + 2 * outputs)


def cnn_footprint(hyper: Mapping[str, Any]) -> tuple[Footprint, str] | None:
    """A CNN's floats, following the shapes its layers take (models/cnn.py: padding, im2col rows of k·k·C per output
    pixel, the convolution's output, BatchNorm, pooling, the dense head); None when the constructor will refuse the
    arguments. The im2col rows dominate: a large kernel on a wide image multiplies them."""
    inputs = hyper.get("input_size", 784)
    shape = hyper.get("image_shape")
    if shape is None and isinstance(inputs, int) and inputs > 0:
        shape = [math.isqrt(inputs)] * 2
    if not isinstance(shape, list | tuple) or len(shape) not in (2, 3):
        return None
    h, w, c = (*shape, 1)[:3]
    k, pool = hyper.get("kernel_size", 5), hyper.get("pool", 2)
    channels, hidden = hyper.get("conv_channels", [32, 64]), hyper.get("hidden_sizes", [128])
    if not isinstance(channels, list | tuple) or not isinstance(hidden, list | tuple):
        return None
    if not channels or not _positive_ints([h, w, c, k, pool, *channels, *hidden, hyper.get("num_classes", 10)]):
        return None
    pad = 0 if hyper.get("conv_padding", "valid") == "valid" else k // 2
    batch_norm = hyper.get("batch_norm") is True
    parameters = training = evaluation = 0
    for filters in channels:
        padded = (h + 2 * pad) * (w + 2 * pad) * c
        oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
        if oh < 1 or ow < 1 or min(oh, ow) < pool:
            return None
        cols, out = oh * ow * k * k * c, oh * ow * filters
        parameters += k * k * c * filters + (2 if batch_norm else 1) * filters
        pooled = (oh // pool) * (ow // pool) * filters
        after = 3 * pooled if pool > 1 else out  # pooling's output and argmax, then the activation
        forward = padded + cols + out * (3 if batch_norm else 1) + after
        evaluation += forward
        training += forward + cols + padded + h * w * c + 2 * out + after  # the gradients of each
        h, w, c = (oh // pool, ow // pool, filters) if pool > 1 else (oh, ow, filters)
    head = dense_footprint([h * w * c, *hidden, hyper.get("num_classes", 10)])
    described = f"kernel_size {k}, conv_channels {str(list(channels))[:60]} on {shape[0]}×{shape[1]} images"
    return (
        Footprint(
            parameters + head.parameters,
            training + head.per_sample_training,
            evaluation + head.per_sample_evaluation,
        ),
        described,
    )


def check_model_fits(model: str, hyper: Mapping[str, Any], train_batch: int | None = None) -> None:
    """Refuse a model whose parameters (times the copies training keeps) and whose arrays for an evaluation batch
    (and a training batch of `train_batch` samples, when given) exceed this machine's memory."""
    itemsize = 8 if hyper.get("dtype") == "float64" else 4
    if model == "CNN":
        sized = cnn_footprint(hyper)
        if sized is None:
            return  # the constructor reports bad arguments itself
        footprint, described = sized
    else:
        widths = layer_widths(model, hyper)
        if widths is None:
            return
        footprint, described = dense_footprint(widths), f"layer widths {_widths_text(widths)}"
    needed, budget = footprint.bytes(itemsize, train_batch), memory_budget()
    if needed > budget:
        batch = f"training batches of {train_batch} and " if train_batch else ""
        raise MlplabError(
            f"a {model} with {described} has {footprint.parameters:.3g} parameters: with {batch}evaluation "
            f"batches of {EVAL_BATCH} it needs about {_bytes(needed)}, more than this machine's {_bytes(budget)}"
        )


def check_array_fits(what: str, nbytes: int) -> None:
    """Refuse an array sized from input (a dataset's float copy, …) that exceeds this machine's memory."""
    budget = memory_budget()
    if nbytes > budget:
        raise MlplabError(f"{what} take about {_bytes(nbytes)}, more than this machine's {_bytes(budget)}")


def _positive_ints(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def _widths_text(widths: Sequence[Any]) -> str:
    text = "-".join(str(w) for w in widths)
    return text if len(text) <= 60 else text[:59] + "…"


def _bytes(n: float) -> str:
    exponent = min(int(math.log(max(n, 1), 1024)), 5)
    return f"{n / 1024**exponent:.1f} {('B', 'KB', 'MB', 'GB', 'TB', 'PB')[exponent]}"
