"""Load the data a model file names: French data, the seed's ETFs, one CSV, two CSVs, the Nile.

Each loader returns decimal returns (or, for the Nile, the flow volume) on a sorted
``DatetimeIndex`` named "Date"; :func:`load_data` then checks that the targets and factors exist
and that the date range keeps some rows, naming the model file and listing what is available.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tvbeta.config.fields import CommandLine, Where, closest

if TYPE_CHECKING:  # only for annotations: config.schema imports this module
    from tvbeta.config.schema import DataConfig, RunConfig

__all__ = ["COMMON_DATA_KEYS", "SOURCES", "SOURCE_KEYS", "load_data"]

SOURCES: tuple[str, ...] = ("french", "seed", "csv", "files", "nile")
# [data] keys each source understands (a key of another source is an error, not ignored).
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "french": ("excess",), "seed": ("data_dir",),
    "csv": ("path", "aggregate", "additive_cols", "date_format"),
    "files": ("fund_csv", "factor_csv", "units", "factor_units", "aggregate", "date_format",
              "factor_date_format"),
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
        in the data (the available columns are listed), no rows are left, or a frequency
        contradicts the dates (`periods_per_year`). For source
        "files", a `DataValidationError` of `load_fund_and_factors` (a bad date or cell, a date
        on two rows, dates that do not line up) as its message after the model file and the
        key of the file it blames (both keys when it is about both files).
    """
    data, where = config.data, Where(config.path, "data")
    frame = _LOADERS[data.source](config, where)
    if data.source != "seed":  # the seed loader slices the daily data itself, like the seed
        frame = _slice(frame, data, where)
    columns = [str(c) for c in frame.columns]
    _check_columns(*_targets_place(config), config.model.targets, columns)
    _check_columns(Where(config.path, "model"), "factors", config.model.factors, columns)
    _check_split(Where(config.path, "split"), config.split.test_size, len(frame))
    if data.model_frequency is not None and data.source in ("csv", "files"):
        from tvbeta.estimate.bayes.priors import periods_per_year

        try:  # daily rows declared weekly would scale every prior per year for weeks
            periods_per_year(frame.index, data.model_frequency)
        except ValueError as err:
            raise where.error(str(err), "frequency") from None
    return frame.loc[:, [*config.model.targets, *config.model.factors]]


def _french(config: RunConfig, where: Where) -> pd.DataFrame:
    from tvbeta.data import load_french

    return load_french(excess=config.data.excess)


def _seed(config: RunConfig, where: Where) -> pd.DataFrame:
    from tvbeta.data import SHARED_DATA_ENV, load_seed_weekly

    data = config.data
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


def _csv(config: RunConfig, where: Where) -> pd.DataFrame:
    from tvbeta.data import aggregate_weekly_data, read_returns_csv

    data = config.data
    assert data.path is not None  # schema: source "csv" requires path
    daily = read_returns_csv(existing(where, "path", data.path), date_format=data.date_format)
    if data.aggregate is None:
        return daily
    missing = [c for c in data.additive_cols if c not in daily.columns]
    if missing:
        raise where.error(f"{missing} not in {data.path.name} (available: "
                          f"{list(daily.columns)})", "additive_cols")  # fmt: skip
    # Slice the daily rows first so a week is never built from days outside [start, end].
    daily = _slice(daily, data, where)
    return aggregate_weekly_data(daily, additive_cols=list(data.additive_cols))


def _files(config: RunConfig, where: Where) -> pd.DataFrame:
    """Each target as the fund of `load_fund_and_factors`, on the factor dates of the fund file.

    The files are read once for all targets (`load_funds_and_factors`).

    A target is a column of the fund file (several funds: one column each). The rows a call
    keeps depend on the files' dates, not on the column, so the targets share them and the
    factors' values: a fund's missing month (or week) is NaN in its column.
    """
    from tvbeta.data import DataValidationError, load_funds_and_factors

    data, model = config.data, config.model
    assert data.fund_csv is not None and data.factor_csv is not None  # schema: both required
    files = {"fund_csv": existing(where, "fund_csv", data.fund_csv),
             "factor_csv": existing(where, "factor_csv", data.factor_csv)}  # fmt: skip
    for key, (place, role), names in (
        ("fund_csv", _targets_place(config), model.targets),
        ("factor_csv", (Where(config.path, "model"), "factors"), model.factors),
    ):
        file = files[key]
        _check_columns(place, role, names, header(where, key, file), file.name)
    with _each_warning_once():  # the alignment's warnings are the same for every target
        try:
            frames = [loaded.df for loaded in load_funds_and_factors(
                files["fund_csv"], files["factor_csv"], list(model.targets),
                factor_cols=model.factors, units=data.units, factor_units=data.factor_units,
                weekly=data.aggregate == "weekly", date_format=data.date_format,
                factor_date_format=data.factor_date_format)]  # fmt: skip
        except DataValidationError as err:
            # a message about one file starts with its path; the others are about both
            blamed = [k for k, f in files.items() if str(err).startswith(f"{f}:")]
            raise where.error(f"{err}", ", ".join(blamed or files)) from err
    # the rows and the factors' values depend on the files' dates only: every target's alike
    factors = list(model.factors)
    funds = pd.concat([frame.drop(columns=factors) for frame in frames], axis=1)
    return funds.join(frames[0][factors]).sort_index()


@contextmanager
def _each_warning_once() -> Iterator[None]:
    """Raise the block's warnings again after it, each distinct message once, in order."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in {str(w.message): w for w in caught}.values():
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _nile(config: RunConfig, where: Where) -> pd.DataFrame:
    import statsmodels.api as sm

    raw = sm.datasets.nile.load_pandas().data
    # Annual flow 1871-1970 (Durbin & Koopman 2012, section 2.2.5); a year-end DatetimeIndex
    # lets the layers that infer the frequency from the index see one period per year.
    years = raw["year"].astype(int).astype(str)
    index = pd.DatetimeIndex(pd.to_datetime(years, format="%Y") + pd.offsets.YearEnd(0))
    return pd.DataFrame({"volume": raw["volume"].to_numpy(float)}, index=index.rename("Date"))


_LOADERS = {"french": _french, "seed": _seed, "csv": _csv, "files": _files, "nile": _nile}


def existing(where: Where, key: str, path: Path) -> Path:
    """Return ``path``, or raise naming the key and the resolved path when it is not a file."""
    if not path.is_file():
        raise where.error(
            f"CSV file not found: {path} (resolved relative to the model file's folder); "
            "fix the path or move the file there", key)  # fmt: skip
    return path


def header(where: Where, key: str, path: Path) -> list[str]:
    """Return the column names of a CSV after its first (date) column."""
    from tvbeta.data.io import separator_advice

    if advice := separator_advice(path):  # its "columns" would be one name holding them all
        raise where.error(f"{path}: expected the dates, then one column per series{advice}",
                          key)  # fmt: skip
    try:
        return [str(c) for c in pd.read_csv(path, index_col=0, nrows=0).columns]
    except ValueError as err:  # not a CSV: empty, binary, ragged
        raise where.error(f"{path}: cannot read a header row of column names ({err}); write "
                          "the dates first, then one column per series", key) from err  # fmt: skip


def _slice(frame: pd.DataFrame, data: DataConfig, where: Where) -> pd.DataFrame:
    """Rows in [start, end]; an empty result names the span the data do cover."""
    out = frame.loc[data.start : data.end]
    if out.empty:
        span = f"{frame.index[0]:%Y-%m-%d} .. {frame.index[-1]:%Y-%m-%d}" if len(frame) else "none"
        raise where.error(f"no rows between start = {data.start} and end = {data.end}; the data "
                          f"cover {span}", "start")  # fmt: skip
    return out


def _targets_place(config: RunConfig) -> tuple[Where, str]:
    """Where the targets were chosen, for errors: ``--target`` or the file's [model] targets."""
    if config.targets_from_command_line:
        return CommandLine(config.path, "model"), "--target"
    return Where(config.path, "model"), "targets"


def _check_columns(where: Where, key: str, names: tuple[str, ...], available: list[str],
                   what: str = "the data") -> None:  # fmt: skip
    """Every name must be one of ``available`` (the columns of ``what``); list them otherwise."""
    for name in names:
        if name not in available:
            raise where.error(f"{name!r} is not a column of {what};{closest(name, available)} "
                              f"available columns: {', '.join(available)}", key)  # fmt: skip


def _check_split(where: Where, test_size: int | float, n: int) -> None:
    """Check that the held-out rows (a fraction rounds up) leave rows on both sides."""
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else test_size
    if not 0 < n_test < n:
        raise where.error(
            f"{test_size!r} holds out {n_test} of the {n} rows, leaving none to fit on; use a "
            "fraction such as 0.3 or fewer rows", "test_size")  # fmt: skip
