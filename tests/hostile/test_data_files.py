"""Hostile data files: IDX files with too few images, gzip files whose header or payload lies about their size.

Each case runs the real `mlplab` command as a user would (see tests/hostile/harness.py); `python -m tests.hostile`
prints every case's outcome as a table.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.harness import CASES, FAST, case, cases_in, gzip_with_zeros, idx_bytes, idx_dataset, mlplab, run_case


@case("input", "IDX training file with 0 images")
def _(tmp: Path) -> str:
    data = idx_dataset(tmp / "mnist", 0)
    return mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp / "o")).refused("cannot be split")


@case("input", "IDX training file with 1 image")
def _(tmp: Path) -> str:
    data = idx_dataset(tmp / "mnist", 1)
    return mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp / "o")).refused("1 training image(s)")


def train_refuses_images(tmp: Path, images: bytes, needle: str, detail: str = "") -> str:
    """`train` on 10 IDX images whose file is `images`: refused naming `needle`, at a peak RSS under 400 MB."""
    data = idx_dataset(tmp / "mnist", 10, images=images)
    result = mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp / "o"), isolate=True)
    outcome = result.refused(needle)
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
    return f"{outcome} ({detail}{'; ' if detail else ''}peak {result.peak_mb:.0f} MB)"


@case("input", "gzip IDX whose header declares 3 TB")
def _(tmp: Path) -> str:
    head = bytes([0, 0, 0x08, 3]) + np.asarray([4_000_000_000, 28, 28], ">u4").tobytes()
    return train_refuses_images(tmp, gzip.compress(head + bytes(1000)), "corrupt header")


@case("input", "gzip IDX inflating to 512 MB past its declared size")
def _(tmp: Path) -> str:
    head = idx_bytes(np.zeros((10, 28, 28)))
    bomb = gzip_with_zeros(tmp / "images.gz", head, 512 << 20).read_bytes()
    assert len(bomb) < 3 << 20
    return train_refuses_images(tmp, bomb, "trailing bytes", detail=f"a {len(bomb) >> 10} KB file")


@pytest.mark.slow
@pytest.mark.parametrize("name", cases_in(__name__), ids=lambda name: f"{CASES[name][0]}-{name}")
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    run_case(name, tmp_path)
