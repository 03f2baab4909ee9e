"""Priors on Q and R, and the initial state, in the units of the data.

Default priors (all overridable through `Priors`):

* ``sigma_eps`` (R = sigma_eps^2, return units per period) ~ HalfNormal(sigma = eps_scale *
  s_ols), s_ols the OLS residual sd of y on Z after the first ``burn`` observed steps;
  eps_scale = 1 (the TVP model's noise is smaller than the OLS residual).
* ``sigma_beta[j]`` (Q = diag(sigma_beta^2), or the sds of a full Q; beta units per period)
  ~ HalfNormal(sigma = drift / sqrt(ppy)), ppy the periods per year (daily 252, weekly 52,
  monthly 12, quarterly 4, annual 1). For a factor, drift = beta_drift_per_year = 0.5 (a beta
  may plausibly move by about 0.5 in a year); for the intercept, drift =
  intercept_drift_per_year * sd(y) = 0.1 sd(y).
* ``shrinkage="horseshoe"`` (diagonal Q): sigma_beta[j] ~ HalfNormal(scale_j lambda~_j), the
  same per-state scale times a regularised horseshoe (global ``horseshoe_global`` = 1, slab
  ``horseshoe_slab`` = 2), which pulls the drift of betas the data do not move towards 0
  (`tvbeta.estimate.bayes.model.horseshoe_sigma_beta`).
* ``betas="mean_reverting"``: beta_t - mu = diag(phi) (beta_{t-1} - mu) + eta_t with the
  one-year persistence phi_annual = phi^ppy ~ Beta(reversion_a = 4, reversion_b = 1) per state:
  the density rises to phi_annual = 1 (the random walk), its median 0.84 is a four-year
  half-life, 10% of the mass is below 0.56 (half-life 1.2 years); mu ~ N(a0, P0), the initial
  state's prior, integrated out by the filter (`tvbeta.model.reversion`).
* full Q: Q = diag(sigma_beta) C diag(sigma_beta) with C ~ LKJ(eta = lkj_eta = 2) through
  ``pm.LKJCholeskyCov`` and the same sigma_beta priors.
* initial state beta_{-1} ~ N(a0, P0): a0 = OLS coefficients on the first ``initial_window``
  observed steps (default max(burn, 2k + 2, one year of rows), at most all) or 0
  (``initial_mean="zero"``); P0 = diag((initial_sd_scale * se)^2), se the OLS standard errors
  there, initial_sd_scale = 10, floored at ``initial_sd_floor`` times the one-year prior drift
  (weakly informative). The MLE uses the same (a0, P0, burn) through `initial_state`.

What NUTS sees: sigma_eps and the sigma_beta of a diagonal Q, with a HalfNormal (the default),
HalfStudentT or HalfCauchy prior, are sampled as z = +-sigma / scale on the whole real line
(`tvbeta.estimate.bayes.model.SignedScale`), not as log sigma (for mean-reverting betas
sigma_beta sqrt(g(phi)), halfway towards the drift over a year, with the same prior:
`tvbeta.estimate.bayes.model.reverting_sigma_beta`); other families, and the sds
inside a full Q's LKJCholeskyCov, keep PyMC's log transform. Why: near sigma -> 0 the marginal
likelihood is flat in sigma, so in u = log sigma the posterior follows the prior's e^u p(e^u),
a tail to u -> -inf that one NUTS step size explores slowly (tail ESS < 400, R-hat > 1.01 at
the demo's settings) and that meets the likelihood's ridges (correlated factors whose drifts
trade off) in a funnel-like neck (divergences on the seed's FPE on PFF, ICVT and HYG). These
priors' log densities depend on sigma^2, like the likelihood, so the reflected density is
smooth through z = 0: no neck, same prior (the signed sd of Frühwirth-Schnatter & Wagner 2010,
J. Econometrics 154(1), 85-100, and of shrinkTVP: Bitto & Frühwirth-Schnatter 2019,
J. Econometrics 210(1), 75-97). It stays Gaussian-tailed in z, where an exp-type map (log,
asinh) makes a doubly exponential wall that large NUTS steps hit (at target_accept 0.8).

Priors are given in Python (``Priors(sigma_eps=Prior("HalfStudentT", {"nu": 3}))``) or from a
dict / TOML table (``Priors.from_dict({"sigma_eps": {"dist": "HalfNormal", "sigma": 0.01}})``).
A `Prior` without its scale parameter gets the default scale above.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from tvbeta._warn import warn_caller
from tvbeta.data.validate import closest, median_spacing_days
from tvbeta.kalman.arrays import burn_row

__all__ = [
    "InitialState",
    "Prior",
    "PriorScaleWarning",
    "Priors",
    "ResolvedPriors",
    "initial_state",
    "periods_per_year",
    "resolve_priors",
]

# Positive distributions allowed for a scale, and the name of their scale parameter (the one the
# default fills in when absent; None: the user must give every parameter).
SCALE_PARAM: dict[str, str | None] = {
    "HalfNormal": "sigma",
    "HalfStudentT": "sigma",
    "HalfCauchy": "beta",
    "Exponential": "scale",
    "Gamma": None,
    "InverseGamma": None,
    "LogNormal": None,
    "Weibull": None,
}

# Every parameter each distribution takes in PyMC (PyMC passes unknown keywords on silently,
# so a misspelt "sigmaa" would be ignored and the default scale used instead).
PARAMS: dict[str, tuple[str, ...]] = {
    "HalfNormal": ("sigma", "tau"),
    "HalfStudentT": ("nu", "sigma", "lam"),
    "HalfCauchy": ("beta",),
    "Exponential": ("scale", "lam"),
    "Gamma": ("alpha", "beta", "mu", "sigma"),
    "InverseGamma": ("alpha", "beta", "mu", "sigma"),
    "LogNormal": ("mu", "sigma", "tau"),
    "Weibull": ("alpha", "beta"),
}
# Parameters that replace the scale parameter, and the scale each gives (PyMC's
# parametrisations: a precision tau = sigma^-2, lam = sigma^-2 of HalfStudentT, a rate lam =
# 1 / scale): `_fill` writes the scale, which the model reads (its signed coordinates).
SCALE_ALTERNATIVES: dict[str, dict[str, Any]] = {
    "HalfNormal": {"tau": lambda tau: tau**-0.5},
    "HalfStudentT": {"lam": lambda lam: lam**-0.5},
    "Exponential": {"lam": lambda lam: 1.0 / lam},
}
# Parameters that may be any real number (every other one must be > 0).
REAL_PARAMS: dict[str, tuple[str, ...]] = {"LogNormal": ("mu",)}
# Parameter sets of which one must be complete once the default scale is filled in.
NEEDED: dict[str, tuple[tuple[str, ...], ...]] = {
    "HalfStudentT": (("nu",),),
    "Gamma": (("alpha", "beta"), ("mu", "sigma")),
    "InverseGamma": (("alpha", "beta"), ("mu", "sigma")),
    "LogNormal": (("sigma",), ("tau",)),
    "Weibull": (("alpha", "beta"),),
}

EXACT_FIT = 1e-8
"""An OLS residual sd below this fraction of sd(y) is an exact fit (rounding noise), not a
noise scale for the default sigma_eps prior."""

FREQUENCIES: dict[str, float] = {
    "daily": 252.0, "business": 252.0, "weekly": 52.0, "monthly": 12.0,
    "quarterly": 4.0, "annual": 1.0, "yearly": 1.0,
}  # fmt: skip


@dataclass(frozen=True)
class Prior:
    """A positive PyMC distribution for a standard deviation.

    dist : a name in `SCALE_PARAM` (a ``pymc`` distribution); params : its keyword arguments,
    scalars or, for ``sigma_beta``, one value per state. A missing scale parameter (e.g.
    ``sigma`` of a HalfNormal) is filled with the data-based default.
    """

    dist: str = "HalfNormal"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse an unknown distribution or parameter, or a bad value (ValueError)."""
        if self.dist not in SCALE_PARAM:
            raise ValueError(
                f"prior {self.dist!r} is not a positive distribution tvbeta knows;"
                f"{closest(str(self.dist), SCALE_PARAM)} use one of {sorted(SCALE_PARAM)}"
            )
        object.__setattr__(self, "params", dict(self.params))
        for name, value in self.params.items():
            _check_param(self.dist, name, value)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prior:
        """{"dist": "HalfNormal", "sigma": 0.01} -> Prior("HalfNormal", {"sigma": 0.01})."""
        d = dict(d)
        return cls(d.pop("dist", "HalfNormal"), d)

    def to_dict(self) -> dict[str, Any]:
        """{"dist": ..., **params}, the form `from_dict` and a TOML table take."""
        out = {"dist": self.dist}
        out.update({k: _plain(v) for k, v in self.params.items()})
        return out


@dataclass(frozen=True)
class Priors:
    """Prior settings; every field has a documented, unit-aware default (module docstring).

    sigma_eps, sigma_beta : explicit `Prior`s, or None for HalfNormal with the default scale.
    beta_drift_per_year : plausible change of a factor beta in one year (beta units).
    intercept_drift_per_year : plausible change of the intercept in a year, in units of sd(y).
    eps_scale : default sigma_eps scale in units of the OLS residual sd.
    lkj_eta : LKJ shape of the correlation of a full Q (1 = uniform; larger favours 0).
    initial_mean : "ols" (OLS on the initial window) or "zero".
    initial_window : observed steps used for the initial OLS (None: max(burn, 2k + 2, one year
        of rows)).
    initial_sd_scale : P0 sd in units of the OLS standard error.
    initial_sd_floor : lower bound of the P0 sd, in units of the one-year prior drift.
    a0, P0 : explicit initial mean (k,) and covariance (k, k); override the rules above.
    gamma_sd : sd of the Normal(0, gamma_sd) prior of gamma, the elasticity of a
        volatility-scaled R_t = sigma_eps^2 h_t^gamma (0: today's constant R; 1: R_t
        proportional to the index). Fitting, h_t comes from the observed returns; simulating
        the model (prior predictive, SBC), h_t feeds on the simulated noise, and a gamma above
        ~1.5, within 1.5 sd of this prior, makes that loop explode (log h_t ~ 700 within 60
        weeks in a simulation of 4 funds x 80 weeks): simulate with gamma_sd <= 0.5
        (`tests/estimate/bayes/test_pooled_sbc.py` does).
    index_half_life_sd : 0 (default) keeps the volatility index's half-life fixed at its
        default (`tvbeta.model.volatility`: six months); > 0 samples it too, in years, from
        LogNormal(log(that default), index_half_life_sd) (0.75: a 95% prior range of about
        0.11 to 2.2 years for a six-month default), the index then re-averaged per draw
        (`tvbeta.estimate.bayes.index_op`). Only with ``noise="volatility"``.
    horseshoe_global : scale of the HalfCauchy prior of the global shrinkage tau of
        ``shrinkage="horseshoe"`` (1: the default drift scale).
    horseshoe_slab : the horseshoe's slab c, the largest prior drift sd in units of the
        default one (`tvbeta.estimate.bayes.model.horseshoe_sigma_beta`).
    reversion_a, reversion_b : the Beta(a, b) prior of the one-year persistence phi^ppy of
        mean-reverting betas (``betas="mean_reverting"``; a > 1 = b puts the mode at 1, the
        random walk).
    """

    sigma_eps: Prior | None = None
    sigma_beta: Prior | None = None
    beta_drift_per_year: float = 0.5
    intercept_drift_per_year: float = 0.1
    eps_scale: float = 1.0
    lkj_eta: float = 2.0
    initial_mean: Literal["ols", "zero"] = "ols"
    initial_window: int | None = None
    initial_sd_scale: float = 10.0
    initial_sd_floor: float = 1.0
    a0: tuple[float, ...] | None = None
    P0: tuple[tuple[float, ...], ...] | None = None
    gamma_sd: float = 1.0
    index_half_life_sd: float = 0.0
    horseshoe_global: float = 1.0
    horseshoe_slab: float = 2.0
    reversion_a: float = 4.0
    reversion_b: float = 1.0

    def __post_init__(self) -> None:
        """Turn prior tables into `Prior` and check every setting (TypeError, ValueError)."""
        for name in ("sigma_eps", "sigma_beta"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, Prior.from_dict(value))
        if self.a0 is not None:
            object.__setattr__(self, "a0", tuple(float(x) for x in np.ravel(self.a0)))
        if self.P0 is not None:
            P0 = np.atleast_2d(np.asarray(self.P0, dtype=float))
            object.__setattr__(self, "P0", tuple(tuple(float(x) for x in r) for r in P0))
        for name in ("sigma_eps", "sigma_beta"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Prior):
                raise TypeError(
                    f"{name} must be a Prior, a dict such as {{'dist': 'HalfNormal', 'sigma': "
                    f"0.01}} or None (the default), got {type(value).__name__}"
                )
        if self.initial_mean not in ("ols", "zero"):
            raise ValueError(f"initial_mean must be 'ols' or 'zero', got {self.initial_mean!r}")
        for name in ("beta_drift_per_year", "intercept_drift_per_year", "eps_scale", "lkj_eta",
                     "initial_sd_scale", "gamma_sd", "horseshoe_global",
                     "horseshoe_slab", "reversion_a", "reversion_b"):  # fmt: skip
            value = getattr(self, name)
            if not _real(value) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        for name in ("initial_sd_floor", "index_half_life_sd"):
            value = getattr(self, name)
            if not _real(value) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        window = self.initial_window
        if window is not None and not (_integer(window) and window >= 1):
            raise ValueError(
                f"initial_window must be a number of observed targets >= 1 (at least k + 1 for "
                f"an OLS of k states), or None for the default max(burn, 2k + 2, one year), got "
                f"{window!r}"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Priors:
        """From a plain dict (e.g. a TOML table); unknown keys raise, naming the valid ones."""
        d = dict(d or {})
        valid = sorted(f.name for f in fields(cls))
        for key in d:
            if key not in valid:
                raise ValueError(f"unknown prior setting {key!r};{closest(str(key), valid)} "
                                 f"valid settings: {valid}")  # fmt: skip
        return cls(**d)

    @classmethod
    def from_toml(cls, source: str | Path, table: str | None = "priors") -> Priors:
        """From a TOML file (a path) or TOML text; ``table`` names the sub-table (None: root)."""
        path = Path(source) if not isinstance(source, str) or "\n" not in source else None
        data = tomllib.loads(path.read_text() if path is not None else source)
        return cls.from_dict(data.get(table, {}) if table else data)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (None entries dropped) that `from_dict` turns back into equal Priors."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = value.to_dict() if isinstance(value, Prior) else _plain(value)
        return out

    def replace(self, **changes: Any) -> Priors:
        """Return a copy with ``changes`` applied, checked like a new `Priors`."""
        return replace(self, **changes)


def _real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_param(dist: str, name: str, value: Any) -> None:
    """Check that ``dist`` takes ``name`` and ``value`` is finite (> 0 unless in REAL_PARAMS)."""
    if name not in PARAMS[dist]:
        raise ValueError(
            f"{dist} has no parameter {name!r};{closest(name, PARAMS[dist])} its parameters "
            f"are {list(PARAMS[dist])}"
        )
    values = np.ravel(np.asarray(value, dtype=object))
    if values.size == 0 or np.ndim(value) > 1 or not all(_real(v) for v in values):
        raise ValueError(f"{name} of the {dist} prior must be a number or a list of numbers "
                         f"(one per state), got {value!r}")  # fmt: skip
    values = values.astype(float)
    positive = name not in REAL_PARAMS.get(dist, ())
    if not np.all(np.isfinite(values)) or (positive and not np.all(values > 0)):
        need = "a finite number > 0" if positive else "a finite number"
        raise ValueError(
            f"{name} of the {dist} prior must be {need}, got {value!r}: with 0 or less there "
            "is no distribution (NUTS cannot start); give a positive value (a scale may also be "
            "left out for the data-based default)"
        )


def _plain(value: Any) -> Any:
    """numpy/tuple values as JSON/TOML-friendly lists and floats."""
    if isinstance(value, np.ndarray | tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def periods_per_year(index: pd.Index | None, frequency: str | float | None = None) -> float:
    """Return the sampling frequency in periods per year.

    Parameters
    ----------
    index : pd.Index or None
        The data's index; read only when ``frequency`` is None.
    frequency : str or float, optional
        A number (periods per year), a name in `FREQUENCIES` ("weekly", ...), a pandas
        offset alias ("W-FRI", "ME", "B", ...), or None to infer it from the median spacing of
        a DatetimeIndex (about 1.4 days or less -> 252, 7 -> 52, 30 -> 12, 91 -> 4, 365 -> 1).

    Returns
    -------
    float
        Periods per year.

    Raises
    ------
    ValueError
        For a frequency <= 0 or unknown, an index that is not a DatetimeIndex with 2+ dates
        when ``frequency`` is None, a spacing longer than a year, or a ``frequency`` more than
        twice or less than half the one of the dates' spacing (daily rows declared weekly: the
        priors per year would be scaled for the wrong period).
    """
    if frequency is not None:
        ppy = _declared(frequency)
        if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
            days = median_spacing_days(index)
            dated = _from_days(days) if days <= 500.0 else ppy
            if not 0.5 <= ppy / dated <= 2.0:
                raise ValueError(
                    f"frequency {frequency!r} ({ppy:g} periods a year) contradicts the dates, "
                    f"{days:g} day(s) apart (median: {dated:g} a year): leave frequency out, or "
                    "compound the returns to that frequency first (weekly: a model file's "
                    "aggregate = 'weekly', load_fund_and_factors(..., weekly=True))")
        return ppy
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        raise ValueError(
            "cannot infer the sampling frequency: the index is not a DatetimeIndex with 2+ "
            "dates; pass frequency= (e.g. 'weekly', 'monthly' or periods per year such as 52)"
        )
    return _from_days(median_spacing_days(index))


def _declared(frequency: str | float) -> float:
    """Return the periods per year of a given ``frequency`` (`periods_per_year`'s forms)."""
    if isinstance(frequency, int | float | np.number) and not isinstance(frequency, bool):
        if not frequency > 0:
            raise ValueError(f"frequency must be > 0 periods per year, got {frequency!r}")
        return float(frequency)
    key = str(frequency).lower()
    if key in FREQUENCIES:
        return FREQUENCIES[key]
    try:
        offset = pd.tseries.frequencies.to_offset(str(frequency))
    except ValueError as err:
        raise ValueError(f"unknown frequency {frequency!r}: use e.g. 'weekly' or 52") from err
    days = pd.Timedelta(pd.Timestamp("2001-01-01") + offset - pd.Timestamp("2001-01-01"))
    return _from_days(days.total_seconds() / 86400.0)


def _from_days(days: float) -> float:
    for limit, ppy in ((1.5, 252.0), (10.0, 52.0), (45.0, 12.0), (135.0, 4.0), (500.0, 1.0)):
        if days <= limit:
            return ppy
    raise ValueError(f"spacing of {days:.0f} days is longer than a year: pass frequency=")


class InitialState(NamedTuple):
    """beta_{-1} ~ N(a0, P0): a0 (k,), P0 (k, k)."""

    a0: np.ndarray
    P0: np.ndarray


def _ols(y: np.ndarray, Z: np.ndarray):
    """(coefficients (k,), standard errors (k,), residual sd) over the rows with an observed y."""
    ok = ~np.isnan(y)
    y, Z = y[ok], Z[ok]
    coef, *_ = np.linalg.lstsq(Z, y, rcond=None)
    resid = y - Z @ coef
    dof = max(len(y) - Z.shape[1], 1)
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(Z.T @ Z)
    return coef, np.sqrt(np.clip(np.diag(cov), 0.0, None)), np.sqrt(s2)


def initial_state(y: np.ndarray, Z: np.ndarray, *, burn: int, ppy: float, intercept: bool,
                  priors: Priors | None = None) -> InitialState:  # fmt: skip
    """Return the documented initial state (module docstring): OLS on the initial window, wide P0.

    y (n,), Z (n, k): the full data (burn-in included; the intercept, if any, is state 0).

    Raises
    ------
    ValueError
        When the priors give only one of a0 and P0, or them with the wrong shapes, or when the
        initial window has fewer than k + 1 observations.
    """
    priors = priors or Priors()
    k = Z.shape[1]
    if priors.a0 is not None or priors.P0 is not None:
        if priors.a0 is None or priors.P0 is None:
            raise ValueError("give both a0 and P0 in the priors, or neither")
        a0, P0 = np.asarray(priors.a0, float), np.asarray(priors.P0, float)
        if a0.shape != (k,) or P0.shape != (k, k):
            raise ValueError(f"a0 must be ({k},) and P0 ({k}, {k}); got {a0.shape}, {P0.shape}")
        return InitialState(a0, P0)
    window = priors.initial_window or max(burn, 2 * k + 2, round(ppy))
    # the rows of the first `window` observations (the model starts at the first one)
    end = burn_row(y, window)
    if int(np.sum(~np.isnan(y[:end]))) < k + 1:
        raise ValueError(
            f"the initial window (initial_window = {window} observed targets) has fewer than "
            f"k + 1 = {k + 1} observations, too few for the OLS of the initial state of k = {k} "
            "states: raise initial_window in the priors (or leave it unset for the default)"
        )
    coef, se, _ = _ols(y[:end], Z[:end])
    drift = drift_per_year(y, Z, intercept, priors)
    sd = np.maximum(priors.initial_sd_scale * se, priors.initial_sd_floor * drift)
    a0 = coef if priors.initial_mean == "ols" else np.zeros(k)
    return InitialState(np.ascontiguousarray(a0), np.diag(sd**2))


def drift_per_year(y: np.ndarray, Z: np.ndarray, intercept: bool, priors: Priors) -> np.ndarray:
    """(k,) plausible one-year change of each state: the default prior scale times sqrt(ppy)."""
    k = Z.shape[1]
    drift = np.full(k, priors.beta_drift_per_year)
    if intercept:
        drift[0] = priors.intercept_drift_per_year * float(np.nanstd(y))
    return drift


class ResolvedPriors(NamedTuple):
    """Priors with every scale filled in: what `build_model` puts into PyMC."""

    sigma_eps: Prior
    sigma_beta: Prior
    lkj_eta: float


def _fill(prior: Prior | None, default_scale: float | np.ndarray, k: int | None) -> Prior:
    prior = prior or Prior()
    params = dict(prior.params)
    scale_name = SCALE_PARAM[prior.dist]
    alternatives = SCALE_ALTERNATIVES.get(prior.dist, {})
    for name in alternatives.keys() & params.keys():
        if scale_name in params:
            raise ValueError(f"the {prior.dist} prior has both {scale_name} and {name}: give "
                             "one of them")  # fmt: skip
        params[scale_name] = alternatives[name](np.asarray(params.pop(name), dtype=float))
    given_scale = {scale_name} & set(params)
    if scale_name is not None and not given_scale:
        if not np.all(np.asarray(default_scale) > 0):
            raise ValueError(
                f"the default {scale_name} of the {prior.dist} prior is {default_scale!r}, "
                "not > 0 (the data have no spread there: a constant target, or an exact "
                "fit); give the prior's scale explicitly"
            )
        params[scale_name] = default_scale
    needed = NEEDED.get(prior.dist)
    if needed and not any(set(group) <= set(params) for group in needed):
        options = " or ".join(str(list(group)) for group in needed)
        raise ValueError(f"the {prior.dist} prior needs the parameter(s) {options}, e.g. "
                         f"{{'dist': {prior.dist!r}, {needed[0][0]!r}: ...}}")  # fmt: skip
    for name, value in params.items():
        arr = np.asarray(value, dtype=float)
        if k is not None and arr.ndim == 1 and arr.shape != (k,):
            raise ValueError(f"{name} of sigma_beta must be a scalar or have {k} values")
        params[name] = arr.tolist() if arr.ndim else float(arr)
    return Prior(prior.dist, params)


class PriorScaleWarning(UserWarning):
    """An explicit prior's scale is orders of magnitude away from what the data show."""


#: `resolve_priors` warns when an explicit sigma_eps prior's scale lies this far (a factor,
#: either way) from the OLS residual sd: a noise sd a hundred times smaller or larger than the
#: data's residuals is a slip of units or of parametrisation (tau = 1e8 for sigma 1e-4 gave a
#: degenerate fit, R ~ 5e-9, silently), not a belief.
PRIOR_SCALE_FACTOR = 100.0


def _check_noise_scale(prior: Prior, s_ols: float) -> None:
    """Warn (`PriorScaleWarning`) when an explicit sigma_eps prior's scale is far from s_ols."""
    key = SCALE_PARAM[prior.dist]
    if key is None or key not in prior.params or not s_ols > 0:
        return
    ratio = float(prior.params[key]) / s_ols
    if not 1 / PRIOR_SCALE_FACTOR <= ratio <= PRIOR_SCALE_FACTOR:
        warn_caller(
            f"the sigma_eps prior's scale {key} = {float(prior.params[key]):.3g} is {ratio:.3g} "
            f"times the data's OLS residual sd ({s_ols:.3g} per period): the posterior of R will "
            "follow the prior, not the data; check its units (the data's, per period) and "
            "parametrisation (HalfNormal's tau is a precision, sigma^-2), or leave it to the "
            "default (sigma = eps_scale x the OLS residual sd)", PriorScaleWarning)


def resolve_priors(y: np.ndarray, Z: np.ndarray, *, burn: int, ppy: float, intercept: bool,
                   priors: Priors | None = None) -> ResolvedPriors:  # fmt: skip
    """Fill the priors' default scales: OLS residual sd after ``burn``, sd(y), frequency.

    Warns
    -----
    PriorScaleWarning
        An explicit sigma_eps prior whose scale is more than `PRIOR_SCALE_FACTOR` times from
        the OLS residual sd, either way.
    """
    priors = priors or Priors()
    first = burn_row(y, burn)
    _, _, s_ols = _ols(y[first:], Z[first:])
    if s_ols <= EXACT_FIT * np.nanstd(y[first:]):
        s_ols = 0.0  # rounding noise of an exact fit is no scale: _fill refuses it as a default
    beta_scale = drift_per_year(y, Z, intercept, priors) / np.sqrt(ppy)
    sigma_eps = _fill(priors.sigma_eps, priors.eps_scale * s_ols, None)
    if priors.sigma_eps is not None:
        _check_noise_scale(sigma_eps, s_ols)
    return ResolvedPriors(
        sigma_eps=sigma_eps,
        sigma_beta=_fill(priors.sigma_beta, beta_scale, Z.shape[1]),
        lkj_eta=float(priors.lkj_eta),
    )

