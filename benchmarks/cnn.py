"""A CNN training epoch side by side: mlplab's CNN vs the same network, loss and optimizer in PyTorch (CPU).

The network, batch size and optimizer come from a config (default: configs/mnist_cnn.yaml); augmentation and
evaluation are left out, so both sides time the same thing: shuffled batches, forward, backward, update.
Run as `python -m benchmarks.cnn`; `--quick` shrinks the workload so CI can check the output's shape.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.contenders import torch_training
from benchmarks.suite import (
    REPO,
    Epoch,
    blas_threads,
    installed,
    ratio_cell,
    round_ratio,
    side_by_side,
    workload,
    write_results,
)
from mlplab import config as configuration
from mlplab.data import Dataset
from mlplab.run import make_model, make_optimizer
from mlplab.training import train_epoch

CONFIG = REPO / "configs" / "mnist_cnn.yaml"


def mlplab_epoch(config: dict[str, Any], ds: Dataset) -> Epoch:
    """One training epoch of the config's CNN and optimizer, through the code `fit` runs."""
    model = make_model(config, ds)
    optimizer = make_optimizer(config)
    rng = np.random.default_rng(0)
    return lambda: train_epoch(model, optimizer, ds.train, config["batch_size"], ds.pixel_max, rng)


def torch_network(config: dict[str, Any], image: tuple[int, int], classes: int) -> Any:
    """The config's CNN as a torch.nn.Sequential taking flat rows (unflattened to NCHW, one channel), layer for layer
    as mlplab builds it."""
    import torch

    nn = torch.nn
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softsign": nn.Softsign}[config["activation"]]
    k, pool = config["kernel_size"], config["pool"]
    pad = 0 if config["conv_padding"] == "valid" else k // 2
    mode = "circular" if config["conv_padding"] == "circular" else "zeros"
    layers: list[Any] = [nn.Unflatten(1, (1, *image))]
    channels, (h, w) = 1, image
    for filters in config["conv_channels"]:
        layers.append(nn.Conv2d(channels, filters, k, padding=pad, padding_mode=mode))
        h, w, channels = h + 2 * pad - k + 1, w + 2 * pad - k + 1, filters
        if pool > 1:
            layers.append(nn.MaxPool2d(pool))
            h, w = h // pool, w // pool
        layers.append(act())
    layers.append(nn.Flatten())
    width = h * w * channels
    for units in config["hidden_sizes"]:
        layers += [nn.Linear(width, units), act()]
        if config["dropout"]:
            layers.append(nn.Dropout(config["dropout"]))
        width = units
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def torch_epoch(config: dict[str, Any], ds: Dataset, threads: int) -> Epoch | None:
    """One epoch of the same network, loss and optimizer in PyTorch (CPU, float32), or None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch_network(config, ds.image_shape, ds.num_classes)
    lr, kind = config["learning_rate"], config["optimizer"]
    if kind == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr, betas=(config["beta1"], config["beta2"]), weight_decay=0.0)
    elif kind == "adam":
        opt = torch.optim.Adam(net.parameters(), lr, betas=(config["beta1"], config["beta2"]))
    else:
        opt = torch.optim.SGD(net.parameters(), lr, momentum=config["momentum"], nesterov=kind == "nesterov")
    return torch_training(ds, net, opt, config["batch_size"])


def run(
    quick: bool, data_dir: str | None, config_path: Path, threads: int | None = None, subset: int | None = None
) -> dict[str, Any]:
    """Both contenders' epochs in rounds, as one JSON-ready dict; `subset` times epochs of that many images."""
    config = configuration.resolve(config_path)
    with threadpool_limits(threads):
        ds = workload(quick, data_dir)
        if subset:
            ds = ds.subset(subset)
        n_threads = blas_threads()
        print(f"workload: {ds.name}, {len(ds.train)} training samples, {n_threads} BLAS threads", file=sys.stderr)
        contenders = installed({"mlplab": mlplab_epoch(config, ds), "torch": torch_epoch(config, ds, n_threads)})
        times = side_by_side(contenders, 1 if quick else 5)
    return {
        "config": str(config_path.relative_to(REPO) if config_path.is_relative_to(REPO) else config_path),
        "network": {
            key: config[key] for key in ("conv_channels", "kernel_size", "conv_padding", "pool", "hidden_sizes")
        },
        "optimizer": config["optimizer"],
        "batch": config["batch_size"],
        "workload": {"dataset": ds.name, "train_samples": len(ds.train), "blas_threads": n_threads, "quick": quick},
        "rounds": times,
        "epoch_seconds": {name: statistics.median(t) for name, t in times.items()},
        "mlplab_over_torch": round_ratio(times, "mlplab", "torch") if "torch" in times else None,
    }


def markdown(r: dict[str, Any]) -> str:
    """The benchmark row README shows."""
    e, net = r["epoch_seconds"], r["network"]
    shape = (
        f"conv {'-'.join(map(str, net['conv_channels']))} ({net['kernel_size']}×{net['kernel_size']}, "
        f"{net['conv_padding']}, pool {net['pool']}), dense {'-'.join(map(str, net['hidden_sizes']))}"
    )
    ratio = ratio_cell(r["rounds"], r["mlplab_over_torch"], "torch")
    torch_cell = "not installed" if r["mlplab_over_torch"] is None else f"{e['torch']:.2f} s"
    w = r["workload"]
    return (
        f"CNN epoch, {r['config']}: {shape}, {r['optimizer']}, batch {r['batch']}, {w['dataset']} "
        f"{w['train_samples']} images, {w['blas_threads']} BLAS threads; median of {len(r['rounds']['mlplab'])} "
        "rounds in which the two take turns.\n\n"
        "| mlplab CNN epoch | PyTorch CPU epoch | mlplab / PyTorch | target |\n"
        "| --- | --- | --- | --- |\n"
        f"| {e['mlplab']:.2f} s | {torch_cell} | {ratio} | ≤ 1.0× |\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cnn", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny workload: checks the output, times nothing")
    parser.add_argument("--data-dir", help="MNIST directory (default: $MLPLAB_DATA/mnist, else random data)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the CNN config to time (default: %(default)s)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="where JSON + Markdown go")
    parser.add_argument("--threads", type=int, help="BLAS and PyTorch threads (default: BLAS's own, all cores)")
    parser.add_argument("--subset", type=int, help="time epochs of the first N training images (default: all)")
    args = parser.parse_args(argv)
    results = run(args.quick, args.data_dir, args.config, args.threads, args.subset)
    write_results(results, markdown(results), Path(args.out), "cnn_quick" if args.quick else "cnn_latest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
