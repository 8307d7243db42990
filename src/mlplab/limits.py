"""Sizes checked before memory is spent: a model whose parameters would not fit is refused with one line."""

from __future__ import annotations

import itertools
import math
import os
import resource
from collections.abc import Mapping, Sequence
from typing import Any

from mlplab.errors import MlplabError

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
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        return None  # the constructor reports a bad width itself
    return widths


def check_model_fits(model: str, hyper: Mapping[str, Any]) -> None:
    """Refuse a dense model whose parameters (times the copies training keeps) exceed this machine's memory."""
    widths = layer_widths(model, hyper)
    if widths is None:
        return
    count = sum(a * b + b for a, b in itertools.pairwise(widths))
    itemsize = 8 if hyper.get("dtype") == "float64" else 4
    needed, budget = COPIES_IN_TRAINING * count * itemsize, memory_budget()
    if needed > budget:
        raise MlplabError(
            f"a {model} with layer widths {_widths_text(widths)} has {count:.3g} parameters: training it needs "
            f"about {_bytes(needed)}, more than this machine's {_bytes(budget)}"
        )


def _widths_text(widths: Sequence[int]) -> str:
    text = "-".join(str(w) for w in widths)
    return text if len(text) <= 60 else text[:59] + "…"


def _bytes(n: float) -> str:
    exponent = min(int(math.log(max(n, 1), 1024)), 5)
    return f"{n / 1024**exponent:.1f} {('B', 'KB', 'MB', 'GB', 'TB', 'PB')[exponent]}"
