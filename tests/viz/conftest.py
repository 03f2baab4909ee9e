"""Fixtures of the figure tests (runs built in tests.evaluate.cases)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.evaluate import cases
from tvbeta import KalmanResult


@pytest.fixture(scope="module")
def sim_result() -> KalmanResult:
    """Default spec with intercept on a simulated fund (5% missing returns), burn 8."""
    return cases.run_default(cases.simulated(missing_frac=0.05, seed=31))


@pytest.fixture(scope="module")
def funds() -> dict[str, KalmanResult]:
    """Two funds on the same factors: one with an intercept, one without."""
    return {
        "Fund A": cases.run_default(cases.simulated(seed=41), name="A"),
        "Fund B": cases.run_default(cases.simulated(seed=42), intercept=False, name="B"),
    }


@pytest.fixture(scope="module")
def seed_result() -> KalmanResult:
    """The seed notebook's run (skipped when ../shared/data is absent)."""
    return cases.seed_case()


@pytest.fixture
def shot_dir(tmp_path) -> Path:
    """Where screenshots go: $TVBETA_SCREENSHOT_DIR to keep them, else a temporary folder."""
    keep = os.environ.get("TVBETA_SCREENSHOT_DIR")
    return Path(keep) if keep else tmp_path
