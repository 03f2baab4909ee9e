"""simulate: data with a known beta path, checked against the model's equations."""

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import SimulatedData, simulate


def design_rows(sim: SimulatedData, intercept: bool) -> np.ndarray:
    factors = sim.frame[list(sim.factor_names)].to_numpy()
    return np.column_stack([np.ones(len(factors)), factors]) if intercept else factors


def test_same_seed_same_data_other_seed_other_data() -> None:
    kwargs = {"Q": 1e-4, "R": 1e-4, "beta0": [1.0, 0.5]}
    a, b = simulate(50, 2, seed=7, **kwargs), simulate(50, 2, seed=7, **kwargs)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.beta, b.beta)
    c = simulate(50, 2, seed=8, **kwargs)
    assert not np.allclose(a.frame.to_numpy(), c.frame.to_numpy())


def test_shapes_names_and_weekly_friday_index() -> None:
    sim = simulate(30, ["mkt", "rates"], Q=1e-4, R=1e-4, beta0=0.0, seed=0)
    assert sim.frame.shape == (30, 3)
    assert list(sim.frame.columns) == ["y", "mkt", "rates"]
    assert sim.beta.shape == (30, 2) and sim.state_names == ("mkt", "rates")
    assert sim.Q.shape == (2, 2) and sim.beta0.shape == (2,)
    index = sim.frame.index
    assert index[0] == pd.Timestamp("2000-01-07") and index.name == "Date"
    assert (index.day_of_week == 4).all() and (np.diff(index) == pd.Timedelta(days=7)).all()


def test_freq_argument_sets_the_index() -> None:
    sim = simulate(3, 1, Q=0.0, R=0.0, beta0=1.0, seed=0, freq="ME", start="2001-01-31")
    assert list(sim.frame.index) == list(pd.to_datetime(["2001-01-31", "2001-02-28", "2001-03-31"]))


def test_number_of_factors_is_taken_from_beta0_when_not_given() -> None:
    sim = simulate(5, Q=0.0, R=0.0, beta0=[0.1, 1.0, 2.0], intercept=True, seed=0)
    assert sim.state_names == ("Intercept", "f1", "f2")


def test_first_state_is_T_times_beta0_then_recursion() -> None:
    # No noise and T = 0.5: beta_t = 0.5^(t+1) beta0, so beta_{-1} = beta0 exactly.
    sim = simulate(4, 2, Q=0.0, R=0.0, beta0=[1.0, -2.0], T=0.5, seed=1)
    expected = np.array([[0.5 ** (t + 1), -2.0 * 0.5 ** (t + 1)] for t in range(4)])
    np.testing.assert_allclose(sim.beta, expected, rtol=1e-15)


def test_without_noise_y_is_exactly_z_times_beta() -> None:
    sim = simulate(20, 2, Q=0.0, R=0.0, beta0=[0.01, 0.3, 0.7], intercept=True, seed=3)
    f = sim.frame[["f1", "f2"]].to_numpy()
    expected = 0.01 + 0.3 * f[:, 0] + 0.7 * f[:, 1]
    np.testing.assert_allclose(sim.frame["y"].to_numpy(), expected, rtol=1e-13)


def test_intercept_with_zero_variance_stays_at_its_start() -> None:
    Q = np.diag([0.0, 1e-3, 1e-3])
    sim = simulate(200, 2, Q=Q, R=1e-4, beta0=[0.002, 1.0, 0.5], intercept=True, seed=5)
    assert sim.state_names[0] == "Intercept"
    assert (sim.beta[:, 0] == 0.002).all()
    assert np.std(sim.beta[:, 1]) > 0


def test_beta_increments_have_covariance_Q_over_a_long_path() -> None:
    Q = np.array([[4e-4, 1e-4], [1e-4, 2e-4]])
    sim = simulate(40_000, 2, Q=Q, R=1e-4, beta0=[1.0, 0.5], seed=11)
    increments = np.diff(np.vstack([sim.beta0, sim.beta]), axis=0)  # T = I: eta_t
    empirical = np.cov(increments, rowvar=False)
    # Sampling error of a variance is about sqrt(2 / n) = 0.7% relative here.
    np.testing.assert_allclose(np.diag(empirical), np.diag(Q), rtol=0.04)
    assert empirical[0, 1] == pytest.approx(Q[0, 1], rel=0.1)


def test_observation_noise_has_variance_R() -> None:
    sim = simulate(40_000, 3, Q=1e-5, R=2.5e-5, beta0=1.0, intercept=True, seed=12)
    residual = sim.frame["y"].to_numpy() - np.sum(design_rows(sim, True) * sim.beta, axis=1)
    assert np.var(residual) == pytest.approx(2.5e-5, rel=0.04)
    assert np.mean(residual) == pytest.approx(0.0, abs=4 * np.sqrt(2.5e-5 / 40_000))


def test_factors_default_to_two_percent_volatility() -> None:
    sim = simulate(40_000, 2, Q=0.0, R=0.0, beta0=0.0, seed=13)
    cov = np.cov(sim.frame[["f1", "f2"]].to_numpy(), rowvar=False)
    np.testing.assert_allclose(np.diag(cov), [0.02**2, 0.02**2], rtol=0.04)
    assert abs(cov[0, 1]) < 0.05 * 0.02**2


def test_missing_fraction_blanks_that_share_of_y_only() -> None:
    sim = simulate(200, 2, Q=1e-4, R=1e-4, beta0=1.0, seed=2, missing_frac=0.25)
    assert sim.frame["y"].isna().sum() == 50
    assert not sim.frame[["f1", "f2"]].isna().any().any()


def test_rejects_a_Q_that_is_not_positive_semidefinite() -> None:
    with pytest.raises(ValueError, match="Q is not positive semi-definite"):
        simulate(5, 2, Q=[[1.0, 2.0], [2.0, 1.0]], R=0.1, beta0=0.0, seed=0)


def test_rejects_shapes_that_do_not_match_k() -> None:
    with pytest.raises(ValueError, match=r"Q must be a scalar, shape \(3,\) or \(3, 3\)"):
        simulate(5, 2, Q=[1.0, 1.0], R=0.1, beta0=0.0, intercept=True, seed=0)
    with pytest.raises(ValueError, match=r"beta0 .* shape \(2,\)"):
        simulate(5, 2, Q=0.1, R=0.1, beta0=[1.0, 2.0, 3.0], seed=0)


def test_truth_arrays_are_read_only() -> None:
    sim = simulate(5, 1, Q=0.1, R=0.1, beta0=0.0, seed=0)
    with pytest.raises(ValueError, match="read-only"):
        sim.beta[0, 0] = 1.0
