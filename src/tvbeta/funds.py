"""Several funds on the same factors: one grid search per fund, the best model of each.

``FundRunner`` runs one spec on one fund; ``ModelComparisonEngine`` runs the seed's grid for
every fund (in parallel through a ``concurrent.futures`` executor), keeps each fund's best
row, re-runs its spec, and compares the funds (summaries, exposures, stacked beta paths), as
the seed notebook's classes of the same names did.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from tqdm import tqdm  # text bars: tqdm.auto warns in notebooks without ipywidgets

from tvbeta.data.validate import column_list, repeated
from tvbeta.diagnostics import summarize_factor_dynamics
from tvbeta.estimate.grid import RankBy, Setter, as_executor, best_spec, run_kalman_grid_search
from tvbeta.model import KalmanEngine, KalmanSpec
from tvbeta.results import KalmanResult

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
