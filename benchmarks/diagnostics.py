"""What diagnostics cost: an epoch as `fit` runs it (training pass + validation) with and without the probe
measurement and diagnostics.json written after it, side by side in rounds, for the default Two-Layer Net and for
the recipes' shape (784-1024-10 ReLU, Adam, batch 128).

`python -m benchmarks.diagnostics [--data-dir DIR] [--rounds N] [--quick]`: the target is ≤ 5% of an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.contenders import RECIPE_BATCH, RECIPE_HIDDEN, RECIPE_LR
from benchmarks.suite import LR, REG, Epoch, round_ratios, side_by_side, workload
from mlplab.data import Dataset
from mlplab.diagnostics import FILE_NAME, Diagnostics
from mlplab.models import MLP, Model, TwoLayerNet
from mlplab.optim import SGD, Adam, Optimizer
from mlplab.training import evaluate, start_diagnostics, train_epoch

TARGET = 0.05


def fit_epoch(ds: Dataset, model: Model, optimizer: Optimizer, batch: int, diagnostics: Diagnostics | None) -> Epoch:
    """One epoch as `fit` runs it: the shuffled training pass, validation, and (with diagnostics) the measurement."""
    rng = np.random.default_rng(0)
    epoch = 0

    def run() -> None:
        nonlocal epoch
        keep = None if diagnostics is None else (lambda: diagnostics.keep_step_start(model))
        train_epoch(model, optimizer, ds.train, batch, ds.pixel_max, rng, before_last_step=keep)
        val_loss, val_acc = evaluate(model, ds.val, ds.pixel_max)
        if diagnostics is not None:
            epoch += 1
            diagnostics.measure(model, epoch, {"val_loss": val_loss, "val_acc": val_acc, "lr": optimizer.lr})

    return run


def shapes(ds: Dataset) -> dict[str, tuple[Any, Any, int]]:
    """Model and optimizer factories and the batch size of each benchmarked shape."""
    return {
        "two_layer": (
            lambda: TwoLayerNet(ds.input_size, 128, 10, seed=0),
            lambda: SGD(LR, reg=REG),
            64,
        ),
        "recipe": (
            lambda: MLP(ds.input_size, [RECIPE_HIDDEN], 10, activation="relu", seed=0),
            lambda: Adam(RECIPE_LR),
            RECIPE_BATCH,
        ),
    }


def measure_cost(ds: Dataset, rounds: int) -> dict[str, Any]:
    """Per shape: seconds of a plain and a measured epoch per round, their ratio, and the one-off epoch-0 cost."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as out:
        for name, (make_model, make_optimizer, batch) in shapes(ds).items():
            plain_model, measured_model = make_model(), make_model()
            diagnostics = Diagnostics(path=Path(out) / f"{name}-{FILE_NAME}")
            start_diagnostics(diagnostics, measured_model, ds, None, 0.0)  # the probe, and epoch 0
            contenders = {
                "plain": fit_epoch(ds, plain_model, make_optimizer(), batch, None),
                "diagnostics": fit_epoch(ds, measured_model, make_optimizer(), batch, diagnostics),
                "measurement": lambda m=measured_model, d=diagnostics: d.measure(m, 1000),  # alone: less noise
            }
            times = side_by_side(contenders, rounds)
            ratios = round_ratios(times, "diagnostics", "plain")
            alone = round_ratios(times, "measurement", "plain")
            diagnostics.truncate(999)
            again = {"epoch 0": lambda m=measured_model, d=diagnostics: start_diagnostics(d, m, ds, None, 0.0)}
            first = side_by_side(again, 3)
            results[name] = {
                "batch": batch,
                "rounds": times,
                "epoch_seconds": {k: statistics.median(v) for k, v in times.items()},
                "overhead": statistics.median(ratios) - 1.0,
                "overhead_range": [min(ratios) - 1.0, max(ratios) - 1.0],
                "measurement_share": statistics.median(alone),
                "measurement_share_range": [min(alone), max(alone)],
                "epoch0_seconds": statistics.median(first["epoch 0"]),
                "probe_size": len(diagnostics.probe) if diagnostics.probe is not None else 0,
            }
    return results


def markdown(results: dict[str, Any], dataset: str) -> str:
    lines = [
        f"Diagnostics' cost on {dataset}: an epoch as `fit` runs it (training pass + validation), with and without "
        "the probe measurement and diagnostics.json, in turns; overhead = median of the rounds' ratios − 1.",
        "",
        "The measurement is also timed alone in the same rounds: its share of a plain epoch is the steadier figure.",
        "",
        "| shape | epoch without | epoch with | overhead (rounds) | measurement alone / epoch (rounds) | epoch 0, "
        "once | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        e = r["epoch_seconds"]
        low, high = r["overhead_range"]
        share_low, share_high = r["measurement_share_range"]
        lines.append(
            f"| {name} (batch {r['batch']}, probe {r['probe_size']}) | {e['plain']:.3f} s | {e['diagnostics']:.3f} s "
            f"| {r['overhead']:+.1%} ({low:+.1%} … {high:+.1%}) | {r['measurement_share']:.1%} ({share_low:.1%} … "
            f"{share_high:.1%}) | {r['epoch0_seconds']:.3f} s | ≤ {TARGET:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diagnostics", description=__doc__)
    parser.add_argument("--data-dir", help="MNIST directory (default: $MLPLAB_DATA/mnist, else random data)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the two epochs in turns (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny random data: checks the output, times nothing")
    args = parser.parse_args(argv)
    ds = workload(args.quick, args.data_dir)
    print(markdown(measure_cost(ds, 1 if args.quick else args.rounds), ds.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
