"""KalmanSpec: the seed's defaults, set_intercept, immutability, equality, kernel arrays, files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.model.simdata import FACTORS, TARGET
from tvbeta import constants
from tvbeta.data import INTERCEPT_NAME
from tvbeta.model import KalmanSpec, SpecError, TimeVarying


def test_defaults_are_the_seeds_exactly():
    spec = KalmanSpec(3)
    assert spec.name == "Kalman Model"
    assert spec.intercept is False
    np.testing.assert_array_equal(spec.beta0, np.zeros(3))
    np.testing.assert_array_equal(spec.P0, 100.0 * np.eye(3))
    assert spec.T == TimeVarying(np.eye(3), per_time=False)
    assert spec.Q == TimeVarying(1e-4 * np.eye(3), per_time=False)
    assert spec.R == TimeVarying(np.array(1e-2), per_time=False)
    assert (spec.q_mode, spec.r_mode, spec.init_mode) == (None, None, None)
    assert (spec.q_scalar, spec.r_scalar) == (None, None)


def test_set_intercept_prepends_the_intercept_state():
    spec = KalmanSpec(2).set_intercept(init_val=0.5)
    assert spec.K == 3 and spec.intercept and spec.has_intercept
    np.testing.assert_array_equal(spec.beta0, [0.5, 0.0, 0.0])
    expected_P0 = np.diag([1e6, 100.0, 100.0])
    np.testing.assert_array_equal(spec.P0, expected_P0)
    # Q keeps its default form on the larger state, T stays the identity
    np.testing.assert_array_equal(spec.Q.values, 1e-4 * np.eye(3))
    np.testing.assert_array_equal(spec.T.values, np.eye(3))
    np.testing.assert_array_equal(spec.R.values, 1e-2)


def test_set_intercept_on_no_state_gives_the_local_level_with_the_seeds_defaults():
    """KalmanSpec(0).set_intercept(): one state, the level; T = 1, Q = 1e-4, P0 = 1e6."""
    spec = KalmanSpec(0).set_intercept(init_val=1000.0)
    assert spec.K == 1 and spec.intercept
    np.testing.assert_array_equal(spec.beta0, [1000.0])
    np.testing.assert_array_equal(spec.P0, [[1e6]])
    assert spec.T == TimeVarying.constant(np.eye(1))
    assert spec.Q == TimeVarying.constant([[1e-4]])
    assert spec.R == TimeVarying.constant(1e-2)


def test_local_level_description_says_the_design_row_is_one():
    desc = KalmanSpec(0).set_intercept().describe("volume", [])
    assert desc["Observation Function"].startswith("z_t = 1 (the intercept alone")
    assert (desc["K (State Dim)"], desc["Factor Columns"]) == (1, [])


def test_spec_without_any_state_is_refused_when_run():
    with pytest.raises(SpecError, match=r"no state \(K=0 and no intercept\): add an intercept "
                                        r"with \.set_intercept\(\)"):  # fmt: skip
        KalmanSpec(0).state_space(np.ones(5), np.ones((5, 0)))


def test_set_intercept_keeps_an_initial_state_set_before_it(frame):
    spec = KalmanSpec(2).set_initial_state_from_ols(frame[FACTORS], frame[TARGET])
    with_intercept = spec.set_intercept(init_val=0.1)
    np.testing.assert_array_equal(with_intercept.beta0, [0.1, *spec.beta0])


def test_set_intercept_refuses_a_per_factor_Q(frame):
    spec = KalmanSpec(2).set_Q_from_factor_vols(frame[FACTORS])
    with pytest.raises(SpecError, match=r"set_intercept\(\) first"):
        spec.set_intercept()


def test_set_intercept_twice_is_an_error():
    with pytest.raises(SpecError, match="already has an intercept"):
        KalmanSpec(2).set_intercept().set_intercept()


def test_intercept_name_is_shared_with_the_data_layer():
    assert constants.INTERCEPT == INTERCEPT_NAME == "Intercept"


def test_setters_return_new_specs_and_leave_the_original_alone(frame):
    spec = KalmanSpec(2, name="base")
    snapshot = dataclasses.replace(spec)
    new = spec.set_intercept().set_R_from_ols(frame[FACTORS], frame[TARGET])
    assert new is not spec
    assert spec == snapshot
    assert spec.K == 2 and spec.r_mode is None


def test_spec_is_frozen_and_its_arrays_read_only():
    spec = KalmanSpec(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        spec.P0[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        spec.Q.values[0, 0] = 1.0


def test_spec_copies_the_arrays_it_is_given():
    P0 = np.eye(2)
    spec = KalmanSpec(2, P0=P0)
    P0[0, 0] = 5.0
    assert spec.P0[0, 0] == 1.0


def test_equality_is_exact():
    a = KalmanSpec(2)
    assert a == KalmanSpec(2)
    assert a != KalmanSpec(2, name="other")
    assert a != KalmanSpec(2, P0=np.diag([100.0, 100.0 + 1e-12]))
    assert a != KalmanSpec(2, Q=TimeVarying.per_step(np.stack([1e-4 * np.eye(2)] * 3)))
    assert a != KalmanSpec(2, q_mode="mle")
    assert a != "not a spec"


def test_with_name_renames():
    assert KalmanSpec(2).with_name("best").name == "best"


def test_time_variation_must_be_declared():
    with pytest.raises(SpecError, match="TimeVarying"):
        KalmanSpec(2, Q=1e-3 * np.eye(2))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"K": -1}, "non-negative integer"),
        ({"K": 2, "Q": TimeVarying.constant(np.eye(3))}, r"Q must be \(2, 2\)"),
        ({"K": 2, "Q": TimeVarying.constant([[1.0, 0.5], [0.0, 1.0]])}, "symmetric"),
        ({"K": 2, "R": TimeVarying.constant(-1.0)}, ">= 0"),
        ({"K": 2, "beta0": np.zeros(3)}, "beta0"),
        ({"K": 2, "P0": np.full((2, 2), np.nan)}, "NaN"),
        ({"K": 0, "intercept": True}, "K >= 1"),
        (
            {
                "K": 1,
                "Q": TimeVarying.per_step(np.ones((3, 1, 1))),
                "R": TimeVarying.per_step(np.ones(4)),
            },
            "different lengths",
        ),
    ],
)
def test_inconsistent_specs_are_rejected(kwargs, message):
    with pytest.raises(SpecError, match=message):
        KalmanSpec(**kwargs)


def test_state_space_gives_kernel_arrays():
    R = np.linspace(0.1, 0.5, 5)
    spec = KalmanSpec(2, R=TimeVarying.per_step(R))
    Z = np.arange(10.0).reshape(5, 2)
    m = spec.state_space(np.ones(5), Z)
    assert m.T.shape == (1, 2, 2) and m.Q.shape == (1, 2, 2)
    np.testing.assert_array_equal(m.R, R)
    np.testing.assert_array_equal(m.a0, np.zeros(2))
    np.testing.assert_array_equal(m.P0, 100.0 * np.eye(2))


def test_state_space_refuses_per_time_arrays_of_another_length():
    spec = KalmanSpec(2, R=TimeVarying.per_step(np.full(6, 0.1)))
    with pytest.raises(SpecError, match=r"6 rows.*5 rows.*same DataFrame"):
        spec.state_space(np.ones(5), np.ones((5, 2)))


def test_state_space_checks_the_design_width():
    with pytest.raises(SpecError, match=r"\(n, K=2\)"):
        KalmanSpec(2).state_space(np.ones(5), np.ones((5, 3)))


def _rich_spec(frame):
    """A spec touching every field: intercept, per-time Q, constant MLE-like R, OLS start."""
    return (
        KalmanSpec(2, name="Rich Model")
        .set_intercept(init_val=0.1)
        .set_initial_state_from_ols(frame[FACTORS], frame[TARGET])
        .set_Q_from_rolling_beta_var(frame, TARGET, FACTORS, window=10)
        .set_R_from_ols(frame[FACTORS], frame[TARGET])
    )


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_load_round_trip_is_exact(frame, tmp_path, suffix):
    spec = dataclasses.replace(_rich_spec(frame), r_scalar=1 / 3, q_scalar=np.pi * 1e-7)
    path = tmp_path / f"spec{suffix}"
    spec.save(path)
    loaded = KalmanSpec.load(path)
    assert loaded == spec
    assert loaded.Q.per_time and not loaded.R.per_time
    np.testing.assert_array_equal(loaded.Q.values, spec.Q.values)


def test_dict_round_trip_of_the_defaults():
    spec = KalmanSpec(2)
    d = spec.to_dict()
    assert "q_mode" not in d  # None is left out (TOML has no null)
    assert KalmanSpec.from_dict(d) == spec


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_load_round_trip_without_states_keeps_the_empty_shapes(tmp_path, suffix):
    spec = KalmanSpec(0)  # lists lose the shapes (0,), (0, 0): loading restores them
    spec.save(tmp_path / f"spec{suffix}")
    loaded = KalmanSpec.load(tmp_path / f"spec{suffix}")
    assert loaded == spec and loaded.P0.shape == (0, 0) and loaded.T.values.shape == (0, 0)


def test_unknown_file_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        KalmanSpec(2).save(tmp_path / "spec.yaml")


def test_unknown_fields_are_refused():
    d = KalmanSpec(2).to_dict() | {"transition_fn": "lambda"}
    with pytest.raises(SpecError, match="transition_fn"):
        KalmanSpec.from_dict(d)


def test_repr_is_readable(frame):
    text = repr(_rich_spec(frame))
    assert "name='Rich Model'" in text and "intercept=True" in text
    assert "per-time (150, 3, 3)" in text
    assert "q_mode='rolling_beta_var_window_10'" in text
