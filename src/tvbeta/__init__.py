"""tvbeta: time-varying factor exposures with an exact Kalman core, MLE and Bayesian Q/R.

Layers (each imports only the ones before it): `tvbeta.data` -> `tvbeta.model` (KalmanSpec,
KalmanEngine) -> `tvbeta.kalman` (numba kernels) -> `tvbeta.results` -> `tvbeta.estimate`
(MLE, grid, PyMC) -> `tvbeta.evaluate` (diagnostics, comparison) -> `tvbeta.viz` and
`tvbeta.report`; the `tvbeta` command is `tvbeta.cli`.

The seed notebook's names are all here (`KalmanSpec`, `KalmanEngine`, `run_kalman_grid_search`,
`ModelDiagnosticsPlotter`, `summarize_model_diagnostics`, ...). Estimation and comparison
functions load on first use, so `import tvbeta` does not import PyMC.
"""

from importlib import import_module
from typing import Any

# first: drops stale numba caches (`tvbeta._numba_cache`) before any kernel is compiled or read
from tvbeta import _numba_cache, constants  # noqa: F401
from tvbeta.data import aggregate_weekly_data
from tvbeta.evaluate import (
    residual_diagnostics,
    summarize_factor_dynamics,
    summarize_model_diagnostics,
)
from tvbeta.model import KalmanEngine, KalmanSpec, SpecError, TimeVarying
from tvbeta.results import KalmanResult
from tvbeta.viz import (
    ModelDiagnosticsPlotter,
    plot_alpha_probability,
    plot_beta_grid,
    plot_factor_contributions,
    plot_filtered_vs_smoothed,
    plot_stacked_betas,
    save_html,
)

_LAZY = {
    "fit_mle": "tvbeta.estimate.mle", "MLEFit": "tvbeta.estimate.mle",
    "crosscheck_statsmodels": "tvbeta.estimate.crosscheck",
    "run_kalman_grid_search": "tvbeta.estimate.grid",
    "FundRunner": "tvbeta.funds", "ModelComparisonEngine": "tvbeta.funds",
    "fit_funds": "tvbeta.funds",
    "build_model": "tvbeta.estimate.bayes.model",
    "fit_bayes": "tvbeta.estimate.bayes.fit", "BayesFit": "tvbeta.estimate.bayes.fit",
    "fit_bayes_pooled": "tvbeta.estimate.bayes.pooled", "PooledFit": "tvbeta.estimate.bayes.pooled",
    "compare_methods": "tvbeta.evaluate.compare", "Comparison": "tvbeta.evaluate.comparison",
    "BayesSettings": "tvbeta.evaluate.settings", "SamplerSettings": "tvbeta.nuts",
    "GridSettings": "tvbeta.evaluate.settings",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tvbeta' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Return the loaded names and the lazy ones (PEP 562), for ``dir`` and tab completion."""
    return sorted({*globals(), *_LAZY})


__all__ = [
    "KalmanEngine", "KalmanResult", "KalmanSpec", "ModelDiagnosticsPlotter", "SpecError",
    "TimeVarying", "aggregate_weekly_data", "constants", "plot_alpha_probability", "plot_beta_grid",
    "plot_factor_contributions", "plot_filtered_vs_smoothed", "plot_stacked_betas",
    "residual_diagnostics", "save_html", "summarize_factor_dynamics", "summarize_model_diagnostics",
    *_LAZY,
]  # fmt: skip
