"""How close mlplab's step is to the fastest NumPy can go: the same step inlined with the fewest calls, vs the floor.

`python -m benchmarks.headroom [--data-dir DIR] [--rounds N]` times, in turns: the GEMM floor, mlplab's real
`train_epoch`, and one epoch of a hand-inlined step that makes the fewest NumPy/BLAS calls this network needs
(biases and the sigmoid's halving folded into the GEMMs, every update one GEMM, no Python layers). Whatever the
inlined step still spends above the floor is the cost of NumPy's calls themselves, out of mlplab's reach.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from scipy.linalg import blas

from benchmarks.suite import LR, REG, Epoch, floor_epoch, mlplab_epoch, round_ratio, side_by_side, workload
from mlplab.data import Dataset


def inlined_epoch(ds: Dataset, hidden: int, batch: int, params: dict[str, np.ndarray] | None = None) -> Epoch:
    """One epoch of the default net + SGD in ≈ 30 NumPy/BLAS calls per step, every buffer preallocated.

    Starts from TwoLayerNet(seed=0)'s weights and shuffles like `mlplab_epoch`; `params`, when given, receives the
    arrays it trains (for checking it against mlplab). The last batch is dropped unless it is full.
    """
    x_all, y_all, n, classes = ds.train.x, ds.train.y, len(ds.train), 10
    init = np.random.default_rng(0)
    w1 = (0.001 * init.standard_normal((784, hidden))).astype(np.float32)
    w2 = (0.001 * init.standard_normal((hidden, classes))).astype(np.float32)
    b1, b2 = np.zeros(hidden, np.float32), np.zeros(classes, np.float32)
    if params is not None:
        params.update(W1=w1, b1=b1, W2=w2, b2=b2)
    rng = np.random.default_rng(0)
    raw, x = np.empty((batch, 784), np.uint8), np.empty((batch, 784), np.float32)
    h, dh, slope = (np.empty((batch, hidden), np.float32) for _ in range(3))
    z = np.empty((batch, classes), np.float32)
    flat_z, row_starts = z.reshape(-1), np.arange(0, batch * classes, classes)
    ones, ones_c = np.ones((batch, 1), np.float32), np.ones((classes, 1), np.float32)
    factor, shrink, gemm = np.float32(1 / ds.pixel_max), 1.0 - LR * REG, blas.sgemm

    def epoch() -> tuple[float, int]:
        order = rng.permutation(n)
        loss_sum, hits = 0.0, 0  # what mlplab's epoch reports too
        for start in range(0, n - batch + 1, batch):
            index = order[start : start + batch]
            np.take(x_all, index, axis=0, out=raw)
            np.copyto(x, raw)
            np.multiply(x, factor, out=x)
            y = y_all[index]
            # Column-major BLAS sees each C-ordered buffer transposed: hᵀ = ½·W1ᵀxᵀ + hᵀ, with h holding b1/2.
            np.multiply(b1, 0.5, out=h)
            gemm(0.5, w1.T, x.T, 1.0, h.T, 0, 0, 1)
            np.tanh(h, out=h)
            np.multiply(h, 0.5, out=h)
            np.add(h, 0.5, out=h)  # σ(a) = ½ + ½·tanh(a/2)
            np.copyto(z, b2)
            gemm(1.0, w2.T, h.T, 1.0, z.T, 0, 0, 1)
            predicted = z.argmax(axis=1)
            hits += int(np.count_nonzero(predicted == y))
            np.subtract(z, flat_z[row_starts + predicted][:, None], out=z)
            true_at = row_starts + y
            true_sum = flat_z[true_at].sum()
            np.exp(z, out=z)
            total = z @ ones_c
            loss = float(np.log(total).sum() - true_sum) / batch
            if not np.isfinite(loss):
                raise FloatingPointError("the inlined step diverged")
            loss_sum += loss
            total *= batch
            np.divide(z, total, out=z)
            flat_z[true_at] -= 1.0 / batch  # z is now dJ/dz
            gemm(1.0, w2.T, z.T, 0.0, dh.T, 1, 0, 1)  # dh = z·W2ᵀ
            np.multiply(h, h, out=slope)
            np.subtract(h, slope, out=slope)
            np.multiply(dh, slope, out=dh)
            gemm(-LR, z.T, h.T, shrink, w2.T, 0, 1, 1)  # W2 ← (1 − lr·reg)·W2 − lr·hᵀz
            gemm(-LR, z.T, ones.T, 1.0, b2.reshape(1, -1).T, 0, 1, 1)
            gemm(-LR, dh.T, x.T, shrink, w1.T, 0, 1, 1)  # W1 ← (1 − lr·reg)·W1 − lr·xᵀdh
            gemm(-LR, dh.T, ones.T, 1.0, b1.reshape(1, -1).T, 0, 1, 1)
        return loss_sum, hits

    return epoch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.headroom", description=__doc__)
    parser.add_argument("--data-dir", help="MNIST directory (default: $MLPLAB_DATA/mnist, else random data)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    ds = workload(False, args.data_dir)
    hidden, batch = 128, 64
    print(f"workload: {ds.name}, batch {batch}, hidden {hidden}; medians of {args.rounds} rounds", file=sys.stderr)
    times = side_by_side(
        {
            "floor": floor_epoch(len(ds.train), hidden, batch),
            "mlplab": mlplab_epoch(ds, hidden, batch),
            "inlined": inlined_epoch(ds, hidden, batch),
        },
        args.rounds,
    )
    print("| step | epoch s | floor efficiency |\n| --- | --- | --- |")
    for name in ("floor", "mlplab", "inlined"):
        efficiency = "" if name == "floor" else f"{round_ratio(times, 'floor', name):.0%}"
        print(f"| {name} | {statistics.median(times[name]):.3f} | {efficiency} |")
    print(f"\nmlplab / inlined: {round_ratio(times, 'mlplab', 'inlined'):.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
