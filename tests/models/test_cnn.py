"""CNN: gradients against finite differences, shapes and errors, configs, model files, and learning on digits."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab import config as configs
from mlplab import data, gradcheck
from mlplab.cli import main
from mlplab.errors import ConfigError, MlplabError
from mlplab.layers.conv2d import Conv2D
from mlplab.layers.max_pool import MaxPool2D
from mlplab.models import CNN, Model
from mlplab.run import train_run
from mlplab.training import batches


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


@pytest.fixture(scope="module")
def batch(digits: data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    x, y = next(batches(digits.train, 12, digits.pixel_max, "float64"))
    return x.copy(), y.copy()


@pytest.mark.parametrize(
    ("padding", "kernel", "pool", "activation"),
    [("circular", 3, 2, "sigmoid"), ("same", 3, 2, "tanh"), ("valid", 2, 1, "softsign"), ("circular", 5, 1, "sigmoid")],
)
def test_gradients_match_finite_differences(batch, padding: str, kernel: int, pool: int, activation: str) -> None:
    x, y = batch
    model = CNN(64, (8, 8), 10, [3, 4], kernel, padding, pool, [6], activation, dtype="float64")
    results = gradcheck.check_gradients(gradcheck.move_to_random_point(model), x, y, reg=0.01)
    assert [r.name for r in results] == [f"{p}{i}" for i in range(1, 5) for p in "Wb"]
    assert max(r.worst_relative_error for r in results) < 1e-6


def test_layers_and_parameter_shapes() -> None:
    model = CNN(784, (28, 28), 10, [8, 16], 5, "valid", 2, [32])
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    assert [c.geometry.out_height for c in convs] == [24, 8]
    assert sum(isinstance(layer, MaxPool2D) for layer in model.layers) == 2
    assert model.params["W1"].shape == (25, 8) and model.params["W2"].shape == (25 * 8, 16)
    assert model.params["W3"].shape == (4 * 4 * 16, 32) and model.params["W4"].shape == (32, 10)
    assert model.weight_names == ("W1", "W2", "W3", "W4")
    assert np.std(model.params["W2"]) == pytest.approx(np.sqrt(2 / 200), rel=0.1)  # He init over a receptive field
    scores = model.scores(np.zeros((3, 784), np.float32))
    assert scores.shape == (3, 10) and scores.dtype == np.float32


def test_circular_and_same_padding_keep_the_image_size() -> None:
    for padding in ("same", "circular"):
        model = CNN(64, (8, 8), 10, [2, 2], 3, padding, 2, [4])
        assert [layer.geometry.out_height for layer in model.layers if isinstance(layer, Conv2D)] == [8, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conv_padding": "reflect"}, "unknown conv_padding"),
        ({"kernel_size": 9}, "does not fit"),
        ({"conv_channels": [2, 2, 2], "pool": 2}, "smaller than the 2×2 pooling window"),
        ({"image_shape": (7, 9)}, "does not hold 64 inputs"),
        ({"activation": "gelu"}, "unknown activation"),
    ],
)
def test_bad_shapes_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(MlplabError, match=message):
        CNN(**{"input_size": 64, "image_shape": (8, 8), "conv_channels": [2], "kernel_size": 3, **kwargs})


def test_config_keys_are_checked() -> None:
    config = configs.resolve(None, ["type=cnn", "conv_channels=[4, 8]", "kernel_size=3", "conv_padding=circular"])
    assert config["type"] == "CNN" and config["conv_channels"] == [4, 8] and config["pool"] == 2
    with pytest.raises(ConfigError, match="conv_padding"):
        configs.resolve(None, ["conv_padding=mirror"])
    with pytest.raises(ConfigError, match="conv_channels"):
        configs.resolve(None, ["conv_channels=[0]"])


def test_trains_on_digits_and_round_trips_through_a_model_file(tmp_path, digits, capsys) -> None:
    config = configs.resolve(
        None,
        [
            "type=CNN",
            "conv_channels=[8]",
            "kernel_size=3",
            "conv_padding=same",
            "hidden_sizes=[32]",
            "optimizer=adam",
            "learning_rate=0.003",
            "epochs=10",
            "shift=1",
            "threads=1",
        ],
    )
    metrics, model = train_run(config, tmp_path, dataset=digits)
    assert metrics["best_val_acc"] > 0.9 and metrics["test_acc"] > 0.9
    again, _ = train_run(config, None, dataset=digits)
    assert again["val_acc"] == metrics["val_acc"]  # same seed, same numbers
    loaded, meta = Model.load(tmp_path / "model.npz")
    assert isinstance(loaded, CNN) and meta["best_epoch"] == metrics["best_epoch"]
    x = digits.test.x[:50].astype(np.float32) / np.float32(digits.pixel_max)
    np.testing.assert_array_equal(loaded.scores(x), model.scores(x))
    assert main(["evaluate", str(tmp_path / "model.npz")]) == 0  # its input size is the image's, not W1's rows
    assert f"acc {metrics['test_acc']:.4f}" in capsys.readouterr().out


def test_standardization_cannot_be_folded_into_a_convolution(digits) -> None:
    config = configs.resolve(None, ["type=CNN", "conv_channels=[2]", "kernel_size=3", "normalize=standardize"])
    with pytest.raises(MlplabError, match="normalize: none"):
        train_run(config, None, dataset=digits)
