"""The experiments' figures: accuracy overlays for sweeps and tuning (accuracy in percent, whole-number epochs,
lines that stay distinguishable when two runs share their first epochs) and the randomization tests' panels in
the layout of Zhang et al. (2017), Figure 1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mlplab import plots
from mlplab.experiments.conditions import PARTIAL, Results, label_conditions, pretty
from mlplab.plots import save_figure

STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")


def accuracy_overlay(series: Mapping[str, Sequence[float]], path: str | Path, title: str) -> Path:
    """`overlay_figure` saved as a PNG."""
    return save_figure(overlay_figure(series, title), path)


def overlay_figure(series: Mapping[str, Sequence[float]], title: str) -> Figure:
    """One line of validation accuracy per epoch for each labelled run."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
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
    plots.tight(fig)
    return fig


RANDOMIZATION_FIGURES = ("randomization.png", "loss_vs_steps.png", "steps_to_fit.png", "test_error.png")
COLORS = {
    "true-labels": "tab:blue",
    "random-labels": "tab:red",
    "shuffled-pixels": "tab:green",
    "random-pixels": "tab:purple",
    "gaussian": "tab:orange",
}


def plot_randomization(
    results: Results,
    out: str | Path,
    subtitle: str = "",
    num_classes: int = 10,
    network: str = "one-hidden-layer MLP",
) -> list[Path]:
    """(a) training loss vs steps per condition, (b) steps to fit and (c) test error vs label corruption: one file
    with the three panels side by side, as in the paper, then one file per panel.
    """
    out = Path(out)
    first = randomization_figure(results, subtitle, num_classes, network)
    paths = [save_figure(first, out / RANDOMIZATION_FIGURES[0])]
    for draw, name in zip(PANELS, RANDOMIZATION_FIGURES[1:], strict=True):
        fig = Figure(figsize=(7, 5))
        ax = fig.subplots()
        draw(ax, results, num_classes)
        ax.set_title(f"{ax.get_title()}\n{network}, {subtitle}")
        paths.append(save_figure(fig, out / name))
    return paths


def randomization_figure(
    results: Results, subtitle: str = "", num_classes: int = 10, network: str = "one-hidden-layer MLP"
) -> Figure:
    """The paper's three panels side by side: loss vs steps, steps to fit, test error vs label corruption."""
    fig = Figure(figsize=(18, 5))
    axes = fig.subplots(1, 3)
    for draw, ax in zip(PANELS, axes, strict=True):
        draw(ax, results, num_classes)
    fig.suptitle(f"Randomization tests (Zhang et al. 2017): {network}, {subtitle}".rstrip(", "))
    plots.tight(fig)
    return fig


def _plot_loss(ax: Axes, results: Results, num_classes: int) -> None:
    partial = [name for name in results if name.startswith(PARTIAL)]
    greys = matplotlib.colormaps["Greys"](np.linspace(0.35, 0.8, len(partial)))
    styles = {name: {"color": grey, "ls": "--", "lw": 1.2} for name, grey in zip(partial, greys, strict=True)}
    styles |= {name: {"color": color, "lw": 2} for name, color in COLORS.items()}
    styles["true-labels"] |= {"lw": 3.5, "alpha": 0.6}  # shuffled-pixels, drawn over it, often coincides
    styles["shuffled-pixels"] |= {"ls": (0, (4, 2))}
    for name, r in results.items():
        # From the whole split's loss at step 0, then the mean minibatch loss of each window of steps.
        steps = [0, *r["loss_curve"]["steps"]]
        loss = [r["fit_checks"]["train_loss"][0], *r["loss_curve"]["train_loss"]]
        ax.plot(steps, loss, label=pretty(name), **styles[name])
        if r["steps_to_fit"] is not None:
            ax.plot(steps[-1], loss[-1], "o", color=styles[name]["color"], ms=6)
    ax.axhline(np.log(num_classes), color="grey", ls=":", lw=1, label=f"ln {num_classes}: a uniform guess")
    ax.set_xlabel("minibatch steps")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title("(a) learning curves (dot: training set fit)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="upper right")


def _plot_steps_to_fit(ax: Axes, results: Results, num_classes: int) -> None:
    runs = label_conditions(results)
    fit = [r for r in runs if r["steps_to_fit"] is not None]
    unfit = [r for r in runs if r["steps_to_fit"] is None]
    ax.plot(
        [r["corruption"] for r in fit],
        [r["steps_to_fit"] for r in fit],
        "o-",
        color="tab:red",
        label="steps until the training set is fit",
    )
    if unfit:
        ax.plot(
            [r["corruption"] for r in unfit],
            [r["steps"] for r in unfit],
            "x",
            color="black",
            ms=9,
            mew=2,
            label="not fit within the step budget",
        )
    ax.set_xlabel("label corruption p")
    ax.set_ylabel("minibatch steps to fit the training set")
    ax.set_title("(b) convergence slowdown")
    if runs:
        per_epoch = runs[0]["steps_per_epoch"]
        epochs = ax.secondary_yaxis("right", functions=(lambda s: s / per_epoch, lambda e: e * per_epoch))
        epochs.set_ylabel(f"epochs ({per_epoch} steps each)")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _plot_test_error(ax: Axes, results: Results, num_classes: int) -> None:
    runs = label_conditions(results)
    levels = [r["corruption"] for r in runs]
    ax.plot(levels, [1 - r["test_acc"] for r in runs], "o-", color="tab:red", label="test error (true test labels)")
    ax.plot(
        levels, [1 - r["train_acc"] for r in runs], "s--", color="tab:blue", label="training error (corrupted labels)"
    )
    ax.axhline(1 - 1 / num_classes, color="grey", ls=":", label=f"chance ({1 - 1 / num_classes:.0%} error)")
    ax.set_xlabel("label corruption p")
    ax.set_ylabel("error")
    ax.set_title("(c) generalization error growth")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


PANELS = (_plot_loss, _plot_steps_to_fit, _plot_test_error)
