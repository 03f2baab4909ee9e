"""aggregate_weekly_data: weeks end on Friday, returns compound, changes add up."""

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import DataValidationError, aggregate_weekly_data

# 2024-01-01 is a Monday, so 2024-01-05 is the Friday closing the first week.
MON, TUE, WED, FRI, SAT = (
    pd.Timestamp(d) for d in ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05", "2024-01-06"]
)


def frame(rows: dict[pd.Timestamp, tuple[float, float]]) -> pd.DataFrame:
    """A daily table with one return column "r" and one additive column "dy"."""
    return pd.DataFrame.from_dict(rows, orient="index", columns=["r", "dy"])


def test_returns_compound_plus_ten_then_minus_ten_is_minus_one_percent() -> None:
    weekly = aggregate_weekly_data(frame({MON: (0.10, 0.0), TUE: (-0.10, 0.0)}), ["dy"])
    assert weekly.loc[FRI, "r"] == pytest.approx(1.10 * 0.90 - 1.0)  # -0.01
    assert weekly.loc[FRI, "r"] == pytest.approx(-0.01)


def test_additive_columns_are_summed_not_compounded() -> None:
    daily = frame({MON: (0.0, 0.01), TUE: (0.0, -0.03), WED: (0.0, 0.05)})
    weekly = aggregate_weekly_data(daily, ["dy"])
    assert weekly.loc[FRI, "dy"] == pytest.approx(0.01 - 0.03 + 0.05)


def test_friday_belongs_to_its_own_week_and_saturday_to_the_next() -> None:
    weekly = aggregate_weekly_data(frame({FRI: (0.01, 0.1), SAT: (0.02, 0.2)}), ["dy"])
    assert list(weekly.index) == [FRI, pd.Timestamp("2024-01-12")]
    assert weekly["r"].tolist() == pytest.approx([0.01, 0.02])


def test_week_is_labelled_by_its_friday_even_without_friday_data() -> None:
    weekly = aggregate_weekly_data(frame({MON: (0.01, 0.1), WED: (0.01, 0.1)}), ["dy"])
    assert list(weekly.index) == [FRI]
    assert weekly.index.name == "Date"


def test_nan_day_is_skipped_and_other_columns_keep_that_days_value() -> None:
    # Monday is a bond-market holiday after a left merge: no yield change, but the fund traded.
    daily = frame({MON: (0.01, np.nan), TUE: (0.02, 0.05)})
    weekly = aggregate_weekly_data(daily, ["dy"])
    assert weekly.loc[FRI, "r"] == pytest.approx(1.01 * 1.02 - 1.0)
    assert weekly.loc[FRI, "dy"] == pytest.approx(0.05)


def test_week_where_a_column_has_no_observation_is_dropped_not_zero() -> None:
    next_mon = pd.Timestamp("2024-01-08")
    daily = frame({MON: (0.01, 0.1), next_mon: (0.02, np.nan)})
    weekly = aggregate_weekly_data(daily, ["dy"])
    assert list(weekly.index) == [FRI]


def test_week_with_no_rows_at_all_does_not_appear() -> None:
    daily = frame({MON: (0.01, 0.1), pd.Timestamp("2024-01-15"): (0.02, 0.2)})
    weekly = aggregate_weekly_data(daily, ["dy"])
    assert list(weekly.index) == [FRI, pd.Timestamp("2024-01-19")]


def test_minus_100_percent_day_makes_the_week_minus_100_percent() -> None:
    weekly = aggregate_weekly_data(frame({MON: (0.5, 0.0), TUE: (-1.0, 0.0)}), ["dy"])
    assert weekly.loc[FRI, "r"] == -1.0


def test_output_keeps_column_order_and_float64() -> None:
    daily = pd.DataFrame({"dy": [1, 2], "r": [0, 0]}, index=[MON, TUE])
    weekly = aggregate_weekly_data(daily, ["dy"])
    assert list(weekly.columns) == ["dy", "r"]
    assert (weekly.dtypes == np.float64).all()
    assert weekly.loc[FRI, "dy"] == 3.0


def test_additive_cols_may_be_an_index_or_a_single_name() -> None:
    daily = frame({MON: (0.0, 0.01), TUE: (0.0, 0.02)})
    by_index = aggregate_weekly_data(daily, pd.Index(["dy"]))
    by_name = aggregate_weekly_data(daily, "dy")
    pd.testing.assert_frame_equal(by_index, by_name)
    assert by_name.loc[FRI, "dy"] == pytest.approx(0.03)


def test_no_additive_columns_compounds_everything() -> None:
    weekly = aggregate_weekly_data(frame({MON: (0.1, 0.1), TUE: (0.1, 0.1)}), [])
    assert weekly.loc[FRI].tolist() == pytest.approx([0.21, 0.21])


def test_error_when_index_is_not_datetime() -> None:
    with pytest.raises(DataValidationError, match=r"DatetimeIndex.*set the date column"):
        aggregate_weekly_data(pd.DataFrame({"r": [0.1], "dy": [0.0]}), ["dy"])


def test_error_when_additive_column_is_missing_lists_available() -> None:
    with pytest.raises(DataValidationError, match=r"\['10Y'\].*available: \['r', 'dy'\]"):
        aggregate_weekly_data(frame({MON: (0.1, 0.0)}), ["10Y"])


def test_error_when_return_is_below_minus_one_names_column_and_date() -> None:
    with pytest.raises(DataValidationError, match=r"'r' is below -1.*2024-01-02.*additive_cols"):
        aggregate_weekly_data(frame({MON: (0.1, 0.0), TUE: (-2.0, 0.0)}), ["dy"])


def test_error_when_a_column_is_not_numeric() -> None:
    daily = pd.DataFrame({"r": [0.1], "name": ["FPE"]}, index=[MON])
    with pytest.raises(DataValidationError, match="'name' is not numeric"):
        aggregate_weekly_data(daily, [])
