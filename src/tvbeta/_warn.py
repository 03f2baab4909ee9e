"""Warnings that point at the user's line, however deep inside tvbeta they are raised."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent)


def warn_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first frame outside the tvbeta package.

    A fixed ``stacklevel`` is right for one call path only: the same warning is reached from a
    setter function, from the ``KalmanSpec`` method of that name and from the grid search.
    """
    warnings.warn(message, category, skip_file_prefixes=(_PACKAGE,))


@contextmanager
def named_warnings(name: str) -> Iterator[None]:
    """Raise the block's warnings again after it, their messages prefixed by ``name: ``.

    For one of several fits in a row (funds, a model file's targets): the same warning of two
    of them would otherwise read alike. Every warning is recorded ("always"); the caller's
    filters decide once it is named. A warning of a block that raises is dropped with it.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        warnings.warn_explicit(f"{name}: {w.message}", w.category, w.filename, w.lineno)
