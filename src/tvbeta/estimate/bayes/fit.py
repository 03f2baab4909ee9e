"""Sample the posterior of Q and R with NUTS, summarise the beta paths, save and load fits.

A `BayesFit` saves to one NetCDF file (h5netcdf) and loads back with nothing lost.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from tvbeta.constants import HORSESHOE_TARGET_ACCEPT, STATE, STATE2, TIME
from tvbeta.data.validate import Design
from tvbeta.estimate.bayes.diagnostics import ConvergenceReport, check_convergence
from tvbeta.estimate.bayes.model import (
    OBSERVED,
    BayesSpec,
    ModelOptions,
    QForm,
    SystemDraws,
    bayes_spec,
    model_from_spec,
    posterior_predictive_group,
    sample_prior_predictive,
)
from tvbeta.estimate.bayes.paths import beta_path_summary, p_positive_frame
from tvbeta.estimate.bayes.priors import Prior, Priors, ResolvedPriors, drift_per_year
from tvbeta.estimate.bayes.sampler import NUTSRun, adaptation_for, sample_nuts
from tvbeta.model import StateSpaceModel, TimeVarying, reversion
from tvbeta.model.io import unreadable
from tvbeta.model.volatility import VolatilityIndex, scaled_noise
from tvbeta.nuts import Sampler, SamplerSettings, check_seed
from tvbeta.outputs import atomic_path

__all__ = ["BayesFit", "fit_bayes", "fit_spec", "posterior_log_h", "posterior_qr",
           "posterior_system"]

FORMAT_VERSION = 1
TIME_ALL = "time_all"
"""Coordinate of every data row (burn rows included) in the saved design group."""
_DESIGN, _PATHS, _SETTINGS = "tvbeta_design", "beta_paths", "tvbeta_settings"
_DATES = "tvbeta_dates"
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BayesFit:
    """A sampled posterior and what was derived from it.

    tree : DataTree with groups posterior, sample_stats, log_likelihood, observed_data (and
    prior, prior_predictive, posterior_predictive when asked), ``time`` = the observed steps;
    beta : Dataset of the beta path summaries (time, state) over every row after burn, see
    `paths`; spec : the model's `BayesSpec`; settings : ``burn``, ``frequency`` (periods per
    year), sampler settings and timings (JSON-friendly; saved with the fit).
    """

    tree: xr.DataTree
    beta: xr.Dataset
    spec: BayesSpec
    settings: dict[str, Any]

    def __repr__(self) -> str:
        """Return the model (`BayesSpec.about`) and what the sampler ran."""
        s = self.settings
        return (
            f"BayesFit({self.spec.about()};\n  {s.get('sampler')}: {s.get('chains')} chains x "
            f"{s.get('draws')} draws after {s.get('tune')} tuning steps, seed {s.get('seed')}, "
            f"{s.get('wall_time_total', float('nan')):.1f} s)"
        )

    @property
    def sampler_settings(self) -> SamplerSettings:
        """The NUTS settings as they ran (sampler and cores resolved); KeyError if not recorded."""
        return SamplerSettings(**{f.name: self.settings[f.name] for f in fields(SamplerSettings)})

    def alpha_probability(self) -> pd.DataFrame:
        """Return P(alpha_t > 0) per row of the likelihood window (time), as the analyst reads it.

        Columns ``filtered`` (real time: given y_{<=t}, what was knowable at t) and
        ``smoothed`` (in hindsight: given every y), each averaged over the posterior draws of
        the beta paths (`paths.beta_path_summary`, Rao-Blackwellised), for the intercept state.

        Raises
        ------
        ValueError
            The model has no intercept, or the fit kept no beta paths (``n_paths=0``).
        """
        if not self.spec.intercept:
            raise ValueError("alpha_probability needs a model with an intercept (alpha): fit "
                             "with intercept=True")
        return p_positive_frame(self.beta, self.spec.state_names[0])

    def static_probability(self, threshold: float | Sequence[float] | None = None) -> pd.Series:
        """Return P(beta_j is static | data) per state, the posterior P(drift < threshold).

        The drift is the state's one-year drift sd sigma_beta_j sqrt(ppy).

        The default threshold is a tenth of the default prior's one-year drift scale of the
        state (`priors.drift_per_year`): 0.1 x 0.5 = 0.05 beta per year for a factor, 0.01
        sd(y) per year for the intercept. Why: a random-walk beta with that one-year sd moves
        by about 0.1 over four years, less than the standard error of an OLS beta on a few
        years of weekly returns (typically 0.05-0.1), so over the span of such a fit it cannot
        be told from a constant one. Works for any fit of a diagonal or full Q, with or
        without ``shrinkage``.

        Parameters
        ----------
        threshold : float or sequence of float (k,), optional
            One-year drift sd below which a state counts as static, in the state's units (beta
            per year; return units per year for the intercept); one value for all states or
            one per state (`BayesSpec.state_names` order).

        Returns
        -------
        pd.Series
            (k,) probabilities in [0, 1], indexed by state, named ``"P(static)"``.

        Raises
        ------
        ValueError
            A threshold that is not > 0 and finite, or not a scalar or k values.
        """
        spec = self.spec
        default = 0.1 * drift_per_year(spec.y, spec.Z, spec.intercept, spec.priors)
        limit = default if threshold is None else np.asarray(threshold, dtype=np.float64)
        if limit.ndim > 1 or (limit.ndim == 1 and limit.shape != (spec.k,)) or not np.all(
                np.isfinite(limit) & (limit > 0)):  # fmt: skip
            raise ValueError(f"threshold must be one number > 0 or {spec.k} of them (one per "
                             f"state {list(spec.state_names)}), got {threshold!r}")  # fmt: skip
        sigma = self.tree["posterior"]["sigma_beta"].values.reshape(-1, spec.k)
        p = np.mean(sigma * np.sqrt(spec.ppy) < limit, axis=0)
        return pd.Series(p, index=pd.Index(spec.state_names, name=STATE), name="P(static)")

    def half_life(self, prob: float = 0.9) -> pd.DataFrame:
        """Return the posterior of each state's half-life of reversion, in years.

        The half-life of a deviation from the long-run mean, log 2 / -log phi_annual
        (`tvbeta.model.reversion.half_life_years`; inf at phi = 1), at the posterior median
        and the central ``prob`` interval of phi_annual (a monotone map: these are the
        half-life's quantiles). (k, 3) indexed by state, columns "median" and the interval's
        bounds (e.g. "5%", "95%"), as `MLEFit.half_life` gives the estimate. Compare the
        posterior of phi_annual with its Beta prior before reading one: phi is weakly
        identified unless a beta's swings are large against the noise.

        Raises
        ------
        ValueError
            The betas are a random walk (no phi).
        """
        if self.spec.betas != "mean_reverting":
            raise ValueError('half_life needs mean-reverting betas: fit with '
                             'betas="mean_reverting"')  # fmt: skip
        draws = self.tree["posterior"]["phi_annual"].values.reshape(-1, self.spec.k)
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        table = {name: reversion.half_life_years(np.quantile(draws, p, axis=0), 1.0)
                 for name, p in (("median", 0.5), (f"{lo:.0%}", lo), (f"{hi:.0%}", hi))}
        return pd.DataFrame(table, index=pd.Index(self.spec.state_names, name=STATE))

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Summarise the posterior of Q and R (`qr_summary`), like `MLEFit.summary`."""
        return self.qr_summary(prob)

    def check_convergence(self, warn: bool = True) -> ConvergenceReport:
        """Check the sampling: R-hat, bulk and tail ESS, divergences and E-BFMI.

        `diagnostics.check_convergence` of this fit (the pooled fit has the same method).
        Returns its `ConvergenceReport` (``summary``: R-hat and ESS per parameter, ``ok``,
        ``problems``); warns (BayesConvergenceWarning) when a check fails and ``warn``.
        """
        return check_convergence(self, warn=warn)

    def model(self) -> pm.Model:
        """Rebuild the PyMC model (e.g. for predictive sampling after `load`)."""
        return model_from_spec(self.spec)

    def qr_draws(self, rows: BayesSpec | Design | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws Q (D, k, k) and R (D,), chains pooled.

        For a volatility-scaled R, R_t (D, n) on the n rows of ``rows`` (anything with y and
        Z, such as the whole series of which the fit saw the first rows; default: the fitted
        rows), with the index centred as in the fit (a sampled half-life: each draw's own).
        """
        return posterior_qr(self.tree, self.spec.q, posterior_log_h(self.tree, self.spec, rows))

    def system_draws(self, rows: BayesSpec | Design | None = None) -> SystemDraws:
        """Posterior draws of the filter's T, Q and R (`posterior_system`), chains pooled.

        ``rows`` as in `qr_draws` (the rows a volatility-scaled R_t is given on).
        """
        return posterior_system(self.tree, self.spec, self.qr_draws(rows))

    def qr_summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Summarise the posterior of Q and R in the names and units of `MLEFit.params`.

        Mean, sd, median and the central ``prob`` interval of ``Q[state]`` (and ``Q[a,b]`` for a
        full Q) per period, then ``R``: ``mle.summary().join(fit.qr_summary())`` lines them up.
        """
        from tvbeta.estimate.mle import QRParameterization

        k, q = self.spec.k, self.spec.q
        Q, R = posterior_qr(self.tree, q)  # R: sigma_eps^2, the level of a scaled R_t
        i, j = np.tril_indices(k) if q == "full" else np.diag_indices(k)
        draws = np.column_stack([Q[:, i, j], R])
        names = QRParameterization(k, q).natural_names(self.spec.state_names)
        if self.spec.noise_index is not None:
            draws = np.column_stack([draws, self.tree["posterior"]["gamma"].values.reshape(-1)])
            names.append("gamma")
        if self.spec.samples_half_life:
            years = self.tree["posterior"]["index_half_life"].values.reshape(-1)
            draws = np.column_stack([draws, years])
            names.append("index_half_life")
        if self.spec.betas == "mean_reverting":
            draws = np.column_stack([draws, self.tree["posterior"]["phi"].values.reshape(-1, k)])
            names += [f"phi[{s}]" for s in self.spec.state_names]
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        table = {
            "posterior mean": draws.mean(axis=0),
            "posterior sd": draws.std(axis=0, ddof=1),
            "posterior median": np.median(draws, axis=0),
            f"{lo:.0%}": np.quantile(draws, lo, axis=0),
            f"{hi:.0%}": np.quantile(draws, hi, axis=0),
        }
        return pd.DataFrame(table, index=pd.Index(names, name="parameter"))

    def with_posterior_predictive(self, seed: int) -> BayesFit:
        """Return a copy with a posterior_predictive group (replicated returns from the model)."""
        tree = self.tree.copy()
        tree["posterior_predictive"] = posterior_predictive_group(tree, self.model(), seed)
        return replace(self, tree=tree)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write everything to one NetCDF file (h5netcdf): groups, beta paths, design, settings."""
        path = Path(path)
        tree = self.tree.copy()
        tree[_PATHS] = xr.DataTree(self.beta)
        tree[_DESIGN] = xr.DataTree(_design_dataset(self.spec))
        tree.attrs = {**tree.attrs, _SETTINGS: json.dumps(_settings_dict(self), default=str)}
        tree.attrs[_DATES] = json.dumps(_date_coords(tree))
        with atomic_path(path) as tmp:  # an interrupted write leaves the previous file
            tree.to_netcdf(tmp, engine="h5netcdf", mode="w")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BayesFit:
        """Read a file written by `save` fully into memory and close it.

        Raises
        ------
        FileNotFoundError
            No such file.
        SavedFileError
            The file is truncated, corrupt, or not a Bayes fit saved by tvbeta (the message
            names it).
        """
        what = "tvbeta Bayes fit (NetCDF written by BayesFit.save)"
        try:
            with xr.open_datatree(path, engine="h5netcdf") as opened:
                tree = opened.load().copy(deep=True)
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as err:  # h5py: truncated, bad signature, ...
            raise unreadable(path, what, f"cannot open it as NetCDF/HDF5: {err}") from err
        try:
            attrs = dict(tree.attrs)
            meta = json.loads(attrs.pop(_SETTINGS))
            _restore_dates(tree, json.loads(attrs.pop(_DATES, "{}")))
            beta = tree[_PATHS].to_dataset()
            design = tree[_DESIGN].to_dataset()
            tree = tree.drop_nodes([_PATHS, _DESIGN])
            tree.attrs = attrs
            spec = _spec_from_saved(design, meta["spec"])
            # files written before burn and frequency were settings: the spec has them
            settings = {"burn": spec.burn, "frequency": spec.ppy, **meta["settings"]}
        except KeyError as err:
            raise unreadable(path, what, f"it has no {err.args[0]!r}") from err
        except (TypeError, ValueError) as err:
            raise unreadable(path, what, f"its contents do not fit: {err}") from err
        return cls(tree=tree, beta=beta, spec=spec, settings=settings)


def _date_coords(tree: xr.DataTree) -> dict[str, dict[str, list[str | None]]]:
    """Return {node path: {coordinate: [resolution, freq]}} of every date coordinate.

    NetCDF gives dates back in nanoseconds and without a frequency; pandas reads a CSV's at
    microseconds, and a regular index has a freq: `_restore_dates` puts both back.
    """
    out: dict[str, dict[str, list[str | None]]] = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        for name, c in ds.coords.items():
            if np.issubdtype(c.dtype, np.datetime64):
                freq = getattr(ds.indexes.get(name), "freqstr", None)
                out.setdefault(node.path, {})[str(name)] = [np.datetime_data(c.dtype)[0], freq]
    return out


def _restore_dates(tree: xr.DataTree, saved: dict[str, dict[str, list[str | None]]]) -> None:
    """Give the date coordinates of a loaded tree their saved resolution and freq, in place."""
    for path, coords in saved.items():
        node = tree if path == "/" else tree[path]
        ds = node.to_dataset(inherit=False)
        dates = {}
        for name, (unit, freq) in coords.items():
            values = ds[name].values.astype(f"datetime64[{unit}]")
            dates[name] = pd.DatetimeIndex(values, freq=freq, name=name) if freq else values
        node.dataset = ds.assign_coords(dates)


def posterior_log_h(tree: xr.DataTree, spec: BayesSpec, rows: Any = None) -> np.ndarray | None:
    """Return the centred log variance index the posterior's R_t uses on ``rows``.

    None for a constant R; (n,) at the index's fixed half-life; (D, n), one per draw (chains
    pooled), at a sampled half-life (`BayesSpec.noise_log_h`). ``rows`` as in
    `BayesFit.qr_draws` (default: the spec's).
    """
    half_lives = None
    if spec.samples_half_life:  # the posterior holds years; the index takes periods
        half_lives = tree["posterior"]["index_half_life"].values.reshape(-1) * spec.ppy
    return spec.noise_log_h(half_lives, rows)


def posterior_qr(tree: xr.DataTree, q: QForm,
                 log_h: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Q (D, k, k) and R from a posterior group, chains pooled in (chain, draw) order.

    R is (D,), or with ``log_h`` (n,) or (D, n) (`posterior_log_h`), the variance index of a
    volatility-scaled model on some rows, R_t = sigma_eps^2 h_t^gamma (D, n) on those rows.
    """
    post = tree["posterior"]
    R = post["sigma_eps"].values.reshape(-1) ** 2
    if log_h is not None:
        R = scaled_noise(R, post["gamma"].values.reshape(-1), log_h)
    if q == "diag":
        s2 = post["sigma_beta"].values ** 2
        s2 = s2.reshape(-1, s2.shape[-1])
        Q = np.einsum("dk,kj->dkj", s2, np.eye(s2.shape[1]))
    else:
        Qv = post["Q"].values
        Q = Qv.reshape(-1, *Qv.shape[-2:])
    return np.ascontiguousarray(Q), np.ascontiguousarray(R)


def posterior_system(tree: xr.DataTree, spec: BayesSpec,
                     qr: tuple[np.ndarray, np.ndarray] | None = None) -> SystemDraws:  # fmt: skip
    """Return the posterior's draws of the filter's arrays (`SystemDraws`), chains pooled.

    qr : the draws of (Q, R) (`posterior_qr`; default: on the spec's rows). For mean-reverting
    betas T(phi) and [[Q, 0], [0, 0]] per draw in the state [beta; mu]
    (`tvbeta.model.reversion`); else the spec's T.
    """
    Q, R = posterior_qr(tree, spec.q, posterior_log_h(tree, spec)) if qr is None else qr
    if spec.betas == "random_walk":
        return SystemDraws(spec.T[None], Q, R)
    phi = tree["posterior"]["phi"].values.reshape(-1, spec.k)
    return SystemDraws(reversion.transition(phi), reversion.augmented_q(Q), R)


def log_likelihood(tree: xr.DataTree, spec: BayesSpec) -> xr.Dataset:
    """Return the pointwise log-likelihood group, laid out as ``pm.compute_log_likelihood``'s.

    ``y`` (chain, draw, time), log p(y_t | y_{<t}, Q, R) of every posterior draw and observed
    step (`BayesSpec.steps`), from one kernel call over the draws (`BayesSpec.loglik_terms`).
    """
    ll = spec.loglik_terms(posterior_system(tree, spec))[:, spec.steps]
    post = tree["posterior"]
    shape = (post.sizes["chain"], post.sizes["draw"], ll.shape[1])
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, TIME: spec.observed_time}
    return xr.Dataset({OBSERVED: (("chain", "draw", TIME), ll.reshape(shape))}, coords=coords)


def fit_bayes(
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Sequence[Hashable] | str,
    *,
    draws: int = SamplerSettings.draws,
    tune: int = SamplerSettings.tune,
    chains: int = SamplerSettings.chains,
    cores: int | None = SamplerSettings.cores,
    target_accept: float = SamplerSettings.target_accept,
    seed: int,
    sampler: Sampler = SamplerSettings.sampler,
    n_paths: int = SamplerSettings.n_paths,
    settings: SamplerSettings | None = None,
    prior_predictive: bool = False,
    posterior_predictive: bool = False,
    progressbar: bool = False,
    check: bool = True,
    **model: Unpack[ModelOptions],
) -> BayesFit:
    """Posterior of Q and R (beta marginalised by the Kalman filter) by NUTS.

    Parameters
    ----------
    df, target_col, factor_cols, **model
        The data and the model (intercept, q, priors, burn, frequency, noise, shrinkage,
        betas), as in `bayes_spec`.
    draws, tune, chains, cores, target_accept, sampler, n_paths
        The NUTS settings, see `SamplerSettings` (target_accept default
        `tvbeta.constants.TARGET_ACCEPT`, 0.8; a horseshoe runs at no less than
        `HORSESHOE_TARGET_ACCEPT`, 0.9); or all of them at once as ``settings``.
    seed : int
        Seeds the sampler, the predictive draws and the choice of beta paths.
    settings : SamplerSettings, optional
        The NUTS settings as one object, instead of the keywords above.
    prior_predictive, posterior_predictive : bool
        Add the prior / prior_predictive and posterior_predictive groups.
    progressbar : bool
    check : bool
        Run `diagnostics.check_convergence`, which warns on R-hat > 1.01, ESS < 400, any
        divergence or a low BFMI.

    Returns
    -------
    BayesFit

    Raises
    ------
    ValueError, TypeError
        A bad argument (q, a sampler setting, the seed, priors; a setting given both in
        ``settings`` and as a keyword), before anything is built or compiled.
    DataValidationError
        Unusable data (see `tvbeta.data.prepare_design`).
    """
    settings = SamplerSettings.of(settings, draws=draws, tune=tune, chains=chains, cores=cores,
                                  target_accept=target_accept, sampler=sampler, n_paths=n_paths)
    spec = bayes_spec(df, target_col, factor_cols, **model)
    return fit_spec(spec, settings, seed=seed, prior_predictive=prior_predictive,
                    posterior_predictive=posterior_predictive, progressbar=progressbar,
                    check=check)  # fmt: skip


def fit_spec(
    spec: BayesSpec,
    settings: SamplerSettings = SamplerSettings(),
    *,
    seed: int,
    prior_predictive: bool = False,
    posterior_predictive: bool = False,
    progressbar: bool = False,
    check: bool = True,
) -> BayesFit:
    """`fit_bayes` on a ready `BayesSpec` (e.g. from `BayesSpec.from_arrays`).

    A horseshoe (``spec.shrinkage``) runs at target_accept at least `HORSESHOE_TARGET_ACCEPT`
    (0.9); ``settings`` of the returned fit record the value used.
    """
    check_seed(seed)
    run = settings.resolved()
    if spec.shrinkage == "horseshoe" and run.target_accept < HORSESHOE_TARGET_ACCEPT:
        run = replace(run, target_accept=HORSESHOE_TARGET_ACCEPT)  # divergences at 0.8
    seeds = np.random.SeedSequence(seed).generate_state(4)
    model = model_from_spec(spec)
    t0 = time.perf_counter()
    nuts = sample_nuts(model, run, seed=int(seeds[0]), progressbar=progressbar,
                       adaptation=adaptation_for(spec.betas))  # fmt: skip
    tree = nuts.tree
    tree["log_likelihood"] = xr.DataTree(log_likelihood(tree, spec))
    if prior_predictive:
        prior = sample_prior_predictive(model, run.draws, seed=int(seeds[1]))
        tree["prior"] = prior["prior"].copy()
        tree["prior_predictive"] = prior["prior_predictive"].copy()
    if posterior_predictive:
        tree["posterior_predictive"] = posterior_predictive_group(tree, model, int(seeds[2]))
    t_total = time.perf_counter() - t0
    beta = (
        beta_path_summary(spec, posterior_system(tree, spec), n_paths=run.n_paths,
                          seed=int(seeds[3]))
        if run.n_paths > 0 else xr.Dataset()
    )  # fmt: skip
    settings = run_record(run, nuts, seed, burn=spec.burn, frequency=spec.ppy,
                          wall_time_total=t_total)  # fmt: skip
    _LOG.info(settings_line(settings))
    fit = BayesFit(tree=tree, beta=beta, spec=spec, settings=settings)
    if check:
        check_convergence(fit)
    return fit


def run_record(
    run: SamplerSettings, nuts: NUTSRun, seed: int, *, burn: int, frequency: float,
    wall_time_total: float,
) -> dict[str, Any]:  # fmt: skip
    """Return a fit's ``settings``: what ran (``nuts``: its sampler and adaptation), seed, times.

    burn: rows of the likelihood's burn-in; frequency: periods per year; the times in seconds
    (``wall_time_sample``: `sample_nuts`' call; ``sampling_time``: the sampler's own, from the
    posterior's attrs, NaN when absent).
    """
    return {
        "burn": burn, "frequency": frequency, **asdict(replace(run, sampler=nuts.sampler)),
        "seed": seed, "adaptation": nuts.adaptation,
        "wall_time_sample": nuts.seconds, "wall_time_total": wall_time_total,
        "sampling_time": float(nuts.tree["posterior"].attrs.get("sampling_time", np.nan)),
    }  # fmt: skip


def settings_line(settings: dict[str, Any]) -> str:
    """Return one line saying what a fit ran, from `BayesFit.settings` (logged by `fit_spec`)."""
    s = settings
    return (
        f"NUTS ({s['sampler']}, {s['adaptation']} mass matrix): {s['chains']} chains x "
        f"({s['tune']} tune + {s['draws']} draws), target_accept {s['target_accept']}, "
        f"seed {s['seed']}, burn {s['burn']}, {s['wall_time_total']:.1f} s"
    )


def _design_dataset(spec: BayesSpec) -> xr.Dataset:
    names = list(spec.state_names)
    return xr.Dataset(
        {
            "y": ((TIME_ALL,), spec.y),
            "Z": ((TIME_ALL, STATE), spec.Z),
            "T": ((STATE, STATE2), spec.T),
            "a0": ((STATE,), spec.a0),
            "P0": ((STATE, STATE2), spec.P0),
        },
        coords={TIME_ALL: spec.index.rename(TIME_ALL), STATE: names, STATE2: names},
    )


def _settings_dict(fit: BayesFit) -> dict[str, Any]:
    s = fit.spec
    spec = {
        "format_version": FORMAT_VERSION,
        "target_col": s.target_col,
        "factor_cols": None if s.factor_cols is None else list(s.factor_cols),
        "index_name": s.index.name,
        "index_freq": getattr(getattr(s.index, "freq", None), "freqstr", None),
        "state_names": list(s.state_names),
        "intercept": s.intercept,
        "burn": s.burn,
        "ppy": s.ppy,
        "q": s.q,
        "priors": s.priors.to_dict(),
        "resolved": {
            "sigma_eps": s.resolved.sigma_eps.to_dict(),
            "sigma_beta": s.resolved.sigma_beta.to_dict(),
            "lkj_eta": s.resolved.lkj_eta,
        },
    }
    if s.noise_index is not None:  # absent for a constant R: older files read the same
        spec["noise_index"] = asdict(s.noise_index)
    if s.shrinkage != "none":  # absent without shrinkage, as noise_index
        spec["shrinkage"] = s.shrinkage
    if s.betas != "random_walk":
        spec["betas"] = s.betas
    return {"spec": spec, "settings": fit.settings}


def _spec_from_saved(design: xr.Dataset, meta: dict[str, Any]) -> BayesSpec:
    index = design.indexes[TIME_ALL].rename(meta["index_name"])
    if isinstance(index, pd.DatetimeIndex) and meta.get("index_freq"):
        index.freq = meta["index_freq"]
    resolved = meta["resolved"]
    factors = meta["factor_cols"]
    return BayesSpec(
        index=index,
        y=np.ascontiguousarray(design["y"].values),
        Z=np.ascontiguousarray(design["Z"].values),
        state_names=tuple(meta["state_names"]),
        burn=int(meta["burn"]),
        ppy=float(meta["ppy"]),
        model=StateSpaceModel(
            len(meta["state_names"]), bool(meta["intercept"]),
            TimeVarying.constant(design["T"].values), design["a0"].values, design["P0"].values,
            q=meta["q"], init_mode="prior",
        ),
        priors=Priors.from_dict(meta["priors"]),
        resolved=ResolvedPriors(Prior.from_dict(resolved["sigma_eps"]),
                                Prior.from_dict(resolved["sigma_beta"]),
                                float(resolved["lkj_eta"])),
        target_col=meta["target_col"],
        factor_cols=None if factors is None else tuple(factors),
        noise_index=VolatilityIndex(**meta["noise_index"]) if "noise_index" in meta else None,
        shrinkage=meta.get("shrinkage", "none"),
        betas=meta.get("betas", "random_walk"),
    )
