"""Each figure opened once in headless Chromium (offline): it draws, with no console errors.

Skipped, with the reason, when Chromium is not installed (see tests/browser.py).
"""

from __future__ import annotations

import struct

import pytest

from tests.browser import screenshot_html
from tvbeta.viz import (
    ModelDiagnosticsPlotter,
    plot_beta_grid,
    plot_factor_contributions,
    plot_filtered_vs_smoothed,
    plot_stacked_betas,
    save_html,
)

# One worker runs every browser test (pytest -n 2 --dist loadgroup): two Chromiums at once
# would only compete for memory.
pytestmark = pytest.mark.xdist_group("chromium")

FIGURES = {
    "diagnostics_all": lambda r, f: ModelDiagnosticsPlotter(r).plot(include="all"),
    "factor_contributions": lambda r, f: plot_factor_contributions(r),
    "stacked_betas": lambda r, f: plot_stacked_betas(f),
    "beta_grid": lambda r, f: plot_beta_grid(r, show_gain=True),
    "filtered_vs_smoothed": lambda r, f: plot_filtered_vs_smoothed(r),
}


def png_size(path) -> tuple[int, int]:
    """(width, height) in px from the PNG header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_renders_offline_without_errors(name, sim_result, funds, shot_dir):
    fig = FIGURES[name](sim_result, funds)
    html = save_html(fig, shot_dir / f"{name}.html")
    png = shot_dir / f"{name}.png"
    errors = screenshot_html(html, png)
    assert errors == []
    width, height = png_size(png)
    assert width == 1280
    assert height >= fig.layout.height  # the whole figure is on the page
    assert png.stat().st_size > 30_000  # lines and text drawn, not a blank page


def test_helper_reports_errors_and_network_use(sim_result, tmp_path):
    """The checker itself: a page that needs the CDN, and a script error, are reported."""
    cdn = tmp_path / "cdn.html"
    plot_beta_grid(sim_result).write_html(cdn, include_plotlyjs="cdn")
    errors = screenshot_html(cdn, tmp_path / "cdn.png", timeout=3)
    assert any("Plotly is not defined" in e for e in errors), errors
    assert "no plotly figure rendered" in errors
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); nope();</script></body></html>")
    errors = screenshot_html(bad, tmp_path / "bad.png", timeout=1)
    assert errors[0] == "console.error: boom"
    assert errors[1].startswith("ReferenceError: nope is not defined")


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
@pytest.mark.parametrize("figure", ["beta_grid", "filtered_vs_smoothed", "side_by_side"])
def test_bayes_figures_render_offline_without_errors(figure, bayes_fit, mle_fit, shot_dir):
    """A grid of a BayesFit, its filtered vs smoothed paths, and Bayes beside the MLE."""
    fig = {
        "beta_grid": lambda: plot_beta_grid(bayes_fit, kind="smoothed"),
        "filtered_vs_smoothed": lambda: plot_filtered_vs_smoothed(bayes_fit),
        "side_by_side": lambda: plot_beta_grid({"Bayes": bayes_fit, "MLE": mle_fit}),
    }[figure]()
    assert all("90%" in t.name for t in fig.data if t.showlegend)
    html = save_html(fig, shot_dir / f"bayes_{figure}.html")
    png = shot_dir / f"bayes_{figure}.png"
    assert screenshot_html(html, png) == []
    assert png_size(png)[1] >= fig.layout.height and png.stat().st_size > 30_000
