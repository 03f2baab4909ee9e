"""Warnings that point at the user's line, however deep inside tvbeta they are raised."""

from __future__ import annotations

import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent)


def warn_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first frame outside the tvbeta package.

    A fixed ``stacklevel`` is right for one call path only: the same warning is reached from a
    setter function, from the ``KalmanSpec`` method of that name and from the grid search.
    """
    warnings.warn(message, category, skip_file_prefixes=(_PACKAGE,))
