"""Optimizers: a base class adds L2 and walks the parameters; each optimizer writes only its update rule.

The gradients they read (`model.grads`, left by `train_batch`) are never written: the L2 term g + reg·W is formed
in the optimizer's own scratch. The training loop asks the optimizer for a whole step, `train_step(model, x, y)`:
by default `train_batch` then `step`; plain SGD (`SGD` itself with momentum 0, `SGD.fuses_into_backward`) takes
the fused fast path `Network.sgd_step` instead. Any subclass overriding `update` or `step` is stepped through
`step` and its own rule, always.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from mlplab import choices, kernels
from mlplab.errors import ConfigError
from mlplab.models.base import Model


class Optimizer:
    """Adds reg·W to each weight matrix's gradient (never to biases), then calls `update` per parameter."""

    def __init__(self, lr: float, reg: float = 0.0) -> None:
        self.lr = lr
        self.base_lr = lr
        self.reg = reg
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def train_step(self, model: Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Forward, backward and update on one batch; returns the batch's (loss, accuracy).

        A non-finite loss is returned without an update (the training loop stops there). On the fused path of
        plain SGD the update has already happened inside `sgd_step` by the time the loss is known.
        """
        if self.fuses_into_backward:  # the update rides in the backward pass's products
            return model.sgd_step(x, y, self.lr, self.reg)
        loss, acc = model.train_batch(x, y)
        if math.isfinite(loss):
            self.step(model)
        return loss, acc

    def step(self, model: Model) -> None:
        """One update of every parameter from the gradients the last `train_batch` left (which stay unchanged)."""
        for name, param in model.params.items():
            grad = model.grads[name]
            if self.reg and name in model.weight_names:
                regularized = np.multiply(param, self.reg, out=self.slot(name, "l2", param))
                regularized += grad
                grad = regularized
            self.update(name, param, grad)

    @property
    def fuses_into_backward(self) -> bool:
        """Whether a step may be fused into the backward pass as `Network.sgd_step(x, y, lr, reg)` instead."""
        return False

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Change `param` in place from its regularized gradient."""
        raise NotImplementedError

    def slot(self, name: str, key: str, like: np.ndarray) -> np.ndarray:
        """A per-parameter state buffer (velocity, moments), created as zeros on first use."""
        slots = self.state.setdefault(name, {})
        if key not in slots:
            slots[key] = np.zeros_like(like)
        return slots[key]


class SGD(Optimizer):
    """θ ← θ − lr·g, or with classical momentum: v ← μv − lr·g; θ ← θ + v.

    With `nesterov`, the step looks ahead along the new velocity: v ← μv − lr·g; θ ← θ + μv − lr·g.
    """

    def __init__(self, lr: float, reg: float = 0.0, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr, reg)
        self.momentum = momentum
        self.nesterov = nesterov

    @property
    def fuses_into_backward(self) -> bool:
        """Plain SGD of this very class: θ − lr·(g + reg·θ) = (1 − lr·reg)·θ − lr·g, one GEMM per dense parameter.

        A subclass that overrides `update` or `step` is never fused, so its own rule is what runs.
        """
        cls = type(self)
        return not self.momentum and cls.update is SGD.update and cls.step is Optimizer.step

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        lr = param.dtype.type(self.lr)
        if not self.momentum:
            kernels.sgd(param, grad, lr)
            return
        velocity = self.slot(name, "velocity", param)
        kernels.momentum(param, grad, velocity, lr, param.dtype.type(self.momentum), self.nesterov)


class Adam(Optimizer):
    """Adam with bias correction; `reg` is coupled L2 (added to the gradient, so it is scaled like it).

    m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  θ ← θ − lr·m̂ / (√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
    """

    def __init__(
        self, lr: float, reg: float = 0.0, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(lr, reg)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0

    def step(self, model: Model) -> None:
        self.t += 1
        super().step(model)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        # lr·m̂/(√v̂ + ε) with both corrections folded into one step size and one ε; one pass per parameter.
        correction2 = np.sqrt(1.0 - self.beta2**self.t)
        step_size = self.lr * correction2 / (1.0 - self.beta1**self.t)
        t = param.dtype.type
        kernels.adam(
            param,
            grad,
            self.slot(name, "m", param),
            self.slot(name, "v", param),
            t(self.beta1),
            t(1.0 - self.beta1),
            t(self.beta2),
            t(1.0 - self.beta2),
            t(step_size),
            t(self.eps * correction2),
            t(self.decay(name)),
        )

    def decay(self, name: str) -> float:
        """The factor θ is multiplied by before the step: 1 (Adam has no decoupled decay)."""
        return 1.0


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← θ − lr·λ·θ on weight matrices (not biases), outside the moments."""

    def __init__(
        self,
        lr: float,
        reg: float = 0.0,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(lr, reg, beta1, beta2, eps)
        self.weight_decay = weight_decay
        self.decayed: tuple[str, ...] = ()

    def step(self, model: Model) -> None:
        self.decayed = model.weight_names
        super().step(model)

    def decay(self, name: str) -> float:
        """1 − lr·λ for weight matrices, 1 for biases."""
        return 1.0 - self.lr * self.weight_decay if self.weight_decay and name in self.decayed else 1.0


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = dict(
    zip(choices.OPTIMIZERS, (SGD, partial(SGD, nesterov=True), Adam, AdamW), strict=True)
)
"""The optimizer registry: name (`choices.OPTIMIZERS`, in that order) → constructor taking (lr, **settings)."""


def build_optimizer(name: str, lr: float, **settings: Any) -> Optimizer:
    """The optimizer called `name`, given the `settings` its constructor takes (reg, momentum, beta1, …; others
    are ignored); an unknown name is a ConfigError listing the known ones."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    factory = OPTIMIZERS[name]
    accepted = inspect.signature(factory).parameters
    return factory(lr, **{k: v for k, v in settings.items() if k in accepted})
