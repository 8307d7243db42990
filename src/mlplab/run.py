"""One training run from a resolved config: build data, model and optimizer, fit, and write the run's files."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threadpoolctl import threadpool_limits

from mlplab import config as configs
from mlplab import data as datasets
from mlplab import files, plots
from mlplab.augment import BatchTransform, Standardizer
from mlplab.checkpoint import CHECKPOINT_NAME, Checkpoint, kill_point
from mlplab.config import applicable
from mlplab.data import Dataset
from mlplab.diagnostics import FILE_NAME as DIAGNOSTICS_FILE
from mlplab.diagnostics import LIVE_FILE_NAME, Diagnostics
from mlplab.errors import ConfigError
from mlplab.models import Model, build_model
from mlplab.optim import Optimizer, build_optimizer
from mlplab.provenance import provenance
from mlplab.schedules import Schedule
from mlplab.training import EpochCallback, History, fit, interactive

if TYPE_CHECKING:
    from mlplab.tensorboard import TensorBoardLog


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
    """The config's optimizer, from the registry `optim.OPTIMIZERS`."""
    kind = config.get("optimizer", "sgd")
    if config.get("weight_decay") and kind != "adamw":
        raise ConfigError(f"weight_decay is AdamW's decoupled decay; with optimizer {kind} use reg (L2) instead")
    if kind == "nesterov" and not config["momentum"]:
        raise ConfigError("optimizer nesterov needs a momentum > 0")
    settings = {key: config[key] for key in ("reg", "momentum", "beta1", "beta2", "weight_decay") if key in config}
    return build_optimizer(kind, config["learning_rate"], **settings)


def make_schedule(config: dict[str, Any]) -> Schedule | None:
    """The config's learning-rate schedule, or None when the rate stays constant."""
    schedule = Schedule(
        config.get("schedule", "none"),
        warmup_epochs=config.get("warmup_epochs", 0.0),
        milestones=tuple(config.get("milestones", ())),
        gamma=config.get("gamma", 0.1),
    )
    return schedule if schedule.active else None


def make_transform(config: dict[str, Any], dataset: Dataset, dtype: str) -> BatchTransform | None:
    """The config's per-batch augmentation and standardization, or None when batches go in as they are."""
    shift, rotate, normalize = config.get("shift", 0), config.get("rotate", 0.0), config.get("normalize", "none")
    elastic, flip = config.get("elastic", 0.0), config.get("flip", False)
    if not shift and not rotate and not elastic and not flip and normalize == "none":
        return None
    standardizer = Standardizer.fit(dataset.train, dataset.pixel_max, dtype) if normalize == "standardize" else None
    return BatchTransform(
        dataset.image_shape,
        shift=shift,
        rotate=rotate,
        standardizer=standardizer,
        elastic=elastic,
        elastic_sigma=config.get("elastic_sigma", 4.0),
        flip=flip,
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
    checkpoint: str | Path | None = None,
    diagnostics: Diagnostics | None = None,
) -> tuple[dict[str, Any], Model]:
    """Train per `config`; when `out` is given write metrics.json, curves.png, model.npz and diagnostics.json there.

    The run saves a checkpoint after every epoch (to `checkpoint`, by default `out`/checkpoint.npz) and, when one
    of this config is there, resumes from it; with `out`, the checkpoint is removed once the run's files are written.
    `diagnostics` measures the run (see `mlplab.diagnostics`); by default, when the config's `diagnostics` key is
    on, one is made that writes `out`/diagnostics.json after every measurement, so a running run can be inspected.
    """
    dataset = dataset or load_data(config)
    model = make_model(config, dataset)
    if diagnostics is None and config.get("diagnostics"):
        # While training, the records go to their own live file: an earlier run's files in `out` stay whole until
        # this run publishes its own (a rerun that fails loses nothing), and inspect reads the live one meanwhile.
        diagnostics = Diagnostics(path=None if out is None else Path(out) / LIVE_FILE_NAME)
    if diagnostics is not None:
        diagnostics.run = {"config": applicable(config), "dataset": dataset.summary()}
        if diagnostics.path is not None:
            files.make_dir(diagnostics.path.parent)
    start = time.perf_counter()
    optimizer = make_optimizer(config)
    if checkpoint is None and out is not None:
        checkpoint = Path(out) / CHECKPOINT_NAME
    saver = run_checkpoint(config, checkpoint) if checkpoint is not None else None
    board = tensorboard_log(config, model, dataset, measured=diagnostics is not None)
    if board is not None and diagnostics is not None:
        diagnostics.listeners.append(board.snapshot)  # histograms of weights, gradients and activations
    finished: dict[str, Any] | None = None
    try:
        with threadpool_limits(limits=config.get("threads") or None):
            history = fit(
                model,
                optimizer,
                dataset,
                epochs=config["epochs"],
                batch_size=config["batch_size"],
                seed=config["seed"],
                on_epoch=both(board.epoch, on_epoch) if board is not None else on_epoch,
                progress=progress,
                schedule=make_schedule(config),
                patience=config.get("patience", 0),
                transform=make_transform(config, dataset, model.dtype.name),
                checkpoint=saver,
                diagnostics=diagnostics,
            )
            produced_by = provenance()  # inside the thread limit: the BLAS threads the run had
        metrics = finished = metrics_dict(history, config, dataset, time.perf_counter() - start, produced_by)
    finally:
        if board is not None:  # a run stopped early (interrupted, pruned) still closes its event file
            board.close(finished)
    if out is not None:
        write_run(Path(out), metrics, model, dataset, None if diagnostics is None else diagnostics.to_json())
        kill_point("published")
        (Path(out) / LIVE_FILE_NAME).unlink(missing_ok=True)  # published as diagnostics.json with the run's files
        if saver is not None:
            saver.remove()
    return metrics, model


def tensorboard_log(
    config: dict[str, Any], model: Model, dataset: Dataset, measured: bool = False
) -> TensorBoardLog | None:
    """The run's TensorBoard event writer when the config names a `tensorboard` directory (tensorboardX is imported
    only then); `measured`: histograms come from the diagnostics' snapshots."""
    if not config.get("tensorboard"):
        return None
    from mlplab.tensorboard import TensorBoardLog

    return TensorBoardLog(config["tensorboard"], model, applicable(config), dataset.image_shape, measured)


def both(first: EpochCallback, then: EpochCallback | None) -> EpochCallback:
    """An on_epoch that runs `first`, then `then` (which may stop the run by raising, as a pruned trial does)."""

    def call(epoch: int, history: History) -> None:
        first(epoch, history)
        if then is not None:
            then(epoch, history)

    return call


def run_checkpoint(config: dict[str, Any], path: str | Path) -> Checkpoint:
    """The checkpoint file of a run of `config` (a checkpoint of another config there is refused)."""
    return Checkpoint(path, applicable(config))


def train(
    config: Mapping[str, Any] | str | Path | None = None,
    out: str | Path | None = None,
    *,
    progress: bool | None = None,
    on_epoch: EpochCallback | None = None,
    **keys: Any,
) -> tuple[dict[str, Any], Model]:
    """Train from a config, the way `mlplab train` does; returns (metrics, model).

    `config` is a dict of config keys (flat, or in sections like the YAML files), a YAML file's path, or None for
    the defaults; keyword arguments override single keys (`mlplab keys` lists them all). With `out`, the run's
    metrics.json, curves.png and model.npz are written there. `progress` shows a bar per epoch, by default when
    someone can watch (a notebook, or a terminal). BLAS uses every core unless the config sets `threads`, as in
    the CLI. Example: `metrics, model = train({"type": "MLP", "hidden_sizes": [64]}, epochs=5)`.
    """
    resolved = configs.resolve(config, **keys)
    return train_run(resolved, out, on_epoch=on_epoch, progress=interactive() if progress is None else progress)


def metrics_dict(
    history: History,
    config: dict[str, Any],
    dataset: Dataset,
    seconds: float,
    produced_by: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """History plus the config keys that applied to the run, what data it ran on and what produced it (by default
    this process now): the content of metrics.json."""
    return {
        **history.to_dict(),
        "total_seconds": seconds,
        "dataset": dataset.summary(),
        "config": applicable(config),
        "provenance": produced_by or provenance(),
    }


RUN_FILES = ("metrics.json", "curves.png", "model.npz", DIAGNOSTICS_FILE)


def write_run(
    out: Path, metrics: dict[str, Any], model: Model, dataset: Dataset, diagnostics: bytes | None = None
) -> None:
    """Publish curves.png, model.npz and metrics.json as a unit, metrics.json last (its presence marks a finished
    run): a reader sees the earlier run's files or this one's, never a mix.

    A run that diverged before finishing an epoch has no best-by-validation model: it writes metrics only.
    """
    written = run_dir_files(metrics, model, dataset.pixel_max, diagnostics=diagnostics)
    files.publish(out, written, "metrics.json", RUN_FILES, before_marker=lambda: kill_point("publishing"))


def run_dir_files(
    metrics: dict[str, Any],
    model: Model | None,
    pixel_max: float,
    curves: bytes | None = None,
    title: str = "",
    diagnostics: bytes | None = None,
) -> dict[str, files.Writer]:
    """A run directory's files by name: curves and model only when an epoch finished, metrics.json always,
    diagnostics.json when the run was measured."""
    out: dict[str, files.Writer] = {}
    if diagnostics is not None:
        out[DIAGNOSTICS_FILE] = diagnostics
    if metrics["train_loss"]:
        out["curves.png"] = curves if curves else curves_png(metrics, title)
    if model is not None and metrics["best_epoch"] is not None:  # no snapshot, no model: it would be NaN garbage
        out["model.npz"] = files.npz_writer(model.archive(**model_meta(metrics, pixel_max)))
    out["metrics.json"] = files.json_bytes(metrics)
    return out


def curves_png(metrics: dict[str, Any], title: str = "") -> bytes:
    """The run's loss and accuracy curves as PNG bytes (nothing when no epoch finished)."""
    if not metrics["train_loss"]:
        return b""
    return plots.curves_png(metrics, title or curves_title(metrics))


def curves_title(metrics: dict[str, Any]) -> str:
    """A curves title naming model, data and the two settings the course varies."""
    config = metrics["config"]
    return f"{config['type']} on {metrics['dataset']['name']}: lr={config['learning_rate']}, reg={config['reg']}"


def model_meta(metrics: dict[str, Any], pixel_max: float) -> dict[str, Any]:
    """What `mlplab evaluate` needs to find the data again, stored beside the parameters in model.npz."""
    return {
        "dataset": metrics["dataset"]["name"],
        "data_dir": metrics["config"].get("data_dir"),
        "pixel_max": pixel_max,
        "best_epoch": metrics["best_epoch"],
    }
