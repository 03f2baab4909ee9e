"""Built-in real data: monthly Fama-French factors and portfolios, available offline.

The CSV ships inside ``linearmodels`` (``linearmodels.datasets.french``; source: Ken French's
data library, https://mba.tuck.dartmouth.edu/pages/faculty/ken.french/data_library.html).
819 months, 1949-01 .. 2017-03, no gaps. Every value is a monthly simple return in DECIMAL
units (0.01 = 1% per month); checked on the data: RF averages 0.0034 (about 4% a year) and
peaks at 0.0135 (1981), the market's total return MktRF + RF averages 0.0099 a month.

Columns of :func:`load_french` (index "Date", month-end):

Factors (already excess or long-short returns; never adjusted)
    MktRF  market return minus the risk-free rate
    SMB    small minus big (size)
    HML    high minus low book-to-market (value)
    Mom    winners minus losers over months t-12..t-2 (momentum, "UMD")
Risk-free rate
    RF     one-month Treasury bill return
Industries (Ken French's 12 industry portfolios; TOTAL returns in the file, so their
average, 0.0104, sits next to MktRF + RF = 0.0099 and not next to MktRF = 0.0065; regressed on
MktRF, industry minus RF has a mean intercept of 0.0008, the raw industry one of 0.0043)
    NoDur  consumer non-durables        Durbl  consumer durables
    Manuf  manufacturing                Enrgy  energy (oil, gas, coal)
    Chems  chemicals                    BusEq  business equipment
    Telcm  telecommunications           Utils  utilities
    Shops  wholesale and retail         Hlth   health care
    Money  finance                      Other  everything else
Portfolios (total returns in the file; rows and columns 1, 3, 5 of two 5x5 sorts, described
by linearmodels as "Small firms, low value", "Size 3, value 3", "Large firms, winners", ...)
    SiVj   size quintile i (1 small, 5 large) x book-to-market quintile j (1 low, 5 high):
           S1V1 S1V3 S1V5 S3V1 S3V3 S3V5 S5V1 S5V3 S5V5
    SiMj   size quintile i x prior-return quintile j (1 losers, 5 winners):
           S1M1 S1M3 S1M5 S3M1 S3M3 S3M5 S5M1 S5M3 S5M5

With ``excess=True`` (default) industries and portfolios are returned in excess of RF, the
usual left-hand side of a factor regression on MktRF, SMB, HML, Mom.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FRENCH_FACTORS: tuple[str, ...] = ("MktRF", "SMB", "HML", "Mom")
FRENCH_RISK_FREE = "RF"
FRENCH_INDUSTRIES: tuple[str, ...] = (
    "NoDur", "Durbl", "Manuf", "Enrgy", "Chems", "BusEq",
    "Telcm", "Utils", "Shops", "Hlth", "Money", "Other",
)  # fmt: skip
FRENCH_PORTFOLIOS: tuple[str, ...] = (
    "S1V1", "S1V3", "S1V5", "S3V1", "S3V3", "S3V5", "S5V1", "S5V3", "S5V5",
    "S1M1", "S1M3", "S1M5", "S3M1", "S3M3", "S3M5", "S5M1", "S5M3", "S5M5",
)  # fmt: skip
FRENCH_COLUMNS: tuple[str, ...] = (*FRENCH_FACTORS, FRENCH_RISK_FREE, *FRENCH_INDUSTRIES,
                                   *FRENCH_PORTFOLIOS)  # fmt: skip


def load_french(excess: bool = True) -> pd.DataFrame:
    """Load the monthly Fama-French data shipped with linearmodels (no network).

    Parameters
    ----------
    excess : bool, default True
        Subtract RF from the 12 industries and the 18 portfolios. The four factors are already
        excess (MktRF) or long-short (SMB, HML, Mom) returns and are never changed; RF is kept.

    Returns
    -------
    pd.DataFrame, (819, 35)
        Decimal monthly returns, float64, columns :data:`FRENCH_COLUMNS` (factors, RF,
        industries, portfolios; see the module docstring), on a month-end ``DatetimeIndex``
        named "Date" (1949-01-31 .. 2017-03-31).

    Raises
    ------
    RuntimeError
        The installed linearmodels' dataset lacks columns this expects (another version).
    """
    # Imported here: importing linearmodels takes about a second and only this needs it.
    from linearmodels.datasets import french

    raw = french.load()
    absent = [c for c in ("dates", *FRENCH_COLUMNS) if c not in raw.columns]
    if absent:
        raise RuntimeError(f"linearmodels' french dataset lacks columns {absent}")
    # The file dates each month by its first day; returns accrue over the month, so label
    # them by its last day, matching weekly data labelled by the week's last day.
    index = (pd.DatetimeIndex(raw["dates"]) + pd.offsets.MonthEnd(0)).rename("Date")
    frame = raw.loc[:, list(FRENCH_COLUMNS)].astype(np.float64).set_axis(index, axis="index")
    if excess:
        assets = [*FRENCH_INDUSTRIES, *FRENCH_PORTFOLIOS]
        frame[assets] = frame[assets].sub(frame[FRENCH_RISK_FREE], axis="index")
    return frame
