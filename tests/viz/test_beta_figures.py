"""Beta figures on every kind of fit: KalmanResult, MLEFit, BayesFit, and several side by side.

Band references are computed here from the fits' own stored moments, independently of
`tvbeta.viz.bands`: for a Kalman result or MLE fit mean +/- Phi^{-1}((1 + level) / 2) sqrt(P)
with scipy.stats.norm and the covariances P the result stores; for a Bayes fit the quantiles
its `beta` Dataset stores (the 5% and 95% quantiles of its pooled posterior paths).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests.evaluate import cases
from tvbeta.data import simulate
from tvbeta.model import KalmanEngine, KalmanSpec
from tvbeta.viz import beta_bands, plot_beta_grid, plot_filtered_vs_smoothed, plot_stacked_betas

# PyMC starts its chain processes with fork(); Python 3.12 warns because numba has threads.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")

FIGURES = {
    "beta_grid": lambda fits, **kw: plot_beta_grid(fits, **kw),
    "filtered_vs_smoothed": lambda fits, **kw: plot_filtered_vs_smoothed(fits, **kw),
    "stacked_betas": lambda fits, **kw: plot_stacked_betas(fits, **kw),
}
STATES = ["Intercept", *cases.FACTORS]


@pytest.fixture(scope="module")
def kalman_fit(short_sim):
    """The seed's default spec on the same short fund as the MLE and Bayes fits."""
    return cases.run_default(short_sim, burn=3)


@pytest.fixture(scope="module")
def fits(kalman_fit, mle_fit, bayes_fit):
    return {"Kalman": kalman_fit, "MLE": mle_fit, "Bayes": bayes_fit}


def legend_names(fig) -> list[str]:
    return [t.name for t in fig.data if t.showlegend is not False]


def trace(fig, name: str, panel: int):
    """The trace called ``name`` on the panel's axes (panel 1 is "x")."""
    axis = "x" if panel == 1 else f"x{panel}"
    return next(t for t in fig.data if t.name == name and t.xaxis == axis)


@pytest.mark.parametrize("figure", list(FIGURES))
@pytest.mark.parametrize("kind", ["Kalman", "MLE", "Bayes"])
def test_each_beta_figure_accepts_each_fit_type(figure, kind, fits):
    fig = FIGURES[figure](fits[kind])
    titles = [a.text for a in fig.layout.annotations]
    assert set(titles) >= set(cases.FACTORS)
    names = legend_names(fig)
    assert names and all("90%" in n for n in names), names
    assert all(len(t.y) > 0 for t in fig.data)


@pytest.mark.parametrize("figure", list(FIGURES))
def test_several_fits_side_by_side_one_legend_entry_each(figure, fits):
    fig = FIGURES[figure](fits)
    names = legend_names(fig)
    per_fit = 2 if figure == "filtered_vs_smoothed" else 1  # filtered and smoothed
    assert len(names) == 3 * per_fit
    for label in fits:
        assert sum(n.startswith(f"{label}: ") for n in names) == per_fit
    # each fit's lines sit on every panel of a state it has
    assert {t.legendgroup for t in fig.data} == {
        f"{label}: {k}" if figure == "filtered_vs_smoothed" else label
        for label in fits for k in ("filtered", "smoothed")
    }  # fmt: skip


@pytest.mark.parametrize("level", [0.9, 0.5])
@pytest.mark.parametrize("kind", ["filtered", "smoothed"])
def test_kalman_band_is_mean_plus_minus_normal_quantile_sd(kalman_fit, kind, level):
    z = stats.norm.ppf((1 + level) / 2)
    mean, covs = ((kalman_fit.beta, kalman_fit.beta_cov) if kind == "filtered"
                  else (kalman_fit.beta_smooth, kalman_fit.beta_smooth_cov))  # fmt: skip
    fig = plot_beta_grid(kalman_fit, kind=kind, level=level)
    for j, state in enumerate(STATES):
        sd = np.sqrt([P[j, j] for P in covs.values()])
        lower, upper = trace(fig, "lower", j + 1), trace(fig, "upper", j + 1)
        np.testing.assert_allclose(lower.y, mean[state] - z * sd, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(upper.y, mean[state] + z * sd, rtol=1e-5, atol=1e-7)
    assert f"{level:.0%}" in legend_names(fig)[0]


def test_mle_band_is_the_smoothed_gaussian_band_at_the_estimate(mle_fit):
    z = stats.norm.ppf(0.95)
    res = mle_fit.result
    fig = plot_beta_grid({"MLE": mle_fit}, kind="smoothed")
    sd = np.sqrt([P[1, 1] for P in res.beta_smooth_cov.values()])
    np.testing.assert_allclose(trace(fig, "MLE upper", 2).y, res.beta_smooth["mkt"] + z * sd,
                               rtol=1e-5, atol=1e-7)  # fmt: skip
    assert "at the MLE" in legend_names(fig)[0]


@pytest.mark.parametrize("kind", ["filtered", "smoothed"])
def test_bayes_band_is_the_stored_posterior_quantiles(bayes_fit, kind):
    b = bayes_fit.beta
    fig = plot_beta_grid(bayes_fit, kind=kind)
    for j, state in enumerate(STATES):
        for edge, var in (("lower", "q05"), ("upper", "q95"), ("", "mean")):
            name = edge or legend_names(fig)[0]
            expected = b[f"{kind}_{var}"].sel(state=state).values
            np.testing.assert_allclose(trace(fig, name, j + 1).y, expected, rtol=1e-5, atol=1e-7)
    assert "90% posterior band" in legend_names(fig)[0]


def test_bayes_band_at_another_level_re_summarises_the_same_draws(bayes_fit):
    """The stored 5-95% quantiles come back when re-summarised with the fit's seed, so a band
    at 80% is of the same pooled paths: inside the 90% band, around the stored median."""
    from tvbeta.estimate.bayes.paths import beta_path_summary

    b = bayes_fit.beta
    again = beta_path_summary(bayes_fit.spec, bayes_fit.system_draws(), n_paths=b.attrs["n_paths"],
                              seed=b.attrs["seed"], quantiles=(0.05, 0.95))  # fmt: skip
    np.testing.assert_allclose(again["smoothed_q95"], b["smoothed_q95"])
    band = beta_bands(bayes_fit, "smoothed", 0.8)
    q05, q50, q95 = (b[f"smoothed_{q}"].transpose("time", "state").values
                     for q in ("q05", "q50", "q95"))  # fmt: skip
    assert np.all(band.lower.values >= q05 - 1e-12) and np.all(band.upper.values <= q95 + 1e-12)
    assert np.all(band.lower.values <= q50) and np.all(q50 <= band.upper.values)
    assert "80% posterior band" in band.band


def test_intercept_panel_is_labelled_in_return_units(kalman_fit):
    fig = plot_beta_grid(kalman_fit, n_cols=1)
    assert [fig.layout[a].title.text for a in ("yaxis", "yaxis2", "yaxis3")] == [
        "alpha (return / period)", "beta", "beta"]  # fmt: skip
    assert plot_beta_grid(kalman_fit).layout.yaxis2.title.text == "beta"  # same row as alpha


def test_five_state_grid_keeps_x_labels_on_panels_with_nothing_below():
    """3 columns, 5 states: panels 3, 4 and 5 have no panel below and keep their dates."""
    factors = ["f1", "f2", "f3", "f4"]
    sim = simulate(80, factors, Q=np.diag([1e-7, 1e-4, 1e-4, 1e-4, 1e-4]), R=1e-4,
                   beta0=[0.0, 1.0, 0.5, 0.2, -0.1], intercept=True, seed=3)  # fmt: skip
    res = KalmanEngine(KalmanSpec(K=4).set_intercept()).run(sim.frame, "y", factors, burn=5)
    fig = plot_beta_grid(res)
    shown = [fig.layout[f"xaxis{'' if i == 1 else i}"].showticklabels is not False
             for i in range(1, 6)]  # fmt: skip
    assert shown == [False, False, True, True, True]


def test_bad_inputs_name_the_argument(kalman_fit, bayes_fit):
    with pytest.raises(TypeError, match="fits must be a KalmanResult, an MLEFit, a BayesFit"):
        plot_beta_grid(object())
    with pytest.raises(TypeError, match=r"fits\['x'\] must be"):
        plot_filtered_vs_smoothed({"x": 3})
    for level in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
            plot_beta_grid(kalman_fit, level=level)
    with pytest.raises(ValueError, match=r"states: unknown states \['Beta'\]"):
        plot_beta_grid(kalman_fit, states=["mkt", "Beta"])
    with pytest.raises(ValueError, match="show_gain: a BayesFit has no Kalman gain"):
        plot_beta_grid(bayes_fit, show_gain=True)
    with pytest.raises(ValueError, match="stores the quantiles"):
        beta_bands(bayes_fit.beta, "smoothed", 0.8)
    with pytest.raises(ValueError, match="kind must be one of"):
        plot_beta_grid(kalman_fit, kind="forecast")
    with pytest.raises(ValueError, match="factors: unknown states"):
        plot_stacked_betas({"a": kalman_fit}, factors=["nope"])


def test_stacked_betas_of_one_fit_draws_it_as_the_fund_fund(mle_fit):
    """The README: every beta figure takes one fit or a dict of them."""
    one, named = plot_stacked_betas(mle_fit), plot_stacked_betas({"fund": mle_fit})
    assert one.to_json() == named.to_json()
