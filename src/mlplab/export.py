"""ONNX export: each model type's graph written node by node from its parameters with the `onnx` package.

Every exported file takes float32 `pixels` [N, input_size] in the dataset's raw range (0–255 for MNIST, 0–16 for
the digits) and returns float32 `probabilities` [N, classes]. The scaling to [0, 1] is the graph's first node;
a standardization used in training is already folded into the first layer's weights of a saved model.

A model type is exportable once a builder is registered for it:

    @exporter("MyNet")
    def my_net(graph: GraphBuilder, model: MyNet, x: str) -> str:
        ...  # add nodes reading tensor `x` (scaled pixels); return the name of the class-score tensor

`export_model` adds the input, the scaling and the final softmax around what the builder returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab import __version__, files
from mlplab.errors import MlplabError
from mlplab.models import Model

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17: runtimes back to ONNX Runtime 1.13 load the file

Builder = Callable[["GraphBuilder", Any, str], str]
EXPORTERS: dict[str, Builder] = {}


def exporter(model_type: str) -> Callable[[Builder], Builder]:
    """Register `builder` as the ONNX graph of `model_type` (a Model subclass's name)."""

    def register(builder: Builder) -> Builder:
        EXPORTERS[model_type] = builder
        return builder

    return register


@dataclass
class GraphBuilder:
    """Nodes and float32 weight initializers, with fresh tensor names."""

    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    _count: int = 0

    def constant(self, name: str, value: np.ndarray | float) -> str:
        """A float32 initializer named `name`."""
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, *inputs: str, **attributes: Any) -> str:
        """Add one `op` node reading `inputs`; returns the name of its output."""
        from onnx import helper

        self._count += 1
        output = f"{op.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=f"{op}_{self._count}", **attributes))
        return output

    def shape_constant(self, value: list[int]) -> str:
        """A fresh int64 initializer (a shape, slice bounds); returns its name."""
        from onnx import numpy_helper

        self._count += 1
        name = f"int64_{self._count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
        return name

    def slice(self, x: str, start: int, stop: int, axis: int) -> str:
        """x[start:stop] along `axis`."""
        bounds = self.shape_constant([start]), self.shape_constant([stop]), self.shape_constant([axis])
        return self.node("Slice", x, *bounds)

    def wrap(self, x: str, pad: int, height: int, width: int) -> str:
        """NCHW x padded by `pad` on every side with the image wrapped around (opset 17's Pad has no wrap mode):
        the last rows above, the first below, then the same with columns."""
        for axis, size in ((2, height), (3, width)):
            x = self.node("Concat", self.slice(x, size - pad, size, axis), x, self.slice(x, 0, pad, axis), axis=axis)
        return x

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray | None, name: str) -> str:
        """x·W + b as one Gemm (or a MatMul when there is no bias)."""
        w = self.constant(f"W{name}", weight)
        if bias is None:
            return self.node("MatMul", x, w)
        return self.node("Gemm", x, w, self.constant(f"b{name}", bias))


ACTIVATION_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign"}


@exporter("SoftmaxRegression")
def softmax_regression(graph: GraphBuilder, model: Model, x: str) -> str:
    """FC without bias → ReLU."""
    return graph.node("Relu", graph.dense(x, model.params["W1"], None, "1"))


@exporter("TwoLayerNet")
def two_layer_net(graph: GraphBuilder, model: Model, x: str) -> str:
    """FC → sigmoid → FC."""
    p = model.params
    hidden = graph.node("Sigmoid", graph.dense(x, p["W1"], p["b1"], "1"))
    return graph.dense(hidden, p["W2"], p["b2"], "2")


@exporter("MLP")
def mlp(graph: GraphBuilder, model: Model, x: str) -> str:
    """(FC → activation) per hidden layer → FC; dropout is training-only (inverted), so it has no node."""
    p = model.params
    depth = sum(1 for name in p if name.startswith("W"))
    op = ACTIVATION_OPS[model.hyper["activation"]]
    a = x
    for i in range(1, depth):
        a = graph.node(op, graph.dense(a, p[f"W{i}"], p[f"b{i}"], str(i)))
    return graph.dense(a, p[f"W{depth}"], p[f"b{depth}"], str(depth))


@exporter("CNN")
def cnn(graph: GraphBuilder, model: Model, x: str) -> str:
    """Layer by layer: the NHWC images as ONNX's NCHW, Conv (circular padding as wrapped slices), BatchNormalization
    (inference: the running statistics), MaxPool, activations, back to NHWC before Flatten (mlplab flattens
    (h, w, c)), then the dense head."""
    from mlplab.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D

    h, w, c = model.hyper["image_shape"]  # (H, W, C): CNN keeps the channel axis
    a = graph.node("Reshape", x, graph.shape_constant([-1, h, w, c]))
    a = graph.node("Transpose", a, perm=[0, 3, 1, 2])
    position = 0
    for layer in model.layers:
        if layer.params:
            position += 1
        name = str(position)
        if isinstance(layer, Conv2D):
            g = layer.geometry
            kernel = layer.W.reshape(g.kernel, g.kernel, g.channels, -1).transpose(3, 2, 0, 1)
            pads = [g.padding] * 4
            if g.mode == "circular" and g.padding:
                a, pads = graph.wrap(a, g.padding, g.height, g.width), [0] * 4
            bias = [] if layer.b is None else [graph.constant(f"b{name}", layer.b)]
            a = graph.node(
                "Conv",
                a,
                graph.constant(f"W{name}", kernel),
                *bias,
                kernel_shape=[g.kernel, g.kernel],
                strides=[g.stride, g.stride],
                pads=pads,
            )
        elif isinstance(layer, BatchNorm):  # channels are axis 1 of NCHW images and of (N, F) rows alike
            a = graph.node(
                "BatchNormalization",
                a,
                graph.constant(f"gamma{name}", layer.gamma),
                graph.constant(f"beta{name}", layer.beta),
                graph.constant(f"running_mean{name}", layer.running_mean),
                graph.constant(f"running_var{name}", layer.running_var),
                epsilon=layer.eps,
            )
        elif isinstance(layer, MaxPool2D):
            a = graph.node("MaxPool", a, kernel_shape=[layer.window] * 2, strides=[layer.window] * 2)
        elif isinstance(layer, Flatten):
            a = graph.node("Flatten", graph.node("Transpose", a, perm=[0, 2, 3, 1]), axis=1)
        elif isinstance(layer, Dense):
            a = graph.dense(a, layer.W, layer.b, name)
        elif type(layer).__name__.lower() in ACTIVATION_OPS:
            a = graph.node(ACTIVATION_OPS[type(layer).__name__.lower()], a)
        elif not isinstance(layer, Dropout):  # dropout is training-only (inverted): no node
            raise MlplabError(f"no ONNX export for a {type(layer).__name__} layer")
    return a


def export_model(model: Model, pixel_max: float, meta: dict[str, Any] | None = None) -> Any:
    """The ONNX ModelProto of `model`: raw pixels in 0..pixel_max → class probabilities."""
    from onnx import TensorProto, checker, helper

    kind = type(model).__name__
    builder = EXPORTERS.get(kind)
    if builder is None:
        raise MlplabError(f"no ONNX export for {kind}; exportable: {', '.join(sorted(EXPORTERS))}")
    inputs = int(model.hyper["input_size"])
    classes = int(model.hyper.get("num_classes", 10))
    graph = GraphBuilder()
    # The same float32 factor mlplab's batches multiply by, so the graph sees the very inputs training saw.
    x = graph.node("Mul", "pixels", graph.constant("inverse_pixel_max", 1.0 / pixel_max))
    scores = builder(graph, model, x)
    graph.nodes.append(helper.make_node("Softmax", [scores], ["probabilities"], name="Softmax", axis=1))
    onnx_graph = helper.make_graph(
        graph.nodes,
        f"mlplab_{kind}",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", inputs])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])],
        graph.initializers,
    )
    proto = helper.make_model(
        onnx_graph,
        producer_name="mlplab",
        producer_version=__version__,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        doc_string=f"{kind}: float32 pixels [N, {inputs}] in 0..{pixel_max:g} → class probabilities [N, {classes}]",
    )
    helper.set_model_props(
        proto,
        {"model_type": kind, "pixel_max": f"{pixel_max:g}", **{k: str(v) for k, v in (meta or {}).items()}},
    )
    checker.check_model(proto, full_check=True)
    return proto


def export_file(model_path: str | Path, out: str | Path) -> Path:
    """Export a saved model.npz to an .onnx file (written whole or not at all); returns the path written."""

    model, meta = Model.load(model_path)
    pixel_max = float(meta.get("pixel_max", 255.0))
    keep: dict[str, Any] = {k: meta[k] for k in ("dataset", "best_epoch") if k in meta}
    proto = export_model(model, pixel_max, keep)
    out = Path(out)
    if out.is_dir():
        raise MlplabError(f"{out} is a directory; give the .onnx file to write")
    if not out.parent.is_dir():
        raise MlplabError(f"{out.parent}: no such directory")
    return files.write_bytes(out, proto.SerializeToString())
