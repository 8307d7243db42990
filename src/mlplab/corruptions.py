"""Dataset corruptions of the randomization tests: pure, seeded transforms from a Dataset to a new Dataset.

Label corruptions change training and validation labels (test labels stay true); image corruptions change the
images of every split, as Zhang et al. (2017) do for their training and test sets, and keep all labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from mlplab.data import Dataset, Split
from mlplab.errors import MlplabError


def corrupt_labels(dataset: Dataset, p: float, seed: int) -> Dataset:
    """Replace each training and validation label, with probability p, by one drawn uniformly from all classes.

    The draw may give back the true class, so about p·(1 − 1/classes) of the labels change. For one seed the
    corrupted sets are nested: the labels corrupted at level p are also corrupted, identically, at every level > p.
    """
    if not 0.0 <= p <= 1.0:
        raise MlplabError(f"label corruption must lie in [0, 1], got {p}")
    rng = np.random.default_rng(seed)

    def corrupt(split: Split) -> Split:
        hit = rng.random(len(split)) < p
        drawn = rng.integers(0, dataset.num_classes, len(split), dtype=np.int64)
        return Split(split.x, np.where(hit, drawn, split.y))

    return replace(dataset, train=corrupt(dataset.train), val=corrupt(dataset.val))


def shuffle_pixels(dataset: Dataset, seed: int) -> Dataset:
    """Apply one fixed random permutation of the pixel positions to every image of every split."""
    order = np.random.default_rng(seed).permutation(dataset.input_size)
    return _map_images(dataset, lambda x: x[:, order])


def random_pixels(dataset: Dataset, seed: int) -> Dataset:
    """Apply an independent random permutation to each image's pixels (each image keeps its own pixel values)."""
    rng = np.random.default_rng(seed)
    return _map_images(dataset, lambda x: rng.permuted(x, axis=1))


def gaussian_images(dataset: Dataset, seed: int) -> Dataset:
    """Replace every image by Gaussian noise with the mean and variance of the training images' pixels.

    The noise stays float32 in pixel units (batching still divides by pixel_max): rounding it to uint8 would clip
    the left tail at 0 and change both moments.
    """
    rng = np.random.default_rng(seed)
    mean = float(dataset.train.x.mean(dtype=np.float64))
    std = float(dataset.train.x.std(dtype=np.float64))

    def noise(x: np.ndarray) -> np.ndarray:
        out = rng.standard_normal(x.shape, dtype=np.float32)
        out *= std
        out += mean
        return out

    return _map_images(dataset, noise)


def _map_images(dataset: Dataset, change: Callable[[np.ndarray], np.ndarray]) -> Dataset:
    """The dataset with `change` applied to the images of train, val and test, in that order; labels kept."""
    train, val, test = (Split(change(s.x), s.y) for s in (dataset.train, dataset.val, dataset.test))
    return replace(dataset, train=train, val=val, test=test)
