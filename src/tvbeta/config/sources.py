"""Load the data a model file names: the built-in French data, the seed's ETFs, a CSV, the Nile.

Each loader returns decimal returns (or, for the Nile, the flow volume) on a sorted
``DatetimeIndex`` named "Date"; :func:`load_data` then checks that the targets and factors exist
and that the date range keeps some rows, naming the model file and listing what is available.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from tvbeta.config.fields import Where, closest

if TYPE_CHECKING:  # only for annotations: config.schema imports this module
    from tvbeta.config.schema import DataConfig, RunConfig

__all__ = ["COMMON_DATA_KEYS", "SOURCES", "SOURCE_KEYS", "load_data"]

SOURCES: tuple[str, ...] = ("french", "seed", "csv", "nile")
# [data] keys each source understands (a key of another source is an error, not ignored).
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "french": ("excess",), "seed": ("data_dir",), "csv": ("path", "aggregate", "additive_cols"),
    "nile": (),
}  # fmt: skip
COMMON_DATA_KEYS: tuple[str, ...] = ("source", "start", "end", "frequency")


def load_data(config: RunConfig) -> pd.DataFrame:
    """Load the model file's data: columns ``[*targets, *factors]``, rows in [start, end].

    Raises
    ------
    ConfigError
        A file or folder is missing (the resolved path is named; for the seed data, where it
        was looked for and ``TVBETA_SHARED_DATA``), a target, factor or additive column is not
        in the data (the available columns are listed), or no rows are left.
    """
    data, where = config.data, Where(config.path, "data")
    frame = _LOADERS[data.source](data, where)
    if data.source != "seed":  # the seed loader slices the daily data itself, like the seed
        frame = _slice(frame, data, where)
    model = Where(config.path, "model")
    for key, names in (("targets", config.model.targets), ("factors", config.model.factors)):
        _check_columns(model, key, names, frame)
    _check_split(Where(config.path, "split"), config.split.test_size, len(frame))
    return frame.loc[:, [*config.model.targets, *config.model.factors]]


def _french(data: DataConfig, where: Where) -> pd.DataFrame:
    from tvbeta.data import load_french

    return load_french(excess=data.excess)


def _seed(data: DataConfig, where: Where) -> pd.DataFrame:
    from tvbeta.data import SHARED_DATA_ENV, load_seed_weekly

    try:
        return load_seed_weekly(data.data_dir, start=data.start, end=data.end)
    except FileNotFoundError as err:
        # The data layer's hint names the Python argument (data_dir=...); say it for a file.
        found = str(err).split(": pass data_dir")[0]
        raise where.error(
            f"source = 'seed': {found}. Set data_dir in [data] (relative to the model file) or "
            f"the environment variable {SHARED_DATA_ENV} to the folder holding the seed's CSVs; "
            "by default tvbeta looks for ../shared/data next to the repository", "source",
        ) from err


def _csv(data: DataConfig, where: Where) -> pd.DataFrame:
    from tvbeta.data import aggregate_weekly_data, read_returns_csv

    assert data.path is not None  # schema: source "csv" requires path
    if not data.path.is_file():
        raise where.error(
            f"CSV file not found: {data.path} (resolved relative to the model file's folder); "
            "fix the path or move the file there", "path")  # fmt: skip
    daily = read_returns_csv(data.path)
    if data.aggregate is None:
        return daily
    missing = [c for c in data.additive_cols if c not in daily.columns]
    if missing:
        raise where.error(f"{missing} not in {data.path.name} (available: "
                          f"{list(daily.columns)})", "additive_cols")  # fmt: skip
    # Slice the daily rows first so a week is never built from days outside [start, end].
    daily = _slice(daily, data, where)
    return aggregate_weekly_data(daily, additive_cols=list(data.additive_cols))


def _nile(data: DataConfig, where: Where) -> pd.DataFrame:
    import statsmodels.api as sm

    raw = sm.datasets.nile.load_pandas().data
    # Annual flow 1871-1970 (Durbin & Koopman 2012, section 2.2.5); a year-end DatetimeIndex
    # lets the layers that infer the frequency from the index see one period per year.
    years = raw["year"].astype(int).astype(str)
    index = pd.DatetimeIndex(pd.to_datetime(years, format="%Y") + pd.offsets.YearEnd(0))
    return pd.DataFrame({"volume": raw["volume"].to_numpy(float)}, index=index.rename("Date"))


_LOADERS = {"french": _french, "seed": _seed, "csv": _csv, "nile": _nile}


def _slice(frame: pd.DataFrame, data: DataConfig, where: Where) -> pd.DataFrame:
    """Rows in [start, end]; an empty result names the span the data do cover."""
    out = frame.loc[data.start : data.end]
    if out.empty:
        span = f"{frame.index[0]:%Y-%m-%d} .. {frame.index[-1]:%Y-%m-%d}" if len(frame) else "none"
        raise where.error(f"no rows between start = {data.start} and end = {data.end}; the data "
                          f"cover {span}", "start")  # fmt: skip
    return out


def _check_columns(where: Where, key: str, names: tuple[str, ...], frame: pd.DataFrame) -> None:
    """Every name must be a column; list the available ones (and the closest) otherwise."""
    available = [str(c) for c in frame.columns]
    for name in names:
        if name not in frame.columns:
            raise where.error(f"{name!r} is not a column of the data;{closest(name, available)} "
                              f"available columns: {', '.join(available)}", key)  # fmt: skip


def _check_split(where: Where, test_size: int | float, n: int) -> None:
    """Check that the held-out rows (a fraction rounds up) leave rows on both sides."""
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else test_size
    if not 0 < n_test < n:
        raise where.error(
            f"{test_size!r} holds out {n_test} of the {n} rows, leaving none to fit on; use a "
            "fraction such as 0.3 or fewer rows", "test_size")  # fmt: skip
