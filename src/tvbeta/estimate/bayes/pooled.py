"""Funds that borrow strength: a hierarchical (partially pooled) model of many funds' drifts.

Each fund j is the single-fund model of `tvbeta.estimate.bayes.model` with random-walk (or
mean-reverting) betas and a diagonal Q (beta marginalised exactly by the Kalman filter), and
its own noise sd with
the single-fund prior, sigma_eps[j] ~ HalfNormal(s_ols[j]) (`priors`). What changes is the
prior of the drift sds: per state i, the funds' drifts come from one population,

    log(sigma_beta[j, i] / s[j, i]) = mu[i] + tau[i] z[j, i],   z[j, i] ~ Normal(0, 1)
    mu[i] ~ Normal(mu_mean, mu_sd),   tau[i] ~ HalfNormal(tau_sd)

where s[j, i] is the single-fund prior's scale (`priors`: 0.5 / sqrt(ppy) beta units per
period for a factor, 0.1 sd(y_j) / sqrt(ppy) for the intercept), so mu and tau are unitless
and one population serves funds of different volatility. Defaults (`PopulationPriors`):
mu_mean = -0.635 and mu_sd^2 + tau_sd^2 = 1 + 0.25 ~ pi^2 / 8 are the mean and variance of
log(sigma / s) under the single-fund HalfNormal(s) (of log|N(0, 1)|: -(gamma_E + log 2) / 2
and pi^2 / 8), so each fund's marginal prior has the single-fund prior's centre and spread,
and the data decide through tau how much the funds share: tau -> 0 pools every fund's drift
to one value per factor, a large tau leaves them separate. tau_sd = 0.5 is weakly
informative: a fund's drift within a factor of e^(2 x 0.5) ~ 2.7 of the population's at its
prior's median tau is expected, and tau near 0 (full pooling) is allowed.

Why non-centred (z sampled, sigma_beta a deterministic): with short histories the data say
little about each fund's drift, so in the centred form (log sigma_beta[j, i] ~ N(mu, tau))
the posterior of (tau, log sigma_beta) is Neal's funnel, whose narrow neck at small tau NUTS
cannot enter without divergences; in (mu, tau, z) the prior is a product of independent
standard shapes and the funnel is gone where the likelihood is weak (Papaspiliopoulos,
Roberts & Sköld 2007, Statist. Sci. 22(1), 59-73; Betancourt & Girolami 2015, "Hamiltonian
Monte Carlo for hierarchical models"). Unlike the single-fund HalfNormal seen in log space
(`priors`: the slow e^u tail to sigma -> 0), the log-normal has a Gaussian tail in log
sigma, so a static beta does not send the sampler down a long flat tail.

The likelihood of all funds is one `PooledLoglikOp` call per log density (one numba call for
every fund's terms, one for their gradient; for mean-reverting betas the two k-state filters
of `tvbeta.kalman.collapsed` per fund, with the gradient in phi): funds of different lengths
are padded with NaN targets at the end; funds of one DataFrame share its rows (leading NaN
rows of a fund that starts later are not part of its model, as for one fund). The observed
variable ``y`` holds every fund's observed steps after its burn-in, one after another (dim
``obs``); the log-likelihood equals the sum of the single-fund models' at the same
parameters.

`fit_bayes_pooled` returns a `PooledFit` with the posterior (dims ``fund``, ``state``);
`PooledFit.fund_fit` gives one fund's posterior as a `BayesFit`, which the single-fund tools
(beta bands, scores, `tvbeta.funds.fund_summary`) take unchanged.

With ``noise="volatility"`` (`tvbeta.estimate.bayes.model`: R_t = sigma_eps^2 h_t^gamma, h_t
each fund's own variance index) the elasticities come from one population too, non-centred
as the drifts: gamma[j] = gamma_mu + gamma_tau gamma_z[j], gamma_z[j] ~ Normal(0, 1),
gamma_mu ~ Normal(0, gamma_sd) (the single-fund prior's sd, `Priors.gamma_sd`), gamma_tau ~
HalfNormal(gamma_tau_sd) (`PopulationPriors`, 0.5): each fund's marginal prior keeps the
single-fund centre 0 with variance gamma_sd^2 + gamma_tau_sd^2.

With ``betas="mean_reverting"`` (`tvbeta.estimate.bayes.model`: beta_t - mu = diag(phi)
(beta_{t-1} - mu) + eta_t, phi = phi_annual^(1/ppy), mu integrated out) each fund's one-year
persistences come from one population per state, non-centred as the drifts, on the logit
scale:

    logit(phi_annual[j, i]) = phi_mu[i] + phi_tau[i] phi_z[j, i],   phi_z[j, i] ~ Normal(0, 1)
    phi_mu[i] ~ Normal(phi_mu_mean, phi_mu_sd),   phi_tau[i] ~ HalfNormal(phi_tau_sd)

The single-fund prior phi_annual ~ Beta(a, b) (``Priors.reversion_a``, ``reversion_b``, the
same for every fund) has logit mean psi(a) - psi(b) and variance psi'(a) + psi'(b) (psi the
digamma function: logit X = log G_a - log G_b for independent Gamma(a), Gamma(b) variables):
1.8333 and 1.9288 for the default Beta(4, 1). phi_mu_mean is that mean and phi_mu_sd^2 +
phi_tau_sd^2 that variance (phi_tau_sd = 0.5, so phi_mu_sd = 1.2957 by default;
`PopulationPriors.reversion_population`), so each fund's marginal prior keeps the single-fund
prior's centre and spread on the logit scale, as the drifts keep theirs on the log scale. It
is not the Beta itself (its density does not rise to phi_annual = 1), but close in mass:
median 0.86 (Beta 0.84), 21% above 0.95 (19%), 12% below 0.56 (10%; Monte Carlo). Why
the logit and a Normal: the persistences of funds sharing a factor are alike or not as the data
say through phi_tau, non-centred for the same funnel as the drifts, and the logit maps (0, 1)
onto the line NUTS moves on. phi_tau_sd = 0.5, as the drifts' tau_sd: at phi_tau = 0.5 a
fund's logit lies within +-1 of the population's with 95% probability (at the default centre
phi_annual 0.70..0.95 around 0.86), and phi_tau near 0 (one persistence for all funds) is
allowed.

Measured (2 shared vCPUs under load, `scripts/pooled_kernel.py`, medians of interleaved
repeats): one value + gradient of 12 funds x 60 rows x 5 states costs 0.76 ms with the funds
one after another, 23.5 ms spread over numba's threads (``prange``) and 1.5 ms as 12
single-fund kernel calls from Python; at 100 funds x 520 rows 46 ms, 76 ms and 63 ms. nutpie
already runs the chains in threads, so the Op loops over the funds on one thread.
Mean-reverting betas (``--betas mean_reverting``, three runs): 12 funds x 120 rows x 5 states
cost 1.7, 1.45 and 1.87 ms pooled against 1.85, 1.38 and 2.08 ms as 12 single-fund
calls of the terms' collapsed kernels (ratios 0.95-1.11: the same work); at 100 funds x 520 rows
the pooled call is 1.5-1.7x slower (69-104 ms against 42-67 ms): all funds' tapes (3k^2 + 5k
+ 4 columns a row, 43 MB) leave the cache between the forward and the adjoint sweep, where
one fund's 0.4 MB stays in it. A fit of 12 simulated weekly funds x 120 weeks x 3 states
(4 chains x (1000 + 1000), cores=2, one process): 64 s with warm caches (157 s cold) against
43 s for the random-walk pooled model of the same data.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from tvbeta.constants import FUND, STATE
from tvbeta.data.validate import check_names, column_list, repeated
from tvbeta.estimate.bayes.diagnostics import ConvergenceReport, check_draws
from tvbeta.estimate.bayes.fit import BayesFit, log_likelihood, posterior_system, run_record
from tvbeta.estimate.bayes.model import (
    OBSERVED,
    SIGNED_FAMILIES,
    BayesSpec,
    Betas,
    Noise,
    SignedScale,
    bayes_spec,
)
from tvbeta.estimate.bayes.op import PooledLoglikOp
from tvbeta.estimate.bayes.paths import beta_path_summary
from tvbeta.estimate.bayes.priors import SCALE_PARAM, Priors, _real
from tvbeta.estimate.bayes.sampler import adaptation_for, sample_nuts
from tvbeta.kalman.filter import constant_k
from tvbeta.nuts import Sampler, SamplerSettings, check_seed

__all__ = [
    "PooledFit", "PooledSpec", "PopulationPriors", "build_pooled_model", "fit_bayes_pooled",
    "fit_pooled_spec", "pooled_spec",
]  # fmt: skip

OBS = "obs"
"""Dim of the observed variable: every fund's observed steps after its burn-in, fund by fund."""
LOG_HALFNORMAL_MEAN = -0.6351814227307391
"""E log|X| for X ~ N(0, 1), -(Euler's gamma + log 2) / 2: the single-fund prior's centre."""


@dataclass(frozen=True)
class PopulationPriors:
    """Priors of the population of drifts (module docstring).

    mu[i] ~ Normal(mu_mean, mu_sd), tau[i] ~ HalfNormal(tau_sd), in units of
    log(sigma_beta / s), s the single-fund scale; with a volatility-scaled R, gamma_tau ~
    HalfNormal(gamma_tau_sd), the spread of the funds' elasticities gamma. With mean-reverting
    betas, phi_mu[i] ~ Normal(phi_mu_mean, phi_mu_sd) and phi_tau[i] ~ HalfNormal(phi_tau_sd)
    on the logit of the one-year persistence phi_annual; phi_mu_mean and phi_mu_sd default
    (None) to the values that keep each fund's Beta(reversion_a, reversion_b) prior's logit
    mean and variance (`reversion_population`).

    Raises
    ------
    ValueError
        A non-finite mu_mean or phi_mu_mean, or mu_sd, tau_sd, gamma_tau_sd, phi_mu_sd or
        phi_tau_sd not a number > 0.
    """

    mu_mean: float = LOG_HALFNORMAL_MEAN
    mu_sd: float = 1.0
    tau_sd: float = 0.5
    gamma_tau_sd: float = 0.5
    phi_mu_mean: float | None = None
    phi_mu_sd: float | None = None
    phi_tau_sd: float = 0.5

    def __post_init__(self) -> None:
        """Refuse values without a distribution (ValueError naming the setting)."""
        unset = {"phi_mu_mean", "phi_mu_sd"}  # None: from the funds' Beta prior
        for name in ("mu_mean", "mu_sd", "tau_sd", "gamma_tau_sd", "phi_mu_mean", "phi_mu_sd",
                     "phi_tau_sd"):  # fmt: skip
            value = getattr(self, name)
            if value is None and name in unset:
                continue
            sd = not name.endswith("_mean")
            if not (_real(value) and np.isfinite(value) and (value > 0 or not sd)):
                raise ValueError(f"{name} must be a finite number{' > 0' if sd else ''}, got "
                                 f"{value!r}")  # fmt: skip

    def reversion_population(self, a: float, b: float) -> tuple[float, float]:
        """Return (phi_mu_mean, phi_mu_sd) for funds whose single-fund prior is Beta(a, b).

        Unset values keep that prior's logit moments (module docstring): the mean
        psi(a) - psi(b) and the sd sqrt(psi'(a) + psi'(b) - phi_tau_sd^2), psi the digamma
        function (for the default Beta(4, 1): 1.8333 and sqrt(1.9288 - 0.25) = 1.2957).

        Raises
        ------
        ValueError
            phi_mu_sd unset and phi_tau_sd^2 not below the prior's logit variance.
        """
        mean = special.digamma(a) - special.digamma(b)
        if self.phi_mu_sd is not None:
            sd = self.phi_mu_sd
        else:
            variance = float(special.polygamma(1, a) + special.polygamma(1, b))
            if self.phi_tau_sd**2 >= variance:
                raise ValueError(
                    f"phi_tau_sd = {self.phi_tau_sd:g} leaves no variance for phi_mu: the "
                    f"Beta({a:g}, {b:g}) prior of phi_annual has logit sd {np.sqrt(variance):.4g}"
                    f"; set phi_tau_sd below it or set phi_mu_sd"
                )
            sd = np.sqrt(variance - self.phi_tau_sd**2)
        return float(mean if self.phi_mu_mean is None else self.phi_mu_mean), float(sd)


@dataclass(frozen=True, eq=False)
class PooledSpec:
    """J funds' single-fund specs and the population priors (no fitted state).

    funds : (J,) `BayesSpec`s of diagonal Q, with the same states, frequency, noise (constant
    R for all, or volatility-scaled R_t with one gamma_sd for all) and betas (random walks for
    all, or mean-reverting with one reversion prior for all); names : (J,) fund labels;
    population : `PopulationPriors`.
    Built by `pooled_spec` (a DataFrame) or `PooledSpec.of` (ready specs).
    """

    funds: tuple[BayesSpec, ...]
    names: tuple[str, ...]
    population: PopulationPriors = PopulationPriors()

    @classmethod
    def of(cls, funds: Sequence[BayesSpec], names: Sequence[Hashable] | None = None,
           population: PopulationPriors | None = None) -> PooledSpec:  # fmt: skip
        """Check that the specs can share one population and return the pooled spec.

        Raises
        ------
        ValueError
            No fund; names not one per fund or repeated; a spec with a full Q, a horseshoe, a
            sampled index half-life, a transition other than I, other states, frequency,
            noise, gamma_sd, betas or reversion prior (reversion_a, reversion_b) than the
            first fund's, or a sigma_beta prior that is not the default HalfNormal (the
            population replaces it); sigma_eps priors of different families; mean-reverting
            betas with a phi_tau_sd that `PopulationPriors.reversion_population` refuses.
        """
        funds = tuple(funds)
        if not funds:
            raise ValueError("funds is empty: give at least one fund")
        names = tuple(str(n) for n in (names if names is not None else range(len(funds))))
        if len(names) != len(funds) or repeated(names):
            raise ValueError(f"names must name each of the {len(funds)} funds once, got "
                             f"{list(names)}")  # fmt: skip
        first = funds[0]
        reversion = (first.priors.reversion_a, first.priors.reversion_b)
        for name, f in zip(names, funds, strict=True):
            why = [
                f.betas != first.betas and f"betas {f.betas!r} ({first.betas!r} for "
                f"{names[0]!r})",
                f.betas == "mean_reverting"
                and (f.priors.reversion_a, f.priors.reversion_b) != reversion
                and f"the reversion prior Beta({f.priors.reversion_a:g}, "
                f"{f.priors.reversion_b:g}) (Beta({reversion[0]:g}, {reversion[1]:g}) for "
                f"{names[0]!r})",
                f.noise != first.noise and f"noise {f.noise!r} ({first.noise!r} for "
                f"{names[0]!r})",
                f.noise == "volatility" and f.priors.gamma_sd != first.priors.gamma_sd
                and f"gamma_sd {f.priors.gamma_sd:g} ({first.priors.gamma_sd:g} for "
                f"{names[0]!r})",
                f.samples_half_life and "a sampled index half-life (priors.index_half_life_sd "
                "> 0; the pooled model keeps each fund's index at its fixed half-life)",
                f.q != "diag" and 'q="full"', f.shrinkage != "none" and "a horseshoe",
                not np.array_equal(f.T, np.eye(f.k)) and "a transition other than I",
                f.state_names != first.state_names and f"states {list(f.state_names)} "
                f"(fund {names[0]!r} has {list(first.state_names)})",
                f.ppy != first.ppy and f"{f.ppy:g} periods per year ({first.ppy:g} for "
                f"{names[0]!r})",
                f.resolved.sigma_beta.dist != "HalfNormal" and "a sigma_beta prior other "
                "than HalfNormal (the population prior replaces it; set its scale with "
                "beta_drift_per_year and intercept_drift_per_year)",
                f.resolved.sigma_eps.dist != first.resolved.sigma_eps.dist and "a sigma_eps "
                "prior of another family than the first fund's",
            ]  # fmt: skip
            why = [w for w in why if w]
            if why:
                raise ValueError(f"fund {name!r} cannot join the pooled model (diagonal Q, the "
                                 f"same states, noise and betas): it has "
                                 f"{'; '.join(why)}")  # fmt: skip
        spec = cls(funds, names, population or PopulationPriors())
        if spec.betas == "mean_reverting":
            spec.reversion_population()  # its ValueError before anything is compiled
        return spec

    J = property(lambda self: len(self.funds), doc="The number of funds.")
    k = property(lambda self: self.funds[0].k, doc="The number of states per fund.")
    n = property(lambda self: max(f.n for f in self.funds), doc="Rows after padding.")
    state_names = property(lambda self: self.funds[0].state_names, doc="The states, (k,).")
    noise = property(lambda self: self.funds[0].noise, doc='"constant" or "volatility".')
    betas = property(lambda self: self.funds[0].betas, doc='"random_walk" or "mean_reverting".')

    @property
    def fund_variables(self) -> list[str]:
        """The posterior variables with a ``fund`` dim that a fund's `BayesFit` carries."""
        return (["sigma_eps", "sigma_beta"] + (["gamma"] if self.noise == "volatility" else [])
                + (["phi_annual", "phi"] if self.betas == "mean_reverting" else []))  # fmt: skip

    @property
    def population_variables(self) -> list[str]:
        """The posterior variables of the population (no ``fund`` dim)."""
        return (["mu", "tau"] + (["gamma_mu", "gamma_tau"] if self.noise == "volatility" else [])
                + (["phi_mu", "phi_tau"] if self.betas == "mean_reverting" else []))  # fmt: skip

    def reversion_population(self) -> tuple[float, float]:
        """Return the mean and sd of phi_mu's Normal prior.

        `PopulationPriors.reversion_population` for the funds' Beta(reversion_a, reversion_b)
        (ValueError as there).
        """
        priors = self.funds[0].priors
        return self.population.reversion_population(priors.reversion_a, priors.reversion_b)

    def drift_scale(self) -> np.ndarray:
        """Return s (J, k), each fund's single-fund HalfNormal scale of sigma_beta (per period)."""
        return np.array([np.broadcast_to(f.resolved.sigma_beta.params["sigma"], (self.k,))
                         for f in self.funds], dtype=np.float64)  # fmt: skip

    def stacked(self) -> dict[str, np.ndarray]:
        """Return the Op's data, every fund's stacked along a first axis.

        y (J, n) NaN-padded at the end, Z (J, n, k) 0-padded, a0 (J, k), P0 (J, k, k),
        T (k, k); ``steps`` (M,) the flat positions j n + t of the likelihood's terms (each
        fund's `BayesSpec.steps`, fund by fund); with a volatility-scaled R also ``log_h``
        (J, n), each fund's centred log variance index, 0-padded (R_t = sigma_eps^2 there,
        on rows with no target).
        """
        n, k = self.n, self.k
        y, Z = np.full((self.J, n), np.nan), np.zeros((self.J, n, k))
        steps = []
        for j, f in enumerate(self.funds):
            y[j, : f.n], Z[j, : f.n] = f.y, f.Z
            steps.append(j * n + f.steps)
        data = {
            "y": y, "Z": Z, "T": np.eye(k), "a0": np.array([f.a0 for f in self.funds]),
            "P0": np.array([f.P0 for f in self.funds]), "steps": np.concatenate(steps),
        }  # fmt: skip
        if self.noise == "volatility":
            data["log_h"] = np.zeros((self.J, n))
            for j, f in enumerate(self.funds):
                data["log_h"][j, : f.n] = f.log_h
        return data


def pooled_spec(
    df: pd.DataFrame,
    targets: Sequence[Hashable],
    factor_cols: Sequence[Hashable] | str,
    *,
    intercept: bool = True,
    priors: Priors | dict | None = None,
    burn: int | None = None,
    frequency: str | float | None = None,
    noise: Noise = "constant",
    betas: Betas = "random_walk",
    population: PopulationPriors | None = None,
) -> PooledSpec:
    """Validate every fund as `bayes_spec` does and return their `PooledSpec`.

    Parameters
    ----------
    df : pd.DataFrame
        Decimal returns, one row per period: the funds' columns (NaN where a fund has no
        return, e.g. before its start) and the factors'.
    targets : sequence of hashable
        The funds' columns, each once.
    factor_cols : sequence of hashable or one column name
    intercept, priors, burn, frequency, noise, betas
        As in `bayes_spec` (per fund: each fund's data set its default prior scales, initial
        state and variance index); ``priors.sigma_beta`` must stay unset (the population
        replaces it); with ``betas="mean_reverting"``, ``priors.reversion_a`` and
        ``reversion_b`` set the population of phi (module docstring).
    population : PopulationPriors, optional
        The population priors (default: the module docstring's).

    Raises
    ------
    ValueError
        No target or a target listed twice; what `PooledSpec.of` and `bayes_spec` refuse.
    DataValidationError
        A column missing (checked for every fund before any is validated), or a fund's data
        that `prepare_design` refuses.
    """
    targets, factors = column_list(targets, "targets"), column_list(factor_cols)
    if not targets:
        raise ValueError("targets is empty: name one or more fund columns")
    if repeated(targets):
        raise ValueError(f"targets lists {repeated(targets)} more than once: list each once")
    for target in targets:
        check_names(df, target, factors, intercept)
    specs = [bayes_spec(df, t, factors, intercept=intercept, priors=priors, burn=burn,
                        frequency=frequency, noise=noise, betas=betas)
             for t in targets]  # fmt: skip
    return PooledSpec.of(specs, targets, population)


def build_pooled_model(spec: PooledSpec) -> pm.Model:
    """Build the PyMC model of the module docstring.

    Free variables: ``sigma_eps`` (fund; sampled as a signed sd, `SignedScale`), ``mu`` and
    ``tau`` (state), ``z`` (fund, state); deterministic ``sigma_beta`` (fund, state). With a
    volatility-scaled R also ``gamma_mu``, ``gamma_tau``, ``gamma_z`` (fund) and deterministic
    ``gamma`` (fund). With mean-reverting betas also ``phi_mu``, ``phi_tau`` (state),
    ``phi_z`` (fund, state) and deterministic ``phi_annual`` and ``phi`` (fund, state). Observed
    ``y`` (obs): every fund's observed steps after its burn-in, a `pm.CustomDist` whose log
    density is the `PooledLoglikOp` terms (no ``random``: no predictive draws).
    """
    data = spec.stacked()
    data["y_obs"], data["scale"] = data["y"].ravel()[data["steps"]], spec.drift_scale()
    pop = spec.population
    coords = {FUND: list(spec.names), STATE: list(spec.state_names),
              OBS: np.arange(len(data["steps"]))}  # fmt: skip
    # shared, not constants: PyTensor's numba cache then serves every data set (as in `model`)
    shared = {key: pytensor.shared(np.ascontiguousarray(value), name=f"tvbeta_pooled_{key}")
              for key, value in data.items()}  # fmt: skip
    with pm.Model(coords=coords) as model:
        sigma_eps = _noise_prior(spec)
        mu = pm.Normal("mu", pop.mu_mean, pop.mu_sd, dims=STATE)
        tau = pm.HalfNormal("tau", pop.tau_sd, dims=STATE)
        z = pm.Normal("z", 0.0, 1.0, dims=(FUND, STATE))
        sigma_beta = pm.Deterministic("sigma_beta", shared["scale"] * pt.exp(mu + tau * z),
                                      dims=(FUND, STATE))  # fmt: skip
        Q = (sigma_beta**2)[:, :, None] * pt.eye(spec.k)[None]
        R = (sigma_eps**2)[:, None]  # (J, 1): constant
        if spec.noise == "volatility":
            gamma_mu = pm.Normal("gamma_mu", 0.0, spec.funds[0].priors.gamma_sd)
            gamma_tau = pm.HalfNormal("gamma_tau", pop.gamma_tau_sd)
            gamma_z = pm.Normal("gamma_z", 0.0, 1.0, dims=FUND)
            gamma = pm.Deterministic("gamma", gamma_mu + gamma_tau * gamma_z, dims=FUND)
            R = R * pt.exp(gamma[:, None] * shared["log_h"])  # (J, n): one R_t per row
        params, signature = [Q, R, shared["steps"]], "(j,k,k),(j,r),(m)"
        if spec.betas == "mean_reverting":
            params.append(_reversion_prior(spec))
            signature += ",(j,k)"
        op = PooledLoglikOp(len(constant_k(spec.k) or ()), spec.betas == "mean_reverting")
        pm.CustomDist(
            OBSERVED, *params, logp=partial(_logp, data=shared, op=op),
            signature=f"{signature}->(m)", observed=shared["y_obs"], dims=OBS,
        )  # fmt: skip
    return model


def _reversion_prior(spec: PooledSpec) -> pt.TensorVariable:
    """``phi`` (fund, state) of the module docstring's population, inside the model context."""
    mean, sd = spec.reversion_population()
    phi_mu = pm.Normal("phi_mu", mean, sd, dims=STATE)
    phi_tau = pm.HalfNormal("phi_tau", spec.population.phi_tau_sd, dims=STATE)
    phi_z = pm.Normal("phi_z", 0.0, 1.0, dims=(FUND, STATE))
    phi_annual = pm.Deterministic("phi_annual", pt.sigmoid(phi_mu + phi_tau * phi_z),
                                  dims=(FUND, STATE))  # fmt: skip
    return pm.Deterministic("phi", phi_annual ** (1.0 / spec.funds[0].ppy), dims=(FUND, STATE))


def _noise_prior(spec: PooledSpec) -> pt.TensorVariable:
    """``sigma_eps`` (fund): each fund's single-fund prior (`priors`), stacked along fund."""
    priors = [f.resolved.sigma_eps for f in spec.funds]
    dist = priors[0].dist
    params = {name: np.array([p.params[name] for p in priors], dtype=np.float64)
              for name in priors[0].params}  # fmt: skip
    if dist in SIGNED_FAMILIES and SCALE_PARAM[dist] in params:
        return getattr(pm, dist)("sigma_eps", **params, dims=FUND, default_transform=None,
                                 transform=SignedScale(params[SCALE_PARAM[dist]]))  # fmt: skip
    return getattr(pm, dist)("sigma_eps", **params, dims=FUND)


def _logp(value, Q, R, steps, *phi, data: dict[str, pt.TensorVariable], op: PooledLoglikOp):
    """Return the terms at the observed steps; every fund's filter runs through all its rows.

    phi: the persistences (fund, state) of mean-reverting betas, else none (the data's T).
    """
    shape = data["y"].shape
    y = pt.set_subtensor(data["y"].ravel()[steps], value).reshape(shape)
    ll = op(Q, R, y, data["Z"], phi[0] if phi else data["T"], data["a0"], data["P0"])
    return ll.ravel()[steps]


@dataclass(frozen=True, eq=False)
class PooledFit:
    """The posterior of the pooled model.

    tree : DataTree (posterior with dims chain, draw, fund, state; sample_stats); spec : the
    `PooledSpec`; settings : sampler settings, seed and timings.
    """

    tree: xr.DataTree
    spec: PooledSpec
    settings: dict

    def __repr__(self) -> str:
        """Return the funds, states and what the sampler ran."""
        s = self.settings
        return (f"PooledFit({self.spec.J} funds, states {list(self.spec.state_names)}; "
                f"{s['sampler']}: {s['chains']} chains x {s['draws']} draws, seed {s['seed']}, "
                f"{s['wall_time_total']:.1f} s)")  # fmt: skip

    def fund_fit(self, fund: Hashable, n_paths: int | None = None) -> BayesFit:
        """Return one fund's posterior as a `BayesFit` (what single-fund tools take).

        Its posterior holds that fund's ``sigma_eps`` (chain, draw) and ``sigma_beta``
        (chain, draw, state) (and ``gamma``, ``phi_annual``, ``phi`` as a single-fund fit of
        the same model has them); its log_likelihood group the fund's pointwise terms; its
        beta bands ``n_paths`` draws (default: the fit's setting; 0 for none; for
        mean-reverting betas the first k states of the filter of [beta; mu], as a single-fund
        fit's).

        Raises
        ------
        KeyError
            ``fund`` is not one of the fit's funds.
        """
        names = self.spec.names
        if str(fund) not in names:
            raise KeyError(f"fund {fund!r} is not in this fit; its funds are {list(names)}")
        j = names.index(str(fund))
        spec = self.spec.funds[j]
        post = self.tree["posterior"].to_dataset()[self.spec.fund_variables].isel({FUND: j})
        stats = self.tree["sample_stats"].to_dataset()
        tree = xr.DataTree.from_dict({"posterior": post.drop_vars(FUND), "sample_stats": stats})
        tree["log_likelihood"] = xr.DataTree(log_likelihood(tree, spec))
        n_paths = self.settings["n_paths"] if n_paths is None else n_paths
        seed = int(np.random.SeedSequence([self.settings["seed"], j]).generate_state(1)[0])
        beta = (beta_path_summary(spec, posterior_system(tree, spec), n_paths=n_paths, seed=seed)
                if n_paths > 0 else xr.Dataset())  # fmt: skip
        return BayesFit(tree=tree, beta=beta, spec=spec, settings=dict(self.settings))

    def check_convergence(self, warn: bool = True) -> ConvergenceReport:
        """Check mu, tau, sigma_eps and sigma_beta as `diagnostics.check_convergence` does one fund.

        With a volatility-scaled R also gamma_mu, gamma_tau and gamma; with mean-reverting
        betas also phi_mu, phi_tau and phi_annual (not phi per step, its monotone function: the
        same diagnostics). R-hat, bulk and tail
        ESS, divergences and E-BFMI; warns (BayesConvergenceWarning) when any check fails.
        """
        # phi per step is a monotone function of phi_annual: the same ranks, R-hat and ESS
        fund = [name for name in self.spec.fund_variables if name != "phi"]
        var_names = self.spec.population_variables + fund
        return check_draws(self.tree, var_names, what="pooled Bayesian fit", warn=warn)


def fit_bayes_pooled(
    df: pd.DataFrame,
    targets: Sequence[Hashable],
    factor_cols: Sequence[Hashable] | str,
    *,
    seed: int,
    draws: int = SamplerSettings.draws,
    tune: int = SamplerSettings.tune,
    chains: int = SamplerSettings.chains,
    cores: int | None = SamplerSettings.cores,
    target_accept: float = SamplerSettings.target_accept,
    sampler: Sampler = SamplerSettings.sampler,
    n_paths: int = SamplerSettings.n_paths,
    settings: SamplerSettings | None = None,
    intercept: bool = True,
    priors: Priors | dict | None = None,
    burn: int | None = None,
    frequency: str | float | None = None,
    noise: Noise = "constant",
    betas: Betas = "random_walk",
    population: PopulationPriors | None = None,
    progressbar: bool = False,
    check: bool = True,
) -> PooledFit:
    """Fit the hierarchical model of many funds (module docstring) by one NUTS run.

    Parameters
    ----------
    df, targets, factor_cols, intercept, priors, burn, frequency, noise, betas, population
        The data and the model, as in `pooled_spec`.
    seed : int
        Seeds the sampler (and the funds' beta paths in `PooledFit.fund_fit`).
    draws, tune, chains, cores, target_accept, sampler, n_paths, settings
        The NUTS settings, as in `fit_bayes` (``n_paths``: the beta bands of `fund_fit`).
    progressbar : bool
    check : bool
        Warn (BayesConvergenceWarning) on R-hat > 1.01, ESS < 400, divergences or E-BFMI < 0.3.

    Returns
    -------
    PooledFit

    Raises
    ------
    ValueError, TypeError
        A bad sampler setting or seed, or what `pooled_spec` refuses, before anything is
        compiled.
    DataValidationError
        A fund's unusable data (see `tvbeta.data.prepare_design`).
    """
    settings = SamplerSettings.of(settings, draws=draws, tune=tune, chains=chains, cores=cores,
                                  target_accept=target_accept, sampler=sampler,
                                  n_paths=n_paths)  # fmt: skip
    check_seed(seed)
    spec = pooled_spec(df, targets, factor_cols, intercept=intercept, priors=priors, burn=burn,
                       frequency=frequency, noise=noise, betas=betas,
                       population=population)  # fmt: skip
    return fit_pooled_spec(spec, settings, seed=seed, progressbar=progressbar, check=check)


def fit_pooled_spec(
    spec: PooledSpec,
    settings: SamplerSettings = SamplerSettings(),
    *,
    seed: int,
    progressbar: bool = False,
    check: bool = True,
) -> PooledFit:
    """`fit_bayes_pooled` on a ready `PooledSpec` (e.g. from `PooledSpec.of`)."""
    check_seed(seed)
    run = settings.resolved()
    t0 = time.perf_counter()
    model = build_pooled_model(spec)
    nuts = sample_nuts(model, run, seed=seed, progressbar=progressbar,
                       adaptation=adaptation_for(spec.funds[0].betas))  # fmt: skip
    record = run_record(run, nuts, seed, burn=spec.funds[0].burn, frequency=spec.funds[0].ppy,
                        wall_time_total=time.perf_counter() - t0)  # fmt: skip
    fit = PooledFit(tree=nuts.tree, spec=spec, settings=record)
    if check:
        fit.check_convergence()
    return fit
