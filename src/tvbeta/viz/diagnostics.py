"""The seed's ``ModelDiagnosticsPlotter``: stacked panels that check one filter run.

Where the result carries innovation variances F_t (a :class:`tvbeta.results.KalmanResult`
does; the seed's dict did not) the panels add the 95% one-step prediction interval, the
+/- 1.96 sqrt(F_t) residual envelope, and the ACF and histogram of the standardized residuals
e_t = v_t / sqrt(F_t); without F_t they use the raw innovations v_t.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tvbeta.diagnostics import expanding_rmse, factor_block, model_labels
from tvbeta.evaluate.residuals import innovation_variance
from tvbeta.viz.betas import finish_layout
from tvbeta.viz.template import PALETTE, rgba

RETURN_UNIT = "return per period"
GREY = "#555555"

#: Panel name -> (subplot title, y-axis title, x-axis title or None for the time axis).
PANELS: dict[str, tuple[str, str, str | None]] = {
    "actual_vs_predicted": ("Actual vs one-step predicted return", RETURN_UNIT, None),
    "residuals": ("One-step residuals v_t = y_t − ŷ_t", RETURN_UNIT, None),
    "log_likelihood": ("Log-likelihood per step, log p(y_t | y_1..t−1)", "nats", None),
    "gain_norm": ("Kalman gain norm ‖K_t‖ (factors)", "beta per unit return", None),
    "drift_norm": ("Beta drift ‖β_t − β_t−1‖ (factors)", "beta per step", None),
    "rolling_rmse": ("RMSE of one-step residuals", RETURN_UNIT, None),
    "acf_residuals": ("Autocorrelation of residuals", "autocorrelation", "lag (steps)"),
    "residual_hist": ("Distribution of residuals", "density", "residual"),
    "cumulative_resid": ("Cumulative residual Σ v_t", RETURN_UNIT, None),
}
DEFAULT_PANELS: tuple[str, ...] = (
    "actual_vs_predicted", "residuals", "log_likelihood", "gain_norm", "drift_norm", "rolling_rmse",
)  # fmt: skip
OPTIONAL_PANELS: tuple[str, ...] = ("acf_residuals", "residual_hist", "cumulative_resid")
ALL_PANELS: tuple[str, ...] = DEFAULT_PANELS + OPTIONAL_PANELS


class ModelDiagnosticsPlotter:
    """Stacked diagnostic panels of one run (the seed's class, same panel names).

    Parameters
    ----------
    results : KalmanResult or mapping
        Anything with the seed's result keys (all series after burn-in, n steps); ``F``
        (attribute or key) adds prediction intervals and standardized residuals.
    rolling_window : int, default 12
        Window (steps) of the rolling RMSE panel.
    acf_lags : int, default 20
        Largest lag of the ACF panel (capped at n - 1).
    z : float, default 1.96
        Half-width in standard deviations of the prediction interval and residual envelope
        (1.96: a 95% central interval under normality).
    """

    def __init__(
        self, results: Any, rolling_window: int = 12, acf_lags: int = 20, z: float = 1.96
    ) -> None:
        self.results, self.rolling_window = results, int(rolling_window)
        self.acf_lags, self.z = int(acf_lags), float(z)
        self.residuals: pd.Series = results["residuals"]
        self.index = self.residuals.index
        try:
            self.F: pd.Series | None = innovation_variance(results)
        except KeyError:
            self.F = None

    # --- public -------------------------------------------------------------------------------
    def plot(self, include: Literal["all"] | str | Sequence[str] | None = None) -> go.Figure:
        """Stack the chosen panels, top to bottom, in one figure.

        Parameters
        ----------
        include : None, "all", a panel name, or a sequence of panel names
            None: :data:`DEFAULT_PANELS` (six); "all": :data:`ALL_PANELS` (nine); names are
            drawn in the order given.

        Returns
        -------
        go.Figure
            One row per panel, 230 px each; time panels zoom together.
        """
        panels = self._resolve(include)
        n = len(panels)
        titles = [PANELS[p][0] + self._title_suffix(p) for p in panels]
        fig = make_subplots(rows=n, cols=1, subplot_titles=titles,
                            vertical_spacing=min(0.35 / n, 0.12))  # fmt: skip
        first_time_axis = None
        for row, panel in enumerate(panels, start=1):
            getattr(self, f"_{panel}")(fig, row)
            _, y_title, x_title = PANELS[panel]
            fig.update_yaxes(title_text=y_title, row=row, col=1)
            if x_title is not None:
                fig.update_xaxes(title_text=x_title, row=row, col=1)
                continue
            axis = "x" if row == 1 else f"x{row}"
            if first_time_axis is None:
                first_time_axis = axis
            else:  # zooming one time panel zooms all of them
                fig.update_xaxes(matches=first_time_axis, row=row, col=1)
        if PANELS[panels[-1]][2] is None:
            fig.update_xaxes(title_text="date", row=n, col=1)
        name, target = model_labels(self.results)
        finish_layout(fig, f"Model diagnostics: {name} — target {target}", 230 * n + 130)
        fig.update_layout(bargap=0.05)
        return fig

    # --- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _resolve(include: str | Sequence[str] | None) -> list[str]:
        if include is None:
            return list(DEFAULT_PANELS)
        if isinstance(include, str):
            include = list(ALL_PANELS) if include == "all" else [include]
        unknown = [p for p in include if p not in PANELS]
        if unknown or not include:
            raise ValueError(f"unknown panels {unknown}; choose from {list(ALL_PANELS)} or 'all'")
        return list(include)

    def _title_suffix(self, panel: str) -> str:
        standardized = self.F is not None and panel in ("acf_residuals", "residual_hist")
        if panel == "rolling_rmse":
            return f" (rolling {self.rolling_window} steps and expanding)"
        return " (standardized, v_t / √F_t)" if standardized else ""

    def _std_resid(self) -> np.ndarray:
        """Observed residuals, standardized when F_t is known: (n_observed,)."""
        v = self.residuals.to_numpy(dtype=np.float64)
        if self.F is not None:
            v = v / np.sqrt(self.F.to_numpy(dtype=np.float64))
        return v[~np.isnan(v)]

    def _line(self, fig: go.Figure, row: int, y: Any, name: str, color: str,
              showlegend: bool = False, dash: str | None = None) -> None:  # fmt: skip
        fig.add_trace(
            go.Scatter(x=self.index, y=np.asarray(y, dtype=np.float64), mode="lines",
                       name=name, showlegend=showlegend, line=dict(color=color, width=1.5,
                                                                   dash=dash)),
            row=row, col=1,
        )  # fmt: skip

    # --- panels: each adds its traces to `row` -------------------------------------------------
    def _actual_vs_predicted(self, fig: go.Figure, row: int) -> None:
        y_pred = self.results["y_pred"]
        if self.F is not None:
            # F_t is NaN where y_t is missing; the band bridges those steps (a NaN would
            # break the filled polygon).
            ok = self.F.notna().to_numpy()
            half = self.z * np.sqrt(self.F.to_numpy()[ok])
            mid, x = y_pred.to_numpy()[ok], list(self.index[ok])
            fig.add_trace(go.Scatter(x=x + x[::-1], y=[*(mid + half), *(mid - half)[::-1]],
                                     fill="toself", fillcolor=rgba(PALETTE[0], 0.18),
                                     line=dict(width=0), hoverinfo="skip",
                                     name=f"Predicted ± {self.z:g} √F_t"),
                          row=row, col=1)  # fmt: skip
        self._line(fig, row, y_pred, "Predicted", PALETTE[0], showlegend=True)
        self._line(fig, row, y_pred + self.residuals, "Actual", GREY, showlegend=True)

    def _residuals(self, fig: go.Figure, row: int) -> None:
        fig.add_trace(go.Bar(x=self.index, y=self.residuals, name="Residual", showlegend=False,
                             marker_color=PALETTE[1]), row=row, col=1)  # fmt: skip
        if self.F is not None:
            # Both envelope edges in one trace, split by a gap, so one legend entry hides both.
            half = self.z * np.sqrt(self.F.to_numpy(dtype=np.float64))
            x = [*self.index, None, *self.index]
            y = [*half, None, *(-half)]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"± {self.z:g} √F_t",
                                     line=dict(color=GREY, dash="dot", width=1)),
                          row=row, col=1)  # fmt: skip

    def _log_likelihood(self, fig: go.Figure, row: int) -> None:
        # A missing y_t contributes 0 to the likelihood; leave a gap, not a fake value.
        loglik = self.results["log_likelihood_t"].where(self.residuals.notna())
        self._line(fig, row, loglik, "Log-likelihood", PALETTE[2])

    def _gain_norm(self, fig: go.Figure, row: int) -> None:
        gain = factor_block(self.results["kalman_gain"])
        self._line(fig, row, np.linalg.norm(gain, axis=1), "Gain norm", PALETTE[3])

    def _drift_norm(self, fig: go.Figure, row: int) -> None:
        beta = factor_block(self.results["beta"])
        drift = np.r_[np.nan, np.linalg.norm(np.diff(beta, axis=0), axis=1)]
        self._line(fig, row, drift, "Drift norm", PALETTE[4])

    def _rolling_rmse(self, fig: go.Figure, row: int) -> None:
        w = self.rolling_window
        # A window needs half of its steps observed, so a missing y_t leaves no gap.
        rolling = np.sqrt((self.residuals**2).rolling(w, min_periods=max(1, w // 2)).mean())
        self._line(fig, row, rolling, f"Rolling RMSE ({w})", PALETTE[5], showlegend=True)
        self._line(fig, row, expanding_rmse(self.residuals), "Expanding RMSE", GREY,
                   showlegend=True, dash="dash")  # fmt: skip

    def _acf_residuals(self, fig: go.Figure, row: int) -> None:
        from statsmodels.tsa.stattools import acf  # loaded on use: ~0.5 s at import

        e = self._std_resid()
        lags = max(1, min(self.acf_lags, e.size - 1))
        rho = acf(e, nlags=lags, fft=True)[1:]
        fig.add_trace(go.Bar(x=np.arange(1, lags + 1), y=rho, name="ACF", showlegend=False,
                             marker_color=PALETTE[0]), row=row, col=1)  # fmt: skip
        bound = 1.96 / np.sqrt(e.size)  # white-noise 95% band (Bartlett, lag-1 form)
        fig.add_trace(go.Scatter(x=[0.5, lags + 0.5, None, 0.5, lags + 0.5],
                                 y=[bound, bound, None, -bound, -bound], mode="lines",
                                 name="± 1.96/√n", line=dict(color=GREY, dash="dot", width=1)),
                      row=row, col=1)  # fmt: skip

    def _residual_hist(self, fig: go.Figure, row: int) -> None:
        from scipy import stats

        e = self._std_resid()
        fig.add_trace(go.Histogram(x=e, histnorm="probability density", name="Residuals",
                                   showlegend=False, marker_color=PALETTE[0], opacity=0.75),
                      row=row, col=1)  # fmt: skip
        # Reference density: N(0, 1) for standardized residuals, else N(0, sample sd^2).
        sd = 1.0 if self.F is not None else float(np.std(e, ddof=1))
        grid = np.linspace(-4 * sd, 4 * sd, 201)
        label = "N(0, 1)" if self.F is not None else "Normal, same sd"
        fig.add_trace(go.Scatter(x=grid, y=stats.norm.pdf(grid, scale=sd), mode="lines",
                                 name=label, line=dict(color=PALETTE[1], width=1.5)),
                      row=row, col=1)  # fmt: skip

    def _cumulative_resid(self, fig: go.Figure, row: int) -> None:
        # Missing steps add nothing: the running sum stays flat over them.
        cum = np.cumsum(np.nan_to_num(self.residuals.to_numpy(dtype=np.float64)))
        self._line(fig, row, cum, "Cumulative residual", PALETTE[6])
