"""The seed's grid search over setters of Q, R and the initial state, and better rankings.

Fast (the seed took ~7 s for its 18 combinations; this ~50 ms): setters run as a tree,
init -> Q -> R, each once per distinct input spec; the costly default setters (MLE, rolling
rules) run on arrays validated once per intercept; each combination is scored by one filter
pass (no smoother, no KalmanResult).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import pandas as pd

from tvbeta.data.validate import Design, column_list
from tvbeta.diagnostics import MODEL_DIAGNOSTIC_COLUMNS, summarize_model_diagnostics
from tvbeta.kalman.arrays import burn_row
from tvbeta.kalman.filter import filter_state_space
from tvbeta.model import KalmanSpec, SpecError, TimeVarying, design_for, setters

RankBy = Literal["mean_rmse", "loglik", "oos_log_score"]
Setter = Callable[..., KalmanSpec]

DEFAULT_Q_SETTERS: dict[str, Setter] = {
    "const": setters.set_Q_from_mle,
    "resid_var": setters.set_Q_from_rolling_residual_vol,
    "beta_var": setters.set_Q_from_rolling_beta_var,
}
DEFAULT_R_SETTERS: dict[str, Setter] = {
    "ols": setters.set_R_from_ols,
    "rolling_vol": setters.set_R_from_rolling_factor_vols,
    "mle": setters.set_R_from_mle,
}
DEFAULT_INIT_SETTERS: dict[str, Setter] = {"ols": setters.set_initial_state_from_ols}

#: Arguments a setter may take by name; the grid passes each one its parameters ask for
#: (``burn`` only to a setter that requires it: see :func:`bind_setter`).
SETTER_ARGUMENTS: tuple[str, ...] = ("df", "target_col", "factor_cols", "H", "y", "burn")
MODE_COLUMNS: tuple[str, ...] = ("Q Mode", "R Mode", "Init Mode", "Intercept")
OOS_COLUMNS: tuple[str, ...] = ("OOS Log Score", "OOS RMSE")
ERROR_COLUMN = "Error"
DEFAULT_TEST_FRACTION = 0.2
_SORT: dict[str, tuple[str, bool]] = {  # rank_by -> (column, ascending)
    "mean_rmse": ("Mean RMSE", True),
    "loglik": ("Cumulative Log-Likelihood", False),
    "oos_log_score": ("OOS Log Score", False),
}


class SpecTable(Mapping[str, KalmanSpec]):
    """Read-only map model name -> :class:`KalmanSpec` of a grid (``grid.attrs["specs"]``).

    A spec is named when first looked up (naming validates a whole spec, and most are never
    looked at). Copies share the immutable specs: pandas deep-copies ``attrs`` often.
    """

    def __init__(self, specs: Mapping[str, KalmanSpec]) -> None:
        self._specs = dict(specs)
        self._named: dict[str, KalmanSpec] = {}

    def __getitem__(self, name: str) -> KalmanSpec:
        """Return the spec of model ``name``, named on first look-up (KeyError if unknown)."""
        if name not in self._named:
            self._named[name] = self._specs[name].with_name(name)
        return self._named[name]

    def __iter__(self) -> Iterator[str]:
        """Iterate over the model names in the grid's order."""
        return iter(self._specs)

    def __len__(self) -> int:
        """Return the number of specs."""
        return len(self._specs)

    def __copy__(self) -> SpecTable:
        """Return self: the table is read-only and its specs immutable."""
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SpecTable:
        """Return self, so pandas' deep copies of ``attrs`` stay cheap."""
        return self

    def __repr__(self) -> str:
        """Return ``SpecTable([names])``."""
        return f"SpecTable({list(self._specs)})"


@dataclass(frozen=True)
class BoundSetter:
    """A setter and the grid arguments it takes by name (see :func:`bind_setter`).

    ``fast`` names a default setter whose Design-level half (:data:`_FAST`) runs instead.
    """

    fn: Setter
    names: tuple[str, ...]
    fast: str | None = None

    def __call__(self, spec: KalmanSpec, context: Mapping[str, Any]) -> KalmanSpec:
        """Apply the setter to ``spec`` with its arguments taken from ``context`` by name.

        Raises
        ------
        TypeError
            When the setter returns anything but a `KalmanSpec`.
        """
        if self.fast is not None:  # the fit rows' design, or the error it raised
            if isinstance(context["design"], Exception):
                raise context["design"]
            return _FAST[self.fast](spec, context["design"], **_defaults(self.fast))
        out = self.fn(spec, **{name: context[name] for name in self.names})
        if not isinstance(out, KalmanSpec):
            raise TypeError(f"the setter {self.fn!r} returned {type(out).__name__}, not a spec")
        return out


def bind_setter(fn: Setter, key: str = "") -> BoundSetter:
    """Check a setter's signature and record which grid arguments it receives.

    The first parameter receives the spec; every other parameter named ``df``, ``target_col``,
    ``factor_cols``, ``H`` or ``y`` receives the grid's value. ``burn`` goes only to a ``burn``
    parameter WITHOUT a default: a setter keeps its own default burn, as in the seed's grid
    (MLE and residual-variance setters with burn = 0; the grid's burn applies to the scored run
    only). A ``**kwargs`` parameter receives all of :data:`SETTER_ARGUMENTS`. Any other
    parameter must have a default (bind values with ``functools.partial``).

    Raises
    ------
    TypeError
        A parameter the grid cannot supply.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"setter {key!r}: cannot read the signature of {fn!r}") from exc
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        raise TypeError(f"setter {key!r} must take the spec as its first positional argument")
    names: list[str] = []
    for p in params[1:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            names += [n for n in SETTER_ARGUMENTS if n not in names]
        elif p.name in SETTER_ARGUMENTS and p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            if p.name != "burn" or p.default is inspect.Parameter.empty:
                names.append(p.name)
        elif p.default is inspect.Parameter.empty and p.kind in (
            *positional,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            raise TypeError(
                f"setter {key!r} needs the argument {p.name!r}, which the grid cannot supply: "
                f"it passes {', '.join(SETTER_ARGUMENTS)} by name; give {p.name!r} a default "
                "or bind it with functools.partial"
            )
    fast = next((name for name in _FAST if fn in _public(name)), None)
    return BoundSetter(fn, tuple(dict.fromkeys(names)), fast)


@dataclass(frozen=True)
class _Task:
    """Everything one intercept group needs (picklable when the setters are)."""

    df: pd.DataFrame
    target_col: Hashable
    factor_cols: list[Hashable]
    burn: int
    n_train: int | None
    q: dict[str, BoundSetter]
    r: dict[str, BoundSetter]
    init: dict[str, BoundSetter]


def run_kalman_grid_search(
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Sequence[Hashable] | str,
    base_spec: KalmanSpec,
    q_setters: Mapping[str, Setter] | None = None,
    r_setters: Mapping[str, Setter] | None = None,
    init_setters: Mapping[str, Setter] | None = None,
    burn: int = 0,
    try_both_intercepts: bool = True,
    *,
    rank_by: RankBy = "mean_rmse",
    test_size: int | float | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Try every intercept x Q x R x init setter combination and rank them (the seed's grid).

    Parameters
    ----------
    df : pd.DataFrame, (n_time, ...)
        Target and factor returns, one row per step (not modified).
    target_col : hashable
        The fund's return column.
    factor_cols : sequence of hashable, (n_factors,)
        Factor return columns, in state order.
    base_spec : KalmanSpec
        The spec every combination starts from; its K must be ``len(factor_cols)`` (plus one
        with an intercept). "Intercept=Yes" uses it with an intercept (``set_intercept()`` if
        needed), "Intercept=No" without (dropping its first state).
    q_setters, r_setters, init_setters : mapping name -> setter, optional
        Defaults: Q {"const": MLE scalar q, "resid_var": rolling residual variance,
        "beta_var": rolling OLS beta variance}; R {"ols": full-sample OLS residual variance,
        "rolling_vol": rolling factor volatility, "mle": MLE scalar r}; init {"ols"}, with
        their own default windows. A setter is any callable taking the spec first and other
        arguments by name from ``df, target_col, factor_cols, H, y, burn`` (H =
        ``df[factor_cols]``, y = ``df[target_col]``): ``KalmanSpec.set_R_from_ols``,
        ``lambda spec, H, y: ...``, ``functools.partial(set_Q_from_rolling_beta_var,
        window=12)``. Which setter gets the grid's ``burn``: :func:`bind_setter`.
    burn : int, default 0
        Observed steps left out of every statistic of the scored run (counted from the first
        observed target: leading rows with a missing target are not part of the model).
    try_both_intercepts : bool, default True
        Try with and without an intercept; False keeps ``base_spec``'s choice. With no
        factor columns (the local level model) only the intercept is tried: without it the
        model has no state.
    rank_by : {"mean_rmse", "loglik", "oos_log_score"}, default "mean_rmse"
        Row order: the seed's Mean RMSE (to 6 decimals) ascending; "Cumulative
        Log-Likelihood" descending; or "OOS Log Score" descending (see ``test_size``). Ties
        keep the grid order; failed combinations come last.
    test_size : int or float, optional
        Hold out the last rows: an int is a number of rows, a float in (0, 1) a fraction
        (rounded up). Default: none, except 20% for ``rank_by="oos_log_score"``. Setters then
        get only the training rows (as ``df``, ``H``, ``y``; a closure over the full frame
        would see the test rows); per-time Q_t, R_t carry the last training value over the test
        rows (:func:`extend_spec`); the diagnostics describe the training rows after burn, "OOS
        Log Score" (mean log p(y_t | y_{<t}) over observed test rows, nats) and "OOS RMSE" the
        test rows.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Runs the two intercept groups concurrently (a process pool needs picklable setters;
        a Dask client runs them through ``client.get_executor()``). Default: in this process.

    Returns
    -------
    pd.DataFrame, (n_combinations, ...)
        Columns :data:`~tvbeta.evaluate.MODEL_DIAGNOSTIC_COLUMNS`, then "Q Mode", "R Mode",
        "Init Mode", "Intercept" (bool), the OOS columns with a hold-out, and "Error" (None,
        or the exception of a combination that raised; its numbers are NaN). Model names are
        "Intercept=Yes, Q=const, R=ols, Init=ols"; a mode is the spec's provenance (e.g.
        "rolling_beta_var_window_20"), or the setter's name when the setter left it unset.
        ``attrs["specs"]`` maps each model name to its :class:`KalmanSpec` (the best:
        :func:`best_spec`); ``attrs`` also holds "rank_by", "burn" and "n_train".

    Raises
    ------
    SpecError
        ``base_spec`` does not fit the factor columns.
    DataValidationError
        The data are unusable with ``base_spec`` (checked before any setter runs; an
        intercept variant that alone fails gives Error rows instead).
    TypeError
        ``executor`` is neither an Executor, a Dask client nor None.
    """
    factors = column_list(factor_cols)
    if rank_by not in _SORT:
        raise ValueError(f"rank_by must be one of {list(_SORT)}, got {rank_by!r}")
    executor = as_executor(executor)
    design = design_for(base_spec, df, target_col, factors, burn)  # bad data or K: raise
    n_train = _train_rows(len(df), test_size, rank_by)
    return search_design(
        design, df, base_spec, burn=burn, try_both_intercepts=try_both_intercepts,
        rank_by=rank_by, n_train=n_train, executor=executor,
        setters=_bind_setters(q_setters, r_setters, init_setters),
    )  # fmt: skip


def search_design(
    design: Design,
    df: pd.DataFrame,
    base_spec: KalmanSpec,
    *,
    burn: int,
    try_both_intercepts: bool = True,
    rank_by: RankBy = "mean_rmse",
    n_train: int | None = None,
    setters: tuple[dict[str, BoundSetter], ...] | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """`run_kalman_grid_search` on ``design``, that of ``df`` for ``base_spec`` with ``burn``.

    ``df`` (its first ``n_train`` rows with a hold-out) is what the setters see; ``setters``
    the bound Q, R and init setters (`_bind_setters`, default the grid's).
    """
    q, r, init = setters or _bind_setters(None, None, None)
    task = _Task(df=df, target_col=design.target_col, factor_cols=list(design.factor_cols),
                 burn=burn, n_train=n_train, q=q, r=r, init=init)  # fmt: skip
    # the training rows must carry the base model on their own; another intercept choice
    # that cannot gives Error rows
    fit = design if n_train is None else design.head(n_train, burn)
    both = try_both_intercepts and design.factor_cols
    variants = [True, False] if both else [base_spec.intercept]
    bases = [_with_intercept(base_spec, flag) for flag in variants]
    designs = [_variant_designs(design, fit, flag, n_train is None, burn) for flag in variants]
    if executor is None:
        groups = [run_group(task, spec, d) for spec, d in zip(bases, designs, strict=True)]
    else:
        groups = list(executor.map(run_group, [task] * len(bases), bases, designs))
    rows = [row for group in groups for row, _ in group]
    specs = {row["Model Name"]: spec for group in groups for row, spec in group if spec}
    columns = [*MODEL_DIAGNOSTIC_COLUMNS, *MODE_COLUMNS]
    columns += [*OOS_COLUMNS] if n_train is not None else []
    table = pd.DataFrame(rows, columns=[*columns, ERROR_COLUMN])
    key, ascending = _SORT[rank_by]
    table = table.sort_values(key, ascending=ascending, kind="stable", na_position="last")
    table = table.reset_index(drop=True)
    table.attrs.update(specs=SpecTable(specs), rank_by=rank_by, burn=burn, n_train=n_train)
    return table


def as_executor(executor: Any, argument: str = "executor") -> Executor | None:
    """Return the ``concurrent.futures.Executor`` to run work on.

    None (run here) and an Executor as given, a Dask distributed ``Client`` as its
    ``get_executor()``. Every function taking an executor reads it through this.

    Raises
    ------
    TypeError
        Anything else (naming what was given and what is accepted).
    """
    if executor is None or isinstance(executor, Executor):
        return executor
    get_executor = getattr(executor, "get_executor", None)
    if callable(get_executor):
        pool = get_executor()
        if isinstance(pool, Executor):
            return pool
    raise TypeError(
        f"{argument} must be a concurrent.futures.Executor (e.g. ThreadPoolExecutor), a Dask "
        f"distributed Client (its get_executor() is used) or None, got {type(executor).__name__}"
    )


def best_spec(grid: pd.DataFrame, row: int = 0) -> KalmanSpec:
    """Return the spec of a grid row (by default the first, the best), ready to re-run.

    Parameters
    ----------
    grid : pd.DataFrame
        The output of `run_kalman_grid_search`, whose ``attrs["specs"]`` holds the specs.
    row : int, default 0
        Position of the row (rows are ranked, best first).

    Returns
    -------
    KalmanSpec
        The spec of that row's model, named after it.

    Raises
    ------
    ValueError
        The row is a failed combination, or the table has no ``attrs["specs"]``.
    """
    specs = grid.attrs.get("specs")
    if specs is None:
        raise ValueError("this table has no attrs['specs']: use run_kalman_grid_search's output")
    name = grid.iloc[row]["Model Name"]
    if name not in specs:
        error = grid.iloc[row].get(ERROR_COLUMN)
        raise ValueError(f"row {row} ({name!r}) has no spec: that combination failed: {error}")
    return specs[name]


def _variant_designs(
    design: Design, fit: Design, intercept: bool, all_rows: bool, burn: int
) -> tuple[Design | Exception, Design | Exception]:
    """Return the (all rows, fit rows) designs of one intercept choice, or their errors.

    All rows are checked without the burn (they are not fitted), the fit rows with it.
    """
    full = _attempt(design.with_intercept, intercept)
    return full, full if all_rows else _attempt(fit.with_intercept, intercept, burn)


def run_group(
    task: _Task, base: KalmanSpec, designs: tuple[Any, Any]
) -> list[tuple[dict[str, Any], KalmanSpec | None]]:
    """All combinations of one intercept choice: rows in name order, with their specs.

    Setters run as a tree (init -> Q -> R), each once per input; a failure fails only the
    combinations below it. ``designs``: the (all rows, fit rows) designs of ``base``, or errors.
    """
    df_fit = task.df if task.n_train is None else task.df.iloc[: task.n_train]
    context = {
        "df": df_fit,
        "target_col": task.target_col,
        "factor_cols": task.factor_cols,
        "H": df_fit[task.factor_cols],
        "y": df_fit[task.target_col],
        "burn": task.burn,
    }
    label = "Yes" if base.intercept else "No"
    design, fit = designs
    context["design"] = fit
    out: dict[tuple[str, str, str], tuple[dict[str, Any], KalmanSpec | None]] = {}
    for i_name, init in task.init.items():
        s1 = _attempt(init, base, context)
        for q_name, q in task.q.items():
            s2 = _attempt(q, s1, context) if isinstance(s1, KalmanSpec) else s1
            for r_name, r in task.r.items():
                s3 = _attempt(r, s2, context) if isinstance(s2, KalmanSpec) else s2
                name = f"Intercept={label}, Q={q_name}, R={r_name}, Init={i_name}"
                keys = {"Q Mode": q_name, "R Mode": r_name, "Init Mode": i_name}
                out[q_name, r_name, i_name] = _score(task, name, keys, base.intercept, s3, design)
    return [out[q, r, i] for q in task.q for r in task.r for i in task.init]


def _score(
    task: _Task,
    name: str,
    keys: dict[str, str],
    intercept: bool,
    spec: KalmanSpec | Exception,
    design: Any,
) -> tuple[dict[str, Any], KalmanSpec | None]:
    """One row: diagnostics of one filter pass (training rows), OOS scores, modes."""
    base_row = {"Model Name": name, "Target": task.target_col, "Intercept": intercept}
    failed = spec if isinstance(spec, Exception) else design
    try:
        if isinstance(failed, Exception):
            raise failed
        n = len(design.y)  # (the spec is named when looked up, see SpecTable)
        if task.n_train is not None:
            spec = extend_spec(spec, n, task.n_train)
        f = filter_state_space(spec.state_space(design.y, design.Z))
    except Exception as exc:  # the seed: a failing combination is a row
        return {**base_row, ERROR_COLUMN: f"{type(exc).__name__}: {exc}"}, None
    end = n if task.n_train is None else task.n_train
    rows = slice(burn_row(design.y, task.burn), end)
    # The summary drops the intercept from the gains and betas; dropping it here and labelling
    # the factor columns by position gives the same numbers without the cost of pandas'
    # string-label lookups, the largest part of the grid's time otherwise.
    factors = slice(int(intercept), None)
    labels = pd.RangeIndex(design.Z.shape[1] - int(intercept))
    view = {  # the seed's result keys, after burn, training rows
        "residuals": pd.Series(f.v[rows], index=design.index[rows], copy=False),
        "kalman_gain": pd.DataFrame(f.K[rows, factors], columns=labels, copy=False),
        "beta": pd.DataFrame(f.a_filt[rows, factors], columns=labels, copy=False),
        "log_likelihood": float(np.sum(f.loglik_t[rows])),
        "meta": {"Model Name": name, "Target Column": task.target_col},
    }
    summary = summarize_model_diagnostics(view)  # one row; read it without pandas' to_dict
    row = dict(zip(summary.columns, summary.to_numpy(dtype=object)[0], strict=True))
    row.update(base_row)
    row["Q Mode"] = spec.q_mode if spec.q_mode is not None else keys["Q Mode"]
    row["R Mode"] = spec.r_mode if spec.r_mode is not None else keys["R Mode"]
    row["Init Mode"] = spec.init_mode if spec.init_mode is not None else keys["Init Mode"]
    if task.n_train is not None:
        test = ~np.isnan(f.v[end:])  # missing test targets have no predictive density
        if test.any():
            row["OOS Log Score"] = float(np.mean(f.loglik_t[end:][test]))
            row["OOS RMSE"] = float(np.sqrt(np.mean(f.v[end:][test] ** 2)))
    row[ERROR_COLUMN] = None
    return row, spec


def extend_spec(spec: KalmanSpec, n: int, n_fit: int | None = None) -> KalmanSpec:
    """Extend per-time T, Q, R set on the first rows to ``n`` rows: the last value carries on.

    The hold-out rule (no look-ahead). Constant matrices, and per-time ones already ``n`` long,
    are unchanged; ``n_fit=None`` accepts per-time matrices of any length up to ``n``.

    Raises
    ------
    SpecError
        A per-time matrix longer than ``n``, or (with ``n_fit``) not ``n_fit`` long.
    """
    fields = {}
    for field in ("T", "Q", "R"):
        m: TimeVarying = getattr(spec, field)
        if not m.per_time or m.n_time == n:
            continue
        if m.n_time > n or (n_fit is not None and m.n_time != n_fit):
            raise SpecError(
                f"{field} has {m.n_time} steps, but the setters saw {n_fit or 'at most'} "
                f"training rows (of {n}): a setter must build per-time values from the df "
                "it is given"
            )
        tail = np.repeat(m.values[-1:], n - m.n_time, axis=0)
        fields[field] = TimeVarying.per_step(np.concatenate([m.values, tail]))
    return dataclasses.replace(spec, **fields) if fields else spec


def _attempt(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or the exception it raised (kept for the rows below it in the tree)."""
    try:
        return fn(*args)
    except Exception as exc:  # reported in the rows, as the seed did
        return exc


def _bind_setters(
    q: Mapping[str, Setter] | None, r: Mapping[str, Setter] | None,
    init: Mapping[str, Setter] | None,
) -> tuple[dict[str, BoundSetter], ...]:
    """Bind the Q, R and init setters given, None for the grid's defaults of that kind."""
    return (_bind_all(q, DEFAULT_Q_SETTERS, "Q"), _bind_all(r, DEFAULT_R_SETTERS, "R"),
            _bind_all(init, DEFAULT_INIT_SETTERS, "init"))  # fmt: skip


def _bind_all(
    given: Mapping[str, Setter] | None, default: dict[str, Setter], what: str
) -> dict[str, BoundSetter]:
    chosen = default if given is None else given
    if not chosen:
        raise ValueError(f"no {what} setters: pass at least one, or None for the defaults")
    return {str(k): bind_setter(fn, f"{what}:{k}") for k, fn in chosen.items()}


def _with_intercept(spec: KalmanSpec, intercept: bool) -> KalmanSpec:
    """``spec`` with or without an intercept (adding one, or dropping the first state)."""
    if intercept == spec.intercept:
        return spec
    if intercept:
        return spec.set_intercept()

    def drop(m: TimeVarying) -> TimeVarying:
        return TimeVarying(m.values[..., 1:, 1:], per_time=m.per_time)

    return dataclasses.replace(
        spec,
        K=spec.K - 1,
        intercept=False,
        beta0=spec.beta0[1:],
        P0=spec.P0[1:, 1:],
        T=drop(spec.T),
        Q=drop(spec.Q),
    )


def _train_rows(n: int, test_size: int | float | None, rank_by: str) -> int | None:
    """Return the number of training rows, or None for no hold-out."""
    if test_size is None:
        if rank_by != "oos_log_score":
            return None
        test_size = DEFAULT_TEST_FRACTION
    if isinstance(test_size, bool) or not isinstance(test_size, Real):
        raise TypeError(f"test_size must be an int or a float, got {test_size!r}")
    if isinstance(test_size, Integral):
        n_test = int(test_size)
    elif 0.0 < test_size < 1.0:
        n_test = math.ceil(float(test_size) * n)
    else:
        raise ValueError(f"a fractional test_size must be in (0, 1), got {test_size!r}")
    if not 1 <= n_test < n:
        raise ValueError(f"test_size={test_size!r} leaves no training or no test rows (n={n})")
    return n - n_test


# --- default setters on the design validated once (the public ones validate df at each call;
# tests/estimate/test_grid.py checks that the specs are equal) ----------------------------------


def _public(name: str) -> tuple[Setter, ...]:
    """Return the setter function and the KalmanSpec method of this name."""
    return (getattr(setters, name), getattr(KalmanSpec, name))


@functools.cache
def _defaults(name: str) -> dict[str, Any]:
    """Return the default arguments of a public setter (windows, floors, scales, burn)."""
    params = inspect.signature(getattr(setters, name)).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


_FAST: dict[str, Callable[..., KalmanSpec]] = {
    "set_Q_from_rolling_beta_var": setters.rolling_beta_var_Q,
    "set_Q_from_rolling_residual_vol": setters.rolling_residual_var_Q,
    "set_Q_from_mle": functools.partial(setters.scalar_mle, which="q"),
    "set_R_from_mle": functools.partial(setters.scalar_mle, which="r"),
}
