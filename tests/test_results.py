"""KalmanResult: the seed's keys, burn-in, smoothed states and labelled exports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.kalman.models import assert_close
from tests.model import seed_reference as ref
from tests.model.simdata import FACTORS, TARGET, simulate_frame
from tvbeta import constants
from tvbeta.data import prepare_design
from tvbeta.kalman import kalman_smoother
from tvbeta.model import KalmanEngine, KalmanSpec

BURN = 7
STATES = ["Intercept", *FACTORS]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate_frame(seed=7)


@pytest.fixture(scope="module")
def spec(frame) -> KalmanSpec:
    return (
        KalmanSpec(2, name="Result Model")
        .set_intercept()
        .set_R_from_rolling_ols_residuals(frame, TARGET, FACTORS, window=10)
    )


@pytest.fixture(scope="module")
def result(frame, spec):
    return KalmanEngine(spec).run(frame, TARGET, FACTORS, burn=BURN)


@pytest.fixture(scope="module")
def unburnt(frame, spec):
    return KalmanEngine(spec).run(frame, TARGET, FACTORS, burn=0)


@pytest.fixture(scope="module")
def kernel_arrays(frame, spec):
    d = prepare_design(frame, TARGET, FACTORS, intercept=True)
    R = spec.R.values
    return d.y, d.Z, np.eye(3)[None], 1e-4 * np.eye(3)[None], R, spec.beta0, spec.P0


def test_keys_are_the_seeds(result):
    assert result.keys() == [
        "beta", "beta_cov", "y_pred", "residuals", "kalman_gain",
        "log_likelihood", "log_likelihood_t", "meta", "H",
    ]  # fmt: skip
    assert list(result) == result.keys() and "beta" in result and "beta_smooth" not in result


@pytest.fixture(scope="module")
def seed_run(frame) -> dict[str, np.ndarray]:
    """The seed's equations run directly (tests/model/seed_reference.py): its rolling-OLS R by a
    pinv loop and the notebook's filter, from beta0 = 0, P0 = diag(1e6, 100, 100), Q = 1e-4 I."""
    y = frame[TARGET].to_numpy()
    X = ref.with_ones(frame[FACTORS].to_numpy(), intercept=True)
    R = ref.rolling_ols_residual_R(y, X, window=10, min_val=1e-6)
    out = ref.seed_filter(y, X, beta0=np.zeros(3), P0=np.diag([1e6, 100.0, 100.0]), T=np.eye(3),
                          Q_at=lambda t: 1e-4 * np.eye(3), R_at=lambda t: R[t])  # fmt: skip
    return {key: value[BURN:] for key, value in out.items()}


def test_seed_keys_give_the_seed_filter_outputs(result, seed_run, frame):
    """result["beta"] etc., read as the seed's code read them, against the seed's equations."""
    beta = result["beta"]
    assert list(beta.columns) == STATES and beta.index.equals(frame.index[BURN:])
    assert_close(beta.to_numpy(), seed_run["beta"], rtol=1e-8, what="beta")
    covs = np.stack(list(result["beta_cov"].values()))
    assert_close(covs, seed_run["beta_cov"], rtol=1e-8, what="beta_cov")
    # 1e-6: the seed's matrix inverse with the diffuse intercept variance (1e6) loses ~6e-10
    assert_close(result["y_pred"].to_numpy(), seed_run["y_pred"], rtol=1e-6, what="y_pred")
    assert_close(result["kalman_gain"].to_numpy(), seed_run["kalman_gain"], rtol=1e-8,
                 what="gain")  # fmt: skip
    assert result["log_likelihood"] == pytest.approx(seed_run["loglik_t"].sum(), rel=1e-9)


def test_unknown_key_names_the_alternatives(result):
    with pytest.raises(KeyError, match="beta_smooth"):
        result["smoothed"]
    assert result.get("smoothed", "fallback") == "fallback"


def test_burn_drops_exactly_the_first_steps(result, unburnt, frame):
    assert result.beta.index.equals(frame.index[BURN:])
    for key in ("beta", "kalman_gain", "H"):
        pd.testing.assert_frame_equal(result[key], unburnt[key].iloc[BURN:])
    for key in ("y_pred", "residuals", "log_likelihood_t"):
        pd.testing.assert_series_equal(result[key], unburnt[key].iloc[BURN:])
    assert list(result.beta_cov) == list(frame.index[BURN:])
    assert result.log_likelihood == pytest.approx(unburnt.log_likelihood_t.iloc[BURN:].sum())
    assert len(result.beta_smooth) == len(frame) - BURN


def test_smoothed_states_equal_the_kernel_smoother(result, kernel_arrays):
    s = kalman_smoother(*kernel_arrays)
    np.testing.assert_array_equal(result.beta_smooth.to_numpy(), s.a_smooth[BURN:])
    covs = np.stack(list(result.beta_smooth_cov.values()))
    np.testing.assert_array_equal(covs, s.P_smooth[BURN:])
    with np.errstate(invalid="ignore"):  # NaN where the kernel's variance is < 0 by rounding
        sd = np.sqrt(np.diagonal(s.P_smooth, axis1=1, axis2=2))[BURN:]
    np.testing.assert_array_equal(result.beta_smooth_sd.to_numpy(), sd)


def test_sd_frames_are_the_covariance_diagonals(result):
    covs = np.stack(list(result.beta_cov.values()))
    expected = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))
    np.testing.assert_array_equal(result.beta_sd.to_numpy(), expected)
    assert list(result.beta_sd.columns) == STATES


def test_y_is_the_target(result, frame):
    pd.testing.assert_series_equal(result.y, frame[TARGET].iloc[BURN:], check_freq=False)


def test_meta_is_the_spec_description_and_can_be_extended(frame, spec):
    res = KalmanEngine(spec).run(frame, TARGET, FACTORS, burn=BURN)
    assert res["meta"] == spec.describe(TARGET, STATES)
    res["meta"]["Fund"] = TARGET  # as the seed notebook's FundRunner does
    assert res["meta"]["Fund"] == TARGET and res.meta["Fund"] == TARGET
    assert "Fund" not in spec.describe(TARGET, STATES)


def test_views_are_copies(frame, spec):
    res = KalmanEngine(spec).run(frame, TARGET, FACTORS)
    before = res.beta.copy()
    view = res.beta
    view.iloc[0, 0] = 99.0
    next(iter(res.beta_cov.values()))[0, 0] = 99.0
    pd.testing.assert_frame_equal(res.beta, before)
    assert next(iter(res.beta_cov.values()))[0, 0] != 99.0


def test_to_xarray_dims_coords_and_values(result, frame):
    ds = result.to_xarray()
    assert dict(ds.sizes) == {
        constants.TIME: len(frame) - BURN,
        constants.STATE: 3,
        constants.STATE2: 3,
    }
    assert {name: ds[name].dims for name in ds} == {name: constants.DIMS[name] for name in ds}
    assert ds["beta"].dims == (constants.TIME, constants.STATE)
    assert ds["beta_cov"].dims == (constants.TIME, constants.STATE, constants.STATE2)
    assert ds["residuals"].dims == (constants.TIME,)
    assert list(ds[constants.STATE].values) == STATES
    assert list(ds[constants.STATE2].values) == STATES
    np.testing.assert_array_equal(ds[constants.TIME].values, frame.index[BURN:].to_numpy())
    np.testing.assert_array_equal(ds["beta"].values, result.beta.to_numpy())
    np.testing.assert_array_equal(
        ds["beta_smooth_cov"].values, np.stack(list(result.beta_smooth_cov.values()))
    )
    np.testing.assert_array_equal(ds["log_likelihood_t"].values, result.log_likelihood_t)


def test_to_xarray_attrs_are_strings_and_numbers(result, tmp_path):
    ds = result.to_xarray()
    assert ds.attrs["Model Name"] == "Result Model"
    assert ds.attrs["R Mode"] == "rolling_ols_window_10"
    assert ds.attrs["burn"] == BURN
    assert ds.attrs["log_likelihood"] == result.log_likelihood
    for value in ds.attrs.values():
        assert isinstance(value, str | int | float | np.ndarray)
    path = tmp_path / "result.nc"
    ds.to_netcdf(path, engine="h5netcdf")  # netCDF accepts every attribute


def test_to_frame_is_tidy(result):
    tidy = result.to_frame()
    assert list(tidy.columns) == ["time", "state", "variable", "value"]
    n = len(result.beta)
    assert len(tidy) == 6 * 3 * n + 5 * n  # six per-state series, five per-time series
    beta = tidy[tidy["variable"] == "beta"].pivot(index="time", columns="state", values="value")
    pd.testing.assert_frame_equal(
        beta[STATES], result.beta, check_names=False, check_freq=False, check_column_type=False
    )
    resid = tidy[tidy["variable"] == "residuals"]
    assert resid["state"].isna().all()
    np.testing.assert_array_equal(resid["value"].to_numpy(), result.residuals.to_numpy())


def test_repr_summarises(result):
    text = repr(result)
    assert "Result Model" in text and f"burn={BURN}" in text
