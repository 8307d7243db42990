"""Arguments and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplab.config import OPTIONS

if TYPE_CHECKING:
    from mlplab.experiments.executors import Executor
    from mlplab.training import History


def add_data_arguments(parser: argparse.ArgumentParser, default: str = "the config's, else digits") -> None:
    """--dataset and --data-dir; `default` says where the dataset comes from when --dataset is not given."""
    parser.add_argument("--dataset", choices=OPTIONS["dataset"].choices, help=f"which data (default: {default})")
    parser.add_argument(
        "--data-dir",
        help="directory with the dataset's IDX or CSV files (default: searched in $MLPLAB_DATA, the user cache, "
        "/usr/share/datasets, then downloaded); alone it means MNIST, or Fashion-MNIST for a *fashion* directory",
    )


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config FILE and repeatable --set key=value."""
    parser.add_argument(
        "--config",
        help="YAML config (the assignment's sectioned layout or flat keys; `mlplab keys` lists every key) "
        "(default: none, every key at its default)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set learning_rate=0.05; `mlplab keys` lists the keys, "
        "their defaults and what they mean (default: none)",
    )
    add_data_arguments(parser)


def epoch_line(epoch: int, history: History, epochs: int) -> str:
    """One summary line per epoch: train loss/acc, val loss/acc, seconds."""
    return (
        f"epoch {epoch:>3}/{epochs}  train loss {history.train_loss[-1]:.4f} acc {history.train_acc[-1]:.4f}"
        f"  |  val loss {history.val_loss[-1]:.4f} acc {history.val_acc[-1]:.4f}"
        f"  |  {history.epoch_seconds[-1]:.2f} s"
    )


def show_progress() -> bool:
    return sys.stderr.isatty()


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """--workers N or --dask-scheduler ADDRESS."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: the number of cores)")
    where.add_argument(
        "--dask-scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786"
    )


def executor_from(args: argparse.Namespace) -> Executor:
    """The executor --workers / --dask-scheduler ask for."""
    from mlplab.experiments.executors import make_executor

    return make_executor(args.workers, args.dask_scheduler)


def finished_line(name: str, metrics: dict[str, Any]) -> str:
    """One line per finished training run."""
    from mlplab.experiments.store import summarize
    from mlplab.report import percent

    s = summarize(metrics)
    status = "" if s["status"] == "ok" else f"  [{s['status']}]"
    return (
        f"{name}: train {percent(s['train_acc'])}  val {percent(s['val_acc'])}  test {percent(s['test_acc'])}"
        f"  ({s['epochs_done']} epochs, {duration(metrics.get('total_seconds') or 0.0)}){status}"
    )


def condition_line(r: dict[str, Any]) -> str:
    """One line per finished randomization condition."""
    fit = f"fit at step {r['steps_to_fit']:,} (epoch {r['epochs_to_fit']})" if r["steps_to_fit"] else r["status"]
    return (
        f"{r['condition']:<16} {fit:<26} train {100 * r['train_acc']:6.2f}%  test {100 * r['test_acc']:6.2f}%"
        f"  ({r['steps']:,} steps, {duration(r['seconds'])})"
    )


def reused_line(finished: int, what: str, where: str | Path) -> str | None:
    """What a rerun takes from an earlier invocation in the same output directory, e.g. "4 finished runs reused"."""
    if not finished:
        return None
    noun = what if finished == 1 else f"{what}s"
    return f"{finished} finished {noun} reused from an earlier invocation in {where} (not run again)"


def duration(seconds: float) -> str:
    """A run's wall time readable at every scale: 45 ms, 3.2 s, 41 s."""
    if seconds < 1:
        return f"{1000 * seconds:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
