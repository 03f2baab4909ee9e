"""`tvbeta`: run model files to see if Bayesian estimation of Q and R beats the seed's grid search.

Commands: run (comparison, saved fits and HTML report), compare (the same without the
report), fit (one method on the whole sample), funds (every target's MLE or Bayes fit as many
funds: one Dataset in a resumable store, rankings and a one-page report), report (rebuild the
HTML report of a saved comparison) and demo (run on the built-in data). Exit codes: 0 success, 2 a
usage, model-file or data error, or an incomplete run folder ("tvbeta: error: ..." on stderr),
1 anything unexpected, 130 Ctrl-C ("tvbeta: interrupted; ..."), 143 kill (SIGTERM, "tvbeta:
terminated; ..."). A command writes its folder all at once at the end
(`tvbeta.outputs.run_folder`): after Ctrl-C, kill or a failure the folder is as it was, a
previous complete run included.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from tvbeta._warn import named_warnings
from tvbeta.config import ConfigError, RunConfig, load_config
from tvbeta.constants import BETAS, NOISES, SHRINKAGES, default_burn
from tvbeta.data import DataValidationError, ReturnUnitsWarning
from tvbeta.data.validate import format_label, listed
from tvbeta.interrupts import InterruptNote, noting_interrupts, terminating_as_interrupts
from tvbeta.model import SavedFileError, SpecError
from tvbeta.outputs import IncompleteRunError, atomic_path, read_manifest, run_folder

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a process stopped by Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM, for a process stopped by kill
FIT_METHODS: tuple[str, ...] = ("mle", "bayes", "grid")
DEMO_MODEL = "french_industries.toml"
# `make demo` must finish in under 3 minutes on 2 cores: 7 series x one NUTS fit each. The
# convergence check wants R-hat <= 1.01, which needs an ESS of ~1000: at an ESS of ~600 (the old
# 4 x (400 + 400)) the R-hat of well-mixed chains exceeds 1.01 by chance in 1 fit in 3. nutpie
# adapts in 200 steps here, so the budget goes to draws. 4 x (200 + 800) passed on 3 seeds x 7
# series until the releases installed on 2026-12-01 (PyTensor 3.3.8, numba 0.68.0, nutpie
# 0.16.11) gave Durbl's sigma_beta[Mom] R-hat 1.012 (tail ESS 712) at the demo's seed; 4 x (200
# + 1000) gives every series' hardest parameter a bulk ESS of 1176-2086, R-hat <= 1.006.
# Fewer draws make the Bayes log scores noisier (~0.001 nats here), not biased.
DEMO_SAMPLER: dict[str, int] = {"draws": 1000, "tune": 200, "chains": 4}
REPORT_FILE = "report.html"
MODEL_COPY = "model.toml"
SCHEDULER_TIMEOUT_S = 10  # a scheduler that answers at all answers in well under a second


class CLIError(Exception):
    """Bad input the user can fix (exit code 2); the message says how."""


class Unavailable(Exception):
    """A part of tvbeta this installation lacks (exit code 1)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while a command wrote its folder; the message says what the folder holds."""


# --- helpers ---------------------------------------------------------------------------------
_OPEN_LINE = {"open": False}  # a progress line on stderr written piece by piece, unfinished


def _say(message: str) -> None:
    """Progress and notes go to stderr, so stdout holds only the results."""
    if _OPEN_LINE["open"]:  # a message (error, Ctrl-C) below the unfinished progress line
        print(file=sys.stderr)
        _OPEN_LINE["open"] = False
    print(message, file=sys.stderr, flush=True)


def _part(text: str, *, last: bool = False) -> None:
    """Part of a progress line, shown at once (a log reads what runs now); ``last`` ends it."""
    print(text, end="\n" if last else "", file=sys.stderr, flush=True)
    _OPEN_LINE["open"] = not last


def _progress[T](items: Sequence[T], desc: str, interrupt: InterruptNote) -> Iterator[T]:
    """Yield ``items`` with a tqdm bar on a terminal, else one line per item (for logs).

    Before each item, a Ctrl-C that a library swallowed stops the command.
    """
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        for item in tqdm(items, desc=desc, file=sys.stderr):
            interrupt.check()
            yield item
        return
    t0 = time.perf_counter()
    for i, item in enumerate(items, start=1):
        interrupt.check()
        _say(f"{desc} {i}/{len(items)}: {item} ({time.perf_counter() - t0:.0f} s so far)")
        yield item


class _SeriesProgress:
    """Report `compare_methods`' progress: a tqdm bar over the series on a terminal, else lines.

    One line per series, written step by step ("[3/7] Manuf: grid, MLE, Bayes (4 chains x
    (200 + 1000)), rolling OLS, LFO ... 12.3 s"); on Dask one line as each series ends
    ("[3/7] Manuf done, 40.1 s into the comparison"). Before each step, a swallowed Ctrl-C
    stops the command.
    """

    def __init__(self, targets: Sequence[str], config: RunConfig, interrupt: InterruptNote):
        s = config.sampler
        self.labels = {"grid_seed": "grid", "grid_loglik": "grid", "mle": "MLE",
                       "mle_vol": "MLE (volatility-scaled R)",
                       "bayes": f"Bayes ({s.chains} chains x ({s.tune} + {s.draws}))",
                       "bayes_vol": "Bayes (volatility-scaled R)",
                       "bayes_shrink": "Bayes (horseshoe on Q)",
                       "mle_mr": "MLE (mean-reverting betas)",
                       "bayes_mr": "Bayes (mean-reverting betas)",
                       "mle_vol_mr": "MLE (volatility-scaled R, mean-reverting betas)",
                       "bayes_vol_mr": "Bayes (volatility-scaled R, mean-reverting betas)",
                       "rolling_ols": "rolling OLS", "lfo": "LFO"}  # fmt: skip
        self.n, self.done, self.interrupt = len(targets), 0, interrupt
        self.steps: list[str] = []
        self.t0 = self.start = time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.n, desc="series", file=sys.stderr)

    def __call__(self, target: str, step: str | None) -> None:
        self.interrupt.check()
        if step is None:
            self.done += 1
            if self.bar is not None:
                self.bar.update(1)
            elif self.steps:
                _part(f" ... {time.perf_counter() - self.t0:.1f} s", last=True)
            else:  # run by an executor: no steps, and the series overlap in time
                elapsed = time.perf_counter() - self.start
                _part(f"[{self.done}/{self.n}] {target} done, {elapsed:.1f} s into the comparison",
                      last=True)  # fmt: skip
            self.steps, self.t0 = [], time.perf_counter()
            return
        label = self.labels.get(step, step)
        if self.steps and self.steps[-1] == label:  # the two grid rankings: one grid line
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{target}: {label}")
        else:
            _part((f"[{self.done + 1}/{self.n}] {target}: " if not self.steps else ", ") + label)
        self.steps.append(label)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _writing(folder: Path, interrupt: InterruptNote, **kwargs: Any) -> Iterator[Path]:
    """Yield the staging folder of `run_folder`; on Ctrl-C, say what ``folder`` still holds."""
    try:
        with run_folder(folder, **kwargs) as stage:
            yield stage
            interrupt.check()  # a Ctrl-C that a library swallowed must not commit the run
    except KeyboardInterrupt as err:
        if isinstance(err, Interrupted):
            raise
        try:
            read_manifest(folder)
            kept = f"{folder} is unchanged: it holds the previous complete run"
        except IncompleteRunError:
            kept = f"nothing was written to {folder}"
        raise Interrupted(kept) from err  # --debug shows where it was interrupted


def _output_folder(folder: Path, *, create: bool = False) -> Path:
    """Check now, before any long work, that the folder can be written, or say why not.

    The run's writer (`tvbeta.outputs.run_folder`) creates an absent folder and removes it again
    when the run fails or is interrupted; ``create`` makes it here (a file written directly).
    """
    full = folder.expanduser().resolve()
    if full.exists() and not full.is_dir():
        raise CLIError(f"output folder {full} is an existing file: choose another --output")
    base = next(p for p in (full, *full.parents) if p.exists())  # the root always exists
    if base == full and not os.access(full, os.W_OK | os.X_OK):
        raise CLIError(f"output folder {full} is not writable: choose another --output")
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        why = "a file" if not base.is_dir() else "not writable"
        raise CLIError(f"cannot create the output folder {full}: {base} is {why}; choose "
                       "another --output")  # fmt: skip
    if create:
        full.mkdir(parents=True, exist_ok=True)
    return full


def _slug(name: str) -> str:
    """Return a file name from a column name ("High Yield (HYG)" -> "High_Yield__HYG")."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _config(args: argparse.Namespace, path: str | Path | None = None) -> RunConfig:
    """Return the model file's configuration with the command line's overrides."""
    config = load_config(path if path is not None else args.model)
    return config.override(seed=args.seed, output=args.output, targets=args.target,
                           draws=args.draws, tune=args.tune, chains=args.chains,
                           cores=args.cores)  # fmt: skip


def _load_data(config: RunConfig) -> pd.DataFrame:
    """Load the model file's data, with a line saying what it is (begun before the loading).

    The loading's warnings are printed below that line at once, not with the fits' at the end.
    """
    m = config.model
    states = [*(["intercept"] if m.intercept else []), *m.factors]
    _part(f"tvbeta: {config.name}: {len(m.targets)} series on {', '.join(states)}; ")
    with warnings.catch_warnings(record=True) as caught:  # said now, before any fit
        warnings.simplefilter("always", UserWarning)
        data = config.load_data()
    gaps = []
    for t in m.targets:  # rows before a series' first return or after its last are no gaps
        seen = data.index[data[t].notna()]
        inside = data[t].loc[seen[0]:seen[-1]] if len(seen) else data[t].iloc[:0]
        missing = inside.index[inside.isna()]
        if len(missing):
            gaps.append(f"{t} on {listed([format_label(d) for d in missing], 2)}")
    more = f"; and {len(gaps) - 3} more series with gaps" if len(gaps) > 3 else ""
    _part(f"{len(data)} rows {data.index[0]:%Y-%m-%d} .. {data.index[-1]:%Y-%m-%d}"
          + (f"; returns missing (predicted through): {'; '.join(gaps[:3])}{more}" if gaps
             else ""), last=True)  # fmt: skip
    # the data's warnings (units, dropped rows) above the fits' results, not after them
    _report_warnings(caught)
    if any(issubclass(w.category, ReturnUnitsWarning) for w in caught):
        # every fit checks the units of the same table again: its warning would repeat this
        # one (scoped: `_command` runs inside catch_warnings)
        warnings.filterwarnings("ignore", category=ReturnUnitsWarning)
    return data


# --- run / compare / demo --------------------------------------------------------------------
def _compare_and_save(config: RunConfig, args: argparse.Namespace, *, report: bool) -> int:
    """Compare the model file's methods; tables go to stdout, files to the folder."""
    from tvbeta.evaluate.compare import compare_methods

    folder, written = _output_folder(config.output.folder), None
    info = {"command": args.command, "settings": config.to_dict()}
    with _writing(folder, args.interrupt, info=info) as stage:
        data = _load_data(config)
        s = config.sampler
        _say(f"  methods {', '.join(config.compare.methods)}; test size "
             f"{config.split.test_size}; NUTS {s.chains} chains x ({s.tune} tune + {s.draws} "
             f"draws), seed {s.seed}")  # fmt: skip
        kwargs = config.compare_kwargs()
        with _dask_client(args, config) as client:
            t0 = time.perf_counter()
            progress = _SeriesProgress(kwargs["targets"], config, args.interrupt)
            try:
                comparison = compare_methods(data, **kwargs, progress=progress, executor=client)
            finally:
                progress.close()
        _say(f"  done in {time.perf_counter() - t0:.0f} s")
        _say(f"  writing comparison.json, fits/, {MODEL_COPY} to {folder}")
        comparison.write_files(stage)
        config.save(stage / MODEL_COPY)
        if report:
            _say(f"  writing {REPORT_FILE}")
            try:
                written = _write_report(comparison, stage / REPORT_FILE, stage)
            except Unavailable as err:
                _say(f"tvbeta: note: {err}")
    failed = _failed_bayes_fits(comparison)
    if failed:  # above the tables: the warnings come at the end, read after the numbers
        labels = [f"{series}: {method}" for series, method in failed[0]]
        print(f"note: {len(failed[0])} of {failed[1]} Bayesian fits failed a convergence check "
              f"({listed(labels, 4)}): their rows below rest on too few effective draws or "
              "chains that disagree; the warnings at the end name the parameters (more draws "
              "clear them: the default 4 chains x (1000 + 1000) pass on the built-in data)")
    print(comparison.to_markdown())
    headline = _verdict(comparison, failed)
    if headline is not None:  # the answer the report leads with: `compare` writes no report
        print(f"verdict: {headline}\n")
    print(f"comparison saved in {folder} (comparison.json, fits/, {MODEL_COPY})")
    if written is not None:
        print(f"report: {folder / written.name}")
    return EXIT_OK


def _failed_bayes_fits(comparison: Any) -> tuple[list[tuple[str, str]], int] | None:
    """Return ((series, method) of each Bayes fit failing a check, the fits checked), or None.

    None when every Bayesian fit of the comparison passed `check_convergence` (or none ran).
    """
    from tvbeta.estimate.bayes.diagnostics import check_convergence
    from tvbeta.evaluate.settings import BAYES_VARIANTS

    fits = [((name, method), fit) for name, s in comparison.series.items()
            for method, fit in s.fits.items() if method in BAYES_VARIANTS and fit is not None]
    failed = [key for key, fit in fits if not check_convergence(fit, warn=False).ok]
    return (failed, len(fits)) if failed else None


@contextmanager
def _dask_client(args: argparse.Namespace, config: RunConfig) -> Iterator[Any]:
    """Yield the Dask client the series run on; None when no option says one (run here).

    --scheduler: a running cluster's; --workers N (or [compare] workers): a local cluster of N
    worker processes, started here and closed after the run.
    """
    address = args.scheduler
    workers = config.compare.workers if args.workers is None and address is None \
        else args.workers  # fmt: skip
    if address is None and workers is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        flag = "--scheduler" if address is not None else "--workers"
        raise Unavailable(f"{flag} runs the series on Dask, which is not installed: "
                          "pip install 'tvbeta[dask]'") from err  # fmt: skip
    if address is not None:
        try:
            client = Client(address, timeout=f"{SCHEDULER_TIMEOUT_S}s")
        except (OSError, ValueError) as err:  # unreachable; a malformed address
            raise CLIError(f"--scheduler {address}: cannot connect to a Dask scheduler there "
                           f"within {SCHEDULER_TIMEOUT_S} s ({err}); start one (`dask "
                           "scheduler`) or check the address") from err  # fmt: skip
        with client:
            _say(f"  series on the Dask scheduler at {address}")
            yield client
        return
    _say(f"  starting a local Dask cluster of {workers} worker processes, 1 thread each")
    # one thread a worker: the series are the parallelism (core budget: `compare_methods`);
    # Dask's warnings on Ctrl-C (cancelled tasks, workers killed at close) would bury our line
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:  # fmt: skip
        yield client


def _verdict(comparison: Any,
             failed: tuple[list[tuple[str, str]], int] | None) -> str | None:
    """Return the report's headline (`tvbeta.report.verdict`), None without that module."""
    try:
        from tvbeta.report.verdict import verdict
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("tvbeta.report"):
            raise
        return None
    failed_series = sorted({series for series, _ in failed[0]}) if failed else []
    return verdict(comparison, failed_sampling=failed_series).headline


def _write_report(comparison: Any, path: Path, folder: Path) -> Path:
    """Write the HTML report; the fits not in memory (after `Comparison.load`) come from folder."""
    try:
        from tvbeta.report import write_report
    except ModuleNotFoundError as err:
        if err.name != "tvbeta.report":  # a missing dependency of the report is a real error
            raise
        raise Unavailable(
            "the HTML report is not available in this version of tvbeta "
            "(no tvbeta.report module); the tables above are saved"
        ) from err
    return Path(write_report(comparison, path, folder=folder))


def _run(args: argparse.Namespace, *, report: bool = True) -> int:
    return _compare_and_save(_config(args), args, report=report)


def _demo(args: argparse.Namespace) -> int:
    source = resources.files("tvbeta") / "models" / DEMO_MODEL
    with resources.as_file(source) as path:
        if not path.is_file():
            raise Unavailable(f"the demo model {DEMO_MODEL} is not installed with tvbeta "
                              f"(looked at {path})")  # fmt: skip
        config = _config(args, path)
    if not args.full:
        demo = {k: v for k, v in DEMO_SAMPLER.items() if getattr(args, k, None) is None}
        config = config.override(**demo)
    return _compare_and_save(config, args, report=True)


# --- fit ---------------------------------------------------------------------------------------
def _fit(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.shrinkage is not None:
        from tvbeta.estimate.bayes.model import check_shrinkage

        config = replace(config, model=replace(config.model, shrinkage=args.shrinkage))
        try:
            check_shrinkage(args.shrinkage, config.model.q, dict(config.priors))
        except ValueError as err:
            raise CLIError(f"--shrinkage {args.shrinkage}: {err}") from err
    if args.betas is not None:
        config = replace(config, model=replace(config.model, betas=args.betas))
    if args.noise is not None:
        config = replace(config, model=replace(config.model, noise=args.noise))
    if config.model.betas != "random_walk" and args.method == "grid":
        raise CLIError(f"betas {config.model.betas!r} is fitted by --method mle or bayes (the "
                       "seed's grid has random-walk betas only): use --method mle or bayes, "
                       "or --betas random_walk")  # fmt: skip
    if config.model.noise != "constant" and args.method == "grid":
        raise CLIError(f"noise {config.model.noise!r} is fitted by --method mle or bayes (the "
                       "seed's grid sets R with its own setters): use --method mle or bayes, "
                       "or --noise constant")  # fmt: skip
    _check_prior_method(config, args.method, "--shrinkage none")
    name = f"fit_{args.method}{_menu_suffix(config)}"
    folder = _output_folder(config.output.folder / name)
    info = {"command": f"fit --method {args.method}{_menu_flags(args)}",
            "settings": config.to_dict()}  # fmt: skip
    with _writing(folder, args.interrupt, info=info) as stage:
        data = _load_data(config)
        m = config.model
        burn = m.burn if m.burn is not None else default_burn(len(m.factors) + int(m.intercept))
        _say(f"  {args.method} on the whole sample, burn {burn}")
        rows = {}
        for target in _progress(m.targets, f"fit {args.method}", args.interrupt):
            with named_warnings(target):
                rows[target], files = _FITTERS[args.method](config, data, target, burn, stage)
            _say(f"  {target}: {', '.join(f.name for f in files)}")
    print(_FIT_CAPTIONS[args.method])
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(pd.DataFrame.from_dict(rows, orient="index").rename_axis("target").to_string())
    print(f"fits saved in {folder}")
    return EXIT_OK


def _fit_mle(config: RunConfig, data: pd.DataFrame, target: str, burn: int,
             folder: Path) -> tuple[dict[str, Any], list[Path]]:  # fmt: skip
    from tvbeta.estimate.mle import fit_mle

    fit = fit_mle(data, target, config.model.factors, **_model_keywords(config, "mle", burn))
    base = folder / _slug(target)
    files = [base.with_suffix(".spec.toml"), base.with_suffix(".summary.csv"),
             base.with_suffix(".betas.nc")]  # fmt: skip
    fit.spec.save(files[0])
    with atomic_path(files[1]) as tmp:
        fit.summary().to_csv(tmp)
    with atomic_path(files[2]) as tmp:
        fit.result.to_xarray().to_netcdf(tmp, engine="h5netcdf")
    half = _half_lives(fit.half_life) if config.model.betas == "mean_reverting" else {}
    return {"log-lik": fit.llf, **fit.params.to_dict(), **half}, files


def _half_lives(years: pd.Series) -> dict[str, float]:
    """Return the fit table's half-life columns of mean-reverting betas (years), by state."""
    return {f"half-life[{state}] (years)": float(v) for state, v in years.items()}


def _fit_bayes(config: RunConfig, data: pd.DataFrame, target: str, burn: int,
               folder: Path) -> tuple[dict[str, Any], list[Path]]:  # fmt: skip
    from tvbeta.estimate.bayes.fit import fit_bayes

    s = config.sampler
    fit = fit_bayes(data, target, config.model.factors, settings=s.nuts, seed=s.seed,
                    **_model_keywords(config, "bayes", burn))  # fmt: skip
    path = fit.save(folder / f"{_slug(target)}.nc")
    medians = fit.qr_summary()["posterior median"].to_dict()  # the MLE's names and units
    # the horseshoe is asked for to tell which betas move: its answer, P(static), per state
    static = ({f"P(static)[{state}]": p for state, p in fit.static_probability().items()}
              if config.model.shrinkage == "horseshoe" else {})  # fmt: skip
    half = (_half_lives(fit.half_life()["median"])
            if config.model.betas == "mean_reverting" else {})  # fmt: skip
    return {"sampler": fit.settings["sampler"], **medians, **static, **half,
            "seconds": round(fit.settings["wall_time_total"], 1)}, [path]  # fmt: skip


def _fit_grid(config: RunConfig, data: pd.DataFrame, target: str, burn: int,
              folder: Path) -> tuple[dict[str, Any], list[Path]]:  # fmt: skip
    from tvbeta.estimate.grid import best_spec, run_kalman_grid_search
    from tvbeta.model import KalmanSpec

    m = config.model
    base = KalmanSpec(K=len(m.factors))
    base = base.set_intercept() if m.intercept else base
    grid = run_kalman_grid_search(data, target, m.factors, base, burn=burn,
                                  try_both_intercepts=config.grid.try_both_intercepts,
                                  rank_by=config.grid.fit_rank)  # fmt: skip
    files = [folder / f"{_slug(target)}.grid.csv", folder / f"{_slug(target)}.best.toml"]
    with atomic_path(files[0]) as tmp:
        grid.assign(Error=grid["Error"].astype(str)).to_csv(tmp, index=False)
    best_spec(grid).save(files[1])
    top = grid.iloc[0]
    return {"best": top["Model Name"], "Mean RMSE": top["Mean RMSE"],
            "log-lik": top["Cumulative Log-Likelihood"]}, files  # fmt: skip


def _model_keywords(config: RunConfig, method: str, burn: int | None) -> dict[str, Any]:
    """Return the model file's model as keywords of `fit_mle` ("mle") or `fit_bayes` ("bayes").

    ``burn``: the observed steps left out of the likelihood (None: the fit's default).
    """
    m = config.model
    keywords = dict(intercept=m.intercept, q=m.q, burn=burn, noise=m.noise, betas=m.betas,
                    frequency=config.data.model_frequency)  # fmt: skip
    if method == "bayes":
        keywords.update(priors=dict(config.priors) or None, shrinkage=m.shrinkage)
    return keywords


def _check_prior_method(config: RunConfig, method: str, undo: str) -> None:
    """Refuse a shrinkage prior with a method that has no prior; ``undo``: how to drop it."""
    shrinkage = config.model.shrinkage
    if shrinkage != "none" and method != "bayes":
        raise CLIError(f"shrinkage {shrinkage!r} is a prior of the Bayes model; --method "
                       f"{method} has no prior (the plain MLE is its plug-in peer): use "
                       f"--method bayes, or {undo}")  # fmt: skip


def _menu_suffix(config: RunConfig) -> str:
    """Return the folder name's suffix of a model-menu variant ("" for the plain model).

    Another model of the same method writes to another folder: a run replaces the files of
    the previous run in its folder (`run_folder`), and a plain fit must not remove a
    mean-reverting one.
    """
    m = config.model
    parts = [m.noise if m.noise != "constant" else "", m.betas if m.betas != "random_walk" else "",
             m.shrinkage if m.shrinkage != "none" else ""]  # fmt: skip
    return "".join(f"_{part}" for part in parts if part)


def _menu_flags(args: argparse.Namespace) -> str:
    """Return the command line's model-menu options as typed (for the manifest's command)."""
    return "".join(f" --{name} {getattr(args, name)}" for name in ("noise", "betas", "shrinkage")
                   if getattr(args, name, None) is not None)  # fmt: skip


_FITTERS = {"mle": _fit_mle, "bayes": _fit_bayes, "grid": _fit_grid}
_FIT_CAPTIONS = {
    "mle": "Maximum-likelihood estimates (Q per period, R, and gamma or phi[state] when the "
           "model has them) and the log-likelihood at the maximum; standard errors: "
           "<target>.summary.csv",
    "bayes": "Posterior medians (Q per period, R, and gamma or phi[state] when the model has "
             "them), no interval; means, sds and 90% intervals: "
             "BayesFit.load('<target>.nc').summary()",
    "grid": "The best grid model per target (by [grid] fit_rank), its mean RMSE and cumulative "
            "log-likelihood; the whole grid: <target>.grid.csv",
}
"""The line above `tvbeta fit`'s table: what its numbers are (a median is not a mean)."""


# --- funds -------------------------------------------------------------------------------------
FUNDS_STORE = "funds.zarr"
"""The store `tvbeta funds` fits into, beside the run's files: kept across runs (not in the
manifest), so a stopped run resumes and a finished one only redraws its tables and page."""
FUNDS_METHODS: tuple[str, ...] = ("mle", "bayes")


def _funds(args: argparse.Namespace) -> int:
    """`tvbeta.funds.fit_funds` of the model file's targets; tables, CSVs and the funds page."""
    from tvbeta.funds import (
        SUMMARY_VARIABLES,
        fit_funds,
        forecast_quality,
        stored_funds,
        style_drift,
    )
    from tvbeta.report.funds import write_funds_report

    config = _config(args)
    m, s = config.model, config.sampler
    _check_prior_method(config, args.method, 'shrinkage = "none" in [model]')
    model = _model_keywords(config, args.method, m.burn)
    if args.method == "bayes":
        model.update(seed=s.seed, settings=s.nuts)
    folder = _output_folder(config.output.folder / f"funds_{args.method}{_menu_suffix(config)}")
    info = {"command": f"funds --method {args.method}", "settings": config.to_dict()}
    with _writing(folder, args.interrupt, info=info) as stage:
        data = _load_data(config)
        _say(f"  {args.method} of the {len(m.targets)} target(s) on the whole sample, into "
             f"{folder / FUNDS_STORE} "
             "(a stopped run resumes there)")  # fmt: skip
        held = len(stored_funds(folder / FUNDS_STORE) & {str(t) for t in m.targets})
        if held:
            _say(f"  {held} of {len(m.targets)} funds already in the store: fitting the other "
                 f"{len(m.targets) - held} (the stored funds' warnings were shown when they were "
                 "fitted)")  # fmt: skip
        with _dask_client(args, config) as client:
            try:
                funds = fit_funds(data, m.targets, m.factors, method=args.method,
                                  executor=client, store=folder / FUNDS_STORE,
                                  progress=sys.stderr.isatty(), **model).load()  # fmt: skip
            except ValueError as err:  # a store of another run (named by what differs), a
                # fund's own data (named by its note): the user's to fix
                raise CLIError("; ".join([str(err), *getattr(err, "__notes__", [])])) from err
        drift = style_drift(funds, config.data.model_frequency)
        forecast = forecast_quality(funds)
        for name, frame in (("style_drift.csv", drift), ("forecast.csv", forecast)):
            with atomic_path(stage / name) as tmp:
                frame.to_csv(tmp)
        with atomic_path(stage / "funds.nc") as tmp:
            funds[[v for v in SUMMARY_VARIABLES if v in funds]].to_netcdf(tmp, engine="h5netcdf")
        write_funds_report(funds, stage / "funds.html", title=f"tvbeta: {config.name}, "
                           f"{len(m.targets)} funds, {args.method}")  # fmt: skip
        config.save(stage / MODEL_COPY)
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print("One-year drift sd of each factor beta (most drifting first):")
        print(drift.round(3).to_string())
        print("One-step forecast on the fitted span (in-sample for Q and R), best R² first:")
        print(forecast.round(4).to_string())
    print(f"funds saved in {folder} (funds.nc, style_drift.csv, forecast.csv, funds.html, "
          f"{MODEL_COPY}; the store {FUNDS_STORE})")  # fmt: skip
    return EXIT_OK


# --- report ------------------------------------------------------------------------------------
def _report(args: argparse.Namespace) -> int:
    from tvbeta.evaluate.comparison import Comparison

    folder = Path(args.folder).expanduser().resolve()
    if not folder.is_dir():
        raise CLIError(f"output folder not found: {folder}; give the one run/compare wrote")
    if not (folder / "comparison.json").is_file():
        raise CLIError(f"{folder} holds no saved comparison (comparison.json): run `tvbeta "
                       "compare MODEL.toml` first, or give the folder it wrote")  # fmt: skip
    comparison = Comparison.load(folder)  # IncompleteRunError: an interrupted or failed run
    if args.output:
        target = Path(args.output).expanduser().resolve()
        _output_folder(target.parent, create=True)
        print(f"report: {_write_report(comparison, target, folder)}")
        return EXIT_OK
    with _writing(folder, args.interrupt, update=True) as stage:  # the manifest lists it
        _write_report(comparison, stage / REPORT_FILE, folder)
    print(f"report: {folder / REPORT_FILE}")
    return EXIT_OK


# --- parser ------------------------------------------------------------------------------------
def _model_arguments(p: argparse.ArgumentParser, *, output: str | None = None) -> None:
    """Arguments of the commands that run a model file; the demo's (output given) is built in."""
    if output is None:
        p.add_argument("model", metavar="MODEL.toml", help="model file (see models/)")
    where = output or "[output] folder of the model file"
    p.add_argument("--output", metavar="FOLDER", default=output,
                   help=f"results folder (default: {where})")  # fmt: skip
    p.add_argument("--seed", type=_at_least(0), help="random seed (default: [sampler] seed)")
    p.add_argument("--target", action="append", metavar="COLUMN",
                   help="run only this target (repeat for several; default: all)")  # fmt: skip
    for name in ("draws", "tune", "chains", "cores"):
        p.add_argument(f"--{name}", type=_at_least(1), metavar="N",
                       help=f"NUTS {name} (default: [sampler] {name})")  # fmt: skip


def _dask_arguments(p: argparse.ArgumentParser) -> None:
    """--workers / --scheduler of the commands that compare: where the series run."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_at_least(1), metavar="N", help=(
        "run the series on a local Dask cluster of N worker processes (1 thread each), "
        "started for this run (default: [compare] workers, else one series after another "
        "here); needs pip install 'tvbeta[dask]'"))  # fmt: skip
    where.add_argument("--scheduler", metavar="ADDRESS", help=(
        "run the series on the running Dask cluster whose scheduler is at ADDRESS (e.g. "
        "tcp://10.0.0.5:8786)"))  # fmt: skip


def _at_least(low: int) -> Any:
    """Return an argparse type: an integer >= low, with a message saying so otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Build the `tvbeta` argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="tvbeta", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a crash, or where Ctrl-C stopped")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo_text = (f"`run` on the built-in French industry data ({DEMO_MODEL}, shipped with "
                 f"tvbeta) with small NUTS settings ({DEMO_SAMPLER['chains']} chains x "
                 f"({DEMO_SAMPLER['tune']} tune + {DEMO_SAMPLER['draws']} draws)) so that it "
                 "ends in about two minutes on 2 cores")  # fmt: skip
    commands = {  # name: (function, description, output default of a built-in model)
        "run": (_run, "compare every method out of sample, save the fits, write the report", None),
        "compare": (partial(_run, report=False), "the comparison and saved fits, no report", None),
        "fit": (_fit, "fit one method on the whole sample of each target and save it", None),
        "funds": (_funds, "fit every target as one of many funds (fit_funds): a Dataset along "
                  "fund in a resumable store, style drift and forecast rankings, one page "
                  "(funds.html)", None),
        "demo": (_demo, demo_text, "output/demo"),
    }  # fmt: skip
    for name, (func, text, output) in commands.items():
        p = sub.add_parser(name, help=text.split(" (")[0], description=text)
        _model_arguments(p, output=output)
        if name != "fit":
            _dask_arguments(p)
        p.set_defaults(func=func)
    sub.choices["fit"].add_argument("--method", required=True, choices=FIT_METHODS, help=(
        "mle: joint maximum likelihood; bayes: NUTS posterior; grid: the seed's grid search, best "
        "by [grid] rank"))  # fmt: skip
    sub.choices["funds"].add_argument("--method", required=True, choices=FUNDS_METHODS, help=(
        "mle: each fund's joint maximum likelihood; bayes: each fund's NUTS posterior (seed + "
        "its position among the targets)"))  # fmt: skip
    sub.choices["fit"].add_argument("--shrinkage", choices=SHRINKAGES, help=(
        "prior of the drift sds of --method bayes: none, or horseshoe (finds which betas are "
        "static; q = \"diag\") (default: [model] shrinkage)"))  # fmt: skip
    sub.choices["fit"].add_argument("--noise", choices=NOISES, help=(
        "the observation noise of --method mle or bayes: constant R, or volatility (R_t = "
        "sigma_eps^2 h_t^gamma on a variance index known at t-1) (default: [model] noise)"))
    sub.choices["fit"].add_argument("--betas", choices=BETAS, help=(
        "how the betas of --method mle or bayes move: random_walk, or mean_reverting (towards "
        "long-run means, persistence phi per state) (default: [model] betas)"))  # fmt: skip
    sub.choices["demo"].add_argument("--full", action="store_true",
                                     help="the model file's sampler settings (4 x 1000 draws)")
    text = "rebuild the HTML report of a saved comparison"
    report = sub.add_parser("report", help=text, description=text)
    report.add_argument("folder", metavar="OUTPUT_FOLDER", help="folder written by run/compare")
    report.add_argument("--output", metavar="FILE",
                        help=f"HTML file (default: OUTPUT_FOLDER/{REPORT_FILE})")  # fmt: skip
    report.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tvbeta` command; returns the exit code."""
    debug = False
    with terminating_as_interrupts() as term:
        try:
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as exit_:  # --help (0) or a usage error (2, printed by argparse)
                return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
            debug = args.debug
            return _command(args)
        except KeyboardInterrupt as err:  # Ctrl-C (or kill) at any stage: one line, 130 (143)
            if debug:
                traceback.print_exc()  # where it was interrupted
            what = "terminated" if term.received else "interrupted"
            _say(f"tvbeta: {what}; {err}" if str(err) else f"tvbeta: {what}")
            return EXIT_TERMINATED if term.received else EXIT_INTERRUPTED


def _command(args: argparse.Namespace) -> int:
    """`_dispatch` with the warnings summarised after it and every Ctrl-C noted."""
    with warnings.catch_warnings(record=True) as caught, noting_interrupts() as interrupt:
        # Every occurrence, not once per source line, so the summary can count them.
        warnings.simplefilter("always", UserWarning)
        args.interrupt = interrupt
        try:
            code = _dispatch(args)
        except KeyboardInterrupt:
            raise  # the warnings are about work that was thrown away
        except BaseException:
            _report_warnings(caught)
            raise
        _report_warnings(caught)
        return code


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; map the errors a user can fix to exit code 2, others to 1."""
    try:
        return args.func(args)
    except (CLIError, ConfigError, FileNotFoundError, DataValidationError, SpecError,
            SavedFileError, IncompleteRunError) as err:  # fmt: skip
        return _fail(err, EXIT_USAGE)  # a data, spec or saved-file error is the user's to fix
    except Unavailable as err:
        return _fail(err, EXIT_UNEXPECTED)
    except Exception as err:
        if args.debug:
            raise
        _say(f"tvbeta: unexpected error: {type(err).__name__}: {_message(err)}\n(run `tvbeta "
             "--debug ...` for the traceback)")  # fmt: skip
        return EXIT_UNEXPECTED


def _report_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print each kind of warning once, with its count and the details of its first occurrence."""
    first_seen: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for w in caught:
        head, *detail = str(w.message).strip().splitlines() or [w.category.__name__]
        first_seen.setdefault(head, detail)
        counts[head] = counts.get(head, 0) + 1
    for head, detail in first_seen.items():
        times = f" ({counts[head]} times; the first:)" if counts[head] > 1 else ""
        _say("\n".join([f"tvbeta: warning{times}: {head}", *(f"  {x}" for x in detail)]))


def _fail(err: Exception, code: int) -> int:
    _say(f"tvbeta: error: {_message(err)}")
    return code


def _message(err: BaseException) -> str:
    """Return the error's message with its notes (e.g. the series a comparison failed on)."""
    return " ".join([str(err), *getattr(err, "__notes__", ())])


if __name__ == "__main__":
    sys.exit(main())
