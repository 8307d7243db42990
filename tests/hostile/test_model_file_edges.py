"""Model files with edge values — metadata (pixel scale 0, negative, NaN, ∞, `meta` null or not a mapping),
parameters or buffers that are not finite, a negative BatchNorm variance, parameters so large the scores
overflow: `evaluate`, `predict` and `export` each refuse with one line naming the file, and print no result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplab.models.base import build_model
from tests.hostile.harness import IN_PROCESS, Result, mlplab

MLP = {"input_size": 64, "hidden_sizes": [4]}
CNN = {"input_size": 64, "conv_channels": [2], "kernel_size": 3, "pool": 2, "hidden_sizes": [4], "batch_norm": True}
GOOD_META = {"dataset": "digits", "data_dir": None, "pixel_max": 16.0, "best_epoch": 1}


@pytest.fixture(autouse=True)
def in_process() -> Iterator[None]:
    IN_PROCESS["on"] = True
    yield
    IN_PROCESS["on"] = False


def model_file(path: Path, kind: str = "MLP", meta: Any = GOOD_META, **arrays: np.ndarray) -> Path:
    """A model file as `save` writes it, with `meta` as given and some arrays replaced."""
    model = build_model(kind, **(MLP if kind == "MLP" else CNN))
    archive = model.archive()
    header = json.loads(str(archive["__header__"]))
    header["meta"] = meta
    archive["__header__"] = np.array(json.dumps(header))  # json writes NaN and Infinity as Python reads them
    for name, value in arrays.items():
        key = f"param/{name}" if f"param/{name}" in archive else f"buffer/{name}"
        archive[key] = np.broadcast_to(np.asarray(value, archive[key].dtype), archive[key].shape).copy()
    np.savez(path, **archive)
    return path


def digit_png(path: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("L", (40, 40), 255)
    ImageDraw.Draw(image).line([(20, 5), (20, 35)], fill=0, width=4)
    image.save(path)
    return path


def every_command_refuses(tmp: Path, model: Path, *needles: str) -> None:
    """evaluate, predict (plain and --json) and export: exit 2, one line naming the file, no result printed."""
    image = digit_png(tmp / "one.png")
    onnx = tmp / "m.onnx"
    runs: list[Result] = [
        mlplab("evaluate", str(model)),
        mlplab("predict", str(model), str(image)),
        mlplab("predict", "--json", str(model), str(image)),
        mlplab("export", str(model), str(onnx)),
    ]
    for result in runs:
        result.refused(str(model), *needles)
        assert result.out == "", result.out
    assert not onnx.exists()


BAD_META: dict[str, tuple[Any, str]] = {
    "pixel_max 0": ({**GOOD_META, "pixel_max": 0}, "pixel_max is 0"),
    "pixel_max -255": ({**GOOD_META, "pixel_max": -255.0}, "pixel_max is -255.0"),
    "pixel_max NaN": ({**GOOD_META, "pixel_max": float("nan")}, "pixel_max is nan"),
    "pixel_max inf": ({**GOOD_META, "pixel_max": float("inf")}, "pixel_max is inf"),
    "pixel_max text": ({**GOOD_META, "pixel_max": "255"}, "pixel_max is '255'"),
    "pixel_max true": ({**GOOD_META, "pixel_max": True}, "pixel_max is True"),
    "meta null": (None, "meta is None"),
    "meta a list": ([1, 2], "meta is [1, 2]"),
    "meta a string": ("digits", "meta is 'digits'"),
    "dataset a number": ({**GOOD_META, "dataset": 5}, "dataset is 5"),
    "best_epoch -1": ({**GOOD_META, "best_epoch": -1}, "best_epoch is -1"),
}


@pytest.mark.parametrize("name", list(BAD_META))
def test_edge_metadata_is_refused_by_every_command(name: str, tmp_path: Path) -> None:
    meta, needle = BAD_META[name]
    every_command_refuses(tmp_path, model_file(tmp_path / "m.npz", meta=meta), needle)


NOT_FINITE: dict[str, tuple[str, dict[str, float], str]] = {
    "a NaN weight": ("MLP", {"W1": np.nan}, "parameter W1 holds 256 value(s) that are not finite"),
    "an infinite bias": ("MLP", {"b2": -np.inf}, "parameter b2 holds 10 value(s) that are not finite"),
    "an infinite BatchNorm gamma": ("CNN", {"gamma2": np.inf}, "parameter gamma2 holds 2 value(s)"),
    "a NaN running mean": ("CNN", {"running_mean2": np.nan}, "buffer running_mean2 holds 2 value(s)"),
    "a negative running variance": ("CNN", {"running_var2": -1.0}, "buffer running_var2 holds a negative variance"),
}


@pytest.mark.parametrize("name", list(NOT_FINITE))
def test_parameters_or_buffers_not_finite_are_refused(name: str, tmp_path: Path) -> None:
    kind, arrays, needle = NOT_FINITE[name]
    every_command_refuses(tmp_path, model_file(tmp_path / "m.npz", kind, **arrays), needle)


def test_finite_parameters_whose_scores_overflow_give_no_result(tmp_path: Path) -> None:
    """Every weight 10³⁰: finite, loadable and exportable, but its float32 scores are ±inf — evaluate and predict
    refuse rather than print a NaN loss or a "nan%" probability."""
    model = model_file(tmp_path / "m.npz", W1=1e30, W2=1e30)
    image = digit_png(tmp_path / "one.png")
    for result in (mlplab("evaluate", str(model)), mlplab("predict", "--json", str(model), str(image))):
        result.refused("overflow float32")
        assert "nan" not in result.out.lower() and result.out == ""


def test_a_good_model_file_still_works(tmp_path: Path) -> None:
    """The checks refuse only the edge values: the same file with ordinary values evaluates, predicts, exports."""
    model = model_file(tmp_path / "m.npz")
    image = digit_png(tmp_path / "one.png")
    assert mlplab("evaluate", str(model)).code == 0
    predicted = mlplab("predict", "--json", str(model), str(image))
    assert predicted.code == 0 and len(json.loads(predicted.out)) == 1
    assert mlplab("export", str(model), str(tmp_path / "m.onnx")).code == 0
    legacy = model_file(tmp_path / "old.npz", meta={})  # a file from before meta held anything: defaults apply
    assert mlplab("evaluate", str(legacy)).code == 0
