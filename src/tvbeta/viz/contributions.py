"""The seed's ``plot_factor_contributions``: how much return each factor explains over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tvbeta.diagnostics import contributions, model_labels
from tvbeta.viz.betas import finish_layout
from tvbeta.viz.template import PALETTE

SUM_NAME = "Sum of shown factors"


def plot_factor_contributions(
    results: Any, include_factors: Sequence[str] | None = None
) -> go.Figure:
    """Contributions c_{k,t} = beta_{k,t} H_{k,t} per period (top) and summed over time (bottom).

    Parameters
    ----------
    results : KalmanResult or mapping
        With the seed's ``"beta"`` (n, k) filtered states and ``"H"`` (n, n_factors).
    include_factors : sequence of str, optional
        Factors to draw, in this order; default all factors (the intercept has no factor
        return, so no contribution).

    Returns
    -------
    go.Figure
        Two rows sharing the time axis, one legend-grouped line per factor in each (its
        :func:`tvbeta.viz.plot_beta_grid` colour) and, with several factors, a dotted sum.
        Units: return per period (top), cumulative return, simple sum (bottom).

    Raises
    ------
    ValueError
        When a requested factor is not a factor of the result, or it has no factor.
    """
    contrib = contributions(results)
    if contrib.columns.empty:
        raise ValueError(
            "the result has no factor (an intercept-only model), so nothing contributes but "
            "the intercept: draw its path with plot_beta_grid instead"
        )
    states = list(results["beta"].columns)
    factors = list(contrib.columns) if include_factors is None else list(include_factors)
    unknown = [f for f in factors if f not in contrib.columns]
    if unknown or not factors:
        raise ValueError(f"unknown factors {unknown}; the result's factors are "
                         f"{list(contrib.columns)}")  # fmt: skip
    contrib = contrib[factors]
    # Missing factor returns would break the running sum; they add nothing instead.
    cumulative = contrib.fillna(0.0).cumsum()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("Per-period contribution β_k,t · H_k,t",
                                        "Cumulative contribution Σ_s≤t β_k,s · H_k,s"))  # fmt: skip
    for factor in factors:
        color = PALETTE[states.index(factor) % len(PALETTE)]
        for row, frame in ((1, contrib), (2, cumulative)):
            fig.add_trace(
                go.Scatter(x=frame.index, y=frame[factor].to_numpy(dtype=np.float64),
                           mode="lines", name=factor, legendgroup=factor, showlegend=row == 1,
                           line=dict(color=color, width=1.5)),
                row=row, col=1,
            )  # fmt: skip
    if len(factors) > 1:
        for row, frame in ((1, contrib), (2, cumulative)):
            fig.add_trace(
                go.Scatter(x=frame.index, y=frame.sum(axis=1, min_count=1).to_numpy(),
                           mode="lines", name=SUM_NAME, legendgroup=SUM_NAME,
                           showlegend=row == 1, line=dict(color="#555555", width=1, dash="dot")),
                row=row, col=1,
            )  # fmt: skip
    name, target = model_labels(results)
    fig.update_yaxes(title_text="return per period", row=1, col=1)
    fig.update_yaxes(title_text="cumulative return (sum)", row=2, col=1)
    fig.update_xaxes(title_text="date", row=2, col=1)
    finish_layout(fig, f"Factor contributions: {name} — target {target}", 680)
    return fig
