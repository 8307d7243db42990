"""`mlplab train` and `mlplab evaluate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlplab import config as configs
from mlplab import data as datasets
from mlplab.commands.common import add_config_arguments, add_data_arguments, epoch_line, show_progress
from mlplab.data import Dataset
from mlplab.errors import MlplabError
from mlplab.evaluation import write_report
from mlplab.models import Model
from mlplab.run import train_run
from mlplab.training import History, evaluate

EXIT_DIVERGED = 1


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model from a config, write metrics, curves and model")
    add_config_arguments(train)
    train.add_argument("--out", default="runs/default", help="output directory (default: runs/default)")
    train.set_defaults(func=run_train)

    ev = sub.add_parser("evaluate", help="loss and accuracy of a saved model on validation and test")
    ev.add_argument("model", help="a model.npz written by mlplab train")
    add_data_arguments(ev)
    ev.add_argument(
        "--report",
        metavar="DIR",
        help="also write what the model gets wrong on the test set into DIR: confusion matrix (PNG, Markdown), "
        "per-class precision/recall/accuracy, the most confident mistakes, report.md and report.html (default: off)",
    )
    ev.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    config = configs.resolve(args.config, args.overrides, dataset=args.dataset, data_dir=args.data_dir)
    dataset = datasets.load(config["dataset"], config["data_dir"])
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlplabError(f"--out {out}: cannot create the output directory ({exc.strerror})") from None
    print(run_header(config, dataset), flush=True)

    def report(epoch: int, history: History) -> None:
        print(epoch_line(epoch, history, config["epochs"]), flush=True)

    metrics, _ = train_run(config, out, dataset, on_epoch=report, progress=show_progress())
    if metrics["status"] == "diverged":
        print(
            f"mlplab train: diverged (loss became NaN/inf) after {metrics['epochs_done']} epoch(s); "
            f'wrote {out / "metrics.json"} with status "diverged"',
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    print(
        f"best val acc {metrics['best_val_acc']:.4f} (epoch {metrics['best_epoch']}); "
        f"test acc of that model {metrics['test_acc']:.4f}; wrote {out}/metrics.json, curves.png, model.npz"
    )
    return 0


def run_header(config: dict[str, Any], dataset: Dataset) -> str:
    """What is trained on what, e.g. `MLP [1024] relu on mnist (48000 train / …): adam lr=0.003 … epochs=20`."""
    model = config["type"]
    if model == "MLP":
        model += f" {config['hidden_sizes']} {config['activation']}"
        model += f" dropout={config['dropout']}" if config["dropout"] else ""
    settings = [config["optimizer"]] if config["optimizer"] != "sgd" else []
    settings += [f"{k}={config[k]}" for k in ("learning_rate", "reg", "batch_size", "epochs")]
    settings += [f"{k}={config[k]}" for k in ("momentum", "weight_decay", "augment") if config[k]]
    settings += [f"{k}={config[k]}" for k in ("schedule", "normalize") if config[k] != "none"]
    sizes = f"{len(dataset.train)} train / {len(dataset.val)} val / {len(dataset.test)} test"
    text = " ".join(settings).replace("learning_rate=", "lr=").replace("batch_size=", "batch=")
    return f"{model} on {dataset.name} ({sizes}): {text}"


def run_evaluate(args: argparse.Namespace) -> int:
    model, meta = Model.load(args.model)
    name = args.dataset or meta.get("dataset", "digits")
    if args.data_dir and not args.dataset and name == "digits":
        name = configs.infer_dataset(args.data_dir)  # a digits model pointed at MNIST files: say so below
    dataset = datasets.load(name, args.data_dir or meta.get("data_dir"))
    inputs = model.params[next(iter(model.params))].shape[0]
    if inputs != dataset.input_size:
        raise MlplabError(f"{args.model} takes {inputs} inputs but {dataset.name} has {dataset.input_size}")
    with np.errstate(over="ignore", invalid="ignore"):
        for split_name in ("val", "test"):
            split = getattr(dataset, split_name)
            loss, acc = evaluate(model, split, dataset.pixel_max)
            print(f"{split_name:<5} loss {loss:.4f}  acc {acc:.4f}  ({len(split)} samples)")
    if args.report:
        page = write_report(model, meta, dataset, args.report, model_path=args.model)
        print(f"wrote {page}, report.md, confusion.png, confusion.md, mistakes.png and evaluation.json")
    return 0
