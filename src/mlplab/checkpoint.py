"""A run's checkpoint: everything a killed training loop needs to go on exactly as if it had never stopped, in one
pickle-free .npz file that replaces itself atomically after every finished pass.

Kept: the parameters and buffers, the optimizer's moments, step count and rate, every random stream (the loop's
shuffling and augmentation streams and any generator a layer draws from, such as dropout's), the loop's progress
(History or Memorization, whether it decided to stop) and the best-by-validation snapshot, plus the identity (the
config) of the run it belongs to. Generator states are stored as the JSON of `bit_generator.state`.
"""

from __future__ import annotations

import json
import os
import signal
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlplab import files
from mlplab.errors import MlplabError
from mlplab.models.base import Model
from mlplab.optim import Optimizer

CHECKPOINT_NAME = "checkpoint.npz"
FORMAT_VERSION = 1
HEADER = "__checkpoint__"
KILL_ENV = "MLPLAB_TEST_KILL_AT"
"""Test hook: the process SIGKILLs itself at the named point (`checkpoint:N`: the checkpoint of pass N is written to
its temporary file but not yet renamed into place; `publishing`: a run's model and curves are in place, its
metrics.json not yet; `published`: a run's files are in place, its checkpoint not yet removed), so tests can kill a
run exactly where a crash would hurt most."""


def kill_point(name: str) -> None:
    """SIGKILL this process when the test hook names this point (see KILL_ENV)."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Snapshot:
    """Where a training loop is after a finished pass: what the model, optimizer and streams do not say."""

    epoch: int
    """Passes finished."""
    done: bool
    """Whether the loop had decided to stop there (early stopping, fit reached, budget spent)."""
    progress: dict[str, Any]
    """The loop's record so far (History or Memorization fields): scalars and lists of numbers."""
    best: dict[str, np.ndarray] | None = None
    """The best-by-validation parameters and buffers, when the loop keeps them."""
    extra: dict[str, Any] | None = None
    """JSON-able records kept beside the loop's (the run's diagnostics so far), restored as they were."""


def layer_generators(model: Model) -> dict[str, np.random.Generator]:
    """Every random generator a layer of `model` holds (dropout's masks), by layer position and attribute."""
    found: dict[str, np.random.Generator] = {}
    for i, layer in enumerate(model.layers):
        for attribute, value in vars(layer).items():
            if isinstance(value, np.random.Generator):
                found[f"layer{i}.{attribute}"] = value
    return found


def _identity_text(identity: Any) -> str:
    return json.dumps(identity, sort_keys=True, default=str)


class Checkpoint:
    """The checkpoint file of one run, at `path`, belonging to the run described by `identity` (its config)."""

    def __init__(self, path: str | Path, identity: Any) -> None:
        self.path = Path(path)
        self.identity = _identity_text(identity)

    def _refuse(self, why: str) -> MlplabError:
        return MlplabError(f"{self.path}: {why}; delete it to start that run over, or use another output directory")

    def _header(self, archive: Any) -> dict[str, Any]:
        header = json.loads(str(archive[HEADER]))
        if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
            raise ValueError("not an mlplab checkpoint of this version")
        return header

    def check(self) -> int | None:
        """Passes finished in the checkpoint, or None when there is none; refuses one of another run's config."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                header = self._header(archive)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise self._refuse(f"unreadable checkpoint ({type(exc).__name__}: {exc})") from None
        if header.get("identity") != self.identity:
            raise self._refuse("a checkpoint of a run with a different config")
        return int(header["epoch"])

    def restore(
        self, model: Model, optimizer: Optimizer, streams: Mapping[str, np.random.Generator]
    ) -> Snapshot | None:
        """Put the model, optimizer and streams back where the checkpoint left them (in place) and return the rest;
        None, and nothing changed, when there is no checkpoint."""
        if self.check() is None:
            return None
        generators = {**streams, **layer_generators(model)}
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                header = self._header(archive)
                arrays = {name: archive[name] for name in archive.files if name != HEADER}
            for name, target in (*model.params.items(), *model.buffers.items()):
                stored = arrays[f"model/{name}"]
                if stored.shape != target.shape:
                    raise ValueError(f"{name} has shape {stored.shape}, the model {target.shape}")
                target[...] = stored
            optimizer.state = {}
            for key, value in arrays.items():
                if key.startswith("optimizer/"):
                    _, param, slot = key.split("/")
                    optimizer.state.setdefault(param, {})[slot] = value.copy()
            for attribute, value in header["optimizer"].items():
                setattr(optimizer, attribute, value)
            for name, generator in generators.items():
                generator.bit_generator.state = header["streams"][name]
            progress = dict(header["progress"])
            for key, value in arrays.items():
                if key.startswith("progress/"):
                    progress[key.removeprefix("progress/")] = value.tolist()
            best = {k.removeprefix("best/"): v for k, v in arrays.items() if k.startswith("best/")}
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise self._refuse(f"unreadable checkpoint ({type(exc).__name__}: {exc})") from None
        best_or_none = best if header["has_best"] else None
        return Snapshot(int(header["epoch"]), bool(header["done"]), progress, best_or_none, header.get("extra"))

    def save(
        self, model: Model, optimizer: Optimizer, streams: Mapping[str, np.random.Generator], snapshot: Snapshot
    ) -> None:
        """Replace the checkpoint with this moment's state, atomically (a kill leaves the old one or the new one)."""
        generators = {**streams, **layer_generators(model)}
        lists = {k: v for k, v in snapshot.progress.items() if isinstance(v, list) and _numbers(v)}
        header = {
            "format": FORMAT_VERSION,
            "identity": self.identity,
            "epoch": snapshot.epoch,
            "done": snapshot.done,
            "has_best": snapshot.best is not None,
            "progress": {k: v for k, v in snapshot.progress.items() if k not in lists},
            "extra": snapshot.extra,
            "optimizer": {
                k: v for k, v in vars(optimizer).items() if isinstance(v, int | float | str) and not k.startswith("_")
            },
            "streams": {name: g.bit_generator.state for name, g in generators.items()},
        }
        arrays: dict[str, np.ndarray] = {
            HEADER: np.array(json.dumps(header, default=_plain)),  # NaN and infinities kept (Python's JSON spelling)
            **{f"model/{name}": p for name, p in (*model.params.items(), *model.buffers.items())},
            **{f"optimizer/{p}/{slot}": v for p, slots in optimizer.state.items() for slot, v in slots.items()},
            **{f"progress/{k}": np.asarray(v, dtype=_list_dtype(v)) for k, v in lists.items()},
            **{f"best/{name}": v for name, v in (snapshot.best or {}).items()},
        }
        files.make_dir(self.path.parent)
        files.write_bytes(
            self.path, files.npz_writer(arrays), before_rename=lambda: kill_point(f"checkpoint:{snapshot.epoch}")
        )

    def remove(self) -> None:
        """Delete the checkpoint (its run's files are written)."""
        self.path.unlink(missing_ok=True)


def _numbers(values: list[Any]) -> bool:
    """Whether a list holds only numbers (kept as an array; anything else stays in the JSON header)."""
    return all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values)


def _list_dtype(values: list[Any]) -> type:
    """int64 for a list of ints, float64 otherwise: a list comes back with the same Python numbers."""
    integers = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values)
    return np.int64 if values and integers else np.float64


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers in the header."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a checkpoint cannot hold {type(value).__name__}")
