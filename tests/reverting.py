"""Funds whose betas revert within a period: their MLE of phi sits on its lower bound.

A case that warns (`MLEConvergenceWarning`, "sits on a bound") for the warning tests: a drift
variance at 0 (a static beta) no longer does, being an answer about the fund.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FACTORS = ["f1", "f2"]


def fast_reverting(funds: list[str], n: int = 300, seed: int = 3) -> pd.DataFrame:
    """Monthly returns of ``funds`` on two factors, each fund's betas reverting to (1.0, 0.5)
    with persistence 0.1 a month (the search's lower bound is 0.5) and shocks of sd 0.3."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0.0, 0.2, (n, 2))
    mu = np.array([1.0, 0.5])
    frame = pd.DataFrame(f, columns=FACTORS,
                         index=pd.date_range("2000-01-31", periods=n, freq="ME", name="Date"))
    for fund in funds:
        beta, paths = mu.copy(), np.empty((n, 2))
        for t in range(n):
            beta = mu + 0.1 * (beta - mu) + rng.normal(0.0, 0.3, 2)
            paths[t] = beta
        frame[fund] = (f * paths).sum(axis=1) + rng.normal(0.0, 0.01, n)
    return frame
