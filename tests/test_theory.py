"""The executable problem set: every claim passes, reports finite numbers, and can fail when it should."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mlplab import theory
from mlplab.report import Table


@pytest.fixture(scope="module")
def results() -> tuple[list[theory.Claim], float]:
    start = time.perf_counter()
    out = theory.run_all()
    return out, time.perf_counter() - start


def test_all_fifteen_claims_pass_quickly(results: tuple[list[theory.Claim], float]) -> None:
    claims, seconds = results
    assert [c.number for c in claims] == list(range(1, 16))
    failed = [(c.number, c.numbers) for c in claims if not c.passed]
    assert not failed
    assert seconds < 5.0


def test_numbers_are_finite_and_present(results: tuple[list[theory.Claim], float]) -> None:
    for c in results[0]:
        assert c.title and c.method and c.numbers, c.number
        for key, value in c.numbers.items():
            assert isinstance(value, str) or math.isfinite(value), (c.number, key)


def test_text_and_markdown_reports(results: tuple[list[theory.Claim], float]) -> None:
    claims = results[0]
    lines = theory.format_lines(claims).splitlines()
    assert len(lines) == 15
    assert all(line.endswith("| PASS") for line in lines)
    assert lines[11].startswith("12.") and "J11=0.3502" in lines[11]
    table = [row for row in Table(list(theory.COLUMNS), theory.rows(claims)).markdown().splitlines()]
    assert len(table) == 2 + 15  # header, separator, one row per claim
    assert table[0] == "| # | Claim | How checked | Key numbers | Result |"
    assert all(row.count(" | ") == 4 for row in table[2:])  # '|' inside cells is escaped


def test_xor_lp_is_infeasible_while_and_or_are_feasible() -> None:
    x = theory.BOOL_INPUTS
    assert theory.threshold_lp(x, theory.GATES["XOR"]).status == 2
    for gate in ("AND", "OR"):
        res = theory.threshold_lp(x, theory.GATES[gate])
        assert res.status == 0
        assert np.array_equal((x @ res.x[:2] + res.x[2] >= 0).astype(int), theory.GATES[gate])
        assert theory.farkas_certificate(x, theory.GATES[gate]).status == 2  # no certificate for a feasible gate
    assert theory.farkas_certificate(x, theory.GATES["XOR"]).status == 0


def test_softmax_jacobian_check_rejects_a_wrong_formula() -> None:
    assert theory.softmax_jacobian_claim().passed
    wrong = theory.softmax_jacobian_claim(analytic=lambda z: np.diag(theory.softmax(z)))
    assert not wrong.passed
    assert wrong.numbers["max|formula-reverse|"] > 1e-3


def test_claims_with_other_inputs() -> None:
    other = theory.modes_claim(w=(0.3, 0.7))
    assert other.passed and other.numbers["J22"] == pytest.approx(1 / 1.0 + 0.09, abs=1e-14)
    assert theory.circulant_claim(n=5).passed
    conv = theory.conv_equivariance_claim(size=6, channels=1, filters=2)
    assert conv.passed and conv.numbers["max|f(Sx)-Sf(x)| zero padding"] > 1e-3
    steps = theory.sgd_claim(eta=0.05)
    assert steps.passed and steps.numbers["f after SGD"] > steps.numbers["f before"]


def test_gd_step_is_the_proximal_argmin() -> None:
    rng = np.random.default_rng(0)
    w_t, g_t = rng.normal(size=3), rng.normal(size=3)
    assert np.allclose(theory.proximal_argmin(1.0, g_t, w_t, lam=4.0), w_t - 0.25 * g_t, rtol=0, atol=1e-10)
    assert not np.allclose(theory.proximal_argmin(1.0, g_t, w_t, lam=4.0), w_t - 0.5 * g_t, atol=1e-3)


def test_a_raising_claim_is_reported_as_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(theory, "CLAIMS", [])
    monkeypatch.setattr(theory, "_META", {})

    @theory.claim(99, "broken", "divides by zero")
    def broken() -> tuple[theory.Numbers, bool]:
        return {"x": 1 / 0}, True

    (result,) = theory.run_all()
    assert not result.passed and result.number == 99
    assert "ZeroDivisionError" in str(result.numbers["error"])
    assert theory.format_lines([result]).endswith("| FAIL")
