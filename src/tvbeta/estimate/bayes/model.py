"""The PyMC model: priors on Q and R, beta marginalised exactly by the Kalman filter.

    beta_t = T beta_{t-1} + eta_t,  eta_t ~ N(0, Q);   y_t = z_t' beta_t + eps_t,  eps_t ~ N(0, R)
    beta_{-1} ~ N(a0, P0) (fixed, documented in `priors`);  R = sigma_eps^2
    Q = diag(sigma_beta^2)  (q="diag")  or  Q = L L', L ~ LKJCholeskyCov(sigma_beta)  (q="full")

With ``noise="volatility"`` the observation variance scales with a variance index known at t-1
(`tvbeta.model.volatility`): R_t = sigma_eps^2 h_t^gamma, gamma ~ Normal(0, gamma_sd); gamma = 0
is the constant model, and the likelihood stays the exact Kalman one with a per-step R_t.

With ``betas="mean_reverting"`` the betas revert to long-run means mu:
beta_t - mu = diag(phi) (beta_{t-1} - mu) + eta_t, phi = phi_annual^(1/ppy) with phi_annual ~
Beta(reversion_a, reversion_b) per state; mu ~ N(a0, P0) is integrated out exactly. NUTS
samples phi_z ~ Normal(0, 1) with phi_annual = F^-1(Phi(phi_z)), F the Beta's distribution
function: the same prior, in coordinates where a phi the data barely inform has the normal's
light tails (in log-odds the Beta(4, 1)'s tail towards 1 is exponential: posterior kurtosis
2.5-6.5 on NoDur's five states against 0.3-1.2 here; 4-7% fewer leapfrog steps and 15-40% more
bulk ESS on NoDur and Money, 4 x (1000 + 1000), seeds 1-3). With a diagonal Q and a signed
prior family, sigma_beta is sampled halfway towards the drift it makes over a year,
``sigma_drift`` (`reverting_sigma_beta`: the same prior; 6-17% fewer leapfrog steps on monthly
industries). The
likelihood (`ReversionLogpOp`) runs one k-state filter with the long-run means integrated out
in closed form (`tvbeta.kalman.collapsed.collapsed_sum_kernel`), with an exact gradient in phi;
the pointwise terms of the draws run two k-state filters (`BayesSpec.loglik_terms`), the beta
paths and predictive the filter of the augmented state [beta; mu] (`tvbeta.model.reversion`):
all the same likelihood.

With ``shrinkage="horseshoe"`` (q="diag") the sds sigma_beta get a global-local prior that lets
the data decide which betas are static: `horseshoe_sigma_beta` (the prior and why this one).

The likelihood is p(y_b, ..., y_{n-1} | y_0, ..., y_{b-1}; Q, R) = prod_{t >= b}
p(y_t | y_{<t}), each term from `KalmanLoglikOp`, with b = `BayesSpec.first_row` the row after
the first ``burn`` observed steps. The burn-in only conditions the filter, exactly as the MLE's
``burn``; rows before the first observed target are not part of the model at all.

Missing targets (NaN) are not observations either: the filter predicts through them and they
are not imputed. So the observed variable ``y`` and its ``time`` coordinate hold the observed
steps after the burn-in only (`BayesSpec.steps`); ``log_likelihood``, ``observed_data`` and the
predictive groups hold one value per observed step (no NaN, no zero term), and ``az.loo`` works
on them (one-step-ahead terms: PSIS-LOO over them approximates leave-future-out).

Replicates (the CustomDist's ``random``) come from the generative model given (Q, R):
beta_{-1} ~ N(a0, P0), a fresh state path and noise, on the observed design, at the observed
steps (the betas are re-simulated, not the smoothed path of the data).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, partial
from typing import Any, Literal, NamedTuple, TypedDict, Unpack

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

from tvbeta.constants import BETAS, DIMS, NOISES, SHRINKAGES, STATE, STATE2, TIME, default_burn
from tvbeta.data.validate import (
    Design,
    closest,
    column_list,
    format_span,
    prepare_design,
    warn_if_not_decimal,
)
from tvbeta.estimate.bayes.index_op import EwmaLogOp
from tvbeta.estimate.bayes.op import KalmanLoglikOp, ReversionLogpOp
from tvbeta.estimate.bayes.priors import (
    SCALE_PARAM,
    Priors,
    ResolvedPriors,
    initial_state,
    periods_per_year,
    resolve_priors,
)
from tvbeta.kalman import loglik_batch, psd_sqrt
from tvbeta.kalman.arrays import StateSpace, burn_row, state_space
from tvbeta.kalman.collapsed import reversion_loglik_terms
from tvbeta.kalman.filter import constant_k, sweep_constant
from tvbeta.model import QForm, StateSpaceModel, TimeVarying, check_q_form, reversion
from tvbeta.model.volatility import VolatilityIndex

Noise = Literal["constant", "volatility"]
Betas = Literal["random_walk", "mean_reverting"]
Shrinkage = Literal["none", "horseshoe"]

__all__ = [
    "BayesSpec", "SystemDraws", "bayes_spec", "build_model", "check_shrinkage",
    "horseshoe_sigma_beta", "model_from_spec", "reversion_persistence", "reverting_sigma_beta",
    "sample_prior_predictive",
]

OBSERVED = "y"
"""Name of the observed variable (and of the log_likelihood / predictive groups' variable)."""


#: Predictive sampling runs the CustomDist's Python `random` in numba object mode, as expected
#: (the likelihood Ops are native numba): this warning is silenced around it.
RANDOM_OBJMODE = r"Numba will use object mode to run CustomDist"
#: Predictive draws: PyTensor's Python VM skips the numba compile (5-10 s on a cold cache); the
#: work is in the Python simulator anyway.
PREDICTIVE_COMPILE = {"mode": "FAST_COMPILE"}

class SystemDraws(NamedTuple):
    """Posterior draws of the filter's arrays, in the filter's state.

    K = k, or 2k for the augmented [beta; mu] of mean-reverting betas. T (1 | D, K, K) (1:
    fixed), Q (D, K, K), R (D,) constant or (D, n) per row (a volatility-scaled R_t on n rows).
    """

    T: np.ndarray
    Q: np.ndarray
    R: np.ndarray

    def draw(self, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return draw d's (T (1, K, K), Q (1, K, K), R (1 | n,)), as the kernels take them."""
        return self.T[d if len(self.T) > 1 else 0][None], self.Q[d][None], np.atleast_1d(self.R[d])


@dataclass(frozen=True, eq=False)
class BayesSpec:
    """The model (structure and priors) and the data it is fitted to (no fitted state).

    index : (n,) time labels of all rows; y : (n,) target (NaN = missing); Z : (n, k) design;
    state_names : (k,); burn : observed steps that only condition the filter; ppy : periods per
    year; model : the structure (intercept, constant T, a0, P0, the form of Q); priors : the
    settings; resolved : with scales filled. target_col, factor_cols : the caller's column
    names (None for arrays). noise_index : the variance index of a volatility-scaled R, centred
    on the likelihood's steps (`VolatilityIndex.centred`); None for a constant R. shrinkage :
    the prior of sigma_beta, "none" (``priors.sigma_beta``) or "horseshoe". betas :
    "random_walk" (T = ``model.T``) or "mean_reverting" (the filter's state is [beta; mu],
    `tvbeta.model.reversion`; the kernel_* arrays).
    """

    index: pd.Index
    y: np.ndarray
    Z: np.ndarray
    state_names: tuple[str, ...]
    burn: int
    ppy: float
    model: StateSpaceModel
    priors: Priors
    resolved: ResolvedPriors
    target_col: Hashable | None = None
    factor_cols: tuple[Hashable, ...] | None = None
    noise_index: VolatilityIndex | None = None
    shrinkage: Shrinkage = "none"
    betas: Betas = "random_walk"

    @property
    def noise(self) -> Noise:
        """Return "constant" or "volatility" (R_t = sigma_eps^2 h_t^gamma)."""
        return "constant" if self.noise_index is None else "volatility"

    @cached_property
    def log_h(self) -> np.ndarray | None:
        """Return the centred log variance index (n,) of every row, or None for a constant R.

        At the index's own half-life; a sampled half-life's per draw: `noise_log_h`.
        """
        return None if self.noise_index is None else self.noise_index.log_h(self.y, self.Z)

    @property
    def samples_half_life(self) -> bool:
        """Whether the volatility index's half-life is sampled (``priors.index_half_life_sd``)."""
        return self.noise_index is not None and self.priors.index_half_life_sd > 0

    def noise_log_h(self, half_lives: np.ndarray | None = None,
                    rows: Any = None) -> np.ndarray | None:  # fmt: skip
        """Return the centred log index on ``rows`` (default: the spec's), None for constant R.

        (n,) at the index's own half-life; with ``half_lives`` (D,) (periods, a sampled
        half-life's draws) (D, n), each re-averaged and centred on this spec's likelihood
        steps as the model does (`VolatilityIndex.log_h_at`). ``rows``: anything with y and Z,
        such as the whole series of which the spec holds the first rows.
        """
        index = self.noise_index
        if index is None:
            return None
        if half_lives is None:
            return self.log_h if rows is None else index.log_h(rows.y, rows.Z)
        on = (None, None) if rows is None else (rows.y, rows.Z)
        return index.log_h_at(half_lives, self.y, self.Z, self.steps, *on)

    @property
    def n_states(self) -> int:
        """K, the filter's states: k, or 2k for mean-reverting betas ([beta; mu])."""
        return 2 * self.k if self.betas == "mean_reverting" else self.k

    def kernel_design(self, Z: np.ndarray | None = None) -> np.ndarray:
        """Return the filter's design (n, K) of Z (n, k) (default: the spec's): Z or [Z, 0]."""
        Z = self.Z if Z is None else Z
        return reversion.augmented_design(Z) if self.betas == "mean_reverting" else Z

    @cached_property
    def kernel_initial(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the filter's initial state (a0 (K,), P0 (K, K)): (a0, P0), or augmented."""
        if self.betas == "mean_reverting":
            return reversion.augmented_initial(self.a0, self.P0)
        return self.a0, self.P0

    def state_space(self, draws: SystemDraws, d: int, y: np.ndarray | None = None,
                    Z: np.ndarray | None = None) -> StateSpace:  # fmt: skip
        """Return the kernel arrays of draw d on rows y (n,), Z (n, k) (default: the spec's).

        Raises
        ------
        ValueError
            When the draw's arrays do not fit the rows (e.g. R_t of other rows).
        """
        y = self.y if y is None else y
        return state_space(y, self.kernel_design(Z), *draws.draw(d), *self.kernel_initial)

    intercept = property(lambda self: self.model.intercept, doc="Whether state 0 is the intercept.")
    q = property(lambda self: self.model.q, doc='The form of Q: "diag" or "full".')
    T = property(lambda self: self.model.T.values,
                 doc="The constant transition (k, k) of random-walk betas (I by default).")
    a0 = property(lambda self: self.model.a0, doc="Mean of the initial state, (k,).")
    P0 = property(lambda self: self.model.P0, doc="Covariance of the initial state, (k, k).")

    n = property(lambda self: self.Z.shape[0], doc="Rows (time steps, missing targets too).")
    k = property(lambda self: self.Z.shape[1], doc="The number of states (columns of Z).")

    @property
    def first_row(self) -> int:
        """Row of the first likelihood term: that of the (burn+1)-th observed target."""
        return burn_row(self.y, self.burn)

    @property
    def time(self) -> pd.Index:
        """Return the labels of rows first_row..n-1 (``time`` of the beta paths; missing too)."""
        return self.index[self.first_row :].rename(TIME)

    @property
    def steps(self) -> np.ndarray:
        """Return the row positions (m,) of the likelihood terms (observed targets after burn)."""
        return np.flatnonzero(~np.isnan(self.y))[self.burn :]

    @property
    def observed_time(self) -> pd.Index:
        """Return the labels of `steps`: ``time`` of ``y`` and of the pointwise groups."""
        return self.index[self.steps].rename(TIME)

    def about(self) -> str:
        """Describe target, states, Q form, steps, span, burn, rows, frequency in two lines."""
        return (
            f"target={self.target_col!r}, states={list(self.state_names)}, q={self.q!r},\n"
            f"  {len(self.steps)} observed steps {format_span(self.observed_time)} after "
            f"burn={self.burn} of {self.n} rows, frequency={self.ppy:g} per year"
        )

    def __repr__(self) -> str:
        """Return ``BayesSpec(...)`` around `about`."""
        return f"BayesSpec({self.about()})"

    def loglik_terms(self, draws: SystemDraws) -> np.ndarray:
        """Return ll[s, t] = log p(y_t | y_{<t}, draw s) (nats), (S, n).

        For every draw of ``draws`` and every row t (burn-in included, 0 where y_t is
        missing); one parallel `loglik_batch` call (an error names the draw as batch member).
        Mean-reverting betas: the draws' phi and Q are read from the augmented T and Q
        (`tvbeta.model.reversion`) and the terms computed with their long-run means integrated
        out (`reversion_loglik_terms`, the augmented filter's terms at half its cost).

        Raises
        ------
        ValueError
            Mean-reverting betas whose draws are not in the augmented form.
        """
        T, Q, R = (np.asarray(x, dtype=np.float64) for x in draws)
        if self.betas == "mean_reverting":
            k = self.k
            phi = np.diagonal(T[:, :k, :k], axis1=1, axis2=2)
            if T.shape[1:] != (2 * k, 2 * k) or not np.array_equal(
                    T, reversion.transition(phi)) or np.any(Q[:, k:]) or np.any(Q[:, :, k:]):
                raise ValueError("mean-reverting betas' draws must be augmented: "
                                 "T = reversion.transition(phi), Q = reversion.augmented_q(Q)")
            return reversion_loglik_terms(
                self.y, self.Z, np.broadcast_to(phi, (len(Q), k)), Q[:, :k, :k],
                R.reshape(len(Q), -1), self.a0, self.P0,
            )  # fmt: skip
        a0, P0 = self.kernel_initial
        return loglik_batch(
            self.y[None], self.kernel_design()[None], T[:, None], Q[:, None],
            R.reshape(len(Q), -1), a0[None], P0[None], terms=True,
        )  # fmt: skip

    @classmethod
    def from_design(
        cls,
        design: Design,
        *,
        q: QForm = "diag",
        priors: Priors | dict | None = None,
        burn: int,
        frequency: str | float | None = None,
        noise: Noise = "constant",
        shrinkage: Shrinkage = "none",
        betas: Betas = "random_walk",
    ) -> BayesSpec:
        """`bayes_spec` on a design validated with this ``burn`` (`tvbeta.data.Design`)."""
        spec = cls.from_arrays(
            design.y, design.Z, index=design.index, state_names=design.state_names,
            intercept=design.has_intercept, q=q, priors=priors, burn=burn, frequency=frequency,
            noise=noise, shrinkage=shrinkage, betas=betas,
        )  # fmt: skip
        return replace(spec, target_col=design.target_col, factor_cols=design.factor_cols)

    @classmethod
    def from_arrays(
        cls,
        y,
        Z,
        *,
        index=None,
        state_names: Sequence[str] | None = None,
        intercept: bool = False,
        q: QForm = "diag",
        priors: Priors | dict | None = None,
        burn: int | None = None,
        frequency: str | float | None = None,
        T=None,
        noise: Noise = "constant",
        shrinkage: Shrinkage = "none",
        betas: Betas = "random_walk",
    ) -> BayesSpec:
        """Build a spec from arrays y (n,), Z (n, k) (the intercept, if any, is column 0).

        ``burn`` defaults to k observed steps (`tvbeta.constants.default_burn`).

        Raises
        ------
        ValueError
            For arrays of the wrong shapes, an unknown ``q``, a ``burn`` outside
            [0, n_observed - 1), a frequency that cannot be read or inferred, priors that
            do not fit the data, an unknown ``noise``, or too few observations for the
            volatility index's window; an unknown ``shrinkage``, or the horseshoe with
            q="full" or with an explicit ``priors.sigma_beta`` (it replaces that prior); an
            unknown ``betas``, or mean-reverting betas with an explicit ``T``;
            ``priors.index_half_life_sd`` > 0 without a volatility-scaled R.
        """
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        if betas not in BETAS:
            raise ValueError(f"betas must be one of {BETAS};{closest(str(betas), BETAS)} got "
                             f"{betas!r}")
        if betas == "mean_reverting" and T is not None:
            raise ValueError('betas="mean_reverting" builds its transition T(phi) from phi: '
                             "leave T unset")
        check_shrinkage(shrinkage, q, priors)
        y = np.ascontiguousarray(y, dtype=np.float64)
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        if y.ndim != 1 or Z.ndim != 2 or Z.shape[0] != y.shape[0]:
            raise ValueError(f"need y (n,) and Z (n, k), got {y.shape} and {Z.shape}")
        burn = default_burn(Z.shape[1]) if burn is None else burn
        check_q_form(q)  # a typo is named before anything about the data
        n_observed = int(np.sum(~np.isnan(y)))
        if not isinstance(burn, int | np.integer) or not 0 <= burn < n_observed - 1:
            raise ValueError(
                f"burn must be an integer in [0, n_observed - 1) = [0, {n_observed - 1}) (it "
                f"counts observed targets), got {burn!r}"
            )
        n, k = Z.shape
        index = pd.RangeIndex(n) if index is None else pd.Index(index)
        names = tuple(state_names) if state_names is not None else tuple(f"s{i}" for i in range(k))
        if isinstance(priors, dict):
            priors = Priors.from_dict(priors)
        priors = priors or Priors()
        if priors.index_half_life_sd > 0 and noise != "volatility":
            raise ValueError(
                f"priors.index_half_life_sd = {priors.index_half_life_sd:g} samples the half-"
                f'life of the volatility index, which a noise={noise!r} model has none of: use '
                'noise="volatility", or leave index_half_life_sd at 0')
        ppy = periods_per_year(index, frequency)
        kw = dict(burn=int(burn), ppy=ppy, intercept=intercept, priors=priors)
        a0, P0 = initial_state(y, Z, **kw)
        T = None if T is None else TimeVarying.constant(T)  # default I
        model = StateSpaceModel(k, intercept, T, a0, P0, q=q, init_mode="prior")
        index_ = None if noise == "constant" else VolatilityIndex.default_for(y, Z, burn=burn,
                                                                             ppy=ppy)
        return cls(
            index=index, y=y, Z=Z, state_names=names, burn=int(burn), ppy=ppy, model=model,
            priors=priors, resolved=resolve_priors(y, Z, **kw), noise_index=index_,
            shrinkage=shrinkage, betas=betas,
        )  # fmt: skip


def check_shrinkage(shrinkage: object, q: object, priors: Priors | dict | None) -> None:
    """Refuse an unknown ``shrinkage``, or the horseshoe where it does not apply.

    Raises
    ------
    ValueError
        ``shrinkage`` not one of `SHRINKAGES`; "horseshoe" with a ``q`` other than "diag", or
        with an explicit ``priors`` sigma_beta (the horseshoe replaces that prior).
    """
    if shrinkage not in SHRINKAGES:
        raise ValueError(f"shrinkage must be one of {SHRINKAGES};"
                         f"{closest(str(shrinkage), SHRINKAGES)} got {shrinkage!r}")
    explicit = (priors.get("sigma_beta") if isinstance(priors, dict)
                else getattr(priors, "sigma_beta", None))  # fmt: skip
    if shrinkage == "horseshoe" and (q != "diag" or explicit is not None):
        raise ValueError(
            'shrinkage="horseshoe" is a prior on the sds of a diagonal Q: use q="diag" and '
            "leave priors.sigma_beta unset (its scale is set by beta_drift_per_year and "
            "intercept_drift_per_year, the shrinkage by horseshoe_global and horseshoe_slab)"
        )


class ModelOptions(TypedDict, total=False):
    """The model's keywords of `bayes_spec` (which documents them and their defaults)."""

    intercept: bool
    q: QForm
    priors: Priors | dict | None
    burn: int | None
    frequency: str | float | None
    noise: Noise
    shrinkage: Shrinkage
    betas: Betas


def bayes_spec(
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Sequence[Hashable] | str,
    *,
    intercept: bool = True,
    q: QForm = "diag",
    priors: Priors | dict | None = None,
    burn: int | None = None,
    frequency: str | float | None = None,
    noise: Noise = "constant",
    shrinkage: Shrinkage = "none",
    betas: Betas = "random_walk",
) -> BayesSpec:
    """Validate the data (`prepare_design`) and resolve priors and the initial state.

    Parameters
    ----------
    df : pd.DataFrame
        Decimal returns of the fund (``target_col``) and the factors (``factor_cols``), one
        row per period.
    target_col : Hashable
    factor_cols : sequence of Hashable or str
    intercept : bool, default True
        Add a time-varying intercept as state 0.
    q : {"diag", "full"}, default "diag"
        Form of the state-noise covariance Q.
    priors : Priors or dict, optional
        Prior settings; None for the documented defaults.
    burn : int, optional
        Observed steps left out of the likelihood; defaults to K observed steps
        (`tvbeta.constants.default_burn`), as in `fit_mle`.
    frequency : str or float, optional
        Periods per year or a frequency name (`periods_per_year`); None infers it from the
        index.
    noise : {"constant", "volatility"}, default "constant"
        A constant R, or R_t = sigma_eps^2 h_t^gamma with h_t the variance index of
        `tvbeta.model.volatility` (a three-year rolling regression's past squared residuals,
        half-life six months, in the data's periods), centred on the likelihood's steps.
    shrinkage : {"none", "horseshoe"}, default "none"
        The prior of the drift sds sigma_beta: independent ``priors.sigma_beta`` ("none"), or
        a regularised horseshoe that shrinks the drift of the betas the data do not move
        towards 0 (`horseshoe_sigma_beta`; q="diag" only).
    betas : {"random_walk", "mean_reverting"}, default "random_walk"
        Random-walk betas, or betas that revert to long-run means mu (estimated, integrated
        out by the filter) with a one-year persistence phi_annual ~ Beta(``priors.reversion_a``,
        ``priors.reversion_b``) per state (`tvbeta.model.reversion`).

    Returns
    -------
    BayesSpec
        The model with its resolved priors and initial state.

    Raises
    ------
    DataValidationError
        (a ValueError) For data that do not pass `prepare_design`.
    ValueError
        For an unknown ``q``, a bad ``burn`` or frequency, or priors that do not fit the data.
    TypeError
        For ``df`` not a DataFrame, or priors of the wrong type.

    Warns
    -----
    ReturnUnitsWarning
        When the target or a factor varies more than decimal returns can (percent, basis
        points or price levels; `warn_if_not_decimal`): the model is built all the same.
    """
    if burn is None:
        burn = default_burn(len(column_list(factor_cols)) + int(intercept))
    design = prepare_design(df, target_col, factor_cols, intercept=intercept, burn=burn)
    warn_if_not_decimal(design)
    return BayesSpec.from_design(design, q=q, priors=priors, burn=burn, frequency=frequency,
                                 noise=noise, shrinkage=shrinkage, betas=betas)


def build_model(
    df: pd.DataFrame, target_col: Hashable, factor_cols: Sequence[Hashable] | str,
    **model: Unpack[ModelOptions],
) -> pm.Model:
    """Build the PyMC model of a fund's returns on factors with time-varying betas.

    Free parameters: ``sigma_eps`` (R = sigma_eps^2) and, for q="diag", ``sigma_beta`` (dims
    state), both sampled as signed sds (`SignedScale`); for q="full" the packed Cholesky factor
    ``chol_Q`` with deterministics ``sigma_beta`` and ``Q`` (state, state_); with
    ``noise="volatility"`` also ``gamma``; with ``betas="mean_reverting"`` also ``phi_z`` (dims
    state; the sampled coordinate, module docstring) and the deterministics ``phi_annual`` and
    ``phi``, and (q="diag", a `SIGNED_FAMILIES` prior) ``sigma_drift`` in place of
    ``sigma_beta``, then a deterministic (`reverting_sigma_beta`); with
    ``shrinkage="horseshoe"``, ``sigma_beta`` is a deterministic of ``shrink_tau``,
    ``shrink_lambda`` and ``shrink_z`` (`horseshoe_sigma_beta`). Observed: ``y`` (dims time =
    `BayesSpec.observed_time`), a `pm.CustomDist` whose log density is the filter's one-step
    terms (their sum, for mean-reverting betas) and whose random draws simulate the model (for
    a volatility-scaled R, given the data's own index h_t: a replicate does not feed back into
    its index). Priors: see
    `tvbeta.estimate.bayes.priors`. The arguments are those of `bayes_spec`.
    """
    return model_from_spec(bayes_spec(df, target_col, factor_cols, **model))


# Scale priors whose log density is a smooth function of sigma^2 (unlike Exponential's |sigma|
# or Gamma's log sigma): extended to sigma < 0 it is smooth through 0 (`SignedScale`).
SIGNED_FAMILIES = frozenset({"HalfNormal", "HalfStudentT", "HalfCauchy"})


class SignedScale(Transform):
    """What NUTS sees of an sd: z = +-sigma / scale on the whole real line, sigma = scale |z|.

    Why (and the sources): the `tvbeta.estimate.bayes.priors` docstring. The map is 2-to-1 with
    constant Jacobian ``scale``, so sigma's prior and posterior are the model's (the posterior
    group holds sigma); for `SIGNED_FAMILIES` the density is smooth through z = 0. Dividing by
    the prior's scale makes the sampler's initial jitter of +-1 one prior scale in any units.
    """

    name = "signed"
    ndim_supp = 0

    def __init__(self, scale) -> None:
        """``scale``: the prior's scale, a number, an array or a tensor (a shared input)."""
        self.scale = pt.as_tensor_variable(scale)

    def forward(self, value, *inputs):
        return value / self.scale

    def backward(self, value, *inputs):
        return pt.abs(value) * self.scale

    def log_jac_det(self, value, *inputs):
        return pt.broadcast_to(pt.log(self.scale), value.shape)


def _scale_prior(name: str, prior, shape=None, scale_times=None):
    """Return the prior of an sd as a PyMC variable, with the dims of ``name`` (`DIMS`).

    With ``shape`` (inside LKJCholeskyCov) an unnamed distribution instead. NUTS sees it as
    `SignedScale` when its family is in `SIGNED_FAMILIES`, else through PyMC's log transform.
    ``scale_times`` (a signed family only): the distribution's scale multiplied by it, the
    `SignedScale` left at the prior's (`reverting_sigma_beta`'s coordinate).
    """
    dist = getattr(pm, prior.dist)
    params = dict(prior.params)
    if prior.dist in SIGNED_FAMILIES:  # the scale is an input of the graph, not a constant
        key = SCALE_PARAM[prior.dist]
        params[key] = shared_scale(name or "chol_Q", params[key])
    if shape is not None:
        return dist.dist(**params, shape=shape)
    dims = DIMS[name] or None
    if prior.dist in SIGNED_FAMILIES:
        transform = SignedScale(params[key])
        if scale_times is not None:
            params[key] = params[key] * scale_times
        return dist(name, **params, dims=dims, default_transform=None, transform=transform)
    if scale_times is not None:
        raise ValueError(f"scale_times needs a prior in {sorted(SIGNED_FAMILIES)}, got "
                         f"{prior.dist}")  # fmt: skip
    return dist(name, **params, dims=dims)


def shared_scale(name: str, value) -> pt.TensorVariable:
    """Return a prior's scale (a number or an array) as a shared input named for ``name``.

    The default scales come from each fund's returns (`tvbeta.estimate.bayes.priors`); as
    inputs, like the data (`_shared_data`), they leave the graph the same for every fund of one
    structure, so one compiled model serves them all (`tvbeta.estimate.bayes.sampler`).
    """
    return pytensor.shared(np.asarray(value, dtype=np.float64), name=f"tvbeta_scale_{name}")


def reversion_persistence(spec: BayesSpec) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Add the persistences of mean-reverting betas to the model in context: (phi_annual, phi).

    The sampled ``phi_z`` ~ Normal(0, 1) (dims state) and the deterministics ``phi_annual`` =
    F^-1(Phi(phi_z)), F the distribution function of Beta(``priors.reversion_a``,
    ``priors.reversion_b``) (so phi_annual has that prior: the module docstring says why these
    coordinates), and ``phi`` = phi_annual^(1/ppy), the persistence per period (k,).
    """
    phi_z = pm.Normal("phi_z", 0.0, 1.0, dims=DIMS["phi_annual"])
    phi_annual = pm.Deterministic("phi_annual", pt.betaincinv(
        spec.priors.reversion_a, spec.priors.reversion_b,
        0.5 * pt.erfc(-phi_z / np.sqrt(2.0))), dims=DIMS["phi_annual"])  # fmt: skip
    return phi_annual, pm.Deterministic("phi", phi_annual ** (1.0 / spec.ppy), dims=DIMS["phi"])


def reverting_sigma_beta(spec: BayesSpec, phi_annual: pt.TensorVariable,
                         phi: pt.TensorVariable) -> pt.TensorVariable:  # fmt: skip
    """Return ``sigma_beta`` (dims state) of mean-reverting betas, inside a model context.

    NUTS samples ``sigma_drift`` = sigma_beta sqrt(g(phi)), halfway (geometrically) between
    sigma_beta and sigma_beta g(phi), where g(phi)^2 = (1 - phi^(2 ppy)) / (ppy (1 - phi^2)):
    sigma_beta g is the per-period sd of a random walk that drifts as far in a year as the
    reverting beta does (the deviation's variance a year ahead, sigma_beta^2 (1 - phi^(2 ppy))
    / (1 - phi^2), is (sigma_beta g)^2 ppy; g = 1 at phi = 1). Where the data fix that drift,
    sigma_beta trades off against phi (the same drift from a larger sigma_beta with a faster
    reversion) and the drift is the better coordinate; where they say little (an intercept's
    drift), sigma_beta given phi is, and the drift's scale then follows phi: a funnel. A
    partially non-centred parametrisation (Papaspiliopoulos, Roberts & Skold 2007, "A general
    framework for the parametrization of hierarchical models", Statistical Science 22(1),
    59-73) takes the middle. Leapfrog steps a draw, 4 x (1000 + 1000), against (sigma_beta,
    phi_z):

    - monthly NoDur, Enrgy, Money (573 training months, k = 5; seeds 1-2): 11.1, 9.3, 10.1-10.4
      -> 10.3-10.5, 7.7-8.0, 9.4 (the drift itself: 9.5, 7.3, 7.8-8.7; the drift for the
      factors and sigma_beta for the intercept: 9.9-10.2, 7.4, 8.7); the smallest bulk ESS of
      sigma_eps, sigma_beta and phi_annual up (NoDur 1766-1860 -> 1934-2132);
    - the seed's weekly ETFs on PFF (k = 2; seeds 0-5 each): FPE 4.6-4.9 -> 4.9-5.1, HYG, ICVT
      and LQD within 0.2; no divergence in 24 fits, where the drift itself gave one in FPE
      (seed 0) and one in LQD (seed 1) and 5.4-5.6 steps on both.

    The prior is sigma_beta's own: given phi, sigma_drift has sigma_beta's (signed, scale)
    family with its scale times sqrt(g(phi)) (``resolved.sigma_beta``, a `SIGNED_FAMILIES`
    prior), sampled as `SignedScale` of the prior's scale, so sigma_beta = sigma_drift /
    sqrt(g(phi)) has exactly that prior (a scale family's x c has the scale times c).
    """
    # expm1 keeps the digits of 1 - phi^2 near phi = 1; a phi_annual rounded to 1 (phi_z above
    # ~8.3) is the random walk's g = 1
    log_annual = pt.minimum(pt.log(phi_annual), -1e-12)
    g2 = pt.expm1(2.0 * log_annual) / (spec.ppy * pt.expm1(2.0 * log_annual / spec.ppy))
    root_g = g2**0.25
    drift = _scale_prior("sigma_drift", spec.resolved.sigma_beta, scale_times=root_g)
    return pm.Deterministic("sigma_beta", drift / root_g, dims=DIMS["sigma_beta"])


def horseshoe_sigma_beta(spec: BayesSpec) -> pt.TensorVariable:
    """Return ``sigma_beta`` (dims state) under a regularised horseshoe, inside a model context.

    sigma_beta_j = s_j lambda~_j |z_j|, lambda~_j = c tau lambda_j / sqrt(c^2 + tau^2 lambda_j^2)

    with z_j ~ Normal(0, 1) (``shrink_z``, a signed sd as in `SignedScale`), lambda_j ~
    HalfCauchy(1) (``shrink_lambda``, local), tau ~ HalfCauchy(``priors.horseshoe_global``)
    (``shrink_tau``, global), c = ``priors.horseshoe_slab`` and s_j the default data-based
    scale of the state (``resolved.sigma_beta``: drift per year / sqrt(ppy), beta units per
    period). Given lambda~_j, sigma_beta_j ~ HalfNormal(s_j lambda~_j): lambda~ = 1 is the
    default prior; the Cauchy's mass near 0 pulls the drift of a beta the data do not move to
    0, its tail leaves a moving beta's drift alone (Carvalho, Polson & Scott 2010, Biometrika
    97(2), 465-480), up to the slab c s_j (Piironen & Vehtari 2017, Electron. J. Stat. 11(2),
    5018-5051), i.e. a one-year drift of about c times the default one.

    Why not the triple gamma of shrinkTVP (Bitto & Frühwirth-Schnatter 2019, J. Econometrics
    210(1), 75-97), which shrinks the signed sds too: its Gibbs sampler handles the pole at 0 of
    a Gamma(a) scale with a small shape (a = 0.1), but in the log space NUTS sees, that scale
    has the tail e^(a u) to u -> -inf, tens of units long for a = 0.1 (the slow tail of the
    `tvbeta.estimate.bayes.priors` docstring, ten times longer), and its learnt shapes are
    barely identified by a handful of states. The horseshoe's lambda has a finite density at 0
    (tail e^u); written non-centred, with z on the real line, a static beta is z -> 0 (Gaussian,
    no funnel at sigma = 0); the slab bounds lambda~, so the width of z given lambda cannot fall
    below about sigma_beta / (c s_j) (the remaining funnel of the horseshoe's lambda is
    bounded). tau and lambda are sampled as logs (PyMC's default): their tails are then
    exponential, not Cauchy, on the real line. What is left is the curved ridge of a
    well-identified drift (z_j ~ 1 / lambda~_j): on simulated weekly funds (450 steps, four
    states) 8 of 12 fits had 1-13 divergences in 2 x 300 draws at target_accept 0.8, 4 of 12 had
    1-7 at 0.9, so a horseshoe fit runs at target_accept >= 0.9 (`fit_spec`,
    `tvbeta.constants.HORSESHOE_TARGET_ACCEPT`).
    """
    priors = spec.priors
    scale = shared_scale("sigma_beta", spec.resolved.sigma_beta.params["sigma"])
    c = priors.horseshoe_slab
    tau = pm.HalfCauchy("shrink_tau", beta=priors.horseshoe_global, dims=DIMS["shrink_tau"] or None)
    lam = pm.HalfCauchy("shrink_lambda", beta=1.0, dims=DIMS["shrink_lambda"])
    z = pm.Normal("shrink_z", 0.0, 1.0, dims=DIMS["shrink_z"])
    local = tau * lam
    regularised = c * local / pt.sqrt(c**2 + local**2)
    return pm.Deterministic("sigma_beta", scale * regularised * pt.abs(z),
                            dims=DIMS["sigma_beta"])  # fmt: skip


def model_from_spec(spec: BayesSpec) -> pm.Model:
    """Build the PyMC model from a `BayesSpec` (see `build_model`)."""
    coords = {TIME: spec.observed_time, STATE: list(spec.state_names)}
    if spec.q == "full":
        coords[STATE2] = list(spec.state_names)
    with pm.Model(coords=coords) as model:
        sigma_eps = _scale_prior("sigma_eps", spec.resolved.sigma_eps)
        if spec.betas == "mean_reverting":
            phi_annual, phi = reversion_persistence(spec)
        if spec.shrinkage == "horseshoe":
            sigma_beta = horseshoe_sigma_beta(spec)
            Q = pt.diag(sigma_beta**2)
        elif (spec.q == "diag" and spec.betas == "mean_reverting"
              and spec.resolved.sigma_beta.dist in SIGNED_FAMILIES):  # fmt: skip
            sigma_beta = reverting_sigma_beta(spec, phi_annual, phi)
            Q = pt.diag(sigma_beta**2)
        elif spec.q == "diag":
            sigma_beta = _scale_prior("sigma_beta", spec.resolved.sigma_beta)
            Q = pt.diag(sigma_beta**2)
        else:
            chol, _, stds = pm.LKJCholeskyCov(
                "chol_Q", n=spec.k, eta=spec.resolved.lkj_eta,
                sd_dist=_scale_prior("", spec.resolved.sigma_beta, shape=spec.k),
                compute_corr=True, store_in_trace=False,
            )  # fmt: skip
            pm.Deterministic("sigma_beta", stds, dims=DIMS["sigma_beta"])
            Q = pm.Deterministic("Q", chol @ chol.T, dims=DIMS["Q"])
        data = _shared_data(spec)
        R = pt.shape_padleft(sigma_eps**2)  # (1,): constant
        if spec.log_h is not None:
            gamma = pm.Normal("gamma", 0.0, spec.priors.gamma_sd, dims=DIMS["gamma"] or None)
            log_h = _sampled_log_h(spec, data) if spec.samples_half_life else data["log_h"]
            R = sigma_eps**2 * pt.exp(gamma * log_h)  # (n,): one R_t per row
        if spec.betas == "mean_reverting":
            params, signature = [Q, R, data["Z_obs"], phi], "(k,k),(r),(t,k),(k)->(t)"
            op = ReversionLogpOp(len(constant_k(spec.k) or ()))
        else:
            params, signature = [Q, R, data["Z_obs"]], "(k,k),(r),(t,k)->(t)"
            op = KalmanLoglikOp(_random_walk_k(spec))
        pm.CustomDist(
            OBSERVED, *params,
            logp=partial(_logp, data=data, op=op),
            random=partial(_random, spec=spec),
            signature=signature,
            observed=data["y_obs"],
            dims=DIMS[OBSERVED],
        )  # fmt: skip
    return model


def _shared_data(spec: BayesSpec) -> dict[str, pt.TensorVariable]:
    """Return the data as shared variables, not constants.

    PyTensor's numba cache then serves every data set (constants would force a 2-5 s compile
    per data set); names are prefixed to stay unique in nutpie's shared data. ``y_obs``,
    ``Z_obs``: the observed steps; ``y``, ``Z``: every row; ``steps``: where the observed are;
    ``log_h``: the variance index of a volatility-scaled R. Z, a0 and P0 are the betas' (k
    states): the Ops of both kinds of betas take them.
    """
    steps = spec.steps
    arrays = {
        "y_obs": spec.y[steps], "Z_obs": spec.Z[steps], "y": spec.y, "Z": spec.Z, "T": spec.T,
        "a0": spec.a0, "P0": spec.P0,
    }  # fmt: skip
    if spec.samples_half_life:  # the average's input, where it goes and where it is centred
        t0, arrays["index_x"] = spec.noise_index.ewma_input(spec.y, spec.Z)
        arrays["index_rows"] = np.arange(t0, spec.n)
        arrays["index_centre"] = steps[steps >= t0] - t0
    elif spec.log_h is not None:
        arrays["log_h"] = spec.log_h
    shared = {
        key: pytensor.shared(np.ascontiguousarray(
            value, dtype=np.int64 if key.startswith("index_") and key != "index_x"
            else np.float64), name=f"tvbeta_{key}")
        for key, value in arrays.items()
    }  # fmt: skip
    shared["steps"] = pytensor.shared(steps.astype(np.int64), name="tvbeta_steps")
    return shared


def _sampled_log_h(spec: BayesSpec, data: dict[str, pt.TensorVariable]) -> pt.TensorVariable:
    """Return the centred log index (n,) at a sampled half-life ``index_half_life`` (years).

    LogNormal around the index's own half-life (``priors.index_half_life_sd``); the index
    re-averaged by `EwmaLogOp` and centred on the likelihood's steps as `VolatilityIndex.centred`
    centres the fixed one; 0 before the first rolling regression, as there.
    """
    years = pm.LogNormal("index_half_life", mu=np.log(spec.noise_index.half_life / spec.ppy),
                         sigma=spec.priors.index_half_life_sd,
                         dims=DIMS["index_half_life"] or None)  # fmt: skip
    raw = EwmaLogOp()(years * spec.ppy, data["index_x"])
    centred = raw - pt.mean(raw[data["index_centre"]])
    return pt.set_subtensor(pt.zeros_like(data["y"])[data["index_rows"]], centred)


def _random_walk_k(spec: BayesSpec) -> int:
    """`KalmanLoglikOp`'s random_walk_k: k for a random-walk model with few states, else 0."""
    return len(sweep_constant(spec.T[None], spec.k) or ())


def _logp(value, Q, R, Z_obs, *phi, data: dict[str, pt.TensorVariable],
          op: KalmanLoglikOp | ReversionLogpOp):  # fmt: skip
    """Return the log-likelihood of the observed steps; the filter runs through every row.

    ``value`` fills the observed steps of the full series, so the density is a function of its
    value as PyMC expects. Random walks (`KalmanLoglikOp` with the data's T): the terms of the
    observed steps. Mean-reverting betas (phi, their persistences; `ReversionLogpOp`): their
    sum from the first observed step on, which one filter gives (the terms would need two).
    """
    y = pt.set_subtensor(data["y"][data["steps"]], value)
    if phi:
        return op(Q, R, y, data["Z"], phi[0], data["a0"], data["P0"], data["steps"][0])
    ll = op(Q, R, y, data["Z"], data["T"], data["a0"], data["P0"])
    return ll[data["steps"]]


def simulate_returns(spec: BayesSpec, Q, R, rng: np.random.Generator, Z=None,
                     T=None) -> np.ndarray:  # fmt: skip
    """Simulate one replicate of the observed steps' y (m,) from the model.

    The filter's state (`BayesSpec.kernel_initial`, e.g. beta ~ N(a0, P0)) just before the
    first observed target, then the states through every later row; returned at
    `BayesSpec.steps`. Q (K, K), R (1,) constant or (n,) per row, T (K, K) (default: the
    spec's); Z (m, K) replaces the filter's design at the observed steps if given.
    """
    n, k, steps = spec.n, spec.n_states, spec.steps
    start = burn_row(spec.y, 0)
    Zf = spec.kernel_design()
    if Z is not None:
        Zf = Zf.copy()
        Zf[steps] = Z
    a0, P0 = spec.kernel_initial
    T = spec.T if T is None else np.asarray(T, float)
    beta = a0 + psd_sqrt(P0) @ rng.standard_normal(k)
    eta = rng.standard_normal((n - start, k)) @ psd_sqrt(np.asarray(Q, float)).T
    path = np.full((n, k), np.nan)
    if np.array_equal(T, np.eye(k)):
        path[start:] = beta + np.cumsum(eta, axis=0)
    else:
        for t in range(start, n):
            beta = T @ beta + eta[t - start]
            path[t] = beta
    y = np.einsum("tk,tk->t", Zf, path) + np.sqrt(np.asarray(R, float)) * rng.standard_normal(n)
    return y[steps]


def _random(Q, R, Z, *phi, rng=None, size=None, spec: BayesSpec):
    """CustomDist draw: replicates of shape size + (m,) (parameters may be batched).

    phi: mean-reverting betas' persistences, simulated as the filter's augmented model
    (`BayesSpec.kernel_design`); else none (the spec's T).
    """
    rng = rng if rng is not None else np.random.default_rng()
    Q, R, Z = np.asarray(Q, float), np.asarray(R, float), np.asarray(Z, float)
    T = spec.T
    if phi:
        Q, Z, T = reversion.augmented_q(Q), reversion.augmented_design(Z), reversion.transition(
            phi[0])  # fmt: skip
    size = () if size is None else tuple(np.atleast_1d(size).astype(int))
    batch = np.broadcast_shapes(size, Q.shape[:-2], R.shape[:-1], Z.shape[:-2], T.shape[:-2])
    Qb = np.broadcast_to(Q, (*batch, *Q.shape[-2:]))
    Rb = np.broadcast_to(R, (*batch, R.shape[-1]))
    Zb = np.broadcast_to(Z, (*batch, *Z.shape[-2:]))
    Tb = np.broadcast_to(T, (*batch, *T.shape[-2:]))
    out = np.empty((*batch, Z.shape[-2]))
    for idx in np.ndindex(*batch):
        out[idx] = simulate_returns(spec, Qb[idx], Rb[idx], rng, Zb[idx], Tb[idx])
    return out


def sample_prior_predictive(spec_or_model: BayesSpec | pm.Model, draws: int = 500, *,
                            seed: int):  # fmt: skip
    """Draw from the prior and the prior predictive.

    A DataTree with groups prior, prior_predictive, observed_data: the returns the priors imply, to
    compare with the data's scale (see `tvbeta.estimate.bayes.diagnostics.prior_predictive_check`).
    """
    model = spec_or_model if isinstance(spec_or_model, pm.Model) else model_from_spec(spec_or_model)
    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=RANDOM_OBJMODE, category=UserWarning)
        return pm.sample_prior_predictive(draws=draws, random_seed=seed,
                                          compile_kwargs=PREDICTIVE_COMPILE)  # fmt: skip


def posterior_predictive_group(tree, model: pm.Model, seed: int):
    """Return the posterior_predictive group of ``tree``'s posterior under ``model``.

    Every variable of the posterior keeps its draws (``freeze_vars``): the scales of the priors
    are data (`pm.Data`), which PyMC 6.4 takes as a reason to warn that it froze the
    deterministic sds implicitly; frozen is what a posterior predictive means.
    """
    posterior = tree["posterior"]
    frozen = [name for name in model.named_vars if name in posterior]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=RANDOM_OBJMODE, category=UserWarning)
        pp = pm.sample_posterior_predictive(tree, model=model, random_seed=seed, progressbar=False,
                                            freeze_vars=frozen,
                                            compile_kwargs=PREDICTIVE_COMPILE)  # fmt: skip
    return pp["posterior_predictive"].copy()
