"""Optimizers: a base class applies L2 and walks the parameters; each optimizer writes only its update rule."""

from __future__ import annotations

import numpy as np

from mlplab.models.base import Model


class Optimizer:
    """Adds reg·W to each weight matrix's gradient (never to biases), then calls `update` per parameter."""

    def __init__(self, lr: float, reg: float = 0.0) -> None:
        self.lr = lr
        self.base_lr = lr
        self.reg = reg
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def step(self, model: Model) -> None:
        """One update of every parameter from the gradients the last training forward pass left."""
        for name, param in model.params.items():
            grad = model.grads[name]
            if self.reg and name in model.weight_names:
                grad += self.reg * param
            self.update(name, param, grad)

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
    """θ ← θ − lr·g, or with classical momentum: v ← μv − lr·g; θ ← θ + v."""

    def __init__(self, lr: float, reg: float = 0.0, momentum: float = 0.0) -> None:
        super().__init__(lr, reg)
        self.momentum = momentum

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        if not self.momentum:
            param -= self.lr * grad
            return
        velocity = self.slot(name, "velocity", param)
        velocity *= self.momentum
        velocity -= self.lr * grad
        param += velocity
