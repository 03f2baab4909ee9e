"""Fixtures of the figure tests (runs built in tests.evaluate.cases)."""

from __future__ import annotations

import os
import warnings
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


@pytest.fixture(scope="module")
def short_sim():
    """A short simulated fund (intercept, two drifting betas) for the fitted figures."""
    return cases.simulated(n_time=120, seed=51)


@pytest.fixture(scope="module")
def mle_fit(short_sim):
    """fit_mle on the short fund (warnings of a variance on its bound silenced: not tested)."""
    from tvbeta.estimate.mle import fit_mle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_mle(short_sim.frame, "y", cases.FACTORS)


@pytest.fixture(scope="module")
def bayes_fit(short_sim):
    """A tiny fit_bayes on the short fund (2 chains x 100 draws: a figure input, no evidence;
    its convergence warnings are silenced)."""
    from tvbeta.estimate.bayes import fit_bayes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_bayes(short_sim.frame, "y", cases.FACTORS, burn=3, draws=100, tune=100,
                         chains=2, cores=1, n_paths=60, seed=5)  # fmt: skip
