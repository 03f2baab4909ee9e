"""Kalman filter, log-likelihood (the hot path) and the batched log-likelihood.

All three are loops over `steps.predict` and `steps.update`; they differ only in what they
store. Missing observations (NaN in y) predict and skip the update, adding no likelihood term.

The model starts at the first observed step: rows before it (a series that begins later than
its factors) are not part of it, so (a0, P0) describe the state just before the first
observation and the leading empty rows neither predict nor update (their outputs are NaN,
gains 0, terms 0). A ``burn`` counts observed steps: the term of an observed step counts once
``burn`` observed steps have passed (`arrays.burn_row` gives its row). Both make a series
with leading empty rows give exactly the numbers of the same series without them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from tvbeta.kalman.arrays import (
    KalmanNumericalError,
    StateSpace,
    burn_row,
    check_shapes,
    raise_value_error,
    state_space,
    symmetrized,
    value_check_kernel,
)
from tvbeta.kalman.steps import (
    at,
    covariance,
    is_random_walk,
    is_triangular,
    predict,
    predict_random_walk,
    predict_triangular,
    udu_factor,
    update,
)


class FilterOutput(NamedTuple):
    """Kalman filter output, time-first.

    a_pred : (n, k) predicted states a_{t|t-1};  P_pred : (n, k, k) their covariances.
    a_filt : (n, k) filtered states a_{t|t};    P_filt : (n, k, k) their covariances.
    v : (n,) innovations y_t - z_t' a_{t|t-1} (NaN where y is missing).
    F : (n,) innovation variances z_t' P_{t|t-1} z_t + R_t (NaN where y is missing).
    K : (n, k) gains P_{t|t-1} z_t / F_t (0 where y is missing).
    loglik_t : (n,) one-step log predictive densities log p(y_t | y_{<t}) (0 where missing).
    Rows before the first observed y are not part of the model: states, covariances, v and F
    are NaN there, K and loglik_t 0.
    loglik : float, their sum.
    """

    a_pred: np.ndarray
    P_pred: np.ndarray
    a_filt: np.ndarray
    P_filt: np.ndarray
    v: np.ndarray
    F: np.ndarray
    K: np.ndarray
    loglik_t: np.ndarray
    loglik: float


@njit(cache=True, fastmath=False)
def filter_kernel(y, Z, T, Q, R, a0, P0, a_pred, P_pred, a_filt, P_filt, v, F, K, ll):
    """Run the full filter into preallocated outputs; return the first bad step or -1."""
    n, k = Z.shape
    rw = is_random_walk(T)
    tri = is_triangular(T)
    a, UD, QUD = a0.copy(), np.empty((k, k)), np.empty((k, k))
    udu_factor(P0, UD, 0.0)
    tmp_a, x, W = np.empty(k), np.empty(k), np.empty((k, k))
    first = burn_row(y, 0)
    # before the first observation: not part of the model
    a_pred[:first] = P_pred[:first] = a_filt[:first] = P_filt[:first] = np.nan
    v[:first] = F[:first] = np.nan
    K[:first] = ll[:first] = 0.0
    for t in range(first, n):
        if t == first or Q.shape[0] > 1:  # Q's factor: once when constant, else every step
            udu_factor(Q[at(t, Q.shape[0])], QUD, 0.0)
        if rw:
            predict_random_walk(UD, QUD, x)
        elif tri:
            predict_triangular(a, UD, T[at(t, T.shape[0])], QUD, x)
        else:
            predict(a, UD, T[at(t, T.shape[0])], QUD, tmp_a, W, x)
        a_pred[t] = a
        covariance(UD, P_pred[t])
        if np.isnan(y[t]):
            v[t] = F[t] = np.nan
            K[t, :] = ll[t] = 0.0
        else:
            v[t], F[t], ll[t] = update(a, UD, y[t], Z[t], R[at(t, R.shape[0])], K[t])
            if not (F[t] > 0.0 and ll[t] > -np.inf):  # F = 0, or overflow (F or v^2 inf)
                return t
            for i in range(k):
                K[t, i] /= F[t]
        a_filt[t] = a
        covariance(UD, P_filt[t])
    return -1


@njit(cache=True, fastmath=False)
def _forward_sweep(y, Z, T, Q, R, a0, P0, burn, ll, tape, static_k):
    """Run the forward sweep of `loglik_kernel` and `tape_kernel`.

    Returns (sum of the terms after the first ``burn`` observed steps, bad step or -1). With
    ll (n,) and tape (n, k + 2) it also stores every term and the adjoint's tape [s_t =
    P_{t|t-1} z_t, F_t, v_t] (rows from the first observation on); size-0 arrays store nothing.
    static_k: `sweep_constant`'s None (k and T read at run time) or k zeros for T = I (numba
    compiles one copy per tuple length, with k a constant).
    """
    n = Z.shape[0]
    if static_k is None:
        k = Z.shape[1]
        rw = is_random_walk(T)
    else:
        k = len(static_k)
        rw = True
        if k != Z.shape[1] or not is_random_walk(T):
            raise ValueError("static_k is for random-walk models with k states: sweep_constant")
    store = ll.shape[0] > 0
    a, UD, QUD = np.empty(k), np.empty((k, k)), np.empty((k, k))
    a[:] = a0  # allocated with k, not copied from a0: a's length is then the constant k too
    udu_factor(P0, UD, 0.0)
    tmp_a, x, W, s = np.empty(k), np.empty(k), np.empty((k, k)), np.empty(k)
    # constant rows hoisted: a view per step costs as much as the arithmetic for small k
    Tc, rc = T[0], R[0]
    tv_T, tv_R = T.shape[0] > 1, R.shape[0] > 1
    total = 0.0
    first = burn_row(y, 0)
    if store:
        ll[:first] = 0.0
    seen = 0  # observed steps so far
    for t in range(first, n):
        if t == first or Q.shape[0] > 1:  # Q's factor: once when constant, else every step
            udu_factor(Q[at(t, Q.shape[0])], QUD, 0.0)
        if rw:
            predict_random_walk(UD, QUD, x)
        else:
            predict(a, UD, T[t] if tv_T else Tc, QUD, tmp_a, W, x)
        if np.isnan(y[t]):
            if store:
                ll[t] = 0.0
            continue
        v, Ft, llt = update(a, UD, y[t], Z[t], R[t] if tv_R else rc, s)
        if store:
            ll[t] = llt
            for i in range(k):  # element writes: a row view per step would cost more
                tape[t, i] = s[i]
            tape[t, k], tape[t, k + 1] = Ft, v
        if not (Ft > 0.0 and llt > -np.inf):  # F = 0, or overflow (F or v^2 inf)
            return np.nan, t
        if seen >= burn:
            total += llt
        seen += 1
    return total, -1


MAX_CONSTANT_K = 5


def sweep_constant(T: np.ndarray, k: int) -> tuple[float, ...] | None:
    """Return the ``static_k`` of the forward sweeps for T (1 | n, k, k) or (B, 1 | n, k, k).

    k zeros for a random-walk model (every T the identity) with k <= 5 (up to four factors and
    an intercept, as in the demo's Carhart model), else None (k and T read at run time).

    With k known, LLVM unrolls the per-step loops (most of them run 0 to 4 times) and keeps
    more of the factor in registers: measured at n = 365, such a copy is faster than the same
    code with k read at run time by about 1.9x at k = 2, 1.4x at k = 4 and 1.2x at k = 5.
    Each copy costs about 3 s to compile, so numba compiles (and caches) only the copies of
    the k a caller uses: the argument's type, a tuple of length k, selects the copy.
    """
    if not _every_random_walk(T.reshape((-1, *T.shape[-3:]))):
        return None
    return constant_k(k)


def constant_k(k: int) -> tuple[float, ...] | None:
    """Return the kernels' ``static_k``: k zeros for 0 < k <= `MAX_CONSTANT_K`, else None.

    Numba compiles (and caches) one copy of a kernel per tuple length, with k a constant, so
    LLVM unrolls the per-step loops; None selects the copy that reads k at run time. Shared by
    the random walk's sweeps (`sweep_constant`) and the collapsed mean-reverting kernels.
    """
    return (0.0,) * k if 0 < k <= MAX_CONSTANT_K else None


@njit(cache=True, fastmath=False)
def _every_random_walk(T):
    """Return True when every member of T (B, 1 | n, k, k) is one constant identity matrix."""
    for b in range(T.shape[0]):
        if not is_random_walk(T[b]):
            return False
    return True


@njit(cache=True, fastmath=False)
def loglik_kernel(y, Z, T, Q, R, a0, P0, burn, static_k):
    """Sum log p(y_t | y_{<t}) after the first ``burn`` observed steps, storing nothing.

    Returns (loglik, bad_t). static_k: `sweep_constant(T, k)`.
    """
    nothing = np.empty(0)
    return _forward_sweep(y, Z, T, Q, R, a0, P0, burn, nothing, nothing.reshape((0, 0)), static_k)


@njit(cache=True, fastmath=False)
def tape_kernel(y, Z, T, Q, R, a0, P0, ll, tape, static_k):
    """Run the forward sweep, storing the one-step terms and the adjoint's tape.

    ll (n,) gets the one-step terms (0 where y is NaN), tape (n, k + 2) gets [s_t =
    P_{t|t-1} z_t, F_t, v_t] per row; returns the bad step or -1. static_k: `sweep_constant`.
    """
    # burn as an int64, not the literal 0: the sweep copies are then those of loglik_kernel
    return _forward_sweep(y, Z, T, Q, R, a0, P0, np.int64(0), ll, tape, static_k)[1]


@njit(cache=True, fastmath=False, inline="always")
def _batch_member(b, y, Z, T, Q, R, a0, P0, burn, static_k, out, bad):
    out[b], bad[b] = loglik_kernel(
        y[at(b, y.shape[0])], Z[at(b, Z.shape[0])], T[at(b, T.shape[0])], Q[at(b, Q.shape[0])],
        R[at(b, R.shape[0])], a0[at(b, a0.shape[0])], P0[at(b, P0.shape[0])], burn, static_k,
    )  # fmt: skip


@njit(cache=True, fastmath=False, parallel=True)
def loglik_batch_kernel(y, Z, T, Q, R, a0, P0, burn, static_k, out, bad):
    """loglik_kernel over a leading batch axis (each input's is 1 or B), in parallel."""
    for i in prange(out.shape[0]):
        # prange indices are unsigned; mixed with int64 they would become float
        _batch_member(np.int64(i), y, Z, T, Q, R, a0, P0, burn, static_k, out, bad)


@njit(cache=True, fastmath=False)
def loglik_batch_serial_kernel(y, Z, T, Q, R, a0, P0, burn, static_k, out, bad):
    """`loglik_batch_kernel` on one thread: small batches, where waking threads costs more."""
    for b in range(out.shape[0]):
        _batch_member(b, y, Z, T, Q, R, a0, P0, burn, static_k, out, bad)


@njit(cache=True, fastmath=False, parallel=True)
def loglik_terms_batch_kernel(y, Z, T, Q, R, a0, P0, static_k, ll, bad):
    """Compute the per-step terms ll (B, n) of every batch member (`tape_kernel`), in parallel."""
    n, k = Z.shape[1], Z.shape[2]
    for i in prange(ll.shape[0]):
        b = np.int64(i)  # prange indices are unsigned; mixed with int64 they would become float
        tape = np.empty((n, k + 2))
        bad[b] = tape_kernel(
            y[at(b, y.shape[0])], Z[at(b, Z.shape[0])], T[at(b, T.shape[0])],
            Q[at(b, Q.shape[0])], R[at(b, R.shape[0])], a0[at(b, a0.shape[0])],
            P0[at(b, P0.shape[0])], ll[b], tape, static_k,
        )  # fmt: skip


def raise_bad_step(bad_t: int, m: StateSpace, where: str = "") -> None:
    """Turn a kernel's failure index (no-op when < 0) on model m into an error naming the cause.

    With PSD Q and P0 the factored update gives F_t = z_t'P z_t + R_t >= R_t, so a kernel
    stops only where R_t = 0 and z_t'P z_t = 0 (a genuinely zero variance, or an underflow
    when the design is tiny) or where a term overflows (data of a scale double precision
    cannot hold). The filter is re-run to step bad_t to tell which.

    Raises
    ------
    KalmanNumericalError
        When bad_t >= 0.
    """
    if bad_t < 0:
        return
    n, k = m.n, m.k
    a_pred, a_filt, K = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
    P_pred, P_filt = np.empty((n, k, k)), np.empty((n, k, k))
    v, F, ll = np.empty(n), np.empty(n), np.empty(n)
    filter_kernel(*m, a_pred, P_pred, a_filt, P_filt, v, F, K, ll)  # stops at bad_t
    t = bad_t
    z = m.Z[t]
    zmax = np.abs(z).max()
    scale = (
        f"max |z_t| = {zmax:.1e}, |y_t| = {abs(m.y[t]):.1e}, largest prior variance "
        f"{np.diagonal(m.P0).max():.1e}"
    )
    if F[t] == 0.0 and zmax > 0.0 and (z / zmax) @ P_pred[t] @ (z / zmax) > 0.0:
        cause = (
            f"F_t = z_t'P z_t + R_t underflowed to 0 at step {t}{where}: R_t = 0 and the data "
            f"are too small for double precision ({scale}); the data's scale is the likely "
            "cause: rescale y and Z (decimal returns) or use R > 0"
        )
    elif F[t] == 0.0:
        cause = (
            f"F_t = z_t'P z_t + R_t = 0 at step {t}{where}: R_t = 0 and the predicted state "
            "covariance gives z_t no variance, so y_t is an exact function of states already "
            "known and has no density; use R > 0, or give the states z_t loads on variance "
            "in P0 or Q"
        )
    else:
        cause = (
            f"the log-likelihood term at step {t}{where} is not finite (F_t = {F[t]:.3g}, "
            f"v_t = {v[t]:.3g}): the data's scale overflows double precision ({scale}); "
            "rescale y and Z (decimal returns, not raw prices or basis points) or shrink P0"
        )
    raise KalmanNumericalError(cause)


#: Below this many models a batch runs on one thread (thread start-up and contention with a
#: busy second core cost milliseconds; one seed-sized likelihood costs ~10 us).
PARALLEL_MIN_BATCH = 64


def kalman_filter(y, Z, T, Q, R, a0, P0) -> FilterOutput:
    """Run the Kalman filter (DK 4.3) on the model described in `arrays.StateSpace`.

    Shapes: y (n,), Z (n, k), T and Q (1 | n, k, k), R (1 | n,), a0 (k,), P0 (k, k). Raises
    KalmanInputError for invalid arrays, KalmanNumericalError where F_t = 0 or a term
    overflows (`raise_bad_step`).
    """
    return filter_state_space(state_space(y, Z, T, Q, R, a0, P0))


def filter_state_space(m: StateSpace) -> FilterOutput:
    """`kalman_filter` on already-validated arrays."""
    n, k = m.n, m.k
    a_pred, a_filt, K = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
    P_pred, P_filt = np.empty((n, k, k)), np.empty((n, k, k))
    v, F, ll = np.empty(n), np.empty(n), np.empty(n)
    bad = filter_kernel(*m, a_pred, P_pred, a_filt, P_filt, v, F, K, ll)
    raise_bad_step(bad, m)
    return FilterOutput(a_pred, P_pred, a_filt, P_filt, v, F, K, ll, float(ll.sum()))


@njit(cache=True, fastmath=False)
def checked_loglik_kernel(y, Z, T, Q, R, a0, P0, burn, static_k):
    """Value checks then `loglik_kernel` in one compiled call: (code, index, loglik, bad_t).

    The hot public path pays one numba dispatch instead of two; code < 0 (Q or P0 symmetric
    only to rounding) skips the likelihood so the caller can symmetrise a copy first.
    """
    code, index = value_check_kernel(y, Z, T, Q, R, a0, P0)
    if code != 0:
        return code, index, np.nan, -1
    ll, bad = loglik_kernel(y, Z, T, Q, R, a0, P0, burn, static_k)
    return code, index, ll, bad


def kalman_loglik(y, Z, T, Q, R, a0, P0, burn: int = 0) -> float:
    """Return the total log-likelihood after ``burn`` observed steps, storing nothing.

    The sum of log p(y_t | y_{<t}) (nats) over the rows from ``arrays.burn_row(y, burn)`` on,
    by the filter of Durbin & Koopman (2012) section 4.3 with the covariance in U D U' form
    (Bierman 1977).

    Parameters
    ----------
    y, Z, T, Q, R, a0, P0 : array_like
        The model, as in `arrays.StateSpace`: y (n,) with NaN where missing, Z (n, k), T and
        Q (1 | n, k, k), R (1 | n,), a0 (k,), P0 (k, k); Q and P0 symmetric PSD.
    burn : int, default 0
        Number of observed steps whose terms are left out of the sum.

    Returns
    -------
    float
        The log-likelihood in nats.

    Raises
    ------
    KalmanInputError
        For invalid arrays: wrong shapes, non-finite values, Q or P0 not symmetric PSD, R < 0.
    KalmanNumericalError
        Where F_t = 0 or a term overflows, naming the step and the cause (`raise_bad_step`).
    """
    m = check_shapes(y, Z, T, Q, R, a0, P0)
    static_k = sweep_constant(m.T, m.Z.shape[1])
    code, _, ll, bad = checked_loglik_kernel(*m, int(burn), static_k)
    if code != 0:
        m = state_space(*m)  # raises, or symmetrises Q and P0
        ll, bad = loglik_kernel(*m, int(burn), static_k)
    raise_bad_step(bad, m)
    return float(ll)


@njit(cache=True, fastmath=False)
def batch_value_check_kernel(y, Z, T, Q, R, a0, P0, B):
    """`value_check_kernel` over every batch member; returns (member, code, index)."""
    inexact = 0
    for b in range(B):
        code, index = value_check_kernel(
            y[at(b, y.shape[0])], Z[at(b, Z.shape[0])], T[at(b, T.shape[0])],
            Q[at(b, Q.shape[0])], R[at(b, R.shape[0])], a0[at(b, a0.shape[0])],
            P0[at(b, P0.shape[0])],
        )
        if code > 0:
            return b, code, index
        inexact = min(inexact, code)
    return -1, inexact, -1


def _batched(name: str, x, ndim: int) -> np.ndarray:
    arr = np.array(x, dtype=np.float64, order="C", copy=None)
    if not arr.flags.writeable:
        arr = arr.copy()
    if arr.ndim != ndim + 1:
        raise ValueError(
            f"{name} must have a leading batch axis and {ndim} more dims, got {arr.shape}"
        )
    return arr


def checked_batch(y, Z, T, Q, R, a0, P0) -> tuple[list[np.ndarray], int]:
    """Validate B models given with leading batch axes; return (their arrays, B).

    Shapes as for `loglik_batch`; every member is checked like a single model
    (`arrays.state_space`) and Q, P0 symmetric only to rounding are symmetrised in the copy.

    Raises
    ------
    ValueError
        When the batch axes are neither 1 nor one common B, or an array lacks its batch axis.
    KalmanInputError
        When a member's shapes or values are invalid; the message names the member.
    """
    args = [_batched(name, x, nd) for name, x, nd in (
        ("y", y, 1), ("Z", Z, 2), ("T", T, 3), ("Q", Q, 3), ("R", R, 1), ("a0", a0, 1),
        ("P0", P0, 2))]  # fmt: skip
    sizes = {a.shape[0] for a in args} - {1}
    if len(sizes) > 1:
        raise ValueError(f"batch axes disagree: {sorted(sizes)}; each must be 1 or the same B")
    B = sizes.pop() if sizes else 1
    check_shapes(*(a[0] for a in args))  # every member has member 0's shapes
    b, code, index = batch_value_check_kernel(*args, B)
    raise_value_error(code, index, f" in batch member {b}")
    if code < 0:
        args[3], args[6] = symmetrized(args[3]), symmetrized(args[6])
    return args, B


def loglik_batch(
    y, Z, T, Q, R, a0, P0, burn: int = 0, parallel: bool | None = None, terms: bool = False
) -> np.ndarray:
    """Log-likelihoods of B models in one parallel call: many parameter sets and/or series.

    Every argument gets a leading batch axis of length 1 (shared) or B: y (1|B, n),
    Z (1|B, n, k), T and Q (1|B, 1|n, k, k), R (1|B, 1|n), a0 (1|B, k), P0 (1|B, k, k); all
    series share n and k, every member is validated like a single model. Returns (B,) totals
    after the first ``burn`` observed steps of each series, or with ``terms`` the (B, n)
    one-step terms (0 where y_t is NaN; no burn), always in parallel. parallel: numba threads
    over the batch (default: when B >= PARALLEL_MIN_BATCH).
    """
    args, B = checked_batch(y, Z, T, Q, R, a0, P0)
    bad = np.empty(B, dtype=np.int64)
    static_k = sweep_constant(args[2], args[1].shape[2])
    if terms:
        out = np.empty((B, args[1].shape[1]))
        loglik_terms_batch_kernel(*args, static_k, out, bad)
    else:
        out = np.empty(B)
        if parallel is None:
            parallel = B >= PARALLEL_MIN_BATCH
        kernel = loglik_batch_kernel if parallel else loglik_batch_serial_kernel
        kernel(*args, int(burn), static_k, out, bad)
    for b in np.flatnonzero(bad >= 0)[:1]:
        member = StateSpace(*(a[at(b, a.shape[0])] for a in args))
        raise_bad_step(int(bad[b]), member, f" in batch member {b}")
    return out
