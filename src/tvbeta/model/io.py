"""Save and load a KalmanSpec as TOML or JSON, exactly; the error of every saved-file loader.

The file holds plain numbers: arrays as (nested) lists of floats, per-time matrices with
their explicit ``per_time`` flag. Floats are written by Python's shortest round-trip repr
(both ``json`` and ``tomli_w`` use it), so loading gives back the same bits. Fields that are
None (unset provenance) are left out, as TOML has no null.

A saved file that cannot be read back (a spec here, a comparison, a Bayes fit's NetCDF)
raises `SavedFileError` from :func:`unreadable`, naming the file.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tomli_w

from tvbeta.model.timevarying import SpecError, TimeVarying
from tvbeta.outputs import write_text

if TYPE_CHECKING:
    from tvbeta.model.spec import KalmanSpec

FORMAT = "tvbeta.KalmanSpec"
VERSION = 1
_SCALARS = ("K", "name", "intercept", "q_mode", "r_mode", "init_mode", "q_scalar", "r_scalar")
_MATRICES = ("T", "Q", "R")
_ARRAYS = ("beta0", "P0", "phi")  # phi: mean-reverting betas only


class SavedFileError(ValueError):
    """A saved file that cannot be read back (truncated, corrupt, or not of the kind expected)."""


def unreadable(path: str | os.PathLike[str], what: str, detail: str) -> SavedFileError:
    """Return the error for a file that is not a readable ``what``; ``detail`` says why."""
    return SavedFileError(
        f"{path} is not a readable {what} ({detail}): the file is truncated, corrupt or not "
        "written by tvbeta; write it again (re-run what saved it) or give the right file"
    )


def spec_to_dict(spec: KalmanSpec) -> dict[str, Any]:
    """Plain dict of the spec: Python scalars, lists and the per-time flags."""
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    out.update((f, getattr(spec, f)) for f in _SCALARS if getattr(spec, f) is not None)
    out.update((f, getattr(spec, f).tolist()) for f in _ARRAYS if getattr(spec, f) is not None)
    out.update((f, getattr(spec, f).to_dict()) for f in _MATRICES)
    return out


def spec_kwargs_from_dict(d: dict[str, Any]) -> dict[str, Any]:
    """Return the constructor arguments of KalmanSpec from :func:`spec_to_dict`'s output."""
    d = dict(d)
    fmt = d.pop("format", FORMAT)
    version = d.pop("version", VERSION)
    if fmt != FORMAT or version != VERSION:
        raise SpecError(
            f"not a {FORMAT} version {VERSION} document (format={fmt!r}, version={version!r})"
        )
    unknown = set(d) - {*_SCALARS, *_MATRICES, *_ARRAYS}
    if unknown:
        raise SpecError(f"unknown spec field(s) {sorted(unknown)}")
    if "K" not in d:
        raise SpecError("a spec document needs K")
    kwargs: dict[str, Any] = {f: d[f] for f in _SCALARS if f in d}
    kwargs.update((f, np.asarray(d[f], dtype=np.float64)) for f in _ARRAYS if f in d)
    kwargs.update((f, TimeVarying.from_dict(d[f])) for f in _MATRICES if f in d)
    return _no_state_shapes(kwargs) if kwargs["K"] == 0 else kwargs


def _no_state_shapes(kwargs: dict[str, Any]) -> dict[str, Any]:
    """K = 0: restore the shapes (0,), (0, 0), (n, 0, 0) that empty lists do not keep."""
    out = dict(kwargs)
    if "beta0" in out:
        out["beta0"] = out["beta0"].reshape(0)
    if "P0" in out:
        out["P0"] = out["P0"].reshape(0, 0)
    for field in ("T", "Q"):
        if field in out:
            m: TimeVarying = out[field]
            shape = (m.values.shape[0], 0, 0) if m.per_time else (0, 0)
            out[field] = TimeVarying(m.values.reshape(shape), per_time=m.per_time)
    return out


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValueError(f"spec files are .toml or .json, got {path.name!r}")
    return suffix


def save_dict(d: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``d`` as TOML or JSON, chosen by the file suffix (atomically: `write_text`)."""
    path = Path(path)
    if _suffix(path) == ".toml":
        write_text(path, tomli_w.dumps(d))
    else:
        write_text(path, json.dumps(d, indent=2, allow_nan=False) + "\n")


def load_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a dict written by :func:`save_dict`.

    Raises
    ------
    SavedFileError
        The file is not UTF-8 text, not valid TOML / JSON (e.g. truncated), or holds no table.
    """
    path = Path(path)
    suffix, what = _suffix(path), "tvbeta spec file"
    try:
        text = path.read_text(encoding="utf-8")
        d = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except UnicodeDecodeError as err:
        raise unreadable(path, what, f"not UTF-8 text: {err.reason}") from err
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise unreadable(path, what, f"not valid {suffix[1:].upper()}: {err}") from err
    if not isinstance(d, dict):
        raise unreadable(path, what, f"it holds a {type(d).__name__}, not a table")
    return d

