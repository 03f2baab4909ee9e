"""The numbers behind the report: fits, beta paths by method, Q/R values, forecast checks.

Everything here returns tables and arrays; `tvbeta.report.sections` turns them into HTML and
`tvbeta.viz.compare` into figures.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox

from tvbeta.constants import INTERCEPT, default_burn
from tvbeta.data import Design, prepare_design
from tvbeta.estimate.bayes.priors import Prior, periods_per_year
from tvbeta.estimate.grid import extend_spec
from tvbeta.evaluate.comparison import Comparison
from tvbeta.evaluate.forecast import OneStepForecast
from tvbeta.evaluate.settings import BAYES_VARIANTS, MLE_VARIANTS, Split
from tvbeta.model import KalmanEngine, KalmanSpec
from tvbeta.viz.bands import BandPath, beta_bands
from tvbeta.viz.compare import RefValue

#: Methods whose fit is a saved object (rolling OLS has none).
FITTED = ("grid_seed", "grid_loglik", *MLE_VARIANTS, *BAYES_VARIANTS)
#: Methods drawn in the beta-path figures (the question is Bayes vs the seed's grid; MLE is
#: the frequentist answer to the same likelihood).
PATH_METHODS = ("bayes", "grid_seed", "mle")


def path_methods(table: pd.DataFrame, fits: Mapping[str, Any]) -> list[str]:
    """Return the methods a series' beta-path figure draws, in `PATH_METHODS` order then more.

    `PATH_METHODS` that have a fit, and when the model menu ran, its best Bayes variant by the
    series' mean test log score (``table``: method -> row with "log score") with that variant's
    MLE (``mle`` + its suffix; none for a prior-only variant): the paths of the structure that
    forecast best beside the plain model's, plug-in and integrated alike.
    """
    methods = [m for m in PATH_METHODS if m in fits]
    best = best_bayes(table, fits)
    if best is not None:
        mle = "mle" + best.removeprefix("bayes")
        methods += [m for m in (best, mle) if m in fits and m not in methods]
    return methods


def best_bayes(table: pd.DataFrame, fits: Mapping[str, Any]) -> str | None:
    """Return the fitted Bayes method (any variant) with the best mean test log score.

    ``table``: the series' scores (method -> row with "log score"); None without a Bayes fit.
    """
    variants = [m for m in BAYES_VARIANTS if fits.get(m) is not None and m in table.index]
    return max(variants, key=lambda m: table.loc[m, "log score"]) if variants else None
LEVELS = (0.5, 0.8, 0.9, 0.95)
LB_LAGS = (4, 8)
N_PATHS = 200  # posterior draws of (Q, R) behind the Bayes beta paths (capped at the draws)
ALPHA = 0.05  # level at which a check is flagged


def gather_fits(
    comparison: Comparison, folder: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per series, method -> fit: from ``comparison.series[s].fits``, else from ``folder``.

    A method whose fit is in neither place is left out (its sections say so).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, s in comparison.series.items():
        fits = {m: f for m, f in s.fits.items() if f is not None}
        if folder is not None:
            for method in s.table.index:
                if method in FITTED and method not in fits:
                    try:
                        fits[method] = Comparison.load_fit(folder, name, method)
                    except OSError:  # not saved (e.g. the folder holds only some series)
                        pass
        out[name] = fits
    return out


class Layout(NamedTuple):
    """Where the rows go (n, n_train, burn in observed steps), ppy (None: unknown), settings."""

    n: int
    n_train: int
    burn: int
    ppy: float | None
    factors: list[str]
    intercept: bool


def layout(comparison: Comparison) -> Layout:
    """Return the split and settings of a comparison, `compare_methods`'s defaults filled in."""
    st = comparison.settings
    n = len(comparison.data)
    n_train = st.get("n_train") or Split.from_test_size(n, st.get("test_size", 0.3)).n_train
    factors = list(st.get("factors", []))
    intercept = bool(st.get("intercept", True))
    k = len(factors) + int(intercept)
    burn = default_burn(k) if st.get("burn") is None else int(st["burn"])
    try:
        ppy = periods_per_year(comparison.data.index)
    except ValueError:  # not a DatetimeIndex: annualised figures are left out
        ppy = None
    return Layout(n, int(n_train), burn, ppy, factors, intercept)


def frequency_name(ppy: float | None) -> str:
    """Name periods per year ("weekly" for 52); "unknown" for other values or None."""
    names = {252.0: "daily", 52.0: "weekly", 12.0: "monthly", 4.0: "quarterly", 1.0: "annual"}
    return names.get(ppy, "unknown") if ppy else "unknown (not a date index)"


def column_summary(comparison: Comparison, lay: Layout) -> pd.DataFrame:
    """Per column: role, mean and sd (full, training, test), annualised, range, missing."""
    data = comparison.data
    targets = set(comparison.settings.get("targets", comparison.series))
    train, test = data.iloc[: lay.n_train], data.iloc[lay.n_train :]
    rows = {}
    for col in data.columns:
        x = data[col]
        rows[col] = {
            "role": "target" if col in targets else "factor", "mean": x.mean(), "sd": x.std(),
            "mean (train)": train[col].mean(), "mean (test)": test[col].mean(),
            "sd (train)": train[col].std(), "sd (test)": test[col].std(),
            "annualised mean": x.mean() * lay.ppy if lay.ppy else np.nan,
            "annualised sd": x.std() * math.sqrt(lay.ppy) if lay.ppy else np.nan,
            "min": x.min(), "max": x.max(), "missing": int(x.isna().sum()),
        }  # fmt: skip
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "column"
    return out


# --- beta paths -----------------------------------------------------------------------------


def spec_states(spec: KalmanSpec, factors: list[str]) -> list[str]:
    """Return the spec's state names: "Intercept" first if it has one, then ``factors``."""
    return [INTERCEPT, *factors] if spec.intercept else list(factors)


def series_design(data: pd.DataFrame, target: str, lay: Layout) -> Design:
    """Return the validated design of one series, prepared once for all its beta paths."""
    return prepare_design(data, target, lay.factors, intercept=lay.intercept, burn=lay.burn)


def spec_paths(spec: KalmanSpec, design: Design, burn: int, n_train: int) -> BandPath:
    """Return smoothed beta_{t|n} and its 90% band over all rows (per-time Q, R carried on)."""
    full = extend_spec(spec, len(design.y), n_train)
    res = KalmanEngine(full).run_design(design.with_intercept(spec.intercept, burn), burn)
    return beta_bands(res, "smoothed", 0.9)


def full_paths(fit: Any, design: Design, *, seed: int, n_paths: int = N_PATHS) -> xr.Dataset:
    """Beta path summaries over ALL rows, integrated over the training posterior of (Q, R).

    The fit's model re-run on the full data (`paths.beta_path_summary`; a volatility-scaled R_t
    from the index, known at t-1), one simulation-smoother path per posterior draw.
    """
    from tvbeta.estimate.bayes.paths import beta_path_summary

    full = dataclasses.replace(fit.spec, index=design.index, y=design.y, Z=design.Z)
    draws = fit.system_draws(full)
    return beta_path_summary(full, draws, n_paths=min(n_paths, len(draws.Q)), seed=seed)


def bayes_paths(fit: Any, design: Design, *, seed: int, n_paths: int = N_PATHS) -> BandPath:
    """Smoothed beta paths over ALL rows (`full_paths`): posterior mean and 5%-95% quantiles."""
    path = beta_bands(full_paths(fit, design, seed=seed, n_paths=n_paths), "smoothed", 0.9)
    return path._replace(**{f: getattr(path, f).rename_axis(design.index.name)
                            for f in ("mean", "lower", "upper")})  # fmt: skip


# --- Q and R --------------------------------------------------------------------------------


def param_names(states: list[str]) -> list[str]:
    """Return the parameter names: "sigma_eps", then "sigma_beta[<state>]" per state."""
    return ["sigma_eps", *(f"sigma_beta[{s}]" for s in states)]


def posterior_sds(fit: Any) -> dict[str, np.ndarray]:
    """Return per parameter the (chains, draws) posterior draws of its sd (per period).

    sigma_eps and each sigma_beta (for a full Q, the sds of its diagonal).
    """
    post = fit.tree["posterior"]  # dims (chain, draw[, state])
    draws = [post["sigma_eps"].values, *np.moveaxis(post["sigma_beta"].values, -1, 0)]
    return dict(zip(param_names(list(fit.spec.state_names)), draws, strict=True))


def spec_sds(spec: KalmanSpec, factors: list[str], first_row: int) -> dict[str, RefValue]:
    """Return sqrt(R) and sqrt(diag Q) of a spec, per period.

    A per-time value (rolling setters) is the median over its steps from ``first_row`` (the
    row after the burn-in), with its 5%-95% range over time.
    """

    def ref(x: np.ndarray) -> RefValue:
        x = x[first_row:] if x.shape[0] > first_row + 1 else x
        lo, mid, hi = np.quantile(x, [0.05, 0.5, 0.95])
        return RefValue(float(mid), float(lo), float(hi))

    q = np.sqrt(np.clip(np.diagonal(spec.Q.steps(), axis1=1, axis2=2), 0.0, None))
    out = {"sigma_eps": ref(np.sqrt(np.clip(spec.R.steps(), 0.0, None)))}
    for j, s in enumerate(spec_states(spec, factors)):
        out[f"sigma_beta[{s}]"] = ref(q[:, j])
    return out


def static_table(fit: Any, specs: Mapping[str, KalmanSpec], factors: list[str],
                 first_row: int) -> pd.DataFrame:
    """Per state, the grid's and MLE's choice of Q beside the horseshoe's P(static).

    Columns: for each spec in ``specs`` (method -> spec) its Q setter (``q_mode``) and its
    sqrt(Q) per period (`spec_sds`: a per-time value as its median from ``first_row``; NaN for
    a state the spec lacks); then the horseshoe fit's posterior median of sigma_beta and
    `BayesFit.static_probability` (default threshold).
    """
    p_static = fit.static_probability()
    sds = posterior_sds(fit)
    values = {m: spec_sds(spec, factors, first_row) for m, spec in specs.items()}
    rows = {}
    for state in fit.spec.state_names:
        name = f"sigma_beta[{state}]"
        row: dict[str, Any] = {}
        for method, spec in specs.items():
            row[f"{method} Q setter"] = spec.q_mode or "–"
            ref = values[method].get(name)
            row[f"{method} sigma_beta"] = np.nan if ref is None else ref.value
        row["horseshoe sigma_beta median"] = float(np.median(sds[name]))
        row["P(static)"] = float(p_static[state])
        rows[state] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("state")


class PriorDist(NamedTuple):
    """CDF and quantile function (ppf) of a prior, each vectorised over an array."""

    cdf: Callable[[np.ndarray], np.ndarray]
    ppf: Callable[[np.ndarray], np.ndarray]


def prior_dist(prior: Prior, j: int | None = None) -> PriorDist | None:
    """Return the CDF and quantile function of a scale prior (entry j of per-state parameters).

    None for a parametrisation not mapped here (then no curve is drawn rather than a wrong one).
    """
    p = {k: (v[j] if isinstance(v, list) and j is not None else v) for k, v in prior.params.items()}
    try:
        match prior.dist:
            case "HalfNormal":
                d = stats.halfnorm(scale=p["sigma"])
            case "HalfCauchy":
                d = stats.halfcauchy(scale=p["beta"])
            case "HalfStudentT":  # |t|: P(|T| <= x) = 2 F(x) - 1
                t = stats.t(p["nu"], scale=p["sigma"])
                return PriorDist(
                    lambda x: np.clip(2 * t.cdf(x) - 1, 0, 1),
                    lambda q: t.ppf((1 + np.asarray(q)) / 2),
                )
            case "Exponential":
                d = stats.expon(scale=p["scale"] if "scale" in p else 1 / p["lam"])
            case "Gamma":
                d = stats.gamma(a=p["alpha"], scale=1 / p["beta"])
            case "InverseGamma":
                d = stats.invgamma(a=p["alpha"], scale=p["beta"])
            case "LogNormal":
                d = stats.lognorm(s=p["sigma"], scale=np.exp(p.get("mu", 0.0)))
            case "Weibull":
                d = stats.weibull_min(c=p["alpha"], scale=p["beta"])
            case _:
                return None
    except KeyError:
        return None
    return PriorDist(d.cdf, d.ppf)


def prior_dists(fit: Any) -> dict[str, PriorDist | None]:
    """Return per parameter (`param_names`) the prior of a Bayes fit (`prior_dist`)."""
    resolved = fit.spec.resolved
    out = {"sigma_eps": prior_dist(resolved.sigma_eps)}
    for j, s in enumerate(fit.spec.state_names):
        out[f"sigma_beta[{s}]"] = prior_dist(resolved.sigma_beta, j)
    return out


def qr_table(
    draws: Mapping[str, np.ndarray],
    refs: Mapping[str, Mapping[str, RefValue]],
    priors: Mapping[str, PriorDist | None],
    ppy: float | None,
) -> pd.DataFrame:
    """Tabulate each sd: posterior median and interval, prior interval, each method's value.

    Rows (parameter, unit), unit "per period" or "annualised" (x sqrt(periods per year): the
    sd of a year's drift of a random-walk beta, or of a year's sum of iid noise).
    """
    rows = {}
    units = [("per period", 1.0)] + ([("annualised", math.sqrt(ppy))] if ppy else [])
    for p, d in draws.items():
        d = np.ravel(d)
        prior = priors.get(p)
        for unit, f in units:
            row = {
                "posterior median": f * np.median(d),
                "posterior 5%": f * np.quantile(d, 0.05),
                "posterior 95%": f * np.quantile(d, 0.95),
                "prior 5%": f * float(prior.ppf(0.05)) if prior else np.nan,
                "prior 95%": f * float(prior.ppf(0.95)) if prior else np.nan,
            }
            for method, values in refs.items():
                row[method] = f * values[p].value if p in values else np.nan
            rows[(p, unit)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = ["parameter", "unit"]
    return out


# --- checks of the test-span forecasts -------------------------------------------------------


def forecast_checks(forecasts: Mapping[str, OneStepForecast]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration of each method's one-step predictive over the test span.

    Coverage of the central p intervals (y inside iff |PIT - 1/2| < p/2, exact for any
    predictive shape) with a binomial test; Ljung-Box on the normalised PIT residuals
    z_t = Phi^{-1}(PIT_t), which equal the standardized residuals (y - mean) / sd for a Gaussian
    predictive and are N(0, 1) iid for any calibrated one; mean and sd of z, tested against
    0 (z test) and 1 (two-sided chi-square test of (n - 1) s^2 on n - 1 degrees of freedom).

    Returns
    -------
    (table, flags) : DataFrames indexed by method; flags is True where a test rejects at 5%.
    """
    rows, flags = {}, {}
    for method, fc in forecasts.items():
        pit = np.asarray(fc.pit, dtype=np.float64)
        n = pit.size
        row: dict[str, float] = {}
        flag: dict[str, bool] = {}
        for p in LEVELS:
            inside = int(np.sum(np.abs(pit - 0.5) < p / 2))
            col = f"coverage {round(100 * p)}%"
            row[col] = inside / n if n else np.nan
            flag[col] = bool(n and stats.binomtest(inside, n, p).pvalue < ALPHA)
        z = stats.norm.ppf(np.clip(pit, 1e-12, 1 - 1e-12))  # a PIT of 0 or 1 would give inf
        lags = [lag for lag in LB_LAGS if lag < n]
        lb = acorr_ljungbox(z, lags=lags) if lags else None
        for lag in LB_LAGS:
            col = f"Ljung-Box p (lag {lag})"
            row[col] = float(lb.loc[lag, "lb_pvalue"]) if lb is not None and lag in lags else np.nan
            flag[col] = bool(row[col] < ALPHA)
        row["mean z"], row["sd z"], row["n test"] = float(z.mean()), float(z.std(ddof=1)), n
        # under calibration z is iid N(0, 1): mean ~ N(0, 1/n) and (n - 1) s^2 ~ chi2(n - 1)
        # (the sample variance, so that a bias is not also counted as a wrong spread)
        flag["mean z"] = bool(abs(row["mean z"]) * math.sqrt(n) > stats.norm.ppf(1 - ALPHA / 2))
        chi2 = stats.chi2(n - 1)
        ss = (n - 1) * row["sd z"] ** 2
        flag["sd z"] = bool(2 * min(chi2.cdf(ss), chi2.sf(ss)) < ALPHA)
        rows[method], flags[method] = row, flag
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "method"
    table["n test"] = table["n test"].astype(int)
    return table, pd.DataFrame.from_dict(flags, orient="index").reindex(
        columns=table.columns, fill_value=False
    )
