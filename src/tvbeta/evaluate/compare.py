"""Does Bayesian estimation of Q and R beat the grid search? Out-of-sample method comparison.

For each series the hyperparameters are estimated on a training span (the first rows); the
filter then runs on through the test span with them fixed, so every scored step t is a genuine
one-step-ahead forecast from y_{<t}. Methods:

- ``grid_seed``: the seed's grid (18 combinations), best by in-sample Mean RMSE (seed ranking);
- ``grid_loglik``: the same grid, best by in-sample log-likelihood;
- ``mle``: joint maximum likelihood of Q and R (`fit_mle`) on the Bayes model's likelihood: the
  same Q form, initial state (`BayesSpec.kalman_spec`) and burn;
- ``bayes``: NUTS posterior of Q and R; the predictive is the posterior mixture over draws;
- ``rolling_ols``: OLS on the last w observations (default three years of them), Student t
  predictive (the classic baseline).

Each is scored on the test span by the mean log predictive density (higher is better), the
RMSE of the predictive mean and the 90% interval coverage. Across series: wins, and the mean
difference in log score against a reference method with its standard error.

Missing targets (NaN): the split is in rows (the test span is a span of dates), but only
observed returns count. Every method fits on the observed training returns (the filter
predicts through a missing row; a rolling OLS window holds the last w observed rows) and
scores the observed test returns only; ``n test`` in the tables is the number scored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tvbeta.constants import TARGET_ACCEPT, default_burn
from tvbeta.data.validate import column_list, format_span, prepare_design, repeated
from tvbeta.evaluate.forecast import (
    OneStepForecast,
    gaussian_forecast,
    kalman_predictive,
    mixture_forecast,
    rolling_ols_forecast,
    scores,
)
from tvbeta.kalman import state_space
from tvbeta.model.io import unreadable
from tvbeta.outputs import atomic_path, read_manifest, run_folder, write_text

if TYPE_CHECKING:
    from tvbeta.evaluate.lfo import LFOResult

METHODS = ("grid_seed", "grid_loglik", "mle", "bayes", "rolling_ols")
REFERENCE = "bayes"
LFO_STEP = "lfo"
"""The step after the methods: leave-future-out cross-validation of the Bayes fit."""

Progress = Callable[[str, str | None], None]
"""``progress(target, step)`` of `compare_methods`: called before each step of a series (a
method of `METHODS`, then `LFO_STEP`) and with ``step=None`` when the series is done."""


@dataclass(frozen=True)
class BayesSettings:
    """NUTS settings for the ``bayes`` method (see `tvbeta.estimate.bayes.fit_bayes`).

    ``q``, ``priors`` and ``frequency`` (periods per year, or a name such as "weekly"; None: read
    from the dates) define the model that ``mle`` maximises too. Checked by `compare_methods`
    before anything is fitted.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    target_accept: float = TARGET_ACCEPT
    q: str = "diag"
    priors: dict[str, Any] | None = None
    sampler: str = "auto"
    n_paths: int = 200
    n_predictive: int = 400  # posterior draws in the predictive mixture
    lfo_threshold: float | None = 0.7  # PSIS-LFO-CV refit threshold (`evaluate.lfo`); None: no LFO
    frequency: str | float | None = None

    def check(self, methods: Sequence[str]) -> None:
        """Refuse settings the given methods cannot run with, naming the setting.

        The model's q, priors and frequency for mle and bayes; the NUTS settings for bayes.

        Raises
        ------
        ValueError, TypeError
        """
        if not {"mle", "bayes"} & set(methods):
            return
        from tvbeta.estimate.mle import check_q_form

        check_q_form(self.q)
        from tvbeta.estimate.bayes.priors import Priors, periods_per_year
        from tvbeta.estimate.bayes.sampler import check_settings

        if self.priors is not None:
            Priors.from_dict(self.priors)
        if self.frequency is not None:
            periods_per_year(None, self.frequency)
        if "bayes" not in methods:
            return
        check_settings(draws=self.draws, tune=self.tune, chains=self.chains, cores=self.cores,
                       target_accept=self.target_accept, seed=None, sampler=self.sampler,
                       n_paths=self.n_paths)  # fmt: skip
        if isinstance(self.n_predictive, bool) or not isinstance(self.n_predictive, int) \
                or self.n_predictive < 1:  # fmt: skip
            raise ValueError(f"n_predictive must be an integer >= 1 (posterior draws in the "
                             f"predictive mixture, e.g. 400), got {self.n_predictive!r}")
        if self.lfo_threshold is not None:
            from tvbeta.evaluate.lfo import check_threshold

            check_threshold(self.lfo_threshold, "lfo_threshold")


@dataclass(frozen=True)
class GridSettings:
    """The seed's default grid (intercept yes/no x Q setters x R setters x OLS init)."""

    try_both_intercepts: bool = True


@dataclass(frozen=True)
class Split:
    """The split of the rows into training and test rows.

    The first n_train rows fit the hyperparameters; rows n_train.. with an observed target
    are scored.
    """

    n: int
    n_train: int

    @classmethod
    def from_test_size(cls, n: int, test_size: int | float) -> Split:
        """Return the split of ``n`` rows that holds out ``test_size`` rows at the end.

        Parameters
        ----------
        n : int
            Number of rows.
        test_size : int or float
            Number of test rows, or a fraction of ``n`` (a float; rounds up).

        Raises
        ------
        ValueError
            The split leaves no training or no test rows.
        """
        n_test = math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)
        if not 0 < n_test < n:
            raise ValueError(f"test_size={test_size!r} leaves no training or no test rows (n={n})")
        return cls(n, n - n_test)


@dataclass
class SeriesResult:
    """One series: scores per method, the forecasts, the fitted objects and fit times."""

    target: str
    table: pd.DataFrame
    forecasts: dict[str, OneStepForecast]
    fits: dict[str, Any] = field(default_factory=dict)
    lfo: LFOResult | None = None
    """PSIS-LFO-CV of the Bayes fit over the test rows: its posterior updated through the test
    span instead of fixed at the training rows (None without Bayes or LFO)."""
    rolling_window: int | None = None
    """Observations in the rolling OLS window used (None without ``rolling_ols``)."""

    def __repr__(self) -> str:
        """Show the target, the methods, the best by log score and whether LFO ran."""
        best = self.table["log score"].idxmax() if "log score" in self.table else None
        return (f"SeriesResult(target={self.target!r}, methods={list(self.table.index)}, "
                f"best log score: {best}, LFO: {'yes' if self.lfo is not None else 'no'})")


def _fit_grid(train, target, factors, intercept, burn, rank_by, settings: GridSettings):
    from tvbeta.estimate.grid import best_spec, run_kalman_grid_search
    from tvbeta.model import KalmanSpec
    from tvbeta.model.setters import ScalarMLEWarning

    # the base spec's intercept decides when only one intercept setting is tried
    base = KalmanSpec(K=len(factors))
    base = base.set_intercept() if intercept else base
    with warnings.catch_warnings():  # q at the seed's bound is one candidate; the rank decides
        warnings.simplefilter("ignore", ScalarMLEWarning)
        grid = run_kalman_grid_search(
            train, target, factors, base, burn=burn,
            try_both_intercepts=settings.try_both_intercepts, rank_by=rank_by,
        )  # fmt: skip
    return best_spec(grid)


def _kalman_spec_forecast(spec, data, target, factors, split: Split) -> OneStepForecast:
    from tvbeta.estimate.grid import extend_spec

    design = prepare_design(data, target, factors, intercept=spec.intercept)
    full = extend_spec(spec, split.n)  # per-time Q/R from the training rows carried forward
    mean, var = kalman_predictive(full.state_space(design.y, design.Z))
    return _test_gaussian(design.y, mean, var, split)


def _test_gaussian(y, mean, var, split: Split) -> OneStepForecast:
    s = _scored(y, split)
    return gaussian_forecast(y[s], mean[s], var[s])


def _scored(y: np.ndarray, split: Split) -> np.ndarray:
    steps = np.arange(split.n_train, split.n)
    return steps[~np.isnan(y[steps])]


def _bayes_forecast(fit, data, target, factors, split: Split, n_draws: int, seed: int):
    design = prepare_design(data, target, factors, intercept=fit.spec.intercept)
    Q, R = fit.qr_draws()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(R), size=min(n_draws, len(R)), replace=False)
    T = fit.spec.T[None]
    s = _scored(design.y, split)
    means, vars_ = [], []
    for d in pick:
        m = state_space(design.y, design.Z, T, Q[d][None], [R[d]], fit.spec.a0, fit.spec.P0)
        mean, var = kalman_predictive(m)
        means.append(mean[s])
        vars_.append(var[s])
    return mixture_forecast(design.y[s], np.array(means), np.array(vars_))


def _rolling_window(y: np.ndarray, index: pd.Index, split: Split, window: int | None,
                    frequency: str | float | None = None) -> int:
    """Return the rolling OLS window used.

    ``window``, else three years of observations (`_default_window`), at most as many as the
    training rows hold.
    """
    if window is not None:
        return int(window)
    n_observed = int(np.sum(~np.isnan(y[: split.n_train])))
    return min(_default_window(index, frequency), n_observed)


def _default_window(index: pd.Index, frequency: str | float | None = None) -> int:
    """Return the default number of observations in a rolling OLS window.

    Three years of periods (periods per year as given, or as the priors infer them from the
    dates), else 36.
    """
    from tvbeta.estimate.bayes.priors import periods_per_year

    try:
        return max(12, round(3 * periods_per_year(index, frequency)))
    except ValueError:  # not a DatetimeIndex: no calendar to count years in
        return 36


def compare_series(
    data: pd.DataFrame,
    target: str,
    factors: Sequence[str],
    *,
    intercept: bool = True,
    test_size: int | float = 0.3,
    burn: int | None = None,
    methods: Sequence[str] = METHODS,
    bayes: BayesSettings = BayesSettings(),
    grid: GridSettings = GridSettings(),
    rolling_window: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> SeriesResult:
    """Fit every method on the training rows of one series and score the test rows.

    data : rows are time steps (sorted), decimal returns; not modified; a missing target (NaN)
    is neither fitted nor scored (module docstring). burn : observed steps at the start of the
    training span dropped from the likelihoods (default: the number of states).
    rolling_window : the number of observations in a rolling OLS window (default three years
    of periods, at most the observed training returns). factors : a list of columns, or one
    name. Arguments are checked as in `compare_methods`. progress : called with the name of
    each step (method, then `LFO_STEP`) before it runs.
    """
    factors = column_list(factors, "factors")
    check_methods(methods)
    bayes.check(methods)
    split = Split.from_test_size(len(data), test_size)
    train = data.iloc[: split.n_train]
    k = len(factors) + int(intercept)
    burn = default_burn(k) if burn is None else int(burn)
    runners: dict[str, Callable[[], tuple[Any, OneStepForecast]]] = {}
    if "grid_seed" in methods or "grid_loglik" in methods:
        for name, rank in (("grid_seed", "mean_rmse"), ("grid_loglik", "loglik")):
            if name in methods:
                runners[name] = lambda rank=rank: _spec_run(
                    _fit_grid(train, target, factors, intercept, burn, rank, grid), data,
                    target, factors,
                    split)
    if "mle" in methods:
        runners["mle"] = lambda: _mle_run(train, data, target, factors, intercept, burn, split,
                                          bayes)
    if "bayes" in methods:
        runners["bayes"] = lambda: _bayes_run(train, data, target, factors, intercept, burn,
                                              split, bayes, seed)
    window = None
    if "rolling_ols" in methods:
        design = prepare_design(data, target, factors, intercept=intercept)
        window = _rolling_window(design.y, data.index, split, rolling_window or None,
                                 bayes.frequency)  # fmt: skip
        runners["rolling_ols"] = lambda: (
            None, rolling_ols_forecast(design.y, design.Z, _scored(design.y, split), window))
    rows, forecasts, fits = {}, {}, {}
    step = progress or (lambda name: None)
    for name in [m for m in METHODS if m in runners]:
        step(name)
        t0 = time.perf_counter()
        fits[name], forecasts[name] = runners[name]()
        rows[name] = {**scores(forecasts[name]), "fit time (s)": time.perf_counter() - t0}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "method"
    _add_differences(table, forecasts)
    lfo = None
    if "bayes" in fits and bayes.lfo_threshold is not None:
        from tvbeta.evaluate.lfo import lfo_cv

        step(LFO_STEP)
        lfo = lfo_cv(fits["bayes"], data, n_train=split.n_train, threshold=bayes.lfo_threshold)
    return SeriesResult(target, table, forecasts, fits, lfo, window)


def _spec_run(spec, data, target, factors, split):
    return spec, _kalman_spec_forecast(spec, data, target, factors, split)


def _mle_run(train, data, target, factors, intercept, burn, split, settings: BayesSettings):
    from tvbeta.estimate.bayes.model import bayes_spec
    from tvbeta.estimate.mle import MLEConvergenceWarning, fit_mle

    # The Bayes model's Q form, initial state and burn: MLE and posterior share one likelihood,
    # so their difference is integrating over (Q, R) rather than plugging in its maximum.
    model = bayes_spec(train, target, factors, intercept=intercept, q=settings.q,
                       priors=settings.priors, burn=burn, frequency=settings.frequency)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # a variance at 0 is an answer
        fit = fit_mle(train, target, factors, intercept=intercept, q=settings.q, burn=burn,
                      spec=model.kalman_spec(), name=f"MLE ({settings.q} Q)")  # fmt: skip
    return fit.spec, _kalman_spec_forecast(fit.spec, data, target, factors, split)


def _bayes_run(train, data, target, factors, intercept, burn, split, settings, seed):
    from tvbeta.estimate.bayes.fit import fit_bayes

    fit = fit_bayes(
        train, target, factors, intercept=intercept, q=settings.q, priors=settings.priors,
        burn=burn, draws=settings.draws, tune=settings.tune, chains=settings.chains,
        cores=settings.cores, target_accept=settings.target_accept, seed=seed,
        sampler=settings.sampler, n_paths=settings.n_paths, frequency=settings.frequency,
    )  # fmt: skip
    return fit, _bayes_forecast(fit, data, target, factors, split, settings.n_predictive, seed)


def check_methods(methods: Sequence[str]) -> None:
    """One or more names from `METHODS`, each once (a list, not one name).

    Raises
    ------
    ValueError, TypeError
    """
    if isinstance(methods, str):
        raise TypeError(f"methods must be a list of method names, e.g. [{methods!r}], "
                        f"got the string {methods!r}")  # fmt: skip
    methods = list(methods)
    if not methods:
        raise ValueError(f"methods is empty: choose one or more of {list(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    twice = repeated(methods)
    if twice:
        raise ValueError(f"methods lists {twice} more than once: list each method once")


def _add_differences(table: pd.DataFrame, forecasts: dict[str, OneStepForecast]) -> None:
    """Log-score difference to the reference method, with the paired standard error."""
    ref = REFERENCE if REFERENCE in forecasts else next(iter(forecasts))
    base = forecasts[ref].log_density
    diffs = {name: fc.log_density - base for name, fc in forecasts.items()}
    table[f"diff vs {ref}"] = [d.mean() for d in diffs.values()]
    table["diff se"] = [d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else np.nan
                        for d in diffs.values()]


@dataclass
class Comparison:
    """Per-series score tables, forecasts and fits, the summary across series, and the data.

    data : the rows and columns compared (targets and factors), so that a saved comparison
    can be re-plotted and re-reported without the original source; settings : the arguments
    of `compare_methods` (JSON-friendly), including "n_train".
    """

    series: dict[str, SeriesResult]
    settings: dict[str, Any]
    data: pd.DataFrame

    def __repr__(self) -> str:
        """Show targets, factors, methods, rows, split, burn and rolling window."""
        st = self.settings
        return (
            f"Comparison(targets={list(self.series)}, factors={st.get('factors')}, "
            f"methods={st.get('methods')},\n  {len(self.data)} rows "
            f"{format_span(self.data.index)}, the first n_train={st.get('n_train')} fit, "
            f"burn={st.get('burn')}, rolling_window={st.get('rolling_window')}; "
            "see .summary and .tables)"
        )

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Per series (target name): its table of scores, one row per method."""
        return {name: s.table for name, s in self.series.items()}

    @property
    def summary(self) -> pd.DataFrame:
        """Per method: wins, mean log score and the mean difference to the reference method.

        Wins: series where the method has the best mean log score. The mean over series of
        the difference to the reference method with its standard error across series; n test:
        the test steps scored in all series together (observed returns only).
        """
        scores_ = pd.DataFrame({name: t["log score"] for name, t in self.tables.items()})
        wins = scores_.idxmax(axis=0).value_counts().reindex(scores_.index, fill_value=0)
        ref = REFERENCE if REFERENCE in scores_.index else scores_.index[0]
        diffs = scores_ - scores_.loc[ref]
        n = scores_.shape[1]
        out = pd.DataFrame({
            "wins": wins.astype(int),
            "mean log score": scores_.mean(axis=1),
            f"mean diff vs {ref}": diffs.mean(axis=1),
            "se": diffs.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.nan,
            "mean RMSE": pd.DataFrame({k: t["RMSE"] for k, t in self.tables.items()}).mean(axis=1),
            "mean coverage 90%": pd.DataFrame(
                {k: t["coverage 90%"] for k, t in self.tables.items()}).mean(axis=1),
            "n test": pd.DataFrame({k: t["n test"] for k, t in self.tables.items()}).sum(axis=1),
        })
        out.index.name = "method"
        return out

    @property
    def lfo_table(self) -> pd.DataFrame:
        """Per series with an LFO result: the Bayes test log score, fixed and updated posterior.

        The Bayes test log score with the posterior fixed at the training rows, the PSIS-LFO elpd
        per period with the posterior updated through the test rows (both nats per period, same
        rows), their mean paired difference and its standard error, refits, the largest Pareto k and
        the test steps scored. Empty without LFO results.
        """
        rows = {}
        for name, s in self.series.items():
            if s.lfo is None:
                continue
            diff = s.lfo.elpd_i.to_numpy() - s.forecasts[REFERENCE].log_density
            rows[name] = {
                "bayes log score": s.table.loc[REFERENCE, "log score"],
                "LFO elpd per period": s.lfo.elpd / len(s.lfo.rows),
                "LFO - bayes": diff.mean(),
                "se": diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else np.nan,
                "refits": s.lfo.n_refits,
                "max pareto k": s.lfo.summary()["max pareto_k"],
                "n test": len(s.lfo.rows),
            }
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "series"
        return out

    def to_markdown(self, digits: int = 4) -> str:
        """Return the summary, the leave-future-out table (if any) and every per-series table."""
        parts = ["## Summary across series", self.summary.round(digits).to_markdown()]
        if not self.lfo_table.empty:
            parts += ["## Bayes: posterior fixed at training vs updated (PSIS-LFO-CV)",
                      self.lfo_table.round(digits).to_markdown()]  # fmt: skip
        for name, table in self.tables.items():
            parts += [f"## {name}", table.round(digits).to_markdown()]
        return "\n\n".join(parts) + "\n"

    def save(self, folder: str | Path) -> Path:
        """Save tables and forecasts as JSON (exact float round trip), fits beside them.

        All are written at the end with a manifest (`tvbeta.outputs.run_folder`): an interrupted or
        failed save leaves ``folder`` as it was.
        """
        with run_folder(folder, info={"comparison": self.settings}) as stage:
            self.write_files(stage)
        return Path(folder)

    def write_files(self, folder: str | Path) -> None:
        """Write the files of `save` into ``folder`` as they are, without a manifest.

        For a caller that adds files to the same `run_folder` (the command line's model copy and
        report).
        """
        folder = Path(folder)
        (folder / "fits").mkdir(parents=True, exist_ok=True)
        doc = {"settings": self.settings, "series": {}}
        for name, s in self.series.items():
            doc["series"][name] = {
                "table": s.table.to_dict(orient="split"),  # json writes floats by repr: exact
                "forecasts": {m: {f: getattr(fc, f).tolist() for f in OneStepForecast._fields}
                              for m, fc in s.forecasts.items()},
                "lfo": None if s.lfo is None else s.lfo.to_dict(),
            }
            for method, fit in s.fits.items():
                if fit is not None:
                    fit.save(folder / "fits" / f"{_slug(name)}.{method}.{_ext(fit)}")
        write_text(folder / "comparison.json", json.dumps(doc, indent=1))
        with atomic_path(folder / "data.csv") as tmp:
            self.data.to_csv(tmp)  # floats by repr: an exact round trip

    @classmethod
    def load(cls, folder: str | Path) -> Comparison:
        """Read a folder written by `save` (fits stay on disk; see `load_fit`).

        Raises
        ------
        IncompleteRunError
            The folder is not a complete run (`tvbeta.outputs`): its manifest is absent (the run
            was interrupted or failed) or a file of the comparison it lists is missing or
            changed; the message names the folder and what is wrong.
        FileNotFoundError
            No comparison.json or data.csv in the folder.
        SavedFileError
            comparison.json or data.csv is truncated, corrupt or not tvbeta's (the message
            names the file).
        """
        read_manifest(folder, needed=_SAVED)
        path, csv = Path(folder) / "comparison.json", Path(folder) / "data.csv"
        what = "tvbeta comparison (comparison.json written by Comparison.save)"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise unreadable(path, what, f"not UTF-8 text: {err.reason}") from err
        except json.JSONDecodeError as err:
            raise unreadable(path, what, f"not valid JSON: {err}") from err
        if not isinstance(doc, dict) or not {"settings", "series"} <= set(doc):
            raise unreadable(path, what, "it has no 'settings' and 'series'")
        try:
            data = pd.read_csv(csv, index_col=0, parse_dates=[0])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise unreadable(csv, "tvbeta comparison's data (data.csv)", str(err)) from err
        try:
            series = {name: _series_from_saved(name, s, data.index)
                      for name, s in doc["series"].items()}  # fmt: skip
        except KeyError as err:
            raise unreadable(path, what, f"a series has no {err.args[0]!r}") from err
        except (AttributeError, TypeError, ValueError) as err:
            raise unreadable(path, what, f"its contents do not fit: {err}") from err
        return cls(series, doc["settings"], data)

    @staticmethod
    def load_fit(folder: str | Path, series: str, method: str) -> Any:
        """Load a fit saved by `save`: a KalmanSpec (grid, MLE) or a BayesFit (bayes)."""
        stem = Path(folder) / "fits" / f"{_slug(series)}.{method}"
        if Path(f"{stem}.nc").exists():
            from tvbeta.estimate.bayes.fit import BayesFit

            return BayesFit.load(f"{stem}.nc")
        from tvbeta.model import KalmanSpec

        return KalmanSpec.load(f"{stem}.toml")


def _series_from_saved(name: str, s: dict[str, Any], index: pd.Index) -> SeriesResult:
    """One series of a saved comparison.json (tables, forecasts, LFO)."""
    t = s["table"]
    table = pd.DataFrame(t["data"], index=pd.Index(t["index"], name="method"),
                         columns=t["columns"])  # fmt: skip
    forecasts = {m: OneStepForecast(**{f: np.asarray(v) for f, v in fc.items()})
                 for m, fc in s["forecasts"].items()}  # fmt: skip
    lfo = s.get("lfo")
    if lfo is not None:
        from tvbeta.evaluate.lfo import LFOResult

        lfo = LFOResult.from_dict(lfo, index)
    return SeriesResult(name, table, forecasts, lfo=lfo)


_SAVED = ("comparison.json", "data.csv", "fits")
"""What `Comparison.save` writes and `load` reads (a report or model copy beside them may be
rewritten without making the comparison unreadable)."""


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _ext(fit: Any) -> str:
    return "nc" if type(fit).__name__ == "BayesFit" else "toml"


def compare_methods(
    data: pd.DataFrame,
    targets: Sequence[str],
    factors: Sequence[str],
    *,
    intercept: bool = True,
    test_size: int | float = 0.3,
    burn: int | None = None,
    methods: Sequence[str] = METHODS,
    bayes: BayesSettings = BayesSettings(),
    grid: GridSettings = GridSettings(),
    rolling_window: int | None = None,
    seed: int = 0,
    progress: bool | Progress = True,
) -> Comparison:
    """Run `compare_series` for each target (same factors, split and settings).

    The methods and scores are described in the module docstring. Series run one after
    another: the Bayesian fits already use every core for their chains.

    Parameters
    ----------
    data : pd.DataFrame, (n, n_columns)
        Rows are time steps (sorted), decimal returns; not modified. A missing target (NaN)
        is neither fitted nor scored.
    targets, factors : sequence of str, or str
        Lists of columns (one name alone is one column).
    intercept : bool, default True
        Whether the models and the rolling OLS have an intercept (the grid may try both:
        `GridSettings`).
    test_size : int or float, default 0.3
        Test rows at the end: a number of rows, or a fraction of the rows (rounds up).
    burn : int, optional
        Observed steps at the start of the training span dropped from the likelihoods;
        default the number of states (`tvbeta.constants.default_burn`).
    methods : sequence of str, default `METHODS`
        The methods to run, each once.
    bayes : BayesSettings
        The Bayes model and NUTS settings (also the model ``mle`` maximises).
    grid : GridSettings
        The seed's grid.
    rolling_window : int, optional
        The number of observations in a rolling OLS window (default three years of periods,
        at most the observed training returns).
    seed : int, default 0
        Seed of the Bayesian fits and of their predictive draws.
    progress : bool or `Progress`, default True
        True: a tqdm bar over the series; False: none; a `Progress` callable: called before
        each step of each series and when a series is done (the command line's lines).

    Returns
    -------
    Comparison
        The per-series results, the data and the settings (see ``.summary`` and ``.tables``).

    Raises
    ------
    ValueError, TypeError
        Before anything is fitted: no or repeated targets, methods that are empty, unknown or
        repeated, a test_size leaving no rows, or settings the methods cannot run with
        (`BayesSettings.check`).
    DataValidationError
        Before anything is fitted: the data of some target are unusable
        (`tvbeta.data.prepare_design`).
    """
    from tqdm import tqdm  # text bars: tqdm.auto warns in notebooks without ipywidgets

    targets = column_list(targets, "targets")
    factors = column_list(factors, "factors")
    if not targets:
        raise ValueError("targets is empty: name one or more target columns")
    twice = repeated(targets)
    if twice:
        raise ValueError(f"targets lists {twice} more than once: list each target once")
    check_methods(methods)
    bayes.check(methods)
    Split.from_test_size(len(data), test_size)
    k = len(factors) + int(intercept)
    for target in targets:  # every series' data, before hours of fitting the first ones
        prepare_design(data, target, factors, intercept=intercept,
                       burn=default_burn(k) if burn is None else burn)  # fmt: skip
    report = progress if callable(progress) else None
    results = {}
    bar = tqdm(list(targets), desc="series", disable=report is not None or not progress)
    for i, target in enumerate(bar):
        results[target] = compare_series(
            data, target, factors, intercept=intercept, test_size=test_size, burn=burn,
            methods=methods, bayes=bayes, grid=grid, rolling_window=rolling_window, seed=seed + i,
            progress=None if report is None else partial(report, target),
        )  # fmt: skip
        if report is not None:
            report(target, None)
    settings = dict(
        targets=list(targets), factors=list(factors), intercept=intercept, test_size=test_size,
        n_train=Split.from_test_size(len(data), test_size).n_train,
        burn=default_burn(k) if burn is None else int(burn), methods=list(methods),
        bayes=dataclasses.asdict(bayes), grid=dataclasses.asdict(grid),
        rolling_window=_windows_used(results), seed=seed,
    )  # fmt: skip
    return Comparison(results, settings, data[[*dict.fromkeys([*targets, *factors])]].copy())


def _windows_used(results: dict[str, SeriesResult]) -> int | dict[str, int] | None:
    """Return the rolling OLS window of the settings.

    One number when every series used the same, else one per series (the default is capped by each
    series' observed training returns).
    """
    used = {t: r.rolling_window for t, r in results.items() if r.rolling_window is not None}
    if not used:
        return None
    return next(iter(used.values())) if len(set(used.values())) == 1 else used
