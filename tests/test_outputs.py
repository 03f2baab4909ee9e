"""Outputs are complete or absent: the atomic writer, run folders and their manifest, and the
interrupt helpers they rely on.

The reference for "intact" is always the bytes (or the values) written before the failure,
read back from disk; a failure is either a real writer failing (xarray refusing to serialise
a Python object after it has created the file, which leaves the 331-byte NetCDF of issue 10)
or an exception raised inside the block, as Ctrl-C would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tvbeta.interrupts import deferring_interrupts, noting_interrupts
from tvbeta.outputs import (
    MANIFEST,
    STAGING_PREFIX,
    IncompleteRunError,
    atomic_path,
    read_manifest,
    run_folder,
    write_text,
)


def unserialisable() -> xr.Dataset:
    """xarray creates the file, then fails on the object column: a mid-write failure."""
    return xr.Dataset({"x": ("t", np.arange(1000.0)), "y": ("t", np.array([object()] * 1000))})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


# --- atomic_path -------------------------------------------------------------------------------
def test_failing_netcdf_writer_leaves_the_old_file_intact(tmp_path):
    """Without the atomic writer the same call leaves a 331-byte stub at the path."""
    path = tmp_path / "fit.nc"
    xr.Dataset({"x": ("t", np.arange(5.0))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ValueError, match="cannot serialize arbitrary Python objects"):
        with atomic_path(path) as tmp:
            unserialisable().to_netcdf(tmp, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        np.testing.assert_array_equal(back["x"].values, np.arange(5.0))
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]  # no temporary file left


def test_interrupt_inside_the_writer_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_failed_first_write_leaves_no_file_at_all(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "fit.nc") as tmp:
            unserialisable().to_netcdf(tmp, engine="h5netcdf")
    assert list(tmp_path.iterdir()) == []


def test_a_zarr_store_appears_whole_or_not_at_all(tmp_path):
    """A directory written at the temporary path is renamed into place when the block ends;
    an interrupted one is removed, and an existing directory is never replaced."""
    ds = xr.Dataset({"x": ("t", np.arange(5.0))})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "part.zarr") as tmp:
            ds.to_zarr(tmp, consolidated=False)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "part.zarr") as tmp:
        ds.to_zarr(tmp, consolidated=False)
    xr.testing.assert_identical(xr.open_zarr(tmp_path / "part.zarr", consolidated=False).load(),
                                ds)  # fmt: skip
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "part.zarr") as tmp:
            (ds + 1).to_zarr(tmp, consolidated=False)
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "part.zarr", consolidated=False)["x"],
                                  np.arange(5.0))  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["part.zarr"]


def test_temporary_path_keeps_the_suffix_for_writers_that_choose_the_format_by_it(tmp_path):
    with atomic_path(tmp_path / "trace.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert (tmp_path / "trace.png").read_bytes() == b"png"


def test_write_text_replaces_the_content(tmp_path):
    write_text(tmp_path / "a.json", "1")
    write_text(tmp_path / "a.json", "2")
    assert (tmp_path / "a.json").read_text() == "2" and len(list(tmp_path.iterdir())) == 1


# --- run_folder --------------------------------------------------------------------------------
def complete_run(folder: Path, tag: str = "old") -> dict[str, bytes]:
    with run_folder(folder, info={"command": tag}) as stage:
        (stage / "fits").mkdir()
        (stage / "fits" / "a.nc").write_text(f"{tag} fit")
        (stage / "comparison.json").write_text(f"{tag} comparison")
        (stage / "report.html").write_text(f"{tag} report")
    return snapshot(folder)


def test_manifest_is_written_last_and_lists_every_file_with_its_size(tmp_path):
    complete_run(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["files"] == {"comparison.json": len("old comparison"),
                                 "fits/a.nc": len("old fit"), "report.html": len("old report")}
    assert manifest["command"] == "old" and manifest["format"] == "tvbeta.run"
    assert {"tvbeta", "finished"} <= set(manifest)
    assert read_manifest(tmp_path) == manifest


def test_failure_during_a_rerun_leaves_the_previous_run_byte_for_byte(tmp_path):
    before = complete_run(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with run_folder(tmp_path) as stage:
            (stage / "comparison.json").write_text("new comparison")
            (stage / "fits").mkdir()
            raise KeyboardInterrupt  # Ctrl-C before the run ends
    assert snapshot(tmp_path) == before  # no staging folder, no new file
    read_manifest(tmp_path)  # still complete


def test_rerun_replaces_the_files_and_removes_what_the_previous_run_listed_only(tmp_path):
    complete_run(tmp_path)
    (tmp_path / "notes.txt").write_text("the user's own file")
    with run_folder(tmp_path) as stage:  # like `compare` after `run`: no report this time
        (stage / "fits").mkdir()
        (stage / "fits" / "b.nc").write_text("new fit")
        (stage / "comparison.json").write_text("new comparison")
    assert snapshot(tmp_path).keys() == {"comparison.json", "fits/b.nc", "notes.txt", MANIFEST}
    assert set(read_manifest(tmp_path)["files"]) == {"comparison.json", "fits/b.nc"}


def test_rerun_removes_the_previous_runs_files_even_if_one_was_edited_since(tmp_path):
    complete_run(tmp_path)
    (tmp_path / "report.html").write_text("edited")  # the old run now reads as incomplete
    with run_folder(tmp_path) as stage:
        (stage / "comparison.json").write_text("new comparison")
    assert snapshot(tmp_path).keys() == {"comparison.json", MANIFEST}


def test_update_replaces_one_file_and_keeps_the_others_listed(tmp_path):
    complete_run(tmp_path)
    with run_folder(tmp_path, update=True) as stage:
        (stage / "report.html").write_text("rebuilt report")
    manifest = read_manifest(tmp_path)
    assert manifest["files"]["report.html"] == len("rebuilt report")
    assert set(manifest["files"]) == {"comparison.json", "fits/a.nc", "report.html"}
    assert manifest["command"] == "old"


def test_update_of_an_incomplete_folder_is_refused(tmp_path):
    (tmp_path / "comparison.json").write_text("{}")
    with pytest.raises(IncompleteRunError, match=r"no manifest\.json"):
        with run_folder(tmp_path, update=True):
            pass


def test_staging_folder_of_a_killed_run_is_removed_by_the_next(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f"{STAGING_PREFIX}{gone.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "comparison.json").write_text("half")
    complete_run(tmp_path)
    assert not stale.exists()


# --- read_manifest: what an incomplete folder says -----------------------------------------
def test_folder_without_manifest_says_interrupted_and_to_rerun(tmp_path):
    (tmp_path / "comparison.json").write_text("{}")
    with pytest.raises(IncompleteRunError) as err:
        read_manifest(tmp_path)
    assert str(err.value).startswith(f"{tmp_path} is not a complete tvbeta run: it has no "
                                     "manifest.json")  # fmt: skip
    assert "interrupted or failed" in str(err.value) and "Re-run" in str(err.value)


def test_truncated_file_is_named_with_both_sizes(tmp_path):
    complete_run(tmp_path)
    (tmp_path / "fits" / "a.nc").write_bytes(b"x" * 3)
    with pytest.raises(IncompleteRunError, match=r"fits/a.nc has 3 bytes where its "
                                                 r"manifest.json says 7:"):  # len("old fit")
        read_manifest(tmp_path)


def test_missing_file_is_named(tmp_path):
    complete_run(tmp_path)
    (tmp_path / "report.html").unlink()
    with pytest.raises(IncompleteRunError, match=r"report\.html is missing"):
        read_manifest(tmp_path)


def test_a_reader_checks_only_the_files_it_names(tmp_path):
    complete_run(tmp_path)
    (tmp_path / "report.html").write_text("edited since")
    read_manifest(tmp_path, needed=("comparison.json", "fits"))  # no error
    (tmp_path / "fits" / "a.nc").write_text("")
    with pytest.raises(IncompleteRunError, match=r"fits/a\.nc has 0 bytes"):
        read_manifest(tmp_path, needed=("comparison.json", "fits"))


def test_truncated_manifest_is_reported_as_unreadable(tmp_path):
    complete_run(tmp_path)
    manifest = tmp_path / MANIFEST
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(IncompleteRunError, match=r"its manifest\.json is unreadable"):
        read_manifest(tmp_path)


def test_unfinished_run_is_named_by_its_staging_folder(tmp_path):
    (tmp_path / f"{STAGING_PREFIX}1-x").mkdir()
    with pytest.raises(IncompleteRunError, match="a run into it has not finished"):
        read_manifest(tmp_path)


def test_a_failed_run_leaves_no_folder_it_created(tmp_path):
    """'Nothing was written': the folder and the parents the run made are removed again; a
    folder that was there stays."""
    with pytest.raises(RuntimeError), run_folder(tmp_path / "new" / "run"):
        raise RuntimeError("the fit failed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()
    with pytest.raises(RuntimeError), run_folder(tmp_path / "mine" / "run"):
        raise RuntimeError("the fit failed")
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    assert not any((tmp_path / "mine").iterdir())


# --- interrupts ----------------------------------------------------------------------------------
@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt in this test, even when pytest was started with SIGINT
    ignored (a background job of a shell without job control: both tests below failed so)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_swallowed_interrupt_is_still_noted(sigint_raises):
    """PyMC and nutpie catch KeyboardInterrupt and return; the note keeps it."""
    with noting_interrupts() as note:
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass  # what the library does
    assert note.interrupted
    with pytest.raises(KeyboardInterrupt):
        note.check()


def test_interrupt_during_a_deferred_block_arrives_after_it(sigint_raises):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferring_interrupts():
            signal.raise_signal(signal.SIGINT)
            done.append("the block ran to its end")
    assert done == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


LLVM_CALLBACK = """
import os, signal, sys, time
import llvmlite.binding as llvm
from tvbeta.interrupts import noting_interrupts

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
machine = llvm.Target.from_default_triple().create_target_machine()
engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)

def getbuffer(module):  # LLVM calls this through ctypes while it compiles, as for numba's cache
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(10_000):
        pass  # Python runs the SIGINT handler here, inside the callback
    return None

engine.set_object_cache(getbuffer_func=getbuffer)
try:
    with noting_interrupts():
        engine.add_module(llvm.parse_assembly("define i32 @f(i32 %x) {ret i32 %x}"))
        engine.finalize_object()
        print("compiled", flush=True)
        time.sleep(float(sys.argv[1]))
    print("lost")
except KeyboardInterrupt:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("raised")
"""


PROCESS_START = """
import multiprocessing, os, signal, sys, time
from multiprocessing.context import ForkProcess
from tvbeta.interrupts import noting_interrupts

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored


class InterruptedRightAfterTheFork(ForkProcess):
    @staticmethod
    def _Popen(process_obj):
        popen = ForkProcess._Popen(process_obj)
        signal.raise_signal(signal.SIGINT)  # the handler runs here: forked, not yet recorded
        return popen


def wait_for_orders():
    time.sleep(20)


if sys.argv[1] == "parent":
    child = InterruptedRightAfterTheFork(target=wait_for_orders, daemon=True)
    try:
        with noting_interrupts():
            child.start()
            time.sleep(5)
        print("lost")
    except KeyboardInterrupt:
        print("raised", "recorded" if child in multiprocessing.active_children() else "lost")
        child.terminate()
        child.join()
else:
    with noting_interrupts():
        child = ForkProcess(target=wait_for_orders, daemon=True)
        child.start()
        time.sleep(1)
        os.kill(child.pid, signal.SIGINT)
        child.join(10)
        print("child exit code", child.exitcode)
"""


def test_interrupt_right_after_a_fork_is_raised_once_the_child_is_recorded():
    """A Ctrl-C inside ``Process.start`` after the fork left the child unrecorded, so nothing
    stopped it (a PyMC chain process waited for orders for ever and held CI's pipe). It is
    raised once ``start`` has returned: the child is among the active children."""
    run = subprocess.run([sys.executable, "-c", PROCESS_START, "parent"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["raised", "recorded"]


def test_a_forked_child_interrupted_on_its_own_stops():
    """The child runs under its parent's ``start`` frame with the parent's handler: there a
    SIGINT must raise at once (exit code 1), not wait for ``start`` to return."""
    run = subprocess.run([sys.executable, "-c", PROCESS_START, "child"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["child", "exit", "code", "1"]


SIGTERM_FORK = """
import multiprocessing, signal, sys, time
from tvbeta.interrupts import terminating_as_interrupts
signal.signal(signal.SIGINT, signal.default_int_handler)
with terminating_as_interrupts() as term:
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
    child.start()
    time.sleep(0.3)
    child.terminate()
    child.join(30)
    print("child", child.exitcode)
    try:
        signal.raise_signal(signal.SIGTERM)
        time.sleep(5)
        print("not raised")
    except KeyboardInterrupt:
        print("parent", term.received)
"""


def test_sigterm_is_a_ctrl_c_in_the_command_and_kills_a_forked_child_as_before():
    """The command's SIGTERM takes the Ctrl-C path (KeyboardInterrupt, noted); a forked child
    (PyMC's chains) inherits the handler, and ``terminate()`` must still end it at once
    (killed by the signal, exit code -15), not raise in it."""
    run = subprocess.run([sys.executable, "-c", SIGTERM_FORK], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["child", "-15", "parent", "True"]


@pytest.mark.parametrize("after", [5.0, 0.0], ids=["block goes on", "block ends at once"])
def test_interrupt_inside_an_llvm_callback_is_raised_once_python_is_back(after):
    """A Ctrl-C during numba's compile can land in a ctypes callback of LLVM; an exception
    there is printed and dropped (and LLVM crashed, exit -11, in a fresh-clone run). The
    SIGINT must be raised after the compile instead, whether or not the block goes on."""
    run = subprocess.run([sys.executable, "-c", LLVM_CALLBACK, str(after)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["compiled", "raised"]
    assert "Exception ignored" not in run.stderr
