"""Bad inputs: each is refused with a clear error that names the argument and what to do, and
the caller's data are left as they were."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest

import tvbeta
from tvbeta.kalman import (
    KalmanInputError,
    KalmanNumericalError,
    kalman_filter,
    kalman_loglik,
    loglik_vjp,
)

# ---------------------------------------------------------------------------------------------
# Issue 10, sections 3 and 6: covariances that are not positive semi-definite, and steps whose
# innovation variance is zero or overflows (the message names the real cause).
# ---------------------------------------------------------------------------------------------

_N, _K = 25, 2
#: non-negative variances, correlation 2: eigenvalues 3 and -1
_INDEFINITE = np.array([[1.0, 2.0], [2.0, 1.0]])


def _model(**changes) -> dict[str, np.ndarray]:
    """A valid model (y and Z drawn once, Q = 1e-4 I, R = 1e-2, P0 = I) with some arrays
    replaced."""
    rng = np.random.default_rng(10)
    model = dict(
        y=rng.normal(0.0, 0.1, _N), Z=rng.normal(0.0, 1.0, (_N, _K)), T=np.eye(_K)[None],
        Q=1e-4 * np.eye(_K)[None], R=np.array([1e-2]), a0=np.zeros(_K), P0=np.eye(_K),
    )  # fmt: skip
    return {**model, **changes}


def _assert_refused(call, kwargs, error, message) -> None:
    """call(**kwargs) raises `error` matching `message`, and no argument was modified."""
    before = copy.deepcopy(kwargs)
    with pytest.raises(error, match=re.escape(message)):
        call(**kwargs)
    for name, value in before.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(kwargs[name], value)
        else:
            np.testing.assert_array_equal(kwargs[name], value, err_msg=name)


def _per_step_q_bad_at(row: int) -> np.ndarray:
    Q = np.repeat(1e-4 * np.eye(_K)[None], _N, axis=0)
    Q[row] = _INDEFINITE
    return Q


@pytest.mark.parametrize(
    ("call", "changes", "message"),
    [
        (kalman_loglik, dict(Q=_INDEFINITE[None]), "Q is not positive semi-definite (time row 0)"),
        (kalman_filter, dict(Q=_per_step_q_bad_at(7)),
         "Q is not positive semi-definite (time row 7)"),
        (loglik_vjp, dict(Q=np.array([[[1.0, 1.0], [1.0, 0.0]]])),
         "Q is not positive semi-definite (time row 0)"),
        (kalman_loglik, dict(P0=_INDEFINITE), "P0 is not positive semi-definite"),
        (kalman_filter, dict(P0=100.0 * _INDEFINITE), "build P0 as L L'"),
    ],
)  # fmt: skip
def test_covariance_that_is_not_psd_is_refused_up_front(call, changes, message):
    # diagonals >= 0 and exactly symmetric: only the PSD check can catch these
    _assert_refused(call, _model(**changes), KalmanInputError, message)


def test_model_with_a_q_that_is_not_psd_is_refused_when_run():
    df = pd.DataFrame(
        np.random.default_rng(3).normal(0.0, 0.02, (40, 3)), columns=["fund", "f1", "f2"],
        index=pd.date_range("2020-01-03", periods=40, freq="W-FRI"),
    )  # fmt: skip
    engine = tvbeta.KalmanEngine(tvbeta.KalmanSpec(K=2).set_Q(1e-4 * _INDEFINITE))
    _assert_refused(
        engine.run, dict(df=df, target_col="fund", factor_cols=["f1", "f2"]), KalmanInputError,
        "Q is not positive semi-definite (time row 0)",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "changes", "message"),
    [
        # R = 0 and a design row loading on nothing: F_t = 0 for real
        (kalman_loglik, dict(R=np.array([0.0]), Z=np.zeros((_N, _K))),
         "F_t = z_t'P z_t + R_t = 0 at step 0: R_t = 0 and the predicted state covariance gives "
         "z_t no variance"),
        # R = 0 and |z| = 1e-170: z'P z underflows
        (kalman_filter, dict(R=np.array([0.0]), Z=np.full((_N, _K), 1e-170)),
         "underflowed to 0 at step 0: R_t = 0 and the data are too small for double precision"),
        # price levels of 1e160: F overflows
        (kalman_loglik, dict(Z=np.full((_N, _K), 1e160)),
         "the log-likelihood term at step 0 is not finite (F_t = inf, v_t = -0.11): the data's "
         "scale overflows double precision"),
        # a target of 1e200: v_t^2 overflows
        (loglik_vjp, dict(y=np.full(_N, 1e200)), "the data's scale overflows double precision"),
    ],
)  # fmt: skip
def test_failing_step_names_its_cause(call, changes, message):
    _assert_refused(call, _model(**changes), KalmanNumericalError, message)
