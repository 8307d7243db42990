"""The problem set as executable checks: each claim computes its own evidence and passes or fails.

Every claim is a small function returning a :class:`Claim` record with the numbers it measured.
Derivatives come from :mod:`mlplab.autodiff`; linear programs and constrained minimisation from SciPy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq, linprog, minimize

from mlplab import autodiff as ad
from mlplab.autodiff import Value

Numbers = dict[str, float | str]


@dataclass(frozen=True)
class Claim:
    """Outcome of one claim: what was checked, how, the measured numbers and the verdict."""

    number: int
    title: str
    method: str
    numbers: Numbers
    passed: bool

    @property
    def status(self) -> str:
        """PASS or FAIL."""
        return "PASS" if self.passed else "FAIL"


CLAIMS: list[Callable[..., Claim]] = []
_META: dict[Callable[..., Claim], tuple[int, str, str]] = {}


def _clean(value: Any) -> float | str:
    return value if isinstance(value, str) else float(value)


def claim(
    number: int, title: str, method: str
) -> Callable[[Callable[..., tuple[Numbers, bool]]], Callable[..., Claim]]:
    """Register a check body (returning numbers and a verdict) as claim `number`."""

    def register(body: Callable[..., tuple[Numbers, bool]]) -> Callable[..., Claim]:
        @functools.wraps(body)
        def run(**kwargs: Any) -> Claim:
            numbers, passed = body(**kwargs)
            return Claim(number, title, method, {k: _clean(v) for k, v in numbers.items()}, bool(passed))

        CLAIMS.append(run)
        _META[run] = (number, title, method)
        return run

    return register


# ------------------------------------------------------------------------------------------ shared helpers
def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax of a vector."""
    e = np.exp(z - z.max())
    return e / e.sum()


def softmax_jacobian(z: np.ndarray) -> np.ndarray:
    """The closed form ds_i/dz_j = s_i (delta_ij - s_j)."""
    s = softmax(z)
    return np.diag(s) - np.outer(s, s)


def softmax_ops(z: Value) -> Value:
    """Softmax built from autodiff ops."""
    e = ad.exp(z - ad.reduce_max(z))
    return e / e.sum()


def numeric_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite-difference Jacobian of a vector function of a vector."""
    columns = [(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)]
    return np.array(columns).T


def threshold_lp(points: np.ndarray, targets: np.ndarray) -> Any:
    """LP feasibility of a threshold neuron with margin: (2t - 1)(w.x + b) >= 1 for every point."""
    signs = 2.0 * np.asarray(targets) - 1.0
    a = signs[:, None] * np.hstack([points, np.ones((len(points), 1))])
    n = a.shape[1]
    return linprog(np.zeros(n), A_ub=-a, b_ub=-np.ones(len(points)), bounds=[(None, None)] * n, method="highs")


def farkas_certificate(points: np.ndarray, targets: np.ndarray) -> Any:
    """LP for y >= 0 with A^T y = 0 and sum(y) = 1: it exists iff the margin system A z >= 1 has no solution."""
    signs = 2.0 * np.asarray(targets) - 1.0
    a = signs[:, None] * np.hstack([points, np.ones((len(points), 1))])
    eq = np.vstack([a.T, np.ones(len(points))])
    rhs = np.concatenate([np.zeros(a.shape[1]), [1.0]])
    return linprog(np.zeros(len(points)), A_eq=eq, b_eq=rhs, bounds=[(0, None)] * len(points), method="highs")


BOOL_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
GATES = {"AND": np.array([0, 0, 0, 1]), "OR": np.array([0, 1, 1, 1]), "XOR": np.array([0, 1, 1, 0])}


def problem_set_fn(w1: Value, w2: Value) -> list[Value]:
    """f1 = cos w1 cos w2 + sigmoid(w2), f2 = ln(w1 + w2) + w1^2 w2."""
    return [ad.cos(w1) * ad.cos(w2) + ad.sigmoid(w2), ad.log(w1 + w2) + w1**2 * w2]


def problem_set_jacobian(w1: float, w2: float) -> np.ndarray:
    """Hand-derived Jacobian of problem_set_fn."""
    s = 1.0 / (1.0 + np.exp(-w2))
    return np.array(
        [
            [-np.sin(w1) * np.cos(w2), -np.cos(w1) * np.sin(w2) + s * (1.0 - s)],
            [1.0 / (w1 + w2) + 2.0 * w1 * w2, 1.0 / (w1 + w2) + w1**2],
        ]
    )


# -------------------------------------------------------------------------------------------------- claims
@claim(1, "softmax Jacobian ds_i/dz_j = s_i(delta_ij - s_j)", "closed form vs autodiff (both modes) vs central FD")
def softmax_jacobian_claim(
    z: np.ndarray | None = None, analytic: Callable[[np.ndarray], np.ndarray] = softmax_jacobian
) -> tuple[Numbers, bool]:
    z = np.random.default_rng(1).normal(size=5) if z is None else np.asarray(z, dtype=np.float64)
    closed = analytic(z)
    reverse = ad.jacobian(softmax_ops, z, mode="reverse")
    forward = ad.jacobian(softmax_ops, z, mode="forward")
    fd = numeric_jacobian(softmax, z)
    d_rev, d_fwd, d_fd = (float(np.max(np.abs(closed - j))) for j in (reverse, forward, fd))
    numbers: Numbers = {"max|formula-reverse|": d_rev, "max|formula-forward|": d_fwd, "max|formula-FD|": d_fd}
    return numbers, d_rev < 1e-12 and d_fwd < 1e-12 and d_fd < 1e-8


@claim(2, "one threshold neuron computes AND and OR", "LP feasibility of margin constraints, then all 4 inputs")
def and_or_claim() -> tuple[Numbers, bool]:
    numbers: Numbers = {}
    ok = True
    for gate in ("AND", "OR"):
        res = threshold_lp(BOOL_INPUTS, GATES[gate])
        w, b = res.x[:2], res.x[2]
        outputs = (BOOL_INPUTS @ w + b >= 0).astype(int)
        numbers |= {f"{gate} LP status": res.status, f"{gate} w1": w[0], f"{gate} w2": w[1], f"{gate} b": b}
        ok = ok and res.status == 0 and np.array_equal(outputs, GATES[gate])
    return numbers, ok


@claim(3, "no threshold neuron computes XOR", "margin LP is infeasible (HiGHS status 2) + Farkas certificate")
def xor_claim() -> tuple[Numbers, bool]:
    res = threshold_lp(BOOL_INPUTS, GATES["XOR"])
    cert = farkas_certificate(BOOL_INPUTS, GATES["XOR"])
    signs = 2.0 * GATES["XOR"] - 1.0
    a = signs[:, None] * np.hstack([BOOL_INPUTS, np.ones((4, 1))])
    residual = float(np.max(np.abs(a.T @ cert.x))) if cert.status == 0 else float("inf")
    numbers = {
        "XOR LP status": res.status,
        "Farkas y": ",".join(f"{v:.3g}" for v in cert.x) if cert.status == 0 else "none",
        "max|A^T y|": residual,
    }
    return numbers, res.status == 2 and cert.status == 0 and residual < 1e-12


@claim(4, "softmax(x) = argmin over the simplex of -x.y + sum y ln y", "SLSQP on the simplex vs softmax(x)")
def softmax_variational_claim() -> tuple[Numbers, bool]:
    x = np.random.default_rng(4).normal(size=6)
    n = x.size

    def objective(y: np.ndarray) -> float:
        return float(-x @ y + np.sum(y * np.log(y)))

    res = minimize(
        objective,
        np.full(n, 1.0 / n),
        jac=lambda y: -x + np.log(y) + 1.0,
        method="SLSQP",
        bounds=[(1e-12, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda y: y.sum() - 1.0, "jac": lambda y: np.ones(n)}],
        options={"ftol": 1e-15, "maxiter": 500},
    )
    gap = float(np.max(np.abs(res.x - softmax(x))))
    min_value = -float(np.log(np.sum(np.exp(x))))  # value at softmax(x): -logsumexp(x)
    numbers = {"max|y*-softmax(x)|": gap, "F(y*)": res.fun, "-logsumexp(x)": min_value}
    return numbers, res.success and gap < 1e-6 and abs(res.fun - min_value) < 1e-10


def _level_fn(x: Value | np.ndarray, y: Value | np.ndarray) -> Value:
    """A convex, radially increasing f(x, y) = x^2 + 2y^2 + xy/2 + y^4."""
    x, y = ad.as_value(x), ad.as_value(y)
    return x**2 + 2.0 * y**2 + 0.5 * x * y + y**4


@claim(5, "the gradient is orthogonal to the level set", "trace f=c by root finding; |cos(tangent, grad f)|")
def level_set_claim() -> tuple[Numbers, bool]:
    level, h = 1.5, 1e-4
    thetas = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)

    def point(theta: float) -> np.ndarray:
        u = np.array([np.cos(theta), np.sin(theta)])
        r = brentq(lambda r: _level_fn(*(r * u)).item() - level, 0.0, 10.0, xtol=1e-15, rtol=1e-15)
        return r * u

    curve = np.array([point(t) for t in thetas])
    tangents = (np.array([point(t + h) for t in thetas]) - np.array([point(t - h) for t in thetas])) / (2 * h)
    gx, gy = ad.grad(lambda x, y: ad.reduce_sum(_level_fn(x, y)))(curve[:, 0], curve[:, 1])
    grads = np.stack([gx, gy], axis=1)
    cosines = np.abs(np.sum(tangents * grads, axis=1)) / (
        np.linalg.norm(tangents, axis=1) * np.linalg.norm(grads, axis=1)
    )
    drift = float(np.max(np.abs(_level_fn(curve[:, 0], curve[:, 1]).data - level)))
    numbers = {"points": len(thetas), "max|cos(tangent,grad)|": np.max(cosines), "max|f-c| on curve": drift}
    return numbers, np.max(cosines) < 1e-6 and drift < 1e-12


_A6 = np.random.default_rng(6).normal(size=(5, 3))


def _convex_fn(w: Value | np.ndarray) -> Value:
    """f(w) = log sum_i exp(a_i.w) + |w|^2/4, convex; works row-wise on a batch of w."""
    w = ad.as_value(w)
    return ad.log(ad.exp(w @ _A6.T).sum(axis=-1)) + 0.25 * (w * w).sum(axis=-1)


@claim(
    6,
    "convex + zero gradient => global min; zero gradient alone does not",
    "stationary point of a convex f vs 20k samples; -x^2 at 0",
)
def convex_stationary_claim() -> tuple[Numbers, bool]:
    rng = np.random.default_rng(6)
    df = ad.grad(_convex_fn)
    res = minimize(lambda w: _convex_fn(w).item(), np.zeros(3), jac=df, method="BFGS", options={"gtol": 1e-12})
    w_star, f_star = res.x, _convex_fn(res.x).item()
    grad_norm = float(np.linalg.norm(df(w_star)))
    directions = rng.normal(size=(20000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = 10.0 ** rng.uniform(-4, 1, size=(20000, 1))
    lowest = float(np.min(_convex_fn(w_star + radii * directions).data) - f_star)
    p, q, t = rng.normal(size=(2000, 3)) * 3, rng.normal(size=(2000, 3)) * 3, rng.uniform(size=(2000, 1))
    chord = t[:, 0] * _convex_fn(p).data + (1 - t[:, 0]) * _convex_fn(q).data
    violations = int(np.sum(_convex_fn(t * p + (1 - t) * q).data > chord + 1e-12))
    neg_sq = lambda x: -(x**2)  # noqa: E731
    slope0 = float(ad.grad(neg_sq)(0.0))
    nearby = max(neg_sq(Value(0.5)).item(), neg_sq(Value(-0.5)).item())
    numbers = {
        "|grad f(w*)|": grad_norm,
        "min f(sample)-f(w*)": lowest,
        "convexity violations": violations,
        "(-x^2)'(0)": slope0,
        "max -x^2 at +-0.5": nearby,
    }
    return numbers, grad_norm < 1e-8 and lowest >= -1e-12 and violations == 0 and slope0 == 0.0 and nearby < 0


@claim(7, "every DAG has a topological order; a cyclic graph has none", "Kahn's algorithm on random DAGs + cycles")
def topological_claim() -> tuple[Numbers, bool]:
    rng = np.random.default_rng(7)
    checked = violations = rejected = cyclic = 0
    for _ in range(60):
        n = int(rng.integers(2, 30))
        labels = rng.permutation(n)  # hide the generating order
        edges: dict[int, list[int]] = {int(labels[i]): [] for i in range(n)}
        for i in range(n):
            for j in range(i + 1, n):
                if rng.random() < 0.3:
                    edges[int(labels[i])].append(int(labels[j]))
        order = ad.topological_sort(list(rng.permutation(n).tolist()), edges)
        pos = {node: k for k, node in enumerate(order)}
        pairs = [(u, v) for u, vs in edges.items() for v in vs]
        checked += len(pairs)
        violations += sum(pos[u] >= pos[v] for u, v in pairs) + (len(order) != n)
        if pairs:  # close a cycle by adding the reverse of an edge
            u, v = pairs[int(rng.integers(len(pairs)))]
            cyclic += 1
            try:
                ad.topological_sort(edges, {**edges, v: [*edges[v], u]})
            except ValueError:
                rejected += 1
    x = Value(0.3)
    graph = ad.topological_order(ad.sin(x) * x + ad.exp(x))
    pos_v = {id(node): k for k, node in enumerate(graph)}
    graph_ok = all(pos_v[id(p)] < pos_v[id(node)] for node in graph for p in node.parents)
    numbers: Numbers = {
        "edges checked": checked,
        "order violations": violations,
        "cycles rejected": f"{rejected}/{cyclic}",
    }
    return numbers, violations == 0 and checked > 0 and rejected == cyclic > 0 and graph_ok


_A8 = np.random.default_rng(8).normal(size=(7, 4))


def _smooth_fn(w: Value) -> Value:
    """f(w) = sum log(1 + exp(Aw)) + 0.1 sum w^4."""
    return ad.log(1.0 + ad.exp(_A8 @ w)).sum() + 0.1 * (w**4).sum()


def proximal_argmin(f_t: float, g_t: np.ndarray, w_t: np.ndarray, lam: float) -> np.ndarray:
    """Numerically minimise f_t + <g_t, w - w_t> + (lam/2)|w - w_t|^2 with BFGS, starting from 0."""

    def model(w: np.ndarray) -> float:
        return float(f_t + g_t @ (w - w_t) + 0.5 * lam * np.sum((w - w_t) ** 2))

    def model_grad(w: np.ndarray) -> np.ndarray:
        return g_t + lam * (w - w_t)

    return minimize(model, np.zeros_like(w_t), jac=model_grad, method="BFGS", options={"gtol": 1e-12}).x


@claim(
    8,
    "GD step = argmin of linearization + (lam/2)|w - w_t|^2 with eta = 1/lam",
    "BFGS on the proximal model vs w_t - grad/lam",
)
def proximal_step_claim() -> tuple[Numbers, bool]:
    rng = np.random.default_rng(8)
    worst = 0.0
    for lam in (0.5, 2.0, 10.0):
        w_t = rng.normal(size=4)
        f_t, g_t = _smooth_fn(Value(w_t)).item(), ad.grad(_smooth_fn)(w_t)
        worst = max(worst, float(np.max(np.abs(proximal_argmin(f_t, g_t, w_t, lam) - (w_t - g_t / lam)))))
    return {"lambdas": "0.5/2/10", "max|argmin - GD step|": worst}, worst < 1e-9


@claim(
    9,
    "OGD regret <= |w*|^2/(2 eta) + (eta/2) sum |v_t|^2",
    "200 random sequences (T=100, d=5), w_1 = 0",
)
def ogd_regret_claim() -> tuple[Numbers, bool]:
    rng = np.random.default_rng(9)
    trials, steps, dim = 200, 100, 5
    eta = 10.0 ** rng.uniform(-2, 0, size=(trials, 1))
    w_star = rng.normal(size=(trials, dim)) * rng.uniform(0.1, 5, size=(trials, 1))
    w = np.zeros((trials, dim))
    regret = np.zeros(trials)
    sq = np.zeros(trials)
    for _ in range(steps):
        v = rng.normal(size=(trials, dim)) + 0.5 * (w - w_star)  # partly adversarial losses
        regret += np.sum((w - w_star) * v, axis=1)
        sq += np.sum(v * v, axis=1)
        w = w - eta * v
    bound = np.sum(w_star**2, axis=1) / (2 * eta[:, 0]) + 0.5 * eta[:, 0] * sq
    numbers = {"max(regret-bound)": np.max(regret - bound), "max regret/bound": np.max(regret / bound)}
    return numbers, bool(np.all(regret <= bound + 1e-9))


_C10 = np.random.default_rng(10).normal(size=5)


def _l1_fn(w: Value) -> Value:
    """f(w) = |w - c|_1 written as relu(w - c) + relu(c - w)."""
    return (ad.relu(w - _C10) + ad.relu(_C10 - w)).sum()


@claim(
    10,
    "averaged GD on convex rho-Lipschitz f: f(w_bar) - f* <= B rho / sqrt(T)",
    "f = |w-c|_1, eta = B/(rho sqrt T), T = 16..4096",
)
def averaged_gd_claim() -> tuple[Numbers, bool]:
    rng = np.random.default_rng(10)
    probes = _C10 + rng.normal(size=(5, 5)) * np.array([[1.0], [1.0], [1.0], [0.0], [1.0]])  # one at the kink
    subgrad_ok = all(np.array_equal(ad.grad(_l1_fn)(p), np.sign(p - _C10)) for p in probes)
    b, rho = float(np.linalg.norm(_C10)), float(np.sqrt(_C10.size))  # |w* - w_1| = B, |sign| = rho
    horizons = np.array([16, 64, 256, 1024, 4096])
    gaps = []
    for t_max in horizons:
        eta, w, total = b / (rho * np.sqrt(t_max)), np.zeros_like(_C10), np.zeros_like(_C10)
        for _ in range(t_max):
            total += w
            w = w - eta * np.sign(w - _C10)  # the subgradient autodiff returns (checked above)
        gaps.append(np.sum(np.abs(total / t_max - _C10)))
    gaps_arr = np.array(gaps)
    ratio = gaps_arr / (b * rho / np.sqrt(horizons))
    slope = float(np.polyfit(np.log(horizons), np.log(gaps_arr), 1)[0])
    numbers = {"gap T=16": gaps_arr[0], "gap T=4096": gaps_arr[-1], "max gap/bound": np.max(ratio), "slope": slope}
    return numbers, subgrad_ok and bool(np.all(ratio <= 1.0)) and -0.75 < slope < -0.25


@claim(11, "softsign x/(1+|x|) is zero-centred with gradient 1/(1+|x|)^2 -> 0", "odd symmetry, autodiff vs formula")
def softsign_claim() -> tuple[Numbers, bool]:
    x = np.linspace(-50.0, 50.0, 2001)
    g = ad.softsign(x).data
    odd = float(np.max(np.abs(ad.softsign(-x).data + g)))
    slope = ad.grad(lambda v: ad.softsign(v).sum())(x)
    formula_gap = float(np.max(np.abs(slope - 1.0 / (1.0 + np.abs(x)) ** 2)))
    far = float(ad.grad(ad.softsign)(1e3))
    z = np.random.default_rng(11).normal(size=20000)
    mean_softsign, mean_sigmoid = ad.softsign(z).data.mean(), ad.sigmoid(z).data.mean()
    numbers = {
        "max|g(-x)+g(x)|": odd,
        "max|grad-formula|": formula_gap,
        "g'(1000)": far,
        "mean g(N(0,1))": mean_softsign,
        "mean sigmoid(N(0,1))": mean_sigmoid,
    }
    ok = odd == 0.0 and formula_gap < 1e-15 and far < 1e-5 and abs(mean_softsign) < 0.02
    return numbers, bool(ok and abs(mean_sigmoid - 0.5) < 0.02 and np.all(np.diff(slope[x > 0]) < 0))


@claim(12, "forward and reverse mode give the same Jacobian", "problem-set f1, f2 at (1, 2): both modes, formula, FD")
def modes_claim(w: tuple[float, float] = (1.0, 2.0)) -> tuple[Numbers, bool]:
    fwd = ad.jacobian(problem_set_fn, w, mode="forward")
    rev = ad.jacobian(problem_set_fn, w, mode="reverse")
    closed = problem_set_jacobian(*w)
    fd = numeric_jacobian(
        lambda v: np.array([o.item() for o in problem_set_fn(Value(v[0]), Value(v[1]))]), np.array(w, float)
    )
    d_modes, d_closed, d_fd = (float(np.max(np.abs(a - b))) for a, b in ((fwd, rev), (fwd, closed), (rev, fd)))
    numbers: Numbers = {f"J{i + 1}{j + 1}": fwd[i, j] for i in range(2) for j in range(2)}
    numbers |= {"max|fwd-rev|": d_modes, "max|fwd-formula|": d_closed, "max|rev-FD|": d_fd}
    return numbers, d_modes < 1e-14 and d_closed < 1e-14 and d_fd < 1e-8


@claim(
    13,
    "circular convolution is a circulant matrix, which commutes with shifts",
    "matrix vs direct and FFT convolution; |CS-SC|, |MS-SM|",
)
def circulant_claim(n: int = 8) -> tuple[Numbers, bool]:
    rng = np.random.default_rng(13)
    kernel, x, generic = rng.normal(size=n), rng.normal(size=n), rng.normal(size=(n, n))
    circ = np.array([[kernel[(i - j) % n] for j in range(n)] for i in range(n)])
    direct = np.array([sum(kernel[j] * x[(i - j) % n] for j in range(n)) for i in range(n)])
    via_fft = np.fft.ifft(np.fft.fft(kernel) * np.fft.fft(x)).real
    shift = np.roll(np.eye(n), 1, axis=0)  # (S x)_i = x_{i-1}
    numbers = {
        "max|Cx-direct|": np.max(np.abs(circ @ x - direct)),
        "max|Cx-FFT|": np.max(np.abs(circ @ x - via_fft)),
        "|CS-SC|": np.linalg.norm(circ @ shift - shift @ circ),
        "|MS-SM| generic": np.linalg.norm(generic @ shift - shift @ generic),
    }
    ok = numbers["max|Cx-direct|"] < 1e-12 and numbers["max|Cx-FFT|"] < 1e-12 and numbers["|CS-SC|"] < 1e-12
    return numbers, ok and numbers["|MS-SM| generic"] > 1e-3


@claim(
    14,
    "the lab's Conv2D with circular padding is shift-equivariant, and its matrix is circulant",
    "Conv2D(3×3, circular) on rolled images; zero padding; stride 2; layer matrix on n×1 images vs circulant",
)
def conv_equivariance_claim(size: int = 8, channels: int = 2, filters: int = 3) -> tuple[Numbers, bool]:
    from mlplab.convolution import ConvGeometry
    from mlplab.layers.conv2d import Conv2D

    rng = np.random.default_rng(14)

    def layer(mode: str, stride: int = 1, height: int = size, width: int = size, c: int = channels) -> Conv2D:
        net = Conv2D(ConvGeometry(height, width, c, 3, stride, 1, mode), filters, np.random.default_rng(0), "float64")
        net.params["b"][...] = rng.normal(size=filters)
        return net

    x = rng.normal(size=(1, size, size, channels))
    shift = (3, 5)
    rolled = np.roll(x, shift, axis=(1, 2))
    circular, zeros = layer("circular"), layer("zeros")

    def gap(net: Conv2D, moved: np.ndarray, by: tuple[int, int]) -> float:
        """max |f(moved) − roll(f(x))|; the layer's output buffer is reused, hence the copy."""
        first = net.forward(moved, False).copy()
        return float(np.max(np.abs(first - np.roll(net.forward(x, False), by, axis=(1, 2)))))

    gaps = {"circular": gap(circular, rolled, shift), "zeros": gap(zeros, rolled, shift)}
    # Stride 2 keeps equivariance only to shifts by multiples of 2 (which move the output by half as much).
    strided = layer("circular", stride=2)
    stride_gap = gap(strided, np.roll(x, (2, 4), axis=(1, 2)), (1, 2))
    # On n×1 one-channel images the layer (bias off) is a linear map of n numbers: its matrix must be circulant.
    line = layer("circular", height=size, width=1, c=1)
    line.params["b"][...] = 0.0
    basis = np.eye(size).reshape(size, size, 1, 1)
    matrix = line.forward(basis, False)[..., 0].reshape(size, size).T  # column j = the layer applied to e_j
    circulant = np.array([[matrix[(i - j) % size, 0] for j in range(size)] for i in range(size)])
    down = np.roll(np.eye(size), 1, axis=0)
    numbers = {
        "max|f(Sx)-Sf(x)| circular": gaps["circular"],
        "max|f(Sx)-Sf(x)| zero padding": gaps["zeros"],
        "stride 2, shift (2,4)": stride_gap,
        "max|M-circ(M e0)|": np.max(np.abs(matrix - circulant)),
        "|M|": np.linalg.norm(matrix),
        "|MS-SM|": np.linalg.norm(matrix @ down - down @ matrix),
    }
    exact = (numbers["max|f(Sx)-Sf(x)| circular"], numbers["stride 2, shift (2,4)"], numbers["max|M-circ(M e0)|"])
    return numbers, max(exact) < 1e-12 and numbers["|MS-SM|"] < 1e-12 and gaps["zeros"] > 1e-3 and numbers["|M|"] > 0.1


@claim(15, "an SGD step can increase the full loss", "f = (w-2)^2/2 + (w+1)^2/2, step w - eta*2*grad f_i, eta=0.1")
def sgd_claim(eta: float = 0.1) -> tuple[Numbers, bool]:
    centres = (2.0, -1.0)
    terms = [lambda w, c=c: 0.5 * (w - c) ** 2 for c in centres]

    def full(w: float) -> float:
        return float(np.sum([term(Value(w)).item() for term in terms]))

    grads = [ad.grad(term) for term in terms]
    grid = np.linspace(-3.0, 4.0, 141)
    rises = np.array([[full(w - eta * len(terms) * float(g(w))) - full(w) for g in grads] for w in grid])
    k, i = np.unravel_index(np.argmax(rises), rises.shape)
    w0 = float(grid[k])
    w_sgd = w0 - eta * len(terms) * float(grads[i](w0))
    w_gd = w0 - eta * float(np.sum([g(w0) for g in grads]))
    numbers: Numbers = {
        "w": w0,
        "term": f"f{i + 1}",
        "f before": full(w0),
        "f after SGD": full(w_sgd),
        "f after GD": full(w_gd),
        "share of (w,i) that rise": float(np.mean(rises > 0)),
    }
    return numbers, full(w_sgd) > full(w0) and full(w_gd) <= full(w0)


# ------------------------------------------------------------------------------------------------- reports
def run_all() -> list[Claim]:
    """Run every claim in order; a claim that raises is reported as FAIL with the error."""
    results = []
    for check in CLAIMS:
        try:
            results.append(check())
        except Exception as exc:  # report it, don't crash the whole problem set
            meta = _META[check]
            results.append(Claim(meta[0], meta[1], meta[2], {"error": f"{type(exc).__name__}: {exc}"}, False))
    return results


def _format_number(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"


def _numbers_text(numbers: Numbers) -> str:
    return ", ".join(f"{k}={_format_number(v)}" for k, v in numbers.items())


def format_lines(results: list[Claim], width: int | None = None) -> str:
    """One line per claim: number, claim, how it was checked, key numbers, PASS/FAIL; wrapped at `width` columns
    (continuations indented under the claim) when given."""
    import textwrap

    lines = [f"{r.number:>2}. {r.title} | {r.method} | {_numbers_text(r.numbers)} | {r.status}" for r in results]
    if width is None:
        return "\n".join(lines)
    wrap = textwrap.TextWrapper(
        max(width, 40), subsequent_indent="    ", break_on_hyphens=False, break_long_words=False
    )
    return "\n".join(wrap.fill(line) for line in lines)


COLUMNS = ("#", "Claim", "How checked", "Key numbers", "Result")
"""The columns of `rows`, the same as format_lines's fields."""


def rows(results: list[Claim]) -> list[list[str]]:
    """One row of cells per claim, for a report table."""
    return [[str(r.number), r.title, r.method, _numbers_text(r.numbers), r.status] for r in results]
