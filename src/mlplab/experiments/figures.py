"""Overlay figures for sweeps and tuning: accuracy in percent, whole-number epochs, and lines that stay
distinguishable when two runs share their first epochs (same seed, one trained longer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle
from pathlib import Path

from matplotlib.ticker import MaxNLocator, PercentFormatter

from mlplab.plots import plt

STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")


def accuracy_overlay(series: Mapping[str, Sequence[float]], path: str | Path, title: str) -> Path:
    """One line of validation accuracy per epoch for each labelled run."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    styles, markers = cycle(STYLES), cycle(MARKERS)
    for i, (label, values) in enumerate(series.items()):
        ax.plot(
            range(1, len(values) + 1),
            [100 * v for v in values],
            linestyle=next(styles),
            marker=next(markers),
            markersize=max(3.0, 7.0 - 1.2 * i),
            label=label,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
