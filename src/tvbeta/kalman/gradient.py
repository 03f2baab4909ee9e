"""Exact gradient of the Kalman log-likelihood by a reverse (adjoint) pass.

For weights w_t (the cotangent of the per-step terms), `loglik_vjp` returns the gradient of
sum_t w_t log p(y_t | y_{<t}) with respect to every Q_t, R_t, a0 and P0 in one forward and one
backward sweep, O(n k^3) like the filter itself (O(n k^2) when T = I). The forward sweep
(`tape_kernel`) keeps only s_t = P_{t|t-1} z_t, F_t and v_t: the adjoint recursion
(`adjoint_kernel`) needs no stored covariance. The two are separate so that a caller holding
the tape (the PyTensor Op) runs the forward sweep once for the value and the gradient.

Backward step for an observed y_t, with abar, Pbar the adjoints of a_{t|t}, P_{t|t}
(derived from a_{t|t} = a + s v/F, P_{t|t} = P - s s'/F, F = z's + R, s = P z, v = y - z'a):

    Fbar = -w (1/F - v^2/F^2)/2 - (abar's) v/F^2 + s'Pbar s/F^2
    vbar = -w v/F + abar's/F
    sbar = abar v/F - 2 Pbar s/F + Fbar z
    Rbar_t += Fbar;  Pbar <- Pbar + (sbar z' + z sbar')/2;  abar <- abar - vbar z

then through the prediction a = T_t a_s, P = T_t P_s T_t' + Q_t from the filtered state
(a_s, P_s) of the step before ((a0, P0) at the first observed step):
Tbar_t += abar a_s' + 2 Pbar T_t P_s (only with a transition tape, below), Qbar_t += Pbar,
Pbar <- T_t' Pbar T_t, abar <- T_t' abar.

dT needs (a_s, P_s) of every step, which the adjoint cannot rebuild backwards (T may be
singular), so it is asked for by a wider tape: `transition_tape_kernel` stores them in each row
after [s_t, F_t, v_t], from the full filter (`filter.filter_kernel`). The narrow tape of the
hot path (`tape_kernel`) is unchanged, and so are its sweep's cost and outputs.
Adjoints of symmetric matrices are kept symmetric, so d(value) = sum_ij Qbar_ij dQ_ij for any
symmetric perturbation dQ; for Q = L L' the gradient with respect to L is 2 Qbar L.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tvbeta.kalman.arrays import burn_row, state_space
from tvbeta.kalman.filter import filter_kernel, raise_bad_step, sweep_constant, tape_kernel
from tvbeta.kalman.steps import is_random_walk


class LoglikGradient(NamedTuple):
    """Value and exact gradient of sum_t w_t loglik_t.

    value : float; loglik_t : (n,) per-step terms (unweighted).
    dQ : (1 | n, k, k) symmetric gradient with respect to Q (shaped like Q).
    dR : (1 | n,) gradient with respect to R (shaped like R).
    da0 : (k,), dP0 : (k, k) gradients with respect to the initial mean and covariance.
    dT : (1 | n, k, k) gradient with respect to T (shaped like T; not symmetric), or None
    when not asked for (``transition=False``).
    """

    value: float
    loglik_t: np.ndarray
    dQ: np.ndarray
    dR: np.ndarray
    da0: np.ndarray
    dP0: np.ndarray
    dT: np.ndarray | None = None


@njit(cache=True, fastmath=False, inline="always")
def update_adjoint(abar, Pbar, s, F, v, z, Fbar_in, vbar_in, Kbar_extra, sbar, Ps):
    """Take one observed step's update backwards (module docstring), in place: (Fbar, vbar).

    abar, Pbar (k,), (k, k): the adjoints of a_{t|t}, P_{t|t} on entry, of a_{t|t-1},
    P_{t|t-1} on exit. s, F, v: the forward update's s = P z, F and v; z the design row.
    Fbar_in, vbar_in: the cotangents reaching F and v directly (from the step's term:
    -w (1/F - v^2/F^2) / 2 and -w v / F); Kbar_extra (k,): any further cotangent of the gain
    K = s / F (other state means updated with the same gain, as `collapsed` has; zeros
    otherwise, which leave every result bit for bit as without it). sbar (k,) receives the
    adjoint of s, Ps (k,) scratch. Returns the total adjoints of F and v.
    """
    k = abar.shape[0]
    a_s = 0.0
    sPs = 0.0
    Ks = 0.0
    for i in range(k):
        a_s += abar[i] * s[i]
        Ks += Kbar_extra[i] * s[i]
        acc = 0.0
        for j in range(k):
            acc += Pbar[i, j] * s[j]
        Ps[i] = acc
        sPs += s[i] * acc
    fbar = Fbar_in - a_s * v / (F * F) + sPs / (F * F) - Ks / (F * F)
    vbar = vbar_in + a_s / F
    for i in range(k):
        sbar[i] = abar[i] * (v / F) - 2.0 * Ps[i] / F + fbar * z[i] + Kbar_extra[i] / F
    for i in range(k):
        for j in range(i, k):
            val = Pbar[i, j] + 0.5 * (sbar[i] * z[j] + z[i] * sbar[j])
            Pbar[i, j] = val
            Pbar[j, i] = val
        abar[i] -= vbar * z[i]
    return fbar, vbar


@njit(cache=True, fastmath=False, inline="always")
def _transpose_congruence(T, A, out, tmp):
    """Write out = T' A T (A symmetric), exactly symmetric; zero entries of T are skipped."""
    k = A.shape[0]
    for i in range(k):
        for j in range(k):
            acc = 0.0
            for l in range(k):
                tlj = T[l, j]
                if tlj != 0.0:
                    acc += A[i, l] * tlj
            tmp[i, j] = acc
    for i in range(k):
        for j in range(i, k):
            acc = 0.0
            for l in range(k):
                tli = T[l, i]
                if tli != 0.0:
                    acc += tli * tmp[l, j]
            out[i, j] = acc
            out[j, i] = acc


@njit(cache=True, fastmath=False, inline="always")
def _transition_adjoint(row, k, T, abar, Pbar, dT, tmp):
    """Add abar a_s' + 2 Pbar T P_s to dT (k, k).

    (a_s, P_s): the filtered state the step's prediction started from, read from a
    transition-tape row; tmp (k, k) scratch.
    """
    a_s, P_s = row[k + 2 : 2 * k + 2], row[2 * k + 2 :].reshape((k, k))
    for i in range(k):  # tmp = Pbar T
        for j in range(k):
            acc = 0.0
            for l in range(k):
                acc += Pbar[i, l] * T[l, j]
            tmp[i, j] = acc
    for i in range(k):
        for j in range(k):
            acc = 0.0
            for l in range(k):
                acc += tmp[i, l] * P_s[l, j]
            dT[i, j] += abar[i] * a_s[j] + 2.0 * acc


@njit(cache=True, fastmath=False)
def adjoint_kernel(y, Z, T, w, tape, dQ, dR, da0, dP0, dT, static_k):
    """Run the backward (adjoint) sweep over a `tape_kernel` or `transition_tape_kernel` tape.

    Fills dQ (1 | n, k, k), dR (1 | n), da0 (k,), dP0 (k, k) with the gradient of sum_t w_t
    ll_t, and dT (1 | n, k, k) when the tape is a transition tape (width `tape_width(k, True)`;
    dT is not touched after a narrow tape). The sweep ends at the first observed step, whose
    prediction starts from (a0, P0) (rows before it are not part of the model and get zero
    gradient). static_k: as for the forward sweep, `filter.sweep_constant(T, k)` (k a
    compile-time constant for a random walk: 2.5x faster at k = 3, 52 -> 21 us on the seed case;
    narrow tapes only) or None.

    Raises
    ------
    ValueError
        When static_k does not match Z's columns, T is not the identity or the tape is a
        transition tape.
    """
    n = Z.shape[0]
    k = Z.shape[1] if static_k is None else len(static_k)
    if static_k is not None and (
        k != Z.shape[1] or not is_random_walk(T) or tape.shape[1] != k + 2
    ):
        raise ValueError("static_k is for random-walk models with k states and a narrow tape: "
                         "filter.sweep_constant")  # fmt: skip
    dQ[:] = 0.0
    dR[:] = 0.0
    abar = np.zeros(k)
    Pbar = np.zeros((k, k))
    sbar = np.empty(k)
    Ps = np.empty(k)
    s, z = np.empty(k), np.empty(k)
    no_K = np.zeros(k)  # no gain cotangent beyond the state's own
    tmp = np.empty((k, k))
    rw = is_random_walk(T)
    Tc, dQc = T[0], dQ[0]
    tv_T, tv_Q, tv_R = T.shape[0] > 1, dQ.shape[0] > 1, dR.shape[0] > 1
    with_T = tape.shape[1] > k + 2
    if with_T:
        dT[:] = 0.0
    for t in range(n - 1, burn_row(y, 0) - 1, -1):
        if not np.isnan(y[t]):
            wt = w[t]
            for i in range(k):  # element copies: row views per step cost more for small k
                s[i] = tape[t, i]
                z[i] = Z[t, i]
            f, v = tape[t, k], tape[t, k + 1]
            fbar, _ = update_adjoint(
                abar, Pbar, s, f, v, z, -0.5 * wt * (1.0 / f - v * v / (f * f)),
                -wt * v / f, no_K, sbar, Ps,
            )  # fmt: skip
            dR[t if tv_R else 0] += fbar
        dQt = dQ[t] if tv_Q else dQc
        for i in range(k):
            for j in range(k):
                dQt[i, j] += Pbar[i, j]
        Tt = T[t] if tv_T else Tc
        if with_T:
            _transition_adjoint(tape[t], k, Tt, abar, Pbar, dT[t] if tv_T else dT[0], tmp)
        if rw:
            continue
        _transpose_congruence(Tt, Pbar, Pbar, tmp)
        for i in range(k):
            acc = 0.0
            for j in range(k):
                acc += Tt[j, i] * abar[j]
            Ps[i] = acc
        abar[:] = Ps
    da0[:] = abar
    dP0[:, :] = Pbar


@njit(cache=True, fastmath=False)
def loglik_vjp_kernel(y, Z, T, Q, R, a0, P0, w, ll, dQ, dR, da0, dP0, static_k):
    """Run the forward then the adjoint sweep into ll, dQ, dR, da0, dP0; return bad step or -1.

    static_k: `filter.sweep_constant(T, k)`.
    """
    n, k = Z.shape
    tape = np.empty((n, k + 2))
    bad = tape_kernel(y, Z, T, Q, R, a0, P0, ll, tape, static_k)
    if bad < 0:
        adjoint_kernel(y, Z, T, w, tape, dQ, dR, da0, dP0, dQ, static_k)  # narrow: no dT
    return bad


@njit(cache=True, fastmath=False)
def tape_width(k: int, transition: bool) -> int:
    """Return the columns of the adjoint's tape.

    k + 2 ([s, F, v]), or with the filtered state each prediction starts from
    ([s, F, v, a_s, vec P_s], for dT) k + 2 + k + k^2.
    """
    return k + 2 + (k + k * k if transition else 0)


@njit(cache=True, fastmath=False)
def transition_tape_kernel(y, Z, T, Q, R, a0, P0, ll, tape):
    """Run the full filter and store the one-step terms and a transition tape for dT.

    ll (n,) gets the terms (as `tape_kernel`'s), tape (n, `tape_width(k, True)`) gets per row
    [s_t, F_t, v_t] (observed rows) then the filtered state (a_s (k,), P_s (k, k) row-major)
    the prediction of step t starts from: (a0, P0) at the first observed row, else
    (a_{t-1|t-1}, P_{t-1|t-1}). s_t is rebuilt as K_t F_t (rounding-level apart from the
    narrow tape's). Returns the bad step or -1.
    """
    n, k = Z.shape
    a_pred, a_filt, K = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
    P_pred, P_filt = np.empty((n, k, k)), np.empty((n, k, k))
    v, F = np.empty(n), np.empty(n)
    bad = filter_kernel(y, Z, T, Q, R, a0, P0, a_pred, P_pred, a_filt, P_filt, v, F, K, ll)
    if bad >= 0:
        return bad
    first = burn_row(y, 0)
    for t in range(first, n):
        row = tape[t]
        if not np.isnan(y[t]):
            for i in range(k):
                row[i] = K[t, i] * F[t]
            row[k], row[k + 1] = F[t], v[t]
        a_s = a0 if t == first else a_filt[t - 1]
        P_s = P0 if t == first else P_filt[t - 1]
        for i in range(k):
            row[k + 2 + i] = a_s[i]
            for j in range(k):
                row[2 * k + 2 + i * k + j] = P_s[i, j]
    return -1


def term_weights(weights, y: np.ndarray, burn: int) -> np.ndarray:
    """Return the cotangent (n,) of the terms: ``weights``, or 1 after ``burn`` observed steps.

    Raises
    ------
    ValueError
        When ``weights`` is not (n,).
    """
    if weights is None:
        w = np.ones(y.shape[0])
        w[: burn_row(y, int(burn))] = 0.0
        return w
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if w.shape != y.shape:
        raise ValueError(f"weights must have shape {y.shape}, got {w.shape}")
    return w


def loglik_vjp(
    y, Z, T, Q, R, a0, P0, weights=None, burn: int = 0, transition: bool = False
) -> LoglikGradient:
    """Exact gradient of sum_t w_t log p(y_t | y_{<t}) (a vector-Jacobian product).

    Shapes as in `kalman_filter`; weights : (n,) cotangent of the per-step terms, default 1
    from the row after the first ``burn`` observed steps (``arrays.burn_row``) and 0 before
    (the gradient of `kalman_loglik` with that burn). transition: also the gradient dT with
    respect to T (shaped like T), by the full filter's forward sweep (`transition_tape_kernel`,
    about twice the storage and forward cost); otherwise dT is None.
    """
    m = state_space(y, Z, T, Q, R, a0, P0)
    w = term_weights(weights, m.y, burn)
    ll = np.empty(m.n)
    dQ, dR = np.empty_like(m.Q), np.empty_like(m.R)
    da0, dP0 = np.empty_like(m.a0), np.empty_like(m.P0)
    if not transition:
        bad = loglik_vjp_kernel(*m, w, ll, dQ, dR, da0, dP0, sweep_constant(m.T, m.k))
        raise_bad_step(bad, m)
        return LoglikGradient(float(w @ ll), ll, dQ, dR, da0, dP0)
    dT = np.empty_like(m.T)
    tape = np.empty((m.n, tape_width(m.k, True)))
    bad = transition_tape_kernel(*m, ll, tape)
    raise_bad_step(bad, m)
    adjoint_kernel(m.y, m.Z, m.T, w, tape, dQ, dR, da0, dP0, dT, None)
    return LoglikGradient(float(w @ ll), ll, dQ, dR, da0, dP0, dT)
