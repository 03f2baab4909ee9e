"""Convergence diagnostics, predictive checks, LOO and plots for a `BayesFit` (ArviZ 1.3).

Thresholds (Vehtari et al. 2021, "Rank-normalization, folding, and localization"): R-hat
<= 1.01, bulk and tail ESS >= 400 (in total over chains), no divergent transition, and an
E-BFMI >= 0.3 in every chain (Betancourt 2016). `check_convergence` warns with a
`BayesConvergenceWarning` naming every failed check, and each parameter as `BayesFit.summary`
shows it with the sampled variable diagnosed: ``Q[f1] (sigma_beta[f1])``, ``R (sigma_eps)``.
The model menu's parameters a fit has are checked too (`MENU_PARAMETERS`: gamma, a sampled
index half-life, phi_annual, the horseshoe's global scale). R-hat compares chains: a one-chain
fit is not checked for it, and the warning says so.
`check_draws` runs the same checks on any posterior's variables (the pooled model's too).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from tvbeta._warn import warn_caller
from tvbeta.data.validate import listed
from tvbeta.estimate.bayes.model import OBSERVED
from tvbeta.outputs import atomic_path

__all__ = [
    "BayesConvergenceWarning",
    "ConvergenceReport",
    "check_convergence",
    "check_draws",
    "loo",
    "parameter_names",
    "plot_rank",
    "plot_trace",
    "posterior_predictive_check",
    "prior_predictive_check",
    "summary",
]

RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3


class BayesConvergenceWarning(UserWarning):
    """The sampler's output fails a convergence check; the estimates may be unreliable."""


#: The model menu's parameters a fit may have, diagnosed when its posterior holds them:
#: the volatility elasticity, a sampled index half-life, the one-year persistence (``phi``
#: per step is a monotone function of it: the same ranks, so the same R-hat and ESS) and the
#: horseshoe's global scale (its local scales are heavy-tailed nuisances of sigma_beta).
MENU_PARAMETERS = ("gamma", "index_half_life", "phi_annual", "shrink_tau")


def parameter_names(fit) -> list[str]:
    """Return the posterior variables to diagnose.

    sigma_eps, sigma_beta (and Q for a full Q), and the model menu's parameters the fit has
    (`MENU_PARAMETERS`).
    """
    posterior = fit.tree["posterior"]
    return (["sigma_eps", "sigma_beta"] + (["Q"] if fit.spec.q == "full" else [])
            + [name for name in MENU_PARAMETERS if name in posterior])  # fmt: skip


def summary(fit, *, ci_prob: float = 0.9) -> pd.DataFrame:
    """Mean, sd, ETI bounds, bulk/tail ESS, R-hat and MCSE for each parameter (unrounded)."""
    return _summary_table(fit.tree, parameter_names(fit), ci_prob)


def _summary_table(tree: xr.DataTree, var_names: list[str], ci_prob: float = 0.9) -> pd.DataFrame:
    # one variable per call: ArviZ 1.3's summary of several variables whose dims come in
    # different orders (mu (state), then sigma_beta (fund, state)) lays a later variable's
    # values out in the first one's dim order but labels them in its own: pooled rows named
    # "sigma_beta[NoDur, MktRF]" held another fund's value
    return pd.concat([pd.DataFrame(az.summary(tree, var_names=[name], ci_prob=ci_prob,
                                              round_to="none")) for name in var_names])  # fmt: skip


@dataclass(frozen=True)
class ConvergenceReport:
    """The outcome of `check_convergence`.

    summary : `summary` table; n_divergent : divergent transitions after tuning;
    bfmi : (chains,) E-BFMI; problems : a sentence per failed check (empty when all pass).
    """

    summary: pd.DataFrame
    n_divergent: int
    bfmi: np.ndarray
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when every check passed (no problems)."""
        return not self.problems


_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""`check_convergence`'s report of each fit object: its draws do not change, and the fit itself
(`fit_spec`), the command line's note, the report's sections and a fund's record all ask
(0.1 s a fit of 4 x 1000 draws, 180 fits in the README's menu comparison)."""


def check_convergence(fit, *, warn: bool = True) -> ConvergenceReport:
    """Run the checks of the module docstring; warn (BayesConvergenceWarning) when any fails.

    The report is computed once per fit object (`_REPORTS`); the warning, each time ``warn``.
    """
    report = _REPORTS.get(fit)
    if report is None:
        table = summary(fit)
        report = _REPORTS[fit] = _check(fit.tree, table, _shown_names(table.index, fit.spec.q))
    if warn:
        _warn(report, "Bayesian fit")
    return report


def check_draws(
    tree: xr.DataTree, var_names: list[str], *, what: str, warn: bool = True
) -> ConvergenceReport:
    """Run `check_convergence`'s checks on the posterior variables ``var_names`` of ``tree``.

    what : the fit's name in the warning (e.g. "pooled Bayesian fit"). Rows are named as
    ``az.summary`` names them ("sigma_beta[fund0, MktRF]").
    """
    table = _summary_table(tree, var_names)
    report = _check(tree, table, list(map(str, table.index)))
    if warn:
        _warn(report, what)
    return report


def _check(tree: xr.DataTree, table: pd.DataFrame, names: list[str]) -> ConvergenceReport:
    """Run the checks of the module docstring on the summary ``table``, rows called ``names``."""
    shown = pd.Series(names, index=table.index)
    problems = []
    n_chains = tree["posterior"].sizes["chain"]
    if n_chains < 2:
        # one chain's split R-hat only compares its halves: no test of chains agreeing
        problems.append(f"R-hat not checked: it compares chains and this fit has {n_chains}; "
                        "sample 2 or more (the default is 4) to check convergence")
    else:
        bad_rhat = shown[~(table["r_hat"] <= RHAT_MAX)].tolist()
        if bad_rhat:
            problems.append(f"R-hat > {RHAT_MAX} (or NaN) for {_listed(bad_rhat)}: chains "
                            "disagree")
    for col, kind in (("ess_bulk", "bulk"), ("ess_tail", "tail")):
        low = shown[~(table[col] >= ESS_MIN)].tolist()
        if low:
            problems.append(f"{kind} ESS < {ESS_MIN:.0f} for {_listed(low)}: draw more (or "
                            "thin less)")
    stats = tree["sample_stats"]
    n_div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    if n_div:
        problems.append(
            f"{n_div} divergent transitions: raise target_accept (e.g. 0.95-0.99) or "
            "reconsider priors that let a variance approach 0"
        )
    bfmi = _bfmi(tree)
    if np.any(bfmi < BFMI_MIN):
        problems.append(f"E-BFMI < {BFMI_MIN} in some chain ({np.round(bfmi, 2).tolist()})")
    return ConvergenceReport(table, n_div, bfmi, problems)


def _warn(report: ConvergenceReport, what: str) -> None:
    """Warn (BayesConvergenceWarning) with each failed check of ``report``, naming ``what``."""
    if report.problems:
        warn_caller(
            f"{what} failed convergence checks:\n- " + "\n- ".join(report.problems),
            BayesConvergenceWarning,
        )


#: Parameters a warning names before it counts the rest (a pooled fit has one per fund and
#: state: the whole list made warnings of thousands of characters).
LISTED = 6


def _listed(names: list[str]) -> str:
    """Join ``names``; past `LISTED`, count the rest and say where all of them are."""
    where = (f" (all {len(names)} in the summary of the ConvergenceReport that "
             "check_convergence returns)") if len(names) > LISTED else ""  # fmt: skip
    return listed(names, LISTED) + where


def _shown_names(labels: pd.Index, q: str) -> list[str]:
    """Name each `summary` row as `BayesFit.qr_summary` does, the sampled variable after it.

    sigma_eps -> "R (sigma_eps)"; sigma_beta[s] -> "Q[s] (sigma_beta[s])" ("Q[s,s] (...)" for
    a full Q); a full Q's entry "Q[a, b]" -> "Q[a,b]"; anything else unchanged.
    """
    out = []
    for label in map(str, labels):
        if label == "sigma_eps":
            label = "R (sigma_eps)"
        elif label.startswith("sigma_beta[") and label.endswith("]"):
            state = label[len("sigma_beta["):-1]
            entry = state if q == "diag" else f"{state},{state}"
            label = f"Q[{entry}] ({label})"
        elif label.startswith("Q["):
            label = label.replace(", ", ",")
        out.append(label)
    return out


def _bfmi(tree: xr.DataTree) -> np.ndarray:
    """E-BFMI per chain from the energy (PyMC and nutpie both store ``energy``)."""
    if "energy" not in tree["sample_stats"]:
        return np.array([])
    energy = tree["sample_stats"]["energy"].values  # (chain, draw)
    num, var = np.mean(np.diff(energy, axis=1) ** 2, axis=1), np.var(energy, axis=1)
    # a chain that never moved has constant energy: E-BFMI 0 (flagged), not 0/0
    return np.divide(num, var, out=np.zeros_like(num), where=var > 0)


def loo(fit, pointwise: bool = True):
    """PSIS-LOO over the one-step terms (``az.loo``): elpd, se, p_loo and Pareto k per time.

    Leaving a term log p(y_t | y_{<t}, Q, R) out is not refitting without y_t (later terms
    still condition on it): read it as a predictive score with PSIS diagnostics.
    """
    return az.loo(fit.tree, pointwise=pointwise, var_name=OBSERVED)


def _predictive_frame(replicates: np.ndarray, observed: np.ndarray) -> pd.DataFrame:
    """Test statistics of replicated returns vs the data, and posterior predictive p-values."""
    stats = {
        "mean": np.nanmean, "sd": np.nanstd,
        "min": np.nanmin, "max": np.nanmax,
        "abs_autocorr1": lambda x, axis: _acf1(np.abs(x), axis),
        "autocorr1": _acf1,
    }  # fmt: skip
    rows = {}
    for name, f in stats.items():
        rep = f(replicates, axis=-1)
        obs = float(f(observed[None], axis=-1)[0])
        rows[name] = {
            "observed": obs,
            "replicated_q05": float(np.quantile(rep, 0.05)),
            "replicated_q50": float(np.quantile(rep, 0.5)),
            "replicated_q95": float(np.quantile(rep, 0.95)),
            "p_value": float(np.mean(rep >= obs)),
        }
    return pd.DataFrame(rows).T


def _acf1(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - np.nanmean(x, axis=axis, keepdims=True)
    num = np.nansum(x[..., 1:] * x[..., :-1], axis=axis)
    return num / np.nansum(x * x, axis=axis)


def _replicates(tree: xr.DataTree, group: str) -> np.ndarray:
    y = tree[group][OBSERVED].values
    return y.reshape(-1, y.shape[-1])


def posterior_predictive_check(fit, *, seed: int | None = None) -> pd.DataFrame:
    """Compare observed with replicated statistics of the returns.

    Mean, sd, min, max and lag-1 autocorrelations of y and |y|, with 90% bands and posterior
    predictive p-values P(T(y_rep) >= T(y)); replicates from the model given posterior (Q, R).

    Parameters
    ----------
    fit : BayesFit
        The fit to check.
    seed : int, optional
        Seed of the replicates, needed only when the fit has no posterior_predictive group.

    Returns
    -------
    pd.DataFrame
        One row per statistic: observed value, band of the replicates and p-value.

    Raises
    ------
    ValueError
        When the fit has no posterior_predictive group and ``seed`` is None.
    """
    if "posterior_predictive" not in fit.tree.children:
        if seed is None:
            raise ValueError("the fit has no posterior_predictive group: pass seed= to draw one")
        fit = fit.with_posterior_predictive(seed)
    observed = fit.tree["observed_data"][OBSERVED].values
    return _predictive_frame(_replicates(fit.tree, "posterior_predictive"), observed)


def prior_predictive_check(spec_or_fit, *, draws: int = 500, seed: int) -> pd.DataFrame:
    """Compare replicated-return statistics under the priors with the data (as the posterior's).

    The prior should make returns of the data's scale plausible, not force them.
    """
    from tvbeta.estimate.bayes.model import sample_prior_predictive

    spec = getattr(spec_or_fit, "spec", spec_or_fit)
    tree = sample_prior_predictive(spec, draws, seed=seed)
    return _predictive_frame(_replicates(tree, "prior_predictive"), spec.y[spec.steps])


def _savefig(pc: az.PlotCollection, path: str | Path) -> None:
    """Save the figure atomically; no suffix: matplotlib's default format, as ``savefig``."""
    import matplotlib as mpl

    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(f".{mpl.rcParams['savefig.format']}")
    with atomic_path(path) as tmp:
        pc.savefig(tmp)


def plot_trace(fit, path: str | Path | None = None, **kwargs) -> az.PlotCollection:
    """Plot trace and density per parameter (``az.plot_trace_dist``); saved as PNG if ``path``.

    One row per state, since the intercept and the factor betas have different scales.
    """
    kwargs.setdefault("compact", False)
    pc = az.plot_trace_dist(fit.tree, var_names=parameter_names(fit), backend="matplotlib",
                            **kwargs)  # fmt: skip
    if path is not None:
        _savefig(pc, path)
    return pc


def plot_rank(fit, path: str | Path | None = None, **kwargs) -> az.PlotCollection:
    """Rank ECDF plots per parameter (``az.plot_rank``); saved as PNG if ``path``."""
    pc = az.plot_rank(fit.tree, var_names=parameter_names(fit), backend="matplotlib", **kwargs)
    if path is not None:
        _savefig(pc, path)
    return pc
