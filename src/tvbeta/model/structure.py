"""The model apart from its parameters: `StateSpaceModel` (structure) and `Parameters` (values).

The structure says what the model is: K states (the intercept first when there is one), the
transition T, the initial state beta_{-1} ~ N(a0, P0) and the form of Q the estimators fit.
The parameters are the values an estimator (MLE, grid, Bayes) or a setter gives it: Q and R,
and phi for mean-reverting betas (`tvbeta.model.reversion`).
`tvbeta.model.KalmanSpec`, the seed's API, is a named view over the two (``.model``,
``.params``, ``KalmanSpec.from_parts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tvbeta import constants as C
from tvbeta.model.timevarying import SpecError, TimeVarying, frozen_array

QForm = Literal["diag", "full"]


def check_q_form(q: object) -> None:
    """Refuse a Q form not in `Q_FORMS`: every function taking ``q`` calls this first.

    Raises
    ------
    ValueError
        ``q`` is not "diag" or "full".
    """
    if not isinstance(q, str) or q not in C.Q_FORMS:
        raise ValueError(
            f"q must be 'diag' (independent drifts, one variance per state) or 'full' "
            f"(correlated drifts, a full covariance), got {q!r}"
        )


def timevarying(value: TimeVarying | None, default: TimeVarying, field: str) -> TimeVarying:
    """Return ``value``, or ``default`` for None; SpecError for anything but a `TimeVarying`."""
    if value is None:
        return default
    if not isinstance(value, TimeVarying):
        raise SpecError(f"{field} must be a TimeVarying; wrap the array as "
                        "TimeVarying.constant(...) or TimeVarying.per_step(...)")  # fmt: skip
    return value


def _check_covariance(field: str, arr: np.ndarray) -> None:
    if not np.array_equal(arr, np.swapaxes(arr, -1, -2)):
        raise SpecError(f"{field} must be symmetric")
    if np.any(np.diagonal(arr, axis1=-2, axis2=-1) < 0):
        raise SpecError(f"{field} has a negative variance on its diagonal")


@dataclass(frozen=True, eq=False)
class StateSpaceModel:
    """The structure of a time-varying-beta model, validated when made.

    Attributes
    ----------
    K : int
        Number of states (factors, plus one with an intercept); 0 only as the start of an
        intercept-only model (`KalmanSpec.require_states` refuses to run it).
    intercept : bool
        Whether state 0 is an intercept (design row [1, H_t]).
    T : TimeVarying
        Transition, (K, K) constant or (n, K, K) per time step; default I (random walk).
    a0 : np.ndarray, (K,)
        Mean of beta_{-1}, the state before the first prediction; default 0.
    P0 : np.ndarray, (K, K)
        Covariance of beta_{-1} (symmetric, non-negative variances); default 100 I.
    q : {"diag", "full"}
        The form of Q the estimators fit: independent or correlated drifts.
    init_mode : str or None
        Where a0 and P0 came from (e.g. "ols", "prior").

    Raises
    ------
    SpecError
        K is not a non-negative integer, intercept is not a bool or comes with K = 0, T is not
        a `TimeVarying` or not (K, K), a0 or P0 has a non-finite value or the wrong shape, P0
        is not symmetric or has a negative variance, init_mode is not a string.
    ValueError
        ``q`` is not "diag" or "full".
    """

    K: int
    intercept: bool = False
    T: TimeVarying | None = None
    a0: np.ndarray | None = None
    P0: np.ndarray | None = None
    q: QForm = "diag"
    init_mode: str | None = None

    def __post_init__(self) -> None:
        """Check every field and fill T, a0 and P0 left as None with the seed's defaults."""
        K = self.K
        if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 0:
            raise SpecError(
                f"K (the number of states) must be a non-negative integer, got {K!r}: "
                "KalmanSpec(K=len(factor_cols)), then .set_intercept() for an intercept"
            )
        K = int(K)
        if not isinstance(self.intercept, bool | np.bool_):
            raise SpecError(f"intercept must be a bool, got {self.intercept!r}")
        if self.intercept and K < 1:
            raise SpecError("a spec with an intercept needs K >= 1 (the intercept is a state)")
        check_q_form(self.q)
        if self.init_mode is not None and not isinstance(self.init_mode, str):
            raise SpecError(f"init_mode must be a string or None, got {self.init_mode!r}")
        T = timevarying(self.T, TimeVarying.constant(np.eye(K)), "T")
        a0 = frozen_array(np.zeros(K) if self.a0 is None else self.a0, "beta0")
        P0 = frozen_array(C.DEFAULT_P0_SCALE * np.eye(K) if self.P0 is None else self.P0, "P0")
        if T.event_shape != (K, K):
            raise SpecError(f"T must be {(K, K)} at each step for K={K}, got {T.event_shape}")
        if a0.shape != (K,) or P0.shape != (K, K):
            raise SpecError(f"beta0 must be ({K},) and P0 ({K}, {K}), got {a0.shape}, {P0.shape}")
        _check_covariance("P0", P0)
        for field, value in (("K", K), ("intercept", bool(self.intercept)), ("T", T),
                             ("a0", a0), ("P0", P0)):  # fmt: skip
            object.__setattr__(self, field, value)

    def check(self, params: Parameters) -> None:
        """Raise unless ``params`` fit this structure.

        Raises
        ------
        SpecError
            Q is not (K, K) or R not scalar at each step, Q is not symmetric or has a negative
            variance, R is negative, T, Q and R were set per time step from data of
            different lengths, or phi is not (K,) in (0, 1] or comes with a T other than I.
        """
        K = self.K
        if params.phi is not None:
            _check_phi(params.phi, self.T, K)
        for field, shape in (("Q", (K, K)), ("R", ())):
            got = getattr(params, field).event_shape
            if got != shape:
                raise SpecError(f"{field} must be {shape} at each step for K={K}, got {got}")
        _check_covariance("Q", params.Q.values)
        if np.any(params.R.values < 0):
            raise SpecError("R (observation variance) must be >= 0")
        steps = {"T": self.T.n_time, "Q": params.Q.n_time, "R": params.R.n_time}
        if len({n for n in steps.values() if n is not None}) > 1:
            raise SpecError(
                f"per-time matrices were set from data of different lengths {steps}: "
                "call every setter on the same DataFrame"
            )


def _check_phi(phi: np.ndarray, T: TimeVarying, K: int) -> None:
    """Refuse a phi that is not (K,) in (0, 1], or one with a transition other than I."""
    if phi.shape != (K,) or not np.all((phi > 0) & (phi <= 1)):
        raise SpecError(f"phi (the betas' persistence per period) must be {K} values in (0, 1] "
                        f"(1: a random walk), got {phi.tolist()}")  # fmt: skip
    if T.per_time or not np.array_equal(T.values, np.eye(K)):
        raise SpecError(
            "phi builds the transition of mean-reverting betas, T(phi) of "
            "tvbeta.model.reversion: leave T at the identity (its default)"
        )


@dataclass(frozen=True, eq=False)
class Parameters:
    """The values of a model: state-noise covariance Q, observation variance R (and phi).

    Attributes
    ----------
    Q : TimeVarying
        (K, K) constant or (n, K, K) per time step, symmetric with non-negative variances;
        in beta^2 per step.
    R : TimeVarying
        Scalar constant or (n,) per time step, >= 0 (squared return units).
    phi : np.ndarray (K,) or None
        Mean-reverting betas' persistence per period, beta_t - mu = diag(phi) (beta_{t-1} -
        mu) + eta_t with the long-run means mu integrated out (`tvbeta.model.reversion`); each
        in (0, 1], 1 a random walk. None: beta_t = T_t beta_{t-1} + eta_t.

    Checked against a structure by `StateSpaceModel.check`.
    """

    Q: TimeVarying
    R: TimeVarying
    phi: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Freeze phi (SpecError for a non-finite value)."""
        if self.phi is not None:
            object.__setattr__(self, "phi", frozen_array(self.phi, "phi"))

    @classmethod
    def default(cls, K: int) -> Parameters:
        """Return the seed's defaults for K states: Q = 1e-4 I, R = 1e-2."""
        return cls(TimeVarying.constant(C.DEFAULT_Q_SCALE * np.eye(K)),
                   TimeVarying.constant(C.DEFAULT_R))  # fmt: skip
