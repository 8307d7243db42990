"""Figures a writeup can use as they are, and the one way every figure is saved.

Figures are built with Matplotlib's object API (`matplotlib.figure.Figure`), never pyplot: no backend is chosen
and no global state is touched, so importing mlplab changes nothing in a notebook, and worker threads can draw.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mlplab import files

DPI = 110


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Lay the figure out tightly and write it as a PNG, atomically (through mlplab.files)."""
    return files.write_bytes(path, figure_png(fig))


def tight(fig: Figure) -> None:
    """fig.tight_layout(), quietly: a title wider than the figure (a 255-character run name) cannot be laid out
    tightly, and Matplotlib's warning about it would only repeat what the drawn figure shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        fig.tight_layout()


def figure_png(fig: Figure) -> bytes:
    """The figure, laid out tightly, as PNG bytes."""
    tight(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def plot_curves(metrics: Mapping[str, Any], path: str | Path, title: str = "Learning curves") -> Path:
    """Two panels, loss and accuracy (in percent) per epoch, each training vs validation, saved as a PNG."""
    return save_figure(curves_figure(metrics, title), path)


def curves_png(metrics: Mapping[str, Any], title: str = "Learning curves") -> bytes:
    """The learning-curves figure as PNG bytes."""
    return figure_png(curves_figure(metrics, title))


def curves_figure(metrics: Mapping[str, Any], title: str = "Learning curves") -> Figure:
    """Two panels, loss and accuracy (in percent) per epoch, each training vs validation."""
    epochs = range(1, len(metrics["train_loss"]) + 1)
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
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
    return fig
