"""A network: layers chained in order, ending in softmax cross-entropy, with params and grads by global name."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mlplab.errors import MlplabError
from mlplab.layers.base import Layer, Shape
from mlplab.layers.softmax_cross_entropy import SoftmaxCrossEntropy


class Gradients(Mapping[str, np.ndarray]):
    """The gradient of the last `train_batch` per global parameter name: plain arrays, readable until changed.

    Optimizers read them and never write them. After a fused `sgd_step` (which applies its gradients without
    writing them down) reading one raises rather than returning a stale array.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self._arrays = arrays
        self.written = True

    def __getitem__(self, name: str) -> np.ndarray:
        if not self.written and name in self._arrays:
            raise RuntimeError(
                f"no gradient of {name}: the last step was a fused sgd_step, which applies gradients without "
                "writing them; use train_batch to compute readable gradients"
            )
        return self._arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


NAME_OVERRIDES = {"ReLU": "relu"}
_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")


def layer_kind_name(kind: str) -> str:
    """A layer class name in lower snake case, Keras style: Dense → dense, BatchNorm → batch_norm, ReLU → relu."""
    return NAME_OVERRIDES.get(kind) or _WORD_START.sub("_", kind).lower()


def layer_names(layers: Sequence[object]) -> list[str]:
    """Keras-style names, numbered from 1 per kind: dense_1, relu_1, dense_2, conv2d_1, batch_norm_1, …"""
    counts: dict[str, int] = {}
    names = []
    for layer in layers:
        base = layer_kind_name(type(layer).__name__)
        counts[base] = counts.get(base, 0) + 1
        names.append(f"{base}_{counts[base]}")
    return names


@dataclass(frozen=True)
class SummaryRow:
    """One layer of a network summary."""

    name: str
    kind: str
    output_shape: Shape
    params: int
    param_names: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    """Layers, output shapes and parameter counts, as Keras' model.summary(); prints as a table."""

    input_shape: Shape
    rows: tuple[SummaryRow, ...]

    @property
    def total(self) -> int:
        return sum(row.params for row in self.rows)

    def __str__(self) -> str:
        def shape(s: Shape) -> str:
            return "(N, " + ", ".join(map(str, s)) + ")"

        lines = [("Layer (type)", "Output shape", "Params"), ("input", shape(self.input_shape), "")]
        lines += [(f"{r.name} ({r.kind})", shape(r.output_shape), f"{r.params:,}") for r in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(3)]
        rule = "─" * (sum(widths) + 4)
        text = [rule]
        for i, (a, b, c) in enumerate(lines):
            text.append(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}")
            if i == 0:
                text.append(rule)
        text += [rule, f"Total params: {self.total:,}"]
        return "\n".join(text)

    def __repr__(self) -> str:  # a notebook cell ending in model.summary() shows the table
        return str(self)


class Network:
    """layers[0] → … → layers[-1] → softmax cross-entropy; see the package docstring for the layer contract.

    Parameter names are global: a layer's local name plus the 1-based position of the layer among those that have
    params (Dense's W and b in the first such layer are W1 and b1, in the second W2 and b2, …). Buffers (state
    that is not a parameter, such as BatchNorm's running statistics) take their layer's number the same way.
    """

    def __init__(self, layers: Sequence[Layer], input_shape: Shape, dtype: str | np.dtype = "float32") -> None:
        self.dtype = np.dtype(dtype)
        self.layers = list(layers)
        self.loss = SoftmaxCrossEntropy()
        self.params: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}  # state that is not a parameter, e.g. running statistics
        grads: dict[str, np.ndarray] = {}
        weights: list[str] = []
        self._owners: list[tuple[Layer, dict[str, str]]] = []  # per layer: local name → global name
        self.positions: list[int] = []  # per layer: the number its global names carry (W{position})
        shape = tuple(input_shape)
        self.input_shape: Shape = shape
        self.layer_shapes: list[Shape] = []  # each layer's output shape, one sample
        self._param_names: list[tuple[str, ...]] = []
        position = 0
        for layer in self.layers:
            if layer.dtype != self.dtype:
                raise MlplabError(f"{type(layer).__name__} computes in {layer.dtype}, the network in {self.dtype}")
            shape = layer.output_shape(shape)
            self.layer_shapes.append(tuple(shape))
            names = {}
            if layer.params:
                position += 1
                names = {local: f"{local}{position}" for local in layer.params}
            elif layer.buffers:
                raise MlplabError(f"{type(layer).__name__} has buffers but no params: it has no position to name them")
            for local, buffer in layer.buffers.items():
                self.buffers[f"{local}{position}"] = buffer
            for local, name in names.items():
                self.params[name] = layer.params[local]
                grads[name] = layer.grads[local]
                if local in layer.weight_names:
                    weights.append(name)
            self._owners.append((layer, names))
            self._param_names.append(tuple(names.values()))
            self.positions.append(position)
        self.output_shape = shape
        self.weight_names = tuple(weights)
        self.grads = Gradients(grads)
        # Layers before the first one with params need no backward at all, and that one needs no dx.
        self._first_trained = next((i for i, layer in enumerate(self.layers) if layer.params), len(self.layers))

    @property
    def layer_names(self) -> list[str]:
        """Each layer's Keras-style name (dense_1, relu_1, …): the names of summaries and diagnostics."""
        return layer_names(self.layers)

    def summary(self) -> Summary:
        """Layers, output shapes and parameter counts (as Keras' model.summary()); print it for the table."""
        rows = (
            SummaryRow(name, type(layer).__name__, shape, sum(int(p.size) for p in layer.params.values()), params)
            for name, layer, shape, params in zip(
                self.layer_names, self.layers, self.layer_shapes, self._param_names, strict=True
            )
        )
        return Summary(self.input_shape, tuple(rows))

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """The logits of batch x (a buffer the next call reuses); `train` keeps what backward needs, drops units."""
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Forward and backward on a training batch: (mean loss, accuracy), and d(mean loss)/dθ in `grads`."""
        loss, hits, dz = self.loss.loss_and_grad(self.forward(x, train=True), y)
        grad: np.ndarray | None = dz
        for i in range(len(self.layers) - 1, self._first_trained - 1, -1):
            assert grad is not None  # only the first trained layer passes no gradient down
            grad = self.layers[i].backward(grad, need_dx=i > self._first_trained)
        self.grads.written = True
        return loss, hits / len(y)

    def sgd_step(self, x: np.ndarray, y: np.ndarray, lr: float, reg: float = 0.0) -> tuple[float, float]:
        """Plain SGD fused into the backward pass: θ ← θ − lr·(g + reg·θ) (reg on weight matrices only).

        The fast path of `optim.SGD` without momentum: each layer applies its gradient as it goes (a dense layer
        in one GEMM per parameter), so no gradient is written and `grads` is unreadable until the next
        `train_batch`. Returns (mean loss, accuracy) before the step.
        """
        loss, hits, dz = self.loss.loss_and_grad(self.forward(x, train=True), y)
        self.grads.written = False
        grad: np.ndarray | None = dz
        for i in range(len(self.layers) - 1, self._first_trained - 1, -1):
            assert grad is not None  # only the first trained layer passes no gradient down
            grad = self.layers[i].backward_sgd(grad, i > self._first_trained, lr, reg)
        return loss, hits / len(y)

    def evaluate_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) of a batch in evaluation mode (no dropout), leaving `grads` alone."""
        total, hits = self.loss.loss(self.forward(x, train=False), y)
        return total / len(y), hits / len(y)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Class scores (pre-softmax) of a batch in evaluation mode, in a new array."""
        return self.forward(x, train=False).copy()

    def folds_input_affine(self, size: int) -> bool:
        """Whether the first layer can absorb a per-input affine map of `size` features (`fold_input_affine`)."""
        return bool(self.layers) and self.layers[0].absorbs_input_affine(size)

    def fold_input_affine(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """Make the network take x where it took x·scale + shift (per input feature, e.g. a standardization):
        the first layer rewrites its params, so the same scores come from the untransformed input."""
        if not self.folds_input_affine(len(scale)):
            raise MlplabError(
                f"{type(self).__name__} has no first layer W1 ({len(scale)} inputs) with a bias b1 "
                "to fold an affine map of its input into"
            )
        self.layers[0].fold_input_affine(scale, shift)

    def regularization(self, reg: float) -> float:
        """reg/2·Σ‖W‖² over the weight matrices (never biases): the L2 part of the objective J."""
        return 0.5 * reg * sum(float(np.sum(self.params[n] ** 2, dtype=np.float64)) for n in self.weight_names)
