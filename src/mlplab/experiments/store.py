"""Finished runs on disk: one directory per run, written by the parent as each result arrives, so a killed
sweep restarted with the same output directory redoes no finished run; an unfinished run's directory holds the
checkpoint its worker saves after every epoch, so it continues from there."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab import files
from mlplab.checkpoint import CHECKPOINT_NAME, Checkpoint
from mlplab.config import applicable, defaults, upgrade
from mlplab.errors import MlplabError
from mlplab.models import build_model
from mlplab.run import RUN_FILES, run_checkpoint, run_dir_files

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
    diagnostics: dict[str, Any] | None = None  # diagnostics.json's content, when the run was measured


def comparable(config: dict[str, Any]) -> Any:
    """The config as JSON would give it back, so a stored config compares equal to a fresh one."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


class RunStore:
    """Run directories under `root`: metrics.json (written last, atomically) marks a run as finished."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def checkpoint(self, name: str, config: dict[str, Any]) -> Checkpoint:
        """Where run `name`'s worker saves its checkpoint; one of another config there is refused."""
        checkpoint = run_checkpoint(config, self.path(name) / CHECKPOINT_NAME)
        checkpoint.check()
        return checkpoint

    def load(self, name: str, config: dict[str, Any]) -> dict[str, Any] | None:
        """The finished run's metrics, or None when it has not finished; refuses a run made with another config."""
        path = self.path(name) / METRICS
        if not path.exists():
            return None
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise MlplabError(f"{path}: unreadable ({exc}); delete that run directory to redo it") from None
        if not isinstance(metrics, dict) or not isinstance(metrics.get("train_loss"), list):
            raise MlplabError(f"{path}: not a run's metrics; delete that run directory to redo it")
        # A key added to mlplab after the run was made is absent from its config: it ran at that key's default;
        # a key renamed since is read under its new name.
        stored = {**defaults(), **upgrade(metrics.get("config") or {})}
        if comparable(applicable(stored)) != comparable(applicable(config)):
            raise MlplabError(f"{path.parent} holds a run made with a different config; use another --out or delete it")
        (path.parent / CHECKPOINT_NAME).unlink(missing_ok=True)  # killed between publishing and removing it
        return metrics

    def save(self, name: str, outcome: RunOutcome, title: str = "") -> dict[str, Any]:
        """Publish model.npz, curves.png and metrics.json as a unit, metrics.json last: with it, a run is complete."""
        run_dir = files.make_dir(self.path(name))
        files.remove_stale_temporaries(run_dir)  # a killed writer's leftovers; the caller holds the output lock
        metrics = outcome.metrics
        model = None
        if outcome.state:
            model = build_model(outcome.model_type, **outcome.hyper)
            model.load_state(outcome.state)
        written = run_dir_files(metrics, model, outcome.pixel_max, outcome.curves_png, title, outcome.diagnostics)
        files.publish(run_dir, written, marker=METRICS, owned=RUN_FILES)
        (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)  # the run is complete: nothing left to resume
        return json.loads(written[METRICS])  # type: ignore[arg-type]  # bytes: json_bytes made it


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


def finished_run_dirs(runs: Path, names: list[str] | None = None) -> int:
    """How many run directories under `runs` (all, or those named) hold a finished run's metrics.json."""
    if names is None:
        return len(list(runs.glob(f"*/{METRICS}")))
    return sum((runs / name / METRICS).exists() for name in names)


def finished_conditions(out: Path, conditions: list[str]) -> int:
    """How many of `conditions` an earlier randomization finished in `out` (randomize refuses other settings
    itself)."""
    try:
        done = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(c in done for c in conditions) if isinstance(done, dict) else 0
