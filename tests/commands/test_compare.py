"""`mlplab compare`: a sweep and a lone run side by side (curves, the keys that differ, final metrics, diagnostics),
a run still training shows its epochs so far, bad input is one line and exit 2 with nothing written, and the HTML
loads cleanly in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlplab.cli import main
from mlplab.report import percent

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "digits.yaml")
SWEEP_RUNS = ["learning_rate=0.05", "learning_rate=0.5"]


def read(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-value learning-rate sweep, a lone tanh MLP run and a run without diagnostics, on digits, 2 epochs."""
    root = tmp_path_factory.mktemp("runs")
    args = ["sweep", "learning_rate", "0.05", "0.5", "--config", CONFIG, "--set", "epochs=2", "--workers", "1"]
    assert main([*args, "--out", str(root / "sweep")]) == 0
    args = ["train", "--config", CONFIG, "--set", "epochs=2", "--set", "type=MLP", "--set", "activation=tanh"]
    assert main([*args, "--out", str(root / "mlp")]) == 0
    args = ["train", "--config", CONFIG, "--set", "epochs=2", "--set", "diagnostics=false"]
    assert main([*args, "--out", str(root / "unmeasured")]) == 0
    return root


def diagnostics(epochs: int, dead: float) -> dict[str, Any]:
    """A diagnostics.json in the documented format for a TwoLayerNet (dense_1 → relu_1 → dense_2)."""
    records = []
    for epoch in range(epochs + 1):
        layer = {"mean": 0.1, "std": 1.0, "hist": [0] * 10, "grad_mean": 0.0, "grad_std": 0.01, "channels": None}
        records.append(
            {
                "epoch": epoch,
                **{k: (None if epoch == 0 and k.startswith("train") else 0.5) for k in ("train_loss", "train_acc")},
                **{"val_loss": 2.0 - 0.3 * epoch, "val_acc": 0.1 + 0.2 * epoch, "lr": 0.1},
                "layers": {
                    "dense_1": {**layer, "saturated": None, "dead": None},
                    "relu_1": {**layer, "saturated": None, "dead": dead * epoch / max(epochs, 1)},
                    "dense_2": {**layer, "saturated": None, "dead": None},
                },
                "params": {
                    "W1": {
                        "norm": 1.0,
                        "grad_norm": 0.1,
                        "update_ratio": None if epoch == 0 else 0.02,
                        "step_update_ratio": None if epoch == 0 else 0.0012,
                    },
                    "b1": {"norm": 0.1, "grad_norm": 0.1, "update_ratio": None, "step_update_ratio": None},
                },
                "similarity": {"dense_1": 0.9 - 0.1 * epoch},
            }
        )
    layers = [
        {"name": "dense_1", "kind": "Dense"},
        {"name": "relu_1", "kind": "ReLU"},
        {"name": "dense_2", "kind": "Dense"},
    ]
    return {
        "format": 1,
        "probe": {"split": "val", "size": 512},
        "bins": [-4.0, 4.0],
        "layers": layers,
        "epochs": records,
    }


def compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["compare", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_sweep_and_a_run_side_by_side(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    status, stdout, _ = compare(capsys, str(runs / "sweep"), str(runs / "mlp"), "--out", str(out))
    assert status == 0
    dirs = {name: runs / "sweep" / "runs" / name for name in SWEEP_RUNS} | {"mlp": runs / "mlp"}
    metrics = {name: read(d / "metrics.json") for name, d in dirs.items()}
    lines = stdout.splitlines()
    for name, m in metrics.items():
        line = next(line for line in lines if line.startswith(name + " "))
        assert f"val {percent(m['best_val_acc'])}  test {percent(m['test_acc'])}  (2 epochs, ok)" in line
    differ = ["activation", "dropout", "init", "learning_rate", "type"]
    assert f"differing config keys: {', '.join(differ)}" in stdout

    report = (out / "report.md").read_text()
    assert "| learning_rate | 0.05 | 0.5 | 0.2 |" in report
    assert "| type | TwoLayerNet | TwoLayerNet | MLP |" in report
    assert "| init | — | — | he |" in report  # a dash: the key does not apply to a Two-Layer Net
    assert re.search(r"5 of (\d+) keys differ; the other (\d+) are equal", report)
    tested = [percent(metrics[n]["test_acc"]) for n in [*SWEEP_RUNS, "mlp"]]
    assert f"| Test accuracy (best model) | {' | '.join(tested)} |" in report

    # The final epoch's diagnostics, side by side, as each run's diagnostics.json has them.
    final = {name: read(d / "diagnostics.json")["epochs"][-1] for name, d in dirs.items()}
    assert all(f["epoch"] == 2 for f in final.values())
    saturated = [
        f"{100 * final[n]['layers'][layer]['saturated']:.1f}%"
        for n, layer in (("learning_rate=0.05", "sigmoid_1"), ("learning_rate=0.5", "sigmoid_1"), ("mlp", "tanh_1"))
    ]
    assert f"| sigmoid_1 saturated | {saturated[0]} | {saturated[1]} | — |" in report
    assert f"| tanh_1 saturated | — | — | {saturated[2]} |" in report
    similarity = [f"{final[n]['similarity']['dense_1']:.3f}" for n in [*SWEEP_RUNS, "mlp"]]
    assert f"| dense_1 unit similarity | {' | '.join(similarity)} |" in report
    ratio = [f"{final[n]['params']['W1']['step_update_ratio']:.2e}" for n in [*SWEEP_RUNS, "mlp"]]
    assert f"| W1 ‖Δθ‖/‖θ‖ per step | {' | '.join(ratio)} |" in report
    assert "no diagnostics.json" not in report
    assert report.count("](") == 2 and (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "diagnostics.png").read_bytes().startswith(b"\x89PNG")

    saved = read(out / "comparison.json")
    assert list(saved["runs"]) == [*SWEEP_RUNS, "mlp"]
    for name, m in metrics.items():
        assert saved["runs"][name]["val_acc"] == m["val_acc"] and saved["runs"][name]["test_acc"] == m["test_acc"]
        assert saved["runs"][name]["diagnostics"] == final[name]
    assert saved["differing_keys"] == differ


def test_a_run_without_diagnostics_shows_what_it_has(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, stdout, _ = compare(capsys, str(runs / "unmeasured"), str(runs / "mlp"), "--out", str(tmp_path / "out"))
    assert status == 0
    assert "unmeasured  val" in stdout and "(2 epochs, ok, no diagnostics)" in stdout
    report = (tmp_path / "out" / "report.md").read_text()
    assert "**unmeasured** has no diagnostics.json" in report and "are missing there" in report
    assert "| tanh_1 saturated | — |" in report  # what the other run has, beside a dash
    unmeasured = read(runs / "unmeasured" / "metrics.json")
    assert f"| Validation accuracy (best) | {percent(unmeasured['best_val_acc'])} |" in report


def test_diagnostics_side_by_side_and_a_run_still_training(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_diag = tmp_path / "with"
    shutil.copytree(runs / "sweep" / "runs" / "learning_rate=0.5", with_diag)
    (with_diag / "diagnostics.json").write_text(json.dumps(diagnostics(2, dead=0.25)))
    training = tmp_path / "training"  # no metrics.json yet: only what the diagnostics recorded so far
    training.mkdir()
    (training / "diagnostics.json").write_text(json.dumps(diagnostics(3, dead=0.5)))
    out = tmp_path / "out"
    status, stdout, _ = compare(capsys, str(with_diag), str(training), str(runs / "unmeasured"), "--out", str(out))
    assert status == 0
    assert "training (3 epochs so far)" in stdout
    report = (out / "report.md").read_text()
    assert "| Epoch | 2 | 3 | — |" in report
    assert "| relu_1 dead | 25.0% | 50.0% | — |" in report
    assert "| dense_1 unit similarity | 0.700 | 0.600 | — |" in report
    assert "| W1 ‖Δθ‖/‖θ‖ per step | 1.20e-03 | 1.20e-03 | — |" in report
    assert "**unmeasured** has no diagnostics.json" in report
    assert "| Validation accuracy (best) |" in report and "| Epochs | 2 | 3 | 2 |" in report
    assert (out / "diagnostics.png").read_bytes().startswith(b"\x89PNG")
    assert report.count("](") == 2  # curves and diagnostics


def bad_inputs(root: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp / "empty"
    empty.mkdir()
    broken = tmp / "broken"
    shutil.copytree(root / "mlp", broken)
    (broken / "metrics.json").write_text('{"train_loss": [2.3, ')
    not_metrics = tmp / "not-metrics"
    not_metrics.mkdir()
    (not_metrics / "metrics.json").write_text("[1, 2]")
    a_file = tmp / "file"
    a_file.write_text("x")
    mlp, lr = str(root / "mlp"), str(root / "sweep" / "runs" / SWEEP_RUNS[0])
    unmeasured = root / "unmeasured"
    return {
        "not a run": ([str(empty), mlp], f"{empty}: not a run directory (no metrics.json) nor a sweep, tune or"),
        "missing": ([str(tmp / "nowhere"), mlp], f"{tmp / 'nowhere'}: no such directory"),
        "a file": ([str(a_file), mlp], f"{a_file}: not a directory"),
        "one run": ([mlp], f"compare needs at least 2 runs, got only {mlp}"),
        "the same run twice": ([mlp, mlp], "compare needs at least 2 runs, got only"),
        "broken metrics": ([str(broken), mlp], f"{broken / 'metrics.json'}: unreadable"),
        "not metrics": ([str(not_metrics), mlp], f"{not_metrics / 'metrics.json'}: not a run's metrics"),
        "unwritable out": ([lr, mlp, "--out", str(a_file / "out")], f"cannot create the output directory {a_file}"),
        "out inside a run": ([lr, mlp, "--out", f"{mlp}/cmp"], f"--out {mlp}/cmp is inside the run {mlp}"),
        "out inside another run": ([lr, mlp, "--out", f"{unmeasured}/cmp"], f"is inside the run {unmeasured}"),
    }


CASES = [
    "not a run",
    "missing",
    "a file",
    "one run",
    "the same run twice",
    "broken metrics",
    "not metrics",
    "unwritable out",
    "out inside a run",
    "out inside another run",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: str, runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args, message = bad_inputs(runs, tmp_path)[case]
    monkeypatch.chdir(tmp_path)  # the default --out, runs/compare, would land here
    before = sorted(p.name for p in (runs / "mlp").iterdir())
    status, stdout, stderr = compare(capsys, *args)
    assert status == 2 and stdout == ""
    assert len(stderr.splitlines()) == 1 and stderr.startswith("mlplab compare: error: "), stderr
    assert message in stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()
    assert sorted(p.name for p in (runs / "mlp").iterdir()) == before  # nothing added to a run


def test_report_html_loads_cleanly_in_chromium(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_report_browser import BROWSER, browse

    if BROWSER is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium)")
    with_diag = tmp_path / "with"
    shutil.copytree(runs / "mlp", with_diag)
    (with_diag / "diagnostics.json").write_text(json.dumps(diagnostics(2, dead=0.1)))
    out = tmp_path / "out"
    assert compare(capsys, str(runs / "sweep"), str(with_diag), "--out", str(out))[0] == 0
    seen = browse(out / "report.html", tmp_path / "compare.png")
    errors = [
        e
        for e in seen["events"]
        if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
    ]
    assert errors == []
    requested = [e["params"]["request"]["url"] for e in seen["events"] if e["method"] == "Network.requestWillBeSent"]
    assert all(url.startswith(("file:", "data:")) for url in requested), requested  # nothing from outside
    images = seen["images"]
    assert len(images) == 2  # the curves and the diagnostics
    for image in images:
        assert image["complete"] and image["width"] >= 400 and image["height"] >= 200 and image["alt"], image


def test_a_tune_directory_is_expanded_to_its_trials(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "tune"
    for number, run in enumerate(["mlp", "unmeasured"]):  # a study's --out keeps each trial in trials/trial-NNNN
        shutil.copytree(runs / run, study / "trials" / f"trial-{number:04d}")
    (study / "best.json").write_text("{}")
    status, stdout, _ = compare(capsys, str(study), "--out", str(tmp_path / "out"))
    assert status == 0
    assert [line.split()[0] for line in stdout.splitlines()[:2]] == ["trial-0000", "trial-0001"]
    assert list(read(tmp_path / "out" / "comparison.json")["runs"]) == ["trial-0000", "trial-0001"]
