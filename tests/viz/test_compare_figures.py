"""Figures of the method comparison, on small hand-made inputs (no fitting)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tvbeta.viz.compare import (
    BandPath,
    RefValue,
    method_color,
    plot_method_betas,
    plot_pit_histograms,
    plot_qr_posterior,
    plot_score_bars,
    plot_traces,
)


def score_table(scores: dict[str, float], se: dict[str, float]) -> pd.DataFrame:
    t = pd.DataFrame({"log score": scores, "diff se": se})
    t["diff vs bayes"] = t["log score"] - t.loc["bayes", "log score"]
    return t.rename_axis("method")


def test_score_bars_have_one_trace_per_method_and_paired_se_error_bars():
    tables = {
        "a": score_table({"grid_seed": 1.0, "mle": 1.2, "bayes": 1.1},
                         {"grid_seed": 0.03, "mle": 0.02, "bayes": 0.0}),
        "b": score_table({"grid_seed": 2.0, "mle": 1.9, "bayes": 2.1},
                         {"grid_seed": 0.05, "mle": 0.04, "bayes": 0.0}),
    }  # fmt: skip
    fig = plot_score_bars(tables)
    top = [t for t in fig.data if t.yaxis == "y"]
    bottom = [t for t in fig.data if t.yaxis == "y2"]
    assert [t.legendgroup for t in top] == ["grid_seed", "mle", "bayes"]
    assert [t.legendgroup for t in bottom] == ["grid_seed", "mle"]  # no bar of bayes - bayes
    grid = top[0]
    assert list(grid.x) == ["a", "b"] and list(grid.y) == [1.0, 2.0]
    assert list(grid.error_y.array) == [0.03, 0.05]
    assert top[2].error_y.visible is False  # the reference has no paired se
    assert list(bottom[0].y) == pytest.approx([-0.1, -0.1])
    assert grid.marker.color == method_color("grid_seed")


def band(index: pd.Index, states: list[str], level: float) -> BandPath:
    mean = pd.DataFrame(level, index=index, columns=states)
    return BandPath(mean, mean - 0.1, mean + 0.1, "test band")


def test_method_betas_cover_the_union_of_states_and_mark_the_boundary():
    index = pd.date_range("2000-01-07", periods=50, freq="W-FRI")
    paths = {
        "bayes": band(index, ["Intercept", "mkt"], 1.0),
        "grid_seed": band(index, ["mkt"], 2.0),
    }
    fig = plot_method_betas(paths, boundary=index[30])
    titles = [a.text for a in fig.layout.annotations]
    assert "Intercept" in titles and "mkt" in titles and " test →" in titles
    # per method and state: lower, upper (filled to lower), mean
    assert len(fig.data) == 3 * 2 + 3 * 1
    lower, upper, mean = fig.data[:3]
    assert upper.fill == "tonexty" and mean.name.startswith("Bayes")
    assert mean.x[0] == "2000-01-07"  # short date strings keep the file small
    np.testing.assert_allclose(lower.y, 0.9, rtol=1e-6)
    assert sum(s.type == "line" and s.x0 == "2000-08-04" for s in fig.layout.shapes) == 2


def test_method_betas_thin_long_paths_and_keep_the_last_row():
    index = pd.RangeIndex(1000)
    fig = plot_method_betas({"mle": band(index, ["mkt"], 0.5)}, max_points=100)
    x = np.asarray(fig.data[2].x)
    assert len(x) <= 101 and x[-1] == 999 and x[0] == 0


def test_qr_posterior_draws_references_prior_and_per_time_ranges():
    rng = np.random.default_rng(0)
    draws = {"sigma_eps": np.exp(rng.normal(np.log(0.02), 0.1, 2000)),
             "sigma_beta[mkt]": np.exp(rng.normal(np.log(0.01), 0.3, 2000))}  # fmt: skip
    refs = {
        "mle": {"sigma_eps": RefValue(0.021, 0.021, 0.021), "sigma_beta[mkt]": RefValue(0, 0, 0)},
        "grid_seed": {"sigma_beta[mkt]": RefValue(0.05, 0.01, 0.2)},
    }
    prior = stats.halfnorm(scale=0.05)
    fig = plot_qr_posterior(draws, references=refs, prior_cdfs={"sigma_eps": prior.cdf})
    names = [t.name for t in fig.data]
    assert names.count("posterior") == 2 and names.count("prior") == 1
    mle_line = next(t for t in fig.data if t.name == "MLE")
    assert list(mle_line.x) == [0.021, 0.021]
    grid = [t for t in fig.data if t.legendgroup == "grid_seed"]
    assert list(grid[0].x) == [0.05, 0.05] and list(grid[1].x) == [0.01, 0.2]  # line, range
    # a zero variance cannot sit on a log axis: it is named instead
    assert any("MLE = 0" in (a.text or "") for a in fig.layout.annotations)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    # the histogram is a share of draws: it sums to (almost) 1 over the bins
    post = fig.data[0]
    assert np.sum(np.asarray(post.y)[:-1]) == pytest.approx(1.0, abs=0.02)
    # the prior's bins hold its probability, on the same scale
    prior_trace = next(t for t in fig.data if t.name == "prior")
    x = np.asarray(prior_trace.x)
    assert np.sum(np.asarray(prior_trace.y)[:-1]) == pytest.approx(
        prior.cdf(x[-1]) - prior.cdf(x[0])
    )


def test_pit_histograms_are_densities_with_the_uniform_band():
    rng = np.random.default_rng(1)
    fig = plot_pit_histograms({"bayes": rng.uniform(size=200), "mle": rng.uniform(size=50)})
    for trace in fig.data:
        assert np.mean(trace.y) == pytest.approx(1.0)  # density over 10 equal bins
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 2
    half = 2 * np.sqrt(0.9 / 20)  # 200 draws, 10 bins: +/- 2 sd of a bin's density
    assert rects[0].y1 - 1 == pytest.approx(half)


def test_traces_one_line_per_chain_thinned():
    draws = {"sigma_eps": np.ones((3, 1000)), "sigma_beta[mkt]": np.zeros((3, 1000))}
    fig = plot_traces(draws, max_draws=200)
    assert len(fig.data) == 6
    assert [t.showlegend for t in fig.data[:3]] == [True] * 3
    assert len(fig.data[0].x) <= 201
