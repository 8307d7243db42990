"""The randomization tests of Zhang et al. (2017): corrupt labels or images, train until the MLP fits, compare.

Label conditions corrupt training and validation labels (test labels stay true); image conditions change the
images of every split, as the paper does for its training and test sets, and keep all labels true.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from threadpoolctl import threadpool_limits

from mlplab.augment import BatchTransform
from mlplab.data import Dataset, Split
from mlplab.errors import MlplabError
from mlplab.experiments.executors import BLAS_THREADS, Executor, SerialExecutor, cached_dataset
from mlplab.experiments.reproduce import Context, Extra
from mlplab.models import MLP, Model
from mlplab.optim import SGD, Adam, Optimizer
from mlplab.plots import plt
from mlplab.report import Figure, Section, Table, percent
from mlplab.run import write_json
from mlplab.training import evaluate, train_epoch

LABEL_CONDITIONS = ("true-labels", "random-labels")
IMAGE_CONDITIONS = ("shuffled-pixels", "random-pixels", "gaussian")
CONDITIONS = ("true-labels", "random-labels", "partial", "shuffled-pixels", "random-pixels", "gaussian")
"""What --conditions accepts; "partial" stands for one `partial-p` run per corruption level p."""
DEFAULT_CORRUPTION = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
PARTIAL = "partial-"


# --- the condition transforms: pure, seeded, Dataset -> new Dataset ---------------------------------------------


def corrupt_labels(dataset: Dataset, p: float, seed: int) -> Dataset:
    """Replace each training and validation label, with probability p, by one drawn uniformly from all classes.

    The draw may give back the true class, so about p·(1 − 1/classes) of the labels change. For one seed the
    corrupted sets are nested: the labels corrupted at level p are also corrupted, identically, at every level > p.
    """
    if not 0.0 <= p <= 1.0:
        raise MlplabError(f"label corruption must lie in [0, 1], got {p}")
    rng = np.random.default_rng(seed)

    def corrupt(split: Split) -> Split:
        hit = rng.random(len(split)) < p
        drawn = rng.integers(0, dataset.num_classes, len(split), dtype=np.int64)
        return Split(split.x, np.where(hit, drawn, split.y))

    return replace(dataset, train=corrupt(dataset.train), val=corrupt(dataset.val))


def shuffle_pixels(dataset: Dataset, seed: int) -> Dataset:
    """Apply one fixed random permutation of the pixel positions to every image of every split."""
    order = np.random.default_rng(seed).permutation(dataset.input_size)
    return _map_images(dataset, lambda x: x[:, order])


def random_pixels(dataset: Dataset, seed: int) -> Dataset:
    """Apply an independent random permutation to each image's pixels (each image keeps its own pixel values)."""
    rng = np.random.default_rng(seed)
    return _map_images(dataset, lambda x: rng.permuted(x, axis=1))


def gaussian_images(dataset: Dataset, seed: int) -> Dataset:
    """Replace every image by Gaussian noise with the mean and variance of the training images' pixels.

    The noise stays float32 in pixel units (batching still divides by pixel_max): rounding it to uint8 would clip
    the left tail at 0 and change both moments.
    """
    rng = np.random.default_rng(seed)
    mean = float(dataset.train.x.mean(dtype=np.float64))
    std = float(dataset.train.x.std(dtype=np.float64))

    def noise(x: np.ndarray) -> np.ndarray:
        out = rng.standard_normal(x.shape, dtype=np.float32)
        out *= std
        out += mean
        return out

    return _map_images(dataset, noise)


def _map_images(dataset: Dataset, change: Callable[[np.ndarray], np.ndarray]) -> Dataset:
    """The dataset with `change` applied to the images of train, val and test, in that order; labels kept."""
    train, val, test = (Split(change(s.x), s.y) for s in (dataset.train, dataset.val, dataset.test))
    return replace(dataset, train=train, val=val, test=test)


def corruption_level(condition: str) -> float | None:
    """The label-corruption level of a condition (true-labels 0, random-labels 1, partial-p p), else None."""
    if condition == "true-labels":
        return 0.0
    if condition == "random-labels":
        return 1.0
    if condition.startswith(PARTIAL):
        try:
            return float(condition.removeprefix(PARTIAL))
        except ValueError:
            return None
    return None


def apply_condition(dataset: Dataset, condition: str, seed: int) -> Dataset:
    """The dataset as seen under `condition` (a name from `condition_names`)."""
    if condition in IMAGE_CONDITIONS:
        transform = {"shuffled-pixels": shuffle_pixels, "random-pixels": random_pixels, "gaussian": gaussian_images}
        return transform[condition](dataset, seed)
    level = corruption_level(condition)
    if level is None:
        raise MlplabError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    return dataset if level == 0.0 else corrupt_labels(dataset, level, seed)


def condition_names(
    conditions: Iterable[str] = CONDITIONS, corruption: Iterable[float] = DEFAULT_CORRUPTION
) -> list[str]:
    """The runs, in the paper's order: "partial" expands to one run per level (0 is true-labels, 1 random-labels)."""
    conditions, levels = list(conditions), sorted(set(corruption))
    for name in conditions:
        if name not in CONDITIONS:
            raise MlplabError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}")
    for p in levels:
        if not 0.0 <= p <= 1.0:
            raise MlplabError(f"corruption levels must lie in [0, 1], got {p:g}")
    wanted = set(conditions)
    by_level = []
    if "partial" in wanted:
        by_level = ["true-labels" if p == 0 else "random-labels" if p == 1 else f"{PARTIAL}{p:g}" for p in levels]
    label_runs = sorted({*(c for c in conditions if c in LABEL_CONDITIONS), *by_level}, key=corruption_level)
    return label_runs + [c for c in IMAGE_CONDITIONS if c in wanted]


# --- the fit-until-memorized loop -----------------------------------------------------------------------------


@dataclass
class Memorization:
    """How a train-until-fit run went: every step's minibatch loss, and the fit checks on the whole training split."""

    status: str = "budget"
    steps: int = 0
    epochs: int = 0
    steps_to_fit: int | None = None
    epochs_to_fit: int | None = None
    train_loss: float | None = None
    train_acc: float | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    seconds: float = 0.0
    step_loss: list[float] = field(default_factory=list)
    check_steps: list[int] = field(default_factory=list)
    check_loss: list[float] = field(default_factory=list)
    check_acc: list[float] = field(default_factory=list)


def fit_until_memorized(
    model: Model,
    optimizer: Optimizer,
    dataset: Dataset,
    *,
    batch_size: int,
    max_steps: int,
    target_acc: float = 0.99,
    seed: int = 0,
    transform: BatchTransform | None = None,
    on_epoch: Callable[[Memorization], None] | None = None,
) -> Memorization:
    """Train until accuracy on the whole training split reaches `target_acc` (checked at step 0 and after every
    pass) or `max_steps` minibatch steps are spent, then test. Status "fit", "budget" or "diverged".

    `transform` augments training batches only, never the fit check.
    """
    if max_steps < 1:
        raise MlplabError(f"the step budget must be ≥ 1, got {max_steps}")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    augment_rng = np.random.default_rng([seed, 1])  # as in fit: augmenting never changes the shuffling
    train, scale = dataset.train, dataset.pixel_max
    result = Memorization()

    def check() -> None:
        loss, acc = evaluate(model, train, scale)
        result.check_steps.append(result.steps)
        result.check_loss.append(loss)
        result.check_acc.append(acc)
        if acc >= target_acc:
            result.status = "fit"
            result.steps_to_fit, result.epochs_to_fit = result.steps, result.epochs

    def logged(loss: float) -> bool:
        result.step_loss.append(loss)
        return len(result.step_loss) >= max_steps  # ends the epoch when the budget is spent

    check()
    with np.errstate(over="ignore", invalid="ignore"):
        while result.status == "budget" and result.steps < max_steps:
            stats = train_epoch(
                model,
                optimizer,
                train,
                batch_size,
                scale,
                rng,
                transform=transform,
                augment_rng=augment_rng,
                on_step=logged,
            )
            result.steps = len(result.step_loss)
            if stats.diverged:
                result.status = "diverged"
                break
            result.epochs += 1
            check()
            if on_epoch is not None:
                on_epoch(result)
        result.test_loss, result.test_acc = evaluate(model, dataset.test, scale)
    result.train_loss, result.train_acc = result.check_loss[-1], result.check_acc[-1]
    result.seconds = time.perf_counter() - start
    return result


def loss_curve(step_loss: list[float], window: int) -> dict[str, list]:
    """Every step's loss as means over consecutive windows of `window` steps, each placed at its last step."""
    ends = [*range(window, len(step_loss), window), len(step_loss)] if step_loss else []
    starts = [0, *ends][: len(ends)]
    return {"steps": ends, "train_loss": [float(np.mean(step_loss[i:j])) for i, j in zip(starts, ends, strict=True)]}


# --- one condition, all conditions ---------------------------------------------------------------------------

OPTIMIZERS = ("adam", "sgd")
DEFAULT_LR = {"adam": 0.002, "sgd": 0.05}
SGD_MOMENTUM = 0.9
LOSS_WINDOW = 10
"""results.json keeps the training loss as the mean over each run of this many steps."""


@dataclass(frozen=True)
class Settings:
    """The data, network, optimizer and stopping rule shared by every condition (no regularization by default)."""

    dataset: str = "digits"
    data_dir: str | None = None
    subset: int | None = None
    hidden: int = 1024
    optimizer: str = "adam"
    lr: float | None = None
    batch_size: int = 128
    max_steps: int = 5000
    target_acc: float = 0.99
    weight_decay: float = 0.0
    dropout: float = 0.0
    augment: int = 0
    seed: int = 0
    dtype: str = "float32"

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def check(self) -> Settings:
        """Raise MlplabError naming the first invalid value; return self."""
        rules = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.subset is None or self.subset >= 1, "--subset must be ≥ 1"),
            (self.hidden >= 1, "--hidden must be ≥ 1"),
            (self.lr is None or self.lr > 0, "--lr must be > 0"),
            (self.batch_size >= 1, "--batch-size must be ≥ 1"),
            (self.max_steps >= 1, "--max-steps must be ≥ 1"),
            (0 < self.target_acc <= 1, "--target-acc must lie in (0, 1]"),
            (self.weight_decay >= 0, "--weight-decay must be ≥ 0"),
            (0 <= self.dropout < 1, "--dropout must lie in [0, 1)"),
            (self.augment >= 0, "--augment must be ≥ 0 pixels"),
            (self.seed >= 0, "--seed must be ≥ 0"),
        ]
        for ok, message in rules:
            if not ok:
                raise MlplabError(message)
        return self


def load_dataset(settings: Settings) -> Dataset:
    """The settings' dataset (loaded once per process), cut to `subset` training images when given."""
    dataset = cached_dataset({"dataset": settings.dataset, "data_dir": settings.data_dir})
    return dataset.subset(settings.subset) if settings.subset else dataset


def make_model(settings: Settings, dataset: Dataset) -> Model:
    """The one-hidden-layer ReLU network; every condition starts from the same initialization."""
    return MLP(
        input_size=dataset.input_size,
        hidden_sizes=(settings.hidden,),
        num_classes=dataset.num_classes,
        activation="relu",
        init="he",
        dropout=settings.dropout,
        seed=settings.seed,
        dtype=settings.dtype,
    )


def make_optimizer(settings: Settings) -> Optimizer:
    """Adam, or SGD with momentum 0.9; weight decay is their L2 term on the weight matrices."""
    if settings.optimizer == "sgd":
        return SGD(settings.learning_rate, reg=settings.weight_decay, momentum=SGD_MOMENTUM)
    return Adam(settings.learning_rate, reg=settings.weight_decay)


def make_transform(settings: Settings, dataset: Dataset) -> BatchTransform | None:
    """Random shifts of the training images by up to `augment` pixels, or nothing."""
    return BatchTransform(dataset.image_shape, shift=settings.augment) if settings.augment else None


def transform_seed(seed: int, condition: str) -> int:
    """The data-transform seed: one for all label conditions (so corruption is nested), one per image condition."""
    kind = "labels" if corruption_level(condition) is not None else condition
    return seed * 1_000_003 + zlib.crc32(kind.encode())


def run_condition(condition: str, settings: Settings) -> dict[str, Any]:
    """Transform the data, train a fresh network until it fits or the budget ends; the entry of results.json.

    One BLAS thread, wherever it runs: OpenBLAS sums in another order with more threads, so the numbers would
    depend on the worker count.
    """
    with threadpool_limits(limits=BLAS_THREADS):
        dataset = load_dataset(settings)
        seen = apply_condition(dataset, condition, transform_seed(settings.seed, condition))
        run = fit_until_memorized(
            make_model(settings, seen),
            make_optimizer(settings),
            seen,
            batch_size=settings.batch_size,
            max_steps=settings.max_steps,
            target_acc=settings.target_acc,
            seed=settings.seed,
            transform=make_transform(settings, seen),
        )
    summary = asdict(run)
    checks = {"steps": summary.pop("check_steps"), "train_loss": summary.pop("check_loss")}
    checks["train_acc"] = summary.pop("check_acc")
    return {
        "condition": condition,
        "corruption": corruption_level(condition),
        "labels_changed": float(np.mean(seen.train.y != dataset.train.y)),
        "steps_per_epoch": math.ceil(len(seen.train) / settings.batch_size),
        **summary,
        "loss_curve": loss_curve(summary.pop("step_loss"), LOSS_WINDOW),
        "fit_checks": checks,
    }


def run_conditions(
    conditions: Iterable[str],
    settings: Settings,
    executor: Executor | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every condition's result keyed by name, in the given order, run on `executor` (default: this process).

    Conditions are independent and seeded, so the numbers do not depend on where or in which order they run.
    """
    order = list(conditions)
    executor = executor or SerialExecutor()
    running = {executor.submit(run_condition, condition, settings): condition for condition in order}
    results: dict[str, dict[str, Any]] = {}
    while running:
        for handle in executor.wait_any(list(running)):
            results[running.pop(handle)] = result = executor.result(handle)
            if on_result is not None:
                on_result(result)
    return {condition: results[condition] for condition in order}


def randomize(
    conditions: Iterable[str],
    settings: Settings,
    out: str | Path,
    executor: Executor | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every condition into `out`: settings.json first, results.json after each condition (a rerun with the
    same settings and `out` skips the finished ones), then the figures. Returns results.json's content.
    """
    settings.check()
    order = list(conditions)
    out = Path(out)
    done = _resume(out, settings)
    dataset = load_dataset(settings)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "settings.json",
        {
            "settings": asdict(settings),
            "learning_rate": settings.learning_rate,
            "dataset": {
                "name": dataset.name,
                "source": dataset.source,
                "train": len(dataset.train),
                "val": len(dataset.val),
                "test": len(dataset.test),
                "num_classes": dataset.num_classes,
            },
        },
    )

    def finished(result: dict[str, Any]) -> None:
        done[result["condition"]] = result
        write_json(out / "results.json", {c: done[c] for c in [*order, *done] if c in done})
        if on_result is not None:
            on_result(result)

    for condition in order:
        if condition in done and on_result is not None:
            on_result(done[condition])
    run_conditions([c for c in order if c not in done], settings, executor, finished)
    results = {c: done[c] for c in order}
    subtitle = f"{dataset.name}, {len(dataset.train):,} training images, {settings.hidden} hidden units"
    plot_figures(results, out, subtitle, dataset.num_classes)
    return results


def _resume(out: Path, settings: Settings) -> dict[str, dict[str, Any]]:
    """The finished conditions already in `out`, when it holds a run with these settings; refuse other settings."""
    saved, results = out / "settings.json", out / "results.json"
    if not saved.exists():
        return {}
    try:
        before = json.loads(saved.read_text())["settings"]
        done = json.loads(results.read_text()) if results.exists() else {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MlplabError(f"{out}: unreadable earlier run ({exc}); use another --out or delete it") from None
    if before != json.loads(json.dumps(asdict(settings))):
        raise MlplabError(f"{out} holds a randomization run with other settings; use another --out or delete it")
    return done


# --- figures in the paper's layout ----------------------------------------------------------------------------

FIGURES = ("randomization.png", "loss_vs_steps.png", "steps_to_fit.png", "test_error.png")
COLORS = {
    "true-labels": "tab:blue",
    "random-labels": "tab:red",
    "shuffled-pixels": "tab:green",
    "random-pixels": "tab:purple",
    "gaussian": "tab:orange",
}
Results = Mapping[str, Mapping[str, Any]]


def plot_figures(results: Results, out: str | Path, subtitle: str = "", num_classes: int = 10) -> list[Path]:
    """(a) training loss vs steps per condition, (b) steps to fit and (c) test error vs label corruption: one file
    with the three panels side by side, as in the paper, then one file per panel.
    """
    out = Path(out)
    panels = (_plot_loss, _plot_steps_to_fit, _plot_test_error)
    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    for draw, ax in zip(panels, axes, strict=True):
        draw(ax, results, num_classes)
    fig.suptitle(f"Randomization tests (Zhang et al. 2017): one-hidden-layer MLP, {subtitle}")
    paths = [_save(fig, out / FIGURES[0])]
    for draw, name in zip(panels, FIGURES[1:], strict=True):
        fig, ax = plt.subplots(figsize=(7, 5))
        draw(ax, results, num_classes)
        ax.set_title(f"{ax.get_title()}\n{subtitle}")
        paths.append(_save(fig, out / name))
    return paths


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label_runs(results: Results) -> list[Mapping[str, Any]]:
    return sorted((r for r in results.values() if r["corruption"] is not None), key=lambda r: r["corruption"])


def _plot_loss(ax: plt.Axes, results: Results, num_classes: int) -> None:
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
        ax.plot(steps, loss, label=_pretty(name), **styles[name])
        if r["steps_to_fit"] is not None:
            ax.plot(steps[-1], loss[-1], "o", color=styles[name]["color"], ms=6)
    ax.axhline(np.log(num_classes), color="grey", ls=":", lw=1, label=f"ln {num_classes}: a uniform guess")
    ax.set_xlabel("minibatch steps")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title("(a) learning curves (dot: training set fit)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="upper right")


def _plot_steps_to_fit(ax: plt.Axes, results: Results, num_classes: int) -> None:
    runs = _label_runs(results)
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


def _plot_test_error(ax: plt.Axes, results: Results, num_classes: int) -> None:
    runs = _label_runs(results)
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


def _pretty(condition: str) -> str:
    return f"partial, p = {corruption_level(condition):g}" if condition.startswith(PARTIAL) else condition


# --- the section of `mlplab reproduce --with-randomization` ---------------------------------------------------

REPORT_DIR = "randomization"
QUICK = {"subset": 5000, "max_steps": 4000}
"""What --quick changes: a subset of the training images and a step budget that fits them all in minutes."""


def quick_settings(base: Mapping[str, Any]) -> Settings:
    """`mlplab randomize --quick` on a reproduce run's data and seed."""
    return Settings(dataset=base["dataset"], data_dir=base.get("data_dir"), seed=base["seed"], **QUICK)


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
            _pretty(name),
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
    """The explicit regularization in words: "no weight decay, dropout or augmentation" by default."""
    used = [
        f"weight decay {settings.weight_decay:g}" if settings.weight_decay else "",
        f"dropout {settings.dropout:g}" if settings.dropout else "",
        f"shifts of up to {settings.augment} pixels" if settings.augment else "",
    ]
    used = [u for u in used if u]
    return ", ".join(used) if used else "no weight decay, dropout or augmentation"


def _steps_cell(r: Mapping[str, Any]) -> str:
    return (
        f"{r['steps_to_fit']:,} ({r['epochs_to_fit']})" if r["steps_to_fit"] is not None else f"not fit ({r['status']})"
    )


def randomization_commentary(results: Results, num_classes: int = 10) -> list[str]:
    """What the numbers show, sentence by sentence; only claims the numbers support."""
    lines = []
    true, random = results.get("true-labels"), results.get("random-labels")

    def steps(r: Mapping[str, Any]) -> str:
        return f"{r['steps_to_fit']:,} steps" if r["steps_to_fit"] is not None else f"no fit in {r['steps']:,} steps"

    if random is not None:
        fit = random["steps_to_fit"] is not None
        line = (
            f"With random labels the network {'fits' if fit else 'does not fit'} the training set "
            f"({percent(random['train_acc'])} training accuracy, {steps(random)}) while its test accuracy is "
            f"{percent(random['test_acc'])}, chance level being {percent(1 / num_classes)}."
        )
        if fit and true is not None and true["steps_to_fit"]:
            line += (
                f" It needs {random['steps_to_fit'] / true['steps_to_fit']:.1f}× the steps of the true labels "
                f"({true['steps_to_fit']:,}): memorizing noise is slower, not impossible."
            )
        lines.append(line)
    label_runs = _label_runs(results)
    if len(label_runs) >= 2:
        low, high = label_runs[0], label_runs[-1]
        worst_train = max(1 - r["train_acc"] for r in label_runs)
        lines.append(
            f"From corruption {low['corruption']:g} to {high['corruption']:g} the test error grows from "
            f"{percent(1 - low['test_acc'])} to {percent(1 - high['test_acc'])} while the training error stays at or "
            f"below {percent(worst_train)}: the same network, with the same parameter count, generalizes or not "
            "depending only on the labels, so its capacity alone cannot explain why it generalizes on true labels."
        )
        fit_steps = [r["steps_to_fit"] for r in label_runs if r["steps_to_fit"] is not None]
        if len(fit_steps) == len(label_runs):
            monotone = all(a <= b for a, b in pairwise(fit_steps))
            lines.append(
                f"Steps to fit go from {fit_steps[0]:,} to {max(fit_steps):,} as the corruption rises"
                + (", never decreasing." if monotone else ", not strictly in order of the corruption level.")
            )
    shuffled = results.get("shuffled-pixels")
    if shuffled is not None and true is not None:
        lines.append(
            f"Shuffled pixels: {steps(shuffled)} and {percent(shuffled['test_acc'])} test accuracy against "
            f"{steps(true)} and {percent(true['test_acc'])} for the original images. A fully connected layer has no "
            "notion of neighbouring pixels: one fixed permutation only reorders the rows of W1, so the MLP (unlike "
            "the paper's convolutional networks) loses nothing."
        )
    noise = [results[c] for c in ("random-pixels", "gaussian") if c in results]
    if noise:
        parts = ", ".join(f"{r['condition']} {steps(r)} (test {percent(r['test_acc'])})" for r in noise)
        line = f"Random inputs: {parts}."
        fast = all(r["steps_to_fit"] for r in noise) and random is not None and random["steps_to_fit"]
        if fast and max(r["steps_to_fit"] for r in noise) < random["steps_to_fit"]:
            line += (
                " Noise is memorized sooner than random labels on real images, as in the paper: noise inputs lie far "
                "apart, whereas real images given different random classes still resemble each other."
            )
        lines.append(line)
    return lines
