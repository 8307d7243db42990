"""`mlplab reproduce` on digits end to end: results.json sections, the tuning table's greedy logic, a report whose
tables and commentary come from the numbers, a rerun that redoes nothing, and the hook for extra sections."""

from __future__ import annotations

import base64
import json
import re
from itertools import pairwise
from pathlib import Path

import pytest

from mlplab import config as configs
from mlplab import theory
from mlplab.cli import main
from mlplab.experiments.executors import SerialExecutor
from mlplab.experiments.reproduce import DATASET_SETTINGS, LR_VALUES, REG_VALUES, Extra, label, reproduce
from mlplab.report import Section, Table

ACCURACIES = ("train_acc", "val_acc", "test_acc")
DIGITS = DATASET_SETTINGS["digits"]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reproduce")
    assert main(["reproduce", "--dataset", "digits", "--workers", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def metrics_of(out: Path, entry: dict) -> dict:
    return json.loads((out / entry["run"] / "metrics.json").read_text())


def test_sections_hold_accuracies_and_curves_of_real_runs(out: Path, results: dict) -> None:
    assert list(results["learning_rate_sweep"]) == [label(v) for v in LR_VALUES] == ["1", "0.1", "0.05", "0.01"]
    assert list(results["reg_sweep"]) == [label(v) for v in REG_VALUES] == ["1", "0.1", "0.01", "0.001", "0.0001"]
    entries = [results["default"], *results["learning_rate_sweep"].values(), *results["reg_sweep"].values()]
    entries += list(results["tuning"].values())
    for entry in entries:
        metrics = metrics_of(out, entry)
        best = metrics["best_epoch"]
        assert entry["val_acc"] == metrics["best_val_acc"] and entry["test_acc"] == metrics["test_acc"]
        assert entry["train_acc"] == metrics["train_acc"][best - 1]
        assert entry["curves"]["val_acc"] == metrics["val_acc"]
        assert entry["curves"]["train_loss"] == metrics["train_loss"] and len(metrics["train_loss"]) >= 10
    for value, entry in results["learning_rate_sweep"].items():
        assert metrics_of(out, entry)["config"]["learning_rate"] == float(value)
    for value, entry in results["reg_sweep"].items():
        config = metrics_of(out, entry)["config"]
        assert config["reg"] == float(value) and config["learning_rate"] == 0.1
    # the default, lr 0.1 and reg 0.001 at lr 0.1 are one configuration, run once
    assert results["default"]["run"] == results["learning_rate_sweep"]["0.1"]["run"] == "runs/default"
    assert results["reg_sweep"]["0.001"]["run"] == "runs/default"
    assert results["base_config"] == {**configs.resolve(dataset="digits"), **DIGITS}
    assert results["dataset_settings"] == DIGITS
    # the digits settings make the report meaningful: only the two strongest regularizations stay at chance
    at_chance = [e for e in entries if e["val_acc"] is None or e["val_acc"] < 0.5]
    assert at_chance == [results["reg_sweep"]["1"], results["reg_sweep"]["0.1"]]
    assert "batch_size = 16, momentum = 0.9, epochs = 20 for digits" in (out / "report.md").read_text()


def test_tuning_columns_add_one_change_each_and_only_ever_raise_validation(out: Path, results: dict) -> None:
    columns = list(results["tuning"].values())
    names = list(results["tuning"])
    assert names == ["Default"] + [f"Exp{i}" for i in range(1, len(columns))]
    assert len(columns) >= 2  # on digits the defaults are far from tuned
    base = {**configs.resolve(dataset="digits"), **DIGITS}
    previous_config = metrics_of(out, columns[0])["config"]
    assert previous_config == configs.applicable(base)
    for before, after in pairwise(columns):
        assert after["val_acc"] > before["val_acc"]
        config = metrics_of(out, after)["config"]
        changed = {k: v for k, v in config.items() if previous_config.get(k) != v}
        assert len(changed) == 1 and after["change"] == ", ".join(f"{k} = {label(v)}" for k, v in changed.items())
        previous_config = config
    for tried in results["tuning_search"]:
        assert tried["kept"] == (tried["val_acc"] is not None and tried["val_acc"] > tried["against"])

    table = (out / "report.md").read_text().split("## Tuning")[1]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    improvement = rows["Improvement over default (test)"].split(" | ")[2:]
    expected = [f"{100 * (c['test_acc'] - columns[0]['test_acc']):+.2f} pts" for c in columns[1:]]
    assert [cell.strip(" |") for cell in improvement] == expected


def test_report_tables_and_commentary_come_from_the_results(out: Path, results: dict) -> None:
    report = (out / "report.md").read_text()
    sweep = results["learning_rate_sweep"]
    winner = max(sweep, key=lambda v: sweep[v]["val_acc"])
    assert (
        f"**learning_rate = {winner}** gives the best validation accuracy, {100 * sweep[winner]['val_acc']:.2f}%"
        in (report)
    )
    row = "| Validation accuracy | " + " | ".join(f"{100 * e['val_acc']:.2f}%" for e in sweep.values()) + " |"
    assert row in report
    for name, column in list(results["tuning"].items())[1:]:
        assert f"{name} adds **{column['change']}**" in report
    for heading in ("## Default run", "## Learning rate sweep", "## Regularization sweep", "## Tuning"):
        assert heading in report
    pictures = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report)
    assert len(pictures) >= 12 and all((out / p).exists() for p in pictures)

    html = (out / "report.html").read_text()
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(pictures)
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in embedded)
    assert "http://" not in html and "https://" not in html and 'src="runs/' not in html


def test_theory_table(out: Path, results: dict) -> None:
    report = (out / "report.md").read_text()
    header = Table(list(theory.COLUMNS), theory.rows(theory.run_all())).markdown().splitlines()[0]
    assert "## Theory checks" in report and header == "| # | Claim | How checked | Key numbers | Result |"
    assert header in report
    assert len(results["theory"]) == len(theory.run_all())


def test_rerun_redoes_nothing_and_an_extra_section_plugs_in(out: Path, results: dict) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*")}

    def extra_section(ctx: object) -> tuple[Section, dict]:
        default = ctx.metrics({})  # type: ignore[attr-defined]
        table = Table(["", "epochs"], [["default", str(default["epochs_done"])]])
        return Section("Extra experiment", "Added through the Extra hook.", [table]), {"epochs": default["epochs_done"]}

    base = {**configs.resolve(dataset="digits"), **DIGITS}
    again = reproduce(base, out, SerialExecutor(), [Extra("extra", extra_section)], adapted=DIGITS)
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*")} == stamps
    assert {k: v for k, v in again.items() if k not in ("seconds", "extra")} == {
        k: v for k, v in json.loads(json.dumps(results)).items() if k != "seconds"
    }
    assert again["extra"] == {"epochs": 20}
    assert "## Extra experiment" in (out / "report.md").read_text()


def test_a_diverging_default_is_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    args = ["reproduce", "--set", "learning_rate=1e6", "--set", "epochs=3", "--workers", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["default"]["status"] == "diverged" and results["default"]["val_acc"] is None
    assert results["learning_rate_sweep"]["1"]["status"] == "ok"  # the sweep sets its own learning rates
    assert all(column["val_acc"] is not None for column in list(results["tuning"].values())[1:])
    report = (tmp_path / "report.md").read_text()
    assert "The default run diverged (the loss became NaN/inf) during its first epoch" in report
    assert "| Status | diverged |" in report
