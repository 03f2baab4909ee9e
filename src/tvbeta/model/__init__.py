"""The model layer: KalmanSpec (a frozen dataclass of arrays), the seed's setters, the engine.

Core objects
------------
KalmanSpec      the model (T, Q, R each a TimeVarying), the seed's defaults and fluent setters
                (each returns a new spec); save/load as TOML or JSON
StateSpaceModel the structure apart from the values: K, intercept, T, a0, P0, the form of Q
Parameters      the values: Q, R and phi of mean-reverting betas (KalmanSpec is a named view,
                ``.model`` + ``.params``)
KalmanEngine    ``KalmanEngine(spec).run(df, target_col, factor_cols, burn)`` -> KalmanResult
setters         the setters as functions ``set_...(spec, ...) -> KalmanSpec``
heuristics      the seed's rules of thumb (rolling OLS, rolling variances) on plain arrays
"""

from tvbeta.model import heuristics
from tvbeta.model.engine import KalmanEngine, design_for
from tvbeta.model.io import SavedFileError
from tvbeta.model.setters import (
    set_initial_state_from_ols,
    set_intercept,
    set_Q_from_factor_vols,
    set_Q_from_mle,
    set_Q_from_rolling_beta_var,
    set_Q_from_rolling_residual_vol,
    set_R_from_mle,
    set_R_from_ols,
    set_R_from_rolling_factor_vols,
    set_R_from_rolling_ols_residuals,
)
from tvbeta.model.spec import KalmanSpec
from tvbeta.model.structure import Parameters, QForm, StateSpaceModel, check_q_form
from tvbeta.model.timevarying import SpecError, TimeVarying
from tvbeta.results import KalmanResult

__all__ = [
    "KalmanEngine", "KalmanResult", "KalmanSpec", "Parameters", "QForm", "SavedFileError",
    "SpecError", "StateSpaceModel", "TimeVarying", "check_q_form", "design_for", "heuristics",
    "set_Q_from_factor_vols", "set_Q_from_mle", "set_Q_from_rolling_beta_var",
    "set_Q_from_rolling_residual_vol", "set_R_from_mle", "set_R_from_ols",
    "set_R_from_rolling_factor_vols", "set_R_from_rolling_ols_residuals",
    "set_initial_state_from_ols", "set_intercept",
]  # fmt: skip
