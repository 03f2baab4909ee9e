"""`load_fund_and_factors`: "my fund CSV + my factor CSV" in one call.

References are independent of the function: pandas' own ``merge(how="inner")`` on the same
files, and dropped-row counts written down by hand from the rows the test writes.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import (
    DataValidationError,
    DataWarning,
    ReturnUnitsWarning,
    load_fund_and_factors,
    load_funds_and_factors,
)

DATES = pd.date_range("2020-01-03", periods=40, freq="W-FRI")


def _write(tmp_path, *, fund_rows=slice(0, 40), factor_rows=slice(5, 40), scale=1.0):
    """Fund: weeks 0..39 (week 10 empty); factors: weeks 5..39 (week 20's HML empty)."""
    rng = np.random.default_rng(0)
    factors = pd.DataFrame(rng.normal(0, 0.02, (40, 2)), index=DATES, columns=["Mkt", "HML"])
    fund = pd.DataFrame({"Fund": 0.001 + factors @ [1.1, -0.3] + rng.normal(0, 0.005, 40)})
    fund.iloc[10, 0] = np.nan
    factors.iloc[20, 1] = np.nan
    fund_csv, factor_csv = tmp_path / "fund.csv", tmp_path / "factors.csv"
    (fund.iloc[fund_rows] * scale).rename_axis("Date").to_csv(fund_csv, date_format="%Y-%m-%d")
    (factors.iloc[factor_rows] * scale).rename_axis("Date").to_csv(
        factor_csv, date_format="%Y-%m-%d"
    )
    return fund_csv, factor_csv


def test_the_table_equals_pandas_inner_merge_of_the_two_files(tmp_path):
    """Reference: pandas' inner merge on the date column, the fund's return made missing where
    a factor is (week 20's HML: the date stays, so the filter predicts through it)."""
    fund_csv, factor_csv = _write(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        got = load_fund_and_factors(fund_csv, factor_csv)
    fund = pd.read_csv(fund_csv, parse_dates=["Date"])
    factors = pd.read_csv(factor_csv, parse_dates=["Date"])
    expected = fund.merge(factors, on="Date", how="inner").set_index("Date")
    expected.loc[expected["HML"].isna(), "Fund"] = np.nan
    pd.testing.assert_frame_equal(got.df, expected, check_index_type=False, check_freq=False)
    assert (got.target, got.factors) == ("Fund", ["Mkt", "HML"])


def test_a_fund_date_absent_from_its_file_is_kept_as_a_missing_return(tmp_path):
    """By hand: the fund file lacks weeks 12 and 25 (rows deleted), inside its span: both
    factor dates stay, the fund's return missing there (as week 10's empty cell), so the
    filter predicts through them instead of stepping over them; a warning names them."""
    fund_csv, factor_csv = _write(tmp_path)
    lines = fund_csv.read_text().splitlines()
    fund_csv.write_text("\n".join(line for i, line in enumerate(lines) if i - 1 not in (12, 25)))
    with pytest.warns(DataWarning, match=r"2 factor date\(s\) inside the fund's dates with no "
                      r"fund row \(2020-03-27, 2020-06-26\) are kept as missing"):  # fmt: skip
        got = load_fund_and_factors(fund_csv, factor_csv)
    assert len(got.df) == 35 and got.gaps == 2
    assert list(got.df.index[got.df["Fund"].isna()]) == list(DATES[[10, 12, 20, 25]])
    assert "1 empty fund value(s) (2020-03-13) kept" in got.note


def test_fund_and_factor_dates_that_do_not_line_up_are_refused(tmp_path):
    """Fund on Fridays, factors on Thursdays: no common date; then factor weeks 5-7 moved to
    Fridays: 3 of the fund's 34 dates in the factors' span (weeks 5-38) are common (by hand).
    Keeping the others as missing would lose most returns: refused, naming dates of each."""
    fund_csv, factor_csv = _write(tmp_path)
    factors = pd.read_csv(factor_csv, index_col=0, parse_dates=True)
    factors.index = factors.index - pd.Timedelta(days=1)
    factors.to_csv(factor_csv, date_format="%Y-%m-%d")
    with pytest.raises(DataValidationError, match=r"have no date in common"):
        load_fund_and_factors(fund_csv, factor_csv)
    factors.index = factors.index.where(factors.index > DATES[7], factors.index + pd.Timedelta(
        days=1))  # fmt: skip
    factors.to_csv(factor_csv, date_format="%Y-%m-%d")
    match = (r"31 of the 34 dates of .*fund.csv within the factors' span are not in .*: the "
             r"files' dates do not line up, fund \(2020-02-28, .* and 28 more\) against "
             r"factors \(2020-02-27, ")  # fmt: skip
    with pytest.raises(DataValidationError, match=match):
        load_fund_and_factors(fund_csv, factor_csv)


def test_a_fund_with_a_fifth_of_its_dates_a_day_off_is_refused(tmp_path):
    """By hand: every second fund week from week 6 on dated Saturday (17 of the 35 fund dates
    in the factors' span, weeks 5..39, have no factor date): refused; with 7 moved (20%), the
    files load and the 7 rows are dropped."""
    fund_csv, factor_csv = _write(tmp_path)
    fund = pd.read_csv(fund_csv, index_col=0, parse_dates=True)
    moved = fund.index.isin(DATES[6::2])
    fund.index = fund.index.where(~moved, fund.index + pd.Timedelta(days=1))
    fund.to_csv(fund_csv, date_format="%Y-%m-%d")
    with pytest.raises(DataValidationError, match=r"17 of the 35 dates .* are not in"):
        load_fund_and_factors(fund_csv, factor_csv)
    _write(tmp_path)
    fund = pd.read_csv(fund_csv, index_col=0, parse_dates=True)
    moved = fund.index.isin(DATES[6:20:2])  # weeks 6, 8, .., 18: 7 of 35
    fund.index = fund.index.where(~moved, fund.index + pd.Timedelta(days=1))
    fund.to_csv(fund_csv, date_format="%Y-%m-%d")
    with pytest.warns(DataWarning, match=r"12 fund row\(s\) with no factor row"):
        got = load_fund_and_factors(fund_csv, factor_csv)
    assert got.fund_only == 12  # weeks 0-4 before the factors, and the 7 moved


def test_a_date_on_two_rows_is_refused_naming_the_file_and_lines(tmp_path):
    fund_csv, factor_csv = _write(tmp_path)
    lines = factor_csv.read_text().splitlines()
    factor_csv.write_text("\n".join([*lines[:4], lines[3], *lines[4:]]))  # data row 3 again
    with pytest.raises(DataValidationError, match=r"factors.csv: the date 2020-02-21 is on data "
                       r"rows 3, 4 \(lines 4, 5 if no blank lines\), with the same values: "
                       r"delete the repeated line"):  # fmt: skip
        load_fund_and_factors(fund_csv, factor_csv)


def test_the_dropped_rows_of_each_side_are_counted_and_warned(tmp_path):
    """By hand: the fund's weeks 0-4 have no factor row (5 rows); every factor row has a fund
    row (0). The fund's empty week 10 is kept as missing, and so is its return of week 20,
    whose HML is missing (the date kept, a warning naming the factor and the date)."""
    fund_csv, factor_csv = _write(tmp_path)
    with pytest.warns(DataWarning) as caught:
        got = load_fund_and_factors(fund_csv, factor_csv)
    texts = [str(w.message) for w in caught]
    assert any("5 fund row(s) with no factor row" in t and "0 factor row" in t for t in texts)
    assert any("1 fund return(s) on dates where a factor is missing (HML on 2020-05-22) are "
               "kept as missing" in t for t in texts)  # fmt: skip
    assert (got.fund_only, got.factors_only) == (5, 0)
    assert len(got.df) == 35 and list(got.df.index[got.df["Fund"].isna()]) == list(DATES[[10, 20]])


def test_factor_rows_beyond_the_fund_are_counted_on_the_factor_side(tmp_path):
    """By hand: fund weeks 0..29, factor weeks 5..39: 5 fund-only rows (0-4), 10 factor-only
    rows (30-39)."""
    fund_csv, factor_csv = _write(tmp_path, fund_rows=slice(0, 30))
    with pytest.warns(DataWarning):
        got = load_fund_and_factors(fund_csv, factor_csv)
    assert (got.fund_only, got.factors_only) == (5, 10)


def test_percent_files_are_divided_by_100(tmp_path):
    """Reference: the decimal files read as they are; the same data written x100 in percent."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    dec, pct = _write(tmp_path / "a"), _write(tmp_path / "b", scale=100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        a = load_fund_and_factors(*dec)
        b = load_fund_and_factors(*pct, units="percent")
    pd.testing.assert_frame_equal(a.df, b.df, rtol=1e-12)
    assert "'percent' (divided by 100)" in b.note


def test_decimal_files_read_as_percent_warn_naming_the_file_and_key(tmp_path):
    """The decimal files (weekly sd 0.02: an annualised ~14%) divided by 100 vary by ~0.14% a
    year, below the 1% of any return series but cash: each file read as percent is named with
    its key and columns; the same data written in percent and read so are not."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    dec, pct = _write(tmp_path / "a"), _write(tmp_path / "b", scale=100.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_fund_and_factors(*dec, units="percent")
        load_fund_and_factors(pct[0], dec[1], units="percent", factor_units="percent")
        load_fund_and_factors(*pct, units="percent")
    said = [str(w.message) for w in caught if issubclass(w.category, ReturnUnitsWarning)]
    assert len(said) == 3, said
    assert said[0].startswith(f"{dec[0]}: read as percent (units = 'percent', divided by 100), "
                              "'Fund' (0.1")  # fmt: skip
    assert "set units to 'decimal'" in said[0]
    assert said[1].startswith(f"{dec[1]}: read as percent (factor_units = 'percent'")
    assert "'Mkt' (0.1" in said[1] and "'HML' (0.1" in said[1]
    assert said[2] == said[1]  # the second call's factor file; the percent files say nothing


def test_a_percent_fund_beside_decimal_factors_is_read_with_factor_units(tmp_path):
    """Reference: the decimal files read as they are; the fund file written x100 (percent),
    the factor file as it was (decimal)."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    dec, pct = _write(tmp_path / "a"), _write(tmp_path / "b", scale=100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        a = load_fund_and_factors(*dec)
        b = load_fund_and_factors(pct[0], dec[1], units="percent", factor_units="decimal")
    pd.testing.assert_frame_equal(a.df, b.df, rtol=1e-12)
    assert "fund 'percent' (divided by 100), factors 'decimal', read as decimal" in b.note
    with pytest.raises(ValueError, match="factor_units must be 'decimal' or 'percent'"):
        load_fund_and_factors(*dec, factor_units="bp")


def test_percent_data_read_as_decimal_warn_about_units(tmp_path):
    """Returns x20 (a weekly sd of ~0.4, none below -1) exceed the 0.28 weekly bound of
    decimals."""
    fund_csv, factor_csv = _write(tmp_path, scale=20.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.warns(ReturnUnitsWarning, match="do not look like decimal returns"):
            load_fund_and_factors(fund_csv, factor_csv)


@pytest.mark.parametrize("weekly", [False, True])
def test_a_return_below_minus_one_is_refused_as_percent_naming_file_and_key(tmp_path, weekly):
    """A factor file in percent (Ken French's) read as decimal: -2.35 is not a decimal return.
    Refused before anything is compounded, naming the file, the cell and ``factor_units``."""
    days = pd.bdate_range("2021-03-01", "2021-03-26")
    rng = np.random.default_rng(3)
    fund = pd.DataFrame({"Fund": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    mkt = pd.DataFrame({"Mkt": rng.normal(0, 0.3, len(days))}, index=days).rename_axis("Date")
    mkt.iloc[4, 0] = -2.35
    fund.to_csv(tmp_path / "f.csv", date_format="%Y-%m-%d")
    mkt.to_csv(tmp_path / "m.csv", date_format="%Y-%m-%d")
    with pytest.raises(DataValidationError, match=r"m\.csv: 'Mkt' is -2\.35 on 2021-03-05, a "
                       r"loss of more than 100%.*set factor_units to 'percent' \(the "
                       r"argument, or a model file's \[data\] key\)"):  # fmt: skip
        load_fund_and_factors(tmp_path / "f.csv", tmp_path / "m.csv", weekly=weekly)


def test_weekly_compounds_each_file_over_its_own_days(tmp_path):
    """Reference: (1 + r).prod() - 1 by hand over each file's rows of the week: the fund has
    no row on Thursday 4 March (its holiday: its price did not change), the factor has; the
    weekly return of each is its change over the week."""
    days = pd.bdate_range("2021-03-01", "2021-03-26")
    rng = np.random.default_rng(1)
    fund = pd.DataFrame({"Fund": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    mkt = pd.DataFrame({"Mkt": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    fund.drop(days[3]).to_csv(tmp_path / "f.csv", date_format="%Y-%m-%d")
    mkt.to_csv(tmp_path / "m.csv", date_format="%Y-%m-%d")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # nothing dropped, nothing missing
        got = load_fund_and_factors(tmp_path / "f.csv", tmp_path / "m.csv", weekly=True)
    assert got.df.index[0] == pd.Timestamp("2021-03-05") and len(got.df) == 4
    fund_days = days[:5].drop(days[3])
    assert got.df["Fund"].iloc[0] == pytest.approx((1 + fund.loc[fund_days, "Fund"]).prod() - 1)
    assert got.df["Mkt"].iloc[0] == pytest.approx((1 + mkt.loc[days[:5], "Mkt"]).prod() - 1)


def test_a_missing_column_names_the_file_and_its_columns(tmp_path):
    fund_csv, factor_csv = _write(tmp_path)
    with pytest.raises(DataValidationError, match=r"factors\.csv: no column 'SMB'.*'Mkt', 'HML'"):
        load_fund_and_factors(fund_csv, factor_csv, factor_cols=["Mkt", "SMB"])


def test_a_fund_file_with_several_columns_asks_for_fund_col(tmp_path):
    _, factor_csv = _write(tmp_path)
    with pytest.raises(DataValidationError, match=r"factors\.csv: has columns.*fund_col="):
        load_fund_and_factors(factor_csv, factor_csv)


def test_a_file_without_dates_names_the_file_and_the_row(tmp_path):
    _, factor_csv = _write(tmp_path)
    pd.DataFrame({"Fund": [0.01, 0.02]}).to_csv(tmp_path / "nodates.csv")  # 0, 1 as first column
    with pytest.raises(DataValidationError, match=r"nodates\.csv: cannot parse the date"):
        load_fund_and_factors(tmp_path / "nodates.csv", factor_csv)


def test_files_without_a_common_date_say_so_with_both_spans(tmp_path):
    fund_csv, factor_csv = _write(tmp_path, fund_rows=slice(0, 5), factor_rows=slice(5, 40))
    with pytest.raises(DataValidationError, match=r"2020-01-03 \.\. 2020-01-31.*no date in common"):
        load_fund_and_factors(fund_csv, factor_csv)


def test_the_files_are_not_modified(tmp_path):
    fund_csv, factor_csv = _write(tmp_path)
    before = fund_csv.read_bytes(), factor_csv.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        load_fund_and_factors(fund_csv, factor_csv, units="percent")
    assert (fund_csv.read_bytes(), factor_csv.read_bytes()) == before


def test_missing_value_markers_are_read_as_missing_and_named(tmp_path):
    """By hand: "#N/A" (a spreadsheet's failed lookup) in week 12's fund cell and "NA" (R's
    missing value) in week 30's are missing returns, named in a warning with their dates; a
    "-" is not a marker: refused, naming the cell."""
    fund_csv, factor_csv = _write(tmp_path)
    lines = fund_csv.read_text().splitlines()
    lines[13] = f"{DATES[12]:%Y-%m-%d},#N/A"
    lines[31] = f"{DATES[30]:%Y-%m-%d},NA"
    fund_csv.write_text("\n".join(lines))
    with pytest.warns(DataWarning, match=r"fund.csv: 2 cell\(s\) hold a missing-value marker and "
                      r"are read as missing: '#N/A' in 'Fund' on 2020-03-27, 'NA' in 'Fund' "
                      r"on 2020-07-31"):  # fmt: skip
        got = load_fund_and_factors(fund_csv, factor_csv)
    assert list(got.df.index[got.df["Fund"].isna()]) == list(DATES[[10, 12, 20, 30]])
    lines[13] = f"{DATES[12]:%Y-%m-%d},-"
    fund_csv.write_text("\n".join(lines))
    with pytest.raises(DataValidationError, match=r"column 'Fund' is not numeric: '-' on "
                       r"2020-03-27; fix or blank that cell"):  # fmt: skip
        load_fund_and_factors(fund_csv, factor_csv)


def test_a_semicolon_separated_file_is_refused_naming_the_separator(tmp_path):
    fund_csv, factor_csv = _write(tmp_path)
    fund_csv.write_text(fund_csv.read_text().replace(",", ";"))
    with pytest.raises(DataValidationError, match=r"fund.csv: no column besides the dates.*"
                       r"this one looks separated by ';', save it with commas"):  # fmt: skip
        load_fund_and_factors(fund_csv, factor_csv)


def test_a_semicolon_file_with_decimal_commas_is_refused_naming_the_separator(tmp_path):
    """An EU-locale spreadsheet export (';' between the columns, ',' as the decimal point)
    that pandas cannot even index: the error names the file and the fix, not a bare pandas
    ParserError (a fresh user's "Could not construct index")."""
    _, factor_csv = _write(tmp_path)
    eu = tmp_path / "funds_eu.csv"
    eu.write_text("Date;Fund;Other\n2020-01-03;0,01;0,02\n2020-01-10;0,02;0,01\n")
    with pytest.raises(DataValidationError, match=r"funds_eu\.csv: cannot be read as a CSV .*"
                       r"looks separated by ';', save it with commas \(and '\.' as the decimal "
                       r"point\)"):  # fmt: skip
        load_fund_and_factors(eu, factor_csv, fund_col="Fund")


def test_a_period_the_factor_file_lacks_keeps_its_date_with_the_return_missing(tmp_path):
    """By hand: the factor file lacks week 15 (its neighbours 14 days apart, twice the usual
    spacing): the fund's date stays with its return missing, so the filter predicts through
    the week instead of stepping over it; the fund's week 6 dated a day late (its nearest
    factor date a day away) is an off-calendar row: dropped."""
    fund_csv, factor_csv = _write(tmp_path)
    lines = factor_csv.read_text().splitlines()
    factor_csv.write_text("\n".join(line for i, line in enumerate(lines) if i - 1 != 15 - 5))
    fund = pd.read_csv(fund_csv, index_col=0, parse_dates=True)
    fund.index = fund.index.where(fund.index != DATES[6], DATES[6] + pd.Timedelta(days=1))
    fund.to_csv(fund_csv, date_format="%Y-%m-%d")
    with pytest.warns(DataWarning) as caught:
        got = load_fund_and_factors(fund_csv, factor_csv)
    assert DATES[15] in got.df.index and np.isnan(got.df.loc[DATES[15], "Fund"])
    assert got.df.loc[DATES[15], ["Mkt", "HML"]].isna().all()
    assert DATES[6] + pd.Timedelta(days=1) not in got.df.index and got.fund_only == 6  # 0-4, 6
    assert any("where a factor is missing (Mkt, HML on 2020-04-17" in str(w.message)
               for w in caught)  # fmt: skip


def test_weekly_keeps_a_week_with_an_empty_fund_cell_as_a_missing_return(tmp_path):
    """By hand: the fund's cell of Wednesday 3 March is empty, so its week's return is unknown
    (compounding the other four days would read the day as 0), and the week of 19 March has
    no fund value at all: both weeks are kept as missing returns (the filter predicts
    through them), the factor's weeks compound all five days."""
    days = pd.bdate_range("2021-03-01", "2021-04-30")
    rng = np.random.default_rng(2)
    fund = pd.DataFrame({"Fund": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    mkt = pd.DataFrame({"Mkt": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    fund.loc[pd.Timestamp("2021-03-03")] = np.nan
    fund.loc["2021-03-15":"2021-03-19"] = np.nan
    fund.to_csv(tmp_path / "f.csv", date_format="%Y-%m-%d")
    mkt.to_csv(tmp_path / "m.csv", date_format="%Y-%m-%d")
    # the first week is before the fund's first return: not a gap the filter predicts through
    with pytest.warns(DataWarning, match=r"1 week\(s\) without a fund row or with an empty fund "
                      r"cell \(2021-03-19\) are kept as missing"):  # fmt: skip
        got = load_fund_and_factors(tmp_path / "f.csv", tmp_path / "m.csv", weekly=True)
    assert list(got.df.index) == list(pd.date_range("2021-03-05", periods=9, freq="W-FRI"))
    assert np.isnan(got.df["Fund"].iloc[0]) and np.isnan(got.df["Fund"].iloc[2])
    assert got.df["Mkt"].iloc[0] == pytest.approx((1 + mkt.loc[days[:5], "Mkt"]).prod() - 1)
    assert got.df["Fund"].iloc[1] == pytest.approx((1 + fund.loc[days[5:10], "Fund"]).prod() - 1)
    assert "6 empty fund day(s)" in got.note


def test_weekly_on_monthly_files_is_refused(tmp_path):
    fund_csv, factor_csv = _write(tmp_path)
    fund = pd.read_csv(fund_csv, index_col=0)
    fund.index = pd.date_range("2020-01-31", periods=len(fund), freq="ME").strftime("%Y-%m-%d")
    fund.rename_axis("Date").to_csv(fund_csv)
    with pytest.raises(DataValidationError, match=r"weekly=True compounds daily returns, but the "
                       r"dates of .*fund.csv are 3\d days apart"):  # fmt: skip
        load_fund_and_factors(fund_csv, factor_csv, weekly=True)


def test_weekly_drops_the_fund_weeks_before_and_after_the_factor_file_as_daily_rows_are(tmp_path):
    """A fund file of 2021-03-01 .. 2021-04-30 against factors of 2021-03-15 .. 2021-04-09: the
    fund's weeks ending 5 and 12 March and 16, 23 and 30 April have no factor day; they are
    dropped and counted in ``fund_only`` (kept as missing returns, a fresh user's 2015-2025 fund
    against 2020-2023 factors had 359 of 516 weeks empty, and the train/test split, which
    counts rows, scored 35 test weeks of 155), exactly as the monthly rows outside the factor
    file are (reference: the same files without ``weekly``, the counts by hand)."""
    days = pd.bdate_range("2021-03-01", "2021-04-30")
    rng = np.random.default_rng(3)
    pd.DataFrame({"Fund": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date").to_csv(
        tmp_path / "f.csv", date_format="%Y-%m-%d")  # fmt: skip
    inner = days[(days >= "2021-03-15") & (days <= "2021-04-09")]
    pd.DataFrame({"Mkt": rng.normal(0, 0.01, len(inner))}, index=inner).rename_axis(
        "Date").to_csv(tmp_path / "m.csv", date_format="%Y-%m-%d")  # fmt: skip
    with pytest.warns(DataWarning, match=r"5 fund week\(s\) with no factor day"):
        got = load_fund_and_factors(tmp_path / "f.csv", tmp_path / "m.csv", weekly=True)
    assert list(got.df.index) == list(pd.date_range("2021-03-19", "2021-04-09", freq="W-FRI"))
    assert got.fund_only == 5 and got.df.notna().all().all()
    with pytest.warns(DataWarning, match=r"fund row\(s\) with no factor row"):
        daily = load_fund_and_factors(tmp_path / "f.csv", tmp_path / "m.csv")
    assert (daily.df.index[0], daily.df.index[-1]) == (inner[0], inner[-1])


def test_weekly_without_a_day_where_fund_and_factors_are_observed_is_refused(tmp_path):
    days = pd.bdate_range("2021-03-01", "2021-03-12")
    pd.DataFrame({"Fund": np.nan}, index=days).rename_axis("Date").to_csv(
        tmp_path / "f.csv", date_format="%Y-%m-%d")  # fmt: skip
    pd.DataFrame({"Mkt": 0.01}, index=days).rename_axis("Date").to_csv(
        tmp_path / "m.csv", date_format="%Y-%m-%d")  # fmt: skip
    with pytest.raises(DataValidationError, match="no week where the fund and every factor have"):
        load_fund_and_factors(tmp_path / "f.csv", tmp_path / "m.csv", weekly=True)


def test_several_funds_of_one_file_load_as_each_fund_on_its_own(tmp_path):
    """`load_funds_and_factors` reads the files once; each fund's table, counts and note are
    those of `load_fund_and_factors` on a file holding that fund alone (reference: the
    single-fund files written from the same values), daily files compounded weekly, the fund
    file in percent, one fund empty on a day the other has."""
    days = pd.bdate_range("2021-03-01", "2021-04-30")
    rng = np.random.default_rng(5)
    funds = pd.DataFrame(rng.normal(0, 1.0, (len(days), 2)), index=days,
                         columns=["A", "B"]).rename_axis("Date")  # fmt: skip
    funds.loc[pd.Timestamp("2021-03-10"), "B"] = np.nan
    mkt = pd.DataFrame({"Mkt": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    funds.to_csv(tmp_path / "funds.csv", date_format="%Y-%m-%d")
    mkt.to_csv(tmp_path / "mkt.csv", date_format="%Y-%m-%d")
    options = dict(units="percent", factor_units="decimal", weekly=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        got = load_funds_and_factors(tmp_path / "funds.csv", tmp_path / "mkt.csv", ["B", "A"],
                                     **options)  # fmt: skip
        for loaded, name in zip(got, ["B", "A"], strict=True):
            alone = tmp_path / f"{name}.csv"
            funds[[name]].to_csv(alone, date_format="%Y-%m-%d")
            expected = load_fund_and_factors(alone, tmp_path / "mkt.csv", **options)
            pd.testing.assert_frame_equal(loaded.df, expected.df)
            assert loaded.note == expected.note.replace(str(alone), str(tmp_path / "funds.csv"))
            assert (loaded.target, loaded.factors, loaded.gaps) == (name, ["Mkt"], expected.gaps)
    # the funds share the factors' weeks; B's week of 12 March, with its empty day, is missing
    pd.testing.assert_series_equal(got[0].df["Mkt"], got[1].df["Mkt"])
    assert np.isnan(got[0].df["B"].iloc[1]) and not np.isnan(got[1].df["A"].iloc[1])


def test_several_funds_default_to_every_column_of_the_fund_file_in_its_order(tmp_path):
    """fund_cols left out: each column after the dates, as if listed in the file's order."""
    days = pd.bdate_range("2021-03-01", "2021-03-31")
    rng = np.random.default_rng(8)
    funds = pd.DataFrame(rng.normal(0, 0.01, (len(days), 3)), index=days,
                         columns=["Z", "A", "M"]).rename_axis("Date")  # fmt: skip
    mkt = pd.DataFrame({"Mkt": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    funds.to_csv(tmp_path / "funds.csv", date_format="%Y-%m-%d")
    mkt.to_csv(tmp_path / "mkt.csv", date_format="%Y-%m-%d")
    every = load_funds_and_factors(tmp_path / "funds.csv", tmp_path / "mkt.csv")
    listed = load_funds_and_factors(tmp_path / "funds.csv", tmp_path / "mkt.csv", ["Z", "A", "M"])
    assert [f.target for f in every] == ["Z", "A", "M"]
    for got, expected in zip(every, listed, strict=True):
        pd.testing.assert_frame_equal(got.df, expected.df)
        pd.testing.assert_frame_equal(got.df, funds[[got.target]].join(mkt), check_freq=False)


def test_several_funds_name_the_first_column_absent_from_the_fund_file(tmp_path):
    fund_csv, factor_csv = _write(tmp_path)
    with pytest.raises(DataValidationError, match=r"fund.csv: no column 'Gone' \(from fund_cols\)"):
        load_funds_and_factors(fund_csv, factor_csv, ["Fund", "Gone"])


def test_several_funds_warn_once_per_kind_naming_each_fund_and_not_a_late_start(tmp_path):
    """A's file week of 12 March has an empty day, B's of 19 March; C starts on 22 March (its
    weeks before are no gaps: the model starts at a fund's first return)."""
    days = pd.bdate_range("2021-03-01", "2021-04-30")
    rng = np.random.default_rng(6)
    funds = pd.DataFrame(rng.normal(0, 0.01, (len(days), 3)), index=days,
                         columns=["A", "B", "C"]).rename_axis("Date")  # fmt: skip
    funds.loc[pd.Timestamp("2021-03-10"), "A"] = np.nan
    funds.loc[pd.Timestamp("2021-03-17"), "B"] = np.nan
    funds.loc[:"2021-03-19", "C"] = np.nan
    mkt = pd.DataFrame({"Mkt": rng.normal(0, 0.01, len(days))}, index=days).rename_axis("Date")
    funds.to_csv(tmp_path / "funds.csv", date_format="%Y-%m-%d")
    mkt.to_csv(tmp_path / "mkt.csv", date_format="%Y-%m-%d")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_funds_and_factors(tmp_path / "funds.csv", tmp_path / "mkt.csv",
                                     ["A", "B", "C"], weekly=True)  # fmt: skip
    said = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(said) == 1
    assert re.search(r"2 of 3 funds: A: 1 week\(s\) .* \(2021-03-12\) .*; B: 1 week\(s\) .* "
                     r"\(2021-03-19\) .* kept as missing", said[0])  # fmt: skip
    assert got[2].gaps == 0 and got[2].df["C"].iloc[:3].isna().all()


def _rewrite_dates(csv, fmt: str) -> None:
    """Rewrite a file's ISO dates in another format (the values untouched)."""
    frame = pd.read_csv(csv, index_col=0, parse_dates=True)
    frame.set_axis(frame.index.strftime(fmt), axis=0).rename_axis("Date").to_csv(csv)


@pytest.mark.filterwarnings("ignore::tvbeta.data.DataWarning")
def test_dates_in_another_format_read_with_date_format_equal_the_iso_files(tmp_path):
    """Reference: the same files with ISO dates. The fund's dates rewritten as US 01/31/2020,
    the factors' as 31.01.2020: ``date_format`` and ``factor_date_format`` give the same
    table."""
    fund_csv, factor_csv = _write(tmp_path)
    expected = load_fund_and_factors(fund_csv, factor_csv).df
    _rewrite_dates(fund_csv, "%m/%d/%Y")
    _rewrite_dates(factor_csv, "%d.%m.%Y")
    got = load_fund_and_factors(fund_csv, factor_csv, date_format="%m/%d/%Y",
                                factor_date_format="%d.%m.%Y")  # fmt: skip
    pd.testing.assert_frame_equal(got.df, expected)
    (again,) = load_funds_and_factors(fund_csv, factor_csv, date_format="%m/%d/%Y",
                                      factor_date_format="%d.%m.%Y")  # fmt: skip
    pd.testing.assert_frame_equal(again.df, expected)


def test_monthly_dates_without_a_day_meet_month_end_dates(tmp_path):
    """Ken French's monthly factor files date a month 202001 ("%Y%m"), a fund file may write
    2020-01: both are the month's last day, so they meet a month-end file. Reference: the
    month-end ISO files written by hand."""
    months = pd.date_range("2020-01-31", periods=24, freq="ME")
    rng = np.random.default_rng(3)
    factors = pd.DataFrame(rng.normal(0, 0.04, (24, 2)), index=months, columns=["Mkt", "SMB"])
    fund = pd.DataFrame({"Fund": factors @ [0.9, 0.2] + rng.normal(0, 0.01, 24)})
    fund.rename_axis("Date").to_csv(tmp_path / "fund_iso.csv")
    factors.rename_axis("Date").to_csv(tmp_path / "factors_iso.csv")
    expected = load_fund_and_factors(tmp_path / "fund_iso.csv", tmp_path / "factors_iso.csv").df
    fund.set_axis(months.strftime("%Y-%m"), axis=0).rename_axis("Date").to_csv(
        tmp_path / "fund.csv")  # fmt: skip
    factors.set_axis(months.strftime("%Y%m"), axis=0).rename_axis("Date").to_csv(
        tmp_path / "factors.csv")  # fmt: skip
    got = load_fund_and_factors(tmp_path / "fund.csv", tmp_path / "factors.csv",
                                factor_date_format="%Y%m")  # fmt: skip
    pd.testing.assert_frame_equal(got.df, expected)
    assert got.df.index[0] == pd.Timestamp("2020-01-31")


def test_a_date_in_another_format_is_refused_naming_date_format(tmp_path):
    fund_csv, factor_csv = _write(tmp_path)
    _rewrite_dates(fund_csv, "%m/%d/%Y")
    with pytest.raises(DataValidationError, match=r"'01/03/2020' in data row 1.*expected "
                       r"YYYY-MM-DD, or pass date_format= \(e\.g\. '%m/%d/%Y'"):  # fmt: skip
        load_fund_and_factors(fund_csv, factor_csv)
    with pytest.raises(DataValidationError, match=r"expected dates written as '%d/%m/%Y' \(e\.g"
                       r"\. 31/01/1995\); pass date_format= with the file's format"):  # fmt: skip
        load_fund_and_factors(fund_csv, factor_csv, date_format="%d/%m/%Y")
    with pytest.raises(ValueError, match=r"factor_date_format must be a strftime format such as "
                       r"'%m/%d/%Y'.*got 'dd.mm.yyyy'"):  # fmt: skip
        load_fund_and_factors(fund_csv, factor_csv, factor_date_format="dd.mm.yyyy")


def test_ken_french_style_dates_are_refused_with_the_format_to_pass(tmp_path):
    """A monthly file dated 202001 (read as numbers by the CSV parser): the message quotes the
    text, not numpy's repr, and names the format."""
    fund_csv, _ = _write(tmp_path)
    factors = tmp_path / "french.csv"
    factors.write_text("Date,Mkt\n202001,0.01\n202002,-0.02\n")
    with pytest.raises(DataValidationError, match=r"cannot parse the date '202001' in data row 1"
                       r".*dates written as 202001 take factor_date_format='%Y%m'"):  # fmt: skip
        load_fund_and_factors(fund_csv, factors)


def test_a_factor_file_read_with_the_funds_format_names_factor_date_format(tmp_path):
    """A fresh user gave date_format for the US-dated fund file only: the Ken French factor file
    (202001) was read with it, and the error must name the argument that mends it."""
    fund_csv, _ = _write(tmp_path)
    _rewrite_dates(fund_csv, "%m/%d/%Y")
    factors = tmp_path / "french.csv"
    factors.write_text("Date,Mkt\n202001,0.01\n202002,-0.02\n")
    with pytest.raises(DataValidationError, match=r"written as '%m/%d/%Y' \(e\.g\. 01/31/1995\); "
                       r"pass factor_date_format= with the file's format; dates written as "
                       r"202001 take factor_date_format='%Y%m' \(in a model file, the \[data\] "
                       r"key factor_date_format\)"):  # fmt: skip
        load_fund_and_factors(fund_csv, factors, date_format="%m/%d/%Y")
