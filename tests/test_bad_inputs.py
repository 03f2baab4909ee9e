"""Bad inputs get a clear error or warning that names the argument and what to do, and the
caller's data are never modified."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tvbeta.estimate.grid import run_kalman_grid_search
from tvbeta.model import KalmanSpec
from tvbeta.model.setters import ReturnUnitsWarning, ScalarMLEWarning, set_R_from_mle


# =================================================================================================
# The seed's scalar MLE setters (issue 10, section 6; branch mle): the lower bound, and data that
# are not decimal returns. Needs: warnings, numpy, pandas, run_kalman_grid_search, KalmanSpec,
# ReturnUnitsWarning, ScalarMLEWarning, set_R_from_mle.
# =================================================================================================
# The seed's bounds (../shared/seed/seed_api.md): q in [1e-8, 10], r in [1e-6, 100], on log
# scales from 1e-2; the value stays the seed's, the warning is advice. Each warning must point
# at the line that called tvbeta (the filename of the warning is this file).
def _daily(seed: int, noise: float, scale: float = 1.0, dates: bool = True) -> pd.DataFrame:
    """250 daily decimal returns x ~ N(3e-4, 0.012), y = 0.99 x + N(0, noise), times scale."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0003, 0.012, 250)
    y = 0.99 * x + rng.normal(0.0, noise, 250)
    index = pd.bdate_range("2021-01-04", periods=250) if dates else pd.RangeIndex(250)
    return pd.DataFrame({"fund": y * scale, "mkt": x * scale}, index=index)


def _caught(call):
    """(result, warnings raised by call()), every occurrence recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, caught


def test_scalar_q_mle_on_the_lower_bound_warns_that_betas_barely_move():
    """With the seed's default R = 0.01 (a 10% daily sd) the likelihood wants no drift: q
    stops at the seed's lower bound 1e-8 and the warning says what that means."""
    df = _daily(1, 0.002)
    before = df.copy()
    spec, caught = _caught(lambda: KalmanSpec(1).set_Q_from_mle(df, "fund", ["mkt"]))
    assert spec.q_scalar == 1e-8
    (w,) = [w for w in caught if issubclass(w.category, ScalarMLEWarning)]
    message = str(w.message)
    assert "search for q stopped at its lower bound 1e-08" in message
    assert "expanding-window OLS" in message and "R held at the spec's current value" in message
    assert "tvbeta.fit_mle(df, target_col, factor_cols)" in message
    assert w.filename == __file__
    pd.testing.assert_frame_equal(df, before)


def test_scalar_r_mle_on_the_lower_bound_warns_of_a_near_exact_fit():
    """y = 0.99 x + noise of sd 1e-5: the residual variance 1e-10 is far below the seed's lower
    bound 1e-6 for r, which stops the search there."""
    df = _daily(2, 1e-5)
    before = df.copy()
    spec = KalmanSpec(1).set_Q(1e-10)
    fitted, caught = _caught(lambda: set_R_from_mle(spec, df, "fund", ["mkt"]))
    assert fitted.r_scalar == 1e-6
    (w,) = [w for w in caught if issubclass(w.category, ScalarMLEWarning)]
    message = str(w.message)
    assert "search for r stopped at its lower bound 1e-06" in message
    assert "near-exact fit" in message and "tvbeta.fit_mle" in message
    assert w.filename == __file__
    pd.testing.assert_frame_equal(df, before)


def test_grid_search_warns_of_the_lower_bound_at_the_users_call():
    """The grid's own copy of the scalar search (its "const" Q, with the seed's R = 0.01)."""
    df = _daily(3, 0.002)
    before = df.copy()
    _, caught = _caught(lambda: run_kalman_grid_search(df, "fund", ["mkt"], KalmanSpec(1)))
    bound = [w for w in caught if "lower bound 1e-08" in str(w.message)]
    assert bound and all(w.filename == __file__ for w in bound)
    pd.testing.assert_frame_equal(df, before)


def test_percent_returns_warn_that_the_seeds_bounds_assume_decimals():
    """Daily returns times 100: a robust sd of ~1.2 per day, where decimal returns at an
    annualised volatility of 200% vary by at most 2 sqrt(1 / 365.25) = 0.105. The same data in
    decimals raise no such warning; the value found is kept."""
    decimal = _daily(4, 0.002)
    percent = decimal * 100.0
    before = percent.copy()
    spec = KalmanSpec(1).set_R(1.0)
    _, caught = _caught(lambda: spec.set_Q_from_mle(percent, "fund", ["mkt"]))
    (w,) = [w for w in caught if issubclass(w.category, ReturnUnitsWarning)]
    message = str(w.message)
    assert "do not look like decimal returns" in message
    assert "the target (1.2" in message and "mkt (1.2" in message
    assert "a period of 1 day(s)" in message and "percent (divide by 100)" in message
    assert "q in [1e-8, 10], r in [1e-6, 100]" in message
    assert w.filename == __file__
    pd.testing.assert_frame_equal(percent, before)
    _, clean = _caught(lambda: spec.set_Q_from_mle(decimal, "fund", ["mkt"]))
    assert not [w for w in clean if issubclass(w.category, ReturnUnitsWarning)]


def test_basis_points_without_dates_warn_and_say_a_year_was_assumed():
    """Returns in basis points (x 10,000) on a plain row index: the rule assumes yearly rows
    (the most lenient bound, 2) and still flags them."""
    df = _daily(5, 0.002, scale=1e4, dates=False)
    before = df.copy()
    _, caught = _caught(lambda: KalmanSpec(1).set_R_from_mle(df, "fund", ["mkt"]))
    (w,) = [w for w in caught if issubclass(w.category, ReturnUnitsWarning)]
    message = str(w.message)
    assert "yearly rows (the index has no dates; the most lenient case)" in message
    assert "basis points (divide by 10,000)" in message
    assert w.filename == __file__
    pd.testing.assert_frame_equal(df, before)
