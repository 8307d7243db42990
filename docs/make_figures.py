"""Draws docs/drawn_digit.jpg (a 5 in ballpoint on tinted paper, as a phone would photograph it) and
docs/predict_steps.png (what `mlplab predict` makes of it). Run from the repository root."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mlplab.predict import DIGITS_FORM, MNIST_FORM, preparation_steps, read_image

DOCS = Path(__file__).parent


def stroke(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], width: int, colour: tuple[int, ...]) -> None:
    """A pen stroke through `points`, round at the joints."""
    draw.line(points, fill=colour, width=width, joint="curve")
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=colour)


def draw_five(path: Path) -> None:
    """A 5 in blue ballpoint on slightly yellow, unevenly lit paper, a little blurred like a phone photo."""
    rng = np.random.default_rng(5)
    w, h = 360, 420
    shade = np.linspace(0, 18, w)[None, :] + np.linspace(0, 10, h)[:, None]
    paper = np.stack([238 - shade, 234 - shade, 214 - shade], axis=-1) + rng.normal(0, 3, (h, w, 3))
    image = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    ink = (40, 52, 120)
    stroke(draw, [(232, 92), (190, 90), (150, 94), (128, 97)], 15, ink)  # the top bar, right to left
    stroke(draw, [(130, 96), (124, 140), (118, 190)], 15, ink)  # down
    angles = np.linspace(-2.4, 2.3, 24)  # the bowl: most of a circle, open on the left
    bowl = [(182 + 68 * np.cos(a) * 0.95, 262 + 72 * np.sin(a)) for a in angles]
    stroke(draw, [(118, 190), *bowl], 16, ink)
    image.filter(ImageFilter.GaussianBlur(1.2)).save(path, quality=85)


def steps_figure(source: Path, out: Path) -> None:
    """The preparation steps for a 28×28 model, and the last two for an 8×8 digits model."""
    gray = read_image(source)
    mnist = preparation_steps(gray, MNIST_FORM)
    digits = preparation_steps(gray, DIGITS_FORM)[-2:]
    panels = [("photo", np.asarray(Image.open(source)))] + mnist + [(f"digits: {t}", a) for t, a in digits]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.4))
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(image, cmap=None if image.ndim == 3 else "gray", interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    draw_five(DOCS / "drawn_digit.jpg")
    steps_figure(DOCS / "drawn_digit.jpg", DOCS / "predict_steps.png")
