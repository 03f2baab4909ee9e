"""The seed's spec setters, as functions ``setter(spec, ...) -> new spec``.

Each reproduces the seed's rule (``../shared/seed/seed_api.md``) with the same argument names,
defaults and numbers and returns a new `KalmanSpec`; the spec's methods of the same names call
these. The arithmetic is in :mod:`tvbeta.model.heuristics`. With an intercept, the regressions
use the design [1, H_t]. Setters that take ``df`` validate it as the engine does, then call
their Design-level half (``rolling_beta_var_Q``, ``rolling_residual_var_Q``, ``scalar_mle``),
which the grid calls on a design validated once; per-time results have one value per row of
``df``, so run the model on the same DataFrame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from tvbeta import constants as C
from tvbeta._warn import warn_caller
from tvbeta.data.validate import warn_if_not_decimal
from tvbeta.kalman.arrays import burn_row
from tvbeta.kalman.filter import filter_state_space, raise_bad_step, sweep_constant
from tvbeta.kalman.gradient import loglik_vjp_kernel
from tvbeta.model import heuristics as hx
from tvbeta.model.engine import design_for
from tvbeta.model.timevarying import SpecError, TimeVarying

if TYPE_CHECKING:
    from tvbeta.data import Design
    from tvbeta.model.spec import KalmanSpec

Columns = Sequence[Hashable] | str


def _as_matrix(H, name: str = "H") -> np.ndarray:
    """Factor returns as float64 (n, n_factors), from a DataFrame, Series or array."""
    if isinstance(H, pd.Series):
        H = H.to_frame()
    arr = (H.to_numpy(dtype=np.float64, na_value=np.nan) if isinstance(H, pd.DataFrame)
           else np.asarray(H, dtype=np.float64))  # fmt: skip
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (n, n_factors), got shape {arr.shape}")
    return arr


def _as_vector(y, n: int) -> np.ndarray:
    """Target returns as float64 (n,), from a Series, one-column DataFrame or array."""
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"y must be one column, got {y.shape[1]}")
        y = y.iloc[:, 0]
    arr = (y.to_numpy(dtype=np.float64, na_value=np.nan) if isinstance(y, pd.Series)
           else np.asarray(y, dtype=np.float64).reshape(-1))  # fmt: skip
    if arr.shape != (n,):
        raise ValueError(f"y has {arr.shape[0]} rows but H has {n}: pass the same rows")
    return arr


def _regressors(spec: KalmanSpec, H) -> np.ndarray:
    """Return the design [1, H] (with an intercept) or H (no column allowed), width checked."""
    spec.require_states()
    X = _as_matrix(H)
    n_factors = spec.K - int(spec.intercept)
    if X.shape[1] != n_factors:
        raise SpecError(
            f"H has {X.shape[1]} column(s) but the spec (K={spec.K}, intercept="
            f"{spec.intercept}) has {n_factors} factor(s): pass exactly its factor columns"
        )
    return np.column_stack([np.ones(X.shape[0]), X]) if spec.intercept else X


def _diag_steps(d: np.ndarray) -> np.ndarray:
    """(n, K) variances -> (n, K, K) diagonal matrices."""
    out = np.zeros((*d.shape, d.shape[-1]))
    idx = np.arange(d.shape[-1])
    out[..., idx, idx] = d
    return out


def _expand_isotropic(m: TimeVarying, K: int, name: str, hint: str, empty: float) -> TimeVarying:
    """c_t I_K -> c_t I_{K+1}, keeping constant/per-time; anything else is an error.

    With no state yet (K = 0) there is no c_t to keep: ``empty`` is used at every step.
    """
    v = m.steps()
    c = v[:, 0, 0] if K else np.full(v.shape[0], empty)
    if not np.array_equal(v, c[:, None, None] * np.eye(K)):
        raise SpecError(f"set_intercept cannot add a row to this {name}: {hint}")
    new = c[:, None, None] * np.eye(K + 1)
    return TimeVarying(new if m.per_time else new[0], per_time=m.per_time)


def set_intercept(spec: KalmanSpec, init_val: float = 0.0) -> KalmanSpec:
    """Add an intercept as the FIRST state: K becomes K+1.

    beta0 gets ``init_val`` prepended; P0 gets a new first row/column of zeros with
    P0[0, 0] = 1e6; the design row becomes [1, H_t]. Q keeps its form c I (the seed's default
    1e-4 I becomes 1e-4 I_{K+1}; a scalar MLE q I likewise); T = I stays the identity. On
    ``KalmanSpec(K=0)`` it gives the local level model: T = 1, Q = 1e-4, the seed's defaults.

    Raises
    ------
    SpecError
        The spec already has an intercept, or its T or Q is not of the form c I (set Q per
        factor after this call).
    """
    if spec.intercept:
        raise SpecError("the spec already has an intercept")
    K = spec.K
    P0 = np.zeros((K + 1, K + 1))
    P0[1:, 1:] = spec.P0
    P0[0, 0] = C.INTERCEPT_P0
    order = "call .set_intercept() first, before the Q setters (as the seed's grid search does)"
    return dataclasses.replace(
        spec, K=K + 1, intercept=True, beta0=np.concatenate([[float(init_val)], spec.beta0]),
        P0=P0, T=_expand_isotropic(spec.T, K, "T", "only T = c I can be extended", 1.0),
        Q=_expand_isotropic(spec.Q, K, "Q", f"it has one variance per factor; {order}",
                            C.DEFAULT_Q_SCALE))  # fmt: skip


def set_initial_state_from_ols(spec: KalmanSpec, H, y) -> KalmanSpec:
    """beta0 = pinv(X) @ y over the whole sample, X = [1, H] with an intercept, else H.

    H : (n, n_factors) DataFrame or array of factor returns; y : (n,) Series or array.
    Rows with a missing value are left out.
    """
    X = _regressors(spec, H)
    return dataclasses.replace(spec, beta0=hx.ols_beta(_as_vector(y, len(X)), X), init_mode="ols")


def set_Q_from_factor_vols(spec: KalmanSpec, H) -> KalmanSpec:
    """Q = diag(sample variance (ddof=1) of each factor column), constant over time.

    With an intercept a zero row/column comes first (the intercept does not drift). Note the
    units: a factor's return variance is used as its beta's drift variance (the seed's rule).
    """
    variances = hx.factor_variances(_regressors(spec, H)[:, int(spec.intercept) :])
    if spec.intercept:
        variances = np.concatenate([[0.0], variances])
    return dataclasses.replace(
        spec, Q=TimeVarying.constant(np.diag(variances)), q_mode="factor_vols", q_scalar=None
    )


def set_Q_from_rolling_beta_var(spec: KalmanSpec, df: pd.DataFrame, target_col: Hashable,
                                factor_cols: Columns, window: int = 20, min_val: float = 1e-8,
                                scale: float = 1.0) -> KalmanSpec:  # fmt: skip
    """Q_t = scale * diag(rolling variance of rolling OLS betas), one per row of ``df``.

    For t >= window, beta_t = pinv(X[t-window:t]) @ y[t-window:t] (rows t-window .. t-1, no
    look-ahead); then their rolling variance (ddof=1, same window), clipped below at
    ``min_val`` and back-filled. Q mode "rolling_beta_var_window_{window}".
    """
    design = design_for(spec, df, target_col, factor_cols)
    return rolling_beta_var_Q(spec, design, window=window, min_val=min_val, scale=scale)


def rolling_beta_var_Q(spec: KalmanSpec, design: Design, *, window: int, min_val: float,
                       scale: float) -> KalmanSpec:  # fmt: skip
    """`set_Q_from_rolling_beta_var` on a validated design whose states ``spec`` has."""
    betas = hx.rolling_ols_betas(design.y, design.Z, window)
    var = hx.clip_and_backfill(hx.rolling_var(betas, window, ddof=1), min_val)
    return dataclasses.replace(spec, Q=TimeVarying.per_step(scale * _diag_steps(var)),
                               q_mode=f"rolling_beta_var_window_{window}", q_scalar=None)


def set_Q_from_rolling_residual_vol(
    spec: KalmanSpec,
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Columns,
    window: int = 20,
    scale: float = 1.0,
    burn: int = 0,
    min_val: float = 1e-8,
    alignment: Literal["seed", "causal"] = "seed",
) -> KalmanSpec:
    """Q_t = scale * v_t * I_K, v_t the rolling variance of the current spec's innovations.

    Runs the filter once with the current spec and takes its one-step innovations after the
    first ``burn`` observed steps; their rolling variance (ddof=1, ``window``), clipped below
    at ``min_val`` and back-filled, gives one value per row of ``df``
    (:func:`tvbeta.model.heuristics.innovation_var_path`):

    - ``alignment="seed"`` (default, the seed's numbers): the post-burn series is indexed
      from the first row, so Q at row t comes from the variance at post-burn position t
      (without missing targets: from the innovations up to row t + burn), and the last value
      is held for the final ``burn`` rows. With burn > 0 this looks ahead by ``burn`` steps;
    - ``alignment="causal"``: Q_t comes from the innovations of rows t-window .. t-1 (after
      burn) only, so no return from step t on enters the Q used to predict it.

    Q mode "rolling_resid_var_from_filter_window_{window}".
    """
    design = design_for(spec, df, target_col, factor_cols, burn)
    return rolling_residual_var_Q(spec, design, window=window, scale=scale, burn=burn,
                                  min_val=min_val, alignment=alignment)  # fmt: skip


def rolling_residual_var_Q(spec: KalmanSpec, design: Design, *, window: int, scale: float,
                           burn: int, min_val: float,
                           alignment: Literal["seed", "causal"]) -> KalmanSpec:  # fmt: skip
    """`set_Q_from_rolling_residual_vol` on a design validated with ``burn``."""
    v = filter_state_space(spec.state_space(design.y, design.Z)).v
    var = hx.innovation_var_path(v, window, min_val, first=burn_row(design.y, 0),
                                 start=burn_row(design.y, burn), alignment=alignment)  # fmt: skip
    Q = TimeVarying.per_step(scale * var[:, None, None] * np.eye(spec.K))
    return dataclasses.replace(spec, Q=Q, q_mode=f"rolling_resid_var_from_filter_window_{window}",
                               q_scalar=None)


def set_Q(spec: KalmanSpec, Q) -> KalmanSpec:
    """Return a copy with Q as given (beta^2 per step).

    A scalar q (Q = q I), (K,) variances (a diagonal Q), (K, K), or (n, K, K) per time step.
    Not checked for positive semi-definiteness here: the filter refuses a Q that is not,
    naming its time row.
    """
    K = spec.K
    arr = np.asarray(Q, dtype=np.float64)
    if arr.ndim == 0:
        arr = float(arr) * np.eye(K)
    elif arr.shape == (K,):
        arr = np.diag(arr)
    if arr.shape[-2:] != (K, K) or arr.ndim not in (2, 3):
        raise SpecError(f"Q must be a scalar, ({K},), ({K}, {K}) or (n, {K}, {K}); got {arr.shape}")
    value = TimeVarying.per_step(arr) if arr.ndim == 3 else TimeVarying.constant(arr)
    return dataclasses.replace(spec, Q=value, q_mode="given", q_scalar=None)


def set_R(spec: KalmanSpec, R) -> KalmanSpec:
    """R given (squared return units per step): a scalar, or (n,) per time step."""
    arr = np.asarray(R, dtype=np.float64)
    if arr.ndim > 1:
        raise SpecError(f"R must be a scalar or (n,) per time step; got shape {arr.shape}")
    value = TimeVarying.per_step(arr) if arr.ndim == 1 else TimeVarying.constant(arr)
    return dataclasses.replace(spec, R=value, r_mode="given", r_scalar=None)


def set_R_from_ols(spec: KalmanSpec, H, y) -> KalmanSpec:
    """R = population variance (ddof=0) of the full-sample OLS residuals (pinv), constant."""
    X = _regressors(spec, H)
    r = hx.ols_residual_var(_as_vector(y, len(X)), X)
    return dataclasses.replace(spec, R=TimeVarying.constant(r), r_mode="ols", r_scalar=None)


def set_R_from_rolling_factor_vols(
    spec: KalmanSpec, H, window: int = 20, min_val: float = 1e-6
) -> KalmanSpec:
    """R_t = (mean across factors of each factor's rolling std (ddof=1))^2.

    Clipped below at ``min_val`` and back-filled; one value per row of H (factor columns
    only, no column of ones). R mode "factor_vol_window_{window}".

    Raises
    ------
    SpecError
        H has no column (an intercept-only model has no factor volatility).
    """
    X = _as_matrix(H)
    if X.shape[1] == 0:
        raise SpecError(
            "set_R_from_rolling_factor_vols needs at least one factor column, but H has none "
            "(an intercept-only model): use set_R_from_ols, set_R_from_rolling_ols_residuals "
            "or set_R_from_mle instead"
        )
    R = hx.clip_and_backfill(hx.rolling_factor_vol(X, window) ** 2, min_val)
    return dataclasses.replace(
        spec, R=TimeVarying.per_step(R), r_mode=f"factor_vol_window_{window}", r_scalar=None
    )


def set_R_from_rolling_ols_residuals(
    spec: KalmanSpec,
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Columns,
    window: int = 20,
    min_val: float = 1e-6,
) -> KalmanSpec:
    """R_t = max(population variance of the OLS residuals on rows t-window .. t-1, min_val).

    For t >= window, OLS by pinv on the ``window`` rows before t (no look-ahead); the first
    ``window`` values are back-filled from R_window. R mode "rolling_ols_window_{window}".
    """
    d = design_for(spec, df, target_col, factor_cols)
    R = hx.clip_and_backfill(hx.rolling_ols_residual_var(d.y, d.Z, window), min_val)
    return dataclasses.replace(
        spec, R=TimeVarying.per_step(R), r_mode=f"rolling_ols_window_{window}", r_scalar=None
    )


class ScalarMLEWarning(RuntimeWarning):
    """The scalar MLE of `set_Q_from_mle` or `set_R_from_mle` stopped at a bound, or failed.

    The value is the seed's all the same.
    """


_LOWER_BOUND_ADVICE = {
    "q": "The betas barely move (Q = {s:g} I): the filtered betas are close to an "
         "expanding-window OLS. q is one drift variance for every state (an intercept's too), "
         "fitted with R held at the spec's current value: too large an R (the seed's default "
         "0.01 is a 10% sd per period) or a state that should not drift pulls it to 0.",
    "r": "The observation noise is below the smallest the seed's range allows (a residual sd "
         "of 0.001 per period): a near-exact fit such as an index tracker, or the Q held fixed "
         "already explains all of y.",
}


def maximise_scalar(
    loglik_and_grad: Callable[[float], tuple[float, float]],
    which: Literal["q", "r"],
    design: Design,
) -> float:
    """Return the argmax over s in the seed's bounds of loglik(s), by L-BFGS-B on x = log s.

    The search starts from s = 1e-2; the exact d loglik / ds is chain-ruled to x (d/dx =
    s d/ds). Tolerances are tight so the result is the optimum to the precision of the
    log-likelihood (the seed used scipy's defaults with finite differences). Serves
    `set_Q_from_mle`, `set_R_from_mle` and the grid's vectorised setters alike.

    Parameters
    ----------
    loglik_and_grad : callable
        s -> (log-likelihood in nats, its derivative d loglik / ds).
    which : {"q", "r"}
        The seed's scalar being fitted, Q = q I or R = r: picks the bounds (`Q_MLE_BOUNDS`,
        `R_MLE_BOUNDS`) and the advice of the warnings.
    design : Design
        The data (checked for decimal units).

    Returns
    -------
    float
        The maximising s (a variance per period), inside the seed's bounds.

    Warns
    -----
    ScalarMLEWarning
        The search stopped at a bound of the seed's range or did not converge.
    ReturnUnitsWarning
        The data look like percent or basis points.
    """
    from scipy.optimize import minimize  # loaded on use: ~0.5 s at import

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        s = float(np.exp(x[0]))
        value, grad = loglik_and_grad(s)
        return -value, np.array([-grad * s])

    warn_if_not_decimal(design)
    lo, hi = C.Q_MLE_BOUNDS if which == "q" else C.R_MLE_BOUNDS
    res = minimize(objective, x0=np.array([np.log(C.MLE_START)]), jac=True, method="L-BFGS-B",
                   bounds=[(np.log(lo), np.log(hi))],
                   options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500})  # fmt: skip
    x, slope = float(res.x[0]), -float(res.jac[0])
    # report a bound exactly, not exp(log(bound)) one ulp away from it (L-BFGS-B may stop
    # an ulp inside a bound: at log(100), x = 4.605170185988091 < 4.605170185988092)
    near = 1e-12
    s = lo if x <= np.log(lo) + near else hi if x >= np.log(hi) - near else float(np.exp(x))
    at_bound = (s == lo and slope <= 0) or (s == hi and slope >= 0)
    search = f"the scalar maximum-likelihood search for {which}"
    if s == hi and slope > 0:  # the seed's bounds are for decimal returns; say so, keep its value
        warn_caller(
            f"{search} stopped at its upper bound {hi:g} with the likelihood still rising: the "
            "seed's bounds assume returns in decimals; rescale the data, or use "
            "tvbeta.fit_mle (bounds on the data's scale)",
            ScalarMLEWarning,
        )
    elif s == lo and slope <= 0:
        warn_caller(
            f"{search} stopped at its lower bound {lo:g} with the likelihood still rising (or "
            f"flat) towards it: the seed's range ends the search there. "
            f"{_LOWER_BOUND_ADVICE[which].format(s=s)} The seed's value {lo:g} is kept; "
            "tvbeta.fit_mle(df, target_col, factor_cols) fits Q and R jointly, with bounds on "
            "the data's scale.",
            ScalarMLEWarning,
        )
    if not at_bound and abs(slope) > 1e-4 * max(1.0, abs(float(res.fun))):
        warn_caller(f"{search} did not converge ({res.message}); using {s:.6g}", ScalarMLEWarning)
    return s


def set_Q_from_mle(spec: KalmanSpec, df: pd.DataFrame, target_col: Hashable,
                   factor_cols: Columns, burn: int = 0) -> KalmanSpec:  # fmt: skip
    """Q = q I_K with the scalar q maximising the log-likelihood after ``burn`` observed steps.

    L-BFGS-B on log q from q = 1e-2 within [1e-8, 10], every other setting of the spec held
    fixed; the gradient is exact (trace of the adjoint dQ). Q mode "mle", Q scalar q.

    Warns
    -----
    ScalarMLEWarning
        q stopped at a bound of the seed's range (the value is the bound, as in the seed), or
        the search did not converge.
    ReturnUnitsWarning
        The target or a factor varies far more than decimal returns can (percent, basis
        points), which the seed's bounds assume.
    """
    return scalar_mle(spec, design_for(spec, df, target_col, factor_cols, burn), "q", burn=burn)


def set_R_from_mle(spec: KalmanSpec, df: pd.DataFrame, target_col: Hashable,
                   factor_cols: Columns, burn: int = 0) -> KalmanSpec:  # fmt: skip
    """R = r with the scalar r maximising the log-likelihood after ``burn`` observed steps.

    L-BFGS-B on log r from r = 1e-2 within [1e-6, 100], every other setting held fixed; the
    gradient is exact (the adjoint dR). R mode "mle", R scalar r. Warns as `set_Q_from_mle`.
    """
    return scalar_mle(spec, design_for(spec, df, target_col, factor_cols, burn), "r", burn=burn)


def scalar_mle(
    spec: KalmanSpec, design: Design, which: Literal["q", "r"], *, burn: int
) -> KalmanSpec:
    """`set_Q_from_mle` (``which="q"``) or `set_R_from_mle` (``"r"``) on a validated design.

    ``design`` was validated with ``burn`` and has the states of ``spec``. `maximise_scalar`
    searches the log-likelihood and its exact derivative (the adjoint kernel, as
    `tvbeta.kalman.loglik_vjp`) on buffers allocated once.
    """
    m = spec.state_space(design.y, design.Z)
    w = np.ones(m.n)
    w[: burn_row(m.y, burn)] = 0.0
    Q = np.empty((1, m.k, m.k)) if which == "q" else m.Q
    R = np.empty(1) if which == "r" else m.R
    ll, dQ, dR = np.empty(m.n), np.empty_like(Q), np.empty_like(R)
    da0, dP0, eye = np.empty_like(m.a0), np.empty_like(m.P0), np.eye(m.k)
    static_k = sweep_constant(m.T, m.k)

    def loglik_and_grad(s: float) -> tuple[float, float]:
        if which == "q":
            Q[0] = s * eye
        else:
            R[0] = s
        bad = loglik_vjp_kernel(m.y, m.Z, m.T, Q, R, m.a0, m.P0, w, ll, dQ, dR, da0, dP0, static_k)
        if bad >= 0:
            raise_bad_step(bad, m._replace(Q=Q, R=R))
        grad = np.trace(dQ[0]) if which == "q" else dR.sum()  # d/ds of Q = s I, or of R = s
        return float(w @ ll), float(grad)

    s = maximise_scalar(loglik_and_grad, which, design)
    if which == "q":
        return dataclasses.replace(spec, Q=TimeVarying.constant(s * eye), q_mode="mle", q_scalar=s)
    return dataclasses.replace(spec, R=TimeVarying.constant(s), r_mode="mle", r_scalar=s)
