"""The model apart from its parameters: StateSpaceModel, Parameters, and KalmanSpec as their view.

Reference values are the seed's defaults (../shared/seed/seed_api.md, "Defaults of a spec"):
beta_0 = 0, P_0 = 100 I, T = I, Q = 1e-4 I, R = 1e-2; set_intercept puts P_0[0, 0] = 1e6.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.model.simdata import FACTORS, TARGET
from tvbeta.model import KalmanSpec, Parameters, SpecError, StateSpaceModel, TimeVarying


def test_model_and_default_parameters_are_the_seeds_defaults():
    model, params = StateSpaceModel(3), Parameters.default(3)
    np.testing.assert_array_equal(model.a0, np.zeros(3))
    np.testing.assert_array_equal(model.P0, 100.0 * np.eye(3))
    assert model.T == TimeVarying.constant(np.eye(3)) and model.q == "diag"
    assert params.Q == TimeVarying.constant(1e-4 * np.eye(3))
    assert params.R == TimeVarying.constant(1e-2)


def test_spec_from_parts_equals_the_seed_built_spec_field_by_field():
    """The intercept model of the seed (P0 = diag(1e6, 100, 100)) with the default Q and R,
    built from its two parts, is the spec KalmanSpec(2).set_intercept() builds."""
    model = StateSpaceModel(3, intercept=True, P0=np.diag([1e6, 100.0, 100.0]))
    assert KalmanSpec.from_parts(model, Parameters.default(3)) == KalmanSpec(2).set_intercept()


def test_a_spec_is_rebuilt_exactly_from_its_model_and_params(frame):
    """Per-time Q and R, an OLS initial state and every provenance field survive the view."""
    spec = (
        KalmanSpec(2, name="rich")
        .set_initial_state_from_ols(frame[FACTORS], frame[TARGET])
        .set_Q_from_rolling_beta_var(frame, TARGET, FACTORS)
        .set_R_from_mle(frame, TARGET, FACTORS)
    )
    again = KalmanSpec.from_parts(spec.model, spec.params, name=spec.name, q_mode=spec.q_mode,
                                  r_mode=spec.r_mode, r_scalar=spec.r_scalar)  # fmt: skip
    assert again == spec and again.init_mode == "ols"


def test_parameters_that_do_not_fit_the_model_are_refused_by_name():
    params = Parameters(TimeVarying.constant(1e-4 * np.eye(2)), TimeVarying.constant(1e-2))
    with pytest.raises(SpecError, match=r"Q must be \(3, 3\) at each step for K=3"):
        KalmanSpec.from_parts(StateSpaceModel(3), params)


def test_model_refuses_an_unknown_q_form():
    with pytest.raises(ValueError, match="q must be 'diag'"):
        StateSpaceModel(2, q="diagonal")
