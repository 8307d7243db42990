"""Datasets: MNIST, Fashion-MNIST (IDX or CSV files) and scikit-learn's bundled 8×8 digits, split as the course does."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.choices import DATASETS
from mlplab.data.readers import read_csv, read_idx, write_idx
from mlplab.data.sources import locate
from mlplab.errors import DataError
from mlplab.limits import check_array_fits

__all__ = ["DATASETS", "Dataset", "Split", "load", "read_csv", "read_idx", "write_idx"]

TRAIN_FRACTION = 0.8
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class Split:
    """Images kept as uint8 rows (n, d) until batched, and int64 labels (n,)."""

    x: np.ndarray
    y: np.ndarray
    _scaled: dict[tuple[float, str], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split({len(self):,} images of {self.x.shape[1]} {self.x.dtype} pixels, labels {self.y.dtype})"

    def scaled(self, scale: float, dtype: np.dtype | str = "float32") -> np.ndarray:
        """x / scale as floats, computed once and kept: evaluation reads it every epoch."""
        key = (scale, np.dtype(dtype).name)
        if key not in self._scaled:
            self._scaled[key] = np.multiply(self.x, np.asarray(1.0 / scale, dtype), dtype=dtype)
        return self._scaled[key]


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits plus what a model needs to know about the inputs."""

    name: str
    train: Split
    val: Split
    test: Split
    image_shape: tuple[int, int]
    pixel_max: float
    num_classes: int = 10
    source: str = ""

    def __repr__(self) -> str:
        """A one-line summary (the arrays would flood a notebook)."""
        h, w = self.image_shape
        sizes = f"{len(self.train):,} train / {len(self.val):,} val / {len(self.test):,} test"
        return (
            f"Dataset({self.name!r}: {sizes}, {h}×{w} images with pixels 0–{self.pixel_max:g}, "
            f"{self.num_classes} classes, from {self.source})"
        )

    @property
    def input_size(self) -> int:
        return int(np.prod(self.image_shape))

    def summary(self) -> dict[str, Any]:
        """Name, source and split sizes, as results files record them."""
        return {
            "name": self.name,
            "source": self.source,
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "num_classes": self.num_classes,
        }

    def subset(self, n_train: int) -> Dataset:
        """The same dataset with only the first n_train training samples (validation and test untouched)."""
        return replace(self, train=Split(self.train.x[:n_train], self.train.y[:n_train]))


def load(name: str = "digits", data_dir: str | Path | None = None) -> Dataset:
    """Load a dataset by name; for MNIST-like sets the training file's first 80% is train, the rest validation."""
    if name == "digits":
        return _load_digits()
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    files = locate(name, data_dir)
    if "train_csv" in files:
        train_x, train_y = read_csv(files["train_csv"])
        test_x, test_y = read_csv(files["test_csv"], width=train_x.shape[1] + 1)
        _check_labels(train_y, files["train_csv"])
        _check_labels(test_y, files["test_csv"])
        side = math.isqrt(train_x.shape[1])
        shape = (side, side) if side * side == train_x.shape[1] else (1, train_x.shape[1])
    else:
        train_x, train_y, shape = _idx_pair(files["train_images"], files["train_labels"])
        test_x, test_y, _ = _idx_pair(files["test_images"], files["test_labels"])
    if test_x.shape[1] != train_x.shape[1]:
        raise DataError(f"train images have {train_x.shape[1]} pixels but test images {test_x.shape[1]}")
    cut = int(len(train_y) * TRAIN_FRACTION)
    first = next(iter(files.values()))
    if cut < 1 or cut == len(train_y):
        raise DataError(
            f"{first}: {len(train_y)} training image(s) cannot be split {TRAIN_FRACTION:.0%}/{1 - TRAIN_FRACTION:.0%} "
            "into training and validation; give at least 2"
        )
    if not len(test_y):
        raise DataError(f"{files.get('test_images', files.get('test_csv'))}: no test images")
    pixels = train_x.size + test_x.size  # training reads float32 (or float64) copies of every split
    check_array_fits(f"{first}: {pixels:,} pixels as the float copies training reads", pixels * 8)
    source = str(Path(next(iter(files.values()))).parent)
    return Dataset(
        name=name,
        train=Split(train_x[:cut], train_y[:cut]),
        val=Split(train_x[cut:], train_y[cut:]),
        test=Split(test_x, test_y),
        image_shape=shape,
        pixel_max=255.0,
        source=source,
    )


def _idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Read matching image and label IDX files into (uint8 (n, d), int64 (n,), image shape)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise DataError(f"{images_path}: expected uint8 images, got {images.dtype} of shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected a 1-D label file, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    _check_labels(labels, labels_path)
    if 0 in images.shape[1:]:
        pixels = "×".join(str(d) for d in images.shape[1:])
        raise DataError(f"{images_path}: images of {pixels} pixels; each image needs at least one pixel")
    flat = images.reshape(len(images), math.prod(images.shape[1:]))
    shape = images.shape[1:] if images.ndim == 3 else (1, flat.shape[1])
    return flat, labels.astype(np.int64), (int(shape[0]), int(shape[1]))


def _check_labels(labels: np.ndarray, where: Path | str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{where}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")


def _load_digits() -> Dataset:
    """scikit-learn's 1,797 8×8 digits, split 60/20/20 train/val/test, stratified, with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.data.astype(np.uint8)
    y = bunch.target.astype(np.int64)
    rest_x, test_x, rest_y, test_y = train_test_split(x, y, test_size=0.2, stratify=y, random_state=DIGITS_SPLIT_SEED)
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=0.25, stratify=rest_y, random_state=DIGITS_SPLIT_SEED
    )
    return Dataset(
        name="digits",
        train=Split(train_x, train_y),
        val=Split(val_x, val_y),
        test=Split(test_x, test_y),
        image_shape=(8, 8),
        pixel_max=16.0,
        source="sklearn.datasets.load_digits",
    )
