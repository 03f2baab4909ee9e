"""Checked kernel inputs: the state-space model as plain, contiguous float64 arrays.

The kernels trust their inputs; everything a user can get wrong is caught here, once, with an
error that names the offending argument. Time variation is declared by the leading axis of
T, Q and R: length 1 means constant, length n means one matrix per step (the model layer sets
it explicitly from the spec, never by guessing).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tvbeta.kalman.steps import udu_factor


class KalmanInputError(ValueError):
    """A state-space array has the wrong shape or an invalid value."""


class KalmanNumericalError(ArithmeticError):
    """The filter met a non-positive innovation variance F_t."""


class StateSpace(NamedTuple):
    """A linear Gaussian state-space model with scalar observations, time-first.

    y : (n,) observations, NaN where missing.
    Z : (n, k) design rows z_t (factor returns, a leading 1 for an intercept).
    T : (1 | n, k, k) transition into step t.
    Q : (1 | n, k, k) state disturbance covariance (exactly symmetric).
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
        """Return the number of time steps (rows of Z)."""
        return self.Z.shape[0]

    @property
    def k(self) -> int:
        """Return the number of states (columns of Z)."""
        return self.Z.shape[1]


def _f64(name: str, x, ndim: int) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if not arr.flags.writeable:
        # read-only views (pandas 3 hands them out) would compile a second kernel specialisation
        arr = arr.copy()
    if arr.ndim != ndim:
        raise KalmanInputError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    return arr


def _check_time_axis(name: str, arr: np.ndarray, n: int) -> None:
    if arr.shape[0] not in (1, n):
        raise KalmanInputError(
            f"{name} has {arr.shape[0]} time rows; use 1 (constant) or n = {n} (one per step)"
        )


_VALUE_ERRORS = {
    1: "T has NaN or inf values",
    2: "Q has NaN or inf values",
    3: "R has NaN or inf values",
    4: "a0 has NaN or inf values",
    5: "P0 has NaN or inf values",
    6: "Z has NaN or inf values on rows where y is observed (first at step {i})",
    7: "y has inf values (first at step {i}); mark missing observations with NaN",
    8: "R (observation variance) must be >= 0 (step {i})",
    9: "Q must be symmetric (time row {i})",
    10: "Q has a negative variance on its diagonal (time row {i})",
    11: "P0 must be symmetric",
    12: "P0 has a negative variance on its diagonal",
    13: "Q is not positive semi-definite (time row {i}): some combination x of the states would "
    "get a negative variance x'Qx (for instance a correlation beyond +-1); build Q as L L', or "
    "from standard deviations and a valid correlation matrix",
    14: "P0 is not positive semi-definite: some combination x of the states would get a "
    "negative prior variance x'P0x (for instance a correlation beyond +-1); build P0 as L L', or "
    "from standard deviations and a valid correlation matrix",
}

#: A covariance passes as positive semi-definite when its smallest eigenvalue is >= -PSD_RTOL
#: times its largest variance: rounding in building it (L L', a correlation matrix scaled by
#: standard deviations) stays far below that, a genuine negative variance far above.
PSD_RTOL = 1e-10


@njit(cache=True, fastmath=False)
def _all_finite(x) -> bool:
    for v in x.ravel():
        if not np.isfinite(v):
            return False
    return True


@njit(cache=True, fastmath=False)
def _covariance_code(A, work) -> int:
    """Classify A (k, k) as a covariance matrix; work (k, k) is scratch.

    Returns 0 if A is an exactly symmetric PSD matrix; 3 if symmetric only to 1e-12 of its
    scale (the caller then symmetrises a copy); 1 asymmetric; 2 negative variance on the
    diagonal; 4 not positive semi-definite.

    PSD: the U D U' factorisation of A + PSD_RTOL * max_i A_ii * I has only positive pivots
    (zero variances, as for a static intercept, pass: their pivots are the shift itself).
    """
    k = A.shape[0]
    scale = 1.0
    largest_variance = 0.0
    for i in range(k):
        largest_variance = max(largest_variance, A[i, i])
        for j in range(k):
            scale = max(scale, abs(A[i, j]))
    code = 0
    for i in range(k):
        if A[i, i] < 0.0:
            return 2
        for j in range(i + 1, k):
            gap = abs(A[i, j] - A[j, i])
            if gap > 1e-12 * scale:
                return 1
            if gap > 0.0:
                code = 3
    shift = PSD_RTOL * largest_variance + np.finfo(np.float64).tiny
    if udu_factor(A, work, shift) >= 0:
        return 4
    return code


@njit(cache=True, fastmath=False)
def value_check_kernel(y, Z, T, Q, R, a0, P0):
    """Value checks of one model in one pass; returns (error code, index).

    Code 0: valid; -1: valid but Q or P0 is symmetric only to rounding (symmetrise a copy).
    """
    for code, arr in ((1, T), (2, Q), (4, a0.reshape(1, 1, -1)), (5, P0.reshape(1, 1, -1))):
        if not _all_finite(arr):
            return code, -1
    if not _all_finite(R):
        return 3, -1
    for t in range(Z.shape[0]):
        if np.isinf(y[t]):
            return 7, t
        if not np.isnan(y[t]):
            for i in range(Z.shape[1]):
                if not np.isfinite(Z[t, i]):
                    return 6, t
    for t in range(R.shape[0]):
        if R[t] < 0.0:
            return 8, t
    inexact = 0
    work = np.empty(P0.shape)
    for t in range(Q.shape[0]):
        c = _covariance_code(Q[t], work)
        if c == 3:
            inexact = -1
        elif c:
            return (13 if c == 4 else 8 + c), t
    c = _covariance_code(P0, work)
    if c == 3:
        inexact = -1
    elif c:
        return (14 if c == 4 else 10 + c), -1
    return inexact, -1


def raise_value_error(code: int, index: int, where: str = "") -> None:
    """Turn a `value_check_kernel` result into a KalmanInputError (no-op for code <= 0)."""
    if code > 0:
        raise KalmanInputError(_VALUE_ERRORS[code].format(i=index) + where)


def check_shapes(y, Z, T, Q, R, a0, P0) -> StateSpace:
    """Convert to contiguous float64 and check the shapes of one model."""
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
    return StateSpace(y, Z, T, Q, R, a0, P0)


def state_space(y, Z, T, Q, R, a0, P0) -> StateSpace:
    """Validate and convert the model arrays (shapes as in `StateSpace`)."""
    m = check_shapes(y, Z, T, Q, R, a0, P0)
    code, index = value_check_kernel(*m)
    raise_value_error(code, index)
    if code < 0:  # symmetric only to rounding; the kernels add Q to P as it is
        m = m._replace(Q=symmetrized(m.Q), P0=symmetrized(m.P0))
    return m


def symmetrized(A: np.ndarray) -> np.ndarray:
    """Return (A + A') / 2 over the last two axes, as a new C-contiguous array."""
    return np.ascontiguousarray(0.5 * (A + np.swapaxes(A, -1, -2)))


@njit(cache=True, fastmath=False)
def burn_row(y, burn):
    """Row of the first step counted after ``burn`` observed steps: (burn+1)-th observed y.

    y : (n,) float64 observations, NaN where missing; burn : observed steps that only
    condition the filter. Returns n when fewer than burn + 1 values are observed. A burn
    counts observations, not rows: steps with a missing target carry no likelihood term, and
    the rows before the first observation are not part of the model (the state process starts
    there), so ``burn_row(y, 0)`` is the first observed row. Every caller that drops burn-in
    rows slices at this row; compiled, so kernels call it too.
    """
    seen = 0
    for t in range(y.shape[0]):
        if not np.isnan(y[t]):
            if seen == burn:
                return t
            seen += 1
    return y.shape[0]
