"""The HTML report of a method comparison: sections, tables, verdict, offline, one plotly.js.

One small comparison (2 simulated series, every method, a tiny NUTS run) is built per module;
the report is opened once in headless Chromium (skipped without it, see tests/browser.py).
"""

from __future__ import annotations

import os
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from tests.browser import screenshot_html
from tvbeta.data import simulate
from tvbeta.evaluate.compare import (
    METHODS,
    BayesSettings,
    Comparison,
    SeriesResult,
    compare_methods,
)
from tvbeta.evaluate.forecast import OneStepForecast
from tvbeta.nuts import SamplerSettings
from tvbeta.report import verdict, write_report
from tvbeta.report.page import slug
from tvbeta.viz.compare import method_label

# One worker runs the module (pytest -n 2 --dist loadgroup), so the comparison is built once,
# and with the figure browser tests: two Chromiums at once would only compete for memory.
pytestmark = pytest.mark.xdist_group("chromium")

SECTIONS = [
    "1. Data",
    "2. Model and methods",
    "3. Out-of-sample comparison",
    "4. Beta paths by method",
    "5. Posterior of Q and R",
    "6. Alpha: probability above zero",
    "7. Sampling diagnostics",
    "8. Forecast checks on the test span",
]
# attributes whose value the browser would fetch or navigate to
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "data", "poster",
                  "background", "xlink:href", "manifest", "cite"}  # fmt: skip


class Page(HTMLParser):
    """What the tests read from a report: headings, tables, tags and URL attributes.

    tables : data-table name -> rows of cell texts (header row first).
    """

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: dict[str, list[str]] = {"h2": [], "h3": []}
        self.tables: dict[str, list[list[str]]] = {}
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.n_figures = 0
        self._heading: str | None = None
        self._text: list[str] | None = None
        self._table: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        self.urls += [(tag, k, v) for k, v in attrs if k in URL_ATTRIBUTES and v]
        if "plotly-graph-div" in (a.get("class") or ""):
            self.n_figures += 1
        if tag in self.headings:
            self._heading, self._text = tag, []
        elif tag == "table":
            self._table = a.get("data-table") or f"unnamed-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._heading:
            self.headings[tag].append("".join(self._text).strip())
            self._heading, self._text = None, None
        elif tag in ("td", "th") and self._table and self._text is not None:
            self.tables[self._table][-1].append("".join(self._text).strip())
            self._text = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def frame(rows: list[list[str]]) -> pd.DataFrame:
    """A parsed table as text, the first column(s) as index (the header names them)."""
    head, body = rows[0], rows[1:]
    return pd.DataFrame([r[1:] for r in body], index=[r[0] for r in body], columns=head[1:])


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    frames = []
    for seed, name in ((11, "fund_a"), (12, "fund_b")):
        sim = simulate(200, ["mkt", "smb"], Q=[1e-5, 1e-3, 4e-4], R=1e-3, beta0=[0.0, 1.0, 0.3],
                       intercept=True, seed=seed, factor_cov=np.eye(2) * 1e-3)  # fmt: skip
        frames.append(sim.frame.rename(columns={"y": name}))
    return pd.concat([frames[0], frames[1][["fund_b"]]], axis=1)


@pytest.fixture(scope="module")
def comparison(data) -> Comparison:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny chains: convergence warnings are expected
        return compare_methods(
            data, ["fund_a", "fund_b"], ["mkt", "smb"], test_size=0.3, rolling_window=52,
            progress=False, seed=5, methods=METHODS,
            bayes=BayesSettings(SamplerSettings(draws=150, tune=150, chains=2, n_paths=20),
                                n_predictive=100),
        )  # fmt: skip


@pytest.fixture(scope="module")
def report(comparison, tmp_path_factory) -> Path:
    return write_report(comparison, tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture(scope="module")
def page(report) -> Page:
    return Page(report.read_text(encoding="utf-8"))


def test_report_has_every_section_and_a_subsection_per_series(page, report):
    assert page.headings["h2"] == SECTIONS
    assert ("<title>tvbeta: does Bayesian estimation of Q and R beat the grid search? "
            "(2 series)</title>") in report.read_text(encoding="utf-8")  # fmt: skip
    for series in ("fund_a", "fund_b"):
        # scores, beta paths, posterior, alpha, sampling, forecast checks
        assert page.headings["h3"].count(series) == 6
    expected = {"data-columns", "methods", "chosen-specs", "summary", "lfo", "alpha", "gamma"} | {
        f"{kind}-{s}" for kind in ("scores", "priors", "qr", "sampling", "residuals")
        for s in ("fund_a", "fund_b")
    }  # fmt: skip
    assert expected <= set(page.tables)
    # score bars, 2 x (betas, posterior, alpha, traces, PIT)
    assert page.n_figures == 1 + 2 * 5


def test_alpha_section_shows_probabilities_of_the_stacked_winner_and_gamma(page, comparison):
    """Probabilities in [0, 1] from the Bayes variant with the larger stacking weight, and
    gamma's posterior median (as printed, two decimals) in each volatility-scaled fit."""
    alpha = frame(page.tables["alpha"])
    for series, row in alpha.iterrows():
        weights = comparison.series[series].table["stacking weight"].dropna()
        assert row["method"] == method_label(weights.idxmax())
        probs = row.drop("method").astype(float)
        assert ((probs >= 0) & (probs <= 1)).all()
    rows = page.tables["gamma"]
    assert rows[0][:3] == ["series", "fit", "gamma median"]
    printed = {(series, fit): median for series, fit, median, *_ in rows[1:]}
    expected = {(series, method_label(m)): np.median(result.fits[m].tree["posterior"]["gamma"])
                for series, result in comparison.series.items()
                for m in ("bayes_vol", "bayes_vol_mr")}  # fmt: skip
    assert printed == {key: f"{value:.2f}" for key, value in expected.items()}


def test_beta_paths_add_the_best_bayes_variant_and_its_mle():
    """The plain methods, then the Bayes variant with the best mean test log score and the
    MLE of the same structure; a prior-only variant (horseshoe) has no MLE to add."""
    from tvbeta.report.analysis import path_methods

    table = pd.DataFrame({"log score": [2.0, 1.9, 2.3, 2.1, 2.2, 2.4]},
                         index=["bayes", "grid_seed", "bayes_vol_mr", "mle", "mle_vol_mr",
                                "bayes_shrink"])  # fmt: skip
    fits = dict.fromkeys(["bayes", "grid_seed", "mle", "bayes_vol_mr", "mle_vol_mr"], object())
    assert path_methods(table, fits) == ["bayes", "grid_seed", "mle", "bayes_vol_mr",
                                         "mle_vol_mr"]  # fmt: skip
    fits["bayes_shrink"] = object()  # best now, and a prior has no maximum likelihood
    assert path_methods(table, fits) == ["bayes", "grid_seed", "mle", "bayes_shrink"]
    assert path_methods(table.drop(["bayes_vol_mr", "bayes_shrink"]), fits) == [
        "bayes", "grid_seed", "mle"]  # the plain model is the only Bayes row scored


def test_beta_path_figures_draw_each_series_best_variant(report, comparison):
    text = report.read_text(encoding="utf-8")
    for name, result in comparison.series.items():
        section = text.split(f'id="betas-{slug(name)}"')[1].split("<h3")[0]
        variants = [m for m in result.table.index if m.startswith("bayes_") and m in result.fits
                    and result.fits[m] is not None]  # fmt: skip
        best = max(variants, key=lambda m: result.table.loc[m, "log score"])
        mle = "mle" + best.removeprefix("bayes")  # none for the horseshoe, a prior only
        for method in ("bayes", "grid_seed", "mle", best, *([mle] if mle in result.fits else [])):
            assert f'"name":"{method_label(method)} (' in section.replace('": "', '":"')


def test_alpha_section_shows_the_persistence_of_mean_reverting_betas(page, comparison):
    """One row per series, mean-reverting fit (bayes_mr, bayes_vol_mr) and state: the
    posterior median of phi_annual (as printed, two decimals) from the fit's draws, and the
    half-life log 2 / -log(median)."""
    rows = page.tables["phi"]
    head, body = rows[0], rows[1:]
    assert head[:4] == ["series", "fit", "state", "phi_annual median"]
    labels = {method_label(m): m for m in ("bayes_mr", "bayes_vol_mr")}
    assert len(body) == 2 * 2 * 3  # two series, two fits, intercept and two factors
    assert {fit for _, fit, *_ in body} == set(labels)
    for series, fit, state, median, *_, half_life in body:
        fits = comparison.series[series].fits
        draws = fits[labels[fit]].tree["posterior"]["phi_annual"]
        expected = np.median(draws.sel(state=state).values)
        assert median == f"{expected:.2f}"
        assert half_life == f"{np.log(2) / -np.log(expected):.2f}"


def test_tables_show_the_comparison_numbers(page, comparison):
    summary = frame(page.tables["summary"])
    assert list(summary.index) == list(comparison.summary.index)
    for col in ("wins", "mean log score", "mean diff vs bayes", "mean RMSE"):
        np.testing.assert_allclose(summary[col].astype(float), comparison.summary[col],
                                   atol=5e-5)  # fmt: skip
    for name, result in comparison.series.items():
        table = frame(page.tables[f"scores-{name}"])
        assert list(table.columns) == list(result.table.columns)
        for col in ("log score", "RMSE", "coverage 90%", "diff vs bayes", "diff se"):
            np.testing.assert_allclose(table[col].astype(float), result.table[col], atol=5e-5)
        assert list(table["n test"].astype(int)) == [60] * len(table)


def test_sampling_section_checks_every_bayes_variant(page, comparison):
    """A row per series and Bayes variant fitted, with check_convergence's verdict and its
    largest R-hat (the sections below show one posterior per series)."""
    from tvbeta.estimate.bayes.diagnostics import check_convergence
    from tvbeta.evaluate.settings import BAYES_VARIANTS

    rows = page.tables["sampling-variants"]
    expected = [(series, method) for series, result in comparison.series.items()
                for method in BAYES_VARIANTS if result.fits.get(method) is not None]  # fmt: skip
    assert [tuple(r[:2]) for r in rows[1:]] == [(s, method_label(m)) for s, m in expected]
    for row, (series, method) in zip(rows[1:], expected, strict=True):
        report = check_convergence(comparison.series[series].fits[method], warn=False)
        assert row[2] == ("passed" if report.ok else "failed")
        assert float(row[3]) == pytest.approx(report.summary["r_hat"].max(), abs=5e-4)


def test_lfo_table_shows_the_fixed_and_updated_bayes_scores(page, comparison):
    lfo = frame(page.tables["lfo"])
    assert list(lfo.index) == ["fund_a", "fund_b"]
    for col in ("bayes log score", "LFO elpd per period", "LFO - bayes", "se"):
        np.testing.assert_allclose(lfo[col].astype(float), comparison.lfo_table[col], atol=5e-5)
    bayes = [comparison.series[s].table.loc["bayes", "log score"] for s in lfo.index]
    np.testing.assert_allclose(lfo["bayes log score"].astype(float), bayes, atol=5e-5)


def test_data_section_states_the_split(page, comparison, report):
    columns = frame(page.tables["data-columns"])
    assert list(columns.index) == ["fund_a", "fund_b", "mkt", "smb"]
    np.testing.assert_allclose(columns["sd"].astype(float), comparison.data.std(), atol=5e-5)
    idx = comparison.data.index  # 200 weekly rows, the last 60 are the test span
    text = report.read_text(encoding="utf-8")
    assert f"<dd>140: {idx[0]:%Y-%m-%d} to {idx[139]:%Y-%m-%d}</dd>" in text
    assert f"<dd>60: {idx[140]:%Y-%m-%d} to {idx[-1]:%Y-%m-%d}</dd>" in text
    assert "weekly (W-FRI; 52 periods per year)" in text


def test_verdict_is_computed_from_the_scores(comparison, report):
    """The comparison stacked the model menu's Bayes variants: the verdict answers for the stack
    (the Bayesian predictive chosen with the training span only, not the variant with the best
    test score), its differences paired over each series' test steps."""
    scores = pd.DataFrame({s: t["log score"] for s, t in comparison.tables.items()})
    wins = int((scores.idxmax(axis=0) == "bayes_stacked").sum())
    d = pd.Series({s: np.mean(x.forecasts["bayes_stacked"].log_density
                              - x.forecasts["grid_seed"].log_density)
                   for s, x in comparison.series.items()})  # fmt: skip
    v = verdict(comparison)
    assert v.sentences[0].startswith(
        f"Bayes, stacked had the best out-of-sample log score in {wins} of 2")
    assert v.differences["grid_seed"].method == "bayes_stacked"
    assert v.differences["grid_seed"].mean == pytest.approx(d.mean())
    assert v.differences["grid_seed"].se == pytest.approx(d.std(ddof=1) / np.sqrt(2))
    assert f"Bayes, stacked − grid: {d.mean():+.3f} nats/step" in v.headline
    assert "the model menu's Bayes variants stacked by their training-span scores" in v.headline
    text = report.read_text(encoding="utf-8")
    assert v.headline.split(":")[0] in text and f"in {wins} of 2 series" in text
    weights = [f"{s}: " + ", ".join(f"{m} {x:.2f}" for m, x in
                                    t["stacking weight"].dropna().items() if x >= 0.005)
               for s, t in comparison.tables.items()]  # fmt: skip
    assert f"Stacking weights (training-span PSIS-LOO): {'; '.join(weights)}." in v.sentences
    gain = np.mean([s.lfo.elpd_i.to_numpy() - s.forecasts["bayes"].log_density
                    for s in comparison.series.values()], axis=1).mean()  # fmt: skip
    assert any(f"(leave-future-out) changes the Bayes log score by {gain:+.3f}" in x
               for x in v.sentences)  # fmt: skip


def test_verdict_of_hand_made_tables_counts_wins_and_clear_differences():
    def table(bayes: float, grid: float, se: float) -> pd.DataFrame:
        t = pd.DataFrame({"log score": [grid, bayes], "coverage 90%": [0.9, 0.9]},
                         index=pd.Index(["grid_seed", "bayes"], name="method"))  # fmt: skip
        t["diff vs bayes"] = t["log score"] - bayes
        t["diff se"] = [se, 0.0]
        return t

    tables = {"s1": table(1.10, 1.00, 0.01), "s2": table(2.10, 2.00, 0.01),
              "s3": table(3.00, 3.05, 0.01)}  # fmt: skip
    comp = Comparison({k: SeriesResult(k, t, {}) for k, t in tables.items()}, {}, pd.DataFrame())
    v = verdict(comp, failed_sampling=["s2"])
    d = v.differences["grid_seed"]
    assert d.mean == pytest.approx(0.05) and (d.ahead, d.behind) == (2, 1)
    assert v.sentences[0] == ("Bayes had the best out-of-sample log score in 2 of 3 series "
                              "(other winners: grid (seed ranking) 1).")  # fmt: skip
    assert v.headline.startswith("No clear difference")  # 0.05 with se 0.05 across series
    assert any(s.startswith("Caution") and "s2" in s for s in v.sentences)
    clear = {k: table(1.2, 1.0, 0.01) for k in ("s1", "s2", "s3")}
    clear["s3"] = table(1.25, 1.0, 0.01)
    comp = Comparison({k: SeriesResult(k, t, {}) for k, t in clear.items()}, {}, pd.DataFrame())
    assert verdict(comp).headline.startswith("Yes: Bayesian estimation of Q and R beat the seed")


def test_verdict_answers_for_each_model_menu_variant_against_the_grid_and_rolling_ols():
    """Hand-made tables: bayes ties the grid, bayes_vol is ahead of it by 0.2 (se 0.05 across
    three series) and of rolling OLS by 0.1: the headline says so for the variant, not only
    for plain Bayes (a fresh user's menu run read "No clear difference" beside a variant 7 se
    ahead)."""
    def table(grid: float, bayes: float, vol: float, ols: float) -> pd.DataFrame:
        t = pd.DataFrame({"log score": [grid, bayes, vol, ols]},
                         index=pd.Index(["grid_seed", "bayes", "bayes_vol", "rolling_ols"],
                                        name="method"))  # fmt: skip
        t["diff vs bayes"] = t["log score"] - bayes
        t["diff se"] = [0.05, 0.0, 0.01, 0.01]
        return t

    tables = {"s1": table(1.0, 1.0, 1.15, 1.05), "s2": table(2.0, 2.02, 2.2, 2.1),
              "s3": table(3.0, 2.98, 3.25, 3.15)}  # fmt: skip
    comp = Comparison({k: SeriesResult(k, t, {}) for k, t in tables.items()}, {}, pd.DataFrame())
    headline = verdict(comp).headline
    vol = np.array([0.15, 0.2, 0.25])  # bayes_vol - grid per series; minus rolling OLS: 0.1 each
    assert headline.startswith("No clear difference")
    assert (f"Model menu minus the seed's grid / rolling OLS, nats/step, mean over series (se "
            f"across series): bayes_vol +0.200 (se {vol.std(ddof=1) / np.sqrt(3):.3f}) / +0.100 "
            "(se 0.000).") in headline


def test_verdict_of_a_stack_says_where_its_weights_are_a_coin_toss():
    """Hand-made series with forecasts: the stack weighs bayes_vol 1.0 on s1, whose training LOO
    is 0.001 above bayes' with se 0.07 (a fresh user's case: another seed flipped it), and 0.6
    / 0.4 on s2, 0.5 apart: the verdict answers for the stack, paired over the test steps
    (here +0.1 every step against the grid), lists the weights and flags s1 only."""
    def series(name: str, w_vol: float, loo_gap: float) -> SeriesResult:
        t = pd.DataFrame({"log score": [1.0, 1.05, 1.08, 1.1],
                          "stacking weight": [np.nan, 1 - w_vol, w_vol, np.nan],
                          "train LOO": [np.nan, 2.0, 2.0 + loo_gap, np.nan],
                          "train LOO se": [np.nan, 0.07, 0.07, np.nan]},
                         index=pd.Index(["grid_seed", "bayes", "bayes_vol", "bayes_stacked"],
                                        name="method"))  # fmt: skip
        t["diff vs bayes"] = t["log score"] - 1.05
        t["diff se"] = 0.01
        y = np.zeros(4)
        fc = {m: OneStepForecast(y, y, y + 1, np.full(4, score), y + 0.5)
              for m, score in t["log score"].items()}  # fmt: skip
        return SeriesResult(name, t, fc)

    comp = Comparison({"s1": series("s1", 1.0, 0.001), "s2": series("s2", 0.4, 0.5)}, {},
                      pd.DataFrame())  # fmt: skip
    v = verdict(comp)
    assert v.differences["grid_seed"].method == "bayes_stacked"
    assert v.differences["grid_seed"].mean == pytest.approx(0.1)
    assert ("Stacking weights (training-span PSIS-LOO): s1: bayes_vol 1.00; s2: bayes 0.60, "
            "bayes_vol 0.40.") in v.sentences
    assert any(x.startswith("In s1 the two best variants' training LOO scores differ by less "
                            "than a standard error") for x in v.sentences), v.sentences


def test_report_is_offline_with_plotly_js_once(report, page):
    text = report.read_text(encoding="utf-8")
    external = [(t, k, v) for t, k, v in page.urls
                if v.strip().lower().startswith(("http:", "https:", "//", "ftp:"))]  # fmt: skip
    assert external == []
    assert not [a for t, a in page.tags if t == "script" and a.get("src")]
    assert not [a for t, a in page.tags if t == "link"]  # no stylesheet or font is linked
    assert text.count(get_plotlyjs()) == 1
    assert text.count("plotly.js v") == 1  # the bundle's header: not repeated per figure
    assert text.count("Plotly.newPlot(") == page.n_figures
    assert report.stat().st_size < 10_000_000


def test_report_renders_in_chromium_without_errors(report, tmp_path):
    keep = os.environ.get("TVBETA_SCREENSHOT_DIR")
    png = (Path(keep) if keep else tmp_path) / "report.png"
    errors = screenshot_html(report, png, max_height=16_000, timeout=60)
    assert errors == []
    assert png.stat().st_size > 200_000  # tables, text and figures drawn


def test_report_from_a_saved_folder_gives_the_same_tables(comparison, page, tmp_path):
    comparison.save(tmp_path / "saved")
    back = Comparison.load(tmp_path / "saved")
    assert all(not s.fits for s in back.series.values())
    rebuilt = Page(write_report(back, tmp_path / "r.html", folder=tmp_path / "saved")
                   .read_text(encoding="utf-8"))  # fmt: skip
    assert rebuilt.headings == page.headings
    assert rebuilt.tables == page.tables
    assert rebuilt.n_figures == page.n_figures
    # without the folder the fits are missing: those sections say so, the scores remain
    bare_path = write_report(back, tmp_path / "bare.html")
    bare = Page(bare_path.read_text(encoding="utf-8"))
    assert bare.headings["h2"] == SECTIONS
    assert bare.tables["summary"] == page.tables["summary"]
    assert "qr-fund_a" not in bare.tables and "sampling-fund_a" not in bare.tables
    assert bare_path.read_text(encoding="utf-8").count("No fitted models are available") == 5


def test_report_without_bayes_names_the_best_method(data, tmp_path):
    methods = ["grid_seed", "mle", "rolling_ols"]
    comp = compare_methods(data, ["fund_a"], ["mkt", "smb"], methods=methods, rolling_window=52,
                           progress=False)  # fmt: skip
    path = write_report(comp, tmp_path / "no_bayes.html")
    p = Page(path.read_text(encoding="utf-8"))
    assert "<title>tvbeta: out-of-sample comparison of 3 methods (1 series)</title>" in (
        path.read_text(encoding="utf-8"))
    assert "Grid and chosen specifications" in p.headings["h3"]
    assert p.headings["h2"] == SECTIONS
    assert "scores-fund_a" in p.tables and "qr-fund_a" not in p.tables
    text = path.read_text(encoding="utf-8")
    assert "Best mean out-of-sample log score" in text
    # posterior, sampling, P(alpha > 0): any Bayes variant would have served
    assert text.count("none of bayes, bayes_vol, bayes_shrink, bayes_mr, bayes_vol_mr was "
                      "among the methods compared") == 3  # fmt: skip
    assert p.n_figures == 1 + 2  # score bars, beta paths (grid, MLE), PIT


def test_a_run_of_menu_variants_only_shows_the_best_variants_posterior_and_sampling(
        data, tmp_path):  # fmt: skip
    """Without the plain bayes method, the posterior and sampling sections show the Bayes
    variant with the best test log score, named in their headings; a sampled index
    half-life gets its columns beside gamma."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = compare_methods(
            data, ["fund_a"], ["mkt", "smb"], test_size=0.3, rolling_window=52, seed=5,
            progress=False, methods=["mle", "bayes_vol", "bayes_mr", "rolling_ols"],
            bayes=BayesSettings(SamplerSettings(draws=100, tune=100, chains=2, n_paths=10),
                                n_predictive=50, priors={"index_half_life_sd": 0.75}),
        )  # fmt: skip
    table = comp.series["fund_a"].table
    best = max(["bayes_vol", "bayes_mr"], key=lambda m: table.loc[m, "log score"])
    path = write_report(comp, tmp_path / "menu.html")
    text = path.read_text(encoding="utf-8")
    p = Page(text)
    assert "qr-fund_a" in p.tables and "sampling-fund_a" in p.tables
    assert text.count(f"fund_a ({method_label(best)})") >= 2  # posterior, sampling headings
    gamma = p.tables["gamma"]
    assert "half-life median (years)" in gamma[0]
    years = comp.series["fund_a"].fits["bayes_vol"].tree["posterior"]["index_half_life"]
    assert gamma[1][gamma[0].index("half-life median (years)")] == f"{np.median(years):.2f}"
    # no grid ran: no grid in the title, nor its text; the MLE's chosen specification stays
    assert "<title>tvbeta: out-of-sample comparison of 4 methods (1 series)</title>" in text
    assert "Chosen specifications" in p.headings["h3"]
    assert "Grid and chosen specifications" not in p.headings["h3"]
    assert "Grid: intercept" not in text
    assert [row[:2] for row in p.tables["chosen-specs"][1:]] == [["fund_a", "mle"]]


def test_forecast_checks_flag_a_biased_and_a_too_narrow_predictive():
    from scipy import stats

    from tvbeta.evaluate.forecast import gaussian_forecast
    from tvbeta.report.analysis import forecast_checks

    rng = np.random.default_rng(3)
    y = rng.standard_normal(400)
    fcs = {
        "good": gaussian_forecast(y, np.zeros(400), np.ones(400)),
        "biased": gaussian_forecast(y, np.full(400, 0.5), np.ones(400)),
        "narrow": gaussian_forecast(y, np.zeros(400), np.full(400, 0.5**2)),
    }
    table, flags = forecast_checks(fcs)
    assert not flags.loc["good"].any()
    assert flags.loc["biased", "mean z"] and not flags.loc["biased", "sd z"]
    assert flags.loc["narrow", "sd z"] and flags.loc["narrow", "coverage 90%"]
    # coverage from the PIT is the fraction of y inside the central interval
    inside = np.abs(y) < stats.norm.ppf(0.95) * 0.5
    assert table.loc["narrow", "coverage 90%"] == pytest.approx(inside.mean())
    assert table.loc["good", "sd z"] == pytest.approx(np.std(y, ddof=1))


def test_report_counts_the_scored_steps_when_returns_are_missing(data, tmp_path):
    """fund_a launched 10 weeks late, one gap in training (row 80), two in the 60 test rows
    (150, 170): 58 test steps scored by every method, said in the data section."""
    gappy = data.copy()
    gappy.iloc[[*range(10), 80, 150, 170], gappy.columns.get_loc("fund_a")] = np.nan
    comp = compare_methods(gappy, ["fund_a", "fund_b"], ["mkt", "smb"],
                           methods=["grid_seed", "mle", "rolling_ols"], progress=False)  # fmt: skip
    path = write_report(comp, tmp_path / "gaps.html")
    p = Page(path.read_text(encoding="utf-8"))
    assert p.headings["h2"] == SECTIONS
    assert list(frame(p.tables["scores-fund_a"])["n test"]) == ["58"] * 3
    assert list(frame(p.tables["summary"])["n test"]) == ["118"] * 3  # 58 + 60
    text = path.read_text(encoding="utf-8")
    assert "fund_a: 11 training, 2 test rows (no method fits or scores a missing return)" in text
    # the window used: three years of weekly returns (156), at most the observed training ones
    n_train = comp.settings["n_train"]
    used = {f: min(3 * 52, int(gappy[f].iloc[:n_train].notna().sum())) for f in comp.series}
    windows = ", ".join(f"{f} {w}" for f, w in used.items())
    assert f"Rolling OLS window: {windows} observed returns" in text


def test_posterior_sds_square_to_the_q_and_r_draws_the_likelihood_uses(comparison):
    """The report's sd draws (per chain and draw) are those whose squares are the Q diagonal
    and R of `BayesFit.qr_draws` (the draws every Bayes score and path is computed from), in
    the same (chain, draw) order, named sigma_eps then sigma_beta[state]."""
    from tvbeta.report.analysis import posterior_sds

    fit = comparison.series["fund_a"].fits["bayes"]
    Q, R = fit.qr_draws()
    sds = posterior_sds(fit)
    assert list(sds) == ["sigma_eps", "sigma_beta[Intercept]", "sigma_beta[mkt]",
                         "sigma_beta[smb]"]
    assert all(d.shape == (2, 150) for d in sds.values())
    np.testing.assert_allclose(sds["sigma_eps"].ravel() ** 2, R, rtol=1e-14)
    for j, name in enumerate(list(sds)[1:]):
        np.testing.assert_allclose(sds[name].ravel() ** 2, Q[:, j, j], rtol=1e-14)


def test_static_section_shows_the_horseshoe_probabilities_beside_the_grids_choices(page,
                                                                                   comparison):
    """Per series, P(static) of each state equals `BayesFit.static_probability()` of the
    bayes_shrink fit computed directly (3 significant digits as printed), and the grid's
    columns name the Q setter of the spec each ranking chose."""
    for name, result in comparison.series.items():
        tab = frame(page.tables[f"static-{name}"])
        direct = result.fits["bayes_shrink"].static_probability()
        assert list(tab.index) == list(direct.index)
        np.testing.assert_allclose(tab["P(static)"].astype(float), direct, rtol=5e-3, atol=1e-12)
        for method in ("grid_seed", "grid_loglik"):
            assert set(tab[f"{method} Q setter"]) == {result.fits[method].q_mode}
    assert "Which betas move: the grid's Q and the horseshoe" in page.headings["h3"]


def test_methods_table_describes_every_method_that_ran(page):
    """Each method of the comparison (every one of METHODS) has its description and predictive
    in the methods table, the stacked predictive included (no "–" placeholder)."""
    rows = frame(page.tables["methods"])
    assert set(rows.index) == set(METHODS)
    assert not rows.isin(["–", ""]).to_numpy().any(), rows


def test_model_section_gives_the_equations_of_each_menu_variant_that_ran(report):
    """The variants' suffixes are defined where the model is: the volatility-scaled R_t, the
    mean-reverting transition and the horseshoe, beside the random walk's equations."""
    text = report.read_text(encoding="utf-8")
    assert "The model menu's variants" in text
    for equation in ("_vol: R<sub>t</sub> = σ<sub>ε</sub><sup>2</sup> h<sub>t</sub><sup>γ</sup>",
                     "_mr: β<sub>t</sub> − μ = Φ (β<sub>t−1</sub> − μ)",
                     "_shrink: σ<sub>β,i</sub> ~ N<sup>+</sup>"):
        assert equation in text


def test_model_section_states_the_horseshoes_target_accept(report):
    """The comparison ran at 0.8 (the default); bayes_shrink at the horseshoe's floor 0.9."""
    assert "0.8 (bayes_shrink: 0.9)" in report.read_text(encoding="utf-8")
