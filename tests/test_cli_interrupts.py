"""Ctrl-C while `tvbeta run` works: real processes of the command, sent SIGINT at each stage.

Each test re-runs the command into a copy of a complete run folder, waits until the progress
on stderr shows the stage has begun (and, for sampling, until the sampler's threads or
processes exist), then sends SIGINT. Expected: exit code 130, one last line saying the folder
is unchanged, the folder byte for byte as before (no partial file, no staging folder), and
still a complete run. The reference is the folder's own bytes read before the re-run.

Without a terminal (stderr is a pipe here) the command prints one progress line per series,
written step by step; the tests use those steps as markers, never a fixed sleep.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tvbeta.outputs import read_manifest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for the sampler's threads"),
]

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny.toml"
TIMEOUT = 900  # seconds for any one wait: generous, the machine may be loaded
SMALL = ("--target", "NoDur", "--draws", "30", "--tune", "30")
# about 4 min of tuning on tiny.toml: still sampling when the test interrupts it
LONG_TUNING = ("--target", "NoDur", "--draws", "13", "--tune", "200000")
# What the installed `tvbeta` script runs. Not `python -m tvbeta.cli`: when a KeyboardInterrupt
# lands inside an exec() of a string (dataclasses build their methods so) CPython flags it as
# unhandled, even once caught, and a -m run then ends by re-raising SIGINT: exit status -2,
# which a shell reports as 130 too.
COMMAND = (sys.executable, "-c", "import sys; from tvbeta.cli import main; sys.exit(main())")


def tvbeta(*args: str | Path, group: bool = False) -> subprocess.Popen:
    """The command from this tree, stderr piped. SIGINT is reset to its default in the child, as
    a command started from a terminal has it (in its own session too, ``group``): a shell that
    runs the tests in the background ignores SIGINT, and children inherit that."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [*COMMAND, "--debug", *map(str, args)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        cwd=ROOT, start_new_session=group,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


class Stderr:
    """Collects a process's stderr in a thread, so a test can wait for a marker in it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self.text = process, ""
        self.stdout = ""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.process.stderr.read1(4096), b""):
            self.text += chunk.decode(errors="replace")

    def wait_for(self, marker: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while marker not in self.text:
            assert self.process.poll() is None, f"ended before {marker!r}:\n{self.text}"
            assert time.monotonic() < deadline, f"no {marker!r} in:\n{self.text}"
            time.sleep(0.02)

    def finish(self) -> int:
        self.stdout = self.process.stdout.read().decode()
        code = self.process.wait(TIMEOUT)
        self.thread.join(TIMEOUT)
        return code


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def nutpie_sampling(pid: int) -> bool:
    """nutpie runs its chains in threads named nutpie-worker-N."""
    tasks = Path(f"/proc/{pid}/task")
    return any("nutpie-worker" in (t / "comm").read_text() for t in tasks.iterdir())


def pymc_sampling(pid: int) -> bool:
    """PyMC (cores = 2) runs its two chains in child processes."""
    return len(psutil.Process(pid).children()) >= 2


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under folder (hidden ones included), with the bytes of the files."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}  # fmt: skip


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory) -> tuple[Path, str]:
    """A complete run of tiny.toml (one series, short chains): the folder and its stderr."""
    folder = tmp_path_factory.mktemp("previous")
    process = tvbeta("run", TINY, *SMALL, "--output", folder)
    err = Stderr(process)
    assert err.finish() == 0, err.text
    return folder, err.text


@pytest.fixture
def model_files(tmp_path) -> dict[str, Path]:
    """tiny.toml as is (PyMC's NUTS), with nutpie, and with exact LFO-CV (a refit per test
    row, so the LFO stage lasts)."""
    text = TINY.read_text()
    files = {"pymc": TINY, "nutpie": tmp_path / "nutpie.toml", "lfo": tmp_path / "lfo.toml"}
    files["nutpie"].write_text(text.replace('sampler = "pymc"', 'sampler = "nutpie"'))
    files["lfo"].write_text(text.replace("rolling_window = 24", "rolling_window = 24\n"
                                                                "lfo_threshold = 0.0"))  # fmt: skip
    return files


STAGES = [
    # id, model, marker on stderr, wait until, extra arguments, SIGINT to the process group
    ("data loading", "pymc", "series on intercept, MktRF, SMB, HML; ", None, SMALL, False),
    ("grid", "pymc", "NoDur: grid", None, SMALL, False),
    ("MLE", "pymc", ", MLE", None, SMALL, False),
    ("nutpie sampling", "nutpie", "Bayes (", nutpie_sampling, LONG_TUNING, False),
    ("PyMC sampling", "pymc", "Bayes (", pymc_sampling, LONG_TUNING, False),
    ("PyMC sampling, Ctrl-C to the group", "pymc", "Bayes (", pymc_sampling, LONG_TUNING, True),
    ("LFO", "lfo", ", LFO", None, SMALL, False),
    ("writing the files", "pymc", "writing comparison.json", None, SMALL, False),
    ("writing the report", "pymc", "writing report.html", None, SMALL, False),
]


@pytest.mark.parametrize(("model", "marker", "started", "extra", "group"),
                         [pytest.param(*s[1:], id=s[0]) for s in STAGES])  # fmt: skip
def test_interrupt_exits_130_and_leaves_the_previous_run_intact(
    previous_run, model_files, tmp_path, model, marker, started, extra, group
):
    folder = tmp_path / "out"
    shutil.copytree(previous_run[0], folder)
    before = tree(folder)
    process = tvbeta("run", model_files[model], *extra, "--output", folder, group=group)
    err = Stderr(process)
    err.wait_for(marker)
    if started is not None:
        wait_until(lambda: started(process.pid), f"{model} to start sampling")
    workers = psutil.Process(process.pid).children(recursive=True)
    if group:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        os.kill(process.pid, signal.SIGINT)
    code = err.finish()
    assert code == 130, err.text
    last = err.text.splitlines()[-1]
    assert last == f"tvbeta: interrupted; {folder} is unchanged: it holds the previous complete run"
    assert err.stdout == ""  # no tables printed for a run that was thrown away
    assert tree(folder) == before  # nothing new, nothing changed, no staging folder
    read_manifest(folder)  # still a complete run
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"sampler processes left running: {alive}"


@pytest.mark.parametrize(("signum", "code", "said"), [
    pytest.param(signal.SIGINT, 130, "interrupted", id="Ctrl-C"),
    pytest.param(signal.SIGTERM, 143, "terminated", id="kill"),
])  # fmt: skip
def test_interrupt_of_a_first_run_leaves_no_folder(tmp_path, signum, code, said):
    """It left the empty folder it had made, though it said nothing was written there; a
    SIGTERM (kill, a job scheduler's stop) ended the process at once, leaving its staging
    folder: it now takes the Ctrl-C path."""
    folder = tmp_path / "new"
    process = tvbeta("run", TINY, *SMALL, "--output", folder)
    err = Stderr(process)
    err.wait_for("NoDur: grid")
    os.kill(process.pid, signum)
    assert err.finish() == code, err.text
    assert err.text.splitlines()[-1] == f"tvbeta: {said}; nothing was written to {folder}"
    assert not folder.exists()


def test_without_a_terminal_each_series_prints_one_progress_line(previous_run):
    """stderr is a pipe: one line per series, its steps and seconds (no tqdm bar)."""
    _, text = previous_run
    line = (r"^\[1/1\] NoDur: grid, MLE, Bayes \(2 chains x \(30 \+ 30\)\), rolling OLS, LFO "
            r"\.\.\. \d+\.\d s$")
    assert re.search(line, text, re.MULTILINE), text
    assert "series:" not in text and "it/s" not in text  # tqdm's bar would show these
