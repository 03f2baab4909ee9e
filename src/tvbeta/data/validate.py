"""Validate a fund/factor table and turn it into the arrays the Kalman filter consumes.

The observation equation is ``y_t = Z_t beta_t + eps_t`` with ``Z_t = H_t`` (factor returns) or
``Z_t = [1, H_t]`` when the model has an intercept (the seed's ``set_intercept``: the intercept is
the FIRST state). :func:`prepare_design` checks everything the filter silently assumes and fails
with a message that names the column or row and says what to do; it never modifies its input.

Missing target values (NaN in ``y``) are allowed: the filter predicts and skips the update on
those steps (Durbin & Koopman 2012, section 4.10).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from tvbeta._warn import warn_caller

INTERCEPT_NAME = "Intercept"
MAX_CONDITION = 100.0
"""Condition number of the observed design (columns scaled to unit length) above which the
betas are warned to be poorly identified: Belsley, Kuh & Welsch (1980, chapter 3) read
condition indexes of 30-100 as moderate-to-strong near dependence and above 100 as strong."""
SCALE_RANGE = (1e-6, 1e6)
"""Standard deviations of a used column outside this range draw a `DataWarning`: the spec's
defaults (P0 = 100 per beta, 1e6 for the intercept), the seed setters' floors (1e-8, 1e-6) and
the MLE bounds are absolute numbers chosen for decimal returns (a weekly sd of about 0.02)."""


class DataValidationError(ValueError):
    """Data the model cannot use; the message names the column or row and the remedy."""


class DataWarning(UserWarning):
    """Usable data whose betas may not mean much (near collinearity, extreme scale); says why."""


def column_list(columns: Sequence[Hashable] | Hashable, argument: str = "factor_cols") -> list:
    """Return the column names of ``columns`` as a list (a single name as a one-element list).

    Every function that takes column names reads them through this.

    Parameters
    ----------
    columns : sequence of hashable, or hashable
        The column names, or one column name.
    argument : str
        The caller's argument name, for the error message.

    Returns
    -------
    list
        The names, in the order given.

    Raises
    ------
    TypeError
        A set (or other unordered collection): the order of the columns is the order of the
        states, so it must be given.
    """
    if isinstance(columns, str) or not isinstance(columns, Iterable):
        return [columns]
    if isinstance(columns, set | frozenset | dict):
        raise TypeError(
            f"{argument} is a {type(columns).__name__}, whose order is arbitrary: pass a list, "
            f"e.g. {sorted(map(str, columns))!r} (its order is the order of the states)"
        )
    return list(columns)


class Design(NamedTuple):
    """The arrays of one regression, time first.

    Attributes
    ----------
    index : pd.Index, (n_time,)
        Time labels, as given (usually a sorted, unique ``DatetimeIndex``).
    y : np.ndarray, (n_time,), float64
        Target (fund) returns; NaN where the target is missing.
    H : np.ndarray, (n_time, n_factors), float64
        Factor returns exactly as given; may hold NaN only on rows where ``y`` is NaN.
        ``n_factors`` is 0 for the intercept-only (local level) model.
    Z : np.ndarray, (n_time, k), float64
        Observation rows ``[1, H_t]`` (intercept) or ``H_t``; always finite. On rows where
        ``y`` is NaN, NaN factor values are replaced by 0.0 (see :func:`prepare_design`).
    state_names : tuple of str, (k,)
        ``("Intercept", *factors)`` with an intercept, else the factor names.
    target_col : hashable
        The target's column in the caller's table.
    factor_cols : tuple of hashable, (n_factors,)
        The factors' columns in the caller's table, in state order.
    """

    index: pd.Index
    y: np.ndarray
    H: np.ndarray
    Z: np.ndarray
    state_names: tuple[str, ...]
    target_col: Hashable
    factor_cols: tuple[Hashable, ...]

    @property
    def has_intercept(self) -> bool:
        """Whether the first state is an intercept (a column of ones in ``Z``)."""
        return self.Z.shape[1] > self.H.shape[1]

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Names of the columns of ``H``, shape (n_factors,)."""
        return self.state_names[int(self.has_intercept) :]

    @property
    def observed(self) -> np.ndarray:
        """Rows whose target is observed, (n_time,) bool."""
        return ~np.isnan(self.y)

    def head(self, n: int, burn: int = 0) -> Design:
        """Return ``prepare_design(df.iloc[:n], ..., burn=burn)``: views of the first ``n`` rows.

        Raises
        ------
        DataValidationError
            The first ``n`` rows cannot carry the model on their own.
        """
        design = self._replace(index=self.index[:n], y=self.y[:n], H=self.H[:n], Z=self.Z[:n])
        _check_rows(design, burn)
        return design

    def with_intercept(self, intercept: bool, burn: int = 0) -> Design:
        """Return this design with or without the intercept state, checked as `head` is.

        Raises
        ------
        DataValidationError
            As `prepare_design` with that ``intercept`` (no state, a factor named like the
            intercept, too few rows, collinear columns).
        """
        if intercept == self.has_intercept:
            return self
        if not intercept and not self.factor_cols:
            raise DataValidationError("without the intercept this design has no state")
        _check_states(self.factor_cols, intercept)
        names = tuple(str(c) for c in self.factor_cols)
        Z = self.Z[:, 1:]
        if intercept:
            Z, names = np.column_stack([np.ones(len(self.y)), self.Z]), (INTERCEPT_NAME, *names)
        design = self._replace(Z=Z, state_names=names)
        _check_rows(design, burn)
        return design


def format_label(label: Hashable) -> str:
    """Format an index label for an error message (dates as YYYY-MM-DD when at midnight)."""
    if isinstance(label, pd.Timestamp) and label == label.normalize():
        return label.strftime("%Y-%m-%d")
    return str(label)


def format_span(index: pd.Index) -> str:
    """"first .. last" label of an index (`format_label`), or "no rows", for short reprs."""
    return f"{format_label(index[0])} .. {format_label(index[-1])}" if len(index) else "no rows"


def listed(texts: Sequence[str], limit: int) -> str:
    """Join ``texts`` with ", " for a message; past ``limit`` of them, count the rest.

    ``listed(["a", "b", "c"], 2)`` is "a, b and 1 more".
    """
    more = f" and {len(texts) - limit} more" if len(texts) > limit else ""
    return ", ".join(texts[:limit]) + more


def repeated(names: Iterable[Hashable]) -> list[str]:
    """Return the names listed more than once (as text, sorted), for "list each once" errors."""
    names = list(names)
    return sorted({str(n) for n in names if names.count(n) > 1})


def closest(name: str, valid: Iterable[str]) -> str:
    """Return a " did you mean ...?" hint for ``name`` among ``valid`` ("" if none is close).

    For every message about an unknown name, since a typo is the usual cause: the closest by
    difflib's ratio, ignoring case; else the longest name that the other begins with (an
    abbreviation: "Momentum" for "Mom").
    """
    lowered = {str(v).lower(): v for v in valid}
    key = str(name).lower()
    match = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    if not match:
        match = sorted((v for v in lowered if len(v) > 1 and len(key) > 1
                        and (key.startswith(v) or v.startswith(key))), key=len)[-1:]  # fmt: skip
    return f" did you mean {lowered[match[0]]!r}?" if match else ""


def median_spacing_days(index: pd.DatetimeIndex) -> float:
    """Return the median spacing of sorted dates in days (inf for fewer than two dates).

    The one reading of a series' period: the frequency of the priors (`periods_per_year`),
    the size decimal returns can have (`warn_if_not_decimal`), the calendar checks of
    `load_fund_and_factors`.
    """
    if len(index) < 2:
        return np.inf
    return float(np.median(np.diff(index.values)) / np.timedelta64(1, "D"))


def prepare_design(
    df: pd.DataFrame,
    target_col: Hashable,
    factor_cols: Sequence[Hashable] | str,
    *,
    intercept: bool,
    burn: int = 0,
) -> Design:
    """Check a table of returns and build the filter's arrays ``y``, ``H`` and ``Z``.

    Parameters
    ----------
    df : pd.DataFrame, (n_time, ...)
        One row per time step: the target column and the factor columns, numeric returns in
        consistent units (e.g. decimal weekly returns). Any index is accepted if it is unique
        and sorted ascending; a ``DatetimeIndex`` is usual. Not modified.
    target_col : hashable
        Column of the fund's returns ``y_t``. NaN entries are missing observations.
    factor_cols : sequence of hashable, (n_factors,)
        Factor return columns, in state order (a single name means one column). May be empty
        with ``intercept=True``: the local level model, ``Z = ones (n_time, 1)`` (Durbin &
        Koopman 2012, chapter 2).
    intercept : bool
        Prepend a column of ones to ``Z`` (state "Intercept", first).
    burn : int, default 0
        Number of initial observed steps the caller will discard (a burn counts observed
        targets, not rows); at least ``k + 1`` observed targets must remain after them.

    Returns
    -------
    Design
        With ``k = n_factors + intercept``; all arrays are new float64 copies.

    Raises
    ------
    DataValidationError
        No factor and no intercept (no state); unknown, duplicated or non-numeric columns;
        +-inf values; a duplicated, unsorted or NaT index, or an index of date strings; a NaN
        factor on a row where the target is observed; too few observed rows; a constant
        factor; perfectly collinear factors (over the rows with an observed target).

    Warns
    -----
    DataWarning
        Nearly collinear columns (condition number above `MAX_CONDITION`), or a column whose
        standard deviation lies outside `SCALE_RANGE`.

    Notes
    -----
    On rows where the target is NaN a NaN factor value is harmless to the model (the update is
    skipped, so that row of ``Z`` never touches the state) but not to the arithmetic: kernels
    that mask by multiplication or compute the gain before checking the mask would turn
    ``0 * NaN`` into NaN states. ``Z`` therefore holds 0.0 there, so kernels may assume a finite
    ``Z``; ``H`` keeps the NaN so that reports (contributions ``beta * H``) stay honest.
    """
    return next(prepare_designs(df, [target_col], factor_cols, intercept=intercept, burn=burn))


def prepare_designs(
    df: pd.DataFrame,
    target_cols: Sequence[Hashable],
    factor_cols: Sequence[Hashable] | str,
    *,
    intercept: bool,
    burn: int = 0,
) -> Iterator[Design]:
    """Yield `prepare_design` of each target in turn, the factors and the index checked once.

    For many funds on the same factors: the checks and arrays that do not depend on the
    target (the factors' types and values, the index) are made at the first target, and each
    target then costs its own column and its rows' checks (~1 ms instead of ~2.5 ms for 4
    factors and 520 rows).

    Parameters
    ----------
    df, factor_cols, intercept, burn : as in `prepare_design`.
    target_cols : sequence of hashable
        The targets, one design each.

    Yields
    ------
    Design
        Each target's design, in order, with its own copies of the arrays: the same numbers
        as `prepare_design`.

    Raises
    ------
    DataValidationError
        As `prepare_design`, when the design of the target concerned is asked for (a problem
        of the factors or the index: at the first target).

    Warns
    -----
    DataWarning
        As `prepare_design`, for each target.
    """
    shared = None
    for target_col in target_cols:
        factors = check_names(df, target_col, factor_cols, intercept)
        _check_numeric(df, [target_col])
        if shared is None:
            _check_numeric(df, factors)
            _check_index(df.index)
        # to_numpy copies into fresh float64 arrays: the caller's frame is never written to.
        y = df[target_col].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        _check_finite(df.index, [target_col], y[:, None])
        if shared is None:
            H = df[factors].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            _check_finite(df.index, factors, H)
            shared = H, np.where(np.isnan(H), 0.0, H), tuple(str(c) for c in factors)
        H, Z, names = shared
        _check_factor_nans(df.index, target_col, factors, ~np.isnan(y), H)
        design = Design(index=df.index.copy(), y=y, H=H.copy(), Z=Z.copy(), state_names=names,
                        target_col=target_col, factor_cols=tuple(factors))  # fmt: skip
        if intercept:
            yield design.with_intercept(True, burn)
            continue
        _check_rows(design, burn)
        yield design


def _check_rows(design: Design, burn: int) -> None:
    """Run the checks of `prepare_design` that depend on the rows and states used."""
    observed, Z_obs = design.observed, design.Z[design.observed]
    _check_enough_rows(observed, design.Z.shape[1], burn, len(design.y))
    _check_constant(design.H[observed], design.factor_names, design.has_intercept)
    _warn_mostly_constant(design.H[observed], design.factor_names)
    _check_collinear(Z_obs, design.state_names)
    _warn_scale([design.target_col, *design.factor_cols],
                np.column_stack([design.y, design.H])[observed])  # fmt: skip
    _warn_near_collinear(Z_obs, design.state_names)


def check_names(df: pd.DataFrame, target_col: Hashable, factor_cols: Sequence[Hashable] | str,
                 intercept: bool) -> list[Hashable]:  # fmt: skip
    """Return the factor list after checking that every name exists exactly once.

    Raises
    ------
    TypeError
        ``df`` is not a DataFrame.
    DataValidationError
        A column missing (the message lists those available), the target among the factors, a
        factor twice, or no state at all.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    factors = column_list(factor_cols)
    if not factors and not intercept:
        raise DataValidationError(
            "factor_cols is empty and intercept=False, so the model has no state: name at "
            f"least one factor column (available: {list(df.columns)}), or set intercept=True for a "
            "local level model (the intercept alone, Z = ones)"
        )
    if target_col not in df.columns:
        raise DataValidationError(
            f"target column {target_col!r} is not in the DataFrame (available: {list(df.columns)})"
        )
    missing = [c for c in factors if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"factor column(s) {missing} not in the DataFrame (available: {list(df.columns)})"
        )
    if target_col in factors:
        raise DataValidationError(
            f"target column {target_col!r} is also listed among the factors: "
            "remove it from factor_cols (a fund cannot explain itself)"
        )
    twice = repeated(factors)
    if twice:
        raise DataValidationError(f"factor_cols lists {twice} more than once: list each once")
    dup_in_df = [] if df.columns.is_unique else [
        c for c in [target_col, *factors] if (df.columns == c).sum() > 1]
    if dup_in_df:
        raise DataValidationError(
            f"column(s) {dup_in_df} appear more than once in the DataFrame: rename or drop one"
        )
    _check_states(factors, intercept)
    return factors


def _check_states(factors: Sequence[Hashable], intercept: bool) -> None:
    """Refuse a factor named like the intercept state when the model has one."""
    if intercept and INTERCEPT_NAME in [str(c) for c in factors]:
        raise DataValidationError(
            f"a factor is named {INTERCEPT_NAME!r}, the name of the intercept state: rename it, "
            "or drop it and keep intercept=True"
        )


def _check_numeric(df: pd.DataFrame, cols: list[Hashable]) -> None:
    """Raise on the first column that is not numeric (strings, dates, objects)."""
    for col in cols:
        dtype = df[col].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
            raise DataValidationError(
                f"column {col!r} is not numeric (dtype {dtype}): convert it, e.g. "
                f"pd.to_numeric(df[{col!r}], errors='coerce'), and check the values that fail"
            )


def _check_index(index: pd.Index) -> None:
    """Require a unique, ascending index without NaT (one row per time step, in time order)."""
    _check_date_strings(index)
    if isinstance(index, pd.DatetimeIndex) and index.hasnans:
        row = int(np.flatnonzero(index.isna())[0])
        raise DataValidationError(f"the index has no date (NaT) at row {row}: fix or drop that row")
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise DataValidationError(
            f"index label {format_label(first)} appears more than once "
            f"({int(index.duplicated().sum())} duplicated rows): each time step needs one row; "
            "drop duplicates (df[~df.index.duplicated()]) or aggregate them "
            "(e.g. df.groupby(level=0).sum(), or aggregate_weekly_data for daily returns)"
        )
    if not index.is_monotonic_increasing:
        try:
            bad = int(np.flatnonzero(np.asarray(index[1:] < index[:-1]))[0]) + 1
        except TypeError as err:
            raise DataValidationError("the index labels cannot be ordered: use dates") from err
        text = (" (the labels are text, and df.sort_index() would order them as text: use "
                "dates, pd.to_datetime, or integer positions)" if index.inferred_type == "string"
                else "")  # fmt: skip
        raise DataValidationError(
            f"the index is not sorted: {format_label(index[bad])} (row {bad}) comes after "
            f"{format_label(index[bad - 1])}; sort it first with df.sort_index(){text}"
        )


def _check_date_strings(index: pd.Index) -> None:
    """Refuse dates written as text, with the conversion to make.

    Neither the order check nor ``df.sort_index()`` would put them in time order, and the
    calendar (periods per year) cannot be read from text.
    """
    if index.inferred_type != "string" or len(index) == 0:
        return
    with warnings.catch_warnings():  # pandas warns when it has to guess a format
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(index, errors="coerce", format="mixed")
    if parsed.isna().any():
        return  # labels, not dates
    first = str(index[0])  # text sorts as text, and may read day-first or month-first
    try:
        pd.to_datetime(index, format="ISO8601")
    except ValueError:
        raise DataValidationError(
            f"the index holds dates as text (e.g. {first!r}), which sort as text, not in "
            "time order, and may read day-first or month-first: convert it first with "
            "df.index = pd.to_datetime(df.index, format='%m/%d/%Y') (or '%d/%m/%Y', whichever "
            "the source uses), then df = df.sort_index()"
        ) from None
    raise DataValidationError(
        f"the index holds dates as text (e.g. {first!r}): convert it first with "
        "df.index = pd.to_datetime(df.index, format='ISO8601') (then df = df.sort_index() "
        "if needed), so that the rows are ordered and counted in time"
    )


def _check_finite(index: pd.Index, cols: list[Hashable], values: np.ndarray) -> None:
    """Raise on the first +-inf (NaN is handled separately), naming column and date."""
    for j, col in enumerate(cols):
        bad = np.flatnonzero(np.isinf(values[:, j]))
        if bad.size:
            raise DataValidationError(
                f"column {col!r} is infinite on {format_label(index[bad[0]])} "
                f"({bad.size} infinite values): returns must be finite; fix the source or "
                "replace them with NaN"
            )


def _check_factor_nans(index: pd.Index, target_col: Hashable, factors: list[Hashable],
                       observed: np.ndarray, H: np.ndarray) -> None:  # fmt: skip
    """Check that a row with an observed target has every factor (Z_t beta_t needs them)."""
    bad = np.isnan(H) & observed[:, None]
    if bad.any():
        row, col = np.argwhere(bad)[0]
        n_rows = int(bad.any(axis=1).sum())
        raise DataValidationError(
            f"factor column {factors[col]!r} is NaN on {format_label(index[row])} where the "
            f"target {target_col!r} is observed ({n_rows} such rows): drop those rows "
            f"(df.dropna(subset=[...factor columns...])) or fill the factor values"
        )


def _check_enough_rows(observed: np.ndarray, k: int, burn: int, n_time: int) -> None:
    """Check for k observations to identify k states, plus one, after the burn (observed steps)."""
    if isinstance(burn, bool) or not isinstance(burn, int | np.integer) or burn < 0:
        raise DataValidationError(f"burn must be a non-negative integer, got {burn!r}")
    n_after = max(int(observed.sum()) - int(burn), 0)
    if n_after < k + 1:
        raise DataValidationError(
            f"too few rows with an observed target: {n_after} after the first burn={burn} "
            f"observed ones ({int(observed.sum())} of {n_time} rows in total), but k + 1 = "
            f"{k + 1} are needed for k = {k} states; use more data, fewer factors or a "
            "shorter burn"
        )


def _check_constant(H_obs: np.ndarray, names: tuple[str, ...], intercept: bool) -> None:
    """Refuse a constant factor: an intercept in disguise, its beta is no factor exposure."""
    for j, name in enumerate(names):
        if np.ptp(H_obs[:, j]) == 0.0:
            why = ("it is collinear with the intercept: drop it" if intercept
                   else "it only rescales an intercept: drop it and use intercept=True instead")
            value = float(H_obs[0, j])
            raise DataValidationError(
                f"factor column {name!r} is constant ({value:.6g}) on the rows with an observed "
                f"target; {why}"
            )


MOSTLY_CONSTANT = 0.9
"""The share of observed rows on which a factor may hold one value before a `DataWarning`
says its beta is fitted to the few rows where it moves (a weekly risk-free rate at 0 in a
low-rate era, a dummy)."""


#: Factor names read as a risk-free rate (case and separators ignored): Ken French's "RF".
RISK_FREE_NAMES = frozenset({"rf", "riskfree", "riskfreerate", "tbill", "tbill3m"})


def _warn_mostly_constant(H_obs: np.ndarray, names: tuple[str, ...]) -> None:
    """Warn about factors that are a risk-free rate by name or nearly constant in value.

    A name in `RISK_FREE_NAMES`, or one value on more than `MOSTLY_CONSTANT` of the rows.
    """
    for j, name in enumerate(names):
        values, counts = np.unique(H_obs[:, j], return_counts=True)
        share, moving = counts.max() / len(H_obs), len(H_obs) - counts.max()
        if "".join(c for c in str(name).lower() if c.isalnum()) in RISK_FREE_NAMES:
            warn_caller(
                f"factor column {name!r} reads as a risk-free rate: a rate is not a factor "
                "return (its beta follows the rate's slow steps, not a risk the fund takes); "
                "subtract it from the fund's returns (excess returns, as Ken French's MktRF "
                "are) and leave it out of the factors", DataWarning)  # fmt: skip
        elif share > MOSTLY_CONSTANT:
            warn_caller(
                f"factor column {name!r} is {values[counts.argmax()]:.6g} on {counts.max()} of "
                f"the {len(H_obs)} rows with an observed target: its beta is fitted to the "
                f"{moving} row(s) where it moves and means little; if it is a risk-free rate "
                "(Ken French's RF), subtract it from the returns instead of using it as a "
                "factor, else leave it out of the factors",
                DataWarning)  # fmt: skip


def _check_collinear(Z_obs: np.ndarray, names: tuple[str, ...]) -> None:
    """Raise if the observed design is rank deficient, naming a minimal dependent set."""
    dependent = _minimal_dependent_set(Z_obs)
    if dependent is None:
        return
    *support, last = dependent
    relation = "0"
    if support:  # coefficients in the caller's units, so the relation can be checked by eye
        coef = np.linalg.lstsq(Z_obs[:, support], Z_obs[:, last], rcond=None)[0]
        relation = " + ".join(f"{c:.6g} * {names[i]}" for c, i in zip(coef, support, strict=True))
    involved = [names[i] for i in dependent]
    raise DataValidationError(
        f"columns {involved} are perfectly collinear on the rows with an observed target "
        f"({names[last]} = {relation}), so their betas are not separately identified: "
        "drop one of them or combine them into one factor"
    )


def _warn_scale(cols: list[Hashable], values: np.ndarray) -> None:
    """Warn once per call about the columns whose sd (observed rows) is outside SCALE_RANGE."""
    sd = np.nanstd(values, axis=0)
    low, high = SCALE_RANGE
    bad = [f"{col!r} (sd {s:.3g})" for col, s in zip(cols, sd, strict=True)
           if not low <= s <= high]  # fmt: skip
    if bad:
        warn_caller(
            f"column(s) {', '.join(bad)} are far from the scale tvbeta's defaults assume "
            f"(standard deviations between {low:g} and {high:g}; decimal returns, 0.01 = 1%, "
            "have about 0.01-0.05): the default initial covariance P0 = 100 and the setters' "
            "variance floors and bounds are absolute, so the filter's betas and likelihood "
            "may mean little; rescale the column (e.g. divide by a power of 10) or use returns "
            "instead of levels",
            DataWarning,
        )


def _warn_near_collinear(Z_obs: np.ndarray, names: tuple[str, ...]) -> None:
    """Warn when the observed design is nearly rank deficient, naming the columns involved.

    The condition number is that of ``Z`` with unit-length columns (Belsley, Kuh & Welsch
    1980), so it does not depend on units; the columns named are those with weight in the
    right singular vector of the smallest singular value (the near-dependence itself).
    """
    if Z_obs.shape[1] < 2:
        return
    Zn = Z_obs / np.linalg.norm(Z_obs, axis=0)
    _, s, vt = np.linalg.svd(Zn, full_matrices=False)
    condition = float(s[0] / s[-1])
    if condition <= MAX_CONDITION:
        return
    weight = np.abs(vt[-1])
    involved = [names[j] for j in np.flatnonzero(weight >= 0.2 * weight.max())]
    warn_caller(
        f"columns {involved} are nearly collinear on the rows with an observed target "
        f"(condition number {condition:.3g} of the design with unit-length columns, above "
        f"{MAX_CONDITION:g}): their separate betas are poorly identified (their combination "
        "is); drop one of them or combine them into one factor, or, if one is far from zero "
        "relative to its spread (e.g. a price level, collinear with the intercept), use its "
        "changes or returns",
        DataWarning,
    )


def _minimal_dependent_set(Z: np.ndarray) -> list[int] | None:
    """Column indices of a minimal linearly dependent set of ``Z`` (n, k), or None if full rank.

    Columns are scaled to unit norm first so the rank tolerance does not depend on units (a
    column of ones next to returns of size 0.02). Greedily keeping independent columns, the
    first dependent column has a unique expansion on the kept ones; its support plus that
    column is a circuit, i.e. a minimal dependent set.
    """
    norms = np.linalg.norm(Z, axis=0)
    Zn = Z / np.where(norms > 0.0, norms, 1.0)
    if np.linalg.matrix_rank(Zn) == Z.shape[1]:
        return None
    kept: list[int] = []
    for j in range(Z.shape[1]):
        if np.linalg.matrix_rank(Zn[:, [*kept, j]]) == len(kept) + 1:
            kept.append(j)
            continue
        if not kept:
            return [j]
        coef = np.linalg.lstsq(Zn[:, kept], Zn[:, j], rcond=None)[0]
        big = np.abs(coef) > 1e-8 * max(1.0, float(np.abs(coef).max()))
        return [*(kept[i] for i in np.flatnonzero(big)), j]
    return None  # pragma: no cover - matrix_rank said deficient, so some column is dependent


class ReturnUnitsWarning(UserWarning):
    """The data vary far more than decimal returns can: percent or basis points, most likely."""


#: Largest plausible sd of decimal returns over one year: an annualised volatility of 200%.
#: Over a period of d days the bound is 2 sqrt(d / 365.25) (0.105 daily, 0.28 weekly, 0.58
#: monthly); percent returns are 100 times larger, basis points 10,000 times.
_DECIMAL_SD_PER_YEAR = 2.0


def _robust_sd(x: np.ndarray) -> float:
    """1.4826 x the median absolute deviation (the sd for normal data), NaN skipped."""
    x = x[~np.isnan(x)]
    return 1.4826 * float(np.median(np.abs(x - np.median(x)))) if x.size else 0.0


def _period_days(index: pd.Index) -> float:
    """Return the median spacing in days of a DatetimeIndex of 2+ rows, else 0 (no dates)."""
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        return median_spacing_days(index)
    return 0.0


#: Smallest plausible annualised volatility (robust sd) of a series read as percent: the
#: hundredth of a decimal file's (an equity fund's 15% reads 0.15%) is far below it, a bond
#: fund's 3-8% far above; cash (T-bills, ~0.3%) is below it too, hence a warning only.
_PERCENT_MIN_SD_PER_YEAR = 0.01


def warn_if_percent_looks_decimal(frame: pd.DataFrame, file: object, key: str) -> None:
    """Warn when series divided by 100 (``key`` = "percent") vary too little for returns.

    ``frame``: the file's columns after the division, on a DatetimeIndex (a year is assumed
    without one); ``file`` and ``key`` (the argument, e.g. "units") name them in the message.

    Warns
    -----
    ReturnUnitsWarning
        Naming each column whose annualised robust sd is below `_PERCENT_MIN_SD_PER_YEAR`.
    """
    days = _period_days(frame.index)
    per_year = np.sqrt(365.25 / days) if days > 0 else 1.0
    small = [(c, _robust_sd(frame[c].to_numpy(dtype=float)) * per_year) for c in frame.columns]
    small = [(c, v) for c, v in small if v < _PERCENT_MIN_SD_PER_YEAR]
    if small:
        named = ", ".join(f"{c!r} ({v:.2%})" for c, v in small)
        warn_caller(
            f"{file}: read as percent ({key} = 'percent', divided by 100), {named} "
            f"{'varies' if len(small) == 1 else 'vary'} by less than an annualised "
            f"{_PERCENT_MIN_SD_PER_YEAR:.0%} (robust sd): the hundredth of what returns vary; "
            f"the file may hold decimal returns already (0.01 = 1%): set {key} to 'decimal' "
            "(the argument, or a model file's [data] key), unless the series is cash-like",
            ReturnUnitsWarning,
        )


def warn_if_not_decimal(design: Design) -> None:
    """Warn when the target or a factor varies far more than decimal returns can.

    The period is the median spacing of a DatetimeIndex; without one a year is assumed (the
    most lenient bound). The robust sd (median absolute deviation) keeps a single crash day
    from tripping it.

    Parameters
    ----------
    design : Design
        The validated design (`prepare_design`); its y and factor columns are checked.

    Warns
    -----
    ReturnUnitsWarning
        Naming each series whose robust sd exceeds the bound, and the bound.
    """
    days = _period_days(design.index)
    period = f"a period of {days:g} day(s) (the median spacing of the dates)"
    if not days > 0:
        days, period = 365.25, "yearly rows (the index has no dates; the most lenient case)"
    limit = _DECIMAL_SD_PER_YEAR * np.sqrt(days / 365.25)
    names = [f"the target {design.target_col!r}", *design.factor_names]
    series = [(n, x) for n, x in zip(names, [design.y, *design.H.T], strict=True)
              if _robust_sd(x) > limit]  # fmt: skip
    if series:
        big = ", ".join(f"{n} ({_robust_sd(x):.3g})" for n, x in series)
        # a series never below 0 that varies this much is a price or an index level, which
        # dividing by 100 would not mend
        levels = [n for n, x in series if np.nanmin(x) > 0]
        like = (f" {', '.join(levels)}: never below 0, as prices and index levels are; "
                "turn those into returns (p_t / p_(t-1) - 1)." if levels else "")
        mixed = (" The other series look like decimal returns: the table mixes units (e.g. a "
                 "percent fund beside decimal factors)." if len(series) < len(names) else "")
        warn_caller(
            f"the data do not look like decimal returns: the typical size (robust sd) of "
            f"{big} is above {limit:.3g}, the most a decimal return varies over {period} at an "
            f"annualised volatility of 200%.{like} Returns this size look like percent (divide "
            f"by 100) or basis points (divide by 10,000).{mixed} tvbeta's defaults (the seed's "
            "MLE bounds q in [1e-8, 10], r in [1e-6, 100], the Bayesian priors' scales) assume "
            "decimal returns; the data are used as given.",
            ReturnUnitsWarning,
        )
