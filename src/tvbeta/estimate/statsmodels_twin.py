"""statsmodels twin of the tvbeta model: an external oracle for filter, smoother and MLE.

tvbeta's model (Durbin & Koopman 2012, section 3.1, with tvbeta's time labels)::

    beta_t = T_t beta_{t-1} + eta_t,   eta_t ~ N(0, Q_t)
    y_t    = z_t' beta_t + eps_t,      eps_t ~ N(0, R_t),     t = 0, ..., n-1
    beta_{-1} ~ N(a0, P0)

The filter predicts first: ``a_{0|-1} = T_0 a0``, ``P_{0|-1} = T_0 P0 T_0' + Q_0``. statsmodels
puts the transition *after* the observation, ``alpha_{t+1} = T^sm_t alpha_t + R eta_t``, and
its ``known`` initialisation is the first *predicted* state (D&K section 4.3 timing), so
``alpha_t = beta_t``, ``T^sm_t = T_{t+1}``, ``Q^sm_t = Q_{t+1}`` (the last column, which only
predicts beyond the sample, is unused) and the initial state is ``(T_0 a0, T_0 P0 T_0' + Q_0)``.
Arrays going in and out are time-first; only the statsmodels representation is time-last.

A test oracle, not a production path: slow (a statsmodels object per call), and
``TVPRegression`` keeps statsmodels' stateful ``update`` design.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from statsmodels.tsa.statespace.kalman_filter import FILTER_CONVENTIONAL
from statsmodels.tsa.statespace.kalman_smoother import KalmanSmoother
from statsmodels.tsa.statespace.mlemodel import MLEModel

from tvbeta.estimate.mle import check_q_form

__all__ = ["StatsmodelsReference", "TVPRegression", "statsmodels_filter"]

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


class StatsmodelsReference(NamedTuple):
    """statsmodels' Kalman filter and smoother output, time-first.

    Attributes
    ----------
    loglik : float
        Total Gaussian log-likelihood, sum of ``loglik_t`` (nats).
    loglik_t : (n,) ndarray
        Per-step log-likelihood ``-0.5 (log 2 pi + log F_t + v_t^2 / F_t)``; 0 where y is missing
        (statsmodels ``llf_obs``).
    a_pred, P_pred : (n, k), (n, k, k) ndarrays
        Predicted state ``a_{t|t-1}`` and its covariance.
    a_filt, P_filt : (n, k), (n, k, k) ndarrays
        Filtered state ``a_{t|t}`` and covariance (equal to the prediction where y is missing).
    v : (n,) ndarray
        Innovation ``y_t - z_t' a_{t|t-1}``; NaN where y is missing.
    F : (n,) ndarray
        Innovation variance ``z_t' P_{t|t-1} z_t + R_t`` (also filled in where y is missing).
    a_smooth, P_smooth : (n, k), (n, k, k) ndarrays
        Smoothed state ``a_{t|n-1}`` and covariance (D&K section 4.4).
    """

    loglik: float
    loglik_t: FloatArray
    a_pred: FloatArray
    P_pred: FloatArray
    a_filt: FloatArray
    P_filt: FloatArray
    v: FloatArray
    F: FloatArray
    a_smooth: FloatArray
    P_smooth: FloatArray


def _leading(x: ArrayLike, n: int, item_shape: tuple[int, ...], name: str) -> FloatArray:
    """Check that ``x`` is constant (leading length 1) or per time (leading length n)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 + len(item_shape) or arr.shape[0] not in (1, n) or arr.shape[1:] != item_shape:
        raise ValueError(f"{name} must have shape (1 or {n}, *{item_shape}), got {arr.shape}")
    return arr


def _shifted_time_last(M: FloatArray) -> FloatArray:
    """Turn tvbeta's (n, k, k) ``M_t`` into statsmodels' (k, k, n) ``M^sm_t = M_{t+1}``.

    A constant (1, k, k) stays (k, k) (time-invariant); the final column repeats ``M_{n-1}``.
    """
    if M.shape[0] == 1:
        return M[0]
    return np.moveaxis(np.concatenate([M[1:], M[-1:]]), 0, -1)


def _float_copy(x: ArrayLike) -> FloatArray:
    """Copy as float, but keep a complex dtype (statsmodels' complex-step derivatives)."""
    arr = np.asarray(x)
    return arr.astype(np.result_type(arr, np.float64), copy=True)


def _exact_options(ssm: KalmanSmoother) -> None:
    """Make statsmodels compute the plain conventional recursions, nothing else.

    Off: ``stability_method`` (symmetrises P each step) and ``tolerance`` (freezes a converged
    P); both change the numbers slightly relative to a textbook filter.
    """
    ssm.set_filter_method(FILTER_CONVENTIONAL)
    ssm.set_stability_method(0)
    ssm.tolerance = 0.0


def statsmodels_filter(
    y: ArrayLike,
    Z: ArrayLike,
    T: ArrayLike,
    Q: ArrayLike,
    R: ArrayLike,
    a0: ArrayLike,
    P0: ArrayLike,
) -> StatsmodelsReference:
    """Run statsmodels' Kalman filter and smoother on the tvbeta model.

    Parameters
    ----------
    y : (n,) array_like
        Observations; NaN marks a missing value.
    Z : (n, k) array_like
        Design rows ``z_t``.
    T : (1, k, k) or (n, k, k) array_like
        Transition ``T_t`` (maps ``beta_{t-1}`` to ``beta_t``); leading length 1 = constant.
    Q : (1, k, k) or (n, k, k) array_like
        State innovation covariance ``Q_t`` (units of beta squared).
    R : (1,) or (n,) array_like
        Observation noise variance ``R_t`` (units of y squared).
    a0 : (k,) array_like
        Mean of ``beta_{-1}``.
    P0 : (k, k) array_like
        Covariance of ``beta_{-1}``.

    Returns
    -------
    StatsmodelsReference
        Log-likelihood, predicted, filtered and smoothed moments, all time-first.

    Notes
    -----
    The time shift and initialisation: module docstring. ``loglikelihood_burn`` is 0.
    statsmodels predicts through leading missing rows; tvbeta's model starts at the first
    observation, so compare on the rows from the first observed y on.
    """
    y = np.asarray(y, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    if y.ndim != 1 or Z.ndim != 2 or Z.shape[0] != y.shape[0]:
        raise ValueError(f"need y (n,) and Z (n, k), got {y.shape} and {Z.shape}")
    n, k = Z.shape
    T = _leading(T, n, (k, k), "T")
    Q = _leading(Q, n, (k, k), "Q")
    R = _leading(R, n, (), "R")
    a0 = np.asarray(a0, dtype=np.float64)
    P0 = np.asarray(P0, dtype=np.float64)
    if a0.shape != (k,) or P0.shape != (k, k):
        raise ValueError(f"need a0 ({k},) and P0 ({k}, {k}), got {a0.shape} and {P0.shape}")

    ssm = KalmanSmoother(k_endog=1, k_states=k, k_posdef=k, loglikelihood_burn=0)
    ssm.bind(y[:, None].copy())  # (n, 1) C-ordered: statsmodels transposes without copying
    _exact_options(ssm)
    ssm["design"] = Z.T[None]  # (1, k, n)
    ssm["obs_cov"] = R.reshape(1, 1, -1)  # (1, 1, 1 or n): R_t belongs to y_t, no shift
    ssm["selection"] = np.eye(k)
    ssm["transition"] = _shifted_time_last(T)
    ssm["state_cov"] = _shifted_time_last(Q)
    ssm.initialize_known(T[0] @ a0, T[0] @ P0 @ T[0].T + Q[0])
    res = ssm.smooth()

    def states(x: FloatArray) -> FloatArray:  # (k, m>=n) -> (n, k)
        return np.ascontiguousarray(x[:, :n].T)

    def covs(x: FloatArray) -> FloatArray:  # (k, k, m>=n) -> (n, k, k)
        return np.ascontiguousarray(np.moveaxis(x[:, :, :n], -1, 0))

    loglik_t = np.asarray(res.llf_obs, dtype=np.float64).copy()
    return StatsmodelsReference(
        loglik=float(loglik_t.sum()),
        loglik_t=loglik_t,
        a_pred=states(res.predicted_state),  # statsmodels keeps n+1 predictions
        P_pred=covs(res.predicted_state_cov),
        a_filt=states(res.filtered_state),
        P_filt=covs(res.filtered_state_cov),
        v=res.forecasts_error[0].copy(),
        F=res.forecasts_error_cov[0, 0].copy(),
        a_smooth=states(res.smoothed_state),
        P_smooth=covs(res.smoothed_state_cov),
    )


class TVPRegression(MLEModel):
    r"""Time-varying-coefficient regression as a statsmodels ``MLEModel`` (MLE oracle).

    ``y_t = z_t' beta_t + eps_t``, ``beta_t = T beta_{t-1} + eta_t``, constant
    ``Q = Cov(eta_t)`` and ``R = Var(eps_t)``, ``beta_{-1} ~ N(a0, P0)``; same timing as
    :func:`statsmodels_filter`.

    Parameters
    ----------
    endog : (n,) array_like
        Observations y; NaN = missing.
    exog : (n, k) array_like
        Design Z (include a column of ones for an intercept). Column names of a DataFrame are
        used in ``param_names``.
    q : {"diag", "full"}
        Diagonal Q (k variances) or full Q (its lower Cholesky factor, k(k+1)/2 entries).
    T : (k, k) array_like, optional
        Constant transition; default identity (random-walk coefficients).
    a0 : (k,) array_like, optional
        Mean of ``beta_{-1}``; default 0.
    P0 : (k, k) array_like, optional
        Covariance of ``beta_{-1}``; default ``100 I``.
    burn : int
        Leading rows left out of the log-likelihood (missing ones included). For tvbeta's
        model pass the rows from the first observation on and
        ``tvbeta.kalman.arrays.burn_row(endog, b)`` for b observed steps (as
        `crosscheck_statsmodels` does).

    Notes
    -----
    Parameters (constrained): for ``q="diag"`` the state variances ``sigma2.<exog name>`` then
    ``sigma2.obs``; for ``q="full"`` the Cholesky entries ``chol.i.j`` (row-major lower
    triangle, positive diagonal) then ``sigma2.obs``, optimised on log variances / a log
    Cholesky diagonal. Units: Q in (beta units)^2 per step, ``sigma2.obs`` in (y units)^2.
    """

    def __init__(
        self,
        endog: ArrayLike,
        exog: ArrayLike,
        *,
        q: Literal["diag", "full"] = "diag",
        T: ArrayLike | None = None,
        a0: ArrayLike | None = None,
        P0: ArrayLike | None = None,
        burn: int = 0,
    ) -> None:
        check_q_form(q)
        if np.ndim(exog) != 2:
            raise ValueError(f"exog must be (n, k), got shape {np.shape(exog)}")
        k = np.shape(exog)[1]
        super().__init__(endog, k_states=k, exog=exog, k_posdef=k, loglikelihood_burn=burn)
        if not np.all(np.isfinite(self.exog)):
            raise ValueError("exog must be finite (only endog may hold NaN)")
        self.q = q
        self._T = np.eye(k) if T is None else np.asarray(T, dtype=np.float64).reshape(k, k)
        self._a0 = np.zeros(k) if a0 is None else np.asarray(a0, dtype=np.float64).reshape(k)
        self._P0 = 100.0 * np.eye(k) if P0 is None else np.asarray(P0, np.float64).reshape(k, k)
        _exact_options(self.ssm)
        self.ssm["design"] = self.exog.T[None]  # (1, k, n)
        self.ssm["selection"] = np.eye(k)
        self.ssm["transition"] = self._T
        self._tril = np.tril_indices(k)  # row-major lower triangle: (0,0), (1,0), (1,1), ...
        # Which (unconstrained) parameters live on the log scale: variances / Cholesky diagonal.
        n_q = k if q == "diag" else len(self._tril[0])
        is_log = np.ones(n_q + 1, dtype=bool)
        if q == "full":
            is_log[:-1] = self._tril[0] == self._tril[1]
        self._is_log = is_log

    @property
    def param_names(self) -> list[str]:
        """Names: ``sigma2.<exog>`` or ``chol.i.j`` for Q, then ``sigma2.obs``."""
        names = self.exog_names
        names = [names] if isinstance(names, str) else list(names)
        if self.q == "diag":
            return [f"sigma2.{name}" for name in names] + ["sigma2.obs"]
        return [f"chol.{i}.{j}" for i, j in zip(*self._tril, strict=True)] + ["sigma2.obs"]

    @property
    def start_params(self) -> FloatArray:
        """R = half the OLS residual variance; Q_jj = 1% of it per unit of mean(z_j^2)."""
        ok = np.isfinite(self.endog[:, 0])
        y, X = self.endog[ok, 0], self.exog[ok]
        resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        s2 = resid @ resid / max(ok.sum() - self.k_states, 1)
        q = 0.01 * s2 / np.mean(X**2, axis=0)  # scale of beta-variance that moves y by ~0.1 s
        if self.q == "diag":
            return np.r_[q, 0.5 * s2]
        L = np.zeros((self.k_states, self.k_states))
        L[np.diag_indices(self.k_states)] = np.sqrt(q)
        return np.r_[L[self._tril], 0.5 * s2]

    def transform_params(self, unconstrained: ArrayLike) -> FloatArray:
        """Unconstrained (log variances / log Cholesky diagonal) -> model parameters."""
        params = _float_copy(unconstrained)
        params[self._is_log] = np.exp(params[self._is_log])
        return params

    def untransform_params(self, constrained: ArrayLike) -> FloatArray:
        """Model parameters -> unconstrained; inverse of :meth:`transform_params`."""
        params = _float_copy(constrained)
        params[self._is_log] = np.log(params[self._is_log])
        return params

    def state_cov(self, params: ArrayLike) -> FloatArray:
        """Q (k, k) implied by the (constrained) parameters."""
        params = _float_copy(params)
        if self.q == "diag":
            return np.diag(params[:-1])
        L = np.zeros((self.k_states, self.k_states), dtype=params.dtype)
        L[self._tril] = params[:-1]
        return L @ L.T

    def update(self, params: ArrayLike, **kwargs: object) -> FloatArray:
        """Write Q, R and the known initialisation (``T P0 T' + Q``: depends on Q) each call."""
        params = super().update(params, **kwargs)
        Q = self.state_cov(params)
        self.ssm["state_cov"] = Q
        self.ssm["obs_cov", 0, 0] = params[-1]
        self.ssm.initialize_known(self._T @ self._a0, self._T @ self._P0 @ self._T.T + Q)
        return params
