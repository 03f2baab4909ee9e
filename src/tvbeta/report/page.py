"""HTML building blocks: one page with inline CSS and plotly.js, tables, figures, notes.

The page works offline from one file: nothing is linked, plotly.js is inlined once in the head,
and every figure is a ``<div>`` plus a small ``Plotly.newPlot`` script.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

#: Figure options: no logo, no link to an online editor (an external URL), responsive width.
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "plotlyServerURL": "",
               "toImageButtonOptions": {"format": "png", "scale": 2}}  # fmt: skip

CSS = """
body { font-family: Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1240px; margin: 0 auto; padding: 8px 24px 48px; background: #fff; }
h1 { font-size: 26px; margin: 18px 0 4px; }
h2 { font-size: 21px; margin-top: 40px; padding-top: 8px; border-top: 2px solid #1f77b4; }
h3 { font-size: 17px; margin-top: 26px; }
p, li { line-height: 1.45; font-size: 14px; }
.meta { color: #666; font-size: 13px; }
nav { font-size: 14px; background: #f3f6fa; padding: 8px 16px; border-radius: 4px; }
nav ul { margin: 4px 0; padding-left: 12px; list-style: none; }
nav a { text-decoration: none; color: #1f5f99; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 14px; }
.table-wrap { overflow-x: auto; max-width: 100%; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e3e3e3; text-align: right; }
th { background: #f3f6fa; font-weight: 600; }
td.label, th.label { text-align: left; }
td.best { font-weight: 700; }
td.bad { background: #fde2e1; color: #9c1c1c; font-weight: 600; }
.box { padding: 10px 16px; border-radius: 4px; margin: 12px 0; font-size: 14px; }
.answer { background: #eef5fc; border-left: 5px solid #1f77b4; font-size: 16px; }
.ok { background: #e9f6ec; border-left: 5px solid #2ca02c; }
.fail { background: #fde2e1; border-left: 5px solid #d62728; }
.note { background: #f6f6f6; border-left: 5px solid #bbb; }
.eq { font-family: "Times New Roman", Times, serif; font-size: 17px; margin: 6px 0 6px 24px; }
.figure { margin: 6px 0 18px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 3px 16px;
           font-size: 14px; } dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
"""


def esc(text: object) -> str:
    """Return ``str(text)`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def slug(text: str) -> str:
    """Return an HTML id from any text (letters, digits, '-')."""
    return "".join(c if c.isalnum() else "-" for c in str(text)).strip("-").lower() or "x"


def _cell(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):d}"
    if isinstance(value, float | np.floating):
        return fmt.format(float(value))
    return esc(value)


def table(
    frame: pd.DataFrame,
    *,
    name: str,
    formats: Mapping[str, str] | None = None,
    default: str = "{:.4f}",
    best: pd.DataFrame | None = None,
    bad: pd.DataFrame | None = None,
) -> str:
    """Return a DataFrame as an HTML table (index as leading label columns).

    name : the table's ``data-table`` attribute, so tests and scripts can find it;
    formats : column -> format string for floats (default ``default``); best / bad : boolean
    frames like ``frame``: cells set in bold / flagged in red.
    """
    formats = formats or {}
    idx_names = [n if n is not None else "" for n in frame.index.names]
    head = "".join(f'<th class="label">{esc(n)}</th>' for n in idx_names)
    head += "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = []
    for i, (key, row) in enumerate(frame.iterrows()):
        keys = key if isinstance(key, tuple) else (key,)
        cells = "".join(f'<td class="label">{esc(k)}</td>' for k in keys)
        for j, col in enumerate(frame.columns):
            cls = []
            if best is not None and bool(best.iat[i, j]):
                cls.append("best")
            if bad is not None and bool(bad.iat[i, j]):
                cls.append("bad")
            if isinstance(row[col], str):
                cls.append("label")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells += f"<td{attr}>{_cell(row[col], formats.get(str(col), default))}</td>"
        body.append(f"<tr>{cells}</tr>")
    # in a scrolling box: a wide table (long setter names, many states) stays readable
    return (
        f'<div class="table-wrap"><table data-table="{esc(name)}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def facts(items: Mapping[str, object]) -> str:
    """Return a definition list of label: value lines."""
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items.items())
    return f'<dl class="facts">{rows}</dl>'


def box(text_html: str, kind: str = "note") -> str:
    """Return ``text_html`` in a box of CSS class ``kind`` ("note", "answer", ...)."""
    return f'<div class="box {kind}">{text_html}</div>'


def bullets(items: Sequence[str]) -> str:
    """Return a bulleted list; items are HTML (escape them first if they are plain text)."""
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


class Figures:
    """Numbers figure divs in order, so ids are stable from one report to the next."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: go.Figure) -> str:
        """Return ``fig`` as an HTML div with the next figure number."""
        self.count += 1
        div = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG,
                          div_id=f"figure-{self.count}", default_width="100%")  # fmt: skip
        return f'<div class="figure">{div}</div>'


def page(
    title: str, sections: Sequence[tuple[str, str, str]], *, subtitle: str = "", lead: str = ""
) -> str:
    """Return the whole document: head (CSS, plotly.js once), title, contents, sections.

    sections : (id, heading, body HTML) in order.
    """
    toc = "".join(f'<li><a href="#{sid}">{esc(head)}</a></li>' for sid, head, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{esc(head)}</h2>{content}</section>'
        for sid, head, content in sections
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<main>
<h1>{esc(title)}</h1>
<p class="meta">{esc(subtitle)} Generated {stamp} by tvbeta.report.</p>
{lead}
<nav><strong>Contents</strong><ul>{toc}</ul></nav>
{body}
</main>
</body>
</html>
"""
