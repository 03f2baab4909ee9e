"""FundRunner and ModelComparisonEngine: best model per fund, parallel = serial, accessors."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pandas as pd
import pytest
from tests.estimate import seed_grid_reference as ref

from tvbeta.estimate.funds import AUTO_PROCESS_WORK, FundRunner, ModelComparisonEngine
from tvbeta.estimate.grid import best_spec, run_kalman_grid_search
from tvbeta.evaluate import MODEL_DIAGNOSTIC_COLUMNS, summarize_model_diagnostics
from tvbeta.model import KalmanEngine, KalmanResult, KalmanSpec

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


def test_fund_runner_runs_the_spec_and_labels_it(frame):
    spec = KalmanSpec(K=2).set_intercept().set_R_from_ols(frame[F], frame["fund2"])
    result = FundRunner(frame, "fund2", F, burn=BURN).run(spec, label="my label")
    assert result.meta["Fund"] == "fund2" and result.meta["Spec Label"] == "my label"
    expected = KalmanEngine(spec).run(frame, "fund2", F, burn=BURN)
    pd.testing.assert_frame_equal(result.beta, expected.beta)


def test_run_all_reruns_each_funds_best_spec(frame, serial):
    for fund in FUNDS:
        entry = serial.results[fund]
        grid = run_kalman_grid_search(frame, fund, F, KalmanSpec(K=2), burn=BURN)
        pd.testing.assert_frame_equal(entry["grid_summary"], grid)
        pd.testing.assert_series_equal(entry["best_row"], grid.iloc[0])
        # the re-run is the best row's own model (the seed re-ran a default spec), so its
        # diagnostics are exactly the best row's
        assert entry["best_spec"] == best_spec(grid)
        result = entry["results"]
        assert isinstance(result, KalmanResult) and result.spec == best_spec(grid)
        got = summarize_model_diagnostics(result)
        expected = grid.loc[[0], list(MODEL_DIAGNOSTIC_COLUMNS)]
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert result.meta["Fund"] == fund
        assert result.meta["Spec Label"] == grid.at[0, "Model Name"]


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


def test_plot_all_stacked_betas_hands_the_runs_to_viz(serial, monkeypatch):
    import tvbeta.viz

    calls = []
    monkeypatch.setattr(tvbeta.viz, "plot_stacked_betas",
                        lambda results, **kw: calls.append((results, kw)) or "figure")  # fmt: skip
    assert serial.plot_all_stacked_betas(show_std=False, n_cols=1, factors=["mkt"]) == "figure"
    results, kw = calls[0]
    assert list(results) == list(FUNDS) and results["fund"] is serial.get_results("fund")
    assert kw == {"show_std": False, "n_cols": 1, "factors": ["mkt"]}
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
