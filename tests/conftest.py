"""Shared fixtures: never download, a private cache, the real MNIST when present, a small synthetic IDX dataset.

Where a test lives: tests mirror src/mlplab. The tests of src/mlplab/<package>/<module>.py are in
tests/<package>/test_<module>.py (layers, models, data, experiments, commands; benchmarks/ tests benchmarks/), those of
a top-level module src/mlplab/<module>.py in tests/test_<module>.py, and a file named test_<module>_<aspect>.py holds
one aspect of a module (test_optim_sgd.py, test_report_browser.py); a test of several modules of one package is named
after the package (tests/layers/test_layers.py). The hostile suite runs the real command against faults and lives in
tests/hostile/, one file per kind of fault, over the shared harness tests/hostile/harness.py (`python -m tests.hostile`
prints its table). Every directory is a package, so helpers import as `from tests.conftest import position`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mlplab.data import write_idx
from mlplab.data.sources import find_in

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No test ever downloads, and none reads or fills the user's real cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MLPLAB_NO_DOWNLOAD", "1")
    monkeypatch.setenv("MLPLAB_CACHE", str(cache))
    return cache


ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One BLAS thread here and in the subprocesses a test starts.

    These networks' matrix products are small: a second thread gains little, and on a busy shared 2-core machine
    OpenBLAS's spinning threads make training many times slower (MNIST 2 epochs: 2 s with one thread, 44 s with two).
    """
    for name, value in ONE_THREAD.items():
        monkeypatch.setenv(name, value)
    with threadpool_limits(1):
        yield


@pytest.fixture
def mnist_dir() -> Path:
    """$MLPLAB_DATA/mnist when it holds the MNIST files; otherwise the test is skipped."""
    root = os.environ.get("MLPLAB_DATA")
    if not root:
        pytest.skip("MLPLAB_DATA is not set (MNIST tests need $MLPLAB_DATA/mnist)")
    directory = Path(root) / "mnist"
    if not find_in(directory, "mnist"):
        pytest.skip(f"no MNIST files in {directory}")
    return directory


def synthetic_images(n: int, side: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, side, side) whose first two pixels spell their position (offset + i) and whose label is i % 10.

    Every image also carries a bright row at the label's index, so a network can learn the labels.
    """
    index = np.arange(offset, offset + n)
    labels = (index % 10).astype(np.uint8)
    rng = np.random.default_rng(offset)
    images = rng.integers(0, 60, size=(n, side, side), dtype=np.uint8)
    images[np.arange(n), 2 + labels, :] = 255
    images[:, 0, 0] = index % 256
    images[:, 0, 1] = index // 256
    return images, labels


def position(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The position code synthetic_images wrote into each row's first two pixels (x may be scaled by 1/scale)."""
    pixels = np.rint(np.asarray(x[:, :2], np.float64) * scale).astype(np.int64)
    return pixels[:, 0] + 256 * pixels[:, 1]


WriteIdx = Callable[..., Path]


@pytest.fixture
def write_idx_dataset(tmp_path: Path) -> WriteIdx:
    """A factory writing the four MNIST IDX files (train ones .gz, test ones raw) into a new directory."""

    def write(name: str = "mnist", n_train: int = 100, n_test: int = 20, side: int = 12) -> Path:
        directory = tmp_path / name
        directory.mkdir(parents=True)
        train_x, train_y = synthetic_images(n_train, side)
        test_x, test_y = synthetic_images(n_test, side, offset=1000)
        write_idx(directory / f"{IDX_NAMES['train_images']}.gz", train_x)
        write_idx(directory / f"{IDX_NAMES['train_labels']}.gz", train_y)
        write_idx(directory / IDX_NAMES["test_images"], test_x)
        write_idx(directory / IDX_NAMES["test_labels"], test_y)
        return directory

    return write


@pytest.fixture
def synthetic_mnist(write_idx_dataset: WriteIdx) -> Path:
    """A directory with a 100-train / 20-test MNIST-like IDX dataset of 12×12 images (see synthetic_images)."""
    return write_idx_dataset()
