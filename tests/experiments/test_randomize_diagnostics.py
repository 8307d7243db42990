"""The randomization tests measured from inside: each condition's diagnostics.json and model.npz in OUT/<condition>/,
training's numbers unchanged by the measurement, and `mlplab inspect` on a condition's directory."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplab.cli import main
from mlplab.diagnostics import FILE_NAME, LIVE_FILE_NAME, Diagnostics
from mlplab.experiments import randomize as rz
from mlplab.experiments.conditions import apply_condition, transform_seed
from mlplab.experiments.executors import SerialExecutor
from mlplab.experiments.figures import RANDOMIZATION_FIGURES
from mlplab.models import Model
from mlplab.run import make_model, make_optimizer, make_transform
from mlplab.training import Memorization, fit_until_memorized

pytestmark = pytest.mark.usefixtures("one_blas_thread")

TINY = rz.Settings(dataset="digits", subset=300, hidden=64, max_steps=30, seed=3)
"""3 steps a pass: the budget of 30 ends in pass 10."""
TWO = ["true-labels", "random-labels"]


class ElsewhereExecutor(SerialExecutor):
    """This process, but as a Dask worker on another machine is seen: it shares no files with the parent."""

    shares_files = False


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("randomize")
    return out, rz.randomize(TWO, TINY, out, SerialExecutor(), progress=False)


def test_each_condition_writes_its_records_of_every_pass_beside_results_json(
    measured_run: tuple[Path, dict[str, Any]],
) -> None:
    out, results = measured_run
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results)) and list(saved) == TWO
    for name in TWO:
        entry = saved[name]
        assert rz.FILES not in entry  # results.json keeps its format
        content = Diagnostics.load(out / name / FILE_NAME)
        records = content["epochs"]
        assert [r["epoch"] for r in records] == list(range(entry["epochs"] + 1)) and entry["epochs"] == 10
        checks = entry["fit_checks"]
        assert [r["train_acc"] for r in records] == checks["train_acc"]  # the fit check of every pass, and step 0
        assert [r["train_loss"] for r in records] == checks["train_loss"]
        assert all(r["val_loss"] is None and r["val_acc"] is None for r in records)
        assert {r["lr"] for r in records} == {TINY.learning_rate}
        assert content["probe"] == {"split": "train", "size": 300}
        run = content["run"]
        assert (run["experiment"], run["condition"]) == ("randomize", name)
        assert run["dataset"]["train"] == 300 and run["config"]["hidden_sizes"] == [64]
        ratios = [r["params"]["W1"]["step_update_ratio"] for r in records]
        assert ratios[0] is None and all(0 < v < 1 for v in ratios[1:])  # pass 10 ends on the budget's last step
        model, meta = Model.load(out / name / "model.npz")
        assert meta == {
            "dataset": "digits",
            "data_dir": None,
            "pixel_max": 16.0,
            "experiment": "randomize",
            "condition": name,
        }
        assert records[-1]["params"]["W1"]["norm"] == pytest.approx(float(np.linalg.norm(model.params["W1"])))
        assert not (out / name / LIVE_FILE_NAME).exists()
    labels = {name: json.loads((out / name / FILE_NAME).read_text())["epochs"][0]["probe_acc"] for name in TWO}
    assert labels["true-labels"] != labels["random-labels"]  # each probe holds its own condition's labels
    top = sorted(p.name for p in out.iterdir())  # the condition directories are the only new entries
    assert top == sorted([*TWO, "results.json", "settings.json", *RANDOMIZATION_FIGURES])


def test_the_measurement_changes_none_of_the_numbers() -> None:
    """fit_until_memorized with and without diagnostics, with dropout and shifts drawing from their streams and a
    budget that ends mid-pass: the same step losses, fit checks, test and parameters."""
    settings = replace(TINY, dropout=0.3, shift=1, max_steps=25)
    config = settings.config()
    seen = apply_condition(rz.load_dataset(settings), "partial-0.4", transform_seed(settings.seed, "partial-0.4"))

    def train(diagnostics: Diagnostics | None) -> tuple[Memorization, Model]:
        model = make_model(config, seen)
        run = fit_until_memorized(
            model,
            make_optimizer(config),
            seen,
            batch_size=settings.batch_size,
            max_steps=settings.max_steps,
            seed=settings.seed,
            transform=make_transform(config, seen, "float32"),
            diagnostics=diagnostics,
        )
        return run, model

    diagnostics = Diagnostics()
    (plain, plain_model), (measured, measured_model) = train(None), train(diagnostics)
    assert len(plain.step_loss) == 25 and plain.status == "budget"
    assert measured.step_loss == plain.step_loss
    assert (measured.check_acc, measured.check_loss) == (plain.check_acc, plain.check_loss)
    assert (measured.test_acc, measured.test_loss) == (plain.test_acc, plain.test_loss)
    for name, p in plain_model.params.items():
        np.testing.assert_array_equal(measured_model.params[name], p)
    assert [r["epoch"] for r in diagnostics.records] == list(range(plain.epochs + 1))
    assert diagnostics.records[-1]["params"]["W1"]["step_update_ratio"] is not None  # the budget's last step, mid-pass

    first = rz.run_condition("random-labels", TINY)
    again = rz.run_condition("random-labels", TINY, diagnostics=False)
    assert set(first.pop(rz.FILES)) == {FILE_NAME, "model.npz"} and rz.FILES not in again
    for result in (first, again):
        result.pop("seconds"), result.pop("provenance")
    assert first == again


def test_a_worker_that_shares_no_files_sends_them_and_the_parent_writes_them(
    tmp_path: Path, measured_run: tuple[Path, dict[str, Any]]
) -> None:
    here, _ = measured_run
    out = tmp_path / "elsewhere"
    rz.randomize(TWO, TINY, out, ElsewhereExecutor(), progress=False)
    for name in TWO:
        for file in (FILE_NAME, "model.npz"):
            assert (out / name / file).read_bytes() == (here / name / file).read_bytes()
    assert not (out / rz.CHECKPOINTS).exists()


def test_inspect_reports_a_finished_condition_with_its_fit_checks_and_weights(
    tmp_path: Path, measured_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, results = measured_run
    condition = out / "random-labels"
    report = tmp_path / "report"
    assert main(["inspect", str(condition), "--out", str(report)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (
        "note: a finished `mlplab randomize` condition (random-labels): no validation and no metrics.json; its "
        f"results (status, steps to fit, test accuracy) are in {out / 'results.json'}"
    )
    assert printed[1].startswith(f"wrote {report}/report.html") and len(printed) == 2
    text = (report / "report.md").read_text()
    assert "still training" not in text
    assert f"Run directory `{condition}`, a finished `mlplab randomize` condition." in text
    assert "| passes done | 10 |" in text
    assert f"| training accuracy (last fit check) | {100 * results['random-labels']['train_acc']:.2f}% |" in text
    assert "## Fit checks" in text and "the first 300 samples of the training split as the condition sees it" in text
    assert "From model.npz (the network as the condition ended" in text
    for figure in ("curves.png", "weights.png", "activations.png", "updates.png"):
        assert (report / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
