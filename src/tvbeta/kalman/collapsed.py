"""Mean-reverting betas with their long-run means integrated out by a second, k-state filter.

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
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from tvbeta.kalman.arrays import KalmanInputError, burn_row, state_space
from tvbeta.kalman.filter import checked_batch, constant_k, raise_bad_step
from tvbeta.kalman.gradient import term_weights, update_adjoint
from tvbeta.kalman.steps import at, covariance, predict_diagonal, udu_factor, update

__all__ = ["ReversionGradient", "reversion_loglik_terms", "reversion_loglik_vjp"]


class ReversionGradient(NamedTuple):
    """Value and exact gradient of sum_t w_t loglik_t for mean-reverting betas.

    value : float; loglik_t : (n,) the one-step terms (unweighted; 0 where y is missing);
    dQ : (k, k) symmetric; dR : (1 | n,) shaped like R; dphi : (k,).
    """

    value: float
    loglik_t: np.ndarray
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
    k = np.shape(Z)[-1]
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    if phi.shape != (k,) or not np.all((phi > 0.0) & (phi <= 1.0)):
        raise KalmanInputError(f"phi must be {k} persistences in (0, 1], got {phi}")
    # T = diag(phi): the deviations' filter, which `raise_bad_step` re-runs to name a failure
    m = state_space(y, Z, np.diag(phi)[None], np.asarray(Q, dtype=np.float64)[None], R, a0, P0)
    w = term_weights(weights, m.y, burn)
    ll, tape = np.empty(m.n), np.empty((m.n, collapsed_tape_width(m.k)))
    static_k = constant_k(m.k)
    bad = collapsed_tape_kernel(m.y, m.Z, phi, m.Q[0], m.R, m.a0, m.P0, ll, tape, static_k)
    raise_bad_step(bad, m)
    dQ, dR, dphi = np.empty((m.k, m.k)), np.empty_like(m.R), np.empty(m.k)
    collapsed_adjoint_kernel(m.y, m.Z, phi, w, tape, dQ, dR, dphi, static_k)
    return ReversionGradient(float(w @ ll), ll, dQ, dR, dphi)


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
    # allocated with k, not copied: their lengths are then the constant k of a static copy
    A, inv_phi = np.zeros((k, k)), np.empty(k)
    a, m = np.empty(k), np.empty(k)
    for i in range(k):
        inv_phi[i], A[i, i], a[i], m[i] = 1.0 / phi[i], 1.0, a0[i], a0[i]
    UD, QUD, CUD = np.empty((k, k)), np.empty((k, k)), np.empty((k, k))
    udu_factor(P0, UD, 0.0)
    udu_factor(Q, QUD, 0.0)
    udu_factor(P0, CUD, 0.0)
    x, s, s_mu, V = np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    z, P = np.empty(k), np.empty((k, k))
    o_V, o_state, o_mu = k + 2, 2 * k + 2, 2 * k * k + 3 * k + 2
    o_A, o_P, o_C = o_state + k, o_state + k + k * k, o_mu + k
    first = burn_row(y, 0)
    ll[:first] = 0.0
    for t in range(first, n):
        for i in range(k):  # element writes: row views per step cost more for small k
            tape[t, o_state + i] = a[i]
            for j in range(k):
                tape[t, o_A + i * k + j] = A[i, j]
        covariance(UD, P)
        for i in range(k):
            for j in range(k):
                tape[t, o_P + i * k + j] = P[i, j]
        predict_diagonal(a, UD, phi, inv_phi, QUD, x)
        for i in range(k):
            for j in range(k):
                A[i, j] *= phi[i]
        if np.isnan(y[t]):
            ll[t] = 0.0
            continue
        for i in range(k):
            z[i] = Z[t, i]
        for j in range(k):  # V = z' - z'A, from the predicted A
            acc = z[j]
            for i in range(k):
                acc -= z[i] * A[i, j]
            V[j] = acc
        v, F, llx = update(a, UD, y[t], z, R[at(t, R.shape[0])], s)
        if not (F > 0.0 and llx > -np.inf):
            return t
        for i in range(k):
            ki = s[i] / F
            for j in range(k):
                A[i, j] += ki * V[j]
        for i in range(k):
            tape[t, i] = s[i]
            tape[t, o_V + i] = V[i]
            tape[t, o_mu + i] = m[i]
        tape[t, k], tape[t, k + 1] = F, v
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
    dQ[:] = 0.0
    dR[:] = 0.0
    dphi[:] = 0.0
    abar, Abar, Pbar = np.zeros(k), np.zeros((k, k)), np.zeros((k, k))
    mbar, Cbar = np.zeros(k), np.zeros((k, k))
    Kbar, sbar, Vbar, Ps = np.empty(k), np.empty(k), np.zeros(k), np.empty(k)
    no_K = np.zeros(k)  # the long-run means' gain has no other use
    o_V, o_state, o_mu = k + 2, 2 * k + 2, 2 * k * k + 3 * k + 2
    o_A, o_P, o_C = o_state + k, o_state + k + k * k, o_mu + k
    s, z, V, m, s_mu = np.empty(k), np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    tv_R = dR.shape[0] > 1
    for t in range(n - 1, burn_row(y, 0) - 1, -1):
        if not np.isnan(y[t]):
            wt = w[t]
            for i in range(k):  # element copies: row views per step cost more for small k
                s[i] = tape[t, i]
                z[i] = Z[t, i]
                V[i] = tape[t, o_V + i]
                m[i] = tape[t, o_mu + i]
                s_mu[i] = tape[t, o_mu + k + k * k + i]
            F, v = tape[t, k], tape[t, k + 1]
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
            # the deviations' update, with (ebar, Vbar, fbar_mu) passed in; the columns A
            # share its gain K = s / F
            inv_F = 1.0 / F
            for i in range(k):  # Kbar = Abar V' and Vbar += s'Abar / F in one pass
                acc, si = 0.0, s[i] * inv_F
                for j in range(k):
                    acc += Abar[i, j] * V[j]
                    Vbar[j] += si * Abar[i, j]
                Kbar[i] = acc
            Fbar, _ = update_adjoint(abar, Pbar, s, F, v, z, fbar_mu, ebar, Kbar, sbar, Ps)
            dR[t if tv_R else 0] += Fbar
        else:
            z[:] = 0.0  # no update: Abar -= z Vbar' below leaves Abar as it is
        # Abar -= z Vbar' (the update's), then the prediction from the state stored in the row,
        # each adjoint scaled by Phi right after its last use
        for i in range(k):
            acc = abar[i] * tape[t, o_state + i]
            abar[i] *= phi[i]
            for j in range(k):
                abar_ij = Abar[i, j] - z[i] * Vbar[j]
                pbar_ij = Pbar[i, j]
                acc += (abar_ij * tape[t, o_A + i * k + j]
                        + 2.0 * pbar_ij * phi[j] * tape[t, o_P + j * k + i])
                dQ[i, j] += pbar_ij
                Abar[i, j] = abar_ij * phi[i]
                Pbar[i, j] = pbar_ij * phi[i] * phi[j]
            dphi[i] += acc
