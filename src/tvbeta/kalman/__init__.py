"""The numerics: Kalman filter, log-likelihood and its exact gradient, smoothers, on plain arrays.

Core functions (shapes: y (n,), Z (n, k), T and Q (1 | n, k, k), R (1 | n,), a0 (k,), P0 (k, k)):

- `kalman_filter` -> FilterOutput: predicted/filtered states, innovations, gains, log-likelihood.
- `kalman_loglik`: total log-likelihood after `burn`, no storage (the hot path).
- `loglik_vjp`: exact gradient of any weighting of the per-step terms w.r.t. Q, R, a0, P0
  (and T with ``transition=True``).
- `loglik_batch`: many parameter sets / series in one parallel call.
- `kalman_smoother` -> SmootherOutput; `simulation_smoother`: posterior draws of state paths.

The kernels carry the state covariance as a U D U' factor (Bierman's update), so a
near-diffuse prior on badly scaled data keeps its digits (see `steps`). `tvbeta.kalman.reference`
holds a plain-numpy version of the same steps for the tests, and `loglik_decimal` (60 digits).
"""

from tvbeta.kalman.arrays import KalmanInputError, KalmanNumericalError, StateSpace, state_space
from tvbeta.kalman.filter import FilterOutput, kalman_filter, kalman_loglik, loglik_batch
from tvbeta.kalman.gradient import LoglikGradient, loglik_vjp
from tvbeta.kalman.smoother import SmootherOutput, kalman_smoother, psd_sqrt, simulation_smoother

__all__ = [
    "FilterOutput", "KalmanInputError", "KalmanNumericalError", "LoglikGradient", "SmootherOutput",
    "StateSpace", "kalman_filter", "kalman_loglik", "kalman_smoother", "loglik_batch", "loglik_vjp",
    "psd_sqrt", "simulation_smoother", "state_space",
]  # fmt: skip
