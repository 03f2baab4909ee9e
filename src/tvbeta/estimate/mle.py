"""Joint maximum likelihood of Q (diagonal, or full through a Cholesky factor) and R.

The optimiser works on an unconstrained scale: log variances for a diagonal Q and for R, and a
Cholesky factor with a log diagonal for a full Q. The objective and its exact gradient come from
one call of the adjoint kernel (`tvbeta.kalman.gradient`), so each L-BFGS-B iteration costs about
two filter passes. Standard errors come from the observed information, the Hessian of the
log-likelihood in the natural parameters (variances and covariances), obtained by central
differences of the exact gradient.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from tvbeta.kalman import StateSpace, loglik_batch
from tvbeta.kalman.filter import raise_bad_step
from tvbeta.kalman.gradient import loglik_vjp_kernel
from tvbeta.model import KalmanEngine, KalmanSpec, TimeVarying
from tvbeta.model.engine import design_for
from tvbeta.results import KalmanResult

QForm = Literal["diag", "full"]


class MLEConvergenceWarning(UserWarning):
    """The optimiser did not converge, or an estimate sits on a bound."""


@dataclass(frozen=True)
class QRParameterization:
    """Maps the unconstrained vector theta to (Q, R) and gradients back; k states."""

    k: int
    q: QForm

    @property
    def n_params(self) -> int:
        return (self.k if self.q == "diag" else self.k * (self.k + 1) // 2) + 1

    def natural_names(self, state_names: tuple[str, ...]) -> list[str]:
        """Names of the natural parameters: Q entries (variances, covariances) then R."""
        if self.q == "diag":
            return [f"Q[{s}]" for s in state_names] + ["R"]
        rows, cols = np.tril_indices(self.k)
        pairs = zip(rows, cols, strict=True)
        return [f"Q[{state_names[i]},{state_names[j]}]" for i, j in pairs] + ["R"]

    def to_qr(self, theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
        """theta -> (Q (k, k), R, L) where L is the Cholesky factor for a full Q."""
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
        Q, R, L = self.to_qr(theta)
        if self.q == "diag":
            return np.r_[np.diag(dQ) * np.diag(Q), dR * R]
        dL = 2.0 * dQ @ L
        dL[np.diag_indices(self.k)] *= np.diag(L)
        return np.r_[dL[np.tril_indices(self.k)], dR * R]

    def natural(self, theta: np.ndarray) -> np.ndarray:
        """Natural parameters: the lower triangle (or diagonal) of Q, then R."""
        Q, R, _ = self.to_qr(theta)
        q = np.diag(Q) if self.q == "diag" else Q[np.tril_indices(self.k)]
        return np.r_[q, R]

    def natural_to_qr(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        if self.q == "diag":
            return np.diag(nat[:-1]), float(nat[-1])
        Q = np.zeros((self.k, self.k))
        Q[np.tril_indices(self.k)] = nat[:-1]
        return Q + np.tril(Q, -1).T, float(nat[-1])

    def natural_gradient(self, dQ: np.ndarray, dR: float) -> np.ndarray:
        """Gradient in the natural parameters (an off-diagonal entry moves Q_ij and Q_ji)."""
        if self.q == "diag":
            return np.r_[np.diag(dQ), dR]
        G = 2.0 * dQ - np.diag(np.diag(dQ))
        return np.r_[G[np.tril_indices(self.k)], dR]


class LoglikGrad:
    """(sum_t w_t loglik_t, dQ (k, k), dR) at constant Q and R, with buffers reused across the
    many calls of an optimisation (allocation would cost as much as the kernel for small n k)."""

    def __init__(self, m: StateSpace, weights: np.ndarray) -> None:
        n, k = m.n, m.k
        self.m, self.w = m, weights
        self.Q, self.R = np.zeros((1, k, k)), np.empty(1)
        self.ll, self.dQ, self.dR = np.empty(n), np.empty((1, k, k)), np.empty(1)
        self.da0, self.dP0 = np.empty(k), np.empty((k, k))

    def __call__(self, Q: np.ndarray, R: float) -> tuple[float, np.ndarray, float]:
        """Raises KalmanNumericalError when a step fails (F_t = 0, or a term overflows)."""
        m = self.m
        self.Q[0] = Q
        self.R[0] = R
        bad = loglik_vjp_kernel(m.y, m.Z, m.T, self.Q, self.R, m.a0, m.P0, self.w,
                                self.ll, self.dQ, self.dR, self.da0, self.dP0)
        if bad >= 0:
            raise_bad_step(bad, m._replace(Q=self.Q, R=self.R))
        return float(self.w @ self.ll), self.dQ[0].copy(), float(self.dR[0])


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
        return -2.0 * self.llf + 2.0 * len(self.params)

    @property
    def bic(self) -> float:
        return -2.0 * self.llf + np.log(self.n_obs) * len(self.params)


def _observed_information(par: QRParameterization, f: LoglikGrad, nat: np.ndarray) -> np.ndarray:
    """Hessian of -loglik in the natural parameters by central differences of the exact gradient."""
    p = nat.size
    H = np.empty((p, p))
    for i in range(p):
        h = 1e-4 * max(abs(nat[i]), 1e-8)
        grads = []
        for sgn in (1.0, -1.0):
            x = nat.copy()
            x[i] += sgn * h
            Q, R = par.natural_to_qr(x)
            _, dQ, dR = f(Q, R)
            grads.append(par.natural_gradient(dQ, dR))
        H[i] = -(grads[0] - grads[1]) / (2 * h)
    return 0.5 * (H + H.T)


def fit_qr(
    m: StateSpace,
    *,
    q: QForm = "diag",
    burn: int = 0,
    starts: list[tuple[np.ndarray, float]] | None = None,
    n_starts: int = 2,
    state_names: tuple[str, ...] | None = None,
    bounds_scale: tuple[float, float] = (1e-12, 1e2),
) -> MLEResult:
    """Maximise the log-likelihood (terms t >= burn) over constant Q and R by L-BFGS-B.

    m : validated model arrays (its Q and R are ignored). starts : candidate (Q, R) starting
    points, by default a grid of drift scales (1e-1 .. 1e-6 of each variance scale) times
    R in {0.2, 0.5, 0.9} var(y). All candidates are scored in one batched likelihood call and
    L-BFGS-B runs from the best of them, and from the next best with drift scales 100x apart
    (up to `n_starts` in all) while the optimum found has a variance at a bound.
    Variances are bounded to [lo, hi] times their scale (var(y) for R and the intercept,
    var(y)/var(z_i) for a factor's beta) so a flat likelihood cannot run off to 0 or infinity
    unseen.
    """
    par = QRParameterization(m.k, q)
    names = par.natural_names(state_names or tuple(f"s{i}" for i in range(m.k)))
    w = np.ones(m.n)
    w[:burn] = 0.0
    obs = ~np.isnan(m.y)
    var_y = float(np.var(m.y[obs]))
    z_var = np.var(m.Z[obs], axis=0)
    beta_scale = np.where(z_var > 1e-12 * var_y, var_y / np.maximum(z_var, 1e-300), var_y)
    if starts is None:
        starts = [(np.diag(beta_scale * f), c * var_y)
                  for f in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6) for c in (0.2, 0.5, 0.9)]
    screen = loglik_batch(m.y[None], m.Z[None], m.T[None],
                          np.stack([np.asarray(Q0, float)[None] for Q0, _ in starts]),
                          np.array([[float(R0)] for _, R0 in starts]), m.a0[None], m.P0[None],
                          burn=burn)
    order = np.argsort(-np.where(np.isfinite(screen), screen, -np.inf), kind="stable")
    # the best candidates from clearly different drift scales (100x apart): the likelihood
    # has a degenerate basin (R -> 0, all noise put into drift) that a near start can share
    scale = np.log10([np.trace(np.asarray(Q0, float)) for Q0, _ in starts])
    chosen: list[int] = []
    for i in order:
        if len(chosen) < n_starts and all(abs(scale[i] - scale[j]) >= 2 for j in chosen):
            chosen.append(int(i))
    starts = [starts[i] for i in chosen]
    lo, hi = bounds_scale
    if q == "diag":
        log_scale = np.log(np.r_[beta_scale, var_y])
        bounds = [(s + np.log(lo), s + np.log(hi)) for s in log_scale]
    else:
        bounds = [(None, None)] * (par.n_params - 1) + [(np.log(var_y * lo), np.log(var_y * hi))]

    f = LoglikGrad(m, w)

    def objective(theta):
        Q, R, _ = par.to_qr(theta)
        try:
            val, dQ, dR = f(Q, R)
        except ArithmeticError:
            return np.inf, np.zeros_like(theta)
        return -val, -par.chain(theta, dQ, dR)

    def at_bound(theta: np.ndarray) -> list[str]:
        # In log space the likelihood is flat as a variance goes to 0, so L-BFGS-B stops short
        # of the lower bound: within 4 orders of magnitude of it counts as "at zero".
        return [
            names[i] for i, (b, x) in enumerate(zip(bounds, theta, strict=True))
            if b[0] is not None and (x - b[0] < np.log(1e4) or b[1] - x < 1e-6)
        ]

    best = None
    for Q0, R0 in starts:
        res = minimize(objective, par.from_qr(np.asarray(Q0, float), float(R0)), jac=True,
                       method="L-BFGS-B", bounds=bounds, options=dict(maxiter=2000, gtol=1e-8))
        if best is None or res.fun < best.fun:
            best = res
        if not at_bound(best.x):
            break  # an interior optimum: the further starts guard against edge solutions only
    nat = par.natural(best.x)
    on_bound = at_bound(best.x)
    info = _observed_information(par, f, nat)
    try:
        cov = np.linalg.solve(info, np.eye(info.shape[0]))
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
        se = np.full(info.shape[0], np.nan)
    if not best.success:
        warnings.warn(f"MLE did not converge: {best.message}", MLEConvergenceWarning, stacklevel=2)
    if on_bound:
        warnings.warn(f"MLE sits on a bound for {', '.join(on_bound)}: the likelihood prefers "
                      "a variance at the edge of its range (often 0); its standard error is "
                      "not meaningful", MLEConvergenceWarning, stacklevel=2)
    Q, R, _ = par.to_qr(best.x)
    return MLEResult(names, nat, se, cov, Q, R, -float(best.fun), int(obs[burn:].sum()),
                     bool(best.success), str(best.message), on_bound, len(starts))


@dataclass(frozen=True, eq=False)
class MLEFit:
    """A fitted model: the spec at the optimum, its filter/smoother result, and the estimates.

    params, se : pd.Series of the natural parameters (Q entries, then R) and their standard
    errors from the observed information; llf, aic, bic over the terms after burn.
    """

    spec: KalmanSpec
    result: KalmanResult
    estimate: MLEResult
    burn: int

    @property
    def params(self) -> pd.Series:
        return pd.Series(self.estimate.params, index=self.estimate.names, name="estimate")

    @property
    def se(self) -> pd.Series:
        return pd.Series(self.estimate.se, index=self.estimate.names, name="se")

    @property
    def llf(self) -> float:
        return self.estimate.llf

    @property
    def aic(self) -> float:
        return self.estimate.aic

    @property
    def bic(self) -> float:
        return self.estimate.bic

    @property
    def converged(self) -> bool:
        return self.estimate.converged

    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors, z = estimate / se, and whether each sits at a bound."""
        out = pd.concat([self.params, self.se], axis=1)
        out["z"] = out["estimate"] / out["se"]
        out["at bound"] = [name in self.estimate.on_bound for name in out.index]
        return out


def fit_mle(
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Sequence[Hashable],
    *,
    intercept: bool = True,
    q: QForm = "diag",
    burn: int | None = None,
    spec: KalmanSpec | None = None,
    name: str | None = None,
) -> MLEFit:
    """Joint maximum likelihood of a constant Q (diagonal or full) and R.

    df : rows are time steps (sorted), decimal returns; not modified. The initial state comes
    from ``spec`` (default: the seed's ``KalmanSpec(K)`` defaults, with ``set_intercept()``
    when ``intercept``: beta0 = 0, P0 = 100 I, 1e6 for the intercept; T = I). Such a wide P0
    makes the first K terms mostly about the prior, so ``burn`` defaults to K: the likelihood
    then approximates the exact diffuse one. Q is per period, in (return / factor return)^2.
    To maximise the likelihood a Bayesian fit samples (same initial state and burn), pass
    ``spec=bayes_spec(df, target_col, factor_cols, burn=b).kalman_spec()`` and ``burn=b``.
    """
    if spec is None:
        spec = KalmanSpec(K=len(factor_cols))
        spec = spec.set_intercept() if intercept else spec
    design = design_for(spec, df, target_col, factor_cols, 0 if burn is None else burn)
    burn = spec.K if burn is None else int(burn)
    m = spec.state_space(design.y, design.Z)
    est = fit_qr(m, q=q, burn=burn, state_names=design.state_names)
    fitted = dataclasses.replace(
        spec,
        Q=TimeVarying.constant(est.Q),
        R=TimeVarying.constant(est.R),
        q_mode=f"mle_{q}",
        r_mode="mle",
        q_scalar=None,
        r_scalar=None,
        name=name or f"MLE ({q} Q)",
    )
    result = KalmanEngine(fitted).run(df, target_col, factor_cols, burn=burn)
    return MLEFit(fitted, result, est, burn)
