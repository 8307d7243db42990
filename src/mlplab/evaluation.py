"""A saved model against its data: find the data it was trained on again and check it fits, score each split, and
what it gets wrong on a split: confusion matrix, per-class precision / recall / accuracy, and a gallery of its most
confident mistakes, written as JSON, Markdown and one self-contained HTML report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from mlplab import data as datasets
from mlplab.config import infer_dataset
from mlplab.data import Dataset, Split
from mlplab.errors import MlplabError
from mlplab.files import utf8, write_bytes, write_json
from mlplab.models import Model
from mlplab.plots import save_figure
from mlplab.predict import probabilities
from mlplab.report import Figure, Section, Table, percent, write_html, write_markdown
from mlplab.training import evaluate

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
GALLERY_SIZE = 24


SPLITS = ("val", "test")


def dataset_for(
    model: Model,
    meta: dict[str, Any],
    dataset: str | None = None,
    data_dir: str | None = None,
    what: str = "the model",
) -> Dataset:
    """The dataset to score a saved model on: `dataset`/`data_dir` when given, else what its file records.

    A digits model pointed at a directory of MNIST-like files means that dataset, so the size check below can name
    it. Raises MlplabError naming `what` when the model's input size does not match the data's.
    """
    name = dataset or meta.get("dataset", "digits")
    if data_dir and not dataset and name == "digits":
        name = infer_dataset(data_dir)
    loaded = datasets.load(name, data_dir or meta.get("data_dir"))
    # The first parameter's rows are the input size for dense models only (a convolution's are k·k·C).
    declared = model.hyper.get("input_size")
    inputs = int(declared) if declared is not None else model.params[next(iter(model.params))].shape[0]
    if inputs != loaded.input_size:
        raise MlplabError(f"{what} takes {inputs} inputs but {loaded.name} has {loaded.input_size}")
    return loaded


def score_splits(model: Model, dataset: Dataset) -> dict[str, tuple[float, float, int]]:
    """Loss, accuracy and sample count on the validation and test splits."""
    scores = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for name in SPLITS:
            split = getattr(dataset, name)
            loss, acc = evaluate(model, split, dataset.pixel_max)
            if not np.isfinite(loss):
                raise MlplabError(f"the model's {name} loss is {loss}: its scores overflow {model.dtype}, no result")
            scores[name] = (loss, acc, len(split))
    return scores


def evaluate_saved(
    path: str | Path, dataset: str | None = None, data_dir: str | None = None
) -> dict[str, tuple[float, float, int]]:
    """`mlplab evaluate` in Python: a model.npz scored on the validation and test splits of its data."""
    model, meta = Model.load(path)
    return score_splits(model, dataset_for(model, meta, dataset, data_dir, what=str(path)))


def class_names(dataset: Dataset) -> list[str]:
    """Digits are their own names; Fashion-MNIST's classes are garments."""
    if dataset.name == "fashion-mnist":
        return [f"{i} {name}" for i, name in enumerate(FASHION_CLASSES)]
    return [str(i) for i in range(dataset.num_classes)]


@dataclass
class Evaluation:
    """A model's probabilities on one split and everything counted from them."""

    split_name: str
    labels: np.ndarray  # (n,) true classes
    probs: np.ndarray  # (n, classes)

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels))

    @property
    def loss(self) -> float:
        """Mean cross-entropy."""
        p = self.probs[np.arange(len(self.labels)), self.labels]
        return float(-np.mean(np.log(np.maximum(p, 1e-300))))

    def confusion(self) -> np.ndarray:
        """counts[true, predicted]."""
        k = self.probs.shape[1]
        return np.bincount(self.labels * k + self.predicted, minlength=k * k).reshape(k, k)

    def per_class(self) -> list[dict[str, float | int | None]]:
        """Per class: images, precision (right among those predicted as it), recall (right among its images) and
        one-vs-rest accuracy (all images sorted correctly into "this class" or "not")."""
        counts = self.confusion()
        n = counts.sum()
        rows: list[dict[str, float | int | None]] = []
        for c in range(len(counts)):
            tp, support, predicted = counts[c, c], counts[c].sum(), counts[:, c].sum()
            tn = n - support - predicted + tp
            rows.append(
                {
                    "class": c,
                    "images": int(support),
                    "precision": float(tp / predicted) if predicted else None,
                    "recall": float(tp / support) if support else None,
                    "accuracy": float((tp + tn) / n),
                }
            )
        return rows

    def confident_mistakes(self, count: int = GALLERY_SIZE) -> np.ndarray:
        """Indices of the misclassified images, most confident first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        confidence = self.probs[wrong, self.predicted[wrong]]
        return wrong[np.argsort(-confidence, kind="stable")][:count]


def evaluate_split(model: Model, split: Split, pixel_max: float, split_name: str) -> Evaluation:
    """Probabilities of every image of `split`."""
    return Evaluation(split_name, split.y, probabilities(model, split.x, pixel_max))


def confusion_figure(counts: np.ndarray, names: list[str], path: Path, title: str) -> Path:
    """The confusion matrix as a heat map with each cell's count, rows true and columns predicted."""
    k = len(counts)
    fig = MplFigure(figsize=(7.5, 6.5))
    ax = fig.subplots()
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for t in range(k):
        for p in range(k):
            if counts[t, p]:
                colour = "white" if share[t, p] > 0.5 else "black"
                ax.text(p, t, str(counts[t, p]), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(
        range(k), names, rotation=45 if len(names[0]) > 2 else 0, ha="right" if len(names[0]) > 2 else "center"
    )
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return save_figure(fig, path)


def mistakes_figure(
    images: np.ndarray,
    shape: tuple[int, int],
    evaluation: Evaluation,
    indices: np.ndarray,
    names: list[str],
    path: Path,
) -> Path:
    """The misclassified images in a grid, each captioned with its index, true and predicted class, confidence."""
    columns = 6
    rows = max(1, -(-len(indices) // columns))
    fig = MplFigure(figsize=(1.75 * columns, 2.0 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices, strict=False):
        predicted = int(evaluation.predicted[i])
        ax.imshow(images[i].reshape(shape), cmap="gray_r", interpolation="nearest")
        ax.set_title(
            f"#{i}: true {names[evaluation.labels[i]]}\nsaid {names[predicted]} "
            f"({100 * evaluation.probs[i, predicted]:.1f}%)",
            fontsize=7,
        )
    fig.suptitle(f"The {len(indices)} most confident mistakes on the {evaluation.split_name} set", fontsize=10)
    return save_figure(fig, path)


def confusion_table(counts: np.ndarray, names: list[str]) -> Table:
    """Rows: true class; columns: predicted class."""
    header = ["true \\ predicted", *names]
    return Table(header, [[names[t], *(str(v) for v in counts[t])] for t in range(len(counts))])


def per_class_table(rows: list[dict[str, Any]], names: list[str]) -> Table:
    return Table(
        ["class", "images", "precision", "recall", "accuracy (one-vs-rest)"],
        [
            [names[r["class"]], str(r["images"]), percent(r["precision"]), percent(r["recall"]), percent(r["accuracy"])]
            for r in rows
        ],
    )


def write_report(
    model: Model, meta: dict[str, Any], dataset: Dataset, out: str | Path, model_path: str = "model.npz"
) -> Path:
    """evaluation.json, confusion.png, confusion.md, mistakes.png, report.md and report.html in `out`."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlplabError(f"--report {out}: cannot create the directory ({exc.strerror})") from None
    evaluation = evaluate_split(model, dataset.test, dataset.pixel_max, "test")
    names = class_names(dataset)
    counts = evaluation.confusion()
    per_class = evaluation.per_class()
    mistakes = evaluation.confident_mistakes()
    kind = type(model).__name__
    title = f"{kind} on the {dataset.name} test set"

    confusion_png = confusion_figure(counts, names, out / "confusion.png", f"{title}: confusion matrix")
    table = confusion_table(counts, names)
    heading = f"# Confusion matrix: {title}\n\nRows: true class; columns: predicted class.\n\n"
    write_bytes(out / "confusion.md", utf8(f"{heading}{table.markdown()}\n"))
    figures = [Figure(confusion_png, "Confusion matrix: each row a true class, shade = share of that class's images")]
    mistake_rows = []
    for i in mistakes:
        said = int(evaluation.predicted[i])
        p_said, p_true = float(evaluation.probs[i, said]), float(evaluation.probs[i, evaluation.labels[i]])
        mistake_rows.append([f"#{i}", names[evaluation.labels[i]], names[said], percent(p_said), percent(p_true)])
    sections = [
        Section(
            "Summary",
            intro=f"`{model_path}` ({kind}, best epoch {meta.get('best_epoch', '?')}) on the {len(dataset.test):,} "
            f"test images of {dataset.name}: accuracy **{percent(evaluation.accuracy)}**, mean cross-entropy "
            f"{evaluation.loss:.4f}, {int((evaluation.predicted != evaluation.labels).sum())} images wrong.",
            commentary=_commentary(counts, per_class, names),
        ),
        Section(
            "Per class",
            intro="Precision: share right among the images predicted as the class. Recall: share right among the "
            "class's own images. Accuracy: share of all test images put correctly on the class's side of "
            '"this class or not".',
            tables=[per_class_table(per_class, names)],
        ),
        Section(
            "Confusion matrix", intro="Rows: true class; columns: predicted class.", tables=[table], figures=figures
        ),
    ]
    if len(mistakes):
        gallery = mistakes_figure(
            dataset.test.x, dataset.image_shape, evaluation, mistakes, names, out / "mistakes.png"
        )
        sections.append(
            Section(
                "Most confident mistakes",
                intro=f"The {len(mistakes)} misclassified test images the model was surest about (index in the "
                "test set, true class, what the model said and with what probability).",
                tables=[Table(["image", "true", "predicted", "p(predicted)", "p(true)"], mistake_rows)],
                figures=[Figure(gallery, "The most confidently misclassified test images")],
            )
        )
    write_json(
        out / "evaluation.json",
        {
            "model": model_path,
            "model_type": kind,
            "dataset": dataset.summary(),
            "split": "test",
            "accuracy": evaluation.accuracy,
            "loss": evaluation.loss,
            "confusion": counts.tolist(),
            "per_class": per_class,
            "confident_mistakes": [
                {"index": int(i), "true": int(evaluation.labels[i]), "predicted": int(evaluation.predicted[i]),
                 "probability": float(evaluation.probs[i, evaluation.predicted[i]])}
                for i in mistakes
            ],
        },
    )  # fmt: skip
    write_markdown(out / "report.md", f"What {title} gets wrong", sections)
    return write_html(out / "report.html", f"What {title} gets wrong", sections)


def _commentary(counts: np.ndarray, per_class: list[dict[str, Any]], names: list[str]) -> list[str]:
    """The weakest class and the most frequent confusion, from the numbers."""
    lines = []
    recalls = [(r["recall"], r["class"]) for r in per_class if r["recall"] is not None]
    if recalls:
        worst, best = min(recalls), max(recalls)
        lines.append(
            f"Hardest class: {names[worst[1]]} (recall {percent(worst[0])}); easiest: {names[best[1]]} "
            f"(recall {percent(best[0])})."
        )
    off = counts.copy()
    np.fill_diagonal(off, 0)
    if off.any():
        t, p = np.unravel_index(int(off.argmax()), off.shape)
        lines.append(f"Most frequent confusion: {names[t]} taken for {names[p]} ({off[t, p]} images).")
    return lines
