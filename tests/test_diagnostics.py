"""Diagnostics: the statistics equal PyTorch hooks' for the same weights and batch, the probe changes nothing of
training, the same seed gives the same file, thresholds and formulas as documented, a broken file is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplab.data import Dataset, load
from mlplab.diagnostics import BINS, FILE_NAME, Diagnostics, Probe, histogram, mean_cosine_similarity, probe_pass
from mlplab.errors import MlplabError
from mlplab.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softsign, Tanh
from mlplab.models import CNN, MLP, Model
from mlplab.optim import SGD, Adam, Optimizer
from mlplab.run import train
from mlplab.training import History, fit


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load("digits")


def probe_of(dataset: Dataset, dtype: str = "float64", size: int = 256) -> Probe:
    return Probe.from_split(dataset.val, dataset.pixel_max, dtype, size)


def mlp(activation: str = "relu", dropout: float = 0.3, dtype: str = "float64") -> MLP:
    return MLP(64, [32, 16], 10, activation=activation, dropout=dropout, seed=3, dtype=dtype)


def cnn(dtype: str = "float64") -> CNN:
    return CNN(64, (8, 8, 1), 10, conv_channels=[4], kernel_size=3, hidden_sizes=[16], batch_norm=True, dtype=dtype)


# --- the same numbers as PyTorch's hooks -----------------------------------------------------------------------


def torch_mirror(model: Model, torch: Any) -> tuple[Any, dict[str, Any]]:
    """One torch module per mlplab layer, with the same weights, and where each mlplab parameter lives in it."""
    nn = torch.nn
    t = torch.from_numpy

    class NHWC(nn.Module):  # type: ignore[misc]
        """A torch image module applied to NHWC tensors, as mlplab's layers take them."""

        def __init__(self, inner: Any, shape: tuple[int, ...] | None = None) -> None:
            super().__init__()
            self.inner, self.shape = inner, shape

        def forward(self, x: Any) -> Any:
            if self.shape is not None:
                x = x.reshape(len(x), *self.shape)
            return self.inner(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    modules, where = [], {}
    names = dict(zip(map(id, model.layers), model.layer_names, strict=True))
    owners = {id(layer): [n for n, p in model.params.items() if any(p is q for q in layer.params.values())]
              for layer in model.layers}  # fmt: skip
    for index, layer in enumerate(model.layers):
        params = owners[id(layer)]
        if isinstance(layer, Dense):
            module = nn.Linear(*layer.W.shape, dtype=torch.float64)
            with torch.no_grad():
                module.weight.copy_(t(layer.W.T.copy()))
                module.bias.copy_(t(layer.params["b"]))
            where[params[0]], where[params[1]] = (module.weight, True), (module.bias, False)
        elif isinstance(layer, Conv2D):
            g = layer.geometry
            conv = nn.Conv2d(g.channels, layer.filters, g.kernel, bias=False, dtype=torch.float64)
            with torch.no_grad():
                conv.weight.copy_(t(layer.W.reshape(g.kernel, g.kernel, g.channels, -1).transpose(3, 2, 0, 1).copy()))
            module = NHWC(conv, (g.height, g.width, g.channels))
            where[params[0]] = (conv.weight, "conv")
        elif isinstance(layer, BatchNorm):
            norm = nn.BatchNorm2d(layer.features, eps=layer.eps, dtype=torch.float64)
            module = NHWC(norm)
            where[params[0]], where[params[1]] = (norm.weight, False), (norm.bias, False)
        elif isinstance(layer, MaxPool2D):
            module = NHWC(nn.MaxPool2d(layer.window))
        elif isinstance(layer, Flatten):
            module = nn.Flatten()
        elif isinstance(layer, Dropout):
            module = nn.Dropout(layer.p)
            module.eval()  # the probe drops nothing
        else:
            kinds = {ReLU: nn.ReLU, Sigmoid: nn.Sigmoid, Tanh: nn.Tanh, Softsign: nn.Softsign}
            module = kinds[type(layer)]()
        module.mlplab_name = names[id(layer)]
        modules.append(module)
        assert index == len(modules) - 1
    return nn.Sequential(*modules), where


def torch_probe(model: Model, probe: Probe) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Layer outputs and d loss / d output from forward and full backward hooks, and the parameter gradients."""
    torch = pytest.importorskip("torch")
    net, where = torch_mirror(model, torch)
    outputs: dict[str, np.ndarray] = {}
    output_grads: dict[str, np.ndarray] = {}
    for module in net:
        name = module.mlplab_name
        module.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.detach().numpy().copy()))
        module.register_full_backward_hook(
            lambda m, gi, go, name=name: output_grads.__setitem__(name, go[0].detach().numpy().copy())
        )
    x = torch.from_numpy(probe.x.copy()).requires_grad_(True)  # so the first module's backward hook fires too
    loss = torch.nn.functional.cross_entropy(net(x), torch.from_numpy(probe.y.astype(np.int64)))
    loss.backward()
    grads = {}
    for name, (param, kind) in where.items():
        g = param.grad.numpy()
        grads[name] = g.T if kind is True else g.transpose(2, 3, 1, 0).reshape(-1, g.shape[0]) if kind == "conv" else g
    return outputs, output_grads, {"grads": grads, "loss": float(loss.detach())}


def expected_layer(y: np.ndarray, dy: np.ndarray, kind: str) -> dict[str, Any]:
    """A layer's statistics computed independently of mlplab.diagnostics."""
    flat = y.reshape(-1)
    hist = np.bincount(np.searchsorted(BINS, flat, side="right"), minlength=len(BINS) + 1)
    saturated = {
        "Sigmoid": lambda: np.mean((y < 0.03) | (y > 0.97)),
        "Tanh": lambda: np.mean(np.abs(y) > 0.97),
        "Softsign": lambda: np.mean(np.abs(y) > 0.97),
    }
    dead = np.mean(np.all(y.reshape(len(y), -1) == 0, axis=0)) if kind == "ReLU" else None
    return {
        "mean": y.mean(),
        "std": y.std(),
        "hist": hist.tolist(),
        "saturated": saturated[kind]() if kind in saturated else None,
        "dead": dead,
        "grad_mean": dy.mean(),
        "grad_std": dy.std(),
    }


def scaled_up(model: Model, factor: float) -> Model:
    """The first layer's weights times `factor`: saturates sigmoid/tanh units, kills some ReLU ones."""
    model.params["W1"] *= factor
    return model


@pytest.mark.parametrize(
    "make",
    [
        lambda: scaled_up(mlp("sigmoid"), 6.0),
        lambda: scaled_up(mlp("tanh"), 4.0),
        lambda: scaled_up(mlp("softsign"), 40.0),
        lambda: scaled_up(mlp("relu"), 3.0),
        lambda: cnn(),
    ],
    ids=["sigmoid", "tanh", "softsign", "relu", "cnn-batch-norm"],
)
def test_statistics_equal_what_pytorch_hooks_compute(make: Any, digits: Dataset) -> None:
    model = make()
    if "b1" in model.params:  # a negative first bias kills some ReLU units for every sample
        model.params["b1"][:8] = -50.0
    probe = probe_of(digits)
    snapshot = Diagnostics(probe).measure(model, 0)
    outputs, output_grads, extra = torch_probe(model, probe)
    record = snapshot.record
    assert record["probe_loss"] == pytest.approx(extra["loss"], rel=1e-12)
    for name, layer in zip(model.layer_names, model.layers, strict=True):
        np.testing.assert_allclose(snapshot.activations[name], outputs[name], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(snapshot.output_gradients[name], output_grads[name], rtol=1e-8, atol=1e-15)
        want = expected_layer(outputs[name], output_grads[name], type(layer).__name__)
        got = record["layers"][name]
        assert got["hist"] == want["hist"], name
        assert sum(got["hist"]) == outputs[name].size
        for key in ("mean", "std", "grad_mean", "grad_std", "saturated", "dead"):
            if want[key] is None:
                assert got[key] is None, (name, key)
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (name, key)
    for name, grad in extra["grads"].items():
        np.testing.assert_allclose(snapshot.gradients[name], grad, rtol=1e-8, atol=1e-14)
        assert record["params"][name]["grad_norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-9)
    assert set(extra["grads"]) == set(model.params)
    kinds: dict[str, Any] = {}  # the first layer of each kind: the one after the scaled-up weights
    for name, layer in zip(model.layer_names, model.layers, strict=True):
        kinds.setdefault(type(layer).__name__, record["layers"][name])
    for kind in ("Sigmoid", "Tanh", "Softsign"):
        if kind in kinds:
            assert kinds[kind]["saturated"] > 0.05  # the scaled-up weights do saturate: the check is not vacuous
    if "ReLU" in kinds and not isinstance(model, CNN):
        assert record["layers"]["relu_1"]["dead"] >= 8 / 32


def test_cnn_records_per_channel_statistics(digits: Dataset) -> None:
    model = cnn()
    snapshot = Diagnostics(probe_of(digits)).measure(model, 0)
    y = snapshot.activations["relu_1"]
    channels = snapshot.record["layers"]["relu_1"]["channels"]
    np.testing.assert_allclose(channels["mean"], y.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(channels["std"], y.std(axis=(0, 1, 2)), rtol=1e-12)
    dead = np.all(y == 0, axis=0).mean(axis=(0, 1))
    np.testing.assert_allclose(channels["dead"], dead)
    assert snapshot.record["layers"]["dense_1"]["channels"] is None
    assert set(snapshot.record["similarity"]) == {"conv2d_1", "dense_1"}  # the hidden ones, not the output layer


# --- the probe changes nothing of training ----------------------------------------------------------------------


def test_a_probe_pass_leaves_buffers_gradients_and_random_streams_as_they_were(digits: Dataset) -> None:
    model = cnn()
    x, y = probe_of(digits, size=64).x, probe_of(digits, size=64).y
    model.train_batch(x[:32], y[:32])  # gradients and running statistics that are not the initial ones
    before = {**{k: v.copy() for k, v in model.buffers.items()}, **{k: model.grads[k].copy() for k in model.params}}
    head = MLP(64, [16], 10, dropout=0.5, seed=1)
    state = head.layers[2].rng.bit_generator.state
    probe_pass(model, probe_of(digits))
    probe_pass(head, probe_of(digits))
    after = {**model.buffers, **{k: model.grads[k] for k in model.params}}
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert head.layers[2].rng.bit_generator.state == state
    model.sgd_step(x[:32], y[:32], 0.1)  # a fused step leaves gradients unreadable, and the probe keeps it so
    probe_pass(model, probe_of(digits))
    with pytest.raises(RuntimeError, match="fused"):
        model.grads["W1"]


def numbers(history: History) -> dict[str, Any]:
    out = history.to_dict()
    out.pop("epoch_seconds")
    return out


@pytest.mark.parametrize(
    ("make", "optimizer"),
    [
        (lambda: mlp("relu", dropout=0.3, dtype="float32"), lambda: SGD(0.3)),  # the fused SGD step
        (lambda: mlp("tanh", dropout=0.3, dtype="float32"), lambda: Adam(0.003, reg=0.001)),
        (lambda: cnn("float32"), lambda: SGD(0.05, momentum=0.9)),
        (lambda: cnn("float32"), lambda: Adam(0.003)),
    ],
    ids=["mlp-dropout-sgd", "mlp-dropout-adam", "cnn-batch-norm-momentum", "cnn-batch-norm-adam"],
)
def test_training_is_identical_with_and_without_diagnostics(make: Any, optimizer: Any, digits: Dataset) -> None:
    runs = []
    for diagnostics in (None, Diagnostics()):
        model, opt = make(), optimizer()
        history = fit(model, opt, digits, epochs=2, batch_size=64, seed=7, progress=False, diagnostics=diagnostics)
        runs.append((numbers(history), model.state(), optimizer_state(opt)))
    assert runs[0][0] == runs[1][0]
    for name, value in runs[0][1].items():
        np.testing.assert_array_equal(runs[1][1][name], value, err_msg=name)
    assert runs[0][2].keys() == runs[1][2].keys()
    for name, value in runs[0][2].items():
        np.testing.assert_array_equal(runs[1][2][name], value, err_msg=name)
    assert [r["epoch"] for r in diagnostics.records] == [0, 1, 2]


def optimizer_state(opt: Optimizer) -> dict[str, np.ndarray]:
    return {f"{n}/{k}": v for n, slots in opt.state.items() for k, v in slots.items()}


# --- what is recorded ---------------------------------------------------------------------------------------------


def test_records_curves_update_ratios_and_the_file_after_every_epoch(digits: Dataset, tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    seen: list[int] = []
    diagnostics = Diagnostics(listeners=[lambda s: seen.append(s.epoch)], path=path)
    model = mlp("relu", dtype="float32")
    history = fit(model, SGD(0.2), digits, epochs=3, batch_size=32, seed=1, progress=False, diagnostics=diagnostics)
    content = Diagnostics.load(path)
    assert seen == [0, 1, 2, 3] and content == json.loads(json.dumps(diagnostics.to_dict()))
    first, *rest = content["epochs"]
    assert first["train_loss"] is None and first["val_acc"] is not None and first["lr"] == 0.2
    assert first["params"]["W1"]["update_ratio"] is None and first["params"]["W1"]["step_update_ratio"] is None
    for epoch, record in enumerate(rest, 1):
        assert record["val_acc"] == history.val_acc[epoch - 1] and record["train_loss"] == history.train_loss[epoch - 1]
        w1 = record["params"]["W1"]
        assert 0 < w1["step_update_ratio"] < w1["update_ratio"] < 1  # one step moves θ less than a whole epoch
    assert content["probe"] == {"split": "val", "size": 360} and content["bins"] == BINS.tolist()
    assert [layer["name"] for layer in content["layers"]] == model.layer_names
    first = {
        "name": "dense_1",
        "kind": "Dense",
        "output_shape": [32],
        "params": ["W1", "b1"],
        "param_count": 64 * 32 + 32,
    }
    assert content["layers"][0] == first
    assert content["model"]["type"] == "MLP" and content["model"]["hyper"]["hidden_sizes"] == [32, 16]


def test_the_same_seed_gives_the_same_diagnostics(tmp_path: Path) -> None:
    texts = []
    for run in ("a", "b"):
        train({"type": "MLP", "hidden_sizes": [16], "dropout": 0.2}, tmp_path / run, epochs=2, progress=False)
        texts.append((tmp_path / run / FILE_NAME).read_text())
    assert texts[0] == texts[1] and json.loads(texts[0])["epochs"][2]["epoch"] == 2


def test_the_config_key_turns_diagnostics_off(tmp_path: Path) -> None:
    metrics, _ = train({"type": "TwoLayerNet", "hidden_size": 8}, tmp_path, epochs=1, diagnostics=False)
    assert not (tmp_path / FILE_NAME).exists() and "diagnostics" not in metrics["config"]


def test_histogram_bins_are_half_open_with_under_and_overflow() -> None:
    values = np.array([-9.0, -4.0, -3.95, 0.0, 0.05, 3.9, 4.0, 7.0, np.nan])
    counts = histogram(values)
    assert len(counts) == len(BINS) + 1 and sum(counts) == 8
    assert counts[0] == 1 and counts[1] == 2 and counts[41] == 2 and counts[80] == 1 and counts[81] == 2


def test_mean_cosine_similarity_is_the_mean_over_pairs() -> None:
    w = np.random.default_rng(0).normal(size=(20, 7))
    u = w / np.linalg.norm(w, axis=0)
    gram = u.T @ u
    brute = (gram.sum() - np.trace(gram)) / (7 * 6)
    assert mean_cosine_similarity(w) == pytest.approx(brute, rel=1e-12)
    assert mean_cosine_similarity(np.outer(np.arange(1.0, 5.0), np.arange(1.0, 4.0))) == pytest.approx(1.0)
    assert mean_cosine_similarity(np.ones((5, 1))) is None


def test_non_finite_values_are_null_and_flagged(digits: Dataset) -> None:
    model = mlp("relu")
    model.params["W2"][0, 0] = np.nan
    record = Diagnostics(probe_of(digits)).measure(model, 0).record
    assert record["layers"]["dense_2"]["mean"] is None and "layers.dense_2.mean" in record["nonfinite"]
    assert record["params"]["W2"]["norm"] is None and record["params"]["W1"]["norm"] is not None
    json.dumps(record, allow_nan=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "unreadable diagnostics"),
        ("[]", "not a JSON object"),
        ('{"format": 9}', "format 9, expected 1"),
        ('{"format": 1, "bins": [], "layers": [], "epochs": [{"epoch": 0}]}', "epoch 0 has no layers"),
    ],
)
def test_a_broken_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(text)
    with pytest.raises(MlplabError, match=message):
        Diagnostics.load(path)


def test_truncate_and_resume_continue_a_file(digits: Dataset) -> None:
    model = mlp("relu", dtype="float32")
    full = Diagnostics()
    fit(model, SGD(0.2), digits, epochs=3, batch_size=32, seed=1, progress=False, diagnostics=full)
    again = Diagnostics(full.probe)
    again.restore(json.loads(json.dumps(full.to_dict())))
    again.resume_at(model, 1)
    assert [r["epoch"] for r in again.records] == [0, 1]
    record = again.measure(model, 2).record
    assert [r["epoch"] for r in again.records] == [0, 1, 2] and record["params"]["W1"]["update_ratio"] == 0.0


def test_summary_names_shapes_and_counts() -> None:
    model = cnn("float32")
    summary = model.summary()
    assert [r.name for r in summary.rows] == model.layer_names == [
        "conv2d_1", "batch_norm_1", "max_pool2d_1", "relu_1", "flatten_1", "dense_1", "relu_2", "dense_2"
    ]  # fmt: skip
    assert [r.output_shape for r in summary.rows][:5] == [(6, 6, 4), (6, 6, 4), (3, 3, 4), (3, 3, 4), (36,)]
    assert summary.total == sum(p.size for p in model.params.values()) == 36 + 8 + 36 * 16 + 16 + 170
    text = str(summary)
    assert "batch_norm_1 (BatchNorm)" in text and "(N, 6, 6, 4)" in text and f"Total params: {summary.total:,}" in text
