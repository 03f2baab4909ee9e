"""KalmanResult: the full time-first output of one run, with pandas and xarray views.

The result keeps every step's arrays. The seed's outputs are properties that drop the first
``burn`` observed steps as the seed did, and ``result[key]`` gives them under the seed's dict
keys, so code written for the seed's result dict keeps working (``results["beta"]``,
``results["meta"]["Fund"] = ...``).

Timing: "pred" is t|t-1 (before y_t), "filtered" (``beta``) t|t, "smooth" t|n.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from tvbeta import constants as C
from tvbeta.data.validate import Design, format_span
from tvbeta.kalman.arrays import burn_row
from tvbeta.kalman.smoother import SmootherOutput

if TYPE_CHECKING:
    import xarray as xr

    from tvbeta.model.spec import KalmanSpec

# the per-step outputs of the long frame and the Dataset, by their dims (`constants.DIMS`)
_STATE_VARS = ("beta", "beta_sd", "beta_pred", "beta_smooth", "beta_smooth_sd", "kalman_gain")
_TIME_VARS = ("y", "y_pred", "residuals", "F", "log_likelihood_t")


@dataclass(frozen=True, eq=False)
class KalmanResult:
    """Output of :meth:`tvbeta.model.KalmanEngine.run` for every one of the n steps.

    Attributes
    ----------
    design : tvbeta.data.Design
        The validated data: index (n,), y (n,), H (n, n_factors), Z (n, k), state_names (k,).
    output : tvbeta.kalman.SmootherOutput
        Kernel output: ``output.filtered`` (a_pred, P_pred, a_filt, P_filt, v, F, K,
        loglik_t) and ``a_smooth`` (n, k), ``P_smooth`` (n, k, k). Arrays are read-only.
    target_name : str
        Name of the target column.
    burn : int
        Observed steps dropped from the seed-style views and from ``log_likelihood``: the
        views start at :attr:`first_row`. Rows before the first observed target are not part
        of the model (NaN states in ``output``) and are never in the views.
    spec : KalmanSpec or None
        The spec that produced the result.
    meta : dict
        The spec's ``describe()`` dict; a mutable dict of this result (the seed's code adds
        keys such as ``results["meta"]["Fund"]``).
    """

    design: Design
    output: SmootherOutput
    target_name: str
    burn: int = 0
    spec: KalmanSpec | None = None
    meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        """Start ``meta`` as an empty dict if None and make the result's arrays read-only."""
        if self.meta is None:
            object.__setattr__(self, "meta", {})
        arrays = (*self.output.filtered[:-1], self.output.a_smooth, self.output.P_smooth)
        for arr in (*arrays, self.design.y, self.design.H, self.design.Z):
            arr.setflags(write=False)  # views handed out below must not change the result

    # --- labels -------------------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        """("Intercept", *factors) with an intercept, else the factor names: (k,)."""
        return self.design.state_names

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Names of the factor columns, without the intercept: (n_factors,)."""
        return self.design.factor_names

    @property
    def first_row(self) -> int:
        """Row of the first step after the burn-in: the (burn+1)-th observed target (`burn_row`)."""
        return burn_row(self.design.y, self.burn)

    @property
    def time_index(self) -> pd.Index:
        """Index of the steps after the burn-in: (n - first_row,)."""
        return self.design.index[self.first_row :]

    def _frame(self, arr: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
        return pd.DataFrame(arr[self.first_row :], index=self.time_index, columns=list(columns),
                            copy=True)  # fmt: skip

    def _series(self, arr: np.ndarray, name: str) -> pd.Series:
        return pd.Series(arr[self.first_row :], index=self.time_index, name=name, copy=True)

    def _covs(self, P: np.ndarray) -> dict[Hashable, np.ndarray]:
        return {t: P[i].copy() for i, t in enumerate(self.time_index, start=self.first_row)}

    def _sd(self, P: np.ndarray) -> pd.DataFrame:
        return self._frame(diagonal_sd(P), self.state_names)

    def state_moments(self, kind: Literal["filtered", "smoothed"]) -> tuple[np.ndarray, np.ndarray]:
        """Return the states' means and sds after the burn-in, arrays (steps after burn, k).

        As `beta` and `beta_sd` (filtered) or `beta_smooth` and `beta_smooth_sd` (smoothed),
        without their DataFrames (which cost more than the smoother for one fund).
        """
        out = self.output
        a, P = (out.filtered.a_filt, out.filtered.P_filt) if kind == "filtered" \
            else (out.a_smooth, out.P_smooth)  # fmt: skip
        return a[self.first_row :].copy(), diagonal_sd(P)[self.first_row :]

    # --- the seed's outputs (after burn) ------------------------------------------------------
    @property
    def beta(self) -> pd.DataFrame:
        """Filtered states beta_{t|t}: DataFrame (steps after burn, k), columns ``state_names``."""
        return self._frame(self.output.filtered.a_filt, self.state_names)

    @property
    def beta_cov(self) -> dict[Hashable, np.ndarray]:
        """Filtered covariances P_{t|t}: dict date -> (k, k) array (copies)."""
        return self._covs(self.output.filtered.P_filt)

    @property
    def y_pred(self) -> pd.Series:
        """One-step predictions z_t' beta_{t|t-1}: Series (steps after burn,)."""
        a_pred = self.output.filtered.a_pred
        return self._series(np.einsum("tk,tk->t", self.design.Z, a_pred), "y_pred")

    @property
    def residuals(self) -> pd.Series:
        """Innovations v_t = y_t - z_t' beta_{t|t-1} (NaN where y is missing)."""
        return self._series(self.output.filtered.v, "residuals")

    @property
    def kalman_gain(self) -> pd.DataFrame:
        """Gains K_t = P_{t|t-1} z_t / F_t: DataFrame (steps after burn, k)."""
        return self._frame(self.output.filtered.K, self.state_names)

    @property
    def log_likelihood(self) -> float:
        """Sum of log p(y_t | y_{<t}) after the first ``burn`` observed steps (nats)."""
        return float(np.sum(self.output.filtered.loglik_t[self.first_row :]))

    @property
    def log_likelihood_t(self) -> pd.Series:
        """Per-step log p(y_t | y_{<t}) (0 where y is missing)."""
        return self._series(self.output.filtered.loglik_t, "log_likelihood")

    @property
    def H(self) -> pd.DataFrame:
        """Factor returns: DataFrame (steps after burn, n_factors)."""
        return self._frame(self.design.H, self.factor_names)

    # --- more outputs -------------------------------------------------------------------------
    @property
    def y(self) -> pd.Series:
        """The target y_t."""
        return self._series(self.design.y, self.target_name)

    @property
    def F(self) -> pd.Series:
        """Innovation variances F_t = z_t' P_{t|t-1} z_t + R_t (squared return units)."""
        return self._series(self.output.filtered.F, "F")

    @property
    def beta_pred(self) -> pd.DataFrame:
        """Predicted states beta_{t|t-1}."""
        return self._frame(self.output.filtered.a_pred, self.state_names)

    @property
    def beta_sd(self) -> pd.DataFrame:
        """Filtered standard deviations sqrt(diag P_{t|t})."""
        return self._sd(self.output.filtered.P_filt)

    @property
    def beta_smooth(self) -> pd.DataFrame:
        """Smoothed states beta_{t|n} = E[beta_t | all y]."""
        return self._frame(self.output.a_smooth, self.state_names)

    @property
    def beta_smooth_cov(self) -> dict[Hashable, np.ndarray]:
        """Smoothed covariances P_{t|n}: dict date -> (k, k)."""
        return self._covs(self.output.P_smooth)

    @property
    def beta_smooth_sd(self) -> pd.DataFrame:
        """Smoothed standard deviations sqrt(diag P_{t|n}) (NaN where rounding made it < 0)."""
        return self._sd(self.output.P_smooth)

    # --- the seed's dict interface ------------------------------------------------------------
    def keys(self) -> list[str]:
        """Return the seed's result keys."""
        return list(C.SEED_RESULT_KEYS)

    def __getitem__(self, key: str) -> Any:
        """Return the attribute ``key`` for one of the seed's result keys.

        Raises
        ------
        KeyError
            ``key`` is not a seed key (the message lists them).
        """
        if key not in C.SEED_RESULT_KEYS:
            raise KeyError(
                f"{key!r}: the seed's keys are {list(C.SEED_RESULT_KEYS)}; other outputs are "
                "attributes (beta_smooth, beta_sd, y, F, ...)"
            )
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]`` for a seed key, else ``default`` (as ``dict.get``)."""
        return self[key] if key in C.SEED_RESULT_KEYS else default

    def __contains__(self, key: object) -> bool:
        """Tell whether ``key`` is one of the seed's result keys."""
        return key in C.SEED_RESULT_KEYS

    def __iter__(self) -> Iterator[str]:
        """Iterate over the seed's result keys."""
        return iter(C.SEED_RESULT_KEYS)

    # --- labelled exports ---------------------------------------------------------------------
    def to_xarray(self) -> xr.Dataset:
        """Return the steps after burn as an xarray Dataset.

        Dims ``time`` (steps after burn), ``state`` and ``state_`` (k): states and gains are
        (time, state), covariances (time, state, state_), ``design`` the rows z_t. Attributes
        hold the meta (strings and numbers only), target, burn and log-likelihood.
        """
        import xarray as xr  # only this method needs it

        f, b = self.output.filtered, self.first_row
        values = {name: getattr(self, name).to_numpy() for name in _TIME_VARS + _STATE_VARS}
        values.update(design=self.design.Z[b:], beta_cov=f.P_filt[b:],
                      beta_pred_cov=f.P_pred[b:], beta_smooth_cov=self.output.P_smooth[b:])
        data = {name: (C.DIMS[name], np.array(v)) for name, v in values.items()}
        names = list(self.state_names)
        coords = {C.TIME: self.time_index.to_numpy(), C.STATE: names, C.STATE2: names}
        attrs = _netcdf_attrs(self.meta)
        attrs.update(target=self.target_name, burn=self.burn, log_likelihood=self.log_likelihood)
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def to_frame(self) -> pd.DataFrame:
        """Tidy long frame of the steps after burn: columns time, state, variable, value.

        Per-state series (beta, beta_sd, beta_pred, beta_smooth, beta_smooth_sd,
        kalman_gain) have one row per (time, state); per-time series (y, y_pred, residuals,
        F, log_likelihood_t) one row per time with state NA.
        """
        t, names = self.time_index, np.asarray(self.state_names, dtype=object)
        parts = [pd.DataFrame({C.TIME: t.repeat(len(names)), C.STATE: np.tile(names, len(t)),
                               C.VARIABLE: name, C.VALUE: getattr(self, name).to_numpy().ravel()})
                 for name in _STATE_VARS]  # fmt: skip
        parts += [pd.DataFrame({C.TIME: t, C.STATE: pd.NA, C.VARIABLE: name,
                                C.VALUE: getattr(self, name).to_numpy()}) for name in _TIME_VARS]
        frame = pd.concat(parts, ignore_index=True)
        frame[C.STATE] = frame[C.STATE].astype("string")
        return frame

    def __repr__(self) -> str:
        """Show model name, target, states, steps after burn, their dates and log-likelihood."""
        t = self.time_index
        return (
            f"KalmanResult(model={self.meta.get('Model Name')!r}, target={self.target_name!r}, "
            f"states={list(self.state_names)}, steps={len(t)} after burn={self.burn} "
            f"({format_span(t)}), log_likelihood={self.log_likelihood:.6g})"
        )


def _netcdf_attrs(meta: dict[str, Any]) -> dict[str, Any]:
    """Meta values as netCDF-safe attributes: strings, numbers, or lists of numbers."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, bool | np.bool_) or value is None:
            out[key] = str(value)
        elif isinstance(value, int | float | np.integer | np.floating | str):
            out[key] = value
        elif isinstance(value, list | tuple) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            out[key] = np.asarray(value, dtype=np.float64)
        else:
            out[key] = json.dumps(value, default=str)
    return out


def diagonal_sd(P: np.ndarray) -> np.ndarray:
    """Return sqrt(diag P_t), (n, k), of covariances P (n, k, k).

    A variance that rounding made negative gives NaN, not a silent 0: with a huge prior (the
    seed's P0[0, 0] = 1e6 for the intercept) the first smoothed variances can lose all their
    digits.
    """
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.diagonal(P, axis1=1, axis2=2))
