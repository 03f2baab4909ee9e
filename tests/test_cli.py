"""The `tvbeta` command line: help, exit codes and messages, and one end-to-end run.

Most tests run `main` in-process with the comparison replaced by a stub, so they check the
command line's own work (parsing, model files, folders, messages) in milliseconds; the test
marked ``slow`` at the end runs the real comparison on tests/fixtures/tiny.toml.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tvbeta.evaluate.compare as compare_module
from tvbeta import cli
from tvbeta.data import SHARED_DATA_ENV, DataValidationError
from tvbeta.outputs import run_folder

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny.toml"
NILE = ROOT / "models" / "nile.toml"


class StubComparison:
    """What `compare_methods` returns, reduced to what the command line calls."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.series: dict[str, Any] = {}  # no fits: none failed a convergence check

    def write_files(self, folder: Path) -> None:
        (Path(folder) / "comparison.json").write_text("{}")

    def to_markdown(self) -> str:
        return "## Summary across series\n"


@pytest.fixture
def stub_compare(monkeypatch) -> list[dict[str, Any]]:
    """Replace compare_methods by a stub; the list collects the keyword arguments of each call."""
    calls: list[dict[str, Any]] = []

    def fake(data, **kwargs):
        calls.append({"data": data, **kwargs})
        return StubComparison(kwargs)

    monkeypatch.setattr(compare_module, "compare_methods", fake)
    monkeypatch.setitem(sys.modules, "tvbeta.report", SimpleNamespace(write_report=stub_report))
    # the stub has no scores to judge (and another test may have imported the real module)
    monkeypatch.setitem(sys.modules, "tvbeta.report.verdict", None)
    return calls


def stub_report(comparison: Any, path: Path, *, folder: Path) -> Path:
    Path(path).write_text("<html></html>")
    return Path(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- help and parsing ------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["run"], ["compare"], ["fit"], ["funds"], ["report"],
                                     ["demo"]])  # fmt: skip
def test_help_exits_zero_and_prints_usage(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and out.startswith("usage: tvbeta")


def test_no_command_is_a_usage_error(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "the following arguments are required: COMMAND" in err


def test_bad_method_lists_the_valid_ones(capsys):
    code, _, err = run(capsys, "fit", TINY, "--method", "ols")
    assert code == 2
    assert "argument --method: invalid choice: 'ols' (choose from 'mle', 'bayes', 'grid')" in err


def test_non_positive_draws_is_a_usage_error(capsys):
    code, _, err = run(capsys, "run", TINY, "--draws", "0")
    assert code == 2 and "argument --draws: expected an integer >= 1, got '0'" in err


# --- errors with exit code 2 ---------------------------------------------------------------------
def test_missing_model_file_names_the_resolved_path(capsys, tmp_path):
    code, _, err = run(capsys, "run", tmp_path / "nope.toml")
    assert code == 2
    assert err == f"tvbeta: error: model file not found: {tmp_path / 'nope.toml'}\n"


def test_model_file_error_is_reported_with_its_file_and_key(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("draws = 200", "draw = 200"))
    code, _, err = run(capsys, "compare", bad, "--output", tmp_path / "out")
    assert code == 2
    assert err.startswith(f"tvbeta: error: {bad}: [sampler]: unknown key 'draw'; did you mean")


def test_unknown_target_on_the_command_line_is_blamed_on_the_option(capsys, tmp_path,
                                                                    stub_compare):  # fmt: skip
    code, _, err = run(capsys, "compare", TINY, "--target", "Enrg", "--output", tmp_path)
    assert code == 2
    assert (f"{TINY}: --target (command line): 'Enrg' is not a column of the data; did you "
            "mean 'Enrgy'?") in err  # not the file's [model] targets: they are right
    assert not stub_compare


def test_output_folder_that_is_a_file_is_refused_before_any_work(capsys, tmp_path, stub_compare):
    file = tmp_path / "taken"
    file.write_text("")
    code, _, err = run(capsys, "run", TINY, "--output", file)
    assert code == 2 and f"output folder {file} is an existing file: choose another" in err
    assert not stub_compare


def test_output_folder_that_cannot_be_created_says_why(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    code, _, err = run(capsys, "fit", TINY, "--method", "mle", "--output", tmp_path / "file" / "x")
    assert code == 2 and f"cannot create the output folder {tmp_path / 'file' / 'x'}" in err


def test_seed_data_absent_says_where_it_looked(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    code, _, err = run(capsys, "compare", ROOT / "models" / "preferreds.toml", "--output",
                       tmp_path / "out")  # fmt: skip
    assert code == 2 and f"seed data folder {tmp_path} lacks ['bond_factor_returns.csv'" in err
    assert f"or the environment variable {SHARED_DATA_ENV} to the folder" in err


def test_data_error_during_the_comparison_exits_2(capsys, tmp_path, monkeypatch):
    def fail(data, **kwargs):
        raise DataValidationError("factor column 'SMB' is constant")

    monkeypatch.setattr(compare_module, "compare_methods", fail)
    code, _, err = run(capsys, "compare", TINY, "--output", tmp_path)
    assert code == 2 and err.endswith("\ntvbeta: error: factor column 'SMB' is constant\n")


def test_report_of_a_missing_folder(capsys, tmp_path):
    code, _, err = run(capsys, "report", tmp_path / "none")
    assert code == 2 and f"output folder not found: {tmp_path / 'none'}" in err


def test_report_of_a_folder_without_a_comparison(capsys, tmp_path):
    code, _, err = run(capsys, "report", tmp_path)
    assert code == 2 and f"{tmp_path} holds no saved comparison (comparison.json)" in err


@pytest.fixture
def saved(tmp_path) -> Path:
    """A complete run folder: a real comparison (MLE and rolling OLS, one series) saved."""
    from tvbeta.config import load_config

    data = load_config(TINY).load_data()
    comparison = compare_module.compare_methods(
        data, ["NoDur"], ["MktRF", "SMB", "HML"], methods=["mle", "rolling_ols"], progress=False
    )
    return comparison.save(tmp_path / "saved")


def test_report_of_an_interrupted_run_without_manifest_says_to_rerun(capsys, saved):
    """Issue 10's folder: an older tvbeta, interrupted, left a 331-byte NetCDF beside the
    previous comparison (made here by xarray failing mid-write, as it does) and no manifest;
    `report` used to fail with a KeyError."""
    import xarray as xr

    (saved / "manifest.json").unlink()
    stub = xr.Dataset({"y": ("t", np.array([object()] * 10))})
    with pytest.raises(ValueError):
        stub.to_netcdf(saved / "fits" / "NoDur.bayes.nc", engine="h5netcdf")
    assert (saved / "fits" / "NoDur.bayes.nc").stat().st_size == 331
    code, _, err = run(capsys, "report", saved)
    assert code == 2
    assert err.startswith(f"tvbeta: error: {saved} is not a complete tvbeta run: it has no "
                          "manifest.json, which a run writes after all its other files, so the "
                          "run that wrote these files was interrupted or failed")  # fmt: skip
    assert f"Re-run the command that writes it (e.g. `tvbeta run MODEL.toml --output {saved}`)" \
        in err


def test_report_of_a_folder_with_a_truncated_file_names_the_file(capsys, saved):
    size = (saved / "data.csv").stat().st_size
    with open(saved / "data.csv", "r+b") as fh:
        fh.truncate(100)
    code, _, err = run(capsys, "report", saved)
    assert code == 2 and f"data.csv has 100 bytes where its manifest.json says {size}" in err


def test_report_rebuilt_in_the_folder_is_listed_in_its_manifest(capsys, saved):
    from tvbeta.outputs import read_manifest

    for _ in range(2):  # the second time over a report edited since: rebuilt, listed again
        code, out, err = run(capsys, "report", saved)
        assert code == 0 and out == f"report: {saved / 'report.html'}\n", err
        files = read_manifest(saved)["files"]
        assert files["report.html"] == (saved / "report.html").stat().st_size
        (saved / "report.html").write_text("<html>edited</html>")
    assert {"comparison.json", "data.csv", "fits/NoDur.mle.toml"} <= set(files)
    assert not list(saved.glob(".*"))  # no staging folder, no temporary file


def test_failed_rerun_leaves_the_previous_run_byte_for_byte(capsys, saved, monkeypatch):
    """A crash after the comparison, while the files are written: nothing of it lands."""
    before = {p: p.read_bytes() for p in sorted(saved.rglob("*")) if p.is_file()}
    quick = saved.parent / "quick.toml"  # the real comparison, without the slow methods
    quick.write_text(TINY.read_text().replace("[compare]", '[compare]\nmethods = ["mle"]'))

    def crash(comparison, path, folder):
        (Path(path).parent / "half.html").write_text("<html>")  # in the staging folder
        raise RuntimeError("disk full")

    monkeypatch.setattr(cli, "_write_report", crash)
    code, _, err = run(capsys, "run", quick, "--target", "NoDur", "--output", saved)
    assert code == 1 and "tvbeta: unexpected error: RuntimeError: disk full" in err
    assert {p: p.read_bytes() for p in sorted(saved.rglob("*")) if p.is_file()} == before
    assert [p.name for p in saved.iterdir() if p.name.startswith(".")] == []


def test_with_a_terminal_the_series_progress_is_a_tqdm_bar(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from tvbeta.config import load_config
    from tvbeta.interrupts import InterruptNote

    monkeypatch.setattr(sys, "stderr", Terminal())
    progress = cli._SeriesProgress(["NoDur", "Enrgy"], load_config(TINY), InterruptNote())
    for target in ("NoDur", "Enrgy"):
        for step in ("grid_seed", "mle", "bayes", None):
            progress(target, step)
    progress.close()
    shown = sys.stderr.getvalue()
    assert "series: 100%" in shown and "2/2" in shown and "[1/2]" not in shown


def test_intercept_only_model_is_refused_without_its_intercept(capsys, tmp_path):
    bad = tmp_path / "level.toml"
    bad.write_text(NILE.read_text().replace("intercept = true", "intercept = false"))
    code, _, err = run(capsys, "fit", bad, "--method", "mle", "--output", tmp_path / "out")
    assert code == 2 and "[model] factors: is empty and intercept = false" in err


# --- exit code 1 ---------------------------------------------------------------------------------
def test_unexpected_error_exits_1_with_a_one_line_message(capsys, tmp_path, monkeypatch):
    def crash(data, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(compare_module, "compare_methods", crash)
    code, _, err = run(capsys, "compare", TINY, "--output", tmp_path)
    assert code == 1 and err.splitlines()[-2] == "tvbeta: unexpected error: RuntimeError: boom"


def test_report_without_the_report_module_exits_1_and_says_so(capsys, tmp_path, monkeypatch):
    with run_folder(tmp_path) as stage:  # a complete run folder
        (stage / "comparison.json").write_text("{}")
    monkeypatch.setattr(compare_module.Comparison, "load", classmethod(lambda cls, f: "saved"))
    monkeypatch.setitem(sys.modules, "tvbeta.report", None)  # import now fails
    code, _, err = run(capsys, "report", tmp_path)
    assert code == 1 and "the HTML report is not available in this version of tvbeta" in err


# --- what the commands pass on and print -------------------------------------------------------
def test_run_passes_the_model_file_and_overrides_to_compare_methods(capsys, tmp_path,
                                                                    stub_compare):  # fmt: skip
    code, out, _ = run(capsys, "compare", TINY, "--seed", "9", "--draws", "30", "--output",
                       tmp_path)  # fmt: skip
    (call,) = stub_compare
    assert code == 0 and call["targets"] == ("NoDur", "Enrgy") and call["seed"] == 9
    assert call["bayes"].nuts.draws == 30 and call["bayes"].nuts.tune == 200
    assert list(call["data"].columns) == ["NoDur", "Enrgy", "MktRF", "SMB", "HML"]
    assert "## Summary across series" in out and (tmp_path / "model.toml").is_file()
    assert "report:" not in out  # compare writes no report


def test_demo_runs_the_packaged_model_with_the_small_settings(capsys, tmp_path, stub_compare):
    code, out, _ = run(capsys, "demo", "--output", tmp_path)
    (call,) = stub_compare
    assert code == 0 and len(call["targets"]) == 7
    assert f"report: {tmp_path / 'report.html'}" in out
    bayes = call["bayes"].nuts  # cli.DEMO_SAMPLER over the file's target_accept (0.8)
    assert (bayes.draws, bayes.tune, bayes.chains, bayes.target_accept) == (1000, 200, 4, 0.8)


def test_demo_full_keeps_the_model_files_sampler_settings(capsys, tmp_path, stub_compare):
    run(capsys, "demo", "--full", "--output", tmp_path)
    assert (stub_compare[0]["bayes"].nuts.draws, stub_compare[0]["bayes"].nuts.chains) == (1000, 4)


def test_run_without_the_report_module_still_succeeds_with_a_note(
    capsys, tmp_path, stub_compare, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tvbeta.report", None)
    code, _, err = run(capsys, "run", TINY, "--output", tmp_path)
    assert code == 0 and "tvbeta: note: the HTML report is not available" in err


def test_repeated_warnings_are_printed_once_with_their_count(capsys, tmp_path, monkeypatch):
    def warn(data, **kwargs):
        for _ in range(3):
            warnings.warn("fit failed convergence checks:\n- ESS < 400", UserWarning, 2)
        return StubComparison(kwargs)

    monkeypatch.setattr(compare_module, "compare_methods", warn)
    _, _, err = run(capsys, "compare", TINY, "--output", tmp_path)
    assert "tvbeta: warning (3 times; the first:): fit failed convergence checks:\n  - ESS" in err


def test_fit_mle_saves_each_target_and_prints_plain_progress_lines(capsys, tmp_path):
    code, out, err = run(capsys, "fit", TINY, "--method", "mle", "--output", tmp_path)
    folder = tmp_path / "fit_mle"
    assert code == 0 and "fit mle 1/2: NoDur" in err and "fit mle 2/2: Enrgy" in err
    assert {p.name for p in folder.iterdir()} == {"manifest.json"} | {
        f"{t}.{x}" for t in ("NoDur", "Enrgy") for x in ("spec.toml", "summary.csv", "betas.nc")
    }
    assert "Q[MktRF]" in out
    assert "MLE sits on a bound" not in err  # a static beta (Q = 0) is a finding, not a warning


def test_funds_mle_writes_the_rankings_and_page_and_a_rerun_fits_no_fund_again(capsys, tmp_path):
    """The tables are `style_drift` and the forecast scores of `fit_funds` on the model file's
    targets (the reference: fit_funds called directly); the store keeps the fits, so the same
    command again writes the same files without a new part."""
    from tvbeta.data import load_french
    from tvbeta.funds import fit_funds, style_drift

    code, out, err = run(capsys, "funds", TINY, "--method", "mle", "--output", tmp_path)
    folder = tmp_path / "funds_mle"
    assert code == 0, err
    assert {p.name for p in folder.iterdir()} == {
        "manifest.json", "funds.nc", "style_drift.csv", "forecast.csv", "funds.html",
        "model.toml", "funds.zarr"}  # fmt: skip
    data = load_french().loc["2007-04-01":"2017-03-31"]
    direct = fit_funds(data, ["NoDur", "Enrgy"], ["MktRF", "SMB", "HML"])
    drift = pd.read_csv(folder / "style_drift.csv", index_col="fund")
    pd.testing.assert_frame_equal(drift, style_drift(direct), check_names=False)
    forecast = pd.read_csv(folder / "forecast.csv", index_col="fund")
    np.testing.assert_array_equal(forecast.loc[["NoDur", "Enrgy"], "one-step R²"],
                                  direct["forecast_r2"].to_numpy())  # fmt: skip
    assert "One-step forecast on the fitted span" in out and "4. Forecast quality" in (
        folder / "funds.html").read_text()
    parts = sorted((folder / "funds.zarr").glob("part-*"))
    before = (folder / "forecast.csv").read_bytes()
    code, _, err = run(capsys, "funds", TINY, "--method", "mle", "--output", tmp_path)
    assert code == 0, err
    assert "2 of 2 funds already in the store: fitting the other 0" in err
    assert sorted((folder / "funds.zarr").glob("part-*")) == parts
    assert (folder / "forecast.csv").read_bytes() == before


def test_funds_mle_with_a_shrinkage_prior_says_to_use_bayes(capsys, tmp_path):
    model = tmp_path / "horseshoe.toml"
    model.write_text(TINY.read_text().replace("intercept = true",
                                              'intercept = true\nshrinkage = "horseshoe"'))
    code, _, err = run(capsys, "funds", model, "--method", "mle", "--output", tmp_path)
    assert code == 2
    assert "shrinkage 'horseshoe' is a prior of the Bayes model" in err
    assert "use --method bayes" in err
    assert not (tmp_path / "funds_mle" / "funds.zarr").exists()


def test_fit_mle_table_says_it_shows_maximum_likelihood_estimates(capsys, tmp_path):
    code, out, err = run(capsys, "fit", NILE, "--method", "mle", "--output", tmp_path)
    assert code == 0, err
    caption, header = out.splitlines()[:2]
    assert caption.startswith("Maximum-likelihood estimates (Q per period, R")
    assert "standard errors: <target>.summary.csv" in caption and "Q[Intercept]" in header


@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_fit_bayes_table_says_it_shows_posterior_medians_and_where_the_intervals_are(
        capsys, tmp_path):  # fmt: skip
    """The columns are `BayesFit.qr_summary`'s "posterior median"; its default interval is the
    central 90% (5% and 95% columns)."""
    code, out, err = run(capsys, "fit", NILE, "--method", "bayes", "--draws", "30", "--tune",
                         "30", "--chains", "1", "--output", tmp_path)  # fmt: skip
    assert code == 0, err
    caption = out.splitlines()[0]
    assert caption.startswith("Posterior medians (Q per period, R") and "no interval" in caption
    assert "90% intervals: BayesFit.load('<target>.nc').summary()" in caption


def test_fit_mle_of_the_intercept_only_model_estimates_the_level(capsys, tmp_path):
    """models/nile.toml: factors = [], intercept = true (the local level); whole sample, burn 1,
    the seed's start: q 1463.6, r 15108 (D&K 2012, section 2.10: 1469.1, 15099)."""
    code, out, err = run(capsys, "fit", NILE, "--method", "mle", "--output", tmp_path)
    assert code == 0, err
    assert "1 series on intercept; 100 rows" in err and "Q[Intercept]" in out
    summary = pd.read_csv(tmp_path / "fit_mle" / "volume.summary.csv", index_col=0)
    np.testing.assert_allclose(summary["estimate"], [1469.1, 15099.0], rtol=5e-3)


def test_fit_grid_saves_the_table_and_the_best_spec(capsys, tmp_path):
    code, out, _ = run(capsys, "fit", TINY, "--method", "grid", "--target", "NoDur", "--output",
                       tmp_path)  # fmt: skip
    assert code == 0 and (tmp_path / "fit_grid" / "NoDur.best.toml").is_file()
    assert "Intercept=" in out


# --- source = "files": the fund's CSV and the factors' CSV ------------------------------------
def files_model(tmp_path: Path, extra: str = "") -> tuple[Path, pd.DataFrame]:
    """A model file of two funds read from two CSVs (tests.test_config) and the frame the model
    should see, built by hand: the funds' missing months NaN on the factor dates."""
    from tests.test_config import FILES, fund_and_factor_files

    expected = fund_and_factor_files(tmp_path)
    model = tmp_path / "mine.toml"
    model.write_text(FILES + "[split]\ntest_size = 0.3\n" + extra)
    return model, expected


def test_the_data_line_names_gaps_inside_each_series_not_before_a_late_start(capsys, tmp_path):
    """Enrgy launched in 2009 (its cells of 2008 empty): its months before its first return are
    not gaps (the model starts there) and the line does not name them; its and NoDur's gaps
    inside their spans are named, each series after a semicolon."""
    model, _ = files_model(tmp_path)
    fund = tmp_path / "in" / "fund.csv"
    frame = pd.read_csv(fund, index_col=0)
    frame.loc[frame.index < "2009-01-01", "Enrgy"] = np.nan
    frame.to_csv(fund)
    code, _, err = run(capsys, "fit", model, "--method", "mle", "--output", tmp_path / "out")
    assert code == 0, err
    assert ("returns missing (predicted through): NoDur on 2010-06-30; Enrgy on 2010-06-30, "
            "2011-03-31\n") in err


def test_fit_mle_of_a_files_model_fits_the_funds_missing_months_as_missing(capsys, tmp_path):
    """The estimates are `fit_mle`'s on the frame built by hand (a month dropped instead of
    kept as NaN would change the log-likelihood); the alignment's DataWarnings are printed."""
    import xarray as xr

    from tests.test_config import GAP
    from tvbeta.estimate.mle import MLEConvergenceWarning, fit_mle

    model, expected = files_model(tmp_path)
    code, _, err = run(capsys, "fit", model, "--method", "mle", "--output", tmp_path / "out")
    assert code == 0, err
    assert ("mine: 2 series on intercept, MktRF, SMB; 60 rows 2008-01-31 .. 2012-12-31; returns "
            "missing (predicted through): NoDur on 2010-06-30; Enrgy on 2010-06-30, "
            "2011-03-31") in err  # GAP for both, EMPTY for Enrgy (tests.test_config)
    gap = "1 factor date(s) inside the fund's dates with no fund row (2010-06-30) are kept"
    assert f"tvbeta: warning: {tmp_path / 'in' / 'fund.csv'} + " in err and gap in err
    # said below the data line, before the fits (a fresh user met them after the results)
    assert err.index(gap) < err.index("mle on the whole sample")
    for target in ("NoDur", "Enrgy"):
        with warnings.catch_warnings():  # a Q on its bound here: the same in both fits
            warnings.simplefilter("ignore", MLEConvergenceWarning)
            direct = fit_mle(expected, target, ["MktRF", "SMB"])
        summary = pd.read_csv(tmp_path / "out" / "fit_mle" / f"{target}.summary.csv",
                              index_col=0)  # fmt: skip
        np.testing.assert_allclose(summary["estimate"], direct.summary()["estimate"], rtol=1e-6)
    with xr.open_dataset(tmp_path / "out" / "fit_mle" / "Enrgy.betas.nc") as betas:
        assert np.isnan(betas["y"].sel(time=GAP)) and betas["beta"].sel(time=GAP).notnull().all()


def test_compare_of_a_files_model_scores_as_compare_methods_on_the_hand_built_frame(
        capsys, tmp_path):  # fmt: skip
    from tvbeta.config import load_config

    methods = '[compare]\nmethods = ["mle", "rolling_ols"]\nrolling_window = 12\nlfo = false\n'
    model, expected = files_model(tmp_path, methods)
    code, out, err = run(capsys, "compare", model, "--output", tmp_path / "out")
    assert code == 0, err
    assert "## NoDur" in out and "## Enrgy" in out
    saved = compare_module.Comparison.load(tmp_path / "out")
    direct = compare_module.compare_methods(expected, **load_config(model).compare_kwargs())
    for target, table in direct.tables.items():
        pd.testing.assert_frame_equal(saved.tables[target].drop(columns="fit time (s)"),
                                      table.drop(columns="fit time (s)"))  # fmt: skip


def test_a_fund_of_price_levels_is_warned_about_once_by_the_loading_not_again_by_its_fit(
        capsys, tmp_path):  # fmt: skip
    """The loader checks the units of the table the fits get; the fits' own check (for the
    API's users) said the same again after the results (a fresh user's report). NoDur's
    column as an index level, 100 prod(1 + r)."""
    model, _ = files_model(tmp_path)
    fund = tmp_path / "in" / "fund.csv"
    frame = pd.read_csv(fund, index_col=0)
    frame["NoDur"] = 100 * (1 + frame["NoDur"].fillna(0)).cumprod()
    frame.to_csv(fund)
    code, _, err = run(capsys, "fit", model, "--method", "mle", "--output", tmp_path / "out")
    assert code == 0, err
    assert err.count("do not look like decimal returns") == 1, err
    assert err.index("do not look like decimal returns") < err.index("mle on the whole sample")


def test_funds_mle_of_a_files_model_ranks_both_funds(capsys, tmp_path):
    model, _ = files_model(tmp_path)
    code, _, err = run(capsys, "funds", model, "--method", "mle", "--output", tmp_path / "out")
    assert code == 0, err
    forecast = pd.read_csv(tmp_path / "out" / "funds_mle" / "forecast.csv", index_col="fund")
    assert set(forecast.index) == {"NoDur", "Enrgy"}


def test_files_model_with_a_bad_cell_exits_2_naming_the_model_file_key_and_csv(capsys, tmp_path):
    model, _ = files_model(tmp_path)
    factors = tmp_path / "in" / "factors.csv"
    factors.write_text(factors.read_text().replace("2009-05-31,", "2009-05-31,1.2%x", 1))
    code, _, err = run(capsys, "fit", model, "--method", "mle", "--output", tmp_path / "out")
    assert code == 2
    expected = f"{model}: [data] factor_csv: {factors}: column 'MktRF' is not numeric: '1.2%x"
    assert f"tvbeta: error: {expected}" in err


# --- end to end (slow) ---------------------------------------------------------------------------
@pytest.mark.slow
def test_integration_run_tiny_model_end_to_end(capsys, tmp_path):
    """The real comparison, all five methods, on two series with short chains (about 1 min)."""
    code, out, err = run(capsys, "run", TINY, "--output", tmp_path)
    assert code == 0, err
    assert "## Summary across series" in out and "## NoDur" in out and "## Enrgy" in out
    assert (tmp_path / "comparison.json").is_file() and (tmp_path / "model.toml").is_file()
    assert any(p.suffix == ".nc" for p in (tmp_path / "fits").iterdir())  # the Bayes fits
    loaded = compare_module.Comparison.load(tmp_path)
    assert set(loaded.tables) == {"NoDur", "Enrgy"}
    assert set(loaded.tables["NoDur"].index) == set(compare_module.DEFAULT_METHODS)
    assert f"report: {tmp_path / 'report.html'}" in out
    rebuilt = tmp_path / "again" / "r.html"  # `tvbeta report` from the saved files alone
    code, out, err = run(capsys, "report", tmp_path, "--output", rebuilt)
    assert code == 0 and out == f"report: {rebuilt}\n" and rebuilt.stat().st_size > 1e5, err


@pytest.mark.slow
def test_integration_fit_bayes_saves_a_netcdf_per_target(capsys, tmp_path):
    """One short NUTS fit on the whole sample (about 10 s)."""
    code, out, err = run(capsys, "fit", TINY, "--method", "bayes", "--target", "Enrgy",
                         "--draws", "60", "--tune", "60", "--output", tmp_path)  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "fit_bayes" / "Enrgy.nc").is_file() and "Q[MktRF]" in out


@pytest.mark.slow
def test_integration_run_nile_local_level_end_to_end(capsys, tmp_path):
    """models/nile.toml (no factor, intercept only) with short chains: the comparison, saved
    files and the report with the level's path (about 15 s)."""
    code, out, err = run(capsys, "run", NILE, "--draws", "200", "--tune", "200", "--chains", "2",
                         "--cores", "2", "--output", tmp_path)  # fmt: skip
    assert code == 0, err
    assert "## volume" in out and (tmp_path / "fits" / "volume.bayes.nc").is_file()
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="betas-volume"' in report and "none: a local level model" in report


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # the convergence warnings this is about
def test_compare_says_above_its_tables_which_bayes_fits_failed_a_convergence_check(capsys,
                                                                                   tmp_path):
    """2 chains x (30 + 30) cannot reach 400 effective draws: a note names the fit above the
    tables (the warnings, printed at the end, came after the numbers a user reads first)."""
    code, out, err = run(capsys, "compare", NILE, "--draws", "30", "--tune", "30", "--chains",
                         "2", "--cores", "2", "--output", tmp_path)  # fmt: skip
    assert code == 0, err
    note = "note: 1 of 1 Bayesian fits failed a convergence check (volume: bayes)"
    assert note in out and out.index(note) < out.index("## volume")
    # the report's headline, for `compare`, which writes no report
    from tvbeta.report.verdict import verdict

    headline = verdict(compare_module.Comparison.load(tmp_path)).headline
    assert f"verdict: {headline}" in out and out.index("## volume") < out.index("verdict: ")


# --- fit --shrinkage ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny chains: convergence warnings expected
def test_fit_bayes_with_shrinkage_horseshoe_saves_a_horseshoe_fit_at_target_accept_0_9(
        capsys, tmp_path):  # fmt: skip
    """The saved fit carries the horseshoe (its shrink_* variables) and ran at 0.9, the floor of
    the horseshoe (tiny.toml leaves target_accept at 0.8)."""
    from tvbeta.estimate.bayes.fit import BayesFit

    code, out, err = run(capsys, "fit", TINY, "--method", "bayes", "--shrinkage", "horseshoe",
                         "--target", "NoDur", "--draws", "50", "--tune", "50", "--output",
                         tmp_path)  # fmt: skip
    assert code == 0, err
    fit = BayesFit.load(tmp_path / "fit_bayes_horseshoe" / "NoDur.nc")
    assert fit.spec.shrinkage == "horseshoe" and "shrink_tau" in fit.tree["posterior"]
    assert fit.settings["target_accept"] == 0.9
    # the table gives the horseshoe's answer, which betas are static, as the saved fit has it
    p = fit.static_probability()
    assert all(f"P(static)[{state}]" in out for state in p.index)


def test_fit_mle_with_shrinkage_says_the_horseshoe_is_a_bayes_prior(capsys, tmp_path):
    code, _, err = run(capsys, "fit", TINY, "--method", "mle", "--shrinkage", "horseshoe",
                       "--output", tmp_path)  # fmt: skip
    assert code == 2
    assert "shrinkage 'horseshoe' is a prior of the Bayes model; --method mle has no prior" in err
    assert "use --method bayes, or --shrinkage none" in err


def test_fit_mle_of_mean_reverting_betas_saves_phi_like_the_plain_mle(capsys, tmp_path):
    """--method mle --betas mean_reverting writes the plain MLE's files: the spec (with phi,
    loadable), the summary with phi[state] rows, the betas (k states named as the model's)."""
    import xarray as xr

    from tvbeta.model import KalmanSpec

    code, out, err = run(capsys, "fit", TINY, "--method", "mle", "--betas", "mean_reverting",
                         "--target", "NoDur", "--output", tmp_path)  # fmt: skip
    assert code == 0, err
    base = tmp_path / "fit_mle_mean_reverting" / "NoDur"  # not the plain MLE's folder
    spec = KalmanSpec.load(base.with_suffix(".spec.toml"))
    assert spec.phi.shape == (4,) and np.all((spec.phi >= 0.5) & (spec.phi <= 1))
    summary = pd.read_csv(base.with_suffix(".summary.csv"), index_col=0)
    assert "phi[MktRF]" in summary.index and "phi[MktRF]" in out
    assert "half-life[MktRF] (years)" in out  # the fit's half_life, as the summary's phi
    with xr.open_dataset(base.with_suffix(".betas.nc"), engine="h5netcdf") as betas:
        assert list(betas["state"].values) == ["Intercept", "MktRF", "SMB", "HML"]
    manifest = (base.parent / "manifest.json").read_text()
    assert '"command": "fit --method mle --betas mean_reverting"' in manifest
    code, _, err = run(capsys, "fit", TINY, "--method", "mle", "--target", "NoDur", "--output",
                       tmp_path)  # the plain MLE's run leaves the mean-reverting fit alone
    assert code == 0, err
    assert base.with_suffix(".spec.toml").is_file() and (tmp_path / "fit_mle").is_dir()


def test_fit_grid_with_mean_reverting_betas_says_to_use_mle_or_bayes(capsys, tmp_path):
    code, _, err = run(capsys, "fit", TINY, "--method", "grid", "--betas", "mean_reverting",
                       "--output", tmp_path)  # fmt: skip
    assert code == 2
    assert "betas 'mean_reverting' is fitted by --method mle or bayes" in err


def test_fit_mle_with_volatility_noise_from_the_command_line_fits_gamma(capsys, tmp_path):
    """--noise volatility is the model file's [model] noise: the summary has gamma, the
    folder and the manifest say so; the grid refuses it (its R setters are its own)."""
    code, out, err = run(capsys, "fit", TINY, "--method", "mle", "--noise", "volatility",
                         "--target", "NoDur", "--output", tmp_path)  # fmt: skip
    assert code == 0, err
    folder = tmp_path / "fit_mle_volatility"
    summary = pd.read_csv(folder / "NoDur.summary.csv", index_col=0)
    assert "gamma" in summary.index and "gamma" in out
    assert '"command": "fit --method mle --noise volatility"' in (
        folder / "manifest.json").read_text()
    code, _, err = run(capsys, "fit", TINY, "--method", "grid", "--noise", "volatility",
                       "--output", tmp_path)  # fmt: skip
    assert code == 2 and "noise 'volatility' is fitted by --method mle or bayes" in err


def test_fit_shrinkage_with_a_full_q_names_the_option(capsys, tmp_path):
    model = tmp_path / "full.toml"
    model.write_text(TINY.read_text().replace('intercept = true', 'intercept = true\nq = "full"'))
    code, _, err = run(capsys, "fit", model, "--method", "bayes", "--shrinkage", "horseshoe",
                       "--output", tmp_path)  # fmt: skip
    assert code == 2
    assert 'tvbeta: error: --shrinkage horseshoe: shrinkage="horseshoe" is a prior on the sds ' \
           'of a diagonal Q: use q="diag"' in err  # fmt: skip


def test_unknown_shrinkage_option_lists_the_choices(capsys):
    code, _, err = run(capsys, "fit", TINY, "--method", "bayes", "--shrinkage", "lasso")
    assert code == 2 and "argument --shrinkage: invalid choice: 'lasso'" in err
    assert "'none', 'horseshoe'" in err


# --- where the series run: --workers, --scheduler ----------------------------------------------
def test_workers_below_one_is_a_usage_error(capsys):
    code, _, err = run(capsys, "compare", TINY, "--workers", "0")
    assert code == 2 and "argument --workers: expected an integer >= 1, got '0'" in err


def test_workers_and_scheduler_together_are_a_usage_error(capsys):
    code, _, err = run(capsys, "compare", TINY, "--workers", "2", "--scheduler",
                       "tcp://127.0.0.1:8786")  # fmt: skip
    assert code == 2 and "argument --scheduler: not allowed with argument --workers" in err


def test_workers_without_dask_installed_names_the_extra(capsys, tmp_path, monkeypatch,
                                                        stub_compare):  # fmt: skip
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    code, _, err = run(capsys, "compare", TINY, "--workers", "2", "--output", tmp_path)
    assert code == 1 and not stub_compare
    assert "tvbeta: error: --workers runs the series on Dask, which is not installed: pip " \
           "install 'tvbeta[dask]'" in err  # fmt: skip


def test_unreachable_scheduler_is_named_with_its_address(capsys, tmp_path, monkeypatch,
                                                         stub_compare):  # fmt: skip
    """Port 1 of this machine: nothing listens there, so the short timeout runs out."""
    monkeypatch.setattr(cli, "SCHEDULER_TIMEOUT_S", 1)
    code, _, err = run(capsys, "compare", TINY, "--scheduler", "tcp://127.0.0.1:1", "--output",
                       tmp_path)  # fmt: skip
    assert code == 2 and not stub_compare
    assert "tvbeta: error: --scheduler tcp://127.0.0.1:1: cannot connect to a Dask scheduler " \
           "there within 1 s" in err  # fmt: skip


@pytest.mark.slow
def test_integration_compare_on_two_workers_prints_and_saves_the_serial_summary(capsys,
                                                                                tmp_path):
    """`--workers 2` (a local Dask cluster of two processes) against the same command without
    it: the same summary printed, the same tables saved (fit times, wall clock, aside)."""
    pytest.importorskip("distributed")
    quick = tmp_path / "quick.toml"  # the grid, the MLE and rolling OLS: seconds a series
    quick.write_text(TINY.read_text().replace(
        "[compare]", '[compare]\nmethods = ["grid_seed", "mle", "rolling_ols"]'))
    outputs, saved = {}, {}
    for name, extra in (("serial", []), ("workers", ["--workers", "2"])):
        code, out, err = run(capsys, "compare", quick, "--output", tmp_path / name, *extra)
        assert code == 0, err
        outputs[name] = out.split("\n## ")[0]  # the summary across series
        saved[name] = compare_module.Comparison.load(tmp_path / name)
    assert "starting a local Dask cluster of 2 worker processes" in err
    assert outputs["serial"].startswith("## Summary across series")
    assert outputs["workers"] == outputs["serial"]
    for target, table in saved["serial"].tables.items():
        pd.testing.assert_frame_equal(saved["workers"].tables[target].drop(columns="fit time (s)"),
                                      table.drop(columns="fit time (s)"), check_exact=True)


def test_scheduler_runs_the_series_on_that_running_cluster(capsys, tmp_path):
    """A running (in-process) cluster reached by its address; the tables are the serial ones."""
    distributed = pytest.importorskip("distributed")
    quick = tmp_path / "quick.toml"
    quick.write_text(TINY.read_text().replace("[compare]", '[compare]\nmethods = ["rolling_ols"]'))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        code, out, err = run(capsys, "compare", quick, "--scheduler", address, "--output",
                             tmp_path / "dask")  # fmt: skip
    assert code == 0 and f"series on the Dask scheduler at {address}" in err
    code, serial, err = run(capsys, "compare", quick, "--output", tmp_path / "serial")
    assert code == 0, err
    assert out.split("\n## ")[0] == serial.split("\n## ")[0]  # the summary across series
