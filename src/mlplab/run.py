"""One training run from a resolved config: build data, model and optimizer, fit, and write the run's files."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from mlplab import data as datasets
from mlplab.data import Dataset
from mlplab.models import Model, build_model
from mlplab.optim import SGD, Optimizer
from mlplab.plots import plot_curves
from mlplab.training import EpochCallback, History, fit


def make_model(config: dict[str, Any], dataset: Dataset) -> Model:
    """The config's model, sized from the data."""
    return build_model(
        config["type"],
        input_size=dataset.input_size,
        num_classes=dataset.num_classes,
        **{k: v for k, v in config.items() if k not in ("type", "input_size", "num_classes")},
    )


def make_optimizer(config: dict[str, Any]) -> Optimizer:
    """The config's optimizer."""
    return SGD(config["learning_rate"], reg=config["reg"], momentum=config["momentum"])


def load_data(config: dict[str, Any]) -> Dataset:
    """The config's dataset."""
    return datasets.load(config["dataset"], config["data_dir"])


def train_run(
    config: dict[str, Any],
    out: str | Path | None = None,
    dataset: Dataset | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], Model]:
    """Train per `config`; when `out` is given write metrics.json, curves.png and model.npz there."""
    dataset = dataset or load_data(config)
    model = make_model(config, dataset)
    start = time.perf_counter()
    history = fit(
        model,
        make_optimizer(config),
        dataset,
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        seed=config["seed"],
        on_epoch=on_epoch,
        progress=progress,
    )
    metrics = metrics_dict(history, config, dataset, time.perf_counter() - start)
    if out is not None:
        write_run(Path(out), metrics, model, dataset)
    return metrics, model


def metrics_dict(history: History, config: dict[str, Any], dataset: Dataset, seconds: float) -> dict[str, Any]:
    """History plus the resolved config and what data it ran on: the content of metrics.json."""
    return {
        **history.to_dict(),
        "total_seconds": seconds,
        "dataset": {
            "name": dataset.name,
            "source": dataset.source,
            "train": len(dataset.train),
            "val": len(dataset.val),
            "test": len(dataset.test),
        },
        "config": config,
    }


def write_run(out: Path, metrics: dict[str, Any], model: Model, dataset: Dataset) -> None:
    """Write the run's three files, each atomically so a crash never leaves a half-written one."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    if metrics["train_loss"]:
        config = metrics["config"]
        title = f"{config['type']} on {dataset.name}: lr={config['learning_rate']}, reg={config['reg']}"
        plot_curves(metrics, out / "curves.png", title)
    model.save(
        out / "model.npz",
        dataset=dataset.name,
        data_dir=metrics["config"]["data_dir"],
        pixel_max=dataset.pixel_max,
        best_epoch=metrics["best_epoch"],
    )


def write_json(path: Path, content: Any) -> None:
    """Write JSON to a temporary file and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_finite(content), indent=2, allow_nan=False, default=_plain) + "\n")
    tmp.replace(path)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """NumPy scalars to Python numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
