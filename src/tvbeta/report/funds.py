"""One HTML page for many funds: ranked by style drift, by P(alpha > 0), by forecast quality.

Reads the Dataset of `tvbeta.funds.fit_funds` only (summaries, not fits), so a page of 500
funds costs no more than its tables: each ranking shows the first and last ``top`` funds, and
one figure shows every fund at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from tvbeta.constants import FUND, TIME
from tvbeta.data.validate import listed
from tvbeta.funds import forecast_quality, style_drift
from tvbeta.outputs import write_text
from tvbeta.report.page import Figures, box, esc, facts, page, table
from tvbeta.viz.template import TEMPLATE_NAME

__all__ = ["write_funds_report"]


def write_funds_report(
    funds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    top: int = 20,
    title: str | None = None,
) -> Path:
    """Write many funds' fits as one self-contained HTML page (works offline).

    Parameters
    ----------
    funds : xr.Dataset
        From `tvbeta.funds.fit_funds` (MLE or Bayes; read lazily from a store is fine).
    path : path-like
        The HTML file (parent folders are created; written atomically).
    top : int, default 20
        Funds shown at each end of a ranking.
    title : str, optional

    Returns
    -------
    Path
        ``path``. Sections: the run (method, factors, span, convergence); style drift (the
        one-year drift sd of each factor beta, `style_drift`, the most and least drifting
        funds and a histogram of every fund's largest); alpha (Bayes fits with an intercept:
        P(alpha > 0) at the last date, in real time and in hindsight, ranked, and every fund
        in one scatter); forecast quality (the one-step scores of `tvbeta.funds.fund_summary`
        on the fitted span, in-sample for Q and R: ranked by the share of the return's variance
        the exposures predict, with the coverage of the central ``level`` predictive interval,
        and every fund in one scatter; a held-out score is `compare_methods`').

    Raises
    ------
    ValueError
        ``top`` is not a positive integer.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    figures = Figures()
    n = funds.sizes[FUND]
    method = funds.attrs.get("method", "?")
    title = title or f"tvbeta: {n} funds, {'MLE' if method == 'mle' else 'Bayes'} fits"
    sections = [
        ("run", "1. The run", _run_section(funds)),
        ("drift", "2. Style drift", _drift_section(funds, top, figures)),
        ("alpha", "3. Alpha: probability above zero", _alpha_section(funds, top, figures)),
        ("forecast", "4. Forecast quality", _forecast_section(funds, top, figures)),
    ]
    subtitle = f"{n} funds on {', '.join(funds.attrs.get('factors', []))}."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, page(title, sections, subtitle=subtitle))


def _ends(frame: pd.DataFrame, top: int) -> pd.DataFrame:
    """Return the first and last ``top`` rows of a ranked frame (all of it when short)."""
    return frame if len(frame) <= 2 * top else pd.concat([frame.head(top), frame.tail(top)])


def _run_section(funds: xr.Dataset) -> str:
    times = pd.DatetimeIndex(funds[TIME].values)
    converged = funds["converged"].to_numpy().astype(bool)
    items = {
        "method": funds.attrs.get("method", "?"),
        "funds": funds.sizes[FUND],
        "factors": ", ".join(funds.attrs.get("factors", [])),
        "span": f"{times[0]:%Y-%m-%d} .. {times[-1]:%Y-%m-%d} ({len(times)} rows)",
        "band level": funds.attrs.get("level", "?"),
        "converged": f"{int(converged.sum())} of {converged.size}",
    }
    parts = [facts(items)]
    if not converged.all():
        failed = [str(f) for f in funds[FUND].values[~converged]]
        shown = listed(failed, 50)
        parts.append(box(
            f"<strong>Not converged</strong> (the MLE's optimiser did not stop at a stationary "
            f"point, or a posterior failed a convergence check): {esc(shown)}. Read their rows "
            "with care.", "fail"))  # fmt: skip
    return "".join(parts)


def _drift_section(funds: xr.Dataset, top: int, figures: Figures) -> str:
    drift = style_drift(funds)
    fig = go.Figure(go.Histogram(x=drift["largest"], nbinsx=40, marker_color="#1f77b4"))
    fig.update_layout(template=TEMPLATE_NAME, height=320, bargap=0.05,
                      xaxis_title="largest one-year drift sd of a factor beta",
                      yaxis_title="funds", title=f"Style drift of all {len(drift)} funds")
    rows = _ends(drift, top)
    largest = pd.DataFrame({c: rows["factor"] == c for c in rows.columns}, index=rows.index)
    shown = ("every fund shown" if len(drift) <= 2 * top
             else f"the {top} most and {top} least drifting funds shown")  # fmt: skip
    return "".join([
        f"<p>How far each factor beta moves in a year: sqrt(periods per year &times; Q), the "
        f"standard deviation of its random walk's one-year change ({_q_source(funds)}; 0 where "
        f"the data cannot tell the drift from none). Ranked by each "
        f"fund's largest; {shown}. z: that factor's Q over its "
        + ("standard error: above about 2 the data clearly show the drift; below, they are "
           "inconclusive, not evidence of none (a variance's likelihood is skewed, and its "
           "standard error overstates the doubt: funds whose beta truly trends can have z "
           "below 2), and a noisy static fund can rank above a drifting one: compare their "
           "beta paths" if funds.attrs.get("method") == "mle" else
           "posterior median over its posterior sd: its size against its uncertainty, not a "
           "test (each fund's fit_bayes(...).static_probability() gives the probability that a "
           "beta is effectively static)") + ".</p>",
        table(rows, name="drift", formats={"factor": "{}"}, default="{:.3f}", best=largest),
        figures(fig),
    ])


def _q_source(funds: xr.Dataset) -> str:
    return "the MLE of Q" if funds.attrs.get("method") == "mle" else "the posterior median of Q"


def _alpha_section(funds: xr.Dataset, top: int, figures: Figures) -> str:
    if "p_alpha_filtered" not in funds:
        return ("<p>No alpha probabilities: they come from Bayes fits with an intercept and beta "
                "paths (<code>fit_funds(..., method=\"bayes\")</code>, <code>n_paths</code> "
                "&gt; 0).</p>")
    # each fund's last row with a probability (pandas: xarray's ffill needs bottleneck)
    last = {kind: funds[f"p_alpha_{kind}"].transpose(FUND, TIME).to_pandas().ffill(axis=1)
            .iloc[:, -1].to_numpy() for kind in ("filtered", "smoothed")}  # fmt: skip
    frame = pd.DataFrame({"real time (filtered)": last["filtered"],
                          "hindsight (smoothed)": last["smoothed"]},
                         index=pd.Index(funds[FUND].values, name=FUND))  # fmt: skip
    frame = frame.sort_values("real time (filtered)", ascending=False, kind="stable")
    when = pd.Timestamp(funds[TIME].values[-1])
    fig = go.Figure(go.Scatter(
        x=frame["real time (filtered)"], y=frame["hindsight (smoothed)"], mode="markers",
        text=[str(f) for f in frame.index], hovertemplate="%{text}: %{x:.2f}, %{y:.2f}",
        marker={"size": 7, "color": "#1f77b4", "opacity": 0.7}))  # fmt: skip
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "#999"})
    fig.update_layout(template=TEMPLATE_NAME, height=420, xaxis_range=[-0.02, 1.02],
                      yaxis_range=[-0.02, 1.02], xaxis_title="P(alpha > 0), real time",
                      yaxis_title="P(alpha > 0), hindsight",
                      title=f"Every fund at {when:%Y-%m-%d}")  # fmt: skip
    above = int(np.sum(frame["real time (filtered)"] > 0.9))
    below = int(np.sum(frame["real time (filtered)"] < 0.1))
    shown = "every fund" if len(frame) <= 2 * top else f"the {top} highest and {top} lowest"
    return "".join([
        f"<p>P(alpha &gt; 0) at the last date ({when:%Y-%m-%d}), averaged over the posterior of "
        "Q and R: in real time (given the returns up to then) and in hindsight (given every "
        f"return). Funds above 0.9 in real time: {above}; below 0.1: {below}; {shown} "
        "shown.</p>",
        table(_ends(frame, top), name="alpha", default="{:.2f}"),
        figures(fig),
    ])


def _forecast_section(funds: xr.Dataset, top: int, figures: Figures) -> str:
    if "forecast_r2" not in funds:  # a store written before the scores were part of a summary
        return "<p>No forecast scores in these summaries: fit the funds again to get them.</p>"
    frame = forecast_quality(funds)
    level = float(funds.attrs.get("level", 0.9))
    fig = go.Figure(go.Scatter(
        x=frame["one-step R²"], y=frame["coverage"], mode="markers",
        text=[str(f) for f in frame.index], hovertemplate="%{text}: R² %{x:.2f}, %{y:.2f}",
        marker={"size": 7, "color": "#1f77b4", "opacity": 0.7}))  # fmt: skip
    fig.add_hline(y=level, line={"dash": "dot", "color": "#999"})
    fig.update_layout(template=TEMPLATE_NAME, height=420, xaxis_title="one-step R²",
                      yaxis_title=f"coverage of the {level:.0%} predictive interval",
                      title="Every fund's one-step forecast")  # fmt: skip
    off = frame["coverage"].sub(level).abs() > 0.05
    shown = "every fund" if len(frame) <= 2 * top else f"the {top} best and {top} worst"
    rows = _ends(frame, top)
    return "".join([
        "<p>How well each fund's factor exposures, as known the period before, predict its "
        "return, over the fitted span: the one-step R² (the share of the return's variance "
        "they predict), the coverage of the central "
        f"{level:.0%} predictive interval, the mean log predictive density (nats per period; "
        "it also grows as a fund's volatility shrinks, so it does not rank funds of different "
        "risk) and the RMSE. Q and R were fitted to these returns, so the scores are "
        "in-sample and a little optimistic; <code>compare_methods</code> scores a held-out "
        f"span. Funds whose coverage is more than 0.05 from {level:.2f} (in red): "
        f"{int(off.sum())} of {len(frame)}; "
        f"{shown} shown.</p>",
        table(rows, name="forecast", default="{:.3f}", formats={"RMSE": "{:.4f}"},
              bad=pd.DataFrame({c: off[rows.index] & (c == "coverage") for c in rows.columns})),
        figures(fig),
    ])
