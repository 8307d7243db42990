"""Hostile configs and arguments: YAML bombs, huge or non-finite values, run names that collide or overflow.

Each case runs the real `mlplab` command as a user would (see tests/hostile/harness.py); `python -m tests.hostile`
prints every case's outcome as a table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hostile.harness import CASES, FAST, case, cases_in, mlplab, run_case


@case("input", "sweep values that would share a run directory")
def _(tmp: Path) -> str:
    result = mlplab("sweep", "batch_size", "1:0", "1_0", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    outcome = result.refused("'1:0'", "'1_0'", "batch_size=1_0")
    assert not (tmp / "s").exists()
    return outcome


@case("input", "sweep value whose run name is over 255 characters")
def _(tmp: Path) -> str:
    seed = "1" * 300
    result = mlplab("sweep", "seed", seed, "2", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    assert result.code == 0, result.err
    names = [p.name for p in (tmp / "s" / "runs").iterdir()]
    assert len(names) == 2 and max(map(len, names)) <= 120, names
    assert len(json.loads((tmp / "s" / "results.json").read_text())) == 2
    return f"exit 0; run directories {sorted(map(len, names))} characters long"


@case("input", "YAML alias bomb (a few hundred bytes)")
def _(tmp: Path) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("hidden_sizes: *a8")
    config = tmp / "bomb.yaml"
    config.write_text("\n".join(lines) + "\n")
    assert config.stat().st_size < 700
    result = mlplab("train", "--config", str(config), "--out", str(tmp / "o"), timeout=60, isolate=True)
    outcome = result.refused("expands to more than")
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
    return outcome


@case("input", "config value of a million characters quoted in an error")
def _(tmp: Path) -> str:
    config = tmp / "long.yaml"
    config.write_text(f"hidden_sizes: {'x' * 1_000_000}\n")
    result = mlplab("train", "--config", str(config), "--out", str(tmp / "o"))
    return result.refused("hidden_sizes", "…")


@case("input", "hidden_sizes of [10⁹]")
def _(tmp: Path) -> str:
    return mlplab("train", *FAST, "--set", "hidden_sizes=[1000000000]", "--out", str(tmp / "o")).refused("parameters")


@case("input", "warmup_epochs=.inf")
def _(tmp: Path) -> str:
    return mlplab("train", *FAST, "--set", "warmup_epochs=.inf", "--out", str(tmp / "o")).refused("finite")


@case("input", "learning_rate=.nan")
def _(tmp: Path) -> str:
    return mlplab("train", *FAST, "--set", "learning_rate=.nan", "--out", str(tmp / "o")).refused("finite")


@case("input", "tune space with high: .inf")
def _(tmp: Path) -> str:
    space = tmp / "space.yaml"
    space.write_text("learning_rate: {low: 0.01, high: .inf, log: true}\n")
    result = mlplab("tune", *FAST, "--space", str(space), "--trials", "1", "--workers", "1", "--out", str(tmp / "t"))
    outcome = result.refused("finite")
    assert not (tmp / "t").exists()
    return outcome


@case("input", "gradcheck --hidden-sizes abc")
def _(tmp: Path) -> str:
    return mlplab("gradcheck", "--model", "mlp", "--hidden-sizes", "abc").refused("--hidden-sizes")


@case("input", "gradcheck --batch 0")
def _(tmp: Path) -> str:
    return mlplab("gradcheck", "--batch", "0").refused("--batch")


@case("input", "theory --markdown /nonexistent/x.md")
def _(tmp: Path) -> str:
    return mlplab("theory", "--markdown", "/nonexistent/x.md").refused("/nonexistent/x.md")


@case("input", "randomize --subset 0")
def _(tmp: Path) -> str:
    return mlplab("randomize", "--subset", "0", "--out", str(tmp / "r")).refused("--subset")


@case("input", "randomize --max-steps 0")
def _(tmp: Path) -> str:
    return mlplab("randomize", "--max-steps", "0", "--out", str(tmp / "r")).refused("--max-steps")


@pytest.mark.slow
@pytest.mark.parametrize("name", cases_in(__name__), ids=lambda name: f"{CASES[name][0]}-{name}")
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    run_case(name, tmp_path)
