"""Posterior beta paths: filtered (real-time) and smoothed, integrated over the posterior of Q, R.

For each of ``n_paths`` posterior draws (Q_d, R_d), chosen at random with a seed:

* filtered: the filter gives beta_t | y_{<=t}, Q_d, R_d ~ N(a_{t|t}, P_{t|t}); one draw per
  (time, state) from that marginal, so the pooled draws follow the posterior real-time
  distribution of each beta_t (what an investor could have known at t);
* smoothed: one whole path from p(beta_0..beta_{n-1} | y, Q_d, R_d) by the simulation smoother
  (Durbin & Koopman 2002), so the pooled paths follow p(beta | y).

Summaries per (time, state): the mean and sd, Rao-Blackwellised (mean = avg_d a_d, sd^2 =
avg_d (P_d + a_d^2) - mean^2, a_d, P_d the filtered or smoothed moments), the 5%, 50% and 95%
quantiles of the pooled draws, and P(beta_t > 0) = avg_d Phi(a_d / sqrt(P_d)) (for the
intercept: the probability that alpha_t > 0, in real time and in hindsight), over rows
first_row..n-1 (`BayesSpec.time`, missing targets included: their beta is predicted, not
updated).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from tvbeta.constants import DIMS, STATE, TIME
from tvbeta.kalman import simulation_smoother
from tvbeta.kalman.smoother import smooth_state_space

__all__ = ["QUANTILES", "beta_path_summary", "p_positive_frame"]

QUANTILES = (0.05, 0.5, 0.95)
KINDS = ("filtered", "smoothed")


def quantile_label(q: float) -> str:
    """Variable suffix of quantile q: "q05" for 0.05 (whole percent; a finer q is rounded)."""
    return f"q{round(100 * q):02d}"


def _p_positive(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """P(X > 0) for X ~ N(mean, var), elementwise; a zero variance gives 1, 1/2 or 0."""
    sd = np.sqrt(np.clip(var, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = special.ndtr(mean / sd)
    return np.where(sd > 0, p, 0.5 * (1.0 + np.sign(mean)))


def p_positive_frame(paths: xr.Dataset, state: str) -> pd.DataFrame:
    """Return P(beta_t > 0) of one state: columns ``filtered`` and ``smoothed``, index time.

    paths : a `beta_path_summary` Dataset.

    Raises
    ------
    ValueError
        The Dataset has no probabilities (a fit with ``n_paths=0``, or saved by an older
        tvbeta).
    """
    if "filtered_p_positive" not in paths:
        raise ValueError("these beta paths have no probabilities (fitted with n_paths=0, or "
                         "saved by an older tvbeta): refit with n_paths > 0")
    return pd.DataFrame({kind: paths[f"{kind}_p_positive"].sel({STATE: state}).to_series()
                         for kind in KINDS})  # fmt: skip


def beta_path_summary(
    spec, draws, *, n_paths: int, seed: int, quantiles: Sequence[float] = QUANTILES,
) -> xr.Dataset:  # fmt: skip
    """Summaries of the filtered and smoothed beta paths over posterior draws.

    spec : `BayesSpec`; draws : its `SystemDraws` (D draws, all chains pooled, e.g.
    `BayesFit.system_draws`; the betas are the first k of the filter's states);
    n_paths : number of draws used (at most D, without replacement); quantiles : those stored
    (the draws do not depend on them). Returns a Dataset of ``filtered_mean``, ``filtered_sd``,
    ``filtered_q05``, ``filtered_q50``, ``filtered_q95`` (by default), ``filtered_p_positive``
    and the same for
    ``smoothed``, each (time, state).
    """
    rng = np.random.default_rng(seed)
    D = draws.Q.shape[0]
    chosen = np.sort(rng.choice(D, size=min(n_paths, D), replace=False))
    n, k, b = spec.n, spec.k, spec.first_row
    paths = {kind: np.empty((len(chosen), n - b, k)) for kind in KINDS}
    means = {kind: np.zeros((n - b, k)) for kind in KINDS}
    second = {kind: np.zeros((n - b, k)) for kind in KINDS}
    positive = {kind: np.zeros((n - b, k)) for kind in KINDS}
    for i, d in enumerate(chosen):
        m = spec.state_space(draws, d)  # validated here: the smoother need not check it again
        sm = smooth_state_space(m)
        f = sm.filtered
        sd = np.sqrt(np.clip(np.diagonal(f.P_filt, axis1=1, axis2=2)[:, :k], 0.0, None))
        paths["filtered"][i] = (f.a_filt[:, :k] + sd * rng.standard_normal((n, k)))[b:]
        for kind, a, P in (("filtered", f.a_filt, f.P_filt), ("smoothed", sm.a_smooth,
                                                                sm.P_smooth)):  # fmt: skip
            a, var = a[b:, :k], np.diagonal(P, axis1=1, axis2=2)[b:, :k]
            means[kind] += a
            second[kind] += var + a**2
            positive[kind] += _p_positive(a, var)
        path_seed = int(rng.integers(2**63 - 1))
        paths["smoothed"][i] = simulation_smoother(*m, 1, path_seed)[0, b:, :k]
    coords = {TIME: spec.time, STATE: list(spec.state_names)}
    data = {}
    for kind in KINDS:
        mean = means[kind] / len(chosen)
        var = np.clip(second[kind] / len(chosen) - mean**2, 0.0, None)
        data[f"{kind}_mean"] = (DIMS["beta_path"], mean)
        data[f"{kind}_sd"] = (DIMS["beta_path"], np.sqrt(var))
        data[f"{kind}_p_positive"] = (DIMS["beta_path"], positive[kind] / len(chosen))
        qs = np.quantile(paths[kind], quantiles, axis=0)
        for q, values in zip(quantiles, qs, strict=True):
            data[f"{kind}_{quantile_label(q)}"] = (DIMS["beta_path"], values)
    attrs = {"n_paths": len(chosen), "seed": int(seed), "quantiles": [float(q) for q in quantiles]}
    return xr.Dataset(data, coords=coords, attrs=attrs)
