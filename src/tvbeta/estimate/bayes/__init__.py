"""Bayesian layer: priors on Q and R, the betas marginalised exactly by the Kalman filter, NUTS.

Core functions
--------------
fit_bayes              DataFrame -> BayesFit: posterior of Q, R (nutpie or PyMC NUTS), pointwise
                       log-likelihood, beta path bands (filtered and smoothed), convergence checks
SamplerSettings        the NUTS settings (draws, tune, chains, ...) as one validated object
build_model            DataFrame -> pm.Model (for custom sampling or inspection)
BayesFit               DataTree + beta path summaries + spec; .save(path) / BayesFit.load(path)
Priors, Prior          prior settings, unit-aware defaults, from dict / TOML
check_convergence      R-hat, ESS, divergences, E-BFMI, with a warning when any fails
summary, loo           ArviZ summary of Q/R parameters; PSIS-LOO over the one-step terms
posterior_predictive_check, prior_predictive_check   replicated-return statistics vs the data
plot_trace, plot_rank  ArviZ PlotCollections (matplotlib; PNG when given a path)
KalmanLoglikOp         the PyTensor Op (one-step log densities) with exact pullback, native numba

SamplerFallbackWarning nutpie's fast path failed (a release changed its internals): PyMC's NUTS ran

Modules: `op` (the Ops), `priors`, `model`, `sampler` (nutpie or PyMC NUTS), `paths` (beta
bands), `fit`, `diagnostics`.
"""

from tvbeta.estimate.bayes.diagnostics import (
    BayesConvergenceWarning,
    ConvergenceReport,
    check_convergence,
    loo,
    plot_rank,
    plot_trace,
    posterior_predictive_check,
    prior_predictive_check,
    summary,
)
from tvbeta.estimate.bayes.fit import BayesFit, fit_bayes, fit_spec, posterior_qr
from tvbeta.estimate.bayes.model import (
    BayesSpec,
    bayes_spec,
    build_model,
    model_from_spec,
    sample_prior_predictive,
)
from tvbeta.estimate.bayes.op import KalmanLoglikOp, KalmanVJPOp
from tvbeta.estimate.bayes.paths import beta_path_summary
from tvbeta.estimate.bayes.priors import (
    InitialState,
    Prior,
    Priors,
    initial_state,
    periods_per_year,
)
from tvbeta.estimate.bayes.sampler import SamplerFallbackWarning, SamplerSettings

__all__ = [
    "BayesConvergenceWarning",
    "BayesFit",
    "BayesSpec",
    "ConvergenceReport",
    "InitialState",
    "KalmanLoglikOp",
    "KalmanVJPOp",
    "Prior",
    "Priors",
    "SamplerFallbackWarning",
    "SamplerSettings",
    "bayes_spec",
    "beta_path_summary",
    "build_model",
    "check_convergence",
    "fit_bayes",
    "fit_spec",
    "initial_state",
    "loo",
    "model_from_spec",
    "periods_per_year",
    "plot_rank",
    "plot_trace",
    "posterior_predictive_check",
    "posterior_qr",
    "prior_predictive_check",
    "sample_prior_predictive",
    "summary",
]
