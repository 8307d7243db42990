"""`mlplab inspect RUN`: the report of a finished run, of a run another process is still training, of a run made
before diagnostics existed; first-layer weights of each model kind; bad input as one line, exit 2, nothing written;
the page in a real headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.run import train
from tests.conftest import ONE_THREAD

pytestmark = pytest.mark.usefixtures("one_blas_thread")
FIGURES = ("curves.png", "activations.png", "fractions.png", "gradients.png", "updates.png", "similarity.png")


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        status = main(list(args))
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "mlp"
    train({"type": "MLP", "hidden_sizes": [32, 16], "activation": "tanh", "dropout": 0.1}, out, epochs=3, threads=1)
    return out


def test_a_finished_run_gets_every_panel(mlp_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, stderr = call(capsys, "inspect", str(mlp_run))
    assert status == 0 and stderr == "" and "note:" not in stdout
    report = mlp_run / "inspect"
    assert sorted(p.name for p in report.iterdir() if not p.name.startswith(".")) == sorted(
        [*FIGURES, "weights.png", "report.md", "report.html"]
    )
    md = (report / "report.md").read_text()
    for heading in ("## Network", "## Learning curves", "## Activations", "## Gradients and updates", "## First"):
        assert heading in md
    assert (
        "| dense_1 | Dense | (N, 32) | 2,080 |" in md and "| total |  |  | 2,778 |" in md
    )  # 64·32+32 + 32·16+16 + 170
    diagnostics = json.loads((mlp_run / "diagnostics.json").read_text())
    tanh = diagnostics["epochs"][-1]["layers"]["tanh_1"]
    assert f"| tanh_1 | {tanh['mean']:.3g} | {tanh['std']:.3g} | {100 * tanh['saturated']:.1f}% | — |" in md
    similarity = diagnostics["epochs"][0]["similarity"]["dense_1"]
    assert f"| dense_1 incoming | {similarity:.3g} |" in md
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(FIGURES) + 1 and 'src="http' not in html


def test_a_run_another_process_is_training_shows_the_epochs_so_far(tmp_path: Path) -> None:
    out = tmp_path / "live"
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["train", "--set", "type=MLP", "--set", "batch_size=4", "--set", "epochs=200", "--out", str(out)]
    trainer = subprocess.Popen(
        [sys.executable, "-m", "mlplab.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = out / "diagnostics.live.json"  # the records of a run still training
            if path.exists() and len(json.loads(path.read_bytes())["epochs"]) >= 3:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no diagnostics.live.json with two epochs within a minute")
        result = subprocess.run(
            [sys.executable, "-m", "mlplab.cli", "inspect", str(out), "--out", str(tmp_path / "report")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert trainer.poll() is None, "the run finished before it was inspected: the test shows nothing"
    finally:
        os.killpg(trainer.pid, signal.SIGTERM)
        trainer.wait(30)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "note: no metrics.json yet: the run is still training" in result.stdout
    md = (tmp_path / "report" / "report.md").read_text()
    assert "training (or stopped)" in md and "## Activations" in md
    epochs = int(md.split("| epochs done | ")[1].split(" of ")[0])
    assert 2 <= epochs < 200
    assert "with the weights of its last checkpoint" in result.stdout  # as the last finished epoch left them
    checkpointed = int(md.split("From checkpoint.npz (after epoch ")[1].split(",")[0])
    assert epochs - 1 <= checkpointed <= epochs + 1
    assert (tmp_path / "report" / "weights.png").exists() and (tmp_path / "report" / "curves.png").exists()


def test_a_run_made_before_diagnostics_shows_what_it_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "old"
    train({"type": "TwoLayerNet", "hidden_sizes": [16]}, run, epochs=2, threads=1, diagnostics=False)
    status, stdout, stderr = call(capsys, "inspect", str(run), "--out", str(tmp_path / "r"))
    assert status == 0 and stderr == ""
    assert "note: no diagnostics.json: the run was recorded before diagnostics existed" in stdout
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Learning curves" in md and "## Network" in md and "## First-layer weights" in md
    assert "## Activations" not in md and "No diagnostics.json" in md
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "curves.png",
        "report.html",
        "report.md",
        "weights.png",
    ]


@pytest.mark.parametrize(
    ("config", "caption"),
    [
        ({"type": "SoftmaxRegression"}, "each class's template"),
        ({"type": "CNN", "conv_channels": [4], "kernel_size": 3, "hidden_sizes": [8]}, "the 4 filters of the first"),
        ({"type": "MLP", "hidden_sizes": [100]}, "incoming weights (64 of 100)"),
    ],
)
def test_first_layer_weights_are_drawn_for_each_model_kind(tmp_path: Path, config: dict, caption: str) -> None:
    train(config, tmp_path / "run", epochs=1, threads=1)
    assert main(["inspect", str(tmp_path / "run")]) == 0
    md = (tmp_path / "run" / "inspect" / "report.md").read_text()
    assert caption in md and "![First-layer weights" in md


def test_inspecting_twice_replaces_the_report_whole(mlp_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["inspect", str(mlp_run), "--out", str(out)]) == 0
    (mlp_run / "diagnostics.json").rename(tmp_path / "kept.json")
    try:
        assert main(["inspect", str(mlp_run), "--out", str(out)]) == 0
    finally:
        (tmp_path / "kept.json").rename(mlp_run / "diagnostics.json")
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "report.html", "report.md", "weights.png"]


def test_bad_input_is_one_line_exit_2_and_nothing_written(
    mlp_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "diagnostics.json").write_text((mlp_run / "diagnostics.json").read_text()[:500])
    cases = [
        ([str(tmp_path / "empty")], "not a run directory (no metrics.json or diagnostics.json"),
        ([str(tmp_path / "nowhere")], "no such run directory"),
        ([str(tmp_path / "file")], "not a directory"),
        ([str(broken)], "unreadable diagnostics"),
        ([str(mlp_run), "--out", str(tmp_path / "file" / "report")], "cannot create the output directory"),
        ([str(mlp_run), "--out", str(mlp_run)], "cannot go into the run directory itself"),
    ]
    for args, message in cases:
        status, stdout, stderr = call(capsys, "inspect", *args)
        assert status == 2 and stdout == "", (args, stdout)
        assert stderr.count("\n") == 1 and message in stderr, (args, stderr)
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == []
    assert sorted(p.name for p in broken.iterdir()) == ["diagnostics.json"]


def test_the_report_loads_cleanly_in_chromium(mlp_run: Path, tmp_path: Path) -> None:
    from tests.test_report_browser import BROWSER, browse

    if BROWSER is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium)")
    assert main(["inspect", str(mlp_run), "--out", str(tmp_path / "report")]) == 0
    seen = browse(tmp_path / "report" / "report.html", tmp_path / "shot.png")
    problems = [
        e
        for e in seen["events"]
        if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert problems == []
    requested = [e["params"]["request"]["url"] for e in seen["events"] if e["method"] == "Network.requestWillBeSent"]
    assert all(url.startswith(("file:", "data:")) for url in requested), requested
    images = seen["images"]
    assert len(images) == len(FIGURES) + 1
    for image in images:
        assert image["complete"] and image["width"] >= 400 and image["height"] >= 200 and image["alt"], image
    assert seen["height"] > 3000
