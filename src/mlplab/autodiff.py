"""Reverse- and forward-mode automatic differentiation on NumPy float64 arrays.

Every operation builds a :class:`Value` node and states three things side by side: the forward value,
the reverse rule (VJP: output cotangent -> one cotangent per input) and the forward rule (JVP: input
tangents -> output tangent). Reverse mode runs the VJPs over the graph in reverse topological order
(Kahn's algorithm, :func:`topological_sort`). Forward mode is a separate mechanism: a tangent rides along
with each value while the function is evaluated, like dual numbers generalised to arrays.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

VJPRule = Callable[[np.ndarray], tuple[np.ndarray, ...]]
JVPRule = Callable[..., np.ndarray]
Node = TypeVar("Node", bound=Hashable)


# ----------------------------------------------------------------------------------------------- ordering
def topological_sort(nodes: Iterable[Node], edges: Mapping[Node, Iterable[Node]]) -> list[Node]:
    """Kahn's algorithm: order nodes so every edge u -> v puts u first; ValueError if there is a cycle."""
    successors = {u: list(vs) for u, vs in edges.items()}
    every = list(dict.fromkeys([*nodes, *successors, *(v for vs in successors.values() for v in vs)]))
    indegree = dict.fromkeys(every, 0)
    for vs in successors.values():
        for v in vs:
            indegree[v] += 1
    ready = deque(u for u in every if indegree[u] == 0)
    order: list[Node] = []
    while ready:
        u = ready.popleft()
        order.append(u)
        for v in successors.get(u, ()):
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    if len(order) < len(every):
        raise ValueError(f"graph has a cycle: {len(every) - len(order)} node(s) never reach in-degree 0")
    return order


def topological_order(*roots: Value) -> list[Value]:
    """Every node the roots depend on, inputs first: Kahn's order of the parent -> child graph."""
    children: dict[Value, list[Value]] = {}
    stack = list(roots)
    while stack:  # iterative DFS collects the nodes
        node = stack.pop()
        if node not in children:
            children[node] = []
            stack.extend(node.parents)
    for node in list(children):
        for parent in node.parents:
            children[parent].append(node)
    return topological_sort(children, children)


# ------------------------------------------------------------------------------------------------ helpers
def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back down to an input's shape."""
    grad = np.asarray(grad, dtype=np.float64)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return np.broadcast_to(grad, shape)


def _expand(grad: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """Undo a reduction's shape change so the gradient broadcasts over the reduced axes."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
    return np.broadcast_to(grad, shape)


def _argmax_mask(a: np.ndarray, axis: int | None) -> np.ndarray:
    """One-hot mask of the (first) maximum, over everything or along one axis."""
    mask = np.zeros_like(a)
    if axis is None:
        mask.flat[np.argmax(a)] = 1.0
    else:
        np.put_along_axis(mask, np.expand_dims(np.argmax(a, axis=axis), axis), 1.0, axis=axis)
    return mask


def _checked(array: ArrayLike, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A float64 copy of array that must have the given shape (size-1 arrays may be reshaped)."""
    arr = np.array(array, dtype=np.float64)
    if arr.shape != shape:
        if arr.size == 1 == int(np.prod(shape)):
            return arr.reshape(shape)
        raise ValueError(f"{what} has shape {arr.shape}, expected {shape}")
    return arr


def _node(data: np.ndarray, parents: tuple[Value, ...], op: str, vjp: VJPRule, jvp: JVPRule) -> Value:
    """Make an op's output node; if any input carries a tangent, push the tangent through now."""
    out = Value(data, parents, op)
    out._vjp = vjp
    if any(p.tangent is not None for p in parents):
        tangents = [np.zeros_like(p.data) if p.tangent is None else p.tangent for p in parents]
        out.tangent = np.array(np.broadcast_to(jvp(*tangents), out.shape), dtype=np.float64)
    return out


def as_value(x: Value | ArrayLike) -> Value:
    """x itself if it is a Value, otherwise a constant node wrapping it."""
    return x if isinstance(x, Value) else Value(x, op="const")


# -------------------------------------------------------------------------------------------------- Value
class Value:
    """A graph node: float64 array ``data``, its ``parents``, ``grad`` (reverse) and ``tangent`` (forward)."""

    __array_ufunc__ = None  # `ndarray <op> Value` defers to Value's reflected operators

    def __init__(
        self,
        data: ArrayLike,
        parents: tuple[Value, ...] = (),
        op: str = "",
        label: str = "",
        tangent: ArrayLike | None = None,
    ) -> None:
        self.data = np.array(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self.tangent = None if tangent is None else _checked(tangent, self.data.shape, "tangent")
        self.parents = tuple(parents)
        self.op = op
        self.label = label
        self._vjp: VJPRule | None = None

    def __repr__(self) -> str:
        return f"Value(op={self.op or 'input'!r}, data={brief(self.data)})"

    shape = property(lambda self: self.data.shape, doc="Shape of the data.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")
    T = property(lambda self: self.transpose(), doc="Reversed-axes transpose.")

    def item(self) -> float:
        """The single number held by a size-1 Value."""
        return float(self.data.item())

    # --- arithmetic: forward value, reverse rule (vjp), forward rule (jvp)
    def __add__(self, other: Value | ArrayLike) -> Value:
        other = as_value(other)
        return _node(self.data + other.data, (self, other), "+", vjp=lambda g: (g, g), jvp=lambda ta, tb: ta + tb)

    def __sub__(self, other: Value | ArrayLike) -> Value:
        other = as_value(other)
        return _node(self.data - other.data, (self, other), "-", vjp=lambda g: (g, -g), jvp=lambda ta, tb: ta - tb)

    def __mul__(self, other: Value | ArrayLike) -> Value:
        other = as_value(other)
        a, b = self.data, other.data
        return _node(a * b, (self, other), "*", vjp=lambda g: (g * b, g * a), jvp=lambda ta, tb: ta * b + a * tb)

    def __truediv__(self, other: Value | ArrayLike) -> Value:
        other = as_value(other)
        a, b = self.data, other.data
        out = a / b
        return _node(
            out, (self, other), "/", vjp=lambda g: (g / b, -g * out / b), jvp=lambda ta, tb: (ta - out * tb) / b
        )

    def __pow__(self, power: Value | ArrayLike) -> Value:
        if isinstance(power, Value):  # a ** p with a differentiable exponent: exp(p ln a), a > 0
            return (power * self.log()).exp()
        p = np.asarray(power, dtype=np.float64)
        name = f"**{p.item():g}" if p.size == 1 else "**"
        return self._elementwise(self.data**p, name, p * self.data ** (p - 1))

    def __rpow__(self, base: ArrayLike) -> Value:
        return (self * np.log(np.asarray(base, dtype=np.float64))).exp()

    def __neg__(self) -> Value:
        return _node(-self.data, (self,), "neg", vjp=lambda g: (-g,), jvp=lambda t: -t)

    def __radd__(self, other: ArrayLike) -> Value:
        return as_value(other) + self

    def __rsub__(self, other: ArrayLike) -> Value:
        return as_value(other) - self

    def __rmul__(self, other: ArrayLike) -> Value:
        return as_value(other) * self

    def __rtruediv__(self, other: ArrayLike) -> Value:
        return as_value(other) / self

    def __matmul__(self, other: Value | ArrayLike) -> Value:
        other = as_value(other)
        a, b = self.data, other.data

        def vjp(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            a2 = a[None, :] if a.ndim == 1 else a  # 1-D operands act as a row / column
            b2 = b[:, None] if b.ndim == 1 else b
            g2 = g.reshape((*np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]), a2.shape[-2], b2.shape[-1]))
            ga = g2 @ np.swapaxes(b2, -1, -2)
            gb = np.swapaxes(a2, -1, -2) @ g2
            return _unbroadcast(ga, a2.shape).reshape(a.shape), _unbroadcast(gb, b2.shape).reshape(b.shape)

        return _node(a @ b, (self, other), "@", vjp=vjp, jvp=lambda ta, tb: ta @ b + a @ tb)

    def __rmatmul__(self, other: ArrayLike) -> Value:
        return as_value(other) @ self

    # --- elementwise functions: y = f(x), both rules multiply by the local derivative f'(x)
    def _elementwise(self, y: np.ndarray, op: str, dydx: np.ndarray) -> Value:
        """Node for y = f(self) whose local derivative f'(self) is dydx."""
        return _node(y, (self,), op, vjp=lambda g: (g * dydx,), jvp=lambda t: t * dydx)

    def exp(self) -> Value:
        """e ** x."""
        y = np.exp(self.data)
        return self._elementwise(y, "exp", y)

    def log(self) -> Value:
        """Natural logarithm."""
        return self._elementwise(np.log(self.data), "log", 1.0 / self.data)

    def sin(self) -> Value:
        """Sine."""
        return self._elementwise(np.sin(self.data), "sin", np.cos(self.data))

    def cos(self) -> Value:
        """Cosine."""
        return self._elementwise(np.cos(self.data), "cos", -np.sin(self.data))

    def tanh(self) -> Value:
        """Hyperbolic tangent."""
        y = np.tanh(self.data)
        return self._elementwise(y, "tanh", 1.0 - y * y)

    def sigmoid(self) -> Value:
        """Logistic function 1 / (1 + e^-x), evaluated without overflow."""
        e = np.exp(-np.abs(self.data))
        y = np.where(self.data >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return self._elementwise(y, "sigmoid", y * (1.0 - y))

    def relu(self) -> Value:
        """max(x, 0); derivative 0 at x = 0."""
        return self._elementwise(np.maximum(self.data, 0.0), "relu", (self.data > 0).astype(np.float64))

    def softsign(self) -> Value:
        """x / (1 + |x|), derivative 1 / (1 + |x|)^2."""
        d = 1.0 + np.abs(self.data)
        return self._elementwise(self.data / d, "softsign", 1.0 / (d * d))

    # --- reductions
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Value:
        """Sum over axis (all axes by default)."""
        shape = self.shape
        return _node(
            self.data.sum(axis=axis, keepdims=keepdims),
            (self,),
            "sum",
            vjp=lambda g: (_expand(g, shape, axis, keepdims),),
            jvp=lambda t: t.sum(axis=axis, keepdims=keepdims),
        )

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Value:
        """Mean over axis (all axes by default)."""
        shape = self.shape
        out = self.data.mean(axis=axis, keepdims=keepdims)
        count = self.data.size / np.size(out) if np.size(out) else 1.0
        return _node(
            out,
            (self,),
            "mean",
            vjp=lambda g: (_expand(g, shape, axis, keepdims) / count,),
            jvp=lambda t: t.mean(axis=axis, keepdims=keepdims),
        )

    def max(self, axis: int | None = None, keepdims: bool = False) -> Value:
        """Maximum over one axis or everything; the gradient goes to the first argmax."""
        shape = self.shape
        mask = _argmax_mask(self.data, axis)
        return _node(
            self.data.max(axis=axis, keepdims=keepdims),
            (self,),
            "max",
            vjp=lambda g: (mask * _expand(g, shape, axis, keepdims),),
            jvp=lambda t: (mask * t).sum(axis=axis, keepdims=keepdims),
        )

    # --- shape and indexing
    def __getitem__(self, index: Any) -> Value:
        shape = self.shape

        def vjp(g: np.ndarray) -> tuple[np.ndarray]:
            out = np.zeros(shape)
            np.add.at(out, index, g)  # repeated integer indices accumulate
            return (out,)

        return _node(np.array(self.data[index]), (self,), "[]", vjp=vjp, jvp=lambda t: t[index])

    def reshape(self, *shape: int | tuple[int, ...]) -> Value:
        """Same data, new shape (``reshape(2, 3)`` or ``reshape((2, 3))``)."""
        new: Any = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        old = self.shape
        return _node(
            self.data.reshape(new), (self,), "reshape", vjp=lambda g: (g.reshape(old),), jvp=lambda t: t.reshape(new)
        )

    def transpose(self, axes: Sequence[int] | None = None) -> Value:
        """Permute the axes (reverse them by default)."""
        perm = tuple(reversed(range(self.ndim))) if axes is None else tuple(axes)
        inverse = tuple(int(i) for i in np.argsort(perm))
        return _node(
            self.data.transpose(perm),
            (self,),
            "transpose",
            vjp=lambda g: (g.transpose(inverse),),
            jvp=lambda t: t.transpose(perm),
        )

    # --- reverse mode
    def backward(self, seed: ArrayLike | None = None) -> None:
        """Set every graph node's ``grad`` to d<seed, self>/d(node); a non-scalar output needs a seed."""
        if seed is None:
            if self.size != 1:
                raise ValueError(f"backward() on an output of shape {self.shape} needs a seed (the cotangent)")
            seed = np.ones_like(self.data)
        _pullback([self], [seed])


def _pullback(
    outputs: Sequence[Value],
    cotangents: Sequence[ArrayLike],
    inputs: Sequence[Value] = (),
    order: list[Value] | None = None,
) -> None:
    """Reverse sweep: overwrite grads so node.grad = d(sum_k <cotangent_k, output_k>)/d(node)."""
    order = topological_order(*outputs) if order is None else order
    for node in (*order, *inputs):
        node.grad = np.zeros_like(node.data)
    for out, cotangent in zip(outputs, cotangents, strict=True):
        out.grad = out.grad + _checked(cotangent, out.shape, "cotangent")
    for node in reversed(order):
        if node._vjp is not None:
            for parent, g in zip(node.parents, node._vjp(node.grad), strict=True):
                parent.grad = parent.grad + _unbroadcast(g, parent.shape)


# ---------------------------------------------------------------------------------- functional interface
def exp(x: Value | ArrayLike) -> Value:
    """e ** x."""
    return as_value(x).exp()


def log(x: Value | ArrayLike) -> Value:
    """Natural logarithm."""
    return as_value(x).log()


def sin(x: Value | ArrayLike) -> Value:
    """Sine."""
    return as_value(x).sin()


def cos(x: Value | ArrayLike) -> Value:
    """Cosine."""
    return as_value(x).cos()


def tanh(x: Value | ArrayLike) -> Value:
    """Hyperbolic tangent."""
    return as_value(x).tanh()


def sigmoid(x: Value | ArrayLike) -> Value:
    """Logistic sigmoid."""
    return as_value(x).sigmoid()


def relu(x: Value | ArrayLike) -> Value:
    """Rectified linear unit."""
    return as_value(x).relu()


def softsign(x: Value | ArrayLike) -> Value:
    """x / (1 + |x|)."""
    return as_value(x).softsign()


def reduce_sum(x: Value | ArrayLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Value:
    """Sum over axis (``x.sum(axis)`` for any input)."""
    return as_value(x).sum(axis=axis, keepdims=keepdims)


def reduce_mean(x: Value | ArrayLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Value:
    """Mean over axis (``x.mean(axis)`` for any input)."""
    return as_value(x).mean(axis=axis, keepdims=keepdims)


def reduce_max(x: Value | ArrayLike, axis: int | None = None, keepdims: bool = False) -> Value:
    """Maximum over axis, gradient to the first argmax (``x.max(axis)`` for any input)."""
    return as_value(x).max(axis=axis, keepdims=keepdims)


def matmul(a: Value | ArrayLike, b: Value | ArrayLike) -> Value:
    """Matrix product a @ b."""
    return as_value(a) @ b


def reshape(x: Value | ArrayLike, shape: tuple[int, ...]) -> Value:
    """Reshape x."""
    return as_value(x).reshape(shape)


def transpose(x: Value | ArrayLike, axes: Sequence[int] | None = None) -> Value:
    """Permute the axes of x (reverse them by default)."""
    return as_value(x).transpose(axes)


# ------------------------------------------------------------------------------ grad / vjp / jvp / jacobian
Fn = Callable[..., Any]


def _inputs(xs: Any) -> tuple[list[np.ndarray], bool]:
    """A list of float64 arrays, and whether xs was a single array (not a list/tuple of arguments)."""
    if isinstance(xs, list | tuple):
        return [_array(x) for x in xs], False
    return [_array(xs)], True


def _array(x: Any) -> np.ndarray:
    return np.array(x.data if isinstance(x, Value) else x, dtype=np.float64)


def _outputs(out: Any) -> tuple[list[Value], bool]:
    """f's result as a list of Values, and whether it was a single output."""
    if isinstance(out, list | tuple):
        return [as_value(o) for o in out], False
    return [as_value(out)], True


def _pack(arrays: list[np.ndarray], single: bool) -> Any:
    return arrays[0] if single else tuple(arrays)


def _split(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Cut a flat vector into arrays of the given shapes."""
    cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    return [part.reshape(s) for part, s in zip(np.split(flat, cuts), shapes, strict=True)]


def grad(f: Fn, argnums: int | Sequence[int] | None = None) -> Fn:
    """Function returning the gradient of scalar f w.r.t. its arguments (all, or those in argnums)."""

    def grad_f(*args: Any) -> Any:
        which = range(len(args)) if argnums is None else [argnums] if isinstance(argnums, int) else argnums
        variables = {i: Value(_array(args[i]), label=f"arg{i}") for i in which}
        out = as_value(f(*[variables.get(i, a) for i, a in enumerate(args)]))
        if out.size != 1:
            raise ValueError(f"grad needs a scalar-valued f, got an output of shape {out.shape}")
        _pullback([out], [np.ones_like(out.data)], list(variables.values()))
        grads = tuple(variables[i].grad for i in which)
        return grads[0] if isinstance(argnums, int) or (argnums is None and len(args) == 1) else grads

    return grad_f


Pullback = Callable[[Sequence[ArrayLike]], list[np.ndarray]]


def _reverse(f: Fn, arrays: list[np.ndarray]) -> tuple[list[Value], bool, Pullback]:
    """Evaluate f once; return its outputs, whether it had one, and the map output cotangents -> input grads."""
    inputs = [Value(a, label=f"x{i}") for i, a in enumerate(arrays)]
    outputs, single_out = _outputs(f(*inputs))
    order = topological_order(*outputs)

    def pull(cotangents: Sequence[ArrayLike]) -> list[np.ndarray]:
        _pullback(outputs, cotangents, inputs, order)
        return [x.grad.copy() for x in inputs]

    return outputs, single_out, pull


def _forward(f: Fn, arrays: list[np.ndarray], tangents: Sequence[ArrayLike]) -> tuple[list[Value], bool]:
    """Evaluate f on inputs carrying tangents; each op pushes its tangent forward as it runs."""
    inputs = [Value(a, label=f"x{i}", tangent=t) for i, (a, t) in enumerate(zip(arrays, tangents, strict=True))]
    return _outputs(f(*inputs))


def vjp(f: Fn, xs: Any, v: Any) -> tuple[Any, Any]:
    """Reverse mode: (f(xs), v^T J) -- the cotangent v pulled back to each input.

    xs is one array (f(x)) or a list/tuple of arrays (f(*xs)); v matches f's output structure.
    """
    arrays, single_in = _inputs(xs)
    outputs, single_out, pull = _reverse(f, arrays)
    grads = pull([v] if single_out else list(v))
    return _pack([o.data for o in outputs], single_out), _pack(grads, single_in)


def jvp(f: Fn, xs: Any, tangents: Any) -> tuple[Any, Any]:
    """Forward mode: (f(xs), J t) computed in one evaluation with tangents carried alongside values."""
    arrays, single_in = _inputs(xs)
    outputs, single_out = _forward(f, arrays, [tangents] if single_in else list(tangents))
    out_tangents = [np.zeros_like(o.data) if o.tangent is None else o.tangent for o in outputs]
    return _pack([o.data for o in outputs], single_out), _pack(out_tangents, single_out)


def jacobian(f: Fn, x: Any, mode: str = "reverse") -> np.ndarray:
    """Full Jacobian (total output size x total input size) by one VJP per row or one JVP per column.

    x is one array (f(x)) or a list/tuple of arrays (f(*x)); f returns a Value or a list/tuple of them.
    Inputs and outputs are flattened in order (C order) and concatenated.
    """
    arrays, _ = _inputs(x)
    shapes = [a.shape for a in arrays]
    n_in = int(np.sum([a.size for a in arrays]))
    if mode == "reverse":
        outputs, _, pull = _reverse(f, arrays)
        out_shapes = [o.shape for o in outputs]
        n_out = int(np.sum([o.size for o in outputs]))
        rows = [np.concatenate([g.ravel() for g in pull(_split(e, out_shapes))]) for e in np.eye(n_out)]
        return np.array(rows).reshape(n_out, n_in)
    if mode == "forward":
        columns = []
        for e in np.eye(n_in):
            outputs, _ = _forward(f, arrays, _split(e, shapes))
            columns.append(
                np.concatenate([(np.zeros(o.size) if o.tangent is None else o.tangent.ravel()) for o in outputs])
            )
        return np.array(columns).T.reshape(-1, n_in)
    raise ValueError(f"mode must be 'reverse' or 'forward', got {mode!r}")


def brief(a: np.ndarray, count: int = 4) -> str:
    """Short text for an array: the number itself, or shape plus the first few entries."""
    if a.size == 1:
        return f"{a.item():.4g}"
    head = ", ".join(f"{v:.3g}" for v in a.ravel()[:count])
    return f"{a.shape} [{head}{', ...' if a.size > count else ''}]"
