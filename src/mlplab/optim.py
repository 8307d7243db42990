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
                decay = np.multiply(param, self.reg, out=self.slot(name, "scratch", param))
                grad += decay
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
    """θ ← θ − lr·g, or with classical momentum: v ← μv − lr·g; θ ← θ + v.

    With `nesterov`, the step looks ahead along the new velocity: v ← μv − lr·g; θ ← θ + μv − lr·g.
    """

    def __init__(self, lr: float, reg: float = 0.0, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr, reg)
        self.momentum = momentum
        self.nesterov = nesterov

    def step(self, model: Model) -> None:
        if self.momentum:
            super().step(model)
            return
        # θ − lr·(g + reg·θ) = (1 − lr·reg)·θ − lr·g: for a gradient the model kept as factors this whole step is
        # one GEMM (see Gradients), the largest saving of a training step after the products themselves.
        for name, param in model.params.items():
            shrink = 1.0 - self.lr * self.reg if name in model.weight_names else 1.0
            model.grads.scaled_add(name, param, -self.lr, shrink)

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        velocity = self.slot(name, "velocity", param)
        velocity *= self.momentum
        velocity -= self.lr * grad
        if self.nesterov:
            param += self.momentum * velocity
            param -= self.lr * grad
        else:
            param += velocity


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
        m = self.slot(name, "m", param)
        v = self.slot(name, "v", param)
        scratch = self.slot(name, "scratch", param)  # reused every step: no allocation in the hot loop
        m *= self.beta1
        np.multiply(grad, 1.0 - self.beta1, out=scratch)
        m += scratch
        v *= self.beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - self.beta2
        v += scratch
        # lr·m̂/(√v̂ + ε) with both corrections folded into one step size and one ε.
        correction2 = np.sqrt(1.0 - self.beta2**self.t)
        step_size = self.lr * correction2 / (1.0 - self.beta1**self.t)
        np.sqrt(v, out=scratch)
        scratch += self.eps * correction2
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
        param -= scratch


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

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        if self.weight_decay and name in self.decayed:
            param *= 1.0 - self.lr * self.weight_decay
        super().update(name, param, grad)
