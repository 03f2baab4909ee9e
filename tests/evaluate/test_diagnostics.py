"""The seed's summary tables against plain-loop transcriptions of seed_api.md's definitions."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from tests.evaluate import cases
from tests.model.seed_reference import rolling_ols_residual_R, seed_filter
from tvbeta.data import load_seed_weekly
from tvbeta.evaluate import (
    FACTOR_DYNAMICS_COLUMNS,
    MODEL_DIAGNOSTIC_COLUMNS,
    summarize_factor_dynamics,
    summarize_model_diagnostics,
)

RTOL = 1e-12


# --- oracles: the words of seed_api.md, one Python loop each --------------------------------
def naive_model_row(results) -> dict:
    """One row of summarize_model_diagnostics; NaN residuals (missing y) are skipped."""
    res = list(results["residuals"])
    sse, count, rmses = 0.0, 0, []
    for v in res:  # expanding RMSE, carried forward over missing steps
        if not math.isnan(v):
            sse, count = sse + v * v, count + 1
        if count:
            rmses.append(math.sqrt(sse / count))
    factors = [c for c in results["beta"].columns if c != "Intercept"]
    gains = [math.sqrt(sum(g * g for g in row)) for row in
             results["kalman_gain"][factors].itertuples(index=False)]  # fmt: skip
    rows = list(results["beta"][factors].itertuples(index=False))
    drifts = [math.sqrt(sum((a - b) ** 2 for a, b in zip(rows[t], rows[t - 1], strict=True)))
              for t in range(1, len(rows))]  # fmt: skip
    idx = results["residuals"].index
    return {
        "Model Name": results["meta"]["Model Name"],
        "Target": results["meta"]["Target Column"],
        "Date Range": idx[0].strftime("%Y-%m-%d") + " → " + idx[-1].strftime("%Y-%m-%d"),
        "# Observations": count,
        "Final RMSE": rmses[-1],
        # seed_api.md: the root of the mean squared post-burn residual, rounded to 6 decimals
        "Mean RMSE": round(math.sqrt(sse / count), 6),
        "Total SSE": sse,
        "Cumulative Log-Likelihood": math.fsum(results["log_likelihood_t"]),
        "Mean Gain Norm": sum(gains) / len(gains),
        "Mean Drift Norm": sum(drifts) / len(drifts),
    }


def naive_factor_rows(results) -> list[dict]:
    beta, gain, H = results["beta"], results["kalman_gain"], results["H"]
    out = []
    for state in beta.columns:
        b = list(beta[state])
        d = [b[t] - b[t - 1] for t in range(1, len(b))]
        avg, sd = statistics.fmean(b), statistics.stdev(b)
        if state == "Intercept":
            avg_c = final_c = float("nan")
        else:
            c = [bt * ht for bt, ht in zip(b, H[state], strict=True)]
            avg_c, final_c = statistics.fmean(c), c[-1]
        out.append({
            "Model Name": results["meta"]["Model Name"],
            "Target": results["meta"]["Target Column"],
            "Factor": state, "Avg Beta": avg, "Beta Std": sd, "Final Beta": b[-1],
            "Beta Z-Score": (b[-1] - avg) / sd, "Min Beta": min(b), "Max Beta": max(b),
            "Drift Volatility": statistics.stdev(d), "Mean Gain": statistics.fmean(gain[state]),
            "Avg Contribution": avg_c, "Final Contribution": final_c,
        })  # fmt: skip
    return out


def assert_row(actual: pd.Series, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, str) or value is None:
            assert actual[key] == value, key
        elif isinstance(value, float) and math.isnan(value):
            assert math.isnan(actual[key]), key
        else:
            assert actual[key] == pytest.approx(value, rel=RTOL, abs=1e-15), key


# --- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["sim_result", "sim_missing_result", "seed_result"])
def test_model_diagnostics_match_definitions(which, request):
    results = request.getfixturevalue(which)
    table = summarize_model_diagnostics(results)
    assert list(table.columns) == list(MODEL_DIAGNOSTIC_COLUMNS)
    assert len(table) == 1
    assert_row(table.iloc[0], naive_model_row(results))


@pytest.mark.parametrize("which", ["sim_result", "seed_result"])
def test_factor_dynamics_match_definitions(which, request):
    results = request.getfixturevalue(which)
    table = summarize_factor_dynamics(results)
    assert list(table.columns) == list(FACTOR_DYNAMICS_COLUMNS)
    expected = naive_factor_rows(results)
    assert list(table["Factor"]) == [row["Factor"] for row in expected]
    for (_, actual), row in zip(table.iterrows(), expected, strict=True):
        assert_row(actual, row)


def test_seed_case_labels(seed_result):
    table = summarize_model_diagnostics(seed_result)
    row = table.iloc[0]
    weekly = load_seed_weekly()
    assert row["Model Name"] == "Test Model"
    assert row["Target"] == cases.SEED_TARGET
    assert row["# Observations"] == len(weekly) - cases.SEED_BURN
    start, end = weekly.index[cases.SEED_BURN], weekly.index[-1]
    assert row["Date Range"] == f"{start:%Y-%m-%d} → {end:%Y-%m-%d}"
    dyn = summarize_factor_dynamics(seed_result)
    assert list(dyn["Factor"]) == cases.SEED_FACTORS  # no intercept in the notebook's spec
    assert dyn["Avg Contribution"].notna().all()


def test_seed_case_through_a_seed_reference_filter(seed_result):
    """The tables of an independent seed-style run (tests.model.seed_reference) agree."""
    df = load_seed_weekly()
    y = df[cases.SEED_TARGET].to_numpy()
    H = df[cases.SEED_FACTORS].to_numpy()
    R = rolling_ols_residual_R(y, H, 12, 1e-6)
    out = seed_filter(y, H, np.zeros(2), 100 * np.eye(2), np.eye(2),
                      lambda t: 1e-4 * np.eye(2), lambda t: R[t])  # fmt: skip
    b, idx = cases.SEED_BURN, df.index[cases.SEED_BURN:]
    frame = lambda a: pd.DataFrame(a[b:], index=idx, columns=cases.SEED_FACTORS)  # noqa: E731
    ref = {
        "beta": frame(out["beta"]), "kalman_gain": frame(out["kalman_gain"]),
        "residuals": pd.Series(out["residuals"][b:], index=idx),
        "log_likelihood": out["loglik_t"][b:].sum(),
        "log_likelihood_t": pd.Series(out["loglik_t"][b:], index=idx),
        "H": frame(H), "meta": dict(seed_result["meta"]),
    }  # fmt: skip
    for summarize in (summarize_model_diagnostics, summarize_factor_dynamics):
        pd.testing.assert_frame_equal(summarize(ref), summarize(seed_result), rtol=1e-7)


def test_seed_dict_and_result_give_the_same_tables(sim_result):
    seed_dict = cases.as_seed_dict(sim_result)
    for summarize in (summarize_model_diagnostics, summarize_factor_dynamics):
        pd.testing.assert_frame_equal(summarize(seed_dict), summarize(sim_result))


def test_intercept_is_left_out_of_norms_and_contributions(sim_result):
    """Gain and drift norms are over the factors only; no intercept, same numbers."""
    seed_dict = cases.as_seed_dict(sim_result)
    factors = dict(seed_dict)
    for key in ("beta", "kalman_gain"):
        factors[key] = seed_dict[key].drop(columns="Intercept")
    with_intercept = summarize_model_diagnostics(seed_dict).iloc[0]
    without = summarize_model_diagnostics(factors).iloc[0]
    for col in ("Mean Gain Norm", "Mean Drift Norm"):
        assert with_intercept[col] == without[col]
    dyn = summarize_factor_dynamics(seed_dict).set_index("Factor")
    assert np.isnan(dyn.loc["Intercept", ["Avg Contribution", "Final Contribution"]]).all()


def test_model_without_intercept():
    results = cases.run_default(cases.simulated(), intercept=False, name="No Intercept")
    table = summarize_model_diagnostics(results)
    assert_row(table.iloc[0], naive_model_row(results))
    assert list(summarize_factor_dynamics(results)["Factor"]) == cases.FACTORS
