"""KalmanSpec: the model as a frozen dataclass of arrays (no lambdas), with the seed's setters.

The model, with K states beta_t (the intercept first when there is one)::

    beta_t = T_t beta_{t-1} + eta_t,   eta_t ~ N(0, Q_t)
    y_t    = z_t' beta_t + eps_t,      eps_t ~ N(0, R_t),    z_t = [1, H_t] or H_t

starting from beta_{-1} ~ N(beta0, P0) and predicting first, as the seed did. ``KalmanSpec(K)``
gives the seed's defaults exactly: beta0 = 0, P0 = 100 I, T = I, Q = 1e-4 I, R = 1e-2.

Every setter (:mod:`tvbeta.model.setters`) returns a NEW spec, so setters chain as in the seed
notebook and a spec never changes once made. A spec is a named view over the structure
(``.model``, a `StateSpaceModel`) and the parameters (``.params``: Q, R, phi), which also check
it. With ``phi`` the betas revert to long-run means mu (`tvbeta.model.reversion`): the kernel
arrays are those of the augmented state [beta; mu] (2K states, mu integrated out), the spec and
its results keep the K betas.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from tvbeta import constants as C
from tvbeta.data.validate import column_list
from tvbeta.kalman import StateSpace, state_space
from tvbeta.model import io, reversion, setters
from tvbeta.model.structure import Parameters, StateSpaceModel, timevarying
from tvbeta.model.timevarying import SpecError, TimeVarying

_PROVENANCE = ("q_mode", "r_mode", "init_mode", "q_scalar", "r_scalar")


@dataclass(frozen=True, eq=False)
class KalmanSpec:
    """A time-varying-beta model: dimensions, matrices and where they came from.

    Attributes
    ----------
    K : int
        State dimension (number of factors, plus one with an intercept). ``KalmanSpec(K=0)``
        is the start of the intercept-only (local level) model: ``.set_intercept()`` makes it
        K = 1; a spec with no state at all is refused when run (:meth:`state_space`).
    name : str
        Model name (the seed's "Model Name").
    intercept : bool
        Whether state 0 is an intercept (design row [1, H_t]).
    T, beta0, P0
        The rest of the structure, `StateSpaceModel`'s T, a0, P0 (``.model``): transition
        (K, K) or (n, K, K); mean (K,) and covariance (K, K) of beta_{-1}.
    Q, R : TimeVarying
        The parameters (``.params``, see `Parameters`): Q (K, K) or (n, K, K) in beta^2 per
        step, R scalar or (n,) in squared return units.
    q_mode, r_mode, init_mode : str or None
        Which setter made Q, R, beta0 (e.g. "rolling_beta_var_window_20", "mle", "ols").
    q_scalar, r_scalar : float or None
        The scalar q (Q = q I) or r of the maximum-likelihood setters.
    phi : np.ndarray (K,) or None
        Mean-reverting betas' persistence per period (`Parameters.phi`; T must stay I);
        None: the betas follow T.
    """

    K: int
    name: str = C.DEFAULT_MODEL_NAME
    intercept: bool = False
    T: TimeVarying | None = None
    Q: TimeVarying | None = None
    R: TimeVarying | None = None
    beta0: np.ndarray | None = None
    P0: np.ndarray | None = None
    q_mode: str | None = None
    r_mode: str | None = None
    init_mode: str | None = None
    q_scalar: float | None = None
    r_scalar: float | None = None
    phi: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Check every field (`StateSpaceModel`, its `check`) and fill None ones with defaults.

        Raises
        ------
        SpecError
            K is not a non-negative integer, name is not a string, intercept is not a bool or
            comes with K = 0, T, Q or R is not a `TimeVarying`, beta0 or P0 has a non-finite
            value, a matrix has the wrong shape, Q or P0 is not symmetric or has a negative
            variance, R is negative, per-time matrices have different lengths, or a
            provenance field has the wrong type, or phi is not (K,) in (0, 1] or comes with
            a T other than I.
        """
        if not isinstance(self.name, str):
            raise SpecError(f"name must be a string, got {self.name!r}")
        model = self.model
        seed = Parameters.default(model.K)
        params = Parameters(timevarying(self.Q, seed.Q, "Q"), timevarying(self.R, seed.R, "R"),
                            self.phi)  # fmt: skip
        model.check(params)
        for field, value in (("K", model.K), ("intercept", model.intercept), ("T", model.T),
                             ("beta0", model.a0), ("P0", model.P0), ("Q", params.Q),
                             ("R", params.R), ("phi", params.phi)):  # fmt: skip
            object.__setattr__(self, field, value)
        for field in ("q_mode", "r_mode"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                raise SpecError(f"{field} must be a string or None, got {value!r}")
        for field in ("q_scalar", "r_scalar"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, float(value))

    @classmethod
    def from_parts(
        cls, model: StateSpaceModel, params: Parameters | None = None, **fields: Any
    ) -> KalmanSpec:
        """Return the spec of a structure and its parameters (default: `Parameters.default`).

        ``fields``: ``name`` and the provenance of Q and R (q_mode, r_mode, q_scalar, r_scalar).

        Raises
        ------
        SpecError
            ``params`` do not fit ``model`` (`StateSpaceModel.check`), or a field is wrong.
        """
        params = Parameters.default(model.K) if params is None else params
        return cls(K=model.K, intercept=model.intercept, T=model.T, Q=params.Q, R=params.R,
                   beta0=model.a0, P0=model.P0, init_mode=model.init_mode, phi=params.phi,
                   **fields)  # fmt: skip

    @property
    def model(self) -> StateSpaceModel:
        """Return the structure; its Q form is "full" for q_mode "mle_full", else "diag"."""
        q = "full" if self.q_mode == "mle_full" else "diag"
        return StateSpaceModel(self.K, self.intercept, self.T, self.beta0, self.P0, q=q,
                               init_mode=self.init_mode)  # fmt: skip

    @property
    def params(self) -> Parameters:
        """Return the parameters: Q, R and phi."""
        return Parameters(self.Q, self.R, self.phi)

    # --- identity ---------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        """Exact equality of every field (arrays compared element by element)."""
        if not isinstance(other, KalmanSpec):
            return NotImplemented
        fields = ("K", "name", "intercept", *_PROVENANCE, "T", "Q", "R")
        arrays = ("beta0", "P0", "phi")  # phi: None for both, or equal arrays
        return all(getattr(self, f) == getattr(other, f) for f in fields) and all(
            np.array_equal(getattr(self, f), getattr(other, f)) for f in arrays)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show name, K, intercept, T, Q, R, beta0, diag(P0), phi and the setters' provenance."""
        beta0 = ", ".join(f"{x:.6g}" for x in self.beta0)
        phi = "" if self.phi is None else ", ".join(f"{x:.6g}" for x in self.phi)
        phi = phi and f",\n  phi=[{phi}]"
        P0 = ", ".join(f"{x:.6g}" for x in np.diag(self.P0))
        prov = ", ".join(
            f"{f}={getattr(self, f)!r}" for f in _PROVENANCE if getattr(self, f) is not None
        )
        return (
            f"KalmanSpec(name={self.name!r}, K={self.K}, intercept={self.intercept},\n"
            f"  T={self.T!r},\n  Q={self.Q!r},\n  R={self.R!r},\n"
            f"  beta0=[{beta0}], P0 diag=[{P0}]{phi}" + (f",\n  {prov})" if prov else ")")
        )

    @property
    def has_intercept(self) -> bool:
        """The seed's name for :attr:`intercept`."""
        return self.intercept

    def require_states(self) -> None:
        """Raise unless the model has a state to estimate (K >= 1).

        Raises
        ------
        SpecError
            K = 0: no factor and no intercept; names the fix.
        """
        if self.K == 0:
            raise SpecError(
                "the spec has no state (K=0 and no intercept): add an intercept with "
                ".set_intercept() for a local level model (y_t = mu_t + eps_t), or build the "
                "spec with KalmanSpec(K=len(factor_cols)) for at least one factor column"
            )

    @property
    def n_time(self) -> int | None:
        """Rows of the data the per-time setters saw, or None when T, Q, R are constant."""
        lengths = [m.n_time for m in (self.T, self.Q, self.R) if m.per_time]
        return lengths[0] if lengths else None

    def with_name(self, name: str) -> KalmanSpec:
        """Return a copy with another name (the seed assigned ``spec.name = ...``)."""
        return dataclasses.replace(self, name=name)

    # --- kernel arrays ----------------------------------------------------------------------
    def state_space(self, y: npt.ArrayLike, Z: npt.ArrayLike) -> StateSpace:
        """Return the validated kernel arrays for y (n,), Z (n, K): T, Q (1 | n, K, K), R (1 | n,).

        With ``phi``, those of the augmented state [beta; mu] (`tvbeta.model.reversion`):
        Z (n, 2K), T(phi) (1, 2K, 2K), [[Q, 0], [0, 0]], a0 [beta0; beta0], P0 blockdiag(P0, P0).

        Raises
        ------
        SpecError
            The spec has no state (:meth:`require_states`), Z does not have K columns, or a
            per-time matrix was set from data with a different number of rows.
        """
        self.require_states()
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.K:
            raise SpecError(f"Z must be (n, K={self.K}), got shape {Z.shape}")
        n = Z.shape[0]
        if self.phi is not None:
            return state_space(y, reversion.augmented_design(Z),
                               reversion.transition(self.phi)[None],
                               reversion.augmented_q(self.Q.kernel(n, "Q")), self.R.kernel(n, "R"),
                               *reversion.augmented_initial(self.beta0, self.P0))  # fmt: skip
        return state_space(y, Z, self.T.kernel(n, "T"), self.Q.kernel(n, "Q"),
                           self.R.kernel(n, "R"), self.beta0, self.P0)  # fmt: skip

    # --- description ------------------------------------------------------------------------
    def describe(self, target_col: Hashable, factor_cols: Sequence[Hashable]) -> dict[str, Any]:
        """Return the seed's description dict (keys :data:`tvbeta.constants.DESCRIBE_KEYS`).

        "Q Type"/"R Type" are "dynamic" for per-time matrices and "constant" otherwise; the
        observation and transition are described in words (the seed printed lambda types).
        """
        return {
            "Model Name": self.name,
            "K (State Dim)": self.K,
            "Has Intercept": self.intercept,
            "Target Column": target_col,
            "Factor Columns": column_list(factor_cols),
            "Initial Beta": self.beta0.tolist(),
            "Initial Covariance (P_0 diag)": np.diag(self.P0).tolist(),
            "Q Type": C.DYNAMIC if self.Q.per_time else C.CONSTANT,
            "R Type": C.DYNAMIC if self.R.per_time else C.CONSTANT,
            "Q Scalar": self.q_scalar,
            "R Scalar": self.r_scalar,
            "Q Mode": self.q_mode,
            "R Mode": self.r_mode,
            "Observation Function": _describe_observation(self.intercept, self.K),
            "Transition Function": _describe_transition(self.T, self.K, self.phi),
        }

    # --- save / load ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of Python scalars and lists (exact), None fields left out."""
        return io.spec_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KalmanSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**io.spec_kwargs_from_dict(d))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the spec to ``.toml`` or ``.json`` (exact round trip)."""
        io.save_dict(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KalmanSpec:
        """Read a spec written by :meth:`save`.

        Raises
        ------
        SavedFileError
            The file is truncated, corrupt or not a spec file (the message names it).
        """
        d = io.load_dict(path)
        try:
            return cls.from_dict(d)
        except (SpecError, TypeError, ValueError) as err:
            raise io.unreadable(path, "tvbeta spec file", str(err)) from err

    # --- the seed's setters (each returns a new spec; see tvbeta.model.setters) -------------
    def set_intercept(self, init_val: float = 0.0) -> KalmanSpec:
        """Return a copy with an intercept as the first state (K + 1 states)."""
        return setters.set_intercept(self, init_val)

    def set_initial_state_from_ols(self, H, y) -> KalmanSpec:
        """Return a copy with beta0 from a full-sample OLS of y on H."""
        return setters.set_initial_state_from_ols(self, H, y)

    def set_Q_from_factor_vols(self, H) -> KalmanSpec:
        """Return a copy with Q the diagonal of the factors' sample variances."""
        return setters.set_Q_from_factor_vols(self, H)

    def set_Q_from_rolling_beta_var(self, df: pd.DataFrame, target_col, factor_cols,
                                    window: int = 20, min_val: float = 1e-8,
                                    scale: float = 1.0) -> KalmanSpec:  # fmt: skip
        """Return a copy with Q_t from the rolling variance of rolling OLS betas."""
        return setters.set_Q_from_rolling_beta_var(self, df, target_col, factor_cols, window,
                                                   min_val, scale)  # fmt: skip

    def set_Q_from_rolling_residual_vol(self, df: pd.DataFrame, target_col, factor_cols,
                                        window: int = 20, scale: float = 1.0, burn: int = 0,
                                        min_val: float = 1e-8,
                                        alignment: Literal["seed", "causal"] = "seed",
                                        ) -> KalmanSpec:  # fmt: skip
        """Return a copy with Q_t from the rolling variance of the innovations."""
        return setters.set_Q_from_rolling_residual_vol(self, df, target_col, factor_cols, window,
                                                       scale, burn, min_val, alignment)  # fmt: skip

    def set_Q(self, Q) -> KalmanSpec:
        """Return a copy with Q as given."""
        return setters.set_Q(self, Q)

    def set_R(self, R) -> KalmanSpec:
        """Return a copy with R as given."""
        return setters.set_R(self, R)

    def set_R_from_ols(self, H, y) -> KalmanSpec:
        """Return a copy with R the variance of the full-sample OLS residuals."""
        return setters.set_R_from_ols(self, H, y)

    def set_R_from_rolling_factor_vols(self, H, window: int = 20,
                                       min_val: float = 1e-6) -> KalmanSpec:  # fmt: skip
        """Return a copy with R_t from the factors' rolling volatilities."""
        return setters.set_R_from_rolling_factor_vols(self, H, window, min_val)

    def set_R_from_rolling_ols_residuals(
        self, df: pd.DataFrame, target_col, factor_cols, window: int = 20, min_val: float = 1e-6
    ) -> KalmanSpec:
        """Return a copy with R_t the variance of rolling OLS residuals."""
        return setters.set_R_from_rolling_ols_residuals(self, df, target_col, factor_cols, window,
                                                        min_val)  # fmt: skip

    def set_Q_from_mle(self, df: pd.DataFrame, target_col, factor_cols, burn: int = 0):
        """Return a copy with Q = q I_K, q by the seed's scalar MLE."""
        return setters.set_Q_from_mle(self, df, target_col, factor_cols, burn)

    def set_R_from_mle(self, df: pd.DataFrame, target_col, factor_cols, burn: int = 0):
        """Return a copy with R = r, r by the seed's scalar MLE."""
        return setters.set_R_from_mle(self, df, target_col, factor_cols, burn)


# the setters' docstrings are the reference: they replace the methods' one-line ones
for _name in (
    "set_intercept", "set_initial_state_from_ols", "set_Q_from_factor_vols",
    "set_Q_from_rolling_beta_var", "set_Q_from_rolling_residual_vol", "set_R_from_ols",
    "set_R_from_rolling_factor_vols", "set_R_from_rolling_ols_residuals", "set_Q_from_mle",
    "set_R_from_mle", "set_Q", "set_R",
):  # fmt: skip
    getattr(KalmanSpec, _name).__doc__ = getattr(setters, _name).__doc__


def _describe_observation(intercept: bool, K: int) -> str:
    if intercept and K == 1:
        return "z_t = 1 (the intercept alone: a local level, y_t = beta_t + eps_t)"
    if intercept:
        return "z_t = [1, H_t] (intercept first, then the factor returns)"
    return "z_t = H_t (the factor returns)"


def _describe_transition(T: TimeVarying, K: int, phi: np.ndarray | None) -> str:
    if phi is not None:
        return (
            f"beta_t - mu = diag(phi) (beta_(t-1) - mu) + eta_t (mean-reverting, phi = "
            f"{[round(float(x), 6) for x in phi]}, long-run means mu integrated out)"
        )
    if not T.per_time and np.array_equal(T.values, np.eye(K)):
        return f"beta_t = beta_(t-1) + eta_t (T = I_{K}, random walk)"
    kind = "per time step" if T.per_time else "constant"
    return f"beta_t = T_t beta_(t-1) + eta_t (T {kind}, {K}x{K})"
