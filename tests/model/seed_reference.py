"""Plain transcriptions of the seed's rules (seed_api.md and the notebook's equations).

Deliberately naive: one Python loop per rule, np.linalg.pinv / inv per step, pandas for the
rolling statistics, matrices in the notebook's shapes (column vectors, 1 x K rows). They share
no code with tvbeta, so they are independent oracles for its vectorised implementation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def with_ones(H: np.ndarray, intercept: bool) -> np.ndarray:
    """The seed's design: a column of ones first when there is an intercept."""
    return np.column_stack([np.ones(len(H)), H]) if intercept else H


def seed_filter(y, H_obs, beta0, P0, T, Q_at, R_at) -> dict[str, np.ndarray]:
    """The notebook's predict/update loop, verbatim in matrix form.

    y (n,), H_obs (n, K) observation rows; Q_at(t) -> (K, K), R_at(t) -> float.
    """
    n, K = H_obs.shape
    beta = np.asarray(beta0, dtype=float).reshape(K, 1)
    P = np.asarray(P0, dtype=float)
    out = {
        "beta": np.zeros((n, K)), "beta_cov": np.zeros((n, K, K)), "y_pred": np.zeros(n),
        "residuals": np.zeros(n), "kalman_gain": np.zeros((n, K)), "loglik_t": np.zeros(n),
        "beta_pred": np.zeros((n, K)),
    }  # fmt: skip
    for t in range(n):
        h = H_obs[t].reshape(1, K)
        beta_pred = T @ beta
        P_pred = T @ P @ T.T + Q_at(t)
        y_hat = h @ beta_pred
        innovation = y[t] - y_hat
        S = h @ P_pred @ h.T + np.array([[R_at(t)]])
        gain = P_pred @ h.T @ np.linalg.inv(S)
        beta = beta_pred + gain @ innovation
        P = (np.eye(K) - gain @ h) @ P_pred
        s, v = S[0, 0], innovation[0, 0]
        out["loglik_t"][t] = -0.5 * (np.log(s) + v * v / s + np.log(2 * np.pi))
        out["beta"][t] = beta.ravel()
        out["beta_cov"][t] = P
        out["y_pred"][t] = y_hat[0, 0]
        out["residuals"][t] = v
        out["kalman_gain"][t] = gain.ravel()
        out["beta_pred"][t] = beta_pred.ravel()
    return out


def rolling_ols_residual_R(y, X, window, min_val) -> np.ndarray:
    """R_t = max(np.var(residuals of pinv-OLS on rows t-window..t-1), min_val), back-filled."""
    values = []
    for t in range(len(y)):
        if t < window:
            values.append(np.nan)
            continue
        Xw, yw = X[t - window : t], y[t - window : t]
        beta = np.linalg.pinv(Xw) @ yw
        values.append(max(np.var(yw - Xw @ beta), min_val))
    return pd.Series(values).bfill().to_numpy()


def rolling_betas(y, X, window) -> np.ndarray:
    """beta_t = pinv(X[t-window:t]) @ y[t-window:t] for t >= window, NaN before."""
    rows = []
    for t in range(len(y)):
        if t < window:
            rows.append(np.full(X.shape[1], np.nan))
        else:
            rows.append(np.linalg.pinv(X[t - window : t]) @ y[t - window : t])
    return np.array(rows)


def rolling_beta_var_Q(y, X, window, min_val, scale) -> np.ndarray:
    """Q_t = scale * diag(pandas rolling var of the rolling betas, clipped, back-filled)."""
    var = pd.DataFrame(rolling_betas(y, X, window)).rolling(window).var()
    var = var.clip(lower=min_val).bfill()
    return np.array([np.diag(row) * scale for row in var.to_numpy()])


def rolling_factor_vol_R(H, window, min_val) -> np.ndarray:
    """R_t = (mean over factors of the pandas rolling std)^2, clipped, back-filled."""
    avg_vol = pd.DataFrame(H).rolling(window).std().mean(axis=1)
    return (avg_vol**2).clip(lower=min_val).bfill().to_numpy()


def residual_vol_Q(residuals, window, scale, min_val, K) -> np.ndarray:
    """Q_t = scale * v_t * I_K, v_t the pandas rolling var of residuals, clipped, back-filled."""
    var = pd.Series(residuals).rolling(window).var().clip(lower=min_val).bfill()
    return np.array([np.eye(K) * v * scale for v in var])
