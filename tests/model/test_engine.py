"""KalmanEngine: the seed notebook's worked example, validation, and numerical quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.kalman.models import assert_close
from tests.model import seed_reference as ref
from tests.model.nile import DK_Q, DK_R
from tests.model.simdata import FACTORS, SEED_FACTORS, SEED_TARGET, TARGET
from tvbeta.data import DataValidationError
from tvbeta.model import KalmanEngine, KalmanSpec, SpecError, TimeVarying

SEED_BURN = 8
SEED_WINDOW = 12

# What the seed notebook printed for spec.describe(...) (its run had K=1: only the entries that
# do not depend on the number of factors are compared, see test_seed_example_describe).
SEED_PRINTED_DESCRIBE = {
    "Model Name": "Test Model",
    "Has Intercept": False,
    "Target Column": "Preferred Income (FPE)",
    "Q Scalar": None,
    "R Scalar": None,
    "Q Mode": None,
    "R Mode": "rolling_ols_window_12",
    "R Type": "dynamic",
}


@pytest.fixture(scope="module")
def seed_spec(seed_weekly) -> KalmanSpec:
    """The notebook's spec, with tvbeta's names."""
    return KalmanSpec(K=len(SEED_FACTORS), name="Test Model").set_R_from_rolling_ols_residuals(
        df=seed_weekly, target_col=SEED_TARGET, factor_cols=SEED_FACTORS, window=SEED_WINDOW
    )


@pytest.fixture(scope="module")
def seed_transcription(seed_weekly) -> dict[str, np.ndarray]:
    """The seed's equations run directly: rolling R by a loop, then the notebook's filter."""
    y = seed_weekly[SEED_TARGET].to_numpy()
    H = seed_weekly[SEED_FACTORS].to_numpy()
    R = ref.rolling_ols_residual_R(y, H, SEED_WINDOW, min_val=1e-6)
    out = ref.seed_filter(
        y,
        H,
        beta0=np.zeros(2),
        P0=100.0 * np.eye(2),
        T=np.eye(2),
        Q_at=lambda t: 1e-4 * np.eye(2),
        R_at=lambda t: R[t],
    )
    return {key: value[SEED_BURN:] for key, value in out.items()} | {"R": R}


def test_seed_example_matches_the_seed_equations(seed_weekly, seed_spec, seed_transcription):
    ref_ = seed_transcription
    assert_close(seed_spec.R.values, ref_["R"], rtol=1e-10, what="R_t")
    res = KalmanEngine(seed_spec).run(
        seed_weekly, target_col=SEED_TARGET, factor_cols=SEED_FACTORS, burn=SEED_BURN
    )
    dates = seed_weekly.index[SEED_BURN:]
    assert res["beta"].index.equals(dates)
    assert list(res["beta"].columns) == SEED_FACTORS
    assert_close(res["beta"].to_numpy(), ref_["beta"], rtol=1e-10, what="beta")
    assert list(res["beta_cov"]) == list(dates)
    covs = np.stack(list(res["beta_cov"].values()))
    assert_close(covs, ref_["beta_cov"], rtol=1e-10, what="beta_cov")
    assert_close(res["y_pred"].to_numpy(), ref_["y_pred"], rtol=1e-10, what="y_pred")
    assert_close(res["residuals"].to_numpy(), ref_["residuals"], rtol=1e-10, what="residuals")
    assert_close(res["kalman_gain"].to_numpy(), ref_["kalman_gain"], rtol=1e-10, what="gain")
    assert_close(res["log_likelihood_t"].to_numpy(), ref_["loglik_t"], rtol=1e-10, what="ll_t")
    assert res["log_likelihood"] == pytest.approx(ref_["loglik_t"].sum(), rel=1e-10)
    pd.testing.assert_frame_equal(
        res["H"], seed_weekly[SEED_FACTORS].iloc[SEED_BURN:], check_freq=False
    )


def test_seed_example_describe(seed_spec):
    desc = seed_spec.describe(target_col=SEED_TARGET, factor_cols=SEED_FACTORS)
    assert {k: desc[k] for k in SEED_PRINTED_DESCRIBE} == SEED_PRINTED_DESCRIBE
    # the entries that depend on K, for this K = 2 run
    assert desc["K (State Dim)"] == 2
    assert desc["Factor Columns"] == SEED_FACTORS
    assert desc["Initial Beta"] == [0.0, 0.0]
    assert desc["Initial Covariance (P_0 diag)"] == [100.0, 100.0]
    # Deliberate difference: the seed printed "dynamic" for every Q because its Q was always a
    # Python function; tvbeta's default Q is one constant matrix and says so.
    assert desc["Q Type"] == "constant"


def test_meta_lists_the_state_names_as_the_seed_engine_did(frame):
    res = KalmanEngine(KalmanSpec(2).set_intercept()).run(frame, TARGET, FACTORS)
    assert res["meta"]["Factor Columns"] == ["Intercept", *FACTORS]
    assert res["meta"]["Has Intercept"] is True
    assert list(res["beta"].columns) == ["Intercept", *FACTORS]


def test_a_wrong_K_says_what_to_do(frame):
    with pytest.raises(SpecError, match=r"K=2 states but the data give 3: 3 factor.*set_intercept"):
        KalmanEngine(KalmanSpec(2)).run(frame, TARGET, ["mkt", "credit", "unused"])


def test_local_level_smoothed_level_equals_statsmodels_unobserved_components(nile):
    """Nile with D&K's variances (Q 1469.1, R 15099) from a known start: the engine's
    smoothed level and sd equal UnobservedComponents("llevel") initialised at the first
    predicted state (a0, P0 + Q)."""
    import statsmodels.api as sm

    q, r, a0, P0 = DK_Q, DK_R, 1000.0, 1e4
    spec = KalmanSpec(1, intercept=True, beta0=np.array([a0]), P0=np.array([[P0]]),
                      Q=TimeVarying.constant([[q]]), R=TimeVarying.constant(r))  # fmt: skip
    res = KalmanEngine(spec).run(nile, "volume", [])
    uc = sm.tsa.UnobservedComponents(nile["volume"].to_numpy(), "llevel")
    uc.ssm.initialize_known(np.array([a0]), np.array([[P0 + q]]))
    want = uc.smooth([r, q])
    assert list(res.beta_smooth.columns) == ["Intercept"]
    assert_close(res.beta_smooth["Intercept"].to_numpy(), want.smoothed_state[0], rtol=1e-10)
    assert_close(res.beta_smooth_sd["Intercept"].to_numpy() ** 2, want.smoothed_state_cov[0, 0],
                 rtol=1e-9)  # fmt: skip


def test_no_factor_and_no_intercept_says_to_add_one(nile):
    with pytest.raises(DataValidationError, match=r"factor_cols is empty and intercept=False.*"
                                                  r"set intercept=True"):  # fmt: skip
        KalmanEngine(KalmanSpec(0)).run(nile, "volume", [])


def test_per_time_settings_must_come_from_the_same_rows(frame):
    spec = KalmanSpec(2).set_R_from_rolling_ols_residuals(frame, TARGET, FACTORS)
    with pytest.raises(SpecError, match=r"150 rows.*100 rows.*same DataFrame"):
        KalmanEngine(spec).run(frame.iloc[:100], TARGET, FACTORS)


def test_run_does_not_modify_the_data(frame):
    before = frame.copy(deep=True)
    KalmanEngine(KalmanSpec(2).set_intercept()).run(frame, TARGET, FACTORS, burn=4)
    pd.testing.assert_frame_equal(frame, before)


def test_a_missing_target_is_predicted_not_updated(frame):
    frame.iloc[40, frame.columns.get_loc(TARGET)] = np.nan
    res = KalmanEngine(KalmanSpec(2)).run(frame, TARGET, FACTORS)
    assert np.isnan(res.residuals.iloc[40]) and res.log_likelihood_t.iloc[40] == 0.0
    np.testing.assert_array_equal(res.beta.iloc[40], res.beta.iloc[39])  # T = I: no update
    assert np.isfinite(res.y_pred.iloc[40])


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs 80-bit extended precision")
def test_with_the_seeds_intercept_prior_the_kernel_is_as_accurate_as_the_seed(frame):
    """P0[0, 0] = 1e6 against returns of 0.02 cancels ~9 digits in the first updates.

    Against the seed's equations run in extended precision (the oracle), the kernel's
    innovations are no further off than the seed's own float64 equations.
    """
    spec = KalmanSpec(2).set_intercept().set_R_from_ols(frame[FACTORS], frame[TARGET])
    y = frame[TARGET].to_numpy()
    X = ref.with_ones(frame[FACTORS].to_numpy(), True)
    r = float(spec.R.values)
    seed64 = ref.seed_filter(
        y, X, spec.beta0, spec.P0, np.eye(3), lambda t: 1e-4 * np.eye(3), lambda t: r
    )["residuals"]
    L = np.longdouble
    beta, P = np.zeros((3, 1), dtype=L), spec.P0.astype(L)
    oracle = np.zeros(len(y), dtype=L)
    for t in range(len(y)):
        h = X[t].astype(L).reshape(1, 3)
        P_pred = P + L(1e-4) * np.eye(3, dtype=L)
        v = L(y[t]) - (h @ beta)[0, 0]
        S = (h @ P_pred @ h.T)[0, 0] + L(r)
        gain = P_pred @ h.T / S
        beta, P = beta + gain * v, (np.eye(3, dtype=L) - gain @ h) @ P_pred
        oracle[t] = v
    kernel = KalmanEngine(spec).run(frame, TARGET, FACTORS).residuals.to_numpy()
    err_kernel = float(np.max(np.abs(kernel - oracle)))
    err_seed = float(np.max(np.abs(seed64 - oracle)))
    assert err_kernel <= 2 * err_seed
    assert err_kernel <= 1e-6 * float(np.max(np.abs(oracle)))


def test_leading_empty_rows_are_not_part_of_the_results(frame):
    """A fund starting 20 rows after its factors, burn 3 observed steps (one more missing
    return inside the burn-in): the views start at the 4th observed return and hold
    statsmodels' filtered and smoothed states of the model started at the first return;
    the output arrays are NaN on the empty rows. Reference: statsmodels on the fund's rows."""
    from tvbeta.estimate.statsmodels_twin import statsmodels_filter

    lead, burn = 20, 3
    frame.iloc[:lead, frame.columns.get_loc(TARGET)] = np.nan
    frame.iloc[lead + 1, frame.columns.get_loc(TARGET)] = np.nan
    spec = KalmanSpec(2).set_intercept().set_R_from_ols(frame[FACTORS], frame[TARGET])
    res = KalmanEngine(spec).run(frame, TARGET, FACTORS, burn=burn)
    first = lead + burn + 1  # rows lead, lead + 2, lead + 3 are the burn-in
    assert res.time_index.equals(frame.index[first:])
    fund = frame.iloc[lead:]
    y, Z = fund[TARGET].to_numpy(), ref.with_ones(fund[FACTORS].to_numpy(), True)
    sm = statsmodels_filter(y, Z, np.eye(3)[None], 1e-4 * np.eye(3)[None],
                            [float(spec.R.values)], spec.beta0, spec.P0)  # fmt: skip
    b = first - lead
    assert_close(res.beta.to_numpy(), sm.a_filt[b:], 1e-7, "beta")
    assert_close(res.beta_smooth.to_numpy(), sm.a_smooth[b:], 1e-7, "beta_smooth")
    assert res.log_likelihood == pytest.approx(sm.loglik_t[b:].sum(), rel=1e-9)
    assert np.isnan(res.output.filtered.a_filt[:lead]).all()
    assert np.isnan(res.output.a_smooth[:lead]).all()
    same = KalmanEngine(spec).run(frame.iloc[lead:], TARGET, FACTORS, burn=burn)
    pd.testing.assert_frame_equal(res.beta_smooth, same.beta_smooth)
    assert res.to_xarray().sizes["time"] == len(frame) - first
