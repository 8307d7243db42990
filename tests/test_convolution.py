"""Convolution and pooling math: each compiled kernel against the plain NumPy formula, adjoints, and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab import convolution as conv
from mlplab.errors import MlplabError

GEOMETRIES = [  # (H, W, C, kernel, stride, padding)
    (7, 6, 2, 3, 1, 1),
    (8, 8, 3, 5, 1, 2),
    (9, 7, 2, 3, 2, 1),
    (8, 9, 1, 4, 2, 0),
    (6, 6, 2, 5, 1, 0),
    (5, 5, 1, 1, 1, 0),
]


def geometry(case: tuple[int, ...], mode: str) -> conv.ConvGeometry:
    h, w, c, k, s, p = case
    return conv.ConvGeometry(h, w, c, k, s, p, mode)


def padded_reference(x: np.ndarray, g: conv.ConvGeometry) -> np.ndarray:
    """np.pad's own zero and wrap modes."""
    p = g.padding
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="constant" if g.mode == "zeros" else "wrap")


def conv_reference(x: np.ndarray, w: np.ndarray, g: conv.ConvGeometry) -> np.ndarray:
    """y[n, i, j, f] = Σ_{ki, kj, c} xp[n, i·s + ki, j·s + kj, c] · w[ki, kj, c, f], loop by loop over outputs."""
    xp = padded_reference(x, g)
    s, k = g.stride, g.kernel
    y = np.zeros((len(x), g.out_height, g.out_width, w.shape[-1]))
    for i in range(g.out_height):
        for j in range(g.out_width):
            window = xp[:, i * s : i * s + k, j * s : j * s + k, :]
            y[:, i, j] = np.einsum("nabc,abcf->nf", window, w)
    return y


def col2im_reference(cols: np.ndarray, g: conv.ConvGeometry, n: int) -> np.ndarray:
    """The NumPy formula the compiled col2im replaces: one strided slice-add per kernel offset."""
    out = np.zeros((n, g.padded_height, g.padded_width, g.channels))
    c6 = cols.reshape(n, g.out_height, g.out_width, g.kernel, g.kernel, g.channels)
    s = g.stride
    for ki in range(g.kernel):
        for kj in range(g.kernel):
            out[:, ki : ki + s * (g.out_height - 1) + 1 : s, kj : kj + s * (g.out_width - 1) + 1 : s] += c6[
                :, :, :, ki, kj
            ]
    return out


def forward(x: np.ndarray, w: np.ndarray, g: conv.ConvGeometry) -> np.ndarray:
    n = len(x)
    padded = conv.pad(x, g, np.empty((n, g.padded_height, g.padded_width, g.channels)))
    cols = conv.im2col(padded, g, np.empty((n * g.out_height * g.out_width, g.patch)))
    return (cols @ w.reshape(g.patch, -1)).reshape(n, g.out_height, g.out_width, -1)


@pytest.mark.parametrize("mode", conv.PADDINGS)
@pytest.mark.parametrize("case", GEOMETRIES)
def test_pad_matches_numpy_pad(case: tuple[int, ...], mode: str) -> None:
    g = geometry(case, mode)
    x = np.random.default_rng(0).normal(size=(2, g.height, g.width, g.channels))
    out = np.full((2, g.padded_height, g.padded_width, g.channels), np.nan)
    np.testing.assert_array_equal(conv.pad(x, g, out), padded_reference(x, g))


@pytest.mark.parametrize("mode", conv.PADDINGS)
@pytest.mark.parametrize("case", GEOMETRIES)
def test_im2col_gemm_matches_the_convolution_formula(case: tuple[int, ...], mode: str) -> None:
    g = geometry(case, mode)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, g.height, g.width, g.channels))
    w = rng.normal(size=(g.kernel, g.kernel, g.channels, 4))
    np.testing.assert_allclose(forward(x, w, g), conv_reference(x, w, g), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", GEOMETRIES)
def test_col2im_kernel_matches_the_numpy_formula(case: tuple[int, ...]) -> None:
    g = geometry(case, "zeros")
    cols = np.random.default_rng(2).normal(size=(3 * g.out_height * g.out_width, g.patch))
    out = np.full((3, g.padded_height, g.padded_width, g.channels), np.nan)  # col2im must clear it first
    np.testing.assert_allclose(conv.col2im(cols, g, out), col2im_reference(cols, g, 3), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mode", conv.PADDINGS)
@pytest.mark.parametrize("case", GEOMETRIES)
def test_backward_pieces_are_the_adjoints_of_the_forward_ones(case: tuple[int, ...], mode: str) -> None:
    # <A x, c> = <x, Aᵀ c> for A = im2col ∘ pad, Aᵀ = pad_adjoint ∘ col2im: the input gradient is exact.
    g = geometry(case, mode)
    rng = np.random.default_rng(3)
    n = 2
    x = rng.normal(size=(n, g.height, g.width, g.channels))
    c = rng.normal(size=(n * g.out_height * g.out_width, g.patch))
    padded = conv.pad(x, g, np.empty((n, g.padded_height, g.padded_width, g.channels)))
    ax = conv.im2col(padded, g, np.empty_like(c))
    dpadded = conv.col2im(c, g, np.empty_like(padded))
    atc = conv.pad_adjoint(dpadded, g, np.empty_like(x))
    assert np.vdot(ax, c) == pytest.approx(np.vdot(x, atc), rel=1e-12)


def pool_reference(x: np.ndarray, window: int) -> np.ndarray:
    """The NumPy formula: crop to whole windows, split each axis into (blocks, window), take the max."""
    n, h, w, c = x.shape
    oh, ow = h // window, w // window
    blocks = x[:, : oh * window, : ow * window].reshape(n, oh, window, ow, window, c)
    return blocks.max(axis=(2, 4))


@pytest.mark.parametrize(("shape", "window"), [((2, 8, 8, 3), 2), ((2, 7, 9, 2), 2), ((1, 9, 9, 4), 3)])
def test_max_pool_kernels_match_the_numpy_formula(shape: tuple[int, ...], window: int) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape).astype(np.float32)
    oh, ow = shape[1] // window, shape[2] // window
    out = np.empty((shape[0], oh, ow, shape[3]), np.float32)
    argmax = np.empty(out.shape, np.uint8)
    np.testing.assert_array_equal(conv.max_pool(x, window, out, argmax), pool_reference(x, window))
    # Backward: the gradient of Σ dy·maxpool(x) is dy at each window's (unique) maximum and 0 elsewhere.
    dy = rng.normal(size=out.shape).astype(np.float32)
    dx = conv.max_pool_backward(dy, argmax, window, np.full(shape, np.nan, np.float32))
    upsampled = np.repeat(np.repeat(out, window, axis=1), window, axis=2)
    winners = np.zeros(shape, bool)
    winners[:, : oh * window, : ow * window] = x[:, : oh * window, : ow * window] == upsampled
    expected = np.zeros(shape, np.float32)
    expected[:, : oh * window, : ow * window] = np.repeat(np.repeat(dy, window, axis=1), window, axis=2)
    np.testing.assert_array_equal(dx, np.where(winners, expected, 0))


def test_max_pool_ties_go_to_the_first_element() -> None:
    x = np.zeros((1, 2, 2, 1), np.float32)
    argmax = np.empty((1, 1, 1, 1), np.uint8)
    conv.max_pool(x, 2, np.empty((1, 1, 1, 1), np.float32), argmax)
    assert argmax.item() == 0


def test_matches_torch_conv2d_and_its_input_gradient() -> None:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    rng = np.random.default_rng(5)
    for mode in conv.PADDINGS:
        for case in GEOMETRIES:
            g = geometry(case, mode)
            x = rng.normal(size=(2, g.height, g.width, g.channels))
            w = rng.normal(size=(g.kernel, g.kernel, g.channels, 3))
            dy = rng.normal(size=(2, g.out_height, g.out_width, 3))
            xt = torch.tensor(x, requires_grad=True)
            nchw = xt.permute(0, 3, 1, 2)
            p = g.padding
            if mode == "circular":
                nchw = functional.pad(nchw, (p, p, p, p), mode="circular")
            yt = functional.conv2d(
                nchw, torch.tensor(w).permute(3, 2, 0, 1), stride=g.stride, padding=0 if mode == "circular" else p
            ).permute(0, 2, 3, 1)
            (yt * torch.tensor(dy)).sum().backward()
            np.testing.assert_allclose(forward(x, w, g), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
            n = len(x)
            dcols = dy.reshape(-1, 3) @ w.reshape(g.patch, 3).T
            dpadded = conv.col2im(dcols, g, np.empty((n, g.padded_height, g.padded_width, g.channels)))
            dx = conv.pad_adjoint(dpadded, g, np.empty_like(x))
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel": 7}, "does not fit"),
        ({"padding": 9, "mode": "circular"}, "wider than"),
        ({"mode": "reflect"}, "unknown padding mode"),
        ({"stride": 0}, "must be ≥ 1"),
    ],
)
def test_bad_geometry_is_a_clear_error(kwargs: dict, message: str) -> None:
    base = {"height": 5, "width": 5, "channels": 1, "kernel": 3}
    with pytest.raises(MlplabError, match=message):
        conv.ConvGeometry(**{**base, **kwargs})
