"""Learning-rate schedules: a multiplier of the base rate for every training step, computed once per run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlplab.choices import SCHEDULES
from mlplab.errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    """Step decay or cosine annealing, after an optional linear warm-up.

    * step: in (1-based) epoch e the factor is gamma^k, k = how many milestones are < e (the assignment's
      `steps: [6, 8]` gives 1 for epochs 1–6, 0.1 for 7–8, 0.01 from 9 on); changes only between epochs.
    * cosine: 0.5·(1 + cos(π·τ)) per step, τ going from 0 to almost 1 over the steps after the warm-up.
    * warm-up: for the first `warmup_epochs` epochs the factor ramps linearly per step from 1/W to 1
      (W = warm-up steps), multiplying the step schedule or replacing the head of the cosine.
    """

    name: str = "none"
    warmup_epochs: float = 0.0
    milestones: Sequence[int] = (6, 8)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.name!r}; choose one of {', '.join(SCHEDULES)}")

    @property
    def active(self) -> bool:
        return self.name != "none" or self.warmup_epochs > 0

    def factors(self, epochs: int, steps_per_epoch: int) -> np.ndarray:
        """The multiplier of the base learning rate at each of the epochs·steps_per_epoch steps, in order."""
        total = epochs * steps_per_epoch
        step = np.arange(total)
        warmup = min(round(self.warmup_epochs * steps_per_epoch), total)
        factor = np.ones(total)
        if self.name == "step":
            epoch = step // steps_per_epoch + 1
            passed = (epoch[:, None] > np.asarray(self.milestones, dtype=np.int64)[None, :]).sum(axis=1)
            factor = self.gamma**passed
        elif self.name == "cosine":
            tau = (step - warmup) / max(total - warmup, 1)
            factor = np.where(step < warmup, 1.0, 0.5 * (1.0 + np.cos(np.pi * tau)))
        if warmup:
            factor = factor * np.minimum(1.0, (step + 1) / warmup)
        return factor
