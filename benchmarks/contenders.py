"""The recipes' shape (MLP 784-1024-10 ReLU, Adam lr 1e-3, batch 128) in mlplab and PyTorch, and JAX contenders
(a jit-compiled step, CPU) for both benchmarked shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlplab.data import Dataset
from mlplab.models import MLP
from mlplab.optim import Adam
from mlplab.training import train_epoch

RECIPE_HIDDEN, RECIPE_BATCH, RECIPE_LR = 1024, 128, 1e-3
CLASSES = 10
Epoch = Callable[[], Any]


def mlplab_recipe_epoch(ds: Dataset, hidden: int = RECIPE_HIDDEN, batch: int = RECIPE_BATCH) -> Epoch:
    """One epoch of mlplab's MLP (ReLU, He init) + Adam, through the code `fit` runs."""
    model = MLP(ds.input_size, [hidden], CLASSES, activation="relu", init="he", seed=0)
    optimizer = Adam(RECIPE_LR)
    rng = np.random.default_rng(0)
    return lambda: train_epoch(model, optimizer, ds.train, batch, ds.pixel_max, rng)


def torch_recipe_epoch(
    ds: Dataset, threads: int, hidden: int = RECIPE_HIDDEN, batch: int = RECIPE_BATCH
) -> Epoch | None:
    """The same network and Adam in PyTorch (CPU, float32), or None without it."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(ds.input_size, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, CLASSES))
    return torch_training(ds, net, torch.optim.Adam(net.parameters(), lr=RECIPE_LR), batch)


def torch_training(ds: Dataset, net: Any, optimizer: Any, batch: int) -> Epoch:
    """One shuffled epoch of `net` + `optimizer` on the scaled training split, mean cross-entropy, in PyTorch."""
    import torch

    x = torch.from_numpy(ds.train.x.astype(np.float32) / np.float32(ds.pixel_max))
    y = torch.from_numpy(ds.train.y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch() -> None:
        order = torch.randperm(len(y))
        for start in range(0, len(y), batch):
            index = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x[index]), y[index]).backward()
            optimizer.step()

    return epoch


def jax_epoch(
    ds: Dataset, hidden: int, batch: int, activation: str, optimizer: str, lr: float, reg: float
) -> Epoch | None:
    """One epoch of FC → activation → FC → softmax CE in JAX, the whole step (gather, forward, backward, update)
    one jit-compiled function on CPU; `optimizer` "sgd" (L2 `reg` on weight matrices) or "adam". None without jax.

    The step's shapes are fixed, so the epoch's short last batch compiles once more (in the untimed warm-up).
    """
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    act = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[activation]
    x = jnp.asarray(ds.train.x.astype(np.float32) / np.float32(ds.pixel_max))
    y = jnp.asarray(ds.train.y.astype(np.int32))
    init = np.random.default_rng(0)
    params = {
        "W1": jnp.asarray(
            (init.standard_normal((ds.input_size, hidden)) * np.sqrt(2 / ds.input_size)).astype(np.float32)
        ),
        "b1": jnp.zeros(hidden, jnp.float32),
        "W2": jnp.asarray((init.standard_normal((hidden, CLASSES)) * np.sqrt(2 / hidden)).astype(np.float32)),
        "b2": jnp.zeros(CLASSES, jnp.float32),
    }

    def loss(p: dict[str, Any], xb: Any, yb: Any) -> Any:
        z = act(xb @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), yb[:, None], axis=1))

    def sgd_step(state: Any, xs: Any, ys: Any, index: Any) -> Any:
        value, grads = jax.value_and_grad(loss)(state, xs[index], ys[index])
        return {k: p - lr * (grads[k] + reg * p if k.startswith("W") else grads[k]) for k, p in state.items()}, value

    def adam_step(state: Any, xs: Any, ys: Any, index: Any) -> Any:
        p, m, v, t = state
        value, grads = jax.value_and_grad(loss)(p, xs[index], ys[index])
        t = t + 1
        m = {k: 0.9 * m[k] + 0.1 * grads[k] for k in p}
        v = {k: 0.999 * v[k] + 0.001 * grads[k] ** 2 for k in p}
        size = lr * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        p = {k: p[k] - size * m[k] / (jnp.sqrt(v[k]) + 1e-8) for k in p}
        return (p, m, v, t), value

    if optimizer == "sgd":
        state: Any = params
        step = jax.jit(sgd_step, donate_argnums=0)
    else:
        moments = [{k: jnp.zeros_like(p) for k, p in params.items()} for _ in range(2)]
        state = (params, *moments, jnp.float32(0))
        step = jax.jit(adam_step, donate_argnums=0)
    rng = np.random.default_rng(0)
    n = len(ds.train)

    def epoch() -> float:
        """The epoch's mean minibatch loss (summed on the device, as mlplab's epoch sums its losses)."""
        nonlocal state
        order = rng.permutation(n).astype(np.int32)
        total = jnp.float32(0)
        for start in range(0, n, batch):
            state, value = step(state, x, y, order[start : start + batch])
            total = total + value
        return float(total) / -(-n // batch)

    return epoch
