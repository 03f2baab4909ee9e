"""Data layer of tvbeta: load, aggregate, validate and simulate returns.

Core functions
--------------
read_returns_csv           daily decimal returns CSV -> DataFrame ("Date" index, float64)
read_treasury_yields_csv   Treasury par-yield CSV (M/D/YYYY, newest first) -> sorted, percent
yield_changes              the seed's daily yield changes "<tenor>_delta"
aggregate_weekly_data      daily -> weekly (W-FRI): returns compound, changes are summed
load_seed_weekly           the seed notebook's weekly ETF + yield-change table (../shared/data)
load_fund_and_factors      "my fund CSV + my factor CSV" -> aligned table (FundData), drops reported
load_french                built-in monthly Fama-French factors, industries, portfolios
simulate                   synthetic fund with known beta path (state-space truth)
prepare_design             checked arrays y (n,), H (n, n_factors), Z (n, k) for the filter
column_list                column names as a list (one name alone is one column)
format_span                "first .. last" label of an index, for short reprs
"""

from tvbeta.data.builtin import (
    FRENCH_COLUMNS,
    FRENCH_FACTORS,
    FRENCH_INDUSTRIES,
    FRENCH_PORTFOLIOS,
    FRENCH_RISK_FREE,
    load_french,
)
from tvbeta.data.io import (
    SHARED_DATA_ENV,
    FundData,
    load_fund_and_factors,
    load_seed_weekly,
    read_returns_csv,
    read_treasury_yields_csv,
    shared_data_dir,
    yield_changes,
)
from tvbeta.data.simulate import SimulatedData, simulate
from tvbeta.data.validate import (
    INTERCEPT_NAME,
    DataValidationError,
    DataWarning,
    Design,
    ReturnUnitsWarning,
    column_list,
    format_span,
    prepare_design,
    warn_if_not_decimal,
)
from tvbeta.data.weekly import aggregate_weekly_data

__all__ = [
    "FRENCH_COLUMNS", "FRENCH_FACTORS", "FRENCH_INDUSTRIES", "FRENCH_PORTFOLIOS",
    "FRENCH_RISK_FREE", "INTERCEPT_NAME", "SHARED_DATA_ENV", "DataValidationError", "DataWarning",
    "Design", "FundData", "ReturnUnitsWarning", "SimulatedData", "aggregate_weekly_data",
    "column_list", "format_span", "load_french", "load_fund_and_factors", "load_seed_weekly",
    "prepare_design", "read_returns_csv", "read_treasury_yields_csv", "shared_data_dir", "simulate",
    "warn_if_not_decimal", "yield_changes",
]  # fmt: skip
