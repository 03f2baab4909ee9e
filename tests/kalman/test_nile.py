"""Nile local level (Durbin & Koopman 2012, section 2.10).

sigma2_eps = 15099, sigma2_eta = 1469.1.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from tvbeta.kalman import kalman_loglik, kalman_smoother

NILE = sm.datasets.nile.load_pandas().data["volume"].to_numpy(dtype=float)
S2_EPS, S2_ETA = 15099.0, 1469.1


def _uc(a1: float, P1: float):
    mod = sm.tsa.UnobservedComponents(NILE, "llevel")
    mod.ssm.initialize_known(np.array([a1]), np.array([[P1]]))
    mod.loglikelihood_burn = 0  # UC drops the first term by default
    return mod


def _ours(a0: float, P0: float, burn: int = 0) -> float:
    Z = np.ones((NILE.size, 1))
    return kalman_loglik(NILE, Z, np.eye(1)[None], [[[S2_ETA]]], [S2_EPS], [a0], [[P0]], burn=burn)


@pytest.mark.parametrize(("a0", "P0"), [(1120.0, 0.0), (1000.0, 1e4), (0.0, 1e7)])
def test_nile_loglik_equals_statsmodels_known_initialization(a0, P0):
    # statsmodels' known init is the first *predicted* state: (a0, P0 + sigma2_eta) for T = 1
    want = _uc(a0, P0 + S2_ETA).loglike([S2_EPS, S2_ETA])
    assert _ours(a0, P0) == pytest.approx(want, rel=1e-10)


def test_nile_near_diffuse_start_after_one_step_equals_exact_diffuse_loglik():
    # A huge P0 with the first term dropped tends to the exact diffuse likelihood (DK eq. 7.2),
    # which keeps only -log(2 pi)/2 for the diffuse first step.
    exact = sm.tsa.UnobservedComponents(NILE, "llevel", use_exact_diffuse=True).loglike(
        [S2_EPS, S2_ETA]
    )
    assert _ours(0.0, 1e10, burn=1) - 0.5 * np.log(2 * np.pi) == pytest.approx(exact, rel=1e-8)


def test_nile_smoothed_level_equals_statsmodels():
    mod = _uc(1000.0, 1e4 + S2_ETA)
    res = mod.smooth([S2_EPS, S2_ETA])
    sm_ = kalman_smoother(NILE, np.ones((100, 1)), np.eye(1)[None], [[[S2_ETA]]], [S2_EPS],
                          [1000.0], [[1e4]])
    np.testing.assert_allclose(sm_.a_smooth[:, 0], res.smoothed_state[0], rtol=1e-10)
    np.testing.assert_allclose(sm_.P_smooth[:, 0, 0], res.smoothed_state_cov[0, 0], rtol=1e-9)
