"""Plotly figures with one template; every figure saves to a self-contained HTML file.

Every beta figure takes a KalmanResult, an MLEFit, a BayesFit or a dict name -> fit, and draws
a central band at ``level`` (default DEFAULT_LEVEL = 0.9), stated in its legend.
"""

from tvbeta.viz.bands import DEFAULT_LEVEL, BandPath, beta_bands
from tvbeta.viz.betas import plot_alpha_probability, plot_beta_grid, plot_filtered_vs_smoothed
from tvbeta.viz.contributions import plot_factor_contributions
from tvbeta.viz.diagnostics import ALL_PANELS, DEFAULT_PANELS, ModelDiagnosticsPlotter
from tvbeta.viz.funds import fund_colors, plot_stacked_betas, stack_betas
from tvbeta.viz.template import PALETTE, TEMPLATE_NAME, save_html

__all__ = [
    "ALL_PANELS", "DEFAULT_LEVEL", "DEFAULT_PANELS", "PALETTE", "TEMPLATE_NAME", "BandPath",
    "ModelDiagnosticsPlotter", "beta_bands", "fund_colors", "plot_alpha_probability",
    "plot_beta_grid",
    "plot_factor_contributions", "plot_filtered_vs_smoothed", "plot_stacked_betas", "save_html",
    "stack_betas",
]  # fmt: skip
