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

The state covariance is carried as a factor P = U D U' (U unit upper triangular, D >= 0
diagonal; Bierman 1977, "Factorization Methods for Discrete Sequential Estimation"), not as P.
The textbook update P - s s'/F subtracts nearly equal numbers wherever the prior is near-diffuse
along z (F >> R): on badly scaled regressors (a hedge ratio on price levels, P0 = 1e6 I) it
loses every digit of the posterior, down to F <= 0. Bierman's update and the Agee-Turner
rank-one prediction only add non-negative terms and take ratios of them, so P stays positive
semi-definite, F >= R, and the log-likelihood keeps its digits (tests/kalman/test_hard_inputs.py:
within 1e-10 of a 60-digit run where the textbook form is off by nats).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOG2PI = math.log(2.0 * math.pi)


@njit(cache=True, fastmath=False, inline="always")
def at(t: int, length: int) -> int:
    """Row of a (1 | n, ...) time-varying array used at step t (row 0 when constant)."""
    return min(t, length - 1)


@njit(cache=True, fastmath=False)
def is_random_walk(T) -> bool:
    """Return True when T is one constant identity matrix (the common random-walk betas)."""
    if T.shape[0] != 1:
        return False
    k = T.shape[1]
    for i in range(k):
        for j in range(k):
            if T[0, i, j] != (1.0 if i == j else 0.0):
                return False
    return True


@njit(cache=True, fastmath=False)
def udu_factor(A, UD, shift):
    """UD <- the factor U D U' of A + shift I (A (k, k) symmetric; its upper triangle is read).

    U is unit upper triangular and D diagonal, factored from the last column as in Bierman's
    filter; UD (k, k) holds D on its diagonal, U above it and zeros below. A pivot <= 0 is
    set to 0 with a zero U column (a zero variance, or a rounding-level negative one) and the
    factorisation goes on; a NaN in A spreads to the factor, so a kernel fed one reports it.
    Returns -1 when every pivot is > 0 (or NaN), else the highest index whose pivot was <= 0:
    with shift > 0 that shows that A has an eigenvalue below -shift.
    """
    k = A.shape[0]
    for i in range(k):
        for j in range(k):
            UD[i, j] = A[i, j] if i <= j else 0.0
        UD[i, i] += shift
    first = -1
    for j in range(k - 1, -1, -1):
        d = UD[j, j]
        if d <= 0.0:  # (a NaN goes on, and spreads to every later pivot)
            first = j if first < 0 else first
            for i in range(j + 1):
                UD[i, j] = 0.0
            continue
        for i in range(j):
            UD[i, j] /= d
        for i in range(j):  # Schur complement of the leading block: S -= u d u'
            uid = UD[i, j] * d
            for m in range(i, j):
                UD[i, m] -= uid * UD[m, j]
    return first


@njit(cache=True, fastmath=False, inline="always")
def covariance(UD, P):
    """P <- U D U' (k, k), exactly symmetric, from a factor as left by `udu_factor`."""
    k = P.shape[0]
    for i in range(k):
        for j in range(i, k):
            acc = UD[j, j] * (UD[i, j] if i < j else 1.0)
            for m in range(j + 1, k):
                acc += UD[i, m] * UD[m, m] * UD[j, m]
            P[i, j] = acc
            P[j, i] = acc


@njit(cache=True, fastmath=False, inline="always")
def rank_one_update(UD, c, x, top):
    """UD <- the factor of U D U' + c x x' (c >= 0), in place; x (k,) is overwritten.

    x must be 0 below index `top`. Agee and Turner's (1972) positive rank-one update, as in
    Bierman (1977): column by column from the last, d_m <- d_m + c x_m^2 and the rest of x is
    carried to the columns before. Sums of non-negative terms only, so no digit is lost to
    cancellation whatever the spread of the variances.
    """
    for m in range(top, 0, -1):
        xm = x[m]
        if xm == 0.0:
            continue
        dm = UD[m, m]
        dn = dm + c * xm * xm
        if dn == 0.0:  # c x_m^2 underflowed on a zero variance: nothing to add
            continue
        inv = 1.0 / dn
        b = c * xm * inv
        UD[m, m] = dn
        c *= dm * inv
        for i in range(m):
            xi = x[i] - xm * UD[i, m]
            x[i] = xi
            UD[i, m] += b * xi
        if c == 0.0:
            return
    UD[0, 0] += c * x[0] * x[0]


@njit(cache=True, fastmath=False, inline="always")
def predict_random_walk(UD, QUD, x):
    """Prediction step for T = I, in place: a is unchanged and P <- P + Q, on the factors.

    UD : factor of P (see `udu_factor`); QUD : factor of Q, Q = sum_i q_i g_i g_i' with g_i
    its U columns (g_i is 0 below i and 1 at i), each added by a rank-one update (O(i^2), one
    division, nothing for i = 0 since g_0 = e_0); x (k,) scratch.
    """
    k = UD.shape[0]
    UD[0, 0] += QUD[0, 0]
    for i in range(1, k):
        q = QUD[i, i]
        if q != 0.0:  # column i of `rank_one_update` with x_i = 1, then the columns before it
            d = UD[i, i]
            dn = d + q
            inv = 1.0 / dn
            b = q * inv
            UD[i, i] = dn
            for m in range(i):
                xm = QUD[m, i] - UD[m, i]
                x[m] = xm
                UD[m, i] += b * xm
            rank_one_update(UD, q * d * inv, x, i - 1)


# Smallest |T_jj| for `predict_triangular`: it divides column j of T U by T_jj, so a diagonal
# entry near underflow would overflow U while D underflows; such a T takes `predict`.
MIN_TRIANGULAR_DIAGONAL = 1e-8


@njit(cache=True, fastmath=False)
def is_triangular(T) -> bool:
    """Return True when every T_t (1 | n, k, k) is upper triangular with |T_jj| >= 1e-8.

    Such a T (the random walk's identity, a diagonal of AR coefficients, the mean-reverting
    betas' [[Phi, I - Phi], [0, I]]) keeps the factor's U unit upper triangular under T U, so
    `predict_triangular` needs no re-factorisation.
    """
    for t in range(T.shape[0]):
        for i in range(T.shape[1]):
            if not abs(T[t, i, i]) >= MIN_TRIANGULAR_DIAGONAL:
                return False
            for j in range(i):
                if T[t, i, j] != 0.0:
                    return False
    return True


@njit(cache=True, fastmath=False, inline="always")
def predict_triangular(a, UD, T, QUD, x):
    """Prediction step for an upper triangular T (`is_triangular`), in place, on the factors.

    a <- T a, and T P T' = (T U E^-1) (E D E) (T U E^-1)' with E = diag(T): T U E^-1 is again
    unit upper triangular, so the factor of T P T' is U's columns mixed by T's nonzero entries
    and rescaled, and d_j <- T_jj^2 d_j (O(k^2 nnz / k) instead of `predict`'s k rank-one
    updates); Q is then added as `predict_random_walk` adds it, where a Q that is zero past
    its leading block (the long-run means of mean-reverting betas do not move) costs only
    that block. Zero entries of T are skipped. x (k,) scratch.
    """
    k = a.shape[0]
    for i in range(k):  # ascending: row i reads only rows >= i, not yet overwritten
        acc = T[i, i] * a[i]
        for j in range(i + 1, k):
            tij = T[i, j]
            if tij != 0.0:
                acc += tij * a[j]
        a[i] = acc
        tii = T[i, i]
        for j in range(i + 1, k):  # x_j = (T U)_ij
            x[j] = tii * UD[i, j] + T[i, j]
        for m in range(i + 1, k):
            tim = T[i, m]
            if tim != 0.0:
                for j in range(m + 1, k):
                    x[j] += tim * UD[m, j]
        for j in range(i + 1, k):
            UD[i, j] = x[j] / T[j, j]
    for j in range(k):
        UD[j, j] *= T[j, j] * T[j, j]
    predict_random_walk(UD, QUD, x)


@njit(cache=True, fastmath=False, inline="always")
def predict_diagonal(a, UD, phi, inv_phi, QUD, x):
    """`predict_triangular` for T = diag(phi), in place: a <- phi a, P <- Phi P Phi + Q.

    The factor's U_ij (i < j) is scaled by phi_i / phi_j and d_j by phi_j^2, with inv_phi
    (k,) = 1 / phi computed once by the caller (the triangular step divides every column by
    T_jj at every step); then Q is added as `predict_random_walk` adds it. x (k,) scratch.
    """
    k = a.shape[0]
    for i in range(k):
        a[i] *= phi[i]
        for j in range(i + 1, k):
            UD[i, j] *= phi[i] * inv_phi[j]
        UD[i, i] *= phi[i] * phi[i]
    predict_random_walk(UD, QUD, x)


@njit(cache=True, fastmath=False, inline="always")
def predict(a, UD, T, QUD, tmp_a, W, x):
    """Prediction step (DK 4.3.1), in place: a <- T a, P <- T P T' + Q, on the factors.

    a : (k,) and UD (the factor of P, see `udu_factor`) filtered at t-1 on entry, predicted
    at t on exit; T (k, k); QUD the factor of Q. P_{t|t-1} = Q + sum_m d_m (T u_m)(T u_m)' is
    built from Q's factor by k rank-one updates (Thornton's weighted Gram-Schmidt would do the
    same O(k^3) work; the updates reuse one routine). tmp_a, x (k,) and W (k, k) scratch.
    Kernels call `predict_random_walk` instead when `is_random_walk(T)`, `predict_triangular`
    when `is_triangular(T)`.
    """
    k = a.shape[0]
    for i in range(k):
        acc = 0.0
        for j in range(k):
            acc += T[i, j] * a[j]
        tmp_a[i] = acc
    for i in range(k):  # W = T U (U unit upper triangular); zero entries of T skipped
        for m in range(k):
            acc = T[i, m]
            for l in range(m):
                til = T[i, l]
                if til != 0.0:
                    acc += til * UD[l, m]
            W[i, m] = acc
    for i in range(k):
        a[i] = tmp_a[i]
        tmp_a[i] = UD[i, i]  # the old variances d_m
        for j in range(k):
            UD[i, j] = QUD[i, j]
    for m in range(k):
        if tmp_a[m] != 0.0:
            for i in range(k):
                x[i] = W[i, m]
            rank_one_update(UD, tmp_a[m], x, k - 1)


@njit(cache=True, fastmath=False, inline="always")
def update(a, UD, y, z, r, s):
    """Update a and the factor UD of P in place for a scalar observation: (v, F, loglik_t).

    v = y - z'a, F = z'P z + r, s = P z, K = s / F, a <- a + K v, P <- P - s s' / F, and
    loglik_t = -(log 2 pi + log F + v^2 / F) / 2; the same F serves the update and the
    likelihood. P's factor is updated by Bierman's (1977) algorithm: with f = U'z, F
    accumulates r + sum_j d_j f_j^2 and each d_j is rescaled by a ratio of these partial sums,
    so F >= r, P stays positive semi-definite, and the variances of well-observed directions
    keep their digits even when the prior is near-diffuse (the textbook P - s s'/F cancels
    them away, down to F <= 0). s (k,) receives P z = F K. When F = 0 (r = 0 and z'P z = 0)
    nothing has changed and nothing is divided by it, for the caller to report; a NaN F
    (unchecked input) leaves a and UD undefined.
    """
    k = a.shape[0]
    v = y
    for i in range(k):
        v -= z[i] * a[i]
    alpha = r  # r + sum_{i<j} d_i f_i^2
    inv = 0.0  # 1 / alpha once alpha > 0 (lambda below is only used then)
    for j in range(k):
        f = z[j]
        for i in range(j):
            f += UD[i, j] * z[i]
        d = UD[j, j]
        g = d * f
        s[j] = g
        alpha_j = alpha + f * g
        if g == 0.0 or alpha_j == 0.0:  # nothing learnt on this column: a zero variance, z
            continue  # orthogonal to it, or d f^2 underflowing while alpha is still 0
        inv_j = 1.0 / alpha_j
        UD[j, j] = d * alpha * inv_j
        lam = -f * inv
        for i in range(j):
            u = UD[i, j]
            UD[i, j] = u + s[i] * lam
            s[i] += u * g
        alpha, inv = alpha_j, inv_j
    F = alpha
    if not F > 0.0:
        return v, F, 0.0
    vf = v * inv if alpha != r else v / F  # inv = 1 / F unless no column took information
    for i in range(k):
        a[i] += s[i] * vf
    return v, F, -0.5 * (LOG2PI + math.log(F) + v * vf)


@njit(cache=True, fastmath=False, inline="always")
def cholesky(A, L) -> bool:
    """L <- the lower Cholesky factor of A (k, k; its lower triangle read); False if A is not PD.

    L's upper triangle is left as it was. On False (a pivot <= 0 or NaN) L is partly written.
    """
    k = A.shape[0]
    for j in range(k):
        d = A[j, j]
        for l in range(j):
            d -= L[j, l] * L[j, l]
        if not d > 0.0:
            return False
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, k):
            acc = A[i, j]
            for l in range(j):
                acc -= L[i, l] * L[j, l]
            L[i, j] = acc / L[j, j]
    return True


@njit(cache=True, fastmath=False, inline="always")
def forward_substitute(L, x):
    """Overwrite x with L^-1 x; L (k, k) lower triangular (`cholesky`'s), x (k,)."""
    for i in range(x.shape[0]):
        acc = x[i]
        for l in range(i):
            acc -= L[i, l] * x[l]
        x[i] = acc / L[i, i]


@njit(cache=True, fastmath=False, inline="always")
def back_substitute(L, x):
    """Overwrite x with L'^-1 x; L (k, k) lower triangular (`cholesky`'s), x (k,)."""
    for i in range(x.shape[0] - 1, -1, -1):
        acc = x[i]
        for l in range(i + 1, x.shape[0]):
            acc -= L[l, i] * x[l]
        x[i] = acc / L[i, i]


@njit(cache=True, fastmath=False)
def rts_step(a_f, P_f, a_p_next, P_p_next, a_s_next, P_s_next, T_next, a_out, P_out, J, tmp):
    """Take one backward step of the RTS smoother (DK 4.4.5); False if P_{t+1|t} is not PD.

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
    if not cholesky(P_p_next, L):
        return False
    for c in range(k):  # forward then back substitution, column by column
        forward_substitute(L, tmp[:, c])
        back_substitute(L, tmp[:, c])
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
