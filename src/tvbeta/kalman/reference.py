"""Plain-numpy reference of the kernels' steps, written for clarity, not speed.

The tests check the compiled kernels against these functions (and both against statsmodels and
a dense joint-Gaussian solve). Shapes as in `tvbeta.kalman.kalman_filter`. The textbook
covariance form is used here on purpose: it is independent of the kernels' factored form.
`loglik_decimal` runs the same recursion in 60-digit decimal arithmetic, the exact value both
double-precision implementations (tvbeta's and statsmodels') are measured against.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import numpy as np

from tvbeta.kalman.arrays import burn_row
from tvbeta.kalman.filter import FilterOutput
from tvbeta.kalman.smoother import SmootherOutput


def predict(a: np.ndarray, P: np.ndarray, T: np.ndarray, Q: np.ndarray):
    """a_{t|t-1} = T a_{t-1|t-1}; P_{t|t-1} = T P T' + Q."""
    return T @ a, T @ P @ T.T + Q


def update(a: np.ndarray, P: np.ndarray, y: float, z: np.ndarray, r: float):
    """Return (a_{t|t}, P_{t|t}, v, F, K, loglik_t) for one scalar observation."""
    v = y - z @ a
    F = z @ P @ z + r
    K = P @ z / F
    a_f = a + K * v
    P_f = (np.eye(len(a)) - np.outer(K, z)) @ P
    ll = -0.5 * (np.log(2 * np.pi) + np.log(F) + v**2 / F)
    return a_f, 0.5 * (P_f + P_f.T), v, F, K, ll


def _row(x: np.ndarray, t: int) -> np.ndarray:
    return x[t] if x.shape[0] > 1 else x[0]


def kalman_filter(y, Z, T, Q, R, a0, P0) -> FilterOutput:
    """Rows before the first observed y are not part of the model: NaN moments, K = 0."""
    n, k = Z.shape
    a, P = np.asarray(a0, float), np.asarray(P0, float)
    out = {name: [] for name in FilterOutput._fields[:-1]}
    first = burn_row(np.asarray(y, float), 0)
    nan_a, nan_P = np.full(k, np.nan), np.full((k, k), np.nan)
    for _ in range(first):
        leading = (nan_a, nan_P, nan_a, nan_P, np.nan, np.nan, np.zeros(k), 0.0)
        for name, val in zip(out, leading, strict=True):
            out[name].append(val)
    for t in range(first, n):
        ap, Pp = predict(a, P, _row(T, t), _row(Q, t))
        if np.isnan(y[t]):
            a, P, v, F, K, ll = ap, Pp, np.nan, np.nan, np.zeros(k), 0.0
        else:
            a, P, v, F, K, ll = update(ap, Pp, y[t], Z[t], _row(R, t))
        for name, val in zip(out, (ap, Pp, a, P, v, F, K, ll), strict=True):
            out[name].append(val)
    arrays = {name: np.array(vals) for name, vals in out.items()}
    return FilterOutput(**arrays, loglik=float(arrays["loglik_t"].sum()))


def rts_smoother(y, Z, T, Q, R, a0, P0) -> SmootherOutput:
    """Rauch-Tung-Striebel: J_t = P_{t|t} T_{t+1}' P_{t+1|t}^{-1} (by a solve)."""
    f = kalman_filter(y, Z, T, Q, R, a0, P0)
    n = Z.shape[0]
    a_s, P_s = f.a_filt.copy(), f.P_filt.copy()
    for t in range(n - 2, burn_row(np.asarray(y, float), 0) - 1, -1):
        Tn = _row(T, t + 1)
        J = np.linalg.solve(f.P_pred[t + 1], Tn @ f.P_filt[t]).T
        a_s[t] = f.a_filt[t] + J @ (a_s[t + 1] - f.a_pred[t + 1])
        P_s[t] = f.P_filt[t] + J @ (P_s[t + 1] - f.P_pred[t + 1]) @ J.T
    return SmootherOutput(f, a_s, P_s)


#: pi to 80 significant digits, for log(2 pi) in `loglik_decimal`
_PI = Decimal(
    "3.1415926535897932384626433832795028841971693993751058209749445923078164062862090"
)


def loglik_decimal(y, Z, T, Q, R, a0, P0, burn: int = 0, digits: int = 60) -> float:
    """Return the filter's log-likelihood in ``digits``-digit decimal arithmetic.

    The sum of log p(y_t | y_{<t}) (nats) after the first ``burn`` observed steps (the model
    starting at the first observed step, as the kernels do), rounded to the nearest float.

    The textbook recursion (predict a <- T a, P <- T P T' + Q; then F = z'P z + R,
    K = P z / F, a <- a + K v, P <- P - K z'P), on the exact binary values of the inputs.
    With 60 digits the cancellations of a near-diffuse prior (up to ~20 digits when F / R ~
    1e18) still leave ~40, so the result is exact to the last bit of a float. Slow (about 1 ms
    per step for k = 3): for tests and cross-checks. Shapes as in `kalman_filter`.

    Raises
    ------
    ValueError
        If digits > 75 (log 2 pi is known here to 80 digits) or some F_t <= 0.
    """
    if digits > 75:
        raise ValueError(f"digits must be <= 75 (log 2 pi is stored to 80), got {digits}")
    y, Z = np.asarray(y, dtype=float), np.asarray(Z, dtype=float)
    T, Q = np.asarray(T, dtype=float), np.asarray(Q, dtype=float)
    R = np.asarray(R, dtype=float)
    with decimal.localcontext() as ctx:
        ctx.prec = digits

        def dec(x: np.ndarray) -> np.ndarray:  # exact: a float is a finite binary fraction
            return np.vectorize(lambda v: Decimal(float(v)), otypes=[object])(x)

        log2pi = (2 * _PI).ln()
        a, P = dec(np.asarray(a0, dtype=float)), dec(np.asarray(P0, dtype=float))
        total = Decimal(0)
        seen = 0  # observed steps so far
        for t in range(burn_row(y, 0), Z.shape[0]):
            Tt, Qt = dec(_row(T, t)), dec(_row(Q, t))
            a, P = Tt @ a, Tt @ P @ Tt.T + Qt
            if np.isnan(y[t]):
                continue
            z = dec(Z[t])
            Pz = P @ z
            F = z @ Pz + Decimal(float(_row(R, t)))
            if not F > 0:
                raise ValueError(f"F_t = {F} <= 0 at step {t}")
            v = Decimal(float(y[t])) - z @ a
            a = a + Pz * (v / F)
            P = P - np.outer(Pz, Pz) / F
            if seen >= burn:
                total += -(log2pi + F.ln() + v * v / F) / 2
            seen += 1
        return float(total)
