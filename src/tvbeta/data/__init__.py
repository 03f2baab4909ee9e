"""Data layer of tvbeta: load, aggregate, validate and simulate returns.

Readers (`read_returns_csv`, `read_treasury_yields_csv`, `yield_changes`), tables ready for a
fit (`load_seed_weekly`: the seed notebook's weekly table; `load_fund_and_factors`: your fund
and factor CSVs, `load_funds_and_factors` for many funds of one file; `load_french`: built-in
Fama-French data), `aggregate_weekly_data` (daily -> W-FRI), `simulate` (a fund with known
betas) and `prepare_design` (the filter's checked arrays).
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
    load_funds_and_factors,
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
    "column_list", "format_span", "load_french", "load_fund_and_factors",
    "load_funds_and_factors", "load_seed_weekly", "prepare_design", "read_returns_csv",
    "read_treasury_yields_csv", "shared_data_dir", "simulate",
    "warn_if_not_decimal", "yield_changes",
]  # fmt: skip
