"""Figures a writeup can use as they are: learning curves with titles, axis labels and legends."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator, PercentFormatter


def plot_curves(metrics: Mapping[str, Any], path: str | Path, title: str = "Learning curves") -> Path:
    """Two panels, loss and accuracy (in percent) per epoch, each training vs validation."""
    epochs = range(1, len(metrics["train_loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label, scale in ((ax_loss, "loss", "Loss", 1), (ax_acc, "acc", "Accuracy", 100)):
        ax.plot(epochs, [scale * v for v in metrics[f"train_{key}"]], "o-", label="training")
        ax.plot(epochs, [scale * v for v in metrics[f"val_{key}"]], "s-", label="validation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label.lower())
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_acc.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
