"""Mean-reverting betas as a linear Gaussian state space model in the augmented state [beta; mu].

    beta_t - mu = Phi (beta_{t-1} - mu) + eta_t,  Phi = diag(phi),  phi in (0, 1],  eta_t ~ N(0, Q)
    y_t = z_t' beta_t + eps_t

The long-run means mu are k static states after the k betas, so the Kalman filter integrates
them out exactly under their Gaussian prior (the "regression effects in the state vector" of
Durbin & Koopman 2012, Time Series Analysis by State Space Methods, 2nd ed., sec. 6.2.2):

    alpha_t = [beta_t; mu],  T(phi) = [[Phi, I - Phi], [0, I]],  Q_alpha = [[Q, 0], [0, 0]],
    z_alpha_t = [z_t; 0],  alpha_{-1} ~ N([a0; a0], [[P0, 0], [0, P0]])

i.e. beta_{-1} and mu independent, each with the random walk's initial-state prior N(a0, P0).
phi = 1 is the random walk exactly (then mu never enters y), phi < 1 pulls each beta back
towards its mu at the rate -log(phi) per period: the half-life of a deviation is
log(2) / -log(phi) periods. Everything here is numpy over arrays, for the filter and smoother
of posterior draws and of the MLE; the likelihood that NUTS and the MLE climb is the same one,
computed with one k-state filter and the means in closed form instead (`tvbeta.kalman.collapsed`).
"""

from __future__ import annotations

import numpy as np

from tvbeta.kalman.smoother import SmootherOutput

__all__ = ["augmented_design", "augmented_initial", "augmented_q", "beta_marginal",
           "half_life_years", "transition"]  # fmt: skip


def transition(phi) -> np.ndarray:
    """Return T(phi) = [[diag(phi), I - diag(phi)], [0, I]], (..., 2k, 2k) for phi (..., k)."""
    phi = np.asarray(phi, dtype=np.float64)
    k = phi.shape[-1]
    T = np.zeros((*phi.shape[:-1], 2 * k, 2 * k))
    i = np.arange(k)
    T[..., i, i] = phi
    T[..., i, k + i] = 1.0 - phi
    T[..., k + i, k + i] = 1.0
    return T


def augmented_q(Q) -> np.ndarray:
    """Return [[Q, 0], [0, 0]] (..., 2k, 2k) for Q (..., k, k): the long-run means do not move."""
    Q = np.asarray(Q, dtype=np.float64)
    k = Q.shape[-1]
    out = np.zeros((*Q.shape[:-2], 2 * k, 2 * k))
    out[..., :k, :k] = Q
    return out


def augmented_design(Z) -> np.ndarray:
    """Return [Z, 0] (n, 2k) for the design Z (n, k): y loads on beta_t, not on mu directly."""
    Z = np.asarray(Z, dtype=np.float64)
    return np.ascontiguousarray(np.concatenate([Z, np.zeros_like(Z)], axis=-1))


def augmented_initial(a0, P0) -> tuple[np.ndarray, np.ndarray]:
    """Return ([a0; a0] (2k,), [[P0, 0], [0, P0]] (2k, 2k)): beta_{-1}, mu independent N(a0, P0)."""
    a0, P0 = np.asarray(a0, dtype=np.float64), np.asarray(P0, dtype=np.float64)
    k = a0.shape[0]
    P = np.zeros((2 * k, 2 * k))
    P[:k, :k] = P[k:, k:] = P0
    return np.concatenate([a0, a0]), P


def half_life_years(phi, periods_per_year: float) -> np.ndarray:
    """Return the half-life of a deviation from mu in years, log 2 / (-log phi * ppy); inf at 1."""
    phi = np.asarray(phi, dtype=np.float64)
    with np.errstate(divide="ignore"):  # 0.0 - log(phi): +0.0 at phi = 1 (-log gave -inf)
        return np.log(2.0) / ((0.0 - np.log(phi)) * periods_per_year)


def beta_marginal(out: SmootherOutput, k: int) -> SmootherOutput:
    """Return the augmented filter's and smoother's output for the k betas alone.

    The first k states of [beta; mu] are beta_t itself (deviation plus mean), so their
    moments are the leading blocks: a (n, k), P (n, k, k), gains K (n, k); v, F and the
    log-likelihood terms are the model's. As the Bayes fit's beta paths read them
    (`tvbeta.estimate.bayes.paths`).
    """
    f = out.filtered
    states = {name: getattr(f, name)[:, :k] for name in ("a_pred", "a_filt", "K")}
    covs = {name: getattr(f, name)[:, :k, :k] for name in ("P_pred", "P_filt")}
    blocks = {name: np.ascontiguousarray(x) for name, x in {**states, **covs}.items()}
    return SmootherOutput(
        f._replace(**blocks),
        np.ascontiguousarray(out.a_smooth[:, :k]),
        np.ascontiguousarray(out.P_smooth[:, :k, :k]),
    )
