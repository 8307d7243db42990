"""Optuna tuning: maximize validation accuracy (never test), prune hopeless trials from their per-epoch validation
accuracy, persist every finished trial in an RDB storage.

The parent asks and tells; workers only train. All storage writes happen here, so a SQLite file needs no
locking between processes and workers (local or Dask) need no database access. A worker decides pruning with
Optuna's own pruner on an in-memory copy of the completed trials' curves taken when its trial was submitted.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from optuna.study import StudyDirection
from optuna.trial import TrialState

from mlplab import config as configs
from mlplab.checkpoint import CHECKPOINT_NAME
from mlplab.errors import ConfigError, MlplabError
from mlplab.experiments.executors import Executor, cached_dataset, check_dataset_reachable, train_in_worker
from mlplab.experiments.search_space import SAMPLERS, Param, decoded
from mlplab.experiments.store import RunOutcome, RunStore, summarize
from mlplab.experiments.study_storage import driver_url, storage_lock, wait_for_others
from mlplab.files import make_dir, quoted_text, write_json, write_text
from mlplab.plots import save_figure
from mlplab.provenance import provenance
from mlplab.report import Table, percent
from mlplab.run import curves_png, metrics_dict
from mlplab.training import History

PRUNER_STARTUP = 3  # completed trials before any pruning: the median of fewer says little
PRUNER_WARMUP = 2  # epochs every trial gets before it can be pruned
TOP = 10
RUN_ATTR = "run"


def grid_left(study: optuna.Study, space: dict[str, Param]) -> int:
    """Grid points no finished or running trial of the study has taken yet."""
    keys = list(space)
    points = set(itertools.product(*(space[k].grid() for k in keys)))
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    taken = {tuple(t.params.get(k) for k in keys) for t in study.get_trials(deepcopy=False, states=states)}
    return len(points - taken)


class AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler minus its `study.stop()` once the grid is done, which only works inside `study.optimize`;
    the ask/tell loop caps the trial count at the grid size instead."""

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        pass


def make_sampler(kind: str, space: dict[str, Param], seed: int) -> optuna.samplers.BaseSampler:
    if kind == "grid":
        return AskTellGridSampler({k: p.grid() for k, p in space.items()}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ConfigError(f"unknown sampler {kind!r}; choose one of {', '.join(SAMPLERS)}")


def default_pruner() -> optuna.pruners.BasePruner:
    """Stop a trial whose validation accuracy is below the median of the completed trials' at the same epoch."""
    return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP, n_warmup_steps=PRUNER_WARMUP)


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_study(
    storage: str, name: str, sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner
) -> optuna.Study:
    """Create the study, or load it to resume; any Optuna RDB URL (sqlite:///…, postgresql://…, mysql://…).

    Under the storage's lock, so that processes opening a fresh database at once do not both create its tables.
    """
    try:
        with storage_lock(storage):
            return optuna.create_study(
                storage=driver_url(storage),
                study_name=name,
                sampler=sampler,
                pruner=pruner,
                direction="maximize",
                load_if_exists=True,
            )
    except ImportError as exc:
        raise MlplabError(f"storage {storage}: a database driver is missing ({exc})") from None
    except Exception as exc:  # SQLAlchemy's and Optuna's errors for bad URLs and unreachable servers
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""  # SQLAlchemy appends a help link
        raise MlplabError(f"cannot open the Optuna storage {storage}: {type(exc).__name__}: {reason}") from None


# --- in the worker -------------------------------------------------------------------------------------------


def trial_task(
    config: dict[str, Any],
    pruner: optuna.pruners.BasePruner,
    completed: list[tuple[float, dict[int, float]]],
    title: str = "",
    checkpoint: str | None = None,
) -> RunOutcome:
    """Train one trial; after each epoch ask the pruner, on a copy of the completed trials, whether to stop.
    With `checkpoint`, the trial's run saves its state there after every epoch and resumes from it."""
    storage = optuna.storages.InMemoryStorage()
    level = optuna.logging.get_verbosity()  # a worker process has Optuna's default level: INFO for every new study
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        name = storage.get_study_name_from_id(storage.create_new_study([StudyDirection.MAXIMIZE]))
    finally:
        optuna.logging.set_verbosity(level)
    mirror = optuna.Study(name, storage, pruner=pruner)
    mirror.add_trials(
        [optuna.trial.create_trial(value=v, intermediate_values=curve) for v, curve in completed],
    )
    trial = mirror.ask()
    seen: list[History] = []
    start = time.perf_counter()

    def on_epoch(epoch: int, history: History) -> None:
        seen[:] = [history]
        trial.report(history.val_acc[-1], epoch)
        if epoch < config["epochs"] and trial.should_prune():
            raise optuna.TrialPruned

    try:
        return train_in_worker(config, title, on_epoch, checkpoint)
    except optuna.TrialPruned:
        history = seen[0]
        history.status = "pruned"
        metrics = metrics_dict(history, config, cached_dataset(config), time.perf_counter() - start)
        return RunOutcome(metrics, curves_png=curves_png(metrics, f"{title} (pruned)"))


# --- in the parent -------------------------------------------------------------------------------------------


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead(owner_tag: Any) -> bool:
    """Whether a trial's owner was a process on this machine that no longer exists."""
    host, _, pid = str(owner_tag).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def run_info(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What a finished trial recorded about its run (status, accuracies, curve, seconds, error), stored as one
    user attribute so recording a trial costs one write plus the tell."""
    return {**trial.user_attrs, **trial.user_attrs.get(RUN_ATTR, {})}


def val_curve(trial: optuna.trial.FrozenTrial) -> dict[int, float]:
    """Validation accuracy per epoch, as recorded at the trial's end."""
    curve = run_info(trial).get("val_acc")
    if isinstance(curve, list):
        return {epoch: v for epoch, v in enumerate(curve, start=1) if v is not None}
    return dict(trial.intermediate_values)


def trial_dir(number: int) -> str:
    return f"trial-{number:04d}"


def recover_interrupted(study: optuna.Study, base: dict[str, Any], store: RunStore) -> list[int]:
    """Trials left RUNNING by a killed process on this machine: one whose run directory is complete is recorded
    from its files (never trained again); the others are marked failed and their params queued again."""
    stale = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if _dead(t.user_attrs.get("owner"))
    ]
    requeued = []
    for t in stale:
        params = configs.upgrade(decoded(t.params))  # a study begun before a key was renamed says the old name
        metrics = store.load(trial_dir(t.number), {**base, **params}) if t.params else None
        if metrics is not None:
            finish(study, t.number, metrics)
            continue
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        requeued.append(t.number)
    return requeued


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that ran to an outcome (complete, pruned, or failed on their own), not ones a kill interrupted:
    those are failed without a status, or, when killed while being told, are retried under another number."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and "status" in run_info(t) and t.number not in retried)
    ]


def budget_left(study: optuna.Study, trials: int) -> int:
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    return trials - len(finished_trials(study)) - running


def pruning_snapshot(study: optuna.Study) -> list[tuple[float, dict[int, float]]]:
    return [
        (t.value, val_curve(t))
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None
    ]


@dataclass
class TuneResult:
    study: optuna.Study
    out: Path
    storage: str

    @property
    def best(self) -> optuna.trial.FrozenTrial | None:
        complete = [
            t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None
        ]
        return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def run_study(
    base: dict[str, Any],
    space: dict[str, Param],
    trials: int,
    out: str | Path,
    executor: Executor,
    *,
    sampler: str = "tpe",
    storage: str | None = None,
    study_name: str = "mlplab",
    pruner: optuna.pruners.BasePruner | None = None,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
    on_wait: Callable[[list[optuna.trial.FrozenTrial]], None] | None = None,
) -> TuneResult:
    """Run trials until the study holds `trials` finished ones, telling each as it arrives; resumable.

    Several processes (on one machine or many) may run the same study at once: they share the trial budget, each
    asks for its trials under the storage's lock, and each waits for the others' last trials (`on_wait` hears of
    them) before reporting, so all report the same study.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_dataset_reachable(base)
    storage = storage or default_storage(out)
    pruner = pruner if pruner is not None else default_pruner()
    study = open_study(storage, study_name, make_sampler(sampler, space, base["seed"]), pruner)
    next_number = len(study.trials)
    if sampler != "grid":  # a resumed seeded sampler must not replay the first trials' draws
        study.sampler = make_sampler(sampler, space, base["seed"] + next_number)
    store = RunStore(out / "trials")
    with storage_lock(storage):  # two processes must not both requeue the same interrupted trial
        recover_interrupted(study, base, store)
    tag = owner()
    in_flight: dict[Any, tuple[optuna.Trial, dict[str, Any]]] = {}
    while True:
        while len(in_flight) < executor.slots:
            with storage_lock(storage):  # another process must not take the same last unit of budget
                if budget_left(study, trials) <= 0 or (sampler == "grid" and not grid_left(study, space)):
                    break
                trial = study.ask()
                trial.set_user_attr("owner", tag)
            if sampler != "grid" and trial.number != next_number:
                # Another process asked in between and drew with the same seed: draw from trial number's own.
                study.sampler = make_sampler(sampler, space, base["seed"] + trial.number)
            next_number = trial.number + 1
            config = {**base, **suggest_all(study, trial, space)}
            title = f"trial {trial.number}: {_params_text(trial.params)}"
            checkpoint = trial_checkpoint(store, trial, config) if executor.shares_files else None
            task = executor.submit(trial_task, config, pruner, pruning_snapshot(study), title, checkpoint)
            in_flight[task] = (trial, config)
        if not in_flight:
            break
        for handle in executor.wait_any(list(in_flight)):
            trial, config = in_flight.pop(handle)
            try:
                outcome = executor.result(handle)
            except MlplabError as exc:  # e.g. a combination of settings the trainer rejects: fix the space
                record_error(study, trial, exc)
                raise MlplabError(f"trial {trial.number} ({_params_text(trial.params)}): {exc}") from None
            except Exception as exc:  # a crash inside the trial: recorded with its error, never retried
                frozen = record_error(study, trial, exc)
            else:
                frozen = record(study, trial, outcome, store)
            if on_trial:
                on_trial(frozen)
    wait_for_others(study, tag, _dead, on_wait)
    result = TuneResult(study, out, storage)
    write_outputs(result, space)
    return result


def trial_checkpoint(store: RunStore, trial: optuna.Trial, config: dict[str, Any]) -> str:
    """Where the trial's run keeps its checkpoint; a retry of a killed trial takes over the killed one's, so it
    continues from that trial's last finished epoch."""
    path = store.checkpoint(trial_dir(trial.number), config).path
    retry_of = trial.user_attrs.get("retry_of")
    earlier = store.path(trial_dir(retry_of)) / CHECKPOINT_NAME if isinstance(retry_of, int) else None
    if earlier is not None and earlier.exists() and not path.exists():
        make_dir(path.parent)
        os.replace(earlier, path)
        store.checkpoint(trial_dir(trial.number), config)  # a checkpoint of other params is refused here too
    return str(path)


def suggest_all(study: optuna.Study, trial: optuna.Trial, space: dict[str, Param]) -> dict[str, Any]:
    """The trial's parameters; a space that contradicts the study's earlier trials is the user's to fix."""
    try:
        return {key: p.suggest(trial) for key, p in space.items()}
    except ValueError as exc:
        study.tell(trial, state=TrialState.FAIL)
        raise MlplabError(
            f"the search space does not match study {study.study_name!r}'s earlier trials ({exc}); "
            "use another --study-name or --out"
        ) from None


def record(study: optuna.Study, trial: optuna.Trial, outcome: RunOutcome, store: RunStore) -> optuna.trial.FrozenTrial:
    """Publish the trial's run directory, then record it in the study: once its files are complete, the trial is
    never trained again (killed before the study heard of it, the next start records it from the files)."""
    metrics = store.save(trial_dir(trial.number), outcome)
    return finish(study, trial.number, metrics)


def finish(study: optuna.Study, number: int, metrics: dict[str, Any]) -> optuna.trial.FrozenTrial:
    """Record a finished run as trial `number`'s outcome: one attribute write (summary and curve), then the tell."""
    s = summarize(metrics)
    info = {k: s[k] for k in ("status", "train_acc", "test_acc", "best_epoch", "epochs_done")}
    storage = study._storage  # the trial may belong to a killed process: address it by id, not as a Trial
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    storage.set_trial_user_attr(
        trial_id, RUN_ATTR, {**info, "seconds": metrics.get("total_seconds"), "val_acc": metrics["val_acc"]}
    )
    if s["status"] == "pruned":  # a pruned trial's value is its last report, as Optuna's pruning defines it
        if metrics["val_acc"]:
            storage.set_trial_intermediate_value(trial_id, len(metrics["val_acc"]), metrics["val_acc"][-1])
        return study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
    if s["val_acc"] is None or not math.isfinite(s["val_acc"]):
        return study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    return study.tell(number, s["val_acc"], skip_if_finished=True)


def record_error(study: optuna.Study, trial: optuna.Trial, exc: Exception) -> optuna.trial.FrozenTrial:
    """A trial that raised: failed, with its error, and counted as finished so no rerun retries it forever."""
    error = str(exc) if isinstance(exc, MlplabError) else f"{type(exc).__name__}: {exc}"
    trial.set_user_attr(RUN_ATTR, {"status": "error", "error": quoted_text(" ".join(error.split()), 300)})
    return study.tell(trial, state=TrialState.FAIL)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def top_table(result: TuneResult, space: dict[str, Param], top: int = TOP) -> Table:
    """The best completed trials by validation accuracy, with the test accuracy of each (reported, never used)."""
    complete = [
        t for t in result.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None
    ]
    ranked = sorted(complete, key=lambda t: (-(t.value or 0.0), t.number))[:top]
    rows = [
        [
            str(rank),
            str(t.number),
            *(_fmt(t.params.get(k)) for k in space),
            percent(t.value),
            percent(run_info(t).get("test_acc")),
            str(run_info(t).get("best_epoch")),
        ]
        for rank, t in enumerate(ranked, start=1)
    ]
    return Table(["rank", "trial", *space, "val acc", "test acc", "best epoch"], rows)


def counts(study: optuna.Study) -> dict[str, int]:
    finished = finished_trials(study)
    return {
        state.name.lower(): sum(t.state == state for t in finished)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }


def write_outputs(result: TuneResult, space: dict[str, Param]) -> None:
    """best.json, top_trials.md and history.png in the output directory."""
    best = result.best
    summary: dict[str, Any] = {"storage": result.storage, "study": result.study.study_name, **counts(result.study)}
    if best is not None:
        summary["best"] = {
            "trial": best.number,
            "params": decoded(best.params),
            "val_acc": best.value,
            "test_acc": run_info(best).get("test_acc"),
            "train_acc": run_info(best).get("train_acc"),
            "run_dir": str(result.out / "trials" / f"trial-{best.number:04d}"),
        }
    write_json(result.out / "best.json", {**summary, "provenance": provenance()})
    write_text(result.out / "top_trials.md", top_table(result, space).markdown() + "\n")
    plot_history(result.study, result.out / "history.png")


def plot_history(study: optuna.Study, path: Path) -> None:
    """Each finished trial's best validation accuracy in order, pruned ones marked, and the best so far."""
    finished = sorted(finished_trials(study), key=lambda t: t.number)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for state, marker, label in ((TrialState.COMPLETE, "o", "complete"), (TrialState.PRUNED, "x", "pruned")):
        picked = [t for t in finished if t.state == state]
        values = [100 * max(val_curve(t).values(), default=np.nan) for t in picked]
        ax.plot([t.number for t in picked], values, marker, linestyle="none", label=label)
    complete = [(t.number, t.value) for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
    if complete:
        best = 100 * np.maximum.accumulate([v for _, v in complete])
        ax.step([n for n, _ in complete], best, where="post", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    ax.set_xlabel("trial")
    ax.set_ylabel("best validation accuracy")
    ax.set_title(f"Optuna study {study.study_name!r}: validation accuracy per trial")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
