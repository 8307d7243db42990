"""Reference formulas the tests check layers, kernels and models against: activations, softmax and cross-entropy,
each with its derivative, written the plain NumPy way (the package computes them in `mlplab.layers` and
`mlplab.kernels`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlplab.functional import softmax

__all__ = [
    "ACTIVATIONS",
    "accuracy",
    "cross_entropy",
    "log_softmax",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad_from_output",
    "softmax",
    "softmax_cross_entropy",
    "softsign",
    "softsign_grad",
    "tanh",
    "tanh_grad_from_output",
]


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function 1/(1+e^-z), overflow-free: 0.5·(1 + tanh(z/2))."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def sigmoid_grad_from_output(s: np.ndarray) -> np.ndarray:
    """σ'(z) written in terms of s = σ(z): s(1 − s)."""
    return s * (1.0 - s)


def relu(z: np.ndarray) -> np.ndarray:
    """max(z, 0)."""
    out: np.ndarray = np.maximum(z, 0)
    return out


def relu_grad(z: np.ndarray) -> np.ndarray:
    """Derivative of ReLU: 1 where z > 0, else 0 (the subgradient 0 at z = 0)."""
    out: np.ndarray = (z > 0).astype(z.dtype)
    return out


def tanh(z: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    out: np.ndarray = np.tanh(z)
    return out


def tanh_grad_from_output(t: np.ndarray) -> np.ndarray:
    """tanh'(z) in terms of t = tanh(z): 1 − t²."""
    out: np.ndarray = 1.0 - t * t
    return out


def softsign(z: np.ndarray) -> np.ndarray:
    """Softsign z/(1+|z|): zero-centred like tanh, with polynomial tails."""
    out: np.ndarray = z / (1.0 + np.abs(z))
    return out


def softsign_grad(z: np.ndarray) -> np.ndarray:
    """Derivative of softsign: 1/(1+|z|)²."""
    d = 1.0 + np.abs(z)
    out: np.ndarray = 1.0 / (d * d)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log(softmax(z)) via log-sum-exp, finite for any finite z."""
    shifted = z - z.max(axis=1, keepdims=True)
    out: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true classes; probabilities clipped away from 0."""
    picked = probs[np.arange(len(y)), y]
    return float(-np.log(np.maximum(picked, np.finfo(probs.dtype).tiny)).mean())


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cross-entropy of softmax(logits) and its gradient w.r.t. the logits: (p − onehot(y)) / N.

    Returns (loss, probs, dlogits); dlogits reuses the probs buffer's copy so probs stay intact.
    """
    n = len(y)
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = float((np.log(total[:, 0]) - shifted[rows, y]).mean())
    probs = exp / total
    dlogits = probs.copy()
    dlogits[rows, y] -= 1.0
    dlogits /= n
    return loss, probs, dlogits


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose highest score is the true class."""
    return float((scores.argmax(axis=1) == y).mean())


Activation = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]

ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": (sigmoid, lambda z, a: sigmoid_grad_from_output(a)),
    "tanh": (tanh, lambda z, a: tanh_grad_from_output(a)),
    "relu": (relu, lambda z, a: relu_grad(z)),
    "softsign": (softsign, lambda z, a: softsign_grad(z)),
}
"""name -> (f(z), f'(z) given z and a = f(z)); the pair a hidden layer needs."""
