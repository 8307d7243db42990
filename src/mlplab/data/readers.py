"""Readers (and a writer) for the standard IDX files, raw or gzip'd, and the assignment's CSV layout."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mlplab import files
from mlplab.errors import DataError

IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_CODES = {dtype.str.lstrip("<>|"): code for code, dtype in IDX_DTYPES.items()}


MAX_DATA_BYTES = 1 << 32  # 4 GiB: 50× MNIST's training images; a declared size beyond it is a corrupt header


def _open(path: Path) -> BinaryIO:
    """The file for reading, gunzipped on the fly when it is gzip'd: nothing is inflated before it is checked."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    raw.seek(0)
    return raw


def _read(path: Path, stream: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes; a corrupt or truncated gzip stream is a DataError."""
    try:
        return stream.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {exc} (truncated or corrupt gzip?)") from None


def _read_bytes(path: Path, limit: int = MAX_DATA_BYTES) -> bytes:
    """The file's bytes, gunzipped when it is a .gz file; refused past `limit` bytes."""
    with _open(path) as stream:
        data = _read(path, stream, limit + 1)
    if len(data) > limit:
        raise DataError(f"{path}: more than {limit:,} bytes (uncompressed); not a dataset file mlplab reads")
    return data


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format) into an array of its own shape and dtype.

    The size the header declares is checked (against MAX_DATA_BYTES, and against the file's size when it is not
    compressed) before the body is read, so a corrupt header or a gzip bomb never allocates more than it claims.
    """
    path = Path(path)
    with _open(path) as stream:
        head = _read(path, stream, 4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0:
            raise DataError(f"{path}: not an IDX file (bad magic number {head.hex() or 'empty'})")
        code, ndim = head[2], head[3]
        if code not in IDX_DTYPES:
            raise DataError(f"{path}: unknown IDX data type 0x{code:02x}")
        dims = _read(path, stream, 4 * ndim)
        if ndim == 0 or len(dims) < 4 * ndim:
            raise DataError(f"{path}: truncated IDX header")
        shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
        dtype = IDX_DTYPES[code]
        header = 4 + 4 * ndim
        body = math.prod(shape) * dtype.itemsize
        if body > MAX_DATA_BYTES:
            raise DataError(f"{path}: the header declares shape {shape} ({body:,} bytes); corrupt header?")
        if not isinstance(stream, gzip.GzipFile) and path.stat().st_size != header + body:
            size = path.stat().st_size
            what = "truncated" if size < header + body else "has trailing bytes"
            raise DataError(f"{path}: {what}: {size} bytes, the header {shape} needs {header + body}")
        data = _read(path, stream, body + 1)
    if len(data) != body:
        what = "truncated" if len(data) < body else "has trailing bytes"
        got = f"{header + len(data)}" if len(data) <= body else f"more than {header + body}"
        raise DataError(f"{path}: {what}: {got} bytes uncompressed, the header {shape} needs {header + body}")
    array = np.frombuffer(data, dtype).reshape(shape)
    native: np.ndarray = array.astype(dtype.newbyteorder("="), copy=False)
    return native


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip'd when the name ends in .gz)."""
    array = np.asarray(array)
    code = IDX_CODES[array.dtype.str.lstrip("<>|")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = array.astype(IDX_DTYPES[code], copy=False).tobytes()
    payload = header + body
    path = Path(path)
    files.write_bytes(path, gzip.compress(payload) if path.suffix == ".gz" else payload)


def read_csv(path: str | Path, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read the assignment's CSV layout, `label,p0,…,p{d-1}` per line, into (uint8 images, int64 labels).

    A first line that is not numeric is taken as a header and skipped.
    """
    path = Path(path)
    text = _read_bytes(path).decode("utf-8", errors="replace")
    lines = text.splitlines()
    if lines and lines[0] and not lines[0].split(",")[0].strip().lstrip("-").isdigit():
        lines = lines[1:]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise DataError(f"{path}: no data rows")
    width = width or len(lines[0].split(","))
    try:
        table = np.loadtxt(lines, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError:
        raise DataError(f"{path}: {_first_bad_row(lines, width)}") from None
    if table.shape[1] != width:
        raise DataError(f"{path}: rows have {table.shape[1]} fields, expected {width} (label + pixels)")
    if table.shape[1] < 2:
        raise DataError(f"{path}: rows need a label and at least one pixel")
    pixels = table[:, 1:]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: pixel values must lie in 0..255, found {pixels.min()}..{pixels.max()}")
    return pixels.astype(np.uint8), table[:, 0]


def _first_bad_row(lines: list[str], width: int) -> str:
    """Describe the first row that is not `width` integers (the error path of read_csv)."""
    for number, line in enumerate(lines, start=1):
        fields = line.split(",")
        if len(fields) != width:
            return f"data row {number} has {len(fields)} fields, expected {width}"
        for field in fields:
            try:
                int(field)
            except ValueError:
                return f"data row {number} has a non-numeric value {field.strip()[:20]!r}"
    return "unreadable CSV"
