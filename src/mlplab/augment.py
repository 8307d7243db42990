"""Per-batch input transforms: random shifts, rotations, horizontal flips and elastic distortions of images (training
only) and per-pixel standardization."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mlplab import kernels
from mlplab.blas import matmul
from mlplab.data import Split

MIN_STD = 0.1
"""Floor of a pixel's std (in scaled units) when standardizing: border pixels that are almost always 0 would
otherwise be blown up by 1/std into huge, rare inputs."""
STATS_CHUNK = 4096


def shift_images(x: np.ndarray, image_shape: tuple[int, int], max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each row of x (n, H·W) moved by its own random whole-pixel (dy, dx) in [−max_shift, max_shift]; the
    pixels moved in from outside are 0 (background). Works on any dtype; returns a new array."""
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=(2, len(x)))
    out = np.empty_like(x)
    kernels.shift_images(np.ascontiguousarray(x), dy, dx, image_shape[0], image_shape[1], out)
    return out


def flip_images(x: np.ndarray, image_shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Each row of x (n, H·W) mirrored left to right with probability 1/2; returns a new array of x's dtype."""
    h, w = image_shape
    out = x.copy()
    images = out.reshape(len(x), h, w)
    flipped = rng.random(len(x)) < 0.5
    images[flipped] = images[flipped][:, :, ::-1]
    return out


def rotate_images(
    x: np.ndarray, image_shape: tuple[int, int], max_degrees: float, rng: np.random.Generator, max_shift: int = 0
) -> np.ndarray:
    """Each row of x (n, H·W) rotated about the image centre by its own random angle in ±max_degrees, then moved
    by a random whole-pixel shift in ±max_shift; bilinear resampling, 0 outside. Returns a new array of x's dtype.

    The angle's sign follows scipy.ndimage.rotate, and the shift draws match shift_images for the same rng.
    """
    n = len(x)
    h, w = image_shape
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=(2, n))  # drawn first, as shift_images does
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, size=n))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    # For every output pixel, where it comes from: undo the shift, then rotate back by −angle about the centre.
    u = np.arange(h)[None, :, None] - cy - dy[:, None, None]
    v = np.arange(w)[None, None, :] - cx - dx[:, None, None]
    src_row = cos * u + sin * v + cy
    src_col = cos * v - sin * u + cx
    sample = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None], src_row.shape)
    images = x.reshape(n, h, w)
    from scipy import ndimage  # here, not at import: only rotation needs it, and it costs ~0.3 s to load

    out = ndimage.map_coordinates(images, [sample, src_row, src_col], order=1, mode="constant", cval=0.0)
    return out.reshape(n, h * w)


@functools.lru_cache(maxsize=8)
def gaussian_matrix(size: int, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """(size, size) float32 matrix G with G·v = v convolved with a normalized Gaussian, zeros beyond the edges."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    taps /= taps.sum()
    distance = np.arange(size)[:, None] - np.arange(size)[None, :]
    inside = np.abs(distance) <= radius
    matrix = np.where(inside, taps[np.clip(distance + radius, 0, 2 * radius)], 0.0).astype(np.float32)
    matrix.flags.writeable = False  # shared by every call (cached)
    return matrix


@kernels.compiled(nogil=True)
def _bilinear_sample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
    n, h, w = images.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                r, c = rows[b, i, j], cols[b, i, j]
                r0, c0 = int(np.floor(r)), int(np.floor(c))
                fr, fc = r - r0, c - c0
                total = 0.0
                for dr, wr in ((0, 1.0 - fr), (1, fr)):
                    rr = r0 + dr
                    if 0 <= rr < h:
                        for dc, wc in ((0, 1.0 - fc), (1, fc)):
                            cc = c0 + dc
                            if 0 <= cc < w:
                                total += wr * wc * images[b, rr, cc]
                out[b, i, j] = total


def bilinear_sample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """out[b, i, j] = images[b] read at (rows[b, i, j], cols[b, i, j]), bilinearly, with zeros outside the image.

    The same as scipy.ndimage.map_coordinates(order=1, mode="grid-constant") per image, without its overhead.
    """
    out = np.empty(images.shape, np.float32)
    _bilinear_sample(images, rows, cols, out)
    return out


def elastic_images(
    x: np.ndarray, image_shape: tuple[int, int], alpha: float, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """Each row of x (n, H·W) warped by its own random elastic displacement field (Simard et al. 2003).

    Per image and axis a field of uniform [−1, 1] displacements is smoothed by a Gaussian of std `sigma` pixels
    (zeros beyond the edges) and scaled by `alpha`; every output pixel is read, bilinearly, from where its field
    points (0 outside the image). Returns a new float32 array; x is unchanged.
    """
    n = len(x)
    h, w = image_shape
    field = rng.random((2 * n * h, w), dtype=np.float32)
    field *= 2.0
    field -= 1.0
    # Separable smoothing as two products: along each row (· Gwᵀ), then along each column (Gh ·, on the transpose).
    along_rows = matmul(field, gaussian_matrix(w, sigma).T)
    transposed = np.ascontiguousarray(along_rows.reshape(2 * n, h, w).transpose(0, 2, 1)).reshape(2 * n * w, h)
    smooth = matmul(transposed, gaussian_matrix(h, sigma).T).reshape(2, n, w, h).transpose(0, 1, 3, 2)
    rows = smooth[0] * np.float32(alpha) + np.arange(h, dtype=np.float32)[:, None]
    cols = smooth[1] * np.float32(alpha) + np.arange(w, dtype=np.float32)[None, :]
    images = np.ascontiguousarray(x.reshape(n, h, w), dtype=np.float32)
    return bilinear_sample(images, rows, cols).reshape(n, h * w)


@dataclass(frozen=True)
class Standardizer:
    """Per-pixel (x − mean)·inv_std, with mean and std measured on the training split only."""

    mean: np.ndarray
    inv_std: np.ndarray

    @classmethod
    def fit(
        cls, split: Split, scale: float, dtype: np.dtype | str = "float32", min_std: float = MIN_STD
    ) -> Standardizer:
        """Mean and std of each pixel of `split` after dividing by `scale`, std floored at `min_std`."""
        total = np.zeros(split.x.shape[1])
        total_sq = np.zeros(split.x.shape[1])
        for start in range(0, len(split), STATS_CHUNK):  # chunks: a float64 copy of all of MNIST is 300 MB
            chunk = split.x[start : start + STATS_CHUNK].astype(np.float64) / scale
            total += chunk.sum(axis=0)
            total_sq += np.square(chunk).sum(axis=0)
        n = max(len(split), 1)
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
        return cls(mean.astype(dtype), (1.0 / np.maximum(std, min_std)).astype(dtype))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Standardize a float batch in place (and return it)."""
        x -= self.mean
        x *= self.inv_std
        return x

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """The same map as x·scale + shift, in float64 (what a model folds into its first layer): scale = 1/std,
        shift = −mean/std."""
        scale = self.inv_std.astype(np.float64)
        return scale, -(self.mean * scale)


class BatchTransform:
    """What fit does to each batch: augmentation (training batches only), then standardization (every batch)."""

    def __init__(
        self,
        image_shape: tuple[int, int],
        shift: int = 0,
        rotate: float = 0.0,
        standardizer: Standardizer | None = None,
        elastic: float = 0.0,
        elastic_sigma: float = 4.0,
        flip: bool = False,
    ) -> None:
        self.image_shape = image_shape
        self.flip = flip
        self.shift = shift
        self.rotate = rotate
        self.standardizer = standardizer
        self.elastic = elastic
        self.elastic_sigma = elastic_sigma

    @property
    def augments(self) -> bool:
        return self.shift > 0 or self.rotate > 0 or self.elastic > 0 or self.flip

    def train(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A training batch: randomly mirrored, elastically distorted, shifted/rotated by `rng`, then standardized."""
        if self.flip:
            x = flip_images(x, self.image_shape, rng)
        if self.elastic > 0:
            x = elastic_images(x, self.image_shape, self.elastic, self.elastic_sigma, rng)
        if self.rotate > 0:
            x = rotate_images(x, self.image_shape, self.rotate, rng, self.shift)
        elif self.shift > 0:
            x = shift_images(x, self.image_shape, self.shift, rng)
        return self.eval(x)

    def eval(self, x: np.ndarray) -> np.ndarray:
        """A validation or test batch: standardized only (never augmented)."""
        return self.standardizer(x) if self.standardizer is not None else x
