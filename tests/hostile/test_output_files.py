"""Hostile output directories: --out that cannot be created, stored results replaced by the wrong JSON.

Each case runs the real `mlplab` command as a user would (see tests/hostile/harness.py); `python -m tests.hostile`
prints every case's outcome as a table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hostile.harness import CASES, FAST, case, cases_in, mlplab, run_case, snapshot


@case("input", "--out /proc/x (cannot be created)")
def _(tmp: Path) -> str:
    result = mlplab("train", *FAST, "--out", "/proc/x")
    outcome = result.refused("/proc/x")
    assert "epoch" not in result.out  # refused before any training
    return outcome


@case("input", "--out below a regular file")
def _(tmp: Path) -> str:
    (tmp / "file").write_text("x")
    result = mlplab("sweep", "learning_rate", "0.1", *FAST, "--workers", "1", "--out", str(tmp / "file" / "o"))
    outcome = result.refused("Not a directory")
    assert "learning_rate=" not in result.out
    return outcome


@case("input", "a run's metrics.json replaced by []")
def _(tmp: Path) -> str:
    args = ("sweep", "learning_rate", "0.1", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    assert mlplab(*args).code == 0
    (tmp / "s" / "runs" / "learning_rate=0.1" / "metrics.json").write_text("[]")
    return mlplab(*args).refused("not a run's metrics")


@case("input", "a sweep's results.json replaced by []")
def _(tmp: Path) -> str:
    args = ("sweep", "learning_rate", "0.1", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    assert mlplab(*args).code == 0
    before = snapshot(tmp / "s" / "runs")
    (tmp / "s" / "results.json").write_text("[]")
    result = mlplab(*args)
    assert result.code == 0, result.err
    assert list(json.loads((tmp / "s" / "results.json").read_text())) == ["0.1"]
    assert snapshot(tmp / "s" / "runs") == before  # rebuilt from the finished run, not retrained
    return "exit 0: results.json rebuilt from the finished run, nothing retrained"


@case("input", "a randomization results.json replaced by []")
def _(tmp: Path) -> str:
    args = ("randomize", "--conditions", "true-labels", "--subset", "200", "--max-steps", "20", "--workers", "1")
    assert mlplab(*args, "--out", str(tmp / "r")).code == 0
    (tmp / "r" / "results.json").write_text("[]")
    return mlplab(*args, "--out", str(tmp / "r")).refused("not a randomization run's results")


@pytest.mark.slow
@pytest.mark.parametrize("name", cases_in(__name__), ids=lambda name: f"{CASES[name][0]}-{name}")
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    run_case(name, tmp_path)
