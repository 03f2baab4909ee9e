"""FundRunner and ModelComparisonEngine: best model per fund, parallel = serial, accessors."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from tests.estimate import seed_grid_reference as ref
from tvbeta.evaluate import summarize_model_diagnostics
from tvbeta.funds import AUTO_PROCESS_WORK, FundRunner, ModelComparisonEngine
from tvbeta.model import KalmanResult, KalmanSpec

FUNDS = ("fund", "fund2")
F = ref.FACTORS
BURN = 12


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return ref.simulate_funds(seed=11, n=140, funds=FUNDS)


@pytest.fixture(scope="module")
def serial(frame) -> ModelComparisonEngine:
    engine = ModelComparisonEngine(frame, FUNDS, F, burn=BURN, executor=None, progress=False)
    engine.run_all()
    return engine


def seed_best_run(frame: pd.DataFrame, fund: str, spec: KalmanSpec, name: str) -> dict:
    """The seed reference's run of the grid model ``name`` (its own equations and setters),
    with tvbeta's MLE scalars plugged in (the searches differ in the last digits)."""
    intercept, q_name, r_name = (part.split("=")[1] for part in name.split(", ")[:3])
    fixed = {"q": spec.q_scalar, "r": spec.r_scalar}
    seed = ref.seed_spec(frame, fund, F, intercept == "Yes", q_name, r_name, fixed)
    return ref.seed_run(seed, frame, fund, F, burn=BURN)


def test_fund_runner_runs_the_spec_and_labels_it(frame):
    """Reference: the seed's filter with its OLS R (seed_grid_reference), same spec."""
    spec = KalmanSpec(K=2).set_intercept().set_R_from_ols(frame[F], frame["fund2"])
    result = FundRunner(frame, "fund2", F, burn=BURN).run(spec, label="my label")
    assert result.meta["Fund"] == "fund2" and result.meta["Spec Label"] == "my label"
    seed = ref.SeedSpec(2).set_intercept().set_R_from_ols(frame[F], frame["fund2"])
    expected = ref.seed_run(seed, frame, "fund2", F, burn=BURN)
    assert list(result.beta.columns) == expected["states"]
    assert result.beta.index.equals(expected["index"])
    # atol: the seed's inverse of a diffuse P0 (1e6) blurs the intercept at ~1e-8
    np.testing.assert_allclose(result.beta.to_numpy(), expected["beta"], rtol=1e-8, atol=1e-7)
    assert result.log_likelihood == pytest.approx(expected["log_likelihood"], rel=1e-8)


def test_run_all_reruns_each_funds_best_spec(frame, serial):
    """Reference: the seed's grid rebuilt naively (seed_grid_reference), its first row by
    Mean RMSE, and the seed's filter run of that row's model."""
    for fund in FUNDS:
        entry = serial.results[fund]
        scalars = {n: {"q": s.q_scalar, "r": s.r_scalar}
                   for n, s in entry["grid_summary"].attrs["specs"].items()}  # fmt: skip
        seed_table, _ = ref.seed_grid(frame, fund, F, burn=BURN, scalars=scalars)
        best = seed_table.iloc[0]
        assert entry["best_row"]["Model Name"] == best["Model Name"]
        # the re-run is the best row's own model (the seed re-ran a default spec), so its
        # betas and diagnostics are those of the reference's first row
        result = entry["results"]
        assert isinstance(result, KalmanResult) and result.spec == entry["best_spec"]
        run = seed_best_run(frame, fund, result.spec, best["Model Name"])
        np.testing.assert_allclose(result.beta.to_numpy(), run["beta"], rtol=1e-6, atol=1e-7)
        got = summarize_model_diagnostics(result).iloc[0]
        for col in ("Mean RMSE", "Cumulative Log-Likelihood", "Mean Drift Norm"):
            assert got[col] == pytest.approx(best[col], rel=1e-6), col
        assert result.meta["Fund"] == fund
        assert result.meta["Spec Label"] == best["Model Name"]


def _assert_same(a: ModelComparisonEngine, b: ModelComparisonEngine) -> None:
    assert list(a.results) == list(b.results)
    for fund in a.results:
        ga, gb = a.results[fund]["grid_summary"], b.results[fund]["grid_summary"]
        pd.testing.assert_frame_equal(ga, gb, check_exact=True)
        assert a.results[fund]["best_spec"] == b.results[fund]["best_spec"]
        for key in ("beta", "residuals", "log_likelihood_t"):
            ra, rb = a.results[fund]["results"][key], b.results[fund]["results"][key]
            assert ra.equals(rb)


def test_process_pool_equals_serial(frame, serial):
    parallel = ModelComparisonEngine(frame, FUNDS, F, burn=BURN, executor="process",
                                     progress=False)  # fmt: skip
    parallel.run_all()
    _assert_same(parallel, serial)


def test_any_executor_equals_serial(frame, serial):
    with ThreadPoolExecutor(2) as pool:
        threaded = ModelComparisonEngine(frame, FUNDS, F, burn=BURN, executor=pool,
                                         progress=False)  # fmt: skip
        threaded.run_all()
    _assert_same(threaded, serial)


def test_accessors(serial):
    rows = serial.get_best_specs()
    assert list(rows) == list(FUNDS)
    assert all(rows[f]["Model Name"] == serial.results[f]["best_row"]["Model Name"] for f in FUNDS)
    specs = serial.get_best_specs(as_spec=True)
    assert all(isinstance(s, KalmanSpec) for s in specs.values())
    summaries = serial.get_all_summaries()
    assert len(summaries) == 36 and summaries["Fund"].tolist() == ["fund"] * 18 + ["fund2"] * 18
    exposures = serial.compare_exposures()
    n_states = [len(serial.get_results(f).state_names) for f in FUNDS]
    assert exposures["Fund"].tolist() == ["fund"] * n_states[0] + ["fund2"] * n_states[1]
    stacked = serial.stack_betas()
    expected = [f"{s} ({f})" for f in FUNDS for s in serial.get_results(f).state_names]
    assert list(stacked.columns) == expected
    assert serial.get_results("no such fund") is None


def test_plot_all_stacked_betas_draws_each_funds_best_betas(frame, serial):
    """The real figure: one line per fund, its y the seed reference's filtered beta of the
    fund's best model (seed_grid_reference's filter and setters)."""
    fig = serial.plot_all_stacked_betas(show_std=False, n_cols=1, factors=["mkt"])
    assert [t.name for t in fig.data] == list(FUNDS)
    for trace, fund in zip(fig.data, FUNDS, strict=True):
        entry = serial.results[fund]
        run = seed_best_run(frame, fund, entry["best_spec"], entry["best_row"]["Model Name"])
        mkt = run["states"].index("mkt")
        np.testing.assert_allclose(np.asarray(trace.y, float), run["beta"][:, mkt], rtol=1e-6)
    with pytest.raises(ValueError, match="run_all"):
        ModelComparisonEngine(pd.DataFrame(), FUNDS, F).plot_all_stacked_betas()


def test_progress_messages(frame, capsys):
    engine = ModelComparisonEngine(frame, FUNDS[:1], F, burn=BURN, executor="serial")
    engine.run_all(r_setters={"ols": KalmanSpec.set_R_from_ols})
    assert "Running Kalman filter for fund..." in capsys.readouterr().out


def test_process_pool_refuses_lambdas(frame):
    engine = ModelComparisonEngine(frame, FUNDS, F, burn=BURN, executor="process", progress=False)
    with pytest.raises(TypeError, match="pickle"):
        engine.run_all(q_setters={"x": lambda spec: spec})


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="auto stays serial on one CPU")
def test_auto_executor_runs_small_jobs_here_and_large_ones_in_processes(frame):
    small = ModelComparisonEngine(frame, FUNDS, F, burn=BURN, progress=False)
    assert small.executor == "auto" and small._executor(()) == (None, False)
    many = [f"fund{i}" for i in range(AUTO_PROCESS_WORK // len(frame) + 1)]
    large = ModelComparisonEngine(frame, many, F, burn=BURN, progress=False)
    pool, owned = large._executor(())
    try:
        assert isinstance(pool, ProcessPoolExecutor) and owned
    finally:
        pool.shutdown()


def _boom(spec):
    raise ValueError("boom")


def test_a_fund_whose_every_combination_fails(frame):
    engine = ModelComparisonEngine(frame, FUNDS, F, burn=BURN, executor=None, progress=False)
    with pytest.raises(RuntimeError, match="boom"):
        engine.run_all(q_setters={"boom": _boom})
