"""The train/validate loop: seeded batches, best-by-validation snapshot, test of that snapshot, History."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
from tqdm import tqdm

from mlplab.augment import BatchTransform
from mlplab.data import Dataset, Split
from mlplab.models.base import Model
from mlplab.optim import Optimizer
from mlplab.schedules import Schedule

EVAL_BATCH = 2000


@dataclass
class History:
    """Per-epoch curves plus the outcome of the run, as written to metrics.json."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_val_acc: float | None = None
    best_epoch: int | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    status: str = "ok"
    lr: list[float] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def epochs_done(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "epochs_done": self.epochs_done}


def batches(
    split: Split,
    batch_size: int,
    scale: float,
    dtype: np.dtype | str = "float32",
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) batches of scaled floats, shuffled by `rng` when given; the last batch may be short.

    x is a view of a buffer reused by the next batch: consume it before asking for another.
    """
    n = len(split)
    order = rng.permutation(n) if rng is not None else None
    width = split.x.shape[1]
    raw = np.empty((min(batch_size, n), width), split.x.dtype)
    out = np.empty((min(batch_size, n), width), dtype)
    factor = np.asarray(1.0 / scale, dtype)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        if order is None:
            rows, labels = split.x[start:stop], split.y[start:stop]
        else:
            index = order[start:stop]
            rows, labels = np.take(split.x, index, axis=0, out=raw[:m]), split.y[index]
        x = out[:m]
        # Cast, then scale in place: twice as fast as one mixed-type multiply, which casts through a buffer.
        np.copyto(x, rows)
        x *= factor
        yield x, labels


def evaluate(
    model: Model, split: Split, scale: float, batch_size: int = EVAL_BATCH, transform: BatchTransform | None = None
) -> tuple[float, float]:
    """Mean loss and accuracy of `model` over a whole split, in order, without gradients.

    Reads the split's cached float copy (made on first use), so repeated evaluation is GEMM-bound. A `transform`
    standardizes each batch as in training (it never augments here).
    """
    xs = split.scaled(scale, model.dtype)
    total_loss = total_hits = 0.0
    for start in range(0, len(split), batch_size):
        x, y = xs[start : start + batch_size], split.y[start : start + batch_size]
        if transform is not None:
            x = transform.eval(x.copy())
        loss, acc = model.forward(x, y, mode="eval")
        total_loss += loss * len(y)
        total_hits += acc * len(y)
    n = max(len(split), 1)
    return total_loss / n, total_hits / n


@dataclass
class EpochStats:
    """What one pass over the training split produced."""

    loss_sum: float = 0.0
    hits: float = 0.0
    steps: int = 0
    diverged: bool = False


def train_epoch(
    model: Model,
    optimizer: Optimizer,
    split: Split,
    batch_size: int,
    scale: float,
    rng: np.random.Generator,
    *,
    transform: BatchTransform | None = None,
    augment_rng: np.random.Generator | None = None,
    lr_at: Callable[[int], float] | None = None,
    on_step: Callable[[float], bool | None] | None = None,
) -> EpochStats:
    """One shuffled pass of forward, backward and update; stops at a NaN/inf loss or when `on_step` says so.

    `lr_at(i)` sets the learning rate of the epoch's i-th step; `on_step(loss)` runs after each update and ends
    the epoch by returning True.
    """
    stats = EpochStats()
    for x, y in batches(split, batch_size, scale, model.dtype, rng):
        if transform is not None:
            x = transform.train(x, augment_rng)
        if lr_at is not None:
            optimizer.lr = lr_at(stats.steps)
        loss, acc = model.forward(x, y, mode="train")
        if not math.isfinite(loss):
            stats.diverged = True
            break
        optimizer.step(model)
        stats.loss_sum += loss
        stats.hits += acc * len(y)
        stats.steps += 1
        if on_step is not None and on_step(loss):
            break
    return stats


def _scheduled_lr(base_lr: float, factors: np.ndarray, offset: int, i: int) -> float:
    return base_lr * float(factors[offset + i])


def _ticker(bar: tqdm) -> Callable[[float], None]:
    """An on_step that advances the progress bar (and never stops the epoch)."""

    def tick(_loss: float) -> None:
        bar.update()

    return tick


EpochCallback = Callable[[int, History], None]


def fit(
    model: Model,
    optimizer: Optimizer,
    dataset: Dataset,
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
    schedule: Schedule | None = None,
    patience: int = 0,
    transform: BatchTransform | None = None,
) -> History:
    """Train for `epochs`, validating after each; test the best-by-validation snapshot at the end.

    Stops early with status "diverged" as soon as a training loss is NaN or infinite. Options:
    `schedule` sets optimizer.lr = base_lr · factor before every step; `patience` > 0 stops once validation
    accuracy has not improved for that many epochs; `transform` augments (seeded by `seed`) and standardizes
    training batches and standardizes validation/test batches, and its standardization is folded into the
    model's first layer at the end, so the returned model takes the same inputs as any other.
    """
    rng = np.random.default_rng(seed)
    history = History()
    best_state: dict[str, np.ndarray] | None = None
    steps = math.ceil(len(dataset.train) / batch_size)
    lr_factors = schedule.factors(epochs, steps) if schedule is not None and schedule.active else None
    augment_rng = np.random.default_rng([seed, 1])  # its own stream: augmenting never changes the shuffling
    standardizer = transform.standardizer if transform is not None else None
    if standardizer is not None:
        standardizer.check_foldable(model)
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress, unit="batch")
            offset = (epoch - 1) * steps  # global index of this epoch's first step
            stats = train_epoch(
                model,
                optimizer,
                dataset.train,
                batch_size,
                dataset.pixel_max,
                rng,
                transform=transform,
                augment_rng=augment_rng,
                lr_at=None if lr_factors is None else partial(_scheduled_lr, optimizer.base_lr, lr_factors, offset),
                on_step=_ticker(bar) if progress else None,
            )
            bar.close()
            if stats.diverged:
                history.status = "diverged"
                break
            val_loss, val_acc = evaluate(model, dataset.val, dataset.pixel_max, transform=transform)
            history.train_loss.append(stats.loss_sum / steps)
            history.train_acc.append(stats.hits / len(dataset.train))
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            history.epoch_seconds.append(time.perf_counter() - start)
            history.lr.append(optimizer.lr)
            if history.best_val_acc is None or val_acc > history.best_val_acc:
                history.best_val_acc, history.best_epoch = val_acc, epoch
                best_state = model.state()
            if on_epoch is not None:
                on_epoch(epoch, history)
            if patience and epoch - history.best_epoch >= patience:
                history.stopped_early = True
                break
    if best_state is not None:
        model.load_state(best_state)
    if standardizer is not None:
        standardizer.fold_into(model)
    if best_state is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # a snapshot from before a divergence may be huge
            history.test_loss, history.test_acc = evaluate(model, dataset.test, dataset.pixel_max)
    return history
