"""Seeing inside a network while it learns: statistics of every layer measured on a fixed probe batch beside the
training loop (at epoch 0, before any step, and after every epoch), kept per epoch and written to diagnostics.json.

The probe is a plain forward and backward pass on the first samples of the validation split (in the randomization
tests' loop, `fit_until_memorized`, of the training split as the condition sees it: what is being memorized), in
training mode except that dropout drops nothing (so the probe is the same at every measurement and draws nothing from
dropout's random stream) and BatchNorm normalizes by the probe's own statistics, as in a training step; BatchNorm's
running statistics, the gradient buffers and the optimizer are left exactly as they were. Training's numbers are the
same with and without diagnostics. The file format is documented in docs/guide/diagnostics.md.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlplab import files
from mlplab.errors import MlplabError
from mlplab.files import quoted_text
from mlplab.layers import Dropout, ReLU, Sigmoid, Softsign, Tanh
from mlplab.layers.base import Layer

if TYPE_CHECKING:
    from mlplab.augment import BatchTransform
    from mlplab.data import Split
    from mlplab.models.base import Model

FORMAT = 1
FILE_NAME = "diagnostics.json"
LIVE_FILE_NAME = "diagnostics.live.json"
"""Where a run training into a directory keeps its records until it publishes them as FILE_NAME."""
PROBE_SIZE = 512
"""Probe samples of a network without convolutions: statistics settle to a few digits, the pass costs ~1% of an
MNIST epoch."""
IMAGE_PROBE_SIZE = 128
"""Probe samples of a network with convolutions: im2col of a 512-image batch would take hundreds of MB."""
BINS = np.round(np.linspace(-4.0, 4.0, 81), 6)
"""Fixed activation histogram edges, steps of 0.1: the same for every layer and epoch, so histograms compare."""
SATURATION_LEVEL = 0.97
SATURATION = {
    "sigmoid": f"y < {1 - SATURATION_LEVEL:.2f} or y > {SATURATION_LEVEL} (σ' < 0.0291, 11.6% of its maximum 0.25)",
    "tanh": f"|y| > {SATURATION_LEVEL} (tanh' = 1 − y² < 0.0591, 5.9% of its maximum 1)",
    "softsign": f"|y| > {SATURATION_LEVEL} (softsign' = (1 − |y|)² < 0.0009, 0.09% of its maximum 1)",
}
DEAD = "a ReLU unit (one feature, or one position of one channel of an image) that is 0 for every probe sample"
CURVE_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


@dataclass
class Probe:
    """A fixed batch, the same at every measurement: scaled (and standardized if the run standardizes) inputs."""

    x: np.ndarray
    y: np.ndarray
    split: str = "val"

    @classmethod
    def from_split(
        cls,
        split: Split,
        scale: float,
        dtype: np.dtype | str,
        size: int = PROBE_SIZE,
        transform: BatchTransform | None = None,
        name: str = "val",
    ) -> Probe:
        """The first `size` samples of `split`, in order, scaled as training scales them."""
        n = min(size, len(split))
        x = np.multiply(split.x[:n], np.asarray(1.0 / scale, dtype), dtype=dtype)
        if transform is not None:
            x = transform.eval(x)
        return cls(np.ascontiguousarray(x), np.array(split.y[:n]), name)

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Snapshot:
    """One measurement (epoch 0 = before any step, then after each epoch): arrays for listeners, and the record."""

    epoch: int
    activations: dict[str, np.ndarray]  # layer name → that layer's output on the probe
    gradients: dict[str, np.ndarray]  # param name → d(mean loss)/dθ on the probe (without L2)
    params: dict[str, np.ndarray]  # param name → θ now
    record: dict[str, Any]  # the JSON-able summary: one entry of diagnostics.json's "epochs"
    output_gradients: dict[str, np.ndarray] = field(default_factory=dict)  # layer name → d loss / d output


Listener = Callable[[Snapshot], None]


class Diagnostics:
    """Measures a model on a probe beside the training loop; keeps the records; writes diagnostics.json.

    `probe` None: `fit` makes one from the validation split, `fit_until_memorized` from the training split
    (`PROBE_SIZE` samples, `IMAGE_PROBE_SIZE` for convolutional networks; `training.start_diagnostics`). `path`:
    where diagnostics.json is written after every measurement. `listeners` get every `Snapshot` (TensorBoard writes
    them as histograms).
    """

    def __init__(
        self, probe: Probe | None = None, listeners: Sequence[Listener] = (), path: str | Path | None = None
    ) -> None:
        self.probe = probe
        self.listeners = list(listeners)
        self.path = Path(path) if path is not None else None
        self.records: list[dict[str, Any]] = []
        self.layers: list[dict[str, Any]] = []
        self.model: dict[str, Any] | None = None  # the measured model's type and constructor arguments
        self.run: dict[str, Any] = {}  # what the run is (its config and data), for a reader of a running run
        self._epoch_start: dict[str, np.ndarray] | None = None  # θ at the last measurement
        self._last_step_start: dict[str, np.ndarray] | None = None  # θ before the epoch's last step
        self._encoded: dict[int, tuple[dict[str, Any], str]] = {}  # id(record) → (record, its JSON)

    def needs_probe(self) -> bool:
        return self.probe is None

    def keep_step_start(self, model: Model) -> None:
        """Copy θ before the epoch's last optimizer step (one copy per epoch): the per-step update ratio."""
        self._last_step_start = {name: p.copy() for name, p in model.params.items()}

    def resume_at(self, model: Model, epoch: int) -> None:
        """Continue a run at `epoch`: drop records after it; θ now is where the next epoch's update starts."""
        self.truncate(epoch)
        self._epoch_start = {name: p.copy() for name, p in model.params.items()}
        self._last_step_start = None

    def truncate(self, epochs: int) -> None:
        """Drop the records of epochs after `epochs` (a resumed run measures them again)."""
        self.records = [r for r in self.records if r["epoch"] <= epochs]

    def restore(self, content: dict[str, Any]) -> None:
        """Take the records of a loaded diagnostics.json (see `load`), so a resumed run continues its file."""
        if content.get("bins") != BINS.tolist():
            raise MlplabError("the stored diagnostics use other histogram bins; they cannot be continued")
        self.records = list(content["epochs"])
        self.layers = list(content["layers"])
        self.model = content.get("model")
        self.run = content.get("run") or self.run

    def measure(self, model: Model, epoch: int, history: dict[str, Any] | None = None) -> Snapshot:
        """Measure `model` on the probe now; `history` holds this epoch's curve values (train_loss, train_acc,
        val_loss, val_acc, lr; missing ones are null). Appends the record, writes the file, tells listeners."""
        if self.probe is None:
            raise MlplabError("Diagnostics.measure: no probe (fit makes one, see training.start_diagnostics)")
        if not self.layers:
            self.layers = describe(model)
        if self.model is None:
            self.model = {"type": type(model).__name__, "hyper": dict(getattr(model, "hyper", {}))}
        with np.errstate(all="ignore"):
            passed = probe_pass(model, self.probe)
            params = {name: p.copy() for name, p in model.params.items()}
            record: dict[str, Any] = {"epoch": epoch}
            record.update({key: _number((history or {}).get(key)) for key in CURVE_KEYS})
            record["probe_loss"], record["probe_acc"] = passed.loss, passed.acc
            record["layers"] = {
                name: layer_record(layer, passed.outputs[name], passed.output_grads[name])
                for name, layer in zip(model.layer_names, model.layers, strict=True)
            }
            record["params"] = {
                name: param_record(p, passed.grads[name], self._epoch_start, self._last_step_start, name)
                for name, p in params.items()
            }
            record["similarity"] = similarities(model)
            record["similarity_out"] = outgoing_similarities(model)
        flagged: list[str] = []
        record = _finite_record(record, flagged)
        record["nonfinite"] = flagged
        self.records = [r for r in self.records if r["epoch"] != epoch] + [record]
        self._epoch_start, self._last_step_start = params, None
        self.save()
        snapshot = Snapshot(epoch, passed.outputs, passed.grads, params, record, passed.output_grads)
        for listener in self.listeners:
            listener(snapshot)
        return snapshot

    def save(self) -> None:
        """Write diagnostics.json (when this has a path), whole and atomically: readers never see half of it."""
        if self.path is not None:
            files.write_bytes(self.path, self.to_json())

    def to_dict(self) -> dict[str, Any]:
        """The whole diagnostics.json content."""
        probe = {"split": self.probe.split, "size": len(self.probe)} if self.probe is not None else None
        return {
            "format": FORMAT,
            "probe": probe,
            "bins": BINS.tolist(),
            "saturation": SATURATION,
            "dead": DEAD,
            "model": self.model,
            "run": self.run,
            "layers": self.layers,
            "epochs": self.records,
        }

    def to_json(self) -> bytes:
        """diagnostics.json's bytes: compact JSON, each epoch's record on its own line, encoded once and kept."""
        head = self.to_dict()
        head.pop("epochs")
        for record in self.records:
            if id(record) not in self._encoded:
                self._encoded[id(record)] = (record, json.dumps(record, allow_nan=False, default=_plain))
        epochs = ",\n".join(self._encoded[id(r)][1] for r in self.records)
        self._encoded = {id(r): self._encoded[id(r)] for r in self.records}
        text = json.dumps(head, allow_nan=False, default=_plain)[:-1] + ',\n"epochs": [\n' + epochs + "\n]}\n"
        return text.encode()

    @classmethod
    def load(cls, path: str | Path) -> dict[str, Any]:
        """Read a diagnostics.json whole and check its layout; a broken one is an MlplabError naming the file."""
        path = Path(path)
        try:
            content = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise MlplabError(f"{path}: no diagnostics file") from None
        except (OSError, ValueError) as exc:
            raise MlplabError(f"{path}: unreadable diagnostics ({quoted_text(str(exc), 120)})") from None
        problem = _layout_problem(content)
        if problem:
            raise MlplabError(f"{path}: not an mlplab diagnostics file ({problem})")
        checked: dict[str, Any] = content
        return checked


def _layout_problem(content: Any) -> str:
    if not isinstance(content, dict):
        return "not a JSON object"
    if content.get("format") != FORMAT:
        return f"format {quoted_text(repr(content.get('format')), 40)}, expected {FORMAT}"
    for key, kind in (("bins", list), ("layers", list), ("epochs", list)):
        if not isinstance(content.get(key), kind):
            return f"no {key} list"
    for record in content["epochs"]:
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            return "an epoch entry without its epoch number"
        for key in ("layers", "params", "similarity"):
            if not isinstance(record.get(key), dict):
                return f"epoch {record['epoch']} has no {key} object"
    return ""


# --- the probe pass ----------------------------------------------------------------------------------------


@dataclass
class ProbePass:
    """What one forward/backward on the probe gives, every array a copy."""

    outputs: dict[str, np.ndarray]
    output_grads: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    loss: float
    acc: float


def probe_pass(model: Model, probe: Probe) -> ProbePass:
    """Forward and backward on the probe with dropout off, leaving buffers and gradient buffers as they were."""
    layers, names = model.layers, model.layer_names
    buffers = {name: b.copy() for name, b in model.buffers.items()}
    owned = [layer.grads for layer in layers]
    kept_grads = [{k: g.copy() for k, g in grads.items()} for grads in owned]
    written = model.grads.written
    try:
        x = probe.x
        outputs: dict[str, np.ndarray] = {}
        for name, layer in zip(names, layers, strict=True):
            x = layer.forward(x, train=not isinstance(layer, Dropout))
            outputs[name] = x.copy()
        loss, hits, dz = model.loss.loss_and_grad(x, probe.y)
        output_grads: dict[str, np.ndarray] = {}
        grad: np.ndarray | None = dz
        for i in range(len(layers) - 1, -1, -1):
            assert grad is not None
            output_grads[names[i]] = grad.copy()
            grad = layers[i].backward(grad, need_dx=i > 0)
        model.grads.written = True
        grads = {name: model.grads[name].copy() for name in model.params}
    finally:
        for name, b in model.buffers.items():
            b[...] = buffers[name]
        for grads_of_layer, kept in zip(owned, kept_grads, strict=True):
            for k, g in grads_of_layer.items():
                g[...] = kept[k]
        model.grads.written = written
    return ProbePass(outputs, output_grads, grads, float(loss), hits / max(len(probe), 1))


# --- statistics --------------------------------------------------------------------------------------------


def describe(model: Model) -> list[dict[str, Any]]:
    """The file's "layers": name, kind, output shape, parameter names and count of each layer, in order."""
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "output_shape": list(r.output_shape),
            "params": list(r.param_names),
            "param_count": r.params,
        }
        for r in model.summary().rows
    ]


def histogram(values: np.ndarray) -> list[int]:
    """Counts over `BINS`: [below the first edge, each [edge_k, edge_k+1), at or above the last edge]; NaNs left out."""
    flat = values.reshape(-1)
    inside, _ = np.histogram(flat, BINS)  # NumPy's uniform-bin fast path; its last bin also holds the last edge
    at_top = int(np.count_nonzero(flat == BINS[-1]))
    inside[-1] -= at_top
    below = int(np.count_nonzero(flat < BINS[0]))
    above = int(np.count_nonzero(flat > BINS[-1])) + at_top
    return [below, *(int(c) for c in inside), above]


def saturated_mask(layer: Layer, y: np.ndarray) -> np.ndarray | None:
    """Where a sigmoid, tanh or softsign output is near its asymptotes (thresholds in `SATURATION`); else None."""
    mask: np.ndarray | None = None
    if isinstance(layer, Sigmoid):
        mask = (y < 1 - SATURATION_LEVEL) | (y > SATURATION_LEVEL)
    elif isinstance(layer, Tanh | Softsign):
        mask = np.abs(y) > SATURATION_LEVEL
    return mask


def layer_record(layer: Layer, y: np.ndarray, dy: np.ndarray) -> dict[str, Any]:
    """One layer's output statistics on the probe, and those of d loss / d output."""
    y64 = y.astype(np.float64)
    saturated = saturated_mask(layer, y)
    units = y.reshape(len(y), -1)
    dead = ~np.any(units > 0, axis=0) if isinstance(layer, ReLU) else None
    record: dict[str, Any] = {
        "mean": float(y64.mean()),
        "std": float(y64.std()),
        "hist": histogram(y),
        "saturated": None if saturated is None else float(saturated.mean()),
        "dead": None if dead is None else float(dead.mean()),
        "grad_mean": float(dy.mean(dtype=np.float64)),
        "grad_std": float(dy.astype(np.float64).std()),
        "channels": None,
    }
    if y.ndim == 4:  # NHWC images: per channel too
        record["channels"] = {
            "mean": y64.mean(axis=(0, 1, 2)).tolist(),
            "std": y64.std(axis=(0, 1, 2)).tolist(),
            "dead": None if dead is None else dead.reshape(y.shape[1:]).mean(axis=(0, 1)).tolist(),
            "saturated": None if saturated is None else saturated.mean(axis=(0, 1, 2)).tolist(),
        }
    return record


def _norm(a: np.ndarray) -> float:
    """‖a‖ summed in float64 by NumPy's pairwise sum (not BLAS: the same digits whatever the thread count)."""
    return float(np.sqrt(np.square(a, dtype=np.float64).sum()))


def _ratio(after: np.ndarray, before: dict[str, np.ndarray] | None, name: str) -> float | None:
    """‖θ − θ_before‖ / ‖θ‖, None without a θ_before (or for θ = 0)."""
    if before is None or name not in before:
        return None
    size = _norm(after)
    return _norm(after - before[name]) / size if size > 0 else None


def param_record(
    p: np.ndarray,
    grad: np.ndarray,
    epoch_start: dict[str, np.ndarray] | None,
    step_start: dict[str, np.ndarray] | None,
    name: str,
) -> dict[str, Any]:
    """A parameter's norm, its probe gradient's norm, and its update-to-data ratios over the epoch and one step."""
    return {
        "norm": _norm(p),
        "grad_norm": _norm(grad),
        "update_ratio": _ratio(p, epoch_start, name),
        "step_update_ratio": _ratio(p, step_start, name),
    }


def mean_cosine_similarity(w: np.ndarray) -> float | None:
    """Mean cosine similarity over all pairs of columns of w (each unit's incoming weights), in O(size of w):
    for unit vectors uᵢ, Σ_{i≠j} uᵢ·uⱼ = ‖Σ uᵢ‖² − n. None with fewer than two nonzero columns."""
    cols = w.reshape(-1, w.shape[-1]).astype(np.float64)
    norms = np.sqrt(np.square(cols).sum(axis=0))
    keep = norms > 0
    n = int(keep.sum())
    if n < 2:
        return None
    inverse = np.where(keep, 1.0 / np.where(keep, norms, 1.0), 0.0)
    total = (cols * inverse).sum(axis=1)  # Σ uᵢ, by NumPy's sums rather than a BLAS product: fixed digits
    return float((np.square(total).sum() - n) / (n * (n - 1)))


def _weighted(model: Model) -> list[tuple[str, Layer]]:
    return [
        (name, layer)
        for name, layer in zip(model.layer_names, model.layers, strict=True)
        if "W" in layer.params and layer.params["W"].ndim == 2
    ]


def similarities(model: Model) -> dict[str, float | None]:
    """Per hidden layer with a weight matrix (every one but the output layer): how alike its units' incoming
    weights are."""
    return {name: mean_cosine_similarity(layer.params["W"]) for name, layer in _weighted(model)[:-1]}


def outgoing_similarities(model: Model) -> dict[str, float | None]:
    """Per hidden layer: how alike its units' outgoing weights are (what each unit tells the next weight layer).

    A unit's outgoing weights are the next layer's W rows that read it: channel-last layouts put unit c of C at
    rows p·C + c (one position p for dense inputs, every pixel of an image for convolutions and their flattening).
    A symmetric start shows here first: units whose outputs are all alike get the same gradient on these rows.
    """
    weighted = _weighted(model)
    out: dict[str, float | None] = {}
    for (name, layer), (_, following) in itertools.pairwise(weighted):
        units, w = layer.params["W"].shape[1], following.params["W"]
        if w.shape[0] % units:
            out[name] = None
            continue
        rows = w.reshape(-1, units, w.shape[1])  # (positions, units, next units)
        out[name] = mean_cosine_similarity(rows.transpose(0, 2, 1).reshape(-1, units))
    return out


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _finite_record(value: Any, flagged: list[str], where: str = "") -> Any:
    """NaN and infinities become null (JSON has no spelling for them); where they were is listed in `flagged`."""
    if isinstance(value, float) and not math.isfinite(value):
        flagged.append(where)
        return None
    if isinstance(value, dict):
        return {k: _finite_record(v, flagged, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], float):
        return [_finite_record(v, flagged, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
