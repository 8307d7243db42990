"""Central finite differences against a model's analytic gradients, coordinate by coordinate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlplab.layers import Dropout
from mlplab.models.base import Model


@dataclass(frozen=True)
class ParamCheck:
    """The worst relative error over the checked coordinates of one parameter."""

    name: str
    worst_relative_error: float
    checked: int
    size: int


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-10) -> np.ndarray:
    """|a − n| / max(|a| + |n|, floor), elementwise: scale-free, and finite where both are 0."""
    error: np.ndarray = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), floor)
    return error


def numeric_gradient(
    f: Callable[[], float], param: np.ndarray, coords: list[tuple[int, ...]], eps: float = 1e-5
) -> np.ndarray:
    """(f(θ + εeᵢ) − f(θ − εeᵢ)) / 2ε at each coordinate i, restoring θ afterwards."""
    out = np.empty(len(coords))
    for k, index in enumerate(coords):
        saved = param[index]
        param[index] = saved + eps
        plus = f()
        param[index] = saved - eps
        minus = f()
        param[index] = saved
        out[k] = (plus - minus) / (2 * eps)
    return out


def sample_coords(shape: tuple[int, ...], limit: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every coordinate of a small parameter, else `limit` distinct ones drawn at random."""
    size = int(np.prod(shape))
    flat = np.arange(size) if size <= limit else rng.choice(size, limit, replace=False)
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat]


def check_gradients(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    samples: int = 40,
    eps: float = 1e-5,
    seed: int = 0,
) -> list[ParamCheck]:
    """Compare ∇J, J = mean CE + reg/2·Σ‖W‖², from `train_batch` + the L2 term against finite differences.

    Both sides are the training-mode loss of the whole batch, the function `train_batch` differentiates: with
    BatchNorm that normalizes by the batch's own statistics, which depend on every sample (evaluation mode's
    running statistics would be another function). Dropout draws new masks on every pass, so a model checked
    here must have none. The running statistics the passes move are restored afterwards.
    """
    if model.dtype != np.float64:
        raise ValueError("gradient checks need a float64 model: float32 round-off swamps finite differences")
    if any(isinstance(layer, Dropout) and layer.p > 0 for layer in model.layers):
        raise ValueError("gradient checks need a model without dropout: every pass would draw other masks")
    rng = np.random.default_rng(seed)
    saved = {name: b.copy() for name, b in model.buffers.items()}
    try:
        model.train_batch(x, y)
        analytic = {name: g.copy() for name, g in model.grads.items()}
        for name in model.weight_names:
            analytic[name] += reg * model.params[name]

        def objective() -> float:
            total, _ = model.loss.loss(model.forward(x, train=True), y)
            return total / len(y) + model.regularization(reg)

        results = []
        for name, param in model.params.items():
            coords = sample_coords(param.shape, samples, rng)
            numeric = numeric_gradient(objective, param, coords, eps)
            picked = np.array([analytic[name][c] for c in coords])
            worst = float(relative_error(picked, numeric).max())
            results.append(ParamCheck(name, worst, len(coords), param.size))
    finally:
        for name, b in model.buffers.items():
            b[...] = saved[name]
    return results


RANDOM_POINT_STD = 0.5


def move_to_random_point(model: Model, seed: int = 0, std: float = RANDOM_POINT_STD) -> Model:
    """Set every parameter to N(0, std²) draws, in place: the assignment's 0.001-scale init leaves gradients too
    small for finite differences to compare, so checks are made at a random point instead."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(0.0, std, p.shape)
    return model
