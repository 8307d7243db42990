"""Predict digits in ordinary image files: each image is prepared the way the model's training images were made.

MNIST (and Fashion-MNIST) images were made by size-normalizing each digit to fit a 20×20 box with anti-aliasing
and centring its centre of mass in a 28×28 field. scikit-learn's digits were made by fitting each digit into a
32×32 bitmap and counting the set pixels of each 4×4 block (0–16 in an 8×8 grid). `prepare` redoes those steps on
any PNG/JPEG/BMP of any size and colour, dark ink on light paper or light on dark.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.errors import MlplabError
from mlplab.files import open_regular
from mlplab.models import Model

PAPER_LEVEL = 0.25  # of the full ink range: fainter differences from the paper are its texture or shading


@dataclass(frozen=True)
class ImageForm:
    """The input a model was trained on: `side`×`side` images with pixel values 0..`pixel_max`."""

    side: int
    pixel_max: float

    @property
    def is_digits(self) -> bool:
        return self.side == 8


MNIST_FORM = ImageForm(28, 255.0)
DIGITS_FORM = ImageForm(8, 16.0)


def form_of(model: Model, meta: dict[str, Any]) -> ImageForm:
    """The image form a saved model expects, from its input width (784 → 28×28, 64 → 8×8)."""
    inputs = int(model.hyper.get("input_size", 0))
    for form in (MNIST_FORM, DIGITS_FORM):
        if inputs == form.side * form.side:
            return ImageForm(form.side, float(meta.get("pixel_max", form.pixel_max)))
    raise MlplabError(f"this model takes {inputs} inputs; predict knows 28×28 (784) and 8×8 (64) images")


MAX_IMAGE_PIXELS = 50_000_000
"""Larger images are refused before they are decoded: a 50-megapixel RGBA image is 200 MB, and a few hundred
bytes of PNG can declare billions of pixels (a decompression bomb). Phone cameras save 12–50 megapixels."""
WORKING_SIDE = 2048  # the ink is scaled to 20 px in the end: more resolution than this changes nothing
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def read_image(path: str | Path) -> np.ndarray:
    """A grayscale image as floats in [0, 1], upright as its EXIF orientation says; transparent areas count as
    white paper; 16-bit images keep their full range."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with open_regular(path, "image") as handle, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle) as opened:
                width, height = opened.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise MlplabError(f"{path}: {too_many_pixels(width, height)}")
                opened.draft(None, draft_box(width, height))  # JPEG decodes at 1/2 … 1/8 scale when it can
                opened.load()
                gray = grayscale(ImageOps.exif_transpose(opened))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        raise MlplabError(f"{path}: declares {size}, over mlplab's limit of {MAX_IMAGE_PIXELS:,}") from None
    except UnidentifiedImageError:
        raise MlplabError(f"{path}: not an image Pillow can read (PNG, JPEG, BMP, …)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise MlplabError(f"{path}: cannot read the image ({exc})") from None
    if gray.size == 0:
        raise MlplabError(f"{path}: the image is empty")
    return gray


def draft_box(width: int, height: int) -> tuple[int, int]:
    """The size to ask a JPEG decoder for: the image's aspect with the longer side WORKING_SIDE. Pillow reduces
    only while both sides stay at least the asked size, so asking for a square would keep a 6000×4000 photo whole."""
    scale = WORKING_SIDE / max(width, height, 1)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def too_many_pixels(width: int, height: int) -> str:
    return f"{width}×{height} is {width * height:,} pixels, over mlplab's limit of {MAX_IMAGE_PIXELS:,}"


def grayscale(image: Any) -> np.ndarray:
    """A loaded Pillow image as gray floats in [0, 1], its longer side at most WORKING_SIDE."""
    from PIL import Image

    box = Image.Resampling.BOX
    if image.mode in (*SIXTEEN_BIT, "I", "F"):  # convert("L") would clip 16-bit values at 255: one flat colour
        values = image.convert("F")
        values.thumbnail((WORKING_SIDE, WORKING_SIDE), box)
        array = np.asarray(values, dtype=np.float64)
        if image.mode in SIXTEEN_BIT or (image.mode == "I" and array.min() >= 0 and array.max() <= 65535):
            full = 65535.0
        else:  # 32-bit integers or floats: no standard white, so the image's own range
            full = max(float(np.abs(array).max()), 1.0)
        return np.clip(array / full, 0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        rgba.thumbnail((WORKING_SIDE, WORKING_SIDE), box)
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    gray = image.convert("L")
    gray.thumbnail((WORKING_SIDE, WORKING_SIDE), box)
    return np.asarray(gray, dtype=np.float64) / 255.0


def ink(gray: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1] on a zero background: inverted when the paper (the border's median) is light.

    Differences from the paper under PAPER_LEVEL of the strongest ink go to 0 (uneven light, paper grain, JPEG
    noise); stronger ones are stretched over [0, 1], keeping the anti-aliased edges of the strokes.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    paper = float(np.median(border))
    signal = paper - gray if paper > 0.5 else gray - paper
    top = float(signal.max())
    if top <= 0.05:
        raise MlplabError("no digit found: the image is one flat colour")
    return np.clip((signal / top - PAPER_LEVEL) / (1.0 - PAPER_LEVEL), 0.0, 1.0)


def crop_to_ink(image: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every inked pixel."""
    rows = np.flatnonzero((image > 0).any(axis=1))
    cols = np.flatnonzero((image > 0).any(axis=0))
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_longer_side(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the longer side is `size` pixels, keeping the aspect; each pixel averages the area it covers."""
    from PIL import Image

    h, w = image.shape
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize(new, Image.Resampling.BOX)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def centre_by_mass(image: np.ndarray, side: int) -> np.ndarray:
    """Place `image` in a side×side field with its centre of mass at pixel (side/2, side/2), as MNIST's are (14, 14)."""
    h, w = image.shape
    total = image.sum()
    cy = (image.sum(axis=1) @ np.arange(h)) / total
    cx = (image.sum(axis=0) @ np.arange(w)) / total
    top = int(np.clip(round(side / 2 - cy), 0, side - h))
    left = int(np.clip(round(side / 2 - cx), 0, side - w))
    field = np.zeros((side, side))
    field[top : top + h, left : left + w] = image
    return field


def centre_box(image: np.ndarray, side: int) -> np.ndarray:
    """Place `image` in the middle of a side×side field."""
    h, w = image.shape
    field = np.zeros((side, side))
    top, left = (side - h) // 2, (side - w) // 2
    field[top : top + h, left : left + w] = image
    return field


def block_counts(bitmap: np.ndarray, block: int = 4) -> np.ndarray:
    """Set pixels per non-overlapping block×block block: the digits set's 32×32 → 8×8, 0–16 reduction."""
    side = bitmap.shape[0] // block
    return bitmap.reshape(side, block, side, block).sum(axis=(1, 3))


def preparation_steps(gray: np.ndarray, form: ImageForm = MNIST_FORM) -> list[tuple[str, np.ndarray]]:
    """Every intermediate image, named, from the grayscale input to the model's input (0..pixel_max)."""
    steps = [("grayscale", gray)]
    signal = ink(gray)
    steps.append(("ink on black", signal))
    cropped = crop_to_ink(signal)
    steps.append(("cropped to the ink", cropped))
    if form.is_digits:
        bitmap = centre_box(fit_longer_side(cropped, 32), 32) > 0.5
        steps.append(("32×32 bitmap", bitmap.astype(np.float64)))
        steps.append(("8×8 block counts, 0–16", block_counts(bitmap).astype(np.float64)))
    else:
        scaled = fit_longer_side(cropped, 20)
        steps.append(("longer side 20 px", scaled))
        steps.append(("28×28, centred by mass", centre_by_mass(scaled, form.side) * form.pixel_max))
    return steps


def prepare(path: str | Path, form: ImageForm = MNIST_FORM) -> np.ndarray:
    """An image file as one flat row of the model's input form, in the dataset's raw pixel range."""
    try:
        final = preparation_steps(read_image(path), form)[-1][1]
    except MlplabError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise MlplabError(f"{path}: {exc}") from None
    return final.reshape(-1)


@dataclass(frozen=True)
class Prediction:
    """The most likely class of one image and every class's probability."""

    image: str
    label: int
    probabilities: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "label": self.label, "probabilities": self.probabilities}

    def line(self) -> str:
        """`path: 7 (98.2%), then 1 (1.1%)`."""
        order = np.argsort(self.probabilities)[::-1]
        first, second = int(order[0]), int(order[1])
        p = self.probabilities
        return f"{self.image}: {first} ({100 * p[first]:.1f}%), then {second} ({100 * p[second]:.1f}%)"


def predict_files(model: Model, meta: dict[str, Any], paths: list[str]) -> tuple[list[Prediction], list[MlplabError]]:
    """Predictions for every readable image, and one error per file that could not be prepared."""
    form = form_of(model, meta)
    rows, kept, errors = [], [], []
    for path in paths:
        try:
            rows.append(prepare(path, form))
            kept.append(path)
        except MlplabError as exc:
            errors.append(exc)
    if not rows:
        return [], errors
    probs = model.predict_proba(np.stack(rows), form.pixel_max)
    predictions = [
        Prediction(path, int(np.argmax(p)), [float(v) for v in p]) for path, p in zip(kept, probs, strict=True)
    ]
    return predictions, errors
