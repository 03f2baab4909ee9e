"""Cross-checks of the statsmodels twin against plain numpy recursions and published values.

Oracles (STYLE.md, "hierarchy of test oracles"):
* a scalar / matrix Kalman filter + RTS smoother written below in plain numpy (D&K 2012 sections
  4.3 and 4.4), using tvbeta's predict-first timing;
* a dense joint-Gaussian solve of the same model (no recursions), for loglik and smoother;
* statsmodels' own ``UnobservedComponents`` local level with the same known initialisation;
* the Nile maximum-likelihood estimates sigma2_eps = 15099, sigma2_eta = 1469.1 of Durbin &
  Koopman (2012), "Time Series Analysis by State Space Methods", 2nd ed., section 2.10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy.linalg import block_diag
from scipy.stats import multivariate_normal

from tvbeta.estimate.statsmodels_twin import TVPRegression, statsmodels_filter

LOG2PI = np.log(2.0 * np.pi)
DK_R, DK_Q = 15099.0, 1469.1  # D&K (2012) section 2.10: sigma2_eps, sigma2_eta for the Nile


@pytest.fixture(scope="module")
def nile() -> np.ndarray:
    """Annual Nile flow at Aswan, 1871-1970 (100 obs, 1e8 m^3), bundled with statsmodels."""
    y = sm.datasets.nile.load_pandas().data["volume"].to_numpy(dtype=float)
    assert y.shape == (100,)
    return y


def numpy_kalman(y, Z, T, Q, R, a0, P0):
    """Textbook filter + RTS smoother with tvbeta's timing; T, Q, R are per time (n, ...)."""
    n, k = Z.shape
    out = {key: np.empty((n, k)) for key in ("a_pred", "a_filt", "a_smooth")}
    out |= {key: np.empty((n, k, k)) for key in ("P_pred", "P_filt", "P_smooth")}
    out |= {key: np.empty(n) for key in ("v", "F", "loglik_t")}
    a, P = a0, P0
    for t in range(n):
        a, P = T[t] @ a, T[t] @ P @ T[t].T + Q[t]  # predict first
        out["a_pred"][t], out["P_pred"][t] = a, P
        F = Z[t] @ P @ Z[t] + R[t]
        out["F"][t] = F
        if np.isnan(y[t]):  # missing: no update, no likelihood term
            out["v"][t], out["loglik_t"][t] = np.nan, 0.0
        else:
            v = y[t] - Z[t] @ a
            K = P @ Z[t] / F
            a, P = a + K * v, P - np.outer(K, K) * F
            out["v"][t], out["loglik_t"][t] = v, -0.5 * (LOG2PI + np.log(F) + v * v / F)
        out["a_filt"][t], out["P_filt"][t] = a, P
    out["a_smooth"][-1], out["P_smooth"][-1] = a, P
    for t in range(n - 2, -1, -1):  # Rauch-Tung-Striebel fixed-interval form, D&K section 4.4
        J = out["P_filt"][t] @ T[t + 1].T @ np.linalg.inv(out["P_pred"][t + 1])
        out["a_smooth"][t] = out["a_filt"][t] + J @ (out["a_smooth"][t + 1] - out["a_pred"][t + 1])
        dP = out["P_smooth"][t + 1] - out["P_pred"][t + 1]
        out["P_smooth"][t] = out["P_filt"][t] + J @ dP @ J.T
    out["loglik"] = out["loglik_t"].sum()
    return out


def dense_posterior(y, Z, T, Q, R, a0, P0):
    """Log-likelihood and E/Cov[beta_t | y] from the joint Gaussian, no recursions at all.

    beta = G [beta_{-1}; eta_0; ...; eta_{n-1}] with block rows G_t = T_t G_{t-1} + E_t.
    """
    n, k = Z.shape
    row, G = np.zeros((k, (n + 1) * k)), np.empty((n, k, (n + 1) * k))
    row[:, :k] = np.eye(k)
    for t in range(n):
        row = T[t] @ row
        row[:, (t + 1) * k : (t + 2) * k] += np.eye(k)
        G[t] = row
    G = G.reshape(n * k, -1)
    m_beta, C_beta = G[:, :k] @ a0, G @ block_diag(P0, *Q) @ G.T
    obs = ~np.isnan(y)
    H = block_diag(*Z[:, None, :])[obs]  # (n_obs, n k)
    C_y = H @ C_beta @ H.T + np.diag(R[obs])
    resid = y[obs] - H @ m_beta
    loglik = multivariate_normal(np.zeros(obs.sum()), C_y).logpdf(resid)
    gain = np.linalg.solve(C_y, H @ C_beta).T  # Cov(beta, y) Cov(y)^-1
    mean = (m_beta + gain @ resid).reshape(n, k)
    cov = (C_beta - gain @ H @ C_beta).reshape(n, k, n, k)
    return loglik, mean, cov[np.arange(n), :, np.arange(n), :]


def random_tv_model(seed: int, n: int = 200, k: int = 3):
    """Per-time T, Q, R, a design with an intercept, simulated y with NaNs (first and last too)."""
    rng = np.random.default_rng(seed)
    T = 0.9 * np.eye(k) + 0.05 * rng.standard_normal((n, k, k))
    A = rng.standard_normal((n, k, k))
    Q = 0.05 * A @ A.transpose(0, 2, 1) / k + 0.01 * np.eye(k)
    R = 0.2 + rng.uniform(size=n)
    Z = np.column_stack([np.ones(n), rng.standard_normal((n, k - 1))])
    a0 = rng.standard_normal(k)
    B = rng.standard_normal((k, k))
    P0 = B @ B.T + 0.5 * np.eye(k)
    beta = rng.multivariate_normal(a0, P0)
    y = np.empty(n)
    for t in range(n):
        beta = T[t] @ beta + rng.multivariate_normal(np.zeros(k), Q[t])
        y[t] = Z[t] @ beta + np.sqrt(R[t]) * rng.standard_normal()
    y[[0, n // 4, n // 4 + 1, 2 * n // 3, n - 1]] = np.nan
    return y, Z, T, Q, R, a0, P0


# --- statsmodels_filter -------------------------------------------------------------------------


def test_nile_local_level_loglik_matches_scalar_numpy_filter(nile):
    n = nile.size
    a0, P0 = nile[0], 1e7  # any known init works; this one is close to diffuse
    ref = statsmodels_filter(nile, np.ones((n, 1)), [[[1.0]]], [[[DK_Q]]], [DK_R], [a0], [[P0]])

    a, P, ll = a0, P0, np.empty(n)  # scalar local level, predict first
    for t, yt in enumerate(nile):
        P = P + DK_Q
        F, v = P + DK_R, yt - a
        ll[t] = -0.5 * (LOG2PI + np.log(F) + v * v / F)
        a, P = a + P / F * v, P - P * P / F

    assert_allclose(ref.loglik_t, ll, rtol=1e-10)
    assert_allclose(ref.loglik, ll.sum(), rtol=1e-10)
    assert_allclose(ref.a_filt[-1, 0], a, rtol=1e-10)


def test_nile_loglik_matches_unobserved_components_with_same_known_init(nile):
    n = nile.size
    a0, P0 = nile[0], 1e7
    ref = statsmodels_filter(nile, np.ones((n, 1)), [[[1.0]]], [[[DK_Q]]], [DK_R], [a0], [[P0]])

    mod = sm.tsa.UnobservedComponents(nile, "llevel")  # params: sigma2.irregular, sigma2.level
    mod.ssm.initialize_known(np.array([a0]), np.array([[P0 + DK_Q]]))  # predicted P_{0|-1}
    mod.loglikelihood_burn = 0  # UC burns the (default) diffuse state's first observation
    assert_allclose(mod.loglike([DK_R, DK_Q]), ref.loglik, rtol=1e-10)
    assert_allclose(mod.loglikeobs([DK_R, DK_Q]), ref.loglik_t, rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_time_varying_model_matches_numpy_filter_and_rts_smoother(seed):
    args = random_tv_model(seed)
    ref = statsmodels_filter(*args)
    exp = numpy_kalman(*args)

    assert_allclose(ref.loglik, exp["loglik"], rtol=1e-10)
    for key in ("loglik_t", "a_pred", "P_pred", "a_filt", "P_filt", "F", "a_smooth", "P_smooth"):
        assert_allclose(getattr(ref, key), exp[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert_allclose(ref.v, exp["v"], rtol=1e-10, atol=1e-12)  # NaN in the same places
    missing = np.isnan(args[0])
    assert np.all(ref.loglik_t[missing] == 0.0)
    assert_allclose(ref.a_filt[missing], ref.a_pred[missing])


@pytest.mark.parametrize("seed", [0, 1])
def test_random_time_varying_model_matches_dense_joint_gaussian(seed):
    args = random_tv_model(seed, n=40)
    ref = statsmodels_filter(*args)
    loglik, mean, cov = dense_posterior(*args)
    assert_allclose(ref.loglik, loglik, rtol=1e-9)
    assert_allclose(ref.a_smooth, mean, rtol=1e-8, atol=1e-10)
    assert_allclose(ref.P_smooth, cov, rtol=1e-8, atol=1e-10)


def test_time_shift_matters_for_per_time_transition():
    # Guard against an off-by-one: feeding tvbeta's T_t to statsmodels' slot t (no shift)
    # must give a different answer from the numpy oracle, so the test above is sensitive to it.
    y, Z, T, Q, R, a0, P0 = random_tv_model(3)
    T_unshifted = np.concatenate([T[:1], T[:-1]])  # T_{t-1} in slot t == no shift downstream
    exp = numpy_kalman(y, Z, T, Q, R, a0, P0)
    wrong = statsmodels_filter(y, Z, T_unshifted, Q, R, a0, P0)
    assert abs(wrong.loglik - exp["loglik"]) > 1e-3


def test_constant_matrices_equal_their_per_time_tiling():
    y, Z, T, Q, R, a0, P0 = random_tv_model(4)
    n = y.size
    const = statsmodels_filter(y, Z, T[:1], Q[:1], R[:1], a0, P0)
    tiled = statsmodels_filter(
        y, Z, np.repeat(T[:1], n, 0), np.repeat(Q[:1], n, 0), np.repeat(R[:1], n), a0, P0
    )
    for key in const._fields:
        assert_allclose(getattr(const, key), getattr(tiled, key), rtol=1e-12, err_msg=key)


def test_wrong_leading_length_is_rejected():
    y, Z, T, Q, R, a0, P0 = random_tv_model(5, n=20)
    with pytest.raises(ValueError, match="T must have shape"):
        statsmodels_filter(y, Z, T[:5], Q, R, a0, P0)
    with pytest.raises(ValueError, match="R must have shape"):
        statsmodels_filter(y, Z, T, Q, R[:, None], a0, P0)


# --- TVPRegression ------------------------------------------------------------------------------


def simulate_tvp(seed: int, n: int, q: np.ndarray, r: float):
    """Random-walk betas (intercept + one regressor) with Q = diag(q), R = r."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal(n)])
    beta = np.array([1.0, 0.5]) + np.cumsum(rng.standard_normal((n, 2)) * np.sqrt(q), axis=0)
    y = np.sum(X * beta, axis=1) + np.sqrt(r) * rng.standard_normal(n)
    return y, X


@pytest.mark.parametrize("q", ["diag", "full"])
def test_tvp_regression_loglike_equals_statsmodels_filter(q):
    y, X = simulate_tvp(10, 150, np.array([0.02, 0.01]), 0.3)
    y[[3, 70]] = np.nan
    T = np.array([[0.95, 0.02], [0.0, 0.9]])
    a0, P0 = np.array([1.0, 0.0]), np.array([[2.0, 0.3], [0.3, 1.0]])
    if q == "diag":
        params, Q = np.array([0.03, 0.005, 0.4]), np.diag([0.03, 0.005])
    else:  # chol.0.0, chol.1.0, chol.1.1, sigma2.obs
        params = np.array([0.15, -0.05, 0.08, 0.4])
        L = np.array([[0.15, 0.0], [-0.05, 0.08]])
        Q = L @ L.T
    mod = TVPRegression(y, X, q=q, T=T, a0=a0, P0=P0)
    ref = statsmodels_filter(y, X, T[None], Q[None], [0.4], a0, P0)

    assert_allclose(mod.loglike(params), ref.loglik, rtol=1e-10)
    assert_allclose(mod.loglikeobs(params), ref.loglik_t, rtol=1e-10)
    assert_allclose(mod.untransform_params(mod.transform_params(params)), params, rtol=1e-12)


def test_tvp_regression_param_names_follow_exog_columns():
    y, X = simulate_tvp(11, 30, np.array([0.01, 0.01]), 1.0)
    exog = pd.DataFrame(X, columns=["const", "mkt"])
    assert TVPRegression(y, exog).param_names == ["sigma2.const", "sigma2.mkt", "sigma2.obs"]
    assert TVPRegression(y, exog, q="full").param_names == [
        "chol.0.0",
        "chol.1.0",
        "chol.1.1",
        "sigma2.obs",
    ]


def test_tvp_regression_burn_drops_leading_loglik_terms():
    y, X = simulate_tvp(12, 100, np.array([0.02, 0.01]), 0.3)
    params = np.array([0.02, 0.01, 0.3])
    # T = I, a0 = 0, P0 = 100 I are TVPRegression's defaults.
    ref = statsmodels_filter(
        y, X, np.eye(2)[None], np.diag(params[:2])[None], params[2:], np.zeros(2), 100 * np.eye(2)
    )
    burnt = TVPRegression(y, X, burn=5).loglike(params)
    assert_allclose(burnt, ref.loglik_t[5:].sum(), rtol=1e-10)
    assert burnt > ref.loglik  # the early, diffuse-ish steps have large negative terms


def test_tvp_regression_fit_recovers_simulated_variances():
    q_true, r_true = np.array([0.02, 0.005]), 0.25
    y, X = simulate_tvp(13, 600, q_true, r_true)
    y[[100, 101, 400]] = np.nan
    res = TVPRegression(y, X, burn=2).fit(disp=False)
    assert res.mle_retvals["converged"]
    # Smoke check (one 600-step path): variances within a factor 3 of the truth.
    assert_allclose(np.log(res.params), np.log(np.r_[q_true, r_true]), atol=np.log(3.0))
    res_full = TVPRegression(y, X, q="full", burn=2).fit(disp=False)
    Q_full = res_full.model.state_cov(res_full.params)
    assert_allclose(np.log(np.diag(Q_full)), np.log(q_true), atol=np.log(3.0))
    assert res_full.llf >= res.llf - 1e-6  # full Q nests diagonal Q


def test_nile_mle_matches_durbin_koopman_estimates(nile):
    n = nile.size
    # Near-diffuse known init: a0 = y_0, huge P0, and burn=1 to drop the first term (its
    # F ~ P0 carries no information), which approximates D&K's diffuse likelihood. Measured:
    # sigma2_eta = 1469.35, sigma2_eps = 15098.6 (within 0.03% of D&K); the loglik is very flat
    # there (D&K's values score 4e-8 below the optimum), so the optimiser decides the last digits.
    mod = TVPRegression(nile, np.ones((n, 1)), a0=[nile[0]], P0=[[1e7]], burn=1)
    res = mod.fit(disp=False)
    assert res.mle_retvals["converged"]
    assert_allclose(res.params, [DK_Q, DK_R], rtol=0.01)
    assert mod.param_names == ["sigma2.const", "sigma2.obs"]


def test_nile_near_diffuse_loglik_approaches_exact_diffuse_unobserved_components(nile):
    # As P0 -> inf with burn=1 the known-init loglik tends to statsmodels' exact diffuse one,
    # which also counts -0.5 log(2 pi) for the diffuse first step (D&K section 7.2.2).
    n = nile.size
    near = TVPRegression(nile, np.ones((n, 1)), a0=[nile[0]], P0=[[1e10]], burn=1)
    exact = sm.tsa.UnobservedComponents(nile, "llevel", use_exact_diffuse=True)
    expected = exact.loglike([DK_R, DK_Q]) + 0.5 * LOG2PI
    assert_allclose(near.loglike([DK_Q, DK_R]), expected, rtol=0, atol=1e-5)
