"""Reading the seed's CSV files and rebuilding its weekly table."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import (
    SHARED_DATA_ENV,
    DataValidationError,
    load_seed_weekly,
    read_returns_csv,
    read_treasury_yields_csv,
    shared_data_dir,
    yield_changes,
)
from tvbeta.data.io import SEED_RETURNS_FILE, SEED_YIELDS_FILE

TREASURY_CSV = """Date,1 Mo,2 Mo,3 Mo,30 Yr
1/5/2024,5.50,,5.40,4.20
1/4/2024,5.52,,5.41,
12/29/2023,5.60,5.55,5.45,4.03
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- Treasury par yields -------------------------------------------------------------------


def test_treasury_dates_are_month_day_year_and_sorted_oldest_first(tmp_path: Path) -> None:
    levels = read_treasury_yields_csv(write(tmp_path, "t.csv", TREASURY_CSV))
    expected = pd.DatetimeIndex(["2023-12-29", "2024-01-04", "2024-01-05"], name="Date")
    assert list(levels.index) == list(expected)
    assert levels.index.name == "Date"


def test_treasury_values_stay_in_percent_and_blanks_are_nan(tmp_path: Path) -> None:
    levels = read_treasury_yields_csv(write(tmp_path, "t.csv", TREASURY_CSV))
    assert list(levels.columns) == ["1 Mo", "2 Mo", "3 Mo", "30 Yr"]
    assert (levels.dtypes == np.float64).all()
    assert levels.loc["2024-01-05", "1 Mo"] == 5.50
    assert levels.loc["2023-12-29", "2 Mo"] == 5.55
    assert np.isnan(levels.loc["2024-01-04", "2 Mo"])
    assert np.isnan(levels.loc["2024-01-04", "30 Yr"])


def test_treasury_iso_date_is_rejected_naming_row_and_format(tmp_path: Path) -> None:
    text = "Date,1 Mo\n1/5/2024,5.5\n2024-01-04,5.4\n"
    with pytest.raises(DataValidationError, match=r"'2024-01-04' in data row 2.*"
                       r"written as '%m/%d/%Y' \(e\.g\. 01/31/1995\)"):
        read_treasury_yields_csv(write(tmp_path, "t.csv", text))


def test_treasury_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        read_treasury_yields_csv(tmp_path / "nope.csv")


# --- Daily returns ---------------------------------------------------------------------------


def test_returns_are_sorted_float64_with_index_named_date(tmp_path: Path) -> None:
    text = "date,A,B\n2024-01-03,0.01,0\n2024-01-02,-0.02,1\n"
    returns = read_returns_csv(write(tmp_path, "r.csv", text))
    assert list(returns.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert returns.index.name == "Date"
    assert (returns.dtypes == np.float64).all()
    assert returns["A"].tolist() == [-0.02, 0.01]


def test_returns_empty_cell_is_nan(tmp_path: Path) -> None:
    returns = read_returns_csv(write(tmp_path, "r.csv", "Date,A,B\n2024-01-02,,0.5\n"))
    assert np.isnan(returns.loc["2024-01-02", "A"])


def test_returns_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "missing.csv"))):
        read_returns_csv(tmp_path / "missing.csv")


def test_returns_unparseable_date_names_the_row(tmp_path: Path) -> None:
    text = "Date,A\n2024-01-02,0.1\nnot a date,0.2\n"
    with pytest.raises(DataValidationError, match=r"'not a date' in data row 2.*YYYY-MM-DD"):
        read_returns_csv(write(tmp_path, "r.csv", text))


def test_returns_non_numeric_value_names_column_date_and_value(tmp_path: Path) -> None:
    text = "Date,A,B\n2024-01-02,0.1,0.2\n2024-01-03,0.1,n/a%\n"
    with pytest.raises(DataValidationError, match=r"column 'B'.*'n/a%' on 2024-01-03"):
        read_returns_csv(write(tmp_path, "r.csv", text))


# --- Yield changes ---------------------------------------------------------------------------


def test_yield_changes_diff_drop_rename_and_dropna_by_hand() -> None:
    levels = pd.DataFrame(
        {"1 Mo": [5.0, 5.1, 4.9], "2 Mo": [np.nan, 5.0, 5.2], "10 Yr": [4.0, 4.05, 4.30]},
        index=pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-05"], name="Date"),
    )
    changes = yield_changes(levels, drop=("2 Mo",))
    assert list(changes.columns) == ["1 Mo_delta", "10 Yr_delta"]
    assert list(changes.index) == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-05")]
    np.testing.assert_allclose(changes.to_numpy(), [[0.1, 0.05], [-0.2, 0.25]], atol=1e-12)


def test_yield_changes_lose_both_days_around_a_missing_level_like_the_seed() -> None:
    levels = pd.DataFrame(
        {"10 Yr": [4.0, np.nan, 4.2, 4.3]},
        index=pd.date_range("2024-01-01", periods=4, freq="D", name="Date"),
    )
    changes = yield_changes(levels, drop=())
    assert list(changes.index) == [pd.Timestamp("2024-01-04")]
    assert changes.iloc[0, 0] == pytest.approx(0.1)


def test_yield_changes_unknown_drop_column_lists_available_and_advises() -> None:
    levels = pd.DataFrame({"1 Mo": [1.0, 2.0]}, index=pd.date_range("2024-01-01", periods=2))
    with pytest.raises(DataValidationError, match=r"\['2 Mo', '4 Mo'\].*\['1 Mo'\].*drop=\(\)"):
        yield_changes(levels)


def test_yield_changes_refuse_newest_first_order() -> None:
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-01"])
    with pytest.raises(DataValidationError, match="sort_index"):
        yield_changes(pd.DataFrame({"1 Mo": [1.0, 2.0]}, index=index), drop=())


# --- Locating the seed data ------------------------------------------------------------------


def test_shared_data_dir_follows_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    assert shared_data_dir() == tmp_path.resolve()
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "absent"))
    assert shared_data_dir() is None


def test_shared_data_dir_defaults_to_the_folder_next_to_the_repository(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    assert shared_data_dir() == shared_data


def test_load_seed_weekly_without_data_says_where_it_looked_and_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match=rf"absent.*data_dir=.*{SHARED_DATA_ENV}"):
        load_seed_weekly()


def test_load_seed_weekly_with_a_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"{tmp_path / 'nowhere'} does not exist")
    ):
        load_seed_weekly(tmp_path / "nowhere")


def test_load_seed_weekly_names_the_missing_file(tmp_path: Path) -> None:
    write(tmp_path, SEED_RETURNS_FILE, "Date,A\n2024-01-02,0.1\n")
    with pytest.raises(FileNotFoundError, match=re.escape(SEED_YIELDS_FILE)):
        load_seed_weekly(tmp_path)


def test_load_seed_weekly_on_a_tiny_folder_by_hand(tmp_path: Path) -> None:
    # Week of Mon 2024-01-08: Monday is a bond holiday (no yields row), the fund still trades.
    write(
        tmp_path,
        SEED_RETURNS_FILE,
        "Date,F\n2024-01-05,0.5\n2024-01-08,0.01\n2024-01-09,0.02\n2024-01-12,-0.01\n",
    )
    write(tmp_path, SEED_YIELDS_FILE, (
        "Date,1 Mo,2 Mo,4 Mo,10 Yr\n1/12/2024,5.0,,,4.3\n1/9/2024,5.2,,,4.1\n"
        "1/5/2024,5.1,,,4.0\n1/4/2024,5.0,,,4.2\n"
    ))  # fmt: skip
    weekly = load_seed_weekly(tmp_path, start="2024-01-06", end="2024-01-31")
    assert list(weekly.columns) == ["F", "1 Mo_delta", "10 Yr_delta"]
    assert list(weekly.index) == [pd.Timestamp("2024-01-12")]
    row = weekly.iloc[0]
    assert row["F"] == pytest.approx(1.01 * 1.02 * 0.99 - 1.0)
    # changes 1/5 -> 1/9 -> 1/12 add up to the week's change 5.1 -> 5.0 and 4.0 -> 4.3
    assert row["1 Mo_delta"] == pytest.approx(-0.1)
    assert row["10 Yr_delta"] == pytest.approx(0.3)


# --- The seed's real data --------------------------------------------------------------------


def independent_seed_weekly(folder: Path) -> pd.DataFrame:
    """The seed notebook's cell, with weeks formed by hand instead of resample."""
    bonds = pd.read_csv(folder / SEED_RETURNS_FILE, index_col=0, parse_dates=True)
    bonds = bonds.loc["2016-01-01":"2023-01-01"]
    yields = pd.read_csv(folder / SEED_YIELDS_FILE, index_col=0, parse_dates=True).sort_index()
    delta = yields.diff().drop(columns=["2 Mo", "4 Mo"])
    delta.columns = [f"{col}_delta" for col in delta.columns]
    delta = delta.dropna()
    merged = bonds.merge(delta, left_index=True, right_index=True, how="left")
    # Friday on or after each day: day_of_week is 0 on Monday, 4 on Friday.
    friday = merged.index + pd.to_timedelta((4 - merged.index.day_of_week) % 7, unit="D")
    growth = (1.0 + merged[bonds.columns]).groupby(friday).prod() - 1.0
    change = merged[delta.columns].groupby(friday).sum()
    return pd.concat([growth, change], axis=1).dropna().rename_axis("Date")


@pytest.mark.shared_data
def test_seed_weekly_matches_an_independent_transcription(shared_data: Path) -> None:
    weekly = load_seed_weekly(shared_data)
    expected = independent_seed_weekly(shared_data)
    assert weekly.shape == (365, 16)
    assert weekly.index[0] == pd.Timestamp("2016-01-08")
    assert weekly.index[-1] == pd.Timestamp("2022-12-30")
    pd.testing.assert_frame_equal(weekly, expected, rtol=1e-12, atol=1e-14, check_freq=False)


@pytest.mark.shared_data
def test_seed_weekly_keeps_fund_returns_of_a_bond_market_holiday(shared_data: Path) -> None:
    # Columbus Day 2016-10-10: ETFs traded, the Treasury published no yields.
    daily = read_returns_csv(shared_data / SEED_RETURNS_FILE).loc["2016-10-10":"2016-10-14"]
    assert len(daily) == 5
    weekly = load_seed_weekly(shared_data)
    fpe = "Preferred Income (FPE)"
    expected = float(np.prod(1.0 + daily[fpe].to_numpy()) - 1.0)
    assert weekly.loc["2016-10-14", fpe] == pytest.approx(expected, rel=1e-12)
