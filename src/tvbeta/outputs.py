"""Outputs that are complete or absent: atomic files, and run folders marked complete at the end.

`atomic_path` (and `write_text`) for one file, `run_folder` and `read_manifest` for the folder
of a run. Every tvbeta writer goes through `atomic_path`. A rename within one folder is atomic
(POSIX ``rename``, Windows ``MoveFileEx``), so a reader sees the old file or the new one, never
a truncated one such as the 331-byte NetCDF an interrupted ``to_netcdf`` leaves.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tvbeta.interrupts import deferring_interrupts

__all__ = [
    "MANIFEST", "IncompleteRunError", "atomic_path", "read_manifest", "run_folder", "write_text",
]  # fmt: skip

MANIFEST = "manifest.json"
"""Written last into a run folder: its files with their sizes, the tvbeta version, settings."""
MANIFEST_FORMAT = "tvbeta.run"
STAGING_PREFIX = ".tvbeta-staging-"
"""Hidden folder inside the output folder holding a run's files until it ends."""
_REPLACED = ".replaced"  # inside the staging folder: the previous run's entries, removed with it


class IncompleteRunError(Exception):
    """A folder is not a complete run (interrupted, failed, changed since); the message says why."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (POSIX; Windows has no directory handles for this)."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder that replaces ``path`` when the block ends.

    The temporary name keeps the suffix, so writers that choose a format by suffix (pandas,
    matplotlib) write the same file they would write to ``path``. The writer may make a
    directory there instead (a Zarr store): its files are fsynced and it is renamed to
    ``path``, which must not exist then (a directory is not replaced).

    Parameters
    ----------
    path : path-like
        The file (or new directory) to write. Its folder must exist.

    Yields
    ------
    Path
        Where the writer writes, e.g. ``with atomic_path(p) as tmp: ds.to_netcdf(tmp)``. When
        the block ends normally it is fsynced and renamed over ``path``; when it raises
        (Ctrl-C included) it is removed and ``path`` keeps its previous content, or none.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")
    try:
        yield tmp
        if tmp.is_dir():
            for file in (f for f in tmp.rglob("*") if f.is_file()):
                _fsync(file)
            for folder in (tmp, *(f for f in tmp.rglob("*") if f.is_dir())):
                _fsync_dir(folder)
            os.rename(tmp, path)  # fails if path exists: a directory is never replaced
        else:
            _fsync(tmp)
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def tvbeta_version() -> str:
    """Return the installed tvbeta's version ("unknown" from a source tree not installed)."""
    try:
        return metadata.version("tvbeta")
    except metadata.PackageNotFoundError:
        return "unknown"


@contextmanager
def run_folder(folder: str | os.PathLike[str], *, info: Mapping[str, Any] | None = None,
               update: bool = False) -> Iterator[Path]:  # fmt: skip
    """Write a run's files into ``folder`` all together at the end, or not at all.

    Parameters
    ----------
    folder : path-like
        The output folder (created with its parents if absent).
    info : mapping, optional
        JSON-friendly facts about the run stored in the manifest (command, settings).
    update : bool
        Add or replace some files of a run (e.g. rebuild its report) and keep the others
        with their manifest entries; ``folder`` must then have a readable manifest.

    Yields
    ------
    Path
        A hidden staging folder inside ``folder`` (``.tvbeta-staging-*``) to write the run's
        files and subfolders to, with the names they will have in ``folder``.

    Raises
    ------
    IncompleteRunError
        With ``update``, when ``folder`` has no readable manifest.

    Notes
    -----
    When the block ends normally: the manifest is removed (the folder now reads as incomplete),
    each staged entry replaces the one of the same name (a subfolder as a whole), the previous
    run's listed entries this run did not write are removed (unless ``update``), and the new
    manifest (every file with its size, the tvbeta version, the time and ``info``) is written
    last, with SIGINT and SIGTERM held back (`deferring_interrupts`). When the block raises,
    ``folder`` is exactly as it was (absent if it was: the folders this call made are removed
    while empty). Files no manifest lists (the user's own) are never
    touched; staging folders of runs whose process is gone (a hard kill) are removed.
    """
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # innermost first
    folder.mkdir(parents=True, exist_ok=True)
    committed = False
    try:
        # the previous run's listing (its files are checked by whoever reads them, not here)
        previous = read_manifest(folder, needed=()) if update else _listing(folder)
        _remove_dead_staging(folder)
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
        try:
            yield stage
            with deferring_interrupts():
                _commit(stage, folder, previous, dict(info or {}), update)
            committed = True
        finally:
            with deferring_interrupts():  # a second Ctrl-C must not leave half a staging folder
                shutil.rmtree(stage, ignore_errors=True)
    finally:
        if not committed:  # "nothing was written": no empty folder left behind either
            _remove_empty(made)


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) while they are empty; stop at the first that is not."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:  # not empty (something else wrote there), or already gone
            return


def _remove_dead_staging(folder: Path) -> None:
    """Staging folders of runs whose process is gone (killed hard: no cleanup ran)."""
    for stage in folder.glob(f"{STAGING_PREFIX}*"):
        pid = stage.name.removeprefix(STAGING_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stage, ignore_errors=True)


def _alive(pid: int) -> bool:
    if os.name != "posix":  # pragma: no cover - Windows' os.kill terminates the process
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    return True


def _commit(stage: Path, folder: Path, previous: dict[str, Any] | None, info: dict[str, Any],
            update: bool) -> None:  # fmt: skip
    entries = sorted(stage.iterdir())
    replaced = stage / _REPLACED
    replaced.mkdir()
    (folder / MANIFEST).unlink(missing_ok=True)
    for entry in entries:
        target = folder / entry.name
        if target.is_dir() or entry.is_dir():  # os.replace cannot overwrite a folder
            if target.exists():
                os.replace(target, replaced / entry.name)
        os.replace(entry, target)
    names = {e.name for e in entries}
    kept = previous["files"] if update and previous else {}
    files = {f: size for f, size in kept.items() if Path(f).parts[0] not in names}
    if previous and not update:
        stale = {Path(f).parts[0] for f in previous["files"]} - names
        for name in stale:
            if (folder / name).exists():
                os.replace(folder / name, replaced / name)
    for entry in entries:
        files.update(_sizes(folder, folder / entry.name))
    manifest = {
        **(previous if update and previous else {}),
        **info,
        "format": MANIFEST_FORMAT,
        "tvbeta": tvbeta_version(),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": dict(sorted(files.items())),
    }
    write_text(folder / MANIFEST, json.dumps(manifest, indent=1, default=str) + "\n")


def _sizes(folder: Path, entry: Path) -> dict[str, int]:
    paths = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry]
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in paths}


def _listing(folder: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(folder, needed=())
    except IncompleteRunError:
        return None


def read_manifest(
    folder: str | os.PathLike[str], *, needed: Collection[str] | None = None
) -> dict[str, Any]:
    """Read the manifest of a complete run folder written by `run_folder`.

    Parameters
    ----------
    folder : path-like
    needed : collection of str, optional
        Top-level names (a file, or a subfolder for every file under it) whose listed files
        must be present with their sizes; default all. A reader names what it reads, so a
        report rewritten since the run does not make the comparison unreadable.

    Returns
    -------
    dict
        ``files`` (relative path -> size in bytes), ``tvbeta`` (version), ``finished`` (UTC,
        ISO 8601) and the ``info`` the run gave.

    Raises
    ------
    IncompleteRunError
        When the manifest is absent or unreadable, or a needed file it lists is missing or
        has another size: the message names the folder, the problem and what to do.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest["files"], dict):
            raise ValueError(f"not a {MANIFEST_FORMAT} manifest")
    except FileNotFoundError:
        raise _incomplete(folder, _no_manifest_reason(folder)) from None
    except (OSError, ValueError, KeyError, AttributeError) as err:
        raise _incomplete(folder, f"its {MANIFEST} is unreadable ({err})") from err
    for name, size in manifest["files"].items():
        if needed is not None and Path(name).parts[0] not in needed:
            continue
        file = folder / name
        if not file.is_file():
            raise _incomplete(folder, f"{name} is missing")
        if (actual := file.stat().st_size) != size:
            raise _incomplete(folder, f"{name} has {actual} bytes where its {MANIFEST} says "
                                      f"{size}: it was changed after the run")  # fmt: skip
    return manifest


def _no_manifest_reason(folder: Path) -> str:
    staging = sorted(p.name for p in folder.glob(f"{STAGING_PREFIX}*"))
    if staging:
        return (f"a run into it has not finished (its staging folder {staging[0]} is there: "
                "the run is still going, or was killed)")  # fmt: skip
    return (f"it has no {MANIFEST}, which a run writes after all its other files, so the run "
            "that wrote these files was interrupted or failed (or a tvbeta without manifests "
            "wrote them)")  # fmt: skip


def _incomplete(folder: Path, reason: str) -> IncompleteRunError:
    return IncompleteRunError(
        f"{folder} is not a complete tvbeta run: {reason}. Re-run the command that writes it "
        f"(e.g. `tvbeta run MODEL.toml --output {folder}`)"
    )
