"""Fit the same model with tvbeta and with statsmodels, side by side (`crosscheck_statsmodels`)."""

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
    diff", "abs. diff" (`differences`) and "exact"; fit times are shown, not compared. Both
    optimisers start from their own defaults, so agreement is a real check. "exact" is the
    log-likelihood at statsmodels' optimum to 60 digits (`tvbeta.kalman.reference.loglik_decimal`):
    it says whose rounding a difference there is. Under a near-diffuse prior (the seed's
    intercept variance 1e6) statsmodels' textbook covariance update loses digits in the first
    steps (about 1e-9 relative on the seed's data); tvbeta's factored update does not.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        t0 = time.perf_counter()
        ours = fit_mle(df, target_col, factor_cols, **fit_args)
        t_ours = time.perf_counter() - t0
    spec, burn, design, q = ours.spec, ours.burn, ours.result.design, ours.q
    T = spec.T.kernel(len(design.y), "T")
    # statsmodels would predict through rows before the first observed target (not in tvbeta's
    # model) and its burn counts rows: it gets the rows from the first observation on
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
    table.loc["fit time (s)", ["tvbeta", "statsmodels"]] = (t_ours, t_theirs)
    return table


NEAR_ZERO = 1e-3
"""A parameter whose reference is below this fraction of the largest parameter (in absolute
value) is ~0: its relative difference would measure rounding, so it gets an absolute one."""


def differences(ours: pd.Series, reference: pd.Series, n_params: int) -> pd.DataFrame:
    """Return "rel. diff" |a - b| / |b| or "abs. diff" |a - b| of ``ours`` per row.

    Absolute for a reference of 0 and for the first ``n_params`` rows (variances, covariances)
    whose reference is ~0 (`NEAR_ZERO`), relative elsewhere.
    """
    diff = (ours - reference).abs()
    size = reference.abs()
    near_zero = size == 0
    near_zero.iloc[:n_params] |= size.iloc[:n_params] <= NEAR_ZERO * size.iloc[:n_params].max()
    return pd.DataFrame({"rel. diff": (diff / size).where(~near_zero),
                         "abs. diff": diff.where(near_zero)})  # fmt: skip
