"""Two processes at once on one --out: the second is refused, the first finishes untouched.

Each case runs the real `mlplab` command as a user would (see tests/hostile/harness.py); `python -m tests.hostile`
prints every case's outcome as a table.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.hostile.harness import CASES, FAST, Command, case, cases_in, mlplab, run_case


@case("concurrency", "two trains on one --out at once")
def _(tmp: Path) -> str:
    out = tmp / "o"
    first = Command("train", "--set", "threads=1", "--set", "epochs=40", "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / ".mlplab.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = mlplab("train", *FAST, "--set", "seed=7", "--out", str(out))
    outcome = second.refused(f"is in use by pid {first.proc.pid} on {socket.gethostname()}", "mlplab train")
    done = first.finish()
    assert done.code == 0, done.err
    from mlplab.models import Model

    Model.load(out / "model.npz")
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1024
    return f"{outcome}; the first finished with a valid model"


@case("concurrency", "two sweeps on one --out at once")
def _(tmp: Path) -> str:
    out = tmp / "s"
    args = ("sweep", "learning_rate", "0.1", "0.05", "--set", "threads=1", "--set", "epochs=20", "--workers", "1")
    first = Command(*args, "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / ".mlplab.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    outcome = mlplab(*args, "--out", str(out)).refused("is in use by pid", "mlplab sweep")
    assert first.finish().code == 0
    assert len(json.loads((out / "results.json").read_text())) == 2
    return f"{outcome}; each run trained once"


@pytest.mark.slow
@pytest.mark.parametrize("name", cases_in(__name__), ids=lambda name: f"{CASES[name][0]}-{name}")
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    run_case(name, tmp_path)
