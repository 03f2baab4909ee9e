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


def _grid(names: list[str], n_cols: int, title: str) -> tuple[go.Figure, int]:
    cols = max(1, min(n_cols, len(names)))
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, shared_xaxes=True,
                        vertical_spacing=0.12 / max(rows - 1, 1) if rows > 1 else 0.1)
    fig.update_layout(template=TEMPLATE_NAME, title=title, height=260 * rows + 80)
    return fig, cols


def plot_beta_grid(
    results, n_cols: int = 3, show_gain: bool = False, n_sd: float = 1.0
) -> go.Figure:
    """One subplot per state: the filtered beta with a +/- n_sd standard-deviation band.

    `results` is a `KalmanResult` (or the seed-style mapping with "beta" and "beta_cov").
    With show_gain, the Kalman gain of each state is drawn as a dotted line on the same axes.
    """
    beta = results["beta"]
    sd = pd.DataFrame(
        np.sqrt(np.array([np.diag(P) for P in results["beta_cov"].values()])),
        index=beta.index, columns=beta.columns,
    )
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
    return fig
