"""Fit the same model with tvbeta and with statsmodels, side by side.

A user-facing check that tvbeta's numbers are statsmodels' numbers: the same model, the same
initialisation and the same burn, estimated by both; the table shows the log-likelihood of each
at the other's optimum, the estimates, the maximised log-likelihoods and the fit times, and the
exact (60-digit) log-likelihood at statsmodels' optimum, which says whose rounding a residual
difference is.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tvbeta.estimate.mle import MLEConvergenceWarning, fit_mle
from tvbeta.estimate.statsmodels_twin import TVPRegression
from tvbeta.kalman import kalman_loglik
from tvbeta.kalman.arrays import burn_row
from tvbeta.kalman.reference import loglik_decimal


def crosscheck_statsmodels(
    df: pd.DataFrame, target_col: Hashable, factor_cols: Sequence[Hashable] | Hashable,
    **fit_args: Any,
) -> pd.DataFrame:
    """Joint MLE of (Q, R) by tvbeta (`fit_mle`) and by the statsmodels twin, compared.

    Arguments as in `fit_mle`, ``fit_args`` its keywords (intercept, q, burn, spec; ``burn``
    counts observed steps). Returns a table indexed by quantity (each natural parameter, "llf",
    "llf at statsmodels' optimum", "fit time (s)") with columns "tvbeta", "statsmodels", "rel.
    diff", "abs. diff" and "exact". Each compared row has one of the differences: relative, or
    absolute where statsmodels' value is ~0 (a variance at zero, `NEAR_ZERO`); the fit times are
    shown, not compared. Both optimisers start from their own defaults, so agreement of the
    estimates is a real check, not a copy; statsmodels' L-BFGS-B runs with a tighter stopping
    tolerance than scipy's default, so that both fits are converged. "exact" (NaN on the other
    rows) is the log-likelihood at statsmodels' optimum computed with 60 significant digits
    (`tvbeta.kalman.reference.loglik_decimal`): where tvbeta and statsmodels differ there, it is
    rounding, and this column says whose. Under a near-diffuse prior (the seed's intercept
    variance 1e6) statsmodels' textbook covariance update loses digits in the first steps (about
    1e-9 relative on the seed's data); tvbeta's factored update does not.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        t0 = time.perf_counter()
        ours = fit_mle(df, target_col, factor_cols, **fit_args)
        t_ours = time.perf_counter() - t0
    # the fitted spec has the given (or default) initial state and T; the fit keeps its design
    spec, burn, design, q = ours.spec, ours.burn, ours.result.design, ours.q
    T = spec.T.kernel(len(design.y), "T")
    # The same model for statsmodels: its filter would predict through the rows before the
    # first observed target (not part of tvbeta's model) and its loglikelihood_burn counts
    # rows, so it gets the rows from the first observation on and the burn as a row count.
    y, Z = (x[burn_row(design.y, 0) :] for x in (design.y, design.Z))
    twin = TVPRegression(y, Z, q=q, T=T[0], a0=spec.beta0, P0=spec.P0, burn=burn_row(y, burn))
    t0 = time.perf_counter()
    # factr 1e5 instead of scipy's 1e7: with the default, L-BFGS-B stops 3e-4 nats short of
    # the maximum on the seed's intercept model, 2.5% away along a flat direction
    theirs = twin.fit(disp=False, maxiter=5000, factr=1e5)
    t_theirs = time.perf_counter() - t0
    Q_sm, R_sm = twin.state_cov(theirs.params), float(theirs.params[-1])
    nat_sm = np.r_[np.diag(Q_sm) if q == "diag" else Q_sm[np.tril_indices(spec.K)], R_sm]
    at_sm = (design.y, design.Z, T, Q_sm[None], [R_sm], spec.beta0, spec.P0)
    ll_ours_at_sm = kalman_loglik(*at_sm, burn=burn)
    rows = {name: (a, b) for name, a, b in zip(ours.params.index, ours.params, nat_sm,
                                               strict=True)}
    rows["llf"] = (ours.llf, float(theirs.llf))
    rows["llf at statsmodels' optimum"] = (ll_ours_at_sm, float(theirs.llf))
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["tvbeta", "statsmodels"])
    table = pd.concat([table, differences(table["tvbeta"], table["statsmodels"],
                                          len(ours.params))], axis=1)  # fmt: skip
    table["exact"] = np.nan
    table.loc["llf at statsmodels' optimum", "exact"] = loglik_decimal(*at_sm, burn=burn)
    # the times are not estimates of the same quantity: a row of their own, never compared
    table.loc["fit time (s)", ["tvbeta", "statsmodels"]] = (t_ours, t_theirs)
    return table


NEAR_ZERO = 1e-3
"""A parameter whose reference is below this fraction of the largest parameter (in absolute
value) is ~0: its relative difference would measure rounding, so it gets an absolute one."""


def differences(ours: pd.Series, reference: pd.Series, n_params: int) -> pd.DataFrame:
    """Return the differences of ``ours`` from ``reference``, relative or absolute per row.

    Columns "rel. diff" |a - b| / |b| and "abs. diff" |a - b|, one of them per row: the
    absolute one for the first ``n_params`` rows (variances, covariances) whose reference is ~0
    (`NEAR_ZERO`) and for a reference of exactly 0, the relative one elsewhere.
    """
    diff = (ours - reference).abs()
    size = reference.abs()
    near_zero = size == 0
    near_zero.iloc[:n_params] |= size.iloc[:n_params] <= NEAR_ZERO * size.iloc[:n_params].max()
    return pd.DataFrame({"rel. diff": (diff / size).where(~near_zero),
                         "abs. diff": diff.where(near_zero)})  # fmt: skip
