"""mlplab evaluate --report: the confusion matrix and per-class figures agree with scikit-learn, the gallery holds
the most confident mistakes, and the report files are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from mlplab import config, data
from mlplab.cli import main
from mlplab.errors import MlplabError
from mlplab.evaluation import Evaluation, dataset_for, evaluate_saved, evaluate_split
from mlplab.models import Model
from mlplab.run import train_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits")
    train_run(config.resolve(str(ROOT / "configs/digits.yaml"), ["threads=1", "epochs=6"]), out)
    return out


def test_counts_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    probs = rng.dirichlet(np.ones(10), 500)
    probs[np.arange(250), labels[:250]] += 2  # half of them right
    probs /= probs.sum(axis=1, keepdims=True)
    evaluation = Evaluation("test", labels, probs)
    predicted = probs.argmax(1)
    np.testing.assert_array_equal(evaluation.confusion(), confusion_matrix(labels, predicted, labels=range(10)))
    precision, recall, _, support = precision_recall_fscore_support(
        labels, predicted, labels=range(10), zero_division=0
    )
    rows = evaluation.per_class()
    np.testing.assert_allclose([r["precision"] for r in rows], precision)
    np.testing.assert_allclose([r["recall"] for r in rows], recall)
    assert [r["images"] for r in rows] == support.tolist()
    for c, row in enumerate(rows):
        assert row["accuracy"] == pytest.approx(np.mean((labels == c) == (predicted == c)))
    mistakes = evaluation.confident_mistakes(10)
    assert all(predicted[i] != labels[i] for i in mistakes)
    confidence = probs[mistakes, predicted[mistakes]]
    assert np.all(np.diff(confidence) <= 0)
    wrong = predicted != labels
    assert confidence[0] == probs[wrong].max(axis=1).max()


def test_report_files_and_numbers(digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["evaluate", str(digits_run / "model.npz"), "--report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'report.html'}" in printed
    for name in ("report.html", "report.md", "confusion.png", "confusion.md", "mistakes.png", "evaluation.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "evaluation.json").read_text())
    model, _ = Model.load(digits_run / "model.npz")
    dataset = data.load("digits")
    evaluation = evaluate_split(model, dataset.test, dataset.pixel_max, "test")
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert summary["accuracy"] == pytest.approx(metrics["test_acc"])  # the same model, the same test set
    assert summary["loss"] == pytest.approx(metrics["test_loss"], rel=1e-5)
    assert np.asarray(summary["confusion"]).sum() == len(dataset.test)
    assert np.trace(np.asarray(summary["confusion"])) == round(summary["accuracy"] * len(dataset.test))
    wrong = int((evaluation.predicted != dataset.test.y).sum())
    assert len(summary["confident_mistakes"]) == min(24, wrong) > 0
    first = summary["confident_mistakes"][0]
    assert dataset.test.y[first["index"]] == first["true"] != first["predicted"]
    markdown = (out / "report.md").read_text()
    assert "![" in markdown and "mistakes.png" in markdown and "| true \\ predicted |" in markdown
    assert (out / "confusion.md").read_text().count("\n|") == 12  # header, rule, and one row per class


def test_report_into_an_unwritable_place_is_one_line(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["evaluate", str(digits_run / "model.npz"), "--report", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlplab evaluate: error: --report ") and err.count("\n") == 1


def test_python_api_gives_the_commands_numbers(
    digits_run: Path, synthetic_mnist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = evaluate_saved(digits_run / "model.npz")
    assert main(["evaluate", str(digits_run / "model.npz")]) == 0
    printed = capsys.readouterr().out.splitlines()
    for line, (split, (loss, acc, n)) in zip(printed, scores.items(), strict=False):
        assert line == f"{split:<5} loss {loss:.4f}  acc {acc:.4f}  ({n} samples)"
    assert list(scores) == ["val", "test"] and scores["test"][2] == 360
    model, meta = Model.load(digits_run / "model.npz")
    assert dataset_for(model, meta).name == "digits"  # what the model file records
    with pytest.raises(MlplabError, match="the model takes 64 inputs but mnist has 144"):
        dataset_for(model, meta, data_dir=str(synthetic_mnist))  # a directory of MNIST-like files means MNIST
