"""Run configuration: the assignment's sectioned YAML flattened into one checked dict, plus --set overrides."""

from __future__ import annotations

import copy
import difflib
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlplab import choices
from mlplab.choices import one_of
from mlplab.errors import ConfigError
from mlplab.files import quoted, quoted_text


@dataclass(frozen=True)
class Option:
    """One config key: its type, default, a validity check and what it means."""

    kind: type | tuple[type, ...]
    default: Any
    check: Callable[[Any], bool] = lambda value: True
    rule: str = ""
    help: str = ""

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The values a key of a fixed set takes (what the command line offers), else None."""
        return self.check.choices if isinstance(self.check, OneOf) else None


def _positive(v: Any) -> bool:
    return v > 0


def _non_negative(v: Any) -> bool:
    return v >= 0


@dataclass(frozen=True)
class OneOf:
    """The check of a key that takes one of a fixed set of values."""

    choices: tuple[str, ...]

    def __call__(self, value: Any) -> bool:
        return value in self.choices


def _positive_ints(v: Any) -> bool:
    return len(v) > 0 and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v)


def _increasing_ints(v: Any) -> bool:
    return all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v) and v == sorted(set(v))


OPTIONS: dict[str, Option] = {
    "type": Option(str, "TwoLayerNet", help="model: SoftmaxRegression, TwoLayerNet, MLP or CNN"),
    "batch_size": Option(int, 64, _positive, "must be ≥ 1", "training batch size"),
    "learning_rate": Option(float, 0.1, _positive, "must be > 0", "step size"),
    "reg": Option(float, 0.001, _non_negative, "must be ≥ 0", "L2 strength on weight matrices"),
    "epochs": Option(int, 10, _positive, "must be ≥ 1", "passes over the training split"),
    "momentum": Option(float, 0.0, lambda v: 0 <= v < 1, "must be in [0, 1)", "classical momentum"),
    "seed": Option(int, 1024, _non_negative, "must be ≥ 0", "seeds init and shuffling"),
    "dataset": Option(str, "digits", OneOf(choices.DATASETS), f"must be {one_of(choices.DATASETS)}", "which data"),
    "data_dir": Option((str, type(None)), None, help="directory holding the dataset's files"),
    "dtype": Option(str, "float32", OneOf(choices.DTYPES), f"must be {one_of(choices.DTYPES)}", "compute precision"),
    "threads": Option(int, 0, _non_negative, "must be ≥ 0", "BLAS threads for the run (0 = the library's default)"),
    "hidden_sizes": Option(
        list,
        [128],
        _positive_ints,
        "must be a non-empty list of ints ≥ 1",
        "hidden layer widths: TwoLayerNet's one (a list of one), MLP's, CNN's dense head",
    ),
    "conv_channels": Option(
        list, [32, 64], _positive_ints, "must be a non-empty list of ints ≥ 1", "filters of each CNN conv block"
    ),
    "kernel_size": Option(int, 5, _positive, "must be ≥ 1", "CNN convolution kernel: kernel_size × kernel_size"),
    "conv_padding": Option(
        str,
        "valid",
        OneOf(choices.CONV_PADDINGS),
        f"must be {one_of(choices.CONV_PADDINGS)}",
        "CNN padding: none, kernel_size//2 zeros, or kernel_size//2 wrapped around",
    ),
    "pool": Option(int, 2, _positive, "must be ≥ 1", "CNN max-pooling window after each conv (1 = none)"),
    "batch_norm": Option(
        bool, False, help="CNN: BatchNorm after each conv (before pooling and activation), convs without bias"
    ),
    "activation": Option(
        str,
        "relu",
        OneOf(choices.ACTIVATIONS),
        f"must be {one_of(choices.ACTIVATIONS)}",
        "hidden activation of MLP",
    ),
    "init": Option(
        str,
        "he",
        OneOf(choices.INITS),
        f"must be {one_of(choices.INITS)}",
        "MLP weight init: He N(0,2/fan_in), Xavier N(0,2/(fan_in+fan_out)), assignment 0.001·N(0,1)",
    ),
    "dropout": Option(
        float, 0.0, lambda v: 0 <= v < 1, "must be in [0, 1)", "MLP (and CNN dense head) hidden-unit drop probability"
    ),
    "optimizer": Option(
        str,
        "sgd",
        OneOf(choices.OPTIMIZERS),
        f"must be {one_of(choices.OPTIMIZERS)}",
        "update rule (nesterov is SGD with Nesterov momentum)",
    ),
    "weight_decay": Option(
        float, 0.0, _non_negative, "must be ≥ 0", "AdamW's decoupled decay λ: W ← W − lr·λ·W (use reg for L2)"
    ),
    "beta1": Option(float, 0.9, lambda v: 0 <= v < 1, "must be in [0, 1)", "Adam's first-moment decay"),
    "beta2": Option(float, 0.999, lambda v: 0 <= v < 1, "must be in [0, 1)", "Adam's second-moment decay"),
    "schedule": Option(
        str, "none", OneOf(choices.SCHEDULES), f"must be {one_of(choices.SCHEDULES)}", "learning-rate schedule"
    ),
    "warmup_epochs": Option(float, 0.0, _non_negative, "must be ≥ 0", "linear learning-rate warm-up, per step"),
    "milestones": Option(
        list,
        [6, 8],
        _increasing_ints,
        "must be increasing epochs ≥ 1",
        "epochs after which the step schedule multiplies the rate by gamma",
    ),
    "gamma": Option(float, 0.1, _positive, "must be > 0", "step schedule's factor"),
    "patience": Option(
        int, 0, _non_negative, "must be ≥ 0", "stop after this many epochs without a better val acc (0 = off)"
    ),
    "shift": Option(int, 0, _non_negative, "must be ≥ 0", "random shifts of training images by up to this many pixels"),
    "rotate": Option(float, 0.0, lambda v: 0 <= v <= 180, "must be in [0, 180]", "random rotations up to ± degrees"),
    "flip": Option(bool, False, help="random horizontal flips of training images, each with probability 1/2"),
    "elastic": Option(
        float,
        0.0,
        _non_negative,
        "must be ≥ 0",
        "elastic distortions of training images: displacement scale α in pixels (0 = off; Simard et al. use 34)",
    ),
    "elastic_sigma": Option(
        float, 4.0, _positive, "must be > 0", "smoothness of the elastic displacement field: Gaussian std in pixels"
    ),
    "normalize": Option(
        str,
        "none",
        OneOf(choices.NORMALIZATIONS),
        f"must be {one_of(choices.NORMALIZATIONS)}",
        "per-pixel (x − mean)/std from the training split",
    ),
    "diagnostics": Option(
        bool,
        True,
        help="measure every layer on a validation probe at epoch 0 and after each epoch: diagnostics.json",
    ),
}
ALIASES = {"model": "type", "lr": "learning_rate"}
"""Other spellings of a key, taken silently (the assignment's files say model and lr)."""


def _one_entry(value: Any) -> Any:
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class Renamed:
    """A key's old name: `new` is its name now, `convert` turns an old value into a new one (`how` says so)."""

    new: str
    convert: Callable[[Any], Any] = lambda value: value
    how: str = ""


RENAMED: dict[str, Renamed] = {
    "augment": Renamed("shift"),
    "steps": Renamed("milestones"),
    "hidden_size": Renamed("hidden_sizes", _one_entry, "hidden_size: n means hidden_sizes: [n]"),
    "hidden": Renamed("hidden_sizes", _one_entry, "hidden: n means hidden_sizes: [n]"),
}
"""Old key names, still read (with a note on stderr from files and --set, silently from stored runs) and turned
into the new ones: docs/guide/configs.md, "Renamed keys"."""
_noted: set[str] = set()  # old names already noted: one note per name and process


def canonical(key: str, value: Any, where: str = "") -> tuple[str, Any]:
    """(key, value) under today's names: an alias becomes its key; an old name becomes the new one, with its value
    converted (hidden_size: n is hidden_sizes: [n]) and, when `where` names the source, a one-line note on stderr."""
    key = ALIASES.get(key, key)
    renamed = RENAMED.get(key)
    if renamed is None:
        return key, value
    if where and key not in _noted:
        _noted.add(key)
        how = f"; {renamed.how}" if renamed.how else ""
        print(
            f"mlplab: note: {where}: config key {key} is now {renamed.new}{how} (the old name still works)",
            file=sys.stderr,
        )
    return renamed.new, renamed.convert(value)


def upgrade(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config written with old key names (a stored run's metrics.json) under today's names, silently; where a
    config holds both names, the new one's value stands."""
    out = {key: value for key, value in config.items() if key not in RENAMED}
    for key, value in config.items():
        if key in RENAMED:
            new, converted = canonical(key, value)
            out.setdefault(new, converted)
    return out


def defaults() -> dict[str, Any]:
    """Every key at its default."""
    return {key: copy.deepcopy(option.default) for key, option in OPTIONS.items()}  # list defaults stay unshared


def flatten(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Merge the assignment's top-level sections (`Train: {...}`, `network: {...}`) with flat keys."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for inner, inner_value in items:
            name, inner_value = canonical(str(inner), inner_value, where)
            if name in flat and flat[name] != inner_value:
                raise ConfigError(f"{where}: key {quoted(name)} is set twice with different values")
            flat[name] = inner_value
    return flat


MAX_YAML_BYTES = 1 << 20  # configs and search spaces are a few hundred bytes
MAX_YAML_NODES = 10_000  # values after expanding aliases: a few hundred in any real config


def load_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parse a YAML file; a missing, unreadable, oversized or broken one is a ConfigError naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise OSError(f"{path.stat().st_size:,} bytes is too large for a {what} (limit {MAX_YAML_BYTES:,})")
        return bounded_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {quoted_text(str(exc), 200)}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: broken YAML{at}: {quoted_text(problem)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def bounded_yaml(text: str) -> Any:
    """yaml.safe_load, refusing documents that nest too deeply or whose aliases expand past MAX_YAML_NODES."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count_nodes(node, {}, 0)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError("YAML nested too deeply") from None
    finally:
        loader.dispose()


def _count_nodes(node: yaml.Node, seen: dict[int, int], depth: int) -> int:
    """Values under `node` with every alias expanded, counted without expanding them (each node once)."""
    if id(node) in seen:
        return seen[id(node)]
    if depth > 100:
        raise ConfigError("YAML nested more than 100 levels deep")
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_count_nodes(child, seen, depth + 1) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_count_nodes(k, seen, depth + 1) + _count_nodes(v, seen, depth + 1) for k, v in node.value)
    if total > MAX_YAML_NODES:
        raise ConfigError(f"YAML expands to more than {MAX_YAML_NODES:,} values (nested aliases?)")
    seen[id(node)] = total
    return total


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML config file into a flat dict (not yet checked)."""
    raw = load_yaml(path)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections or keys, got {type(raw).__name__}")
    return flatten(raw, str(path))


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Turn `key=value` strings into a dict, values typed by YAML (so 0.1 is a float, 10 an int)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {quoted(pair)}: expected key=value")
        key = key.strip().rsplit(".", 1)[-1]
        try:
            value = bounded_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        except ConfigError as exc:
            raise ConfigError(f"--set {quoted(pair)}: {exc}") from None
        name, value = canonical(key, value, "--set")
        out[name] = value
    return out


def check(config: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown keys (suggesting the closest) and bad values; coerce ints to floats where floats go."""
    out = {}
    for key, value in config.items():
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, list(OPTIONS) + list(ALIASES) + list(RENAMED), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config key {quoted(key)}{hint}")
        option = OPTIONS[key]
        if option.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if option.kind is float and isinstance(value, str):
            value = _exponent_literal(value)
        kinds = option.kind if isinstance(option.kind, tuple) else (option.kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise ConfigError(f"config key {key!r}: expected {wanted}, got {quoted(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key {key!r}={value!r}: must be a finite number")
        if value is not None and not option.check(value):
            raise ConfigError(f"config key {key!r}={quoted(value)}: {option.rule}")
        out[key] = value
    return out


def _exponent_literal(text: str) -> float | str:
    """YAML 1.1 reads 1e-3 or 1e6 (no dot) as a string: take it as the finite number it spells, else keep the text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def resolve(
    path: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = (), **explicit: Any
) -> dict[str, Any]:
    """Defaults, then the YAML file (or a mapping laid out like one), then --set overrides, then explicit non-None
    keyword values; checked."""
    config = defaults()
    if isinstance(path, Mapping):
        config.update(check(flatten(dict(path), "config")))
    elif path:
        config.update(check(read_yaml(path)))
    config.update(check(parse_overrides(overrides)))
    config.update(check(dict(canonical(k, v, "keyword") for k, v in explicit.items() if v is not None)))
    if config["data_dir"] and not explicit.get("dataset") and config["dataset"] == "digits":
        config["dataset"] = infer_dataset(config["data_dir"])
    from mlplab.models import model_class

    config["type"] = model_class(config["type"]).__name__
    return config


OPTIMIZER_KEYS: dict[str, tuple[str, ...]] = {
    "momentum": ("sgd", "nesterov"),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "weight_decay": ("adamw",),
}
SCHEDULE_KEYS: dict[str, tuple[str, ...]] = {"milestones": ("step",), "gamma": ("step",)}


MEASURING_KEYS = frozenset({"diagnostics"})
"""Keys that change what is measured of a run, never its numbers: not part of a run's identity."""


def applicable(config: dict[str, Any]) -> dict[str, Any]:
    """The keys that shape a run of this model type, optimizer and schedule: what metrics.json records.

    A model's keys are its constructor's parameters (a Two-Layer Net has no `activation`, an MLP no `image_shape`);
    Adam's betas, AdamW's decay, momentum and the step schedule's keys only where that rule or schedule is used.
    """
    import inspect

    from mlplab.models import Model, model_class

    takes = set(inspect.signature(model_class(config["type"]).__init__).parameters)
    model_keys = {k for cls in Model.registry.values() for k in inspect.signature(cls.__init__).parameters}
    out = {}
    for key, value in config.items():
        if key in MEASURING_KEYS:
            continue
        if key in model_keys and key in OPTIONS and key not in takes:
            continue
        if key in OPTIMIZER_KEYS and config.get("optimizer", "sgd") not in OPTIMIZER_KEYS[key]:
            continue
        if key in SCHEDULE_KEYS and config.get("schedule", "none") not in SCHEDULE_KEYS[key]:
            continue
        out[key] = value
    return out


def infer_dataset(data_dir: str) -> str:
    """A --data-dir without --dataset means MNIST, or Fashion-MNIST when the directory's name says so."""
    return "fashion-mnist" if "fashion" in Path(data_dir).resolve().name.lower() else "mnist"
