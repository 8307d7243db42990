"""BatchNorm: the formula, PyTorch's layer, finite differences, the CNN option, model files and configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlplab import config as configs
from mlplab import data, gradcheck
from mlplab.cli import main
from mlplab.convolution import ConvGeometry
from mlplab.errors import ConfigError, MlplabError
from mlplab.layers import BatchNorm, Conv2D, Dense, Flatten, Network
from mlplab.models import CNN, Model
from mlplab.optim import Adam
from mlplab.run import train_run

EPS = 1e-5


def reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode output, batch mean and biased variance, in float64 straight from the paper's formula."""
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    return gamma * (x - mean) / np.sqrt(var + EPS) + beta, mean, var


def random_layer(
    features: int, rng: np.random.Generator, dtype: str = "float64", kind: type[BatchNorm] = BatchNorm
) -> BatchNorm:
    layer = kind(features, dtype=dtype)
    layer.gamma[...] = rng.normal(1.0, 0.5, features)
    layer.beta[...] = rng.normal(0.0, 0.5, features)
    return layer


@pytest.mark.parametrize("shape", [(6, 4, 5, 3), (7, 4)])
def test_forward_is_the_formula_in_training_and_running_statistics_in_evaluation(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    layer = random_layer(shape[-1], rng)
    assert layer.params.keys() == {"gamma", "beta"} and layer.weight_names == ()
    m = int(np.prod(shape[:-1]))
    running_mean, running_var = np.zeros(shape[-1]), np.ones(shape[-1])
    for step in range(3):
        x = rng.normal(2.0 * step, 1.0 + step, shape)
        x_before = x.copy()
        expected, mean, var = reference(x, layer.gamma, layer.beta)
        np.testing.assert_allclose(layer.forward(x, train=True), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(x, x_before)  # the input is never modified
        running_mean = 0.9 * running_mean + 0.1 * mean
        running_var = 0.9 * running_var + 0.1 * var * m / (m - 1)  # unbiased, as PyTorch
        np.testing.assert_allclose(layer.running_mean, running_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, running_var, rtol=1e-12)
    x = rng.normal(size=shape)
    expected = layer.gamma * (x - running_mean) / np.sqrt(running_var + EPS) + layer.beta
    np.testing.assert_allclose(layer.forward(x, train=False), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.running_mean, running_mean, rtol=1e-12)  # evaluation leaves them alone


@pytest.mark.parametrize("shape", [(8, 5, 6, 4), (9, 4)])
def test_matches_torch_batch_norm_in_training_evaluation_and_backward(shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    layer = random_layer(shape[-1], rng)
    theirs = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(shape[-1], eps=EPS, momentum=0.1)
    theirs = theirs.double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(layer.gamma))
        theirs.bias.copy_(torch.from_numpy(layer.beta))

    def nchw(a: np.ndarray) -> torch.Tensor:  # NHWC → NCHW (rows stay rows)
        return torch.from_numpy(np.moveaxis(a, -1, 1).copy() if a.ndim == 4 else a.copy())

    theirs.train()
    for step in range(4):
        x = rng.normal(step, 1.0 + step, shape)
        dy = rng.normal(size=shape)
        xt = nchw(x).requires_grad_(True)
        yt = theirs(xt)
        yt.backward(nchw(dy))
        ours = layer.forward(x, train=True)
        np.testing.assert_allclose(nchw(ours).numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        dx = layer.backward(dy)
        assert dx is not None
        np.testing.assert_allclose(nchw(dx).numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(layer.grads["gamma"], theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(layer.grads["beta"], theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-10)
        theirs.zero_grad()
        np.testing.assert_allclose(layer.running_mean, theirs.running_mean.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.running_var, theirs.running_var.numpy(), rtol=1e-12)
    theirs.eval()
    x = rng.normal(size=shape)
    with torch.no_grad():
        expected = theirs(nchw(x)).numpy()
    np.testing.assert_allclose(nchw(layer.forward(x, train=False)).numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(4, 3, 3, 2), (5, 3)])
def test_gradients_match_finite_differences(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(2)
    layer = random_layer(shape[-1], rng)
    x, w = rng.normal(size=shape), rng.normal(size=shape)

    def loss() -> float:  # a scalar of the whole batch: each output depends on every input through μ and σ²
        return float(np.sum(layer.forward(x, train=True) * w))

    layer.forward(x, train=True)
    dx = layer.backward(w)  # d(Σ y·w)/dy = w
    assert dx is not None
    analytic = {"x": dx.copy(), "gamma": layer.grads["gamma"].copy(), "beta": layer.grads["beta"].copy()}
    for name, array in (("x", x), ("gamma", layer.gamma), ("beta", layer.beta)):
        numeric = np.empty(array.shape)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + 1e-6
            plus = loss()
            array[index] = saved - 1e-6
            minus = loss()
            array[index] = saved
            numeric[index] = (plus - minus) / 2e-6
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    assert layer.backward(w, need_dx=False) is None


def test_float32_layer_computes_in_float32_close_to_float64() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(3.0, 2.0, (16, 6, 6, 5))
    wide, narrow = random_layer(5, np.random.default_rng(4)), random_layer(5, np.random.default_rng(4), "float32")
    y32 = narrow.forward(x.astype(np.float32), train=True)
    assert y32.dtype == np.float32 and narrow.running_var.dtype == np.float32
    np.testing.assert_allclose(y32, wide.forward(x, train=True), rtol=1e-4, atol=1e-4)
    dy = rng.normal(size=x.shape)
    dx32 = narrow.backward(dy.astype(np.float32))
    assert dx32 is not None and dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, wide.backward(dy), rtol=1e-3, atol=1e-4)


def test_bad_inputs_are_clear_errors() -> None:
    layer = BatchNorm(3)
    with pytest.raises(MlplabError, match="takes"):
        layer.output_shape((4, 4, 2))
    with pytest.raises(MlplabError, match="more than one value"):
        layer.forward(np.zeros((1, 3), np.float32), train=True)
    assert layer.forward(np.zeros((1, 3), np.float32), train=False).shape == (1, 3)  # evaluation takes one sample
    with pytest.raises(RuntimeError, match="before a training forward"):
        layer.backward(np.zeros((1, 3), np.float32))
    with pytest.raises(MlplabError, match="≥ 1 features"):
        BatchNorm(0)


def test_running_statistics_are_buffers_not_parameters() -> None:
    model = CNN(64, (8, 8), 10, [3, 4], 3, "same", 2, [6], batch_norm=True)
    assert list(model.params) == ["W1", "gamma2", "beta2", "W3", "gamma4", "beta4", "W5", "b5", "W6", "b6"]
    assert list(model.buffers) == ["running_mean2", "running_var2", "running_mean4", "running_var4"]
    assert model.weight_names == ("W1", "W3", "W5", "W6")  # no L2 or weight decay on gamma, beta
    assert [type(layer).__name__ for layer in model.layers[:4]] == ["Conv2D", "BatchNorm", "MaxPool2D", "ReLU"]
    assert all(layer.b is None for layer in model.layers if isinstance(layer, Conv2D))  # β takes the bias's place
    optimizer = Adam(0.01)
    x = np.random.default_rng(0).random((5, 64), np.float32)
    model.train_batch(x, np.arange(5))
    optimizer.step(model)
    assert set(optimizer.state) == set(model.params)  # the optimizer never sees the running statistics
    state = model.state()
    assert set(state) == set(model.params) | set(model.buffers)
    assert not np.array_equal(state["running_mean2"], np.zeros(3))  # one training pass moved them
    model.buffers["running_var2"][...] = 7.0
    model.load_state(state)
    np.testing.assert_array_equal(model.buffers["running_var2"], state["running_var2"])


def test_without_batch_norm_the_cnn_is_unchanged() -> None:
    plain, default = CNN(64, (8, 8), 10, [3], 3), CNN(64, (8, 8), 10, [3], 3, batch_norm=False)
    assert list(default.params) == ["W1", "b1", "W2", "b2", "W3", "b3"] and not default.buffers
    for name, p in plain.params.items():
        np.testing.assert_array_equal(default.params[name], p)
    with_bn = CNN(64, (8, 8), 10, [3], 3, batch_norm=True)
    np.testing.assert_array_equal(with_bn.params["W1"], plain.params["W1"])  # the same draws for the weights
    with pytest.raises(MlplabError, match="batch_norm must be true or false"):
        CNN(64, (8, 8), 10, [3], 3, batch_norm="yes")  # type: ignore[arg-type]


def test_cnn_gradients_match_finite_differences_in_training_mode() -> None:
    ds = data.load("digits")
    x = ds.train.x[:10].astype(np.float64) / ds.pixel_max
    y = ds.train.y[:10]
    model = gradcheck.move_to_random_point(
        CNN(64, (8, 8), 10, [3, 4], 3, "circular", 2, [6], "tanh", batch_norm=True, dtype="float64")
    )
    before = {name: b.copy() for name, b in model.buffers.items()}
    results = gradcheck.check_gradients(model, x, y, reg=0.01)
    assert {r.name for r in results} == set(model.params)
    assert max(r.worst_relative_error for r in results) < 1e-6
    for name, b in model.buffers.items():  # the check's forward passes leave the running statistics as they were
        np.testing.assert_array_equal(b, before[name])


class DropsTheNormalizationTerm(BatchNorm):
    """A plausible mistake: dx = γ/√(σ²+ε)·(dy − mean(dy)), forgetting that σ² depends on x too."""

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        super().backward(dy, False)
        rows = dy.reshape(-1, self.features)
        return (self.gamma * self.inv_std * (rows - rows.mean(axis=0))).reshape(dy.shape)


@pytest.mark.parametrize(("norm", "fails"), [(BatchNorm, False), (DropsTheNormalizationTerm, True)])
def test_gradient_check_catches_a_wrong_batch_norm_backward(norm: type[BatchNorm], fails: bool) -> None:
    rng = np.random.default_rng(5)
    conv = Conv2D(ConvGeometry(5, 5, 2, 3, 1, 1), 3, rng, "float64", bias=False)
    layers = [conv, random_layer(3, rng, kind=norm), Flatten("float64"), Dense(75, 4, rng, dtype="float64")]
    net = Network(layers, (5, 5, 2), "float64")
    x, y = rng.normal(size=(6, 5, 5, 2)), rng.integers(0, 4, 6)
    results = {r.name: r.worst_relative_error for r in gradcheck.check_gradients(net, x, y)}
    assert (results["W1"] > 1e-2) is fails  # only the convolution below sees the wrong dx
    assert results["gamma2"] < 1e-6 and results["beta2"] < 1e-6


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


def test_a_cnn_with_batch_norm_learns_digits_and_round_trips_through_a_model_file(
    tmp_path: Path, digits: data.Dataset
) -> None:
    settings = ["type=CNN", "conv_channels=[6]", "kernel_size=3", "conv_padding=same", "hidden_sizes=[16]",
                "batch_norm=true", "optimizer=adam", "learning_rate=0.01", "epochs=3", "threads=1"]  # fmt: skip
    metrics, model = train_run(configs.resolve(None, settings), tmp_path, dataset=digits)
    assert any(isinstance(layer, BatchNorm) for layer in model.layers)
    assert metrics["val_acc"][-1] > 0.6 and metrics["test_acc"] > 0.6  # chance is 0.1
    loaded, _ = Model.load(tmp_path / "model.npz")
    assert isinstance(loaded, CNN) and loaded.hyper == model.hyper and loaded.hyper["batch_norm"] is True
    for name, b in model.buffers.items():
        np.testing.assert_array_equal(loaded.buffers[name], b)
    assert not np.allclose(model.buffers["running_var2"], 1.0)  # trained statistics, not the initial ones
    x = digits.test.x[:64].astype(np.float32) / np.float32(digits.pixel_max)
    np.testing.assert_array_equal(loaded.scores(x), model.scores(x))
    # Evaluation uses no batch statistics: a sample scores the same alone (up to BLAS rounding by shape).
    np.testing.assert_allclose(loaded.scores(x[:1]), model.scores(x)[:1], rtol=1e-5, atol=1e-5)
    with np.load(tmp_path / "model.npz") as archive:
        members = {k: archive[k] for k in archive.files}
    del members["buffer/running_var2"]
    np.savez(tmp_path / "stripped.npz", **members)
    with pytest.raises(MlplabError, match=r"buffers \['running_mean2'\] do not match CNN"):
        Model.load(tmp_path / "stripped.npz")


def test_model_files_written_before_batch_norm_still_load(tmp_path: Path) -> None:
    model = CNN(64, (8, 8), 10, [3], 3, "same", 2, [6])
    hyper = {k: v for k, v in model.hyper.items() if k != "batch_norm"}  # the header of an older mlplab's file
    header = {"format": 1, "model": "CNN", "hyper": hyper, "meta": {}}
    params = {f"param/{name}": p for name, p in model.params.items()}
    np.savez(tmp_path / "old.npz", __header__=np.array(json.dumps(header)), **params)
    loaded, _ = Model.load(tmp_path / "old.npz")
    assert not loaded.buffers and loaded.hyper == model.hyper
    x = np.random.default_rng(0).random((4, 64), np.float32)
    np.testing.assert_array_equal(loaded.scores(x), model.scores(x))
    model.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as archive:  # no BatchNorm, no buffer members: the file is as before
        assert sorted(archive.files) == sorted(["__header__", *params])


def test_the_config_key_is_a_bool_passed_to_the_cnn(digits: data.Dataset) -> None:
    assert configs.resolve(None, [])["batch_norm"] is False
    assert configs.resolve(None, ["batch_norm=true"])["batch_norm"] is True
    for bad in ("1", "0", "'true'", "[true]"):
        with pytest.raises(ConfigError, match="batch_norm"):
            configs.resolve(None, [f"batch_norm={bad}"])
    config = configs.resolve(None, ["type=CNN", "conv_channels=[2]", "kernel_size=3", "batch_norm=true"])
    from mlplab.run import make_model

    assert sum(isinstance(layer, BatchNorm) for layer in make_model(config, digits).layers) == 1
    assert "batch_norm" not in configs.applicable({**config, "type": "MLP"})  # not an MLP's key


def test_gradcheck_command_checks_batch_norm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--model", "cnn", "--batch-norm", "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "BatchNorm in training mode" in out and "gamma2" in out and "FAIL" not in out
    assert main(["gradcheck", "--model", "mlp", "--batch-norm"]) == 2
    assert "--batch-norm goes with --model cnn" in capsys.readouterr().err


def test_sweep_workers_send_back_the_running_statistics(tmp_path: Path) -> None:
    from mlplab.experiments.executors import train_in_worker
    from mlplab.experiments.store import RunStore

    settings = ["type=CNN", "conv_channels=[3]", "kernel_size=3", "hidden_sizes=[8]", "batch_norm=true",
                "epochs=1", "threads=1", "dataset=digits"]  # fmt: skip
    outcome = train_in_worker(configs.resolve(None, settings))
    assert {"gamma2", "running_mean2", "running_var2"} <= set(outcome.state)
    RunStore(tmp_path).save("run", outcome)
    loaded, _ = Model.load(tmp_path / "run" / "model.npz")
    np.testing.assert_array_equal(loaded.buffers["running_var2"], outcome.state["running_var2"])
