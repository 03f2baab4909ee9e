"""Read a model file into a `RunConfig`, checking every section and key, but not its data.

The priors are checked against `Priors`; a model file can be checked without its data.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from tvbeta.config.fields import REQUIRED, ConfigError, Where, check_keys, closest, describe, read
from tvbeta.config.schema import (
    DEFAULT_METHODS,
    METHODS,
    CompareConfig,
    DataConfig,
    GridConfig,
    ModelConfig,
    OutputConfig,
    RunConfig,
    SamplerConfig,
    SplitConfig,
)
from tvbeta.config.sources import COMMON_DATA_KEYS, SOURCE_KEYS, SOURCES, existing, header
from tvbeta.constants import BETAS, NOISES, Q_FORMS, SHRINKAGES
from tvbeta.data.io import check_date_format
from tvbeta.data.validate import repeated
from tvbeta.nuts import SAMPLERS

__all__ = ["load_config"]

FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly", "quarterly", "annual")
RANKS: tuple[str, ...] = ("mean_rmse", "loglik", "oos_log_score")
UNITS: tuple[str, ...] = ("decimal", "percent")  # of `load_fund_and_factors`, for source "files"
# Sources with a fixed frequency; a CSV's (csv, files) is whatever its rows are.
SOURCE_FREQUENCY: dict[str, str] = {"french": "monthly", "seed": "weekly", "nile": "annual"}
REQUIRED_SECTIONS: tuple[str, ...] = ("data", "model")


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a model file.

    Parameters
    ----------
    path : str or path-like
        A TOML model file; relative paths inside it (a CSV, the seed data folder) are resolved
        against its folder.

    Returns
    -------
    RunConfig
        The checked settings; the data are read later, by `RunConfig.load_data`.

    Raises
    ------
    ConfigError
        The file is missing or not TOML, or a section or key is unknown (the closest valid one
        is suggested), of the wrong type, out of range, or missing.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"model file not found: {file.expanduser().resolve()}")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: not valid TOML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{file}: not a UTF-8 text file ({err.reason})") from err
    tables = _sections(file, raw)
    output = tables.get("output", {})
    out_where = Where(file, "output")
    check_keys(out_where, output, ("folder",))
    folder = read(out_where, output, "folder", "str", f"output/{file.stem}")
    data = _data(Where(file, "data"), tables["data"], file.parent)
    model = _model(Where(file, "model"), tables["model"], data)
    priors = _priors(Where(file, "priors"), tables.get("priors", {}))
    check_model_shrinkage(Where(file, "model"), model, priors, "shrinkage")
    return RunConfig(
        path=file,
        data=data,
        model=model,
        output=OutputConfig(Path(folder).expanduser()),
        priors=priors,
        sampler=_table(Where(file, "sampler"), tables.get("sampler", {}), SamplerConfig, _SAMPLER),
        grid=_table(Where(file, "grid"), tables.get("grid", {}), GridConfig, _GRID),
        split=_split(Where(file, "split"), tables.get("split", {})),
        compare=_compare(Where(file, "compare"), tables.get("compare", {})),
        description=raw.get("description", ""),
    )


def _sections(file: Path, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Check the top level: known tables only (plus a `description` string)."""
    valid = [f.name for f in fields(RunConfig) if f.name not in ("path", "description")]
    for key, value in raw.items():
        if key == "description":
            if not isinstance(value, str):
                raise ConfigError(f"{file}: description: expected a string, got {value!r}")
            continue
        if key not in valid:
            raise ConfigError(
                f"{file}: unknown section [{key}];{closest(key, valid)} valid sections: "
                f"{', '.join(f'[{v}]' for v in valid)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(
                f"{file}: {key} must be a table: write [{key}] on its own line, then its keys"
            )
    for name in REQUIRED_SECTIONS:
        if name not in raw:
            raise ConfigError(f"{file}: missing required section [{name}]: add it")
    return raw


def _data(where: Where, t: dict[str, Any], base: Path) -> DataConfig:
    source = read(where, t, "source", "str", choices=SOURCES, example='source = "french"')
    own = SOURCE_KEYS[source]
    for key in t:  # a key of another source is a mistake worth saying so, not ignoring
        users = [s for s, keys in SOURCE_KEYS.items() if key in keys]
        if key not in COMMON_DATA_KEYS and key not in own and users:
            raise where.error(f"only used with source = {' or '.join(map(repr, users))}; "
                              "remove it", key)  # fmt: skip
    check_keys(where, t, (*COMMON_DATA_KEYS, *own))
    fixed = SOURCE_FREQUENCY.get(source)
    frequency = read(where, t, "frequency", "str", fixed, choices=FREQUENCIES)
    if fixed is not None and frequency != fixed:
        raise where.error(f"source {source!r} is {fixed}; remove the key", "frequency")
    aggregate = read(where, t, "aggregate", "str", None, choices=("weekly",))
    if aggregate and frequency not in (None, "daily"):
        raise where.error(f"aggregate = 'weekly' needs daily rows, not {frequency}", "frequency")
    additive = read(where, t, "additive_cols", "str_list", ())
    if additive and not aggregate:
        raise where.error("only used with aggregate = 'weekly'; remove it", "additive_cols")
    start, end = read(where, t, "start", "date", None), read(where, t, "end", "date", None)
    if start and end and start > end:
        raise where.error(f"start {start} is after end {end}", "start")
    path = read(where, t, "path", "str", REQUIRED if source == "csv" else None,
                example='path = "returns.csv"')  # fmt: skip
    data_dir = read(where, t, "data_dir", "str", None)
    files = source == "files"
    fund_csv = read(where, t, "fund_csv", "str", REQUIRED if files else None,
                    example='fund_csv = "my_fund.csv"')  # fmt: skip
    factor_csv = read(where, t, "factor_csv", "str", REQUIRED if files else None,
                      example='factor_csv = "my_factors.csv"')  # fmt: skip
    if frequency is None and aggregate:
        frequency = "daily"  # the rows' frequency before aggregating
    date_formats = {key: read(where, t, key, "str", None)
                    for key in ("date_format", "factor_date_format")}  # fmt: skip
    for key, value in date_formats.items():
        try:
            check_date_format(value, key)
        except ValueError as err:
            raise where.error(str(err).removeprefix(f"{key} "), key) from None
    return DataConfig(source=source, path=_resolve(base, path), data_dir=_resolve(base, data_dir),
                      start=start, end=end, frequency=frequency, aggregate=aggregate,
                      additive_cols=additive, excess=read(where, t, "excess", "bool", True),
                      fund_csv=_resolve(base, fund_csv), factor_csv=_resolve(base, factor_csv),
                      units=read(where, t, "units", "str", "decimal", choices=UNITS),
                      factor_units=read(where, t, "factor_units", "str", None,
                                        choices=UNITS), **date_formats)  # fmt: skip


def _resolve(base: Path, value: str | None) -> Path | None:
    """``value`` relative to the model file's folder unless absolute; ``~`` expanded."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def check_model_shrinkage(where: Where, model: ModelConfig, priors: dict[str, Any],
                          key: str) -> None:
    """Refuse [model] shrinkage with a q or [priors] it does not go with, naming ``key``.

    Raises
    ------
    ConfigError
        The message of `check_shrinkage` (horseshoe: q = "diag", no [priors] sigma_beta).
    """
    from tvbeta.estimate.bayes.model import check_shrinkage

    try:
        check_shrinkage(model.shrinkage, model.q, priors)
    except ValueError as err:
        raise where.error(f"{err}", key) from err


def _model(where: Where, t: dict[str, Any], data: DataConfig) -> ModelConfig:
    check_keys(where, t, [f.name for f in fields(ModelConfig)])
    if "targets" in t or data.source != "files":
        targets = read(where, t, "targets", "str_list", example='targets = ["NoDur", "Durbl"]')
    else:  # every fund of the fund file: a file of 1,000 funds needs no list of 1,000 names
        on = Where(where.file, "data")
        assert data.fund_csv is not None  # required with source = "files"
        targets = tuple(header(on, "fund_csv", existing(on, "fund_csv", data.fund_csv)))
    factors = read(where, t, "factors", "str_list", example='factors = ["MktRF", "SMB"]')
    intercept = read(where, t, "intercept", "bool", True)
    if not targets:
        raise where.error("is empty: list at least one target column" if "targets" in t else
                          f"left out, so every column of fund_csv is a target, but "
                          f"{data.fund_csv} has none after its dates", "targets")  # fmt: skip
    if not factors and not intercept:
        raise where.error("is empty and intercept = false: the model has no state; list a "
                          "factor or set intercept = true", "factors")  # fmt: skip
    for key, names in (("targets", targets), ("factors", factors)):
        twice = repeated(names)
        if twice:
            raise where.error(f"lists {twice} more than once; list each once", key)
    both = sorted(set(targets) & set(factors))
    if both:
        raise where.error(f"{both} are also factors: a series cannot explain itself; remove "
                          "them from targets or from factors", "targets")  # fmt: skip
    return ModelConfig(targets=targets, factors=factors, intercept=intercept,
                       q=read(where, t, "q", "str", "diag", choices=Q_FORMS),
                       noise=read(where, t, "noise", "str", "constant", choices=NOISES),
                       shrinkage=read(where, t, "shrinkage", "str", "none", choices=SHRINKAGES),
                       betas=read(where, t, "betas", "str", "random_walk", choices=BETAS),
                       burn=read(where, t, "burn", "int", None, low=0))  # fmt: skip


# key -> (kind, extra read() arguments) of the flat sections
_SAMPLER: dict[str, tuple[str, dict[str, Any]]] = {
    "draws": ("int", {"low": 1}), "tune": ("int", {"low": 1}), "chains": ("int", {"low": 1}),
    "cores": ("int", {"low": 1}), "target_accept": ("number", {"low": 0.5, "high": 0.999}),
    "seed": ("int", {"low": 0}), "sampler": ("str", {"choices": SAMPLERS}),
    "n_paths": ("int", {"low": 0}),
}  # fmt: skip
_GRID: dict[str, tuple[str, dict[str, Any]]] = {
    "try_both_intercepts": ("bool", {}), "rank": ("str", {"choices": RANKS}),
}  # fmt: skip


def _table(where: Where, t: dict[str, Any], cls: type, spec: dict[str, tuple[str, dict]]) -> Any:
    """Read a flat section: every key optional, defaults from the dataclass."""
    check_keys(where, t, spec)
    defaults = cls()
    values = {k: read(where, t, k, kind, getattr(defaults, k), **kw) for k, (kind, kw) in
              spec.items()}  # fmt: skip
    return cls(**values)


def _split(where: Where, t: dict[str, Any]) -> SplitConfig:
    check_keys(where, t, ("test_size",))
    size = read(where, t, "test_size", "number", SplitConfig.test_size)
    if isinstance(size, float) and not 0.0 < size < 1.0:
        raise where.error(
            f"a fraction must be strictly between 0 and 1, got {size}; an integer (no decimal "
            "point) is a number of rows", "test_size")  # fmt: skip
    if isinstance(size, int) and size < 1:
        raise where.error(f"a number of rows must be at least 1, got {size}", "test_size")
    return SplitConfig(test_size=size)


def _compare(where: Where, t: dict[str, Any]) -> CompareConfig:
    check_keys(where, t, ("methods", "rolling_window", "lfo", "lfo_threshold", "lfo_train",
                          "workers"))  # fmt: skip
    methods = read(where, t, "methods", "str_list", DEFAULT_METHODS)
    for m in methods:
        if m not in METHODS:
            raise where.error(f"unknown method {m!r};{closest(m, METHODS)} valid methods: "
                              f"{', '.join(METHODS)}", "methods")  # fmt: skip
    if not methods or len(set(methods)) != len(methods):
        raise where.error("list one or more methods, each once", "methods")
    defaults = CompareConfig()
    return CompareConfig(
        methods=methods, rolling_window=read(where, t, "rolling_window", "int", None, low=2),
        lfo=read(where, t, "lfo", "bool", defaults.lfo),
        lfo_threshold=read(where, t, "lfo_threshold", "number", defaults.lfo_threshold, low=0.0),
        lfo_train=_fraction(where, t, "lfo_train"),
        workers=read(where, t, "workers", "int", None, low=1),
    )  # fmt: skip


def _fraction(where: Where, t: dict[str, Any], key: str) -> float | None:
    """Return the number at ``key``, strictly between 0 and 1, or None when absent."""
    value = read(where, t, key, "number", None, low=0.0)
    if value is not None and not 0.0 < value < 1.0:
        raise where.error(f"must be a fraction strictly between 0 and 1 (e.g. 0.5), got {value}",
                          key)  # fmt: skip
    return value


def _priors(where: Where, t: dict[str, Any]) -> dict[str, Any]:
    """Check [priors] against `Priors` (keys, then values) and keep it as a plain dict."""
    from tvbeta.estimate.bayes.priors import Priors

    check_keys(where, t, [f.name for f in fields(Priors)])
    for f in fields(Priors):  # types first: Priors' own checks assume them
        kind = _prior_kind(str(f.type))
        if kind is not None and f.name in t:
            read(where, t, f.name, kind)
        if kind == "table" and f.name in t:  # a distribution: dist plus numeric parameters
            sub = Where(where.file, f"priors.{f.name}")
            read(sub, t[f.name], "dist", "str", "HalfNormal")
            for name, value in t[f.name].items():
                if name != "dist" and not _numbers(value):
                    raise sub.error(f"expected a number or a list of numbers, got "
                                    f"{describe(value)}", name)  # fmt: skip
    try:
        Priors.from_dict(t)
    except (TypeError, ValueError) as err:
        raise where.error(f"{err}") from err
    return dict(t)


def _prior_kind(annotation: str) -> str | None:
    """Return the `read` kind of a `Priors` field from its annotation (None: left to `Priors`)."""
    for prefix, kind in (("float", "number"), ("int", "int"), ("Prior", "table"),
                         ("Literal", "str")):  # fmt: skip
        if annotation.startswith(prefix):
            return kind
    return None


def _numbers(value: Any) -> bool:
    """Tell whether ``value`` is a number, or a list of numbers (one per state), not a bool."""
    values = value if isinstance(value, list) else [value]
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
