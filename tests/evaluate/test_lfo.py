"""lfo_cv: exact LFO = refit-and-score loop, PSIS-LFO close to exact, refits after a break, PSIS
vs an independent implementation, clear input errors.

Most tests use a cheap exact posterior: a 30 x 30 grid over (log sigma_beta, log sigma_eps) of
a one-factor model, likelihood from `loglik_batch`, draws resampled from the grid with jitter.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from scipy.special import logsumexp

from tvbeta.data import simulate
from tvbeta.estimate.bayes.fit import BayesFit, fit_bayes
from tvbeta.estimate.bayes.model import bayes_spec
from tvbeta.estimate.bayes.priors import Prior, Priors
from tvbeta.evaluate.lfo import lfo_cv, psis
from tvbeta.kalman import kalman_filter, loglik_batch

N, L, BURN = 200, 120, 2
BREAK = 150


@pytest.fixture(scope="module")
def frame():
    """A weekly fund on one factor, random-walk beta (sd 0.02 per week), noise sd 0.01."""
    return simulate(N, ["f1"], Q=4e-4, R=1e-4, beta0=[0.9], seed=5).frame


@pytest.fixture(scope="module")
def broken(frame):
    """The same fund with its noise sd raised from 0.01 to about 0.03 from row BREAK on."""
    out = frame.copy()
    out.iloc[BREAK:, 0] += np.random.default_rng(1).normal(0.0, 0.03, N - BREAK)
    return out


def _spec(frame):
    return bayes_spec(frame, "y", ["f1"], intercept=False, burn=BURN)


def _grid_refit(train_spec, frame, S=400, size=30, seed=0):
    """refit(n_rows): draws from the grid posterior on rows < n_rows (the fit's model)."""
    full = _spec(frame)
    spec = replace(train_spec, index=full.index, y=full.y, Z=full.Z)
    sb = spec.resolved.sigma_beta.params["sigma"][0]
    se = spec.resolved.sigma_eps.params["sigma"]
    lb = np.linspace(np.log(sb) - 5, np.log(sb) + 1, size)
    le = np.linspace(np.log(se) - 3, np.log(se) + 1, size)
    LB, LE = (g.ravel() for g in np.meshgrid(lb, le, indexing="ij"))
    q, r = np.exp(2 * LB), np.exp(2 * LE)

    def refit(n_rows):
        ll = loglik_batch(spec.y[None, :n_rows], spec.Z[None, :n_rows], spec.T[None, None],
                          q[:, None, None, None], r[:, None], spec.a0[None], spec.P0[None],
                          burn=BURN)  # fmt: skip
        # HalfNormal priors on the sds, with the Jacobian of the log grid
        lp = ll - 0.5 * q / sb**2 + LB - 0.5 * r / se**2 + LE
        rng = np.random.default_rng(seed)
        pick = rng.choice(q.size, size=S, p=np.exp(lp - logsumexp(lp)))
        jb = LB[pick] + rng.uniform(-0.5, 0.5, S) * (lb[1] - lb[0])
        je = LE[pick] + rng.uniform(-0.5, 0.5, S) * (le[1] - le[0])
        return np.exp(2 * jb)[:, None, None], np.exp(2 * je)

    return refit


def _fit_from_draws(spec, Q, R) -> BayesFit:
    """A BayesFit holding given draws (one chain) of a diagonal-Q model."""
    post = xr.Dataset({
        "sigma_eps": (("chain", "draw"), np.sqrt(R)[None]),
        "sigma_beta": (("chain", "draw", "state"), np.sqrt(np.diagonal(Q, axis1=1, axis2=2))[None]),
    })  # fmt: skip
    return BayesFit(xr.DataTree.from_dict({"posterior": post}), xr.Dataset(), spec, {})


def _grid_case(frame, S=400):
    train = _spec(frame.iloc[:L])
    refit = _grid_refit(train, frame, S=S)
    return _fit_from_draws(train, *refit(L)), refit


def _explicit_score(frame, spec, Q, R, row):
    """log mean_s p(y_row | y_<row, Q_s, R_s) by the (unbatched) filter, one draw at a time."""
    full = _spec(frame)
    m = (full.y, full.Z, spec.T[None])
    terms = [
        kalman_filter(*m, Q[s][None], [R[s]], spec.a0, spec.P0).loglik_t[row] for s in range(len(R))
    ]
    return logsumexp(terms) - np.log(len(R))


def test_exact_lfo_equals_refit_and_score_loop(frame):
    data = frame.iloc[: L + 20]
    fit, refit = _grid_case(data, S=100)
    res = lfo_cv(fit, data, threshold=0.0, refit=refit)
    expected = [_explicit_score(data, fit.spec, *refit(i), i) for i in range(L, L + 20)]
    np.testing.assert_allclose(res.elpd_i.to_numpy(), expected, rtol=1e-12)
    assert res.refit_rows == tuple(range(L + 1, L + 20))
    assert res.elpd == pytest.approx(sum(expected), rel=1e-12)


def test_default_refit_is_nuts_on_the_truncated_rows(frame):
    # explicit priors and initial state: fit_bayes on any number of rows gives the same model
    priors = Priors(
        sigma_eps=Prior("HalfNormal", {"sigma": 0.02}),
        sigma_beta=Prior("HalfNormal", {"sigma": 0.05}),
        a0=(0.9,),
        P0=((1.0,),),
    )
    kw = dict(intercept=False, priors=priors, burn=BURN, draws=30, tune=30, chains=1, cores=1,
              sampler="pymc", seed=3, n_paths=0, check=False)  # fmt: skip
    data = frame.iloc[: L + 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny NUTS runs fail the convergence checks
        fit = fit_bayes(data.iloc[:L], "y", ["f1"], **kw)
        res = lfo_cv(fit, data, threshold=0.0)
        refit = fit_bayes(data.iloc[: L + 1], "y", ["f1"], **kw)
    expected = [_explicit_score(data, fit.spec, *f.qr_draws(), i)
                for f, i in ((fit, L), (refit, L + 1))]  # fmt: skip
    np.testing.assert_allclose(res.elpd_i.to_numpy(), expected, rtol=1e-12)
    assert res.refit_rows == (L + 1,)


def test_psis_lfo_is_close_to_exact_lfo(frame):
    fit, refit = _grid_case(frame)
    approx = lfo_cv(fit, frame, refit=refit)
    exact = lfo_cv(fit, frame, threshold=0.0, refit=refit)
    # Bürkner et al. (2020): PSIS-LFO differs from exact LFO by a small fraction of the se
    assert abs(approx.elpd - exact.elpd) < 0.1 * exact.se
    assert np.max(np.abs(approx.elpd_i - exact.elpd_i)) < 0.1  # nats per period
    assert approx.n_refits < exact.n_refits // 10


def test_a_break_triggers_refits_after_it(frame, broken):
    fit, refit = _grid_case(frame)
    assert lfo_cv(fit, frame, refit=refit).n_refits == 0
    fit, refit = _grid_case(broken)
    res = lfo_cv(fit, broken, refit=refit)
    assert res.n_refits >= 2
    assert BREAK < res.refit_rows[0] <= BREAK + 10
    k = res.to_frame()
    assert (k.loc[k["refit"], "pareto_k"] > 0.7).all()
    assert (k["pareto_k"].iloc[1 : BREAK - L + 1] < 0.7).all()  # row L: no ratios (NaN)


def _gpdfit_loo(x):
    """Zhang & Stephens' GPD fit with the weakly informative prior on k, transcribed from the
    loo R package (gpdfit, lx, adjust_k_wip; Vehtari et al. 2024, appendix); x sorted."""
    n = x.size
    m = 30 + int(np.floor(np.sqrt(n)))
    xstar = x[int(np.floor(n / 4 + 0.5)) - 1]
    theta = 1 / x[-1] + (1 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))) / 3 / xstar
    k = np.array([np.mean(np.log1p(-t * x)) for t in theta])
    l_theta = n * (np.log(-theta / k) - k - 1)
    theta_hat = np.sum(theta * np.exp(l_theta - logsumexp(l_theta)))
    k = np.mean(np.log1p(-theta_hat * x))
    sigma = -k / theta_hat
    return k * n / (n + 10) + 10 * 0.5 / (n + 10), sigma


def _psis_loo(log_ratios):
    """loo's do_psis_i with r_eff = 1 (tail length ceiling(min(0.2 S, 3 sqrt(S))))."""
    S = log_ratios.size
    M = int(np.ceil(min(0.2 * S, 3 * np.sqrt(S))))
    lw = log_ratios - log_ratios.max()
    order = np.argsort(lw)
    tail, cutoff = lw[order[S - M :]], lw[order[S - M - 1]]
    k, sigma = _gpdfit_loo(np.exp(tail) - np.exp(cutoff))
    p = (np.arange(1, M + 1) - 0.5) / M
    lw[order[S - M :]] = np.log(sigma * np.expm1(-k * np.log1p(-p)) / k + np.exp(cutoff))
    lw = np.minimum(lw, 0.0)
    return lw - logsumexp(lw), k


@pytest.mark.parametrize("S", [100, 400, 1600])  # where loo's and arviz's tail lengths agree
def test_psis_matches_the_loo_algorithm(S):
    log_ratios = np.random.default_rng(S).normal(0.0, 1.5, S)
    lw, k = psis(log_ratios)
    lw_ref, k_ref = _psis_loo(log_ratios)
    np.testing.assert_allclose(lw, lw_ref, rtol=0, atol=1e-10)
    assert k == pytest.approx(k_ref, abs=1e-10)
    assert np.exp(lw).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [0.3, 0.6, 0.9])
def test_psis_khat_recovers_a_pareto_tail(shape):
    # ratios from a generalized Pareto with shape k: its tail is GPD(k) too; mean over 8 seeds
    khats = []
    for seed in range(8):
        u = np.random.default_rng(seed).uniform(size=4900)
        khats.append(psis(np.log(np.expm1(-shape * np.log(u)) / shape))[1])
    assert np.mean(khats) == pytest.approx(shape, abs=0.07)


def test_psis_of_equal_ratios_is_uniform():
    lw, k = psis(np.full(400, 2.5))
    np.testing.assert_allclose(lw, -np.log(400))
    assert k == -np.inf


@pytest.mark.parametrize("n_train", [BURN + 1, N, N + 5, 150.0])
def test_n_train_outside_the_data_is_refused(frame, n_train):
    fit, refit = _grid_case(frame)
    with pytest.raises(ValueError, match=r"n_train must be an integer in .* = \[4, 199\]"):
        lfo_cv(fit, frame, n_train=n_train, refit=refit)


def test_missing_draws_are_refused(frame):
    fit, refit = _grid_case(frame)
    empty = _fit_from_draws(fit.spec, np.empty((0, 1, 1)), np.empty(0))
    with pytest.raises(ValueError, match="fit has no posterior draws"):
        lfo_cv(empty, frame, refit=refit)
    with pytest.raises(ValueError, match=r"refit\(121\) has no posterior draws"):
        lfo_cv(fit, frame, threshold=0.0, refit=lambda n: (np.empty((0, 1, 1)), np.empty(0)))


def test_other_bad_inputs_name_their_parameter(frame):
    fit, refit = _grid_case(frame)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        lfo_cv(fit, frame, threshold=-0.5, refit=refit)
    with pytest.raises(ValueError, match="data: its first 120 rows differ"):
        lfo_cv(fit, frame.iloc[::-1].sort_index() * 1.01, refit=refit)
    with pytest.raises(ValueError, match="log_ratios must be a vector of at least 25"):
        psis(np.zeros(10))


def _with_gaps(frame, rows):
    out = frame.copy()
    out.iloc[rows, out.columns.get_loc("y")] = np.nan
    return out


def test_exact_lfo_with_missing_returns_scores_and_refits_at_observed_rows_only(frame):
    """Returns missing in training (row 60) and test (L, the first test row, and L + 7): the
    scored rows are the observed test rows, each by the posterior on the rows before it
    (a refit-and-score loop with the filter, as in the complete case); the first scored row
    L + 1 needs no refit, since the missing row L adds nothing to the fit's posterior."""
    data = _with_gaps(frame.iloc[: L + 20], [60, L, L + 7])
    fit, refit = _grid_case(data, S=100)
    res = lfo_cv(fit, data, threshold=0.0, refit=refit)
    scored = [i for i in range(L, L + 20) if i not in (L, L + 7)]
    assert list(res.rows) == scored and res.summary()["n test"] == 18
    assert res.refit_rows == tuple(scored[1:])
    expected = [_explicit_score(data, fit.spec, *refit(L if i == L + 1 else i), i)
                for i in scored]  # fmt: skip
    np.testing.assert_allclose(res.elpd_i.to_numpy(), expected, rtol=1e-12)
    assert list(res.elpd_i.index) == list(data.index[scored])


def test_psis_lfo_after_a_missing_first_test_row_needs_no_ratios_there(frame):
    """Row L missing: the first scored row L + 1 is scored by the fit's posterior itself
    (uniform weights, k-hat NaN as right after a fit), the next by PSIS over row L + 1."""
    data = _with_gaps(frame.iloc[: L + 20], [L])
    fit, refit = _grid_case(data, S=100)
    res = lfo_cv(fit, data, refit=refit)
    assert np.isnan(res.pareto_k.iloc[0]) and np.isfinite(res.pareto_k.iloc[1])
    Q, R = fit.qr_draws()
    assert res.elpd_i.iloc[0] == pytest.approx(_explicit_score(data, fit.spec, Q, R, L + 1),
                                               rel=1e-12)  # fmt: skip
