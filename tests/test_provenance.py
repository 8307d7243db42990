"""Provenance: what produced a result, in metrics.json, results.json, reports and `mlplab --version`; git found
when it is there, handled when it is absent or hangs; never part of what makes a run the same run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy
from threadpoolctl import threadpool_limits

import mlplab
from mlplab import provenance as prov
from mlplab.cli import main
from mlplab.experiments import randomize as rz
from mlplab.report import Section, write_html, write_markdown

pytestmark = pytest.mark.usefixtures("one_blas_thread")
GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


def test_the_record_names_versions_blas_cpu_and_command() -> None:
    record = prov.provenance()
    assert record["mlplab"] == mlplab.__version__
    assert record["numpy"] == np.__version__ and record["scipy"] == scipy.__version__
    assert record["numba"] and record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert record["cpu"] and record["command"]
    assert record["blas"] and all(b["library"] and b["version"] and b["threads"] >= 1 for b in record["blas"])
    with threadpool_limits(limits=1, user_api="blas"):
        assert {b["threads"] for b in prov.provenance()["blas"]} == {1}  # the threads a run really had
    assert json.loads(json.dumps(record)) == record


@needs_git
def test_git_commit_and_dirty_flag_of_a_checkout(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    (tmp_path / "src" / "mlplab").mkdir(parents=True)
    tracked = tmp_path / "src" / "mlplab" / "x.py"
    tracked.write_text("a = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = git("rev-parse", "HEAD").strip()
    assert prov.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "untracked.txt").write_text("not part of the code\n")
    assert prov.git_state(tmp_path) == {"commit": head, "dirty": False}
    tracked.write_text("a = 2\n")
    assert prov.git_state(tmp_path) == {"commit": head, "dirty": True}
    assert prov.git_state(tmp_path / "src") is None  # not a checkout's root


@needs_git
def test_git_absent_or_hanging_gives_none_in_bounded_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src" / "mlplab").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert prov.git_state(tmp_path) is None  # no git on the PATH
    hanging = tmp_path / "bin" / "git"
    hanging.parent.mkdir()
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    monkeypatch.setenv("PATH", f"{hanging.parent}:/usr/bin:/bin")
    start = time.monotonic()
    assert prov.git_state(tmp_path) is None
    assert time.monotonic() - start < 3 * prov.GIT_TIMEOUT


def test_version_prints_the_same_in_short(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    record = prov.provenance()
    assert lines[0].startswith(f"mlplab {mlplab.__version__}")
    if record["git"] is not None:
        assert record["git"]["commit"][:10] in lines[0]
    assert f"numpy {np.__version__}" in lines[1] and f"scipy {scipy.__version__}" in lines[1]
    assert lines[2].startswith("BLAS: ") and record["blas"][0]["library"] in lines[2]
    assert lines[3] == f"CPU: {record['cpu']}"


def test_metrics_json_records_the_command_that_made_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "mlplab.cli", "train", "--set", "epochs=1", "--out", str(out)]
    env = {**os.environ, "MLPLAB_NO_DOWNLOAD": "1"}
    assert subprocess.run(command, env=env, capture_output=True, timeout=120).returncode == 0
    metrics = json.loads((out / "metrics.json").read_text())
    record = metrics["provenance"]
    assert record["command"] == f"mlplab train --set epochs=1 --out {out}"
    assert record["numpy"] == np.__version__ and record["blas"]
    assert "provenance" not in metrics["config"]


def test_results_and_reports_record_it_and_a_rerun_elsewhere_is_the_same_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = rz.Settings(subset=100, hidden=16, max_steps=5, seed=1)
    results = rz.randomize(["true-labels"], settings, tmp_path / "rand", progress=False)
    assert results["true-labels"]["provenance"]["numpy"] == np.__version__
    md = write_markdown(tmp_path / "r.md", "t", [Section("s")])
    html = write_html(tmp_path / "r.html", "t", [Section("s")]).read_text()
    headings = [line for line in md.read_text().splitlines() if line.startswith("## ")]
    assert headings == ["## s", "## Provenance"] and html.index("<h2>s</h2>") < html.index("<h2>Provenance</h2>")
    assert f"| NumPy | {np.__version__} |" in md.read_text() and "| command |" in md.read_text()

    out = tmp_path / "sweep"
    args = ["sweep", "learning_rate", "0.1", "--set", "epochs=1", "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    metrics_path = out / "runs" / "learning_rate=0.1" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["provenance"] = {**metrics["provenance"], "cpu": "another machine", "command": "mlplab sweep …"}
    metrics_path.write_text(json.dumps(metrics))
    capsys.readouterr()
    assert main(args) == 0
    assert "1 finished run reused" in capsys.readouterr().out  # provenance is not config: not "a different run"
    assert json.loads(metrics_path.read_text())["provenance"]["cpu"] == "another machine"
