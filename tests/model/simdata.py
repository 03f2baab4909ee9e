"""Shared test data for the model layer: a small simulated fund and the seed example's names."""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "fund"
FACTORS = ["mkt", "credit"]

SEED_TARGET = "Preferred Income (FPE)"
SEED_FACTORS = ["Preferred Stock (PFF)", "Convertibles (ICVT)"]


def simulate_frame(seed: int, n: int = 150) -> pd.DataFrame:
    """Weekly-like returns: y_t = 0.001 + H_t beta_t + noise, betas drifting as random walks."""
    rng = np.random.default_rng(seed)
    H = rng.normal(0.0, 0.02, size=(n, len(FACTORS)))
    beta = np.array([0.9, 0.3]) + np.cumsum(rng.normal(0.0, 0.02, size=(n, 2)), axis=0)
    y = 0.001 + np.sum(H * beta, axis=1) + rng.normal(0.0, 0.004, size=n)
    index = pd.date_range("2018-01-05", periods=n, freq="W-FRI", name="Date")
    frame = pd.DataFrame({TARGET: y, FACTORS[0]: H[:, 0], FACTORS[1]: H[:, 1]}, index=index)
    frame["unused"] = rng.normal(size=n)  # a column the model must ignore
    return frame
