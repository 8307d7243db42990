"""One training run from a resolved config: build data, model and optimizer, fit, and write the run's files."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from mlplab import data as datasets
from mlplab.augment import BatchTransform, Standardizer
from mlplab.data import Dataset
from mlplab.errors import ConfigError
from mlplab.models import Model, build_model
from mlplab.optim import SGD, Adam, AdamW, Optimizer
from mlplab.plots import plot_curves
from mlplab.schedules import Schedule
from mlplab.training import EpochCallback, History, fit


def make_model(config: dict[str, Any], dataset: Dataset) -> Model:
    """The config's model, sized from the data."""
    return build_model(
        config["type"],
        input_size=dataset.input_size,
        num_classes=dataset.num_classes,
        image_shape=dataset.image_shape,
        **{k: v for k, v in config.items() if k not in ("type", "input_size", "num_classes")},
    )


def make_optimizer(config: dict[str, Any]) -> Optimizer:
    """The config's optimizer."""
    kind, lr, reg = config.get("optimizer", "sgd"), config["learning_rate"], config["reg"]
    if config.get("weight_decay") and kind != "adamw":
        raise ConfigError(f"weight_decay is AdamW's decoupled decay; with optimizer {kind} use reg (L2) instead")
    if kind == "nesterov" and not config["momentum"]:
        raise ConfigError("optimizer nesterov needs a momentum > 0")
    if kind in ("sgd", "nesterov"):
        return SGD(lr, reg=reg, momentum=config["momentum"], nesterov=kind == "nesterov")
    betas = {"beta1": config["beta1"], "beta2": config["beta2"]}
    if kind == "adam":
        return Adam(lr, reg=reg, **betas)
    return AdamW(lr, reg=reg, weight_decay=config["weight_decay"], **betas)


def make_schedule(config: dict[str, Any]) -> Schedule | None:
    """The config's learning-rate schedule, or None when the rate stays constant."""
    schedule = Schedule(
        config.get("schedule", "none"),
        warmup_epochs=config.get("warmup_epochs", 0.0),
        milestones=tuple(config.get("steps", ())),
        gamma=config.get("gamma", 0.1),
    )
    return schedule if schedule.active else None


def make_transform(config: dict[str, Any], dataset: Dataset, dtype: str) -> BatchTransform | None:
    """The config's per-batch augmentation and standardization, or None when batches go in as they are."""
    shift, rotate, normalize = config.get("augment", 0), config.get("rotate", 0.0), config.get("normalize", "none")
    elastic = config.get("elastic", 0.0)
    if not shift and not rotate and not elastic and normalize == "none":
        return None
    standardizer = Standardizer.fit(dataset.train, dataset.pixel_max, dtype) if normalize == "standardize" else None
    return BatchTransform(
        dataset.image_shape,
        shift=shift,
        rotate=rotate,
        standardizer=standardizer,
        elastic=elastic,
        elastic_sigma=config.get("elastic_sigma", 4.0),
    )


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
    optimizer = make_optimizer(config)
    with threadpool_limits(limits=config.get("threads") or None):
        history = fit(
            model,
            optimizer,
            dataset,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            seed=config["seed"],
            on_epoch=on_epoch,
            progress=progress,
            schedule=make_schedule(config),
            patience=config.get("patience", 0),
            transform=make_transform(config, dataset, model.dtype.name),
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
        "dataset": dataset.summary(),
        "config": config,
    }


def write_run(out: Path, metrics: dict[str, Any], model: Model, dataset: Dataset) -> None:
    """Write curves.png and model.npz, then metrics.json last (its presence marks a finished run), each atomically.

    A run that diverged before finishing an epoch has no best-by-validation model: it writes metrics only.
    """
    out.mkdir(parents=True, exist_ok=True)
    if metrics["best_epoch"] is not None:
        plot_curves(metrics, out / "curves.png", run_title(metrics))
        save_model(model, out / "model.npz", metrics, dataset.pixel_max)
    write_json(out / "metrics.json", metrics)


def run_title(metrics: dict[str, Any]) -> str:
    """A curves title naming model, data and the two settings the course varies."""
    config = metrics["config"]
    return f"{config['type']} on {metrics['dataset']['name']}: lr={config['learning_rate']}, reg={config['reg']}"


def save_model(model: Model, path: Path, metrics: dict[str, Any], pixel_max: float) -> None:
    """model.npz with what `mlplab evaluate` needs to find the data again."""
    model.save(
        path,
        dataset=metrics["dataset"]["name"],
        data_dir=metrics["config"].get("data_dir"),
        pixel_max=pixel_max,
        best_epoch=metrics["best_epoch"],
    )


def write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path` and rename it over `path`: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_json(path: Path, content: Any) -> None:
    """Write JSON atomically; NaN/inf become null."""
    write_bytes(path, (json.dumps(_finite(content), indent=2, allow_nan=False, default=_plain) + "\n").encode())


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
