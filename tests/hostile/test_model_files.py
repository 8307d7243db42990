"""Hostile model files: headers and members that claim huge shapes, wrong dtypes, random bytes.

Each case runs the real `mlplab` command as a user would (see tests/hostile/harness.py); `python -m tests.hostile`
prints every case's outcome as a table.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.harness import CASES, case, cases_in, mlplab, model_file, run_case, two_layer_header


@case("input", "model header claiming hidden_size 10⁹")
def _(tmp: Path) -> str:
    path = model_file(tmp / "m.npz", two_layer_header(10**9), W1=np.zeros((64, 4), "f4"))
    return mlplab("evaluate", str(path)).refused("parameters", "more than this machine")


def npy_claiming(shape: tuple[int, ...], payload: bytes) -> bytes:
    """A .npy member whose header declares `shape` float32s but which holds only `payload`."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header = header.ljust(64 * ((len(header) + 11) // 64 + 1) - 11) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


@case("input", "model member declaring 10¹² floats in 100 bytes")
def _(tmp: Path) -> str:

    path = tmp / "forged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__header__.npy", _npy_text(json.dumps(two_layer_header(4))))
        archive.writestr("param/W1.npy", npy_claiming((1_000_000, 1_000_000), bytes(100)))
    result = mlplab("evaluate", str(path), isolate=True)
    outcome = result.refused("declares (1000000, 1000000)")
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
    return outcome


def _npy_text(text: str) -> bytes:

    buffer = io.BytesIO()
    np.save(buffer, np.array(text))
    return buffer.getvalue()


@case("input", "model parameter holding strings")
def _(tmp: Path) -> str:
    shapes = {"b1": (4,), "W2": (4, 10), "b2": (10,)}
    params = {k: np.zeros(s, "f4") for k, s in shapes.items()}
    path = model_file(tmp / "m.npz", two_layer_header(4), W1=np.array([["a"] * 4] * 64), **params)
    return mlplab("evaluate", str(path)).refused("<U1", "not floating point")


@case("input", "model parameters of an integer dtype")
def _(tmp: Path) -> str:
    shapes = {"W1": (64, 4), "b1": (4,), "W2": (4, 10), "b2": (10,)}
    path = model_file(tmp / "m.npz", two_layer_header(4), **{k: np.zeros(s, "i4") for k, s in shapes.items()})
    return mlplab("evaluate", str(path)).refused("int32", "not floating point")


@case("input", "random bytes given as a model file")
def _(tmp: Path) -> str:
    path = tmp / "m.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    result = mlplab("evaluate", str(path))
    outcome = result.refused("not an .npz archive")
    assert "pickle" not in result.err
    return outcome


@pytest.mark.slow
@pytest.mark.parametrize("name", cases_in(__name__), ids=lambda name: f"{CASES[name][0]}-{name}")
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    run_case(name, tmp_path)
