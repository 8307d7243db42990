"""mlplab predict: images of any size and colour prepared like the training images, and predicted as well."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlplab import config, data
from mlplab.cli import main
from mlplab.models import Model
from mlplab.predict import DIGITS_FORM, MNIST_FORM, ink, prepare
from mlplab.run import train_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's digits quick-start model (a second of training)."""
    out = tmp_path_factory.mktemp("digits")
    train_run(config.resolve(str(ROOT / "configs/digits.yaml"), ["threads=1"]), out)
    return out / "model.npz"


def paper_photo(pixels: np.ndarray, path: Path, size: int, offset: tuple[int, int], scale: float) -> Path:
    """A dataset image as a large RGB picture: dark ink on off-white paper, off-centre, smoothly upscaled."""
    side = pixels.shape[0]
    ink_level = pixels.astype(np.float64) / scale
    big = Image.fromarray((240 - 200 * ink_level).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (size + 120, size + 80), 240)
    canvas.paste(big, offset)
    rgb = Image.merge("RGB", (canvas, canvas, canvas.point(lambda v: int(v * 0.9))))
    assert side in (8, 28)
    rgb.save(path)
    return path


def test_digits_photos_are_prepared_into_the_8x8_form_and_mostly_predicted_right(
    digits_model: Path, tmp_path: Path
) -> None:
    model, _ = Model.load(digits_model)
    test = data.load("digits").test
    x, y = test.x[:80], test.y[:80]
    suffixes = (".png", ".jpg", ".bmp")
    rows = [
        prepare(paper_photo(img.reshape(8, 8), tmp_path / f"{i}{suffixes[i % 3]}", 120, (20 + i, 30), 16), DIGITS_FORM)
        for i, img in enumerate(x)
    ]
    prepared = np.stack(rows)
    assert prepared.shape == (80, 64) and prepared.min() >= 0 and prepared.max() <= 16
    original_acc = np.mean(model.predict_proba(x, 16).argmax(1) == y)
    photo_acc = np.mean(model.predict_proba(prepared, 16).argmax(1) == y)
    assert original_acc >= 0.9
    assert photo_acc >= original_acc - 0.15  # 8×8 → photo → 8×8 loses detail, not the digit


@pytest.mark.mnist
def test_mnist_photos_come_back_close_to_the_original_28x28_images(mnist_dir: Path, tmp_path: Path) -> None:
    test = data.load("mnist", mnist_dir).test
    correlations = []
    for i, img in enumerate(test.x[:60]):
        path = paper_photo(img.reshape(28, 28), tmp_path / f"{i}.jpg", 140, (15 + 2 * i, 25), 255)
        prepared = prepare(path, MNIST_FORM)
        assert prepared.shape == (784,) and prepared.min() >= 0 and prepared.max() <= 255
        correlations.append(np.corrcoef(prepared, img.astype(np.float64))[0, 1])
    # Same size, same place (centre of mass at pixel 14, 14), same grey edges: pixel for pixel alike.
    assert np.median(correlations) > 0.9
    assert np.mean(correlations) > 0.85


def test_light_ink_on_dark_paper_prepares_like_dark_ink_on_light_paper(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    strokes = np.zeros((60, 40))
    strokes[10:50, 18:23] = 1.0  # a "1"
    strokes[10:15, 12:23] = 1.0
    noisy = np.clip(strokes + rng.normal(0, 0.03, strokes.shape), 0, 1)
    Image.fromarray(np.rint(30 + 200 * noisy).astype(np.uint8)).save(tmp_path / "dark.png")
    Image.fromarray(np.rint(230 - 200 * noisy).astype(np.uint8)).save(tmp_path / "light.png")
    dark, light = prepare(tmp_path / "dark.png"), prepare(tmp_path / "light.png")
    np.testing.assert_allclose(dark, light, atol=1e-6)
    image = dark.reshape(28, 28)
    rows = np.flatnonzero(image.any(axis=1))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side is 20 px
    total = image.sum()
    assert abs((image.sum(axis=1) @ np.arange(28)) / total - 14) <= 0.5
    assert abs((image.sum(axis=0) @ np.arange(28)) / total - 14) <= 0.5


def test_flat_paper_has_no_digit() -> None:
    with pytest.raises(Exception, match="no digit found"):
        ink(np.full((30, 30), 0.8))


def test_cli_prints_one_line_per_image_and_json_probabilities(
    digits_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = data.load("digits").test
    images = [str(paper_photo(test.x[i].reshape(8, 8), tmp_path / f"{i}.png", 100, (30, 30), 16)) for i in range(3)]
    assert main(["predict", str(digits_model), *images]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line, image in zip(lines, images, strict=True):
        assert line.startswith(f"{image}: ") and "%), then " in line

    assert main(["predict", str(digits_model), *images, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == images
    for result in results:
        assert len(result["probabilities"]) == 10
        assert sum(result["probabilities"]) == pytest.approx(1.0, abs=1e-9)
        assert result["label"] == int(np.argmax(result["probabilities"]))


def test_bad_files_get_one_line_each_and_the_others_are_still_predicted(
    digits_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = paper_photo(data.load("digits").test.x[0].reshape(8, 8), tmp_path / "good.png", 100, (30, 30), 16)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (50, 50), (250, 250, 250)).save(blank)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:200])
    status = main(
        ["predict", str(digits_model), str(tmp_path / "missing.png"), str(text), str(good), str(blank), str(truncated)]
    )
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out.splitlines()[0].startswith(f"{good}: ")
    errors = captured.err.splitlines()
    assert len(errors) == 4
    assert errors[0] == f"mlplab predict: error: {tmp_path / 'missing.png'}: no such file"
    assert f"{text}: not an image" in errors[1]
    assert f"{blank}: no digit found" in errors[2]
    assert f"{truncated}: cannot read the image" in errors[3]
    assert "Traceback" not in captured.err
