"""Every public function that takes a DataFrame leaves it exactly as it was."""

import numpy as np
import pandas as pd

from tvbeta.data import aggregate_weekly_data, prepare_design, yield_changes


def daily() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    index = pd.bdate_range("2024-01-01", periods=30, name="Date")
    df = pd.DataFrame(rng.normal(0.0, 0.01, (30, 3)), index=index, columns=["fund", "a", "dy"])
    df.iloc[4, 2] = np.nan  # a bond holiday
    df.iloc[7, [0, 1]] = np.nan  # a row the filter skips, with a NaN factor
    return df


def test_aggregate_weekly_data_does_not_modify_its_input() -> None:
    df = daily()
    before = df.copy(deep=True)
    aggregate_weekly_data(df, ["dy"])
    pd.testing.assert_frame_equal(df, before)


def test_yield_changes_does_not_modify_its_input() -> None:
    levels = pd.DataFrame(
        {"1 Mo": [5.0, 5.1, 5.3], "2 Mo": [5.0, 5.0, 5.0], "4 Mo": [4.0, np.nan, 4.0]},
        index=pd.date_range("2024-01-01", periods=3, name="Date"),
    )
    before = levels.copy(deep=True)
    yield_changes(levels)
    pd.testing.assert_frame_equal(levels, before)


def test_prepare_design_does_not_modify_its_input_nor_share_memory() -> None:
    df = daily()
    before = df.copy(deep=True)
    design = prepare_design(df, "fund", ["a"], intercept=True)
    pd.testing.assert_frame_equal(df, before)
    design.y[:] = 0.0
    design.H[:] = 0.0
    design.Z[:] = 0.0
    pd.testing.assert_frame_equal(df, before)
