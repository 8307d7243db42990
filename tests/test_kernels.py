"""Every compiled kernel against the plain NumPy formula it replaces, in float32 (bit for bit where NumPy rounds
the same way) and float64."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlplab import kernels
from tests import oracles as F

RNG = np.random.default_rng(0)
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_matches_the_numpy_formula(dtype: type) -> None:
    z = (RNG.normal(0, 4, (37, 10))).astype(dtype)
    z[3] = 1e4  # a huge row: the max shift keeps exp finite
    y = RNG.integers(0, 10, 37)
    loss, _, dz_expected = F.softmax_cross_entropy(z.astype(np.float64), y)
    dz = np.empty_like(z)
    total, hits = kernels.softmax_cross_entropy(z, y, dz, True)
    assert total / 37 == pytest.approx(loss, rel=1e-6 if dtype == np.float32 else 1e-12)
    assert hits == int(np.sum(z.argmax(axis=1) == y))
    np.testing.assert_allclose(dz, dz_expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-9)
    before = z.copy()
    assert kernels.softmax_cross_entropy(z, y, z, False) == (total, hits)  # without the gradient: z untouched
    np.testing.assert_array_equal(z, before)


@pytest.mark.parametrize("source_dtype", [np.uint8, np.float64])
def test_gather_and_slice_cast_and_scale_like_numpy(source_dtype: type) -> None:
    source = RNG.integers(0, 256, (50, 13)).astype(source_dtype)
    rows = RNG.permutation(50)[:7]
    factor = np.float32(1 / 255)
    out = np.empty((7, 13), np.float32)
    kernels.gather_scaled(source, rows, factor, out)
    np.testing.assert_array_equal(out, source[rows].astype(np.float32) * factor)
    kernels.slice_scaled(source, 40, factor, out)
    np.testing.assert_array_equal(out, source[40:47].astype(np.float32) * factor)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_gradients_match_numpy(dtype: type) -> None:
    dy, z = RNG.normal(size=(2, 9, 11)).astype(dtype)
    relu, out = np.maximum(z, 0), np.empty_like(z)
    kernels.relu_grad(dy, relu, out)
    np.testing.assert_array_equal(out, dy * (z > 0))
    s = F.sigmoid(z)
    kernels.sigmoid_grad(dy, s, out)
    np.testing.assert_array_equal(out, dy * (s - s * s))


def test_dropout_turns_uniforms_into_the_inverted_mask() -> None:
    x = RNG.normal(size=(20, 30)).astype(np.float32)
    uniform = RNG.random((20, 30), dtype=np.float32)
    keep = (uniform >= 0.3) * np.asarray(1 / 0.7, np.float32)
    out = np.empty_like(x)
    kernels.dropout(x, uniform, np.float32(0.3), np.float32(1 / 0.7), out)
    np.testing.assert_array_equal(uniform, keep)
    np.testing.assert_array_equal(out, x * keep)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_and_momentum_match_numpy(dtype: type, nesterov: bool) -> None:
    t = np.dtype(dtype).type
    param, grad, velocity = RNG.normal(size=(3, 40, 7)).astype(dtype)
    expected = param - t(0.1) * grad
    kernels.sgd(param_copy := param.copy(), grad, t(0.1))
    np.testing.assert_array_equal(param_copy, expected)
    v_expected = velocity * t(0.9) - t(0.1) * grad
    p_expected = param + t(0.9) * v_expected - t(0.1) * grad if nesterov else param + v_expected
    kernels.momentum(param, grad, velocity, t(0.1), t(0.9), nesterov)
    np.testing.assert_array_equal(velocity, v_expected)
    np.testing.assert_allclose(param, p_expected, rtol=1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("decay", [1.0, 0.999])
def test_adam_is_bit_for_bit_the_numpy_update(decay: float) -> None:
    # The formula the step used before it was compiled, operation by operation in float32.
    f = np.float32
    param, grad, m, v = RNG.normal(size=(4, 64, 33)).astype(f)
    v = np.abs(v)
    beta1, beta2, step, eps = 0.9, 0.999, 1e-3 * np.sqrt(1 - 0.999**3) / (1 - 0.9**3), 1e-8 * np.sqrt(1 - 0.999**3)
    m_np, v_np, p_np = m * f(beta1) + grad * f(1 - beta1), v * f(beta2) + grad * grad * f(1 - beta2), param.copy()
    if decay != 1.0:
        p_np *= f(decay)
    p_np -= m_np / (np.sqrt(v_np) + f(eps)) * f(step)
    kernels.adam(param, grad, m, v, f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(step), f(eps), f(decay))
    np.testing.assert_array_equal(m, m_np)
    np.testing.assert_array_equal(v, v_np)
    np.testing.assert_array_equal(param, p_np)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_shift_images_matches_the_padded_fancy_index(dtype: type) -> None:
    n, h, w, s = 9, 5, 7, 2
    x = RNG.integers(1, 256, (n, h * w)).astype(dtype)
    dy, dx = RNG.integers(-s, s + 1, size=(2, n))
    padded = np.pad(x.reshape(n, h, w), ((0, 0), (s, s), (s, s)))
    rows = np.arange(h)[None, :] + (s - dy)[:, None]
    cols = np.arange(w)[None, :] + (s - dx)[:, None]
    expected = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]].reshape(n, h * w)
    out = np.full_like(x, 99)
    kernels.shift_images(x, dy, dx, h, w, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.slow
def test_train_compiles_in_process_when_no_cache_directory_is_writable(tmp_path: Path) -> None:
    """Issue 23: with no writable numba cache anywhere, every compiled function (kernels, convolution, augment)
    falls back to compiling in the process, and a CNN trained with elastic distortions and shifts still runs.

    Unwritable for root too: a copy of the package whose __pycache__ is a regular file, and NUMBA_CACHE_DIR,
    XDG_CACHE_HOME and HOME below a regular file, so numba finds no place to create its cache directory."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    package = tmp_path / "src" / "mlplab"
    shutil.copytree(SRC / "mlplab", package, ignore=shutil.ignore_patterns("__pycache__"))
    for directory in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (directory / "__pycache__").write_text("")
    nowhere = str(blocker / "cache")
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NUMBA_CACHE_DIR": nowhere,
        "XDG_CACHE_HOME": nowhere,
        "HOME": nowhere,
        "OPENBLAS_NUM_THREADS": "1",
    }
    settings = ["type=CNN", "conv_channels=[2]", "kernel_size=3", "hidden_sizes=[8]", "epochs=1", "threads=1",
                "augment=1", "elastic=2", "dataset=digits"]  # fmt: skip
    args = [arg for s in settings for arg in ("--set", s)]
    done = subprocess.run(
        [sys.executable, "-m", "mlplab.cli", "train", *args, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert not list(package.rglob("*.nbi")), "a cache index was written after all"
