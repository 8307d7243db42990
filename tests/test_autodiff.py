"""Checks of mlplab.autodiff against finite differences, closed forms, both modes and (optionally) torch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import mlplab.autodiff as ad
from mlplab.autodiff import Value

EPS = 1e-6
C34 = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-wise relative error, safe when both are (near) zero."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def numeric_grad(fn: Callable[[list[np.ndarray]], float], xs: list[np.ndarray], k: int) -> np.ndarray:
    """Central finite differences of scalar fn with respect to xs[k]."""
    g = np.zeros_like(xs[k])
    for i in np.ndindex(xs[k].shape):
        plus = [x.copy() for x in xs]
        minus = [x.copy() for x in xs]
        plus[k][i] += EPS
        minus[k][i] -= EPS
        g[i] = (fn(plus) - fn(minus)) / (2 * EPS)
    return g


# name -> (function of Values, input shapes, inputs must be positive)
CASES: dict[str, tuple[Callable[..., Value], list[tuple[int, ...]], bool]] = {
    "add_(3,4)+(4,)": (lambda a, b: a + b, [(3, 4), (4,)], False),
    "sub_scalar-array": (lambda a, b: a - b, [(), (3, 4)], False),
    "mul_(3,1)*(1,4)": (lambda a, b: a * b, [(3, 1), (1, 4)], False),
    "div_(3,4)/(3,1)": (lambda a, b: a / b, [(3, 4), (3, 1)], True),
    "radd_ndarray": (lambda a: C34 + a, [(4,)], False),
    "rsub_python": (lambda a: 3.0 - a, [(3, 4)], False),
    "rmul_ndarray": (lambda a: C34 * a, [(3, 1)], False),
    "rdiv_python": (lambda a: 2.0 / a, [(3, 4)], True),
    "pow_int": (lambda a: a**3, [(3, 4)], False),
    "pow_frac": (lambda a: a**1.5, [(3, 4)], True),
    "pow_value": (lambda a, b: a**b, [(3, 4), (4,)], True),
    "rpow": (lambda a: 2.0**a, [(3, 4)], False),
    "neg": (lambda a: -a, [(3, 4)], False),
    "exp": (ad.exp, [(3, 4)], False),
    "log": (ad.log, [(3, 4)], True),
    "sin": (ad.sin, [(3, 4)], False),
    "cos": (ad.cos, [(3, 4)], False),
    "tanh": (ad.tanh, [(3, 4)], False),
    "sigmoid": (ad.sigmoid, [(3, 4)], False),
    "relu": (ad.relu, [(3, 4)], False),
    "softsign": (ad.softsign, [(3, 4)], False),
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)], False),
    "matmul_vec_mat": (ad.matmul, [(4,), (4, 2)], False),
    "matmul_mat_vec": (ad.matmul, [(3, 4), (4,)], False),
    "matmul_batched": (lambda a, b: a @ b, [(2, 3, 4), (4, 5)], False),
    "rmatmul_ndarray": (lambda a: C34 @ a, [(4, 2)], False),
    "sum_all": (ad.reduce_sum, [(3, 4)], False),
    "sum_axis0": (lambda a: ad.reduce_sum(a, axis=0), [(3, 4)], False),
    "sum_axis1_keepdims": (lambda a: a.sum(axis=1, keepdims=True), [(3, 4)], False),
    "sum_axes_tuple": (lambda a: a.sum(axis=(0, 2)), [(2, 3, 4)], False),
    "mean_all": (ad.reduce_mean, [(3, 4)], False),
    "mean_axis1": (lambda a: ad.reduce_mean(a, axis=1), [(3, 4)], False),
    "mean_axis0_keepdims": (lambda a: a.mean(axis=0, keepdims=True), [(3, 4)], False),
    "max_all": (ad.reduce_max, [(3, 4)], False),
    "max_axis1": (lambda a: ad.reduce_max(a, axis=1), [(3, 4)], False),
    "max_axis0_keepdims": (lambda a: a.max(axis=0, keepdims=True), [(3, 4)], False),
    "max_axis-1": (lambda a: a.max(axis=-1), [(2, 3, 4)], False),
    "getitem_basic": (lambda a: a[1:, ::2], [(3, 4)], False),
    "getitem_int_array_repeats": (lambda a: a[[0, 2, 2, 1]], [(3, 4)], False),
    "getitem_pairs": (lambda a: a[np.arange(3), np.array([1, 0, 1])], [(3, 4)], False),
    "getitem_scalar": (lambda a: a[1, 2], [(3, 4)], False),
    "reshape": (lambda a: ad.reshape(a, (2, 6)), [(3, 4)], False),
    "reshape_args": (lambda a: a.reshape(4, 3), [(3, 4)], False),
    "transpose": (ad.transpose, [(3, 4)], False),
    "T": (lambda a: a.T, [(3, 4)], False),
    "transpose_axes": (lambda a: ad.transpose(a, (1, 2, 0)), [(2, 3, 4)], False),
    "composite": (
        lambda a, b: ad.tanh(a @ b).sum(axis=0) * ad.log(1.0 + (a**2).mean()) - ad.softsign(b[0]),
        [(3, 4), (4, 2)],
        False,
    ),
}


def draw(shapes: list[tuple[int, ...]], positive: bool, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if positive:
        return [rng.uniform(0.5, 2.0, size=s) for s in shapes]
    return [rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("name", list(CASES))
def test_reverse_mode_matches_finite_differences(name: str) -> None:
    fn, shapes, positive = CASES[name]
    xs = draw(shapes, positive, seed=len(name))
    out_shape = fn(*[Value(x) for x in xs]).shape
    weights = np.random.default_rng(7).normal(size=out_shape)  # random cotangent: checks the whole VJP

    def loss(*vs: Value) -> Value:
        return ad.reduce_sum(fn(*vs) * weights)

    def loss_np(arrays: list[np.ndarray]) -> float:
        return loss(*[Value(a) for a in arrays]).item()

    grads = ad.grad(loss)(*xs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for k, g in enumerate(grads):
        assert g.shape == xs[k].shape
        assert rel_err(g, numeric_grad(loss_np, xs, k)) < 1e-7, (name, k)


@pytest.mark.parametrize("name", list(CASES))
def test_forward_mode_matches_finite_differences(name: str) -> None:
    fn, shapes, positive = CASES[name]
    xs = draw(shapes, positive, seed=len(name) + 100)
    ts = [np.random.default_rng(3).normal(size=s) for s in shapes]
    out, tangent = ad.jvp(fn, xs, ts)
    plus = fn(*[Value(x + EPS * t) for x, t in zip(xs, ts, strict=True)]).data
    minus = fn(*[Value(x - EPS * t) for x, t in zip(xs, ts, strict=True)]).data
    assert tangent.shape == out.shape
    assert rel_err(tangent, (plus - minus) / (2 * EPS)) < 1e-7, name


def test_max_ties_send_gradient_to_first_argmax() -> None:
    assert np.array_equal(ad.grad(ad.reduce_max)(np.array([1.0, 3.0, 3.0])), [0.0, 1.0, 0.0])
    g = ad.grad(lambda a: ad.reduce_max(a, axis=0).sum())(np.array([[2.0, 1.0], [2.0, 5.0]]))
    assert np.array_equal(g, [[1.0, 0.0], [0.0, 1.0]])


def test_known_derivatives_exactly() -> None:
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    assert np.allclose(ad.grad(lambda v: ad.softsign(v).sum())(x), 1.0 / (1.0 + np.abs(x)) ** 2, rtol=0, atol=1e-15)
    assert np.array_equal(ad.grad(lambda v: ad.relu(v).sum())(x), [0, 0, 0, 1, 1])
    s = 1 / (1 + np.exp(-x))
    assert np.allclose(ad.grad(lambda v: ad.sigmoid(v).sum())(x), s * (1 - s), rtol=0, atol=1e-15)
    assert ad.sigmoid(np.array([-800.0, 800.0])).data.tolist() == [0.0, 1.0]  # no overflow


def test_ndarray_on_the_left_defers_to_value() -> None:
    v = Value(np.ones(3))
    for out in (np.ones(3) + v, np.ones(3) - v, np.ones(3) * v, np.ones(3) / v, np.ones((2, 3)) @ v):
        assert isinstance(out, Value)


def test_backward_needs_seed_for_nonscalar_and_seed_gives_vjp() -> None:
    rng = np.random.default_rng(0)
    a, seed = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    x = Value(a)
    y = ad.sin(x) * x
    with pytest.raises(ValueError, match="seed"):
        y.backward()
    y.backward(seed)
    assert np.allclose(x.grad, seed * (np.cos(a) * a + np.sin(a)), rtol=0, atol=1e-14)
    out, (g,) = ad.vjp(lambda v: ad.sin(v) * v, [a], seed)
    assert np.array_equal(g, x.grad) and np.array_equal(out, y.data)
    y.backward(seed)  # a second call overwrites, it does not accumulate
    assert np.allclose(x.grad, g, rtol=0, atol=0)


def test_tangents_travel_with_the_forward_evaluation() -> None:
    x = Value(2.0, tangent=1.0)
    y = ad.sin(x)
    assert y.tangent == pytest.approx(np.cos(2.0), abs=1e-15)  # available before any backward pass
    z = y * x
    assert z.tangent == pytest.approx(np.cos(2.0) * 2.0 + np.sin(2.0), abs=1e-15)
    assert np.all(x.grad == 0) and np.all(z.grad == 0)


def vector_fn(x: Value, w: Value) -> list[Value]:
    h = ad.tanh(w @ x)
    return [h * ad.exp(x[:3]), ad.log(1.0 + (x**2).sum()).reshape(1), ad.reduce_max(w, axis=1) + h.sum()]


def test_jacobian_forward_equals_reverse_and_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=4), rng.normal(size=(3, 4))
    j_rev = ad.jacobian(vector_fn, (x, w), mode="reverse")
    j_fwd = ad.jacobian(vector_fn, (x, w), mode="forward")
    assert j_rev.shape == (3 + 1 + 3, 4 + 12)
    assert np.max(np.abs(j_rev - j_fwd)) < 1e-12
    flat = np.concatenate([x, w.ravel()])
    j_fd = np.zeros_like(j_rev)
    for i in range(flat.size):
        cols = []
        for step in (EPS, -EPS):
            z = flat.copy()
            z[i] += step
            outs = vector_fn(Value(z[:4]), Value(z[4:].reshape(3, 4)))
            cols.append(np.concatenate([o.data.ravel() for o in outs]))
        j_fd[:, i] = (cols[0] - cols[1]) / (2 * EPS)
    assert rel_err(j_rev, j_fd) < 1e-8


def test_jacobian_single_array_input_and_output() -> None:
    rng = np.random.default_rng(2)
    a, x = rng.normal(size=(5, 3)), rng.normal(size=3)
    for mode in ("reverse", "forward"):
        assert np.allclose(ad.jacobian(lambda v: ad.matmul(a, v), x, mode=mode), a, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="mode"):
        ad.jacobian(ad.sin, x, mode="sideways")


def problem_set_fn(w1: Value, w2: Value) -> list[Value]:
    return [ad.cos(w1) * ad.cos(w2) + ad.sigmoid(w2), ad.log(w1 + w2) + w1**2 * w2]


def test_problem_set_jacobian_at_1_2() -> None:
    w1, w2 = 1.0, 2.0
    s = 1.0 / (1.0 + np.exp(-w2))
    analytic = np.array(
        [
            [-np.sin(w1) * np.cos(w2), -np.cos(w1) * np.sin(w2) + s * (1 - s)],
            [1 / (w1 + w2) + 2 * w1 * w2, 1 / (w1 + w2) + w1**2],
        ]
    )
    for mode in ("forward", "reverse"):
        assert np.max(np.abs(ad.jacobian(problem_set_fn, (w1, w2), mode=mode) - analytic)) < 1e-14
    out, tangents = ad.jvp(problem_set_fn, (w1, w2), (1.0, 0.0))
    assert np.allclose(np.ravel(tangents), analytic[:, 0], rtol=0, atol=1e-15)
    assert out[1] == pytest.approx(np.log(3.0) + 2.0, abs=1e-15)


def test_grad_argnums_and_scalar_check() -> None:
    f = lambda a, b: (a * b).sum()  # noqa: E731
    a, b = np.arange(3.0), np.ones(3)
    ga, gb = ad.grad(f)(a, b)
    assert np.array_equal(ga, b) and np.array_equal(gb, a)
    assert np.array_equal(ad.grad(f, argnums=1)(a, b), a)
    labels = np.array([2, 0])
    picked = ad.grad(lambda z, y: z[np.arange(2), y].sum(), argnums=0)(np.zeros((2, 3)), labels)
    assert np.array_equal(picked, [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="scalar"):
        ad.grad(lambda v: v * 2)(a)


def test_topological_sort_orders_edges_and_rejects_cycles() -> None:
    edges = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "e": []}
    order = ad.topological_sort(["e", "d", "c", "b", "a"], edges)
    pos = {n: i for i, n in enumerate(order)}
    assert sorted(order) == ["a", "b", "c", "d", "e"]
    assert all(pos[u] < pos[v] for u, vs in edges.items() for v in vs)
    with pytest.raises(ValueError, match="cycle"):
        ad.topological_sort(["a", "b", "c"], {"a": ["b"], "b": ["c"], "c": ["a"]})
    with pytest.raises(ValueError, match="cycle"):
        ad.topological_sort([1], {1: [1]})


def test_topological_order_puts_parents_first() -> None:
    x = Value(1.0)
    y = x * x + ad.sin(x)
    order = ad.topological_order(y)
    pos = {id(n): i for i, n in enumerate(order)}
    assert order[0] is x and order[-1] is y and len(order) == 4
    assert all(pos[id(p)] < pos[id(n)] for n in order for p in n.parents)


def test_matches_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    a, b, c = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.uniform(0.5, 2.0, size=(2,))

    def ours(x: Value, w: Value, s: Value) -> Value:
        h = ad.sigmoid(x @ w) * ad.log(s) + ad.softsign(x).sum(axis=1, keepdims=True) / s
        return (ad.tanh(h) ** 2).mean() + ad.reduce_max(h, axis=0).sum() + ad.cos(x[[0, 2, 2]]).sum()

    grads = ad.grad(ours)(a, b, c)
    ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b, c)]
    x, w, s = ts
    h = torch.sigmoid(x @ w) * torch.log(s) + torch.nn.functional.softsign(x).sum(dim=1, keepdim=True) / s
    loss = (torch.tanh(h) ** 2).mean() + h.max(dim=0).values.sum() + torch.cos(x[[0, 2, 2]]).sum()
    loss.backward()
    for g, t in zip(grads, ts, strict=True):
        assert np.max(np.abs(g - t.grad.numpy())) < 1e-10


def two_layer_loss(x: np.ndarray, y: np.ndarray) -> Callable[..., Value]:
    """Batch-mean softmax cross-entropy of a sigmoid two-layer net, built only from autodiff ops."""

    def loss(w1: Value, b1: Value, w2: Value, b2: Value) -> Value:
        z = ad.sigmoid(x @ w1 + b1) @ w2 + b2
        m = ad.reduce_max(z, axis=1, keepdims=True)
        log_probs = z - (m + ad.log(ad.exp(z - m).sum(axis=1, keepdims=True)))
        return -ad.reduce_mean(log_probs[np.arange(len(y)), y])

    return loss


def test_two_layer_net_gradients_match_handwritten_model() -> None:
    models = pytest.importorskip("mlplab.models")
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(8, 6)), rng.integers(0, 10, size=8)
    model = models.TwoLayerNet(input_size=6, hidden_size=5, num_classes=10, seed=0, dtype=np.float64)
    loss_model, _ = model.train_batch(x, y)
    keys = ("W1", "b1", "W2", "b2")
    params = [model.params[k] for k in keys]
    loss_fn = two_layer_loss(x, y)
    assert loss_fn(*[Value(p) for p in params]).item() == pytest.approx(loss_model, rel=1e-12)
    for key, g in zip(keys, ad.grad(loss_fn)(*params), strict=True):
        assert g.shape == model.grads[key].shape
        assert np.max(np.abs(g - model.grads[key])) < 1e-12, key
