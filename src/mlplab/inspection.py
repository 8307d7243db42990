"""`mlplab inspect`: one run directory as a report of what happened inside the network — learning curves, the
network's summary, per-layer diagnostics over the epochs, first-layer weights as images.

A run still training is shown as far as it got (diagnostics.json holds the curves so far); a run recorded before
diagnostics existed is shown with what it has, and the report says what is missing. A condition of `mlplab randomize`
(OUT/<condition>: diagnostics.json and model.npz, no metrics.json) is shown with its fit checks per pass instead of
learning curves; its results are in OUT/results.json. Every file is read whole
(mlplab writes them atomically) and the report's files are published together, so nothing is half-written.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from mlplab import diagnostic_plots as dplots
from mlplab import files, plots
from mlplab.diagnostics import FILE_NAME as DIAGNOSTICS_FILE
from mlplab.diagnostics import LIVE_FILE_NAME, SATURATION, Diagnostics
from mlplab.errors import MlplabError
from mlplab.models import Model, build_model
from mlplab.report import Figure, Section, Table, percent, write_html, write_markdown

REPORT_FILES = ("report.md", "report.html")
RANDOMIZE = "randomize"
"""diagnostics.json's run.experiment for a condition of `mlplab randomize` (experiments.randomize.EXPERIMENT)."""
FIGURES = tuple(
    f"{name}.png" for name in ("curves", "activations", "fractions", "gradients", "updates", "similarity", "weights")
)


@dataclass
class RunView:
    """What a run directory holds, each file read whole; `missing` says what could not be shown and why."""

    path: Path
    metrics: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None
    model: Model | None = None
    missing: list[str] = field(default_factory=list)
    weights_from: str = "model.npz (the best-by-validation snapshot)"
    live: bool = False  # the diagnostics came from the live file of a run still training

    @property
    def finished(self) -> bool:
        return self.metrics is not None or (self.condition is not None and not self.live)

    @property
    def run(self) -> dict[str, Any]:
        """diagnostics.json's `run`: what the run is (config, dataset; a randomize condition's experiment, name)."""
        run = (self.diagnostics or {}).get("run")
        return run if isinstance(run, dict) else {}

    @property
    def condition(self) -> str | None:
        """The condition's name when this is a condition of `mlplab randomize` (no metrics.json, ever), else None."""
        if self.metrics is not None or self.run.get("experiment") != RANDOMIZE:
            return None
        return str(self.run.get("condition", self.path.name))

    @property
    def curves(self) -> dict[str, Any]:
        """train/val loss and accuracy per epoch: metrics.json's, or for a run in progress diagnostics.json's."""
        if self.metrics is not None:
            return self.metrics
        records = [r for r in (self.diagnostics or {}).get("epochs", []) if r["epoch"] >= 1]
        keys = ("train_loss", "train_acc", "val_loss", "val_acc")
        return {key: [math.nan if r.get(key) is None else r[key] for r in records] for key in keys}

    @property
    def config(self) -> dict[str, Any]:
        source = self.metrics if self.metrics is not None else (self.diagnostics or {}).get("run") or {}
        config = source.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def dataset(self) -> dict[str, Any]:
        source = self.metrics if self.metrics is not None else (self.diagnostics or {}).get("run") or {}
        dataset = source.get("dataset")
        return dataset if isinstance(dataset, dict) else {}


def read_run(path: str | Path) -> RunView:
    """The run in `path`: metrics.json when finished, diagnostics.json when measured, model.npz when saved."""
    path = Path(path)
    if not path.exists():
        raise MlplabError(f"{path}: no such run directory")
    if not path.is_dir():
        raise MlplabError(f"{path}: not a directory (give a run directory, the --out of mlplab train)")
    view = RunView(path)
    metrics_path = path / "metrics.json"
    if metrics_path.is_file():
        view.metrics = _read_metrics(metrics_path)
    live = path / LIVE_FILE_NAME  # a run training now: newer than any finished run's files there
    if view.metrics is None and live.is_file():
        view.diagnostics, view.live = Diagnostics.load(live), True
    elif (path / DIAGNOSTICS_FILE).is_file():
        view.diagnostics = Diagnostics.load(path / DIAGNOSTICS_FILE)
    if view.metrics is None and view.diagnostics is None:
        raise MlplabError(
            f"{path}: not a run directory (no metrics.json or {DIAGNOSTICS_FILE}; a run training with diagnostics "
            "off shows nothing until it finishes)"
        )
    if view.diagnostics is None:
        view.missing.append(
            f"no {DIAGNOSTICS_FILE}: the run was recorded before diagnostics existed or with `diagnostics: false`, so "
            "there are no per-layer statistics; train it again to see them"
        )
    if view.condition is not None and not view.live:
        view.missing.append(
            f"a finished `mlplab randomize` condition ({view.condition}): no validation and no metrics.json; its "
            f"results (status, steps to fit, test accuracy) are in {path.parent / 'results.json'}"
        )
        view.weights_from = "model.npz (the network as the condition ended: fit, or out of steps)"
        if (path / "model.npz").is_file():
            view.model, _ = Model.load(path / "model.npz")
        else:
            view.missing.append("no model.npz: no first-layer weights")
    elif view.metrics is None:
        done = sum(1 for r in view.diagnostics["epochs"] if r["epoch"] >= 1) if view.diagnostics else 0
        view.model, view.weights_from = _from_checkpoint(path, view.diagnostics, view.condition is not None)
        weights = "with the weights of its last checkpoint" if view.model else "without first-layer weights"
        what, passes = ("the condition", "pass(es)") if view.condition is not None else ("the run", "epoch(s)")
        view.missing.append(
            f"no metrics.json yet: {what} is still training (or was stopped) after {done} {passes}; "
            f"shown as far as it got, {weights} (model.npz is written when it finishes)"
        )
    elif (path / "model.npz").is_file():
        view.model, _ = Model.load(path / "model.npz")
    else:
        view.missing.append("no model.npz (the run diverged before its first epoch ended): no first-layer weights")
    return view


def _from_checkpoint(
    path: Path, diagnostics: dict[str, Any] | None, condition: bool = False
) -> tuple[Model | None, str]:
    """The parameters a running run last checkpointed (RUN/checkpoint.npz, replaced whole after every epoch; a
    randomize condition's OUT/checkpoints/<condition>.npz), in the model diagnostics.json names; (None, "") when
    there is no such file or it does not fit that model."""
    described = (diagnostics or {}).get("model") or {}
    checkpoint = path.parent / "checkpoints" / f"{path.name}.npz" if condition else path / "checkpoint.npz"
    if not checkpoint.is_file() or not isinstance(described.get("hyper"), dict):
        return None, ""
    try:
        model = build_model(str(described["type"]), **described["hyper"])
        with np.load(checkpoint, allow_pickle=False) as archive:
            header = json.loads(str(archive["__checkpoint__"]))
            for name, target in model.params.items():
                stored = archive[f"model/{name}"]
                if stored.shape != target.shape or stored.dtype.kind != "f":
                    return None, ""
                target[...] = stored
        if condition:
            return model, f"../checkpoints/{checkpoint.name} (after pass {int(header['epoch'])}, the condition running)"
        return model, f"checkpoint.npz (after epoch {int(header['epoch'])}, the run still training)"
    except (MlplabError, OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None, ""


def _read_metrics(path: Path) -> dict[str, Any]:
    try:
        metrics = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise MlplabError(f"{path}: unreadable ({files.quoted_text(str(exc), 120)})") from None
    if not isinstance(metrics, dict) or not all(isinstance(metrics.get(k), list) for k in ("train_loss", "val_acc")):
        raise MlplabError(f"{path}: not a run's metrics.json")
    return metrics


# --- the report ------------------------------------------------------------------------------------------------


def inspect_run(run: str | Path | RunView, out: str | Path | None = None) -> Path:
    """Write report.md, report.html and their figures for the run in `run` into `out` (default RUN/inspect), all
    published together; returns `out`. The caller holds `out` (files.output_lock) when other writers may exist."""
    view = run if isinstance(run, RunView) else read_run(run)
    out = Path(out) if out is not None else view.path / "inspect"
    if out.exists() and out.resolve() == view.path.resolve():
        raise MlplabError(f"{out}: the report cannot go into the run directory itself (its curves.png is the run's)")
    files.make_dir(out)
    staging = Path(tempfile.mkdtemp(prefix=".inspect-", dir=out))
    try:
        title, preamble, sections = build_report(view, staging)
        write_markdown(staging / "report.md", title, sections, preamble)
        write_html(staging / "report.html", title, sections, preamble)
        written = {p.name: p.read_bytes() for p in sorted(staging.iterdir())}
        # An earlier report's figures that this one lacks go too (a finished run has weights, a running one not).
        files.publish(out, written, marker="report.html", owned=[*REPORT_FILES, *FIGURES])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def build_report(view: RunView, figures_dir: Path) -> tuple[str, str, list[Section]]:
    """The report's title, preamble and sections; figures are saved into `figures_dir`."""
    config, dataset = view.config, view.dataset
    model_type = config.get("type") or ((view.diagnostics or {}).get("model") or {}).get("type") or "model"
    title = f"Inside {model_type} on {dataset.get('name', 'its data')}: {view.path.name}"
    state = "finished" if view.finished else "still training (or stopped): the epochs so far"
    if view.condition is not None:
        state = f"a {'finished' if view.finished else 'running (or stopped)'} `mlplab randomize` condition"
    preamble = f"Run directory `{view.path}`, {state}."

    def figure(fig: MplFigure | None, name: str, caption: str) -> list[Figure]:
        if fig is None:
            return []
        plots.save_figure(fig, figures_dir / name)
        return [Figure(figures_dir / name, caption)]

    sections = [overview_section(view)]
    sections.append(network_section(view))
    curves = view.curves
    if view.condition is not None:
        sections.append(
            Section(
                "Fit checks",
                "Loss and accuracy on the whole training split as the condition sees it (its labels or pixels: what "
                "the network memorizes), at step 0 and after every pass; nothing is validated.",
                figures=figure(
                    dplots.fit_checks_figure(view.diagnostics or {}, title),
                    "curves.png",
                    "Fit checks per pass.",
                ),
            )
        )
    elif curves["train_loss"]:
        sections.append(
            Section(
                "Learning curves",
                figures=figure(plots.curves_figure(curves, title), "curves.png", "Loss and accuracy per epoch."),
            )
        )
    content = view.diagnostics
    if content is not None and content["epochs"]:
        sections += diagnostics_sections(content, figure)
    sections.append(weights_section(view, figure))
    return title, preamble, sections


def overview_section(view: RunView) -> Section:
    curves, metrics = view.curves, view.metrics or {}
    config = view.config
    keys = ("learning_rate", "optimizer", "batch_size", "reg", "init", "activation", "hidden_sizes", "hidden_size")
    commentary = [m[0].upper() + m[1:] for m in view.missing]
    if view.condition is not None:
        records = (view.diagnostics or {}).get("epochs") or [{}]
        rows = [
            ["experiment", f"mlplab randomize, condition {view.condition}"],
            ["status", "finished (results in ../results.json)" if view.finished else "training (or stopped)"],
            ["passes done", str(len(curves["train_loss"]))],
            ["training accuracy (last fit check)", percent(records[-1].get("train_acc"))],
        ]
        rows += [[key, str(config[key])] for key in keys if key in config]
        return Section("Run", tables=[Table(["", "value"], rows)], commentary=commentary)
    rows = [
        ["status", str(metrics.get("status", "training")) if view.finished else "training (or stopped)"],
        ["epochs done", f"{len(curves['train_loss'])} of {config.get('epochs', '?')}"],
        ["best val acc", percent(metrics.get("best_val_acc")) if view.finished else _last(curves["val_acc"])],
        ["test acc (best-by-validation model)", percent(metrics.get("test_acc"))],
    ]
    rows += [[key, str(config[key])] for key in keys if key in config]
    return Section("Run", tables=[Table(["", "value"], rows)], commentary=commentary)


def _last(values: list[float]) -> str:
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return percent(max(finite)) if finite else "—"


def network_section(view: RunView) -> Section:
    """Layers, output shapes and parameter counts (model.summary()), from the model or the diagnostics file."""
    if view.model is not None:
        summary = view.model.summary()
        rows = [[r.name, r.kind, _shape(r.output_shape), f"{r.params:,}"] for r in summary.rows]
        total = summary.total
    elif view.diagnostics is not None and view.diagnostics["layers"]:
        layers = view.diagnostics["layers"]
        rows = [[x["name"], x["kind"], _shape(x["output_shape"]), f"{x.get('param_count', 0):,}"] for x in layers]
        total = sum(int(x.get("param_count", 0)) for x in layers)
    else:
        return Section("Network", "No model.npz and no diagnostics: the layers are unknown.")
    rows.append(["total", "", "", f"{total:,}"])
    return Section(
        "Network", "As `model.summary()` prints it.", [Table(["layer", "type", "output shape", "params"], rows)]
    )


def _shape(shape: Any) -> str:
    return "(N, " + ", ".join(str(s) for s in shape) + ")"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def diagnostics_sections(content: dict[str, Any], figure: Any) -> list[Section]:
    """Per-layer panels over the epochs and tables of the last measurement."""
    last = content["epochs"][-1]
    epoch = last["epoch"]
    probe = content.get("probe") or {}
    split = {"val": "validation", "train": "training"}.get(probe.get("split", "val"), "validation")
    about = f"the first {probe.get('size', '?')} samples of the {split} split"
    if (content.get("run") or {}).get("experiment") == RANDOMIZE:
        about += " as the condition sees it, the labels or pixels it memorizes"
    layer_rows = [
        [
            layer["name"],
            _fmt(stats.get("mean")),
            _fmt(stats.get("std")),
            _pct(stats.get("saturated")),
            _pct(stats.get("dead")),
            _fmt(stats.get("grad_std")),
        ]
        for layer in dplots.shown_layers(content)
        if (stats := last["layers"].get(layer["name"])) is not None
    ]
    activations = Section(
        "Activations",
        f"Measured on a fixed probe ({about}) at epoch 0, before any step, and after every epoch, with dropout off. "
        f"Saturated: sigmoid {SATURATION['sigmoid']}; tanh {SATURATION['tanh']}; softsign {SATURATION['softsign']}. "
        "Dead: a ReLU unit that is 0 for every probe sample. Below: the last measurement (epoch "
        f"{epoch}).",
        [Table(["layer", "mean", "std", "saturated", "dead", "std of ∂loss/∂output"], layer_rows)],
        activation_commentary(content),
        figure(dplots.activations_figure(content), "activations.png", "Distribution of each layer's outputs.")
        + figure(dplots.fractions_figure(content), "fractions.png", "Saturated and dead fractions per epoch."),
    )
    param_rows = [
        [
            name,
            _fmt(stats.get("norm")),
            _fmt(stats.get("grad_norm")),
            _fmt(stats.get("update_ratio")),
            _fmt(stats.get("step_update_ratio")),
        ]
        for name, stats in last["params"].items()
    ]
    gradients = Section(
        "Gradients and updates",
        "Gradients are of the mean data loss on the probe (no L2 term). The update-to-data ratio ‖Δθ‖/‖θ‖ is taken "
        "over the whole epoch and over its last optimizer step; about 1e-3 per step is the usual healthy rate.",
        [Table(["param", "‖θ‖", "‖∂loss/∂θ‖", "update/data, epoch", "update/data, one step"], param_rows)],
        update_commentary(last),
        figure(dplots.gradients_figure(content), "gradients.png", "Gradient norms per epoch (log scale).")
        + figure(dplots.updates_figure(content), "updates.png", "Update-to-data ratios, log scale, 1e-3 guide."),
    )
    sections = [activations, gradients]
    similarity = dplots.similarity_figure(content)
    if similarity is not None:
        records = {r["epoch"]: r for r in content["epochs"]}
        shown = dplots.chosen_epochs(sorted(records), 5)
        rows = [
            [f"{name} {way}", *(_fmt((records[e].get(key) or {}).get(name)) for e in shown)]
            for name in content["epochs"][0]["similarity"]
            for key, way in (("similarity", "incoming"), ("similarity_out", "outgoing"))
        ]
        sections.append(
            Section(
                "How alike the hidden units are",
                "Mean pairwise cosine similarity of each hidden layer's units' incoming weights (what they read) and "
                "outgoing weights (what they tell the next layer): near 0 for a random start; near 1 when the units "
                "are interchangeable (a symmetric start that training has not broken).",
                [Table(["layer", *(f"epoch {e}" for e in shown)], rows)],
                figures=figure(similarity, "similarity.png", "Mean cosine similarity of hidden units per epoch."),
            )
        )
    return sections


def activation_commentary(content: dict[str, Any]) -> list[str]:
    """Sentences on saturation, dead units and non-finite values at the last measurement."""
    last = content["epochs"][-1]
    lines = []
    for name, stats in last["layers"].items():
        if (stats.get("saturated") or 0) > 0.1:
            lines.append(f"{name}: {_pct(stats['saturated'])} of outputs saturated: their gradients nearly vanish.")
        if (stats.get("dead") or 0) > 0.1:
            lines.append(
                f"{name}: {_pct(stats['dead'])} of units dead (0 for every probe sample): they no longer learn."
            )
    if last.get("nonfinite"):
        lines.append(
            f"Non-finite values (NaN/inf, shown as —) at epoch {last['epoch']}: {', '.join(last['nonfinite'][:5])}."
        )
    return lines


def update_commentary(last: dict[str, Any]) -> list[str]:
    lines = []
    for name, stats in last["params"].items():
        ratio = stats.get("step_update_ratio")
        if name.startswith("W") and ratio is not None and not 1e-4 <= ratio <= 1e-2:
            way = "too small: learning is slow" if ratio < 1e-4 else "large: steps may overshoot"
            lines.append(f"{name}: one step changes it by {ratio:.1e} of its size, {way}.")
    return lines


def weights_section(view: RunView, figure: Any) -> Section:
    """The first layer's weights as images: hidden units, class templates or filters."""
    if view.model is None:
        return Section(
            "First-layer weights",
            "Not available: " + ("no model.npz." if view.finished else "the run has not finished."),
        )
    first = next((layer for layer in view.model.layers if "W" in layer.params), None)
    shape = _image_shape(view.model, first)
    if first is None or shape is None:
        return Section("First-layer weights", "The first layer's inputs are not images: nothing to draw.")
    w = first.params["W"]
    kind = type(view.model).__name__
    if type(first).__name__ == "Conv2D":
        what = f"the {w.shape[1]} filters of the first convolution ({shape[0]}×{shape[1]})"
    elif w.shape[1] == view.dataset.get("num_classes") and kind == "SoftmaxRegression":
        what = "each class's template (its column of W)"
    else:
        what = f"hidden units' incoming weights ({min(w.shape[1], dplots.MAX_TILES)} of {w.shape[1]})"
    labels = [str(i) for i in range(w.shape[1])] if kind == "SoftmaxRegression" else []
    fig = dplots.weights_figure(np.asarray(w, np.float64), shape, f"{kind}: {what}", labels)
    return Section(
        "First-layer weights",
        f"From {view.weights_from}: {what}, red positive, blue negative.",
        figures=figure(fig, "weights.png", f"First-layer weights: {what}."),
    )


def _image_shape(model: Model, first: Any) -> tuple[int, ...] | None:
    """The (H, W[, C]) of one tile: a filter's kernel for a convolution, else the input image."""
    if first is not None and type(first).__name__ == "Conv2D":
        g = first.geometry
        return (g.kernel, g.kernel, g.channels) if g.channels > 1 else (g.kernel, g.kernel)
    image = model.hyper.get("image_shape")
    if image:
        return tuple(int(s) for s in image)
    side = math.isqrt(int(model.input_shape[0])) if len(model.input_shape) == 1 else 0
    return (side, side) if side and side * side == model.input_shape[0] else None
