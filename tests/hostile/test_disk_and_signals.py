"""Faults mid-run: a full disk, SIGKILL and SIGTERM of sweeps and studies, a worker killed, then resumed.

Each case runs the real `mlplab` command as a user would (see tests/hostile/harness.py); `python -m tests.hostile`
prints every case's outcome as a table.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.hostile.harness import (
    CASES,
    FAST,
    Command,
    Result,
    case,
    cases_in,
    file_size_limit,
    group_members,
    mlplab,
    no_temporaries,
    run_case,
    snapshot,
    train_digits,
)


@case("fault", "disk full while a rerun writes its files")
def _(tmp: Path) -> str:
    out = tmp / "o"
    train_digits(out)
    before = snapshot(out)
    result = mlplab("train", *FAST, "--set", "seed=7", "--out", str(out), limits=file_size_limit(16_000))
    outcome = result.refused("file too large")
    # The failed rerun may leave its resume state (checkpoint, live diagnostics); the earlier run's files stay whole.
    resume_state = {"checkpoint.npz", "diagnostics.live.json"}
    assert {k: v for k, v in snapshot(out).items() if k not in resume_state} == before, (
        "the earlier run's files changed"
    )
    no_temporaries(out)
    return f"{outcome}; the earlier run untouched"


@case("fault", "disk full in a sweep, then resumed")
def _(tmp: Path) -> str:
    args = ("sweep", "learning_rate", "0.1", "0.05", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    result = mlplab(*args, limits=file_size_limit(16_000))
    outcome = result.refused("file too large")
    no_temporaries(tmp / "s")
    assert not list((tmp / "s").rglob("metrics.json")), "a run marked finished without all its files"
    again = mlplab(*args)
    assert again.code == 0, again.err
    return f"{outcome}; rerun exit 0"


def runs_finished(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in (out / "runs").glob("*/metrics.json")}


def killed_mid_sweep(tmp: Path, sig: int) -> tuple[Result, Path, list[str]]:
    values = ["0.5", "0.4", "0.3", "0.2", "0.1", "0.09"]
    out = tmp / "s"
    args = ("sweep", "learning_rate", *values, "--set", "threads=1", "--set", "epochs=60", "--workers", "2")
    command = Command(*args, "--out", str(out))
    deadline = time.monotonic() + 120
    while not runs_finished(out) and command.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert command.running(), "the sweep ended before the signal"
    os.kill(command.proc.pid, sig)  # the parent only, as a scheduler or an impatient user would
    return command.finish(60), out, values


@case("fault", "SIGKILL of a sweep --workers 2 parent, then resumed")
def _(tmp: Path) -> str:
    _, out, values = killed_mid_sweep(tmp, signal.SIGKILL)  # finish() found no worker, forkserver or tracker left
    before = runs_finished(out)
    assert 1 <= len(before) < len(values)
    no_marker = [p for p in (out / "runs").iterdir() if not (p / "metrics.json").exists()]
    again = mlplab("sweep", "learning_rate", *values, "--set", "threads=1", "--set", "epochs=60", "--workers", "2",
                   "--out", str(out))  # fmt: skip
    assert again.code == 0, again.err
    after = runs_finished(out)
    assert {k: after[k] for k in before} == before, "a finished run was redone"
    return f"no process left; {len(before)} finished runs kept, {len(no_marker)} unfinished redone"


@case("fault", "SIGTERM of a sweep --workers 2 parent")
def _(tmp: Path) -> str:
    result, out, _ = killed_mid_sweep(tmp, signal.SIGTERM)
    assert result.code == 143 and result.err.strip() == "mlplab sweep: terminated", (result.code, result.err)
    no_temporaries(out)
    for run in (out / "runs").iterdir():
        if (run / "metrics.json").exists():
            assert {p.name for p in run.iterdir()} == {"metrics.json", "model.npz", "curves.png", "diagnostics.json"}
    return f"exit 143, one line, no process left; {len(runs_finished(out))} finished runs complete"


def tune_args(tmp: Path, trials: int, epochs: int = 3, workers: int = 1) -> tuple[str, ...]:
    space = tmp / "space.yaml"
    space.write_text("learning_rate: {low: 0.05, high: 0.5, log: true}\n")
    return ("tune", "--set", "threads=1", "--set", f"epochs={epochs}", "--space", str(space),
            "--trials", str(trials), "--workers", str(workers), "--no-pruning", "--out", str(tmp / "t"))  # fmt: skip


@case("fault", "tune killed after a trial's files, before the study recorded it")
def _(tmp: Path) -> str:
    args = tune_args(tmp, 2)
    assert mlplab(*tune_args(tmp, 1)).code == 0
    trial_files = snapshot(tmp / "t" / "trials")
    with sqlite3.connect(tmp / "t" / "study.db") as db:  # as if SIGKILL landed between the files and the tell
        db.execute("UPDATE trials SET state = 'RUNNING', datetime_complete = NULL WHERE number = 0")
        db.execute("DELETE FROM trial_values")
        db.execute(
            "UPDATE trial_user_attributes SET value_json = ? WHERE key = 'owner'",
            (f'"{socket.gethostname()}:999999999"',),
        )
        db.execute("DELETE FROM trial_user_attributes WHERE key = 'run'")
    result = mlplab(*args)
    assert result.code == 0, result.err
    assert snapshot(tmp / "t" / "trials")["trial-0000/metrics.json"] == trial_files["trial-0000/metrics.json"]
    best = json.loads((tmp / "t" / "best.json").read_text())
    assert best["complete"] == 2, best
    trained = [line for line in result.out.splitlines() if line.startswith("trial ")]
    assert len(trained) == 1 and trained[0].startswith("trial   1"), trained
    return "trial 0 recorded from its files, not retrained; trial 1 trained"


@case("fault", "SIGKILL of tune mid-study, then resumed")
def _(tmp: Path) -> str:
    args = tune_args(tmp, 3, epochs=150)
    command = Command(*args)
    deadline = time.monotonic() + 120
    trials = tmp / "t" / "trials"
    while not list(trials.glob("*/metrics.json")) and command.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert command.running(), "the study ended before the kill"
    os.kill(command.proc.pid, signal.SIGKILL)
    command.finish(60)
    done = {p.parent.name: p.read_bytes() for p in trials.glob("*/metrics.json")}
    result = mlplab(*args)
    assert result.code == 0, result.err
    after = {p.parent.name: p.read_bytes() for p in trials.glob("*/metrics.json")}
    assert {k: after[k] for k in done} == done, "a finished trial was redone"
    assert json.loads((tmp / "t" / "best.json").read_text())["complete"] == 3
    return f"{len(done)} finished trial(s) kept; study completed to 3"


def pool_workers(parent: int) -> list[int]:
    """The process-pool workers of `parent`: children of its forkserver, in its process group."""
    members = group_members(parent)
    servers = [p for p in members if _parent_of(p) == parent]  # the forkserver and the resource tracker
    return [p for p in members if _parent_of(p) in servers]  # workers fork from the forkserver


def _parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@case("fault", "a tune worker killed mid-trial (as by the OOM killer), then resumed")
def _(tmp: Path) -> str:
    args = tune_args(tmp, 3, epochs=60, workers=2)
    command = Command(*args)
    deadline = time.monotonic() + 120
    while len(workers := pool_workers(command.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # both trials under way
    os.kill(workers[0], signal.SIGKILL)
    outcome = command.finish(120).refused("a worker process died")
    study_db = tmp / "t" / "study.db"
    with sqlite3.connect(study_db) as db:
        failed = db.execute("SELECT COUNT(*) FROM trials WHERE state = 'FAIL'").fetchone()[0]
    assert failed >= 1, "the crashed trial is not recorded"
    again = mlplab(*args)
    assert again.code == 0, again.err
    best = json.loads((tmp / "t" / "best.json").read_text())
    assert best["fail"] >= 1 and best["complete"] + best["pruned"] + best["fail"] == 3, best
    return f"{outcome}; the crashed trial recorded as failed, not retried; rerun finished the study"


@pytest.mark.slow
@pytest.mark.parametrize("name", cases_in(__name__), ids=lambda name: f"{CASES[name][0]}-{name}")
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    run_case(name, tmp_path)
