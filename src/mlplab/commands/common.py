"""Arguments and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys

from mlplab.data import DATASETS
from mlplab.training import History


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--dataset and --data-dir."""
    parser.add_argument("--dataset", choices=DATASETS, help="which data (default: the config's, else digits)")
    parser.add_argument("--data-dir", help="directory with the dataset's IDX or CSV files")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config FILE and repeatable --set key=value."""
    parser.add_argument("--config", help="YAML config (the assignment's sectioned layout or flat keys)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set learning_rate=0.05",
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
