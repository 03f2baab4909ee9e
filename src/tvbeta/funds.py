"""Several funds on the same factors: the grid, the MLE or the Bayes fit of each, in parallel.

``FundRunner`` runs one spec on one fund; ``ModelComparisonEngine`` runs the seed's grid for
every fund (in parallel through a ``concurrent.futures`` executor), keeps each fund's best
row, re-runs its spec, and compares the funds (summaries, exposures, stacked beta paths), as
the seed notebook's classes of the same names did. `fit_funds` fits the MLE or the Bayes
model to every fund, as tasks of an executor or a Dask client (one fund per Bayes task, MLE
funds grouped), and returns one xarray Dataset with a ``fund`` dimension (beta paths and
bands, the estimates of Q and R).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import pickle
import secrets
import warnings
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm  # text bars: tqdm.auto warns in notebooks without ipywidgets

from tvbeta._warn import named_warnings, warn_caller
from tvbeta.constants import FUND, PARAMETER, STATE, TIME
from tvbeta.data.validate import check_names, column_list, listed, repeated
from tvbeta.diagnostics import summarize_factor_dynamics
from tvbeta.estimate.grid import RankBy, Setter, as_executor, best_spec, run_kalman_grid_search
from tvbeta.estimate.parallel import (
    naming,
    numba_threads,
    run_tasks,
    task_nuts,
    within_task_budget,
)
from tvbeta.model import KalmanEngine, KalmanSpec
from tvbeta.nuts import SamplerSettings, check_seed
from tvbeta.outputs import atomic_path, write_text
from tvbeta.results import KalmanResult
from tvbeta.viz.bands import DEFAULT_LEVEL, band_arrays, check_level

if TYPE_CHECKING:
    import plotly.graph_objects as go

ExecutorChoice = Executor | Any | Literal["auto", "process", "serial"] | None
"""An Executor, a Dask distributed Client (see `tvbeta.estimate.grid.as_executor`), a name,
or None."""
AUTO_PROCESS_WORK = 100_000
"""funds x rows above which executor="auto" starts a process pool: a grid costs ~0.14 ms per
row serially (0.05 s for 365 weeks), a pool ~5 s to start its workers (2 vCPUs)."""


class FundRunner:
    """Run specs on one fund: ``FundRunner(df, fund_col, factor_cols, burn).run(spec, label)``.

    Parameters
    ----------
    df : pd.DataFrame, (n_time, ...)
        Returns of the fund and the factors (not modified).
    fund_col : hashable
        The fund's return column (the target).
    factor_cols : sequence of hashable
        Factor return columns, in state order.
    burn : int, default 12
        Observed steps dropped from the outputs and the log-likelihood.
    """

    def __init__(self, df: pd.DataFrame, fund_col: Hashable, factor_cols: Sequence[Hashable],
                 burn: int = 12) -> None:  # fmt: skip
        self.df, self.fund_col, self.burn = df, fund_col, burn
        self.factor_cols = column_list(factor_cols)

    def run(self, spec: KalmanSpec, label: str = "default") -> KalmanResult:
        """Filter and smooth the fund with ``spec``; meta gains "Fund" and "Spec Label"."""
        results = KalmanEngine(spec).run(self.df, self.fund_col, self.factor_cols, self.burn)
        results.meta["Fund"] = self.fund_col
        results.meta["Spec Label"] = label
        return results


def fund_grid(
    df: pd.DataFrame,
    fund: Hashable,
    factor_cols: list[Hashable],
    burn: int,
    setters: tuple[Mapping[str, Setter] | None, ...],
    options: Mapping[str, Any],
) -> pd.DataFrame:
    """One fund's grid from the seed's base spec (intercept set); runs in a worker process."""
    base = KalmanSpec(K=len(factor_cols)).set_intercept()
    q, r, init = setters
    return run_kalman_grid_search(df, fund, factor_cols, base, q, r, init, burn=burn, **options)


class ModelComparisonEngine:
    """The seed's multi-fund comparison: best grid model per fund, then side by side.

    Parameters
    ----------
    df : pd.DataFrame, (n_time, ...)
        Returns of every fund and factor, one row per step.
    fund_cols : sequence of hashable
        Target columns, one grid search each, each listed once (one name alone is one fund).
    factor_cols : sequence of hashable
        Factor return columns shared by all funds (one name alone is one column).
    burn : int, default 12
        Burn-in of every grid and re-run.
    executor : Executor, "auto", "process", "serial" or None, default "auto"
        Where the per-fund grids run (same results either way). "auto": "process" when funds
        x rows exceeds `AUTO_PROCESS_WORK` on a multi-CPU machine, else "serial". "process":
        a new ``ProcessPoolExecutor`` per :meth:`run_all`, "forkserver" start method ("spawn"
        where unavailable; never "fork": numba's threading layer is not fork-safe), one worker
        per fund up to the CPU count; with one fund it runs here. Any Executor is used as given
        (not shut down). None or "serial": one fund after the other, here. Worker start-up
        costs seconds while a grid of 365 weeks takes ~0.05 s (seed's two funds: pool 4.9 s,
        serial 0.12 s on 2 vCPUs). A process pool needs picklable setters (no lambdas).
    progress : bool, default True
        Print "Running Kalman filter for {fund}..." per fund (the seed's message) and show
        a tqdm bar of finished funds.

    Attributes
    ----------
    results : dict
        fund -> {"grid_summary": the grid (DataFrame), "best_row": its first row (Series),
        "best_spec": that row's KalmanSpec, "results": the re-run (KalmanResult)}.
    """

    def __init__(
        self,
        df: pd.DataFrame,
        fund_cols: Sequence[Hashable],
        factor_cols: Sequence[Hashable],
        burn: int = 12,
        executor: ExecutorChoice = "auto",
        progress: bool = True,
    ) -> None:
        if isinstance(executor, str):
            if executor not in ("auto", "process", "serial"):
                raise ValueError(f"executor must be an Executor, a Dask Client, 'auto', "
                                 f"'process', 'serial' or None, got {executor!r}")  # fmt: skip
        else:
            as_executor(executor)  # refuse anything else now, not after the first fund
        self.df = df
        self.fund_cols = column_list(fund_cols, "fund_cols")
        twice = repeated(self.fund_cols)
        if twice:
            raise ValueError(f"fund_cols lists {twice} more than once: list each fund once")
        self.factor_cols = column_list(factor_cols)
        self.burn = burn
        self.executor = executor
        self.progress = progress
        self.results: dict[Hashable, dict[str, Any]] = {}

    def run_all(
        self,
        q_setters: Mapping[str, Setter] | None = None,
        r_setters: Mapping[str, Setter] | None = None,
        init_setters: Mapping[str, Setter] | None = None,
        *,
        rank_by: RankBy = "mean_rmse",
        test_size: int | float | None = None,
    ) -> None:
        """Grid-search every fund, keep its best row and re-run that row's spec.

        The grid starts from ``KalmanSpec(K=len(factor_cols)).set_intercept()`` and tries
        both intercept choices, as in the seed; setters, ``rank_by`` and ``test_size`` as in
        :func:`~tvbeta.estimate.grid.run_kalman_grid_search`. The re-run uses the best row's
        own spec (the seed re-ran a fresh default spec under its name: a bug).

        Raises
        ------
        RuntimeError
            Every combination failed for a fund (the message gives the first error).
        """
        setters = (q_setters, r_setters, init_setters)
        options = {"rank_by": rank_by, "test_size": test_size}
        grids = self._grids(setters, options)
        self.results = {}
        for fund in self.fund_cols:
            grid = grids[fund]
            best_row = grid.iloc[0]
            if best_row.get("Error") is not None:
                raise RuntimeError(f"every grid combination failed for {fund!r}: "
                                   f"{best_row['Error']}")  # fmt: skip
            spec, label = best_spec(grid), best_row["Model Name"]
            runner = FundRunner(self.df, fund, self.factor_cols, self.burn)
            self.results[fund] = {"grid_summary": grid, "best_row": best_row, "best_spec": spec,
                                  "results": runner.run(spec, label=label)}  # fmt: skip

    def _grids(self, setters: tuple, options: Mapping[str, Any]) -> dict[Hashable, pd.DataFrame]:
        """Each fund's grid, through the chosen executor; same numbers whichever runs it."""
        args = (self.factor_cols, self.burn, setters, options)
        bar = tqdm(total=len(self.fund_cols), desc="grid search", unit="fund",
                   disable=not self.progress)  # fmt: skip
        executor, owned = self._executor(setters)
        try:
            work: dict[Hashable, Any] = {}  # grids (serial) or futures of grids
            for fund in self.fund_cols:
                if self.progress:
                    tqdm.write(f"Running Kalman filter for {fund}...")  # the seed's message
                if executor is None:
                    work[fund] = fund_grid(self.df, fund, *args)
                    bar.update()
                else:
                    work[fund] = executor.submit(fund_grid, self.df, fund, *args)
                    work[fund].add_done_callback(lambda _: bar.update())
            if executor is None:
                return work
            return {fund: future.result() for fund, future in work.items()}
        finally:
            if owned:
                executor.shutdown()
            bar.close()

    def _executor(self, setters: tuple) -> tuple[Executor | None, bool]:
        """(executor or None for serial, whether run_all owns it and must shut it down)."""
        if not isinstance(self.executor, str):  # None, an Executor or a Dask client
            return as_executor(self.executor), False
        if self.executor == "serial":
            return None, False
        if self.executor == "auto" and (
            len(self.fund_cols) * len(self.df) <= AUTO_PROCESS_WORK or (os.cpu_count() or 1) < 2
        ):
            return None, False
        if len(self.fund_cols) < 2:
            return None, False
        try:  # fail here with advice, not deep inside the pool
            pickle.dumps(setters)
        except Exception as exc:
            raise TypeError(
                "the process pool cannot send these setters to its workers (lambdas and local "
                "functions do not pickle): use module-level functions or functools.partial, or "
                "executor=None / a ThreadPoolExecutor"
            ) from exc
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        workers = min(len(self.fund_cols), os.cpu_count() or 1)
        return ProcessPoolExecutor(max_workers=workers, mp_context=context), True

    # --- the seed's accessors ---------------------------------------------------------------
    def get_best_specs(self, as_spec: bool = False) -> dict[Hashable, Any]:
        """Map each fund to its best grid row (Series, the seed's), or its spec with ``as_spec``."""
        key = "best_spec" if as_spec else "best_row"
        return {fund: result[key] for fund, result in self.results.items()}

    def get_all_summaries(self) -> pd.DataFrame:
        """Every fund's grid stacked, with a "Fund" column."""
        frames = [r["grid_summary"].assign(Fund=fund) for fund, r in self.results.items()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def compare_exposures(self) -> pd.DataFrame:
        """Factor dynamics (one row per state) of each fund's best model, with "Fund"."""
        frames = [summarize_factor_dynamics(r["results"]).assign(Fund=fund)
                  for fund, r in self.results.items()]  # fmt: skip
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def get_results(self, fund: Hashable) -> KalmanResult | None:
        """Return the re-run of a fund's best model, or None for an unknown fund."""
        return self.results.get(fund, {}).get("results")

    def results_by_fund(self) -> dict[Hashable, KalmanResult]:
        """Map each fund to the re-run of its best model."""
        return {fund: r["results"] for fund, r in self.results.items()}

    def stack_betas(self) -> pd.DataFrame:
        """All funds' filtered betas side by side, columns "<state> (<fund>)"."""
        from tvbeta.viz.funds import stack_betas  # the presentation layer, only when asked

        return stack_betas(self.results_by_fund())

    def plot_all_stacked_betas(
        self, show_std: bool = True, n_cols: int = 2, factors: Sequence[str] | None = None
    ) -> go.Figure:
        """One subplot per factor, one beta line per fund (``tvbeta.viz.plot_stacked_betas``).

        Raises
        ------
        ValueError
            :meth:`run_all` has not run.
        """
        if not self.results:
            raise ValueError("No results to plot. Run `.run_all()` first.")
        from tvbeta import viz  # the presentation layer, only when asked

        return viz.plot_stacked_betas(
            self.results_by_fund(), show_std=show_std, n_cols=n_cols, factors=factors
        )


FitMethod = Literal["mle", "bayes"]


def fit_funds(
    df: pd.DataFrame,
    targets: Sequence[Hashable],
    factor_cols: Sequence[Hashable] | str,
    *,
    method: FitMethod = "mle",
    executor: Executor | Any | None = None,
    seed: int | None = None,
    settings: SamplerSettings | None = None,
    level: float = DEFAULT_LEVEL,
    funds_per_task: int | None = None,
    store: str | os.PathLike[str] | None = None,
    progress: bool = False,
    **model: Any,
) -> xr.Dataset:
    """Fit every fund (target) on the same factors, in parallel tasks; one Dataset of them all.

    Each task fits its funds (`tvbeta.estimate.mle.fit_mle_funds`: one or more; or one,
    `fit_bayes` with seed + i for the i-th target) and returns their summaries only
    (`fund_summary`, as arrays), so neither a worker nor the caller holds every fit; the
    summaries are joined along ``fund`` in the targets' order (times that one fund lacks are
    NaN for it).

    Parameters
    ----------
    df : pd.DataFrame
        Rows are time steps (sorted), decimal returns of the funds and the factors; not
        modified. With an executor, each task gets its fund's and the factors' columns only.
    targets : sequence of hashable
        The funds' return columns, each once.
    factor_cols : sequence of hashable or one column name
    method : {"mle", "bayes"}
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where the funds run (`tvbeta.estimate.grid.as_executor`): None, here one after
        another. The numbers do not depend on it. Core budget: with an executor the funds are
        the parallelism, so each fund's chains run one after another (cores 1) and numba's
        parallel kernels use one thread per task, unless ``settings.cores`` is set
        (`tvbeta.estimate.parallel.within_task_budget`).
    seed : int
        Required for "bayes": the i-th of ``targets`` samples with seed + i, so keep their
        order when resuming a ``store`` (a stored fund keeps the seed it was fitted with); not
        taken by "mle" (deterministic).
    settings : SamplerSettings, optional
        The NUTS settings of "bayes" (default `SamplerSettings()`; ``n_paths`` > 0 for bands),
        or give them as keywords (``draws=``, ``tune=``, ``chains=``, ...), as to `fit_bayes`.
    level : float in (0, 1), default 0.9
        Central probability of the beta bands and of the Bayes parameter intervals.
    funds_per_task : int, optional
        Funds fitted one after another in each task (of an executor, or here). Default: 1 for
        "bayes" (seconds per fund); for "mle" (~25 ms per fund) enough to make at most
        `MLE_TASKS` tasks, whose scheduling and transfer would otherwise cost as much as the
        fits (measured: 1,000 funds one per task on 2 Dask workers ran 1.2x faster than
        serially), and a task checks its frame and factors once (`fit_mle_funds`).
    store : path-like, optional
        A folder to write the summaries to as they finish, one Zarr store per task
        (``part-<position of its first fund>-<random>.zarr``, each written atomically), instead of
        keeping them in memory; the Dataset returned is then read from there lazily (dask
        arrays). A run that stopped (crash, Ctrl-C) resumes: funds already in the folder are
        not fitted again (with the same seeds, so the numbers are those of one run). The
        folder's ``run.json`` records the run's settings and a fingerprint of the dates and
        factor returns, each part one of each of its funds' returns: a folder of another run,
        and stored funds whose returns have changed since (an updated file), are refused
        rather than returned as fits of these data. Needs dask (the ``dask`` extra) to read
        the parts back lazily.
    progress : bool
        A text progress bar over the funds.
    **model
        The model's keywords: `fit_mle`'s (intercept, q, burn, noise, frequency, betas) or
        `bayes_spec`'s (also priors, shrinkage), and for "bayes" the sampler settings'
        (`SamplerSettings` fields). Checked before anything is fitted or written.

    Returns
    -------
    xr.Dataset
        Dims (fund, time, state, parameter); the variables of `fund_summary`; attrs
        ``method``, ``level``, ``factors``, ``band``.

    Raises
    ------
    ValueError
        No target, a target listed twice, an unknown method, a seed or sampler settings given
        to "mle", a level outside (0, 1), a bad sampler setting; a ``store`` that holds a run
        with other settings (method, factors, level, seed, sampler settings, model, dates or
        factor returns), or fits of a fund whose returns have changed since.
    DataValidationError
        A target or factor column not in ``df`` (checked for every fund before any fit).
    TypeError
        ``executor`` is neither an Executor, a Dask client nor None; a seed missing for
        "bayes" (`check_seed`); a keyword neither the model nor the sampler takes; a sampler
        setting given both in ``settings`` and as a keyword.
    DataValidationError, KalmanNumericalError, ...
        A fund's own error, with a note naming the fund (its task's first fund, and the fund
        itself in a task of several); the funds not yet started are cancelled.
    """
    targets, factors = column_list(targets, "targets"), column_list(factor_cols)
    if not targets:
        raise ValueError("targets is empty: name one or more fund columns")
    twice = repeated(targets)
    if twice:
        raise ValueError(f"targets lists {twice} more than once: list each fund once")
    if method not in ("mle", "bayes"):
        raise ValueError(f"method must be 'mle' or 'bayes', got {method!r}")
    level = check_level(level)
    sampler = {k: model.pop(k) for k in list(model) if k in SAMPLER_KEYWORDS}
    if method == "bayes":
        from tvbeta.estimate.bayes.model import ModelOptions

        check_seed(seed)
        settings = SamplerSettings.of(settings, **sampler)
        accepted = set(ModelOptions.__annotations__)
    elif seed is not None or settings is not None or sampler:
        raise ValueError("the MLE is deterministic and takes no seed or sampler settings: "
                         "drop them, or use method='bayes'")  # fmt: skip
    else:
        accepted = set(MLE_KEYWORDS)
    unknown = sorted(set(model) - accepted)
    if unknown:
        raise TypeError(
            f"fit_funds got keyword(s) {unknown} that method={method!r} does not take: its "
            f"model takes {sorted(accepted)}"
            + (f", its sampler {list(SAMPLER_KEYWORDS)}" if method == "bayes" else ""))
    for target in targets:  # every name before the first fit: a typo in fund 900 fails now
        check_names(df, target, factors, model.get("intercept", True))
    position = {target: i for i, target in enumerate(targets)}
    folder = None if store is None else _open_store(store, dict(
        method=method, factors=[str(f) for f in factors], level=level, seed=seed,
        settings=None if settings is None else {
            k: v for k, v in dataclasses.asdict(settings).items() if k != "cores"},
        model={k: repr(v) for k, v in sorted(model.items())},
        data=_digest(df.index, *(df[f] for f in factors))))  # fmt: skip
    digests = {} if folder is None else {str(t): _digest(df[t]) for t in targets}
    stored = set() if folder is None else _check_stored(folder, digests)
    todo = [t for t in targets if str(t) not in stored]
    pool = as_executor(executor)
    if pool is not None and settings is not None:
        settings = task_nuts(settings)
    if funds_per_task is None:
        funds_per_task = 1 if method == "bayes" else max(1, -(-len(todo) // MLE_TASKS))
    elif isinstance(funds_per_task, bool) or not isinstance(funds_per_task, int) \
            or funds_per_task < 1:  # fmt: skip
        raise ValueError(f"funds_per_task must be a positive integer, got {funds_per_task!r}")
    jobs = {}
    for start in range(0, len(todo), funds_per_task):
        chunk = todo[start:start + funds_per_task]
        seeds = [None if seed is None else seed + position[t] for t in chunk]
        columns = [*dict.fromkeys([*chunk, *factors])]  # a worker gets its funds' columns
        jobs[chunk[0]] = (df[columns] if pool is not None else df, chunk, factors, method, seeds,
                          settings, level, model, None if pool is None else 1)  # fmt: skip

    pending: list[_Summaries] = []  # finished funds not yet in a part of the store
    per_part = 1 if method == "bayes" else STORE_PART_FUNDS

    def flush() -> None:
        if not pending:
            return
        # random: a part made by another run with another order of targets keeps its name
        name = f"part-{position[pending[0].funds[0]]:06d}-{secrets.token_hex(4)}.zarr"
        part = _along_funds(pending)
        part[DATA_DIGEST] = (FUND, [digests[str(f)] for f in part[FUND].values])
        with atomic_path(folder / name) as tmp:
            part.to_zarr(tmp, consolidated=False)
        pending.clear()

    def write(first: Hashable, summary: list[_Summaries]) -> None:
        pending.extend(summary)
        if sum(len(s.funds) for s in pending) >= per_part:
            flush()

    bar = tqdm(total=len(targets), initial=len(targets) - len(todo), desc="funds",
               disable=not progress)  # fmt: skip
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every fund's, gathered below
            summaries = run_tasks(_funds_task, jobs, pool, label="funds from",
                                  done=lambda first: bar.update(len(jobs[first][1])),
                                  collect=None if folder is None else write)  # fmt: skip
    finally:
        if folder is not None:
            flush()  # what finished before a stop is kept
        bar.close()
        _warn_per_category(caught)
    if folder is None:
        out = _along_funds([part for parts in summaries.values() for part in parts])
    else:
        parts = sorted(folder.glob("part-*.zarr"))
        out = xr.open_mfdataset(parts, engine="zarr", combine="nested", concat_dim=FUND,
                                join="outer", combine_attrs="override", consolidated=False)
        order = [v for v in SUMMARY_VARIABLES if v in out]  # Zarr lists them by name
        out = out[order].sel({FUND: [str(t) for t in targets]})
    out.attrs.update(method=method, level=level, factors=[str(f) for f in factors])
    return out


SUMMARY_VARIABLES = ("beta", "beta_lower", "beta_upper", "estimate", "sd", "lower", "upper",
                     "p_alpha_filtered", "p_alpha_smoothed", "loglik", "converged",
                     "forecast_log_score", "forecast_rmse", "forecast_r2", "forecast_coverage")
"""The variables of `fund_summary`, in its order."""


def _warn_per_category(caught: list[warnings.WarningMessage]) -> None:
    """Raise the funds' warnings again: each alone, or one per category naming the funds.

    A run of 1,000 funds may warn hundreds of times (a drift variance at 0, short chains);
    one warning per category keeps the first message and lists the funds it came from. They
    point at the caller's line: where a task ran (a Dask worker's task runner, a pool's
    thread) is no place a user can act on.
    """
    by_category: dict[type[Warning], list[warnings.WarningMessage]] = {}
    for w in caught:
        by_category.setdefault(w.category, []).append(w)
    for category, ws in by_category.items():
        first = ws[0]
        if len(ws) == 1:
            warn_caller(str(first.message), category)
            continue
        funds = list(dict.fromkeys(str(w.message).split(":", 1)[0] for w in ws))
        warn_caller(f"{len(ws)} warnings of this kind, from {listed(funds, 20)}; the first: "
                    f"{first.message}", category)


RUN_FILE = "run.json"
"""The settings of the run a `fit_funds` store holds, written when the store is made."""


def _open_store(store: str | os.PathLike[str], run: dict[str, Any]) -> Path:
    """Return the store's folder, made with ``run`` recorded, or checked to hold that run.

    Raises
    ------
    ValueError
        The folder records another run (the message names what differs).
    """
    folder = Path(store)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_FILE
    run = json.loads(json.dumps(run, default=str))  # as it reads back: lists, str keys
    if not path.exists():
        write_text(path, json.dumps(run, indent=2))
        return folder
    held = json.loads(path.read_text(encoding="utf-8"))
    differs = sorted(k for k in run.keys() | held.keys() if run.get(k) != held.get(k))
    if "factors" in differs and "data" in differs:  # other factors: other factor returns
        differs.remove("data")
    if differs:
        said = [f"{k}={held.get(k)!r}" for k in differs if k != "data"]
        if "data" in differs:  # a fingerprint means nothing to a reader: say what it covers
            said.append("data: its dates or factor returns differ from these, or it comes "
                        "from an earlier tvbeta")  # fmt: skip
        raise ValueError(
            f"the store {folder} holds a run with other {', '.join(differs)} "
            f"({'; '.join(said)}): give another folder, or delete this one to start again")
    return folder


DATA_DIGEST = "data_digest"
"""A store part's record of each fund's returns (`_digest` of its column), checked on resume."""


def _digest(*columns: pd.Index | pd.Series) -> str:
    """Return a fingerprint (SHA-256, hex) of the values of ``columns``, in order.

    Through pandas' own value hashing (`pandas.util.hash_pandas_object`), so equal values
    (NaN included) give equal fingerprints whatever their memory layout or dtype's bit pattern.
    """
    h = hashlib.sha256()
    for column in columns:
        h.update(pd.util.hash_pandas_object(pd.Series(column), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _check_stored(folder: Path, digests: dict[str, str]) -> set[str]:
    """Return the funds the store holds (`stored_funds`), checked to be of the same returns.

    Raises
    ------
    ValueError
        A stored fund of ``digests`` whose returns differ from those it was fitted to (an
        updated file: its stored fit would be returned as if it were this data's).
    """
    held = _stored_digests(folder)
    changed = [f for f, mark in digests.items() if f in held and held[f] != mark]
    if changed:
        raise ValueError(
            f"the store {folder} holds fits of {listed(changed, 10)} to other returns than "
            "these (the data changed since they were fitted, or the store comes from an "
            "earlier tvbeta): give another folder, or delete this one to fit them again")
    return set(held)


def stored_funds(store: str | os.PathLike[str]) -> set[str]:
    """Return the funds (as str) whose summaries a `fit_funds` store holds; complete parts only.

    An absent folder holds none. These are the funds a resumed `fit_funds` does not fit again.
    """
    return set(_stored_digests(Path(store)))


def _stored_digests(folder: Path) -> dict[str, str | None]:
    """Return each stored fund's returns' fingerprint (None: a part from an earlier tvbeta)."""
    held: dict[str, str | None] = {}
    for part in folder.glob("part-*.zarr"):
        ds = xr.open_zarr(part, consolidated=False)
        marks = ds[DATA_DIGEST].values if DATA_DIGEST in ds else [None] * ds.sizes[FUND]
        held.update({str(f): m for f, m in zip(ds[FUND].values, marks, strict=True)})
    return held


SAMPLER_KEYWORDS = tuple(f.name for f in dataclasses.fields(SamplerSettings))
"""The NUTS settings `fit_funds` takes as keywords for "bayes" (as `fit_bayes` does)."""
MLE_KEYWORDS = ("intercept", "q", "burn", "noise", "frequency", "betas")
"""The model keywords of `fit_mle` that `fit_funds` passes on for "mle"."""
STORE_PART_FUNDS = 100
"""Funds' MLE summaries written together as one part of a `fit_funds` store. A part is a Zarr
folder whose files are fsynced (~0.4 s each on this machine: with a part per task, writing 200
funds' MLE took 20 s against 7 s of fitting); a stop loses at most this many funds' MLE, a
few seconds of work. Bayes fits (minutes each) are written one fund per part."""
MLE_TASKS = 64
"""The most tasks `fit_funds` makes of the MLE of many funds, here or on an executor (a few
per worker on a small cluster, so the last ones finish together)."""


def _funds_task(df: pd.DataFrame, targets: list[Hashable], factors: list[Hashable],
                method: FitMethod, seeds: list[int | None], settings: SamplerSettings | None,
                level: float, model: dict[str, Any], cores: int | None,
                ) -> list[_Summaries]:  # fmt: skip
    """Fit and summarise some funds one after another: a task of `fit_funds`.

    Within the task's core budget: the NUTS settings' (`within_task_budget`), and for the
    MLE ``cores`` numba threads (1 on an executor, None: as they are). In a task of several
    funds, a fund's error gets a note naming it (`run_tasks` names the task by its first fund).
    """
    summaries = []
    if method == "mle":
        from tvbeta.estimate.mle import fit_mle_funds

        fits = fit_mle_funds(df, targets, factors, **model)  # the frame checked once
    for target, seed in zip(targets, seeds, strict=True):
        with naming("fund", target) if len(targets) > 1 else nullcontext(), \
                named_warnings(f"fund {target!r}"):  # fmt: skip
            if method == "mle":
                with numba_threads(cores):
                    fit = next(fits)
            else:
                from tvbeta.estimate.bayes.fit import fit_bayes

                with within_task_budget(settings) as nuts:
                    fit = fit_bayes(df, target, factors, seed=seed, settings=nuts, **model)
            summaries.append(_Summaries.of(target, fit, level))
    return _stacked(summaries)


class _Summaries(NamedTuple):
    """Some funds' summaries as arrays: `fund_summary`'s variables, ``fund`` first.

    Tasks return these, and the Dataset is built once from them: building one Dataset per
    fund (~4 ms) and joining them with xarray's concat (~3 ms per fund) cost more than the
    rest of a fund's summary, and numpy arrays pickle smaller than Datasets.
    """

    funds: list[Hashable]
    data: dict[str, tuple[tuple[str, ...], np.ndarray]]
    """name -> (dims after ``fund``, values (n_funds, ...))."""
    coords: dict[str, np.ndarray]
    attrs: dict[str, str]

    @classmethod
    def of(cls, fund: Hashable, fit: Any, level: float) -> _Summaries:
        """Return one fit's summary (`fund_summary`) as the summaries of one fund."""
        data, coords, attrs = _summary(fit, level)
        return cls([fund], {name: (dims, np.asarray(values)[None])
                            for name, (dims, values) in data.items()}, coords, attrs)  # fmt: skip

    def dataset(self) -> xr.Dataset:
        """Return these funds' summaries as one Dataset (dims fund, then the variable's)."""
        funds = np.empty(len(self.funds), dtype=object)  # labels as given, tuples too
        funds[:] = self.funds
        data = {name: ((FUND, *dims), values) for name, (dims, values) in self.data.items()}
        return xr.Dataset(data, coords={FUND: funds, **self.coords}, attrs=self.attrs)

    def alike(self, other: _Summaries) -> bool:
        """Whether ``other`` has the same variables and coordinates (stackable as they are)."""
        return (
            self.data.keys() == other.data.keys()
            and self.coords.keys() == other.coords.keys()
            and all(np.array_equal(self.coords[c], other.coords[c]) for c in self.coords)
        )


def _stacked(summaries: list[_Summaries]) -> list[_Summaries]:
    """Stack each run of alike summaries (same coordinates) into one; the order is kept."""
    runs: list[list[_Summaries]] = []
    for summary in summaries:
        if runs and runs[-1][0].alike(summary):
            runs[-1].append(summary)
        else:
            runs.append([summary])
    return [run[0] if len(run) == 1 else _Summaries(
        [f for s in run for f in s.funds],
        {name: (dims, np.concatenate([s.data[name][1] for s in run]))
         for name, (dims, _) in run[0].data.items()},
        run[0].coords, run[0].attrs) for run in runs]  # fmt: skip


def _along_funds(summaries: list[_Summaries]) -> xr.Dataset:
    """Join funds' summaries along ``fund`` (a time one fund lacks is NaN for it)."""
    parts = [s.dataset() for s in _stacked(summaries)]
    if len(parts) == 1:  # xarray's concat costs ~8 ms even for one Dataset
        return parts[0]
    return xr.concat(parts, dim=FUND, join="outer", combine_attrs="override")


def fund_summary(fit: Any, level: float = DEFAULT_LEVEL) -> xr.Dataset:
    """Return one fit's summary: its smoothed beta band and its estimates of Q and R.

    Parameters
    ----------
    fit : MLEFit or BayesFit
    level : float in (0, 1)

    Returns
    -------
    xr.Dataset
        ``beta``, ``beta_lower``, ``beta_upper`` (time, state): the smoothed paths and their
        central ``level`` band (`tvbeta.viz.beta_bands`: given Q and R at the MLE, or over the
        posterior; not for a Bayes fit without paths, ``n_paths=0``); attrs ``band``.
        ``estimate``, ``sd`` (parameter; the names of `MLEFit.params`: Q[state], R, and gamma
        or phi[state] for the model menu's variants): the MLE and its standard error, or the
        posterior median and sd. A Bayes fit adds ``lower``, ``upper`` (the central ``level``
        interval) and, with an intercept and paths, ``p_alpha_filtered``, ``p_alpha_smoothed``
        (time: P(alpha_t > 0) in real time and in hindsight, `BayesFit.alpha_probability`).
        ``loglik``: the MLE's maximum (MLE only). ``converged``: the MLE's optimiser stopped at
        a stationary point, or the posterior passed every convergence check
        (`check_convergence`: R-hat, ESS, divergences, BFMI). How well the fund's factor
        exposures, as known the period before, predict its return: over the observed steps
        after the burn, ``forecast_log_score`` (mean log predictive density, nats per
        period), ``forecast_rmse`` (of the predictive mean, return units), ``forecast_r2``
        (1 - its mean squared error / the variance of the returns: the share of the return's
        variance the exposures predict) and ``forecast_coverage`` (the share of returns
        inside the central ``level`` predictive interval). One step ahead for the betas, but
        Q and R (or their posterior) were fitted to the same returns, so these are in-sample
        scores, a little optimistic; `tvbeta.evaluate.compare.compare_methods` scores a
        held-out span.

    Raises
    ------
    TypeError
        ``fit`` is neither an MLEFit nor a BayesFit.
    """
    return xr.Dataset(*_summary(fit, level))


def _summary(fit: Any, level: float) -> tuple[dict[str, tuple], dict[str, Any], dict[str, str]]:
    """Return `fund_summary`'s (data: name -> (dims tuple, values), coords, attrs)."""
    from tvbeta.estimate.bayes.diagnostics import check_convergence
    from tvbeta.estimate.bayes.fit import BayesFit
    from tvbeta.estimate.mle import MLEFit

    if not isinstance(fit, MLEFit | BayesFit):
        raise TypeError(f"fit must be an MLEFit or a BayesFit, got {type(fit).__name__}")
    paths = isinstance(fit, MLEFit) or "smoothed_mean" in fit.beta
    data: dict[str, tuple] = {}
    coords: dict[str, Any] = {}
    attrs: dict[str, str] = {}
    if paths:
        bands = band_arrays(fit, "smoothed", level)
        data.update(beta=((TIME, STATE), bands.mean), beta_lower=((TIME, STATE), bands.lower),
                    beta_upper=((TIME, STATE), bands.upper))  # fmt: skip
        coords = {TIME: bands.index.to_numpy(), STATE: [str(c) for c in bands.states]}
        attrs["band"] = bands.band
    if isinstance(fit, MLEFit):
        est = fit.estimate  # `MLEFit.params` and `se` as arrays
        coords[PARAMETER] = np.asarray(est.names, dtype=str)
        data.update(estimate=((PARAMETER,), est.params.copy()), sd=((PARAMETER,), est.se.copy()),
                    loglik=((), est.llf), converged=((), bool(est.converged)))  # fmt: skip
    else:
        table = fit.qr_summary(level)
        coords[PARAMETER] = np.asarray(table.index, dtype=str)
        data.update(estimate=((PARAMETER,), table["posterior median"].to_numpy()),
                    sd=((PARAMETER,), table["posterior sd"].to_numpy()),
                    lower=((PARAMETER,), table.iloc[:, -2].to_numpy()),
                    upper=((PARAMETER,), table.iloc[:, -1].to_numpy()))  # fmt: skip
        if fit.spec.intercept and paths:
            alpha = fit.alpha_probability().reindex(bands.index)
            data["p_alpha_filtered"] = ((TIME,), alpha["filtered"].to_numpy())
            data["p_alpha_smoothed"] = ((TIME,), alpha["smoothed"].to_numpy())
        data["converged"] = ((), bool(check_convergence(fit, warn=False).ok))
    data.update(_forecast_scores(fit, level))
    return data, coords, attrs


FORECAST_DRAWS = 200
"""Posterior draws (evenly spaced over the pooled chains) whose mixture is a Bayes fit's
one-step predictive in `fund_summary`. Against all 4,000 draws of a default fit (NoDur and
Durbl, monthly 1992-2017, 4 factors and an intercept) the mean log score moved by 0.0002 and
0.003 nats per period, the RMSE by 0.1%, far below the spread across funds (0.44 nats between
the two); it costs ~0.1 s per fund."""


def _forecast_scores(fit: Any, level: float) -> dict[str, tuple]:
    """Return the ``forecast_*`` variables of `fund_summary`: one-step scores on the fit's rows.

    The predictive of each observed step after the burn given the returns before it: the MLE's
    plug-in N(z_t' a_{t|t-1}, F_t), or for a Bayes fit the mixture of those over
    `FORECAST_DRAWS` posterior draws (`tvbeta.evaluate.forecast.posterior_forecast`).
    """
    from tvbeta.estimate.mle import MLEFit
    from tvbeta.evaluate.forecast import gaussian_forecast, posterior_forecast, scores

    if isinstance(fit, MLEFit):
        y, f = fit.result.design.y, fit.result.output.filtered
        steps = np.flatnonzero(~np.isnan(y))[fit.burn :]
        # y_t - v_t: the predictive mean whatever the filter's states (mean-reverting: [beta; mu])
        fc = gaussian_forecast(y[steps], y[steps] - f.v[steps], f.F[steps])
    else:
        post = fit.tree["posterior"]
        n = post.sizes["chain"] * post.sizes["draw"]
        draws = np.unique(np.linspace(0, n - 1, min(FORECAST_DRAWS, n)).round().astype(int))
        fc = posterior_forecast(fit, fit.spec.steps, draws)
    s = scores(fc, level)
    r2 = 1.0 - np.mean((fc.y - fc.mean) ** 2) / np.var(fc.y)
    return {"forecast_log_score": ((), s["log score"]), "forecast_rmse": ((), s["RMSE"]),
            "forecast_r2": ((), float(r2)),
            "forecast_coverage": ((), s[f"coverage {round(100 * level)}%"])}  # fmt: skip


FORECAST_COLUMNS = {"forecast_r2": "one-step R²", "forecast_coverage": "coverage",
                    "forecast_log_score": "log score", "forecast_rmse": "RMSE"}  # fmt: skip
"""The ``forecast_*`` variables of `fund_summary` -> their column in `forecast_quality`."""


def forecast_quality(funds: xr.Dataset) -> pd.DataFrame:
    """Return each fund's one-step forecast scores (`fund_summary`), the best R² first.

    Parameters
    ----------
    funds : xr.Dataset
        From `fit_funds` (its ``forecast_*`` variables).

    Returns
    -------
    pd.DataFrame
        Index fund; columns "one-step R²", "coverage" (of the central ``level`` predictive
        interval), "log score" (nats per period), "RMSE" (return units), rows sorted by R²
        (stable: ties keep the funds' order).
    """
    frame = pd.DataFrame({label: funds[name].to_numpy() for name, label
                          in FORECAST_COLUMNS.items()},
                         index=pd.Index(funds[FUND].values, name=FUND))  # fmt: skip
    return frame.sort_values(FORECAST_COLUMNS["forecast_r2"], ascending=False, kind="stable")


def style_drift(funds: xr.Dataset, frequency: str | float | None = None) -> pd.DataFrame:
    """Return each fund's one-year drift of each factor beta, sqrt(ppy Q[factor]), ranked.

    Q is the per-period variance of a beta's random walk, so sqrt(ppy Q) is the standard
    deviation of its change over a year (ppy periods); the MLE's estimate or the posterior
    median of Q, as `fit_funds` gives it.

    Parameters
    ----------
    funds : xr.Dataset
        From `fit_funds` (its ``estimate`` and attrs ``factors``).
    frequency : str or float, optional
        Periods per year, or a name (`periods_per_year`); default inferred from ``time``.

    Returns
    -------
    pd.DataFrame
        Index fund; one column per factor (beta per year), then ``largest`` and ``factor``
        (which factor; "" when that Q sits on its lower bound, so no factor drifts), and
        ``z``: that factor's Q over its standard error (MLE) or its posterior median over its
        posterior sd (Bayes), NaN where Q sits at 0 (no standard error); rows sorted by
        ``largest``, the most drifting fund first. An MLE ``z`` above ~2 says the data
        clearly show that drift; below, they are inconclusive, not evidence of none: a Wald
        ratio understates the evidence for a variance (its likelihood is skewed;
        `MLEFit.summary`), so a fund whose beta truly trends can have z below 2 and a noisy
        static fund can rank above it. A Bayes ``z`` is a size, not a test
        (`BayesFit.static_probability` is).
    """
    from tvbeta.estimate.bayes.priors import periods_per_year

    ppy = periods_per_year(pd.DatetimeIndex(funds[TIME].values), frequency)
    names = set(funds[PARAMETER].values.tolist())
    factors = list(funds.attrs["factors"])
    columns = [f"Q[{f}]" if f"Q[{f}]" in names else f"Q[{f},{f}]" for f in factors]
    q = funds["estimate"].sel({PARAMETER: columns}).to_numpy()
    table = pd.DataFrame(np.sqrt(ppy * np.clip(q, 0.0, None)), columns=factors,
                         index=pd.Index(funds[FUND].values, name=FUND))  # fmt: skip
    table["largest"] = table[factors].max(axis=1)
    sd = funds["sd"].sel({PARAMETER: columns}).to_numpy()
    at = np.arange(len(table)), np.argmax(table[factors].to_numpy(), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = q[at] / sd[at]
    # the largest Q on its lower bound (no sd there): no factor drifts, and idxmax would name
    # an arbitrary one of the ~0 values
    table["factor"] = table[factors].idxmax(axis=1).where(sd[at] > 0, "")
    table["z"] = np.where(np.isfinite(z) & (sd[at] > 0), z, np.nan)
    return table.sort_values("largest", ascending=False, kind="stable")
