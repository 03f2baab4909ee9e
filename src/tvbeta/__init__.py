"""tvbeta: time-varying factor exposures with an exact Kalman core, MLE and Bayesian Q/R.

Layers (each imports only the ones before it): `tvbeta.data` -> `tvbeta.model` (KalmanSpec,
KalmanEngine) -> `tvbeta.kalman` (numba kernels) -> `tvbeta.results` -> `tvbeta.estimate` ->
`tvbeta.viz`, and the `tvbeta` command in `tvbeta.cli`.
"""

from tvbeta import constants, viz
from tvbeta.data import aggregate_weekly_data
from tvbeta.model import KalmanEngine, KalmanSpec, SpecError, TimeVarying
from tvbeta.results import KalmanResult

__all__ = [
    "KalmanEngine",
    "KalmanResult",
    "KalmanSpec",
    "SpecError",
    "TimeVarying",
    "aggregate_weekly_data",
    "constants",
    "viz",
]
