"""IDX and CSV readers on files the tests write, the splits, the digits set and where data is looked for."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from mlplab.data import DATASETS, load, read_csv, read_idx, write_idx
from mlplab.data.sources import cache_dir, locate
from mlplab.errors import DataError
from tests.conftest import IDX_NAMES, WriteIdx, position, synthetic_images


def idx_bytes(code: int, shape: tuple[int, ...], body: bytes) -> bytes:
    """An IDX file built by hand from the format's definition: 0, 0, type code, ndim, big-endian dims, data."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body


# ---------------------------------------------------------------- IDX


def test_read_idx_of_a_hand_built_file(tmp_path: Path) -> None:
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(0x08, (2, 2, 3), bytes(range(12))))
    array = read_idx(path)
    assert array.dtype == np.uint8
    assert array.shape == (2, 2, 3)
    np.testing.assert_array_equal(array.ravel(), np.arange(12))


def test_read_idx_big_endian_int32(tmp_path: Path) -> None:
    path = tmp_path / "ints"
    path.write_bytes(idx_bytes(0x0C, (3,), struct.pack(">3i", 1, -2, 70000)))
    array = read_idx(path)
    np.testing.assert_array_equal(array, [1, -2, 70000])
    assert array.dtype == np.int32 and array.dtype.isnative


def test_write_idx_writes_the_standard_header(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.zeros((2, 3, 4), np.uint8))
    assert (tmp_path / "a").read_bytes()[:16] == bytes.fromhex("00000803000000020000000300000004")


@pytest.mark.parametrize("dtype", ["uint8", "int8", ">i2", ">i4", "<f4", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, dtype: str, suffix: str) -> None:
    array = (np.arange(24).reshape(2, 3, 4) * 3 - 20).astype(dtype) if dtype != "uint8" else np.arange(24, dtype=dtype)
    path = tmp_path / f"file{suffix}"
    write_idx(path, array)
    if suffix:
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzip'd
    back = read_idx(path)
    np.testing.assert_array_equal(back, array)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")


GOOD_BODY = bytes(range(12))
CORRUPT_IDX = {
    "empty": (b"", "bad magic number empty"),
    "wrong magic": (b"\x08\x03\x00\x00" + GOOD_BODY, "bad magic number 08030000"),
    "text file": (b"label,p0,p1\n1,2,3\n", "not an IDX file"),
    "unknown type code": (idx_bytes(0x07, (2, 2, 3), GOOD_BODY), "unknown IDX data type 0x07"),
    "zero dimensions": (bytes([0, 0, 8, 0]), "truncated IDX header"),
    "short header": (bytes([0, 0, 8, 3]) + struct.pack(">I", 2), "truncated IDX header"),
    "short body": (idx_bytes(0x08, (2, 2, 3), GOOD_BODY[:-1]), "truncated: 27 bytes, the header (2, 2, 3) needs 28"),
    "trailing bytes": (idx_bytes(0x08, (2, 2, 3), GOOD_BODY + b"\0"), "has trailing bytes"),
    "truncated gzip": (gzip.compress(idx_bytes(0x08, (2, 2, 3), GOOD_BODY))[:-12], "truncated or corrupt gzip"),
}


@pytest.mark.parametrize("case", CORRUPT_IDX)
def test_corrupt_idx_is_a_data_error_naming_the_file(tmp_path: Path, case: str) -> None:
    content, message = CORRUPT_IDX[case]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match="train-images-idx3-ubyte") as info:
        read_idx(path)
    assert message in str(info.value)


def test_missing_idx_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope")


# ---------------------------------------------------------------- MNIST-like splits


def test_split_sizes_order_and_types(synthetic_mnist: Path) -> None:
    ds = load("mnist", synthetic_mnist)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (80, 20, 20)
    # The first 80% of the training file is train, the rest validation, both in file order; test untouched.
    np.testing.assert_array_equal(position(ds.train.x), np.arange(80))
    np.testing.assert_array_equal(position(ds.val.x), np.arange(80, 100))
    np.testing.assert_array_equal(position(ds.test.x), np.arange(1000, 1020))
    np.testing.assert_array_equal(ds.train.y, np.arange(80) % 10)
    np.testing.assert_array_equal(ds.val.y, np.arange(80, 100) % 10)
    assert ds.train.x.dtype == np.uint8 and ds.train.x.shape == (80, 144)
    assert ds.train.y.dtype == np.int64
    assert ds.image_shape == (12, 12) and ds.input_size == 144
    assert ds.pixel_max == 255.0 and ds.num_classes == 10
    assert ds.source == str(synthetic_mnist)


def test_split_rounds_the_cut_down(write_idx_dataset: WriteIdx) -> None:
    ds = load("mnist", write_idx_dataset(n_train=13, n_test=3))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (10, 3, 3)


def test_subset_keeps_validation_and_test(synthetic_mnist: Path) -> None:
    ds = load("mnist", synthetic_mnist)
    small = ds.subset(7)
    np.testing.assert_array_equal(position(small.train.x), np.arange(7))
    assert small.val is ds.val and small.test is ds.test


def test_data_dir_may_be_the_parent_of_the_dataset_directory(synthetic_mnist: Path) -> None:
    ds = load("mnist", synthetic_mnist.parent)
    assert len(ds.train) == 80 and ds.source == str(synthetic_mnist)


def test_fashion_mnist_uses_the_same_layout(write_idx_dataset: WriteIdx) -> None:
    ds = load("fashion-mnist", write_idx_dataset("fashion-mnist"))
    assert ds.name == "fashion-mnist" and len(ds.val) == 20


def replace_file(directory: Path, role: str, array: np.ndarray) -> None:
    for old in directory.glob(IDX_NAMES[role] + "*"):
        old.unlink()
    write_idx(directory / IDX_NAMES[role], array)


MISMATCHED = {
    "fewer labels than images": ("train_labels", np.zeros(99, np.uint8), "has 100 images but"),
    "label out of range": ("train_labels", np.full(100, 10, np.uint8), "labels must lie in 0..9, found 10..10"),
    "2-D labels": ("train_labels", np.zeros((100, 2), np.uint8), "expected a 1-D label file"),
    "float images": ("train_images", np.zeros((100, 12, 12), ">f4"), "expected uint8 images"),
    "test images of another size": ("test_images", np.zeros((20, 10, 10), np.uint8), "144 pixels but test images 100"),
}


@pytest.mark.parametrize("case", MISMATCHED)
def test_mismatched_idx_files(synthetic_mnist: Path, case: str) -> None:
    role, array, message = MISMATCHED[case]
    replace_file(synthetic_mnist, role, array)
    with pytest.raises(DataError, match=message):
        load("mnist", synthetic_mnist)


def test_real_mnist_split(mnist_dir: Path) -> None:
    ds = load("mnist", mnist_dir)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (48_000, 12_000, 10_000)
    assert ds.image_shape == (28, 28) and ds.train.x.dtype == np.uint8
    labels = read_idx(next(mnist_dir.glob("train-labels-idx1-ubyte*")))
    np.testing.assert_array_equal(ds.train.y, labels[:48_000])
    np.testing.assert_array_equal(ds.val.y, labels[48_000:])


# ---------------------------------------------------------------- CSV


def write_csv(path: Path, labels: np.ndarray, pixels: np.ndarray, header: bool = True) -> Path:
    lines = ["label," + ",".join(f"p{i}" for i in range(pixels.shape[1]))] if header else []
    lines += [",".join(str(v) for v in (label, *row)) for label, row in zip(labels, pixels, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_with_and_without_header(tmp_path: Path) -> None:
    images, labels = synthetic_images(5, 12)
    pixels = images.reshape(5, -1)
    for header in (True, False):
        x, y = read_csv(write_csv(tmp_path / f"h{header}.csv", labels, pixels, header))
        np.testing.assert_array_equal(x, pixels)
        np.testing.assert_array_equal(y, labels)
        assert x.dtype == np.uint8 and y.dtype == np.int64


def test_csv_gzip_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"label,a,b\n3,0,255\n\n7,1,2\n"))
    x, y = read_csv(path)
    np.testing.assert_array_equal(x, [[0, 255], [1, 2]])
    np.testing.assert_array_equal(y, [3, 7])


CORRUPT_CSV = {
    "short row": ("label,a,b\n1,2,3\n4,5\n", "data row 2 has 2 fields, expected 3"),
    "long row": ("1,2,3\n4,5,6,7\n", "data row 2 has 4 fields, expected 3"),
    "non-numeric": ("label,a,b\n1,2,3\n4,five,6\n", "data row 2 has a non-numeric value 'five'"),
    "fraction": ("1,2,3\n4,0.5,6\n", "non-numeric value '0.5'"),
    "pixel over 255": ("1,2,300\n", "pixel values must lie in 0..255, found 2..300"),
    "negative pixel": ("1,-2,3\n", "pixel values must lie in 0..255"),
    "header only": ("label,a,b\n", "no data rows"),
    "empty": ("", "no data rows"),
    "label only": ("1\n2\n", "rows need a label and at least one pixel"),
}


@pytest.mark.parametrize("case", CORRUPT_CSV)
def test_corrupt_csv_is_a_data_error(tmp_path: Path, case: str) -> None:
    text, message = CORRUPT_CSV[case]
    path = tmp_path / "train.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=r"train\.csv") as info:
        read_csv(path)
    assert message in str(info.value)


def write_csv_dataset(directory: Path, n_train: int = 50, n_test: int = 10, side: int = 12, prefix: str = "mnist_"):
    directory.mkdir(parents=True, exist_ok=True)
    train_x, train_y = synthetic_images(n_train, side)
    test_x, test_y = synthetic_images(n_test, side, offset=1000)
    write_csv(directory / f"{prefix}train.csv", train_y, train_x.reshape(n_train, -1))
    write_csv(directory / f"{prefix}test.csv", test_y, test_x.reshape(n_test, -1))
    return directory


@pytest.mark.parametrize("prefix", ["mnist_", ""])
def test_load_csv_dataset(tmp_path: Path, prefix: str) -> None:
    ds = load("mnist", write_csv_dataset(tmp_path / "csv", prefix=prefix))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (40, 10, 10)
    np.testing.assert_array_equal(position(ds.train.x), np.arange(40))
    np.testing.assert_array_equal(position(ds.val.x), np.arange(40, 50))
    assert ds.image_shape == (12, 12)


def test_csv_label_out_of_range(tmp_path: Path) -> None:
    directory = write_csv_dataset(tmp_path / "csv")
    lines = (directory / "mnist_train.csv").read_text().splitlines()
    lines[3] = "12" + lines[3][1:]
    (directory / "mnist_train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"mnist_train.csv: labels must lie in 0..9, found 0..12"):
        load("mnist", directory)


def test_csv_test_file_of_another_width(tmp_path: Path) -> None:
    directory = write_csv_dataset(tmp_path / "csv")
    write_csv(directory / "mnist_test.csv", np.array([1]), np.zeros((1, 5), np.uint8))
    with pytest.raises(DataError, match=r"mnist_test\.csv: rows have 6 fields, expected 145"):
        load("mnist", directory)


# ---------------------------------------------------------------- digits


def test_digits_split() -> None:
    ds = load("digits")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1077, 360, 360)
    assert ds.image_shape == (8, 8) and ds.pixel_max == 16.0
    assert ds.train.x.dtype == np.uint8 and ds.train.x.max() == 16
    # Stratified: every split holds each class in the whole set's proportion, to within one or two images.
    share = np.bincount(np.concatenate([ds.train.y, ds.val.y, ds.test.y])) / 1797
    for split in (ds.train, ds.val, ds.test):
        assert np.abs(np.bincount(split.y, minlength=10) - share * len(split)).max() <= 1.5
    # A fixed split: the same every time, and disjoint.
    again = load("digits")
    np.testing.assert_array_equal(again.val.x, ds.val.x)
    rows = {row.tobytes() for split in (ds.train, ds.val, ds.test) for row in split.x}
    assert len(rows) == 1797


# ---------------------------------------------------------------- where the files are looked for


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load("cifar")
    assert DATASETS == ("digits", "mnist", "fashion-mnist")


def test_data_dir_is_the_only_place_looked_when_given(
    synthetic_mnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPLAB_DATA", str(synthetic_mnist.parent))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        load("mnist", empty)
    message = str(info.value)
    assert f"no mnist files in {empty} (looked in {empty}, {empty / 'mnist'})" in message
    assert "train-images-idx3-ubyte" in message


def test_one_of_the_four_files_missing(synthetic_mnist: Path) -> None:
    (synthetic_mnist / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="expected the four IDX files") as info:
        load("mnist", synthetic_mnist)
    assert "t10k-labels-idx1-ubyte" in str(info.value)


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no mnist files in .*nowhere"):
        load("mnist", tmp_path / "nowhere")


def test_search_order_env_then_cache(
    write_idx_dataset: WriteIdx, tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_env = write_idx_dataset("env/mnist", n_train=30)
    in_cache = offline / "mnist"
    in_cache.symlink_to(write_idx_dataset("cached/mnist", n_train=50), target_is_directory=True)
    assert cache_dir() == offline
    monkeypatch.setenv("MLPLAB_DATA", str(in_env.parent))
    assert len(load("mnist").train) == 24  # $MLPLAB_DATA/<name> comes before the cache
    monkeypatch.setenv("MLPLAB_DATA", str(tmp_path / "elsewhere"))
    assert len(load("mnist").train) == 40  # then $MLPLAB_CACHE/<name>
    assert locate("mnist")["train_images"].parent == in_cache


def test_offline_error_names_every_place_looked(tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if Path("/usr/share/datasets/mnist").is_dir():
        pytest.skip("this machine has /usr/share/datasets/mnist")
    monkeypatch.setenv("MLPLAB_DATA", str(tmp_path))
    with pytest.raises(DataError) as info:
        load("mnist")
    message = str(info.value)
    for place in (tmp_path / "mnist", offline / "mnist", Path("/usr/share/datasets/mnist")):
        assert str(place) in message
    assert "downloads are off (MLPLAB_NO_DOWNLOAD)" in message
    assert not (offline / "mnist").exists()  # nothing fetched, nothing created
