"""Bad kernel inputs fail with errors that name the argument; F_t <= 0 names the step."""

from __future__ import annotations

import numpy as np
import pytest

from tvbeta.kalman import (
    KalmanInputError,
    KalmanNumericalError,
    kalman_filter,
    kalman_loglik,
    loglik_batch,
)

n, k = 20, 2
GOOD = dict(
    y=np.zeros(n), Z=np.ones((n, k)), T=np.eye(k)[None], Q=0.1 * np.eye(k)[None], R=np.array([1.0]),
    a0=np.zeros(k), P0=np.eye(k),
)


def call(**changes):
    return kalman_filter(**{**GOOD, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(y=np.zeros(n + 1)), "y has 21 steps but Z has 20 rows"),
        (dict(Q=np.eye(k)), "Q must have 3 dimension"),
        (dict(Q=np.stack([np.eye(k)] * 3)), "Q has 3 time rows; use 1 (constant) or n = 20"),
        (dict(T=np.eye(3)[None]), "T must be (1 | n, 2, 2)"),
        (dict(Q=np.array([[[1.0, 0.5], [0.0, 1.0]]])), "Q must be symmetric"),
        (dict(P0=-np.eye(k)), "P0 has a negative variance"),
        (dict(R=np.array([-1.0])), "R (observation variance) must be >= 0"),
        (dict(R=np.array([np.nan])), "R has NaN or inf"),
        (dict(a0=np.zeros(3)), "a0 must be (2,)"),
        (dict(y=np.r_[np.inf, np.zeros(n - 1)]), "y has inf values"),
        (dict(Z=np.r_[[[np.nan, 1.0]], np.ones((n - 1, k))]), "Z has NaN or inf values on rows"),
    ],
)
def test_bad_input_names_the_argument(changes, message):
    with pytest.raises(KalmanInputError, match=__import__("re").escape(message)):
        call(**changes)


def test_nan_design_row_is_allowed_where_y_is_missing():
    y = np.zeros(n)
    y[3] = np.nan
    Z = np.ones((n, k))
    Z[3] = np.nan
    assert np.isfinite(call(y=y, Z=Z).loglik)


def test_zero_innovation_variance_names_the_step():
    # R = 0 and a state the design cannot see: F_t = 0 at the first step
    with pytest.raises(KalmanNumericalError, match="step 0"):
        call(R=np.array([0.0]), Z=np.zeros((n, k)))
    with pytest.raises(KalmanNumericalError, match="step 0"):
        kalman_loglik(**{**GOOD, "R": np.array([0.0]), "Z": np.zeros((n, k))})


def test_batch_reports_the_failing_member():
    Rs = np.array([[1.0], [0.0]])
    with pytest.raises(KalmanNumericalError, match="batch member 1"):
        loglik_batch(GOOD["y"][None], np.zeros((1, n, k)), GOOD["T"][None], GOOD["Q"][None], Rs,
                     GOOD["a0"][None], GOOD["P0"][None])
