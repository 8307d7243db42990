"""ONNX export: a model's graph assembled from its layers, each adding its own nodes (`Layer.onnx_nodes`, beside its
forward and backward), with the `onnx` package.

Every exported file takes float32 `pixels` [N, input_size] in the dataset's raw range (0–255 for MNIST, 0–16 for
the digits) and returns float32 `probabilities` [N, classes]. The scaling to [0, 1] is the graph's first node;
a standardization used in training is already folded into the first layer's weights of a saved model.

Every model is a network of layers, so every model type is exportable once its layers are. A model type that is
not a plain chain of layers can register a graph of its own:

    @exporter("MyNet")
    def my_net(graph: GraphBuilder, model: MyNet, x: str) -> str:
        ...  # add nodes reading tensor `x` (scaled pixels); return the name of the class-score tensor

`export_model` adds the input, the scaling and the final softmax around what the builder returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab import __version__, files
from mlplab.errors import MlplabError
from mlplab.layers.base import Shape
from mlplab.models import Model

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17: runtimes back to ONNX Runtime 1.13 load the file

Builder = Callable[["GraphBuilder", Any, str], str]


@dataclass
class GraphBuilder:
    """Nodes and initializers with fresh tensor names, and which tensors hold NCHW images (the rest are rows);
    it is the `OnnxGraph` each layer writes its nodes with."""

    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    nchw: set[str] = field(default_factory=set)
    _count: int = 0

    def constant(self, name: str, value: np.ndarray | float) -> str:
        """A float32 initializer named `name`."""
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def int_constant(self, value: list[int]) -> str:
        """A fresh int64 initializer (a shape, slice bounds); returns its name."""
        from onnx import numpy_helper

        self._count += 1
        name = f"int64_{self._count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
        return name

    def node(self, op: str, *inputs: str, **attributes: Any) -> str:
        """Add one `op` node reading `inputs`; returns the name of its output, laid out as its first input."""
        from onnx import helper

        self._count += 1
        output = f"{op.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=f"{op}_{self._count}", **attributes))
        if inputs and inputs[0] in self.nchw:
            self.nchw.add(output)
        return output

    def images(self, x: str, shape: Shape) -> str:
        """x as NCHW images of one-sample shape (H, W, C): rows (in mlplab's NHWC order) reshaped and transposed."""
        if x in self.nchw:
            return x
        h, w, c = shape
        nchw = self.node("Transpose", self.node("Reshape", x, self.int_constant([-1, h, w, c])), perm=[0, 3, 1, 2])
        self.nchw.add(nchw)
        return nchw

    def rows(self, x: str) -> str:
        """x as (N, features) rows: NCHW images transposed back to mlplab's (h, w, c) order and flattened."""
        if x not in self.nchw:
            return x
        nhwc = self.node("Transpose", x, perm=[0, 2, 3, 1])
        self.nchw.discard(nhwc)
        return self.node("Flatten", nhwc, axis=1)


def layer_nodes(graph: GraphBuilder, model: Model, x: str) -> str:
    """Each layer's nodes in order (a layer without an ONNX form is refused by name)."""
    for layer, position in zip(model.layers, model.positions, strict=True):
        x = layer.onnx_nodes(graph, x, position)
    return graph.rows(x)


class Exporters(Mapping[str, Builder]):
    """The ONNX graph builder of each model type: one registered with `exporter`, else its layers' nodes."""

    def __init__(self) -> None:
        self.registered: dict[str, Builder] = {}

    def __getitem__(self, model_type: str) -> Builder:
        if model_type in self.registered:
            return self.registered[model_type]
        if model_type in Model.registry:
            return layer_nodes
        raise KeyError(model_type)

    def __iter__(self) -> Iterator[str]:
        return iter({**Model.registry, **self.registered})

    def __len__(self) -> int:
        return len({**Model.registry, **self.registered})


EXPORTERS = Exporters()


def exporter(model_type: str) -> Callable[[Builder], Builder]:
    """Register `builder` as the ONNX graph of `model_type` (a Model subclass's name), instead of its layers'."""

    def register(builder: Builder) -> Builder:
        EXPORTERS.registered[model_type] = builder
        return builder

    return register


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
