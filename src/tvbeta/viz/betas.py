"""Beta paths with central bands: `band_grid` draws the `BandPath` of every beta figure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tvbeta.constants import INTERCEPT
from tvbeta.viz.bands import DEFAULT_LEVEL, KIND_LABELS, BandPath, Kind, beta_bands, fit_dict
from tvbeta.viz.template import PALETTE, TEMPLATE_NAME, rgba

#: y-axis title of the intercept's panel: alpha is a return per period, not a beta.
ALPHA_AXIS = "alpha (return / period)"


def finish_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Template, height (px) and a header: the title, then the legend on its own line below.

    Both placed in pixels from the top (the template's legend would collide with the title and
    the first subplot titles).
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


def x_values(index: pd.Index) -> np.ndarray:
    """Return the dates as short ISO strings (plotly writes dates as text: smaller files)."""
    if isinstance(index, pd.DatetimeIndex):
        fmt = "%Y-%m-%d" if (index == index.normalize()).all() else "%Y-%m-%d %H:%M"
        return np.asarray(index.strftime(fmt), dtype=object)
    return np.asarray(index)


def thin(n: int, max_points: int | None) -> np.ndarray:
    """Return at most ``max_points`` evenly spaced row positions, the last kept (None: all)."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.unique(np.r_[np.arange(0, n, math.ceil(n / max_points)), n - 1])


def f32(values: np.ndarray | pd.Series) -> np.ndarray:
    """Return ``values`` as float32 (plenty for drawing; halves plotly's base64 payload)."""
    return np.asarray(values, dtype=np.float32)


def check_states(states: Sequence[str] | None, available: list[str], name: str) -> list[str]:
    """Return the states to draw: ``states`` (each a state of some fit) or every available one."""
    if states is None:
        return available
    chosen = [states] if isinstance(states, str) else list(states)
    unknown = [s for s in chosen if s not in available]
    if unknown or not chosen:
        raise ValueError(f"{name}: unknown states {unknown}; the fits have {available}")
    return chosen


def subplot_grid(titles: Sequence[str], n_cols: int, spacing: float,
                 **kwargs: Any) -> tuple[go.Figure, int, int]:  # fmt: skip
    """Subplots, one per title in rows of at most ``n_cols``, with their (rows, cols).

    ``spacing``: the total vertical gap (share of the height); ``kwargs`` to `make_subplots`.
    """
    cols = max(1, min(n_cols, len(titles)))
    rows = math.ceil(len(titles) / cols)
    gap = spacing / (rows - 1) if rows > 1 else 0.1
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), vertical_spacing=gap,
                        **kwargs)  # fmt: skip
    return fig, rows, cols


def cell(i: int, cols: int) -> dict[str, int]:
    """Return the ``row`` and ``col`` keywords (1-based) of panel ``i`` of a grid ``cols`` wide."""
    return dict(row=i // cols + 1, col=i % cols + 1)


def shared_x_grid(titles: list[str], n_cols: int, spacing: float) -> tuple[go.Figure, int, int]:
    """`subplot_grid` whose x axes zoom together; a panel with none below keeps its x labels."""
    fig, rows, cols = subplot_grid(titles, n_cols, spacing, shared_xaxes=True)
    for i in range(max(0, len(titles) - cols), len(titles)):
        fig.update_xaxes(showticklabels=True, **cell(i, cols))
    return fig, rows, cols


def _add_path(fig: go.Figure, label: str, path: BandPath, state: str, keep: np.ndarray,
              where: dict[str, int], style: dict[str, Any]) -> None:  # fmt: skip
    """One path's band (lower, then upper filled down to it: x once per edge) and mean line."""
    x = x_values(path.mean.index[keep])
    color, group = style["color"], style["group"]
    prefix = f"{label} " if label else ""
    if style["band"]:
        edge = dict(x=x, mode="lines", line=dict(width=0), hoverinfo="skip",
                    legendgroup=group, showlegend=False)  # fmt: skip
        fig.add_trace(go.Scatter(y=f32(path.lower[state].iloc[keep]), name=f"{prefix}lower",
                                 **edge), **where)  # fmt: skip
        fig.add_trace(go.Scatter(y=f32(path.upper[state].iloc[keep]), name=f"{prefix}upper",
                                 fill="tonexty", fillcolor=rgba(color, 0.15), **edge),
                      **where)  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=x, y=f32(path.mean[state].iloc[keep]), mode="lines", legendgroup=group,
            name=style["name"], showlegend=style["legend"],
            line=dict(color=color, width=1.6, dash=style.get("dash")),
            hovertemplate="%{y:.4f}<extra>" + label + "</extra>",
        ), **where)  # fmt: skip


def band_grid(
    paths: Mapping[str, BandPath],
    *,
    title: str,
    states: Sequence[str] | None = None,
    n_cols: int = 3,
    max_points: int | None = None,
    colors: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
    dashes: Mapping[str, str] | None = None,
    band: bool = True,
    row_height: int = 260,
    states_arg: str = "states",
) -> tuple[go.Figure, list[str], int]:
    """One subplot per state; per path its mean line and (with ``band``) its band.

    Parameters
    ----------
    paths : mapping label -> BandPath
        A state a path lacks (e.g. a model without intercept) is left out for it.
    states : states to draw, in order; default the union over paths, in order of appearance.
    colors, names, dashes : per label: line colour (default the palette by position), legend
        text (default "<label>: <band>") and line dash.
    max_points : rows drawn per path at most (evenly thinned, last row kept); None: all.
    states_arg : the caller's name of ``states``, for the error of an unknown state.

    Returns
    -------
    (figure, states drawn, number of columns)
        Each path has one legend entry and group; the intercept's panel has the y title
        ``ALPHA_AXIS``.
    """
    available = list(dict.fromkeys(s for p in paths.values() for s in p.mean.columns))
    drawn = check_states(states, available, states_arg)
    fig, rows, cols = shared_x_grid(drawn, n_cols, spacing=0.14)
    colors, names, dashes = colors or {}, names or {}, dashes or {}
    for j, (label, path) in enumerate(paths.items()):
        keep = thin(len(path.mean), max_points)
        style = dict(color=colors.get(label, PALETTE[j % len(PALETTE)]), group=label, band=band,
                     name=names.get(label, f"{label}: {path.band}" if label else path.band),
                     dash=dashes.get(label), legend=True)  # fmt: skip
        for i, state in enumerate(drawn):
            if state not in path.mean.columns:
                continue
            _add_path(fig, label, path, state, keep, cell(i, cols), style)
            style["legend"] = False
    for i, state in enumerate(drawn):
        if state == INTERCEPT:
            fig.update_yaxes(title_text=ALPHA_AXIS, **cell(i, cols))
        elif i % cols == 0 or INTERCEPT in drawn:  # next to alpha's axis, units must differ
            fig.update_yaxes(title_text="beta", **cell(i, cols))
    finish_layout(fig, title, row_height * rows + 130)
    return fig, drawn, cols


def _gain(fit: Any) -> pd.DataFrame:
    result = getattr(fit, "result", fit)  # an MLEFit holds its KalmanResult
    try:
        return result["kalman_gain"]
    except (KeyError, TypeError):
        raise ValueError(
            f"show_gain: a {type(fit).__name__} has no Kalman gain (a Bayes fit mixes over Q, "
            "R); pass show_gain=False, or a KalmanResult / MLEFit"
        ) from None


def _model_name(fit: Any) -> str:
    result = getattr(fit, "result", fit)
    try:
        return str(result["meta"].get("Model Name", ""))
    except (KeyError, TypeError):  # a Bayes fit has no seed meta
        return ""


def plot_beta_grid(
    fits: Any,
    n_cols: int = 3,
    show_gain: bool = False,
    *,
    kind: Kind = "filtered",
    level: float = DEFAULT_LEVEL,
    states: Sequence[str] | None = None,
) -> go.Figure:
    """One subplot per state: each fit's beta path with its central ``level`` band.

    Parameters
    ----------
    fits : KalmanResult, MLEFit, BayesFit or the seed's result dict, or a dict name -> fits
        Several fits are overlaid per state, one colour and legend entry each.
    n_cols : int
        Subplots per row.
    show_gain : bool
        Also draw each fit's Kalman gain, dotted, on the same axes (the seed's choice; the gain
        is in beta per unit return, not in beta). Not for a BayesFit.
    kind : {"filtered", "smoothed"}
        Filtered: real time, beta_t given returns up to t (the seed's figure); smoothed:
        hindsight, given the whole sample.
    level : float in (0, 1), default 0.9
        Central probability of the band (`tvbeta.viz.bands.beta_bands`: mean +/- z sd of the
        Gaussian filter/smoother for a Kalman result or MLE fit, posterior quantiles mixing
        over Q and R for a Bayes fit). The seed drew +/- 1 sd (level 0.683).
    states : states to draw, default all.

    Raises
    ------
    TypeError
        ``fits`` is not a fit nor a dict of fits; ValueError for a bad ``level``, ``kind``,
        an unknown state, or show_gain with a Bayes fit.
    """
    by_name = fit_dict(fits)
    paths = {label: beta_bands(fit, kind, level) for label, fit in by_name.items()}
    name = _model_name(next(iter(by_name.values()))) if len(by_name) == 1 else ""
    title = f"Beta paths{': ' + name if name else ''}, {KIND_LABELS[kind]}, {level:.0%} bands"
    fig, drawn, cols = band_grid(paths, title=title, states=states, n_cols=n_cols)
    if show_gain:
        for j, (label, fit) in enumerate(by_name.items()):
            gain = _gain(fit)
            for i, state in enumerate(drawn):
                if state in gain.columns:
                    fig.add_trace(go.Scatter(
                        x=x_values(gain.index), y=f32(gain[state]), mode="lines",
                        name=f"gain {label} {state}" if label else f"gain {state}",
                        legendgroup=label, showlegend=False,
                        line=dict(color=PALETTE[j % len(PALETTE)], dash="dot"),
                    ), **cell(i, cols))  # fmt: skip
        fig.update_yaxes(title_text="beta / gain", col=1)
    return fig


def plot_filtered_vs_smoothed(
    fits: Any,
    n_cols: int = 3,
    *,
    level: float = DEFAULT_LEVEL,
    states: Sequence[str] | None = None,
) -> go.Figure:
    """Plot filtered (real-time) against smoothed (hindsight) betas, each with its ``level`` band.

    Parameters
    ----------
    fits : KalmanResult, MLEFit, BayesFit, or a dict name -> such fits
        Per fit one colour; its smoothed path dashed.
    level : float in (0, 1), default 0.9
        Central probability of the bands (see `plot_beta_grid`).
    states : states to draw, default all.

    Raises
    ------
    TypeError, ValueError
        As `plot_beta_grid`; also ValueError for the seed's dict (no smoothed paths).
    """
    by_name = fit_dict(fits)
    paths, colors, dashes, names = {}, {}, {}, {}
    for j, (label, fit) in enumerate(by_name.items()):
        for kind in ("filtered", "smoothed"):
            key = f"{label}: {kind}" if label else kind
            paths[key] = beta_bands(fit, kind, level)
            names[key] = f"{label}: {paths[key].band}" if label else paths[key].band
            colors[key] = PALETTE[(2 * j + (kind == "smoothed")) % len(PALETTE)]
            dashes[key] = "dash" if kind == "smoothed" else None
    title = f"Filtered (real-time) vs smoothed (hindsight) betas, {level:.0%} bands"
    fig, _, _ = band_grid(paths, title=title, states=states, n_cols=n_cols, colors=colors,
                          names=names, dashes=dashes)  # fmt: skip
    return fig


def plot_alpha_probability(prob: pd.DataFrame, *, boundary: Any = None, title: str = "",
                           max_points: int | None = 600) -> go.Figure:  # fmt: skip
    """Draw P(alpha_t > 0) in real time (filtered) and in hindsight (smoothed) over time.

    prob : DataFrame (time) with columns ``filtered`` and ``smoothed`` in [0, 1], as
    `BayesFit.alpha_probability` returns; boundary : an x value marked by a dashed line (the
    first test row), or None. A dotted line marks 1/2: above it, alpha > 0 is more likely than
    not.
    """
    keep = thin(len(prob), max_points)
    x = x_values(prob.index[keep])
    fig = go.Figure()
    for j, kind in enumerate(("filtered", "smoothed")):
        fig.add_trace(go.Scatter(
            x=x, y=f32(prob[kind].to_numpy()[keep]), mode="lines", name=KIND_LABELS[kind],
            line=dict(color=PALETTE[j], dash="dash" if kind == "smoothed" else None)))
    fig.add_hline(y=0.5, line=dict(color="grey", dash="dot", width=1))
    if boundary is not None:
        fig.add_vline(x=x_values(pd.Index([boundary]))[0], line=dict(color="black", dash="dash",
                                                                     width=1))  # fmt: skip
    fig.update_yaxes(range=[0, 1], title_text="P(alpha > 0)")
    return finish_layout(fig, title or "Probability that alpha > 0", 360)
