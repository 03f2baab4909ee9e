"""Bad kernel inputs fail with errors that name the argument; F_t = 0 or an overflow names
the step and the cause."""

from __future__ import annotations

import re

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

INDEFINITE = np.array([[1.0, 2.0], [2.0, 1.0]])


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
        # non-negative variances but a correlation of 2 (eigenvalues 3 and -1)
        (dict(Q=INDEFINITE[None]), "Q is not positive semi-definite (time row 0)"),
        (dict(Q=np.array([[[1.0, 1.0], [1.0, 0.0]]])), "Q is not positive semi-definite (time row"),
        (dict(Q=np.stack([0.1 * np.eye(k)] * 5 + [INDEFINITE] + [0.1 * np.eye(k)] * 14)),
         "Q is not positive semi-definite (time row 5)"),
        (dict(P0=INDEFINITE), "P0 is not positive semi-definite"),
    ],
)
def test_bad_input_names_the_argument(changes, message):
    with pytest.raises(KalmanInputError, match=re.escape(message)):
        call(**changes)


def test_nan_design_row_is_allowed_where_y_is_missing():
    y = np.zeros(n)
    y[3] = np.nan
    Z = np.ones((n, k))
    Z[3] = np.nan
    assert np.isfinite(call(y=y, Z=Z).loglik)


@pytest.mark.parametrize(
    "Q",
    [
        np.zeros((1, k, k)),  # exact zeros
        np.array([[[0.0, 0.0], [0.0, 0.1]]]),  # a static intercept: a zero row and column
        (lambda L: (L @ L.T)[None])(np.array([[0.3], [0.7]])),  # rank one, built as L L'
    ],
)
def test_positive_semi_definite_q_with_zero_variances_is_accepted(Q):
    assert np.isfinite(kalman_loglik(**{**GOOD, "Q": Q}))


def test_zero_innovation_variance_names_the_step_and_says_it_is_genuine():
    # R = 0 and a design row that loads on nothing: F_t = 0 at the first step, truly
    message = "F_t = z_t'P z_t + R_t = 0 at step 0: R_t = 0 and the predicted state covariance"
    with pytest.raises(KalmanNumericalError, match=re.escape(message)):
        call(R=np.array([0.0]), Z=np.zeros((n, k)))
    with pytest.raises(KalmanNumericalError, match=re.escape(message)):
        kalman_loglik(**{**GOOD, "R": np.array([0.0]), "Z": np.zeros((n, k))})


def test_underflowing_innovation_variance_blames_the_data_scale():
    # R = 0 and |z| = 1e-170: z'P z = 2e-340 is below the smallest double
    with pytest.raises(KalmanNumericalError, match="underflowed to 0 at step 0: R_t = 0 and the "
                       "data are too small for double precision"):
        call(R=np.array([0.0]), Z=np.full((n, k), 1e-170))


@pytest.mark.parametrize(
    "changes",
    [dict(Z=np.full((n, k), 1e160)), dict(y=np.full(n, 1e200)), dict(P0=1e300 * np.eye(k))],
)
def test_overflowing_term_blames_the_data_scale(changes):
    # F_t = z'P z + R or v_t^2 beyond the largest double: a -inf log-likelihood is refused
    with pytest.raises(KalmanNumericalError, match="the data's scale overflows double precision"):
        kalman_loglik(**{**GOOD, **changes})


def test_batch_reports_the_failing_member():
    Rs = np.array([[1.0], [0.0]])
    with pytest.raises(KalmanNumericalError, match="batch member 1"):
        loglik_batch(GOOD["y"][None], np.zeros((1, n, k)), GOOD["T"][None], GOOD["Q"][None], Rs,
                     GOOD["a0"][None], GOOD["P0"][None])
