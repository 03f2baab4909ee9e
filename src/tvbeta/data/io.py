"""Read the seed's CSV files and rebuild its weekly data set.

The seed notebook's pipeline, reproduced by :func:`load_seed_weekly`::

    returns = read_csv("bond_factor_returns.csv").loc["2016-01-01":"2023-01-01"]
    levels = read_csv("daily-treasury-rates.csv").sort_index()
    changes = levels.diff().drop(columns=["2 Mo", "4 Mo"]) -> "<tenor>_delta" -> dropna()
    weekly = aggregate_weekly_data(returns.merge(changes, how="left"), changes.columns)

Units: ETF returns are decimal daily simple returns; Treasury par yields are in percent, so
their changes are in percentage points (0.01 = one basis point).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tvbeta._warn import warn_caller
from tvbeta.data.validate import (
    DataValidationError,
    DataWarning,
    format_label,
    format_span,
    listed,
    median_spacing_days,
    prepare_design,
    warn_if_not_decimal,
    warn_if_percent_looks_decimal,
)
from tvbeta.data.weekly import aggregate_weekly_data

SHARED_DATA_ENV = "TVBETA_SHARED_DATA"
SEED_RETURNS_FILE = "bond_factor_returns.csv"
SEED_YIELDS_FILE = "daily-treasury-rates.csv"
# src/tvbeta/data/io.py -> parents[3] is the repository root (only meaningful in a checkout).
_REPO_ROOT = Path(__file__).resolve().parents[3]


def read_returns_csv(path: str | os.PathLike[str], *,
                     date_format: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Read daily returns: first column dates, other columns decimal returns.

    Parameters
    ----------
    path : str or path-like
        CSV with a header row; first column dates, then one column per asset of simple
        returns in decimal units (0.01 = 1%). Empty cells become NaN.
    date_format : str, optional
        How the dates are written (`DATE_FORMATS_DOC`); default ISO 8601, YYYY-MM-DD.

    Returns
    -------
    pd.DataFrame, (n_days, n_assets)
        float64 columns on a sorted ``DatetimeIndex`` named "Date".

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message gives the full path).
    DataValidationError
        If a date cannot be parsed (the row is named) or a column is not numeric (the column,
        date and value are named).
    ValueError
        ``date_format`` is not a format (`check_date_format`).
    """
    return _read_dated_csv(path, "returns CSV", date_format=date_format)


def read_treasury_yields_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a US Treasury daily par yield curve CSV (as downloaded from treasury.gov).

    Parameters
    ----------
    path : str or path-like
        CSV with header ``Date,1 Mo,2 Mo,...,30 Yr``; dates as M/D/YYYY, newest first; blank
        cells where a tenor was not published.

    Returns
    -------
    pd.DataFrame, (n_days, n_tenors)
        Par yields in percent (4.35 = 4.35%), float64, NaN for blanks, on a ``DatetimeIndex``
        named "Date" sorted ascending (oldest first).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataValidationError
        If a date is not M/D/YYYY (the row is named) or a tenor is not numeric.
    """
    return _read_dated_csv(path, "Treasury yields CSV", date_format="%m/%d/%Y", argument=None)


def yield_changes(
    levels: pd.DataFrame,
    drop: Iterable[Hashable] = ("2 Mo", "4 Mo"),
    suffix: str = "_delta",
) -> pd.DataFrame:
    """Daily changes of yields as the seed computes them: ``diff``, ``drop``, rename, ``dropna``.

    Any day on which some kept tenor has no change is removed. The default ``drop`` removes
    the 2- and 4-month tenors, which start in 2018 and 2022 and would empty the early history.

    Parameters
    ----------
    levels : pd.DataFrame, (n_days, n_tenors)
        Yields (percent) sorted ascending by date, e.g. from :func:`read_treasury_yields_csv`.
        Not modified.
    drop : iterable of hashable, default ("2 Mo", "4 Mo")
        Tenors to leave out; each must be a column of ``levels``.
    suffix : str, default "_delta"
        Appended to each kept column name.

    Returns
    -------
    pd.DataFrame, (n_days', n_tenors - len(drop))
        Day-on-day changes in percentage points, on the same index minus dropped rows.
        A day's change is measured from the previous row, however many days back it is.

    Raises
    ------
    DataValidationError
        A tenor of ``drop`` is not a column of ``levels``, or the dates are not sorted
        ascending.
    """
    drop_list = list(drop)
    missing = [c for c in drop_list if c not in levels.columns]
    if missing:
        raise DataValidationError(
            f"cannot drop {missing}: not columns of the yields (available: "
            f"{list(levels.columns)}); pass drop=() or the tenors your file has"
        )
    if not levels.index.is_monotonic_increasing:
        raise DataValidationError(
            "the yields must be sorted by date, oldest first, or the changes have the wrong "
            "sign: use levels.sort_index() (read_treasury_yields_csv already sorts)"
        )
    changes = levels.diff().drop(columns=drop_list)
    changes = changes.set_axis([f"{c}{suffix}" for c in changes.columns], axis="columns")
    return changes.dropna()


def shared_data_dir() -> Path | None:
    """Locate the seed's data folder (resolved), or None when it is absent.

    The environment variable ``TVBETA_SHARED_DATA`` wins when set (a wrong value gives None);
    otherwise ``<repository root>/../shared/data``, found only in a source checkout.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    candidate = Path(env).expanduser() if env else _REPO_ROOT / ".." / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None


def load_seed_weekly(
    data_dir: str | os.PathLike[str] | None = None,
    start: str | pd.Timestamp | None = "2016-01-01",
    end: str | pd.Timestamp | None = "2023-01-01",
) -> pd.DataFrame:
    """Rebuild the seed notebook's weekly table of ETF returns and yield changes.

    Parameters
    ----------
    data_dir : str or path-like, optional
        Folder holding ``bond_factor_returns.csv`` and ``daily-treasury-rates.csv``; by default
        :func:`shared_data_dir`.
    start, end : str or pd.Timestamp or None
        Inclusive date range applied to the daily returns, as ``.loc[start:end]``.

    Returns
    -------
    pd.DataFrame, (n_weeks, 5 + 11)
        Weekly (W-FRI) compounded decimal returns of the five ETFs, then the weekly summed
        yield changes "1 Mo_delta" .. "30 Yr_delta" in percentage points; index "Date".
        With the defaults: 365 weeks, 2016-01-08 .. 2022-12-30.

    Raises
    ------
    FileNotFoundError
        If the folder or one of its two files is absent; the message says how to point at it.

    Notes
    -----
    As in the seed, the yield changes are left-merged onto the fund's trading days: a change
    on a day the ETFs did not trade (e.g. Good Friday 2021-04-02) is not counted in its week.
    """
    folder = _resolve_data_dir(data_dir)
    returns = read_returns_csv(folder / SEED_RETURNS_FILE).loc[start:end]
    changes = yield_changes(read_treasury_yields_csv(folder / SEED_YIELDS_FILE))
    merged = returns.merge(changes, left_index=True, right_index=True, how="left")
    return aggregate_weekly_data(merged, additive_cols=changes.columns)


@dataclass(frozen=True)
class FundData:
    """A fund and its factors on common dates, ready for ``fit_mle(d.df, d.target, d.factors)``.

    df : the fund column, then the factor columns, decimal returns on a sorted ``DatetimeIndex``
    named "Date"; target, factors : the column names; fund_only : fund rows with no factor row,
    or weekly, fund weeks before the factor file's first day or after its last (dropped; a
    factor row with an empty cell counts as absent); factors_only : factor rows
    outside the fund's first and last dates (dropped); note : what was done and assumed, in
    words; gaps : factor dates inside the fund's dates with no fund row (kept, the fund's
    return missing).
    """

    df: pd.DataFrame
    target: str
    factors: list[str]
    fund_only: int
    factors_only: int
    note: str
    gaps: int = 0


def load_fund_and_factors(
    fund_csv: str | os.PathLike[str],
    factor_csv: str | os.PathLike[str],
    *,
    fund_col: str | None = None,
    factor_cols: Sequence[str] | None = None,
    units: Literal["decimal", "percent"] = "decimal",
    weekly: bool = False,
    factor_units: Literal["decimal", "percent"] | None = None,
    date_format: str | None = None,
    factor_date_format: str | None = None,
) -> FundData:
    """Read "my fund CSV + my factor CSV" into one table for the fits, in one call.

    Both files are read as `read_returns_csv` reads (an empty cell is missing; a marker such
    as "#N/A" or "NA" too, with a `DataWarning` naming the cells). The rows are the factor
    dates from the fund's first date to its last: a factor date in between with no fund row
    is kept with the fund's return missing, as an empty fund cell is (the filter predicts
    through it; a date dropped instead would make the filter step over it as if the dates
    were adjacent), with a `DataWarning` naming the first such dates. On a date where a
    factor is missing the fund's return is kept as missing too (the model needs every factor
    where the fund is observed), with a `DataWarning` naming the factor and the date; so is
    a fund date in a period the factor file lacks (no factor date within half the factors'
    usual spacing of it). Other fund rows with no factor row (off the factors' calendar) and
    factor rows outside the fund's dates are dropped, counted and named in a `DataWarning`
    and in ``FundData.note``. With ``weekly`` each file's rows are compounded to weeks over
    its own days (a week's return is the change over the week: a holiday of one file is no
    day of it), so the funds of one file share the factors' weeks; a week with an empty fund
    cell, or without a fund row, is kept as a missing return (compounding the other days
    would read the empty one as 0), and so is one with an empty factor cell.

    Parameters
    ----------
    fund_csv, factor_csv : str or path-like
        The two files. Dates must be real dates: a file without a date column is refused
        (the Bayesian priors are per year, so the calendar is needed; see the README).
    fund_col : str, optional
        The fund's column; by default the fund file's only column.
    factor_cols : sequence of str, optional
        The factor columns, in state order; by default every column of the factor file.
    units : {"decimal", "percent"}, default "decimal"
        Units of the fund file (and of the factor file unless ``factor_units`` says otherwise):
        "decimal" (0.01 = 1%, what tvbeta assumes) or "percent" (1.0 = 1%, divided by 100
        here). A return below -1 (a loss of more than 100%) is refused as percent read as
        decimal, naming the file, the cell and the argument; the joined data are then checked
        for the size of decimal returns: `ReturnUnitsWarning` when they look like percent or
        basis points.
    factor_units : {"decimal", "percent"}, optional
        Units of the factor file when they differ from the fund's (e.g. Ken French's factors
        in percent beside a fund's decimal returns); default ``units``.
    weekly : bool, default False
        Compound daily returns to weeks ending Friday (`aggregate_weekly_data`), each file
        over its own days; refused for files whose dates are more than 4 days apart
        (median).
    date_format : str, optional
        How the dates of the fund file (and of the factor file unless ``factor_date_format``
        says otherwise) are written (`DATE_FORMATS_DOC`); default ISO 8601, YYYY-MM-DD.
    factor_date_format : str, optional
        How the factor file's dates are written, when not as the fund file's (e.g. Ken
        French's monthly "192607", "%Y%m", beside a fund's "1926-07-31"); default
        ``date_format``.

    Returns
    -------
    FundData
        ``df`` (n_dates, 1 + n_factors), the names, the dropped-row counts and a note.

    Raises
    ------
    FileNotFoundError
        A file is absent.
    DataValidationError
        A date that does not parse, a date on two rows, or a non-numeric cell of a column it
        reads (file, row or column and value named); a column that is not in its file (the
        file and its columns named); a fund column that is also a factor column; no common
        date, or more than `UNMATCHED_SHARE` of the fund's dates within the factors' span are
        not factor dates (dates that do not line up).
    ValueError
        ``units`` or ``factor_units`` is not "decimal" or "percent"; a date format is not a
        format (`check_date_format`).
    """
    fund, factors, factor_units = _read_pair(
        fund_csv, factor_csv, None if fund_col is None else [fund_col], factor_cols, units,
        factor_units, weekly, (date_format, factor_date_format))  # fmt: skip
    (data,) = _load_each(fund, factors, fund_csv, factor_csv, units, factor_units, weekly)
    return data


def load_funds_and_factors(
    fund_csv: str | os.PathLike[str],
    factor_csv: str | os.PathLike[str],
    fund_cols: Sequence[str] | None = None,
    *,
    factor_cols: Sequence[str] | None = None,
    units: Literal["decimal", "percent"] = "decimal",
    weekly: bool = False,
    factor_units: Literal["decimal", "percent"] | None = None,
    date_format: str | None = None,
    factor_date_format: str | None = None,
) -> list[FundData]:
    """Return `load_fund_and_factors` of each fund column of one fund file, both files read once.

    For a file of many funds (a column each): reading it once per fund costs ~0.2 s a fund at
    1,000 columns. Each `FundData` is the one `load_fund_and_factors(fund_csv, factor_csv,
    fund_col=col, ...)` returns, in the order of ``fund_cols`` (default None: every column of
    the fund file after its dates, in the file's order; ``[f.target for f in ...]`` names
    them); the arguments and errors are its own (a column absent from the fund file names the
    first such column). Its warnings come once per kind for all the funds, naming them (the
    files' own, such as rows dropped by the alignment, once).
    """
    fund_cols = None if fund_cols is None else list(fund_cols)
    fund, factors, factor_units = _read_pair(fund_csv, factor_csv, fund_cols, factor_cols,
                                             units, factor_units, weekly,
                                             (date_format, factor_date_format),
                                             argument="fund_cols", every_fund=True)  # fmt: skip
    return _load_each(fund, factors, fund_csv, factor_csv, units, factor_units, weekly)


def _load_each(fund: pd.DataFrame, factors: pd.DataFrame, fund_csv: str | os.PathLike[str],
               factor_csv: str | os.PathLike[str], units: str, factor_units: str,
               weekly: bool) -> list[FundData]:  # fmt: skip
    """`_aligned` of each fund column, then its warnings: once per kind, naming the funds."""
    weeks = None
    if weekly:  # the same factor weeks for every fund of the file: compounded once, on the
        # fund file's weeks (Fridays from its first week to its last)
        fund_weeks = _weeks(fund)
        weeks = fund_weeks, _weeks(factors.loc[_within(factors.index, fund.index)]).reindex(
            fund_weeks.index)  # fmt: skip
    loaded, by_kind = [], {}
    with warnings.catch_warnings(record=True) as caught:  # the design checks' warnings
        warnings.simplefilter("always")
        for t in fund.columns:
            data, alerts = _aligned(fund[[t]], factors, fund_csv, factor_csv, units,
                                    factor_units, weeks)  # fmt: skip
            loaded.append(data)
            for kind, alert in alerts.items():
                by_kind.setdefault(kind, []).append((t, *alert))
    for w in {str(w.message): w for w in caught}.values():
        warn_caller(str(w.message), w.category)
    for items in by_kind.values():
        texts = list(dict.fromkeys(text for _, text, _ in items))
        if len(texts) == 1:  # one fund's, or the files' own (rows dropped by the alignment)
            warn_caller(f"{fund_csv} + {factor_csv}: {texts[0]}{items[0][2]}", DataWarning)
            continue
        more = len(items) - DATES_SHOWN
        shown = "; ".join(f"{t}: {text}" for t, text, _ in items[:DATES_SHOWN]) \
            + (f"; and {more} more fund(s)" if more > 0 else "")  # fmt: skip
        warn_caller(f"{fund_csv} + {factor_csv}: {len(items)} of {len(loaded)} funds: {shown}"
                    f"{items[0][2]} (each fund's FundData.note says its own)", DataWarning)
    return loaded


def _read_pair(fund_csv: str | os.PathLike[str], factor_csv: str | os.PathLike[str],
               fund_cols: list[str] | None, factor_cols: Sequence[str] | None, units: str,
               factor_units: str | None, weekly: bool,
               date_formats: tuple[str | None, str | None], argument: str = "fund_col",
               every_fund: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Read and check the two files: (funds, factors) in decimals, and the factors' units.

    ``fund_cols`` None: the fund file's only column (``every_fund``: each of its columns);
    ``argument``: the caller's name for it; ``date_formats``: the fund file's and the factor
    file's (None: the fund file's).
    """
    factor_units = units if factor_units is None else factor_units
    for name, value in (("units", units), ("factor_units", factor_units)):
        if value not in ("decimal", "percent"):
            raise ValueError(f"{name} must be 'decimal' or 'percent', got {value!r}")
    for key, value in zip(("date_format", "factor_date_format"), date_formats, strict=True):
        check_date_format(value, key)  # both before either file is read
    fund_dates = date_formats[0]
    factor_dates = fund_dates if date_formats[1] is None else date_formats[1]
    fund = _read_dated_csv(fund_csv, "fund CSV", date_format=fund_dates, columns=fund_cols,
                           argument="date_format")  # fmt: skip
    factors = _read_dated_csv(factor_csv, "factor CSV", date_format=factor_dates,
                              columns=factor_cols,
                              argument="factor_date_format")  # fmt: skip
    targets = _pick_columns(fund, fund_csv, argument, fund_cols)
    if len(targets) != 1 and fund_cols is None and not every_fund:
        raise DataValidationError(
            f"{fund_csv}: has columns {targets}; pass fund_col= to pick the fund"
        )
    names = _pick_columns(factors, factor_csv, "factor_cols", factor_cols)
    for target in targets:
        if target in names:
            raise DataValidationError(
                f"the fund column {target!r} of {fund_csv} is also a factor column of "
                f"{factor_csv}: rename one of them"
            )
    fund, factors = fund[targets], factors[names]
    # to decimals before anything is compounded
    fund = fund / 100.0 if units == "percent" else fund
    factors = factors / 100.0 if factor_units == "percent" else factors
    for frame, file, key, unit in ((fund, fund_csv, "units", units),
                                   (factors, factor_csv, "factor_units", factor_units)):
        if unit == "percent":
            warn_if_percent_looks_decimal(frame, file, key)
        below = frame.lt(-1.0)
        if below.any().any():
            col = frame.columns[below.any().to_numpy()][0]
            day = frame.index[below[col].to_numpy()][0]
            raise DataValidationError(
                f"{file}: {col!r} is {frame.at[day, col]:g} on {format_label(day)}, a loss of "
                "more than 100% as a decimal return: the file looks like percent returns; "
                f"set {key} to 'percent' (the argument, or a model file's [data] key)"
                + (" (units for both files, factor_units for the factor file alone)"
                   if key == "factor_units" else
                   " (and factor_units to 'decimal' if the factor file is in decimals)"))
    if weekly and (days := median_spacing_days(fund.index)) > 4:
        raise DataValidationError(
            f"weekly=True compounds daily returns, but the dates of {fund_csv} are {days:g} "
            "days apart (median): leave weekly out (a model file's aggregate = 'weekly') for "
            "weekly or monthly files")  # fmt: skip
    return fund, factors, factor_units


def _aligned(fund: pd.DataFrame, factors: pd.DataFrame, fund_csv: str | os.PathLike[str],
             factor_csv: str | os.PathLike[str], units: str, factor_units: str,
             weeks: tuple[pd.DataFrame, pd.DataFrame] | None,
             ) -> tuple[FundData, dict[str, tuple[str, str]]]:  # fmt: skip
    """`load_fund_and_factors`' alignment of one fund (a one-column frame) to the factors.

    Returns the table and its warnings to raise, kind -> (what, advice); ``weeks``: for
    weekly data, the fund file's columns and the factors compounded to weeks (`_weeks`), the
    factors' on the fund file's weeks, else None.
    """
    target, names = list(fund.columns), list(factors.columns)
    common = fund.index.intersection(factors.index)
    if common.empty:
        raise DataValidationError(
            f"{fund_csv} ({format_span(fund.index)}: {_examples(fund.index)}) and "
            f"{factor_csv} ({format_span(factors.index)}: {_examples(factors.index)}) have "
            "no date in common: check that both hold the same frequency and the same day of "
            "the period (e.g. both month-end dates, or both the last trading day)")  # fmt: skip
    overlap = _within(fund.index, factors.index)
    unmatched = overlap.difference(common)
    if len(unmatched) > UNMATCHED_SHARE * len(overlap) + 1e-9:  # 7 of 35 is not above 0.2
        raise DataValidationError(
            f"{len(unmatched)} of the {len(overlap)} dates of {fund_csv} within the factors' "
            f"span are not in {factor_csv}: the files' dates do not line up, fund"
            f"{_dates(unmatched)} against factors"
            f"{_dates(_within(factors.index, fund.index).difference(common))}; write both with "
            "the same dates "
            "(e.g. both month-end, or both the last trading day)")  # fmt: skip
    y = target[0]
    incomplete = factors.index[factors.isna().any(axis=1)]
    empty = fund.index[fund[y].isna().to_numpy()]
    if weeks is not None:
        # Each file's rows are its own trading days and a week's return compounds them (the
        # price change over the week: a holiday of one side is no day of it), so the funds of
        # one file share the factors' weeks. An empty cell leaves its week unknown: a missing
        # return the filter predicts through, not a shorter week (which would read it as 0).
        span = _within(factors.index, fund.index)
        fund_weeks, factor_weeks = weeks[0][[y]], weeks[1]
        df = fund_weeks.join(factor_weeks)  # every Friday from the file's first week to its last
        # weeks before the factor file's first day or after its last have no factor at all:
        # dropped, as the daily or monthly rows outside it are (kept as missing returns they
        # would fill the split's rows with nothing to fit or score)
        covered = np.flatnonzero(df[names].notna().any(axis=1).to_numpy())
        kept = df.index[covered[0] : covered[-1] + 1] if covered.size else df.index[:0]
        outside = df.index.difference(kept)
        df = df.loc[kept]  # none kept: refused below (no week with the fund and every factor)
        ends = df.index
        incomplete_weeks = ends[df[names].isna().any(axis=1).to_numpy()]
        lost = incomplete_weeks[df.loc[incomplete_weeks, y].notna().to_numpy()]
        df.loc[lost, y] = np.nan
        gaps = _inside(ends[df[y].isna().to_numpy()].difference(lost), df[y])
        if not df[y].notna().any():
            raise DataValidationError(
                f"{fund_csv} + {factor_csv}: no week where the fund and every factor have a "
                "value on every day")  # fmt: skip
        fund_only = outside  # fund weeks with no factor day; every other fund row counts
        holidays = fund.index.difference(factors.index)
        factors_only = factors.index.difference(span)
        steps = [f"{len(fund)} fund days and {len(span)} factor days {format_span(fund.index)}, "
                 f"each file compounded over its own days to {len(ends)} weeks ending "
                 f"Friday (fund days the factor file lacks{_dates(holidays)} in the fund's "
                 "weeks only)"]  # fmt: skip
        kept = (f"{len(gaps)} week(s) without a fund row or with an empty fund cell"
                f"{_dates(gaps)} are kept as missing fund returns")  # fmt: skip
        blanked = (f"{len(lost)} fund week(s) where a factor is missing"
                   f"{_factor_gaps(factors.loc[span], incomplete.intersection(span))} are kept as "
                   "missing (the "
                   "model needs every factor where the fund is observed)")  # fmt: skip
        cells = f"{len(empty)} empty fund day(s){_dates(empty)} (their weeks missing)"
    else:
        # a factor date inside the fund's span with no fund row is a missing return, as an
        # empty cell is: dropping it would make the filter step over it as if the dates were
        # adjacent. So is a fund date in a period the factor file lacks (no factor date within
        # half a period of it), its return unusable without the factors
        spacing = median_spacing_days(factors.index)
        nearest = _days_to_nearest(unmatched, factors.index)
        periods = unmatched[nearest >= 0.5 * spacing]
        rows = _within(factors.index, fund.index).union(periods)
        gaps = _inside(rows.difference(fund.index), fund[y])
        fund_only = fund.index.difference(factors.index).difference(periods)
        factors_only = factors.index.difference(rows)
        df = fund.reindex(rows).join(factors.reindex(rows))
        # where a factor is missing the fund's return cannot be used (the model needs every
        # factor where the fund is observed): the date stays, the return is missing
        lost = rows.intersection(fund.index).difference(empty)
        lost = lost[df.loc[lost, names].isna().any(axis=1).to_numpy()]
        df.loc[lost, y] = np.nan
        steps = [f"{len(rows)} dates {format_span(rows)}"]
        kept = (f"{len(gaps)} factor date(s) inside the fund's dates with no fund row"
                f"{_dates(gaps)} are kept as missing fund returns")  # fmt: skip
        blanked = (f"{len(lost)} fund return(s) on dates where a factor is missing"
                   f"{_factor_gaps(factors.reindex(lost), lost)} are kept as missing (the "
                   "model needs every factor where the fund is observed)")  # fmt: skip
        shown = empty.intersection(rows)
        cells = f"{len(shown)} empty fund value(s){_dates(shown)} kept as missing"
    what = "week(s) with no factor day" if weeks is not None else "row(s) with no factor row"
    dropped = (f"{len(fund_only)} fund {what}{_dates(fund_only)} and "
               f"{len(factors_only)} factor row(s) outside the fund's dates"
               f"{_dates(factors_only)} were dropped")  # fmt: skip
    def said(u: str) -> str:
        return f"{u!r}{' (divided by 100)' if u == 'percent' else ''}"

    read_as = (f"units {said(units)}" if units == factor_units else
               f"fund {said(units)}, factors {said(factor_units)}")  # fmt: skip
    note = (f"{'; '.join(steps)}; {dropped}; {kept}; {blanked}; {cells}; {read_as}, read as "
            "decimal returns (0.01 = 1%)")  # fmt: skip
    alerts = {}
    if len(fund_only) or len(factors_only):
        alerts["dropped"] = (dropped, " by the date alignment")
    if len(gaps):
        alerts["kept"] = (kept, " (the filter predicts through them): if the fund has returns "
                          "there, add them to its file")  # fmt: skip
    if len(lost):
        alerts["blanked"] = (blanked, f": if the factors have values there, add them to "
                             f"{factor_csv}")  # fmt: skip
    try:
        with warnings.catch_warnings():  # the design's own (a factor mostly constant, ...):
            warnings.simplefilter("ignore", DataWarning)  # the fit of this table says them
            design = prepare_design(df, target[0], names, intercept=True)
    except DataValidationError:  # e.g. too few rows to fit: the fit says so, the table is kept
        design = None
    if design is not None:
        warn_if_not_decimal(design)
    return FundData(df, str(target[0]), [str(c) for c in names], len(fund_only),
                    len(factors_only), note, len(gaps)), alerts


#: The largest share of the fund's dates within the factors' span that may lack a factor
#: date. More means dates that do not line up (a day apart, month-start against month-end),
#: whose returns would be lost. Different holiday calendars of daily files leave a few per
#: cent unmatched.
UNMATCHED_SHARE = 0.2


def _factor_gaps(factors: pd.DataFrame, dates: pd.DatetimeIndex) -> str:
    """' (SMB on 2010-03-31, ...)': which factor is missing on the first of ``dates``, or ''."""
    if dates.empty:
        return ""
    where = [f"{', '.join(str(c) for c in factors.columns[factors.loc[d].isna().to_numpy()])} "
             f"on {format_label(d)}" for d in dates]  # fmt: skip
    return f" ({listed(where, DATES_SHOWN)})"


def _days_to_nearest(dates: pd.DatetimeIndex, calendar: pd.DatetimeIndex) -> np.ndarray:
    """Return each of ``dates``' distance in days to the nearest date of ``calendar`` (sorted)."""
    at = calendar.searchsorted(dates)
    before = calendar[np.clip(at - 1, 0, len(calendar) - 1)]
    after = calendar[np.clip(at, 0, len(calendar) - 1)]
    return np.minimum(np.abs(np.asarray((dates - before).days)),
                      np.abs(np.asarray((after - dates).days)))


def _weeks(daily: pd.DataFrame) -> pd.DataFrame:
    """Return each column compounded over its rows of each week ending Friday.

    NaN for a week with an empty cell of that column, or without a row.
    """
    unknown = daily.isna().resample("W-FRI").max().astype(bool)
    return aggregate_weekly_data(daily.fillna(0.0), additive_cols=[]).reindex(
        unknown.index).mask(unknown)  # fmt: skip


def _inside(dates: pd.DatetimeIndex, values: pd.Series) -> pd.DatetimeIndex:
    """Return ``dates`` after the first and before the last value of ``values``.

    Dates before a fund's first return (a fund launched later than its file's first date)
    or after its last are not missing returns: the model starts at the first observation.
    """
    seen = values.index[values.notna().to_numpy()]
    return dates[(dates > seen[0]) & (dates < seen[-1])] if len(seen) else dates[:0]


def _within(index: pd.DatetimeIndex, span: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Return the dates of ``index`` from ``span``'s first date to its last (both sorted)."""
    return index[(index >= span[0]) & (index <= span[-1])]


#: Dates a warning names before it counts the rest.
DATES_SHOWN = 3


def _examples(index: pd.DatetimeIndex) -> str:
    """'2008-02-01, 2008-03-01, ...': the first two dates of ``index``."""
    return f"{', '.join(format_label(d) for d in index[:2])}, ..."


def _dates(index: pd.DatetimeIndex) -> str:
    """' (2004-05-31, 2010-02-28 and 3 more)': the first dates of ``index``, or ''."""
    if index.empty:
        return ""
    return f" ({listed([format_label(d) for d in index], DATES_SHOWN)})"


def _pick_columns(frame: pd.DataFrame, file: str | os.PathLike[str], argument: str,
                  wanted: Sequence[str] | None) -> list[str]:  # fmt: skip
    """Return the requested columns of a file read by `_read_dated_csv` (all of them by default)."""
    if wanted is None:
        return list(frame.columns)
    if isinstance(wanted, str):
        wanted = [wanted]
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise DataValidationError(
            f"{file}: no column {absent[0]!r} (from {argument}); its columns are "
            f"{list(frame.columns)}"
        )
    return list(wanted)


def _resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """Return the data folder or raise a FileNotFoundError that says how to provide it."""
    how = f"pass data_dir=... or set the environment variable {SHARED_DATA_ENV}"
    if data_dir is None:
        found = shared_data_dir()
        if found is None:
            env = os.environ.get(SHARED_DATA_ENV)
            looked = f"{SHARED_DATA_ENV}={env}" if env else _REPO_ROOT / ".." / "shared" / "data"
            raise FileNotFoundError(f"seed data folder not found (looked at {looked}): {how}")
        folder = found
    else:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"seed data folder {folder.resolve()} does not exist: {how}")
    absent = [f for f in (SEED_RETURNS_FILE, SEED_YIELDS_FILE) if not (folder / f).is_file()]
    if absent:
        raise FileNotFoundError(f"seed data folder {folder} lacks {absent}: {how}")
    return folder


def separator_advice(file: Path) -> str:
    """Return advice when the file's first line is separated by ';', tabs or '|', else ''."""
    with file.open(encoding="utf-8", errors="replace") as f:
        head = f.readline()
    sep = max(";\t|", key=head.count)
    if head.count(sep) <= head.count(","):
        return ""
    return (f" in a comma-separated file: this one looks separated by {sep!r}, save it with "
            "commas (and '.' as the decimal point)")


def _read_dated_csv(path: str | os.PathLike[str], what: str, *, date_format: str | None,
                    columns: Sequence[Hashable] | None = None,
                    argument: str | None = "date_format") -> pd.DataFrame:  # fmt: skip
    """Read a CSV whose first column is a date, with strict date and number parsing.

    ``date_format``: `DATE_FORMATS_DOC` (None: ISO 8601), ``argument`` the caller's name for
    it in a date error (None: a fixed format, not the caller's to change). ``columns``: only
    these are converted when the file has them all (a model file's funds read one at a time
    from a wide file convert one column each, not the file each time); otherwise all, so
    that the caller's message can list them.
    """
    check_date_format(date_format, argument or "date_format")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what} not found: {file.resolve()}")
    # only an empty cell is missing on its own: a marker such as "#N/A" is read as missing
    # too, but said (a spreadsheet's failed lookup reads the same as a deliberate gap)
    try:
        raw = pd.read_csv(file, index_col=0, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataValidationError(f"{file}: cannot be read as a CSV ({err}); expected dates, "
                                  f"then a column per series{separator_advice(file)}") from None
    if raw.columns.empty:
        raise DataValidationError(f"{file}: no column besides the dates; expected dates, then a "
                                  f"column per series{separator_advice(file)}")  # fmt: skip
    dates = _parse_dates(raw.index, file, date_format, argument)
    used = raw.columns if columns is None or not set(columns) <= set(raw.columns) else columns
    # a column pandas read as numbers holds no text (so no marker): taken as it is, which for
    # a file of 1,000 funds saves converting 1,000 columns to text and back
    text = [col for col in used if not _numbers_only(raw[col])]
    is_text = set(text)
    values = {col: _to_float(raw[col], col, dates, file) if col in is_text else
              raw[col].to_numpy(dtype=np.float64, na_value=np.nan) for col in used}  # fmt: skip
    markers = [f"{raw[col].iloc[i]!r} in {col!r} on {format_label(dates[i])}"
               for col in text
               for i in np.flatnonzero(raw[col].astype(str).str.strip().isin(NA_MARKERS))]
    if markers:
        warn_caller(
            f"{file}: {len(markers)} cell(s) hold a missing-value marker and are read as "
            f"missing: {listed(markers, DATES_SHOWN)}; if the value exists (a spreadsheet "
            "writes '#N/A' for a failed formula), put it in", DataWarning)  # fmt: skip
    twice = np.flatnonzero(dates.duplicated(keep=False))
    if twice.size:
        first = twice[dates[twice] == dates[twice[0]]]
        same = raw.iloc[first].nunique(dropna=False).max() <= 1
        raise DataValidationError(
            f"{file}: the date {format_label(dates[twice[0]])} is on data rows "
            f"{', '.join(str(r + 1) for r in first)} (lines "
            f"{', '.join(str(r + 2) for r in first)} if no blank lines), "
            + ("with the same values: delete the repeated line" if same else
               "with different values: keep the right one and delete the other")
            + (f"; {dates[twice].nunique() - 1} more date(s) repeat" if
               dates[twice].nunique() > 1 else ""))  # fmt: skip
    return pd.DataFrame(values, index=dates.rename("Date")).sort_index(kind="stable")


DATE_FORMATS_DOC = """\
a strftime format as pandas' ``to_datetime`` reads it, e.g. "%m/%d/%Y" (01/31/1995), "%d.%m.%Y"
(31.01.1995), "%Y%m%d" (19950131); None: ISO 8601 (1995-01-31). A date without a day is its
period's last day: "%Y%m" (199501, Ken French's monthly files) or ISO "1995-01" give 1995-01-31,
"%Y" the year's last day, so that monthly files meet month-end dates"""


def check_date_format(date_format: str | None, argument: str = "date_format") -> None:
    """Refuse a ``date_format`` that is not None or a strftime format (`DATE_FORMATS_DOC`).

    Raises
    ------
    ValueError
        Naming ``argument`` and an example.
    """
    if date_format is not None and not (isinstance(date_format, str) and "%" in date_format):
        raise ValueError(f"{argument} must be a strftime format such as '%m/%d/%Y' (for "
                         f"01/31/1995) or None for ISO 8601 dates, got {date_format!r}")


def _parse_dates(labels: pd.Index, file: Path, date_format: str | None,
                 argument: str | None) -> pd.DatetimeIndex:  # fmt: skip
    """Parse the date column, naming the first row (1 = first data row) that fails.

    A date without a day (a format with no day directive, or ISO "YYYY-MM" on every row) is
    its month's (or year's) last day.
    """
    # as text: pandas reads numbers with a format as epochs in future versions, not as errors
    text = labels.astype(str).str.strip()
    if date_format is None:
        fmt, hint = "ISO8601", (f"YYYY-MM-DD, or pass {argument}= (e.g. '%m/%d/%Y' for "
                                "01/31/1995, '%d/%m/%Y' for 31/01/1995)")  # fmt: skip
        undated = bool(len(text)) and bool(text.str.fullmatch(r"\d{4}-\d{2}").all())
        yearly = False
    else:
        example = pd.Timestamp("1995-01-31").strftime(date_format)
        fmt, hint = date_format, f"dates written as {date_format!r} (e.g. {example})" + (
            f"; pass {argument}= with the file's format" if argument else "")
        undated = not any(d in date_format for d in ("%d", "%j", "%-d", "%e"))
        yearly = undated and not any(m in date_format for m in ("%m", "%b", "%B", "%-m"))
    dates = pd.DatetimeIndex(pd.to_datetime(text, format=fmt, errors="coerce"))
    bad = np.flatnonzero(dates.isna())
    if bad.size:
        row = int(bad[0])
        digits = {6: "%Y%m", 8: "%Y%m%d"}.get(len(text[row])) if text[row].isdigit() else None
        if digits and argument:  # Ken French's files: 199501, 19950131
            hint += f"; dates written as {text[row]} take {argument}={digits!r}"
        if argument:  # the CLI's users write it in a model file
            hint += f" (in a model file, the [data] key {argument})"
        raise DataValidationError(
            f"{file}: cannot parse the date {text[row]!r} in data row {row + 1} "
            f"(line {row + 2} if no blank lines); expected {hint}{separator_advice(file)}")
    if undated:  # a period: its last day, where month-end (or year-end) files date it
        dates = dates + (pd.offsets.YearEnd(0) if yearly else pd.offsets.MonthEnd(0))
    return dates


#: Texts read as a missing value (pandas' default ``na_values`` of ``read_csv``, as R, Excel,
#: MATLAB and numpy write one), besides an empty cell.
NA_MARKERS = frozenset({
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})  # fmt: skip


def _numbers_only(column: pd.Series) -> bool:
    """Whether ``read_csv`` parsed the column as numbers (float or integer, not bool)."""
    return pd.api.types.is_float_dtype(column) or (
        pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column))


def _to_float(column: pd.Series, name: Hashable, dates: pd.DatetimeIndex, file: Path) -> np.ndarray:
    """Column as float64 (`NA_MARKERS` missing), naming the column, date and value of a text."""
    text = column.astype(str).str.strip()
    column = column.mask(text.isin(NA_MARKERS))
    numbers = pd.to_numeric(column, errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy() & column.notna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise DataValidationError(
            f"{file}: column {name!r} is not numeric: {column.iloc[row]!r} on "
            f"{format_label(dates[row])}; fix or blank that cell"
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)
