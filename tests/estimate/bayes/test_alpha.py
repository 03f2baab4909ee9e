"""P(alpha_t > 0), real time and in hindsight (BayesFit.alpha_probability, paths.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm

from tvbeta.data import simulate
from tvbeta.estimate.bayes.diagnostics import BayesConvergenceWarning
from tvbeta.estimate.bayes.fit import fit_bayes
from tvbeta.estimate.bayes.model import SystemDraws, bayes_spec
from tvbeta.estimate.bayes.paths import beta_path_summary
from tvbeta.estimate.statsmodels_twin import statsmodels_filter

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")


def test_probability_of_one_draw_is_the_normal_cdf_of_statsmodels_moments():
    """With one posterior draw the probability is Phi(mean / sd) of the filtered and smoothed
    moments, here from statsmodels' filter and smoother (an independent implementation)."""
    sim = simulate(120, 1, Q=[1e-6, 1e-3], R=1e-4, beta0=[0.002, 1.0], intercept=True, seed=3)
    spec = bayes_spec(sim.frame, "y", ["f1"], burn=2)
    Q, R = np.diag([1e-6, 1e-3])[None], np.array([1e-4])
    paths = beta_path_summary(spec, SystemDraws(spec.T[None], Q, R), n_paths=1, seed=0)
    ref = statsmodels_filter(spec.y, spec.Z, spec.T[None], Q, R, spec.a0, spec.P0)
    b = spec.first_row
    for kind, a, P in (("filtered", ref.a_filt, ref.P_filt), ("smoothed", ref.a_smooth,
                                                              ref.P_smooth)):  # fmt: skip
        expected = norm.cdf(a[b:, 0] / np.sqrt(P[b:, 0, 0]))
        np.testing.assert_allclose(paths[f"{kind}_p_positive"].values[:, 0], expected,
                                   rtol=1e-7, atol=1e-12)  # fmt: skip


def test_alpha_probability_follows_a_known_alpha_that_turns_negative():
    """Simulated alpha: +0.5% a week for 150 weeks, then -0.5% (a jump, noise sd 0.2%). Far
    from the switch, in hindsight the probability is near 1 before and near 0 after; in real
    time it lags the switch, so it is higher than in hindsight just after it."""
    n = 300
    sim = simulate(n, 1, Q=[0.0, 1e-6], R=4e-6, beta0=[0.0, 1.0], intercept=True, seed=5)
    frame = sim.frame.copy()
    alpha = np.where(np.arange(n) < 150, 0.005, -0.005)
    frame["y"] += alpha
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)
        fit = fit_bayes(frame, "y", ["f1"], draws=300, tune=300, chains=2, n_paths=100, seed=1,
                        priors={"intercept_drift_per_year": 1.0})
    p = fit.alpha_probability()
    assert list(p.columns) == ["filtered", "smoothed"] and p.index.equals(fit.spec.time)
    dates = frame.index
    assert (p["smoothed"].loc[dates[40]:dates[130]] > 0.95).all()
    assert (p["smoothed"].loc[dates[170]:] < 0.05).all()
    after = slice(dates[150], dates[154])
    assert (p["filtered"].loc[after] > p["smoothed"].loc[after]).all()


def test_alpha_probability_needs_an_intercept():
    sim = simulate(60, 1, Q=[1e-4], R=1e-4, beta0=[1.0], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)
        fit = fit_bayes(sim.frame, "y", ["f1"], intercept=False, draws=50, tune=50, chains=1,
                        n_paths=5, seed=0)
    with pytest.raises(ValueError, match="needs a model with an intercept"):
        fit.alpha_probability()
