"""What exact resume costs: an epoch of the recipes' shape (784-1024-10 ReLU, Adam, batch 128: a training pass and
the validation `fit` runs after it) with and without the checkpoint `fit` then writes, side by side in rounds.

Run as `python -m benchmarks.checkpoint`; the suite (`python -m benchmarks`) includes it. `--quick` shrinks the
workload so CI can check the output's shape.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from benchmarks.contenders import RECIPE_BATCH, RECIPE_HIDDEN, RECIPE_LR
from benchmarks.suite import (
    REPO,
    Epoch,
    blas_threads,
    median_seconds,
    round_ratios,
    side_by_side,
    workload,
    write_results,
)
from mlplab.checkpoint import CHECKPOINT_NAME, Checkpoint, Snapshot
from mlplab.data import Dataset
from mlplab.models import MLP
from mlplab.optim import Adam
from mlplab.training import History, Streams, evaluate, train_epoch

CLASSES = 10


def epochs(ds: Dataset, directory: Path) -> tuple[dict[str, Epoch], Epoch, Checkpoint]:
    """Two turns on one model: an epoch as `fit` runs it, and the same epoch followed by the checkpoint `fit` saves
    (parameters, Adam's moments, the streams, the History and a best-by-validation snapshot)."""
    model = MLP(ds.input_size, [RECIPE_HIDDEN], CLASSES, activation="relu", init="he", seed=0)
    optimizer = Adam(RECIPE_LR)
    streams = Streams.seeded(0)
    checkpoint = Checkpoint(directory / CHECKPOINT_NAME, {"benchmark": "recipe shape"})
    history = History()
    best = model.state()

    def epoch() -> None:
        stats = train_epoch(model, optimizer, ds.train, RECIPE_BATCH, ds.pixel_max, streams.shuffle)
        val_loss, val_acc = evaluate(model, ds.val, ds.pixel_max)
        history.train_loss.append(stats.loss_sum / max(stats.steps, 1))
        history.val_loss.append(val_loss)
        history.val_acc.append(val_acc)

    def save() -> None:
        snapshot = Snapshot(history.epochs_done, False, vars(history).copy(), best)
        checkpoint.save(model, optimizer, streams.named(), snapshot)

    def epoch_and_checkpoint() -> None:
        epoch()
        save()

    return {"epoch": epoch, "epoch + checkpoint": epoch_and_checkpoint}, save, checkpoint


def checkpoint_cost(ds: Dataset, rounds: int) -> dict[str, Any]:
    """Seconds of both turns per round and the checkpoint's share: median over rounds of (with / without) − 1;
    and, steadier on a busy machine, the save alone (median of repeated saves) over the median epoch."""
    with tempfile.TemporaryDirectory() as directory:
        turns, save, checkpoint = epochs(ds, Path(directory))
        times = side_by_side(turns, rounds)
        save_seconds = median_seconds(save, max(5, 2 * rounds))
        size = checkpoint.path.stat().st_size
    overheads = [r - 1.0 for r in round_ratios(times, "epoch + checkpoint", "epoch")]
    return {
        "workload": {"dataset": ds.name, "train_samples": len(ds.train), "hidden": RECIPE_HIDDEN},
        "rounds": times,
        "epoch_seconds": statistics.median(times["epoch"]),
        "checkpointed_epoch_seconds": statistics.median(times["epoch + checkpoint"]),
        "checkpoint_bytes": size,
        "overhead": statistics.median(overheads),
        "overhead_range": [min(overheads), max(overheads)],
        "save_seconds": save_seconds,
        "save_share": save_seconds / statistics.median(times["epoch"]),
    }


def markdown_row(c: dict[str, Any]) -> str:
    """One line of the suite's recipes table."""
    low, high = c["overhead_range"]
    return (
        f"| checkpoint after each epoch ({c['checkpoint_bytes'] / 2**20:.1f} MiB) | save alone "
        f"{c['save_seconds'] * 1000:.0f} ms = {c['save_share']:.1%} of a {c['epoch_seconds']:.2f} s epoch; side by "
        f"side {c['overhead']:+.1%} (rounds {low:+.1%}…{high:+.1%}) | ≤ 3% |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny workload: checks the output, times nothing")
    parser.add_argument("--data-dir", help="MNIST directory (default: $MLPLAB_DATA/mnist, else random data)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of both turns (default: %(default)s)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="where JSON + Markdown go")
    parser.add_argument("--threads", type=int, help="BLAS threads (default: BLAS's own, all cores)")
    args = parser.parse_args(argv)
    with threadpool_limits(args.threads):
        ds = workload(args.quick, args.data_dir)
        results = {"blas_threads": blas_threads(), **checkpoint_cost(ds, 1 if args.quick else args.rounds)}
    table = "| measure | value | target |\n| --- | --- | --- |\n" + markdown_row(results) + "\n"
    write_results(results, table, Path(args.out), "checkpoint_quick" if args.quick else "checkpoint_latest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
