"""Bayesian layer: priors on Q and R, the betas marginalised exactly by the Kalman filter, NUTS.

`fit_bayes` (DataFrame -> `BayesFit`) is the entry point; `fit_bayes_pooled` (many funds ->
`PooledFit`) fits funds that share a population of drifts. Modules: `op` (the PyTensor Ops),
`priors`, `model`, `sampler` (nutpie or PyMC NUTS), `paths` (beta bands), `fit` (sampling,
save/load), `diagnostics` (convergence, predictive checks, LOO, plots), `pooled` (the
hierarchical model of many funds).
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
from tvbeta.estimate.bayes.op import (
    KalmanLoglikOp,
    KalmanVJPOp,
    PooledLoglikOp,
    PooledVJPOp,
    ReversionLogpOp,
    ReversionLogpVJPOp,
)
from tvbeta.estimate.bayes.paths import beta_path_summary
from tvbeta.estimate.bayes.pooled import (
    PooledFit,
    PooledSpec,
    PopulationPriors,
    build_pooled_model,
    fit_bayes_pooled,
    pooled_spec,
)
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
    "PooledFit",
    "PooledLoglikOp",
    "PooledSpec",
    "PooledVJPOp",
    "PopulationPriors",
    "Prior",
    "Priors",
    "ReversionLogpOp",
    "ReversionLogpVJPOp",
    "SamplerFallbackWarning",
    "SamplerSettings",
    "bayes_spec",
    "beta_path_summary",
    "build_model",
    "build_pooled_model",
    "check_convergence",
    "fit_bayes",
    "fit_bayes_pooled",
    "fit_spec",
    "initial_state",
    "loo",
    "model_from_spec",
    "periods_per_year",
    "plot_rank",
    "plot_trace",
    "pooled_spec",
    "posterior_predictive_check",
    "posterior_qr",
    "prior_predictive_check",
    "sample_prior_predictive",
    "summary",
]
