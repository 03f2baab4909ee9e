"""Figures: their traces (count, names, types, data), titles, axes and saved HTML."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import norm

from tests.evaluate import cases
from tvbeta.viz import (
    ALL_PANELS,
    DEFAULT_PANELS,
    PALETTE,
    ModelDiagnosticsPlotter,
    plot_beta_grid,
    plot_factor_contributions,
    plot_filtered_vs_smoothed,
    plot_stacked_betas,
    save_html,
    stack_betas,
)
from tvbeta.viz.diagnostics import PANELS

DEFAULT_TRACES = [
    ("scatter", "Predicted ± 1.96 √F_t"), ("scatter", "Predicted"), ("scatter", "Actual"),
    ("bar", "Residual"), ("scatter", "± 1.96 √F_t"), ("scatter", "Log-likelihood"),
    ("scatter", "Gain norm"), ("scatter", "Drift norm"), ("scatter", "Rolling RMSE (12)"),
    ("scatter", "Expanding RMSE"),
]  # fmt: skip
OPTIONAL_TRACES = [
    ("bar", "ACF"), ("scatter", "± 1.96/√n"), ("histogram", "Residuals"),
    ("scatter", "N(0, 1)"), ("scatter", "Cumulative residual"),
]  # fmt: skip


def kinds(fig) -> list[tuple[str, str]]:
    return [(t.type, t.name) for t in fig.data]


def subplot_titles(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


# --- ModelDiagnosticsPlotter ----------------------------------------------------------------
def test_default_panels(sim_result):
    fig = ModelDiagnosticsPlotter(sim_result).plot()
    assert kinds(fig) == DEFAULT_TRACES
    titles = subplot_titles(fig)
    assert len(titles) == len(DEFAULT_PANELS) == 6
    assert titles[0] == PANELS["actual_vs_predicted"][0]
    assert titles[5].startswith(PANELS["rolling_rmse"][0]) and "12" in titles[5]
    assert fig.layout.title.text == "Model diagnostics: Sim Model — target y"
    assert fig.layout.template.layout.colorway == PALETTE
    assert fig.layout.yaxis.title.text == "return per period"
    assert fig.layout.yaxis3.title.text == "nats"
    # every time panel zooms with the first
    assert [fig.layout[f"xaxis{i}"].matches for i in range(2, 7)] == ["x"] * 5


def test_all_nine_panels(sim_result):
    fig = ModelDiagnosticsPlotter(sim_result).plot(include="all")
    assert kinds(fig) == DEFAULT_TRACES + OPTIONAL_TRACES
    assert len(subplot_titles(fig)) == len(ALL_PANELS) == 9
    assert "standardized" in subplot_titles(fig)[6]
    assert fig.layout.xaxis7.title.text == "lag (steps)"
    assert fig.layout.xaxis7.matches is None  # the ACF's lag axis is not a date axis
    assert fig.layout.xaxis9.matches == "x"


def test_panel_data(sim_result):
    fig = ModelDiagnosticsPlotter(sim_result).plot("all")
    by_name = {t.name: t for t in fig.data}
    gain = sim_result.kalman_gain[["mkt", "credit"]].to_numpy()
    np.testing.assert_allclose(by_name["Gain norm"].y, np.sqrt((gain**2).sum(axis=1)))
    beta = sim_result.beta[["mkt", "credit"]].to_numpy()
    drift = np.sqrt((np.diff(beta, axis=0) ** 2).sum(axis=1))
    np.testing.assert_allclose(by_name["Drift norm"].y[1:], drift)
    v = sim_result.residuals.to_numpy()
    expected = [np.sqrt(np.nanmean(v[max(0, t - 11): t + 1] ** 2))
                if np.sum(~np.isnan(v[max(0, t - 11): t + 1])) >= 6 else np.nan
                for t in range(len(v))]  # fmt: skip
    np.testing.assert_allclose(by_name["Rolling RMSE (12)"].y, expected)
    np.testing.assert_allclose(by_name["Actual"].y, sim_result.y.to_numpy())
    loglik = by_name["Log-likelihood"].y
    assert np.isnan(loglik[np.isnan(v)]).all()  # no fake zero at missing steps
    # the 95% band: upper edge y_pred + 1.96 sqrt(F) where F is known
    ok = sim_result.F.notna().to_numpy()
    upper = by_name["Predicted ± 1.96 √F_t"].y[: ok.sum()]
    np.testing.assert_allclose(upper, (sim_result.y_pred + 1.96 * np.sqrt(sim_result.F))[ok])
    e = by_name["Residuals"].x
    np.testing.assert_allclose(e, (sim_result.residuals / np.sqrt(sim_result.F)).dropna())


def test_panels_in_the_order_asked_and_errors(sim_result):
    fig = ModelDiagnosticsPlotter(sim_result).plot(["cumulative_resid", "gain_norm"])
    assert kinds(fig) == [("scatter", "Cumulative residual"), ("scatter", "Gain norm")]
    assert ModelDiagnosticsPlotter(sim_result).plot("residual_hist").data[0].type == "histogram"
    with pytest.raises(ValueError, match="unknown panels"):
        ModelDiagnosticsPlotter(sim_result).plot(["residuals", "nope"])


def test_seed_dict_without_F(sim_result):
    """The seed's dict has no F: no interval, no envelope, raw residuals."""
    fig = ModelDiagnosticsPlotter(cases.as_seed_dict(sim_result)).plot("all")
    names = [n for _, n in kinds(fig)]
    assert "Predicted ± 1.96 √F_t" not in names and "± 1.96 √F_t" not in names
    assert "Normal, same sd" in names
    assert len(fig.data) == len(DEFAULT_TRACES) + len(OPTIONAL_TRACES) - 2


# --- contributions ------------------------------------------------------------------------------
def test_factor_contributions(sim_result):
    fig = plot_factor_contributions(sim_result)
    assert kinds(fig) == [("scatter", n) for n in
                          ("mkt", "mkt", "credit", "credit", "Sum of shown factors",
                           "Sum of shown factors")]  # fmt: skip
    expected = sim_result.beta["mkt"] * sim_result.H["mkt"]
    np.testing.assert_allclose(fig.data[0].y, expected)
    np.testing.assert_allclose(fig.data[1].y, expected.fillna(0).cumsum())
    # a factor keeps its beta-grid colour (state 1 after the intercept) and one legend entry
    assert fig.data[0].line.color == fig.data[1].line.color == PALETTE[1]
    assert [t.showlegend for t in fig.data] == [True, False] * 3
    assert subplot_titles(fig)[0].startswith("Per-period contribution")
    assert fig.layout.title.text.startswith("Factor contributions: Sim Model")


def test_factor_contributions_subset(sim_result):
    fig = plot_factor_contributions(sim_result, include_factors=["credit"])
    assert [t.name for t in fig.data] == ["credit", "credit"]
    with pytest.raises(ValueError, match="unknown factors"):
        plot_factor_contributions(sim_result, include_factors=["Intercept"])


# --- several funds ------------------------------------------------------------------------------
def test_stacked_betas(funds):
    fig = plot_stacked_betas(funds)
    assert subplot_titles(fig) == ["mkt", "credit"]  # intercept left out by default
    band = "filtered (real-time), 90% band (± 1.64 sd given Q, R)"
    # per fund, per factor: band edges, then the line
    assert [t.name for t in fig.data] == (
        ["Fund A lower", "Fund A upper", f"Fund A: {band}"] * 2
        + ["Fund B lower", "Fund B upper", f"Fund B: {band}"] * 2
    )
    colors = {t.legendgroup: t.line.color for t in fig.data if t.showlegend}
    assert colors == {"Fund A": PALETTE[0], "Fund B": PALETTE[1]}
    # every trace in its fund's legend group, one legend entry per fund
    assert [t.legendgroup for t in fig.data] == ["Fund A"] * 6 + ["Fund B"] * 6
    assert [t.showlegend for t in fig.data] == [False, False, True, False, False, False] * 2
    # the band is the central 90%: +/- z_0.95 sd of the filtered covariance (scipy's quantile)
    a = funds["Fund A"]
    sd = np.sqrt([P[1, 1] for P in a["beta_cov"].values()])
    np.testing.assert_allclose(fig.data[1].y, a.beta["mkt"] + norm.ppf(0.95) * sd, rtol=1e-5)
    assert fig.layout.xaxis2.anchor == "y2" and fig.layout.title.text.endswith("90% bands")


def test_stacked_betas_options(funds):
    fig = plot_stacked_betas(funds, show_std=False, n_cols=1, factors=["Intercept", "mkt"])
    # Fund B has no intercept: skipped in that subplot
    assert [t.name for t in fig.data] == ["Fund A", "Fund A", "Fund B"]
    assert [t.showlegend for t in fig.data] == [True, False, True]
    assert fig.layout.xaxis2.domain == fig.layout.xaxis.domain  # one column
    labelled = plot_stacked_betas(funds, label_ends=True)
    assert [a.text for a in labelled.layout.annotations][2:] == ["Fund A", "Fund B"] * 2
    with pytest.raises(ValueError, match="empty"):
        plot_stacked_betas({})


def test_stacked_betas_from_seed_dicts(funds):
    dicts = {k: cases.as_seed_dict(v) for k, v in funds.items()}
    a, b = plot_stacked_betas(dicts), plot_stacked_betas(funds)
    for ta, tb in zip(a.data, b.data, strict=True):
        np.testing.assert_allclose(np.asarray(ta.y, float), np.asarray(tb.y, float))


def test_stack_betas(funds):
    frame = stack_betas(funds)
    assert list(frame.columns) == ["Intercept (Fund A)", "mkt (Fund A)", "credit (Fund A)",
                                   "mkt (Fund B)", "credit (Fund B)"]  # fmt: skip


# --- beta grids (the seed's signature; bands now 90%) ----------------------------------------
def test_beta_grid_and_filtered_vs_smoothed(sim_result):
    fig = plot_beta_grid(sim_result)
    # per state: band edges and the mean line, one legend entry naming the band
    assert [t.name for t in fig.data] == ["lower", "upper", fig.data[2].name] * 3
    assert fig.data[2].name == "filtered (real-time), 90% band (± 1.64 sd given Q, R)"
    assert len(plot_beta_grid(sim_result, n_cols=2, show_gain=True).data) == 12
    dict_fig = plot_beta_grid(cases.as_seed_dict(sim_result))
    np.testing.assert_allclose(np.asarray(dict_fig.data[0].y, float),
                               np.asarray(fig.data[0].y, float))  # fmt: skip
    assert len(plot_filtered_vs_smoothed(sim_result).data) == 18


def test_save_html_is_self_contained(sim_result, tmp_path):
    path = save_html(ModelDiagnosticsPlotter(sim_result).plot(), tmp_path / "d.html")
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", html)  # nothing loaded from elsewhere
    assert len(html) > 3_000_000  # plotly.js itself is embedded
