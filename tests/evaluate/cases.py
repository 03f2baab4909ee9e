"""Runs shared by the evaluate and viz tests: simulated funds and the seed notebook's case."""

from __future__ import annotations

import numpy as np
import pytest

from tvbeta import KalmanEngine, KalmanResult, KalmanSpec, TimeVarying
from tvbeta.data import SimulatedData, load_seed_weekly, shared_data_dir, simulate

FACTORS = ["mkt", "credit"]
SEED_TARGET = "Preferred Income (FPE)"
SEED_FACTORS = ["Preferred Stock (PFF)", "Convertibles (ICVT)"]
SEED_BURN = 8


def simulated(n_time: int = 300, missing_frac: float = 0.0, seed: int = 11) -> SimulatedData:
    """A weekly fund with an intercept and two drifting betas (truth known)."""
    return simulate(n_time, FACTORS, Q=np.diag([1e-7, 4e-4, 4e-4]), R=1e-4,
                    beta0=[0.001, 0.9, 0.3], intercept=True, seed=seed,
                    missing_frac=missing_frac)  # fmt: skip


def run_default(sim: SimulatedData, intercept: bool = True, burn: int = 8,
                name: str = "Sim Model") -> KalmanResult:  # fmt: skip
    """The seed's default spec (Q = 1e-4 I, R = 1e-2): a deliberately imperfect model."""
    spec = KalmanSpec(K=len(FACTORS), name=name)
    spec = spec.set_intercept() if intercept else spec
    return KalmanEngine(spec).run(sim.frame, "y", FACTORS, burn=burn)


def run_true(sim: SimulatedData, R_scale: float = 1.0, Q_scale: float = 1.0,
             name: str = "True Model") -> KalmanResult:  # fmt: skip
    """The data-generating model itself (known start, Q and R), optionally with R or Q scaled.

    With both scales 1 the standardized innovations are exactly iid N(0, 1).
    """
    k = len(sim.state_names)
    spec = KalmanSpec(K=k, name=name, intercept=True, Q=TimeVarying.constant(Q_scale * sim.Q),
                      R=TimeVarying.constant(R_scale * sim.R), beta0=np.asarray(sim.beta0),
                      P0=np.zeros((k, k)))  # fmt: skip
    return KalmanEngine(spec).run(sim.frame, "y", FACTORS, burn=0)


def seed_case() -> KalmanResult:
    """The seed notebook's run: FPE on PFF + ICVT, weekly, R from rolling OLS, burn 8."""
    if shared_data_dir() is None:
        pytest.skip("the seed's data folder ../shared/data is absent")
    df = load_seed_weekly()
    spec = KalmanSpec(K=2, name="Test Model").set_R_from_rolling_ols_residuals(
        df=df, target_col=SEED_TARGET, factor_cols=SEED_FACTORS, window=12
    )
    return KalmanEngine(spec).run(df, target_col=SEED_TARGET, factor_cols=SEED_FACTORS,
                                  burn=SEED_BURN)  # fmt: skip


def as_seed_dict(result: KalmanResult) -> dict:
    """The seed's result dict (its nine keys only): what seed-era code passes around."""
    return {key: result[key] for key in result.keys()}
