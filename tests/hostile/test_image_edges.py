"""Image files given to `predict`: decompression bombs (forged PNG headers, a real JPEG) are refused before they
are decoded, in bounded memory; 16-bit and 32-bit grayscale images keep their range; EXIF orientations are applied;
special files (a FIFO, a device) among the images are skipped with one line each while the others are predicted."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mlplab.models.base import build_model
from tests.hostile.harness import mlplab


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 784-input MLP: its probabilities differ for any two different prepared images."""
    path = tmp_path_factory.mktemp("model") / "m.npz"
    build_model("MLP", input_size=784, hidden_sizes=[32]).save(path, dataset="mnist", pixel_max=255.0, best_epoch=0)
    return path


def glyph(size: int = 60) -> np.ndarray:
    """An "F": dark ink on light paper, different under every flip and rotation."""
    image = Image.new("L", (size, size), 235)
    draw = ImageDraw.Draw(image)
    s = size // 10
    draw.line([(3 * s, 2 * s), (3 * s, 8 * s)], fill=20, width=s)
    draw.line([(3 * s, 2 * s), (7 * s, 2 * s)], fill=20, width=s)
    draw.line([(3 * s, 5 * s), (6 * s, 5 * s)], fill=20, width=s)
    return np.asarray(image)


def probabilities(result_out: str) -> dict[str, list[float]]:
    return {Path(p["image"]).name: p["probabilities"] for p in json.loads(result_out)}


def predict_json(model: Path, *images: Path) -> dict[str, list[float]]:
    result = mlplab("predict", "--json", str(model), *map(str, images))
    assert result.code == 0, result.err
    return probabilities(result.out)


# --- decompression bombs ----------------------------------------------------------------------------------------


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG of a few dozen bytes whose header declares width×height 8-bit gray pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("width", "height", "needle"),
    [
        (100_000, 100_000, "declares 10,000,000,000 pixels"),  # past Pillow's error limit
        (10_000, 10_000, "declares 100,000,000 pixels"),  # in Pillow's warning band
        (8_000, 7_000, "8000×7000 is 56,000,000 pixels"),  # under Pillow's limits, over mlplab's
    ],
)
def test_a_png_decompression_bomb_is_refused_in_bounded_memory(
    model: Path, tmp_path: Path, width: int, height: int, needle: str
) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", width, height)
    result = mlplab("predict", str(model), str(bomb), isolate=True, timeout=60)
    result.refused(str(bomb), needle, "limit of 50,000,000")
    assert 0 < result.peak_mb < 300, f"peak RSS {result.peak_mb:.0f} MB"


def test_a_real_jpeg_bomb_is_refused_before_decoding(model: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jpg"
    Image.new("L", (9000, 6000), 255).save(bomb, quality=50)  # 54 megapixels in a few hundred KB
    assert bomb.stat().st_size < 2 << 20
    result = mlplab("predict", str(model), str(bomb), isolate=True, timeout=60)
    result.refused(str(bomb), "9000×6000 is 54,000,000 pixels")
    assert 0 < result.peak_mb < 300, f"peak RSS {result.peak_mb:.0f} MB"


def test_a_large_phone_photo_is_predicted_in_bounded_memory(model: Path, tmp_path: Path) -> None:
    """A 24-megapixel RGB JPEG with the digit in it: predicted, as its small copy is, without decoding it whole."""
    small = Image.fromarray(glyph(600)).convert("RGB")
    big = small.resize((4000, 4000), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (6000, 4000), (235, 235, 235))
    canvas.paste(big, (1000, 0))
    canvas.save(tmp_path / "photo.jpg", quality=90)
    result = mlplab("predict", "--json", str(model), str(tmp_path / "photo.jpg"), isolate=True)
    assert result.code == 0, result.err
    small.save(tmp_path / "small.png")
    baseline = mlplab("predict", "--json", str(model), str(tmp_path / "small.png"), isolate=True)
    # Decoded whole, the photo costs 72 MB as RGB and ~200 MB with its copies (seen: 402 MB against 198 MB for the
    # small copy); decoded at half scale, as predict asks the JPEG decoder to, ~80 MB.
    extra = result.peak_mb - baseline.peak_mb
    assert baseline.peak_mb > 0 and extra < 140, f"peak RSS {result.peak_mb:.0f} MB, {extra:.0f} MB over a small image"
    got, reference = probabilities(result.out)["photo.jpg"], predict_json(model, tmp_path / "small.png")["small.png"]
    assert np.argmax(got) == np.argmax(reference) and np.allclose(got, reference, atol=0.05)


# --- grayscale of more than 8 bits --------------------------------------------------------------------------------


def test_16_and_32_bit_grayscale_images_predict_as_their_8_bit_copy(model: Path, tmp_path: Path) -> None:
    """A 16-bit PNG (mode I;16), a 32-bit integer TIFF of 16-bit values (mode I) and a float TIFF in [0, 1] (mode
    F) of the same drawing give the 8-bit PNG's probabilities — not "one flat colour"."""
    eight = glyph()
    Image.fromarray(eight).save(tmp_path / "eight.png")
    sixteen = eight.astype(np.uint16) * 257
    Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode.startswith("I;16")
    Image.fromarray(sixteen.astype(np.int32)).save(tmp_path / "thirty-two.tif")
    assert Image.open(tmp_path / "thirty-two.tif").mode == "I"
    Image.fromarray((eight / 255.0).astype(np.float32)).save(tmp_path / "float.tif")
    assert Image.open(tmp_path / "float.tif").mode == "F"
    names = ("eight.png", "sixteen.png", "thirty-two.tif", "float.tif")
    got = predict_json(model, *(tmp_path / n for n in names))
    for name in names[1:]:
        np.testing.assert_allclose(got[name], got["eight.png"], atol=1e-6, err_msg=name)


def test_a_flat_16_bit_image_is_still_flat(model: Path, tmp_path: Path) -> None:
    Image.fromarray(np.full((30, 30), 40000, np.uint16)).save(tmp_path / "flat.png")
    mlplab("predict", str(model), str(tmp_path / "flat.png")).refused("flat.png", "one flat colour")


# --- EXIF orientation --------------------------------------------------------------------------------------------

# The transposition a viewer applies for each EXIF orientation (2–8); a camera stores the inverse of it.
SHOWN = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
STORED = {**SHOWN, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_every_exif_orientation_is_applied(model: Path, tmp_path: Path, suffix: str) -> None:
    """A photo stored sideways (or mirrored) with its EXIF orientation predicts as the upright picture; stored
    without the tag, the same pixels predict differently (so the test can tell)."""
    upright = Image.fromarray(glyph()).convert("RGB")
    upright.save(tmp_path / f"upright{suffix}", quality=95)
    images = []
    for orientation, transpose in STORED.items():
        stored = upright.transpose(transpose)
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(tmp_path / f"o{orientation}{suffix}", exif=exif, quality=95)
        stored.save(tmp_path / f"raw{orientation}{suffix}", quality=95)
        images += [tmp_path / f"o{orientation}{suffix}", tmp_path / f"raw{orientation}{suffix}"]
    got = predict_json(model, tmp_path / f"upright{suffix}", *images)
    reference = np.array(got[f"upright{suffix}"])
    tolerance = 1e-6 if suffix == ".png" else 0.02  # JPEG blocks fall differently on a rotated picture
    for orientation in STORED:
        np.testing.assert_allclose(got[f"o{orientation}{suffix}"], reference, atol=tolerance, err_msg=f"{orientation}")
        assert np.abs(np.array(got[f"raw{orientation}{suffix}"]) - reference).max() > tolerance, orientation


# --- special files among the images ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["FIFO", "character device", "symlink to a FIFO"])
def test_a_special_file_among_the_images_is_skipped_and_the_rest_predicted(
    model: Path, tmp_path: Path, kind: str
) -> None:
    good = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in good:
        Image.fromarray(glyph()).save(path)
    if kind == "character device":
        special = Path("/dev/zero")
    else:
        os.mkfifo(tmp_path / "pipe.png")
        special = tmp_path / "pipe.png"
        if kind.startswith("symlink"):
            (tmp_path / "link.png").symlink_to(special)
            special = tmp_path / "link.png"
    result = mlplab("predict", str(model), str(good[0]), str(special), str(good[1]), isolate=True, timeout=30)
    shown = "FIFO" if "FIFO" in kind else kind
    result.refused(str(special), f"not a regular file (a {shown})")
    lines = result.out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(good[0]), str(good[1])], result.out
