"""The notebooks run top to bottom on their small settings (TVBETA_NOTEBOOK_QUICK=1).

Each notebook executes in memory with nbclient, in a fresh kernel on the Python that runs
pytest (so the tvbeta under test), from the notebooks/ folder; nothing is written back. A cell
that raises fails the test with the notebook, the cell and the kernel's traceback. The
notebooks assert their own numbers (03 the statsmodels agreement, 04 its rankings and the
verdicts it prints, recomputed with pandas and numpy), so a run that
finishes is a check, not only a smoke test. The seed-data notebook skips when ../shared/data
is absent; 03 and 04 fall back to the built-in French data and always run.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tvbeta.data import shared_data_dir

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT = 600  # seconds; the quick settings take well under a minute per notebook
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

needs_seed_data = pytest.mark.skipif(
    shared_data_dir() is None, reason="the seed's data folder ../shared/data is absent"
)


@pytest.fixture(scope="session")
def kernel_path(tmp_path_factory) -> Path:
    """A jupyter data folder whose "python3" kernel is this interpreter.

    Put first on JUPYTER_PATH, it wins over any user- or system-wide "python3" kernel spec
    that could start another Python (without this tvbeta, or with another version of it).
    """
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / "python3")  # argv: sys.executable -m ipykernel_launcher
    return root


def run_notebook(name: str, kernel_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute notebooks/<name> with the quick settings; fail with the cell's error."""
    monkeypatch.setenv("TVBETA_NOTEBOOK_QUICK", "1")  # the kernel inherits the environment
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the kernel's working directory
    )
    try:
        client.execute()
    except CellExecutionError as err:
        failure = _ANSI.sub("", str(err))  # the cell's source and the kernel's traceback
    else:
        return
    pytest.fail(f"{name}: a cell failed\n\n{failure}", pytrace=False)  # outside: no chained trace


@needs_seed_data
def test_quickstart_runs_the_seed_workflow_on_the_seed_data(kernel_path, monkeypatch):
    run_notebook("01_quickstart.ipynb", kernel_path, monkeypatch)


def test_bayes_vs_grid_compares_the_methods_out_of_sample(kernel_path, monkeypatch):
    run_notebook("02_bayes_vs_grid.ipynb", kernel_path, monkeypatch)


def test_statsmodels_crosscheck_asserts_equal_loglik_mle_and_betas(kernel_path, monkeypatch):
    run_notebook("03_statsmodels_crosscheck.ipynb", kernel_path, monkeypatch)


def test_many_funds_compares_the_best_grid_model_of_each_fund(kernel_path, monkeypatch):
    run_notebook("04_many_funds.ipynb", kernel_path, monkeypatch)


def test_your_own_fund_goes_from_two_csv_files_to_bands_posterior_and_grid(
    kernel_path, monkeypatch
):
    run_notebook("00_your_own_fund.ipynb", kernel_path, monkeypatch)


def test_model_menu_fits_the_volatility_scaled_variant_and_stacks_it(kernel_path, monkeypatch):
    run_notebook("05_model_menu.ipynb", kernel_path, monkeypatch)


def test_many_funds_on_dask_gives_the_serial_numbers_and_resumes_a_stopped_run(
        kernel_path, monkeypatch):  # fmt: skip
    run_notebook("06_many_funds_dask.ipynb", kernel_path, monkeypatch)
