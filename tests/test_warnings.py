"""Every warning tvbeta emits names the caller's line (here: this file), not a line inside
tvbeta, whichever layer raises it (`tvbeta._warn.warn_caller`)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.reverting import FACTORS, fast_reverting
from tvbeta import KalmanEngine, KalmanSpec
from tvbeta.data import DataWarning, prepare_design, simulate
from tvbeta.estimate.mle import MLEConvergenceWarning, fit_mle
from tvbeta.model.setters import ScalarMLEWarning


@pytest.fixture(scope="module")
def steady():
    """Betas that never drift (true Q = 0): the MLEs of Q sit at their lower bounds."""
    return simulate(300, 2, Q=[0.0, 0.0], R=1e-3, beta0=[1.0, 0.5], seed=7, intercept=False,
                    factor_cov=np.eye(2) * 0.04).frame  # fmt: skip


def caught(category, call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    found = [w for w in seen if issubclass(w.category, category)]
    assert found, [str(w.message) for w in seen]
    return found


@pytest.mark.parametrize("path", ["prepare_design", "KalmanEngine.run"])
def test_a_data_warning_of_prepare_design_names_the_callers_file(steady, path):
    """Called directly, or two layers down from the engine (a fixed stacklevel is right for
    one of the two only)."""
    frame = steady.assign(f1=steady["f1"] * 1e9)  # an sd of ~2e8: far from decimal returns
    calls = {
        "prepare_design": lambda: prepare_design(frame, "y", ["f1", "f2"], intercept=False),
        "KalmanEngine.run": lambda: KalmanEngine(KalmanSpec(K=2)).run(frame, "y", ["f1", "f2"]),
    }
    found = caught(DataWarning, calls[path])
    assert {w.filename for w in found} == {__file__}


def test_an_mle_bound_warning_of_fit_mle_names_the_callers_file():
    frame = fast_reverting(["y"])  # phi on its lower bound
    found = caught(MLEConvergenceWarning, lambda: fit_mle(
        frame, "y", FACTORS, intercept=False, betas="mean_reverting"))  # fmt: skip
    assert {w.filename for w in found} == {__file__}


def test_a_seed_setter_warning_names_the_callers_file(steady):
    spec = KalmanSpec(K=2)
    found = caught(ScalarMLEWarning, lambda: spec.set_Q_from_mle(steady, "y", ["f1", "f2"]))
    assert {w.filename for w in found} == {__file__}
