"""Where a training step's time goes, piece by piece, for both benchmarked shapes.

`python -m benchmarks.pieces [--data-dir DIR] [--repeats N]` times, on one real MNIST batch, each piece of the
step `train_epoch` runs: the batch gather, every layer's forward, the loss, every layer's backward (with plain SGD
fused in for the Two-Layer Net, as `train_epoch` does), and the optimizer's step; then the whole step and the
GEMM floor. Each figure is the median over rounds of the mean over `--repeats` calls, in µs per step.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.contenders import RECIPE_BATCH, RECIPE_HIDDEN, RECIPE_LR
from benchmarks.suite import LR, REG, Epoch, blas_threads, median_seconds, workload
from mlplab.blas import gemm
from mlplab.data import Dataset
from mlplab.layers import Network
from mlplab.models import MLP, TwoLayerNet
from mlplab.optim import SGD, Adam, Optimizer
from mlplab.training import batches


def per_call_us(run: Epoch, repeats: int, rounds: int = 5) -> float:
    """Median over rounds of the mean wall time of `repeats` calls of `run`, in µs, after one untimed call."""
    return median_seconds(run, rounds, calls=repeats) * 1e6


def pieces(ds: Dataset, model: Network, optimizer: Optimizer, batch: int, repeats: int) -> list[tuple[str, float]]:
    """(piece, µs per step) for one step of `model` + `optimizer` on a batch of `batch` training images."""
    rng = np.random.default_rng(0)
    x, y = next(batches(ds.train, batch, ds.pixel_max, model.dtype, rng))
    x, y = x.copy(), y.copy()
    fused = optimizer.fuses_into_backward

    def gather() -> None:
        for _ in batches(ds.train, batch, ds.pixel_max, model.dtype, np.random.default_rng(0)):
            pass

    steps = -(-len(ds.train) // batch)
    rows = [("batch gather + cast + scale", per_call_us(gather, 1, 3) / steps)]
    inputs = [x]
    for layer in model.layers:
        a = inputs[-1]
        rows.append(
            (f"{type(layer).__name__} forward", per_call_us(lambda a=a, layer=layer: layer.forward(a, True), repeats))
        )
        inputs.append(layer.forward(a, True).copy())
    rows.append(
        ("softmax cross-entropy + dJ/dz", per_call_us(lambda: model.loss.loss_and_grad(inputs[-1], y), repeats))
    )
    dz = model.loss.loss_and_grad(inputs[-1], y)[2].copy()
    state = {name: p.copy() for name, p in model.params.items()}
    first = next(i for i, layer in enumerate(model.layers) if layer.params)
    for i in range(len(model.layers) - 1, first - 1, -1):
        layer, need_dx = model.layers[i], i > first
        layer.forward(inputs[i], True)  # its saved input is this batch's
        if fused:
            run = lambda layer=layer, dz=dz, need_dx=need_dx: layer.backward_sgd(dz, need_dx, 1e-9, REG)  # noqa: E731
            label = f"{type(layer).__name__} backward + fused SGD"
        else:
            run = lambda layer=layer, dz=dz, need_dx=need_dx: layer.backward(dz, need_dx)  # noqa: E731
            label = f"{type(layer).__name__} backward"
        rows.append((label, per_call_us(run, repeats)))
        out = layer.backward(dz, need_dx)
        dz = out.copy() if out is not None else dz
    if not fused:
        model.train_batch(x, y)
        rows.append(
            (f"{type(optimizer).__name__} step, all parameters", per_call_us(lambda: optimizer.step(model), repeats))
        )
    model.load_state(state)

    def whole_step() -> None:
        optimizer.train_step(model, x, y)

    rows.append(("sum of the pieces", sum(us for _, us in rows)))
    rows.append(("whole step (same batch)", per_call_us(whole_step, repeats)))
    w1 = model.params["W1"]
    h, grad = np.empty((batch, w1.shape[1]), w1.dtype), np.empty_like(w1)
    delta = np.random.default_rng(1).random((batch, w1.shape[1])).astype(w1.dtype)
    rows.append(
        ("GEMM floor: x·W1 and xᵀ·δ", per_call_us(lambda: (gemm(x, w1, out=h), gemm(x.T, delta, out=grad)), repeats))
    )
    model.load_state(state)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pieces", description=__doc__)
    parser.add_argument("--data-dir", help="MNIST directory (default: $MLPLAB_DATA/mnist, else random data)")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    ds = workload(False, args.data_dir)
    shapes = {
        "Two-Layer Net 784-128-10 sigmoid, SGD (fused), batch 64": (
            TwoLayerNet(ds.input_size, 128, 10, seed=0),
            SGD(LR, reg=REG),
            64,
        ),
        f"MLP 784-{RECIPE_HIDDEN}-10 ReLU, Adam, batch {RECIPE_BATCH}": (
            MLP(ds.input_size, [RECIPE_HIDDEN], 10, activation="relu", init="he", seed=0),
            Adam(RECIPE_LR),
            RECIPE_BATCH,
        ),
    }
    print(f"workload: {ds.name}, {blas_threads()} BLAS threads; µs per step", file=sys.stderr)
    for title, (model, optimizer, batch) in shapes.items():
        print(f"\n{title}\n\n| piece | µs per step |\n| --- | --- |")
        repeats = max(10, args.repeats * 64 // batch // (8 if batch > 64 else 1))
        for name, us in pieces(ds, model, optimizer, batch, repeats):
            print(f"| {name} | {us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
