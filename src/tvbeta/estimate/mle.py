"""Joint maximum likelihood of Q (diagonal, or full through a Cholesky factor) and R.

L-BFGS-B works on log variances (diagonal Q, R) or a Cholesky factor with a log diagonal (full
Q); the objective and its exact gradient come from one call of the adjoint kernel
(`tvbeta.kalman.gradient`), about two filter passes. Standard errors come from the observed
information in the natural parameters, by central differences of the exact gradient.
Every search runs with BLAS on one thread (`_one_blas_thread`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from tvbeta._warn import warn_caller
from tvbeta.constants import BETAS, INTERCEPT, STATE, default_burn
from tvbeta.data.validate import (
    Design,
    closest,
    column_list,
    format_span,
    prepare_designs,
    warn_if_not_decimal,
)
from tvbeta.estimate.lbfgsb import minimize_lbfgsb
from tvbeta.kalman import StateSpace, kalman_loglik, loglik_batch
from tvbeta.kalman.arrays import KalmanNumericalError, burn_row
from tvbeta.kalman.collapsed import reversion_loglik_grad
from tvbeta.kalman.filter import raise_bad_step, sweep_constant
from tvbeta.kalman.gradient import loglik_vjp_kernel
from tvbeta.model import (
    KalmanEngine,
    KalmanSpec,
    Parameters,
    QForm,
    StateSpaceModel,
    TimeVarying,
    check_q_form,
    reversion,
)
from tvbeta.model import heuristics as hx
from tvbeta.model.engine import check_states
from tvbeta.model.volatility import VolatilityIndex, scaled_noise
from tvbeta.results import KalmanResult


class MLEConvergenceWarning(UserWarning):
    """The optimiser did not converge, or an estimate sits on a bound."""


@dataclass(frozen=True)
class QRParameterization:
    """Maps the unconstrained vector theta to (Q, R) and gradients back; k states."""

    k: int
    q: QForm

    def __post_init__(self) -> None:
        """Refuse an unknown Q form (ValueError, by `check_q_form`)."""
        check_q_form(self.q)

    @property
    def n_params(self) -> int:
        """Return the number of parameters: Q's free entries (diagonal or lower triangle) + R."""
        return (self.k if self.q == "diag" else self.k * (self.k + 1) // 2) + 1

    @property
    def variances(self) -> np.ndarray:
        """Return the positions (k,) of the state variances (Q's diagonal) in theta's order."""
        return (np.arange(self.k) if self.q == "diag" else
                np.flatnonzero(np.equal(*np.tril_indices(self.k))))  # fmt: skip

    def natural_names(self, state_names: tuple[str, ...]) -> list[str]:
        """Names of the natural parameters: Q entries (variances, covariances) then R."""
        if self.q == "diag":
            return [f"Q[{s}]" for s in state_names] + ["R"]
        rows, cols = np.tril_indices(self.k)
        pairs = zip(rows, cols, strict=True)
        return [f"Q[{state_names[i]},{state_names[j]}]" for i, j in pairs] + ["R"]

    def to_qr(self, theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
        """Map theta to (Q (k, k), R, L), where L is the Cholesky factor for a full Q."""
        if self.q == "diag":
            return np.diag(np.exp(theta[: self.k])), float(np.exp(theta[-1])), None
        L = np.zeros((self.k, self.k))
        L[np.tril_indices(self.k)] = theta[:-1]
        L[np.diag_indices(self.k)] = np.exp(np.diag(L))
        return L @ L.T, float(np.exp(theta[-1])), L

    def from_qr(self, Q: np.ndarray, R: float) -> np.ndarray:
        """(Q, R) -> theta; Q must be positive definite for the full form."""
        if self.q == "diag":
            return np.log(np.r_[np.diag(Q), R])
        L = np.linalg.cholesky(Q)
        L[np.diag_indices(self.k)] = np.log(np.diag(L))
        return np.r_[L[np.tril_indices(self.k)], np.log(R)]

    def chain(self, theta: np.ndarray, dQ: np.ndarray, dR: float) -> np.ndarray:
        """Gradient in theta from the symmetric gradient dQ (k, k) and dR."""
        if self.q == "diag":  # d exp(theta) / d theta = the variances; np.r_ costs more
            return np.append(dQ.diagonal(), dR) * np.exp(theta)
        _, R, L = self.to_qr(theta)
        dL = 2.0 * dQ @ L
        dL[np.diag_indices(self.k)] *= np.diag(L)
        return np.append(dL[np.tril_indices(self.k)], dR * R)

    def unit(self, var_scale: np.ndarray) -> np.ndarray:
        """Return the (n_params,) units of theta: 1 for a log-variance, sqrt(var_scale[i]).

        The latter for an off-diagonal Cholesky entry L_ij, sized like state i's sd;
        var_scale : (k,) the scale of each state's variance.
        """
        if self.q == "diag":
            return np.ones(self.n_params)
        rows, cols = np.tril_indices(self.k)
        return np.r_[np.where(rows == cols, 1.0, np.sqrt(var_scale[rows])), 1.0]

    def natural(self, theta: np.ndarray) -> np.ndarray:
        """Return the natural parameters: the lower triangle (or diagonal) of Q, then R."""
        Q, R, _ = self.to_qr(theta)
        q = np.diag(Q) if self.q == "diag" else Q[np.tril_indices(self.k)]
        return np.r_[q, R]

    def natural_to_qr(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        """Map natural parameters (`natural`'s order) back to (Q (k, k), R)."""
        if self.q == "diag":
            return np.diag(nat[:-1]), float(nat[-1])
        Q = np.zeros((self.k, self.k))
        Q[np.tril_indices(self.k)] = nat[:-1]
        return Q + np.tril(Q, -1).T, float(nat[-1])

    def natural_scale(self, nat: np.ndarray) -> np.ndarray:
        """Return each natural parameter's step scale: a variance, or sqrt(Q_ii Q_jj).

        A relative step stays inside the PSD cone, whatever the units.
        """
        Q, R = self.natural_to_qr(nat)
        if self.q == "diag":
            return np.r_[np.diag(Q), R]
        sd = np.sqrt(np.diag(Q))
        return np.r_[np.outer(sd, sd)[np.tril_indices(self.k)], R]

    def natural_gradient(self, dQ: np.ndarray, dR: float) -> np.ndarray:
        """Gradient in the natural parameters (an off-diagonal entry moves Q_ij and Q_ji)."""
        if self.q == "diag":
            return np.r_[np.diag(dQ), dR]
        G = 2.0 * dQ - np.diag(np.diag(dQ))
        return np.r_[G[np.tril_indices(self.k)], dR]


class LoglikGrad:
    """Compute (sum_t w_t loglik_t, dQ (k, k), dR) at constant Q and R (or R_t = R r_scale_t).

    Buffers are reused across calls (allocating would cost as much as the kernel for small n k).
    ``r_scale`` (n,), settable between calls: R_t = R r_scale_t (a volatility-scaled R); dR is
    then sum_t dR_t r_scale_t, and ``dR`` keeps the per-step dR_t of the last call.
    """

    def __init__(self, m: StateSpace, weights: np.ndarray, r_scale: np.ndarray | None = None):
        n, k = m.n, m.k
        self.m, self.w, self.r_scale = m, weights, r_scale
        r = 1 if r_scale is None else n
        self.Q, self.R = np.zeros((1, k, k)), np.empty(r)
        self.ll, self.dQ, self.dR = np.empty(n), np.empty((1, k, k)), np.empty(r)
        self.da0, self.dP0 = np.empty(k), np.empty((k, k))
        self.static_k = sweep_constant(m.T, k)

    def __call__(self, Q: np.ndarray, R: float) -> tuple[float, np.ndarray, float]:
        """Return (sum_t w_t loglik_t, dQ (k, k), dR) at Q (k, k) and R.

        Raises
        ------
        KalmanNumericalError
            When a step fails (F_t = 0, or a term overflows).
        """
        m = self.m
        self.Q[0] = Q
        self.R[:] = R if self.r_scale is None else R * self.r_scale
        bad = loglik_vjp_kernel(m.y, m.Z, m.T, self.Q, self.R, m.a0, m.P0, self.w,
                                self.ll, self.dQ, self.dR, self.da0, self.dP0, self.static_k)
        if bad >= 0:
            raise_bad_step(bad, m._replace(Q=self.Q, R=self.R))
        dR = self.dR[0] if self.r_scale is None else self.dR @ self.r_scale
        return float(self.w @ self.ll), self.dQ[0].copy(), float(dR)


@dataclass(frozen=True)
class MLEResult:
    """Joint MLE on arrays: natural parameters with standard errors, llf, optimiser report."""

    names: list[str]
    params: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    Q: np.ndarray
    R: float
    llf: float
    n_obs: int
    converged: bool
    message: str
    on_bound: list[str]
    n_starts: int

    @property
    def aic(self) -> float:
        """Return Akaike's information criterion, -2 llf + 2 (number of parameters)."""
        return -2.0 * self.llf + 2.0 * len(self.params)

    @property
    def bic(self) -> float:
        """Return the Bayesian information criterion, -2 llf + log(n_obs) (number of params)."""
        return -2.0 * self.llf + np.log(self.n_obs) * len(self.params)


#: Where the filter fails (some F_t <= 0: at tiny variances the covariance update can lose
#: every digit) the objective is this much (nats per observation) above its start value, with a
#: zero gradient: never accepted, and near enough for the line search to backtrack. With +inf
#: its interpolation puts the next trial next to the last iterate, and it stops there
#: reporting convergence.
_FAILED_MARGIN = 1.0

#: Stationarity: the projected gradient per unit log-variance is below this times sqrt(n), so a
#: Newton step (information about n / 2) would gain less than 0.1^2 = 0.01 nats.
_STATIONARY = 0.1

#: L-BFGS-B's ftol, times the number of terms: it stops when an iteration lowers the mean
#: log-likelihood by less than this relative amount, i.e. gains less than ~1e-9 |llf| nats.
#: scipy's default (2.2e-9, ~1e-6 nats an iteration at n = 500) stopped the slow climbs of 27%
#: of the simulated funds of `bench.funds` 1e-6 .. 2e-3 nats short of the maximum
#: (scripts/mle_reference.py). It costs ~35% more objective calls, ~10-25% more time per
#: fund of `fit_mle_funds` (measured on 300 of those funds).
_FTOL_TERMS = 1e-9

#: `_Search._drop_to_zero` climbs from a drift variance set to 0 when that point is at most this
#: many nats below the end: the other variances then re-adjust, which gained 0.006 .. 0.05
#: nats where the drop led to a higher peak (simulated funds of `bench.funds`).
_DROP_MARGIN = 0.5

#: `_Search.climb` runs L-BFGS-B again from an end whose projected gradient per unit
#: log-variance exceeds this times sqrt(n): a Newton step could still gain ~1e-6 nats or more.
#: Snapping variances near 0 to their bound can leave R rising: 0.002 and 0.004 nats short of
#: the peak (projected gradient ~0.05 sqrt(n)) in simulated funds of the tests (seeds 399, 813),
#: which a second start happened to reach before. The ends of 300 simulated funds of
#: `bench.funds` lie below 1.1e-4 sqrt(n): the second run is rare.
_SETTLED = 1e-3

#: `_Search._raise_from_zero` probes a drift variance at 0 at 1e-4 and 1e-3 of its scale and
#: climbs from the best probe when it is at most this many nats below the end. It replaces the
#: second start for an end whose only bounds are drift variances at 0: that start rescued 3 of
#: 1,000 simulated funds of `bench.funds` (0.01 .. 0.32 nats), whose best probes lie 0.04 and
#: 0.05 nats below the end or above it, and cost ~32 of the ~88 objective calls per fund. With
#: margins 0.1, 0.2, 0.5 the funds end as with the second start (scripts/mle_reference.py), at
#: 60, 62, 70 calls per fund (more probes climbed from in vain; 0.1 and 0.5 also probed 1e-2).
_RAISE_MARGIN = 0.2


def _observed_information(par: QRParameterization, f: LoglikGrad, nat: np.ndarray,
                          free: np.ndarray) -> np.ndarray:
    """Hessian of -loglik in the natural parameters by central differences of the exact gradient.

    Only the ``free`` parameters (boolean mask) are differenced, the others' rows and columns
    are NaN: a variance on its lower bound is ~0, and a step below it leaves the PSD cone.
    """
    p, scale = nat.size, par.natural_scale(nat)
    H = np.full((p, p), np.nan)
    for i in np.flatnonzero(free):
        h = 1e-4 * scale[i]
        grads = []
        for sgn in (1.0, -1.0):
            x = nat.copy()
            x[i] += sgn * h
            Q, R = par.natural_to_qr(x)
            _, dQ, dR = f(Q, R)
            grads.append(par.natural_gradient(dQ, dR)[free])
        H[i, free] = -(grads[0] - grads[1]) / (2 * h)
    return 0.5 * (H + H.T)


def _standard_errors(par: QRParameterization, f: LoglikGrad, nat: np.ndarray,
                     free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cov, se) from the observed information of the free parameters; NaN where undefined."""
    cov = np.full((nat.size, nat.size), np.nan)
    try:
        info = _observed_information(par, f, nat, free)[np.ix_(free, free)]
        cov[np.ix_(free, free)] = np.linalg.solve(info, np.eye(info.shape[0]))
    except (np.linalg.LinAlgError, ArithmeticError):
        pass  # a singular information, or a step the filter cannot evaluate: no SEs
    var = np.diag(cov)
    return cov, np.sqrt(np.where(var > 0, var, np.nan))


def default_starts(m: StateSpace, noise: float | None = None) -> list[tuple[np.ndarray, float]]:
    """Candidate (Q, R) starts for a noise level v, by default the OLS residual variance s2.

    R = c v for c in {0.2, 0.5, 0.9} and Q = f diag(v / var(z_i)) (v for a constant column)
    for f = 1e-1 .. 1e-6. The model splits s2, not var(y), between R and drift: when the
    factors explain nearly all of y, starts on var(y)'s scale lead L-BFGS-B into the degenerate
    basin R -> 0 (the intercept's drift absorbing the noise).
    """
    v = _noise_levels(m)[1] if noise is None else noise
    drift = np.diag(_variance_scale(m, v)[:-1])
    return [(f * drift, c * v) for f in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
            for c in (0.2, 0.5, 0.9)]


def _noise_levels(m: StateSpace) -> tuple[float, float]:
    """Return var(y) and the OLS residual variance s2 (floored at 1e-12 var(y): finite logs)."""
    var_y = float(np.var(m.y[~np.isnan(m.y)]))
    return var_y, max(hx.ols_residual_var(m.y, m.Z), 1e-12 * var_y)


def _variance_scale(m: StateSpace, noise: float) -> np.ndarray:
    """Return the (k + 1,) variance scales (y^2): noise / var(z_i) (noise if constant), noise."""
    obs = ~np.isnan(m.y)
    z_var, var_y = np.var(m.Z[obs], axis=0), float(np.var(m.y[obs]))
    state = np.where(z_var > 1e-12 * var_y, noise / np.maximum(z_var, 1e-300), noise)
    return np.r_[state, noise]


def _screen(m: StateSpace, starts: list[tuple[np.ndarray, float]], burn: int,
            n_starts: int) -> list[tuple[np.ndarray, float]]:
    """Choose up to ``n_starts`` of ``starts`` whose drift scales lie far apart.

    The best by log-likelihood (one batched call), then the next best whose trace of Q is 100x
    apart from every one chosen: a near start can share the degenerate basin (R -> 0, all noise
    put into drift). Starts where the filter fails are left out (none chosen: all fail).
    """
    Qs = np.stack([np.asarray(Q0, float)[None] for Q0, _ in starts])
    Rs = np.array([[float(R0)] for _, R0 in starts])
    try:
        screen = loglik_batch(m.y[None], m.Z[None], m.T[None], Qs, Rs, m.a0[None], m.P0[None],
                              burn=burn)
    except KalmanNumericalError:  # some start is where the filter fails: score one by one
        screen = np.array([_loglik_or_nan(m, Q0, R0, burn) for Q0, R0 in zip(Qs, Rs, strict=True)])
    order = np.argsort(-np.where(np.isfinite(screen), screen, -np.inf), kind="stable")
    scale = np.log10([np.trace(np.asarray(Q0, float)) for Q0, _ in starts])
    chosen: list[int] = []
    for i in order[np.isfinite(screen[order])]:
        if len(chosen) < n_starts and all(abs(scale[i] - scale[j]) >= 2 for j in chosen):
            chosen.append(int(i))
    return [starts[i] for i in chosen]


def _loglik_or_nan(m: StateSpace, Q: np.ndarray, R: np.ndarray, burn: int) -> float:
    try:
        return kalman_loglik(m.y, m.Z, m.T, Q, R, m.a0, m.P0, burn=burn)
    except KalmanNumericalError:
        return np.nan


class _Climb(NamedTuple):
    """Where one L-BFGS-B run ended: u, its log-likelihood, rise (`_Search.assess`), message."""

    u: np.ndarray
    llf: float
    rise: float
    message: str


def _log_bounds(par: QRParameterization, scale: np.ndarray,
                bounds_scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (lower, upper, small) of each coordinate of u, ``scale`` of `_variance_scale`.

    Log-variances (all for a diagonal Q, R alone for a full Q) are bounded to [lo, hi] times
    their scale, "small" (near 0) is 1e-4 of it; free coordinates get -inf, inf, -inf.
    """
    log_scale = np.log(scale) if par.q == "diag" else np.r_[np.full(par.n_params - 1, np.nan),
                                                             np.log(scale[-1])]
    variance, (lo, hi) = np.isfinite(log_scale), np.log(bounds_scale)
    return (np.where(variance, log_scale + lo, -np.inf), np.where(variance, log_scale + hi, np.inf),
            np.where(variance, log_scale + np.log(1e-4), -np.inf))


class _Search:
    """Search for the MLE by L-BFGS-B on u = theta / unit.

    theta of `QRParameterization`; the objective is the mean log-likelihood per observed term,
    bounds on the scale of ``noise`` (the OLS residual variance). Per observation and in units
    the gradient is O(1), so the first L-BFGS-B step (a unit step along the gradient) moves each
    log-variance by O(1), not by O(n) to the edge of its range. ``r_scale``: `LoglikGrad`'s.
    ``f``: (Q, R) -> (total log-likelihood, dQ, dR) of another model (default `LoglikGrad` of
    m with weights 0 before the burn), e.g. mean-reverting betas at a fixed phi.
    """

    def __init__(self, m: StateSpace, par: QRParameterization, burn: int,
                 bounds_scale: tuple[float, float], noise: float,
                 r_scale: np.ndarray | None = None,
                 f: Callable[[np.ndarray, float], tuple[float, np.ndarray, float]] | None = None,
                 ) -> None:  # fmt: skip
        w = np.ones(m.n)
        w[: burn_row(m.y, burn)] = 0.0
        self.par, self.f = par, LoglikGrad(m, w, r_scale) if f is None else f
        self.n_terms = max(int((~np.isnan(m.y[burn_row(m.y, burn) :])).sum()), 1)
        scale = _variance_scale(m, noise)
        self.unit = par.unit(scale[:-1])
        self.lower, self.upper, self.small = _log_bounds(par, scale, bounds_scale)
        self.state_scale, self.lo = scale[:-1], bounds_scale[0]
        self.start_value = np.inf  # the objective at the start of the run (a failure's reference)

    def loglik(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """(total log-likelihood, its gradient in u); raises ArithmeticError where F_t <= 0."""
        theta = u * self.unit
        Q, R, _ = self.par.to_qr(theta)
        val, dQ, dR = self.f(Q, R)
        return val, self.par.chain(theta, dQ, dR) * self.unit

    def objective(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """Return minus the mean log-likelihood per term at u, and gradient (`_FAILED_MARGIN`)."""
        try:
            val, grad = self.loglik(u)
        except ArithmeticError:
            return self.start_value + _FAILED_MARGIN, np.zeros_like(u)
        if self.start_value == np.inf:
            self.start_value = -val / self.n_terms
        return -val / self.n_terms, -grad / self.n_terms

    def start(self, Q0: np.ndarray, R0: float) -> np.ndarray:
        """Return u of (Q0, R0), clipped into the bounds."""
        u0 = self.par.from_qr(np.asarray(Q0, float), float(R0)) / self.unit
        return np.clip(u0, self.lower, self.upper)

    def climb(self, u0: np.ndarray, maxiter: int, lift: bool = True) -> _Climb:
        """Run L-BFGS-B from u0, then snap variances near 0 to their bound if no worse.

        A second run from the end when its projected gradient is above `_SETTLED` (after the
        snap: the other variances can then rise again).

        With ``lift``, after a converged run, climb again from the other side of 0: variances
        near 0 raised a little (`_lift_from_zero`), one drift variance dropped to 0
        (`_drop_to_zero`), one drift variance at 0 raised far (`_raise_from_zero`).
        """
        end = self._snap_to_zero(self._lbfgsb(u0, maxiter))
        if end.rise > _SETTLED * np.sqrt(self.n_terms):
            end = max(end, self._snap_to_zero(self._lbfgsb(end.u, maxiter)), key=lambda c: c.llf)
        if lift and self.stationary(end.rise):
            end = self._lift_from_zero(end, maxiter)
            end = self._raise_from_zero(self._drop_to_zero(end, maxiter), maxiter)
        return end

    def _lbfgsb(self, u0: np.ndarray, maxiter: int) -> _Climb:
        """Run L-BFGS-B once from u0 (`_FTOL_TERMS`) and return where it ended."""
        self.start_value = np.inf
        res = minimize_lbfgsb(self.objective, u0, self.lower, self.upper, maxiter=maxiter,
                              gtol=1e-8 / self.n_terms, ftol=_FTOL_TERMS / self.n_terms)
        return _Climb(res.x, *self.assess(res.x), res.message)

    def assess(self, u: np.ndarray) -> tuple[float, float]:
        """Return (log-likelihood, rise) at u; (-inf, inf) where the filter fails.

        rise: the largest projected gradient step within the bounds, 0 at a stationary point.
        """
        try:
            val, grad = self.loglik(u)
        except ArithmeticError:
            return -np.inf, np.inf
        return val, float(np.max(np.abs(np.clip(u + grad, self.lower, self.upper) - u)))

    def stationary(self, rise: float) -> bool:
        """Return True when ``rise`` passes the stationarity test (scaled by sqrt(n_terms))."""
        return rise <= _STATIONARY * np.sqrt(self.n_terms)

    def _snap_to_zero(self, end: _Climb) -> _Climb:
        """Move each variance below 1e-4 of its scale to its lower bound, if no worse.

        In log space the likelihood flattens as a variance goes to 0, so L-BFGS-B stops decades
        above the bound when the maximum is at the bound.
        """
        for i in np.flatnonzero((end.u > self.lower) & (end.u < self.small)):
            trial = end.u.copy()
            trial[i] = self.lower[i]
            llf, rise = self.assess(trial)
            if llf >= end.llf:
                end = end._replace(u=trial, llf=llf, rise=rise)
        return self._snap_full_q_states(end) if self.par.q == "full" else end

    def _snap_full_q_states(self, end: _Climb) -> _Climb:
        """Do the same for a full Q, one state at a time (its log-Cholesky diagonal is unbounded).

        A state with Q_ii below 1e-4 of its scale gets variance lo * scale and no covariance
        (its row and column of L cleared; later states keep their variance, the cleared entry
        moved onto their diagonal), where that does not lower the log-likelihood.
        """
        k = self.par.k
        for i in range(k):
            Q, R, L = self.par.to_qr(end.u * self.unit)
            if not Q[i, i] < 1e-4 * self.state_scale[i]:
                continue
            L = L.copy()
            for j in range(i + 1, k):
                L[j, j] = np.hypot(L[j, j], L[j, i])
                L[j, i] = 0.0
            L[i, :i] = 0.0
            L[i, i] = np.sqrt(self.lo * self.state_scale[i])
            trial = self.par.from_qr(L @ L.T, R) / self.unit
            llf, rise = self.assess(trial)
            if llf >= end.llf:
                end = end._replace(u=trial, llf=llf, rise=rise)
        return end

    def _lift_from_zero(self, end: _Climb, maxiter: int) -> _Climb:
        """Climb again from variances near 0 raised, one by one, where that is better.

        The same flatness holds a search near 0 even when the likelihood rises away from 0 (the
        gradient in log space is the variance times the slope). Each variance near 0 whose
        slope is positive is raised to the best of 1e-4 .. 1e-7 of its scale: the peak can be
        that close to 0, and raising every variance near 0 to 1e-4 at once missed it in 2 of
        1,000 simulated funds (up to 0.03 nats).
        """
        near = np.flatnonzero(end.u < self.small)
        if near.size == 0:
            return end
        _, grad = self.loglik(end.u)
        lifted, llf = end.u, end.llf
        for i in near[grad[near] > 0]:
            for level in self.small[i] - np.log(10.0) * np.arange(4):
                trial = lifted.copy()
                trial[i] = level
                trial_llf = self.assess(trial)[0]
                if trial_llf > llf:
                    lifted, llf = trial, trial_llf
        if llf <= end.llf:
            return end
        return max(end, self.climb(lifted, maxiter, lift=False), key=lambda c: c.llf)

    def _drop_to_zero(self, end: _Climb, maxiter: int) -> _Climb:
        """Climb again from the end with one drift variance at its lower bound, if near as good.

        The likelihood can peak both with a variance inside and with it at 0, and a climb from
        inside stays at its peak (0.005 .. 0.43 nats below the other in 4 of 1,000 simulated
        funds). The best of the drops (one variance each) is climbed from when it is at most
        `_DROP_MARGIN` nats below the end.
        """
        drift = np.flatnonzero(np.isfinite(self.lower[:-1]) & (end.u[:-1] >= self.small[:-1]))
        return self._climb_from_best(end, [(i, self.lower[i]) for i in drift], _DROP_MARGIN,
                                     maxiter)  # fmt: skip

    def _raise_from_zero(self, end: _Climb, maxiter: int) -> _Climb:
        """Climb again from the end with one drift variance near 0 raised far, if near as good.

        A peak at 0 can be a local one, with the likelihood falling away from 0 and then rising
        to a higher peak inside (`_lift_from_zero` needs a positive slope at 0), or with the
        other variances re-adjusting: each drift variance near 0 is probed at 1e-4 and 1e-3 of
        its scale, and the best probe climbed from when it is at most `_RAISE_MARGIN` nats
        below the end.
        """
        zero = np.flatnonzero(np.isfinite(self.lower[:-1]) & (end.u[:-1] < self.small[:-1]))
        moves = [(i, self.small[i] + d) for i in zero for d in (0.0, np.log(10.0))]
        return self._climb_from_best(end, moves, _RAISE_MARGIN, maxiter)

    def _climb_from_best(self, end: _Climb, moves: list[tuple[int, float]], margin: float,
                         maxiter: int) -> _Climb:  # fmt: skip
        """Climb from the best of the end's neighbours, each one coordinate moved (index, value).

        Only when that neighbour is at most ``margin`` nats below the end; returns the better end.
        """
        best, best_llf = None, end.llf - margin
        for i, value in moves:
            trial = end.u.copy()
            trial[i] = value
            trial_llf = self.assess(trial)[0]
            if trial_llf > best_llf:
                best, best_llf = trial, trial_llf
        if best is None:
            return end
        return max(end, self.climb(best, maxiter, lift=False), key=lambda c: c.llf)

    def at_bound(self, u: np.ndarray) -> np.ndarray:
        """Return which parameters sit on a bound (within 4 decades of the lower one: flat)."""
        return self._at_lower(u) | (self.upper - u < 1e-6)

    def _at_lower(self, u: np.ndarray) -> np.ndarray:
        return u - self.lower < np.log(1e4)

    def static_states(self, u: np.ndarray) -> np.ndarray:
        """Return which of the k states' drift variances sit at their lower bound (~0) at u.

        A beta that does not move is a finding about the fund, not a failure of the search:
        `_warn_outcome` leaves such bounds out of its warning (``on_bound`` still lists them).
        """
        return self._at_lower(u)[self.par.variances]

    def not_drifting(self, u: np.ndarray, names: list[str]) -> list[str]:
        """Return the names of the drift variances at their lower bound at u (`static_states`)."""
        return [names[i] for i in self.par.variances[self.static_states(u)]]


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Return a controller of the BLAS libraries loaded (numpy's and scipy's OpenBLAS)."""
    return ThreadpoolController()


def _one_blas_thread(fit: Callable) -> Callable:
    """Run ``fit`` with every BLAS on one thread (the caller's setting restored after).

    L-BFGS-B's own linear algebra (scipy's setulb) and the small matrices of the search are
    far below the size where BLAS threads pay: waking them costs more than the work. On the
    12 French industries (k = 5, 2 shared cores) it made the MLE fits 2-9 times slower, with
    the same numbers (measured by the issue 12 MLE-speed work).
    """
    @functools.wraps(fit)
    def single_threaded(*args, **kwargs):
        with _blas_controller().limit(limits=1, user_api="blas"):
            return fit(*args, **kwargs)

    return single_threaded


@_one_blas_thread
def fit_qr(
    m: StateSpace,
    *,
    q: QForm = "diag",
    burn: int = 0,
    starts: list[tuple[np.ndarray, float]] | None = None,
    n_starts: int = 2,
    state_names: tuple[str, ...] | None = None,
    bounds_scale: tuple[float, float] = (1e-12, 1e2),
    maxiter: int = 2000,
    standard_errors: bool = True,
    safeguards: bool = True,
) -> MLEResult:
    """Maximise the log-likelihood over constant Q and R by L-BFGS-B.

    The log-likelihood is the sum of the terms after the first ``burn`` observed steps.

    Parameters
    ----------
    m : StateSpace
        Validated model arrays; its Q and R are ignored.
    q : {"diag", "full"}
        Diagonal Q (log-variances) or full Q (Cholesky factor with a log diagonal).
    burn : int
        Leading terms left out of the log-likelihood.
    starts : list of (Q (k, k), R), optional
        Candidate starting points (default `default_starts`), screened by `_screen`; further
        runs (up to ``n_starts``) only while the best optimum is not stationary or on a bound
        other than a drift variance at 0 (R, or an upper bound).
    state_names : tuple of str, optional
        Names of the k states for the parameter names ("Q[name]", "R").
    bounds_scale : (lo, hi)
        Variances are bounded to [lo, hi] times their scale (`_variance_scale` at s2, the OLS
        residual variance), so a flat likelihood cannot run off to 0 or infinity unseen.
    maxiter : int
        Iterations per L-BFGS-B run.
    standard_errors : bool
        False: skip the observed information (2 gradients per free parameter), ``se`` and
        ``cov`` are NaN; for a fit that only starts another search (`fit_qr_volatility`,
        `fit_qr_mean_reverting`).
    safeguards : bool
        False: no climbs from the other side of 0 after a converged run (`_Search.climb`'s
        ``lift``); for a start of another search that runs them at its own end
        (`fit_qr_volatility`).

    Returns
    -------
    MLEResult
        ``converged``: the projected gradient is ~0 (`_STATIONARY`), whatever scipy's status
        (a line search often fails at the optimum, and can also stall far from it).

    Warns
    -----
    MLEConvergenceWarning
        The optimiser stopped with the likelihood still rising, or the maximum sits on a
        bound (never a bound blamed for an early stop).

    Raises
    ------
    KalmanNumericalError
        The filter fails at every starting value.
    """
    par = QRParameterization(m.k, q)
    var_y, s2 = _noise_levels(m)
    search = _Search(m, par, burn, bounds_scale, s2)
    chosen = _choose_starts(m, starts, burn, n_starts, (s2, var_y))
    best = _best_climb(search, chosen, maxiter, safeguards)
    theta, edge = best.u * search.unit, search.at_bound(best.u)
    nat = par.natural(theta)
    if standard_errors:
        cov, se = _standard_errors(par, search.f, nat, ~edge)
    else:
        cov, se = np.full((nat.size, nat.size), np.nan), np.full(nat.size, np.nan)
    names = par.natural_names(state_names or tuple(f"s{i}" for i in range(m.k)))
    on_bound = [name for name, e in zip(names, edge, strict=True) if e]
    converged = search.stationary(best.rise)
    _warn_outcome(converged, best.message, best.rise, on_bound,
                  search.not_drifting(best.u, names), dict(zip(names, nat, strict=True)))
    Q, R, _ = par.to_qr(theta)
    n_obs = int((~np.isnan(m.y[burn_row(m.y, burn):])).sum())
    return MLEResult(names, nat, se, cov, Q, R, best.llf, n_obs, converged, best.message,
                     on_bound, len(chosen))


def _choose_starts(m: StateSpace, starts: list[tuple[np.ndarray, float]] | None, burn: int,
                   n_starts: int, noise: tuple[float, float]) -> list[tuple[np.ndarray, float]]:
    """Screen ``starts`` (default: `default_starts` at s2, then at var(y)) down to the runs.

    ``noise``: (s2, var(y)). Raises KalmanNumericalError where the filter fails at every start.
    """
    chosen = _screen(m, default_starts(m, noise[0]) if starts is None else starts, burn, n_starts)
    if not chosen and starts is None:  # the filter loses its digits at the s2-scaled starts
        chosen = _screen(m, default_starts(m, noise[1]), burn, n_starts)
    if not chosen:
        raise KalmanNumericalError(
            "the Kalman filter fails (some innovation variance F_t <= 0) at every starting "
            "value of the MLE: check the data's scale (decimal returns), P0 and the burn")
    return chosen


def _best_climb(search: _Search, chosen: list[tuple[np.ndarray, float]],
                maxiter: int, lift: bool = True) -> _Climb:
    """Climb from the first start, then from the next while the best ends short or on a bound.

    A drift variance at 0 does not count: the climb has probed it (`_Search.climb`, with
    ``lift``).
    """
    best = search.climb(search.start(*chosen[0]), maxiter, lift)
    for Q0, R0 in chosen[1:]:
        edge = search.at_bound(best.u)
        edge[:-1] &= best.u[:-1] >= search.small[:-1]  # not a drift variance at 0
        if search.stationary(best.rise) and not edge.any():
            break  # the further starts guard against edge solutions only (R -> 0 or a cap)
        best = max(best, search.climb(search.start(Q0, R0), maxiter, lift),
                   key=lambda c: c.llf)  # fmt: skip
    if search.par.q == "full":  # a Q heading for rank one is a long flat ridge (the
        # log-Cholesky diagonal is unbounded) where L-BFGS-B's memory can stall it: a fresh
        # run from there climbs on. A diagonal Q's flat directions, variances going to 0, are
        # settled in `climb`.
        best = max(best, search.climb(best.u, maxiter, lift), key=lambda c: c.llf)
    return best


def _warn_outcome(converged: bool, message: str, rise: float, on_bound: list[str],
                  findings: list[str], values: dict[str, float]) -> None:  # fmt: skip
    """One warning that names the real cause: the optimiser stopping, or a bound.

    ``values``: each parameter's estimate (natural units), which the bound warning gives (which
    end of gamma's interval, say).

    ``findings``: parameters of ``on_bound`` whose bound is an answer about the fund (a drift
    variance at 0: a beta that does not move; phi at 1: one that does not revert; the phi of
    a beta that does not move, which the data cannot tell): no warning
    for them after a converged search (a fund of static betas is common, and 39 of 40 funds
    warning told a user nothing); they stay in ``on_bound`` and `MLEFit.summary`'s flags.
    """
    where = ", ".join(on_bound)
    if not converged:
        near = (f" It stopped near the bound of {where}: that is where the search ended, not "
                "where the likelihood peaks." if on_bound else "")
        warn_caller(
            f"MLE did not converge: the optimiser stopped ({message}) with the log-likelihood "
            f"still rising ({rise:.3g} nats per unit log-variance), so these are not the "
            f"maximum-likelihood estimates.{near} Try other starting values (fit_qr's "
            "starts=), a larger maxiter, or rescale the data.", MLEConvergenceWarning)
    elif unexpected := [name for name in on_bound if name not in findings]:
        where = ", ".join(f"{name} = {values[name]:.3g}" for name in unexpected)
        # what each kind of bound means to the analyst (phi, gamma: `_JointSearch`'s extras)
        meanings = [text for prefix, text in _BOUND_MEANINGS
                    if any(name.startswith(prefix) for name in unexpected)]  # fmt: skip
        warn_caller(
            f"MLE sits on a bound for {where}: the likelihood is highest at the edge of the "
            f"allowed range and does not rise away from it ({'; '.join(meanings)}); its "
            "standard error is not meaningful", MLEConvergenceWarning)


_BOUND_MEANINGS = (
    ("Q", "a drift variance at its upper edge, or a covariance at an edge, of the search range"),
    ("R", "R at its lower edge: no observation noise"),
    ("gamma", "gamma at an end of its search interval"),
    ("phi", "phi at its lower edge (0.5 by default): a beta reverting within a few periods, "
            "whose swings act as extra noise, not as a drifting exposure; below the edge that "
            "noise would take R's place"),
    (f"phi[{INTERCEPT}]", "for the intercept, those swings are residuals correlated from one "
                          "period to the next"),
)
"""Parameter name prefix -> what its bound means, in `_warn_outcome`'s warning (each whose
prefix a flagged name has, in this order)."""


@dataclass(frozen=True, eq=False)
class MLEFit:
    """A fitted model: the spec at the optimum, its filter/smoother result, and the estimates.

    ``spec.model`` is the model fitted, ``spec.params`` the estimated Q and R (and phi of
    mean-reverting betas: ``spec.phi``). noise : the centred variance index of a
    volatility-scaled R (R_t = R h_t^gamma, "gamma" in params), None for a constant R. ppy :
    periods per year of the data (`tvbeta.estimate.bayes.priors.periods_per_year`), for
    `half_life`; None when the fit did not need it (random-walk betas, constant R).
    """

    spec: KalmanSpec
    result: KalmanResult
    estimate: MLEResult
    burn: int
    noise: VolatilityIndex | None = None
    ppy: float | None = None

    def noise_variance(self, y: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Return R_t (1 | n,) for a design's y (n,) and Z (n, k): the fitted R, or R h_t^gamma.

        A longer design than the one fitted (e.g. with the test rows) extends the index with
        the training span's centring, so every R_t is known at t-1.
        """
        if self.noise is None:
            return np.array([self.estimate.R])
        return scaled_noise(self.estimate.R, self.params["gamma"], self.noise.log_h(y, Z))

    @property
    def betas(self) -> Literal["random_walk", "mean_reverting"]:
        """Return how the betas move: "random_walk", or "mean_reverting" (``spec.phi`` set)."""
        return "random_walk" if self.spec.phi is None else "mean_reverting"

    @property
    def half_life(self) -> pd.Series:
        """Return the half-life of a deviation from the long-run mean per state, in years.

        log 2 / (-log phi ppy) (`tvbeta.model.reversion.half_life_years`), inf at phi = 1 and
        where phi is flagged at the upper end 1 of its search interval with a one-year
        persistence phi^ppy within `PHI_AT_ONE_ANNUAL` of 1 (the random walk's answer, a beta
        that does not revert: the search stops a hair below 1, whose half-life of centuries or
        more is an artefact of where it stopped; a flagged phi further from 1 per year, as a
        daily phi of 0.9991, keeps its finite half-life); (k,) indexed by state, named
        "half-life (years)". NaN where the estimate says nothing about it: the state's drift
        variance sits at its lower bound (a beta that does not move has no persistence to
        estimate), or phi at the lower end of its search interval (the half-life is then at
        most the bound's, not an estimate); `summary` flags each.

        Raises
        ------
        ValueError
            The betas are a random walk (no phi).
        """
        if self.spec.phi is None:
            raise ValueError(
                'half_life needs mean-reverting betas: fit with betas="mean_reverting"'
            )
        years = reversion.half_life_years(self.spec.phi, self.ppy)
        bound = set(self.estimate.on_bound)
        names = self.result.state_names
        ends = [f"phi[{s}]" in bound and (1.0 - phi) * self.ppy < PHI_AT_ONE_ANNUAL
                for s, phi in zip(names, self.spec.phi, strict=True)]  # fmt: skip
        unknown = [f"Q[{s}]" in bound or f"Q[{s},{s}]" in bound
                   or (f"phi[{s}]" in bound and phi < sum(PHI_BOUNDS) / 2)  # the lower end
                   for s, phi in zip(names, self.spec.phi, strict=True)]
        return pd.Series(np.where(unknown, np.nan, np.where(ends, np.inf, years)),
                         index=pd.Index(self.result.state_names, name=STATE),
                         name="half-life (years)")  # fmt: skip

    @property
    def params(self) -> pd.Series:
        """Return the natural parameters (Q entries, R, [gamma,] [phi per state]), by name."""
        return pd.Series(self.estimate.params, index=self.estimate.names, name="estimate")

    @property
    def se(self) -> pd.Series:
        """Return the standard errors of `params` from the observed information."""
        return pd.Series(self.estimate.se, index=self.estimate.names, name="se")

    llf = property(lambda self: self.estimate.llf,
                   doc="The log-likelihood at the optimum (nats, terms after burn).")
    aic = property(lambda self: self.estimate.aic, doc="Akaike's criterion (`MLEResult.aic`).")
    bic = property(lambda self: self.estimate.bic, doc="The BIC (`MLEResult.bic`).")
    q = property(lambda self: self.spec.q_mode.removeprefix("mle_"), doc='"diag" or "full".')
    converged = property(lambda self: self.estimate.converged,
                         doc="Whether the search ended at a stationary point (gradient ~0).")

    def __repr__(self) -> str:
        """Return target, states, Q form, observed span, llf, convergence and bounds."""
        r, e = self.result, self.estimate
        bound = ", ".join(e.on_bound) or "none"
        steps = r.design.index[~np.isnan(r.design.y)][self.burn :]  # the likelihood's terms
        return (
            f"MLEFit(target={r.target_name!r}, states={list(r.state_names)}, "
            f"q={self.q!r}, betas={self.betas!r},\n  {len(steps)} observed steps "
            f"{format_span(steps)} after burn={self.burn} of {len(r.design.index)} rows;"
            f"\n  llf={e.llf:.6g}, {'converged' if e.converged else 'NOT converged'}, "
            f"at bound: {bound})"
        )

    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors, z against the simpler model, and bounds reached.

        Columns ``estimate``, ``se``, ``null`` (the parameter's value in the simpler model it
        tests: 0 for an entry of Q (a static beta, uncorrelated drifts) and for gamma
        (constant R), 1 for phi (the random walk), NaN for R (no simpler model)), ``z`` =
        (estimate - null) / se and ``at bound``. A Wald z near a bound (a variance at 0, phi
        at 1) is not normal: read ``at bound`` and compare likelihoods instead.
        """
        out = pd.concat([self.params, self.se], axis=1)
        out["null"] = [1.0 if name.startswith("phi[") else np.nan if name == "R" else 0.0
                       for name in out.index]  # fmt: skip
        out["z"] = (out["estimate"] - out["null"]) / out["se"]
        out["at bound"] = [name in self.estimate.on_bound for name in out.index]
        return out


def fit_mle(
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Sequence[Hashable] | Hashable,
    *,
    intercept: bool = True,
    q: QForm = "diag",
    burn: int | None = None,
    spec: KalmanSpec | None = None,
    name: str | None = None,
    noise: Literal["constant", "volatility"] = "constant",
    frequency: str | float | None = None,
    betas: Literal["random_walk", "mean_reverting"] = "random_walk",
) -> MLEFit:
    """Joint maximum likelihood of a constant Q (diagonal or full) and R (and gamma, phi).

    df : rows are time steps (sorted), decimal returns; not modified. The initial state comes
    from ``spec`` (default: the seed's ``KalmanSpec(K)``, with ``set_intercept()`` when
    ``intercept``: beta0 = 0, P0 = 100 I, 1e6 for the intercept; T = I). Such a wide P0 makes
    the first K terms mostly about the prior, so ``burn`` defaults to K observed steps: the
    likelihood then approximates the exact diffuse one. Q is per period, in (return / factor
    return)^2. For the likelihood a Bayesian fit samples, give `fit_mle_design` the model of
    ``bayes_spec(df, target_col, factor_cols, burn=b)`` and ``burn=b``. ``factor_cols`` may be
    one column name. The search, starts and warnings (`MLEConvergenceWarning`) are `fit_qr`'s.
    ``noise="volatility"``: R_t = R h_t^gamma with the variance index of
    `tvbeta.model.volatility` in the data's periods (``frequency``, as in `bayes_spec`), gamma
    estimated too (`fit_qr_volatility`). ``betas="mean_reverting"``: beta_t - mu = diag(phi)
    (beta_{t-1} - mu) + eta_t with the long-run means mu ~ N(beta0, P0) integrated out
    (`tvbeta.model.reversion`), phi (k,) estimated too (`fit_qr_mean_reverting`, phi in
    [0.5, 1] per period); the fit's spec holds phi, its result the k betas beta_t (the leading
    states of the filter of [beta; mu]), params add "phi[<state>]" and `MLEFit.half_life` gives
    the half-lives in years (the data's periods per year, ``frequency``).

    Raises
    ------
    ValueError
        ``q`` is not "diag" or "full", an unknown ``noise`` or ``betas``, too few observations
        for the volatility index, or (volatility-scaled R, mean-reverting betas) a frequency
        that cannot be read or inferred from the index.
    DataValidationError, SpecError
        Unusable data, or a ``spec`` whose K does not fit the factor columns.

    Warns
    -----
    ReturnUnitsWarning
        When the target or a factor varies more than decimal returns can (percent, basis
        points or price levels; `warn_if_not_decimal`): the fit goes on.
    """
    return next(_fits(df, [target_col], factor_cols, intercept=intercept, q=q, burn=burn,
                      spec=spec, name=name, noise=noise, frequency=frequency,
                      betas=betas))  # fmt: skip


def fit_mle_funds(df: pd.DataFrame, target_cols: Sequence[Hashable],
                  factor_cols: Sequence[Hashable] | Hashable, **options: Any,
                  ) -> Iterator[MLEFit]:  # fmt: skip
    """Yield `fit_mle` of each target in turn, on the same factors, the frame checked once.

    The designs come from `prepare_designs` (the factors and the index validated at the first
    target), so many funds skip the per-fund pandas work of `fit_mle`; each fit is the one
    `fit_mle` gives.

    Parameters
    ----------
    df, factor_cols : as in `fit_mle`.
    target_cols : sequence of hashable
        The targets, one fit each, in order.
    **options
        `fit_mle`'s keywords (intercept, q, burn, spec, name, noise, frequency, betas), its
        defaults.

    Raises
    ------
    TypeError
        A keyword `fit_mle` does not take (at once).
    ValueError, DataValidationError, SpecError
        As `fit_mle`, when the fit of the target concerned is asked for.
    """
    call = inspect.signature(fit_mle).bind(df, None, factor_cols, **options)
    call.apply_defaults()  # one place for the defaults: fit_mle's signature
    return _fits(df, target_cols, factor_cols, **call.kwargs)


def _fits(df: pd.DataFrame, target_cols: Sequence[Hashable],
          factor_cols: Sequence[Hashable] | Hashable, *, intercept: bool, q: QForm,
          burn: int | None, spec: KalmanSpec | None, name: str | None,
          noise: Literal["constant", "volatility"], frequency: str | float | None,
          betas: Literal["random_walk", "mean_reverting"]) -> Iterator[MLEFit]:  # fmt: skip
    """Yield `fit_mle` (its arguments, ``target_cols`` for one target) of each target."""
    check_q_form(q)
    if betas not in BETAS:
        raise ValueError(f"betas must be one of {BETAS};{closest(str(betas), BETAS)} got "
                         f"{betas!r}")  # fmt: skip
    factor_cols = column_list(factor_cols)
    if spec is None:
        spec = KalmanSpec(K=len(factor_cols))
        spec = spec.set_intercept() if intercept else spec
    burn = default_burn(spec.K) if burn is None else int(burn)
    if noise not in ("constant", "volatility"):
        raise ValueError(f"noise must be 'constant' or 'volatility', got {noise!r}")
    model = dataclasses.replace(spec.model, q=q)
    for design in prepare_designs(df, target_cols, factor_cols, intercept=spec.intercept,
                                  burn=burn):  # fmt: skip
        check_states(spec, design)
        warn_if_not_decimal(design)
        ppy, index = None, None
        if noise == "volatility" or betas == "mean_reverting":
            from tvbeta.estimate.bayes.priors import periods_per_year

            ppy = periods_per_year(design.index, frequency)
        if noise == "volatility":
            index = VolatilityIndex.default_for(design.y, design.Z, burn=burn, ppy=ppy)
        yield fit_mle_design(design, model, burn=burn, name=name, noise=index, betas=betas,
                             ppy=ppy)  # fmt: skip


def fit_mle_design(
    design: Design, model: StateSpaceModel, *, burn: int, name: str | None = None,
    noise: VolatilityIndex | None = None,
    betas: Literal["random_walk", "mean_reverting"] = "random_walk", ppy: float | None = None,
) -> MLEFit:
    """`fit_mle` of ``model`` (its Q form) on a design validated with this ``burn``.

    The design's states must be the model's (K columns). Returns the fit whose ``spec`` is
    ``KalmanSpec.from_parts(model, <the estimated Q, R [and phi]>)``. With ``noise`` (an index
    centred on this design, `VolatilityIndex.centred`) R_t = R h_t^gamma and gamma is estimated
    too (`fit_qr_volatility`); the spec then holds the per-step R_t of the design's rows. With
    ``betas="mean_reverting"`` phi is estimated too (`fit_qr_mean_reverting`, its search
    started at ``ppy`` periods per year), the model's T must be I.

    Raises
    ------
    ValueError
        Mean-reverting betas without ``ppy``.
    SpecError
        Mean-reverting betas with a model whose T is not I.
    """
    q, mr = model.q, betas == "mean_reverting"
    # the searches ignore the start's Q and R: the defaults only make the kernel arrays
    m = KalmanSpec.from_parts(model).state_space(design.y, design.Z)
    log_h = None if noise is None else noise.log_h(design.y, design.Z)
    names = design.state_names
    if mr:
        if ppy is None:
            raise ValueError('betas="mean_reverting" needs ppy (periods per year), where the '
                             "search for phi starts")  # fmt: skip
        est = fit_qr_mean_reverting(m, ppy=ppy, q=q, burn=burn, state_names=names, log_h=log_h)
    elif noise is None:
        est = fit_qr(m, q=q, burn=burn, state_names=names)
    else:
        est = fit_qr_volatility(m, log_h, q=q, burn=burn, state_names=names)
    R = TimeVarying.constant(est.R)
    if noise is not None:
        gamma = est.params[est.names.index("gamma")]
        R = TimeVarying.per_step(scaled_noise(est.R, gamma, log_h))
    phi = est.params[-model.K :] if mr else None
    params = Parameters(TimeVarying.constant(est.Q), R, phi)
    label = ("" if noise is None else ", volatility-scaled R") + (", mean-reverting betas" * mr)
    fitted = KalmanSpec.from_parts(model, params, name=name or f"MLE ({q} Q{label})",
                                   q_mode=f"mle_{q}", r_mode="mle")  # fmt: skip
    result = KalmanEngine(fitted).run_design(design, burn)
    return MLEFit(fitted, result, est, burn, noise, ppy)


GAMMA_START = 0.5
"""Where the search for gamma starts: `fit_qr` (with its starts and its handling of variances
at 0) fits the model at this gamma on rescaled data, and the joint climb goes on from there.
A typical gamma of monthly industries is 0.1-0.8 (issue 12)."""


@_one_blas_thread
def fit_qr_volatility(
    m: StateSpace, log_h: np.ndarray, *, q: QForm = "diag", burn: int = 0,
    state_names: tuple[str, ...] | None = None, gamma_bounds: tuple[float, float] = (-1.0, 3.0),
    bounds_scale: tuple[float, float] = (1e-12, 1e2), maxiter: int = 2000,
    standard_errors: bool = True,
) -> MLEResult:
    """Maximise the log-likelihood of R_t = R h_t^gamma over Q, R and gamma.

    For a fixed gamma the model is the constant-R model of y_t / s_t on z_t / s_t, s_t =
    h_t^(gamma/2): `fit_qr` (its starts and safeguards) fits it at gamma = `GAMMA_START`; L-BFGS-B
    then climbs over (theta, gamma) jointly with the exact gradient (the adjoint's per-step dR_t
    gives dR = sum_t dR_t h_t^gamma and d gamma = sum_t dR_t R_t log h_t), and `fit_qr` at the
    gamma reached, started there, lifts a drift variance stuck near 0 (the climb goes on in
    rounds, `_JointSearch.climb`). The
    standard errors of Q and R are `fit_qr`'s observed information at the optimum given gamma;
    gamma's comes from the joint observed information (central differences of the exact
    gradient), so it accounts for its correlation with Q and R.

    Parameters
    ----------
    m : StateSpace
        Validated model arrays; its Q and R are ignored.
    log_h : (n,) the centred log variance index (`VolatilityIndex.log_h`), known at t-1.
    q, burn, state_names, bounds_scale, maxiter, standard_errors : as in `fit_qr`.
    gamma_bounds : (lo, hi)
        The search interval of gamma; a maximum at its edge warns (`_warn_outcome`).

    Returns
    -------
    MLEResult
        With "gamma" after the natural parameters; R is sigma_eps^2 (R_t where log h_t = 0).

    Warns
    -----
    MLEConvergenceWarning
        As `fit_qr`, for the joint search.

    Raises
    ------
    KalmanNumericalError
        As `fit_qr`.
    """
    def fit_at(gamma: float, starts: list[tuple[np.ndarray, float]] | None) -> MLEResult:
        """`fit_qr` at a fixed gamma: the constant-R model of y / s on Z / s, s = h^(gamma/2).

        The start of the joint climb (``starts`` None) without `fit_qr`'s climbs from the other
        side of 0: the polish at the gamma reached runs them.
        """
        s = np.exp(0.5 * gamma * log_h)
        with warnings.catch_warnings():  # the joint search below reports for the final model
            warnings.simplefilter("ignore", MLEConvergenceWarning)
            return fit_qr(m._replace(y=m.y / s, Z=np.ascontiguousarray(m.Z / s[:, None])),
                          q=q, burn=burn, starts=starts, state_names=state_names,
                          bounds_scale=bounds_scale, standard_errors=False,
                          safeguards=starts is not None)  # fmt: skip

    par = QRParameterization(m.k, q)
    search = _Search(m, par, burn, bounds_scale, _noise_levels(m)[1], r_scale=np.ones(m.n))
    f = search.f

    def loglik(v: np.ndarray) -> tuple[float, np.ndarray]:
        theta, gamma = v[:-1] * search.unit, v[-1]
        Q, R, _ = par.to_qr(theta)
        f.r_scale = np.exp(gamma * log_h)
        val, dQ, dR = f(Q, R)
        d_gamma = float(f.dR @ (f.R * log_h))
        return val, np.r_[par.chain(theta, dQ, dR) * search.unit, d_gamma]

    def polish(v: np.ndarray) -> np.ndarray:
        # in log space a drift variance near 0 is flat: L-BFGS-B cannot lift it, `fit_qr` can
        Q, R, _ = par.to_qr(v[:-1] * search.unit)
        polished = fit_at(v[-1], [(Q, R)])
        return np.r_[search.start(polished.Q, polished.R), v[-1]]

    def qr_loglik(v: np.ndarray) -> LoglikGrad:
        f.r_scale = np.exp(v[-1] * log_h)
        return f

    first = fit_at(float(np.clip(GAMMA_START, *gamma_bounds)), None)
    v0 = np.r_[search.start(first.Q, first.R), np.clip(GAMMA_START, *gamma_bounds)]
    joint = _JointSearch(search, loglik, [gamma_bounds], polish)
    return joint.result(joint.climb(v0, maxiter), ["gamma"], first, state_names,
                        qr_loglik if standard_errors else None)  # fmt: skip


#: `_JointSearch.climb` runs L-BFGS-B in rounds of at most this many iterations, each followed by
#: the polish. Where a drift variance near 0 should rise once phi (or gamma) has moved, the
#: joint climb alone crawls over the flat log-variance for hundreds of iterations (NoDur,
#: mean-reverting betas: 1,900 and 2,200 objective calls a climb, +7 nats found after ~500 and
#: ~800), which the polish lifts at once. Against the one long climb, on the 12 French
#: industries' 573 training months (mean-reverting betas with constant / volatility-scaled R;
#: median objective calls per fit): rounds of 100 give 0.58x / 0.43x, every maximum the same or
#: higher (+0.0007 Enrgy, +0.005 Manuf and Chems, +4.3 nats NoDur with both); rounds of 50,
#: 150, 300 gave 0.72x / 0.51x, 0.60x / 0.41x, 0.68x / 0.56x, also never lower; rounds of 20
#: and 30 ended up to 0.6 nats lower (NoDur).
_JOINT_ROUND = 100


class _JointSearch:
    """L-BFGS-B over v = (u of `_Search`, e extra parameters), with `fit_qr`'s polish.

    loglik(v) -> (value, gradient in v); extra_bounds: each extra parameter's interval;
    polish(v) -> a v at least as good, from `fit_qr`'s safeguarded search over Q and R at v's
    extra parameters (it lifts drift variances near 0, where the joint climb is flat).
    """

    def __init__(self, search: _Search, loglik: Callable[[np.ndarray], tuple[float, np.ndarray]],
                 extra_bounds: list[tuple[float, float]],
                 polish: Callable[[np.ndarray], np.ndarray]) -> None:  # fmt: skip
        self.search, self.loglik, self.polish, self.e = search, loglik, polish, len(extra_bounds)
        self.lower = np.r_[search.lower, [lo for lo, _ in extra_bounds]]
        self.upper = np.r_[search.upper, [hi for _, hi in extra_bounds]]
        self.start_value = np.inf  # the objective at the climb's start (a failure's reference)

    def objective(self, v: np.ndarray) -> tuple[float, np.ndarray]:
        """Return minus the mean log-likelihood per term at v, and gradient (`_FAILED_MARGIN`)."""
        n = self.search.n_terms
        try:
            val, grad = self.loglik(v)
        except ArithmeticError:
            return self.start_value + _FAILED_MARGIN, np.zeros_like(v)
        return -val / n, -grad / n

    def climb(self, v: np.ndarray, maxiter: int) -> _Climb:
        """Climb from v: rounds of `_JOINT_ROUND` iterations, each polished, until neither gains.

        At most ``maxiter`` iterations of L-BFGS-B in all. Returns the end with its
        log-likelihood (rise NaN: `result` assesses the end kept).
        """
        self.start_value = np.inf
        value = self.start_value = self.objective(v)[0]  # kept, not recomputed
        used = 0
        while True:
            # ftol ~0: the joint climb is shallow, and scipy's default relative-reduction test
            # stops it early
            cap = min(_JOINT_ROUND, maxiter - used)
            res = minimize_lbfgsb(self.objective, v, self.lower, self.upper, maxiter=cap,
                                  gtol=1e-8 / self.search.n_terms, ftol=1e-15)
            used += res.nit
            if res.fun <= value:
                v, value = res.x, res.fun
            trial = self.polish(v)
            trial_value = self.objective(trial)[0]
            gained = trial_value < value - 1e-9
            if trial_value < value:
                v, value = trial, trial_value
            if used >= maxiter or not (gained or res.nit >= cap):
                return _Climb(v, -value * self.search.n_terms, np.nan, str(res.message))

    def result(self, end: _Climb, extra_names: list[str], first: MLEResult,
               state_names: tuple[str, ...] | None,
               qr_loglik: Callable[[np.ndarray], Callable] | None) -> MLEResult:  # fmt: skip
        """Report the optimum at ``end`` (a `climb`'s), with standard errors and warnings.

        first: the `fit_qr` fit the climbs started from (its counts are reported);
        qr_loglik(v) -> a callable (Q, R) -> (value, dQ, dR) at v's extra parameters, for the
        standard errors of Q and R given them, or None for no standard errors (NaN). The extra
        parameters' standard errors come from the joint information.
        """
        search, par, e, v = self.search, self.search.par, self.e, end.u
        lower, upper = self.lower, self.upper
        llf, grad = self.loglik(v)
        rise = float(np.max(np.abs(np.clip(v + grad, lower, upper) - v)))
        edge = np.r_[search.at_bound(v[:-e]),
                     np.minimum(v[-e:] - lower[-e:], upper[-e:] - v[-e:]) < 1e-3]
        theta, extra = v[:-e] * search.unit, v[-e:]
        nat = par.natural(theta)
        cov, se = np.full((nat.size + e, nat.size + e), np.nan), np.full(nat.size + e, np.nan)
        if qr_loglik is not None:
            cov[:-e, :-e], se[:-e] = _standard_errors(par, qr_loglik(v), nat, ~edge[:-e])
            se[-e:] = _joint_se_last(self.loglik, v, ~edge, e)
            cov[-e:, -e:][np.diag_indices(e)] = se[-e:] ** 2
        names = [*par.natural_names(state_names or tuple(f"s{i}" for i in range(par.k))),
                 *extra_names]  # fmt: skip
        on_bound = [name for name, at in zip(names, edge, strict=True) if at]
        converged = search.stationary(rise)
        # phi at 1 (its bound when the random walk is allowed): betas that do not revert; and
        # the phi of a beta that does not move (its Q at 0), which the data cannot tell: findings
        phis = [name for name in extra_names if name.startswith("phi")]  # one a state, in order
        moot = {phis[i] for i in np.flatnonzero(search.static_states(v[:-e]))} if phis else set()
        random_walk = [name for name, x, hi in zip(extra_names, v[-e:], upper[-e:], strict=True)
                       if name in moot or (name in phis and hi == 1.0 and hi - x < 1e-3)]
        _warn_outcome(converged, end.message, rise, on_bound,
                      search.not_drifting(v[:-e], names) + random_walk,
                      dict(zip(names, np.r_[nat, extra], strict=True)))  # fmt: skip
        Q, R, _ = par.to_qr(theta)
        return MLEResult(names, np.r_[nat, extra], se, cov, Q, R, llf, first.n_obs, converged,
                         end.message, on_bound, first.n_starts)


PHI_STARTS_ANNUAL = (0.9, 0.5)
"""Where the searches for phi start: one-year persistences phi^ppy (half-lives of 6.6 and 1
year), the same for every state, from the random walk's `fit_qr` (Q, R). The likelihood has
several peaks in phi: on the 12 French industries' 573 training months (constant R) the climb
from 0.9 ended 12 nats below the one from 0.5 on Money and 1.3 below it on Shops, while the one
from 0.5 ended 1.5 .. 1.9 nats lower on Enrgy, BusEq and Hlth (a start at 0.99 was never the
best)."""
#: fit_mle's search interval of each phi per period (1: the random walk). The lower edge keeps
#: the model apart from its noise: a beta whose phi nears 0 is white noise around mu (the
#: intercept's then noise just as eps is).
#: On the 12 French industries' 573 training months (constant R) the maximum sits at phi = 0.5
#: for the intercept on 7 of 12 and for SMB on 4 (Mom on 1). Searched down to 0.05, 8 fits
#: moved: those phis fell to 0.05-0.44 for +0.3 to +4.4 nats, and R went to its lower bound on
#: 5 of the 8: the fast-reverting intercept had taken the observation noise's place.
PHI_BOUNDS = (0.5, 1.0)
PHI_AT_ONE_ANNUAL = 1e-2
"""A phi flagged at its upper bound 1 whose one-year decay ppy (1 - phi) is below this reads as
the random walk's (`MLEFit.half_life` inf, not the ~70 years or more the stopping point gives).
At 1e-3 a fresh user met NoDur's and Durbl's SMB flagged at 1 beside half-lives of 594 and 609
years (monthly phi 0.99990, full history); a daily phi of 0.9991 (decay 0.23 a year, 3 years)
stays finite."""


@_one_blas_thread
def fit_qr_mean_reverting(
    m: StateSpace, *, ppy: float, q: QForm = "diag", burn: int = 0,
    state_names: tuple[str, ...] | None = None, phi_bounds: tuple[float, float] = PHI_BOUNDS,
    log_h: np.ndarray | None = None, gamma_bounds: tuple[float, float] = (-1.0, 3.0),
    bounds_scale: tuple[float, float] = (1e-12, 1e2), maxiter: int = 2000,
) -> MLEResult:
    """Maximise the log-likelihood of mean-reverting betas over Q, R and phi (k,) (and gamma).

    The model of `tvbeta.model.reversion`: beta_t - mu = diag(phi) (beta_{t-1} - mu) + eta_t,
    the filter on [beta; mu] with mu ~ N(a0, P0) integrated out. `fit_qr` fits the random walk
    (phi = 1: its starts and safeguards), or `fit_qr_volatility` the random walk with R_t =
    R h_t^gamma when ``log_h`` is given; L-BFGS-B then climbs over (theta, [gamma,] phi) jointly
    from there with each phi^ppy of `PHI_STARTS_ANNUAL` (the higher end kept), each climb in
    rounds (`_JointSearch.climb`) polished by `fit_qr`'s safeguarded search over Q and R at its
    phi (and gamma) until neither gains, with the exact gradient of the k-state filter with
    the long-run means integrated out (`tvbeta.kalman.collapsed.reversion_loglik_grad`;
    gamma's by the chain rule through the per-step dR_t, as in `fit_qr_volatility`). When
    that climb ends below the random walk's maximum (which phi = 1 attains), it climbs again
    from there, phi = 1, and keeps the higher. Standard errors as in `fit_qr_volatility`
    (gamma's and phi's from the joint observed information), at the end kept only.

    Parameters
    ----------
    m : StateSpace
        Validated arrays of the betas' model (k states; y, Z, a0, P0 used, T, Q, R ignored).
    ppy : float
        Periods per year (where the search for phi starts).
    q, burn, state_names, bounds_scale, maxiter : as in `fit_qr`.
    phi_bounds : (lo, hi)
        The search interval of every phi (hi = 1: the random walk is allowed); a maximum at
        lo warns (`_warn_outcome`), one at hi = 1 is a beta that does not revert (listed in
        ``on_bound``, no warning).
    log_h : (n,), optional
        The centred log variance index of a volatility-scaled R (`fit_qr_volatility`); None:
        a constant R.
    gamma_bounds : (lo, hi)
        The search interval of gamma (with ``log_h``).

    Returns
    -------
    MLEResult
        With ["gamma",] "phi[<state>]" after the natural parameters of Q and R; R is
        sigma_eps^2 (R_t where log h_t = 0).

    Warns
    -----
    MLEConvergenceWarning
        As `fit_qr`, for the joint search.

    Raises
    ------
    KalmanNumericalError
        As `fit_qr`.
    """
    k, vol = m.k, log_h is not None
    with warnings.catch_warnings():  # the joint search below reports for the final model
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        if vol:
            first = fit_qr_volatility(m, log_h, q=q, burn=burn, state_names=state_names,
                                      gamma_bounds=gamma_bounds, bounds_scale=bounds_scale,
                                      standard_errors=False)  # fmt: skip
        else:
            first = fit_qr(m, q=q, burn=burn, state_names=state_names,
                           bounds_scale=bounds_scale, standard_errors=False)  # fmt: skip
    par = QRParameterization(k, q)
    search = _Search(m, par, burn, bounds_scale, _noise_levels(m)[1])
    n_qr = par.n_params

    def gradient(Q: np.ndarray, R: float, extra: np.ndarray):
        """(value, dQ, dR, d extra) at extra = ([gamma,] phi)."""
        scale = np.exp(extra[0] * log_h) if vol else np.ones(1)
        g = reversion_loglik_grad(m.y, m.Z, extra[-k:], Q, R * scale, m.a0, m.P0, burn=burn)
        d_gamma = [float(g.dR @ (R * scale * log_h))] if vol else []
        return g.value, g.dQ, float(g.dR @ scale), np.r_[d_gamma, g.dphi]

    def loglik(v: np.ndarray) -> tuple[float, np.ndarray]:
        theta = v[:n_qr] * search.unit
        Q, R, _ = par.to_qr(theta)
        val, dQ, dR, d_extra = gradient(Q, R, v[n_qr:])
        return val, np.r_[par.chain(theta, dQ, dR) * search.unit, d_extra]

    gamma = list(first.params[-1:]) if vol else []
    start = np.r_[search.start(first.Q, first.R), gamma]
    states = state_names or tuple(f"s{j}" for j in range(k))
    names = ["gamma"] * vol + [f"phi[{s}]" for s in states]
    bounds = [gamma_bounds] * vol + [phi_bounds] * k

    def given(v: np.ndarray) -> Callable[[np.ndarray, float], tuple[float, np.ndarray, float]]:
        """Return the log-likelihood in (Q, R) at v's ([gamma,] phi): value, dQ, dR."""
        return lambda Q, R: gradient(Q, R, v[n_qr:])[:3]

    def polish(v: np.ndarray) -> np.ndarray:
        # `fit_qr`'s safeguarded climb over Q and R at v's ([gamma,] phi): in log space a drift
        # variance near 0 is flat, and the joint climb alone stopped up to 7.4 nats below
        # (Money; volatility-scaled R, the French industries' 573 training months)
        fixed = _Search(m, par, burn, bounds_scale, _noise_levels(m)[1], f=given(v))
        return np.r_[fixed.climb(v[:n_qr], maxiter).u, v[n_qr:]]

    joint = _JointSearch(search, loglik, bounds, polish)

    def climb(phi0: float) -> _Climb:
        return joint.climb(np.r_[start, np.full(k, phi0)], maxiter)

    end = max((climb(float(np.clip(annual ** (1.0 / ppy), *phi_bounds)))
               for annual in PHI_STARTS_ANNUAL), key=lambda c: c.llf)
    if end.llf < first.llf and phi_bounds[1] == 1.0:
        # The model nests the random walk (phi = 1), whose maximum is first.llf: the climb
        # from phi < 1 can end at a lower local maximum (2.5 nats lower on a simulated random
        # walk, tests/estimate/test_mle_reverting.py), so climb again from the random walk's.
        end = max(climb(1.0), end, key=lambda c: c.llf)
    return joint.result(end, names, first, state_names, given)


def _joint_se_last(loglik: Callable[[np.ndarray], tuple[float, np.ndarray]], v: np.ndarray,
                   free: np.ndarray, e: int = 1, h: float = 1e-4) -> np.ndarray:
    """Return the standard errors (e,) of v's last e coordinates from the joint information.

    The observed information of the free coordinates by central differences of the exact
    gradient of ``loglik`` (value, gradient) in v; NaN for a coordinate that is not free, and
    for all when the information is not positive definite.
    """
    out = np.full(e, np.nan)
    idx = np.flatnonzero(free)
    last = np.flatnonzero(idx >= v.size - e)
    if last.size == 0:
        return out
    H = np.empty((idx.size, idx.size))
    for row, i in enumerate(idx):
        step = np.zeros_like(v)
        step[i] = h
        H[row] = -(loglik(v + step)[1][idx] - loglik(v - step)[1][idx]) / (2 * h)
    try:
        cov = np.linalg.solve(0.5 * (H + H.T), np.eye(idx.size)[:, last])
        var = cov[last, np.arange(last.size)]
    except np.linalg.LinAlgError:
        return out
    out[idx[last] - (v.size - e)] = np.sqrt(np.where(var > 0, var, np.nan))
    return out
