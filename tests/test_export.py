"""mlplab export: ONNX Runtime on the exported file gives mlplab's own probabilities, for every model type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlplab import config, data
from mlplab.cli import main
from mlplab.export import EXPORTERS
from mlplab.models import Model
from mlplab.predict import probabilities
from mlplab.run import train_run

ort = pytest.importorskip("onnxruntime", reason="onnxruntime comes with the test extra")

MODELS = {
    "softmax": ["type=SoftmaxRegression", "learning_rate=0.5"],
    "two_layer": ["type=TwoLayerNet", "learning_rate=0.2", "momentum=0.9", "batch_size=8"],
    "mlp_relu_standardized": ["type=MLP", "hidden_sizes=[32]", "optimizer=adam", "learning_rate=0.003",
                              "normalize=standardize", "dropout=0.2"],
    "mlp_tanh_two_layers": ["type=MLP", "hidden_sizes=[24,16]", "activation=tanh", "init=xavier"],
    "mlp_sigmoid": ["type=MLP", "hidden_sizes=[16]", "activation=sigmoid", "learning_rate=0.5"],
    "mlp_softsign": ["type=MLP", "hidden_sizes=[16]", "activation=softsign"],
    "cnn_same": ["type=CNN", "conv_channels=[4,6]", "kernel_size=3", "conv_padding=same", "hidden_sizes=[16]",
                 "optimizer=adam", "learning_rate=0.003", "dropout=0.1"],
    "cnn_circular_tanh": ["type=CNN", "conv_channels=[3]", "kernel_size=5", "conv_padding=circular",
                          "hidden_sizes=[12]", "activation=tanh", "optimizer=adam", "learning_rate=0.003"],
    "cnn_valid_no_pool": ["type=CNN", "conv_channels=[2,3]", "kernel_size=2", "conv_padding=valid", "pool=1",
                          "hidden_sizes=[8]", "optimizer=adam", "learning_rate=0.003"],
    "cnn_batch_norm": ["type=CNN", "conv_channels=[4,6]", "kernel_size=3", "conv_padding=circular",
                       "hidden_sizes=[16]", "batch_norm=true", "optimizer=adam", "learning_rate=0.01"],
}  # fmt: skip


def run_onnx(path: Path, pixels: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    return session.run(None, {"pixels": pixels.astype(np.float32)})[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_runtime_matches_mlplab_probabilities_on_raw_digits(name: str, tmp_path: Path) -> None:
    settings = [*MODELS[name], "epochs=4", "threads=1", "dataset=digits"]
    metrics, _ = train_run(config.resolve(None, settings), tmp_path)
    assert metrics["test_acc"] > 0.3  # trained, far from uniform (the ReLU-capped softmax regression stays weak)
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")]) == 0
    model, _ = Model.load(tmp_path / "model.npz")
    test = data.load("digits").test
    ours = probabilities(model, test.x, 16.0)
    theirs = run_onnx(tmp_path / "model.onnx", test.x)  # raw 0–16 pixels: the graph scales them
    assert theirs.shape == (len(test), 10)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
    assert np.mean(theirs.argmax(1) == test.y) == pytest.approx(metrics["test_acc"])


def test_batch_norm_is_one_inference_node_after_each_bias_free_conv(tmp_path: Path) -> None:
    import onnx

    settings = ["type=CNN", "conv_channels=[3,4]", "kernel_size=3", "conv_padding=same", "hidden_sizes=[8]",
                "batch_norm=true", "epochs=1", "threads=1", "dataset=digits"]  # fmt: skip
    _, model = train_run(config.resolve(None, settings), tmp_path)
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")]) == 0
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    ops = [n.op_type for n in graph.node if n.op_type in ("Conv", "BatchNormalization", "MaxPool", "Relu")]
    assert ops[:8] == ["Conv", "BatchNormalization", "MaxPool", "Relu"] * 2
    assert all(len(n.input) == 2 for n in graph.node if n.op_type == "Conv")  # no bias: β takes its place
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    np.testing.assert_array_equal(weights["running_var2"], model.buffers["running_var2"])  # inference statistics
    assert not any(a.name == "training_mode" and a.i for n in graph.node for a in n.attribute)


@pytest.mark.mnist
def test_an_mnist_model_takes_784_raw_pixels_in_0_255(mnist_dir: Path, tmp_path: Path) -> None:
    settings = ["type=TwoLayerNet", "epochs=1", "threads=1", "dataset=mnist", f"data_dir={mnist_dir}"]
    _, model = train_run(config.resolve(None, settings), tmp_path)
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "mnist.onnx")]) == 0
    test = data.load("mnist", mnist_dir).test
    theirs = run_onnx(tmp_path / "mnist.onnx", test.x[:2000])
    np.testing.assert_allclose(theirs, probabilities(model, test.x[:2000], 255.0), rtol=0, atol=1e-5)


def test_every_model_type_has_an_exporter() -> None:
    shipped = {name for name, cls in Model.registry.items() if cls.__module__.startswith("mlplab.")}
    missing = sorted(shipped - set(EXPORTERS))
    assert not missing, f"register an ONNX builder with mlplab.export.exporter for {missing}"


def test_every_layer_kind_writes_its_own_nodes_and_importing_layers_loads_no_onnx() -> None:
    import subprocess
    import sys

    from mlplab import layers
    from mlplab.layers.base import Layer

    kinds = [k for k in vars(layers).values() if isinstance(k, type) and issubclass(k, Layer) and k is not Layer]
    silent = [k.__name__ for k in kinds if k.onnx_nodes is Layer.onnx_nodes and k.__name__ != "Activation"]
    assert not silent, f"layer kinds without onnx_nodes: {silent}"
    code = "import sys, mlplab.layers, mlplab.models; print(sorted(m for m in sys.modules if m.startswith('onnx')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_export_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "none.npz"), str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.strip() == f"mlplab export: error: {tmp_path / 'none.npz'}: no such model file"
    train_run(config.resolve(None, ["epochs=1", "threads=1"]), tmp_path)
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "missing" / "m.onnx")]) == 2
    assert capsys.readouterr().err.strip() == f"mlplab export: error: {tmp_path / 'missing'}: no such directory"
    assert not list(tmp_path.glob("*.onnx*"))
