"""Per-step Kalman math as small numba functions over plain float64 arrays.

Notation follows Durbin & Koopman (2012, "DK"), with tvbeta's timing: the state moves first and
is then observed,

    alpha_t = T_t alpha_{t-1} + eta_t,   eta_t ~ N(0, Q_t)
    y_t     = z_t' alpha_t + eps_t,      eps_t ~ N(0, R_t),

starting from alpha_{-1} ~ N(a0, P0). So the first predicted state is (T_0 a0, T_0 P0 T_0' + Q_0),
as in the seed. DK's T_t (which moves alpha_t to alpha_{t+1}) is tvbeta's T_{t+1}.

Every function writes into caller-owned output arrays instead of allocating: the filter,
the likelihood, the gradient and both smoothers are loops over these same steps, and per-step
allocation would dominate the cost for the small state dimensions of factor models (k <= 10).
The time-varying matrices (T, Q, R) carry a leading time axis of length 1 (constant) or n;
`at(t, m)` picks the row for step t.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOG2PI = math.log(2.0 * math.pi)


@njit(cache=True, inline="always")
def at(t: int, length: int) -> int:
    """Row of a (1 | n, ...) time-varying array used at step t (row 0 when constant)."""
    return min(t, length - 1)


@njit(cache=True)
def is_random_walk(T) -> bool:
    """True when T is one constant identity matrix (the common random-walk betas)."""
    if T.shape[0] != 1:
        return False
    k = T.shape[1]
    for i in range(k):
        for j in range(k):
            if T[0, i, j] != (1.0 if i == j else 0.0):
                return False
    return True


@njit(cache=True, inline="always")
def predict_random_walk(P, Q):
    """Prediction step for T = I, in place: a is unchanged and P <- P + Q (Q symmetric)."""
    k = P.shape[0]
    for i in range(k):
        for j in range(k):
            P[i, j] += Q[i, j]


@njit(cache=True, inline="always")
def predict(a, P, T, Q, tmp_a, tmp_P):
    """Prediction step (DK 4.3.1), in place: a <- T a, P <- T P T' + Q.

    a : (k,), P : (k, k) filtered at t-1 on entry, predicted at t on exit; T, Q : (k, k)
    with Q symmetric (the checked inputs guarantee it); tmp_a (k,), tmp_P (k, k) scratch.
    P stays exactly symmetric (filled from its upper triangle). The state is updated in place
    because swapping output buffers stops LLVM from keeping it in registers (2-3x slower for
    k <= 4); kernels call `predict_random_walk` instead when `is_random_walk(T)`.
    """
    k = a.shape[0]
    for i in range(k):
        acc = 0.0
        for j in range(k):
            acc += T[i, j] * a[j]
        tmp_a[i] = acc
    for i in range(k):
        for j in range(i, k):
            acc = 0.0
            for m in range(k):
                tim = T[i, m]
                if tim == 0.0:
                    continue
                inner = 0.0
                for l in range(k):
                    inner += P[m, l] * T[j, l]
                acc += tim * inner
            tmp_P[i, j] = acc + Q[i, j]
    for i in range(k):
        a[i] = tmp_a[i]
        for j in range(i, k):
            P[i, j] = tmp_P[i, j]
            P[j, i] = tmp_P[i, j]


@njit(cache=True, inline="always")
def update(a, P, y, z, r, s):
    """Update step (DK 4.3.1) for a scalar observation, in place; returns (v, F, loglik_t).

    v = y - z'a, s = P z, F = z's + r, K = s / F, a <- a + K v, P <- P - s s' / F,
    loglik_t = -(log 2 pi + log F + v^2 / F) / 2. The same F serves the update and the
    likelihood. s (k,) receives P_{t|t-1} z = F K. When F <= 0 (or NaN) nothing is divided by
    it and (a, P) are left predicted, for the caller to report.
    """
    k = a.shape[0]
    v = y
    F = r
    for i in range(k):
        acc = 0.0
        for j in range(k):
            acc += P[i, j] * z[j]
        s[i] = acc
        F += z[i] * acc
        v -= z[i] * a[i]
    if not F > 0.0:
        return v, F, 0.0
    vf = v / F
    for i in range(k):
        a[i] += s[i] * vf
        si = s[i] / F
        for j in range(i, k):
            val = P[i, j] - si * s[j]
            P[i, j] = val
            P[j, i] = val
    return v, F, -0.5 * (LOG2PI + math.log(F) + v * vf)


@njit(cache=True)
def rts_step(a_f, P_f, a_p_next, P_p_next, a_s_next, P_s_next, T_next, a_out, P_out, J, tmp):
    """One backward step of the Rauch-Tung-Striebel smoother (DK 4.4.5); returns False when
    P_{t+1|t} is not positive definite (nothing written then).

        J = P_{t|t} T_{t+1}' P_{t+1|t}^{-1}            (a Cholesky solve, no inverse)
        a_{t|n} = a_{t|t} + J (a_{t+1|n} - a_{t+1|t})
        P_{t|n} = P_{t|t} + J (P_{t+1|n} - P_{t+1|t}) J'

    Chosen over the inverse-free r/N recursion because it adds a small correction to the
    filtered covariance instead of subtracting two large numbers: with a near-diffuse prior
    (the seed's 1e6 intercept variance) the r/N form loses every digit of P_{0|n}.
    J, tmp : (k, k) scratch.
    """
    k = a_f.shape[0]
    # J' solves P_{t+1|t} J' = T_{t+1} P_{t|t} (P symmetric)
    for i in range(k):
        for j in range(k):
            acc = 0.0
            for l in range(k):
                acc += T_next[i, l] * P_f[l, j]
            tmp[i, j] = acc
    L = np.zeros((k, k))
    for j in range(k):
        d = P_p_next[j, j]
        for l in range(j):
            d -= L[j, l] * L[j, l]
        if not d > 0.0:
            return False
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, k):
            acc = P_p_next[i, j]
            for l in range(j):
                acc -= L[i, l] * L[j, l]
            L[i, j] = acc / L[j, j]
    for c in range(k):  # forward then back substitution, column by column
        for i in range(k):
            acc = tmp[i, c]
            for l in range(i):
                acc -= L[i, l] * tmp[l, c]
            tmp[i, c] = acc / L[i, i]
        for i in range(k - 1, -1, -1):
            acc = tmp[i, c]
            for l in range(i + 1, k):
                acc -= L[l, i] * tmp[l, c]
            tmp[i, c] = acc / L[i, i]
    for i in range(k):
        for j in range(k):
            J[i, j] = tmp[j, i]
    for i in range(k):
        acc = a_f[i]
        for j in range(k):
            acc += J[i, j] * (a_s_next[j] - a_p_next[j])
        a_out[i] = acc
    for i in range(k):  # tmp = J (P_s - P_p)
        for j in range(k):
            acc = 0.0
            for l in range(k):
                acc += J[i, l] * (P_s_next[l, j] - P_p_next[l, j])
            tmp[i, j] = acc
    for i in range(k):
        for j in range(i, k):
            acc = P_f[i, j]
            for l in range(k):
                acc += tmp[i, l] * J[j, l]
            P_out[i, j] = acc
            P_out[j, i] = acc
    return True
