"""One-step-ahead predictive distributions and proper scores.

Every method is reduced to the predictive distribution of y_t given y_{<t} at each scored step:
a Kalman plug-in gives N(z_t' a_{t|t-1}, F_t), a posterior over (Q, R) an equal-weight mixture
of those over the draws, rolling OLS a Student t. Scores: the log predictive density (the
proper local score), the RMSE of the predictive mean, central interval coverage (by the PIT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import special, stats

from tvbeta.kalman import StateSpace, kalman_filter


class OneStepForecast(NamedTuple):
    """Predictive distributions of y at m scored steps.

    y : (m,) observed values; mean : (m,) predictive means; sd : (m,) predictive standard
    deviations; log_density : (m,) log p(y_t | y_{<t}) at the observed y (nats);
    pit : (m,) P(Y_t <= y_t | y_{<t}) (uniform on (0, 1) for a calibrated forecast).
    """

    y: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    log_density: np.ndarray
    pit: np.ndarray


def gaussian_forecast(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> OneStepForecast:
    """N(mean, var) predictive at each step; arrays (m,)."""
    sd = np.sqrt(var)
    z = (y - mean) / sd
    return OneStepForecast(y, mean, sd, stats.norm.logpdf(z) - np.log(sd), stats.norm.cdf(z))


def mixture_forecast(y: np.ndarray, means: np.ndarray, vars_: np.ndarray) -> OneStepForecast:
    """Equal-weight mixture over D draws of N(means[d], vars_[d]); means, vars_ : (D, m).

    log density: log mean_d p_d(y) by log-sum-exp; mean and variance: the mixture's.
    """
    sd = np.sqrt(vars_)
    z = (y[None] - means) / sd
    log_density = special.logsumexp(stats.norm.logpdf(z) - np.log(sd), axis=0) - np.log(len(means))
    mean = means.mean(axis=0)
    var = vars_.mean(axis=0) + means.var(axis=0)
    return OneStepForecast(y, mean, np.sqrt(var), log_density, stats.norm.cdf(z).mean(axis=0))


def stacked_forecast(forecasts: Sequence[OneStepForecast], weights: np.ndarray) -> OneStepForecast:
    """Return the mixture sum_m w_m p_m(y_t) of M predictives of the same steps (weights (M,)).

    Log density by log-sum-exp, PIT as the weighted PITs, mean and variance the mixture's (law
    of total variance), as in stacking of predictive distributions (Yao, Vehtari, Simpson &
    Gelman 2018, Bayesian Analysis 13(3), 917-1007).
    """
    w = np.asarray(weights, dtype=float)[:, None]
    means = np.array([fc.mean for fc in forecasts])
    var = np.sum(w * (np.array([fc.sd for fc in forecasts]) ** 2 + means**2), axis=0)
    mean = np.sum(w * means, axis=0)
    with np.errstate(divide="ignore"):  # a zero weight contributes nothing
        log_density = special.logsumexp(np.array([fc.log_density for fc in forecasts])
                                        + np.log(w), axis=0)  # fmt: skip
    pit = np.sum(w * np.array([fc.pit for fc in forecasts]), axis=0)
    return OneStepForecast(forecasts[0].y, mean, np.sqrt(var - mean**2), log_density, pit)


def student_t_forecast(
    y: np.ndarray, mean: np.ndarray, scale: np.ndarray, dof: float
) -> OneStepForecast:
    """Student t predictive (location mean, scale, dof degrees of freedom); arrays (m,)."""
    z = (y - mean) / scale
    sd = scale * np.sqrt(dof / (dof - 2)) if dof > 2 else np.full_like(scale, np.inf)
    return OneStepForecast(y, mean, sd, stats.t.logpdf(z, dof) - np.log(scale), stats.t.cdf(z, dof))


def kalman_predictive(m: StateSpace) -> tuple[np.ndarray, np.ndarray]:
    """One-step predictive mean z_t' a_{t|t-1} and variance F_t = z_t' P_{t|t-1} z_t + R_t, (n,).

    Computed for every step, observed or not (the filter only skips the update where y is NaN);
    NaN on the rows before the first observed y, which are not part of the model.
    """
    f = kalman_filter(*m)
    mean = np.einsum("tk,tk->t", m.Z, f.a_pred)
    var = np.einsum("ti,tij,tj->t", m.Z, f.P_pred, m.Z) + np.broadcast_to(m.R, (m.n,))
    return mean, var


def posterior_forecast(fit: Any, steps: np.ndarray, draws: np.ndarray,
                       rows: Any | None = None) -> OneStepForecast:
    """Return a Bayes fit's predictive at ``steps``: the mixture over some posterior draws.

    Each draw d of ``draws`` (positions among the fit's pooled draws) gives the Kalman plug-in
    N(z_t' a_{t|t-1}, F_t) (`kalman_predictive`); the forecast is their equal-weight mixture
    (`mixture_forecast`). ``rows``: a `Design` holding the fit's rows and more (a test span:
    the volatility index of R_t is extended over them, `BayesFit.system_draws`), or None for
    the fit's own rows; ``steps`` (m,) are positions in those rows.
    """
    system = fit.system_draws(rows)
    y, Z = (fit.spec.y, fit.spec.Z) if rows is None else (rows.y, rows.Z)
    means, vars_ = [], []
    for d in draws:
        mean, var = kalman_predictive(fit.spec.state_space(system, d, y, Z))
        means.append(mean[steps])
        vars_.append(var[steps])
    return mixture_forecast(y[steps], np.array(means), np.array(vars_))


def rolling_ols_forecast(
    y: np.ndarray, Z: np.ndarray, steps: np.ndarray, window: int
) -> OneStepForecast:
    """Forecast by OLS on the last `window` observations before each scored step (exact t).

    y : (n,) with NaN for a missing target, Z : (n, k) (a column of ones for an intercept),
    steps : (m,) row positions to score. The window counts observed rows, as the rolling setters
    in `tvbeta.model.heuristics` do (statsmodels' ``RollingOLS(missing="drop")`` counts rows),
    so every predictive has the same degrees of freedom: t_{w-k}(z_t' b, s^2 (1 + z_t'(X'X)^{-1}
    z_t)) with b, s^2 the OLS fit on those w rows (the classical no-prior predictive).

    Raises
    ------
    ValueError
        When a scored step has fewer than ``window`` observations before it, or the window is
        too short for k regressors.
    """
    k = Z.shape[1]
    if window <= k + 2:
        raise ValueError(f"rolling window {window} too short for {k} regressors (need > k + 2)")
    observed = np.flatnonzero(~np.isnan(y))
    n_before = np.searchsorted(observed, steps)  # observations at rows < t
    short = np.flatnonzero(n_before < window)
    if short.size:
        i = short[0]
        raise ValueError(
            f"rolling OLS needs {window} observed targets before every scored step; row "
            f"{steps[i]} has {n_before[i]}: shorten the window or score later rows"
        )
    rows = observed[n_before[:, None] - window + np.arange(window)]  # (m, w)
    X, yy = Z[rows], y[rows]  # (m, w, k), (m, w)
    XtX = np.einsum("mwi,mwj->mij", X, X)
    b = np.linalg.solve(XtX, np.einsum("mwi,mw->mi", X, yy)[..., None])[..., 0]
    resid = yy - np.einsum("mwk,mk->mw", X, b)
    dof = window - k
    s2 = (resid**2).sum(axis=1) / dof
    z = Z[steps]
    lever = np.einsum("mi,mi->m", z, np.linalg.solve(XtX, z[..., None])[..., 0])
    return student_t_forecast(y[steps], np.einsum("mk,mk->m", z, b), np.sqrt(s2 * (1 + lever)), dof)


def scores(fc: OneStepForecast, level: float = 0.9) -> dict[str, float]:
    """Mean log score (nats per step), RMSE and central `level` interval coverage, with n."""
    lo, hi = (1 - level) / 2, (1 + level) / 2
    return {
        "log score": float(fc.log_density.mean()),
        "RMSE": float(np.sqrt(np.mean((fc.y - fc.mean) ** 2))),
        f"coverage {round(100 * level)}%": float(np.mean((fc.pit > lo) & (fc.pit < hi))),
        "n test": int(fc.y.size),
    }
