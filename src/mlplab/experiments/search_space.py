"""Search spaces for `mlplab tune`: a YAML file mapping config keys to choices or ranges, checked against the
config's own rules, and the samplers that can search them. Optuna is only needed once a trial is suggested."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplab import config as configs
from mlplab.errors import ConfigError
from mlplab.files import quoted

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("grid", "random", "tpe")
FIELDS = ("choices", "low", "high", "step", "log")


@dataclass(frozen=True)
class Param:
    """One searched config key: a list of choices, or a range (with an optional step, or log scale)."""

    key: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def integer(self) -> bool:
        return configs.OPTIONS[self.key].kind is int

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value for this key."""
        if self.choices is not None:
            return decoded({self.key: trial.suggest_categorical(self.key, self.grid())})[self.key]
        assert self.low is not None and self.high is not None
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        """Every value the grid sampler should try, as the study stores it (a list as its JSON text)."""
        if self.choices is not None:
            return [json.dumps(c) if isinstance(c, list) else c for c in self.choices]
        if self.step is None:
            raise ConfigError(f"grid sampling needs choices or a step for {self.key!r}")
        assert self.low is not None and self.high is not None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.integer else [round(v, 12) for v in values]


def decoded(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's params as config values: Optuna keeps only numbers and strings, so a list-valued key's choice
    (hidden_sizes: [64, 32]) is stored as its JSON text."""
    listed = {k for k, option in configs.OPTIONS.items() if option.kind is list}
    return {k: json.loads(v) if k in listed and isinstance(v, str) else v for k, v in params.items()}


def load_space(path: str | Path) -> dict[str, Param]:
    """A search space YAML: `key: {choices: [...]}` or `key: {low: .., high: .., step: .., log: true}`.

    A key's old name is read as its new one: `hidden_size: {choices: [64, 128]}` as
    `hidden_sizes: {choices: [[64], [128]]}`."""
    path = Path(path)
    raw = configs.load_yaml(path, "search space file")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a mapping of config keys to {{choices: [...]}} or {{low:, high:}}")
    space = {}
    for name, spec in raw.items():
        key, _ = configs.canonical(str(name), None, str(path))
        if key != name and isinstance(spec, dict | list):
            spec = _renamed_choices(str(name), spec)
        space[key] = parse_param(f"{path}: {key}", key, spec)
    return space


def _renamed_choices(old: str, spec: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
    """An old key's choices as its new key's values (hidden_size's 64 is hidden_sizes' [64])."""
    convert = lambda value: configs.canonical(old, value)[1]  # noqa: E731
    if isinstance(spec, list):
        return [convert(c) for c in spec]
    if isinstance(spec.get("choices"), list):
        return {**spec, "choices": [convert(c) for c in spec["choices"]]}
    return spec


def parse_param(where: str, key: str, spec: Any) -> Param:
    """One entry of a space file (a list is short for its choices); errors start with `where`."""
    if key not in configs.OPTIONS:
        configs.check({key: None})  # raises "unknown config key" with the closest match
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict) or not ({"choices"} <= spec.keys() or {"low", "high"} <= spec.keys()):
        raise ConfigError(f"{where}: expected {{choices: [...]}} or {{low: ..., high: ...}}")
    unknown = set(spec) - set(FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return _choices(where, key, spec["choices"]) if "choices" in spec else _range(where, key, spec)


def _choices(where: str, key: str, choices: Any) -> Param:
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}: choices must be a non-empty list")
    return Param(key, choices=tuple(_checked(where, key, c) for c in choices))


def _range(where: str, key: str, spec: dict[str, Any]) -> Param:
    if configs.OPTIONS[key].kind is list:
        raise ConfigError(f"{where}: a list-valued key is searched over choices, e.g. {{choices: [[64], [128]]}}")
    low, high = _checked(where, key, spec["low"]), _checked(where, key, spec["high"])
    if not isinstance(low, int | float) or isinstance(low, bool) or low >= high:
        raise ConfigError(f"{where}: needs numbers with low < high, got low={quoted(low)} high={quoted(high)}")
    step, log = spec.get("step"), bool(spec.get("log", False))
    if step is not None and (not isinstance(step, int | float) or step <= 0 or log):
        raise ConfigError(f"{where}: step must be a positive number and cannot be combined with log")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0")
    return Param(key, low=low, high=high, step=step, log=log)


def _checked(where: str, key: str, value: Any) -> Any:
    try:
        return configs.check({key: value})[key]
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
