"""Joint MLE of Q and R on arrays (`fit_qr`), against published values, statsmodels and truth."""

from __future__ import annotations

import dataclasses
import math
import warnings
from decimal import Decimal, getcontext

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize, minimize_scalar
from tests.model.nile import DK_Q, DK_R, nile_frame
from tests.reverting import FACTORS, fast_reverting

from tvbeta.data import DataValidationError, simulate
from tvbeta.estimate.mle import (
    LoglikGrad,
    MLEConvergenceWarning,
    _warn_outcome,
    fit_mle,
    fit_mle_design,
    fit_mle_funds,
    fit_qr,
)
from tvbeta.estimate.statsmodels_twin import TVPRegression
from tvbeta.kalman import kalman_loglik, state_space
from tvbeta.model import KalmanSpec, StateSpaceModel, design_for

NILE = sm.datasets.nile.load_pandas().data["volume"].to_numpy(dtype=float)


def nile_model():
    # Near-diffuse known start: a0 = y_0, P0 = 1e7, and the first term dropped (burn = 1),
    # which approximates the exact diffuse likelihood Durbin & Koopman maximise.
    return state_space(NILE, np.ones((100, 1)), np.eye(1)[None], np.eye(1)[None], [1.0],
                       [NILE[0]], [[1e7]])


def test_nile_mle_reproduces_durbin_koopman():
    # Durbin & Koopman (2012), section 2.10.3: sigma2_eps = 15099, sigma2_eta = 1469.1
    fit = fit_qr(nile_model(), burn=1)
    q, r = fit.params
    assert q == pytest.approx(1469.1, rel=0.01)
    assert r == pytest.approx(15099.0, rel=0.01)
    assert fit.converged


def test_fit_qr_without_standard_errors_skips_only_them():
    """standard_errors=False (the starting fit of fit_qr_volatility / fit_qr_mean_reverting):
    Durbin & Koopman's Nile MLE (section 2.10.3) as the full fit, and NaN SEs."""
    full, bare = fit_qr(nile_model(), burn=1), fit_qr(nile_model(), burn=1, standard_errors=False)
    np.testing.assert_allclose(bare.params, [1469.1, 15099.0], rtol=0.01)
    assert np.array_equal(bare.params, full.params) and bare.llf == full.llf
    assert np.isnan(bare.se).all() and np.isnan(bare.cov).all() and np.isfinite(full.se).all()


def test_fit_qr_restores_the_callers_blas_threads():
    """The search runs BLAS on one thread; threadpoolctl's own report shows the caller's
    setting (here 2 threads, set by the test) back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(2, user_api="blas"):
        fit_qr(nile_model(), burn=1)
        assert {lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas"} == {2}  # fmt: skip


def test_mle_of_a_model_gives_its_parameters_with_the_model_kept():
    """fit_mle_design estimates Q and R for the structure given (the local level of
    Durbin & Koopman (2012), 2.10.3: sigma2_eta = 1469.1, sigma2_eps = 15099) and its spec is
    the view over that structure and the estimates."""
    model = StateSpaceModel(1, intercept=True, a0=[NILE[0]], P0=[[1e7]], init_mode="given")
    spec = KalmanSpec.from_parts(model)
    fit = fit_mle_design(design_for(spec, nile_frame(), "volume", [], 1), model, burn=1)
    assert fit.spec.params.Q.values[0, 0] == pytest.approx(1469.1, rel=0.01)
    assert float(fit.spec.params.R.values) == pytest.approx(15099.0, rel=0.01)
    assert fit.spec == KalmanSpec.from_parts(model, fit.spec.params, name="MLE (diag Q)",
                                             q_mode="mle_diag", r_mode="mle")  # fmt: skip


def test_the_spec_of_a_fit_says_the_form_of_q_it_was_fitted_with():
    """A full-Q fit's spec is the view over a model with a full Q (its structure is kept for
    a refit); a diagonal fit's over a diagonal one."""
    sim = simulate(200, 1, Q=[[1e-4, 0.0], [0.0, 1e-4]], R=1e-4, beta0=[0.0, 1.0],
                   intercept=True, seed=3)  # fmt: skip
    for q in ("diag", "full"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLEConvergenceWarning)
            fit = fit_mle(sim.frame, "y", ["f1"], q=q)
        assert fit.spec.model.q == q


def test_standard_errors_equal_independent_second_difference_hessian():
    fit = fit_qr(nile_model(), burn=1)
    x = fit.params

    def f(p):
        return kalman_loglik(NILE, np.ones((100, 1)), np.eye(1)[None], [[[p[0]]]], [p[1]],
                             [NILE[0]], [[1e7]], burn=1)

    H = np.zeros((2, 2))
    h = 1e-3 * x
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h[i], np.eye(2)[j] * h[j]
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * h[i] * h[j])
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(np.linalg.inv(-H))), rtol=1e-3)


def _sim(seed: int, k: int, n: int, q_scale: float = 1.0):
    rng = np.random.default_rng(seed)
    q = q_scale * rng.uniform(0.5, 2.0, k) * 1e-3
    sim = simulate(n, k, Q=q, R=1e-3, beta0=np.ones(k), seed=seed, factor_cov=np.eye(k) * 0.04)
    y = sim.frame["y"].to_numpy()
    Z = sim.frame.drop(columns="y").to_numpy()
    m = state_space(y, Z, np.eye(k)[None], np.eye(k)[None], [1.0], np.ones(k), np.eye(k))
    return m, np.r_[q, 1e-3]


@pytest.mark.parametrize("q", ["diag", "full"])
@pytest.mark.parametrize("seed", [0, 1])
def test_mle_equals_statsmodels_twin(seed, q):
    m, _ = _sim(seed, 2, 500)
    ours = fit_qr(m, q=q, burn=2)
    twin = TVPRegression(m.y, m.Z, q=q, a0=m.a0, P0=m.P0, burn=2)
    theirs = twin.fit(start_params=twin.start_params, disp=False, maxiter=5000)
    assert ours.llf == pytest.approx(theirs.llf, rel=1e-6)
    # the llf at statsmodels' optimum is never higher than ours: we found the maximum
    assert ours.llf >= theirs.llf - 1e-6 * abs(theirs.llf)
    Q_sm = twin.state_cov(theirs.params)
    np.testing.assert_allclose(np.diag(ours.Q), np.diag(Q_sm), rtol=0.01)
    assert ours.R == pytest.approx(theirs.params[-1], rel=0.01)


def test_mle_recovers_known_q_and_r_within_standard_errors_at_nominal_rate():
    inside, total = 0, 0
    for k in (1, 2, 3, 4):
        for seed in range(3):
            m, truth = _sim(100 * k + seed, k, 1000)
            fit = fit_qr(m, burn=k)
            inside += int(np.sum(np.abs(fit.params - truth) < 1.96 * fit.se))
            total += truth.size
    # 42 parameters at a nominal 95%: P(Binomial(42, 0.95) < 35) < 0.2%
    assert inside >= 35, f"{inside}/{total} inside their 95% intervals"


def test_a_drift_variance_at_zero_is_a_finding_not_a_warning():
    """Simulated without drift (truth Q = 0): the maximum is at the lower bound of the drift
    variances, found by a converged search. A static beta is an answer about the fund: no
    warning, and ``on_bound`` (`MLEFit.summary`'s ``at bound``) says where it is."""
    m, _ = _sim(7, 2, 300, q_scale=0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLEConvergenceWarning)
        fit = fit_qr(m, burn=2, state_names=("a", "b"))
    assert [w for w in caught if w.category is MLEConvergenceWarning] == []
    assert fit.converged and any(name.startswith("Q[") for name in fit.on_bound)


def test_phi_of_a_beta_that_does_not_move_is_no_warning_beside_a_phi_that_is():
    """Betas reverting within a month (phi on its lower edge 0.5, warned) and a static
    intercept (Q at 0, so its phi is not identified: on a bound, not warned)."""
    frame = fast_reverting(["y"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLEConvergenceWarning)
        fit = fit_mle(frame, "y", FACTORS, betas="mean_reverting")
    messages = [str(w.message) for w in caught if w.category is MLEConvergenceWarning]
    assert {"Q[Intercept]", "phi[Intercept]", "phi[f1]", "phi[f2]"} <= set(fit.estimate.on_bound)
    phi = fit.params  # the warning gives each value: here phi's lower edge, 0.5
    assert len(messages) == 1 and messages[0].startswith(
        f"MLE sits on a bound for phi[f1] = {phi['phi[f1]']:.3g}, phi[f2] = "
        f"{phi['phi[f2]']:.3g}:"), messages
    assert "phi[f1] = 0.5," in messages[0]
    assert "intercept" not in messages[0]  # its phi is not flagged: no talk of its residuals


def test_an_intercept_phi_on_its_lower_edge_is_read_as_correlated_residuals():
    """The bound warning's meaning of an intercept's phi at 0.5 (a reverting alpha: residuals
    correlated from one period to the next) comes with the intercept's phi only."""
    with pytest.warns(MLEConvergenceWarning) as caught:
        _warn_outcome(True, "", 0.0, ["phi[Intercept]"], [], {"phi[Intercept]": 0.5})
    assert "phi[Intercept] = 0.5" in str(caught[0].message)
    assert "for the intercept, those swings are residuals correlated" in str(caught[0].message)


def test_noise_variance_on_its_bound_warns_that_the_likelihood_peaks_there():
    """bounds_scale=(0.5, 1e2) holds R above half the OLS residual variance, which the
    drifting betas inflate well above the true R = 1e-3: the maximum sits on R's lower bound,
    after a converged search, and the one warning says so (not "did not converge"), from the
    user's line."""
    m, _ = _sim(7, 2, 300)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLEConvergenceWarning)
        fit = fit_qr(m, burn=2, state_names=("a", "b"), bounds_scale=(0.5, 1e2))
    messages = [str(w.message) for w in caught if w.category is MLEConvergenceWarning]
    assert fit.converged and "R" in fit.on_bound, fit.on_bound
    assert len(messages) == 1, messages
    assert "sits on a bound for" in messages[0] and "R" in messages[0].split(":")[0]
    assert "the likelihood is highest at the edge" in messages[0]
    assert caught[0].filename == __file__  # the user's line, not tvbeta's


def test_early_stop_near_a_bound_is_reported_as_a_stop_not_as_the_optimum():
    """Truth Q ~ 1e-3 (interior). Started below the lower bound of Q (clipped onto it) and
    stopped after one iteration, the search ends near the bound with the likelihood still
    rising: the warning gives scipy's reason and does not say the likelihood peaks there. The
    same start without the iteration limit ends inside (the bound was never the maximum)."""
    m, _ = _sim(3, 2, 500)
    start = [(np.diag([1e-15, 1e-15]), 1e-3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLEConvergenceWarning)
        stopped = fit_qr(m, burn=2, starts=start, maxiter=1, state_names=("a", "b"))
    messages = [str(w.message) for w in caught if w.category is MLEConvergenceWarning]
    assert len(messages) == 1, messages
    assert "did not converge" in messages[0] and "ITERATIONS REACHED LIMIT" in messages[0]
    assert "stopped near the bound of Q[a], Q[b]" in messages[0]
    assert "sits on a bound" not in messages[0]
    assert not stopped.converged and stopped.on_bound == ["Q[a]", "Q[b]"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLEConvergenceWarning)
        full = fit_qr(m, burn=2, starts=start, state_names=("a", "b"))
    assert full.converged and full.on_bound == [] and full.llf > stopped.llf


# --- the near-perfect fit: y = 0.99 x + noise of sd 1e-5 (daily returns, intercept + x) --------
def _near_perfect_fit(seed: int, noise: float = 1e-5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0003, 0.012, 250)
    y = 0.99 * x + rng.normal(0.0, noise, 250)
    return pd.DataFrame({"y": y, "x": x}, index=pd.bdate_range("2021-01-04", periods=250))


def _constant_beta_loglik(df: pd.DataFrame, r: float, burn: int = 2) -> float:
    """Closed form of fit_mle's default model with Q = 0, at 50 digits (no Kalman filter).

    beta ~ N(0, P0), P0 = diag(1e6, 100), y = Z beta + eps, eps ~ N(0, r I): log p(y_A) =
    -(n log 2 pi + n log r + log|P0| + log|M| + (y'y - b'M^-1 b / r) / r) / 2 with
    S = Z'Z, b = Z'y, M = P0^-1 + S / r (Woodbury). Terms t >= burn: log p(y) - log p(y_:burn).
    """
    getcontext().prec = 50
    rd = Decimal(r)
    p0 = (Decimal(10) ** 6, Decimal(100))

    def logp(rows: slice) -> Decimal:
        z = [(Decimal(1), Decimal(x)) for x in df["x"].to_numpy()[rows]]
        y = [Decimal(v) for v in df["y"].to_numpy()[rows]]
        S = [[sum(zt[i] * zt[j] for zt in z) for j in range(2)] for i in range(2)]
        b = [sum(zt[i] * yt for zt, yt in zip(z, y, strict=True)) for i in range(2)]
        M = [[S[i][j] / rd + (1 / p0[i] if i == j else 0) for j in range(2)] for i in range(2)]
        det = M[0][0] * M[1][1] - M[0][1] * M[1][0]
        bMb = (M[1][1] * b[0] ** 2 - 2 * M[0][1] * b[0] * b[1] + M[0][0] * b[1] ** 2) / det
        quad = (sum(v * v for v in y) - bMb / rd) / rd
        n = len(y)
        log2pi = (2 * Decimal(math.pi)).ln()
        return -(n * (log2pi + rd.ln()) + (p0[0] * p0[1]).ln() + det.ln() + quad) / 2

    return float(logp(slice(None)) - logp(slice(0, burn)))


@pytest.mark.parametrize("q", ["diag", "full"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_perfect_fit_reaches_the_constant_beta_maximum(seed, q):
    """Truth: constant betas (Q = 0) and R = 1e-10. The MLE over Q >= 0 is at least the
    maximum over R of the closed-form likelihood at Q = 0 (50-digit arithmetic, no filter).
    Before, every start had R ~ var(y) = 1.4e-4 and the search ended at R ~ 1e-16 with the
    intercept's drift absorbing the noise, ~100 nats below."""
    df = _near_perfect_fit(seed)
    best = minimize_scalar(lambda x: -_constant_beta_loglik(df, np.exp(x)),
                           bounds=(np.log(1e-12), np.log(1e-8)), method="bounded",
                           options={"xatol": 1e-6})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # Q = 0: a variance on a bound
        fit = fit_mle(df, "y", ["x"], q=q)
    assert fit.llf >= -best.fun - 1e-6 * abs(best.fun)
    assert fit.converged
    assert fit.estimate.R == pytest.approx(np.exp(best.x), rel=0.05)


@pytest.mark.parametrize("q", ["diag", "full"])
@pytest.mark.parametrize("seed", [0, 3, 4])
def test_near_perfect_fit_llf_is_at_least_statsmodels(seed, q):
    """statsmodels' own optimiser (the twin, from its own default start) on the same model:
    tvbeta's likelihood at statsmodels' optimum must not beat tvbeta's maximum, up to the
    optimisers' tolerance. Both are scored by one filter: at R ~ 1e-10 against P0 = 1e6 the
    double-precision covariance update is off by ~0.04 nats (the 50-digit closed form above
    is the truth), differently in each implementation."""
    df = _near_perfect_fit(seed)
    y, Z = df["y"].to_numpy(), np.column_stack([np.ones(len(df)), df["x"].to_numpy()])
    P0 = np.diag([1e6, 100.0])
    twin = TVPRegression(y, Z, q=q, P0=P0, burn=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' and tvbeta's convergence warnings
        params = twin.fit(disp=False, maxiter=5000).params
        ours = fit_mle(df, "y", ["x"], q=q).llf
    theirs = kalman_loglik(y, Z, np.eye(2)[None], twin.state_cov(params)[None], [params[-1]],
                           np.zeros(2), P0, burn=2)
    assert ours >= theirs - 1e-6 * abs(theirs)


def test_full_q_has_one_parameter_per_lower_triangle_entry_plus_r():
    m, _ = _sim(8, 3, 400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        fit = fit_qr(m, q="full", burn=3, state_names=("a", "b", "c"))
    assert fit.names == ["Q[a,a]", "Q[b,a]", "Q[b,b]", "Q[c,a]", "Q[c,b]", "Q[c,c]", "R"]
    np.testing.assert_allclose(fit.Q, fit.Q.T)
    assert np.linalg.eigvalsh(fit.Q).min() > 0
    assert fit.aic == pytest.approx(-2 * fit.llf + 2 * 7)


# --- fit_mle on the intercept-only model: the Nile local level (no factor columns) ------------
NILE_FRAME = nile_frame()


def near_diffuse_level() -> KalmanSpec:
    """The local level spec with P0 = 1e10 (a0 = 0): near the exact diffuse start."""
    return dataclasses.replace(KalmanSpec(0).set_intercept(), P0=np.array([[1e10]]))


def test_fit_mle_nile_local_level_near_diffuse_reproduces_durbin_koopman():
    """P0 = 1e10 and burn = 1 (the default, K) approximate D&K's exact diffuse likelihood;
    their values are given to 5 digits."""
    fit = fit_mle(NILE_FRAME, "volume", [], spec=near_diffuse_level())
    assert fit.burn == 1 and list(fit.params.index) == ["Q[Intercept]", "R"]
    np.testing.assert_allclose(fit.params, [DK_Q, DK_R], rtol=2e-4)


def test_fit_mle_nile_with_the_seeds_start_equals_unobserved_components_default_fit():
    """The default start (a0 = 0, P0 = 1e6, burn 1) is statsmodels' approximate diffuse one
    (a1 = 0, P1 = 1e6, first term dropped) up to q in P1: the same MLE (q 1463.55, r 15108.3;
    D&K's exact diffuse 1469.1, 15099 are 0.4% away) and log-likelihood (-632.53769)."""
    fit = fit_mle(NILE_FRAME, "volume", [])
    uc = sm.tsa.UnobservedComponents(NILE, "llevel")
    want = uc.fit(disp=False, method="nm", maxiter=5000, xtol=1e-10, ftol=1e-12)
    np.testing.assert_allclose(fit.params, want.params[::-1], rtol=1e-4)
    q, r = fit.params
    assert fit.llf == pytest.approx(uc.loglike([r, q]), rel=1e-8)


def test_fit_mle_nile_llf_equals_unobserved_components_exact_diffuse_loglik():
    """The near-diffuse llf (first term dropped) plus the diffuse step's -log(2 pi) / 2 is
    statsmodels' exact diffuse log-likelihood (DK eq. 7.2) at the same variances."""
    fit = fit_mle(NILE_FRAME, "volume", [], spec=near_diffuse_level())
    q, r = fit.params
    uc = sm.tsa.UnobservedComponents(NILE, "llevel", use_exact_diffuse=True)
    assert fit.llf - 0.5 * np.log(2 * np.pi) == pytest.approx(uc.loglike([r, q]), rel=1e-8)


def test_fit_mle_without_factors_or_intercept_says_to_add_an_intercept():
    with pytest.raises(DataValidationError, match=r"factor_cols is empty and intercept=False.*"
                                                  r"set intercept=True"):  # fmt: skip
        fit_mle(NILE_FRAME, "volume", [], intercept=False)


# --- a fund that starts after its factors: leading rows with a missing target -----------------
LEAD = 20


def _late_fund() -> tuple:
    """150 weekly rows whose first 20 fund returns are missing, and the same without them."""
    sim = simulate(150, 1, Q=np.diag([1e-6, 4e-3]), R=1e-4, beta0=[0.001, 0.9], intercept=True,
                   seed=5)  # fmt: skip
    late = sim.frame.copy()
    late.iloc[:LEAD, late.columns.get_loc("y")] = np.nan
    return late, late.iloc[LEAD:]


def test_fit_mle_leading_empty_rows_change_nothing():
    """Rows before the fund's first return are not part of the model and the burn (K = 2)
    counts observed steps: the same llf, n_obs (130 - 2) and estimates as without them."""
    late, trimmed = _late_fund()
    ours, want = fit_mle(late, "y", ["f1"]), fit_mle(trimmed, "y", ["f1"])
    assert ours.estimate.n_obs == want.estimate.n_obs == 128
    assert ours.llf == pytest.approx(want.llf, rel=1e-12)
    np.testing.assert_allclose(ours.params, want.params, rtol=1e-9)
    pd.testing.assert_frame_equal(ours.result.beta, want.result.beta)


def test_fit_mle_with_leading_empty_rows_is_the_statsmodels_twin_on_the_fund_rows():
    """Reference: statsmodels' log-likelihood of the same model (a0 = 0, P0 = the seed's,
    burn 2 rows) on the rows from the fund's first return, at tvbeta's estimates. (The seed's
    intercept prior P0 = 1e6 costs both filters digits in the first updates, hence 1e-8.)"""
    late, trimmed = _late_fund()
    fit = fit_mle(late, "y", ["f1"])
    Z = np.column_stack([np.ones(len(trimmed)), trimmed["f1"]])
    twin = TVPRegression(trimmed["y"].to_numpy(), Z, a0=fit.spec.beta0, P0=fit.spec.P0, burn=2)
    assert fit.llf == pytest.approx(twin.loglike(fit.params.to_numpy()), rel=1e-8)


def test_fit_mle_funds_fits_each_fund_on_the_frame_checked_once():
    """Two funds on one factor, the second from row 20 on (its frame and factor checks made
    at the first): each llf is statsmodels' log-likelihood of that fund's rows at its
    estimates, and each fit is fit_mle's; an unknown keyword is refused at once."""
    late, _ = _late_fund()
    frame = late.assign(early=late["f1"] * 0.5 + np.random.default_rng(0).normal(0, 0.01, 150))
    fits = list(fit_mle_funds(frame, ["early", "y"], "f1"))
    for fit, target in zip(fits, ["early", "y"], strict=True):
        rows = frame[frame[target].notna()]
        Z = np.column_stack([np.ones(len(rows)), rows["f1"]])
        twin = TVPRegression(rows[target].to_numpy(), Z, a0=fit.spec.beta0, P0=fit.spec.P0,
                             burn=2)  # fmt: skip
        assert fit.llf == pytest.approx(twin.loglike(fit.params.to_numpy()), rel=1e-8)
        alone = fit_mle(frame, target, "f1")
        assert fit.llf == alone.llf
        np.testing.assert_array_equal(fit.params, alone.params)
        np.testing.assert_array_equal(fit.se, alone.se)
    with pytest.raises(TypeError, match="unexpected keyword argument 'intercpt'"):
        fit_mle_funds(frame, ["y"], "f1", intercpt=False)


def test_fit_mle_nile_with_leading_empty_years_is_statsmodels_exact_diffuse():
    """20 empty years before the Nile series: statsmodels' exact diffuse log-likelihood is the
    same with and without them, and so is tvbeta's near-diffuse one (burn = 1 observed step;
    a burn counting rows would keep the diffuse first term, ~-10 nats)."""
    years = pd.date_range(end=NILE_FRAME.index[0], periods=LEAD + 1, freq="YE", name="Date")
    empty = pd.DataFrame({"volume": np.full(LEAD, np.nan)}, index=years[:-1])
    padded = pd.concat([empty, NILE_FRAME])
    fit = fit_mle(padded, "volume", [], spec=near_diffuse_level())
    q, r = fit.params
    y = padded["volume"].to_numpy()
    uc = sm.tsa.UnobservedComponents(y, "llevel", use_exact_diffuse=True)
    assert uc.loglike([r, q]) == pytest.approx(
        sm.tsa.UnobservedComponents(NILE, "llevel", use_exact_diffuse=True).loglike([r, q]),
        rel=1e-12)  # fmt: skip
    assert fit.llf - 0.5 * np.log(2 * np.pi) == pytest.approx(uc.loglike([r, q]), rel=1e-8)
    np.testing.assert_allclose(fit.params, [DK_Q, DK_R], rtol=2e-4)


def test_fit_repr_is_short_and_states_target_span_burn_and_outcome():
    """n and span from pandas on the input frame: observed targets after the first
    `burn` (default K = 3) observed ones."""
    sim = simulate(120, 2, Q=[1e-3, 4e-4], R=1e-3, beta0=[1.0, 0.3], seed=4, missing_frac=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # no intercept drift: a bound
        fit = fit_mle(sim.frame, "y", ["f1", "f2"])
    observed = sim.frame.index[sim.frame["y"].notna()]
    text = repr(fit)
    first, last = observed[3].strftime("%Y-%m-%d"), observed[-1].strftime("%Y-%m-%d")
    assert f"{len(observed) - 3} observed steps {first} .. {last}" in text
    assert f"burn=3 of {len(sim.frame)} rows" in text
    assert "target='y'" in text and "q='diag'" in text and f"llf={fit.llf:.6g}" in text
    assert len(text) < 400 and text.count("\n") <= 2


# --- does the search reach the maximum? simulated funds against a brute-force reference -------
def _weekly_fund(seed: int, k: int = 4, n: int = 520):
    """A fund like `bench.funds`': k factors (sd 0.02), drift sds U(0, 0.03), noise sd
    U(0.005, 0.02), beta0 = 0.5, no intercept; the seed's P0 = 100 I."""
    rng = np.random.default_rng(seed)
    sd, r = rng.uniform(0.0, 0.03, k), rng.uniform(0.005, 0.02) ** 2
    sim = simulate(n, k, Q=sd**2, R=r, beta0=0.5, seed=seed)
    y, Z = sim.frame["y"].to_numpy(), sim.frame.drop(columns="y").to_numpy()
    return state_space(y, Z, np.eye(k)[None], np.eye(k)[None], [1.0], np.zeros(k),
                       100 * np.eye(k))  # fmt: skip


def _reference_max(m, burn: int) -> float:
    """Brute force, sharing no search code with fit_qr: L-BFGS-B (ftol 0) on the natural
    variances over their scale (s2 / var(z_i), s2 = the OLS residual variance), where a
    variance at 0 is an ordinary bound, from every corner of {0, 1e-3}^k for Q with R = s2 / 2;
    the best end's log-likelihood. The filter and its exact gradient (`LoglikGrad`) are checked
    against statsmodels and finite differences in tests/kalman."""
    resid = m.y - m.Z @ np.linalg.lstsq(m.Z, m.y, rcond=None)[0]
    s2 = resid @ resid / (m.n - m.k)
    scale = np.r_[s2 / m.Z.var(axis=0), s2]
    weights = np.r_[np.zeros(burn), np.ones(m.n - burn)]  # no missing y: burn rows = steps
    f = LoglikGrad(m, weights)

    def neg(x):
        v = x * scale
        val, dQ, dR = f(np.diag(v[:-1]), v[-1])
        return -val, -np.r_[np.diag(dQ), dR] * scale

    corners = np.array(np.meshgrid(*[[0.0, 1e-3]] * m.k)).reshape(m.k, -1).T
    bounds = [(0.0, 100.0)] * m.k + [(1e-6, 100.0)]
    ends = [minimize(neg, np.r_[c, 0.5], jac=True, method="L-BFGS-B", bounds=bounds,
                     options={"ftol": 0.0, "gtol": 1e-10, "maxiter": 5000}).fun
            for c in corners]  # fmt: skip
    return -min(ends)


@pytest.mark.parametrize(
    "seed", [32, 91, 42, 399],
    ids=["peak-at-0-0.17-nats", "peak-at-0-0.01-nats", "slow-climb-6e-5-nats",
         "snap-leaves-R-rising-0.004-nats"])  # fmt: skip
def test_fit_qr_reaches_the_brute_force_maximum_of_a_simulated_fund(seed):
    """Before, fit_qr stopped short on these: at an interior peak of one variance while the
    likelihood peaks higher with it at 0 (seeds 32, 91: 0.17, 0.01 nats; L-BFGS-B in log
    variances cannot cross to 0), on scipy's default ftol (seed 42: 6e-5 nats), or where two
    variances snapped to 0 left R's slope at 0.05 sqrt(n) per unit log-variance (seed 399:
    0.004 nats, reached only by a second start before, the one now skipped)."""
    m = _weekly_fund(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # a variance at 0: a bound
        fit = fit_qr(m, burn=4, standard_errors=False)
    assert fit.llf >= _reference_max(m, 4) - 1e-6


def test_volatility_mle_reaches_the_profile_maximum_of_nodur():
    """Before, fit_qr_volatility stopped 0.37 nats short on NoDur's training rows (the
    intercept's drift variance stuck near 0 in the joint climb, gamma 0.778). Reference: the
    profile likelihood at gamma = 0.82238, its maximum (a grid over [-1, 3] by 0.1, then a
    bounded scalar maximisation, computed offline): fit_qr of the constant-R model of y / s on
    Z / s, s_t = h_t^(gamma/2), whose log-likelihood is the volatility model's plus the sum of
    log s_t over the terms (a change of variables)."""
    from tvbeta.data import FRENCH_FACTORS, load_french
    from tvbeta.kalman.arrays import burn_row

    df = load_french()
    df = df.iloc[: int(0.7 * len(df))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        fit = fit_mle(df, "NoDur", list(FRENCH_FACTORS), noise="volatility")
        design, gamma = fit.result.design, 0.82238
        m = KalmanSpec(K=4).set_intercept().state_space(design.y, design.Z)
        log_h = fit.noise.log_h(design.y, design.Z)
        s = np.exp(0.5 * gamma * log_h)
        scaled = fit_qr(m._replace(y=m.y / s, Z=m.Z / s[:, None]), burn=fit.burn,
                        standard_errors=False)  # fmt: skip
    terms = slice(burn_row(m.y, fit.burn), None)
    profile = scaled.llf - np.log(s[terms][~np.isnan(m.y[terms])]).sum()
    assert fit.llf >= profile - 1e-6
