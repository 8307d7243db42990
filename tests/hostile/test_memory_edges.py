"""Memory checked before it is spent, for every model type and every array sized from input: a CNN whose kernel
makes its im2col rows enormous, in `train` and in a model file given to `evaluate`/`predict`; IDX images of 0×0
pixels; a dataset whose float copies exceed the memory. Run under an address-space limit, so "more than this
machine's memory" does not depend on the machine."""

from __future__ import annotations

import gzip
import json
import resource
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlplab.limits import EVAL_BATCH, cnn_footprint, dense_footprint
from mlplab.models.base import build_model
from tests.hostile.harness import FAST, idx_bytes, idx_dataset, mlplab, model_file

LIMIT = 3 << 30  # 3 GiB of address space: Python, NumPy and numba start in well under that


def address_space(limit: int = LIMIT) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def bounded(*args: str) -> str:
    """`mlplab args` under the address-space limit: refused with one line, no traceback, peak RSS under 400 MB."""
    result = mlplab(*args, limits=address_space(), isolate=True, timeout=120)
    outcome = result.refused("more than this machine's 3.0 GB")
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
    assert "train loss" not in result.out  # refused before training
    return outcome


BIG_KERNEL = {"kernel_size": 27, "conv_padding": "same", "conv_channels": [32, 64]}


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        BIG_KERNEL,
        {"kernel_size": 9, "conv_channels": [2048]},  # wide, not deep: many filters per output pixel
        {"kernel_size": 3, "conv_padding": "same", "pool": 1, "conv_channels": [64] * 3, "batch_size": 4096},
    ],
    ids=["27×27 kernel", "2048 filters", "no pooling, batch 4096"],
)
def test_train_refuses_a_cnn_too_big_for_memory(tmp_path: Path, settings: dict) -> None:
    data = idx_dataset(tmp_path / "mnist", 20)
    sets = [f"{key}={json.dumps(value)}" for key, value in {"type": "CNN", **settings}.items()]
    bounded(
        "train", *FAST, *(a for s in sets for a in ("--set", s)), "--data-dir", str(data), "--out", str(tmp_path / "o")
    )
    assert not (tmp_path / "o" / "model.npz").exists()


def cnn_model_file(path: Path, **hyper: object) -> Path:
    """A model file whose header describes a CNN (its parameters are never reached: the header is refused)."""
    header = {"format": 1, "model": "CNN", "meta": {"dataset": "mnist", "pixel_max": 255.0},
              "hyper": {"input_size": 784, "image_shape": [28, 28], **hyper}}  # fmt: skip
    return model_file(path, header, W1=np.zeros((4, 4), "f4"))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_a_model_file_describing_a_cnn_too_big_is_refused(tmp_path: Path, command: str) -> None:
    model = cnn_model_file(tmp_path / "m.npz", **BIG_KERNEL)
    extra = {"evaluate": [], "predict": [str(tmp_path / "x.png")], "export": [str(tmp_path / "m.onnx")]}[command]
    bounded(command, str(model), *extra)


def test_the_footprint_follows_the_real_layers(tmp_path: Path) -> None:
    """The estimate counts exactly the parameters the model builds, and at least (at most 1.6×) the scratch arrays
    a real evaluation batch and a real training step allocate."""
    for hyper in [
        {"input_size": 784},
        {"input_size": 784, "kernel_size": 3, "conv_padding": "same", "batch_norm": True, "conv_channels": [8, 16]},
        {"input_size": 784, "kernel_size": 27, "conv_padding": "same", "conv_channels": [4, 8]},
        {"input_size": 64, "kernel_size": 3, "pool": 1, "conv_channels": [4], "conv_padding": "circular"},
    ]:
        for phase in ("evaluation", "training"):
            model, n = build_model("CNN", **hyper), 20
            x = np.random.default_rng(0).random((n, hyper["input_size"]), np.float32)
            if phase == "evaluation":
                model.scores(x)
            else:
                model.train_batch(x, np.zeros(n, np.int64))
            allocated = sum(b.size for layer in model.layers for b in layer._scratch.values()) / n
            sized = cnn_footprint(model.hyper)
            assert sized is not None
            footprint = sized[0]
            assert footprint.parameters == sum(p.size for p in model.params.values())
            estimate = footprint.per_sample_evaluation if phase == "evaluation" else footprint.per_sample_training
            assert allocated <= estimate <= 1.6 * allocated, (hyper, phase, allocated, estimate)
    dense = build_model("MLP", input_size=784, hidden_sizes=[100, 50])
    assert dense_footprint([784, 100, 50, 10]).parameters == sum(p.size for p in dense.params.values())
    assert EVAL_BATCH == 2000


@pytest.mark.parametrize("shape", [(10, 0, 0), (10, 28, 0), (10, 0)])
def test_idx_images_of_no_pixels_are_refused(tmp_path: Path, shape: tuple[int, ...]) -> None:
    data = idx_dataset(tmp_path / "mnist", 10, images=idx_bytes(np.zeros(shape)))
    pixels = "×".join(map(str, shape[1:]))
    result = mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp_path / "o"), timeout=60)
    result.refused("train-images-idx3-ubyte", f"images of {pixels} pixels")


@pytest.mark.slow
def test_a_dataset_whose_float_copies_exceed_memory_is_refused(tmp_path: Path) -> None:
    """640,000 28×28 images: 500 MB of uint8 (a 500 KB gzip file), 4 GB as the float copies training reads."""
    n = 640_000
    data = tmp_path / "mnist"
    data.mkdir()
    chunk = bytes(28 * 28 * 10_000)
    with gzip.open(data / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as out:
        out.write(bytes([0, 0, 8, 3]) + np.asarray([n, 28, 28], ">u4").tobytes())
        for _ in range(n // 10_000):
            out.write(chunk)
    (data / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(n))))
    (data / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((5, 28, 28))))
    (data / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5)))
    result = mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp_path / "o"),
                    limits=address_space(), isolate=True, timeout=120)  # fmt: skip
    result.refused(
        "501,763,920 pixels as the float copies training reads take about 3.7 GB", "more than this machine's 3.0 GB"
    )
    assert result.peak_mb < 1200, f"peak RSS {result.peak_mb:.0f} MB"  # the uint8 images, read once
