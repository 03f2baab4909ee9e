"""The seed's summary tables of one filter run: model diagnostics and factor dynamics.

Both read only the seed's result keys (``"beta"``, ``"kalman_gain"``, ``"H"``, ``"residuals"``,
``"log_likelihood"``, ``"meta"``): a :class:`tvbeta.results.KalmanResult` or the seed's dict.
Whole-array numpy throughout: the grid search calls them once per model. Missing observations
are left out of the residual statistics; without them every number is the seed's definition in
``../shared/seed/seed_api.md`` ("Diagnostics").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tvbeta.constants import INTERCEPT

#: Columns of :func:`summarize_model_diagnostics`, in the seed's order.
MODEL_DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "Model Name", "Target", "Date Range", "# Observations", "Final RMSE", "Mean RMSE", "Total SSE",
    "Cumulative Log-Likelihood", "Mean Gain Norm", "Mean Drift Norm",
)  # fmt: skip

#: Decimals of the seed's Mean RMSE: it ranks its grid by the rounded figure.
MEAN_RMSE_DECIMALS = 6

#: Columns of :func:`summarize_factor_dynamics`, in the seed's order.
FACTOR_DYNAMICS_COLUMNS: tuple[str, ...] = (
    "Model Name", "Target", "Factor", "Avg Beta", "Beta Std", "Final Beta", "Beta Z-Score",
    "Min Beta", "Max Beta", "Drift Volatility", "Mean Gain", "Avg Contribution",
    "Final Contribution",
)  # fmt: skip


def _meta(results: Any) -> Mapping[str, Any]:
    meta = results["meta"]
    return meta if meta is not None else {}


def model_labels(results: Any) -> tuple[Any, Any]:
    """(model name, target name) from the meta ("Model Name", "Target Column").

    The target falls back to ``results.target_name`` (a :class:`KalmanResult`).
    """
    meta = _meta(results)
    target = meta.get("Target Column")
    if target is None:
        target = getattr(results, "target_name", None)
    return meta.get("Model Name"), target


def expanding_rmse(residuals: pd.Series | np.ndarray) -> np.ndarray:
    """Compute the expanding root-mean-square of the residuals, ignoring NaN.

    Parameters
    ----------
    residuals : (n,) array-like
        One-step innovations v_t (return units); NaN where y_t was missing.

    Returns
    -------
    rmse : np.ndarray, (n,)
        ``rmse[t] = sqrt(sum_{s<=t} v_s^2 / #{s<=t observed})`` (return units); NaN before
        the first observed residual, carried forward over later missing ones.
    """
    v = np.asarray(residuals, dtype=np.float64)
    observed = ~np.isnan(v)
    sse = np.cumsum(np.where(observed, v * v, 0.0))
    count = np.cumsum(observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.where(count > 0, sse / np.maximum(count, 1), np.nan))


def factor_block(frame: pd.DataFrame) -> np.ndarray:
    """Return the factor columns (no "Intercept": the seed's norms) as floats, (n, n_factors)."""
    cols = [c for c in frame.columns if c != INTERCEPT]
    return frame[cols].to_numpy(dtype=np.float64)


def _date_range(index: pd.Index) -> str:
    if len(index) == 0:
        return ""
    if isinstance(index, pd.DatetimeIndex):
        return f"{index[0]:%Y-%m-%d} → {index[-1]:%Y-%m-%d}"
    return f"{index[0]} → {index[-1]}"


def _nanmean(x: np.ndarray) -> float:
    finite = x[~np.isnan(x)]
    return float(finite.mean()) if finite.size else float("nan")


def summarize_model_diagnostics(results: Any) -> pd.DataFrame:
    """One-row summary of a run (the seed's ``summarize_model_diagnostics``).

    Parameters
    ----------
    results : KalmanResult or mapping
        Anything with the seed's result keys; all series are after burn-in, n steps.

    Returns
    -------
    pd.DataFrame, (1, 10)
        Columns :data:`MODEL_DIAGNOSTIC_COLUMNS`:

        - Date Range: "YYYY-MM-DD → YYYY-MM-DD" of the residual index.
        - # Observations: number of observed (non-NaN) residuals.
        - Final RMSE: the expanding RMSE at the last step, sqrt(SSE / n) (return units).
        - Mean RMSE: the seed's ranking statistic, the Final RMSE rounded to
          :data:`MEAN_RMSE_DECIMALS` decimals as the seed rounds it (ties keep grid order).
        - Total SSE: sum of v_t^2 (squared return units).
        - Cumulative Log-Likelihood: ``results["log_likelihood"]`` (nats, summed after burn).
        - Mean Gain Norm: mean over t of ||K_t|| (Euclidean, intercept column dropped).
        - Mean Drift Norm: mean over t >= 1 of ||beta_t - beta_{t-1}|| (intercept dropped;
          the first step after burn has no predecessor in the table and is skipped).

        At a missing y_t the gain and the drift are exactly 0 (no update); they count as 0
        in the two means, since that is the update the filter made.
    """
    v = np.asarray(results["residuals"], dtype=np.float64)
    index = results["residuals"].index
    observed = ~np.isnan(v)
    rmse = expanding_rmse(v)
    final_rmse = float(rmse[-1]) if rmse.size else float("nan")
    gain = factor_block(results["kalman_gain"])
    beta = factor_block(results["beta"])
    drift = np.diff(beta, axis=0)
    name, target = model_labels(results)
    row = {
        "Model Name": name,
        "Target": target,
        "Date Range": _date_range(index),
        "# Observations": int(observed.sum()),
        "Final RMSE": final_rmse,
        "Mean RMSE": round(final_rmse, MEAN_RMSE_DECIMALS),
        "Total SSE": float(np.sum(v[observed] ** 2)),
        "Cumulative Log-Likelihood": float(results["log_likelihood"]),
        # With no factor column (intercept-only model) the norms are NaN, not 0.
        "Mean Gain Norm": _nanmean(np.linalg.norm(gain, axis=1)) if gain.shape[1] else np.nan,
        "Mean Drift Norm": _nanmean(np.linalg.norm(drift, axis=1)) if beta.shape[1] else np.nan,
    }
    return pd.DataFrame([row], columns=list(MODEL_DIAGNOSTIC_COLUMNS))


def contributions(results: Any) -> pd.DataFrame:
    """Return contributions beta_{k,t} H_{k,t} of each factor (the intercept has none).

    Parameters
    ----------
    results : KalmanResult or mapping
        With ``"beta"`` (n, k) filtered states and ``"H"`` (n, n_factors) factor returns.

    Returns
    -------
    pd.DataFrame, (n, n_factors)
        Return units; columns are the factor names (states other than the intercept).
    """
    beta, H = results["beta"], results["H"]
    factors = [c for c in beta.columns if c != INTERCEPT]
    return beta[factors] * H[factors].to_numpy(dtype=np.float64)


def summarize_factor_dynamics(results: Any) -> pd.DataFrame:
    """One row per state (the seed's ``summarize_factor_dynamics``).

    Parameters
    ----------
    results : KalmanResult or mapping
        With the seed's keys; ``"beta"`` and ``"kalman_gain"`` are (n, k) after burn-in.

    Returns
    -------
    pd.DataFrame, (k, 13)
        Columns :data:`FACTOR_DYNAMICS_COLUMNS`, one row per state in ``beta``'s order:
        Avg/Min/Max/Final Beta; Beta Std (ddof=1); Beta Z-Score = (final - avg) / std;
        Drift Volatility = std (ddof=1) of beta_t - beta_{t-1}; Mean Gain = mean of the gain
        column (signed); Avg and Final Contribution = mean and last of beta_{k,t} H_{k,t}
        (return units, NaN for the intercept).
    """
    beta_df = results["beta"]
    states = list(beta_df.columns)
    beta = beta_df.to_numpy(dtype=np.float64)
    gain = results["kalman_gain"][states].to_numpy(dtype=np.float64)
    n, k = beta.shape
    avg = np.nanmean(beta, axis=0) if n else np.full(k, np.nan)
    # ddof=1 on fewer than two rows is undefined: NaN, like pandas, without a warning.
    std = np.nanstd(beta, axis=0, ddof=1) if n > 1 else np.full(k, np.nan)
    drift_sd = np.nanstd(np.diff(beta, axis=0), axis=0, ddof=1) if n > 2 else np.full(k, np.nan)
    final = beta[-1] if n else np.full(k, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        zscore = (final - avg) / std
    contrib = contributions(results)
    avg_c = pd.Series(np.nan, index=states, dtype=np.float64)
    final_c = avg_c.copy()
    if contrib.shape[1] and n:
        avg_c[contrib.columns] = np.nanmean(contrib.to_numpy(), axis=0)
        final_c[contrib.columns] = contrib.to_numpy()[-1]
    name, target = model_labels(results)
    return pd.DataFrame(
        {
            "Model Name": [name] * k, "Target": [target] * k, "Factor": states,
            "Avg Beta": avg, "Beta Std": std, "Final Beta": final, "Beta Z-Score": zscore,
            "Min Beta": np.nanmin(beta, axis=0) if n else np.full(k, np.nan),
            "Max Beta": np.nanmax(beta, axis=0) if n else np.full(k, np.nan),
            "Drift Volatility": drift_sd,
            "Mean Gain": np.nanmean(gain, axis=0) if n else np.full(k, np.nan),
            "Avg Contribution": avg_c.to_numpy(), "Final Contribution": final_c.to_numpy(),
        },
        columns=list(FACTOR_DYNAMICS_COLUMNS),
    )  # fmt: skip
