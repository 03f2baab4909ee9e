"""`compare_methods` on an executor: one task per series, the serial numbers to the last bit.

The reference is always the same comparison run here, serially (series i has seed + i either
way); only the fit times, which are wall clock, may differ. No mock: a real Dask LocalCluster
of worker processes and a real ThreadPoolExecutor.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import DataValidationError, simulate
from tvbeta.evaluate.compare import BayesSettings, compare_methods
from tvbeta.nuts import SamplerSettings

FACTORS = ["f1", "f2"]
# a tiny Bayes fit (its draws need not converge, only be the same); no LFO: 60 draws are too
# few for Pareto smoothing
TINY_BAYES = BayesSettings(SamplerSettings(draws=30, tune=30, chains=2, n_paths=0),
                           lfo_threshold=None)  # fmt: skip
METHODS = ["grid_seed", "mle", "bayes", "rolling_ols"]


@pytest.fixture(scope="module")
def two_series() -> pd.DataFrame:
    frames = []
    for seed, name in ((1, "a"), (2, "b")):
        sim = simulate(240, 2, Q=[1e-3, 4e-4], R=1e-3, beta0=[1.0, 0.3], seed=seed,
                       freq="MS", factor_cov=np.eye(2) * 1e-3)  # fmt: skip
        frames.append(sim.frame.rename(columns={"y": name}))
    return pd.concat([frames[0], frames[1][["b"]]], axis=1)


def compare(data: pd.DataFrame, **kwargs):
    with warnings.catch_warnings():  # 30 draws: convergence warnings expected
        warnings.simplefilter("ignore")
        return compare_methods(data, ["a", "b"], FACTORS, **{
            "methods": METHODS, "bayes": TINY_BAYES, "seed": 5, "progress": False, **kwargs})


@pytest.fixture(scope="module")
def serial(two_series):
    return compare(two_series)


def assert_same_numbers(parallel, serial) -> None:
    """Every table and the summary to the last bit, the fit times (wall clock) aside."""
    assert list(parallel.tables) == list(serial.tables)  # the targets' order
    for target, table in serial.tables.items():
        pd.testing.assert_frame_equal(parallel.tables[target].drop(columns="fit time (s)"),
                                      table.drop(columns="fit time (s)"), check_exact=True)
        for method, forecast in serial.series[target].forecasts.items():
            np.testing.assert_array_equal(parallel.series[target].forecasts[method].mean,
                                          forecast.mean)  # fmt: skip
    pd.testing.assert_frame_equal(parallel.summary, serial.summary, check_exact=True)
    assert parallel.settings == serial.settings


def test_a_local_cluster_of_worker_processes_gives_the_serial_tables(two_series, serial,
                                                                     dask_client):  # fmt: skip
    before = two_series.copy(deep=True)
    parallel = compare(two_series, executor=dask_client)
    assert_same_numbers(parallel, serial)
    pd.testing.assert_frame_equal(two_series, before)


def test_pymc_chains_in_a_dask_worker_run_one_after_another_with_the_serial_draws(
        two_series, dask_client):  # fmt: skip
    """PyMC runs parallel chains in child processes, which a daemonic Dask worker cannot start:
    there cores=2 becomes 1, and the draws are those of the serial run with cores=2."""
    pymc = BayesSettings(SamplerSettings(draws=30, tune=30, chains=2, cores=2, sampler="pymc",
                                         n_paths=0), lfo_threshold=None)  # fmt: skip
    runs = {name: compare(two_series, methods=["bayes"], bayes=pymc, executor=executor)
            for name, executor in (("serial", None), ("dask", dask_client))}  # fmt: skip
    assert_same_numbers(runs["dask"], runs["serial"])
    for target in ("a", "b"):
        fits = {name: run.series[target].fits["bayes"] for name, run in runs.items()}
        assert (fits["serial"].settings["cores"], fits["dask"].settings["cores"]) == (2, 1)
        assert fits["dask"].tree["posterior"].equals(fits["serial"].tree["posterior"])


def test_a_thread_pool_gives_the_serial_tables(two_series, serial):
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = compare(two_series, executor=pool)
    assert_same_numbers(parallel, serial)


def test_a_series_on_an_executor_runs_its_chains_one_after_another(two_series):
    """The core budget: cores None becomes 1 in a task; an explicit cores is kept."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        default = compare(two_series, executor=pool)
        kept = compare(two_series, executor=pool,
                       bayes=BayesSettings(SamplerSettings(draws=30, tune=30, chains=2, cores=2,
                                                           n_paths=0), lfo_threshold=None))
    assert [default.series[t].fits["bayes"].settings["cores"] for t in "ab"] == [1, 1]
    assert [kept.series[t].fits["bayes"].settings["cores"] for t in "ab"] == [2, 2]


def test_progress_on_an_executor_hears_each_series_once_when_it_is_done(two_series):
    heard = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        compare_methods(two_series, ["a", "b"], FACTORS, methods=["rolling_ols"], executor=pool,
                        progress=lambda target, step: heard.append((target, step)))  # fmt: skip
    assert sorted(heard) == [("a", None), ("b", None)]


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_failed_series_raises_its_error_naming_the_target(two_series, executor):
    """b has 2 observed returns in its 168 training rows: the whole table passes the checks made
    before fitting, but b's training rows cannot carry the model."""
    data = two_series.copy()
    data.iloc[:166, data.columns.get_loc("b")] = np.nan
    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(DataValidationError, match="too few rows with an observed target") \
                as caught:  # fmt: skip
            compare_methods(data, ["a", "b"], FACTORS, methods=["mle"], progress=False,
                            executor=pool if executor else None)  # fmt: skip
    assert caught.value.__notes__ == ["(raised by the task of target 'b')"]


def test_an_executor_that_is_no_executor_is_refused_before_any_fit(two_series):
    with pytest.raises(TypeError, match=r"executor must be a concurrent.futures.Executor .* got "
                                        r"int"):  # fmt: skip
        compare_methods(two_series, ["a"], FACTORS, methods=["mle"], executor=2)


def test_each_series_leave_future_out_runs_in_its_task_with_the_serial_numbers(two_series,
                                                                                 dask_client):
    """PSIS-LFO of each series (`lfo_cv`, run by `compare_methods` after its Bayes fit) goes
    to the series' task: on the cluster its elpd, Pareto k and refit rows equal the serial
    run's to the last bit. Within a series the refits are sequential by construction (where the
    next one happens depends on the posterior of the last), so the series is the unit of work.
    The threshold is set below series a's largest k-hat without refits (0.48 on one machine,
    under 0.4 on another: the draws follow the CPU's rounding), so it refits in the worker."""
    nuts = SamplerSettings(draws=200, tune=200, chains=2, n_paths=0)
    probe = compare(two_series, methods=["bayes"], bayes=BayesSettings(nuts, lfo_threshold=1.0))
    threshold = 0.9 * float(probe.series["a"].lfo.pareto_k.max())
    lfo = BayesSettings(nuts, lfo_threshold=threshold)
    runs = {name: compare(two_series, methods=["bayes"], bayes=lfo, executor=executor)
            for name, executor in (("serial", None), ("dask", dask_client))}  # fmt: skip
    assert_same_numbers(runs["dask"], runs["serial"])
    for target in ("a", "b"):
        got, expected = runs["dask"].series[target].lfo, runs["serial"].series[target].lfo
        assert got.elpd == expected.elpd and got.refit_rows == expected.refit_rows
        pd.testing.assert_series_equal(got.elpd_i, expected.elpd_i, check_exact=True)
        pd.testing.assert_series_equal(got.pareto_k, expected.pareto_k, check_exact=True)
    assert runs["dask"].series["a"].lfo.n_refits >= 1


def test_a_leave_future_out_refits_warnings_say_they_are_a_refits(two_series):
    """A fresh user read "FundA: Bayesian fit failed convergence checks" in the console while
    the report said every posterior passed: the warning came from an LFO refit. Its warnings
    are named so (2 x (30 + 30) draws cannot pass the checks; the threshold, 0.9 x series a's
    largest k-hat without refits, makes it refit)."""
    nuts = SamplerSettings(draws=30, tune=30, chains=2, n_paths=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = compare_methods(two_series, ["a"], FACTORS, methods=["bayes"], progress=False,
                                bayes=BayesSettings(nuts, lfo_threshold=1.0), seed=5)  # fmt: skip
    threshold = 0.9 * float(probe.series["a"].lfo.pareto_k.max())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = compare_methods(two_series, ["a"], FACTORS, methods=["bayes"], progress=False,
                              bayes=BayesSettings(nuts, lfo_threshold=threshold), seed=5)
    assert run.series["a"].lfo.n_refits >= 1
    refits = [str(w.message) for w in caught
              if str(w.message).startswith("a: bayes, a leave-future-out refit: ")]
    assert any("convergence" in m for m in refits), [str(w.message)[:80] for w in caught]
