"""Figures of a run's diagnostics (diagnostics.json's content): activation distributions, saturated and dead
units, gradients, update-to-data ratios, how alike hidden units are, first-layer weights as images.

Matplotlib's Figure API only (never pyplot), as everywhere in mlplab; each function returns a Figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

UPDATE_GUIDE = 1e-3
"""Karpathy's rule of thumb: one step should move a weight matrix by about a thousandth of its size."""
SHAPE_LAYERS = ("Dropout", "Flatten")
"""Layers whose output repeats their input's values (the probe drops nothing): not drawn twice."""
MAX_TILES = 64


def epochs_of(content: dict[str, Any]) -> list[int]:
    return [record["epoch"] for record in content["epochs"]]


def shown_layers(content: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers whose outputs are drawn: all but those that only reshape or pass values on."""
    return [layer for layer in content["layers"] if layer["kind"] not in SHAPE_LAYERS]


def weight_params(content: dict[str, Any]) -> list[str]:
    """Parameters that are weight matrices or filters (W…), in network order."""
    return [p for layer in content["layers"] for p in layer["params"] if p.startswith("W")]


def _series(content: dict[str, Any], *path: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one recorded number across epochs, skipping epochs where it is null or absent."""
    xs, ys = [], []
    for record in content["epochs"]:
        value: Any = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            xs.append(record["epoch"])
            ys.append(float(value))
    return xs, ys


def _grid(n: int, columns: int = 3, width: float = 4.0, height: float = 2.8) -> tuple[Figure, list[Any]]:
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    fig = Figure(figsize=(width * columns, height * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).reshape(-1).tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def chosen_epochs(epochs: Sequence[int], most: int = 6) -> list[int]:
    """Up to `most` epochs spread from the first to the last, both included."""
    if len(epochs) <= most:
        return list(epochs)
    picks = np.unique(np.linspace(0, len(epochs) - 1, most).round().astype(int))
    return [epochs[i] for i in picks]


def fit_checks_figure(content: dict[str, Any], title: str) -> Figure:
    """A randomize condition's curves: loss and accuracy of the fit checks on the whole (corrupted) training split,
    at step 0 (pass 0) and after every pass, as its diagnostics records carry them."""
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, label, scale in ((ax_loss, "train_loss", "Loss", 1), (ax_acc, "train_acc", "Accuracy", 100)):
        xs, ys = _series(content, key)
        ax.plot(xs, [scale * y for y in ys], "o-", label="whole training split")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("pass (epoch)")
        ax.set_ylabel(label.lower())
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_acc.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    fig.suptitle(title)
    return fig


def activations_figure(content: dict[str, Any]) -> Figure:
    """One panel per layer: the distribution of its outputs on the probe, one line per chosen epoch."""
    layers = shown_layers(content)
    bins = np.asarray(content["bins"])
    step = bins[1] - bins[0]
    centers = np.concatenate([[bins[0] - step / 2], (bins[:-1] + bins[1:]) / 2, [bins[-1] + step / 2]])
    records = {record["epoch"]: record for record in content["epochs"]}
    shown = chosen_epochs(sorted(records))
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(shown)))
    fig, axes = _grid(len(layers))
    for ax, layer in zip(axes, layers, strict=True):
        for color, epoch in zip(colors, shown, strict=True):
            stats = records[epoch]["layers"].get(layer["name"])
            if not stats or not stats.get("hist"):
                continue
            counts = np.asarray(stats["hist"], float)
            total = counts.sum()
            if total > 0:
                ax.plot(centers, counts / total, color=color, lw=1.2, label=f"epoch {epoch}")
        ax.set_title(f"{layer['name']} ({layer['kind']})", fontsize=10)
        ax.set_yscale("log")
        ax.set_xlim(centers[0], centers[-1])
        ax.set_xlabel("output value (ends: below −4, at or above 4)", fontsize=8)
        ax.grid(alpha=0.3)
    if axes:
        axes[0].set_ylabel("fraction of outputs")
        axes[0].legend(fontsize=7)
    fig.suptitle("Activation distributions on the probe, per layer, over the epochs")
    return fig


def fractions_figure(content: dict[str, Any]) -> Figure | None:
    """Saturated fraction of each sigmoid/tanh/softsign layer and dead fraction of each ReLU layer, per epoch."""
    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    drawn = 0
    for layer in content["layers"]:
        for key, style in (("saturated", "o-"), ("dead", "s--")):
            xs, ys = _series(content, "layers", layer["name"], key)
            if xs:
                ax.plot(xs, [100 * y for y in ys], style, label=f"{layer['name']} {key}")
                drawn += 1
    if not drawn:
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel("units")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Saturated outputs (sigmoid/tanh/softsign) and dead units (ReLU)")
    return fig


def _log_lines(ax: Any, content: dict[str, Any], rows: Sequence[tuple[str, Sequence[str]]], style: str = "o-") -> int:
    drawn = 0
    for label, path in rows:
        xs, ys = _series(content, *path)
        kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
        if kept:
            ax.plot(*zip(*kept, strict=True), style, label=label, ms=3)
            drawn += 1
    if drawn:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, which="both")
    return drawn


def gradients_figure(content: dict[str, Any]) -> Figure:
    """Left: the norm of each weight matrix's gradient on the probe; right: the spread of d loss / d output."""
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    params = [(name, ("params", name, "grad_norm")) for name in weight_params(content)]
    if _log_lines(left, content, params):
        left.legend(fontsize=8)
    left.set_title("‖∂loss/∂W‖ per weight matrix")
    layers = [(layer["name"], ("layers", layer["name"], "grad_std")) for layer in shown_layers(content)]
    if _log_lines(right, content, layers):
        right.legend(fontsize=7, ncol=2)
    right.set_title("std of ∂loss/∂(layer output)")
    fig.suptitle("Gradients on the probe (the first layers' vanish when units saturate)")
    return fig


def updates_figure(content: dict[str, Any]) -> Figure:
    """Update-to-data ratio ‖Δθ‖/‖θ‖ of each weight matrix: one step (solid) and a whole epoch (dashed), log scale,
    with the 1e-3 guide line."""
    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    names = weight_params(content)
    colors = colormaps["tab10"](np.arange(len(names)) % 10)
    for color, name in zip(colors, names, strict=True):
        for key, style, label in (("step_update_ratio", "o-", "one step"), ("update_ratio", "--", "epoch")):
            xs, ys = _series(content, "params", name, key)
            kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
            if kept:
                ax.plot(*zip(*kept, strict=True), style, color=color, ms=3, label=f"{name} ({label})")
    ax.axhline(UPDATE_GUIDE, color="black", lw=1, ls=":", label="1e-3 guide")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖Δθ‖ / ‖θ‖")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Update-to-data ratios: the epoch's last step and the whole epoch")
    return fig


def similarity_figure(content: dict[str, Any]) -> Figure | None:
    """Mean pairwise cosine similarity of each hidden layer's units' incoming and outgoing weights, per epoch."""
    hidden = [name for name in content["epochs"][0]["similarity"]] if content["epochs"] else []
    if not hidden:
        return None
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    colors = colormaps["tab10"](np.arange(len(hidden)) % 10)
    for color, name in zip(colors, hidden, strict=True):
        xs, ys = _series(content, "similarity", name)
        ax.plot(xs, ys, "o-", color=color, label=f"{name} incoming")
        xs, ys = _series(content, "similarity_out", name)
        if xs:
            ax.plot(xs, ys, "s--", color=color, label=f"{name} outgoing")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean cosine similarity")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("How alike the hidden units are (1: all the same; about 0: unrelated)")
    return fig


def weights_figure(w: np.ndarray, image_shape: Sequence[int], title: str, labels: Sequence[str] = ()) -> Figure:
    """Columns of a first-layer weight matrix drawn as images of `image_shape` (H, W[, C]), one tile per unit
    (at most `MAX_TILES`); each tile on its own symmetric colour scale, blue negative, red positive."""
    h, w_, *c = image_shape
    channels = c[0] if c else 1
    count = min(w.shape[1], MAX_TILES)
    columns = min(count, 10 if count <= 10 else 8)
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(1.3 * columns, 1.35 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).reshape(-1)
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= count:
            continue
        tile = w[:, i].reshape(h, w_, channels)
        if channels == 1:
            limit = float(np.abs(tile).max()) or 1.0
            ax.imshow(tile[:, :, 0], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        else:  # colour filters: each tile stretched to [0, 1]
            span = float(np.ptp(tile)) or 1.0
            ax.imshow((tile - tile.min()) / span, interpolation="nearest")
        if i < len(labels):
            ax.set_title(labels[i], fontsize=8)
    fig.suptitle(title)
    return fig
