"""`fit_funds`: every fund's MLE or Bayes fit, one task each, one Dataset along ``fund``.

References: each fund's row is the single-fund fit (`fit_mle`, `fit_bayes` with seed + i),
which the estimate tests check against statsmodels; the MLE band is mean -/+ z sd with z from
scipy's normal quantile; the parallel runs (a real Dask LocalCluster of worker processes, a
thread pool) are compared with the serial Dataset to the last bit.
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

import tvbeta.funds as funds_module
from tests.reverting import fast_reverting
from tvbeta.data import DataValidationError, simulate
from tvbeta.estimate.bayes.fit import fit_bayes
from tvbeta.estimate.mle import MLEConvergenceWarning, fit_mle
from tvbeta.funds import fit_funds, style_drift
from tvbeta.kalman import kalman_loglik
from tvbeta.nuts import SamplerSettings
from tvbeta.report.funds import write_funds_report

FACTORS = ["f1", "f2"]
FUNDS = ["a", "b", "c"]
# tiny chains: the draws need not converge, only be the same
TINY = SamplerSettings(draws=40, tune=40, chains=2, n_paths=10)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Three funds on the same two factors: different drifts and noise, known truth."""
    sim = simulate(160, FACTORS, Q=[1e-5, 1e-3, 4e-4], R=1e-3, beta0=[0.0, 1.0, 0.3],
                   intercept=True, seed=3, factor_cov=np.eye(2) * 1e-3)  # fmt: skip
    frame = sim.frame.rename(columns={"y": "a"})
    rng = np.random.default_rng(4)
    for name, beta in (("b", [0.5, -0.2]), ("c", [1.2, 0.8])):
        frame[name] = frame[FACTORS].to_numpy() @ beta + rng.normal(0, 0.02, len(frame))
    return frame


@pytest.fixture(scope="module")
def mle_serial(data) -> xr.Dataset:
    return fit_funds(data, FUNDS, FACTORS)


def fit_bayes_funds(data, **kwargs) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny chains warn
        return fit_funds(data, FUNDS, FACTORS, method="bayes", seed=7, settings=TINY, **kwargs)


@pytest.fixture(scope="module")
def bayes_serial(data) -> xr.Dataset:
    return fit_bayes_funds(data)


def test_each_funds_mle_row_is_that_funds_own_fit(data, mle_serial):
    assert list(mle_serial["fund"].values) == FUNDS
    for fund in FUNDS:
        fit = fit_mle(data, fund, FACTORS)
        row = mle_serial.sel(fund=fund)
        np.testing.assert_array_equal(row["estimate"], fit.params.to_numpy())
        np.testing.assert_array_equal(row["sd"], fit.se.to_numpy())
        assert list(row["parameter"].values) == list(fit.params.index)
        assert row["loglik"] == fit.estimate.llf and bool(row["converged"])
        np.testing.assert_array_equal(row["beta"], fit.result.beta_smooth.to_numpy())


@pytest.mark.parametrize("order", [["a", "b", "d"], ["a", "d", "b"]])
def test_a_fund_with_a_shorter_history_is_nan_before_it_starts(data, order):
    """Fund d starts 40 rows later: each row is that fund's own fit_mle, d's times before its
    start are NaN, the others' band is whole; the same whether the funds share a task or not
    (funds alike are stacked, the rest joined by xarray)."""
    frame = data.assign(d=data["b"].where(np.arange(len(data)) >= 40))
    out = fit_funds(frame, order, FACTORS)
    xr.testing.assert_identical(fit_funds(frame, order, FACTORS, funds_per_task=3), out)
    assert list(out["fund"].values) == order
    for fund in order:
        fit = fit_mle(frame, fund, FACTORS)
        beta = fit.result.beta_smooth
        row = out.sel(fund=fund)
        np.testing.assert_array_equal(row["beta"].sel(time=beta.index), beta.to_numpy())
        assert row["beta"].isnull().sum() == (out.sizes["time"] - len(beta)) * len(beta.columns)
        np.testing.assert_array_equal(row["estimate"], fit.params.to_numpy())
        assert row["loglik"] == fit.estimate.llf
    assert len(fit_mle(frame, "d", FACTORS).result.beta_smooth) < out.sizes["time"]


def test_the_mle_band_is_the_smoothed_mean_plus_minus_the_normal_quantile_times_the_sd(
        data, mle_serial):  # fmt: skip
    z = norm.ppf(0.95)  # the default level 0.9
    sd = fit_mle(data, "b", FACTORS).result.beta_smooth_sd.to_numpy()
    row = mle_serial.sel(fund="b")
    np.testing.assert_allclose(row["beta_upper"] - row["beta"], z * sd, rtol=1e-12)
    np.testing.assert_allclose(row["beta"] - row["beta_lower"], z * sd, rtol=1e-12)


def test_each_bayes_fund_samples_with_the_seed_plus_its_position(data, bayes_serial):
    """The i-th fund is fit_bayes(seed=7 + i): its posterior median, sd, 90% interval,
    P(alpha > 0) and smoothed beta path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_bayes(data, "c", FACTORS, seed=9, settings=TINY)
    table = fit.qr_summary(0.9)
    row = bayes_serial.sel(fund="c")
    for var, column in (("estimate", "posterior median"), ("sd", "posterior sd"),
                        ("lower", "5%"), ("upper", "95%")):  # fmt: skip
        np.testing.assert_array_equal(row[var], table[column].to_numpy())
    alpha = fit.alpha_probability()
    np.testing.assert_array_equal(row["p_alpha_smoothed"], alpha["smoothed"].to_numpy())
    np.testing.assert_array_equal(row["p_alpha_filtered"], alpha["filtered"].to_numpy())
    np.testing.assert_array_equal(row["beta"],
                                  fit.beta["smoothed_mean"].transpose("time", "state"))


def test_the_mle_forecast_scores_are_statsmodels_one_step_predictive_at_the_estimates(
        data, mle_serial):  # fmt: skip
    """statsmodels' filter at fund b's MLE (Q, R, the seed's a0 and P0) gives v_t and F_t: the
    mean Gaussian log density, RMSE, R² and the 90% interval's coverage of the observed steps
    after the burn, by hand."""
    from tvbeta.estimate.statsmodels_twin import statsmodels_filter

    fit = fit_mle(data, "b", FACTORS)
    m = fit.spec.state_space(fit.result.design.y, fit.result.design.Z)
    ref = statsmodels_filter(m.y, m.Z, m.T, m.Q, m.R, m.a0, m.P0)
    keep = np.flatnonzero(~np.isnan(m.y))[fit.burn :]
    v, F, y = ref.v[keep], ref.F[keep], m.y[keep]
    row = mle_serial.sel(fund="b")

    def assert_close(actual, desired):  # two filters (square-root vs statsmodels) agree to ~1e-9
        np.testing.assert_allclose(actual, desired, rtol=1e-8)

    assert_close(row["forecast_log_score"], norm.logpdf(v, scale=np.sqrt(F)).mean())
    assert_close(row["forecast_rmse"], np.sqrt(np.mean(v**2)))
    assert_close(1 - row["forecast_r2"], np.mean(v**2) / np.var(y))
    assert row["forecast_coverage"] == np.mean(np.abs(v) < norm.ppf(0.95) * np.sqrt(F))


def test_the_bayes_forecast_log_score_mixes_the_pointwise_likelihood_of_200_draws(
        bayes_serial, data):  # fmt: skip
    """A Bayes fund's log score is mean_t log mean_d p(y_t | y_<t, Q_d, R_d) over the draws
    the summary picks (all 80 of the tiny fit): the fit's pointwise log-likelihood group
    (another kernel) mixed by hand."""
    from scipy.special import logsumexp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_bayes(data, "a", FACTORS, seed=7, settings=TINY)
    ll = fit.tree["log_likelihood"]["y"].values.reshape(-1, len(fit.spec.steps))  # (80, m)
    expected = (logsumexp(ll, axis=0) - np.log(len(ll))).mean()
    np.testing.assert_allclose(bayes_serial.sel(fund="a")["forecast_log_score"], expected,
                               rtol=1e-9)  # fmt: skip


def test_a_local_cluster_of_worker_processes_gives_the_serial_datasets(
        data, mle_serial, bayes_serial, dask_client):  # fmt: skip
    before = data.copy(deep=True)
    xr.testing.assert_identical(fit_funds(data, FUNDS, FACTORS, executor=dask_client),
                                mle_serial)  # fmt: skip
    xr.testing.assert_identical(fit_bayes_funds(data, executor=dask_client), bayes_serial)
    pd.testing.assert_frame_equal(data, before)


def test_a_thread_pool_gives_the_serial_dataset(data, mle_serial):
    with ThreadPoolExecutor(2) as pool:
        xr.testing.assert_identical(fit_funds(data, FUNDS, FACTORS, executor=pool), mle_serial)


def test_a_fund_missing_from_the_data_is_refused_before_any_fit(data):
    with pytest.raises(DataValidationError, match=r"target column 'zz' is not in the DataFrame"):
        fit_funds(data, ["a", "zz"], FACTORS)


def test_a_funds_own_error_names_the_fund(data):
    bad = data.assign(b=np.nan)
    with pytest.raises(DataValidationError) as err:
        fit_funds(bad, FUNDS, FACTORS)
    assert err.value.__notes__ == ["(raised by the task of funds from 'b')"]
    with ThreadPoolExecutor(2) as pool, pytest.raises(DataValidationError) as err:
        fit_funds(bad, FUNDS, FACTORS, executor=pool, funds_per_task=2)
    assert err.value.__notes__ == ["(raised by the task of fund 'b')",
                                   "(raised by the task of funds from 'a')"]


def test_funds_grouped_in_tasks_give_the_serial_dataset(data, mle_serial, dask_client):
    for size in (2, 3):
        xr.testing.assert_identical(
            fit_funds(data, FUNDS, FACTORS, executor=dask_client, funds_per_task=size),
            mle_serial)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"targets": []}, "targets is empty"),
    ({"targets": ["a", "b", "a"]}, r"targets lists \['a'\] more than once"),
    ({"method": "grid"}, "method must be 'mle' or 'bayes', got 'grid'"),
    ({"method": "bayes"}, "seed"),
    ({"seed": 1}, "the MLE is deterministic and takes no seed"),
    ({"level": 1.5}, "level"),
    ({"funds_per_task": 0}, "funds_per_task must be a positive integer, got 0"),
])  # fmt: skip
def test_bad_arguments_are_refused_with_what_to_do(data, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        fit_funds(data, **{"targets": FUNDS, "factor_cols": FACTORS, **kwargs})


# --- a store on disk: written as the funds finish, resumed after a stop -----------------------


@pytest.mark.parametrize("per_part", [1, 100])
def test_a_store_returns_the_in_memory_dataset_read_lazily_from_disk(data, mle_serial, tmp_path,
                                                                     monkeypatch, per_part):
    """The MLE's summaries go to parts of `STORE_PART_FUNDS` funds (one part for 3 funds;
    one each with 1), named by the position of their first fund."""
    monkeypatch.setattr(funds_module, "STORE_PART_FUNDS", per_part)
    out = fit_funds(data, FUNDS, FACTORS, store=tmp_path / "run")
    assert out["beta"].chunks is not None  # dask: read from disk as needed, not all in memory
    xr.testing.assert_identical(out.load(), mle_serial.assign_coords(fund=FUNDS))
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names[-1] == "run.json" and len(names) == 1 + (3 if per_part == 1 else 1)
    for i, name in enumerate(names[:-1]):
        assert re.fullmatch(rf"part-00000{i}-[0-9a-f]{{8}}\.zarr", name)


def test_a_stopped_run_resumes_without_refitting_the_funds_it_stored(data, mle_serial, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    """The first run stops at fund b's error after storing a; the second run, with b
    repaired, fits b and c only, and the result is that of one uninterrupted run."""
    store = tmp_path / "run"
    with pytest.raises(DataValidationError):
        fit_funds(data.assign(b=np.nan), FUNDS, FACTORS, store=store)
    assert [p.name[:11] for p in store.glob("part-*")] == ["part-000000"]
    fitted, task = [], funds_module._funds_task
    monkeypatch.setattr(funds_module, "_funds_task",
                        lambda df, targets, *rest: fitted.extend(targets) or task(df, targets,
                                                                                  *rest))
    out = fit_funds(data, FUNDS, FACTORS, store=store)
    assert fitted == ["b", "c"]
    xr.testing.assert_identical(out.load(), mle_serial.assign_coords(fund=FUNDS))


def test_a_store_refuses_funds_whose_returns_changed_since_they_were_stored(data, tmp_path):
    """An updated file must not get last month's fits back: a fund's changed column is named;
    changed dates or factor returns refuse the whole store; the same data resume."""
    store = tmp_path / "run"
    fit_funds(data, FUNDS, FACTORS, store=store)
    fit_funds(data, FUNDS, FACTORS, store=store)  # unchanged: resumes, nothing to fit
    changed = data.assign(b=data["b"] * 1.01)
    with pytest.raises(ValueError, match=r"holds fits of b to other returns than these .* "
                                         r"delete this one to fit them again"):
        fit_funds(changed, FUNDS, FACTORS, store=store)
    fit_funds(changed, ["a", "c"], FACTORS, store=store)  # b not asked for: a and c unchanged
    for other in (data.iloc[:-1], data.assign(f2=data["f2"] + 1e-4)):
        with pytest.raises(ValueError, match=r"holds a run with other data \(data: its dates "
                                             r"or factor returns differ"):
            fit_funds(other, FUNDS, FACTORS, store=store)


def test_a_resumed_bayes_run_keeps_each_funds_seed(data, bayes_serial, tmp_path):
    """Fund a stored by a first run (seed 7, its position 0); a run with another seed is
    refused; the full run fits b and c with seeds 8 and 9, as one run would."""
    store = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_funds(data, ["a"], FACTORS, method="bayes", seed=7, settings=TINY, store=store)
        with pytest.raises(ValueError, match="holds a run with other"):
            fit_funds(data, FUNDS, FACTORS, method="bayes", seed=8, settings=TINY, store=store)
    out = fit_bayes_funds(data, store=store)
    xr.testing.assert_identical(out.load(), bayes_serial.assign_coords(fund=FUNDS))


def test_a_store_of_another_run_is_refused_naming_what_differs(data, tmp_path):
    fit_funds(data, ["a"], FACTORS, store=tmp_path / "run")
    with pytest.raises(ValueError, match=r"holds a run with other factors \(factors=\['f1', "
                                         r"'f2'\]\): give another folder"):
        fit_funds(data, ["a"], ["f1"], store=tmp_path / "run")


# --- style drift and the many-funds page ------------------------------------------------------


def test_style_drift_is_the_one_year_sd_of_each_factor_betas_walk(data, mle_serial):
    """Weekly data (52 periods a year): sqrt(52 Q[factor]) from each fund's own MLE, and the
    z of the largest one's Q: Q over its standard error from an independent second-difference
    Hessian of the log-likelihood (agrees to about 1e-6 here)."""
    drift = style_drift(mle_serial)
    for fund in FUNDS:
        q = fit_mle(data, fund, FACTORS).params
        np.testing.assert_allclose(drift.loc[fund, FACTORS],
                                   np.sqrt(52 * q[[f"Q[{f}]" for f in FACTORS]].to_numpy()),
                                   rtol=1e-12)  # fmt: skip
    assert drift["largest"].is_monotonic_decreasing
    assert (drift["largest"] == drift[FACTORS].max(axis=1)).all()
    assert (drift["factor"] == drift[FACTORS].idxmax(axis=1)).all()
    for fund in FUNDS:
        fit = fit_mle(data, fund, FACTORS)
        name = f"Q[{drift.loc[fund, 'factor']}]"
        se = second_difference_se(fit)
        np.testing.assert_allclose(drift.loc[fund, "z"], fit.params[name] / se[name], rtol=1e-4)


def test_style_drift_names_no_factor_for_a_fund_whose_betas_do_not_drift():
    """Simulated with Q = 0: every drift variance on its lower bound (~0, no standard error),
    so there is no largest factor to name (idxmax would pick one of the ~0 values) and no z."""
    sim = simulate(160, FACTORS, Q=[0.0, 0.0, 0.0], R=1e-3, beta0=[0.0, 1.0, 0.3],
                   intercept=True, seed=3, factor_cov=np.eye(2) * 1e-3)  # fmt: skip
    drift = style_drift(fit_funds(sim.frame, ["y"], FACTORS))
    assert drift.loc["y", "factor"] == "" and np.isnan(drift.loc["y", "z"])
    assert drift.loc["y", "largest"] < 1e-4


def second_difference_se(fit) -> pd.Series:
    """Standard errors from the log-likelihood's Hessian by central second differences.

    The independent reference of the z column: `kalman_loglik` at the estimates (variances
    moved by 1e-3 of themselves), inverted over the parameters not on a bound (those on one
    are held, as the MLE holds them).
    """
    x, design = fit.params.to_numpy(), fit.result.design
    free = np.flatnonzero(~fit.params.index.isin(fit.estimate.on_bound))
    k = design.Z.shape[1]

    def loglik(p):
        return kalman_loglik(design.y, design.Z, np.eye(k)[None], np.diag(p[:k])[None], [p[k]],
                             fit.spec.beta0, fit.spec.P0, burn=fit.burn)  # fmt: skip

    H = np.zeros((free.size, free.size))
    for a, i in enumerate(free):
        for b, j in enumerate(free):
            ei, ej = np.eye(x.size)[i] * 1e-3 * x[i], np.eye(x.size)[j] * 1e-3 * x[j]
            H[a, b] = (loglik(x + ei + ej) - loglik(x + ei - ej) - loglik(x - ei + ej)
                       + loglik(x - ei - ej)) / (4 * 1e-6 * x[i] * x[j])  # fmt: skip
    se = pd.Series(np.nan, index=fit.params.index)
    se.iloc[free] = np.sqrt(np.diag(np.linalg.inv(-H)))
    return se


def many(ds: xr.Dataset, n: int) -> xr.Dataset:
    """n funds made of copies of ds's, renamed, with their drift scaled apart (rank known)."""
    copies = [ds.isel(fund=[i % ds.sizes["fund"]]).assign_coords(fund=[f"f{i:03d}"])
              for i in range(n)]  # fmt: skip
    out = xr.concat(copies, dim="fund", combine_attrs="override")
    return out.assign(estimate=out["estimate"] * xr.DataArray(1.0 + np.arange(n), dims="fund"))


def test_the_funds_page_ranks_500_funds_and_shows_the_ends_only(mle_serial, tmp_path):
    from tests.test_report import Page

    funds = many(mle_serial, 500)
    page = Page(write_funds_report(funds, tmp_path / "funds.html", top=10).read_text())
    assert page.headings["h2"] == ["1. The run", "2. Style drift",
                                   "3. Alpha: probability above zero",
                                   "4. Forecast quality"]  # fmt: skip
    rows = page.tables["drift"][1:]
    expected = list(style_drift(funds).index)
    assert [r[0] for r in rows] == expected[:10] + expected[-10:]
    assert rows[0][0] == "f499" and page.n_figures == 2  # MLE: no alpha figure
    assert "No alpha probabilities" in (tmp_path / "funds.html").read_text()


def test_the_funds_page_ranks_bayes_funds_by_the_last_real_time_alpha_probability(
        bayes_serial, tmp_path):  # fmt: skip
    from tests.test_report import Page

    page = Page(write_funds_report(bayes_serial, tmp_path / "funds.html").read_text())
    last = bayes_serial["p_alpha_filtered"].isel(time=-1).to_pandas().sort_values(
        ascending=False, kind="stable")
    rows = page.tables["alpha"][1:]
    assert [r[0] for r in rows] == list(last.index)
    assert [r[1] for r in rows] == [f"{v:.2f}" for v in last]
    assert page.n_figures == 3


def test_the_funds_page_ranks_funds_by_one_step_r2_and_flags_coverage_off_by_over_5_points(
        mle_serial, tmp_path):  # fmt: skip
    from tests.test_report import Page

    funds = mle_serial.assign(forecast_r2=("fund", [0.2, 0.7, 0.5]),
                              forecast_coverage=("fund", [0.9, 0.8, 0.93]))  # fmt: skip
    path = write_funds_report(funds, tmp_path / "funds.html")
    rows = Page(path.read_text()).tables["forecast"][1:]
    assert [(r[0], r[1], r[2]) for r in rows] == [("b", "0.700", "0.800"), ("c", "0.500", "0.930"),
                                                  ("a", "0.200", "0.900")]  # fmt: skip
    assert "Funds whose coverage is more than 0.05 from 0.90 (in red): 1 of 3" in path.read_text()


def test_a_store_resumed_with_a_fund_put_first_keeps_both_parts(data, mle_serial, tmp_path):
    """Parts are named by position and a random token: fund b stored at position 0 by a first
    run, then a run of (a, b) fits a at position 0 too without overwriting b's part."""
    fit_funds(data, ["b"], FACTORS, store=tmp_path / "run")
    out = fit_funds(data, ["a", "b"], FACTORS, store=tmp_path / "run")
    assert len(list((tmp_path / "run").glob("part-000000-*.zarr"))) == 2
    xr.testing.assert_identical(out.load(), mle_serial.sel(fund=["a", "b"]).assign_coords(
        fund=["a", "b"]))


def test_sampler_settings_can_be_keywords_as_in_fit_bayes(data, bayes_serial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fit_funds(data, FUNDS, FACTORS, method="bayes", seed=7, draws=40, tune=40,
                        chains=2, n_paths=10)  # fmt: skip
    xr.testing.assert_identical(out, bayes_serial)


def test_keywords_the_method_does_not_take_are_refused_before_a_store_is_made(data, tmp_path):
    with pytest.raises(TypeError, match=r"got keyword\(s\) \['foo'\] that method='bayes' does "
                                        r"not take: its model takes \["):
        fit_funds(data, FUNDS, FACTORS, method="bayes", seed=1, foo=1, store=tmp_path / "a")
    with pytest.raises(ValueError, match="the MLE is deterministic and takes no seed or sampler"):
        fit_funds(data, FUNDS, FACTORS, chains=2, store=tmp_path / "b")
    with pytest.raises(TypeError, match=r"\['shrinkage'\] that method='mle' does not take"):
        fit_funds(data, FUNDS, FACTORS, shrinkage="horseshoe", store=tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


def test_the_funds_warnings_come_once_per_kind_naming_the_funds():
    """One MLEConvergenceWarning lists the funds whose own fit_mle warns (phi of betas that
    revert within a month on its bound; a static fund does not warn), with the first one's
    message."""
    mixed = fast_reverting(["r1", "r2"])
    mixed["s"] = mixed[FACTORS].to_numpy() @ [0.8, 0.3] + np.random.default_rng(5).normal(
        0.0, 0.01, len(mixed))  # fmt: skip
    funds = ["s", "r1", "r2"]
    warned = []
    for fund in funds:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit_mle(mixed, fund, FACTORS, betas="mean_reverting")
        warned += [(fund, str(w.message)) for w in caught if w.category is MLEConvergenceWarning]
    assert [fund for fund, _ in warned] == ["r1", "r2"]
    with pytest.warns(MLEConvergenceWarning) as record:
        fit_funds(mixed, funds, FACTORS, betas="mean_reverting")
    messages = [str(w.message) for w in record if w.category is MLEConvergenceWarning]
    names = ", ".join(f"fund {fund!r}" for fund, _ in warned)
    assert messages == [f"{len(warned)} warnings of this kind, from {names}; the first: "
                        f"fund {warned[0][0]!r}: {warned[0][1]}"]


def test_the_funds_warnings_from_dask_workers_point_at_the_callers_line(dask_client):
    """Not at the worker's task runner (distributed's or dask's code), where nothing can be
    changed: at the line that called fit_funds."""
    with pytest.warns(MLEConvergenceWarning) as record:
        fit_funds(fast_reverting(["r1", "r2"]), ["r1", "r2"], FACTORS, betas="mean_reverting",
                  executor=dask_client)  # fmt: skip
    assert {w.filename for w in record if w.category is MLEConvergenceWarning} == {__file__}


def test_a_store_that_holds_every_fund_returns_them_without_a_task(data, mle_serial, tmp_path):
    """Resumed on an executor with nothing left to fit (the grouping of no fund is no task)."""
    fit_funds(data, FUNDS, FACTORS, store=tmp_path / "run")
    with ThreadPoolExecutor(2) as pool:
        out = fit_funds(data, FUNDS, FACTORS, executor=pool, store=tmp_path / "run")
    xr.testing.assert_identical(out.load(), mle_serial.assign_coords(fund=FUNDS))
