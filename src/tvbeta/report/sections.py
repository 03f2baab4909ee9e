"""The report's sections, each a function of the shared `Context` returning HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tvbeta.constants import HORSESHOE_TARGET_ACCEPT
from tvbeta.estimate.bayes.paths import p_positive_frame
from tvbeta.evaluate.comparison import Comparison
from tvbeta.evaluate.settings import BAYES_VARIANTS
from tvbeta.kalman.arrays import burn_row
from tvbeta.report import analysis as A
from tvbeta.report.page import Figures, box, bullets, esc, facts, slug, table
from tvbeta.report.verdict import Verdict
from tvbeta.viz.betas import plot_alpha_probability
from tvbeta.viz.compare import (
    method_label,
    plot_method_betas,
    plot_pit_histograms,
    plot_qr_posterior,
    plot_score_bars,
    plot_traces,
)

METHOD_TEXT = {
    "grid_seed": (
        "the seed's grid: intercept yes/no x 3 Q setters x 3 R setters x OLS start "
        "(18 specs; 9 without factors), best by in-sample mean RMSE",
        "Gaussian plug-in",
    ),
    "grid_loglik": ("the same grid, best by in-sample log-likelihood", "Gaussian plug-in"),
    "mle": ("joint maximum likelihood of a diagonal Q and R", "Gaussian plug-in"),
    "bayes": (
        "NUTS posterior of Q and R (beta marginalised by the Kalman filter)",
        "mixture of Gaussians over posterior draws",
    ),
    "mle_vol": ("the MLE with R_t = sigma_eps^2 h_t^gamma, h_t a variance index known at t-1",
                "Gaussian plug-in"),
    "bayes_vol": ("the NUTS posterior with R_t = sigma_eps^2 h_t^gamma (gamma sampled too)",
                  "mixture of Gaussians over posterior draws"),
    "bayes_shrink": ("the NUTS posterior with a horseshoe prior on the drift sds (no MLE: the "
                     "plain MLE is its plug-in peer); target_accept at least 0.9",
                     "mixture of Gaussians over posterior draws"),
    "mle_mr": ("the MLE of mean-reverting betas: beta_t - mu = phi (beta_{t-1} - mu) + eta_t, "
               "phi per state, mu integrated out by the filter", "Gaussian plug-in"),
    "bayes_mr": ("the NUTS posterior of mean-reverting betas (phi_annual ~ Beta(4, 1) per "
                 "state; mu integrated out by the filter)",
                 "mixture of Gaussians over posterior draws"),
    "mle_vol_mr": ("the MLE of mean-reverting betas with R_t = sigma_eps^2 h_t^gamma",
                   "Gaussian plug-in"),
    "bayes_vol_mr": ("the NUTS posterior of mean-reverting betas with R_t = sigma_eps^2 "
                     "h_t^gamma (gamma and phi sampled)",
                     "mixture of Gaussians over posterior draws"),
    "bayes_stacked": ("the Bayes variants that ran, weighted by stacking their PSIS-LOO "
                      "predictive densities on the training rows (ArviZ compare, "
                      'method="stacking"): chosen with training data only',
                      "the variants' predictive mixtures, weighted"),
    "rolling_ols": ("OLS on the last observed rows, a rolling window (no state model)",
                    "Student t"),
}
SCORE_FORMATS = {"n test": "{:.0f}", "fit time (s)": "{:.2f}", "wins": "{:.0f}"}
LFO_FORMATS = {"refits": "{:.0f}", "max pareto k": "{:.2f}", "n test": "{:.0f}"}
# Beta paths dominate the file size (~180 bytes per series x state x date drawn, dates as
# text); this budget keeps them near 3 MB: 450 dates per path for 6 series of 5 states.
PATH_BUDGET = 16_000


@dataclass
class Context:
    """What every section reads; ``convergence``: series -> ConvergenceReport of its Bayes fit."""

    comparison: Comparison
    fits: dict[str, dict[str, Any]]
    lay: A.Layout
    figures: Figures = field(default_factory=Figures)
    convergence: dict[str, Any] = field(default_factory=dict)

    def bayes_method(self, series: str) -> str | None:
        """Return the Bayes method whose posterior the sections show for ``series``.

        ``bayes`` when it was fitted; else (a run of the model menu's variants only) the
        variant with the best mean test log score; None without a Bayes fit.
        """
        fits = self.fits[series]
        if fits.get("bayes") is not None:
            return "bayes"
        return A.best_bayes(self.comparison.series[series].table, fits)

    def bayes(self, series: str) -> Any | None:
        """Return the Bayes fit the sections show for ``series`` (`bayes_method`), or None."""
        method = self.bayes_method(series)
        return None if method is None else self.fits[series][method]

    def bayes_heading(self, series: str) -> str:
        """Return the series' name for a Bayes section's heading, with the variant if not bayes."""
        method = self.bayes_method(series)
        return esc(series) + ("" if method in (None, "bayes")
                              else f" ({esc(method_label(method))})")  # fmt: skip

    def missing_fits_note(self, what: str, methods: tuple[str, ...]) -> str:
        """Why a section is empty: the methods were not run, or their fits were not loaded."""
        run = {m for s in self.comparison.series.values() for m in s.table.index}
        if not run & set(methods):
            names = methods[0] if len(methods) == 1 else f"none of {', '.join(methods)}"
            verb = "was not" if len(methods) == 1 else "was"
            return box(
                f"Nothing to show for {esc(what)}: {esc(names)} {verb} among the methods compared."
            )
        return box(
            f"No fitted models are available for {esc(what)}: the comparison was loaded "
            "from disk without its fits. Pass <code>folder=</code> (the folder given to "
            "<code>Comparison.save</code>) to <code>write_report</code>."
        )


def _date(x: object) -> str:
    return x.strftime("%Y-%m-%d") if isinstance(x, pd.Timestamp) else str(x)


def _span(index: pd.Index) -> str:
    return f"{_date(index[0])} to {_date(index[-1])}" if len(index) else "–"


def _freq(idx: pd.Index) -> str | None:
    """Return the pandas frequency of a date index ("W-FRI"), inferred if unset (a loaded CSV)."""
    if not isinstance(idx, pd.DatetimeIndex) or len(idx) < 3:
        return None
    if idx.freq is not None:
        return idx.freqstr
    try:  # pandas 3 returns an offset under this option (and warns without it)
        with pd.option_context("future.infer_freq_returns_offset", True):
            off = pd.infer_freq(idx)
    except (KeyError, pd.errors.OptionError):  # an older pandas without the option
        off = pd.infer_freq(idx)
    return getattr(off, "freqstr", off)


def data_section(ctx: Context) -> str:
    """Return the HTML of section 1: the data, its split and a summary of each column."""
    data, lay = ctx.comparison.data, ctx.lay
    idx = data.index
    freq = _freq(idx)
    ppy = f"{lay.ppy:g} periods per year" if lay.ppy else "periods per year unknown"
    items = {
        "Span": _span(idx),
        "Rows": f"{lay.n}",
        "Frequency": f"{A.frequency_name(lay.ppy)} ({freq or 'irregular'}; {ppy})",
        "Training rows": f"{lay.n_train}: {_span(idx[: lay.n_train])}",
        "Test rows": f"{lay.n - lay.n_train}: {_span(idx[lay.n_train :])}",
        "Burn-in": f"the first {lay.burn} observed steps only condition the filter (no "
        "likelihood term)",
        "Missing returns": _missing_text(ctx.comparison, lay),
        "Targets": ", ".join(map(str, ctx.comparison.series)),
        "Factors": ", ".join(lay.factors) or "none: a local level model (the intercept alone)",
    }
    cols = A.column_summary(ctx.comparison, lay)
    return (
        facts(items) + "<h3>Columns</h3><p>Returns per period in the data's units; "
        "annualised: mean × periods per year, sd × √(periods per year).</p>"
        + table(cols, name="data-columns", formats={"missing": "{:.0f}"})
    )


def _missing_text(comparison: Comparison, lay: A.Layout) -> str:
    """Per target with a gap: missing training and test rows (neither fitted nor scored)."""
    gaps = []
    for target in comparison.series:
        missing = comparison.data[target].isna().to_numpy()
        train, test = int(missing[: lay.n_train].sum()), int(missing[lay.n_train :].sum())
        if train or test:
            gaps.append(f"{target}: {train} training, {test} test rows")
    if not gaps:
        return "none"
    return "; ".join(gaps) + " (no method fits or scores a missing return)"


def _equations(q: str, states: list[str], methods: list[str]) -> str:
    """Return the model's equations, and those of the menu's variants among ``methods``."""
    qdef = (
        "Q = diag(σ<sub>β,1</sub><sup>2</sup>, …, σ<sub>β,k</sub><sup>2</sup>)"
        if q == "diag"
        else "Q = diag(σ<sub>β</sub>) C diag(σ<sub>β</sub>), C ~ LKJ"
    )
    menu = []
    if any("_vol" in m for m in methods):
        menu.append(
            '<div class="eq">_vol: R<sub>t</sub> = σ<sub>ε</sub><sup>2</sup> '
            "h<sub>t</sub><sup>γ</sup></div><p>h<sub>t</sub>: an exponentially weighted mean "
            "of past squared residuals of a rolling OLS (known at t−1; log h<sub>t</sub> "
            "centred on the training rows, so σ<sub>ε</sub><sup>2</sup> is R<sub>t</sub>'s "
            "geometric mean there); γ estimated or sampled, γ = 0 the constant R.</p>")
    if any(m.endswith("_mr") for m in methods):
        menu.append(
            '<div class="eq">_mr: β<sub>t</sub> − μ = Φ (β<sub>t−1</sub> − μ) + '
            "η<sub>t</sub>, &nbsp; Φ = diag(φ), &nbsp; μ ~ N(a<sub>0</sub>, P<sub>0</sub>)"
            "</div><p>Each beta reverts to its own long-run mean μ (integrated out by the "
            "filter) with persistence φ per period (φ = 1: the random walk); φ estimated or "
            "sampled per state.</p>")
    if "bayes_shrink" in methods:
        menu.append(
            '<div class="eq">_shrink: σ<sub>β,i</sub> ~ N<sup>+</sup>(0, s<sub>i</sub> '
            "λ̃<sub>i</sub>), &nbsp; λ̃<sub>i</sub> = c τ λ<sub>i</sub> / √(c<sup>2</sup> + "
            "τ<sup>2</sup> λ<sub>i</sub><sup>2</sup>), &nbsp; λ<sub>i</sub> ~ C<sup>+</sup>(0, "
            "1), &nbsp; τ ~ C<sup>+</sup>(0, τ<sub>0</sub>)</div><p>A regularised horseshoe "
            "(Piironen &amp; Vehtari 2017) on the drift sds, s<sub>i</sub> the default prior's "
            "scale: a global τ and a heavy-tailed local λ<sub>i</sub> per beta shrink betas "
            "that do not move to σ<sub>β</sub> ≈ 0 and leave those that do free.</p>")
    return (
        '<div class="eq">state: β<sub>t</sub> = β<sub>t−1</sub> + η<sub>t</sub>, &nbsp; '
        f"η<sub>t</sub> ~ N(0, Q), &nbsp; {qdef}</div>"
        '<div class="eq">observation: y<sub>t</sub> = z<sub>t</sub>′ β<sub>t</sub> + '
        "ε<sub>t</sub>, &nbsp; ε<sub>t</sub> ~ N(0, R), &nbsp; R = σ<sub>ε</sub><sup>2</sup>"
        '</div><div class="eq">start: β<sub>−1</sub> ~ N(a<sub>0</sub>, P<sub>0</sub>)</div>'
        f"<p>States β<sub>t</sub> ({len(states)}): {esc(', '.join(states))}; z<sub>t</sub> "
        "holds 1 for the intercept and the factor returns at t. Q is in beta² per period, R "
        "in squared returns per period.</p>"
        + ("<h3>The model menu's variants</h3><p>A method's suffix says what it changes in "
           "the model above.</p>" + "".join(menu) if menu else "")
    )


def _prior_rows(fit: Any) -> pd.DataFrame:
    res, rows = fit.spec.resolved, {}
    for j, p in enumerate(A.param_names(list(fit.spec.state_names))):
        prior = res.sigma_eps if j == 0 else res.sigma_beta
        params = {k: (v[j - 1] if isinstance(v, list) else v) for k, v in prior.params.items()}
        args = ", ".join(f"{k}={v:.3g}" for k, v in params.items())
        rows[p] = {
            "prior": f"{prior.dist}({args})",
            "a0": np.nan if j == 0 else fit.spec.a0[j - 1],
            "P0 sd": np.nan if j == 0 else np.sqrt(fit.spec.P0[j - 1, j - 1]),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "parameter"
    return out


def model_section(ctx: Context) -> str:
    """Return the HTML of section 2: equations, methods, priors, sampler, grid, chosen specs."""
    st, lay = ctx.comparison.settings, ctx.lay
    bs = st.get("bayes", {}) or {}
    states = (["Intercept"] if lay.intercept else []) + lay.factors
    methods = list(dict.fromkeys(m for s in ctx.comparison.series.values() for m in s.table.index))
    heads = ("how Q and R are set (training rows only)", "one-step predictive")
    rows = {m: dict(zip(heads, METHOD_TEXT.get(m, ("–", "–")), strict=True)) for m in methods}
    how = pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")
    parts = [
        _equations(bs.get("q", "diag"), states, methods),
        "<h3>Procedure</h3>",
        f"<p>Each method sets Q and R on the first {lay.n_train} rows of a series. The filter "
        "then runs on through the test rows with them fixed, so every test row is scored by a "
        "genuine one-step-ahead forecast from the returns before it: the mean log predictive "
        "density (nats per step, higher is better), the RMSE of the predictive mean and the "
        "coverage of the central 90% interval. Differences to "
        f"{esc(method_label(reference_method(ctx.comparison)))} are paired per test step, "
        "with their standard error.</p>",
        table(how, name="methods"),
        "<h3>Bayes: priors and sampler</h3>",
        f"<p>Default priors are half-normal on each standard deviation, with data-based scales "
        f"(see <code>tvbeta.estimate.bayes.priors</code>): a factor beta may plausibly drift by "
        f"about 0.5 per year, the intercept by 0.1 sd(y) per year, and σ<sub>ε</sub> is of the "
        f"order of the OLS residual sd. The start a<sub>0</sub> is an OLS fit on the first rows "
        f"with sd 10× its standard error. Custom priors: {esc(bs.get('priors') or 'none')}.</p>",
    ]
    sampler = {k.replace("_", " "): bs[k] for k in ("draws", "tune", "chains", "target_accept",
                                                     "q", "sampler", "n_predictive") if k in bs}
    if "target accept" in sampler and "bayes_shrink" in methods:
        floor = max(sampler["target accept"], HORSESHOE_TARGET_ACCEPT)
        sampler["target accept"] = f"{sampler['target accept']} (bayes_shrink: {floor})"
    if sampler:
        parts.append(facts(sampler))
    for series in ctx.comparison.series:
        fit = ctx.bayes(series)
        if fit is not None:
            s = fit.settings
            parts.append(
                f'<h4>{ctx.bayes_heading(series)}</h4><p class="meta">sampler '
                f'{esc(s.get("sampler"))}'
                f", {s.get('chains')} chains × {s.get('draws')} draws after "
                f"{s.get('tune')} tuning steps, {s.get('wall_time_total', np.nan):.1f} s"
                "</p>" + table(_prior_rows(fit), name=f"priors-{series}", default="{:.4g}")
            )
    parts += _specifications(ctx, methods)
    window = st.get("rolling_window")  # the window used: one number, or one per series
    if isinstance(window, dict):
        window = ", ".join(f"{esc(t)} {w}" for t, w in window.items())
    size = (f"{window} observed returns" if window else
            "three years of observed returns, at most the training rows' (default)")  # fmt: skip
    parts.append(f"<p>Rolling OLS window: {size}; a missing return stretches it back a row.</p>")
    return "".join(parts)


GRIDS = ("grid_seed", "grid_loglik")


def _specifications(ctx: Context, methods: list[str]) -> list[str]:
    """Return the grid's text and the chosen specifications of the grid and MLE that ran."""
    if any(m in methods for m in GRIDS):
        return ["<h3>Grid and chosen specifications</h3>", _grid_text(ctx)]
    if "mle" in methods:
        return ["<h3>Chosen specifications</h3>", _chosen_specs(ctx)]
    return []


def _grid_text(ctx: Context) -> str:
    from tvbeta.estimate.grid import DEFAULT_INIT_SETTERS, DEFAULT_Q_SETTERS, DEFAULT_R_SETTERS

    both = (ctx.comparison.settings.get("grid") or {}).get("try_both_intercepts", True)
    intercepts, no_factors = ("yes/no" if both else "as set"), ""
    if not ctx.lay.factors:
        intercepts = "yes (no factors: without it the model has no state)"
        no_factors = (" Without factors, the R setter rolling_vol (factor volatility) has "
                      "nothing to use: its rows fail and rank last.")  # fmt: skip
    text = (
        f"<p>Grid: intercept {intercepts} × Q setter "
        f"({', '.join(DEFAULT_Q_SETTERS)}) × R setter ({', '.join(DEFAULT_R_SETTERS)}) × "
        f"initial state ({', '.join(DEFAULT_INIT_SETTERS)}). Rolling setters give one Q or "
        f"R per training row; the test rows reuse the last training value.{no_factors}</p>"
    )
    return text + _chosen_specs(ctx)


def _chosen_specs(ctx: Context) -> str:
    rows = {}
    for series, fits in ctx.fits.items():
        for method in (*GRIDS, "mle"):
            spec = fits.get(method)
            if spec is not None:
                rows[(series, method)] = {"specification": spec.name, "intercept": spec.intercept,
                                          "Q": spec.q_mode or "–", "R": spec.r_mode or "–",
                                          "initial state": spec.init_mode or "–"}  # fmt: skip
    if not rows:
        return ctx.missing_fits_note("the chosen specifications", A.FITTED[:3])
    chosen = pd.DataFrame.from_dict(rows, orient="index")
    chosen.index.names = ["series", "method"]
    return table(chosen, name="chosen-specs")


def _best(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    best = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    if col in frame and frame[col].notna().any():
        best.loc[frame[col].idxmax(), col] = True
    return best


def reference_method(comparison: Comparison) -> str:
    """Return the method the tables' differences are taken against (Bayes when it was run)."""
    for t in comparison.tables.values():
        for col in t.columns:
            if str(col).startswith("diff vs "):
                return str(col).removeprefix("diff vs ")
    return "bayes"


def comparison_section(ctx: Context, v: Verdict) -> str:
    """Return the HTML of section 3: the out-of-sample scores with the verdict ``v``."""
    comp = ctx.comparison
    answer = f"<strong>{esc(v.headline)}</strong>" + bullets([esc(s) for s in v.sentences])
    summary = comp.summary
    ref = reference_method(comp)
    parts = [
        box(answer, "answer"),
        ctx.figures(plot_score_bars(comp.tables, reference=ref)),
        "<h3>Summary across series</h3>",
        "<p>wins: series where the method had the best log score; mean diff: the mean over "
        f"series of (method − {esc(ref)}) log score, se across series; n test: the test "
        "steps scored (observed returns), all series together.</p>",
        table(summary, name="summary", formats=SCORE_FORMATS,
              best=_best(summary, "mean log score")),
        _lfo_text(comp),
    ]
    if any("train LOO" in t for t in comp.tables.values()):
        parts.append(
            "<p>Per series, the Bayes variants also carry what the training rows alone say of "
            "them: train LOO (± se), the PSIS-LOO elpd of their one-step forecasts on the "
            "training span, nats per period, and the stacking weight chosen from it; with "
            "[compare] lfo_train, train LFO: their PSIS leave-future-out elpd per period over "
            "the later training rows, each posterior fitted on the earlier ones only.</p>")
    for series, s in comp.series.items():
        parts += [
            f'<h3 id="scores-{slug(series)}">{esc(series)}</h3>',
            table(s.table, name=f"scores-{series}", formats=SCORE_FORMATS,
                  best=_best(s.table, "log score")),
        ]
    return "".join(parts)


def _lfo_text(comp: Comparison) -> str:
    lfo = comp.lfo_table
    if lfo.empty:
        return ""
    threshold = next(s.lfo.threshold for s in comp.series.values() if s.lfo is not None)
    return (
        "<h3>Bayes with its posterior updated: leave-future-out</h3>"
        "<p>The scores above fix every method's hyperparameters at the training span. "
        "Leave-future-out cross-validation (PSIS-LFO-CV, Bürkner, Gabry &amp; Vehtari 2020) "
        "scores the same test rows with the posterior of Q and R updated by every earlier row: "
        "elpd per period, nats; importance sampling from the last posterior, refitted by NUTS "
        f"when the Pareto k of the weights exceeds {threshold:g}. The difference (paired over "
        "rows, with its standard error) is what re-estimating as data arrive would add.</p>"
        + table(lfo, name="lfo", formats=LFO_FORMATS)
    )


def betas_section(ctx: Context) -> str:
    """Return the HTML of section 4: smoothed beta paths by method, train/test boundary."""
    lay, data = ctx.lay, ctx.comparison.data
    parts = [
        "<p>Smoothed betas over the full sample (every row informs every date), with the "
        "hyperparameters from the training rows. Bayes: one path per posterior draw of (Q, "
        "R) from the simulation smoother (Durbin &amp; Koopman 2002), so the band carries "
        "the uncertainty of Q and R as well as of beta; line: posterior mean, band: 5%–95% "
        "of the pooled paths. Grid (seed ranking) and MLE: the plug-in RTS smoother, "
        "β<sub>t|n</sub> ± 1.645 sd (90%). When the model menu ran, the series' best Bayes "
        "variant (mean test log score) and the MLE of the same model are drawn too. The "
        "dashed line marks the first test row.</p>"
    ]
    any_fit = False
    for i, series in enumerate(ctx.comparison.series):
        fits = ctx.fits[series]
        paths = {}
        design = A.series_design(data, series, lay) if fits else None
        for method in A.path_methods(ctx.comparison.series[series].table, fits):
            fit = fits[method]
            if method in BAYES_VARIANTS:
                seed = int(ctx.comparison.settings.get("seed", 0)) + i
                paths[method] = A.bayes_paths(fit, design, seed=seed)
            else:
                paths[method] = A.spec_paths(fit, design, lay.burn, lay.n_train)
        if not paths:
            continue
        any_fit = True
        boundary = data.index[lay.n_train] if lay.n_train < lay.n else None
        n_states = len(lay.factors) + int(lay.intercept)
        max_points = int(np.clip(PATH_BUDGET / (len(ctx.fits) * n_states), 150, 450))
        fig = plot_method_betas(paths, boundary=boundary, title=f"{series}: beta paths",
                                max_points=max_points)  # fmt: skip
        parts += [f'<h3 id="betas-{slug(series)}">{esc(series)}</h3>', ctx.figures(fig)]
    if not any_fit:
        return parts[0] + ctx.missing_fits_note("the beta paths", A.PATH_METHODS)
    return "".join(parts)


def posterior_section(ctx: Context) -> str:
    """Return the HTML of section 5: posterior of each sd against the grid's and MLE's values."""
    lay = ctx.lay
    ann = f" × √{lay.ppy:g}" if lay.ppy else ""
    parts = [
        f"<p>Posterior of each standard deviation, per period, on a log axis (share of "
        f"draws per bin), with the prior (dashed) and the values chosen by the grid and the "
        f"MLE (vertical lines). A grid value set per row (rolling setters) is drawn at its "
        f"median over the training rows, with a bar spanning its 5%–95% range over time. "
        f"The tables also give annualised values (per period{ann}).</p>"
    ]
    shown = False
    for series in ctx.comparison.series:
        fit = ctx.bayes(series)
        if fit is None:
            continue
        shown = True
        draws = {p: d.ravel() for p, d in A.posterior_sds(fit).items()}
        first_row = burn_row(ctx.comparison.data[series].to_numpy(np.float64), lay.burn)
        refs = {m: A.spec_sds(spec, lay.factors, first_row)
                for m, spec in ctx.fits[series].items() if m not in BAYES_VARIANTS}  # fmt: skip
        priors = A.prior_dists(fit)
        cdfs = {p: d.cdf if d else None for p, d in priors.items()}
        title = f"{series}: posterior of σ_ε and σ_β (per period)"
        fig = plot_qr_posterior(draws, references=refs, prior_cdfs=cdfs, title=title)
        qr = A.qr_table(draws, refs, priors, fit.spec.ppy)
        parts += [
            f'<h3 id="posterior-{slug(series)}">{ctx.bayes_heading(series)}</h3>',
            ctx.figures(fig),
            table(qr, name=f"qr-{series}", default="{:.3g}"),
        ]
    if not shown:
        parts.append(ctx.missing_fits_note("the posterior of Q and R", BAYES_VARIANTS))
    return "".join(parts) + _static_text(ctx)


def _static_text(ctx: Context) -> str:
    """Which betas move: the grid's and MLE's Q beside the horseshoe's P(static), per series."""
    parts = []
    for series in ctx.comparison.series:
        fits = ctx.fits[series]
        fit = fits.get("bayes_shrink")
        if fit is None:
            continue
        first_row = burn_row(ctx.comparison.data[series].to_numpy(np.float64), ctx.lay.burn)
        specs = {m: spec for m, spec in fits.items() if m not in BAYES_VARIANTS}
        tab = A.static_table(fit, specs, ctx.lay.factors, first_row)
        parts += [f'<h4 id="static-{slug(series)}">{esc(series)}</h4>',
                  table(tab, name=f"static-{series}", default="{:.3g}")]
    if not parts:
        return ""
    return (
        "<h3>Which betas move: the grid's Q and the horseshoe</h3><p>The grid picks Q from "
        "setters (its sqrt(Q) per period: a per-row value at its median over the training "
        "rows); the MLE estimates it. The <code>bayes_shrink</code> fit puts a horseshoe "
        "prior on each drift sd σ<sub>β</sub> and gives the posterior probability that the "
        "beta is static: that its one-year drift sd is below a tenth of the default prior's "
        "(<code>BayesFit.static_probability</code>).</p>" + "".join(parts)
    )


def _preferred_bayes(ctx: Context, series: str) -> str | None:
    """Return the Bayes variant of ``series`` with the largest stacking weight, else the first."""
    fits, table = ctx.fits[series], ctx.comparison.series[series].table
    have = [m for m in BAYES_VARIANTS if m in fits]
    if "stacking weight" in table and set(have) <= set(table.index) and have:
        return max(have, key=lambda m: table.at[m, "stacking weight"])
    return have[0] if have else None


def alpha_section(ctx: Context) -> str:
    """Return the HTML of section 6: P(alpha_t > 0) and the volatility scaling of R."""
    lay, data = ctx.lay, ctx.comparison.data
    parts = [
        "<p>The probability that alpha (the intercept, a return per period) is above 0, from the "
        "Bayes fit, integrated over the training posterior of Q and R: in real time (filtered: "
        "what was knowable at each date) and in hindsight (smoothed: given every return). Where "
        "the comparison stacked several Bayes variants, the one with the largest stacking "
        "weight is shown. The dashed line marks the first test row. A single period's value "
        "moves with the betas' errors (a beta drifting faster than the model allows leaks "
        "into alpha): read runs of periods, not one.</p>"
    ]
    if not lay.intercept:
        return parts[0] + "<p>The models have no intercept: there is no alpha to show.</p>"
    rows, gammas, phis = {}, {}, {}
    for i, series in enumerate(ctx.comparison.series):
        method = _preferred_bayes(ctx, series)
        if method is None:
            continue
        fit = ctx.fits[series][method]
        seed = int(ctx.comparison.settings.get("seed", 0)) + i
        paths = A.full_paths(fit, A.series_design(data, series, lay), seed=seed)
        prob = p_positive_frame(paths, fit.spec.state_names[0])
        test = prob.iloc[lay.n_train - (lay.n - len(prob)):]
        rows[series] = {"method": method_label(method),
                        "last training row, filtered": prob["filtered"].iloc[-len(test) - 1],
                        "last row, filtered": prob["filtered"].iloc[-1],
                        "last row, smoothed": prob["smoothed"].iloc[-1],
                        "share of test rows, filtered > 0.9":
                            float((test["filtered"] > 0.9).mean()),
                        "share of test rows, filtered < 0.1":
                            float((test["filtered"] < 0.1).mean())}  # fmt: skip
        boundary = data.index[lay.n_train] if lay.n_train < lay.n else None
        fig = plot_alpha_probability(prob, boundary=boundary,
                                     title=f"{series}: P(alpha > 0), {method_label(method)}")
        parts += [f'<h3 id="alpha-{slug(series)}">{esc(series)}</h3>', ctx.figures(fig)]
        for name, fit in ctx.fits[series].items():
            post = fit.tree["posterior"] if name in BAYES_VARIANTS else {}
            if "gamma" in post:
                g = post["gamma"].values.ravel()
                gammas[(series, method_label(name))] = {
                    **_interval("gamma", g), "P(gamma > 0)": float((g > 0).mean())}
            if "index_half_life" in post:  # sampled (`Priors.index_half_life_sd`)
                years = post["index_half_life"].values.ravel()
                lo, mid, hi = np.quantile(years, [0.05, 0.5, 0.95])
                gammas[(series, method_label(name))].update({
                    "half-life median (years)": mid, "half-life 5%": lo, "half-life 95%": hi})
            if "phi_annual" in post:
                phis.update(_persistence_rows((series, method_label(name)), fit))
    if not rows:
        return parts[0] + ctx.missing_fits_note("P(alpha > 0)", BAYES_VARIANTS)
    parts.append(table(pd.DataFrame.from_dict(rows, orient="index").rename_axis("series"),
                       name="alpha", formats={"method": "{}"}, default="{:.2f}"))
    if gammas:
        parts += [
            "<p>Volatility scaling of the observation noise, R<sub>t</sub> = "
            "σ<sub>ε</sub><sup>2</sup> h<sub>t</sub><sup>γ</sup> (h<sub>t</sub>: past squared "
            "residuals of a rolling regression, known at t−1): posterior of γ in each "
            "volatility-scaled Bayes fit (γ = 0 is the constant R the seed's MLE setters "
            "assume; γ = 1 scales R with the index, like the seed's rolling-residual R). "
            "Where the index's half-life was sampled too (priors.index_half_life_sd), its "
            "posterior median and 5%–95% interval in years (the default is fixed at 0.5).</p>",
            table(pd.DataFrame.from_dict(gammas, orient="index").rename_axis(["series", "fit"]),
                  name="gamma", default="{:.2f}"),
        ]
    if phis:
        parts += [
            "<p>Mean reversion of the betas, β<sub>t</sub> − μ = φ (β<sub>t−1</sub> − μ) + "
            "η<sub>t</sub>: posterior of the one-year persistence φ<sup>ppy</sup> in each "
            "mean-reverting Bayes fit (1 is the random walk the grid and the other models "
            "assume) and the half-life of a deviation from μ at its median.</p>",
            table(pd.DataFrame.from_dict(phis, orient="index")
                  .rename_axis(["series", "fit", "state"]), name="phi", default="{:.2f}"),
        ]
    return "".join(parts)


def _interval(name: str, draws: np.ndarray) -> dict[str, float]:
    """Return the posterior median and central 90% interval of a parameter's draws."""
    return {f"{name} median": np.median(draws), "5%": np.quantile(draws, 0.05),
            "95%": np.quantile(draws, 0.95)}


def _persistence_rows(key: tuple[str, ...], fit: Any) -> dict[tuple[str, ...], dict[str, float]]:
    """Per state of a mean-reverting fit: the posterior of phi_annual and the half-life.

    key: the row's labels before the state (series, fit).
    """
    post = fit.tree["posterior"]["phi_annual"]
    half_life = fit.half_life()["median"]
    out = {}
    for state in fit.spec.state_names:
        p = post.sel(state=state).values.ravel()
        out[(*key, state)] = {
            **_interval("phi_annual", p),
            "half-life (years)": float(half_life[state]),
        }
    return out


def _status(report: Any) -> str:
    if report.ok:
        return box("All checks passed.", "ok")
    problems = bullets([esc(p) for p in report.problems])
    return box("<strong>Sampling checks FAILED</strong>" + problems, "fail")


def sampling_section(ctx: Context) -> str:
    """Return the HTML of section 6: sampling diagnostics (R-hat, ESS, divergences, E-BFMI)."""
    from tvbeta.estimate.bayes.diagnostics import BFMI_MIN, ESS_MIN, RHAT_MAX

    reports = ctx.convergence
    if not reports:
        return ctx.missing_fits_note("the sampling diagnostics", BAYES_VARIANTS)
    failed = [s for s, r in reports.items() if not r.ok]
    if failed:
        overall = box(
            f"<strong>Convergence checks failed in {len(failed)} of {len(reports)} "
            f"series: {esc(', '.join(failed))}.</strong> Treat those posteriors (and "
            "the Bayes scores) with caution; sample longer or reparametrise.",
            "fail",
        )
    else:
        overall = box(f"All {len(reports)} posteriors passed the convergence checks.", "ok")
    parts = [
        overall,
        f"<p>Checks (Vehtari et al. 2021; Betancourt 2016): R-hat ≤ {RHAT_MAX}, bulk and "
        f"tail ESS ≥ {ESS_MIN:.0f}, no divergent transition, E-BFMI ≥ {BFMI_MIN} in every "
        "chain. Failing cells are red.</p>",
        _variants_checks(ctx),
    ]
    for series, report in reports.items():
        fit = ctx.bayes(series)
        tab = report.summary.copy()
        tab.index.name = "parameter"
        bad = pd.DataFrame(False, index=tab.index, columns=tab.columns)
        if "r_hat" in tab:
            bad["r_hat"] = ~(tab["r_hat"] <= RHAT_MAX)
        for col in ("ess_bulk", "ess_tail"):
            if col in tab:
                bad[col] = ~(tab[col] >= ESS_MIN)
        bfmi = ", ".join(f"{b:.2f}" for b in report.bfmi) or "–"
        parts += [
            f'<h3 id="sampling-{slug(series)}">{ctx.bayes_heading(series)}</h3>',
            _status(report),
            facts({"divergent transitions": report.n_divergent, "E-BFMI per chain": bfmi,
                   "sampler": fit.settings.get("sampler", "–")}),
            table(tab, name=f"sampling-{series}", default="{:.4g}", bad=bad,
                  formats={"ess_bulk": "{:.0f}", "ess_tail": "{:.0f}", "r_hat": "{:.3f}"}),
            ctx.figures(plot_traces(A.posterior_sds(fit),
                                    title=f"{series}: traces (one line per chain)")),
        ]
    return "".join(parts)


def _variants_checks(ctx: Context) -> str:
    """Every Bayes variant's checks in one table, when more ran than the sections show.

    The sections below show one posterior per series (`Context.bayes_method`); a model menu
    fits several, and a user asked which of them failed.
    """
    from tvbeta.estimate.bayes.diagnostics import ESS_MIN, RHAT_MAX, check_convergence

    rows = {}
    for series, fits in ctx.fits.items():
        for method in BAYES_VARIANTS:
            if fits.get(method) is None:
                continue
            report = check_convergence(fits[method], warn=False)  # computed once per fit
            summary = report.summary
            rows[(series, method_label(method))] = {
                "checks": "passed" if report.ok else "failed",
                "largest R-hat": float(summary["r_hat"].max()),
                "smallest bulk ESS": float(summary["ess_bulk"].min()),
                "divergent": report.n_divergent,
            }
    if len(rows) <= len(ctx.convergence):
        return ""
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.names = ["series", "method"]
    bad = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    bad["checks"] = frame["checks"] == "failed"
    bad["largest R-hat"] = ~(frame["largest R-hat"] <= RHAT_MAX)
    bad["smallest bulk ESS"] = ~(frame["smallest bulk ESS"] >= ESS_MIN)
    bad["divergent"] = frame["divergent"] > 0
    return ("<p>Every Bayes variant fitted (the tables below show one per series):</p>"
            + table(frame, name="sampling-variants", bad=bad,
                    formats={"largest R-hat": "{:.3f}", "smallest bulk ESS": "{:.0f}"}))


def residuals_section(ctx: Context) -> str:
    """Return the HTML of section 7: calibration of the test-span forecasts."""
    parts = [
        "<p>Calibration of each method's one-step predictive over the test rows. Coverage "
        "of the central 50/80/90/95% intervals (red: a binomial test rejects the nominal "
        "rate at 5%); Ljung-Box p-values of the normalised residuals z = Φ<sup>−1</sup>(PIT)"
        " (the standardized residuals for a Gaussian predictive; red: autocorrelation at "
        "5%); mean and sd of z (0 and 1 when calibrated; red: a bias or a too narrow / too "
        "wide predictive at 5%). The PIT histograms are flat for a calibrated forecast.</p>"
    ]
    for series, s in ctx.comparison.series.items():
        checks, flags = A.forecast_checks(s.forecasts)
        pits = {m: fc.pit for m, fc in s.forecasts.items()}
        parts += [
            f'<h3 id="residuals-{slug(series)}">{esc(series)}</h3>',
            table(checks, name=f"residuals-{series}", bad=flags, default="{:.3f}",
                  formats={"n test": "{:.0f}", "mean z": "{:.3f}", "sd z": "{:.3f}"}),
            ctx.figures(plot_pit_histograms(pits,
                                            title=f"{series}: PIT histograms of the test rows")),
        ]
    return "".join(parts)
