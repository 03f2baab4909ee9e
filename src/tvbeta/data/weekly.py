"""Daily to weekly aggregation, as in the seed's ``aggregate_weekly_data``.

Return columns compound over the week, ``r_w = expm1(sum_d log1p(r_d)) = prod_d (1 + r_d) - 1``;
additive columns (yield changes, in percentage points) are summed, ``dy_w = sum_d dy_d``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import pandas as pd

from tvbeta.data.validate import DataValidationError, format_label


def aggregate_weekly_data(df: pd.DataFrame, additive_cols: Iterable[Hashable] | str,
                          freq: str = "W-FRI") -> pd.DataFrame:  # fmt: skip
    """Aggregate daily returns and daily changes to weeks ending on Friday.

    Parameters
    ----------
    df : pd.DataFrame, (n_days, n_cols)
        Daily data on a ``DatetimeIndex``. Columns not in ``additive_cols`` are simple returns
        in decimal units (0.01 = 1%), compounded; ``additive_cols`` (e.g. daily yield changes
        in percentage points) are summed. NaN means "no observation that day". Not modified.
    additive_cols : iterable of hashable or str
        Columns to sum instead of compound (a ``pd.Index`` such as ``changes.columns`` works; a
        single string is one column). May be empty.
    freq : str, default "W-FRI"
        Pandas weekly anchor: the label of a week is its last day, and that day belongs to it
        (with "W-FRI" a Friday closes its own week and a Saturday opens the next one).

    Returns
    -------
    pd.DataFrame, (n_weeks, n_cols)
        Weekly values, same columns and order as ``df``, float64, on a ``DatetimeIndex`` named
        "Date" (week-end labels), keeping only weeks in which every column is observed.

    Raises
    ------
    DataValidationError
        If the index is not a ``DatetimeIndex``, ``additive_cols`` names a missing column,
        a column is not numeric or repeated, or a return is below -1 (-100%).

    Notes
    -----
    NaN days are skipped within a week: after a left merge of fund returns with Treasury yield
    changes, bond-market holidays (Columbus Day, Veterans Day) have NaN yield changes, and the
    fund returns of those days must still compound into the week. A week in which some column
    has no observation at all is NaN for that column (``sum(min_count=1)``) and is dropped,
    rather than reported as a zero return or a zero change.
    """
    additive = [additive_cols] if isinstance(additive_cols, str) else list(additive_cols)
    _check_weekly_input(df, additive)
    additive_set = set(additive)
    compound = [c for c in df.columns if c not in additive_set]
    # log1p turns compounding into a sum; a -100% day gives -inf and the week expm1(-inf) = -1.
    with np.errstate(divide="ignore"):
        log_growth = np.log1p(df[compound].astype(np.float64))
    weekly_returns = np.expm1(log_growth.resample(freq).sum(min_count=1))
    weekly_sums = df[additive].astype(np.float64).resample(freq).sum(min_count=1)
    weekly = pd.concat([weekly_returns, weekly_sums], axis=1)[list(df.columns)]
    return weekly.dropna(how="any").rename_axis(index="Date")


def _check_weekly_input(df: pd.DataFrame, additive: list[Hashable]) -> None:
    """Raise a DataValidationError naming the offending column or index problem."""
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataValidationError(
            f"aggregate_weekly_data needs a DatetimeIndex, got {type(df.index).__name__}: "
            "set the date column as index, e.g. df.set_index(pd.to_datetime(df['Date']))"
        )
    if df.columns.has_duplicates:
        repeated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise DataValidationError(f"column(s) {repeated} appear more than once: rename or drop")
    missing = [c for c in additive if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"additive column(s) {missing} not in the DataFrame (available: {list(df.columns)})"
        )
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col].dtype):
            raise DataValidationError(
                f"column {col!r} is not numeric (dtype {df[col].dtype}): convert it with "
                "pd.to_numeric or drop it before aggregating"
            )
        if col not in additive:
            below = np.flatnonzero(df[col].to_numpy(dtype=np.float64, na_value=np.nan) < -1.0)
            if below.size:
                raise DataValidationError(
                    f"return column {col!r} is below -1 (a loss of more than 100%) on "
                    f"{format_label(df.index[below[0]])}: returns must be decimal simple "
                    "returns; if this column is a change, list it in additive_cols"
                )
