"""`mlplab train`: one run from a config, with a line per epoch; metrics, curves and model in --out; a killed run
started again with the same --out and config continues from its last finished epoch."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mlplab import config as configs
from mlplab.commands.common import add_config_arguments, epoch_line, show_progress
from mlplab.files import claim_output

if TYPE_CHECKING:
    from mlplab.data import Dataset
    from mlplab.training import History

EXIT_DIVERGED = 1


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a model from a config, write metrics, curves and model",
        description="Train a model from a config; write metrics.json, curves.png and model.npz into --out. After "
        "every epoch the run's state is saved to checkpoint.npz in --out (one file, replaced each epoch, "
        "removed when the run ends): a run killed at any moment and started again with the same --out and config "
        "continues from its last finished epoch and ends with the same files as if never stopped. A checkpoint "
        "of another config in --out is refused; a finished run there is trained again and replaced.",
    )
    add_config_arguments(train)
    train.add_argument(
        "--out",
        default="runs/default",
        help="output directory; an unfinished run's checkpoint.npz there is resumed (default: runs/default)",
    )
    train.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from mlplab import data as datasets
    from mlplab.checkpoint import CHECKPOINT_NAME
    from mlplab.run import make_model, run_checkpoint, train_run

    config = configs.resolve(args.config, args.overrides, dataset=args.dataset, data_dir=args.data_dir)
    out = claim_output(args.out)  # checked writable and held before any data is read or training starts
    checkpoint = run_checkpoint(config, out / CHECKPOINT_NAME)
    resumed = checkpoint.check()  # before any data is read: another config's checkpoint is refused at once
    dataset = datasets.load(config["dataset"], config["data_dir"])
    print(run_header(config, dataset), flush=True)
    print(make_model(config, dataset).summary(), flush=True)
    if resumed is not None:
        print(f"resuming after epoch {resumed}/{config['epochs']} from {checkpoint.path}", flush=True)

    def report(epoch: int, history: History) -> None:
        print(epoch_line(epoch, history, config["epochs"]), flush=True)

    metrics, _ = train_run(config, out, dataset, on_epoch=report, progress=show_progress(), checkpoint=checkpoint.path)
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
    settings += [f"{k}={config[k]}" for k in ("momentum", "weight_decay", "shift") if config[k]]
    settings += [f"{k}={config[k]}" for k in ("schedule", "normalize") if config[k] != "none"]
    sizes = f"{len(dataset.train)} train / {len(dataset.val)} val / {len(dataset.test)} test"
    text = " ".join(settings).replace("learning_rate=", "lr=").replace("batch_size=", "batch=")
    return f"{model} on {dataset.name} ({sizes}): {text}"
