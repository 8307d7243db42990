"""Readers (and a writer) for the standard IDX files, raw or gzip'd, and the assignment's CSV layout."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np

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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is a .gz file."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {exc} (truncated or corrupt gzip?)") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format) into an array of its own shape and dtype."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX data type 0x{code:02x}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{path}: {what}: {len(data)} bytes, the header {shape} needs {expected}")
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
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
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


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
