"""Side-by-side timings of the default Two-Layer Net step: mlplab vs PyTorch vs scikit-learn, plus the GEMM floor.

Every ratio is measured in one run on the same data, batch size and BLAS thread count, the contenders taking turns
so that each ratio compares epochs timed moments apart. `--quick` shrinks every workload so CI can check the
output's shape without timing anything meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from benchmarks.contenders import (
    RECIPE_BATCH,
    RECIPE_HIDDEN,
    RECIPE_LR,
    jax_epoch,
    mlplab_recipe_epoch,
    torch_recipe_epoch,
    torch_training,
)
from mlplab import data
from mlplab.blas import gemm
from mlplab.data import Dataset, Split
from mlplab.errors import DataError
from mlplab.models import TwoLayerNet
from mlplab.optim import SGD
from mlplab.training import evaluate, train_epoch

REPO = Path(__file__).resolve().parent.parent
LR, REG, CLASSES = 0.1, 0.001, 10


def blas_threads() -> int:
    return max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)


def workload(quick: bool, data_dir: str | None) -> Dataset:
    """MNIST when it can be found (never downloaded), else random data of MNIST's shapes."""
    if not quick:
        try:
            return data.load("mnist", data_dir) if data_dir else _mnist_from_env()
        except DataError as exc:
            print(f"benchmarks: {exc}; timing random MNIST-shaped data instead", file=sys.stderr)
    n_train, n_eval = (2048, 512) if quick else (48000, 11000)
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, CLASSES, n))

    return Dataset("synthetic", split(n_train), split(n_eval), split(n_eval), (28, 28), 255.0, source="random")


def _mnist_from_env() -> Dataset:
    os.environ.setdefault("MLPLAB_NO_DOWNLOAD", "1")
    return data.load("mnist")


Epoch = Callable[[], Any]


def side_by_side(
    contenders: dict[str, Epoch], rounds: int, pause: float = 0.3, calls: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each contender in each round: they take turns, after one untimed warm-up call each.

    This machine's speed drifts by up to a third over a minute, so ratios are formed within a round, where every
    contender met the same moment. The pause lets the last one's BLAS or OpenMP threads stop spinning first.
    A turn makes `calls` calls and records their mean, for runs too short to time one at a time.
    """
    for epoch in contenders.values():
        epoch()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, epoch in contenders.items():
            time.sleep(pause)
            start = time.perf_counter()
            for _ in range(calls):
                epoch()
            times[name].append((time.perf_counter() - start) / calls)
    return times


def installed(contenders: dict[str, Epoch | None]) -> dict[str, Epoch]:
    """The contenders whose library is installed (the others are None), in their order."""
    return {name: epoch for name, epoch in contenders.items() if epoch is not None}


def median_seconds(run: Epoch, rounds: int, calls: int = 1) -> float:
    """Median over `rounds` of the mean wall time of `calls` calls of `run`, after one untimed call."""
    return statistics.median(side_by_side({"run": run}, rounds, pause=0.0, calls=calls)["run"])


def round_ratios(times: dict[str, list[float]], numerator: str, denominator: str) -> list[float]:
    """numerator time / denominator time, round by round."""
    return [a / b for a, b in zip(times[numerator], times[denominator], strict=True)]


def round_ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """Median over rounds of numerator time / denominator time."""
    return statistics.median(round_ratios(times, numerator, denominator))


def ratio_cell(times: dict[str, list[float]], ratio: float | None, name: str) -> str:
    """mlplab / `name` as a table cell: the median ratio with its rounds' range, or — when `name` did not run."""
    if ratio is None:
        return "—"
    values = round_ratios(times, "mlplab", name)
    return f"{ratio:.2f}× (rounds {min(values):.2f}–{max(values):.2f})"


def write_results(results: dict[str, Any], table: str, out: Path, stem: str) -> None:
    """`results` as out/stem.json and `table` as out/stem.md, and the table on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(table)
    print(table)


def mlplab_epoch(ds: Dataset, hidden: int, batch: int, model: TwoLayerNet | None = None) -> Epoch:
    """One training epoch of mlplab's TwoLayerNet + SGD (of `model` when given), through the code `fit` runs."""
    model = model or TwoLayerNet(ds.input_size, hidden, CLASSES, seed=0)
    optimizer = SGD(LR, reg=REG)
    rng = np.random.default_rng(0)
    return lambda: train_epoch(model, optimizer, ds.train, batch, ds.pixel_max, rng)


def torch_net(hidden: int, start: TwoLayerNet | None = None) -> Any:
    """The Two-Layer Net in PyTorch (FC → sigmoid → FC); with `start`, holding that model's parameters."""
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.Sigmoid(), torch.nn.Linear(hidden, CLASSES))
    if start is not None:
        with torch.no_grad():
            for layer, i in ((net[0], 1), (net[2], 2)):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(start.params[f"W{i}"].T)))
                layer.bias.copy_(torch.from_numpy(start.params[f"b{i}"]))
    return net


def torch_epoch(ds: Dataset, hidden: int, batch: int, threads: int, net: Any = None) -> Epoch | None:
    """One epoch of the same network, loss, L2 and SGD in PyTorch (CPU, float32), or None without it."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = net if net is not None else torch_net(hidden)
    weights = [p for name, p in net.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in net.named_parameters() if name.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": REG}, {"params": biases}], lr=LR)
    return torch_training(ds, net, opt, batch)


def sklearn_epoch(ds: Dataset, hidden: int, batch: int) -> Epoch:
    """One epoch of scikit-learn's MLPClassifier with the same shape, batch, lr and L2."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x = ds.train.x.astype(np.float32) / np.float32(ds.pixel_max)
    clf = MLPClassifier(
        (hidden,),
        activation="logistic",
        solver="sgd",
        alpha=REG,
        batch_size=batch,
        learning_rate_init=LR,
        momentum=0.0,
        nesterovs_momentum=False,
        random_state=0,
    )
    classes = np.arange(CLASSES)

    def epoch() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.partial_fit(x, ds.train.y, classes=classes)

    return epoch


def floor_epoch(n: int, hidden: int, batch: int) -> Epoch:
    """The two big GEMMs of every step alone (x·W1 forward, xᵀ·δ for the W1 gradient) through the step's BLAS."""
    rng = np.random.default_rng(0)
    x = rng.random((batch, 784), np.float32)
    w = rng.random((784, hidden), np.float32)
    delta = rng.random((batch, hidden), np.float32)
    h, grad = np.empty((batch, hidden), np.float32), np.empty((784, hidden), np.float32)
    steps = -(-n // batch)

    def epoch() -> None:
        for _ in range(steps):
            gemm(x, w, out=h)
            gemm(x.T, delta, out=grad)

    return epoch


def eval_seconds(ds: Dataset, repeats: int) -> float:
    """Validation + test evaluation of the default net, as `fit` does after every epoch and at the end."""
    model = TwoLayerNet(ds.input_size, 128, CLASSES, seed=0)
    return median_seconds(
        lambda: (evaluate(model, ds.val, ds.pixel_max), evaluate(model, ds.test, ds.pixel_max)), repeats
    )


def gemm_roof(size: int) -> float:
    """GFLOP/s of one large float32 GEMM: the machine's practical peak for this work."""
    a = np.random.default_rng(0).random((size, size), np.float32)
    out = np.empty_like(a)
    return 2 * size**3 / median_seconds(lambda: gemm(a, a, out=out), 3) / 1e9


def step_flops(batch: int, hidden: int) -> int:
    """Multiply-adds ×2 of one training step: forward, W2/h gradients, and the W1 gradient."""
    return 2 * batch * (2 * 784 * hidden + 3 * hidden * CLASSES)


PEAK_RSS_PROBE = """
import sys
from mlplab.cli import main
status = main(sys.argv[1:])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(int(hwm.split()[1]) / 1024)
sys.exit(status)
"""


def peak_rss_mb(ds: Dataset, quick: bool) -> dict[str, Any]:
    """Peak resident memory (VmHWM) of a real `mlplab train` run of the default config, in its own process.

    The child reads its own high-water mark: rusage of children would also count the pages a fork shares.
    """
    if quick or ds.name != "mnist":
        args, what = ["--dataset", "digits", "--set", "epochs=1"], "mlplab train on digits, 1 epoch"
    else:
        args, what = ["--dataset", "mnist", "--data-dir", ds.source], "mlplab train, two_layer.yaml on MNIST, 10 epochs"
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable,
            "-c",
            PEAK_RSS_PROBE,
            "train",
            "--config",
            str(REPO / "configs/two_layer.yaml"),
            *args,
            "--out",
            out,
        ]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
    return {"what": what, "peak_rss_mb": float(done.stdout.split()[-1])}


def sweep_throughput(ds: Dataset, quick: bool) -> dict[str, Any]:
    """Wall time of the same learning-rate sweep (a real `run_sweep`) on a pool of 1 worker and of 2, in turns.

    Both are process pools with one BLAS thread per worker, so the ratio is the scaling of workers alone.
    """
    from mlplab.experiments.executors import LocalExecutor
    from mlplab.experiments.sweep import run_sweep, value_configs

    # Eight runs, so the pools' start-up (a process and a dataset load per worker) is amortized as in a real sweep.
    values = ["0.02", "0.05", "0.1", "0.2", "0.3", "0.5", "0.7", "1.0"][: 4 if quick else 8]
    if ds.name == "mnist" and not quick:
        settings = ["dataset=mnist", f"data_dir={ds.source}", "epochs=10"]
    else:
        settings = ["dataset=digits", "epochs=1" if quick else "epochs=30", "batch_size=16"]
    key, configs = value_configs("learning_rate", values, None, settings)

    def sweep_on(workers: int) -> Epoch:
        def sweep() -> None:
            executor = LocalExecutor(workers)
            with tempfile.TemporaryDirectory() as out:
                try:
                    run_sweep(key, configs, out, executor)
                finally:
                    executor.close()

        return sweep

    times = side_by_side({"1": sweep_on(1), "2": sweep_on(2)}, rounds=1 if quick else 3)
    return {
        "runs": len(values),
        "dataset": settings[0].split("=")[1],
        "seconds_1_worker": statistics.median(times["1"]),
        "seconds_2_workers": statistics.median(times["2"]),
        "rounds": times,
        "speedup": round_ratio(times, "1", "2"),
    }


def recipe_shape(ds: Dataset, threads: int, rounds: int) -> dict[str, Any]:
    """The recipes' shape (784-1024-10 ReLU, Adam, batch 128): mlplab, its GEMM floor, PyTorch and JAX in turns."""
    contenders = installed(
        {
            "mlplab": mlplab_recipe_epoch(ds),
            "floor": floor_epoch(len(ds.train), RECIPE_HIDDEN, RECIPE_BATCH),
            "torch": torch_recipe_epoch(ds, threads),
            "jax": jax_epoch(ds, RECIPE_HIDDEN, RECIPE_BATCH, "relu", "adam", RECIPE_LR, 0.0),
        }
    )
    times = side_by_side(contenders, rounds)
    return {
        "workload": {"hidden": RECIPE_HIDDEN, "batch": RECIPE_BATCH, "optimizer": f"adam lr {RECIPE_LR}"},
        "rounds": times,
        "epoch_seconds": {name: statistics.median(t) for name, t in times.items()},
        "ratios": {
            f"mlplab_over_{name}": round_ratio(times, "mlplab", name) if name in times else None
            for name in ("torch", "jax")
        },
        "floor": {"efficiency": round_ratio(times, "floor", "mlplab")},
    }


def run(quick: bool, data_dir: str | None, threads: int | None = None) -> dict[str, Any]:
    """Every measurement, as one JSON-ready dict; `threads` limits BLAS (and PyTorch) to that many threads."""
    with threadpool_limits(threads):
        return _run(quick, data_dir)


def _run(quick: bool, data_dir: str | None) -> dict[str, Any]:
    from benchmarks import checkpoint  # it builds on this module's helpers

    rounds = 1 if quick else 7
    ds = workload(quick, data_dir)
    threads = blas_threads()
    n, hidden, batch = len(ds.train), 128, 64
    print(
        f"workload: {ds.name}, {n} training samples, batch {batch}, hidden {hidden}, {threads} BLAS threads",
        file=sys.stderr,
    )
    contenders = installed(
        {
            "mlplab": mlplab_epoch(ds, hidden, batch),
            "floor": floor_epoch(n, hidden, batch),
            "torch": torch_epoch(ds, hidden, batch, threads),
            "jax": jax_epoch(ds, hidden, batch, "sigmoid", "sgd", LR, REG),
            "sklearn": sklearn_epoch(ds, hidden, batch),
        }
    )
    times = side_by_side(contenders, rounds)
    epoch = {name: statistics.median(t) for name, t in times.items()}
    ours = epoch["mlplab"]
    roof = gemm_roof(512 if quick else 2048)
    scaling = []
    widths = [64, 256] if quick else [64, 128, 256, 512, 1024]
    sizes = [16, 256] if quick else [16, 32, 64, 128, 256, 512, 1024]
    for h, b in [(h, batch) for h in widths] + [(hidden, b) for b in sizes]:
        seconds = ours if (h, b) == (hidden, batch) else median_seconds(mlplab_epoch(ds, h, b), max(1, rounds // 2))
        flops = step_flops(b, h) * -(-n // b)
        scaling.append(
            {
                "hidden": h,
                "batch": b,
                "epoch_seconds": seconds,
                "gflops": flops / seconds / 1e9,
                "of_roof": flops / seconds / 1e9 / roof,
            }
        )
    return {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "blas_threads": threads,
            "numpy": np.__version__,
            "quick": quick,
        },
        "workload": {"dataset": ds.name, "train_samples": n, "hidden": hidden, "batch": batch},
        "rounds": times,
        "epoch_seconds": {
            "mlplab": ours,
            "torch": epoch.get("torch"),
            "jax": epoch.get("jax"),
            "sklearn": epoch["sklearn"],
        },
        "ratios": {
            "mlplab_over_torch": round_ratio(times, "mlplab", "torch") if "torch" in times else None,
            "mlplab_over_jax": round_ratio(times, "mlplab", "jax") if "jax" in times else None,
            "mlplab_over_sklearn": round_ratio(times, "mlplab", "sklearn"),
        },
        "floor": {"epoch_seconds": epoch["floor"], "efficiency": round_ratio(times, "floor", "mlplab")},
        "recipes": recipe_shape(ds, threads, rounds),
        "checkpoint": checkpoint.checkpoint_cost(ds, rounds),
        "eval": {"samples": len(ds.val) + len(ds.test), "seconds": eval_seconds(ds, 3 if quick else 20)},
        "memory": peak_rss_mb(ds, quick),
        "sweep": sweep_throughput(ds, quick),
        "gemm_roof_gflops": roof,
        "scaling": scaling,
    }


def markdown(r: dict[str, Any]) -> str:
    """The results as the tables README shows."""
    e, ratios, rounds = r["epoch_seconds"], r["ratios"], r["rounds"]

    def spread(numerator: str, denominator: str, fmt: str) -> str:
        values = round_ratios(rounds, numerator, denominator)
        return f"{format(min(values), fmt)}–{format(max(values), fmt)}"

    def seconds_cell(value: float | None) -> str:
        return f"{value:.3f} s" if value else "not installed"

    torch_cell, torch_ratio = seconds_cell(e["torch"]), ratio_cell(rounds, ratios["mlplab_over_torch"], "torch")
    lines = [
        f"Workload: {r['workload']['dataset']}, {r['workload']['train_samples']} training samples, "
        f"784-{r['workload']['hidden']}-10 sigmoid, batch {r['workload']['batch']}, float32, "
        f"{r['machine']['blas_threads']} BLAS threads, {r['machine']['cores']} cores. Epochs: median of "
        f"{len(rounds['mlplab'])} rounds in which the contenders take turns; ratios: median of the rounds' ratios.",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| mlplab epoch | {e['mlplab']:.3f} s | |",
        f"| PyTorch CPU epoch | {torch_cell} | |",
        f"| JAX CPU epoch (jit-compiled step) | {seconds_cell(e['jax'])} | |",
        f"| scikit-learn MLPClassifier epoch | {e['sklearn']:.3f} s | |",
        f"| mlplab / PyTorch | {torch_ratio} | ≤ 0.5× |",
        f"| mlplab / JAX | {ratio_cell(rounds, ratios['mlplab_over_jax'], 'jax')} | |",
        f"| mlplab / scikit-learn | {ratios['mlplab_over_sklearn']:.2f}× | |",
        f"| GEMM floor per epoch | {r['floor']['epoch_seconds']:.3f} s | |",
        f"| floor efficiency (floor / epoch) | {r['floor']['efficiency']:.0%} "
        f"(rounds {spread('floor', 'mlplab', '.0%')}) | ≥ 70% |",
        f"| evaluation of {r['eval']['samples']} samples | {r['eval']['seconds'] * 1000:.1f} ms | ≤ 30 ms |",
        f"| peak RSS ({r['memory']['what']}) | {r['memory']['peak_rss_mb']:.0f} MB | ≤ 400 MB |",
    ]
    from benchmarks import checkpoint

    rc = r["recipes"]
    re_, rr = rc["epoch_seconds"], rc["ratios"]
    lines += [
        "",
        f"The recipes' shape: 784-{rc['workload']['hidden']}-10 ReLU, {rc['workload']['optimizer']}, batch "
        f"{rc['workload']['batch']}, same data and rounds:",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| mlplab epoch | {re_['mlplab']:.3f} s | |",
        f"| PyTorch CPU epoch | {seconds_cell(re_.get('torch'))} | |",
        f"| JAX CPU epoch (jit-compiled step) | {seconds_cell(re_.get('jax'))} | |",
        f"| mlplab / PyTorch | {ratio_cell(rc['rounds'], rr['mlplab_over_torch'], 'torch')} | ≤ 0.5× |",
        f"| mlplab / JAX | {ratio_cell(rc['rounds'], rr['mlplab_over_jax'], 'jax')} | ≤ 0.8× |",
        f"| GEMM floor per epoch | {re_['floor']:.3f} s | |",
        f"| floor efficiency (floor / epoch) | {rc['floor']['efficiency']:.0%} | |",
        checkpoint.markdown_row(r["checkpoint"]),
    ]
    s = r["sweep"]
    lines.append(
        f"| sweep of {s['runs']} {s['dataset']} runs: 2 workers vs 1 | {s['speedup']:.2f}× throughput "
        f"({s['seconds_1_worker']:.1f} s → {s['seconds_2_workers']:.1f} s) | ≥ 1.8× |"
    )
    lines += [
        "",
        f"Scaling (GEMM roof: {r['gemm_roof_gflops']:.0f} GFLOP/s, one large float32 GEMM):",
        "",
        "| hidden | batch | epoch s | GFLOP/s | of roof |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s['hidden']} | {s['batch']} | {s['epoch_seconds']:.3f} | {s['gflops']:.1f} | {s['of_roof']:.0%} |"
        for s in r["scaling"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny workloads: checks the output, times nothing")
    parser.add_argument("--data-dir", help="MNIST directory (default: $MLPLAB_DATA/mnist, else random data)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="where JSON + Markdown go")
    parser.add_argument("--threads", type=int, help="BLAS and PyTorch threads (default: BLAS's own, all cores)")
    args = parser.parse_args(argv)
    results = run(args.quick, args.data_dir, args.threads)
    write_results(results, markdown(results), Path(args.out), "quick" if args.quick else "latest")
    return 0
