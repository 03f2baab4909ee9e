"""Residual checks against direct statsmodels calls, and coverage of a right and wrong model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox, het_arch
from statsmodels.stats.stattools import jarque_bera
from statsmodels.tsa.stattools import breakvar_heteroskedasticity_test

from tests.evaluate import cases
from tvbeta.evaluate import (
    RESIDUAL_COLUMNS,
    prediction_coverage,
    residual_diagnostics,
    residual_tests,
    standardized_residuals,
)

LEVELS = (0.5, 0.8, 0.9, 0.95)


@pytest.fixture(scope="module")
def sim():
    return cases.simulated(n_time=800, missing_frac=0.02, seed=21)


@pytest.fixture(scope="module")
def true_result(sim):
    return cases.run_true(sim)


def direct_e(results) -> np.ndarray:
    """(y - y_pred) / sqrt(F) computed here from the result's own series, NaN dropped."""
    e = (results.y - results.y_pred) / np.sqrt(results.F)
    return e.dropna().to_numpy()


def naive_coverage(results, p: float) -> float:
    z = stats.norm.ppf((1 + p) / 2)
    inside = n = 0
    for y, yp, f in zip(results.y, results.y_pred, results.F, strict=True):
        if math.isnan(y):
            continue
        n += 1
        inside += yp - z * math.sqrt(f) <= y <= yp + z * math.sqrt(f)
    return inside / n


def test_standardized_residuals(true_result):
    e = standardized_residuals(true_result)
    assert e.index.equals(true_result.residuals.index)
    np.testing.assert_allclose(e.dropna().to_numpy(), direct_e(true_result), rtol=1e-12)
    assert e.isna().sum() == true_result.y.isna().sum()


def test_tests_equal_direct_statsmodels_calls(sim_missing_result):
    table = residual_tests(sim_missing_result, lags=(4, 8, 12), arch_lags=4)
    assert list(table.columns) == list(RESIDUAL_COLUMNS)
    e = direct_e(sim_missing_result)
    t = table.set_index(["Test", "Parameter"])
    lb = acorr_ljungbox(e, lags=[4, 8, 12])
    for lag in (4, 8, 12):
        assert t.loc[("Ljung-Box", lag), "Statistic"] == pytest.approx(lb.loc[lag, "lb_stat"])
        assert t.loc[("Ljung-Box", lag), "P-Value"] == pytest.approx(lb.loc[lag, "lb_pvalue"])
    h = round(len(e) / 3)
    bv = breakvar_heteroskedasticity_test(e, subset_length=h)
    assert t.loc[("Breakvar H", h), "Statistic"] == pytest.approx(bv.statistic)
    assert t.loc[("Breakvar H", h), "P-Value"] == pytest.approx(bv.pvalue)
    lm, lm_p, _, _ = het_arch(e, nlags=4, result_object=False)
    assert t.loc[("ARCH-LM", 4), "Statistic"] == pytest.approx(lm)
    assert t.loc[("ARCH-LM", 4), "P-Value"] == pytest.approx(lm_p)
    jb, jb_p, skew, kurt = jarque_bera(e)
    rows = table.set_index("Test")
    assert rows.loc["Jarque-Bera", "Statistic"] == pytest.approx(jb)
    assert rows.loc["Jarque-Bera", "P-Value"] == pytest.approx(jb_p)
    assert rows.loc["Skewness", "Statistic"] == pytest.approx(skew)
    assert rows.loc["Kurtosis", "Statistic"] == pytest.approx(kurt)
    assert (table["N"] == len(e)).all()
    assert (table["Model Name"] == "Sim Model").all() and (table["Target"] == "y").all()


@pytest.mark.parametrize("p", LEVELS)
def test_coverage_equals_a_loop(sim_missing_result, p):
    row = prediction_coverage(sim_missing_result, levels=[p]).iloc[0]
    assert row["Statistic"] == pytest.approx(naive_coverage(sim_missing_result, p), abs=1e-15)
    assert row["Expected"] == p and row["Parameter"] == p


def binomial_sd(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_correct_model_is_calibrated(true_result):
    """The data-generating model: coverage within 3.5 binomial sd of nominal, tests pass."""
    cov = prediction_coverage(true_result, levels=LEVELS)
    for _, row in cov.iterrows():
        assert abs(row["Statistic"] - row["Expected"]) < 3.5 * binomial_sd(row["Expected"],
                                                                            row["N"])
    tests = residual_tests(true_result)
    assert (tests["P-Value"].dropna() > 1e-3).all(), tests


@pytest.mark.parametrize(("R_scale", "direction"), [(1 / 20, -1), (20.0, +1)])
def test_misspecified_model_is_not(sim, R_scale, direction):
    """R too small: intervals too narrow (under-coverage); R too large: over-coverage."""
    cov = prediction_coverage(cases.run_true(sim, R_scale=R_scale), levels=LEVELS)
    for _, row in cov.iterrows():
        gap = direction * (row["Statistic"] - row["Expected"])
        assert gap > 5 * binomial_sd(row["Expected"], row["N"]), row
        assert row["P-Value"] < 1e-6


def test_too_stiff_betas_leave_autocorrelated_residuals(sim):
    """Q 1000x too small: the betas lag the truth and the Ljung-Box test rejects."""
    tests = residual_tests(cases.run_true(sim, Q_scale=1e-3))
    lb = tests[tests["Test"] == "Ljung-Box"]
    assert (lb["P-Value"] < 1e-3).all(), lb


def test_residual_diagnostics_is_tests_then_coverage(true_result):
    table = residual_diagnostics(true_result)
    assert list(table.columns) == list(RESIDUAL_COLUMNS)
    assert list(table["Test"]) == [
        "Ljung-Box", "Ljung-Box", "Ljung-Box", "Breakvar H", "ARCH-LM", "Jarque-Bera",
        "Skewness", "Kurtosis", "Coverage", "Coverage", "Coverage", "Coverage",
    ]  # fmt: skip


def test_seed_dict_needs_F(sim_result):
    with pytest.raises(KeyError, match="innovation variances"):
        residual_diagnostics(cases.as_seed_dict(sim_result))
    with_F = cases.as_seed_dict(sim_result) | {"F": sim_result.F}
    assert residual_diagnostics(with_F).equals(residual_diagnostics(sim_result))


def test_short_series_skip_tests_that_do_not_fit(sim_result):
    short = cases.run_default(cases.simulated(n_time=14), burn=8)  # 6 observed steps
    table = residual_tests(short, lags=(4, 8, 12))
    assert list(table.loc[table["Test"] == "Ljung-Box", "Parameter"]) == [4]
    assert "ARCH-LM" not in set(table["Test"])


def test_seed_case_table(seed_result):
    table = residual_diagnostics(seed_result)
    assert len(table) == 12
    assert np.isfinite(table["Statistic"]).all()
    assert (table["N"] == len(seed_result.residuals)).all()
