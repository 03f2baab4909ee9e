"""Simulate a fund with known time-varying betas, to test estimators against the truth.

The model (Durbin & Koopman 2012, section 3.1, with the user's names)::

    z_t    = [1, f_t] (intercept) or f_t,      f_t ~ N(0, factor_cov) iid, (n_factors,)
    beta_t = T beta_{t-1} + eta_t,             eta_t ~ N(0, Q), (k,)
    y_t    = z_t' beta_t + eps_t,              eps_t ~ N(0, R)

for t = 0 .. n_time-1, starting from ``beta_{-1} = beta0`` exactly (a known, not random, start),
so the first state is ``beta_0 = T beta0 + eta_0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from tvbeta.data.validate import INTERCEPT_NAME

TARGET_COL = "y"
DEFAULT_FACTOR_VOL = 0.02  # a weekly-like return volatility (2% per period)

ArrayLike = float | npt.ArrayLike


@dataclass(frozen=True, eq=False)
class SimulatedData:
    """A simulated data set and the truth that generated it (arrays are read-only).

    Attributes
    ----------
    frame : pd.DataFrame, (n_time, 1 + n_factors)
        Column "y" (NaN where made missing) then the factor columns; ``DatetimeIndex`` "Date".
    beta : np.ndarray, (n_time, k)
        True states beta_0 .. beta_{n_time-1}, columns in ``state_names`` order.
    Q, R, beta0, T : np.ndarray (k, k), float, np.ndarray (k,), np.ndarray (k, k)
        State noise covariance, observation noise variance, the fixed start beta_{-1} and
        the transition matrix.
    state_names : tuple of str, (k,)
        ``("Intercept", *factors)`` with an intercept, else the factor names.
    """

    frame: pd.DataFrame
    beta: np.ndarray
    Q: np.ndarray
    R: float
    beta0: np.ndarray
    T: np.ndarray
    state_names: tuple[str, ...]

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Factor column names of ``frame``, (n_factors,)."""
        return tuple(c for c in self.frame.columns if c != TARGET_COL)


def simulate(
    n_time: int,
    factor_names: Sequence[str] | int | None = None,
    *,
    Q: ArrayLike,
    R: float,
    beta0: ArrayLike,
    intercept: bool = False,
    T: ArrayLike | None = None,
    factor_cov: ArrayLike | None = None,
    seed: int,
    missing_frac: float = 0.0,
    freq: str = "W-FRI",
    start: str | pd.Timestamp = "2000-01-07",
) -> SimulatedData:
    """Draw factors, a random-walk (or AR) beta path and fund returns.

    Parameters
    ----------
    n_time : int
        Number of time steps.
    factor_names : sequence of str or int or None
        Factor column names, or their number (named "f1", "f2", ...), or None to take the
        number from ``beta0`` (its length minus one with an intercept).
    Q : float or array, scalar, (k,) or (k, k)
        State noise covariance: ``q I``, ``diag(q)`` or a full symmetric PSD matrix (a zero
        variance, e.g. for a fixed intercept, is allowed). Units: (beta units)^2 per step.
    R : float
        Observation noise variance, in (return units)^2, >= 0.
    beta0 : float or array, (k,)
        The start beta_{-1}; a scalar is repeated when k is known from ``factor_names``.
    intercept : bool, default False
        Prepend the state "Intercept" with regressor 1.
    T : float or array, scalar, (k,) or (k, k), optional
        Transition matrix; default identity (random walk).
    factor_cov : float or array, scalar, (n_factors,) or (n_factors, n_factors), optional
        Covariance of the iid normal factor returns; default ``0.02**2 I``.
    seed : int
        Seed of the ``numpy.random.Generator``; the same seed gives the same data.
    missing_frac : float, default 0.0
        Fraction of the ``y`` values, chosen at random, set to NaN (``round(frac * n_time)``).
    freq : str, default "W-FRI"
        Frequency of the date index.
    start : str or pd.Timestamp, default "2000-01-07"
        First date (a Friday).

    Returns
    -------
    SimulatedData
        ``frame`` (n_time, 1 + n_factors), true ``beta`` (n_time, k), ``Q``, ``R``, ``beta0``,
        ``T`` and ``state_names``.

    Raises
    ------
    ValueError
        ``n_time`` < 1; ``R`` not a finite scalar >= 0; ``missing_frac`` outside [0, 1); no
        factor, repeated, empty or reserved factor names, or none given and no vector
        ``beta0`` to count them; ``beta0``, ``Q``, ``T`` or ``factor_cov`` of the wrong
        shape or not finite; ``Q`` or ``factor_cov`` not symmetric PSD.
    """
    names = _factor_names(factor_names, beta0, intercept)
    k = len(names) + int(intercept)
    beta_start = _vector(beta0, k, "beta0")
    Q_mat = _matrix(Q, k, "Q")
    T_mat = np.eye(k) if T is None else _matrix(T, k, "T", psd=False)
    cov_f = _matrix(DEFAULT_FACTOR_VOL**2 if factor_cov is None else factor_cov, len(names),
                    "factor_cov")  # fmt: skip
    if not np.isscalar(R) or not np.isfinite(R) or R < 0:
        raise ValueError(f"R must be a finite non-negative scalar variance, got {R!r}")
    if not 0.0 <= missing_frac < 1.0:
        raise ValueError(f"missing_frac must be in [0, 1), got {missing_frac!r}")
    if n_time < 1:
        raise ValueError(f"n_time must be at least 1, got {n_time!r}")

    rng = np.random.default_rng(seed)
    # Draw order is part of the contract (same seed, same data): factors, eta, eps, missing.
    factors = rng.standard_normal((n_time, len(names))) @ psd_sqrt(cov_f, "factor_cov").T
    eta = rng.standard_normal((n_time, k)) @ psd_sqrt(Q_mat, "Q").T
    eps = rng.standard_normal(n_time) * np.sqrt(R)
    missing = rng.choice(n_time, size=round(missing_frac * n_time), replace=False)

    beta = _state_path(T_mat, beta_start, eta)
    Z = np.column_stack([np.ones(n_time), factors]) if intercept else factors
    y = np.einsum("tk,tk->t", Z, beta) + eps
    y[missing] = np.nan

    index = pd.date_range(start=start, periods=n_time, freq=freq, name="Date")
    frame = pd.DataFrame(np.column_stack([y, factors]), index=index, columns=[TARGET_COL, *names])
    state_names = (INTERCEPT_NAME, *names) if intercept else names
    return SimulatedData(frame=frame, beta=_readonly(beta), Q=_readonly(Q_mat), R=float(R),
                         beta0=_readonly(beta_start), T=_readonly(T_mat),
                         state_names=state_names)  # fmt: skip


def psd_sqrt(M: np.ndarray, name: str = "matrix") -> np.ndarray:
    """Return the symmetric root ``L = V diag(sqrt(w)) V'`` (k, k) of a symmetric PSD ``M``.

    ``eigh`` rather than Cholesky so singular matrices (a zero variance) work; eigenvalues
    negative only by rounding are clipped to 0. The root of a diagonal ``M`` is
    ``diag(sqrt(m))``, so each state's noise comes from its own standard normal draw.

    Raises
    ------
    ValueError
        ``M`` is not symmetric, or has a clearly negative eigenvalue (named ``name``).
    """
    if not np.allclose(M, M.T, rtol=1e-10, atol=1e-14):
        raise ValueError(f"{name} must be symmetric")
    w, V = np.linalg.eigh(0.5 * (M + M.T))
    tol = 1e-10 * max(1.0, float(np.abs(w).max(initial=0.0)))
    if w.size and w.min() < -tol:
        raise ValueError(f"{name} is not positive semi-definite (eigenvalue {w.min():.3g})")
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def _state_path(T: np.ndarray, beta0: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """beta_t = T beta_{t-1} + eta_t from beta_{-1} = beta0; returns (n_time, k)."""
    beta = np.empty_like(eta)
    previous = beta0
    for t in range(eta.shape[0]):
        previous = T @ previous + eta[t]
        beta[t] = previous
    return beta


def _factor_names(
    factor_names: Sequence[str] | int | None, beta0: ArrayLike, intercept: bool
) -> tuple[str, ...]:
    """Resolve the factor names from a list, a count, or the length of beta0."""
    if factor_names is None:
        n = np.size(beta0) - int(intercept)
        if np.ndim(beta0) != 1 or n < 1:
            raise ValueError("give factor_names (or their number) or a beta0 vector of length k")
        return tuple(f"f{i + 1}" for i in range(n))
    if isinstance(factor_names, int | np.integer) and not isinstance(factor_names, bool):
        if factor_names < 1:
            raise ValueError(f"need at least one factor, got {factor_names}")
        return tuple(f"f{i + 1}" for i in range(int(factor_names)))
    names = tuple(str(n) for n in factor_names)
    reserved = {TARGET_COL, INTERCEPT_NAME} if intercept else {TARGET_COL}
    if not names or len(set(names)) != len(names) or reserved & set(names):
        raise ValueError(f"factor_names must be unique, non-empty, not {sorted(reserved)}")
    return names


def _vector(value: ArrayLike, k: int, name: str) -> np.ndarray:
    """Return a float (k,) vector from a scalar or a length-k array."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(k, float(arr))
    if arr.shape != (k,):
        raise ValueError(f"{name} must be a scalar or have shape ({k},), got {arr.shape}")
    return arr.copy()


def _matrix(value: ArrayLike, k: int, name: str, psd: bool = True) -> np.ndarray:
    """Return a float (k, k) matrix from a scalar (times I), a (k,) diagonal or a (k, k) matrix."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        out = float(arr) * np.eye(k)
    elif arr.shape == (k,):
        out = np.diag(arr)
    elif arr.shape == (k, k):
        out = arr.copy()
    else:
        raise ValueError(f"{name} must be a scalar, shape ({k},) or ({k}, {k}); got {arr.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite")
    if psd:
        psd_sqrt(out, name)  # raises early, with the argument's name, if not PSD
    return out


def _readonly(arr: np.ndarray) -> np.ndarray:
    """Freeze an array so the frozen dataclass cannot be changed through it."""
    arr.setflags(write=False)
    return arr
