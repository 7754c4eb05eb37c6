"""Garwood intervals and the incomplete-gamma machinery behind them (no scipy)."""

from __future__ import annotations

import math

import pytest

from shared.confidence import (
    EXACT_LIMIT,
    chi2_ppf,
    gamma_p,
    gamma_ppf,
    hashrate_interval,
    poisson_interval,
    poisson_interval_wilson_hilferty,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("n", "lower", "upper"),
    [  # Garwood (1936) 95% bounds as tabulated, e.g. by Ulm (1990)
        (0, 0.0, 3.6889),
        (1, 0.0253, 5.5716),
        (2, 0.2422, 7.2247),
        (5, 1.6235, 11.6683),
        (10, 4.7954, 18.3904),
        (20, 12.2165, 30.8884),
        (100, 81.3639, 121.627),
    ],
)
def test_garwood_table(n: int, lower: float, upper: float) -> None:
    lo, hi = poisson_interval(n)
    # tables print 4 decimals (some truncate rather than round: allow one unit)
    assert lo == pytest.approx(lower, abs=1e-4)
    assert hi == pytest.approx(upper, abs=1e-3 if upper > 100 else 1e-4)


def test_garwood_closed_forms() -> None:
    # N = 0 upper and N = 1 lower are exponential quantiles: -ln(alpha/2), -ln(1 - alpha/2)
    assert poisson_interval(0)[1] == pytest.approx(-math.log(0.025), rel=1e-13)
    assert poisson_interval(1)[0] == pytest.approx(-math.log(0.975), rel=1e-13)
    assert poisson_interval(0)[0] == 0.0


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.95, 1, 3.841458820694124),  # = 1.959963984540054 ** 2
        (0.99, 5, 15.086272469388987),
        (0.05, 10, 3.9402991361190605),
        (0.5, 2, 2 * math.log(2)),
        (0.975, 22, 36.78071208403519),
        (0.025, 200, 162.728),  # printed tables give 3 decimals here
    ],
)
def test_chi2_ppf_known_values(p: float, df: int, expected: float) -> None:
    assert chi2_ppf(p, df) == pytest.approx(expected, rel=1e-9 if df < 200 else 1e-6)


@pytest.mark.parametrize("x", [1e-6, 0.1, 0.5, 1.0, 2.0, 3.9, 4.1, 10.0, 30.0, 80.0])
def test_gamma_p_closed_forms(x: float) -> None:
    assert gamma_p(1.0, x) == pytest.approx(-math.expm1(-x), rel=1e-13, abs=1e-300)
    assert gamma_p(0.5, x) == pytest.approx(math.erf(math.sqrt(x)), rel=1e-12)
    assert gamma_p(3.0, x) == pytest.approx(
        1.0 - math.exp(-x) * (1.0 + x + x * x / 2.0), rel=1e-9, abs=1e-15
    )


@pytest.mark.parametrize("a", [0.1, 0.5, 1.0, 2.0, 7.5, 50.0, 400.0, 1001.0])
@pytest.mark.parametrize("p", [1e-10, 0.001, 0.025, 0.5, 0.975, 0.999999])
def test_gamma_ppf_inverts_gamma_p(a: float, p: float) -> None:
    x = gamma_ppf(p, a)
    assert gamma_p(a, x) == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("n", [EXACT_LIMIT + 1, 1500, 3000, 10_000, 100_000])
def test_wilson_hilferty_above_the_exact_limit_is_within_1e_6(n: int) -> None:
    exact = (gamma_ppf(0.025, n), gamma_ppf(0.975, n + 1))
    approx = poisson_interval_wilson_hilferty(n)
    for e, a in zip(exact, approx):
        assert abs(a - e) / e < 1e-6
    assert poisson_interval(n) == approx


def test_relative_width_shrinks_like_one_over_sqrt_n() -> None:
    for n in (100, 10_000, 1_000_000):
        lo, hi = poisson_interval(n)
        assert (hi - lo) / n == pytest.approx(2 * 1.96 / math.sqrt(n), rel=0.05)


def test_hashrate_interval_scales_per_share() -> None:
    lo, hi = hashrate_interval(1000.0, 10)  # 100 H/s per share
    assert lo == pytest.approx(479.5388696, rel=1e-9)
    assert hi == pytest.approx(1839.035604, rel=1e-9)
    assert hashrate_interval(0.0, 0) == (0.0, None)  # no share and no known share size
    lo, hi = hashrate_interval(0.0, 0, per_share_hs=50.0)
    assert lo == 0.0 and hi == pytest.approx(50.0 * 3.688879454, rel=1e-9)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        poisson_interval(-1)
    with pytest.raises(ValueError):
        gamma_ppf(1.0, 2.0)
    with pytest.raises(ValueError):
        gamma_p(0.0, 1.0)
