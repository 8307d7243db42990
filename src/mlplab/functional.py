"""Stateless math of the networks: activations, softmax and cross-entropy, each with its derivative."""

from __future__ import annotations

import numpy as np


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


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Row-wise softmax, shifted by the row max so exp never overflows."""
    e: np.ndarray = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


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


def _shift_by_row_max_(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Subtract each row's max in place (so exp never overflows); return (flat view, flat indices of y, hits).

    hits counts the rows whose argmax is y. The max is read at the argmax, and elements are addressed through the
    flat view: on (n, 10) arrays both are several times faster than a max reduction or 2-D fancy indexing.
    """
    if not logits.flags.c_contiguous:
        raise ValueError("the in-place cross-entropy needs C-contiguous logits")
    flat = logits.reshape(-1)
    row_starts = np.arange(0, flat.size, logits.shape[1])
    predicted = logits.argmax(axis=1)
    logits -= flat[row_starts + predicted][:, None]
    return flat, row_starts + y, int(np.count_nonzero(predicted == y))


def cross_entropy_loss_(logits: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Summed cross-entropy of softmax(logits) and the number of correct rows; overwrites `logits`."""
    flat, true_at, hits = _shift_by_row_max_(logits, y)
    true_sum = float(flat[true_at].sum())
    log_total = np.log(np.exp(logits, out=logits).sum(axis=1))
    return float(log_total.sum()) - true_sum, hits


def softmax_cross_entropy_(logits: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Mean cross-entropy and number of correct rows; overwrites `logits` with d(mean CE)/d(logits).

    The in-place twin of `softmax_cross_entropy` for the training hot loop: no allocation beyond (n, 1) columns.
    """
    n = len(y)
    flat, true_at, hits = _shift_by_row_max_(logits, y)
    true_sum = float(flat[true_at].sum())
    np.exp(logits, out=logits)
    total = logits @ np.ones((logits.shape[1], 1), logits.dtype)  # row sums as a product: faster than sum(axis=1)
    loss = (float(np.log(total).sum()) - true_sum) / n
    total *= n
    logits /= total
    flat[true_at] -= 1.0 / n
    return loss, hits


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose highest score is the true class."""
    return float((scores.argmax(axis=1) == y).mean())
