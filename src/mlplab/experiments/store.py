"""Finished runs on disk: one directory per run, written by the parent as each result arrives, so a killed
sweep restarted with the same output directory redoes no finished run."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.errors import MlplabError
from mlplab.models import build_model
from mlplab.plots import plot_curves
from mlplab.run import run_title, save_model, write_bytes, write_json

METRICS = "metrics.json"


@dataclass
class RunOutcome:
    """What a worker sends back: the run's metrics plus its best-by-validation parameters (none when pruned)."""

    metrics: dict[str, Any]
    model_type: str = ""
    hyper: dict[str, Any] = field(default_factory=dict)
    state: dict[str, np.ndarray] = field(default_factory=dict)
    pixel_max: float = 1.0
    curves_png: bytes = b""  # drawn by the worker, so plotting runs in parallel too


def comparable(config: dict[str, Any]) -> Any:
    """The config as JSON would give it back, so a stored config compares equal to a fresh one."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


class RunStore:
    """Run directories under `root`: metrics.json (written last, atomically) marks a run as finished."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def load(self, name: str, config: dict[str, Any]) -> dict[str, Any] | None:
        """The finished run's metrics, or None when it has not finished; refuses a run made with another config."""
        path = self.path(name) / METRICS
        if not path.exists():
            return None
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise MlplabError(f"{path}: unreadable ({exc}); delete that run directory to redo it") from None
        if comparable(metrics.get("config")) != comparable(config):
            raise MlplabError(f"{path.parent} holds a run made with a different config; use another --out or delete it")
        return metrics

    def save(self, name: str, outcome: RunOutcome, title: str = "") -> dict[str, Any]:
        """Write model.npz and curves.png, then metrics.json last: a run with metrics.json is complete."""
        run_dir = self.path(name)
        run_dir.mkdir(parents=True, exist_ok=True)
        metrics = outcome.metrics
        if outcome.state and metrics["best_epoch"] is not None:  # no snapshot, no model: it would be NaN garbage
            model = build_model(outcome.model_type, **outcome.hyper)
            model.load_state(outcome.state)
            save_model(model, run_dir / "model.npz", metrics, outcome.pixel_max)
        if outcome.curves_png:
            write_bytes(run_dir / "curves.png", outcome.curves_png)
        elif metrics["train_loss"]:
            plot_curves(metrics, run_dir / "curves.png", title or run_title(metrics))
        write_json(run_dir / METRICS, metrics)
        return json.loads((run_dir / METRICS).read_text())


def curves_png(metrics: dict[str, Any], title: str = "") -> bytes:
    """The run's loss and accuracy curves as PNG bytes (nothing when no epoch finished)."""
    if not metrics["train_loss"]:
        return b""
    with tempfile.TemporaryDirectory(prefix="mlplab-curves-") as tmp:
        path = Path(tmp) / "curves.png"
        plot_curves(metrics, path, title or run_title(metrics))
        return path.read_bytes()


def summarize(metrics: dict[str, Any]) -> dict[str, Any]:
    """A run in the writeup's terms: accuracies of the best-by-validation epoch (the tested model) and curves."""
    best = metrics.get("best_epoch")
    return {
        "train_acc": metrics["train_acc"][best - 1] if best else None,
        "val_acc": metrics.get("best_val_acc"),
        "test_acc": metrics.get("test_acc"),
        "best_epoch": best,
        "epochs_done": len(metrics["train_loss"]),
        "status": metrics.get("status", "ok"),
        "curves": {k: metrics[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
    }
