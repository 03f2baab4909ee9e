"""Several funds on one page: the seed's ``stack_betas`` and ``plot_all_stacked_betas``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tvbeta.constants import INTERCEPT
from tvbeta.viz.betas import add_band, finish_layout, state_sd
from tvbeta.viz.template import PALETTE


def fund_colors(funds: Sequence[str]) -> dict[str, str]:
    """One palette colour per fund, by position (cycling after len(PALETTE) funds)."""
    return {fund: PALETTE[i % len(PALETTE)] for i, fund in enumerate(funds)}


def stack_betas(results_by_fund: Mapping[str, Any]) -> pd.DataFrame:
    """All funds' filtered betas side by side, columns "<state> (<fund>)" (the seed's).

    Parameters
    ----------
    results_by_fund : mapping fund -> KalmanResult (or the seed's result dict)

    Returns
    -------
    pd.DataFrame, (union of dates, sum of k over funds)
        Outer-joined on the date index (NaN where a fund has no row).
    """
    frames = [
        results["beta"].rename(columns=lambda col, f=fund: f"{col} ({f})")
        for fund, results in results_by_fund.items()
    ]
    return pd.concat(frames, axis=1) if frames else pd.DataFrame()


def _default_factors(results_by_fund: Mapping[str, Any]) -> list[str]:
    # The seed plotted its factor_cols: every factor, without the intercept.
    seen: dict[str, None] = {}
    for results in results_by_fund.values():
        seen.update((c, None) for c in results["beta"].columns if c != INTERCEPT)
    return list(seen)


def plot_stacked_betas(
    results_by_fund: Mapping[str, Any],
    show_std: bool = True,
    n_cols: int = 2,
    factors: Sequence[str] | None = None,
    *,
    label_ends: bool = False,
) -> go.Figure:
    """One subplot per factor, one filtered-beta line per fund (the seed's overlay).

    Parameters
    ----------
    results_by_fund : mapping fund -> KalmanResult (or the seed's result dict)
        Runs to compare; insertion order fixes colours and legend order.
    show_std : bool, default True
        Draw a +/- 1 sd ribbon (sqrt of the filtered P_{t|t} diagonal) around each line.
    n_cols : int, default 2
        Subplots per row (at most the number of factors).
    factors : sequence of str, optional
        States to draw, in this order; default every factor (no intercept) of any fund, in
        order of first appearance. Pass "Intercept" explicitly to draw it.
    label_ends : bool, default False
        Write each fund's name at the end of its line (the seed's line-end labels). Off by
        default: the legend already names the colours, and long names overlap the next
        subplot.

    Returns
    -------
    go.Figure
        Per fund and subplot: its ribbon (when show_std; no legend entry, hover skipped)
        then its line. A fund's colour is the same in every subplot; all its traces share
        one legend group, so one legend click hides the fund everywhere. A fund without a
        factor is skipped in that subplot. Y axes: beta (return per unit factor return).

    Raises
    ------
    ValueError
        When there are no results or no factor to draw.
    """
    if not results_by_fund:
        raise ValueError("no results to plot: results_by_fund is empty")
    selected = list(factors) if factors is not None else _default_factors(results_by_fund)
    if not selected:
        raise ValueError(
            "no factors to plot (none given, or the results have no factor state); for the "
            f"intercept of an intercept-only model pass factors=[{INTERCEPT!r}]"
        )
    cols = max(1, min(n_cols, len(selected)))
    rows = math.ceil(len(selected) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=selected,
                        vertical_spacing=min(0.1, 0.3 / rows), horizontal_spacing=0.07)  # fmt: skip
    colors = fund_colors(list(results_by_fund))
    in_legend: set[str] = set()
    for i, factor in enumerate(selected):
        r, c = i // cols + 1, i % cols + 1
        for fund, results in results_by_fund.items():
            beta = results["beta"]
            if factor not in beta.columns:
                continue
            mid = beta[factor]
            first = fund not in in_legend
            in_legend.add(fund)
            if show_std:
                sd = state_sd(results)[factor]
                add_band(fig, beta.index, mid, mid - sd, mid + sd, name=fund,
                         color=colors[fund], row=r, col=c, showlegend=first)  # fmt: skip
            else:
                fig.add_trace(go.Scatter(x=beta.index, y=mid.to_numpy(dtype=np.float64),
                                         mode="lines", name=fund, legendgroup=fund,
                                         showlegend=first,
                                         line=dict(color=colors[fund], width=1.8)),
                              row=r, col=c)  # fmt: skip
            fig.data[-1].hovertemplate = "%{x|%Y-%m-%d}: %{y:.3f}<extra>" + fund + "</extra>"
            if label_ends and len(mid):
                axis = "" if i == 0 else str(i + 1)
                fig.add_annotation(
                    x=beta.index[-1], y=float(mid.iloc[-1]), text=fund, xref=f"x{axis}",
                    yref=f"y{axis}", xanchor="left", showarrow=False,
                    font=dict(color=colors[fund], size=11),
                )  # fmt: skip
    fig.update_yaxes(title_text="beta", col=1)
    band = " (+/- 1 sd)" if show_std else ""
    finish_layout(fig, f"Filtered beta paths per factor{band}", 300 * rows + 130)
    return fig
