"""Runs side by side: learning curves overlaid, the config keys that differ, final metrics and the final epoch's
diagnostics, as report.md and a self-contained report.html (`mlplab compare`).

Runs are read from their directories (a run, or a sweep, tune or reproduce directory holding runs); only whole
files are read (every file mlplab writes is renamed into place), so a run still training shows its epochs so far.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplab.config import applicable, defaults, upgrade
from mlplab.diagnostics import FILE_NAME as DIAGNOSTICS
from mlplab.diagnostics import LIVE_FILE_NAME, Diagnostics
from mlplab.errors import MlplabError
from mlplab.experiments.compare_figures import comparison_curves, diagnostics_overlay
from mlplab.experiments.context import label as value_text
from mlplab.files import quoted_text, write_json
from mlplab.plots import save_figure
from mlplab.report import Figure, Section, Table, percent, write_html, write_markdown

METRICS = "metrics.json"
RUN_GROUPS = ("runs", "trials")  # where sweep/reproduce and tune keep their runs
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc")
OUTPUTS = ("report.md", "report.html", "curves.png", "diagnostics.png", "comparison.json")
MAX_RUNS = 50  # a report with more columns is unreadable; compare a sweep's best runs instead


@dataclass
class Run:
    """One run as compare reads it: its metrics (curves so far for a run still training) and its diagnostics."""

    path: Path
    metrics: dict[str, Any]
    finished: bool
    diagnostics: dict[str, Any] | None
    label: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if not self.finished:
            return f"training ({len(self.metrics['train_loss'])} epochs so far)"
        return str(self.metrics.get("status", "ok"))


def is_run(path: Path) -> bool:
    return any((path / name).is_file() for name in (METRICS, DIAGNOSTICS, LIVE_FILE_NAME))


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """Each path as a run directory, or the run directories a sweep, tune or reproduce directory holds; once each."""
    found: list[Path] = []
    for given in map(Path, paths):
        if not given.exists():
            raise MlplabError(f"{given}: no such directory")
        if not given.is_dir():
            raise MlplabError(f"{given}: not a directory (give run directories, or a sweep or tune directory)")
        if is_run(given):
            found.append(given)
            continue
        groups = [given / g for g in RUN_GROUPS if (given / g).is_dir()] or [given]
        runs = sorted(p for group in groups for p in group.iterdir() if p.is_dir() and is_run(p))
        if not runs:
            raise MlplabError(
                f"{given}: not a run directory (no {METRICS}) nor a sweep, tune or reproduce directory "
                f"(no runs/*/{METRICS} or trials/*/{METRICS})"
            )
        found += runs
    unique = list({p.resolve(): p for p in found}.values())
    if len(unique) < 2:
        what = f"only {unique[0]}" if unique else "none"
        raise MlplabError(f"compare needs at least 2 runs, got {what}")
    if len(unique) > MAX_RUNS:
        raise MlplabError(f"compare takes at most {MAX_RUNS} runs, got {len(unique)}; name fewer")
    return unique


def read_json(path: Path) -> Any:
    """A whole JSON file (mlplab renames files into place: never half of one), or one line saying what is wrong."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MlplabError(f"{path}: unreadable ({quoted_text(str(exc), 200)})") from None


def load_run(path: Path) -> Run:
    """The run in `path`: metrics.json when it finished, else the curves its diagnostics recorded so far."""
    live = path / LIVE_FILE_NAME  # a run training now keeps its records there until it publishes them
    source = live if live.is_file() and not (path / METRICS).is_file() else path / DIAGNOSTICS
    diagnostics = Diagnostics.load(source) if source.is_file() else None
    if (path / METRICS).is_file():
        metrics = read_json(path / METRICS)
        if not isinstance(metrics, dict) or not all(isinstance(metrics.get(k), list) for k in CURVES):
            raise MlplabError(f"{path / METRICS}: not a run's metrics (no per-epoch curves)")
        run = Run(path, metrics, True, diagnostics)
    else:
        assert diagnostics is not None  # is_run: one of the two exists
        epochs = [e for e in diagnostics["epochs"] if e["epoch"] >= 1]
        metrics = {k: [e.get(k) for e in epochs] for k in (*CURVES, "lr")}
        metrics["config"] = diagnostics.get("config") or {}
        run = Run(path, metrics, False, diagnostics)
    try:
        stored = run.metrics.get("config") or {}
        run.config = applicable({**defaults(), **upgrade(stored)}) if stored else {}  # old key names too
    except (MlplabError, KeyError, TypeError) as exc:
        raise MlplabError(f"{path / METRICS}: its config is not an mlplab config ({exc})") from None
    return run


def labels(paths: Sequence[Path]) -> list[str]:
    """The shortest trailing parts of each path that tell the runs apart: `lr=0.1`, or `a/default` vs `b/default`."""
    parts = [p.resolve().parts for p in paths]
    for n in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-n:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every run the paths name, read and labelled, or one line about the first that cannot be compared."""
    found = expand(paths)
    runs = [load_run(p) for p in found]
    for run, name in zip(runs, labels(found), strict=True):
        run.label = name
    return runs


# --- the report's sections -----------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A config value or number as the tables print it; a dash where there is none."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return value_text(value)
    return str(value)


def config_section(runs: Sequence[Run]) -> Section:
    """The config keys whose values differ (a dash: the key does not apply to that run's model or optimizer)."""
    keys = sorted({k for r in runs for k in r.config})
    differ = [k for k in keys if len({json.dumps(r.config.get(k), sort_keys=True) for r in runs}) > 1]
    header = ["key", *(r.label for r in runs)]
    table = Table(header, [[k, *(cell(r.config.get(k)) for r in runs)] for k in differ])
    datasets = {(r.metrics.get("dataset") or {}).get("name") for r in runs if r.metrics.get("dataset")}
    lines = []
    if not differ:
        lines.append("Every config key is the same in all runs: they differ only in what the seed does not fix.")
    else:
        lines.append(f"{len(differ)} of {len(keys)} keys differ; the other {len(keys) - len(differ)} are equal.")
    if len(datasets) > 1:
        lines.append(f"The runs use different datasets ({', '.join(sorted(map(str, datasets)))}): compare with care.")
    missing = [r.label for r in runs if not r.config]
    if missing:
        lines.append(f"No config recorded for {', '.join(missing)} (a run still training records it when it ends).")
    return Section("Config keys that differ", "", [table] if differ else [], lines)


def best_train_acc(metrics: dict[str, Any]) -> float | None:
    best = metrics.get("best_epoch")
    return metrics["train_acc"][best - 1] if best and len(metrics["train_acc"]) >= best else None


def last(series: Sequence[Any]) -> Any:
    return series[-1] if series else None


def loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def final_section(runs: Sequence[Run]) -> Section:
    """The tested model's accuracies (the best-by-validation epoch) and the last epoch's numbers."""
    rows = [
        ("Status", lambda r: r.status),
        ("Epochs", lambda r: str(len(r.metrics["train_loss"]))),
        ("Best epoch (by validation)", lambda r: cell(r.metrics.get("best_epoch"))),
        ("Training accuracy (best epoch)", lambda r: percent(best_train_acc(r.metrics))),
        ("Validation accuracy (best)", lambda r: percent(r.metrics.get("best_val_acc"))),
        ("Test accuracy (best model)", lambda r: percent(r.metrics.get("test_acc"))),
        ("Final training loss", lambda r: loss(last(r.metrics["train_loss"]))),
        ("Final validation loss", lambda r: loss(last(r.metrics["val_loss"]))),
        ("Wall time", lambda r: seconds(r.metrics.get("total_seconds"))),
    ]
    table = Table(["", *(r.label for r in runs)], [[name, *(get(r) for r in runs)] for name, get in rows])
    lines = []
    scored = [r for r in runs if isinstance(r.metrics.get("best_val_acc"), int | float)]
    if scored:
        top = max(scored, key=lambda r: r.metrics["best_val_acc"])
        lines.append(f"Best validation accuracy: **{top.label}** ({percent(top.metrics['best_val_acc'])}).")
    bad = [f"{r.label} ({r.status})" for r in runs if r.status not in ("ok",)]
    if bad:
        lines.append(f"Not a normal finish: {', '.join(bad)}; a dash is a number the run never produced.")
    intro = "Accuracies of the best-by-validation epoch, the model each run tested; losses of the last epoch."
    return Section("Final metrics", intro, [table], lines)


def seconds(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def fraction(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{100 * value:.1f}%"


def ratio(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.2e}"


def final_record(run: Run) -> dict[str, Any]:
    epochs = run.diagnostics["epochs"] if run.diagnostics else []
    return epochs[-1] if epochs else {}


def diagnostics_rows(runs: Sequence[Run]) -> list[list[str]]:
    """One row per layer and measure any run has at its final epoch: dead and saturated fractions, similarity of
    the units' incoming weights, update-to-data ratios of the weight matrices (every parameter's are in
    comparison.json)."""
    records = [final_record(r) for r in runs]
    rows: list[list[str]] = [["Epoch", *(cell(rec.get("epoch")) for rec in records)]]
    layer_names = unique(name for rec in records for name in (rec.get("layers") or {}))
    for measure, show in (("dead", fraction), ("saturated", fraction)):
        for name in layer_names:
            values = [((rec.get("layers") or {}).get(name) or {}).get(measure) for rec in records]
            if any(v is not None for v in values):
                rows.append([f"{name} {measure}", *map(show, values)])
    for name in unique(n for rec in records for n in (rec.get("similarity") or {})):
        values = [(rec.get("similarity") or {}).get(name) for rec in records]
        rows.append([f"{name} unit similarity", *(cell_number(v) for v in values)])
    for name in unique(n for rec in records for n in (rec.get("params") or {}) if str(n).startswith("W")):
        for measure, what in (("step_update_ratio", "per step"), ("update_ratio", "over the epoch")):
            values = [((rec.get("params") or {}).get(name) or {}).get(measure) for rec in records]
            if any(v is not None for v in values):
                rows.append([f"{name} ‖Δθ‖/‖θ‖ {what}", *map(ratio, values)])
    return rows


def cell_number(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.3f}"


def unique(names: Any) -> list[str]:
    return list(dict.fromkeys(names))


def diagnostics_section(runs: Sequence[Run], figure: Path | None) -> Section:
    """The final epoch's diagnostics side by side, and what is missing where a run has none."""
    title = "Diagnostics at the final epoch"
    have = [r for r in runs if r.diagnostics and r.diagnostics["epochs"]]
    missing = [f"**{r.label}**" for r in runs if r not in have]
    lines = []
    if missing:
        who = "No run has a" if not have else f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no"
        lines.append(
            f"{who} {DIAGNOSTICS} (made before mlplab recorded diagnostics, or with them off): dead and saturated "
            "units, unit similarity and update ratios are missing there; curves, config and final metrics are above."
        )
    if not have:
        return Section(title, "", [], lines)
    intro = (
        "Measured on each run's fixed probe batch after its last epoch: the fraction of dead ReLU units (zero for "
        "every probe sample) and of saturated units, the mean pairwise cosine similarity of a layer's units' "
        "incoming weights (1: all alike), and each weight matrix's update-to-data ratio ‖Δθ‖/‖θ‖ of one step "
        "(around 1e-3 is the usual healthy rate) and over the whole epoch."
    )
    table = Table(["", *(r.label for r in runs)], diagnostics_rows(runs))
    figures = [Figure(figure, "Diagnostics per epoch, one line per run.")] if figure else []
    return Section(title, intro, [table], lines, figures)


def runs_section(runs: Sequence[Run], curves: Path) -> Section:
    rows = [
        [
            r.label,
            str(r.path),
            str(r.config.get("type", "—")),
            str((r.metrics.get("dataset") or {}).get("name") or r.config.get("dataset") or "—"),
            r.status,
        ]
        for r in runs
    ]
    table = Table(["run", "directory", "model", "dataset", "status"], rows)
    figure = Figure(curves, "Loss and accuracy per epoch: one colour per run, validation solid, training dashed.")
    return Section("Runs and learning curves", "", [table], [], [figure])


def check_out(runs: Sequence[Run], out: str | Path) -> None:
    """Refuse an output directory inside a run directory (compared or not): a report never mixes into a run's own
    files."""
    target = Path(out).resolve()
    inside = [run.path for run in runs if run.path.resolve() in (target, *target.parents)]
    inside += [d for d in (Path(out), *Path(out).parents) if is_run(d)]
    if inside:
        raise MlplabError(f"--out {out} is inside the run {inside[0]}; choose another directory")


@dataclass
class Comparison:
    runs: list[Run]
    out: Path
    sections: list[Section]


def compare(paths: Sequence[str | Path], out: str | Path) -> Comparison:
    """Compare the runs `paths` name (run directories, or sweep, tune or reproduce directories) into `out`:
    report.md, report.html, curves.png, diagnostics.png (when any run has diagnostics) and comparison.json.
    Every input is read and checked before anything is written."""
    return write_comparison(load_runs(paths), out)


def write_comparison(runs: Sequence[Run], out: str | Path) -> Comparison:
    """The report of `runs` (from `load_runs`) in `out`; report.html is written last."""
    runs = list(runs)
    out = Path(out)
    check_out(runs, out)
    series = {r.label: {k: r.metrics[k] for k in CURVES} for r in runs}
    curves_figure = comparison_curves(series, "Learning curves")
    diag_figure = diagnostics_overlay({r.label: r.diagnostics["epochs"] for r in runs if r.diagnostics})
    curves = save_figure(curves_figure, out / "curves.png")
    diag_png = save_figure(diag_figure, out / "diagnostics.png") if diag_figure is not None else None
    if diag_png is None:
        (out / "diagnostics.png").unlink(missing_ok=True)  # an earlier comparison's, not this one's
    sections = [runs_section(runs, curves), config_section(runs), final_section(runs)]
    sections.append(diagnostics_section(runs, diag_png))
    title = f"Comparing {len(runs)} runs"
    write_json(
        out / "comparison.json",
        {
            "runs": {
                r.label: {
                    "path": str(r.path),
                    "status": r.status,
                    "config": r.config,
                    **{k: r.metrics.get(k) for k in ("best_epoch", "best_val_acc", "test_acc", *CURVES)},
                    "diagnostics": final_record(r) or None,
                }
                for r in runs
            },
            "differing_keys": [row[0] for t in sections[1].tables for row in t.rows],
        },
    )
    write_markdown(out / "report.md", title, sections)
    write_html(out / "report.html", title, sections)
    return Comparison(runs, out, sections)
