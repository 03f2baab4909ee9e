"""Does Bayesian estimation of Q and R beat the grid search? Out-of-sample method comparison.

For each series the hyperparameters are estimated on a training span (the first rows); the
filter then runs on through the test span with them fixed, so every scored step t is a genuine
one-step-ahead forecast from y_{<t}. Methods:

- ``grid_seed``: the seed's grid (18 combinations), best by in-sample Mean RMSE (seed ranking);
- ``grid_loglik``: the same grid, best by in-sample log-likelihood;
- ``mle``: joint maximum likelihood of Q and R (`fit_mle`) on the Bayes model's likelihood: the
  same Q form, initial state (`BayesSpec.model`) and burn;
- ``bayes``: NUTS posterior of Q and R; the predictive is the posterior mixture over draws;
- ``mle_vol``, ``bayes_vol``: the same with a volatility-scaled R_t = sigma_eps^2 h_t^gamma
  (`tvbeta.model.volatility`; gamma estimated too), not run unless named in ``methods``;
- ``bayes_shrink``: the posterior under the horseshoe prior of the drift sds
  (`horseshoe_sigma_beta`), sampled at target_accept >= 0.9 (`fit_spec`), not run unless
  named. It has no MLE (``mle_shrink`` is no method): a prior has no maximum likelihood, and
  the plain ``mle`` is its plug-in peer. Every variant is one line of `VARIANTS`;
- ``bayes_stacked``: the predictives of the Bayes variants run, stacked with the weights that
  maximise their PSIS-LOO predictive density on the training span (``az.compare``,
  method="stacking"), so chosen with training data only;
- ``rolling_ols``: OLS on the last w observations (default three years of them), Student t
  predictive (the classic baseline).

Each is scored on the test span by the mean log predictive density (higher is better), the
RMSE of the predictive mean and the 90% interval coverage. Across series: wins, and the mean
difference in log score against a reference method with its standard error.

Missing targets (NaN): the split is in rows, but every method fits on the observed training
returns only (a rolling OLS window holds the last w observed rows) and scores the observed test
returns; ``n test`` in the tables is the number scored.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from tvbeta._warn import named_warnings
from tvbeta.constants import default_burn
from tvbeta.data.validate import Design, column_list, prepare_design, repeated
from tvbeta.evaluate.comparison import Comparison, SeriesResult
from tvbeta.evaluate.forecast import (
    OneStepForecast,
    gaussian_forecast,
    kalman_predictive,
    posterior_forecast,
    rolling_ols_forecast,
    scores,
    stacked_forecast,
)
from tvbeta.evaluate.settings import (
    BAYES_VARIANTS,
    DEFAULT_METHODS,
    LFO_STEP,
    METHODS,
    MLE_VARIANTS,
    REFERENCE,
    VARIANTS,
    BayesSettings,
    GridSettings,
    Split,
    check_methods,
)

Progress = Callable[[str, str | None], None]
"""``progress(target, step)`` of `compare_methods`: called before each step of a series (a
method of `METHODS`, then `LFO_STEP`) and with ``step=None`` when the series is done; with an
executor only the latter, in the caller's thread as each series finishes."""


def _fit_grid(train: Design, frame: pd.DataFrame, burn, rank_by, settings: GridSettings):
    from tvbeta.estimate.grid import best_spec, search_design
    from tvbeta.model import KalmanSpec
    from tvbeta.model.setters import ScalarMLEWarning

    # the base spec's intercept decides when only one intercept setting is tried
    base = KalmanSpec(K=len(train.factor_cols))
    base = base.set_intercept() if train.has_intercept else base
    with warnings.catch_warnings():  # q at the seed's bound is one candidate; the rank decides
        warnings.simplefilter("ignore", ScalarMLEWarning)
        grid = search_design(train, frame, base, burn=burn,
                             try_both_intercepts=settings.try_both_intercepts, rank_by=rank_by)
    return best_spec(grid)


def _spec_run(spec, design: Design, split: Split) -> tuple[Any, OneStepForecast]:
    from tvbeta.estimate.grid import extend_spec

    design = design.with_intercept(spec.intercept)  # the grid may choose either
    full = extend_spec(spec, split.n)  # per-time Q/R from the training rows carried forward
    mean, var = kalman_predictive(full.state_space(design.y, design.Z))
    s = _scored(design.y, split)
    return spec, gaussian_forecast(design.y[s], mean[s], var[s])


def _scored(y: np.ndarray, split: Split) -> np.ndarray:
    steps = np.arange(split.n_train, split.n)
    return steps[~np.isnan(y[steps])]


def _bayes_forecast(fit, design: Design, split: Split, n_draws: int, seed: int):
    post = fit.tree["posterior"]
    D = post.sizes["chain"] * post.sizes["draw"]
    pick = np.random.default_rng(seed).choice(D, size=min(n_draws, D), replace=False)
    return posterior_forecast(fit, _scored(design.y, split), pick, design)


def _rolling_window(y: np.ndarray, index: pd.Index, split: Split, window: int | None,
                    frequency: str | float | None = None) -> int:
    """Return ``window``, else `_default_window` capped by the observed training returns."""
    if window is not None:
        return int(window)
    n_observed = int(np.sum(~np.isnan(y[: split.n_train])))
    return min(_default_window(index, frequency), n_observed)


def _default_window(index: pd.Index, frequency: str | float | None = None) -> int:
    """Return the default rolling OLS window: three years of periods (`periods_per_year`), or 36."""
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
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> SeriesResult:
    """`compare_methods` on one target, returning its `SeriesResult`.

    ``settings`` are the keywords of `compare_methods` (checked there); progress : called with
    the name of each step (method, then `LFO_STEP`) before it runs.
    """
    report = False if progress is None else lambda _, step: step and progress(step)
    return compare_methods(data, [target], factors, progress=report, **settings).series[target]


def _compare_design(design: Design, data: pd.DataFrame, split: Split, burn: int,
                    methods: Sequence[str], bayes: BayesSettings, grid: GridSettings,
                    rolling_window: int | None, seed: int,
                    progress: Callable[[str], None] | None) -> SeriesResult:
    """Fit and score one series' design, validated with ``burn``; ``data`` its table.

    Its warnings are raised again named by the series (`named_warnings`), as `tvbeta fit`
    names a target's.
    """
    with named_warnings(str(design.target_col)):
        # the training rows must carry every fitted model on their own
        train = design.head(split.n_train, burn) if set(methods) - {"rolling_ols"} else None
        runners: dict[str, Callable[[], tuple[Any, OneStepForecast]]] = {}
        for name, rank in (("grid_seed", "mean_rmse"), ("grid_loglik", "loglik")):
            if name in methods:
                runners[name] = lambda rank=rank: _spec_run(
                    _fit_grid(train, data.iloc[: split.n_train], burn, rank, grid), design, split)
        for suffix, options in VARIANTS.items():
            if {"mle" + suffix, "bayes" + suffix} & set(methods):
                from tvbeta.estimate.bayes.model import BayesSpec

                # one model for both: the MLE maximises the likelihood the posterior is built on
                model = BayesSpec.from_design(
                    train, q=bayes.q, priors=bayes.variant_priors(options), burn=burn,
                    frequency=bayes.frequency, **options)  # fmt: skip
                if "mle" + suffix in MLE_VARIANTS:
                    runners["mle" + suffix] = partial(_mle_run, model, train, design, split)
                runners["bayes" + suffix] = partial(_bayes_run, model, design, split, bayes, seed)
        window = None
        if "rolling_ols" in methods:
            window = _rolling_window(design.y, design.index, split, rolling_window or None,
                                     bayes.frequency)  # fmt: skip
            runners["rolling_ols"] = lambda: (
                None, rolling_ols_forecast(design.y, design.Z, _scored(design.y, split), window))
        rows, forecasts, fits = {}, {}, {}
        step = progress or (lambda name: None)
        for name in [m for m in METHODS if m in runners and m in methods]:
            step(name)
            t0 = time.perf_counter()
            with named_warnings(name):  # "NoDur: bayes_vol: ...": which of the variants
                fits[name], forecasts[name] = runners[name]()
            rows[name] = {**scores(forecasts[name]), "fit time (s)": time.perf_counter() - t0}
        if "bayes_stacked" in methods:
            t0 = time.perf_counter()
            variants = [m for m in BAYES_VARIANTS if m in fits]
            stacking = stacking_table({m: fits[m] for m in variants})
            weights = stacking["stacking weight"].to_numpy()
            forecasts["bayes_stacked"] = stacked_forecast([forecasts[m] for m in variants], weights)
            fits["bayes_stacked"] = None
            fit_time = sum(rows[m]["fit time (s)"] for m in variants) + time.perf_counter() - t0
            rows["bayes_stacked"] = {**scores(forecasts["bayes_stacked"]), "fit time (s)": fit_time}
            for m in variants:
                rows[m].update(stacking.loc[m])
            order = [m for m in METHODS if m in rows]
            rows = {m: rows[m] for m in order}
            forecasts = {m: forecasts[m] for m in order}
        if bayes.lfo_train is not None:
            for m in [m for m in BAYES_VARIANTS if m in fits]:
                with named_warnings(f"{m}, a training-span leave-future-out refit"):
                    rows[m].update(_training_lfo(fits[m], train, bayes))
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "method"
        _add_differences(table, forecasts)
        lfo = None
        if "bayes" in fits and bayes.lfo_threshold is not None:
            from tvbeta.evaluate.lfo import lfo_cv

            step(LFO_STEP)
            with named_warnings("bayes, a leave-future-out refit"):  # not the fit of the table
                lfo = lfo_cv(fits["bayes"], design, n_train=split.n_train,
                             threshold=bayes.lfo_threshold)  # fmt: skip
        return SeriesResult(design.target_col, table, forecasts, fits, lfo, window)


def _series_task(design: Design, data: pd.DataFrame, split: Split, burn: int,
                 methods: Sequence[str], bayes: BayesSettings, grid: GridSettings,
                 rolling_window: int | None, seed: int) -> SeriesResult:  # fmt: skip
    """`_compare_design` as a task of an executor, within its core budget.

    The budget: `tvbeta.estimate.parallel.within_task_budget`.
    """
    from tvbeta.estimate.parallel import within_task_budget

    with within_task_budget(bayes.nuts) as nuts:
        return _compare_design(design, data, split, burn, methods,
                               dataclasses.replace(bayes, nuts=nuts), grid, rolling_window, seed,
                               None)  # fmt: skip


def _training_lfo(fit, train: Design, bayes) -> dict[str, float]:
    """Return a Bayes fit's PSIS-LFO within its training rows (the test rows are never read).

    "train LFO": elpd per scored row (nats); "train LFO refits": refits, the first posterior
    (on ``bayes.lfo_train`` of the rows) included.
    """
    from tvbeta.evaluate.lfo import DEFAULT_THRESHOLD, lfo_cv

    n_first = max(fit.spec.first_row + 2, round(bayes.lfo_train * len(train.y)))
    threshold = DEFAULT_THRESHOLD if bayes.lfo_threshold is None else bayes.lfo_threshold
    res = lfo_cv(fit, train, n_train=n_first, threshold=threshold)
    return {"train LFO": res.elpd / len(res.rows), "train LFO refits": res.n_refits}


def _mle_run(model, train: Design, design: Design, split: Split):
    from tvbeta.estimate.mle import fit_mle_design

    # The Bayes model's Q form, initial state, burn, noise and betas: MLE and posterior share
    # one likelihood, so their difference is integrating over (Q, R, ...) rather than plugging
    # in its maximum. Its warnings are the ones worth a look (a variance at 0 is not one).
    fit = fit_mle_design(train, model.model, burn=model.burn, noise=model.noise_index,
                         betas=model.betas, ppy=model.ppy)  # fmt: skip
    spec = fit.spec
    if fit.noise is not None:  # R_t of every row from the index (known at t-1), not carried on
        spec = spec.set_R(fit.noise_variance(design.y, design.Z))
    return _spec_run(spec, design, split)


def _bayes_run(model, design: Design, split: Split, settings, seed):
    from tvbeta.estimate.bayes.fit import fit_spec

    fit = fit_spec(model, settings.nuts, seed=seed)
    return fit, _bayes_forecast(fit, design, split, settings.n_predictive, seed)


def stacking_table(fits: dict[str, Any]) -> pd.DataFrame:
    """Return each Bayes fit's training-span PSIS-LOO score and stacking weight, one series.

    Rows: the methods of ``fits`` in their order. Columns: "stacking weight", the weights that
    maximise the PSIS-LOO log predictive density of the weighted mixture over the fits' common
    likelihood terms (`az.compare`, method="stacking"; Yao et al. 2018); "train LOO" and
    "train LOO se", each fit's PSIS-LOO elpd and its se, both per likelihood term (nats per
    period: Vehtari, Gelman & Gabry 2017). Each term is a one-step-ahead density
    p(y_t | y_{<t}, theta) of a training row after the burn-in, so these weigh and score the
    variants' forecasts on the training span only.
    """
    import arviz as az

    with warnings.catch_warnings():  # a high Pareto k is reported by the fits' own checks
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare({m: fit.tree for m, fit in fits.items()}, method="stacking",
                           round_to="none").reindex(list(fits))  # fmt: skip
    from tvbeta.estimate.bayes.model import OBSERVED

    lls = [fit.tree["log_likelihood"][OBSERVED] for fit in fits.values()]
    n_terms = np.array([ll.size // (ll.sizes["chain"] * ll.sizes["draw"]) for ll in lls])
    return pd.DataFrame({"stacking weight": table["weight"].to_numpy(dtype=float),
                         "train LOO": table["elpd"].to_numpy(dtype=float) / n_terms,
                         "train LOO se": table["se"].to_numpy(dtype=float) / n_terms},
                        index=list(fits))  # fmt: skip


def _add_differences(table: pd.DataFrame, forecasts: dict[str, OneStepForecast]) -> None:
    """Log-score difference to the reference method, with the paired standard error."""
    ref = REFERENCE if REFERENCE in forecasts else next(iter(forecasts))
    base = forecasts[ref].log_density
    diffs = {name: fc.log_density - base for name, fc in forecasts.items()}
    table[f"diff vs {ref}"] = [d.mean() for d in diffs.values()]
    table["diff se"] = [d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else np.nan
                        for d in diffs.values()]


def compare_methods(
    data: pd.DataFrame,
    targets: Sequence[str],
    factors: Sequence[str],
    *,
    intercept: bool = True,
    test_size: int | float = 0.3,
    burn: int | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    bayes: BayesSettings = BayesSettings(),
    grid: GridSettings = GridSettings(),
    rolling_window: int | None = None,
    seed: int = 0,
    progress: bool | Progress = True,
    executor: Executor | Any | None = None,
) -> Comparison:
    """Fit every method on the training rows of each target and score the test rows.

    Every target has the same factors, split and settings; methods and scores: module
    docstring. Without an executor the series run one after another here (the Bayesian fits
    use every core already); with one, each series is one task (see ``executor``).

    Parameters
    ----------
    data : pd.DataFrame, (n, n_columns)
        Rows are time steps (sorted), decimal returns; not modified. A missing target (NaN)
        is neither fitted nor scored.
    targets, factors : sequence of str, or str
        Lists of columns (one name alone is one column).
    intercept : bool, default True
        Whether the models and the rolling OLS have an intercept (the grid may try both).
    test_size : int or float, default 0.3
        Test rows at the end: a number of rows, or a fraction of the rows (rounds up).
    burn : int, optional
        Observed steps at the start of the training span dropped from the likelihoods;
        default the number of states (`tvbeta.constants.default_burn`).
    methods : sequence of str, default `DEFAULT_METHODS`
        The methods to run, each once (any of `METHODS`).
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
        True: a tqdm bar over the series; False: none; or a `Progress` callable. With an
        executor it hears only that a series is done (step None), in the order they finish:
        the steps inside a task run in a worker, which cannot call back into this process.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where the series run (`tvbeta.estimate.grid.as_executor`): None, here one after
        another; else one task per series, all submitted at once and gathered in the order of
        ``targets``. Series i has seed ``seed + i`` either way, so the tables are the serial
        ones to the last bit (the fit times aside). Core budget: with an executor, the tasks
        are the parallelism, so each series' NUTS chains run one after another (cores=1) and
        numba's parallel kernels use one thread per task, unless ``bayes.nuts.cores`` is set
        (then that many; give it when each worker has cores to spare). PyMC's sampler runs
        parallel chains in child processes, which a daemonic worker process (Dask's) cannot
        start: there its chains run one after another whatever ``cores`` says. The draws
        depend on the seed and the number of chains, not on ``cores`` (nutpie and PyMC).
        Tasks in other processes send their warnings back, and they are raised here.

    Returns
    -------
    Comparison
        The per-series results, the data and the settings (see ``.summary`` and ``.tables``).

    Raises
    ------
    ValueError, TypeError
        Before anything is fitted: no or repeated targets, bad ``methods``, a test_size
        leaving no rows, or settings the methods cannot run with (`BayesSettings.check`).
    DataValidationError
        Before anything is fitted: unusable data of some target (`prepare_design`).
    TypeError
        ``executor`` is neither an Executor, a Dask client nor None.
    Exception
        A series that fails raises its own error, with a note naming its target; with an
        executor the series not yet started are cancelled, as they are on Ctrl-C.
    """
    from tqdm import tqdm  # text bars: tqdm.auto warns in notebooks without ipywidgets

    from tvbeta.estimate.grid import as_executor
    from tvbeta.estimate.parallel import run_tasks, task_nuts

    targets = column_list(targets, "targets")
    factors = column_list(factors, "factors")
    if not targets:
        raise ValueError("targets is empty: name one or more target columns")
    twice = repeated(targets)
    if twice:
        raise ValueError(f"targets lists {twice} more than once: list each target once")
    check_methods(methods)
    bayes.check(methods)
    split = Split.from_test_size(len(data), test_size)
    pool = as_executor(executor)
    burn = default_burn(len(factors) + int(intercept)) if burn is None else int(burn)
    # every series' data, before hours of fitting the first ones
    designs = {target: prepare_design(data, target, factors, intercept=intercept, burn=burn)
               for target in targets}  # fmt: skip
    report = progress if callable(progress) else None
    bar = tqdm(total=len(targets), desc="series", disable=report is not None or not progress)

    def done(target: str) -> None:
        bar.update()
        if report is not None:
            report(target, None)

    if pool is None:
        jobs = {target: (designs[target], data, split, burn, methods, bayes, grid, rolling_window,
                         seed + i, None if report is None else partial(report, target))
                for i, target in enumerate(targets)}  # fmt: skip
        task = _compare_design
    else:  # a worker gets its series' columns, not the whole table
        task_bayes = dataclasses.replace(bayes, nuts=task_nuts(bayes.nuts))
        jobs = {target: (designs[target], data[[*dict.fromkeys([target, *factors])]], split,
                         burn, methods, task_bayes, grid, rolling_window, seed + i)
                for i, target in enumerate(targets)}  # fmt: skip
        task = _series_task
    try:
        results = run_tasks(task, jobs, pool, done=done, label="target")
    finally:
        bar.close()
    settings = dict(
        targets=list(targets), factors=list(factors), intercept=intercept, test_size=test_size,
        n_train=split.n_train, burn=burn, methods=list(methods),
        bayes=bayes.to_dict(), grid=dataclasses.asdict(grid),
        rolling_window=_windows_used(results), seed=seed,
    )  # fmt: skip
    return Comparison(results, settings, data[[*dict.fromkeys([*targets, *factors])]].copy())


def _windows_used(results: dict[str, SeriesResult]) -> int | dict[str, int] | None:
    """Return the settings' rolling OLS window: one number if all series agree, else a dict."""
    used = {t: r.rolling_window for t, r in results.items() if r.rolling_window is not None}
    if not used:
        return None
    return next(iter(used.values())) if len(set(used.values())) == 1 else used
