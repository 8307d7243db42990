"""One run per value of one config key, everything else as configured: table, curves, overlay, commentary."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure as MplFigure

from mlplab import config as configs
from mlplab.errors import ConfigError
from mlplab.experiments.commentary import sweep_commentary
from mlplab.experiments.executors import Executor, Runner, check_dataset_reachable, run_dir_name
from mlplab.experiments.figures import accuracy_overlay, overlay_figure
from mlplab.experiments.store import RunStore, comparable, summarize
from mlplab.files import quoted, write_json, write_text
from mlplab.report import Figure, Section, Table, percent, write_html, write_markdown

ROWS = (("Training accuracy", "train_acc"), ("Validation accuracy", "val_acc"), ("Test accuracy", "test_acc"))


def accuracy_table(corner: str, columns: dict[str, dict[str, Any]]) -> Table:
    """The writeup's table: rows training / validation / test accuracy, one column per value."""
    rows = [[label, *(percent(summarize(m)[key]) for m in columns.values())] for label, key in ROWS]
    statuses = [m.get("status", "ok") for m in columns.values()]
    if any(s != "ok" for s in statuses):
        rows.append(["Status", *statuses])
    return Table([corner, *columns], rows)


def value_configs(
    key: str,
    values: Sequence[str],
    config_path: str | Path | None = None,
    overrides: Iterable[str] = (),
    **explicit: Any,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The canonical key and one resolved config per value (labelled as typed); rejects repeats."""
    if not values:
        raise ConfigError("give at least one value to sweep")
    canonical, _ = configs.canonical(key.strip().rsplit(".", 1)[-1], None, "sweep")
    if canonical in explicit and explicit[canonical] is not None:
        raise ConfigError(f"cannot sweep {canonical!r} and also set it with --{canonical.replace('_', '-')}")
    out: dict[str, dict[str, Any]] = {}
    for text in values:
        config = configs.resolve(config_path, [*overrides, f"{key}={text}"], **explicit)  # an old key's value converted
        twin = next((label for label, other in out.items() if comparable(other) == comparable(config)), None)
        if twin is not None:
            raise ConfigError(f"sweep values {twin!r} and {text!r} give the same {canonical}; drop one")
        out[text] = config
    distinct_run_names(canonical, out)
    return canonical, out


@dataclass
class SweepResult:
    """Metrics per value label, in the order given, and the files written."""

    key: str
    runs: dict[str, dict[str, Any]]
    run_dirs: dict[str, Path]
    out: Path

    @property
    def table(self) -> Table:
        return accuracy_table(self.key, self.runs)

    def plot(self) -> MplFigure:
        """Validation accuracy per epoch, one line per value, as a Matplotlib figure (a notebook shows it)."""
        series = {f"{self.key} = {label}": m["val_acc"] for label, m in self.runs.items()}
        return overlay_figure(series, f"Validation accuracy per epoch for each {self.key}")


def run_name(key: str, label: str) -> str:
    return run_dir_name(f"{key}={label}")


def distinct_run_names(key: str, value_config: dict[str, dict[str, Any]]) -> dict[str, str]:
    """One run directory name per value label; two values whose names would share a directory are refused."""
    names: dict[str, str] = {}
    for label in value_config:
        name = run_name(key, label)
        twin = next((other for other, taken in names.items() if taken == name), None)
        if twin is not None:
            raise ConfigError(
                f"sweep values {quoted(twin)} and {quoted(label)} would share the run directory {quoted(name)}; "
                "write one of them differently"
            )
        names[label] = name
    return names


def run_sweep(
    key: str,
    value_config: dict[str, dict[str, Any]],
    out: str | Path,
    executor: Executor,
    on_saved: Callable[[str, dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run every value not finished yet in `out`, saving each as it arrives, then write the sweep's files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_dataset_reachable(next(iter(value_config.values())))
    names = distinct_run_names(key, value_config)
    store = RunStore(out / "runs")

    def saved(name: str, metrics: dict[str, Any]) -> None:
        write_json(
            out / "results.json", {label: runner.finished[n] for label, n in names.items() if n in runner.finished}
        )
        if on_saved:
            on_saved(name, metrics)

    runner = Runner(executor, store, saved)
    for label, config in value_config.items():
        runner.request(names[label], config, title=f"{config['type']} on {config['dataset']}: {key} = {label}")
    runner.drain()
    runs = {label: runner.finished[n] for label, n in names.items()}
    result = SweepResult(key, runs, {label: store.path(n) for label, n in names.items()}, out)
    write_json(out / "results.json", result.runs)
    section = sweep_section(result, f"Sweep over {key}")
    write_text(out / "table.md", result.table.markdown() + "\n")
    write_markdown(out / "report.md", f"Sweep over {key}", [section])
    write_html(out / "report.html", f"Sweep over {key}", [section])
    return result


def sweep_section(result: SweepResult, title: str, intro: str = "", overlay: str = "val_acc.png") -> Section:
    """The sweep's table, commentary, validation-accuracy overlay and one curves figure per value."""
    key = result.key
    series = {
        f"{key} = {label}" + (f" ({m['status']})" if m.get("status", "ok") != "ok" else ""): m["val_acc"]
        for label, m in result.runs.items()
        if m["val_acc"]
    }
    figures = []
    if series:
        accuracy_overlay(series, result.out / overlay, f"Validation accuracy per epoch for each {key}")
        figures.append(Figure(result.out / overlay, f"Validation accuracy per epoch, one line per {key}."))
    for label in result.runs:
        curves = result.run_dirs[label] / "curves.png"
        if curves.exists():
            figures.append(Figure(curves, f"Loss and accuracy per epoch with {key} = {label}."))
    return Section(title, intro, [result.table], sweep_commentary(key, result.runs), figures)
