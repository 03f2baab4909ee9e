"""Fixtures of the model-layer tests: a small simulated fund and the seed's weekly data."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.model.nile import nile_frame
from tests.model.simdata import simulate_frame
from tvbeta.data import load_seed_weekly, shared_data_dir


@pytest.fixture
def frame() -> pd.DataFrame:
    """150 weekly rows: target "fund", factors "mkt" and "credit", and an unused column."""
    return simulate_frame(seed=20240601)


@pytest.fixture(scope="module")
def seed_weekly() -> pd.DataFrame:
    """The seed notebook's weekly data (2016-01..2022-12); skipped when ../shared/data is absent."""
    if shared_data_dir() is None:
        pytest.skip("the seed's data folder ../shared/data is absent")
    return load_seed_weekly()


@pytest.fixture(scope="module")
def nile() -> pd.DataFrame:
    """The annual Nile flow 1871-1970, column "volume" (see tests/model/nile.py)."""
    return nile_frame()
