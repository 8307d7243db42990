"""gemm: out ← α·a@b + β·out in place, for every memory order of the operands, against NumPy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mlplab.blas import gemm


def operand(rng: np.random.Generator, shape: tuple[int, int], order: str, dtype: str) -> np.ndarray:
    """A (rows, cols) array stored C-ordered, or as the transpose view of a C-ordered array (F-ordered)."""
    if order == "C":
        return rng.standard_normal(shape).astype(dtype)
    return rng.standard_normal(shape[::-1]).astype(dtype).T


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("a_order", ["C", "F"])
@pytest.mark.parametrize("b_order", ["C", "F"])
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (-0.1, 0.999), (0.5, 1.0)])
def test_gemm_matches_numpy(dtype: str, a_order: str, b_order: str, alpha: float, beta: float) -> None:
    rng = np.random.default_rng(0)
    a, b = operand(rng, (7, 5), a_order, dtype), operand(rng, (5, 3), b_order, dtype)
    out = rng.standard_normal((7, 3)).astype(dtype)
    expected = alpha * (a.astype(np.float64) @ b) + beta * out
    result = gemm(a, b, out=out, alpha=alpha, beta=beta)
    assert result is out
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == "float32" else 1e-13, atol=1e-6)


def test_beta_zero_never_reads_out() -> None:
    # Scratch buffers come from np.empty: with beta = 0 whatever they hold (NaN here) must not leak in.
    a, b = np.ones((4, 2), np.float32), np.ones((2, 3), np.float32)
    out = np.full((4, 3), np.nan, np.float32)
    gemm(a, b, out=out)
    assert (out == 2.0).all()


def test_one_dimensional_out_is_a_row() -> None:
    # A bias step: b ← b − lr·1ᵀδ, the ones as an (n, 1) column.
    rng = np.random.default_rng(1)
    delta, bias = rng.standard_normal((6, 4)), rng.standard_normal(4)
    expected = bias - 0.1 * delta.sum(axis=0)
    gemm(np.ones((6, 1)).T, delta, out=bias, alpha=-0.1, beta=1.0)
    np.testing.assert_allclose(bias, expected, rtol=1e-13)


def test_other_dtypes_and_mixed_operands_fall_back_to_numpy() -> None:
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.arange(3, dtype=np.int64).reshape(3, 1)
    out = np.zeros((2, 1), np.int64)
    gemm(a, b, out=out)
    assert out.tolist() == [[5], [14]]
    mixed = np.zeros((2, 1), np.float32)
    gemm(a.astype(np.float64), b.astype(np.float32), out=mixed, alpha=2.0)
    assert mixed.tolist() == [[10.0], [28.0]]


def test_non_contiguous_operands_are_still_right() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((8, 10))[::2, ::3], rng.standard_normal((8, 5))[::2]
    out = np.zeros((4, 5))
    gemm(a, b, out=out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-13)


def test_importing_the_models_loads_every_blas_a_training_step_uses() -> None:
    # threadpoolctl limits only the libraries loaded when a limit is entered: a BLAS loaded later by the first
    # product kept all its threads inside a one-thread worker, and two workers ran slower than one.
    probe = """
import numpy as np
from threadpoolctl import threadpool_info
from mlplab.models import TwoLayerNet
from mlplab.optim import SGD
loaded = {pool["filepath"] for pool in threadpool_info()}
model = TwoLayerNet(8, 4, 3)
model.train_batch(np.ones((5, 8), np.float32), np.arange(5) % 3)
SGD(0.1, reg=0.01).step(model)
model.evaluate_batch(np.ones((5, 8), np.float32), np.arange(5) % 3)
assert {pool["filepath"] for pool in threadpool_info()} == loaded, "a BLAS was loaded after the models"
print(len(loaded))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 1
