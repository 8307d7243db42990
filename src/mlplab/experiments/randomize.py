"""The randomization tests of Zhang et al. (2017): train a fresh MLP or CNN on each condition's data until it fits its
training set, on any executor, resumably; results.json, settings.json and the paper's figures in one directory, and
per condition a directory of its own with its diagnostics.json and final model.npz (`mlplab inspect` reads it).

The conditions are in `conditions`, the corruptions they apply in `mlplab.corruptions`, the loop in
`mlplab.training.fit_until_memorized`, the network and optimizer come from the same factories as `mlplab train`'s.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mlplab import files
from mlplab.checkpoint import Checkpoint
from mlplab.config import applicable
from mlplab.data import Dataset
from mlplab.diagnostics import FILE_NAME as DIAGNOSTICS_FILE
from mlplab.diagnostics import LIVE_FILE_NAME, Diagnostics
from mlplab.errors import MlplabError
from mlplab.experiments.conditions import apply_condition, corruption_level, transform_seed
from mlplab.experiments.executors import (
    BLAS_THREADS,
    Executor,
    SerialExecutor,
    cached_dataset,
    make_executor,
    run_dir_name,
)
from mlplab.experiments.figures import plot_randomization
from mlplab.experiments.randomize_settings import QUICK, RENAMED, Settings
from mlplab.files import remove_stale_temporaries, write_json
from mlplab.models import Model
from mlplab.provenance import provenance
from mlplab.run import make_model, make_optimizer, make_transform
from mlplab.training import fit_until_memorized, interactive

LOSS_WINDOW = 10
"""results.json keeps the training loss as the mean over each run of this many steps."""
CHECKPOINTS = "checkpoints"
"""The directory in `out` where unfinished conditions keep their checkpoints (one file each, removed when done)."""
FILES = "files"
"""The key of `run_condition`'s result holding the condition's own files by name (diagnostics.json, model.npz) as
bytes, so a worker that does not share files sends them too: the parent writes them into out/<condition>/ and pops
the key, so results.json never holds it."""
CONDITION_FILES = (DIAGNOSTICS_FILE, "model.npz")
EXPERIMENT = "randomize"
"""What diagnostics.json's run.experiment says of a condition's records (`mlplab inspect` reads it)."""


def load_dataset(settings: Settings) -> Dataset:
    """The settings' dataset (loaded once per process), cut to `subset` training images when given."""
    dataset = cached_dataset({"dataset": settings.dataset, "data_dir": settings.data_dir})
    return dataset.subset(settings.subset) if settings.subset else dataset


def quick_settings(base: dict[str, Any]) -> Settings:
    """`mlplab randomize --quick` on a training config's data and seed."""
    return Settings(
        dataset=base["dataset"],
        data_dir=base.get("data_dir"),
        seed=base["seed"],
        subset=QUICK["subset"],
        max_steps=QUICK["max_steps"],
    )


def loss_curve(step_loss: list[float], window: int) -> dict[str, list]:
    """Every step's loss as means over consecutive windows of `window` steps, each placed at its last step."""
    ends = [*range(window, len(step_loss), window), len(step_loss)] if step_loss else []
    starts = [0, *ends][: len(ends)]
    return {"steps": ends, "train_loss": [float(np.mean(step_loss[i:j])) for i, j in zip(starts, ends, strict=True)]}


def condition_checkpoint(condition: str, settings: Settings, directory: str | Path) -> Checkpoint:
    """Where a condition's training keeps its checkpoint: one file per condition in `directory`."""
    identity = {"condition": condition, "settings": asdict(settings)}
    return Checkpoint(Path(directory) / f"{run_dir_name(condition)}.npz", identity)


def condition_dir(out: str | Path, condition: str) -> Path:
    """The directory of one condition's own files in `out`: diagnostics.json and model.npz."""
    return Path(out) / run_dir_name(condition)


def run_condition(
    condition: str,
    settings: Settings,
    checkpoints: str | Path | None = None,
    tensorboard: str | None = None,
    live: str | Path | None = None,
    diagnostics: bool = True,
) -> dict[str, Any]:
    """Transform the data, train a fresh network until it fits or the budget ends; the entry of results.json, plus
    under `FILES` the condition's diagnostics.json and final model.npz as bytes (the caller pops them).

    One BLAS thread, wherever it runs: OpenBLAS sums in another order with more threads, so the numbers would
    depend on the worker count. Every condition starts from the same initialization. With `checkpoints` (a
    directory), the training saves its state there after every pass and resumes from it. With `tensorboard`, the
    fit checks and weights go to TensorBoard event files in its sub-directory named after the condition. The run is
    measured (`mlplab.diagnostics`, probe: the condition's training split) without changing any of its numbers;
    with `live` (a directory this task sees), the records so far are kept in its diagnostics.live.json, so `mlplab
    inspect` can read a condition still training. `diagnostics=False` measures nothing and returns no files (to time
    what measuring costs).
    """
    config = settings.config()
    with threadpool_limits(limits=BLAS_THREADS):
        dataset = load_dataset(settings)
        seen = apply_condition(dataset, condition, transform_seed(settings.seed, condition))
        model = make_model(config, seen)
        measured = None
        if diagnostics:
            measured = Diagnostics(path=None if live is None else files.make_dir(live) / LIVE_FILE_NAME)
            measured.run = {
                "config": applicable(config),
                "dataset": seen.summary(),
                "experiment": EXPERIMENT,
                "condition": condition,
            }
        board, outcome = None, None
        if tensorboard:
            from mlplab.tensorboard import TensorBoardLog

            hparams = {"condition": condition, **asdict(settings)}
            board = TensorBoardLog(Path(tensorboard) / condition, model, hparams, seen.image_shape)
        try:
            run = fit_until_memorized(
                model,
                make_optimizer(config),
                seen,
                batch_size=settings.batch_size,
                max_steps=settings.max_steps,
                target_acc=settings.target_acc,
                seed=settings.seed,
                transform=make_transform(config, seen, model.dtype.name),
                on_epoch=board.memorization if board is not None else None,
                checkpoint=condition_checkpoint(condition, settings, checkpoints) if checkpoints is not None else None,
                diagnostics=measured,
            )
            produced_by = provenance()
            outcome = asdict(run)
        finally:
            if board is not None:
                board.close(outcome)
    summary = asdict(run)
    checks = {"steps": summary.pop("check_steps"), "train_loss": summary.pop("check_loss")}
    checks["train_acc"] = summary.pop("check_acc")
    entry = {
        "condition": condition,
        "corruption": corruption_level(condition),
        "labels_changed": float(np.mean(seen.train.y != dataset.train.y)),
        "steps_per_epoch": math.ceil(len(seen.train) / settings.batch_size),
        **summary,
        "loss_curve": loss_curve(summary.pop("step_loss"), LOSS_WINDOW),
        "fit_checks": checks,
        "provenance": produced_by,
    }
    if measured is not None:
        meta = {"dataset": settings.dataset, "data_dir": settings.data_dir, "pixel_max": seen.pixel_max}
        entry[FILES] = {
            DIAGNOSTICS_FILE: measured.to_json(),
            "model.npz": model_bytes(model, **meta, experiment=EXPERIMENT, condition=condition),
        }
    return entry


def model_bytes(model: Model, **meta: Any) -> bytes:
    """model.npz's bytes (`Model.archive`: parameters and a header with `meta`), as `Model.save` would write them."""
    buffer = io.BytesIO()
    files.npz_writer(model.archive(**meta))(buffer)
    return buffer.getvalue()


def publish_condition(out: str | Path, result: dict[str, Any]) -> None:
    """Pop a finished condition's files (`FILES`) from its result and publish them into out/<condition>/ as a unit,
    diagnostics.json last; then its live diagnostics file goes, as `mlplab train` does at the end of a run."""
    written = result.pop(FILES, None)
    if written is None:
        return
    directory = files.make_dir(condition_dir(out, result["condition"]))
    remove_stale_temporaries(directory)  # a killed worker's half-written live file; its task is over
    files.publish(directory, written, marker=DIAGNOSTICS_FILE, owned=CONDITION_FILES)
    (directory / LIVE_FILE_NAME).unlink(missing_ok=True)


def run_conditions(
    conditions: Iterable[str],
    settings: Settings,
    executor: Executor | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    checkpoints: Path | None = None,
    tensorboard: str | Path | None = None,
    out: Path | None = None,
    diagnostics: bool = True,
) -> dict[str, dict[str, Any]]:
    """Every condition's result keyed by name, in the given order, run on `executor` (default: this process);
    with `checkpoints`, each keeps a checkpoint in that directory (when the executor's tasks see it).

    Conditions are independent and seeded, so the numbers do not depend on where or in which order they run.
    With `tensorboard`, each condition logs into its own sub-directory of it. With `out`, each condition's
    diagnostics.json and model.npz are written into out/<condition>/ by this process as its result arrives, before
    `on_result` sees it (and while it trains, its live records when the executor's tasks see this process's files).
    `diagnostics=False`: nothing measured, no files.
    """
    order = list(conditions)
    executor = executor or SerialExecutor()
    where = str(checkpoints) if checkpoints is not None and executor.shares_files else None
    board = str(tensorboard) if tensorboard else None
    running = {
        executor.submit(
            run_condition, condition, settings, where, board, live_dir(out, condition, executor), diagnostics
        ): condition
        for condition in order
    }
    results: dict[str, dict[str, Any]] = {}
    while running:
        for handle in executor.wait_any(list(running)):
            results[running.pop(handle)] = result = executor.result(handle)
            if out is not None:
                publish_condition(out, result)
            result.pop(FILES, None)
            if on_result is not None:
                on_result(result)
    return {condition: results[condition] for condition in order}


def live_dir(out: Path | None, condition: str, executor: Executor) -> str | None:
    """Where a condition keeps its live diagnostics while it trains: its directory in `out`, when the executor's
    tasks see this process's files."""
    return str(condition_dir(out, condition)) if out is not None and executor.shares_files else None


def randomize(
    conditions: Iterable[str],
    settings: Settings,
    out: str | Path,
    executor: Executor | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    progress: bool | None = None,
    tensorboard: str | Path | None = None,
    *,
    diagnostics: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run every condition into `out`: settings.json first, results.json after each condition (a rerun with the
    same settings and `out` skips the finished ones), then the figures. Returns results.json's content.

    Each condition's diagnostics.json and final model.npz go into out/<condition>/ when it finishes, before
    results.json names it (while it trains, its records so far are in diagnostics.live.json there, when the
    executor's tasks see this process's files); `mlplab inspect out/<condition>` reports on them.
    `diagnostics=False` measures nothing (to time what measuring costs; the results are the same).

    Without an `executor` the conditions run on a pool of one process per core, as `mlplab randomize` does.
    `progress`: a bar over the conditions (tqdm.auto), by default when someone can watch (a notebook, a terminal).
    `tensorboard`: a directory for TensorBoard event files, one sub-directory per condition (not part of the settings:
    a rerun may log elsewhere and still resume).
    """
    if executor is None:
        with make_executor() as pool:
            return randomize(conditions, settings, out, pool, on_result, progress, tensorboard, diagnostics=diagnostics)
    settings.check()
    if tensorboard:
        from mlplab.tensorboard import require

        require()
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

    checkpoints = out / CHECKPOINTS
    remove_stale_temporaries(checkpoints)  # a checkpoint write a kill interrupted

    def finished(result: dict[str, Any]) -> None:
        done[result["condition"]] = result
        write_json(out / "results.json", {c: done[c] for c in [*order, *done] if c in done})
        condition_checkpoint(result["condition"], settings, checkpoints).remove()
        if on_result is not None:
            on_result(result)

    for condition in order:
        if condition in done:
            condition_checkpoint(condition, settings, checkpoints).remove()  # killed before it was removed
            if on_result is not None:
                on_result(done[condition])
    show = interactive() if progress is None else progress
    bar = tqdm(total=len(order), initial=sum(c in done for c in order), desc="conditions", disable=not show)

    def tick(result: dict[str, Any]) -> None:
        finished(result)
        bar.set_postfix_str(result["condition"])
        bar.update()

    try:
        pending = [c for c in order if c not in done]
        run_conditions(pending, settings, executor, tick, checkpoints, tensorboard, out, diagnostics)
    finally:
        bar.close()
    with contextlib.suppress(OSError):
        checkpoints.rmdir()  # empty once every condition is done
    results = {c: done[c] for c in order}
    subtitle = f"{dataset.name}, {len(dataset.train):,} training images"
    plot_randomization(results, out, subtitle, dataset.num_classes, settings.network)
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
    if not isinstance(done, dict) or not all(isinstance(r, dict) and "condition" in r for r in done.values()):
        raise MlplabError(f"{results}: not a randomization run's results; use another --out or delete it")
    before = {RENAMED.get(k, k): v for k, v in before.items()} if isinstance(before, dict) else before
    if before != json.loads(json.dumps(asdict(settings))):
        raise MlplabError(f"{out} holds a randomization run with other settings; use another --out or delete it")
    return done
