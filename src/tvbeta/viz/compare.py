"""Figures of the method comparison: scores, beta paths by method, posterior of Q and R, PIT.

Each function takes plain tables and arrays (not fit objects), so a saved comparison can be
re-plotted without refitting; `tvbeta.report` computes the inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tvbeta.viz.bands import BandPath
from tvbeta.viz.betas import (
    band_grid,
    cell,
    f32,
    finish_layout,
    shared_x_grid,
    subplot_grid,
    thin,
    x_values,
)
from tvbeta.viz.template import PALETTE, rgba

__all__ = [
    "METHOD_COLORS", "METHOD_LABELS", "BandPath", "RefValue", "method_color", "method_label",
    "plot_method_betas", "plot_pit_histograms", "plot_qr_posterior", "plot_score_bars",
    "plot_traces",
]  # fmt: skip

#: Short names of the comparison's methods, for legends.
METHOD_LABELS: dict[str, str] = {
    "grid_seed": "grid (seed ranking)", "grid_loglik": "grid (log-lik ranking)", "mle": "MLE",
    "mle_vol": "MLE, volatility-scaled R", "bayes": "Bayes (NUTS)",
    "bayes_vol": "Bayes, volatility-scaled R", "bayes_shrink": "Bayes, horseshoe on Q",
    "mle_mr": "MLE, mean-reverting betas", "bayes_mr": "Bayes, mean-reverting betas",
    "mle_vol_mr": "MLE, volatility-scaled R, mean-reverting betas",
    "bayes_vol_mr": "Bayes, volatility-scaled R, mean-reverting betas",
    "bayes_stacked": "Bayes, stacked", "rolling_ols": "rolling OLS",
}  # fmt: skip
#: One colour per method, the same in every figure of a report.
METHOD_COLORS: dict[str, str] = {
    "bayes": PALETTE[0], "grid_seed": PALETTE[1], "mle": PALETTE[2], "grid_loglik": PALETTE[4],
    "rolling_ols": PALETTE[6], "bayes_vol": PALETTE[3], "mle_vol": PALETTE[5],
    "bayes_shrink": PALETTE[7], "bayes_mr": PALETTE[8], "mle_mr": PALETTE[9],
    "bayes_vol_mr": "#393b79", "mle_vol_mr": "#637939", "bayes_stacked": "#843c39",
}  # fmt: skip


# the two grid rankings often pick the same Q or R: a dashed line shows the one beneath
REF_DASH: dict[str, str] = {"grid_loglik": "dash"}


def method_label(method: str) -> str:
    """Return the method's display name (``METHOD_LABELS``), else the name itself."""
    return METHOD_LABELS.get(method, method)


def method_color(method: str) -> str:
    """Return the method's colour; unknown methods get a stable colour from their name."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return PALETTE[sum(map(ord, method)) % len(PALETTE)]


class RefValue(NamedTuple):
    """A point value of a parameter; ``lo``/``hi`` span it over time when it was per-time."""

    value: float
    lo: float
    hi: float


def _wide(tables: Mapping[str, pd.DataFrame], column: str, methods: list[str]) -> pd.DataFrame:
    """One column of every table side by side: (method, series), NaN where absent."""
    return pd.DataFrame(
        {s: t[column] if column in t else pd.Series(np.nan, t.index) for s, t in tables.items()}
    ).reindex(methods)


def plot_score_bars(
    tables: Mapping[str, pd.DataFrame],
    *,
    reference: str = "bayes",
    title: str = "Out-of-sample log score (nats per step; higher is better)",
) -> go.Figure:
    """Log score per method and series (top) and its difference to ``reference`` (bottom).

    Parameters
    ----------
    tables : mapping series -> score table
        `SeriesResult.table`: index method, columns "log score", "diff vs <reference>" and
        "diff se" (the paired standard error of the per-step difference).
    reference : str
        The method the differences are taken against.

    Returns
    -------
    go.Figure
        Grouped bars, one trace per method in each panel; error bars +/- 1 paired se of the
        difference to the reference in both panels.
    """
    series = list(tables)
    methods = list(dict.fromkeys(m for t in tables.values() for m in t.index))
    diff_col = f"diff vs {reference}"
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, subplot_titles=(
        f"log score (error bars: +/- 1 paired se vs {method_label(reference)})",
        f"difference to {method_label(reference)} (+/- 1 se)",
    ))  # fmt: skip
    score, diff, se = (_wide(tables, name, methods) for name in ("log score", diff_col, "diff se"))
    for method in methods:
        style = dict(marker_color=method_color(method), legendgroup=method)
        bars = dict(type="data", array=list(se.loc[method]), thickness=1.2)
        fig.add_trace(go.Bar(x=series, y=list(score.loc[method]), name=method_label(method),
                             error_y={**bars, "visible": method != reference},  # its se is 0
                             **style), row=1, col=1)  # fmt: skip
        if method != reference:
            fig.add_trace(go.Bar(x=series, y=list(diff.loc[method]), name=method_label(method),
                                 showlegend=False, error_y=bars, **style),
                          row=2, col=1)  # fmt: skip
    finish_layout(fig, title, 620)
    fig.update_layout(barmode="group", hovermode="closest")
    fig.update_yaxes(title_text="nats / step", row=1, col=1)
    fig.update_yaxes(title_text="difference", row=2, col=1)
    return fig


def plot_method_betas(
    paths: Mapping[str, BandPath],
    *,
    boundary: object | None = None,
    title: str = "Beta paths by method",
    n_cols: int = 3,
    max_points: int = 450,
) -> go.Figure:
    """One subplot per state; per method its mean path and band, the test span marked.

    Parameters
    ----------
    paths : mapping method -> BandPath
        States missing from a method (e.g. a spec without intercept) are left out for it.
    boundary : label of the first test row, optional
        Drawn as a dashed vertical line ("test ->").
    n_cols : int
        Subplots per row.
    max_points : int
        Rows drawn per path at most (evenly thinned, last row kept) to bound the file size.
    """
    colors = {m: method_color(m) for m in paths}
    names = {m: f"{method_label(m)} ({p.band})" for m, p in paths.items()}
    fig, states, cols = band_grid(paths, title=title, n_cols=n_cols, max_points=max_points,
                                  colors=colors, names=names, row_height=270)  # fmt: skip
    if boundary is not None:
        b = x_values(pd.Index([boundary]))[0]
        for i in range(len(states)):
            fig.add_vline(x=b, line=dict(color="#555555", dash="dash", width=1), **cell(i, cols))
        # a separate annotation: add_vline's own annotation cannot place itself on date strings
        fig.add_annotation(x=b, y=1, xref="x", yref="y domain", text=" test →", showarrow=False,
                           xanchor="left", yanchor="top", font=dict(size=11, color="#555555"),
                           row=1, col=1)  # fmt: skip
    return fig


def _add_histogram(fig: go.Figure, edges: np.ndarray, share: np.ndarray, name: str,
                   shown: set[str], where: dict[str, int], **style: Any) -> None:  # fmt: skip
    """Draw a histogram (share per bin) as a step line; its legend entry only if not ``shown``."""
    fig.add_trace(go.Scatter(x=edges, y=np.r_[share, share[-1]], line_shape="hv", mode="lines",
                             name=name, legendgroup=name, showlegend=name not in shown, **style),
                  **where)  # fmt: skip
    shown.add(name)


def _log_bins(
    d: np.ndarray, refs: Mapping[str, RefValue], n_bins: int | None
) -> tuple[np.ndarray, float, float]:
    """Bin edges of equal log width (set by the central 99% of the draws), over the x range.

    The x range covers the posterior and the references (the prior is drawn there too).
    """
    bins = n_bins or int(np.clip(math.sqrt(d.size), 10, 40))  # fewer draws, coarser bins
    lo, hi = np.log10(np.quantile(d, [0.005, 0.995]) * [1 / 1.3, 1.3])
    width = (hi - lo) / bins
    positive = [x for v in refs.values() for x in (v.lo, v.hi, v.value) if x > 0]
    x_lo = min([lo, *np.log10(positive)]) - np.log10(1.5)
    x_hi = max([hi, *np.log10(positive)]) + np.log10(1.5)
    k = np.arange(math.floor((x_lo - lo) / width), math.ceil((x_hi - lo) / width) + 1)
    return 10 ** (lo + width * k), float(x_lo), float(x_hi)


def _add_reference(fig: go.Figure, method: str, v: RefValue, top: float, where: dict[str, int],
                   legend: bool) -> None:  # fmt: skip
    """Draw a method's value as a vertical line; a per-time value also as a bar over its range."""
    color, label = method_color(method), method_label(method)
    fig.add_trace(go.Scatter(
        x=[v.value, v.value], y=[0, top], mode="lines", name=label, legendgroup=method,
        line=dict(color=color, width=2, dash=REF_DASH.get(method)), showlegend=legend,
        hovertemplate=f"{label}: {v.value:.4g}<extra></extra>",
    ), **where)  # fmt: skip
    if v.hi > v.lo > 0:
        fig.add_trace(go.Scatter(
            x=[v.lo, v.hi], y=[top, top], mode="lines+markers", legendgroup=method,
            marker=dict(symbol="line-ns-open", size=8), line=dict(color=color, width=1.5),
            showlegend=False,
            hovertemplate=f"{label} over time: {v.lo:.3g} to {v.hi:.3g}<extra></extra>",
        ), **where)  # fmt: skip


def plot_qr_posterior(
    draws: Mapping[str, np.ndarray],
    *,
    references: Mapping[str, Mapping[str, RefValue]] | None = None,
    prior_cdfs: Mapping[str, Callable[[np.ndarray], np.ndarray] | None] | None = None,
    title: str = "Posterior of the standard deviations (per period)",
    n_cols: int = 4,
    n_bins: int | None = None,
) -> go.Figure:
    """Plot the posterior histogram of each sd on a log axis, with prior and other methods.

    Parameters
    ----------
    draws : mapping parameter -> (D,) posterior draws of a standard deviation (> 0)
        e.g. "sigma_eps" and "sigma_beta[mkt]", per period.
    references : mapping method -> (mapping parameter -> RefValue), optional
        Vertical lines; a per-time value (lo < hi) also as a bar over its range over time.
        Values <= 0 cannot sit on a log axis: they are named in the subplot instead.
    prior_cdfs : mapping parameter -> CDF of the prior of that sd (or None), optional
        The prior mass per bin, dashed.
    n_bins : int, optional
        Bins across the central 99% of the posterior, equal in log width; default
        sqrt(draws), between 10 and 40.

    Returns
    -------
    go.Figure
        y is the share of draws per bin (the prior: its probability per bin).
    """
    references, prior_cdfs = references or {}, prior_cdfs or {}
    params = list(draws)
    fig, rows, cols = subplot_grid(params, n_cols, 0.25, horizontal_spacing=0.06)
    shown: set[str] = set()  # legend entries already made
    blue = method_color("bayes")
    for i, p in enumerate(params):
        where = cell(i, cols)
        d = np.asarray(draws[p], dtype=np.float64)
        d = d[np.isfinite(d) & (d > 0)]
        refs = {m: v[p] for m, v in references.items() if p in v}
        edges, x_lo, x_hi = _log_bins(d, refs, n_bins)
        share = np.histogram(d, bins=edges)[0] / d.size
        _add_histogram(fig, edges, share, "posterior", shown, where, fill="tozeroy",
                       line=dict(color=blue, width=1.2), fillcolor=rgba(blue, 0.25))  # fmt: skip
        if (cdf := prior_cdfs.get(p)) is not None:
            _add_histogram(fig, edges, np.diff(cdf(edges)), "prior", shown, where,
                           line=dict(color="#777777", dash="dash", width=1.2))  # fmt: skip
        top = float(share.max()) * 1.12
        off_axis = [f"{method_label(m)} = {v.value:.3g}" for m, v in refs.items() if v.value <= 0]
        for method, v in refs.items():
            if v.value > 0:
                _add_reference(fig, method, v, top, where, legend=method not in shown)
                shown.add(method)
        if off_axis:
            fig.add_annotation(text="; ".join(off_axis) + " (not on the log axis)", x=0.01, y=0.98,
                               xref="x domain", yref="y domain", showarrow=False, xanchor="left",
                               font=dict(size=10), **where)  # fmt: skip
        # over several decades label the powers of 10 only (minor digits crowd the axis)
        fig.update_xaxes(type="log", range=[x_lo, x_hi], exponentformat="power", tickangle=0,
                         dtick=1 if x_hi - x_lo >= 2 else None, **where)  # fmt: skip
    finish_layout(fig, title, 300 * rows + 120)
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(title_text="share per bin", col=1)
    return fig


def plot_pit_histograms(
    pits: Mapping[str, np.ndarray],
    *,
    n_bins: int = 10,
    title: str = "PIT histograms of the test span (flat = calibrated)",
) -> go.Figure:
    """One histogram of the probability integral transform per method.

    pits : mapping method -> (m,) PIT values P(Y_t <= y_t | y_{<t}) in (0, 1). Bars are
    densities (1 = uniform); the grey band is the uniform's +/- 2 sd for m draws (a U shape:
    too narrow; a hump: too wide; a slope: biased).
    """
    methods = list(pits)
    fig = make_subplots(rows=1, cols=max(1, len(methods)), shared_yaxes=True,
                        subplot_titles=[method_label(m) for m in methods])  # fmt: skip
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    y_max = 2.0
    for j, method in enumerate(methods, start=1):
        pit = np.asarray(pits[method], dtype=np.float64)
        m = max(pit.size, 1)
        density = np.histogram(pit, bins=edges)[0] / (m / n_bins)
        half = 2 * math.sqrt((1 - 1 / n_bins) / (m / n_bins))
        y_max = max(y_max, float(density.max()) * 1.1, 1 + half * 1.1)
        fig.add_trace(go.Bar(
            x=centers, y=density, width=1 / n_bins * 0.95, name=method_label(method),
            marker_color=rgba(method_color(method), 0.85), showlegend=False,
            hovertemplate="PIT %{x:.2f}: density %{y:.2f}<extra></extra>",
        ), row=1, col=j)  # fmt: skip
        # shapes after the trace: plotly skips row/col shapes on subplots without data
        fig.add_hrect(y0=max(0.0, 1 - half), y1=1 + half, fillcolor="rgba(0,0,0,0.10)",
                      line_width=0, layer="above", row=1, col=j)  # fmt: skip
        fig.add_hline(y=1, line=dict(color="#333333", dash="dash", width=1), row=1, col=j)
    fig.update_xaxes(range=[0, 1], dtick=0.5)
    fig.update_yaxes(range=[0, y_max])
    fig.update_yaxes(title_text="density", col=1)
    finish_layout(fig, title, 300)
    fig.update_layout(hovermode="closest", margin=dict(t=80))
    return fig


def plot_traces(
    draws: Mapping[str, np.ndarray],
    *,
    title: str = "Sampler traces (one line per chain)",
    max_draws: int = 400,
    n_cols: int = 2,
    labels: Sequence[str] | None = None,
) -> go.Figure:
    """Plot the trace of each parameter: draws (chain, draw), one line per chain, thinned."""
    params = list(draws)
    names = list(labels) if labels is not None else params
    fig, rows, cols = shared_x_grid(names, n_cols, spacing=0.2)
    for i, p in enumerate(params):
        values = np.atleast_2d(np.asarray(draws[p]))
        keep = thin(values.shape[1], max_draws)
        for chain, row in enumerate(values):
            fig.add_trace(go.Scatter(
                x=keep, y=f32(row[keep]), mode="lines", name=f"chain {chain}", opacity=0.8,
                line=dict(width=0.8, color=PALETTE[chain % len(PALETTE)]),
                legendgroup=f"chain {chain}", showlegend=i == 0,
            ), **cell(i, cols))  # fmt: skip
    finish_layout(fig, title, 190 * rows + 120)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(title_text="draw", row=rows)
    return fig
