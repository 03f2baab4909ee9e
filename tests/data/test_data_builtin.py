"""load_french: the offline Fama-French data, in decimal units, month-end dates."""

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import (
    FRENCH_COLUMNS,
    FRENCH_FACTORS,
    FRENCH_INDUSTRIES,
    FRENCH_PORTFOLIOS,
    load_french,
)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return load_french(excess=False)


@pytest.fixture(scope="module")
def excess() -> pd.DataFrame:
    return load_french()


def test_has_every_documented_column_in_order(excess: pd.DataFrame) -> None:
    assert len(FRENCH_FACTORS) == 4 and len(FRENCH_INDUSTRIES) == 12
    assert len(FRENCH_PORTFOLIOS) == 18
    assert tuple(excess.columns) == FRENCH_COLUMNS
    assert excess.shape == (819, 35)
    assert (excess.dtypes == np.float64).all()


def test_index_is_consecutive_month_ends_named_date(excess: pd.DataFrame) -> None:
    index = excess.index
    assert isinstance(index, pd.DatetimeIndex) and index.name == "Date"
    assert index.is_month_end.all()
    assert index[0] == pd.Timestamp("1949-01-31") and index[-1] == pd.Timestamp("2017-03-31")
    months = index.year * 12 + index.month
    assert (np.diff(months) == 1).all()


def test_values_are_decimal_monthly_returns(raw: pd.DataFrame) -> None:
    # In percent, RF would average about 0.34; in decimal it is about 0.0034 (4% a year).
    assert 0.0 <= raw["RF"].min() and raw["RF"].max() < 0.02
    assert 0.02 < 12 * raw["RF"].mean() < 0.08
    assert raw.abs().max().max() < 1.0


def test_industries_are_total_returns_in_the_file(raw: pd.DataFrame) -> None:
    # Their average sits next to the market's total return MktRF + RF, not next to MktRF.
    industry_mean = raw[list(FRENCH_INDUSTRIES)].mean().mean()
    market_total = (raw["MktRF"] + raw["RF"]).mean()
    assert abs(industry_mean - market_total) < 0.5 * raw["RF"].mean()


def test_excess_subtracts_rf_from_industries_and_portfolios(
    raw: pd.DataFrame, excess: pd.DataFrame
) -> None:
    assets = [*FRENCH_INDUSTRIES, *FRENCH_PORTFOLIOS]
    expected = raw[assets].to_numpy() - raw[["RF"]].to_numpy()
    np.testing.assert_allclose(excess[assets].to_numpy(), expected, rtol=0, atol=1e-15)
    # First month, read off the linearmodels file: NoDur 0.0367, RF 0.0010.
    assert raw.loc["1949-01-31", "NoDur"] == pytest.approx(0.0367)
    assert excess.loc["1949-01-31", "NoDur"] == pytest.approx(0.0357)


def test_excess_leaves_factors_and_rf_unchanged(raw: pd.DataFrame, excess: pd.DataFrame) -> None:
    cols = [*FRENCH_FACTORS, "RF"]
    pd.testing.assert_frame_equal(excess[cols], raw[cols])
    assert excess.loc["1949-01-31", "MktRF"] == pytest.approx(0.0023)
