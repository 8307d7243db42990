"""What diagnostics cost: an epoch as `fit` runs it (training pass + validation) with and without the probe
measurement and diagnostics.json written after it, side by side in rounds, for the default Two-Layer Net and for
the recipes' shape (784-1024-10 ReLU, Adam, batch 128); and a pass as `mlplab randomize --quick` runs it
(`fit_until_memorized`: the training pass over the first 5,000 images + the fit check on all of them, 784-1024-10
ReLU, Adam 0.002, batch 128; the probe from the training split).

`python -m benchmarks.diagnostics [--data-dir DIR] [--rounds N] [--quick] [--shape NAME ...]`: the target is ≤ 5%
of an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.contenders import RECIPE_BATCH, RECIPE_HIDDEN, RECIPE_LR
from benchmarks.suite import LR, REG, Epoch, round_ratios, side_by_side, workload
from mlplab.data import Dataset
from mlplab.diagnostics import FILE_NAME, Diagnostics
from mlplab.experiments.randomize_settings import DEFAULT_LR, QUICK
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


def memorize_pass(
    ds: Dataset, model: Model, optimizer: Optimizer, batch: int, diagnostics: Diagnostics | None
) -> Epoch:
    """One pass as `fit_until_memorized` runs it: the shuffled training pass, the fit check on the whole training
    split, and (with diagnostics) the measurement carrying that check."""
    rng = np.random.default_rng(0)
    epoch = 0

    def run() -> None:
        nonlocal epoch
        keep = None if diagnostics is None else (lambda: diagnostics.keep_step_start(model))
        train_epoch(model, optimizer, ds.train, batch, ds.pixel_max, rng, before_last_step=keep)
        loss, acc = evaluate(model, ds.train, ds.pixel_max)
        if diagnostics is not None:
            epoch += 1
            diagnostics.measure(model, epoch, {"train_loss": loss, "train_acc": acc, "lr": optimizer.lr})

    return run


MEMORIZING = ("randomize_quick",)
"""Shapes timed as a pass of `fit_until_memorized` on `QUICK["subset"]` training images, probed on them."""


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
        "randomize_quick": (
            lambda: MLP(ds.input_size, [1024], 10, activation="relu", init="he", seed=0),
            lambda: Adam(DEFAULT_LR["adam"]),
            128,
        ),
    }


def measure_cost(ds: Dataset, rounds: int, only: Sequence[str] = ()) -> dict[str, Any]:
    """Per shape (all, or those named in `only`): seconds of a plain and a measured epoch per round, their ratio,
    and the one-off epoch-0 cost."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as out:
        for name, (make_model, make_optimizer, batch) in shapes(ds).items():
            if only and name not in only:
                continue
            memorizing = name in MEMORIZING
            data = ds.subset(QUICK["subset"]) if memorizing else ds
            epoch_of = memorize_pass if memorizing else fit_epoch
            plain_model, measured_model = make_model(), make_model()
            diagnostics = Diagnostics(path=Path(out) / f"{name}-{FILE_NAME}")
            start = partial(start_diagnostics, diagnostics, measured_model, data, None, 0.0)
            if memorizing:
                start = partial(start, probe_split="train", curves=lambda: {})
            start()  # the probe, and epoch 0
            contenders = {
                "plain": epoch_of(data, plain_model, make_optimizer(), batch, None),
                "diagnostics": epoch_of(data, measured_model, make_optimizer(), batch, diagnostics),
                "measurement": lambda m=measured_model, d=diagnostics: d.measure(m, 1000),  # alone: less noise
            }
            times = side_by_side(contenders, rounds)
            ratios = round_ratios(times, "diagnostics", "plain")
            alone = round_ratios(times, "measurement", "plain")
            diagnostics.truncate(999)
            again = {"epoch 0": start}
            first = side_by_side(again, 3)
            results[name] = {
                "batch": batch,
                "train": len(data.train),
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
        f"{', '.join(MEMORIZING)}: a pass of `fit_until_memorized` on the first {QUICK['subset']:,} training images "
        "(training pass + fit check on them), probed on them, as `mlplab randomize --quick` runs a condition.",
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
            f"| {name} ({r['train']:,} train, batch {r['batch']}, probe {r['probe_size']}) | {e['plain']:.3f} s "
            f"| {e['diagnostics']:.3f} s | {r['overhead']:+.1%} ({low:+.1%} … {high:+.1%}) "
            f"| {r['measurement_share']:.1%} ({share_low:.1%} … {share_high:.1%}) | {r['epoch0_seconds']:.3f} s "
            f"| ≤ {TARGET:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diagnostics", description=__doc__)
    parser.add_argument("--data-dir", help="MNIST directory (default: $MLPLAB_DATA/mnist, else random data)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the two epochs in turns (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny random data: checks the output, times nothing")
    parser.add_argument(
        "--shape", action="append", default=[], metavar="NAME", help="time only this shape (repeatable; default all)"
    )
    args = parser.parse_args(argv)
    ds = workload(args.quick, args.data_dir)
    print(markdown(measure_cost(ds, 1 if args.quick else args.rounds, args.shape), ds.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
