"""Plotly figures with one template; every figure saves to a self-contained HTML file.

Core functions
--------------
plot_beta_grid             one subplot per state: filtered beta +/- n sd
plot_filtered_vs_smoothed  filtered against smoothed betas
ModelDiagnosticsPlotter    the seed's stacked diagnostic panels of one run
plot_factor_contributions  beta_k,t * H_k,t per period and cumulated
plot_stacked_betas         several funds: one subplot per factor, one line per fund
save_html                  write a figure as one offline HTML file
"""

from tvbeta.viz.betas import plot_beta_grid, plot_filtered_vs_smoothed, state_sd
from tvbeta.viz.contributions import plot_factor_contributions
from tvbeta.viz.diagnostics import ALL_PANELS, DEFAULT_PANELS, ModelDiagnosticsPlotter
from tvbeta.viz.funds import fund_colors, plot_stacked_betas, stack_betas
from tvbeta.viz.template import PALETTE, TEMPLATE_NAME, save_html

__all__ = [
    "ALL_PANELS",
    "DEFAULT_PANELS",
    "PALETTE",
    "TEMPLATE_NAME",
    "ModelDiagnosticsPlotter",
    "fund_colors",
    "plot_beta_grid",
    "plot_factor_contributions",
    "plot_filtered_vs_smoothed",
    "plot_stacked_betas",
    "save_html",
    "stack_betas",
    "state_sd",
]
