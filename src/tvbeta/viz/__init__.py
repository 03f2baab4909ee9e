"""Plotly figures with one template; every figure saves to a self-contained HTML file."""

from tvbeta.viz.betas import plot_beta_grid, plot_filtered_vs_smoothed
from tvbeta.viz.template import PALETTE, TEMPLATE_NAME, save_html

__all__ = ["PALETTE", "TEMPLATE_NAME", "plot_beta_grid", "plot_filtered_vs_smoothed", "save_html"]
