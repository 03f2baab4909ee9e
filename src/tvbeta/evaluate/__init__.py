"""Evaluation of a filter run: the seed's summary tables (`tvbeta.diagnostics`) and residual checks.

The method comparison lives in `compare` (`compare_methods`), `lfo` and `comparison`.
"""

from tvbeta.diagnostics import (
    FACTOR_DYNAMICS_COLUMNS,
    MODEL_DIAGNOSTIC_COLUMNS,
    contributions,
    expanding_rmse,
    summarize_factor_dynamics,
    summarize_model_diagnostics,
)
from tvbeta.evaluate.residuals import (
    RESIDUAL_COLUMNS,
    prediction_coverage,
    residual_diagnostics,
    residual_tests,
    standardized_residuals,
)

__all__ = [
    "FACTOR_DYNAMICS_COLUMNS",
    "MODEL_DIAGNOSTIC_COLUMNS",
    "RESIDUAL_COLUMNS",
    "contributions",
    "expanding_rmse",
    "prediction_coverage",
    "residual_diagnostics",
    "residual_tests",
    "standardized_residuals",
    "summarize_factor_dynamics",
    "summarize_model_diagnostics",
]
