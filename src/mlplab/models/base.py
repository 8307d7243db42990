"""What every model shares: a network of layers rebuilt from its hyper-parameters, snapshots, pickle-free .npz files."""

from __future__ import annotations

import inspect
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlplab.errors import MlplabError
from mlplab.layers import Layer, Network
from mlplab.layers.base import Shape

FORMAT_VERSION = 1


class Model(Network):
    """A named network whose constructor arguments (`hyper`) rebuild it: the unit of model files and configs."""

    registry: ClassVar[dict[str, type[Model]]] = {}

    def __init__(
        self, layers: Sequence[Layer], input_shape: Shape, dtype: str | np.dtype = "float32", **hyper: Any
    ) -> None:
        super().__init__(layers, input_shape, dtype)
        self.hyper = {**hyper, "dtype": self.dtype.name}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Model.registry[cls.__name__] = cls

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
        np.savez(tmp, allow_pickle=False, __header__=np.array(json.dumps(header)), **arrays)
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
    "cnn": "CNN",
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
