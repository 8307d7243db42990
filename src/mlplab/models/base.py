"""What every model shares: a network of layers rebuilt from its hyper-parameters, snapshots, pickle-free .npz files."""

from __future__ import annotations

import inspect
import json
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlplab import files
from mlplab.data.readers import MAX_DATA_BYTES
from mlplab.errors import MlplabError
from mlplab.files import quoted, quoted_text
from mlplab.layers import Layer, Network
from mlplab.layers.base import Shape
from mlplab.limits import check_model_fits

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
        """A copy of the parameters and buffers (for keeping the best-by-validation model)."""
        return {name: p.copy() for name, p in (*self.params.items(), *self.buffers.items())}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` into the parameters and buffers in place."""
        for name, p in (*self.params.items(), *self.buffers.items()):
            p[...] = state[name]

    def save(self, path: str | Path, **meta: Any) -> None:
        """Write the parameters and the constructor arguments (plus `meta`) to an .npz file, atomically."""
        files.write_bytes(path, files.npz_writer(self.archive(**meta)))

    def archive(self, **meta: Any) -> dict[str, np.ndarray]:
        """The arrays of a model file: a JSON header (type, constructor arguments, `meta`), the parameters
        (param/W1, …) and the buffers (buffer/running_mean2, …: none unless the model has BatchNorm layers)."""
        header = {"format": FORMAT_VERSION, "model": type(self).__name__, "hyper": self.hyper, "meta": meta}
        return {
            "__header__": np.array(json.dumps(header)),
            **{f"param/{name}": p for name, p in self.params.items()},
            **{f"buffer/{name}": b for name, b in self.buffers.items()},
        }

    @staticmethod
    def load(path: str | Path) -> tuple[Model, dict[str, Any]]:
        """Read a model file written by `save`, without pickle; returns (model, meta).

        Every member's declared shape and dtype is checked against its stored size before it is read, and the
        model the header describes against this machine's memory before it is built.
        """
        path = Path(path)
        if not path.is_file():
            raise MlplabError(f"{path}: " + ("not a file" if path.exists() else "no such model file"))
        try:
            if not zipfile.is_zipfile(path):
                raise ValueError("not an .npz archive")
            with np.load(path, allow_pickle=False) as archive:
                _check_members(archive.zip)
                header = json.loads(str(archive["__header__"]))
                if not isinstance(header, dict) or not isinstance(header.get("hyper"), dict):
                    raise ValueError("its header is not an mlplab model header")
                params = {k.removeprefix("param/"): archive[k] for k in archive.files if k.startswith("param/")}
                buffers = {k.removeprefix("buffer/"): archive[k] for k in archive.files if k.startswith("buffer/")}
            model = build_model(str(header["model"]), **header["hyper"])
        except MlplabError as exc:  # e.g. an unknown model type or activation named in the header
            raise MlplabError(f"{path}: {exc}") from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            # numpy's own message for pickled content suggests allow_pickle, which mlplab never uses: don't echo it.
            why = "it holds pickled objects" if "pickle" in str(exc) else f"{type(exc).__name__}: {exc}"
            raise MlplabError(f"{path}: not an mlplab model file ({quoted_text(why, 200)})") from None
        if set(params) != set(model.params):
            raise MlplabError(f"{path}: parameters {sorted(params)} do not match {header['model']}")
        if set(buffers) != set(model.buffers):  # files of models without buffers have none: they load as before
            raise MlplabError(f"{path}: buffers {sorted(buffers)} do not match {header['model']}")
        for kind, stored, targets in (("parameter", params, model.params), ("buffer", buffers, model.buffers)):
            for name, p in targets.items():
                if stored[name].shape != p.shape:
                    raise MlplabError(f"{path}: {kind} {name} has shape {stored[name].shape}, expected {p.shape}")
                if stored[name].dtype.kind != "f":
                    raise MlplabError(f"{path}: {kind} {name} holds {stored[name].dtype} values, not floating point")
                if not np.isfinite(stored[name]).all():
                    bad = int(np.size(stored[name]) - np.isfinite(stored[name]).sum())
                    raise MlplabError(f"{path}: {kind} {name} holds {bad} value(s) that are not finite (NaN or ±inf)")
                if name.startswith("running_var") and (stored[name] < 0).any():
                    raise MlplabError(f"{path}: buffer {name} holds a negative variance ({stored[name].min():g})")
                p[...] = stored[name]
        try:
            return model, checked_meta(header.get("meta", {}))
        except MlplabError as exc:
            raise MlplabError(f"{path}: {exc}") from None


def checked_meta(meta: Any) -> dict[str, Any]:
    """A model file's `meta`, refused unless each key evaluate, predict and export read holds a usable value."""
    if not isinstance(meta, dict):
        raise MlplabError(f"its meta is {quoted(meta, 60)}, not a mapping of names to values")
    pixel_max = meta.get("pixel_max", 1.0)
    if isinstance(pixel_max, bool) or not isinstance(pixel_max, int | float) or not 0 < pixel_max < math.inf:
        raise MlplabError(f"its pixel scale pixel_max is {quoted(pixel_max, 60)}, not a number > 0")
    for key in ("dataset", "data_dir"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise MlplabError(f"its {key} is {quoted(meta[key], 60)}, not a name")
    epoch = meta.get("best_epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        raise MlplabError(f"its best_epoch is {quoted(epoch, 60)}, not an epoch number")
    return meta


MAX_HEADER_BYTES = 1 << 20


def _check_members(archive: zipfile.ZipFile) -> None:
    """Each .npy member's declared shape and dtype must match its stored size, within MAX_DATA_BYTES: nothing is
    allocated for a size a member only claims."""
    for info in archive.infolist():
        if info.file_size > MAX_DATA_BYTES:
            raise ValueError(f"member {info.filename} claims {info.file_size:,} bytes")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"member {info.filename} has .npy format version {version}")
            shape, _, dtype = read_header[version](member)
            if dtype.hasobject:
                raise ValueError("it holds pickled objects")
            declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size or (info.filename == "__header__.npy" and declared > MAX_HEADER_BYTES):
                raise ValueError(f"member {info.filename} declares {shape} {dtype} but stores {info.file_size} bytes")


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
    """Construct a model by name with only the hyper-parameters its constructor takes.

    Its memory (parameters and the arrays of an evaluation batch, plus a training batch when `hyper` holds a
    config's batch_size) is checked against this machine's before anything is allocated."""
    cls = model_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    arguments = {k: v for k, v in hyper.items() if k in accepted}
    batch = hyper.get("batch_size")
    check_model_fits(cls.__name__, arguments, batch if isinstance(batch, int) and not isinstance(batch, bool) else None)
    try:
        return cls(**arguments)
    except MemoryError:
        raise MlplabError(f"a {cls.__name__} with {quoted(arguments, 200)} does not fit in memory") from None
