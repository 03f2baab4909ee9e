"""Checked kernel inputs: the state-space model as plain, contiguous float64 arrays.

The kernels trust their inputs; everything a user can get wrong is caught here, once, with an
error that names the offending argument. Time variation is declared by the leading axis of
T, Q and R: length 1 means constant, length n means one matrix per step (the model layer sets
it explicitly from the spec, never by guessing).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class KalmanInputError(ValueError):
    """A state-space array has the wrong shape or an invalid value."""


class KalmanNumericalError(ArithmeticError):
    """The filter met a non-positive innovation variance F_t."""


class StateSpace(NamedTuple):
    """A linear Gaussian state-space model with scalar observations, time-first.

    y : (n,) observations, NaN where missing.
    Z : (n, k) design rows z_t (factor returns, a leading 1 for an intercept).
    T : (1 | n, k, k) transition into step t.
    Q : (1 | n, k, k) state disturbance covariance.
    R : (1 | n,) observation variance.
    a0 : (k,) and P0 : (k, k): mean and covariance of alpha_{-1}, before the first prediction.
    """

    y: np.ndarray
    Z: np.ndarray
    T: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    a0: np.ndarray
    P0: np.ndarray

    @property
    def n(self) -> int:
        return self.Z.shape[0]

    @property
    def k(self) -> int:
        return self.Z.shape[1]


def _f64(name: str, x, ndim: int) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise KalmanInputError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    return arr


def _check_time_axis(name: str, arr: np.ndarray, n: int) -> None:
    if arr.shape[0] not in (1, n):
        raise KalmanInputError(
            f"{name} has {arr.shape[0]} time rows; use 1 (constant) or n = {n} (one per step)"
        )


def _check_covariance(name: str, arr: np.ndarray) -> None:
    """Symmetric with a non-negative diagonal (full PSD checks are the model layer's job)."""
    scale = max(1.0, float(np.max(np.abs(arr))))
    if not np.allclose(arr, np.swapaxes(arr, -1, -2), rtol=0.0, atol=1e-12 * scale):
        raise KalmanInputError(f"{name} must be symmetric")
    if np.any(np.diagonal(arr, axis1=-2, axis2=-1) < 0):
        raise KalmanInputError(f"{name} has a negative variance on its diagonal")


def state_space(y, Z, T, Q, R, a0, P0) -> StateSpace:
    """Validate and convert the model arrays (shapes as in `StateSpace`)."""
    y = _f64("y", y, 1)
    Z = _f64("Z", Z, 2)
    n, k = Z.shape
    if y.shape[0] != n:
        raise KalmanInputError(f"y has {y.shape[0]} steps but Z has {n} rows")
    T = _f64("T", T, 3)
    Q = _f64("Q", Q, 3)
    R = _f64("R", R, 1)
    a0 = _f64("a0", a0, 1)
    P0 = _f64("P0", P0, 2)
    for name, arr in (("T", T), ("Q", Q), ("R", R)):
        _check_time_axis(name, arr, n)
    for name, arr in (("T", T), ("Q", Q)):
        if arr.shape[1:] != (k, k):
            raise KalmanInputError(f"{name} must be (1 | n, {k}, {k}), got {arr.shape}")
    if a0.shape != (k,) or P0.shape != (k, k):
        raise KalmanInputError(f"a0 must be ({k},) and P0 ({k}, {k}); got {a0.shape}, {P0.shape}")
    check_values(y, Z, T, Q, R, a0, P0)
    return StateSpace(y, Z, T, Q, R, a0, P0)


def check_values(y, Z, T, Q, R, a0, P0) -> None:
    """Value checks, vectorised so they also cover a whole batch (any leading axes)."""
    for name, arr in (("T", T), ("Q", Q), ("R", R), ("a0", a0), ("P0", P0)):
        if not np.all(np.isfinite(arr)):
            raise KalmanInputError(f"{name} has NaN or inf values")
    if not np.all(np.isfinite(Z).all(axis=-1) | np.isnan(y)):
        raise KalmanInputError("Z has NaN or inf values on rows where y is observed")
    if np.any(np.isinf(y)):
        raise KalmanInputError("y has inf values; mark missing observations with NaN")
    if np.any(R < 0):
        raise KalmanInputError("R (observation variance) must be >= 0")
    _check_covariance("Q", Q)
    _check_covariance("P0", P0)


def raise_bad_step(bad_t: int, where: str = "") -> None:
    """Turn a kernel's failure index into a clear error (no-op when bad_t < 0)."""
    if bad_t >= 0:
        raise KalmanNumericalError(
            f"innovation variance F_t <= 0 at step {bad_t}{where}: R and the predicted state "
            "covariance give no positive variance there; use R > 0 or check Q and P0"
        )
