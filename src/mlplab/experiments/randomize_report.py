"""The randomization tests as a section of the writeup: table, figures and commentary, and the `Extra` that lets
`mlplab reproduce --with-randomization` run the quick tests on its own executor."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlplab.data import Dataset
from mlplab.experiments.commentary import randomization_commentary
from mlplab.experiments.conditions import Results, condition_names, pretty
from mlplab.experiments.context import Context, Extra
from mlplab.experiments.randomize import Settings, load_dataset, quick_settings, randomize
from mlplab.report import Figure, Section, Table, percent

REPORT_DIR = "randomization"


def randomization_extra(on_result: Callable[[dict[str, Any]], None] | None = None) -> Extra:
    """The quick randomization tests as an extra section of `mlplab reproduce`, run on its executor."""

    def build(ctx: Context) -> tuple[Section, dict[str, Any]]:
        settings = quick_settings(ctx.base)
        out = ctx.out / REPORT_DIR
        results = randomize(condition_names(), settings, out, ctx.executor, on_result)
        summary = {
            name: {k: r[k] for k in ("status", "train_acc", "test_acc", "steps_to_fit", "labels_changed")}
            for name, r in results.items()
        }
        return report_section(results, out, settings, load_dataset(settings)), {
            "dir": REPORT_DIR,
            "conditions": summary,
        }

    return Extra("randomization", build)


def report_section(results: Results, out: Path, settings: Settings, dataset: Dataset) -> Section:
    """The table, a commentary computed from the numbers, and the three figures."""
    rows = [
        [
            pretty(name),
            percent(r["labels_changed"]),
            f"{r['steps_to_fit']:,} ({r['epochs_to_fit']})"
            if r["steps_to_fit"] is not None
            else f"not fit ({r['status']})",
            percent(r["train_acc"]),
            percent(r["test_acc"]),
        ]
        for name, r in results.items()
    ]
    table = Table(["Condition", "Labels changed", "Steps (epochs) to fit", "Training accuracy", "Test accuracy"], rows)
    per_epoch = math.ceil(len(dataset.train) / settings.batch_size)
    intro = (
        f"Zhang et al. (2017): the same one-hidden-layer MLP ({settings.hidden} ReLU units, {settings.optimizer} at "
        f"learning rate {settings.learning_rate:g}, batch {settings.batch_size}, {regularization_text(settings)}) "
        f"trained on {len(dataset.train):,} {dataset.name} training images until its accuracy on the whole training "
        f"split, with the condition's labels, reaches {settings.target_acc:.0%} (checked after every pass of "
        f"{per_epoch} steps) or {settings.max_steps:,} steps are spent. Label conditions corrupt training and "
        f"validation labels only; test labels are always the true ones. Output: `{REPORT_DIR}/results.json`."
    )
    figures = [
        Figure(out / "loss_vs_steps.png", "(a) Training loss against minibatch steps, one line per condition."),
        Figure(out / "steps_to_fit.png", "(b) Steps until the training set is fit, against the label corruption."),
        Figure(out / "test_error.png", "(c) Test and training error against the label corruption."),
    ]
    commentary = randomization_commentary(results, dataset.num_classes)
    return Section("Randomization tests", intro, [table], commentary, figures)


def regularization_text(settings: Settings) -> str:
    """The explicit regularization in words: "no weight decay, dropout or augmentation" by default (the paper's
    weight decay is the L2 term `reg`)."""
    used = [
        f"weight decay (L2) {settings.reg:g}" if settings.reg else "",
        f"dropout {settings.dropout:g}" if settings.dropout else "",
        f"shifts of up to {settings.shift} pixels" if settings.shift else "",
    ]
    used = [u for u in used if u]
    return ", ".join(used) if used else "no weight decay, dropout or augmentation"
