"""Mean-reverting betas, the long-run means integrated out by a second filter or in closed form.

The model (`tvbeta.model.reversion`) is

    beta_t - mu = Phi (beta_{t-1} - mu) + eta_t,  Phi = diag(phi),  eta_t ~ N(0, Q)
    y_t = z_t' beta_t + eps_t,  eps_t ~ N(0, R_t),  beta_{-1}, mu independent N(a0, P0).

The augmented filter of [beta; mu] (2k states) gives its likelihood exactly; this module gives
the same one-step terms log p(y_t | y_{<t}) with two k-state filters, as in the augmented
("collapsed") Kalman filter of de Jong (1991, "The likelihood for a state space model",
Biometrika 75(1), 165-169) and Durbin & Koopman (2012, sec. 5.7 and 6.2.2):

1. Given mu, the deviation x_t = beta_t - mu follows x_t = Phi x_{t-1} + eta_t with
   x_{-1} ~ N(a0 - mu, P0) and y_t - z_t'mu = z_t'x_t + eps_t. Its filter's covariances, gains
   and F_t do not depend on mu, and its innovations are affine in it: v_t(mu) = v_t - V_t mu,
   where v_t is the filter run on y from a0 and the row V_t (k,) collects the runs on the
   columns of Z from the unit vectors (A_t (k, k) their states: A <- Phi A, V = z' - z'A,
   A <- A + K V).
2. mu is then a static state observed through v_t = V_t mu + e_t, e_t ~ N(0, F_t): a second
   filter from N(a0, P0) whose one-step terms are log p(y_t | y_{<t}).

Both filters are the shared steps (`steps.predict_diagonal` for Phi, `steps.update`), so
the factored covariances keep their digits as in the other kernels. Per step this costs two
k-state updates and O(k^2) for A, against one update of 2k states; the adjoint
(`collapsed_adjoint_kernel`) runs back through both filters and gives the exact gradient with
respect to Q, R_t and phi (the derivation is in its docstring).

3. Where only the sum of the terms is needed (the MLE's objective, the Bayes model's log
   density), the second filter is not: with u_t = v_t - V_t a0, the likelihood is Gaussian
   in d = mu - a0, so integrating d ~ N(0, P0) out needs only S = sum V_t'V_t / F_t and
   b = sum V_t'u_t / F_t (de Jong 1991's augmented filter; Durbin & Koopman 2012, sec. 5.7):
   `collapsed_sum_kernel` and its adjoint `collapsed_sum_adjoint_kernel`, about 0.8x the cost
   of the two filters with their gradient (`reversion_loglik_grad`). The closed form
   subtracts the fitted part of sum u_t^2 / F_t, which the sequential second filter never
   does; on regressors at price levels with P0 = 1e9 I it still gives the 60-digit value to
   2e-10 nats (`tests/kalman/test_collapsed.py`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from tvbeta.kalman.arrays import KalmanInputError, KalmanNumericalError, burn_row, state_space
from tvbeta.kalman.filter import checked_batch, constant_k, raise_bad_step
from tvbeta.kalman.gradient import term_weights, update_adjoint
from tvbeta.kalman.steps import (
    LOG2PI,
    at,
    back_substitute,
    cholesky,
    covariance,
    forward_substitute,
    predict_diagonal,
    udu_factor,
    update,
)

__all__ = [
    "MEANS_OVERFLOW",
    "ReversionGradient",
    "reversion_loglik_grad",
    "reversion_loglik_terms",
    "reversion_loglik_vjp",
]


#: `collapsed_sum_kernel`'s failure code when every step held but the long-run means' sums
#: overflowed (no step to name: `filter.raise_bad_step` would blame a finite one).
MEANS_OVERFLOW = -2


class ReversionGradient(NamedTuple):
    """Value and exact gradient of sum_t w_t loglik_t for mean-reverting betas.

    value : float; loglik_t : (n,) the one-step terms (unweighted; 0 where y is missing), None
    from `reversion_loglik_grad`; dQ : (k, k) symmetric; dR : (1 | n,) shaped like R;
    dphi : (k,).
    """

    value: float
    loglik_t: np.ndarray | None
    dQ: np.ndarray
    dR: np.ndarray
    dphi: np.ndarray


def reversion_loglik_vjp(y, Z, phi, Q, R, a0, P0, weights=None, burn: int = 0
                         ) -> ReversionGradient:  # fmt: skip
    """Return the terms of mean-reverting betas and the exact gradient of their weighted sum.

    y (n,) with NaN for missing, Z (n, k), phi (k,) per period in (0, 1], Q (k, k), R (1 | n,),
    a0 (k,), P0 (k, k): the model of the module docstring (the terms equal the
    augmented filter's of `tvbeta.model.reversion`). weights (n,): the cotangent of the terms,
    default 1 after the first ``burn`` observed steps and 0 before.

    Raises
    ------
    KalmanInputError
        Shapes, non-finite values or a covariance that is not PSD (`arrays.state_space`), or a
        phi outside (0, 1].
    KalmanNumericalError
        F_t <= 0 or an overflow at some step (`filter.raise_bad_step` names it).
    ValueError
        When ``weights`` is not (n,).
    """
    m, phi = _reversion_arrays(y, Z, phi, Q, R, a0, P0)
    w = term_weights(weights, m.y, burn)
    ll, tape = np.empty(m.n), np.empty((m.n, collapsed_tape_width(m.k)))
    static_k = constant_k(m.k)
    bad = collapsed_tape_kernel(m.y, m.Z, phi, m.Q[0], m.R, m.a0, m.P0, ll, tape, static_k)
    raise_bad_step(bad, m)
    dQ, dR, dphi = np.empty((m.k, m.k)), np.empty_like(m.R), np.empty(m.k)
    collapsed_adjoint_kernel(m.y, m.Z, phi, w, tape, dQ, dR, dphi, static_k)
    return ReversionGradient(float(w @ ll), ll, dQ, dR, dphi)


def reversion_loglik_grad(y, Z, phi, Q, R, a0, P0, burn: int = 0) -> ReversionGradient:
    """Return the log-likelihood of mean-reverting betas after ``burn`` and its exact gradient.

    The sum of `reversion_loglik_vjp`'s terms from the row after the first ``burn`` observed
    steps (`arrays.burn_row`), and its gradient, by one filter of the deviations with the
    long-run means integrated out in closed form (`collapsed_sum_kernel`): about 0.8x the cost
    of the terms' two filters, for callers that need the sum only (the MLE, the Bayes model's
    log density). Inputs as `reversion_loglik_vjp`; ``loglik_t`` of the result is None.

    Raises
    ------
    KalmanInputError
        As `reversion_loglik_vjp`.
    KalmanNumericalError
        F_t <= 0 or an overflow at some step (`filter.raise_bad_step` names it), or an
        overflow of the means' integral.
    """
    m, phi = _reversion_arrays(y, Z, phi, Q, R, a0, P0)
    start = burn_row(m.y, int(burn))
    tape, post = np.empty((m.n, collapsed_sum_width(m.k))), np.empty((2, m.k, m.k + 1))
    static_k = constant_k(m.k)
    value, bad = collapsed_sum_kernel(m.y, m.Z, phi, m.Q[0], m.R, m.a0, m.P0, start, tape, post,
                                      static_k)  # fmt: skip
    if bad == MEANS_OVERFLOW:
        raise KalmanNumericalError(
            "the long-run means' integral overflowed (the sums of V_t'u_t / F_t left double "
            f"precision; largest |a0| {np.abs(m.a0).max():.1e}, |y| {np.nanmax(np.abs(m.y)):.1e}):"
            " rescale y and Z (decimal returns) or center a0 nearer the betas")
    raise_bad_step(bad, m)
    dQ, dR, dphi = np.empty((m.k, m.k)), np.empty_like(m.R), np.empty(m.k)
    collapsed_sum_adjoint_kernel(m.y, m.Z, phi, m.a0, start, tape, post, dQ, dR, dphi, static_k)
    return ReversionGradient(float(value), None, dQ, dR, dphi)


def _reversion_arrays(y, Z, phi, Q, R, a0, P0):
    """Return (the validated `StateSpace` of the deviations' filter, phi (k,) contiguous).

    Raises
    ------
    KalmanInputError
        Shapes, non-finite values or a covariance that is not PSD (`arrays.state_space`), or a
        phi outside (0, 1].
    """
    k = np.shape(Z)[-1]
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    if phi.shape != (k,) or not np.all((phi > 0.0) & (phi <= 1.0)):
        raise KalmanInputError(f"phi must be {k} persistences in (0, 1], got {phi}")
    # T = diag(phi): the deviation filter, which `raise_bad_step` re-runs to name a failure
    m = state_space(y, Z, np.diag(phi)[None], np.asarray(Q, dtype=np.float64)[None], R, a0, P0)
    return m, phi


def reversion_loglik_terms(y, Z, phi, Q, R, a0, P0) -> np.ndarray:
    """Return the one-step terms (B, n) of B parameter draws of mean-reverting betas (nats).

    y (n,) with NaN for missing, Z (n, k), a0 (k,), P0 (k, k) shared; phi (B, k) per period in
    (0, 1], Q (B, k, k), R (B, 1 | n): draw b's terms as `reversion_loglik_vjp`'s (0 where y is
    missing; no burn), by the two k-state filters in parallel over the draws, at about half the
    cost of the augmented 2k-state filter (`tvbeta.model.reversion`) whose terms they equal.

    Raises
    ------
    KalmanInputError
        A draw's shapes or values (`filter.checked_batch`, naming the draw as batch member), or
        a phi outside (0, 1].
    KalmanNumericalError
        F_t <= 0 or an overflow at some step of some draw (`filter.raise_bad_step`).
    """
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    if phi.ndim != 2 or not np.all((phi > 0.0) & (phi <= 1.0)):
        raise KalmanInputError(f"phi must be (B, k) persistences in (0, 1], got {phi.shape}")
    k = phi.shape[1]
    T = np.zeros((phi.shape[0], 1, k, k))
    T[:, 0, np.arange(k), np.arange(k)] = phi
    (y, Z, T, Q, R, a0, P0), B = checked_batch(
        np.asarray(y)[None], np.asarray(Z)[None], T, np.asarray(Q)[:, None], R,
        np.asarray(a0)[None], np.asarray(P0)[None],
    )  # fmt: skip
    ll, bad = np.empty((B, Z.shape[1])), np.empty(B, dtype=np.int64)
    collapsed_terms_batch_kernel(y[0], Z[0], phi, Q[:, 0], R, a0[0], P0[0], constant_k(k), ll,
                                 bad)  # fmt: skip
    for b in np.flatnonzero(bad >= 0)[:1]:
        member = state_space(y[0], Z[0], T[b], Q[b], R[b % len(R)], a0[0], P0[0])
        raise_bad_step(int(bad[b]), member, f" in batch member {b}")
    return ll


@njit(cache=True, fastmath=False, parallel=True)
def collapsed_terms_batch_kernel(y, Z, phi, Q, R, a0, P0, static_k, ll, bad):
    """Forward sweeps of draws (phi (B, k), Q (B, k, k), R (1 | B, 1 | n)) into ll (B, n)."""
    n, width = Z.shape[0], collapsed_tape_width(Z.shape[1])
    for i in prange(ll.shape[0]):
        b = np.int64(i)  # prange indices are unsigned; mixed with int64 they would become float
        tape = np.empty((n, width))
        bad[b] = collapsed_tape_kernel(y, Z, phi[b], Q[b], R[at(b, R.shape[0])], a0, P0, ll[b],
                                       tape, static_k)  # fmt: skip


@njit(cache=True, fastmath=False)
def collapsed_tape_width(k: int) -> int:
    """Return the columns of `collapsed_tape_kernel`'s tape for k betas: 3k^2 + 5k + 4."""
    return 3 * k * k + 5 * k + 4


@njit(cache=True, fastmath=False)
def collapsed_sum_width(k: int) -> int:
    """Return the columns of `collapsed_sum_kernel`'s tape for k betas: 2k^2 + 3k + 2."""
    return 2 * k * k + 3 * k + 2


# --- the deviations' filter, shared by both forward sweeps and both adjoints ------------------
# A tape row starts [s, F, v | V | a_s, A_s (k^2), P_s (k^2)]: the update's s = P z, F, v and
# V (observed rows), and the state the prediction starts from. `collapsed_tape_kernel` appends
# the long-run means' filter; `collapsed_sum_kernel` needs nothing more.


@njit(cache=True, fastmath=False, inline="always")
def _offsets(k: int) -> tuple[int, int, int, int]:
    """Return the tape columns where V, a_s, A_s and P_s start."""
    o_state = 2 * k + 2
    return k + 2, o_state, o_state + k, o_state + k + k * k


@njit(cache=True, fastmath=False, inline="always")
def _deviations_start(k, phi, Q, a0, P0):
    """Return the deviations' filter before its first step: A = I, 1 / phi, a = a0, UD, QUD.

    UD and QUD are the factors of P0 and Q; every array is allocated with k (a constant in a
    static copy, as their lengths).
    """
    A, inv_phi, a = np.zeros((k, k)), np.empty(k), np.empty(k)
    for i in range(k):
        inv_phi[i], A[i, i], a[i] = 1.0 / phi[i], 1.0, a0[i]
    UD, QUD = np.empty((k, k)), np.empty((k, k))
    udu_factor(P0, UD, 0.0)
    udu_factor(Q, QUD, 0.0)
    return A, inv_phi, a, UD, QUD


@njit(cache=True, fastmath=False, inline="always")
def _deviations_predict(k, tape, t, a, A, UD, P, phi, inv_phi, QUD, x):
    """Tape the filtered state (a_s, A_s, P_s) in row t, then predict it in place.

    a <- Phi a, A <- Phi A, P <- Phi P Phi + Q (on the factor UD). P (k, k), x (k,) scratch.
    """
    _, o_state, o_A, o_P = _offsets(k)
    for i in range(k):  # element writes: row views per step cost more for small k
        tape[t, o_state + i] = a[i]
        for j in range(k):
            aij = A[i, j]
            tape[t, o_A + i * k + j] = aij
            A[i, j] = aij * phi[i]
    covariance(UD, P)
    for i in range(k):
        for j in range(k):
            tape[t, o_P + i * k + j] = P[i, j]
    predict_diagonal(a, UD, phi, inv_phi, QUD, x)


@njit(cache=True, fastmath=False, inline="always")
def _deviations_gain(k, tape, t, A, z, s, F, v, K, V):
    """After `steps.update` (its s = P z, F, v): A <- A + K V, V = z' - z'A, K = s / F.

    V from the predicted A; s, F, v and V are taped in row t. K (k,) scratch. Not one helper
    with the update: inlined as one, they ran ~20% slower (NoDur, k = 5), it seems from numba's
    reference counts of the helper's array arguments, which its pruning left in the loop.
    """
    for i in range(k):
        K[i] = s[i] / F
    for j in range(k):
        acc = z[j]
        for i in range(k):
            acc -= z[i] * A[i, j]
        V[j] = acc
    for i in range(k):
        for j in range(k):
            A[i, j] += K[i] * V[j]
    o_V = _offsets(k)[0]
    for i in range(k):
        tape[t, i] = s[i]
        tape[t, o_V + i] = V[i]
    tape[t, k], tape[t, k + 1] = F, v


@njit(cache=True, fastmath=False, inline="always")
def _deviations_read(k, tape, t, Z, s, z, V):
    """Read row t's s, z (from Z) and V into the buffers; return (F, v)."""
    o_V = _offsets(k)[0]
    for i in range(k):  # element copies: row views per step cost more for small k
        s[i] = tape[t, i]
        z[i] = Z[t, i]
        V[i] = tape[t, o_V + i]
    return tape[t, k], tape[t, k + 1]


@njit(cache=True, fastmath=False, inline="always")
def _deviations_adjoint_start(k, dQ, dR, dphi):
    """Zero the gradients; return the adjoints' buffers, allocated with k.

    abar, Abar, Pbar and Vbar start at zero; Kbar, sbar and Ps are scratch.
    """
    dQ[:] = 0.0
    dR[:] = 0.0
    dphi[:] = 0.0
    zeros = np.zeros(k), np.zeros((k, k)), np.zeros((k, k)), np.zeros(k)
    return (*zeros, np.empty(k), np.empty(k), np.empty(k))


@njit(cache=True, fastmath=False, inline="always")
def _deviations_update_adjoint(k, s, z, V, F, v, fbar, vbar, Vbar, abar, Abar, Pbar, Kbar,
                               sbar, Ps):  # fmt: skip
    """Take an observed step's update backwards; return the adjoint of F (R_t's).

    fbar, vbar and Vbar (k,): the cotangents that reach its F, v and V from the likelihood.
    The columns A share the gain K = s / F, so Kbar = Abar V' joins `gradient.update_adjoint`'s
    and Vbar += K'Abar.
    """
    inv_F = 1.0 / F
    for i in range(k):  # Kbar = Abar V' and Vbar += s'Abar / F in one pass
        acc, si = 0.0, s[i] * inv_F
        for j in range(k):
            acc += Abar[i, j] * V[j]
            Vbar[j] += si * Abar[i, j]
        Kbar[i] = acc
    Fbar, _ = update_adjoint(abar, Pbar, s, F, v, z, fbar, vbar, Kbar, sbar, Ps)
    return Fbar


@njit(cache=True, fastmath=False, inline="always")
def _deviations_predict_adjoint(k, tape, t, z, Vbar, phi, abar, Abar, Pbar, dQ, dphi):
    """Take the update's V = z' - z'A and the prediction from row t's state backwards.

    Abar -= z Vbar' (z = 0 on a missing row); Qbar += Pbar; phibar_i += abar_i a_s,i +
    sum_j Abar_ij A_s,ij + 2 (Pbar Phi P_s)_ii; then abar <- Phi abar, Abar <- Phi Abar,
    Pbar <- Phi Pbar Phi, each adjoint scaled by Phi right after its last use.
    """
    _, o_state, o_A, o_P = _offsets(k)
    for i in range(k):
        phi_i, z_i = phi[i], z[i]  # locals: the stores below may alias them for LLVM
        acc = abar[i] * tape[t, o_state + i]
        abar[i] *= phi_i
        for j in range(k):
            abar_ij = Abar[i, j] - z_i * Vbar[j]
            pbar_ij = Pbar[i, j]
            acc += (abar_ij * tape[t, o_A + i * k + j]  # P_s is exactly symmetric: row i
                    + 2.0 * pbar_ij * phi[j] * tape[t, o_P + i * k + j])
            dQ[i, j] += pbar_ij
            Abar[i, j] = abar_ij * phi_i
            Pbar[i, j] = pbar_ij * phi_i * phi[j]
        dphi[i] += acc


@njit(cache=True, fastmath=False)
def collapsed_tape_kernel(y, Z, phi, Q, R, a0, P0, ll, tape, static_k):
    """Run both filters forward: ll (n,) the one-step terms, tape (n, `collapsed_tape_width`).

    y (n,), Z (n, k), phi (k,) in (0, 1] per period, Q (k, k), R (1 | n,), a0 (k,), P0 (k, k);
    static_k: `filter.constant_k(k)`.
    Tape row t: [s, F, v | V | a_s, A_s (k^2), P_s (k^2) | m, C (k^2), s_mu, F_mu, e]: the
    deviation filter's s = P z, F, v and V (observed rows); the state its prediction starts
    from (a_s, A_s, P_s); the long-run means' filter before its update (m, C), its s, F and
    innovation e (observed rows). Returns the first bad step (F <= 0 or a term -inf) or -1.
    """
    n = Z.shape[0]
    k = Z.shape[1] if static_k is None else len(static_k)
    if k != Z.shape[1]:
        raise ValueError("static_k must have one entry per column of Z: filter.constant_k")
    A, inv_phi, a, UD, QUD = _deviations_start(k, phi, Q, a0, P0)
    m, CUD = np.empty(k), np.empty((k, k))
    for i in range(k):
        m[i] = a0[i]
    udu_factor(P0, CUD, 0.0)
    x, s, s_mu, V = np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    z, P = np.empty(k), np.empty((k, k))
    o_mu = collapsed_sum_width(k)  # the means' filter after the deviations' columns
    o_C = o_mu + k
    first = burn_row(y, 0)
    ll[:first] = 0.0
    for t in range(first, n):
        _deviations_predict(k, tape, t, a, A, UD, P, phi, inv_phi, QUD, x)
        if np.isnan(y[t]):
            ll[t] = 0.0
            continue
        for i in range(k):
            z[i] = Z[t, i]
        v, F, llx = update(a, UD, y[t], z, R[at(t, R.shape[0])], s)
        if not (F > 0.0 and llx > -np.inf):
            return t
        _deviations_gain(k, tape, t, A, z, s, F, v, x, V)
        for i in range(k):
            tape[t, o_mu + i] = m[i]
        covariance(CUD, P)
        for i in range(k):
            for j in range(k):
                tape[t, o_C + i * k + j] = P[i, j]
        e, F_mu, llt = update(m, CUD, v, V, F, s_mu)
        if not (F_mu > 0.0 and llt > -np.inf):
            return t
        for i in range(k):
            tape[t, o_mu + k + k * k + i] = s_mu[i]
        tape[t, o_mu + 2 * k + k * k], tape[t, o_mu + 2 * k + k * k + 1] = F_mu, e
        ll[t] = llt
    return -1


@njit(cache=True, fastmath=False)
def collapsed_adjoint_kernel(y, Z, phi, w, tape, dQ, dR, dphi, static_k):
    """Run back through both filters: the gradient of sum_t w_t ll_t into dQ, dR, dphi.

    dQ (k, k) symmetric, dR (1 | n,) shaped like R, dphi (k,); tape from
    `collapsed_tape_kernel`; static_k: `filter.constant_k(k)`. Reverse mode of the forward
    steps (bars are adjoints):

    long-run means' update (static state m, C; observation v, design V, noise F), as every
    update (`gradient.update_adjoint`): Fbar_mu, ebar from w and (mbar, Cbar); then the
    adjoints it passes to the deviation filter: vbar = ebar, Fbar = Fbar_mu, Vbar = -ebar m +
    Fbar_mu s_mu + C sbar_mu (e = v - V m, F_mu = V s_mu + F, s_mu = C V').

    deviation update (a, A, P; K = s / F), `update_adjoint` with the columns' share of the
    gain's cotangent, Kbar_extra = Abar V': then Rbar_t = Fbar; Vbar += K'Abar;
    Abar -= z Vbar'.

    prediction (a = Phi a_s, A = Phi A_s, P = Phi P_s Phi + Q): Qbar += Pbar;
    phibar_i += abar_i a_s,i + sum_j Abar_ij A_s,ij + 2 (Pbar Phi P_s)_ii; then abar <- Phi abar,
    Abar <- Phi Abar, Pbar <- Phi Pbar Phi.
    """
    n = Z.shape[0]
    k = Z.shape[1] if static_k is None else len(static_k)
    if k != Z.shape[1]:
        raise ValueError("static_k must have one entry per column of Z: filter.constant_k")
    abar, Abar, Pbar, Vbar, Kbar, sbar, Ps = _deviations_adjoint_start(k, dQ, dR, dphi)
    mbar, Cbar = np.zeros(k), np.zeros((k, k))
    no_K = np.zeros(k)  # the long-run means' gain has no other use
    o_mu = collapsed_sum_width(k)  # the means' filter after the deviations' columns
    o_C = o_mu + k
    s, z, V, m, s_mu = np.empty(k), np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    tv_R = dR.shape[0] > 1
    for t in range(n - 1, burn_row(y, 0) - 1, -1):
        if not np.isnan(y[t]):
            wt = w[t]
            F, v = _deviations_read(k, tape, t, Z, s, z, V)
            for i in range(k):
                m[i] = tape[t, o_mu + i]
                s_mu[i] = tape[t, o_mu + k + k * k + i]
            F_mu, e = tape[t, o_mu + 2 * k + k * k], tape[t, o_mu + 2 * k + k * k + 1]
            # the long-run means' update (their state m, C; observation v, design V, noise F)
            f2 = F_mu * F_mu
            fbar_mu, ebar = update_adjoint(
                mbar, Cbar, s_mu, F_mu, e, V, -0.5 * wt * (1.0 / F_mu - e * e / f2),
                -wt * e / F_mu, no_K, sbar, Ps,
            )  # fmt: skip
            for i in range(k):  # e = v - V m, F_mu = V s_mu + F, s_mu = C V'
                acc = -ebar * m[i] + fbar_mu * s_mu[i]
                for j in range(k):
                    acc += tape[t, o_C + i * k + j] * sbar[j]
                Vbar[i] = acc
            dR[t if tv_R else 0] += _deviations_update_adjoint(
                k, s, z, V, F, v, fbar_mu, ebar, Vbar, abar, Abar, Pbar, Kbar, sbar, Ps)
        else:
            z[:] = 0.0  # no update: Abar -= z Vbar' leaves Abar as it is
        _deviations_predict_adjoint(k, tape, t, z, Vbar, phi, abar, Abar, Pbar, dQ, dphi)


@njit(cache=True, fastmath=False)
def _means_marginal(S, b, L, M, N, X, c, out, sign):
    """Return sign * G(S, b), the long-run means integrated out; out (k, k + 1) <- its gradient.

    G(S, b) = log E[exp(b'd - d'S d / 2)] over d = mu - a0 ~ N(0, P0 = L L')
            = -log|N| + |N^-1 L'b|^2 / 2,  N N' = M = I + L'S L (Cholesky; M >= I),
    and dG/dS = -(C + m m') / 2, dG/db = m, where m = L M^-1 L'b and C = L M^-1 L' are the
    posterior mean and covariance of d (de Jong 1991, sec. 3). out = sign * [dG/dS | dG/db].
    S (k, k) symmetric, b (k,), L (k, k); M, N, X (k, k) and c (k,) scratch. NaN when M is
    not positive definite (only a NaN or an overflow makes it so).
    """
    k = b.shape[0]
    for i in range(k):  # X = S L
        for j in range(k):
            acc = 0.0
            for l in range(k):
                acc += S[i, l] * L[l, j]
            X[i, j] = acc
    for i in range(k):  # M = I + L'X, c = L'b
        for j in range(i, k):
            acc = 1.0 if i == j else 0.0
            for l in range(k):
                acc += L[l, i] * X[l, j]
            M[i, j] = acc
            M[j, i] = acc
        acc = 0.0
        for l in range(k):
            acc += L[l, i] * b[l]
        c[i] = acc
    if not cholesky(M, N):
        return np.nan
    log_det = 0.0  # log |N| = log |M| / 2
    for j in range(k):
        log_det += math.log(N[j, j])
    forward_substitute(N, c)  # c <- N^-1 L'b
    quad = 0.0
    for i in range(k):
        quad += c[i] * c[i]
    back_substitute(N, c)  # c <- N'^-1 c = M^-1 L'b
    for j in range(k):  # X <- N^-1 L', so that C = X'X
        for i in range(k):
            X[i, j] = L[j, i]
        forward_substitute(N, X[:, j])
    for i in range(k):  # m = L c
        acc = 0.0
        for l in range(k):
            acc += L[i, l] * c[l]
        out[i, k] = acc
    for i in range(k):
        for j in range(i, k):
            acc = 0.0
            for l in range(k):
                acc += X[l, i] * X[l, j]
            val = -0.5 * sign * (acc + out[i, k] * out[j, k])
            out[i, j] = val
            out[j, i] = val
    for i in range(k):
        out[i, k] *= sign
    return sign * (0.5 * quad - log_det)


@njit(cache=True, fastmath=False)
def collapsed_sum_kernel(y, Z, phi, Q, R, a0, P0, start, tape, post, static_k):
    """Return (sum_{t >= start} ll_t, bad): the deviations' filter, the means in closed form.

    The same sum of one-step terms as `collapsed_tape_kernel`'s from row ``start`` on (the row
    after a burn-in: `arrays.burn_row`; n for none), without the long-run means' filter: with
    u_t = v_t - V_t a0, the terms of rows < tau sum to

        sum_{t < tau} -(log 2 pi F_t + u_t^2 / F_t) / 2 + G(S_tau, b_tau),
        S_tau = sum_{t < tau} V_t'V_t / F_t,  b_tau = sum_{t < tau} V_t' u_t / F_t

    (`_means_marginal`; de Jong 1991's augmented filter, Durbin & Koopman 2012 sec. 5.7), so
    the rows from ``start`` sum to the difference at tau = n and tau = start. Per step this
    costs O(k^2) sums instead of a second filter and its tape. Shapes as
    `collapsed_tape_kernel`; tape (n, `collapsed_sum_width`): its rows' first
    2k^2 + 3k + 2 columns; post (2, k, k + 1) receives [dG/dS | dG/db] at n and minus that at
    ``start``, for `collapsed_sum_adjoint_kernel`. bad: the first bad step (F <= 0 or a term
    -inf), or `MEANS_OVERFLOW` when the steps held but the means' sums overflowed (a0 or the
    data at a scale doubles cannot hold), the value then NaN; else -1.
    """
    n = Z.shape[0]
    k = Z.shape[1] if static_k is None else len(static_k)
    if k != Z.shape[1]:
        raise ValueError("static_k must have one entry per column of Z: filter.constant_k")
    A, inv_phi, a, UD, QUD = _deviations_start(k, phi, Q, a0, P0)
    L = np.zeros((k, k))  # P0 = L L', L = U D^(1/2) from the factor of P0 (PSD: zero columns)
    for i in range(k):
        for j in range(i, k):
            L[i, j] = (UD[i, j] if i < j else 1.0) * math.sqrt(UD[j, j])
    x, s, V = np.empty(k), np.empty(k), np.empty(k)
    z, P = np.empty(k), np.empty((k, k))
    S, b, S_start, b_start = np.zeros((k, k)), np.zeros(k), np.zeros((k, k)), np.zeros(k)
    terms = 0.0  # sum of log 2 pi F_t + u_t^2 / F_t from start on
    for t in range(burn_row(y, 0), n):
        if t == start:
            for i in range(k):
                b_start[i] = b[i]
                for j in range(i, k):
                    S_start[i, j] = S[i, j]
        _deviations_predict(k, tape, t, a, A, UD, P, phi, inv_phi, QUD, x)
        if np.isnan(y[t]):
            continue
        for i in range(k):
            z[i] = Z[t, i]
        v, F, llx = update(a, UD, y[t], z, R[at(t, R.shape[0])], s)
        if not (F > 0.0 and llx > -np.inf):
            return np.nan, t
        _deviations_gain(k, tape, t, A, z, s, F, v, x, V)
        u = v
        for i in range(k):
            u -= V[i] * a0[i]
        inv_F = 1.0 / F
        for i in range(k):
            vi = V[i] * inv_F
            b[i] += vi * u
            for j in range(i, k):
                S[i, j] += vi * V[j]
        if t >= start:
            terms += LOG2PI + math.log(F) + u * u * inv_F
    if start >= n:  # no row from start on: both ends are the whole sample
        S_start[:], b_start[:] = S, b
    for i in range(k):
        for j in range(i):
            S[i, j], S_start[i, j] = S[j, i], S_start[j, i]
    M, N, X, c = np.empty((k, k)), np.zeros((k, k)), np.empty((k, k)), np.empty(k)
    value = -0.5 * terms + _means_marginal(S, b, L, M, N, X, c, post[0], 1.0)
    value += _means_marginal(S_start, b_start, L, M, N, X, c, post[1], -1.0)
    if not np.isfinite(value):  # the filter's steps held, the means' sums did not
        return np.nan, MEANS_OVERFLOW
    return value, -1


@njit(cache=True, fastmath=False)
def collapsed_sum_adjoint_kernel(y, Z, phi, a0, start, tape, post, dQ, dR, dphi, static_k):
    """Run back through the deviations' filter: the gradient of `collapsed_sum_kernel`'s value.

    dQ (k, k) symmetric, dR (1 | n,) shaped like R, dphi (k,); tape and post from
    `collapsed_sum_kernel` with the same ``start``. Each observed row's cotangents of
    F, u = v - V a0 and V: with (Sbar, bbar) = post[0] from ``start`` on and post[0] + post[1]
    before it, and w = 1 from ``start`` on, 0 before,

        ubar = (bbar'V - w u) / F,
        Fbar = -w (1/F - u^2/F^2) / 2 - (V Sbar V' + bbar'V u) / F^2,
        Vbar = (2 Sbar V' + bbar u) / F - ubar a0,  vbar = ubar;

    then the deviations' update and prediction backwards as in `collapsed_adjoint_kernel`.
    """
    n = Z.shape[0]
    k = Z.shape[1] if static_k is None else len(static_k)
    if k != Z.shape[1]:
        raise ValueError("static_k must have one entry per column of Z: filter.constant_k")
    abar, Abar, Pbar, Vbar, Kbar, sbar, Ps = _deviations_adjoint_start(k, dQ, dR, dphi)
    early = np.empty((k, k + 1))  # before start, the rows enter both G's
    for i in range(k):
        for j in range(k + 1):
            early[i, j] = post[0, i, j] + post[1, i, j]
    s, z, V = np.empty(k), np.empty(k), np.empty(k)
    tv_R = dR.shape[0] > 1
    for t in range(n - 1, burn_row(y, 0) - 1, -1):
        if not np.isnan(y[t]):
            F, v = _deviations_read(k, tape, t, Z, s, z, V)
            late = t >= start
            G = post[0] if late else early
            wt = 1.0 if late else 0.0
            u = v
            for i in range(k):
                u -= V[i] * a0[i]
            inv_F = 1.0 / F
            bV, VSV = 0.0, 0.0
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    acc += G[i, j] * V[j]
                Ps[i] = acc  # Sbar V' (Ps is free until the update's adjoint)
                VSV += V[i] * acc
                bV += G[i, k] * V[i]
            ubar = (bV - wt * u) * inv_F
            fbar = -0.5 * wt * (inv_F - u * u * inv_F * inv_F) - (VSV + bV * u) * inv_F * inv_F
            for i in range(k):
                Vbar[i] = (2.0 * Ps[i] + G[i, k] * u) * inv_F - ubar * a0[i]
            dR[t if tv_R else 0] += _deviations_update_adjoint(
                k, s, z, V, F, v, fbar, ubar, Vbar, abar, Abar, Pbar, Kbar, sbar, Ps)
        else:
            z[:] = 0.0  # no update: Abar -= z Vbar' leaves Abar as it is
        _deviations_predict_adjoint(k, tape, t, z, Vbar, phi, abar, Abar, Pbar, dQ, dphi)
