"""Checks of the one-step predictive distribution: standardized residuals and coverage.

If the model is right, the standardized innovations e_t = v_t / sqrt(F_t) are iid N(0, 1)
(Durbin & Koopman 2012, section 2.12 and 7.5): uncorrelated (Ljung-Box), of constant variance
(breakvar H, Engle's ARCH-LM), normal (Jarque-Bera), and y_t falls inside
y_pred_t +/- z_{(1+p)/2} sqrt(F_t) with probability p (the seed's RMSE ignores F_t).

The tests are statsmodels' own, fed e_t after burn-in with missing observations dropped (with
many of them, the lag structure of the Ljung-Box and ARCH tests is approximate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tvbeta.diagnostics import model_labels

#: Columns of :func:`residual_tests`, :func:`prediction_coverage` and
#: :func:`residual_diagnostics` (one tidy schema for all three).
RESIDUAL_COLUMNS: tuple[str, ...] = (
    "Model Name", "Target", "Test", "Parameter", "Statistic", "P-Value", "Expected", "N",
)  # fmt: skip
DEFAULT_LB_LAGS: tuple[int, ...] = (4, 8, 12)
DEFAULT_ARCH_LAGS = 4
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)


def innovation_variance(results: Any) -> pd.Series:
    """F_t after burn-in: ``results.F`` (KalmanResult) or ``results["F"]`` (a mapping).

    Raises
    ------
    KeyError
        When the result carries no innovation variances (the seed's dict did not).
    """
    F = getattr(results, "F", None)
    if F is None and isinstance(results, Mapping):
        F = results.get("F")
    if F is None:
        raise KeyError(
            "the result has no innovation variances F_t (a KalmanResult has them as .F; a "
            "dict needs an 'F' key): standardized residuals and coverage need them"
        )
    return F


def standardized_residuals(results: Any) -> pd.Series:
    """e_t = v_t / sqrt(F_t) after burn-in (dimensionless; NaN where y_t was missing).

    Parameters
    ----------
    results : KalmanResult or mapping
        With ``residuals`` v (n,) in return units and innovation variances F (n,) in squared
        return units.

    Returns
    -------
    pd.Series, (n,)
        Named "standardized_residuals", on the residuals' index.
    """
    v = results["residuals"]
    F = innovation_variance(results)
    e = v.to_numpy(dtype=np.float64) / np.sqrt(np.asarray(F, dtype=np.float64))
    return pd.Series(e, index=v.index, name="standardized_residuals")


def _rows(results: Any, rows: list[dict[str, Any]]) -> pd.DataFrame:
    name, target = model_labels(results)
    frame = pd.DataFrame(rows, columns=list(RESIDUAL_COLUMNS[2:]))
    frame.insert(0, "Target", target)
    frame.insert(0, "Model Name", name)
    return frame.astype({"Statistic": np.float64, "P-Value": np.float64,
                         "Expected": np.float64, "N": np.int64})  # fmt: skip


def residual_tests(
    results: Any,
    lags: Sequence[int] = DEFAULT_LB_LAGS,
    arch_lags: int = DEFAULT_ARCH_LAGS,
) -> pd.DataFrame:
    """Ljung-Box, breakvar, ARCH-LM and Jarque-Bera tests of the standardized residuals.

    Parameters
    ----------
    results : KalmanResult or mapping
        See :func:`standardized_residuals`.
    lags : sequence of int, default (4, 8, 12)
        Ljung-Box lags (steps); lags >= the number of observed residuals are skipped.
    arch_lags : int, default 4
        Lags of the ARCH-LM regression of e_t^2 on its own past.

    Returns
    -------
    pd.DataFrame
        Columns :data:`RESIDUAL_COLUMNS`, one row per test: "Ljung-Box" (Parameter = lag,
        Statistic = Q), "Breakvar H" (Parameter = subset length h, Statistic = H(h), two-sided
        F test), "ARCH-LM" (Parameter = lags, Statistic = LM), "Jarque-Bera" (JB), and
        "Skewness" / "Kurtosis" of e (no p-value). Expected: the statistic's mean under the
        null (Ljung-Box: lag; ARCH-LM: lags; Breakvar: 1; Jarque-Bera: 2; 0 and 3).
    """
    # statsmodels and scipy.stats load here, not at `import tvbeta` (about a second)
    from statsmodels.stats.diagnostic import acorr_ljungbox, het_arch
    from statsmodels.stats.stattools import jarque_bera
    from statsmodels.tsa.stattools import breakvar_heteroskedasticity_test

    e = standardized_residuals(results).dropna().to_numpy()
    n = e.size
    rows: list[dict[str, Any]] = []
    valid = [int(lag) for lag in lags if 0 < int(lag) < n]
    if valid:
        lb = acorr_ljungbox(e, lags=valid)
        for lag, (q, p) in zip(valid, lb[["lb_stat", "lb_pvalue"]].to_numpy(), strict=True):
            rows.append(dict(Test="Ljung-Box", Parameter=lag, Statistic=q, **{"P-Value": p},
                             Expected=lag, N=n))  # fmt: skip
    if n >= 6:  # breakvar needs a subset of at least two observations on each side
        h = int(np.round(n / 3))
        bv = breakvar_heteroskedasticity_test(e, subset_length=h)
        rows.append(dict(Test="Breakvar H", Parameter=h, Statistic=float(bv.statistic),
                         **{"P-Value": float(bv.pvalue)}, Expected=1.0, N=n))  # fmt: skip
    if n > 2 * arch_lags + 1:
        lm, lm_p, _, _ = het_arch(e, nlags=arch_lags, result_object=False)
        rows.append(dict(Test="ARCH-LM", Parameter=arch_lags, Statistic=lm,
                         **{"P-Value": lm_p}, Expected=arch_lags, N=n))  # fmt: skip
    if n >= 3:
        jb, jb_p, skew, kurt = jarque_bera(e)
        rows += [
            dict(Test="Jarque-Bera", Parameter=np.nan, Statistic=jb, **{"P-Value": jb_p},
                 Expected=2.0, N=n),
            dict(Test="Skewness", Parameter=np.nan, Statistic=skew, **{"P-Value": np.nan},
                 Expected=0.0, N=n),
            dict(Test="Kurtosis", Parameter=np.nan, Statistic=kurt, **{"P-Value": np.nan},
                 Expected=3.0, N=n),
        ]  # fmt: skip
    return _rows(results, rows)


def prediction_coverage(results: Any, levels: Sequence[float] = DEFAULT_LEVELS) -> pd.DataFrame:
    """Coverage of the one-step prediction intervals y_pred_t +/- z sqrt(F_t).

    y_t is inside the central interval of level p iff |e_t| <= z_p = Phi^{-1}((1 + p) / 2).

    Parameters
    ----------
    results : KalmanResult or mapping
        See :func:`standardized_residuals`.
    levels : sequence of float in (0, 1), default (0.5, 0.8, 0.9, 0.95)
        Nominal coverage probabilities.

    Returns
    -------
    pd.DataFrame
        Columns :data:`RESIDUAL_COLUMNS`, one "Coverage" row per level: Parameter = the
        nominal level p (= Expected), Statistic = the fraction of observed y_t inside, P-Value
        = the exact two-sided binomial test against p (steps independent under the model).

    Raises
    ------
    ValueError
        A level outside (0, 1).
    """
    from scipy import stats

    e = standardized_residuals(results).dropna().to_numpy()
    n = e.size
    rows = []
    for p in levels:
        if not 0.0 < p < 1.0:
            raise ValueError(f"coverage levels must be in (0, 1), got {p!r}")
        z = stats.norm.ppf(0.5 + p / 2.0)
        inside = int(np.sum(np.abs(e) <= z))
        pval = stats.binomtest(inside, n, p).pvalue if n else np.nan
        rows.append(dict(Test="Coverage", Parameter=p, Statistic=inside / n if n else np.nan,
                         **{"P-Value": pval}, Expected=p, N=n))  # fmt: skip
    return _rows(results, rows)


def residual_diagnostics(
    results: Any,
    lags: Sequence[int] = DEFAULT_LB_LAGS,
    arch_lags: int = DEFAULT_ARCH_LAGS,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> pd.DataFrame:
    """All residual checks of one run in one tidy table.

    Parameters
    ----------
    results : KalmanResult or mapping
        See :func:`standardized_residuals`.
    lags, arch_lags : see :func:`residual_tests`.
    levels : see :func:`prediction_coverage`.

    Returns
    -------
    pd.DataFrame
        :func:`residual_tests` rows followed by :func:`prediction_coverage` rows, columns
        :data:`RESIDUAL_COLUMNS`. Concatenate the tables of several runs to compare them.
    """
    return pd.concat(
        [residual_tests(results, lags, arch_lags), prediction_coverage(results, levels)],
        ignore_index=True,
    )
