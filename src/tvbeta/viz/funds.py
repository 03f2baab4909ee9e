"""Several funds on one page: the seed's ``stack_betas`` and ``plot_all_stacked_betas``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from tvbeta.constants import INTERCEPT
from tvbeta.viz.bands import DEFAULT_LEVEL, KIND_LABELS, BandPath, Kind, beta_bands, fit_dict
from tvbeta.viz.betas import band_grid, x_values
from tvbeta.viz.template import PALETTE


def fund_colors(funds: Sequence[str]) -> dict[str, str]:
    """One palette colour per fund, by position (cycling after len(PALETTE) funds)."""
    return {fund: PALETTE[i % len(PALETTE)] for i, fund in enumerate(funds)}


def stack_betas(results_by_fund: Mapping[str, Any]) -> pd.DataFrame:
    """All funds' filtered betas side by side, columns "<state> (<fund>)" (the seed's).

    Parameters
    ----------
    results_by_fund : mapping fund -> KalmanResult, MLEFit, BayesFit (posterior mean) or the
        seed's result dict

    Returns
    -------
    pd.DataFrame, (union of dates, sum of k over funds)
        Outer-joined on the date index (NaN where a fund has no row).
    """
    frames = [
        beta_bands(results, "filtered").mean.rename(columns=lambda col, f=fund: f"{col} ({f})")
        for fund, results in results_by_fund.items()
    ]
    return pd.concat(frames, axis=1) if frames else pd.DataFrame()


def _default_factors(paths: Mapping[str, BandPath]) -> list[str]:
    # The seed plotted its factor_cols: every factor, without the intercept.
    seen: dict[str, None] = {}
    for path in paths.values():
        seen.update((c, None) for c in path.mean.columns if c != INTERCEPT)
    return list(seen)


def plot_stacked_betas(
    results_by_fund: Mapping[str, Any],
    show_std: bool = True,
    n_cols: int = 2,
    factors: Sequence[str] | None = None,
    *,
    label_ends: bool = False,
    kind: Kind = "filtered",
    level: float = DEFAULT_LEVEL,
) -> go.Figure:
    """One subplot per factor, one beta line per fund (the seed's overlay).

    Parameters
    ----------
    results_by_fund : mapping fund -> KalmanResult, MLEFit, BayesFit or the seed's result dict
        Runs to compare; insertion order fixes colours and legend order. One fit alone is
        drawn as the fund "fund".
    show_std : bool, default True
        Draw each fund's central ``level`` band around its line (`tvbeta.viz.bands`).
    n_cols : int, default 2
        Subplots per row (at most the number of factors).
    factors : sequence of str, optional
        States to draw, in this order; default every factor (no intercept) of any fund, in
        order of first appearance. Pass "Intercept" explicitly to draw it.
    label_ends : bool, default False
        Write each fund's name at the end of its line (the seed's labels; long names overlap
        the next subplot).
    kind : {"filtered", "smoothed"}, default "filtered"
        Real-time paths (the seed's) or hindsight ones.
    level : float in (0, 1), default 0.9
        Central probability of the bands, stated in the legend (the seed drew +/- 1 sd).

    Returns
    -------
    go.Figure
        Per fund and subplot its band (when show_std) and line, one colour and legend group
        per fund; a fund without a factor is skipped in that subplot. Y axes: beta; the
        intercept's: alpha (return per period).

    Raises
    ------
    ValueError
        When there are no results, no factor to draw, or a factor no fund has; TypeError when
        a value is not a fit.
    """
    by_fund = fit_dict(results_by_fund, "results_by_fund")
    if list(by_fund) == [""]:  # one fit: one line per subplot, legend "fund"
        by_fund = {"fund": by_fund[""]}
    paths = {fund: beta_bands(fit, kind, level) for fund, fit in by_fund.items()}
    selected = list(factors) if factors is not None else _default_factors(paths)
    if not selected:
        raise ValueError(
            "no factors to plot (none given, or the results have no factor state); for the "
            f"intercept of an intercept-only model pass factors=[{INTERCEPT!r}]"
        )
    band = f", {level:.0%} bands" if show_std else ""
    title = f"{KIND_LABELS[kind].capitalize()} beta paths per factor{band}"
    names = {fund: f"{fund}: {p.band}" if show_std else fund for fund, p in paths.items()}
    colors = fund_colors(list(paths))
    fig, drawn, _ = band_grid(paths, title=title, states=selected, n_cols=n_cols,
                              colors=colors, names=names, band=show_std,
                              row_height=300, states_arg="factors")  # fmt: skip
    if label_ends:
        for i, factor in enumerate(drawn):
            axis = "" if i == 0 else str(i + 1)
            for fund, path in paths.items():
                if factor in path.mean.columns and len(path.mean):
                    fig.add_annotation(
                        x=x_values(path.mean.index[-1:])[0], y=float(path.mean[factor].iloc[-1]),
                        text=fund, xref=f"x{axis}", yref=f"y{axis}", xanchor="left",
                        showarrow=False, font=dict(color=colors[fund], size=11),
                    )  # fmt: skip
    return fig
