"""The out-of-sample comparison: split, scoring of each method, summary, save/load."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import simulate
from tvbeta.estimate.bayes.model import bayes_spec
from tvbeta.estimate.mle import fit_mle
from tvbeta.evaluate.compare import (
    BayesSettings,
    Comparison,
    Split,
    compare_methods,
    compare_series,
)
from tvbeta.evaluate.forecast import kalman_predictive
from tvbeta.evaluate.settings import METHODS
from tvbeta.kalman import state_space
from tvbeta.model import KalmanSpec
from tvbeta.nuts import SamplerSettings


@pytest.fixture(scope="module")
def two_series():
    frames = []
    for seed, name in ((1, "a"), (2, "b")):
        sim = simulate(240, 2, Q=[1e-3, 4e-4], R=1e-3, beta0=[1.0, 0.3], seed=seed,
                       freq="MS", factor_cov=np.eye(2) * 1e-3)
        frames.append(sim.frame.rename(columns={"y": name}))
    return pd.concat([frames[0], frames[1][["b"]]], axis=1)


def test_split_rounds_the_test_fraction_up():
    assert Split.from_test_size(240, 0.3) == Split(240, 168)
    assert Split.from_test_size(240, 50) == Split(240, 190)
    with pytest.raises(ValueError, match="leaves no training or no test rows"):
        Split.from_test_size(10, 10)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['lasso'\]"):
        compare_series(pd.DataFrame(), "a", ["f1"], methods=["lasso"])


def test_stacking_needs_two_bayes_variants():
    with pytest.raises(ValueError, match=r"bayes_stacked weighs two or more .* has \['bayes'\]"):
        compare_series(pd.DataFrame(), "a", ["f1"], methods=["bayes", "bayes_stacked"])


def test_mle_vol_scores_the_filter_run_on_with_r_t_from_the_index(two_series):
    """Independent of the comparison's code path: fit_qr_volatility on the training rows with
    the model's centred index, then R_t = R h_t^gamma on all 240 rows from the same index (known
    at t-1), filtered by statsmodels, scored on rows 168..239."""
    from tvbeta.estimate.mle import fit_qr_volatility
    from tvbeta.estimate.statsmodels_twin import statsmodels_filter

    res = compare_series(two_series, "a", ["f1", "f2"], methods=["mle_vol"], test_size=0.3)
    train = two_series.iloc[:168]
    model = bayes_spec(train, "a", ["f1", "f2"], intercept=True, burn=3, noise="volatility")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fit_qr_volatility(KalmanSpec.from_parts(model.model).state_space(model.y, model.Z),
                                model.log_h, burn=3)  # fmt: skip
    Z = np.column_stack([np.ones(240), two_series[["f1", "f2"]].to_numpy()])
    y = two_series["a"].to_numpy()
    R_t = est.R * np.exp(est.params[-1] * model.noise_index.log_h(y, Z))
    ref = statsmodels_filter(y, Z, np.eye(3)[None], est.Q[None], R_t, model.a0, model.P0)
    assert res.table.loc["mle_vol", "log score"] == pytest.approx(ref.loglik_t[168:].mean(),
                                                                  rel=1e-8)  # fmt: skip


def test_mle_method_scores_the_filter_run_on_with_training_estimates(two_series):
    # independent: fit the MLE on the first 168 rows with the Bayes model's initial state and
    # burn (one likelihood for both), filter all 240, score rows 168..239
    res = compare_series(two_series, "a", ["f1", "f2"], methods=["mle"], test_size=0.3)
    train = two_series.iloc[:168]
    model = bayes_spec(train, "a", ["f1", "f2"], intercept=True, burn=3)
    fit = fit_mle(train, "a", ["f1", "f2"], burn=3, spec=KalmanSpec.from_parts(model.model))
    np.testing.assert_array_equal(res.fits["mle"].beta0, model.a0)
    np.testing.assert_array_equal(res.fits["mle"].P0, model.P0)
    Z = np.column_stack([np.ones(240), two_series[["f1", "f2"]].to_numpy()])
    y = two_series["a"].to_numpy()
    spec = fit.spec
    m = state_space(y, Z, spec.T.kernel(240, "T"), spec.Q.kernel(240, "Q"), spec.R.kernel(240, "R"),
                    spec.beta0, spec.P0)
    mean, var = kalman_predictive(m)
    ll = -0.5 * (np.log(2 * np.pi * var) + (y - mean) ** 2 / var)
    assert res.table.loc["mle", "log score"] == pytest.approx(ll[168:].mean(), rel=1e-10)
    assert res.table.loc["mle", "n test"] == 72


def test_grid_and_rolling_methods_run_and_training_rows_only_set_hyperparameters(two_series):
    res = compare_series(two_series, "a", ["f1", "f2"], methods=["grid_seed", "rolling_ols"])
    changed = two_series.copy()
    changed.iloc[200:, changed.columns.get_loc("a")] += 0.05  # the test span only
    res2 = compare_series(changed, "a", ["f1", "f2"], methods=["grid_seed"])
    assert res.fits["grid_seed"] == res2.fits["grid_seed"]  # same spec from the same training
    assert set(res.table.index) == {"grid_seed", "rolling_ols"}
    assert np.isfinite(res.table["log score"]).all()


def test_summary_counts_wins_and_differences_across_series():
    tables = {
        "s1": pd.DataFrame({"log score": [1.0, 2.0], "RMSE": [1, 1], "coverage 90%": [0.9, 0.9],
                            "n test": [30, 30]}, index=["bayes", "mle"]),
        "s2": pd.DataFrame({"log score": [3.0, 2.5], "RMSE": [1, 1], "coverage 90%": [0.9, 0.9],
                            "n test": [28, 28]}, index=["bayes", "mle"]),
    }
    from tvbeta.evaluate.compare import SeriesResult

    comp = Comparison({k: SeriesResult(k, t, {}) for k, t in tables.items()}, {}, pd.DataFrame())
    s = comp.summary
    assert list(s["wins"]) == [1, 1]
    assert s.loc["mle", "mean diff vs bayes"] == pytest.approx((1.0 - 0.5) / 2)
    assert s.loc["mle", "se"] == pytest.approx(np.std([1.0, -0.5], ddof=1) / np.sqrt(2))
    assert list(s["n test"]) == [58, 58]  # test steps scored in both series together


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_bayes_comparison_saves_and_reloads_identically(two_series, tmp_path):
    comp = compare_methods(
        two_series, ["a", "b"], ["f1", "f2"], methods=["mle", "bayes", "rolling_ols"],
        bayes=BayesSettings(SamplerSettings(draws=150, tune=150, chains=2, n_paths=20),
                            n_predictive=100),
        progress=False, seed=3,
    )  # fmt: skip
    assert set(comp.summary.index) == {"mle", "bayes", "rolling_ols"}
    comp.save(tmp_path)
    back = Comparison.load(tmp_path)
    for name in ("a", "b"):
        pd.testing.assert_frame_equal(back.tables[name], comp.tables[name])
        for method, fc in comp.series[name].forecasts.items():
            np.testing.assert_array_equal(back.series[name].forecasts[method].log_density,
                                          fc.log_density)
    pd.testing.assert_frame_equal(back.data, comp.data, check_freq=False)
    for name in ("a", "b"):  # the LFO results too, time labels included
        lfo, lfo_back = comp.series[name].lfo, back.series[name].lfo
        pd.testing.assert_series_equal(lfo_back.elpd_i, lfo.elpd_i)
        pd.testing.assert_series_equal(lfo_back.pareto_k, lfo.pareto_k)
        assert lfo_back.refit_rows == lfo.refit_rows and lfo_back.se == lfo.se
    pd.testing.assert_frame_equal(back.lfo_table, comp.lfo_table)
    assert Comparison.load_fit(tmp_path, "a", "bayes").spec.k == 3
    assert Comparison.load_fit(tmp_path, "b", "mle") == comp.series["b"].fits["mle"]
    assert "Summary across series" in comp.to_markdown()


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_bayes_lfo_scores_the_same_test_rows_with_the_posterior_updated(two_series):
    """With refits at every row (threshold 0: exact LFO-CV) the first test row is scored by
    the training posterior itself, so its elpd is the full-draw mixture of the fixed fit."""
    settings = BayesSettings(SamplerSettings(draws=100, tune=100, chains=2, n_paths=0),
                             n_predictive=200, lfo_threshold=0.0)  # fmt: skip
    test_size = 3  # three test rows: three exact refits
    res = compare_series(two_series, "a", ["f1", "f2"], methods=["bayes"], test_size=test_size,
                         bayes=settings, seed=2)  # fmt: skip
    lfo, fit = res.lfo, res.fits["bayes"]
    n_train = len(two_series) - test_size
    assert list(lfo.rows) == [n_train, n_train + 1, n_train + 2]
    assert lfo.refit_rows == (n_train + 1, n_train + 2)
    full = bayes_spec(two_series, "a", ["f1", "f2"], burn=fit.spec.burn)
    ll = full.loglik_terms(fit.system_draws())[:, n_train]
    expected = np.log(np.mean(np.exp(ll)))
    assert lfo.elpd_i.iloc[0] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("intercept", [True, False])
def test_grid_with_one_intercept_setting_follows_the_intercept_argument(two_series, intercept):
    from tvbeta.evaluate.compare import GridSettings

    res = compare_series(two_series, "a", ["f1", "f2"], methods=["grid_seed"],
                         intercept=intercept, grid=GridSettings(try_both_intercepts=False))
    assert res.fits["grid_seed"].intercept is intercept


@pytest.mark.parametrize(("freq", "window"), [("ME", 3 * 12), ("W-FRI", 3 * 52), ("B", 3 * 252)])
def test_default_rolling_window_is_three_years_of_periods(freq, window):
    from tvbeta.evaluate.compare import _default_window

    assert _default_window(pd.date_range("2000-01-01", periods=60, freq=freq)) == window
    assert _default_window(pd.RangeIndex(60)) == 36  # no calendar: 36 rows


# --- missing returns -------------------------------------------------------------------------

GAPS = [*range(12), 100, 180, 200]  # launched a year late, one gap in training, two in test
N_TRAIN = 168


@pytest.fixture(scope="module")
def gappy(two_series):
    """Series "a" with returns missing at GAPS (the test span is rows 168..239), "b" complete;
    every method, Bayes on tiny chains, PSIS-LFO."""
    data = two_series.copy()
    data.iloc[GAPS, data.columns.get_loc("a")] = np.nan
    with pytest.warns(UserWarning) as caught:  # tiny chains: convergence warnings expected
        comp = compare_methods(
            data, ["a", "b"], ["f1", "f2"], test_size=0.3, progress=False, seed=4,
            bayes=BayesSettings(SamplerSettings(draws=150, tune=150, chains=2, n_paths=0),
                                n_predictive=100),
        )  # fmt: skip
    return data, comp, [str(w.message) for w in caught]


def test_every_method_scores_exactly_the_observed_test_returns(gappy):
    data, comp, _ = gappy
    observed = [t for t in range(N_TRAIN, 240) if t not in GAPS]  # 70 of the 72 test rows
    table = comp.tables["a"]
    assert list(table.index) == ["grid_seed", "grid_loglik", "mle", "bayes", "rolling_ols"]
    assert (table["n test"] == 70).all() and (comp.tables["b"]["n test"] == 72).all()
    assert np.isfinite(table[["log score", "RMSE", "coverage 90%", "diff vs bayes"]]).all().all()
    for method, fc in comp.series["a"].forecasts.items():
        np.testing.assert_array_equal(fc.y, data["a"].to_numpy()[observed], err_msg=method)
    assert (comp.summary["n test"] == 142).all()  # 70 + 72 across the two series
    assert list(comp.series["a"].lfo.rows) == observed
    assert comp.lfo_table.loc["a", "n test"] == 70
    summary_md = comp.to_markdown().split("\n\n")[1]  # the summary table, after its title
    assert "n test" in summary_md.splitlines()[0] and "142" in summary_md


def test_each_warning_names_its_series_and_method(gappy):
    """The tiny chains' convergence warnings of series "a" and "b" read alike; each is named
    by its series, as `tvbeta fit` names a target's (a run of 30 series could not tell), and
    by the method that raised it (a menu's four Bayes variants could not tell either)."""
    texts = gappy[2]
    assert texts and all(t.startswith(("a: ", "b: ")) for t in texts), texts
    assert {t[:3] for t in texts} == {"a: ", "b: "}
    assert all(t[3:].startswith(tuple(f"{m}: " for m in METHODS)) for t in texts), texts


def test_rolling_ols_density_is_statsmodels_ols_on_the_last_36_observed_months(gappy):
    """Default window: three years of monthly observations. Step 181 follows the missing
    row 180 and step 201 the missing 200, so their windows reach one row further back."""
    import statsmodels.api as sm
    from scipy import stats

    data, comp, _ = gappy
    fc = comp.series["a"].forecasts["rolling_ols"]
    y = data["a"].to_numpy()
    Z = np.column_stack([np.ones(len(y)), data[["f1", "f2"]].to_numpy()])
    observed = np.flatnonzero(~np.isnan(y))
    scored = observed[observed >= N_TRAIN]
    for t in (N_TRAIN, 181, 201, 239):
        rows = observed[observed < t][-36:]
        res = sm.OLS(y[rows], Z[rows]).fit()
        pred = res.get_prediction(Z[t][None])
        scale = float(np.sqrt(pred.se_mean[0] ** 2 + res.scale))
        want = stats.t.logpdf(y[t], 36 - 3, pred.predicted_mean[0], scale)
        assert fc.log_density[np.flatnonzero(scored == t)[0]] == pytest.approx(want, rel=1e-10)


def test_a_leading_gap_leaves_the_rolling_window_at_three_years_of_observations(two_series):
    """Only 40 training months observed: the default window stays 36 observations, while
    fewer observed training months than that shrink it (to the observed count)."""
    data = two_series.copy()
    data.iloc[:128, data.columns.get_loc("a")] = np.nan  # 40 of 168 training months observed
    res = compare_series(data, "a", ["f1", "f2"], methods=["rolling_ols"])
    assert res.table.loc["rolling_ols", "n test"] == 72
    data.iloc[:140, data.columns.get_loc("a")] = np.nan  # 28 observed: the window is 28
    short = compare_series(data, "a", ["f1", "f2"], methods=["rolling_ols"])
    y = data["a"].to_numpy()
    Z = np.column_stack([np.ones(240), data[["f1", "f2"]].to_numpy()])
    import statsmodels.api as sm

    res = sm.OLS(y[140:168], Z[140:168]).fit()  # the 28 observed months before row 168
    mean = res.get_prediction(Z[168][None]).predicted_mean[0]
    assert short.forecasts["rolling_ols"].mean[0] == pytest.approx(mean, rel=1e-10)


def test_settings_record_the_burn_and_rolling_window_used_and_the_repr_is_short(two_series):
    """Defaults: burn K = 3 (two factors + intercept) and three years of monthly returns (36),
    capped by the observed training returns; "a" with only 28 observed training months (counted
    by pandas) uses 28, so the settings give the window per series."""
    data = two_series.copy()
    data.iloc[:140, data.columns.get_loc("a")] = np.nan
    comp = compare_methods(data, ["a", "b"], ["f1", "f2"], methods=["rolling_ols"],
                           progress=False)  # fmt: skip
    n_train = comp.settings["n_train"]
    assert comp.settings["burn"] == 3
    assert comp.settings["rolling_window"] == {"a": int(data["a"].iloc[:n_train].notna().sum()),
                                               "b": 36}  # fmt: skip
    same = compare_methods(data, ["b"], ["f1", "f2"], methods=["rolling_ols"], progress=False)
    assert same.settings["rolling_window"] == 36
    text = repr(same)
    first, last = data.index[0].strftime("%Y-%m-%d"), data.index[-1].strftime("%Y-%m-%d")
    assert f"{len(data)} rows {first} .. {last}" in text and "rolling_window=36" in text
    assert len(text) < 400 and text.count("\n") <= 2


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_each_series_is_validated_once_in_a_comparison_of_every_method(two_series, monkeypatch):
    """`prepare_design` (our own function, wrapped by a counting spy on every module that
    holds it) runs once per series: the training span and the forecasts reuse that design."""
    import sys
    from collections import Counter

    import tvbeta.data.validate as validate

    calls: Counter = Counter()
    real = validate.prepare_design

    def spy(df, target_col, *args, **kwargs):
        calls[target_col] += 1
        return real(df, target_col, *args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("tvbeta") and getattr(module, "prepare_design", None) is real:
            monkeypatch.setattr(module, "prepare_design", spy)
    settings = BayesSettings(SamplerSettings(draws=30, tune=20, chains=1, n_paths=2),
                             n_predictive=10, lfo_threshold=0.7)  # fmt: skip
    comp = compare_methods(
        two_series, ["a", "b"], ["f1", "f2"], bayes=settings, progress=False,
        methods=["grid_seed", "grid_loglik", "mle", "bayes", "rolling_ols"],
    )  # fmt: skip
    assert all(comp.series[t].lfo is not None for t in ("a", "b"))  # LFO ran
    assert calls == {"a": 1, "b": 1}


def test_the_prior_table_is_parsed_once_per_comparison_and_reaches_every_series(two_series,
                                                                                monkeypatch):
    """Two series with mle: `Priors.from_dict` runs once (the settings' check, at the entry),
    not per series and per fit; each MLE still uses the given priors: its P0 is bayes_spec's
    with `Priors(initial_sd_scale=5.0)` built directly (no dict), on the 168 training rows."""
    from tvbeta.estimate.bayes.priors import Priors

    calls = []
    parse = Priors.from_dict.__func__
    monkeypatch.setattr(Priors, "from_dict",
                        classmethod(lambda cls, d: calls.append(d) or parse(cls, d)))
    settings = BayesSettings(priors={"initial_sd_scale": 5.0})
    comp = compare_methods(two_series, ["a", "b"], ["f1", "f2"], methods=["mle"], bayes=settings,
                           progress=False)  # fmt: skip
    assert calls == [{"initial_sd_scale": 5.0}]
    for target in ("a", "b"):
        model = bayes_spec(two_series.iloc[:168], target, ["f1", "f2"],
                           priors=Priors(initial_sd_scale=5.0))
        assert not np.array_equal(model.P0, bayes_spec(two_series.iloc[:168], target,
                                                       ["f1", "f2"]).P0)  # the prior matters
        np.testing.assert_array_equal(comp.series[target].fits["mle"].P0, model.P0)


def test_differences_against_any_reference_are_means_across_series_with_their_se():
    """Hand-made scores of three series: a - b = 0.1, 0.2, 0.6, mean 0.3, sd 0.2646 (numpy by
    hand: sqrt(((−0.2)² + (−0.1)² + 0.3²) / 2)), se = sd / sqrt(3)."""
    from tvbeta.evaluate.comparison import Comparison, SeriesResult

    scores = {"s1": (1.1, 1.0), "s2": (0.7, 0.5), "s3": (2.0, 1.4)}
    series = {name: SeriesResult(name, pd.DataFrame({"log score": list(v), "RMSE": [1.0, 1.0],
                                                     "coverage 90%": [0.9, 0.9], "n test": [5, 5]},
                                                    index=pd.Index(["a", "b"], name="method")), {})
              for name, v in scores.items()}  # fmt: skip
    d = Comparison(series, {}, pd.DataFrame()).differences("b")
    assert d.loc["a", "mean diff vs b"] == pytest.approx(0.3)
    assert d.loc["a", "se"] == pytest.approx(np.sqrt(0.07) / np.sqrt(3))
    assert d.loc["b", "mean diff vs b"] == 0.0
    with pytest.raises(KeyError, match="'c' is not a method"):
        Comparison(series, {}, pd.DataFrame()).differences("c")


def test_every_variant_has_its_bayes_method_and_an_mle_unless_it_only_changes_the_prior():
    """The table of variants spells the methods: bayes + suffix for each, mle + suffix unless the
    variant's options are priors (the horseshoe has no MLE)."""
    from tvbeta.evaluate.settings import BAYES_VARIANTS, METHODS, VARIANTS

    assert VARIANTS["_shrink"] == {"shrinkage": "horseshoe"}
    assert BAYES_VARIANTS == ("bayes", "bayes_vol", "bayes_shrink", "bayes_mr", "bayes_vol_mr")
    assert [m for m in METHODS if m.startswith("mle")] == ["mle", "mle_vol", "mle_mr",
                                                           "mle_vol_mr"]


def test_mle_shrink_is_no_method_and_the_error_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['mle_shrink'\]; choose from "
                                         r"\[.*'mle', 'mle_vol', .*'bayes_shrink'"):
        compare_series(pd.DataFrame(), "a", ["f1"], methods=["mle_shrink"])


def test_bayes_shrink_with_a_full_q_is_refused_before_anything_is_fitted():
    with pytest.raises(ValueError, match=r"method 'bayes_shrink': shrinkage=\"horseshoe\" is a "
                                         r"prior on the sds of a diagonal Q"):
        compare_series(pd.DataFrame(), "a", ["f1"], methods=["bayes_shrink"],
                       bayes=BayesSettings(q="full"))


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_bayes_shrink_is_the_horseshoe_at_target_accept_0_9_and_is_stacked(two_series):
    """The default settings say 0.8; the horseshoe's fit runs at its floor 0.9 (divergences at
    0.8, `horseshoe_sigma_beta`), the plain Bayes at 0.8; both enter the stacking."""
    settings = BayesSettings(SamplerSettings(draws=100, tune=100, chains=2, n_paths=0),
                             n_predictive=50, lfo_threshold=None)  # fmt: skip
    res = compare_series(two_series, "a", ["f1", "f2"],
                         methods=["bayes", "bayes_shrink", "bayes_stacked"], bayes=settings,
                         seed=1)  # fmt: skip
    shrink, plain = res.fits["bayes_shrink"], res.fits["bayes"]
    assert shrink.spec.shrinkage == "horseshoe" and "shrink_tau" in shrink.tree["posterior"]
    assert shrink.settings["target_accept"] == 0.9 and plain.settings["target_accept"] == 0.8
    weights = res.table["stacking weight"].dropna()
    assert list(weights.index) == ["bayes", "bayes_shrink"]
    assert weights.sum() == pytest.approx(1.0)


def test_mle_mr_forecasts_with_statsmodels_filter_of_the_augmented_model(two_series):
    """``mle_mr``: the MLE of mean-reverting betas (`fit_qr_mean_reverting` on the training
    rows), then the filter of [beta; mu] runs on through the test rows; its log scores equal
    statsmodels' one-step predictive densities of that model at the estimate (T(phi) from
    tests/kalman/models.py). The fit kept is the spec at that estimate."""
    from tests.kalman.models import mean_reverting_transition
    from tvbeta.estimate.bayes.model import bayes_spec
    from tvbeta.estimate.mle import MLEConvergenceWarning, fit_qr_mean_reverting
    from tvbeta.estimate.statsmodels_twin import statsmodels_filter

    res = compare_series(two_series, "a", ["f1", "f2"], methods=["mle_mr"], seed=0)
    split = Split.from_test_size(len(two_series), 0.3)
    full = bayes_spec(two_series, "a", ["f1", "f2"], burn=3, betas="mean_reverting")
    train = bayes_spec(two_series.iloc[: split.n_train], "a", ["f1", "f2"], burn=3,
                       betas="mean_reverting")  # fmt: skip
    k = train.k
    m = state_space(train.y, train.Z, np.eye(k)[None], np.zeros((1, k, k)), [1.0], train.a0,
                    train.P0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        est = fit_qr_mean_reverting(m, ppy=train.ppy, burn=3)
    T = mean_reverting_transition(est.params[-k:])
    Q = np.zeros((2 * k, 2 * k))
    Q[:k, :k] = est.Q
    P0 = np.zeros((2 * k, 2 * k))
    P0[:k, :k] = P0[k:, k:] = train.P0
    ref = statsmodels_filter(full.y, np.hstack([full.Z, 0 * full.Z]), T[None], Q[None], [est.R],
                             np.r_[train.a0, train.a0], P0)  # fmt: skip
    np.testing.assert_allclose(res.forecasts["mle_mr"].log_density,
                               ref.loglik_t[split.n_train :], rtol=1e-9)  # fmt: skip
    kept = res.fits["mle_mr"]  # the fit is kept, as mle's: the spec at the estimate, with phi
    np.testing.assert_allclose(kept.phi, est.params[-k:], rtol=1e-12)
    np.testing.assert_allclose(kept.Q.values, est.Q, rtol=1e-12)


def test_mle_vol_mr_forecasts_with_statsmodels_filter_at_per_step_noise(two_series):
    """``mle_vol_mr``: `fit_qr_mean_reverting` with the training rows' variance index, then the
    augmented filter through the test rows with R_t = R h_t^gamma (the index known at t-1,
    centred on the training rows): log scores equal statsmodels' one-step predictive densities
    of that model at the estimate."""
    from tests.kalman.models import mean_reverting_transition
    from tvbeta.estimate.bayes.model import bayes_spec
    from tvbeta.estimate.mle import MLEConvergenceWarning, fit_qr_mean_reverting
    from tvbeta.estimate.statsmodels_twin import statsmodels_filter

    res = compare_series(two_series, "a", ["f1", "f2"], methods=["mle_vol_mr"], seed=0)
    split = Split.from_test_size(len(two_series), 0.3)
    full = bayes_spec(two_series, "a", ["f1", "f2"], burn=3)
    train = bayes_spec(two_series.iloc[: split.n_train], "a", ["f1", "f2"], burn=3,
                       betas="mean_reverting", noise="volatility")  # fmt: skip
    k = train.k
    m = state_space(train.y, train.Z, np.eye(k)[None], np.zeros((1, k, k)), [1.0], train.a0,
                    train.P0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        est = fit_qr_mean_reverting(m, ppy=train.ppy, burn=3, log_h=train.log_h)
    R_t = est.R * np.exp(est.params[-k - 1] * train.noise_index.log_h(full.y, full.Z))
    Q = np.zeros((2 * k, 2 * k))
    Q[:k, :k] = est.Q
    P0 = np.zeros((2 * k, 2 * k))
    P0[:k, :k] = P0[k:, k:] = train.P0
    ref = statsmodels_filter(full.y, np.hstack([full.Z, 0 * full.Z]),
                             mean_reverting_transition(est.params[-k:])[None], Q[None], R_t,
                             np.r_[train.a0, train.a0], P0)  # fmt: skip
    np.testing.assert_allclose(res.forecasts["mle_vol_mr"].log_density,
                               ref.loglik_t[split.n_train :], rtol=1e-9)  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_bayes_vol_mr_samples_gamma_and_phi(two_series):
    settings = BayesSettings(SamplerSettings(draws=60, tune=60, chains=2, n_paths=0),
                             n_predictive=30, lfo_threshold=None)  # fmt: skip
    res = compare_series(two_series, "a", ["f1", "f2"], methods=["bayes_vol_mr"],
                         bayes=settings, seed=1)  # fmt: skip
    fit = res.fits["bayes_vol_mr"]
    assert fit.spec.betas == "mean_reverting" and fit.spec.noise == "volatility"
    assert {"phi", "gamma"} <= set(fit.tree["posterior"].data_vars)
    assert np.isfinite(res.table.loc["bayes_vol_mr", "log score"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_bayes_mr_samples_phi_and_enters_the_stacking(two_series):
    settings = BayesSettings(SamplerSettings(draws=100, tune=100, chains=2, n_paths=0),
                             n_predictive=50, lfo_threshold=None)  # fmt: skip
    res = compare_series(two_series, "a", ["f1", "f2"],
                         methods=["bayes", "bayes_mr", "bayes_stacked"], bayes=settings,
                         seed=1)  # fmt: skip
    fit = res.fits["bayes_mr"]
    assert fit.spec.betas == "mean_reverting" and "phi" in fit.tree["posterior"]
    weights = res.table["stacking weight"].dropna()
    assert list(weights.index) == ["bayes", "bayes_mr"]
    assert weights.sum() == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_each_bayes_variant_gets_its_training_loo_per_term_from_arviz(two_series):
    """"train LOO" and its se: ArviZ's PSIS-LOO (`az.loo`) of each variant's own fit, divided
    by its likelihood terms, one per training row after the burn-in (168 training rows - 3)."""
    import arviz as az

    settings = BayesSettings(SamplerSettings(draws=100, tune=100, chains=2, n_paths=0),
                             n_predictive=50, lfo_threshold=None)  # fmt: skip
    res = compare_series(two_series, "a", ["f1", "f2"], burn=3,
                         methods=["bayes", "bayes_vol", "bayes_stacked"], bayes=settings,
                         seed=2)  # fmt: skip
    for method in ("bayes", "bayes_vol"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            loo = az.loo(res.fits[method].tree)
        assert res.table.at[method, "train LOO"] == pytest.approx(loo.elpd / 165, rel=1e-12)
        assert res.table.at[method, "train LOO se"] == pytest.approx(loo.se / 165, rel=1e-12)
    assert np.isnan(res.table.at["bayes_stacked", "train LOO"])


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_training_lfo_scores_each_variant_on_training_rows_without_reading_the_test_rows(
        two_series):  # fmt: skip
    """``lfo_train=0.5``: every Bayes variant gets "train LFO", PSIS-LFO from a posterior on the
    first 84 of the 168 training rows; the same when every test row is changed (they are
    never read), and equal to `lfo_cv` run on the training rows alone."""
    from tvbeta.evaluate.lfo import lfo_cv

    settings = BayesSettings(SamplerSettings(draws=100, tune=100, chains=2, n_paths=0),
                             n_predictive=50, lfo_threshold=None, lfo_train=0.5)  # fmt: skip
    changed = two_series.copy()
    changed.iloc[168:, changed.columns.get_loc("a")] *= -3.0
    res, res2 = (compare_series(d, "a", ["f1", "f2"], burn=3, methods=["bayes", "bayes_vol"],
                                bayes=settings, seed=2) for d in (two_series, changed))
    for method in ("bayes", "bayes_vol"):
        assert res.table.at[method, "train LFO"] == res2.table.at[method, "train LFO"]
        assert res.table.at[method, "train LFO refits"] >= 1  # the posterior on 84 rows
        fit = res.fits[method]
        ref = lfo_cv(fit, n_train=84, threshold=0.7)
        assert len(ref.rows) == 168 - 84
        assert res.table.at[method, "train LFO"] == pytest.approx(ref.elpd / 84, rel=1e-12)
