"""One plotly look for every tvbeta figure, and saving figures as self-contained HTML."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from tvbeta.outputs import atomic_path

TEMPLATE_NAME = "tvbeta"
#: Colour per series; the same state or method keeps its colour across figures.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#bcbd22", "#7f7f7f")

_template = go.layout.Template(pio.templates["simple_white"])
_template.layout.update(
    font=dict(family="Helvetica, Arial, sans-serif", size=12), colorway=list(PALETTE),
    hovermode="x unified", margin=dict(t=70, b=40, l=60, r=20),
    legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
)  # fmt: skip
_template.layout.xaxis.update(showgrid=True, gridcolor="#eeeeee")
_template.layout.yaxis.update(
    showgrid=True, gridcolor="#eeeeee", zeroline=True, zerolinecolor="#bbbbbb"
)
pio.templates[TEMPLATE_NAME] = _template


def rgba(hex_color: str, alpha: float) -> str:
    """'#rrggbb' -> 'rgba(r, g, b, alpha)' for translucent bands."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def save_html(fig: go.Figure, path: str | Path) -> Path:
    """Write a figure as one HTML file with plotly.js embedded (works offline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)
    return path
