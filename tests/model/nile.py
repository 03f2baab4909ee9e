"""The Nile local level test case (Durbin & Koopman 2012, chapter 2), shared by the test layers.

``nile_frame()``: the annual flow at Aswan, 1871-1970 (100 values, 1e8 m^3, bundled with
statsmodels), as column "volume" on a year-end DatetimeIndex like ``models/nile.toml``'s data.
DK_Q, DK_R: the maximum-likelihood sigma2_eta and sigma2_eps of D&K section 2.10.
"""

from __future__ import annotations

import pandas as pd
import statsmodels.api as sm

DK_Q, DK_R = 1469.1, 15099.0


def nile_frame() -> pd.DataFrame:
    raw = sm.datasets.nile.load_pandas().data
    index = pd.date_range("1871-12-31", periods=len(raw), freq="YE", name="Date")
    return pd.DataFrame({"volume": raw["volume"].to_numpy(float)}, index=index)
