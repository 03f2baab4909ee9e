"""Typed reading of TOML tables with errors that name the file, section, key and the fix.

Every reader takes a `Where` (file and section) so that a message always reads
``<file>: [<section>] <key>: <problem>; <what to do>``. Unknown names get the closest valid one
from :func:`difflib.get_close_matches`, because a typo is the usual cause.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tvbeta.data.validate import closest

__all__ = ["REQUIRED", "ConfigError", "Where", "closest", "describe", "read"]


class ConfigError(ValueError):
    """A model file that cannot be used; the message names file, section and key and the fix."""


class _Required:
    """Sentinel: the key has no default (distinct from None, a valid "not set" default)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Where:
    """The place of a table in a model file (as the user named it; section e.g. "sampler")."""

    file: Path
    section: str

    def error(self, message: str, key: str | None = None) -> ConfigError:
        """Return a ConfigError prefixed with ``<file>: [<section>] <key>:``."""
        at = f"[{self.section}] {key}" if key else f"[{self.section}]"
        return ConfigError(f"{self.file}: {at}: {message}")


@dataclass(frozen=True)
class CommandLine(Where):
    """A command-line option that overrides a model file's key (e.g. ``--target``)."""

    def error(self, message: str, key: str | None = None) -> ConfigError:
        """Return a ConfigError prefixed with ``<file>: <key> (command line):``."""
        return ConfigError(f"{self.file}: {key} (command line): {message}")


def check_keys(where: Where, table: Mapping[str, Any], valid: Collection[str]) -> None:
    """Raise on the first key of ``table`` not in ``valid``, suggesting the closest one."""
    for key in table:
        if key not in valid:
            raise where.error(
                f"unknown key {key!r};{closest(key, valid)} valid keys: {', '.join(sorted(valid))}"
            )


def describe(value: Any) -> str:
    """How a TOML value reads in a message: its TOML type and the value itself."""
    kind = {
        bool: "a boolean", int: "an integer", float: "a float", str: "a string",
        list: "a list", dict: "a table", dt.date: "a date", dt.datetime: "a date-time",
    }.get(type(value), type(value).__name__)  # fmt: skip
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{kind} ({shown})"


def _is_int(v: Any) -> bool:
    # bool is a subclass of int in Python, but `draws = true` is a mistake, not 1.
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_date(v: Any) -> bool:
    if isinstance(v, dt.date) and not isinstance(v, dt.time):
        return True
    if not isinstance(v, str):
        return False
    try:
        pd.Timestamp(v)
    except ValueError:
        return False
    return True


# kind -> (test, what the file should hold: used as "expected <this>")
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string in quotes"),
    "int": (_is_int, "an integer without quotes"),
    "number": (_is_number, "a number without quotes"),
    "bool": (lambda v: isinstance(v, bool), "true or false (no quotes)"),
    "str_list": (_is_str_list, 'a list of strings, e.g. ["a", "b"]'),
    "table": (lambda v: isinstance(v, dict), "a table"),
    "date": (_is_date, 'a date, e.g. 2016-01-01 or "2016-01-01"'),
}


def read(where: Where, table: Mapping[str, Any], key: str, kind: str, default: Any = REQUIRED, *,
         choices: Collection[Any] | None = None, low: float | None = None,
         high: float | None = None, example: str = "") -> Any:  # fmt: skip
    """One value of a table, checked; ``default`` when absent (REQUIRED: absence raises).

    Parameters
    ----------
    where : Where
        File and section, for the message.
    table : mapping
        The parsed TOML table.
    key : str
        The key to read.
    kind : str
        A key of :data:`KINDS`: "str", "int", "number", "bool", "str_list", "table", "date".
    default : any, default REQUIRED
        Returned when the key is absent; REQUIRED makes the key mandatory.
    choices : collection, optional
        Allowed values (a typo gets the closest one suggested).
    low, high : float, optional
        Inclusive bounds of a number.
    example : str
        A line to show in the "missing key" message, e.g. ``'targets = ["NoDur"]'``.

    Returns
    -------
    any
        The value: a date as "YYYY-MM-DD", a list of strings as a tuple, numbers as given.
    """
    if key not in table:
        if default is REQUIRED:
            hint = f", e.g. {example}" if example else ""
            raise where.error(f"missing required key {key!r}: add it{hint}")
        return default
    value = table[key]
    test, expected = KINDS[kind]
    if not test(value):
        raise where.error(f"expected {expected}, got {describe(value)}", key)
    if choices is not None and value not in choices:
        raise where.error(f"{value!r} is not allowed;{closest(str(value), map(str, choices))} "
                          f"use one of {', '.join(repr(c) for c in choices)}", key)  # fmt: skip
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"<= {high}" if low is None else (
            f"between {low} and {high}")  # fmt: skip
        raise where.error(f"must be {bounds}, got {value!r}", key)
    if kind == "date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if kind == "str_list":
        return tuple(value)
    return value
