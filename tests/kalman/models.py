"""Random time-varying state-space models for property tests (cuthbertlib-style generator)."""

from __future__ import annotations

import numpy as np

from tvbeta.kalman import StateSpace


def random_spd(rng: np.random.Generator, k: int, scale: float) -> np.ndarray:
    W = rng.normal(size=(k, k))
    return scale * (W @ W.T / k + 0.2 * np.eye(k))


def random_model(
    seed: int,
    k: int,
    n: int,
    *,
    time_varying: bool = True,
    n_missing: int = 0,
    intercept: bool = False,
) -> StateSpace:
    """A model with per-step (or constant) T, Q, R, data drawn from it, and NaN targets.

    Scales mimic weekly factor returns: z ~ N(0, 1) (scaled design keeps conditioning honest),
    betas drifting slowly; T near the identity so the states neither explode nor vanish.
    """
    rng = np.random.default_rng(seed)
    m = n if time_varying else 1
    Z = rng.normal(size=(n, k))
    if intercept:
        Z[:, 0] = 1.0
    T = np.stack([np.eye(k) + 0.1 * rng.normal(size=(k, k)) / np.sqrt(k) for _ in range(m)])
    # spectral norm <= 1: products over thousands of steps stay bounded (no explosive model)
    T /= np.maximum(1.0, np.linalg.norm(T, ord=2, axis=(1, 2)))[:, None, None]
    Q = np.stack([random_spd(rng, k, 0.05) for _ in range(m)])
    R = rng.uniform(0.5, 1.5, size=m)
    a0 = rng.normal(size=k)
    P0 = random_spd(rng, k, 1.0)
    alpha = a0 + np.linalg.cholesky(P0) @ rng.normal(size=k)
    y = np.empty(n)
    for t in range(n):
        i = t if time_varying else 0
        alpha = T[i] @ alpha + np.linalg.cholesky(Q[i]) @ rng.normal(size=k)
        y[t] = Z[t] @ alpha + np.sqrt(R[i]) * rng.normal()
    if n_missing:
        y[rng.choice(n, size=n_missing, replace=False)] = np.nan
    return StateSpace(y, Z, T, Q, R, a0, P0)


def assert_close(actual, expected, rtol: float, what: str = "") -> None:
    """Relative agreement, with the absolute floor scaled to the size of `expected`."""
    expected = np.asarray(expected, dtype=float)
    scale = np.nanmax(np.abs(expected)) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def mean_reverting_transition(phi: np.ndarray) -> np.ndarray:
    """T(phi) = [[diag(phi), I - diag(phi)], [0, I]] (2k, 2k): beta_t - mu = Phi (beta_{t-1} - mu)
    with the long-run means mu as k static states after the k betas."""
    k = len(phi)
    T = np.eye(2 * k)
    T[:k, :k] = np.diag(phi)
    T[:k, k:] = np.eye(k) - np.diag(phi)
    return T


def mean_reverting_model(seed: int, k: int, n: int = 120) -> StateSpace:
    """A mean-reverting-beta regression in the augmented state [beta; mu], with data drawn from
    it: constant T(phi) (phi in 0.8..0.99), Q = blockdiag(Q_beta, 0) (mu does not move),
    Z = [z_t, 0], a proper prior on both halves, and three interior NaN targets."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0.8, 0.99, k)
    T = mean_reverting_transition(phi)
    Q = np.zeros((2 * k, 2 * k))
    Q[:k, :k] = random_spd(rng, k, 0.05)
    Z = np.zeros((n, 2 * k))
    Z[:, :k] = rng.normal(size=(n, k))
    R = np.array([rng.uniform(0.5, 1.5)])
    a0 = rng.normal(size=2 * k)
    P0 = random_spd(rng, 2 * k, 1.0)
    alpha = a0 + np.linalg.cholesky(P0) @ rng.normal(size=2 * k)
    y = np.empty(n)
    for t in range(n):
        alpha = T @ alpha
        alpha[:k] += np.linalg.cholesky(Q[:k, :k]) @ rng.normal(size=k)
        y[t] = Z[t] @ alpha + np.sqrt(R[0]) * rng.normal()
    y[[5, n // 3, n // 2]] = np.nan
    return StateSpace(y, Z, T[None], Q[None], R, a0, P0)
