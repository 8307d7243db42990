"""Figures a writeup can use as they are: learning curves with titles, axis labels and legends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(metrics: Mapping[str, Any], path: str | Path, title: str = "Learning curves") -> Path:
    """Two panels, loss and accuracy per epoch, each training vs validation."""
    epochs = range(1, len(metrics["train_loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((ax_loss, "loss", "Loss"), (ax_acc, "acc", "Accuracy")):
        ax.plot(epochs, metrics[f"train_{key}"], "o-", label="training")
        ax.plot(epochs, metrics[f"val_{key}"], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label.lower())
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_overlay(
    series: Mapping[str, Sequence[float]], path: str | Path, title: str, ylabel: str = "validation accuracy"
) -> Path:
    """One line per labelled series against epoch, e.g. validation accuracy for each swept value."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, values in series.items():
        ax.plot(range(1, len(values) + 1), values, "o-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
