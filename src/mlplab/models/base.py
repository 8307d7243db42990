"""What every model shares: named parameters and gradients, snapshots, and pickle-free .npz files."""

from __future__ import annotations

import inspect
import json
import zipfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlplab.blas import gemm
from mlplab.errors import MlplabError

FORMAT_VERSION = 1


class Gradients(MutableMapping[str, np.ndarray]):
    """Gradient arrays by parameter name; a dense layer's may be kept as factors (a, d), meaning aᵀ·d, until read.

    A dense layer's weight and bias gradients are the products xᵀ·δ and 1ᵀ·δ. Kept factored, plain SGD folds
    gradient, L2 shrink and step into one GEMM per parameter (`scaled_add`), so a step neither writes a gradient
    matrix nor makes passes of its own over the weights. Reading a gradient multiplies it out; a gradient applied
    that way was never written down, so reading it afterwards is an error rather than a stale array.
    """

    def __init__(self, buffers: dict[str, np.ndarray]) -> None:
        self._buffers = buffers
        self._factors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._applied: set[str] = set()

    def defer(self, name: str, a: np.ndarray, d: np.ndarray) -> None:
        """Record that the gradient of `name` is aᵀ·d; a and d must stay unchanged until it is used."""
        self._factors[name] = (a, d)
        self._applied.discard(name)

    def settle(self) -> None:
        """Multiply out every gradient still kept as factors (before their buffers are reused)."""
        for name in list(self._factors):
            self[name]

    def scaled_add(self, name: str, param: np.ndarray, alpha: float, beta: float = 1.0) -> None:
        """param ← beta·param + alpha·gradient, in one GEMM when the gradient is still factored."""
        factors = self._factors.pop(name, None)
        if factors is not None:
            gemm(factors[0].T, factors[1], out=param, alpha=alpha, beta=beta)
            self._applied.add(name)
            return
        if beta != 1.0:
            param *= beta
        param += alpha * self[name]

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._applied:
            raise RuntimeError(f"the gradient of {name} went straight into the weights: read it before the step")
        buffer = self._buffers[name]
        factors = self._factors.pop(name, None)
        if factors is not None:
            gemm(factors[0].T, factors[1], out=buffer)
        return buffer

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._factors.pop(name, None)
        self._applied.discard(name)
        self._buffers[name] = value

    def __delitem__(self, name: str) -> None:
        self._factors.pop(name, None)
        self._applied.discard(name)
        del self._buffers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._buffers)

    def __len__(self) -> int:
        return len(self._buffers)


class Model:
    """A network whose `forward(x, y, mode)` returns (loss, accuracy) and, in training mode, fills `grads`."""

    registry: ClassVar[dict[str, type[Model]]] = {}
    weight_names: tuple[str, ...] = ()

    def __init__(self, dtype: str | np.dtype = "float32", **hyper: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.hyper = {**hyper, "dtype": self.dtype.name}
        self.params: dict[str, np.ndarray] = {}
        self.grads = Gradients({})
        self._scratch: dict[tuple[str, int], np.ndarray] = {}  # work arrays by (name, batch rows)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Model.registry[cls.__name__] = cls

    def forward(self, x: np.ndarray, y: np.ndarray, mode: str = "train") -> tuple[float, float]:
        """Loss and accuracy of the batch; in mode "train" also the gradient of the mean loss in `grads`.

        A training pass may leave gradients factored over its own buffers and the batch `x`: read or apply them
        before changing `x`. Every pass starts with `grads.settle()`, as it reuses those buffers.
        """
        raise NotImplementedError

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Class scores (pre-softmax) of a batch, for prediction."""
        raise NotImplementedError

    def init_weight(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """The assignment's init: 0.001·N(0, 1)."""
        return (0.001 * rng.standard_normal(shape)).astype(self.dtype)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, self.dtype)

    def scratch(self, key: str, rows: int, cols: int) -> np.ndarray:
        """A (rows, cols) work array kept between calls, so a training step allocates nothing."""
        buffer = self._scratch.get((key, rows))
        if buffer is None:
            if len(self._scratch) > 64:
                self._scratch.clear()
            buffer = self._scratch[key, rows] = np.empty((rows, cols), self.dtype)
        return buffer

    def ones(self, n: int) -> np.ndarray:
        """A cached (n, 1) column of ones: 1ᵀ·δ is a batch's row sum as a product, the form `Gradients` keeps."""
        column = self._scratch.get(("ones", n))
        if column is None:
            column = self._scratch["ones", n] = np.ones((n, 1), self.dtype)
        return column

    def allocate_grads(self) -> None:
        """One gradient buffer per parameter, written in place by every training step."""
        self.grads = Gradients({name: np.zeros_like(p) for name, p in self.params.items()})

    def regularization(self, reg: float) -> float:
        """reg/2·Σ‖W‖² over the weight matrices (never biases): the L2 part of the objective J."""
        return 0.5 * reg * sum(float(np.sum(self.params[n] ** 2, dtype=np.float64)) for n in self.weight_names)

    def state(self) -> dict[str, np.ndarray]:
        """A copy of the parameters (for keeping the best-by-validation model)."""
        return {name: p.copy() for name, p in self.params.items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` into the parameters in place."""
        for name, p in self.params.items():
            p[...] = state[name]

    def save(self, path: str | Path, **meta: Any) -> None:
        """Write the parameters and the constructor arguments (plus `meta`) to an .npz file."""
        header = {"format": FORMAT_VERSION, "model": type(self).__name__, "hyper": self.hyper, "meta": meta}
        arrays = {f"param/{name}": p for name, p in self.params.items()}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, __header__=np.array(json.dumps(header)), **arrays)
        tmp.replace(path)

    @staticmethod
    def load(path: str | Path) -> tuple[Model, dict[str, Any]]:
        """Read a model file written by `save`, without pickle; returns (model, meta)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                header = json.loads(str(archive["__header__"]))
                params = {k.removeprefix("param/"): archive[k] for k in archive.files if k.startswith("param/")}
            model = build_model(header["model"], **header["hyper"])
        except FileNotFoundError:
            raise MlplabError(f"{path}: no such model file") from None
        except MlplabError as exc:  # e.g. an unknown model type or activation named in the header
            raise MlplabError(f"{path}: {exc}") from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            # numpy's own message for pickled content suggests allow_pickle, which mlplab never uses: don't echo it.
            why = "it holds pickled objects" if "pickle" in str(exc) else f"{type(exc).__name__}: {exc}"
            raise MlplabError(f"{path}: not an mlplab model file ({why})") from None
        if set(params) != set(model.params):
            raise MlplabError(f"{path}: parameters {sorted(params)} do not match {header['model']}")
        for name, p in model.params.items():
            if params[name].shape != p.shape:
                raise MlplabError(f"{path}: parameter {name} has shape {params[name].shape}, expected {p.shape}")
            p[...] = params[name]
        return model, header.get("meta", {})


ALIASES = {
    "softmax": "SoftmaxRegression",
    "softmax_regression": "SoftmaxRegression",
    "two_layer": "TwoLayerNet",
    "twolayer": "TwoLayerNet",
    "two_layer_net": "TwoLayerNet",
    "mlp": "MLP",
}


def model_class(name: str) -> type[Model]:
    """The model class for a name such as "TwoLayerNet" or "two_layer"."""
    key = ALIASES.get(name.lower(), name)
    if key not in Model.registry:
        raise MlplabError(f"unknown model type {name!r}; choose one of {', '.join(sorted(Model.registry))}")
    return Model.registry[key]


def build_model(name: str, **hyper: Any) -> Model:
    """Construct a model by name with only the hyper-parameters its constructor takes."""
    cls = model_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in hyper.items() if k in accepted})
