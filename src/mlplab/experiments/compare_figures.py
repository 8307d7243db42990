"""The figures of `mlplab compare`: every run's learning curves on shared axes, and its diagnostics per epoch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mlplab import plots

GUIDE_RATIO = 1e-3  # a per-step update of about a thousandth of the weights: the usual healthy rate


def colours(n: int) -> list[Any]:
    """n distinguishable colours (tab10, then tab20 beyond ten runs)."""
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def points(values: Sequence[Any], scale: float = 1.0) -> tuple[list[int], list[float]]:
    """(epochs, values) with the missing ones (null: never produced, or not finite) left out."""
    pairs = [(i, scale * v) for i, v in enumerate(values, start=1) if isinstance(v, int | float)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def comparison_curves(series: Mapping[str, Mapping[str, Sequence[Any]]], title: str) -> Figure:
    """Loss and accuracy per epoch, one colour per run: validation solid with markers, training dashed."""
    fig = Figure(figsize=(11, 4.5))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for (label, curves), colour in zip(series.items(), colours(len(series)), strict=True):
        for ax, key, scale in ((ax_loss, "loss", 1.0), (ax_acc, "acc", 100.0)):
            ax.plot(*points(curves[f"val_{key}"], scale), "o-", color=colour, ms=3, label=label)
            ax.plot(*points(curves[f"train_{key}"], scale), "--", color=colour, alpha=0.7)
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name.capitalize()} (validation solid, training dashed)")
        ax.grid(alpha=0.3)
    ax_acc.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    plots.tight(fig)
    return fig


Record = Mapping[str, Any]


def first_name(records: Sequence[Record], section: str, measure: Callable[[Any], Any]) -> str | None:
    """The first name in `section` (layers, params, similarity) whose `measure` some epoch has."""
    for record in records:
        for name, value in (record.get(section) or {}).items():
            if measure(value) is not None:
                return str(name)
    return None


def _step_ratio(value: Any) -> Any:
    return value.get("step_update_ratio") if isinstance(value, dict) else None


def _inactive(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    return value.get("dead") if value.get("dead") is not None else value.get("saturated")


def _similarity(value: Any) -> Any:
    return value


PANELS: tuple[tuple[str, str, Callable[[Any], Any], str], ...] = (
    ("params", "update/data ratio per step", _step_ratio, "‖Δθ‖/‖θ‖ of one step"),
    ("layers", "dead or saturated units", _inactive, "fraction of units"),
    ("similarity", "similarity of the units", _similarity, "mean pairwise cosine"),
)


def diagnostics_overlay(runs: Mapping[str, Sequence[Record]]) -> Figure | None:
    """Per epoch, one line per run: the first weight's per-step update ratio (log scale, 1e-3 guide), the first
    activation layer's dead (ReLU) or saturated fraction, the first hidden layer's unit similarity. None when no
    run has diagnostics."""
    if not any(runs.values()):
        return None
    fig = Figure(figsize=(15, 4.3))
    axes: Sequence[Axes] = fig.subplots(1, 3)
    for (label, records), colour in zip(runs.items(), colours(len(runs)), strict=True):
        for ax, (section, title, measure, ylabel) in zip(axes, PANELS, strict=True):
            name = first_name(records, section, measure)
            if name is None:
                continue
            pairs = [
                (r["epoch"], measure((r.get(section) or {}).get(name)))
                for r in records
                if isinstance(measure((r.get(section) or {}).get(name)), int | float)
            ]
            ax.plot([p[0] for p in pairs], [p[1] for p in pairs], "o-", ms=3, color=colour, label=f"{label}: {name}")
            ax.set_title(title)
            ax.set_ylabel(ylabel)
    axes[0].set_yscale("log")
    axes[0].axhline(GUIDE_RATIO, color="grey", ls=":", lw=1, label="1e-3")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (0: before any step)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    plots.tight(fig)
    return fig
