"""Model files: the shipped ones validate; every error names file, section, key and the fix."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w

from tvbeta.config import ConfigError, RunConfig, load_config
from tvbeta.data import (
    FRENCH_FACTORS,
    SHARED_DATA_ENV,
    DataWarning,
    load_french,
    load_fund_and_factors,
    shared_data_dir,
)
from tvbeta.nuts import SamplerSettings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "models").glob("*.toml"))
PACKAGED = ROOT / "src" / "tvbeta" / "models" / "french_industries.toml"
TINY = ROOT / "tests" / "fixtures" / "tiny.toml"

BASE = """
[data]
source = "french"
start = 2007-04-01
end = 2017-03-31

[model]
targets = ["NoDur", "Enrgy"]
factors = ["MktRF", "SMB"]
"""


def model_file(tmp_path: Path, text: str, name: str = "model.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, *, data: bool = False) -> str:
    """The ConfigError message of loading (and, with data=True, of loading the data)."""
    with pytest.raises(ConfigError) as info:
        config = load_config(path)
        if data:
            config.load_data()
    return str(info.value)


# --- shipped files -----------------------------------------------------------------------------
def test_shipped_model_files_are_the_expected_ones():
    names = {p.name for p in SHIPPED}
    assert {"french_industries.toml", "french_menu.toml", "nile.toml", "preferreds.toml"} <= names


@pytest.mark.parametrize("path", [*SHIPPED, TINY], ids=lambda p: p.name)
def test_shipped_model_file_loads_and_validates(path):
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert config.model.targets and config.path == path


def test_packaged_demo_model_is_a_copy_of_models_french_industries():
    assert PACKAGED.read_text() == (ROOT / "models" / "french_industries.toml").read_text()


def test_french_industries_data_are_seven_industries_on_four_factors_over_25_years():
    config = load_config(ROOT / "models" / "french_industries.toml")
    data = config.load_data()
    assert len(config.model.targets) >= 6 and config.model.factors == FRENCH_FACTORS
    assert list(data.columns) == [*config.model.targets, *config.model.factors]
    assert len(data) == 300 and data.index[0] == pd.Timestamp("1992-04-30")


def test_nile_data_are_the_annual_flow_as_one_column():
    data = load_config(ROOT / "models" / "nile.toml").load_data()
    assert list(data.columns) == ["volume"] and len(data) == 100
    assert data.index[0] == pd.Timestamp("1871-12-31") and data["volume"].iloc[0] == 1120.0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")  # PyMC's fork()
@pytest.mark.filterwarnings("ignore::tvbeta.estimate.bayes.BayesConvergenceWarning")  # 2 x 200
def test_nile_comparison_runs_every_method_on_the_local_level():
    """models/nile.toml's comparison (no factor, intercept only) with short chains (2 x 200):
    every default method (the file names none)
    scores the 30 test years; the MLE and Bayes (the same local level model,
    a likelihood-dominated posterior) score within 0.05 nats/step of each other. About 10 s."""
    from tvbeta.evaluate.compare import DEFAULT_METHODS, compare_methods

    config = load_config(ROOT / "models" / "nile.toml").override(draws=200, tune=200, chains=2,
                                                                 cores=2)  # fmt: skip
    comparison = compare_methods(config.load_data(), **config.compare_kwargs(), progress=False)
    table, fits = comparison.tables["volume"], comparison.series["volume"].fits
    assert list(table.index) == list(DEFAULT_METHODS) and (table["n test"] == 30).all()
    assert np.isfinite(table[["log score", "RMSE"]].to_numpy()).all()
    assert fits["bayes"].spec.state_names == ("Intercept",)
    assert all(fits[m].K == 1 and fits[m].intercept for m in ("grid_seed", "grid_loglik", "mle"))
    assert abs(table.at["bayes", "log score"] - table.at["mle", "log score"]) < 0.05


def test_preferreds_data_are_the_seeds_weekly_etfs():
    if shared_data_dir() is None:
        pytest.skip("../shared/data is absent")
    data = load_config(ROOT / "models" / "preferreds.toml").load_data()
    assert data.shape == (365, 5) and data.index[-1] == pd.Timestamp("2022-12-30")


# --- settings ----------------------------------------------------------------------------------
def test_defaults_fill_the_optional_sections(tmp_path):
    config = load_config(model_file(tmp_path, BASE))
    assert config.sampler.draws == 1000 and config.split.test_size == 0.3
    assert config.model.intercept and config.output.folder == Path("output/model")


def test_settings_become_the_comparison_layers_bayes_and_grid_settings(tmp_path):
    text = BASE + '[sampler]\ndraws = 50\nsampler = "pymc"\n[priors]\neps_scale = 2.0\n'
    config = load_config(model_file(tmp_path, text + "[grid]\ntry_both_intercepts = false\n"))
    bayes, grid = config.bayes_settings(), config.grid_settings()
    assert bayes.nuts == SamplerSettings(draws=50, sampler="pymc")  # the rest the defaults
    assert bayes.priors == {"eps_scale": 2.0}
    assert grid.try_both_intercepts is False


def test_override_replaces_only_the_given_settings(tmp_path):
    config = load_config(model_file(tmp_path, BASE)).override(seed=7, draws=10, output="out")
    assert (config.sampler.seed, config.sampler.draws, config.sampler.tune) == (7, 10, 1000)
    assert config.output.folder == Path("out")


def test_to_dict_written_as_toml_loads_back_to_the_same_settings(tmp_path):
    config = load_config(ROOT / "models" / "french_industries.toml")
    again = load_config(model_file(tmp_path, tomli_w.dumps(config.to_dict())))
    assert dataclasses.replace(again, path=config.path) == config


def test_csv_path_is_relative_to_the_model_file_and_daily_rows_aggregate_weekly(tmp_path):
    days = pd.bdate_range("2020-01-06", periods=20, name="Date")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(0, 0.01, (20, 3)), index=days, columns=["y", "f", "dy"])
    (tmp_path / "sub").mkdir()
    frame.to_csv(tmp_path / "sub" / "r.csv")
    text = ('[data]\nsource = "csv"\npath = "r.csv"\naggregate = "weekly"\n'
            'additive_cols = ["dy"]\n[model]\ntargets = ["y"]\nfactors = ["f"]\n')  # fmt: skip
    data = load_config(model_file(tmp_path / "sub", text)).load_data()
    assert len(data) == 4 and data.index.day_of_week.unique().tolist() == [4]  # Fridays
    assert data["y"].iloc[0] == pytest.approx(np.prod(1 + frame["y"].iloc[:5]) - 1)


# --- errors in the file --------------------------------------------------------------------------
def test_missing_model_file_names_the_resolved_path(tmp_path):
    message = error_of(tmp_path / "nope.toml")
    assert f"model file not found: {tmp_path / 'nope.toml'}" in message


def test_invalid_toml_names_the_file_and_the_line(tmp_path):
    path = model_file(tmp_path, BASE + "draws = = 3\n")
    assert re.search(
        rf"{re.escape(str(path))}: not valid TOML: Invalid value \(at line 10", error_of(path)
    )


def test_unknown_key_suggests_the_closest_valid_key(tmp_path):
    path = model_file(tmp_path, BASE + "[sampler]\ndraw = 100\n")
    message = error_of(path)
    assert message.startswith(f"{path}: [sampler]: unknown key 'draw'; did you mean 'draws'?")
    assert "valid keys: chains, cores, draws" in message


def test_unknown_section_suggests_the_closest_section(tmp_path):
    message = error_of(model_file(tmp_path, BASE + "[sampelr]\ndraws = 100\n"))
    assert "unknown section [sampelr]; did you mean 'sampler'?" in message


def test_wrong_type_says_expected_and_got(tmp_path):
    message = error_of(model_file(tmp_path, BASE + '[sampler]\ndraws = "1000"\n'))
    assert "[sampler] draws: expected an integer without quotes, got a string ('1000')" in message


def test_boolean_is_not_accepted_as_an_integer(tmp_path):
    message = error_of(model_file(tmp_path, BASE + "[sampler]\nchains = true\n"))
    assert "[sampler] chains: expected an integer without quotes, got a boolean (True)" in message


def test_missing_required_key_says_what_to_add(tmp_path):
    path = model_file(tmp_path, '[data]\nsource = "french"\n[model]\nfactors = ["MktRF"]\n')
    assert "[model]: missing required key 'targets': add it, e.g. targets = [" in error_of(path)


def test_missing_required_section(tmp_path):
    path = model_file(tmp_path, '[data]\nsource = "french"\n')
    assert error_of(path) == f"{path}: missing required section [model]: add it"


def test_value_outside_the_choices_suggests_the_closest(tmp_path):
    message = error_of(model_file(tmp_path, BASE.replace('"french"', '"frech"')))
    assert "[data] source: 'frech' is not allowed; did you mean 'french'? use one of" in message


def test_number_out_of_range_gives_the_bounds(tmp_path):
    message = error_of(model_file(tmp_path, BASE + "[sampler]\ntarget_accept = 0.3\n"))
    assert "[sampler] target_accept: must be between 0.5 and 0.999, got 0.3" in message


def test_test_size_fraction_must_be_below_one(tmp_path):
    message = error_of(model_file(tmp_path, BASE + "[split]\ntest_size = 1.5\n"))
    assert "[split] test_size: a fraction must be strictly between 0 and 1, got 1.5" in message


def test_key_of_another_source_is_an_error(tmp_path):
    message = error_of(model_file(tmp_path, BASE.replace("[model]", 'path = "r.csv"\n[model]')))
    assert "[data] path: only used with source = 'csv'; remove it" in message


def test_fixed_frequency_of_a_source_cannot_be_changed(tmp_path):
    text = BASE.replace("[model]", 'frequency = "weekly"\n[model]')
    assert "[data] frequency: source 'french' is monthly" in error_of(model_file(tmp_path, text))


def test_start_after_end_is_an_error(tmp_path):
    text = BASE.replace("start = 2007-04-01", "start = 2018-01-01")
    assert "[data] start: start 2018-01-01 is after end 2017-03-31" in error_of(
        model_file(tmp_path, text)
    )


def test_unknown_method_suggests_the_closest(tmp_path):
    message = error_of(model_file(tmp_path, BASE + '[compare]\nmethods = ["bayse"]\n'))
    assert "[compare] methods: unknown method 'bayse'; did you mean 'bayes'?" in message


def test_target_that_is_also_a_factor_is_an_error(tmp_path):
    message = error_of(model_file(tmp_path, BASE.replace('"Enrgy"', '"SMB"')))
    assert "[model] targets: ['SMB'] are also factors" in message


def test_no_factors_needs_an_intercept(tmp_path):
    text = BASE.replace('["MktRF", "SMB"]', "[]") + "intercept = false\n"
    message = error_of(model_file(tmp_path, text))
    assert "[model] factors: is empty and intercept = false: the model has no state" in message


def test_unknown_prior_setting_suggests_the_closest(tmp_path):
    message = error_of(model_file(tmp_path, BASE + "[priors]\nbeta_drift_per_yer = 1.0\n"))
    assert "[priors]: unknown key 'beta_drift_per_yer'; did you mean 'beta_drift_per_year'?" in (
        message
    )


def test_prior_wrong_type_says_expected_and_got(tmp_path):
    message = error_of(model_file(tmp_path, BASE + '[priors]\neps_scale = "2"\n'))
    assert "[priors] eps_scale: expected a number without quotes, got a string ('2')" in message


def test_unknown_prior_distribution_lists_the_valid_ones(tmp_path):
    text = BASE + '[priors]\nsigma_eps = { dist = "Normal", sigma = 0.01 }\n'
    message = error_of(model_file(tmp_path, text))
    assert "[priors]: prior 'Normal' is not a positive distribution" in message
    assert "HalfNormal" in message


def test_prior_parameter_must_be_numeric(tmp_path):
    text = BASE + '[priors]\nsigma_eps = { dist = "HalfNormal", sigma = "0.01" }\n'
    message = error_of(model_file(tmp_path, text))
    assert "[priors.sigma_eps] sigma: expected a number or a list of numbers, got a string" in (
        message
    )


# --- errors in the data ----------------------------------------------------------------------
def test_unknown_target_lists_the_available_columns(tmp_path):
    message = error_of(model_file(tmp_path, BASE.replace('"NoDur"', '"NoDurr"')), data=True)
    assert "[model] targets: 'NoDurr' is not a column of the data; did you mean 'NoDur'?" in (
        message
    )
    assert "available columns: MktRF, SMB, HML, Mom, RF, NoDur" in message


def test_unknown_factor_lists_the_available_columns(tmp_path):
    message = error_of(model_file(tmp_path, BASE.replace('"SMB"', '"SMBB"')), data=True)
    assert "[model] factors: 'SMBB' is not a column of the data; did you mean 'SMB'?" in message


def test_missing_csv_names_the_resolved_path(tmp_path):
    text = '[data]\nsource = "csv"\npath = "in/r.csv"\n[model]\ntargets = ["y"]\nfactors = ["f"]\n'
    message = error_of(model_file(tmp_path, text), data=True)
    assert f"[data] path: CSV file not found: {tmp_path / 'in' / 'r.csv'}" in message


def test_missing_additive_column_lists_the_csv_columns(tmp_path):
    pd.DataFrame({"y": [0.01], "f": [0.02]}, index=pd.DatetimeIndex(["2020-01-06"], name="Date")
                 ).to_csv(tmp_path / "r.csv")  # fmt: skip
    text = ('[data]\nsource = "csv"\npath = "r.csv"\naggregate = "weekly"\nadditive_cols = '
            '["dy"]\n[model]\ntargets = ["y"]\nfactors = ["f"]\n')  # fmt: skip
    message = error_of(model_file(tmp_path, text), data=True)
    assert "[data] additive_cols: ['dy'] not in r.csv (available: ['y', 'f'])" in message


def test_seed_data_absent_says_where_it_looked_and_how_to_point_at_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(SHARED_DATA_ENV, str(empty))
    text = '[data]\nsource = "seed"\n[model]\ntargets = ["High Yield (HYG)"]\nfactors = ["x"]\n'
    message = error_of(model_file(tmp_path, text), data=True)
    assert "[data] source: source = 'seed': seed data folder" in message
    assert str(empty) in message and f"the environment variable {SHARED_DATA_ENV}" in message


def test_seed_data_dir_is_resolved_against_the_model_file(tmp_path):
    text = ('[data]\nsource = "seed"\ndata_dir = "nowhere"\n[model]\ntargets = ["a"]\n'
            'factors = ["b"]\n')  # fmt: skip
    message = error_of(model_file(tmp_path, text), data=True)
    assert f"seed data folder {tmp_path / 'nowhere'} does not exist" in message


def test_empty_date_range_says_what_the_data_cover(tmp_path):
    text = BASE.replace("start = 2007-04-01", "start = 2030-01-01").replace(
        "end = 2017-03-31", "end = 2031-01-01"
    )
    message = error_of(model_file(tmp_path, text), data=True)
    assert "no rows between start = 2030-01-01 and end = 2031-01-01" in message
    assert "the data cover 1949-01-31 .. 2017-03-31" in message


def test_test_size_leaving_no_training_rows_is_an_error(tmp_path):
    message = error_of(model_file(tmp_path, BASE + "[split]\ntest_size = 120\n"), data=True)
    assert "[split] test_size: 120 holds out 120 of the 120 rows, leaving none to fit on" in (
        message
    )


def test_lfo_settings_reach_the_bayes_settings(tmp_path):
    off = load_config(model_file(tmp_path, BASE + "[compare]\nlfo = false\n", "off.toml"))
    assert off.bayes_settings().lfo_threshold is None
    strict = load_config(model_file(tmp_path, BASE + "[compare]\nlfo_threshold = 0.5\n", "k.toml"))
    assert strict.bayes_settings().lfo_threshold == 0.5
    assert load_config(model_file(tmp_path, BASE)).bayes_settings().lfo_threshold == 0.7


def test_lfo_train_reaches_the_bayes_settings_and_must_be_a_fraction(tmp_path):
    assert load_config(model_file(tmp_path, BASE)).bayes_settings().lfo_train is None
    half = load_config(model_file(tmp_path, BASE + "[compare]\nlfo_train = 0.5\n", "h.toml"))
    assert half.bayes_settings().lfo_train == 0.5
    message = error_of(model_file(tmp_path, BASE + "[compare]\nlfo_train = 1\n", "one.toml"))
    assert "[compare] lfo_train: must be a fraction strictly between 0 and 1" in message


def test_negative_lfo_threshold_gives_the_bound(tmp_path):
    message = error_of(model_file(tmp_path, BASE + "[compare]\nlfo_threshold = -1\n"))
    assert "[compare] lfo_threshold: must be" in message and "got -1" in message


# --- [model] shrinkage -------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "default"), [("shrinkage", "horseshoe", "none"),
                                                       ("betas", "mean_reverting", "random_walk")])
def test_model_variant_option_is_read_and_written_back(tmp_path, key, value, default):
    config = load_config(model_file(tmp_path, BASE + f'{key} = "{value}"\n'))
    assert getattr(config.model, key) == value
    assert getattr(load_config(model_file(tmp_path, BASE)).model, key) == default
    again = model_file(tmp_path, tomli_w.dumps(config.to_dict()), "again.toml")
    assert getattr(load_config(again).model, key) == value


def test_unknown_betas_names_the_key_and_the_choices(tmp_path):
    message = error_of(model_file(tmp_path, BASE + 'betas = "mean_revert"\n'))
    assert "[model] betas: 'mean_revert' is not allowed; did you mean 'mean_reverting'?" in message


def test_unknown_shrinkage_names_the_key_and_the_choices(tmp_path):
    message = error_of(model_file(tmp_path, BASE + 'shrinkage = "horseshow"\n'))
    assert "[model] shrinkage: 'horseshow' is not allowed; did you mean 'horseshoe'?" in message
    assert "'none'" in message


def test_horseshoe_with_a_full_q_is_refused_at_the_shrinkage_key(tmp_path):
    path = model_file(tmp_path, BASE + 'q = "full"\nshrinkage = "horseshoe"\n')
    assert error_of(path).startswith(f'{path}: [model] shrinkage: shrinkage="horseshoe" is a '
                                     'prior on the sds of a diagonal Q: use q="diag"')


def test_horseshoe_with_a_sigma_beta_prior_is_refused_at_the_shrinkage_key(tmp_path):
    text = BASE + ('shrinkage = "horseshoe"\n[priors]\n'
                   'sigma_beta = {dist = "HalfNormal", sigma = 0.1}\n')
    path = model_file(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: [model] shrinkage:")
    assert "leave priors.sigma_beta unset" in message


def test_horseshoe_prior_settings_are_priors_keys(tmp_path):
    text = BASE + 'shrinkage = "horseshoe"\n[priors]\nhorseshoe_global = 0.5\nhorseshoe_slab = 3\n'
    config = load_config(model_file(tmp_path, text))
    assert config.bayes_settings().parsed_priors.horseshoe_slab == 3.0
    assert config.bayes_settings().parsed_priors.horseshoe_global == 0.5


def test_compare_workers_is_read_saved_and_kept_out_of_the_comparison_arguments(tmp_path):
    """[compare] workers is the CLI's default of --workers: where the series run, not what
    compare_methods computes."""
    config = load_config(model_file(tmp_path, BASE + "[compare]\nworkers = 2\n"))
    assert config.compare.workers == 2 and "workers" not in config.compare_kwargs()
    config.save(tmp_path / "saved.toml")
    assert load_config(tmp_path / "saved.toml").compare.workers == 2
    assert load_config(model_file(tmp_path, BASE, "none.toml")).compare.workers is None
    message = error_of(model_file(tmp_path, BASE + "[compare]\nworkers = 0\n", "zero.toml"))
    assert "[compare] workers: must be" in message and "got 0" in message


# --- source = "files": a fund CSV and a factor CSV -----------------------------------------------
FILES = """
[data]
source = "files"
fund_csv = "in/fund.csv"
factor_csv = "in/factors.csv"

[model]
targets = ["NoDur", "Enrgy"]
factors = ["MktRF", "SMB"]
"""
GAP, EMPTY = pd.Timestamp("2010-06-30"), pd.Timestamp("2011-03-31")


def fund_and_factor_files(tmp_path: Path, scale: float = 1.0) -> pd.DataFrame:
    """Write in/fund.csv (NoDur, Enrgy 2008-01..2012-12 without the GAP row, Enrgy empty at
    EMPTY) and in/factors.csv (MktRF, SMB 2007-01..2013-12) from the French data, times
    ``scale``; return by hand the decimal frame the model sees: the factor months of the
    fund's span, both funds missing at GAP and Enrgy at EMPTY."""
    french = load_french()
    (tmp_path / "in").mkdir(exist_ok=True)
    fund = french.loc["2008-01":"2012-12", ["NoDur", "Enrgy"]].copy()
    fund.loc[EMPTY, "Enrgy"] = np.nan
    fund.drop(index=GAP).mul(scale).to_csv(tmp_path / "in" / "fund.csv")
    french.loc["2007-01":"2013-12", ["MktRF", "SMB"]].mul(scale).to_csv(
        tmp_path / "in" / "factors.csv")  # fmt: skip
    expected = french.loc["2008-01":"2012-12", ["NoDur", "Enrgy", "MktRF", "SMB"]].copy()
    expected.loc[GAP, ["NoDur", "Enrgy"]] = np.nan
    expected.loc[EMPTY, "Enrgy"] = np.nan
    return expected.rename_axis("Date")


def test_files_source_keeps_each_funds_missing_months_on_the_factor_dates(tmp_path):
    expected = fund_and_factor_files(tmp_path)
    config = load_config(model_file(tmp_path, FILES))
    assert config.data.fund_csv == tmp_path / "in" / "fund.csv"  # relative to the model file
    with pytest.warns(DataWarning) as caught:
        frame = config.load_data()
    pd.testing.assert_frame_equal(frame, expected, check_freq=False)
    assert len(caught) == 2  # the alignment's two warnings, once for both targets
    messages = " ".join(str(w.message) for w in caught)
    assert "24 factor row(s) outside the fund's dates (2007-01-31, 2007-02-28" in messages
    assert "1 factor date(s) inside the fund's dates with no fund row (2010-06-30)" in messages
    for target in config.model.targets:  # the data layer's own join, one fund at a time
        with pytest.warns(DataWarning):
            direct = load_fund_and_factors(tmp_path / "in" / "fund.csv", tmp_path / "in" /
                                           "factors.csv", fund_col=target,
                                           factor_cols=["MktRF", "SMB"]).df  # fmt: skip
        pd.testing.assert_frame_equal(frame[direct.columns], direct)


@pytest.mark.filterwarnings("ignore::tvbeta.data.DataWarning")
def test_files_source_in_percent_with_start_end_and_a_saved_copy(tmp_path):
    expected = fund_and_factor_files(tmp_path, scale=100.0).loc["2009-01-01":"2010-12-31"]
    text = FILES.replace("[model]", 'units = "percent"\nstart = 2009-01-01\nend = 2010-12-31\n'
                                    "[model]")  # fmt: skip
    config = load_config(model_file(tmp_path, text))
    pd.testing.assert_frame_equal(config.load_data(), expected, check_freq=False, rtol=1e-12)
    (tmp_path / "elsewhere").mkdir()
    copy = config.save(tmp_path / "elsewhere" / "model.toml")  # paths saved resolved
    again = load_config(copy)
    assert again.data == config.data
    pd.testing.assert_frame_equal(again.load_data(), expected, check_freq=False, rtol=1e-12)


def test_files_source_compounds_each_files_days_to_weeks_and_keeps_a_gappy_week_missing(
        tmp_path):  # fmt: skip
    """Daily files, 4 weeks (2020-01-06 .. 01-31); y2 has no return in the second week: that
    week is NaN for y2 only. The weeks compounded by hand: prod(1 + r) - 1 over Mon..Fri."""
    days = pd.bdate_range("2020-01-06", "2020-01-31", name="Date")
    rng = np.random.default_rng(3)
    daily = pd.DataFrame(rng.normal(0.0, 0.01, (len(days), 3)), index=days,
                         columns=["y1", "y2", "f"])  # fmt: skip
    daily.loc["2020-01-13":"2020-01-17", "y2"] = np.nan
    daily[["y1", "y2"]].to_csv(tmp_path / "fund.csv")
    daily[["f"]].to_csv(tmp_path / "factors.csv")
    text = ('[data]\nsource = "files"\nfund_csv = "fund.csv"\nfactor_csv = "factors.csv"\n'
            'aggregate = "weekly"\n[model]\ntargets = ["y1", "y2"]\nfactors = ["f"]\n')  # fmt: skip
    config = load_config(model_file(tmp_path, text))
    assert config.data.model_frequency == "weekly"
    frame = config.load_data()
    weeks = np.arange(len(days)) // 5
    expected = pd.DataFrame({c: [np.prod(1 + daily[c].to_numpy()[weeks == w]) - 1
                                 for w in range(4)] for c in daily.columns},
                            index=pd.DatetimeIndex(["2020-01-10", "2020-01-17", "2020-01-24",
                                                    "2020-01-31"], name="Date"))  # fmt: skip
    pd.testing.assert_frame_equal(frame, expected, check_freq=False, rtol=1e-12)
    # an empty day of y2 in the third week: that week unknown for y2 only, the factor's and
    # y1's weeks as before (the funds share the factor's weeks)
    daily.loc["2020-01-22", "y2"] = np.nan
    daily[["y1", "y2"]].to_csv(tmp_path / "fund.csv")
    expected.loc["2020-01-24", "y2"] = np.nan
    with pytest.warns(DataWarning, match="empty fund cell"):
        pd.testing.assert_frame_equal(config.load_data(), expected, check_freq=False,
                                      rtol=1e-12)  # fmt: skip


@pytest.mark.filterwarnings("ignore::tvbeta.data.DataWarning")
def test_files_source_without_targets_takes_every_column_of_the_fund_file(tmp_path):
    """[model] targets left out: each column of fund_csv after its dates, in the file's order
    (the same frame as naming them); a fund file with only dates is refused, naming it."""
    expected = fund_and_factor_files(tmp_path)
    config = load_config(model_file(tmp_path, FILES.replace('targets = ["NoDur", "Enrgy"]\n',
                                                            "")))  # fmt: skip
    assert config.model.targets == ("NoDur", "Enrgy")
    pd.testing.assert_frame_equal(config.load_data(), expected, check_freq=False)
    pd.read_csv(tmp_path / "in" / "fund.csv", index_col=0).iloc[:, :0].to_csv(
        tmp_path / "in" / "fund.csv")  # fmt: skip
    message = error_of(model_file(tmp_path, FILES.replace('targets = ["NoDur", "Enrgy"]\n', ""),
                                  "dates_only.toml"))  # fmt: skip
    assert "[model] targets: left out, so every column of fund_csv is a target, but" in message
    assert f"{tmp_path / 'in' / 'fund.csv'} has none after its dates" in message
    (tmp_path / "in" / "fund.csv").unlink()
    message = error_of(model_file(tmp_path, FILES.replace('targets = ["NoDur", "Enrgy"]\n', ""),
                                  "no_file.toml"))  # fmt: skip
    assert "[data] fund_csv: CSV file not found" in message
    french = FILES.replace('source = "files"\nfund_csv = "in/fund.csv"\nfactor_csv = '
                           '"in/factors.csv"', 'source = "french"')  # fmt: skip
    message = error_of(model_file(tmp_path, french.replace('targets = ["NoDur", "Enrgy"]\n', ""),
                                  "french.toml"))  # fmt: skip
    assert "[model]: missing required key 'targets'" in message


@pytest.mark.filterwarnings("ignore::tvbeta.data.DataWarning")
def test_files_source_reads_only_the_named_columns_of_a_wide_fund_file(tmp_path):
    """A fund column the model does not name, here of text, is left alone."""
    expected = fund_and_factor_files(tmp_path)
    fund = tmp_path / "in" / "fund.csv"
    pd.read_csv(fund, index_col=0).assign(Notes="see memo").to_csv(fund)
    frame = load_config(model_file(tmp_path, FILES)).load_data()
    pd.testing.assert_frame_equal(frame, expected, check_freq=False)


@pytest.mark.parametrize(("case", "key", "expect"), [
    ("no fund file", "fund_csv", "CSV file not found: {tmp}/in/fund.csv (resolved relative"),
    ("bad cell", "factor_csv", "{tmp}/in/factors.csv: column 'SMB' is not numeric: '1.2%' on "
                               "2009-05-31; fix or blank that cell"),
    ("date twice", "fund_csv", "{tmp}/in/fund.csv: the date 2008-03-31 is on data rows 3, 4"),
    ("month starts", "fund_csv, factor_csv", "{tmp}/in/fund.csv (2008-02-01 .. 2013-01-01: "
                                             "2008-02-01, 2008-03-01, ...) and "
                                             "{tmp}/in/factors.csv (2007-01-31 .. "),
    ("empty fund file", "fund_csv", "{tmp}/in/fund.csv: cannot read a header row"),
    ("semicolons", "factor_csv", "{tmp}/in/factors.csv: expected the dates, then one column per "
                                 "series in a comma-separated file: this one looks separated by "
                                 "';', save it with commas (and '.' as the decimal point)"),
])  # fmt: skip
def test_files_source_errors_name_the_model_file_the_key_and_the_csv(tmp_path, case, key, expect):
    fund_and_factor_files(tmp_path)
    fund, factors = tmp_path / "in" / "fund.csv", tmp_path / "in" / "factors.csv"
    if case == "no fund file":
        fund.unlink()
    elif case == "bad cell":
        frame = pd.read_csv(factors, index_col=0).astype(object)
        frame.loc["2009-05-31", "SMB"] = "1.2%"
        frame.to_csv(factors)
    elif case == "date twice":
        lines = fund.read_text().splitlines()
        fund.write_text("\n".join([*lines[:4], lines[3], *lines[4:]]) + "\n")
    elif case == "month starts":  # the fund dated at the first of the next month
        frame = pd.read_csv(fund, index_col=0, parse_dates=True)
        frame.set_axis(frame.index + pd.Timedelta(days=1), axis=0).to_csv(fund)
    elif case == "semicolons":  # a spreadsheet's export in a decimal-comma locale
        pd.read_csv(factors, index_col=0).to_csv(factors, sep=";", decimal=",")
    else:
        fund.write_text("")
    path = model_file(tmp_path, FILES)
    message = error_of(path, data=True)
    assert message.startswith(f"{path}: [data] {key}: ")
    assert expect.format(tmp=tmp_path) in message


@pytest.mark.parametrize(("replace", "expect"), [
    ('"NoDur"', "[model] targets: 'NoDurr' is not a column of fund.csv; did you mean 'NoDur'? "
                "available columns: NoDur, Enrgy"),
    ('"SMB"', "[model] factors: 'SMBB' is not a column of factors.csv; did you mean 'SMB'? "
              "available columns: MktRF, SMB"),
])  # fmt: skip
def test_files_source_unknown_column_names_the_csv_and_its_columns(tmp_path, replace, expect):
    fund_and_factor_files(tmp_path)
    text = FILES.replace(replace, replace[:-1] + replace[-2] + '"')
    assert expect in error_of(model_file(tmp_path, text), data=True)


@pytest.mark.parametrize(("text", "expect"), [
    (FILES.replace("[model]", 'path = "r.csv"\n[model]'),
     "[data] path: only used with source = 'csv'; remove it"),
    (BASE.replace("[model]", 'fund_csv = "f.csv"\n[model]'),
     "[data] fund_csv: only used with source = 'files'; remove it"),
    (BASE.replace("[model]", 'aggregate = "weekly"\n[model]'),
     "[data] aggregate: only used with source = 'csv' or 'files'; remove it"),
    (FILES.replace('factor_csv = "in/factors.csv"\n', ""),
     "[data]: missing required key 'factor_csv': add it, e.g. factor_csv = \"my_factors.csv\""),
    (FILES.replace("[model]", 'units = "percentage"\n[model]'),
     "[data] units: 'percentage' is not allowed; did you mean 'percent'?"),
    (FILES.replace("[model]", 'fund_col = "NoDur"\n[model]'), "[data]: unknown key 'fund_col'"),
    (FILES.replace("[model]", 'aggregate = "weekly"\nfrequency = "monthly"\n[model]'),
     "[data] frequency: aggregate = 'weekly' needs daily rows, not monthly"),
])  # fmt: skip
def test_files_source_keys_are_checked_like_the_other_sources(tmp_path, text, expect):
    assert expect in error_of(model_file(tmp_path, text))


@pytest.mark.filterwarnings("ignore::tvbeta.data.DataWarning")
def test_readme_files_model_reads_the_readmes_two_files(tmp_path):
    """The README's model file, next to the files its "Your own fund" block writes, loads what
    that block's `load_fund_and_factors` call gives."""
    (block,) = re.findall(r"^```toml\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    french = load_french()
    french[["Hlth"]].loc["2000":].to_csv(tmp_path / "my_fund.csv")
    french[["MktRF", "SMB", "HML", "Mom"]].loc["1990":].to_csv(tmp_path / "my_factors.csv")
    frame = load_config(model_file(tmp_path, block, "my_fund.toml")).load_data()
    direct = load_fund_and_factors(tmp_path / "my_fund.csv", tmp_path / "my_factors.csv").df
    pd.testing.assert_frame_equal(frame, direct)


@pytest.mark.filterwarnings("ignore::tvbeta.data.DataWarning")
def test_files_source_reads_dates_in_the_formats_the_keys_give(tmp_path):
    """The fund file's dates rewritten as 01/31/2008, the factors' as Ken French's 200801:
    ``date_format`` and ``factor_date_format`` give the frame of the ISO files; a key that is
    not a format is refused naming it."""
    expected = fund_and_factor_files(tmp_path)
    for name, fmt in (("fund.csv", "%m/%d/%Y"), ("factors.csv", "%Y%m")):
        frame = pd.read_csv(tmp_path / "in" / name, index_col=0, parse_dates=True)
        frame.set_axis(frame.index.strftime(fmt), axis=0).to_csv(tmp_path / "in" / name)
    text = FILES.replace("[model]", 'date_format = "%m/%d/%Y"\nfactor_date_format = "%Y%m"\n'
                         "[model]")  # fmt: skip
    pd.testing.assert_frame_equal(load_config(model_file(tmp_path, text)).load_data(), expected,
                                  check_freq=False)  # fmt: skip
    bad = FILES.replace("[model]", 'factor_date_format = "yyyymm"\n[model]')
    assert ("[data] factor_date_format: must be a strftime format such as '%m/%d/%Y'"
            in error_of(model_file(tmp_path, bad)))  # fmt: skip
    french = BASE.replace("[model]", 'date_format = "%Y%m"\n[model]')
    assert ("[data] date_format: only used with source = 'csv' or 'files'; remove it"
            in error_of(model_file(tmp_path, french)))  # fmt: skip


@pytest.mark.filterwarnings("ignore::tvbeta.data.DataWarning")
def test_files_source_reads_a_percent_fund_beside_decimal_factors(tmp_path):
    """The fund file rewritten in percent (x100), the factors left decimal: `units =
    "percent"` with `factor_units = "decimal"` gives the decimal frame built by hand."""
    expected = fund_and_factor_files(tmp_path)
    fund = tmp_path / "in" / "fund.csv"
    pd.read_csv(fund, index_col=0).mul(100.0).to_csv(fund)
    text = FILES.replace("[model]", 'units = "percent"\nfactor_units = "decimal"\n[model]')
    config = load_config(model_file(tmp_path, text))
    assert (config.data.units, config.data.factor_units) == ("percent", "decimal")
    pd.testing.assert_frame_equal(config.load_data(), expected, check_freq=False, rtol=1e-12)
    assert "factor_units" not in load_config(model_file(tmp_path, FILES)).to_dict()["data"]
