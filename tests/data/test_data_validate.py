"""prepare_design: the arrays the filter needs, and one clear error per kind of bad input."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from tvbeta.data import DataValidationError, DataWarning, prepare_design
from tvbeta.data.validate import closest, prepare_designs


def returns(n: int = 8, seed: int = 0) -> pd.DataFrame:
    """Weekly fund and factor returns on Fridays from 2024-01-05."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-05", periods=n, freq="W-FRI", name="Date")
    return pd.DataFrame(rng.normal(0.0, 0.02, (n, 3)), index=index, columns=["fund", "a", "b"])


def raises(match: str) -> pytest.RaisesExc:
    return pytest.raises(DataValidationError, match=match)


# --- what a valid table gives ----------------------------------------------------------------


def test_arrays_with_intercept_have_a_leading_column_of_ones() -> None:
    df = returns()
    design = prepare_design(df, "fund", ["a", "b"], intercept=True)
    assert design.state_names == ("Intercept", "a", "b")
    assert design.factor_names == ("a", "b") and design.has_intercept
    assert design.Z.shape == (8, 3) and design.H.shape == (8, 2) and design.y.shape == (8,)
    np.testing.assert_array_equal(design.Z[:, 0], np.ones(8))
    np.testing.assert_array_equal(design.Z[:, 1:], df[["a", "b"]].to_numpy())
    np.testing.assert_array_equal(design.y, df["fund"].to_numpy())
    assert design.index.equals(df.index)


def assert_same_design(got, expected) -> None:
    for field in ("y", "H", "Z"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
    assert got.index.equals(expected.index)
    assert got[4:] == expected[4:]  # names: states, target, factors


def test_head_is_the_design_of_the_first_rows() -> None:
    # the reference is prepare_design on the sliced table, a NaN target and factor included
    df = returns(12)
    df.iloc[3, 0] = df.iloc[3, 1] = np.nan
    full = prepare_design(df, "fund", ["a", "b"], intercept=True)
    assert_same_design(full.head(9, burn=2),
                       prepare_design(df.iloc[:9], "fund", ["a", "b"], intercept=True, burn=2))
    with raises("too few rows with an observed target: 2 after the first burn=2"):
        full.head(5, burn=2)  # 4 observed rows: what prepare_design on 5 rows says


def test_with_intercept_is_the_design_of_the_other_intercept_choice() -> None:
    df = returns()
    with_icpt = prepare_design(df, "fund", ["a", "b"], intercept=True)
    without = prepare_design(df, "fund", ["a", "b"], intercept=False)
    assert_same_design(with_icpt.with_intercept(False), without)
    assert_same_design(without.with_intercept(True), with_icpt)
    level = df.assign(a=3.0 + 1e-3 * df["a"])  # a level: nearly collinear with an intercept
    no_icpt = prepare_design(level, "fund", ["a"], intercept=False)  # no warning: one column
    with pytest.warns(UserWarning, match=r"columns \['Intercept', 'a'\] are nearly collinear"):
        no_icpt.with_intercept(True)


def test_prepare_designs_gives_each_target_its_own_design_with_its_own_arrays() -> None:
    """Factors checked once: each design is the table's columns (NaN factor -> 0 in Z where
    the target is missing), equal to a fresh one-target call, and no array is shared."""
    df = returns(12).assign(other=lambda d: d["fund"] * 0.5 + d["a"])
    df.loc[df.index[3], ["other", "a"]] = np.nan  # a NaN factor where "other" is missing
    df.loc[df.index[3], "fund"] = np.nan
    designs = list(prepare_designs(df, ["fund", "other"], ["a", "b"], intercept=True, burn=2))
    for design, target in zip(designs, ["fund", "other"], strict=True):
        np.testing.assert_array_equal(design.y, df[target].to_numpy())
        np.testing.assert_array_equal(design.H, df[["a", "b"]].to_numpy())
        np.testing.assert_array_equal(design.Z[:, 1:], df[["a", "b"]].fillna(0.0).to_numpy())
        assert_same_design(design, prepare_design(df, target, ["a", "b"], intercept=True, burn=2))
    first, second = designs
    assert not any(np.shares_memory(getattr(first, f), getattr(second, f)) for f in "yHZ")


def test_prepare_designs_raises_a_targets_error_when_its_design_is_asked_for() -> None:
    df = returns().assign(bad=lambda d: d["fund"].where(d.index != d.index[5], np.inf))
    designs = prepare_designs(df, ["fund", "bad"], ["a", "b"], intercept=False)
    assert next(designs).target_col == "fund"
    with raises(r"column 'bad' is infinite on 2024-02-09"):
        next(designs)
    factor_bad = df.assign(a=df["a"].where(df.index != df.index[2], np.inf))
    with raises(r"column 'a' is infinite on 2024-01-19"):  # the factors' error: at the first
        next(prepare_designs(factor_bad, ["fund", "bad"], ["a", "b"], intercept=False))


def test_arrays_without_intercept_are_the_factors() -> None:
    df = returns()
    design = prepare_design(df, "fund", ["b", "a"], intercept=False)
    assert design.state_names == ("b", "a") and not design.has_intercept
    np.testing.assert_array_equal(design.Z, df[["b", "a"]].to_numpy())


def test_integer_columns_become_float64() -> None:
    df = pd.DataFrame({"fund": [1, 2, 4, 3], "a": [1, 0, 2, 5]})
    design = prepare_design(df, "fund", ["a"], intercept=False)
    assert design.y.dtype == np.float64 and design.Z.dtype == np.float64


def test_missing_target_rows_are_allowed_and_stay_nan() -> None:
    df = returns()
    df.iloc[2, 0] = np.nan
    design = prepare_design(df, "fund", ["a", "b"], intercept=True)
    assert np.isnan(design.y[2]) and np.isfinite(np.delete(design.y, 2)).all()


def test_nan_factor_on_a_missing_target_row_is_zero_in_Z_but_kept_in_H() -> None:
    df = returns()
    df.loc[df.index[3], ["fund", "a"]] = np.nan
    design = prepare_design(df, "fund", ["a", "b"], intercept=True)
    assert np.isnan(design.H[3, 0])
    assert design.Z[3].tolist() == [1.0, 0.0, df["b"].iloc[3]]
    assert np.isfinite(design.Z).all()


def test_non_datetime_index_is_used_as_is() -> None:
    df = returns().reset_index(drop=True)
    design = prepare_design(df, "fund", ["a"], intercept=False)
    assert design.index.equals(pd.RangeIndex(8))


# --- names -----------------------------------------------------------------------------------


def test_unknown_target_lists_available_columns() -> None:
    with raises(r"target column 'FPE' is not in .*available: \['fund', 'a', 'b'\]"):
        prepare_design(returns(), "FPE", ["a"], intercept=True)


def test_unknown_factor_lists_available_columns() -> None:
    with raises(r"factor column\(s\) \['PFF'\] not in .*available: \['fund', 'a', 'b'\]"):
        prepare_design(returns(), "fund", ["a", "PFF"], intercept=True)


def test_intercept_only_design_is_a_column_of_ones() -> None:
    """The local level model (Durbin & Koopman 2012, ch. 2): y_t = mu_t + eps_t, Z_t = 1."""
    df = returns()
    design = prepare_design(df, "fund", [], intercept=True)
    assert design.state_names == ("Intercept",) and design.factor_names == ()
    assert design.has_intercept and design.H.shape == (8, 0)
    np.testing.assert_array_equal(design.Z, np.ones((8, 1)))
    np.testing.assert_array_equal(design.y, df["fund"].to_numpy())


def test_no_factor_and_no_intercept_names_both_fixes() -> None:
    with raises(r"factor_cols is empty and intercept=False, so the model has no state: name at "
                r"least one factor column \(available: \['fund', 'a', 'b'\]\), or set "
                r"intercept=True for a local level model"):  # fmt: skip
        prepare_design(returns(), "fund", [], intercept=False)


def test_target_listed_among_factors_is_refused() -> None:
    with raises(r"target column 'fund' is also listed among the factors: remove it"):
        prepare_design(returns(), "fund", ["a", "fund"], intercept=True)


def test_factor_listed_twice_is_refused() -> None:
    with raises(r"\['a'\] more than once"):
        prepare_design(returns(), "fund", ["a", "b", "a"], intercept=False)


def test_factor_named_like_the_intercept_is_refused() -> None:
    df = returns().rename(columns={"b": "Intercept"})
    with raises("named 'Intercept'.*rename it"):
        prepare_design(df, "fund", ["a", "Intercept"], intercept=True)


# --- types and values ------------------------------------------------------------------------


def test_non_numeric_column_is_named_with_advice() -> None:
    df = returns().assign(a=lambda d: d["a"].map("{:.4f}".format))
    with raises(r"column 'a' is not numeric.*pd\.to_numeric"):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


def test_infinite_factor_names_column_and_first_date() -> None:
    df = returns()
    df.loc["2024-01-19", "b"] = np.inf
    df.loc["2024-02-02", "b"] = -np.inf
    with raises(r"column 'b' is infinite on 2024-01-19 \(2 infinite values\)"):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


def test_infinite_target_is_refused_too() -> None:
    df = returns()
    df.loc["2024-01-12", "fund"] = -np.inf
    with raises(r"column 'fund' is infinite on 2024-01-12"):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


def test_nan_factor_where_target_is_observed_names_column_date_and_fix() -> None:
    df = returns()
    df.loc["2024-01-26", "b"] = np.nan
    with raises(r"'b' is NaN on 2024-01-26 where the target 'fund' is observed.*drop.*fill"):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


# --- index -----------------------------------------------------------------------------------


def test_duplicated_date_is_named_with_advice() -> None:
    df = returns()
    df = pd.concat([df.iloc[:3], df.iloc[[2]], df.iloc[3:]])
    with raises(r"2024-01-19 appears more than once.*drop duplicates.*aggregate"):
        prepare_design(df, "fund", ["a"], intercept=True)


def test_unsorted_dates_name_the_first_out_of_order_date() -> None:
    df = returns().iloc[[0, 1, 3, 2, 4, 5, 6, 7]]
    with raises(r"not sorted: 2024-01-19 \(row 3\) comes after 2024-01-26.*sort_index"):
        prepare_design(df, "fund", ["a"], intercept=True)


def test_missing_date_in_the_index_is_refused() -> None:
    df = returns()
    df.index = df.index.where(np.arange(8) != 5, pd.NaT)
    with raises(r"NaT\) at row 5"):
        prepare_design(df, "fund", ["a"], intercept=True)


def test_non_datetime_index_must_be_unique_and_sorted() -> None:
    df = returns().reset_index(drop=True)
    with raises("label 1 appears more than once"):
        prepare_design(df.set_axis([0, 1, 1, 2, 3, 4, 5, 6]), "fund", ["a"], intercept=True)
    with raises(r"not sorted: 3 \(row 4\) comes after 4"):
        prepare_design(df.set_axis([0, 1, 2, 4, 3, 5, 6, 7]), "fund", ["a"], intercept=True)


# --- enough information ----------------------------------------------------------------------


def test_too_few_observed_rows_gives_the_numbers() -> None:
    df = returns(n=6)
    df.iloc[:3, 0] = np.nan  # 3 observed rows; k = 3 states need k + 1 = 4
    with raises(r"3 after the first burn=0 observed ones \(3 of 6 rows in total\), but k \+ 1 = 4"):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


def test_burn_counts_against_the_observed_rows() -> None:
    df = returns(n=6)  # 6 observed; after burn=3 only 3 are left, k + 1 = 3 for k = 2
    prepare_design(df, "fund", ["a", "b"], intercept=False, burn=3)
    with raises(r"2 after the first burn=4 observed ones .* k \+ 1 = 3"):
        prepare_design(df, "fund", ["a", "b"], intercept=False, burn=4)


def test_burn_counts_observed_targets_not_rows() -> None:
    """A fund starting 3 rows after its factors: 6 observed targets, so burn=4 leaves 2 (< k + 1
    = 3) although 5 rows with an observed target follow row 4."""
    df = returns(n=9)
    df.iloc[:3, 0] = np.nan
    prepare_design(df, "fund", ["a", "b"], intercept=False, burn=3)
    with raises(r"2 after the first burn=4 observed ones \(6 of 9 rows in total\)"):
        prepare_design(df, "fund", ["a", "b"], intercept=False, burn=4)


def test_negative_burn_is_refused() -> None:
    with raises("burn must be a non-negative integer"):
        prepare_design(returns(), "fund", ["a"], intercept=True, burn=-1)


def test_constant_factor_with_intercept_is_collinear_with_it() -> None:
    df = returns().assign(b=0.01)
    with raises(r"'b' is constant \(0\.01\).*collinear with the intercept"):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


def test_constant_factor_without_intercept_says_to_use_an_intercept() -> None:
    df = returns().assign(b=1.0)
    with raises(r"'b' is constant.*only rescales an intercept.*intercept=True"):
        prepare_design(df, "fund", ["a", "b"], intercept=False)


def test_constant_only_on_observed_rows_still_counts_as_constant() -> None:
    df = returns().assign(b=0.5)
    df.iloc[0, 0] = np.nan
    df.iloc[0, 2] = 9.0  # differs only where the target is missing, which the filter ignores
    with raises("'b' is constant"):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


def test_a_factor_constant_on_most_rows_warns_that_few_rows_fit_its_beta() -> None:
    """A weekly rate of 0 in 19 of 20 weeks (under a name that does not say what it is): its
    beta would fit one week."""
    df = returns(n=20).assign(cash=0.0)
    df.loc[df.index[7], "cash"] = 0.0001
    with pytest.warns(DataWarning, match=r"'cash' is 0 on 19 of the 20 rows .* fitted to the 1 "
                      r"row\(s\) where it moves.*subtract it from the returns"):  # fmt: skip
        prepare_design(df, "fund", ["a", "cash"], intercept=True)
    df.loc[df.index[:3], "cash"] = [0.0001, 0.0002, 0.0003]  # 0 on 16 of 20: 80%, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        prepare_design(df, "fund", ["a", "cash"], intercept=True)


def test_ken_frenchs_risk_free_rate_as_a_factor_warns_to_subtract_it() -> None:
    """A fresh user fitted Ken French's monthly RF (1992-2017: many values, never constant)
    as a factor without a word, though the README said tvbeta warns."""
    from tvbeta.data import load_french

    df = load_french(excess=False).loc["1992":, ["NoDur", "MktRF", "RF"]]
    with pytest.warns(DataWarning, match=r"factor column 'RF' reads as a risk-free rate.*"
                      r"subtract it from the fund's returns"):  # fmt: skip
        prepare_design(df, "NoDur", ["MktRF", "RF"], intercept=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        prepare_design(df, "NoDur", ["MktRF"], intercept=True)


def test_collinear_factors_name_a_minimal_dependent_set() -> None:
    df = returns(n=12).assign(c=lambda d: 2.0 * d["a"] - d["b"], d=np.arange(12.0))
    message = re.escape("columns ['a', 'b', 'c'] are perfectly collinear")
    with raises(message + r".*c = 2 \* a \+ -1 \* b.*drop one"):
        prepare_design(df, "fund", ["a", "d", "b", "c"], intercept=False)


def test_factors_summing_to_a_constant_are_collinear_with_the_intercept() -> None:
    df = returns().assign(b=lambda d: 0.03 - d["a"])
    with raises(re.escape("columns ['Intercept', 'a', 'b'] are perfectly collinear")):
        prepare_design(df, "fund", ["a", "b"], intercept=True)


@pytest.mark.parametrize(("name", "valid", "hint"), [
    ("NoDru", ["NoDur", "Durbl"], " did you mean 'NoDur'?"),  # a typo: difflib's ratio
    ("nodur", ["NoDur", "Durbl"], " did you mean 'NoDur'?"),  # case ignored
    ("Momentum", ["MktRF", "SMB", "HML", "Mom"], " did you mean 'Mom'?"),  # an abbreviation
    ("Size", ["MktRF", "SMB", "HML"], ""),  # nothing close
])  # fmt: skip
def test_closest_names_a_typo_a_case_slip_or_an_abbreviation(name, valid, hint):
    """By hand: "Momentum" is 0.55 from "Mom" by difflib's ratio (below its 0.6 cutoff), so
    a fresh user got no hint for it; it begins with "Mom"."""
    assert closest(name, valid) == hint
