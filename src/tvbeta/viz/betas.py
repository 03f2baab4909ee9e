"""Beta paths with uncertainty bands (the seed's `plot_beta_grid`, filtered vs smoothed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tvbeta.viz.template import PALETTE, TEMPLATE_NAME, rgba


def add_band(
    fig: go.Figure,
    x: pd.Index,
    mid: pd.Series,
    lower: pd.Series,
    upper: pd.Series,
    *,
    name: str,
    color: str,
    row: int,
    col: int,
    showlegend: bool = True,
    dash: str | None = None,
) -> None:
    """A line with a translucent band, grouped in the legend (one click hides both)."""
    xs = list(x)
    fig.add_trace(
        go.Scatter(
            x=xs + xs[::-1],
            y=list(upper) + list(lower[::-1]),
            fill="toself",
            fillcolor=rgba(color, 0.18),
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
            legendgroup=name,
            name=f"{name} band",
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=xs, y=list(mid), mode="lines", name=name, legendgroup=name, showlegend=showlegend,
            line=dict(color=color, width=1.8, dash=dash),
        ),
        row=row,
        col=col,
    )


def finish_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Template, height (px) and a header: the title, then the legend on its own line below.

    The template's legend sits just above the plot area, where it collides with the title
    and the first row of subplot titles; here both are placed in pixels from the top of the
    page, and the top margin leaves room for them.
    """
    fig.update_layout(
        template=TEMPLATE_NAME,
        height=height,
        margin=dict(t=110),
        title=dict(text=title, x=0.01, xanchor="left", yref="container", yanchor="top",
                   y=1 - 12 / height),
        legend=dict(yref="container", yanchor="top", y=1 - 46 / height, x=0.01,
                    xanchor="left", orientation="h"),
    )  # fmt: skip
    return fig


def _grid(names: list[str], n_cols: int, title: str) -> tuple[go.Figure, int]:
    cols = max(1, min(n_cols, len(names)))
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, shared_xaxes=True,
                        vertical_spacing=0.12 / max(rows - 1, 1) if rows > 1 else 0.1)
    finish_layout(fig, title, 260 * rows + 110)
    return fig, cols


def state_sd(results) -> pd.DataFrame:
    """Filtered standard deviations sqrt(diag P_{t|t}): DataFrame like ``results["beta"]``.

    Uses ``results.beta_sd`` when the result has it (a KalmanResult), else the diagonals of
    the seed's ``results["beta_cov"]`` dict (one (k, k) matrix per date, in time order).
    """
    beta = results["beta"]
    sd = getattr(results, "beta_sd", None)
    if sd is None:
        cov = np.stack(list(results["beta_cov"].values())) if len(beta) else np.empty((0, 0, 0))
        with np.errstate(invalid="ignore"):
            sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        sd = pd.DataFrame(sd, index=beta.index, columns=beta.columns)
    return sd


def plot_beta_grid(
    results, n_cols: int = 3, show_gain: bool = False, n_sd: float = 1.0
) -> go.Figure:
    """One subplot per state: the filtered beta with a +/- n_sd standard-deviation band.

    `results` is a `KalmanResult` (or the seed-style mapping with "beta" and "beta_cov").
    With show_gain, the Kalman gain of each state is drawn as a dotted line on the same axes
    (the seed's choice; the gain is in beta per unit return, not in beta).
    """
    beta = results["beta"]
    sd = state_sd(results)
    names = list(beta.columns)
    title = f"Beta paths: {results['meta'].get('Model Name', '')} (+/- {n_sd:g} sd)"
    fig, cols = _grid(names, n_cols, title)
    gain = results["kalman_gain"] if show_gain else None
    for i, name in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        color = PALETTE[i % len(PALETTE)]
        add_band(fig, beta.index, beta[name], beta[name] - n_sd * sd[name],
                 beta[name] + n_sd * sd[name], name=name, color=color, row=r, col=c)
        if gain is not None:
            fig.add_trace(go.Scatter(x=gain.index, y=gain.iloc[:, i], mode="lines",
                                     name=f"gain {name}", line=dict(color=color, dash="dot")),
                          row=r, col=c)
    fig.update_yaxes(title_text="beta" + (" / gain" if show_gain else ""), col=1)
    return fig


def plot_filtered_vs_smoothed(results, n_cols: int = 3, z: float = 1.645) -> go.Figure:
    """Filtered (real-time) against smoothed (full-sample) betas, each with a +/- z sd band."""
    names = list(results.beta.columns)
    fig, cols = _grid(names, n_cols, f"Filtered vs smoothed betas (+/- {z:g} sd)")
    views = (("filtered", results.beta, results.beta_sd, PALETTE[0], None),
             ("smoothed", results.beta_smooth, results.beta_smooth_sd, PALETTE[1], "dash"))
    for i, name in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        for label, mean, sd, color, dash in views:
            add_band(fig, mean.index, mean[name], mean[name] - z * sd[name],
                     mean[name] + z * sd[name], name=label, color=color, row=r, col=c,
                     showlegend=i == 0, dash=dash)
    fig.update_yaxes(title_text="beta", col=1)
    return fig
