"""What a report section of `mlplab reproduce` is built from: the shared `Context` and the `Extra` hook.

Leaf experiments (e.g. the randomization tests) plug a section into the writeup through these types without
importing the orchestrator that runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplab.experiments.executors import Executor, Runner, run_dir_name
from mlplab.report import Section


def label(value: Any) -> str:
    """A value as the writeup prints it: 1, 0.1, 0.0001."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def change_text(overrides: dict[str, Any]) -> str:
    """Config changes as the writeup prints them: "learning_rate = 0.05, reg = 0.01"."""
    return ", ".join(f"{k} = {label(v)}" for k, v in overrides.items())


@dataclass
class Context:
    """What a section needs: the base config, the shared runner, the output directory, results so far."""

    base: dict[str, Any]
    out: Path
    runner: Runner
    executor: Executor
    results: dict[str, Any] = field(default_factory=dict)

    def name(self, config: dict[str, Any]) -> str:
        """A run's directory name: its differences from the base config, or "default"."""
        diff = {k: v for k, v in sorted(config.items()) if self.base.get(k) != v}
        return run_dir_name("+".join(f"{k}={label(v)}" for k, v in diff.items()) or "default")

    def request(self, overrides: dict[str, Any]) -> str:
        """Ask the runner for the base config with `overrides` (run once however often asked); its name."""
        config = {**self.base, **overrides}
        name = self.name(config)
        diff = {k: v for k, v in config.items() if self.base.get(k) != v}
        title = f"{config['type']} on {config['dataset']}: {change_text(diff) or 'default settings'}"
        return self.runner.request(name, config, title)

    def metrics(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The finished run's metrics (waiting for it when needed)."""
        return self.runner.result(self.request(overrides))

    def run_dir(self, overrides: dict[str, Any]) -> Path:
        return self.runner.store.path(self.name({**self.base, **overrides}))


@dataclass
class Extra:
    """An additional report section: its results.json key and a builder returning (section, results)."""

    key: str
    build: Callable[[Context], tuple[Section, Any]]
