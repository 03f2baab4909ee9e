"""The seed's rules of thumb for Q, R and the initial state, as pure functions on arrays.

Plain arrays (time first) in and out; :mod:`tvbeta.model.setters` makes spec fields of them.
Rolling computations are vectorised over windows (``sliding_window_view``, one batched
``np.linalg.pinv``), with the seed's conventions:

- rolling OLS at step t uses rows t-window .. t-1 (no look-ahead), so the first ``window``
  steps have no value;
- rolling variances use the trailing window t-window+1 .. t, like pandas ``rolling(window)``;
- a missing value (NaN) is skipped: a window holds the last ``window`` observed rows, so it
  reaches back past a gap (pandas' rolling applied to the observed values alone; statsmodels'
  ``RollingOLS(missing="drop")`` counts rows instead and fits fewer); the seed had no missing
  data;
- values are clipped below at ``min_val`` and the leading gaps back-filled
  (:func:`clip_and_backfill`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _check_window(window: int, n: int, minimum: int, what: str) -> None:
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise TypeError(f"window must be an integer, got {window!r}")
    if window < minimum:
        raise ValueError(f"window must be at least {minimum} for {what}, got {window}")
    if window >= n:
        raise ValueError(
            f"window={window} leaves no step for {what}: the data have only {n} rows; "
            "use a shorter window or more data"
        )


def trailing_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Windows ending AT each step t = window-1 .. n-1: (n - window + 1, window, ...)."""
    return np.moveaxis(sliding_window_view(x, window, axis=0), -1, 1)


def _expand(values: np.ndarray, count: np.ndarray, window: int) -> np.ndarray:
    """Spread per-window values (windows, ...) over the rows (n, ...): NaN before ``window``.

    Row t gets ``values[count[t] - window]``, the window of the ``count[t]`` observations so far.
    """
    out = np.full((count.size, *values.shape[1:]), np.nan)
    have = count >= window
    out[have] = values[count[have] - window]
    return out


def rolling_ols(y: np.ndarray, X: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Batched OLS by pseudo-inverse on the past ``window`` observed rows of each step t.

    y (n,), X (n, k) as in `rolling_ols_betas`. Returns beta (n, k) and the in-window residuals
    (n, window), NaN where fewer than ``window`` rows before t have y and every regressor
    observed: both from one batched pinv (a caller of both pays for one).
    """
    y, X, observed = _complete(y, X)
    _check_window(window, X.shape[0], 1, "a rolling regression")
    count = np.cumsum(observed) - observed  # observed rows before t
    n_windows = count[-1] - window + 1  # the windows some step uses
    if n_windows <= 0:
        return np.full(X.shape, np.nan), np.full((X.shape[0], window), np.nan)
    Xw = trailing_windows(X[observed], window)[:n_windows]  # (n_windows, window, k)
    yw = trailing_windows(y[observed], window)[:n_windows]
    beta = (np.linalg.pinv(Xw) @ yw[..., None])[..., 0]
    resid = yw - (Xw @ beta[..., None])[..., 0]
    return _expand(beta, count, window), _expand(resid, count, window)


def rolling_ols_betas(y: np.ndarray, X: np.ndarray, window: int) -> np.ndarray:
    """Compute OLS betas on the ``window`` observed rows before each step t (t-window .. t-1).

    Parameters
    ----------
    y : (n,) target returns; NaN where missing.
    X : (n, k) regressors (include a column of ones for an intercept).
    window : int, number of past observed rows per regression (>= 1, < n).

    Returns
    -------
    (n, k) betas ``pinv(X[rows]) @ y[rows]`` over the last ``window`` observed rows before t;
    NaN until ``window`` rows were observed.
    """
    return rolling_ols(y, X, window)[0]


def rolling_ols_residual_var(y: np.ndarray, X: np.ndarray, window: int) -> np.ndarray:
    """Compute the population variance (ddof=0) of the residuals of `rolling_ols_betas`.

    Shapes as there; returns (n,), NaN until ``window`` rows were observed (units of y^2).
    """
    return rolling_ols(y, X, window)[1].var(axis=1)


def rolling_var(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Compute the rolling variance of the last ``window`` observed values up to t.

    pandas ``rolling(window).var()`` on the observed values of rows t-window+1 .. t.
    x : (n,) or (n, k), each column on its own observed rows; returns the same shape, NaN
    until ``window`` values were observed. A missing row takes the variance of the values
    before it. Computed in two passes per window (mean, then squared deviations).
    """
    x = np.asarray(x, dtype=np.float64)
    _check_window(window, x.shape[0] + 1, ddof + 1, "a rolling variance")
    if x.ndim == 2:
        out = np.empty_like(x)
        for j in range(x.shape[1]):
            out[:, j] = rolling_var(x[:, j], window, ddof)
        return out
    observed = ~np.isnan(x)
    values = x[observed]
    if values.size < window:
        return np.full(x.shape, np.nan)
    var = trailing_windows(values, window).var(axis=1, ddof=ddof)
    return _expand(var, np.cumsum(observed), window)


def innovation_var_path(v: np.ndarray, window: int, min_val: float, *, first: int, start: int,
                        alignment: Literal["seed", "causal"] = "seed") -> np.ndarray:  # fmt: skip
    """Compute the rolling variance (ddof=1) of the innovations after burn, per row: (n,).

    v : (n,) innovations v_t (NaN where y_t is missing or before the model starts); first :
    the first row of the model (the first observed target); start : the first row after the
    burn (``start >= first``). Clipped below at ``min_val`` and back-filled.

    ``alignment="seed"`` is the seed's rule: the post-burn series v[start:] is indexed from
    the model's first row, so row ``first + j`` gets the variance at position j of that
    series (computed up to row ``start + j``) and its last value is held over the final
    ``start - first`` rows. ``"causal"`` gives row t the variance of the innovations of rows
    t-window .. t-1 after burn: no y_s with s >= t enters the value used at t. Rows before
    ``first`` (not part of the model) get the first value.
    """
    v = np.asarray(v, dtype=np.float64)
    if alignment == "seed":
        var = clip_and_backfill(rolling_var(v[start:], window, ddof=1), min_val)
        rows = np.clip(np.arange(v.shape[0]) - first, 0, var.shape[0] - 1)
        return var[rows]
    if alignment == "causal":
        after = np.where(np.arange(v.shape[0]) >= start, v, np.nan)
        lagged = np.concatenate([[np.nan], rolling_var(after, window, ddof=1)[:-1]])
        return clip_and_backfill(lagged, min_val)
    raise ValueError(f"alignment must be 'seed' or 'causal', got {alignment!r}")


def rolling_factor_vol(H: np.ndarray, window: int) -> np.ndarray:
    """Mean across factors of each factor's rolling standard deviation (ddof=1).

    H : (n, n_factors) factor returns; returns (n,), NaN for t < window-1. Each factor's
    window holds its last ``window`` observed values; a factor with fewer so far is left out
    of that step's mean (pandas ``mean(axis=1)``).
    """
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2:
        raise ValueError(f"H must be (n, n_factors), got shape {H.shape}")
    sd = np.sqrt(rolling_var(H, window, ddof=1))
    count = np.sum(~np.isnan(sd), axis=1)
    return np.divide(np.nansum(sd, axis=1), count, out=np.full(H.shape[0], np.nan), where=count > 0)


def clip_and_backfill(x: np.ndarray, min_val: float) -> np.ndarray:
    """Clip below at ``min_val`` (NaN kept), then fill gaps from the next valid row.

    x : (n,) or (n, k), filled column by column along the time axis. Leading gaps (the
    warm-up of a rolling window) are back-filled as in the seed; a gap with no later value
    (only possible with missing data at the end) takes the last valid value.

    Raises
    ------
    ValueError
        A column with no valid value at all.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.where(np.isnan(x), np.nan, np.maximum(x, min_val))
    valid = ~np.isnan(out)
    if not valid.any(axis=0).all():
        raise ValueError("no valid value to fill from: the window is too long for the data")
    n = out.shape[0]
    steps = np.arange(n).reshape((n,) + (1,) * (out.ndim - 1))
    # index of the next valid row (n if none): a reversed running minimum
    nxt = np.minimum.accumulate(np.where(valid, steps, n)[::-1], axis=0)[::-1]
    # index of the previous valid row, for trailing gaps
    prv = np.maximum.accumulate(np.where(valid, steps, -1), axis=0)
    src = np.where(nxt < n, nxt, prv)
    return np.take_along_axis(out, np.broadcast_to(src, out.shape), axis=0)


def _complete(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return y (n,), X (n, k) as float64 and the rows where y and every regressor are observed."""
    y, X = np.asarray(y, dtype=np.float64), np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"need y (n,) and X (n, k), got {y.shape} and {X.shape}")
    return y, X, ~np.isnan(y) & ~np.isnan(X).any(axis=1)


def _complete_rows(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows where y and every regressor are observed (the seed had no missing data)."""
    y, X, keep = _complete(y, X)
    if keep.sum() <= X.shape[1]:
        raise ValueError(
            f"only {int(keep.sum())} complete rows for {X.shape[1]} regressors: need more data"
        )
    return y[keep], X[keep]


def ols_beta(y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Full-sample OLS by pseudo-inverse, ``pinv(X) @ y`` over the complete rows: (k,)."""
    y, X = _complete_rows(y, X)
    return np.linalg.pinv(X) @ y


def ols_residual_var(y: np.ndarray, X: np.ndarray) -> float:
    """Compute the population variance (ddof=0) of the full-sample OLS residuals (y^2 units)."""
    y, X = _complete_rows(y, X)
    return float(np.var(y - X @ (np.linalg.pinv(X) @ y)))


def factor_variances(H: np.ndarray) -> np.ndarray:
    """Sample variance (ddof=1) of each factor column, NaN skipped: (n_factors,)."""
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2:
        raise ValueError(f"H must be (n, n_factors), got shape {H.shape}")
    if np.any(np.sum(~np.isnan(H), axis=0) < 2):
        raise ValueError("every factor needs at least two observed values for a variance")
    return np.nanvar(H, axis=0, ddof=1)
