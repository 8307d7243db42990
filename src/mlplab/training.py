"""The train/validate loop: seeded batches, best-by-validation snapshot, test of that snapshot, History."""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from mlplab import kernels
from mlplab.augment import BatchTransform
from mlplab.checkpoint import Checkpoint, Snapshot
from mlplab.data import Dataset, Split
from mlplab.diagnostics import IMAGE_PROBE_SIZE, PROBE_SIZE, Diagnostics, Probe
from mlplab.errors import MlplabError
from mlplab.limits import EVAL_BATCH
from mlplab.models.base import Model
from mlplab.optim import Optimizer
from mlplab.schedules import Schedule

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # only History.plot's return type; matplotlib loads on first plot


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

    def plot(self, title: str = "Learning curves") -> Figure:
        """Loss and accuracy per epoch, training vs validation, as a Matplotlib figure (a notebook shows it)."""
        from mlplab.plots import curves_figure

        return curves_figure(self.to_dict(), title)


def interactive() -> bool:
    """Whether progress bars have someone to watch them: a Jupyter kernel, or stderr on a terminal."""
    shell = sys.modules.get("IPython")
    if shell is not None and "ipykernel" in sys.modules:
        ip = shell.get_ipython()
        if ip is not None and type(ip).__name__ == "ZMQInteractiveShell":
            return True
    return sys.stderr.isatty()


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
    out = np.empty((min(batch_size, n), split.x.shape[1]), dtype)
    factor = out.dtype.type(1.0 / scale)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        x = out[: stop - start]
        # Gathered, cast and scaled in one compiled pass (NumPy needs three: take, cast, multiply).
        if order is None:
            labels = split.y[start:stop]
            kernels.slice_scaled(split.x, start, factor, x)
        else:
            index = order[start:stop]
            labels = split.y[index]
            kernels.gather_scaled(split.x, index, factor, x)
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
        loss, acc = model.evaluate_batch(x, y)
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
    before_last_step: Callable[[], None] | None = None,
) -> EpochStats:
    """One shuffled pass of forward, backward and update; stops at a NaN/inf loss or when `on_step` says so.

    `lr_at(i)` sets the learning rate of the epoch's i-th step; `on_step(loss)` runs after each update and ends
    the epoch by returning True; `before_last_step()` runs once, before the epoch's last step.
    """
    last_step = math.ceil(len(split) / batch_size) - 1 if before_last_step is not None else -1
    if transform is not None and augment_rng is None:
        raise ValueError("train_epoch: a transform needs augment_rng, its own generator")
    stats = EpochStats()
    for x, y in batches(split, batch_size, scale, model.dtype, rng):
        if transform is not None:
            assert augment_rng is not None
            x = transform.train(x, augment_rng)
        if lr_at is not None:
            optimizer.lr = lr_at(stats.steps)
        if stats.steps == last_step:
            assert before_last_step is not None
            before_last_step()
        loss, acc = optimizer.train_step(model, x, y)
        if not math.isfinite(loss):
            stats.diverged = True
            break
        stats.loss_sum += loss
        stats.hits += acc * len(y)
        stats.steps += 1
        if on_step is not None and on_step(loss):
            break
    return stats


def _ticker(bar: tqdm, then: Callable[[float], bool | None] | None) -> Callable[[float], bool | None]:
    """An on_step that advances the progress bar, then runs `then` (which may end the epoch)."""

    def tick(loss: float) -> bool | None:
        bar.update()
        return then(loss) if then is not None else None

    return tick


EpochCallback = Callable[[int, History], None]


@dataclass
class Streams:
    """The loop's random streams, both seeded by the run's seed: batch order, and augmentation (its own stream, so
    augmenting never changes the order of the batches)."""

    shuffle: np.random.Generator
    augment: np.random.Generator

    @classmethod
    def seeded(cls, seed: int) -> Streams:
        return cls(np.random.default_rng(seed), np.random.default_rng([seed, 1]))

    def named(self) -> dict[str, np.random.Generator]:
        return {"shuffle": self.shuffle, "augment": self.augment}


def train_passes(
    model: Model,
    optimizer: Optimizer,
    dataset: Dataset,
    *,
    batch_size: int,
    seed: int,
    after_pass: Callable[[int, EpochStats], bool],
    epochs: int | None = None,
    transform: BatchTransform | None = None,
    lr_at: Callable[[int, int], float] | None = None,
    on_step: Callable[[float], bool | None] | None = None,
    progress: bool = False,
    streams: Streams | None = None,
    first_epoch: int = 1,
    before_last_step: Callable[[], None] | None = None,
) -> bool:
    """The outer loop of `fit` and `fit_until_memorized`: shuffled passes over the training split, each followed
    by `after_pass(epoch, stats)`, until it returns True, `epochs` passes are done (no limit when None) or a loss
    is NaN/inf. Returns whether the training diverged. `before_last_step()` runs before each pass's last step.

    Shuffling and augmentation draw from `streams` (by default `Streams.seeded(seed)`); a resumed loop passes the
    streams as they were and starts at `first_epoch`. `lr_at(epoch, i)` sets the learning rate of the epoch's i-th
    step; `on_step` as in `train_epoch`.
    """
    streams = streams or Streams.seeded(seed)
    rng, augment_rng = streams.shuffle, streams.augment
    steps = math.ceil(len(dataset.train) / batch_size)
    model.pixel_max = dataset.pixel_max  # what its inputs are divided by: Model.predict divides raw images by it
    for epoch in range(first_epoch, epochs + 1) if epochs is not None else itertools.count(first_epoch):
        of = f"/{epochs}" if epochs is not None else ""
        bar = tqdm(total=steps, desc=f"epoch {epoch}{of}", leave=False, disable=not progress, unit="batch")
        stats = train_epoch(
            model,
            optimizer,
            dataset.train,
            batch_size,
            dataset.pixel_max,
            rng,
            transform=transform,
            augment_rng=augment_rng,
            lr_at=None if lr_at is None else partial(lr_at, epoch),
            on_step=_ticker(bar, on_step) if progress else on_step,
            before_last_step=before_last_step,
        )
        bar.close()
        if stats.diverged:
            return True
        if after_pass(epoch, stats):
            break
    return False


def fit(
    model: Model,
    optimizer: Optimizer,
    dataset: Dataset,
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    progress: bool | None = None,
    schedule: Schedule | None = None,
    patience: int = 0,
    transform: BatchTransform | None = None,
    checkpoint: Checkpoint | None = None,
    diagnostics: Diagnostics | None = None,
) -> History:
    """Train for `epochs`, validating after each; test the best-by-validation snapshot at the end.

    `progress`: a bar per epoch (tqdm.auto: a widget in Jupyter, text on a terminal); by default shown when
    someone can watch (a notebook, or stderr on a terminal).

    Stops early with status "diverged" as soon as a training loss is NaN or infinite. Options:
    `schedule` sets optimizer.lr = base_lr · factor before every step; `patience` > 0 stops once validation
    accuracy has not improved for that many epochs; `transform` augments (seeded by `seed`) and standardizes
    training batches and standardizes validation/test batches, and its standardization is folded into the
    model's first layer at the end, so the returned model takes the same inputs as any other. `checkpoint` is
    saved after every epoch and, when it holds an unfinished run, resumed from: the run goes on as if never stopped.
    `diagnostics` measures the model on its probe at epoch 0 (before any step) and after each epoch's validation,
    never inside the step loop (see `mlplab.diagnostics`); it changes none of training's numbers, and a resumed
    run continues its records from the checkpoint.
    """
    history = History()
    best_state: dict[str, np.ndarray] | None = None
    streams = Streams.seeded(seed)
    saved = checkpoint.restore(model, optimizer, streams.named()) if checkpoint is not None else None
    if saved is not None:
        history, best_state = History(**{k: v for k, v in saved.progress.items() if k != "epochs_done"}), saved.best
    steps = math.ceil(len(dataset.train) / batch_size)
    lr_factors = schedule.factors(epochs, steps) if schedule is not None and schedule.active else None
    base_lr = optimizer.base_lr
    standardizer = transform.standardizer if transform is not None else None
    if standardizer is not None and not model.folds_input_affine(len(standardizer.mean)):
        raise MlplabError(
            f"{type(model).__name__} has no first layer W1 ({len(standardizer.mean)} inputs) with a bias b1 "
            "to fold the input standardization into; use normalize: none with it"
        )
    start = time.perf_counter()

    def scheduled_lr(epoch: int, i: int) -> float:
        assert lr_factors is not None
        return base_lr * float(lr_factors[(epoch - 1) * steps + i])

    def after_pass(epoch: int, stats: EpochStats) -> bool:
        nonlocal best_state, start
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
        if diagnostics is not None:
            diagnostics.measure(model, epoch, {key: getattr(history, key)[-1] for key in CURVES})
        if on_epoch is not None:
            on_epoch(epoch, history)
        start = time.perf_counter()
        if patience and history.best_epoch is not None and epoch - history.best_epoch >= patience:
            history.stopped_early = True
        if checkpoint is not None:
            extra = {"diagnostics": diagnostics.to_dict()} if diagnostics is not None else None
            snapshot = Snapshot(epoch, history.stopped_early, asdict(history), best_state, extra)
            checkpoint.save(model, optimizer, streams.named(), snapshot)
        return history.stopped_early

    if diagnostics is not None:
        resumed = None if saved is None else (saved.extra or {}).get("diagnostics")
        start_diagnostics(
            diagnostics, model, dataset, transform, optimizer.lr, resumed, 0 if saved is None else saved.epoch
        )
    with np.errstate(over="ignore", invalid="ignore"):
        diverged = train_passes(
            model,
            optimizer,
            dataset,
            batch_size=batch_size,
            seed=seed,
            after_pass=after_pass,
            epochs=epochs if saved is None or not saved.done else saved.epoch,
            transform=transform,
            lr_at=None if lr_factors is None else scheduled_lr,
            progress=interactive() if progress is None else progress,
            streams=streams,
            first_epoch=saved.epoch + 1 if saved is not None else 1,
            before_last_step=None if diagnostics is None else partial(diagnostics.keep_step_start, model),
        )
    if diverged:
        history.status = "diverged"
    if best_state is not None:
        model.load_state(best_state)
    if standardizer is not None:
        model.fold_input_affine(*standardizer.affine())
    if best_state is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # a snapshot from before a divergence may be huge
            history.test_loss, history.test_acc = evaluate(model, dataset.test, dataset.pixel_max)
    return history


CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


def start_diagnostics(
    diagnostics: Diagnostics,
    model: Model,
    dataset: Dataset,
    transform: BatchTransform | None,
    lr: float,
    resumed: dict[str, Any] | None = None,
    epoch: int = 0,
    *,
    probe_split: str | None = None,
    curves: Callable[[], dict[str, float]] | None = None,
) -> None:
    """Give `diagnostics` its probe and measure epoch 0, before any step; or, for a run resumed after `epoch`, take
    the records its checkpoint kept (`resumed`) and go on from there. Both loops, `fit` and `fit_until_memorized`.

    The probe is the first `PROBE_SIZE` samples (`IMAGE_PROBE_SIZE` for convolutional networks) of `probe_split`:
    by default the validation split ("train" when it has fewer than 2 samples). `curves()` gives epoch 0's curve
    values; by default the validation loss and accuracy.
    """
    if diagnostics.needs_probe():
        size = IMAGE_PROBE_SIZE if any(len(shape) == 3 for shape in model.layer_shapes) else PROBE_SIZE
        name = probe_split or ("val" if len(dataset.val) >= 2 else "train")
        split = dataset.train if name == "train" else dataset.val
        diagnostics.probe = Probe.from_split(split, dataset.pixel_max, model.dtype, size, transform, name)
    if resumed is not None:
        diagnostics.restore(resumed)
        diagnostics.resume_at(model, epoch)
        diagnostics.save()
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if curves is None:
            val_loss, val_acc = evaluate(model, dataset.val, dataset.pixel_max, transform=transform)
            values = {"val_loss": val_loss, "val_acc": val_acc}
        else:
            values = curves()
        diagnostics.measure(model, 0, {**values, "lr": lr})


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
    checkpoint: Checkpoint | None = None,
    diagnostics: Diagnostics | None = None,
) -> Memorization:
    """Train until accuracy on the whole training split reaches `target_acc` (checked at step 0 and after every
    pass) or `max_steps` minibatch steps are spent, then test. Status "fit", "budget" or "diverged".

    The randomization tests' loop (Zhang et al. 2017): no validation, no snapshot, the model as it ends.
    `transform` augments training batches only, never the fit check. `checkpoint` is saved after every pass and,
    when it holds an unfinished run, resumed from. `diagnostics` measures the model on a probe of the training split
    as this loop sees it (the thing being memorized) at epoch 0, before any step, and after every pass's fit check,
    whose loss and accuracy its records carry; it changes none of the numbers, and a resumed run continues its
    records from the checkpoint, as in `fit`.
    """
    if max_steps < 1:
        raise MlplabError(f"the step budget must be ≥ 1, got {max_steps}")
    start = time.perf_counter()
    train, scale = dataset.train, dataset.pixel_max
    result = Memorization()
    streams = Streams.seeded(seed)
    saved = checkpoint.restore(model, optimizer, streams.named()) if checkpoint is not None else None
    if saved is not None:
        result = Memorization(**saved.progress)
        start -= result.seconds  # the wall time of the passes before the kill counts too

    def check() -> bool:
        loss, acc = evaluate(model, train, scale)
        result.check_steps.append(result.steps)
        result.check_loss.append(loss)
        result.check_acc.append(acc)
        if acc >= target_acc:
            result.status = "fit"
            result.steps_to_fit, result.epochs_to_fit = result.steps, result.epochs
        return result.status == "fit"

    def keep_if_last() -> None:
        """θ before the budget's last step, which may end a pass early: its step update ratio (the pass's last
        step otherwise comes from train_passes' before_last_step)."""
        if diagnostics is not None and len(result.step_loss) == max_steps - 1:
            diagnostics.keep_step_start(model)

    def logged(loss: float) -> bool:
        result.step_loss.append(loss)
        keep_if_last()
        return len(result.step_loss) >= max_steps  # ends the epoch when the budget is spent

    def after_pass(epoch: int, stats: EpochStats) -> bool:
        result.steps, result.epochs = len(result.step_loss), epoch
        done = check() or result.steps >= max_steps
        if diagnostics is not None:
            curves = {"train_loss": result.check_loss[-1], "train_acc": result.check_acc[-1], "lr": optimizer.lr}
            diagnostics.measure(model, epoch, curves)
            if not done:
                keep_if_last()  # the measurement forgot any copy: the next pass may start with the budget's last step
        if on_epoch is not None:
            on_epoch(result)
        if checkpoint is not None:
            result.seconds = time.perf_counter() - start
            extra = {"diagnostics": diagnostics.to_dict()} if diagnostics is not None else None
            checkpoint.save(model, optimizer, streams.named(), Snapshot(epoch, done, asdict(result), None, extra))
        return done

    with np.errstate(over="ignore", invalid="ignore"):
        done = saved.done if saved is not None else check()  # a run killed after its last pass: only the test left
        if diagnostics is not None:
            resumed = None if saved is None else (saved.extra or {}).get("diagnostics")
            start_diagnostics(
                diagnostics,
                model,
                dataset,
                transform,
                optimizer.lr,
                resumed,
                0 if saved is None else saved.epoch,
                probe_split="train",
                curves=lambda: {"train_loss": result.check_loss[0], "train_acc": result.check_acc[0]},
            )
            keep_if_last()
        if not done:
            diverged = train_passes(
                model,
                optimizer,
                dataset,
                batch_size=batch_size,
                seed=seed,
                after_pass=after_pass,
                transform=transform,
                on_step=logged,
                streams=streams,
                first_epoch=saved.epoch + 1 if saved is not None else 1,
                before_last_step=None if diagnostics is None else partial(diagnostics.keep_step_start, model),
            )
            if diverged:
                result.status, result.steps = "diverged", len(result.step_loss)
        result.test_loss, result.test_acc = evaluate(model, dataset.test, scale)
    result.train_loss, result.train_acc = result.check_loss[-1], result.check_acc[-1]
    result.seconds = time.perf_counter() - start
    return result
