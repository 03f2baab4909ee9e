"""Fixtures of the evaluate tests (runs built in tests.evaluate.cases)."""

from __future__ import annotations

import pytest

from tests.evaluate import cases
from tvbeta import KalmanResult


@pytest.fixture(scope="module")
def sim_result() -> KalmanResult:
    """Default spec with intercept on a simulated fund, burn 8, no missing data."""
    return cases.run_default(cases.simulated())


@pytest.fixture(scope="module")
def sim_missing_result() -> KalmanResult:
    """As sim_result, with 5% of the fund's returns missing."""
    return cases.run_default(cases.simulated(missing_frac=0.05, seed=12))


@pytest.fixture(scope="module")
def seed_result() -> KalmanResult:
    """The seed notebook's run (skipped when ../shared/data is absent)."""
    return cases.seed_case()
