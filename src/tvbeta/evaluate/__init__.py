"""Evaluation of a filter run: the seed's summary tables and residual checks.

Core functions
--------------
summarize_model_diagnostics   one row per run: RMSE, SSE, log-likelihood, gain and drift norms
summarize_factor_dynamics     one row per state: beta level, spread, drift, gain, contribution
contributions                 beta_{k,t} H_{k,t}, the return explained by each factor
expanding_rmse                expanding RMSE of the innovations
residual_diagnostics          tidy table: Ljung-Box, breakvar, ARCH-LM, Jarque-Bera, coverage
residual_tests                tests of the standardized residuals e_t = v_t / sqrt(F_t)
prediction_coverage           fraction of y_t inside the one-step prediction intervals
standardized_residuals        e_t = v_t / sqrt(F_t) after burn-in
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
