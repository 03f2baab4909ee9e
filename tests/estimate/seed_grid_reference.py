"""A stand-in for the seed's grid search: its equations and setters, transcribed naively.

Written from ``../shared/seed/seed_api.md`` and the notebook's equations, sharing no code with
tvbeta: a mutable spec holding callables (Q_at(t), R_at(t)) as the seed's did, setters that
change it and return it, the notebook's per-step predict/update with a matrix inverse
(``tests.model.seed_reference.seed_filter``), rolling rules by pinv loops and pandas, scalar
MLE by scipy L-BFGS-B with finite-difference gradients on the full filter, and a grid that
rebuilds every combination from scratch. It is the test oracle for
:func:`tvbeta.estimate.grid.run_kalman_grid_search` and the baseline of ``bench/grid.py``.

As seed_api.md describes the seed (corrected): the grid's setters run with their own defaults,
so the MLE and residual-variance setters get burn = 0 and the grid's burn applies only to the
scored run; the residual-variance rule with a burn takes the innovations after burn and indexes
that series from row 0 (Q at row t from position t, i.e. row t + burn), holding its last value
over the final burn rows; Mean RMSE is the root of the mean squared post-burn residual, rounded
to 6 decimals, and the grid is sorted by it.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from tests.model import seed_reference as ref

TARGET = "fund"
FACTORS = ["mkt", "credit"]


class SeedSpec:
    """The seed's mutable spec: K, intercept, beta0, P0, and Q, R as functions of t."""

    def __init__(self, K: int) -> None:
        self.K = K
        self.has_intercept = False
        self.beta0 = np.zeros(K)
        self.P0 = 100.0 * np.eye(K)
        self.Q_at = lambda t, k=K: 1e-4 * np.eye(k)
        self.R_at = lambda t: 1e-2
        self.q_mode = self.r_mode = self.init_mode = None
        self.q_scalar = self.r_scalar = None
        self.objectives = {}  # "q" / "r": the negative log-likelihood each MLE setter minimised

    def set_intercept(self) -> SeedSpec:
        K = self.K + 1
        P0 = np.zeros((K, K))
        P0[1:, 1:] = self.P0
        P0[0, 0] = 1e6
        self.K, self.has_intercept, self.P0 = K, True, P0
        self.beta0 = np.r_[0.0, self.beta0]
        self.Q_at = lambda t, k=K: 1e-4 * np.eye(k)
        return self

    def design(self, df, target, factors):
        """y (n,) and the observation rows X (n, K): [1, H_t] with an intercept, else H_t."""
        X = ref.with_ones(df[factors].to_numpy(float), self.has_intercept)
        return df[target].to_numpy(float), X

    def set_initial_state_from_ols(self, H, y) -> SeedSpec:
        X = ref.with_ones(np.asarray(H, float), self.has_intercept)
        self.beta0 = np.linalg.pinv(X) @ np.asarray(y, float)
        self.init_mode = "ols"
        return self

    def set_R_from_ols(self, H, y) -> SeedSpec:
        X = ref.with_ones(np.asarray(H, float), self.has_intercept)
        y = np.asarray(y, float)
        r = float(np.var(y - X @ (np.linalg.pinv(X) @ y)))
        self.R_at, self.r_mode, self.r_scalar = (lambda t: r), "ols", None
        return self

    def set_R_from_rolling_factor_vols(self, H, window=20, min_val=1e-6) -> SeedSpec:
        R = ref.rolling_factor_vol_R(np.asarray(H, float), window, min_val)
        self.R_at, self.r_mode = (lambda t: R[t]), f"factor_vol_window_{window}"
        self.r_scalar = None
        return self

    def set_Q_from_rolling_beta_var(self, df, target, factors, window=20, min_val=1e-8, scale=1.0):
        y, X = self.design(df, target, factors)
        Q = ref.rolling_beta_var_Q(y, X, window, min_val, scale)
        self.Q_at, self.q_mode = (lambda t: Q[t]), f"rolling_beta_var_window_{window}"
        self.q_scalar = None
        return self

    def set_Q_from_rolling_residual_vol(
        self, df, target, factors, window=20, scale=1.0, burn=0, min_val=1e-8
    ) -> SeedSpec:
        resid = seed_run(self, df, target, factors, burn)["residuals"]  # the n - burn after burn
        Q = ref.residual_vol_Q(resid, window, scale, min_val, self.K)
        self.Q_at = lambda t: Q[min(t, len(Q) - 1)]  # indexed from row 0, last value held
        self.q_mode, self.q_scalar = f"rolling_resid_var_from_filter_window_{window}", None
        return self

    def set_Q_from_mle(self, df, target, factors, burn=0, value=None) -> SeedSpec:
        """Q = q I at the seed's search optimum; ``value`` fixes q instead (no search)."""
        before = copy.copy(self)  # the objective holds every other setting as it is now

        def neg_loglik(q):
            trial = copy.copy(before)
            trial.Q_at = lambda t, k=self.K: q * np.eye(k)
            return -seed_run(trial, df, target, factors, burn)["log_likelihood"]

        q = seed_scalar_mle(neg_loglik, (1e-8, 10.0)) if value is None else float(value)
        self.Q_at = lambda t, k=self.K: q * np.eye(k)
        self.q_mode, self.q_scalar = "mle", q
        self.objectives = {**self.objectives, "q": neg_loglik}
        return self

    def set_R_from_mle(self, df, target, factors, burn=0, value=None) -> SeedSpec:
        """R = r at the seed's search optimum; ``value`` fixes r instead (no search)."""
        before = copy.copy(self)

        def neg_loglik(r):
            trial = copy.copy(before)
            trial.R_at = lambda t: r
            return -seed_run(trial, df, target, factors, burn)["log_likelihood"]

        r = seed_scalar_mle(neg_loglik, (1e-6, 100.0)) if value is None else float(value)
        self.R_at, self.r_mode, self.r_scalar = (lambda t: r), "mle", r
        self.objectives = {**self.objectives, "r": neg_loglik}
        return self


def seed_scalar_mle(neg_loglik, bounds) -> float:
    """The seed's search: L-BFGS-B on log s from 1e-2, scipy's defaults, numerical gradient."""
    lo, hi = bounds
    res = minimize(
        lambda x: neg_loglik(float(np.exp(x[0]))),
        x0=np.log(1e-2),
        bounds=[(np.log(lo), np.log(hi))],
        method="L-BFGS-B",
    )
    return float(np.exp(res.x[0]))


def seed_run(spec: SeedSpec, df, target, factors, burn=0) -> dict:
    """The seed engine: the notebook's filter over every row, outputs after ``burn``."""
    y, X = spec.design(df, target, factors)
    out = ref.seed_filter(y, X, spec.beta0, spec.P0, np.eye(spec.K), spec.Q_at, spec.R_at)
    states = (["Intercept"] if spec.has_intercept else []) + list(factors)
    return {
        "index": df.index[burn:],
        "states": states,
        "beta": out["beta"][burn:],
        "residuals": out["residuals"][burn:],
        "kalman_gain": out["kalman_gain"][burn:],
        "y_pred": out["y_pred"][burn:],
        "loglik_t": out["loglik_t"][burn:],
        "log_likelihood": float(np.sum(out["loglik_t"][burn:])),
    }


def seed_summary(run: dict, name: str, target: str) -> dict:
    """The seed's diagnostics row, computed the pandas way."""
    resid = pd.Series(run["residuals"], index=run["index"])
    rmse = np.sqrt((resid**2).expanding().mean())
    beta = pd.DataFrame(run["beta"], columns=run["states"]).drop(
        columns="Intercept", errors="ignore"
    )
    gain = pd.DataFrame(run["kalman_gain"], columns=run["states"])
    gain = gain.drop(columns="Intercept", errors="ignore")
    idx = run["index"]
    return {
        "Model Name": name,
        "Target": target,
        "Date Range": f"{idx[0]:%Y-%m-%d} → {idx[-1]:%Y-%m-%d}",
        "# Observations": len(resid),
        "Final RMSE": rmse.iloc[-1],
        "Mean RMSE": round(float(np.sqrt((resid**2).mean())), 6),
        "Total SSE": (resid**2).sum(),
        "Cumulative Log-Likelihood": run["log_likelihood"],
        "Mean Gain Norm": np.linalg.norm(gain.to_numpy(), axis=1).mean(),
        "Mean Drift Norm": np.linalg.norm(beta.diff().dropna().to_numpy(), axis=1).mean(),
    }


def seed_spec(df, target, factors, intercept, q_name, r_name, fixed=None) -> SeedSpec:
    """One combination of the seed's default grid, built from scratch on ``df``.

    The setters run with their own defaults (burn = 0); ``burn`` is the scored run's only.
    ``fixed`` ({"q": q, "r": r}) sets the MLE setters' results instead of searching.
    """
    fixed = fixed or {}
    H, y = df[factors], df[target]
    spec = SeedSpec(len(factors))
    if intercept:
        spec.set_intercept()
    spec.set_initial_state_from_ols(H, y)
    if q_name == "const":
        spec.set_Q_from_mle(df, target, factors, value=fixed.get("q"))
    elif q_name == "resid_var":
        spec.set_Q_from_rolling_residual_vol(df, target, factors)
    else:
        spec.set_Q_from_rolling_beta_var(df, target, factors)
    if r_name == "ols":
        spec.set_R_from_ols(H, y)
    elif r_name == "rolling_vol":
        spec.set_R_from_rolling_factor_vols(H)
    else:
        spec.set_R_from_mle(df, target, factors, value=fixed.get("r"))
    return spec


def seed_grid(df, target, factors, burn=0, scalars=None) -> tuple[pd.DataFrame, dict]:
    """The seed's default 18-combination grid, each combination rebuilt from scratch.

    ``scalars`` (model name -> {"q": q, "r": r}) fixes the MLE setters' results instead of
    searching (to check everything else to rounding). Returns the table, sorted by Mean RMSE
    (the seed's columns plus the modes), and the specs by model name.
    """
    rows, specs = [], {}
    combos = itertools.product([True, False], ["const", "resid_var", "beta_var"],
                               ["ols", "rolling_vol", "mle"])  # fmt: skip
    for intercept, q_name, r_name in combos:
        name = f"Intercept={'Yes' if intercept else 'No'}, Q={q_name}, R={r_name}, Init=ols"
        fixed = (scalars or {}).get(name)
        spec = seed_spec(df, target, factors, intercept, q_name, r_name, fixed)
        row = seed_summary(seed_run(spec, df, target, factors, burn), name, target)
        row.update({"Q Mode": spec.q_mode, "R Mode": spec.r_mode, "Init Mode": spec.init_mode,
                    "Intercept": intercept})  # fmt: skip
        rows.append(row)
        specs[name] = spec
    table = pd.DataFrame(rows).sort_values("Mean RMSE", kind="stable").reset_index(drop=True)
    return table, specs


def simulate_funds(seed: int, n: int = 160, funds=("fund", "fund2")) -> pd.DataFrame:
    """Weekly-like returns of several funds on the factors "mkt" and "credit".

    Each fund: y_t = alpha + H_t beta_t + noise, with betas drifting as random walks.
    """
    rng = np.random.default_rng(seed)
    H = rng.normal(0.0, 0.02, size=(n, len(FACTORS)))
    frame = pd.DataFrame(H, columns=FACTORS)
    for j, fund in enumerate(funds):
        beta = np.array([0.9 - 0.3 * j, 0.3 + 0.2 * j])
        beta = beta + np.cumsum(rng.normal(0.0, 0.02, size=(n, 2)), axis=0)
        frame[fund] = 0.001 + np.sum(H * beta, axis=1) + rng.normal(0.0, 0.004, size=n)
    frame.index = pd.date_range("2018-01-05", periods=n, freq="W-FRI", name="Date")
    return frame
