"""The bad-input catalogue (issue 10, section 6): each bad input is refused, or warned about,
with a message that names the argument and says what to do, and the caller's data are left as
they were (a DataFrame equal to its copy taken before the call; a file with the same bytes).

Sections: 1 priors; 2 NUTS settings; 3 the Q form; 4 lists of columns and methods (and one
name given where a list is expected: accepted as one column everywhere, as `prepare_design`
always did); 5 the data themselves (near-collinear factors, extreme scale, dates as text);
6 executors (a Dask client is used, anything else refused); 7 saved files (truncated or
foreign); 8 model files; 9 the command line. Argument errors of `fit_bayes` are raised before
any model is built, so none of these tests samples.

Expected values: the messages are the specification; where a number is quoted (a condition
number) the test computes it with numpy on its own; where an input is accepted (one column
name for a list) the reference is the same call with the list.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import tvbeta
from tvbeta import cli
from tvbeta.config import ConfigError, load_config
from tvbeta.data import (
    DataValidationError,
    DataWarning,
    ReturnUnitsWarning,
    load_french,
    prepare_design,
)
from tvbeta.estimate.bayes import (
    BayesFit,
    BayesSpec,
    Prior,
    Priors,
    SamplerSettings,
    bayes_spec,
    fit_bayes,
)
from tvbeta.estimate.crosscheck import crosscheck_statsmodels
from tvbeta.estimate.grid import run_kalman_grid_search
from tvbeta.estimate.mle import fit_mle
from tvbeta.estimate.statsmodels_twin import TVPRegression
from tvbeta.evaluate.compare import BayesSettings, Comparison, compare_methods
from tvbeta.funds import ModelComparisonEngine
from tvbeta.kalman import (
    KalmanInputError,
    KalmanNumericalError,
    kalman_filter,
    kalman_loglik,
    loglik_vjp,
)
from tvbeta.model import KalmanEngine, KalmanSpec, SavedFileError
from tvbeta.model.setters import ScalarMLEWarning, set_R_from_mle
from tvbeta.outputs import IncompleteRunError

FACTORS = ["a", "b"]


def returns(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Monthly decimal returns of two funds (y, y2) on two factors (a, b)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2010-01-31", periods=n, freq="ME", name="Date")
    a, b = rng.normal(0.005, 0.04, n), rng.normal(0.0, 0.03, n)
    y = 0.001 + 0.9 * a + 0.3 * b + rng.normal(0.0, 0.01, n)
    y2 = -0.002 + 1.2 * a - 0.2 * b + rng.normal(0.0, 0.015, n)
    return pd.DataFrame({"y": y, "y2": y2, "a": a, "b": b}, index=index)


@pytest.fixture
def df() -> pd.DataFrame:
    return returns()


def refuses(call: Callable[[pd.DataFrame], Any], df: pd.DataFrame, error: type, pattern: str):
    """call(df) raises ``error`` with a message matching ``pattern``; df is unchanged."""
    before = df.copy(deep=True)
    with pytest.raises(error, match=pattern):
        call(df)
    pd.testing.assert_frame_equal(df, before)


def warns(call: Callable[[pd.DataFrame], Any], df: pd.DataFrame, pattern: str) -> str:
    """call(df) warns with a DataWarning matching ``pattern``; df is unchanged. The message."""
    before = df.copy(deep=True)
    with pytest.warns(DataWarning, match=pattern) as record:
        call(df)
    pd.testing.assert_frame_equal(df, before)
    return str(next(w.message for w in record if re.search(pattern, str(w.message))))


def bayes(**kwargs: Any) -> Callable[[pd.DataFrame], Any]:
    """fit_bayes on y ~ a + b with these arguments (seed 1 unless given)."""
    return lambda d: fit_bayes(d, "y", FACTORS, **{"seed": 1, **kwargs})


# === 1. priors =================================================================================
SCALE_FIX = r"give a positive value \(a scale may also be left out for the data-based default\)"
POSITIVE = r"sigma of the HalfNormal prior must be a finite number > 0, got "
PRIOR_CASES = [
    ("negative sigma_eps", {"sigma_eps": {"dist": "HalfNormal", "sigma": -0.01}},
     ValueError, rf"{POSITIVE}-0.01.*{SCALE_FIX}"),
    ("zero sigma_eps", {"sigma_eps": {"dist": "HalfNormal", "sigma": 0.0}},
     ValueError, rf"{POSITIVE}0.0.*{SCALE_FIX}"),
    ("nan sigma_eps", {"sigma_eps": {"dist": "HalfNormal", "sigma": float("nan")}},
     ValueError, r"sigma of the HalfNormal prior must be a finite number > 0, got nan"),
    ("one negative sigma_beta of three", {"sigma_beta": {"dist": "HalfNormal",
                                                         "sigma": [0.01, -0.1, 0.1]}},
     ValueError, r"sigma of the HalfNormal prior must be a finite number > 0, got \[0.01, -0.1"),
    ("zero nu of a HalfStudentT", {"sigma_eps": {"dist": "HalfStudentT", "nu": 0}},
     ValueError, r"nu of the HalfStudentT prior must be a finite number > 0, got 0"),
    ("negative Exponential scale", {"sigma_beta": {"dist": "Exponential", "scale": -1.0}},
     ValueError, r"scale of the Exponential prior must be a finite number > 0"),
    ("misspelt parameter", {"sigma_eps": {"dist": "HalfNormal", "sigmaa": 0.01}},
     ValueError, r"HalfNormal has no parameter 'sigmaa'; did you mean 'sigma'\? its parameters "
                 r"are \['sigma', 'tau'\]"),
    ("misspelt distribution", {"sigma_eps": {"dist": "HalfNormall", "sigma": 0.01}},
     ValueError, r"prior 'HalfNormall' is not a positive distribution tvbeta knows; did you mean "
                 r"'HalfNormal'\?"),
    ("misspelt setting", {"beta_drift_per_yr": 0.5},
     ValueError, r"unknown prior setting 'beta_drift_per_yr'; did you mean "
                 r"'beta_drift_per_year'\?"),
    ("text for a number", {"sigma_eps": {"dist": "HalfNormal", "sigma": "0.01"}},
     ValueError, r"sigma of the HalfNormal prior must be a number or a list of numbers"),
    ("HalfStudentT without nu", {"sigma_eps": {"dist": "HalfStudentT"}},
     ValueError, r"the HalfStudentT prior needs the parameter\(s\) \['nu'\], e.g. "),
    ("Gamma with alpha only", {"sigma_eps": {"dist": "Gamma", "alpha": 2.0}},
     ValueError, r"the Gamma prior needs the parameter\(s\) \['alpha', 'beta'\] or "
                 r"\['mu', 'sigma'\]"),
    ("sigma_beta of the wrong length", {"sigma_beta": {"dist": "HalfNormal", "sigma": [0.1, 0.1]}},
     ValueError, r"sigma of sigma_beta must be a scalar or have 3 values"),
    ("zero initial_window", {"initial_window": 0},
     ValueError,
     r"initial_window must be a number of observed targets >= 1 .* or None for the default"),
    ("negative initial_window", {"initial_window": -3},
     ValueError, r"initial_window must be a number of observed targets >= 1"),
    ("initial_window below k + 1", {"initial_window": 3},
     ValueError, r"the initial window \(initial_window = 3 observed targets\) has fewer than "
                 r"k \+ 1 = 4 observations.*raise initial_window"),
    ("zero beta drift", {"beta_drift_per_year": 0.0},
     ValueError, r"beta_drift_per_year must be a number > 0, got 0.0"),
    ("negative eps_scale", {"eps_scale": -1.0},
     ValueError, r"eps_scale must be a number > 0, got -1.0"),
    ("negative initial_sd_floor", {"initial_sd_floor": -1.0},
     ValueError, r"initial_sd_floor must be a number >= 0, got -1.0"),
    ("negative index_half_life_sd", {"index_half_life_sd": -1.0},
     ValueError, r"index_half_life_sd must be a number >= 0, got -1.0"),
    ("a sampled half-life without a volatility index", {"index_half_life_sd": 0.5},
     ValueError, r"index_half_life_sd = 0.5 samples the half-life of the volatility index, "
                 r"which a noise='constant' model has none of: use noise=\"volatility\""),
    ("a name where a Prior belongs", {"sigma_eps": "HalfNormal"},
     TypeError, r"sigma_eps must be a Prior, a dict such as \{'dist': 'HalfNormal'"),
]  # fmt: skip


@pytest.mark.parametrize(("priors", "error", "pattern"), [c[1:] for c in PRIOR_CASES],
                         ids=[c[0] for c in PRIOR_CASES])  # fmt: skip
def test_bad_priors_are_refused_before_sampling(df, priors, error, pattern):
    refuses(bayes(priors=priors), df, error, pattern)


def test_bad_prior_objects_are_refused_when_built():
    """The same checks hold for Prior / Priors built in Python, not only for dicts."""
    with pytest.raises(ValueError, match=rf"sigma of the HalfNormal prior .*> 0.*{SCALE_FIX}"):
        Prior("HalfNormal", {"sigma": -1.0})
    with pytest.raises(ValueError, match=r"initial_window must be a number of observed targets"):
        Priors(initial_window=0)


def test_bad_priors_in_a_toml_file_are_refused(tmp_path):
    path = tmp_path / "priors.toml"
    path.write_text('[priors.sigma_eps]\ndist = "HalfNormal"\nsigmaa = 0.01\n')
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"HalfNormal has no parameter 'sigmaa'; did you mean"):
        Priors.from_toml(path)
    assert path.read_bytes() == before


def test_a_constant_target_cannot_give_a_default_noise_scale(df):
    """Fitted exactly by the factors, the target leaves an OLS residual sd of 0, the default
    scale of sigma_eps: say so instead of sampling a point mass."""
    exact = df.assign(y=2.0 * df["a"] - df["b"])
    refuses(bayes(), exact, ValueError,
            r"the default sigma of the HalfNormal prior is 0.0, not > 0 .*an exact fit\); give "
            r"the prior's scale explicitly")  # fmt: skip


def test_valid_priors_still_resolve(df):
    """The checks refuse no valid prior: tau for HalfNormal, lam for HalfStudentT (alternative
    scales: resolved to the scale they give, sigma = tau^-1/2, not a default sigma beside
    them), LogNormal's negative mu."""
    priors = {"sigma_eps": {"dist": "HalfNormal", "tau": 1e4},
              "sigma_beta": {"dist": "LogNormal", "mu": -3.0, "sigma": 1.0}}  # fmt: skip
    spec = bayes_spec(df, "y", FACTORS, priors=priors)
    assert spec.resolved.sigma_eps.params == {"sigma": pytest.approx(0.01, rel=1e-12)}
    assert spec.resolved.sigma_beta.params == {"mu": -3.0, "sigma": 1.0}


# === 2. NUTS settings ==========================================================================
SAMPLER_CASES = [
    ("target_accept 0", {"target_accept": 0.0}, ValueError,
     r"target_accept must be a probability strictly between 0 and 1 .*0.8-0.95 is usual"),
    ("target_accept 1", {"target_accept": 1.0}, ValueError, r"target_accept must be .*got 1.0"),
    ("target_accept 90 (percent)", {"target_accept": 90}, ValueError,
     r"target_accept must be a probability strictly between 0 and 1.*got 90"),
    ("target_accept negative", {"target_accept": -0.5}, ValueError, r"target_accept.*got -0.5"),
    ("draws 0", {"draws": 0}, ValueError, r"draws must be >= 1 \(e.g. 1000\), got 0"),
    ("draws negative", {"draws": -10}, ValueError, r"draws must be >= 1 \(e.g. 1000\), got -10"),
    ("tune 0", {"tune": 0}, ValueError, r"tune must be >= 1 \(e.g. 1000\), got 0"),
    ("chains 0", {"chains": 0}, ValueError, r"chains must be >= 1 \(e.g. 4\), got 0"),
    ("draws not an integer", {"draws": 100.5}, TypeError, r"draws must be an integer >= 1"),
    ("cores 0", {"cores": 0}, ValueError, r"cores must be >= 1 \(e.g. None \(one per chain\)\)"),
    ("n_paths negative", {"n_paths": -1}, ValueError, r"n_paths must be >= 0 \(e.g. 200\)"),
    ("unknown sampler", {"sampler": "nutpy"}, ValueError,
     r"sampler must be one of \['auto', 'pymc', 'nutpie'\], got 'nutpy'"),
    ("negative seed", {"seed": -1}, ValueError, r"seed must be >= 0"),
]


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [c[1:] for c in SAMPLER_CASES],
                         ids=[c[0] for c in SAMPLER_CASES])  # fmt: skip
def test_bad_sampler_settings_are_refused_before_anything_is_built(df, kwargs, error, pattern):
    refuses(bayes(**kwargs), df, error, pattern)


@pytest.mark.parametrize(("kwargs", "error", "pattern"),
                         [c[1:] for c in SAMPLER_CASES if "seed" not in c[1]],
                         ids=[c[0] for c in SAMPLER_CASES if "seed" not in c[1]])  # fmt: skip
def test_bad_sampler_settings_object_is_refused_when_made_with_the_same_message(
    df, kwargs, error, pattern
):
    """fit_bayes(settings=SamplerSettings(...)): the object refuses the setting itself."""
    refuses(lambda d: bayes(settings=SamplerSettings(**kwargs))(d), df, error, pattern)


def test_a_setting_given_both_as_keyword_and_in_the_settings_object_is_refused(df):
    refuses(bayes(draws=10, settings=SamplerSettings(draws=20)), df, TypeError,
            r"\['draws'\] given both as keyword arguments and in settings")  # fmt: skip


COMPARISON_SETTING_CASES = [
    ("draws 0", {"draws": 0}, ValueError, r"draws must be >= 1"),
    ("target_accept 1.2", {"target_accept": 1.2}, ValueError, r"target_accept must be a "
                                                              r"probability strictly between"),
    ("n_predictive 0", {"n_predictive": 0}, ValueError,
     r"n_predictive must be an integer >= 1 \(posterior draws in the predictive mixture"),
    ("negative lfo_threshold", {"lfo_threshold": -0.1}, ValueError,
     r"lfo_threshold must be >= 0 \(0: exact LFO, inf: never refit\), got -0.1"),
    ("too few draws to smooth", {"draws": 10, "chains": 2}, ValueError,
     r"lfo need\(s\) at least 25 posterior draws in all \(Pareto smoothing fits "
     r"its tail to a fifth of them\), got chains x draws = 2 x 10 = 20: sample more draws"),
    ("lfo_train 1", {"lfo_train": 1.0}, ValueError,
     r"lfo_train must be a fraction in \(0, 1\) of the training rows \(e.g. 0.5\) or None, "
     r"got 1.0"),
    ("misspelt prior", {"priors": {"eps_scal": 2.0}}, ValueError,
     r"unknown prior setting 'eps_scal'; did you mean 'eps_scale'\?"),
    ("unknown frequency", {"frequency": "fortnightly"}, ValueError,
     r"unknown frequency 'fortnightly': use e.g. 'weekly' or 52"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "error", "pattern"),
                         [c[1:] for c in COMPARISON_SETTING_CASES],
                         ids=[c[0] for c in COMPARISON_SETTING_CASES])  # fmt: skip
def test_bad_bayes_settings_of_a_comparison_are_refused_before_any_fit(df, settings, error,
                                                                       pattern):  # fmt: skip
    nuts = {k: settings[k] for k in ("draws", "chains", "target_accept") if k in settings}
    rest = {k: v for k, v in settings.items() if k not in nuts}
    refuses(lambda d: compare_methods(d, ["y"], FACTORS, methods=["rolling_ols", "bayes"],
                                      bayes=BayesSettings(SamplerSettings(**nuts), **rest),
                                      progress=False),
            df, error, pattern)  # fmt: skip


# === 3. the Q form ==============================================================================
Q_MESSAGE = r"q must be 'diag' \(independent drifts.*or 'full' \(correlated drifts.*got "
Q_CASES = [
    ("fit_mle", lambda d: fit_mle(d, "y", FACTORS, q="nonsense")),
    ("fit_mle, capitalised", lambda d: fit_mle(d, "y", FACTORS, q="Diag")),
    ("fit_bayes", lambda d: fit_bayes(d, "y", FACTORS, q="nonsense", seed=1)),
    ("bayes_spec", lambda d: bayes_spec(d, "y", FACTORS, q="nonsense")),
    ("compare_methods (mle)", lambda d: compare_methods(
        d, ["y"], FACTORS, methods=["mle"], bayes=BayesSettings(q="nonsense"), progress=False)),
    ("crosscheck_statsmodels", lambda d: crosscheck_statsmodels(d, "y", FACTORS, q="nonsense")),
    ("statsmodels twin", lambda d: TVPRegression(d["y"].to_numpy(), d[FACTORS].to_numpy(),
                                                 q="nonsense")),
    ("BayesSpec.from_arrays", lambda d: BayesSpec.from_arrays(d["y"].to_numpy(),
                                                              d[FACTORS].to_numpy(), q=None)),
]


@pytest.mark.parametrize("call", [c[1] for c in Q_CASES], ids=[c[0] for c in Q_CASES])
def test_a_q_other_than_diag_or_full_is_refused_everywhere(df, call):
    refuses(call, df, ValueError, Q_MESSAGE)


# === 4. lists of columns and methods ===========================================================
COLUMN_CASES = [
    ("compare: methods empty", lambda d: compare_methods(d, ["y"], FACTORS, methods=[]),
     ValueError, r"methods is empty: choose one or more of \['grid_seed'"),
    ("compare: methods a string", lambda d: compare_methods(d, ["y"], FACTORS, methods="mle"),
     TypeError, r"methods must be a list of method names, e.g. \['mle'\]"),
    ("compare: a method twice", lambda d: compare_methods(
        d, ["y"], FACTORS, methods=["rolling_ols", "rolling_ols"]),
     ValueError, r"methods lists \['rolling_ols'\] more than once: list each method once"),
    ("compare: unknown method", lambda d: compare_methods(d, ["y"], FACTORS, methods=["ols"]),
     ValueError, r"unknown method\(s\) \['ols'\]; choose from"),
    ("compare: a target twice", lambda d: compare_methods(d, ["y", "y2", "y"], FACTORS),
     ValueError, r"targets lists \['y'\] more than once: list each target once"),
    ("compare: no target", lambda d: compare_methods(d, [], FACTORS),
     ValueError, r"targets is empty: name one or more target columns"),
    ("compare: a later target absent", lambda d: compare_methods(
        d, ["y", "y3"], FACTORS, methods=["bayes"]),
     DataValidationError, r"target column 'y3' is not in the DataFrame \(available: "),
    ("compare: a target among the factors", lambda d: compare_methods(d, ["y", "a"], FACTORS),
     DataValidationError, r"target column 'a' is also listed among the factors: remove it"),
    ("funds: a fund twice", lambda d: ModelComparisonEngine(d, ["y", "y"], FACTORS),
     ValueError, r"fund_cols lists \['y'\] more than once: list each fund once"),
    ("factors as a set", lambda d: fit_mle(d, "y", {"a", "b"}),
     TypeError, r"factor_cols is a set, whose order is arbitrary: pass a list, e.g. "
                r"\['a', 'b'\]"),
    ("a factor twice", lambda d: fit_mle(d, "y", ["a", "a"]),
     DataValidationError, r"factor_cols lists \['a'\] more than once: list each once"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "pattern"), [c[1:] for c in COLUMN_CASES],
                         ids=[c[0] for c in COLUMN_CASES])  # fmt: skip
def test_bad_lists_of_columns_and_methods_are_refused_before_any_fit(df, call, error, pattern):
    refuses(call, df, error, pattern)


def _grid_best(d, factors):
    grid = run_kalman_grid_search(d, "y", factors, KalmanSpec(K=1), burn=4)
    return grid[["Model Name", "Mean RMSE", "Cumulative Log-Likelihood"]]


def _funds_best(d, factors):
    engine = ModelComparisonEngine(d, "y", factors, burn=4, executor=None, progress=False)
    engine.run_all()
    return engine.get_all_summaries()[["Fund", "Model Name", "Mean RMSE"]]


ONE_NAME_CASES = [
    ("fit_mle", lambda d, f: fit_mle(d, "y", f).params),
    ("crosscheck_statsmodels", lambda d, f: crosscheck_statsmodels(d, "y", f)[
        ["tvbeta", "statsmodels"]].drop("fit time (s)")),
    ("KalmanEngine.run", lambda d, f: KalmanEngine(KalmanSpec(K=1)).run(d, "y", f).beta),
    ("run_kalman_grid_search", _grid_best),
    ("ModelComparisonEngine (fund and factor)", _funds_best),
    ("bayes_spec", lambda d, f: pd.Series(bayes_spec(d, "y", f).a0)),
    ("compare_methods", lambda d, f: compare_methods(
        d, "y", f, methods=["grid_seed", "rolling_ols"], progress=False).summary),
]


@pytest.mark.parametrize("call", [c[1] for c in ONE_NAME_CASES],
                         ids=[c[0] for c in ONE_NAME_CASES])  # fmt: skip
def test_one_column_name_where_a_list_is_expected_is_that_one_column(df, call):
    """A string is one column everywhere (as prepare_design always read it), never a list of
    its letters; the reference is the same call with a one-element list."""
    before = df.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLE at-bound notes are not the point here
        got, expected = call(df, "a"), call(df, ["a"])
    pd.testing.assert_frame_equal(df, before)
    if isinstance(got, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    else:
        pd.testing.assert_series_equal(got, expected)


# === 5. the data: near-collinear factors, extreme scales, dates as text ========================
def near_collinear(d: pd.DataFrame) -> pd.DataFrame:
    """b replaced by a plus a tiny independent wiggle (correlation ~0.99999)."""
    wiggle = np.random.default_rng(5).normal(0.0, 1e-4, len(d))
    return d.assign(b=d["a"] + wiggle)


def unit_condition(Z: np.ndarray) -> float:
    """Condition number of Z with unit-length columns (Belsley, Kuh & Welsch 1980), by numpy."""
    return float(np.linalg.cond(Z / np.linalg.norm(Z, axis=0)))


COLLINEAR_CALLS = [
    ("prepare_design", lambda d: prepare_design(d, "y", FACTORS, intercept=True)),
    ("KalmanEngine.run", lambda d: KalmanEngine(KalmanSpec(K=2).set_intercept()).run(
        d, "y", FACTORS)),
    ("fit_mle", lambda d: fit_mle(d, "y", FACTORS)),
    ("bayes_spec", lambda d: bayes_spec(d, "y", FACTORS)),
]


@pytest.mark.parametrize("call", [c[1] for c in COLLINEAR_CALLS],
                         ids=[c[0] for c in COLLINEAR_CALLS])  # fmt: skip
def test_near_collinear_factors_warn_with_the_condition_number(df, call):
    data = near_collinear(df)
    Z = np.column_stack([np.ones(len(data)), data[FACTORS].to_numpy()])
    expected = unit_condition(Z)
    assert expected > 100  # the case is what it claims to be
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # other notes (e.g. an MLE bound)
        warnings.simplefilter("always", DataWarning)
        message = warns(call, data, r"columns \['a', 'b'\] are nearly collinear")
    quoted = float(re.search(r"condition number (\S+) ", message).group(1))
    assert quoted == pytest.approx(expected, rel=1e-2)
    assert "drop one of them or combine them into one factor" in message


def test_a_price_level_beside_the_intercept_warns_and_advises_returns():
    """The textbook pairs-trading set-up on price levels (issue 10, section 3): a factor near
    4000 with a spread of ~50 is nearly the intercept column."""
    rng = np.random.default_rng(0)
    x = 4000.0 + np.cumsum(rng.normal(0.0, 20.0, 30))
    data = pd.DataFrame({"y": 0.5 + 0.1 * x + rng.normal(0.0, 0.01, 30), "x": x})
    message = warns(lambda d: prepare_design(d, "y", ["x"], intercept=True), data,
                    r"columns \['Intercept', 'x'\] are nearly collinear")  # fmt: skip
    assert "use its changes or returns" in message


def test_well_conditioned_real_data_draw_no_warning():
    """The demo's data (French industries on four factors) must stay warning-free."""
    french = load_french().loc["1992-04":"2017-03"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        prepare_design(french, "NoDur", ["MktRF", "SMB", "HML", "Mom"], intercept=True)


SCALE_CASES = [
    ("target in units of 1e12", lambda d: d.assign(y=d["y"] * 1e12), r"'y' \(sd [0-9.]+e\+10\)"),
    ("target in units of 1e-12", lambda d: d.assign(y=d["y"] * 1e-12), r"'y' \(sd [0-9.]+e-14\)"),
    ("factor in units of 1e12", lambda d: d.assign(b=d["b"] * 1e12), r"'b' \(sd [0-9.]+e\+10\)"),
    ("factor in units of 1e-12", lambda d: d.assign(a=d["a"] * 1e-12), r"'a' \(sd [0-9.]+e-14\)"),
]  # fmt: skip


@pytest.mark.parametrize(("scale", "named"), [c[1:] for c in SCALE_CASES],
                         ids=[c[0] for c in SCALE_CASES])  # fmt: skip
def test_data_on_an_extreme_scale_warn_saying_which_scale_is_expected(df, scale, named):
    data = scale(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("always", DataWarning)
        message = warns(lambda d: KalmanEngine(KalmanSpec(K=2).set_intercept()).run(
            d, "y", FACTORS), data, named)
    assert "standard deviations between 1e-06 and 1e+06; decimal returns" in message
    assert "rescale the column (e.g. divide by a power of 10) or use returns" in message


def test_levels_in_the_thousands_are_not_an_extreme_scale():
    """The Nile's flow (sd ~170, Durbin & Koopman's local level example) is a valid scale."""
    import statsmodels.api as sm

    nile = sm.datasets.nile.load_pandas().data[["volume"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        prepare_design(nile, "volume", [], intercept=True)


def text_dates(d: pd.DataFrame, fmt: str) -> pd.DataFrame:
    return d.set_axis(d.index.strftime(fmt), axis=0)


AMBIGUOUS = (r"the index holds dates as text \(e.g. '01/31/2010'\), which sort as text, not in "
             r"time order.*pd.to_datetime\(df.index, format='%m/%d/%Y'\) \(or '%d/%m/%Y'.*then "
             r"df = df.sort_index\(\)")  # fmt: skip
ISO = r"dates as text \(e.g. '2010-01-31'\): convert it first with .*format='ISO8601'"
DATE_TEXT_CASES = [
    ("prepare_design, m/d/Y", "%m/%d/%Y", lambda d: prepare_design(d, "y", FACTORS,
                                                                   intercept=True), AMBIGUOUS),
    ("fit_mle, m/d/Y", "%m/%d/%Y", lambda d: fit_mle(d, "y", FACTORS), AMBIGUOUS),
    ("fit_bayes, m/d/Y", "%m/%d/%Y", bayes(), AMBIGUOUS),
    ("compare_methods, m/d/Y", "%m/%d/%Y", lambda d: compare_methods(d, ["y"], FACTORS),
     AMBIGUOUS),
    ("KalmanEngine.run, ISO", "%Y-%m-%d", lambda d: KalmanEngine(KalmanSpec(K=2)).run(
        d, "y", FACTORS), ISO),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "call", "pattern"), [c[1:] for c in DATE_TEXT_CASES],
                         ids=[c[0] for c in DATE_TEXT_CASES])  # fmt: skip
def test_dates_as_text_are_refused_with_a_conversion_that_keeps_time_order(df, fmt, call,
                                                                           pattern):  # fmt: skip
    refuses(call, text_dates(df, fmt), DataValidationError, pattern)


def test_the_advice_for_dates_as_text_restores_the_time_order(df):
    """What the message says to do gives back the original dates in order; sorting the text
    (what the plain "not sorted" advice would have done) does not."""
    text = text_dates(df, "%m/%d/%Y")
    fixed = text.set_axis(pd.to_datetime(text.index, format="%m/%d/%Y"), axis=0).sort_index()
    np.testing.assert_array_equal(fixed.index.to_numpy(), df.index.to_numpy())
    assert not text.sort_index().index.equals(text.index)  # text order is not time order


def test_unsorted_text_labels_are_not_told_to_sort_as_text(df):
    labelled = df.set_axis([f"t{i}" for i in range(len(df))], axis=0)
    refuses(lambda d: prepare_design(d, "y", FACTORS, intercept=True), labelled,
            DataValidationError, r"t10 \(row 10\) comes after t9.*the labels are text, and "
                                 r"df.sort_index\(\) would order them as text")  # fmt: skip


# === 6. executors ===============================================================================
@pytest.fixture(scope="module")
def dask_client():
    """A real in-process Dask cluster: one worker, one thread."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)  # fmt: skip
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_a_dask_client_runs_the_grid_with_the_serial_numbers(df, dask_client):
    """A distributed Client is used through its executor (it was silently replaced by a local
    process pool); the reference is the grid run here, serially."""
    before = df.copy(deep=True)
    base = KalmanSpec(K=2)
    serial = run_kalman_grid_search(df, "y", FACTORS, base, burn=4)
    on_dask = run_kalman_grid_search(df, "y", FACTORS, base, burn=4, executor=dask_client)
    pd.testing.assert_frame_equal(on_dask, serial)
    pd.testing.assert_frame_equal(df, before)


def test_a_dask_client_runs_the_funds_with_the_serial_numbers(df, dask_client):
    before = df.copy(deep=True)
    runs = {}
    for name, executor in (("serial", None), ("dask", dask_client)):
        engine = ModelComparisonEngine(df, ["y", "y2"], FACTORS, burn=4, executor=executor,
                                       progress=False)  # fmt: skip
        engine.run_all()
        runs[name] = engine.get_all_summaries()
    pd.testing.assert_frame_equal(runs["dask"], runs["serial"])
    pd.testing.assert_frame_equal(df, before)


EXECUTOR_MESSAGE = (r"executor must be a concurrent.futures.Executor \(e.g. ThreadPoolExecutor\), "
                    r"a Dask distributed Client \(its get_executor\(\) is used\) or None, got ")
EXECUTOR_CASES = [
    ("grid: an object", lambda d: run_kalman_grid_search(d, "y", FACTORS, KalmanSpec(K=2),
                                                         executor=object()),
     TypeError, EXECUTOR_MESSAGE + "object"),
    ("grid: a number of workers", lambda d: run_kalman_grid_search(d, "y", FACTORS,
                                                                   KalmanSpec(K=2), executor=4),
     TypeError, EXECUTOR_MESSAGE + "int"),
    ("grid: the Executor class", lambda d: run_kalman_grid_search(
        d, "y", FACTORS, KalmanSpec(K=2), executor=ThreadPoolExecutor),
     TypeError, EXECUTOR_MESSAGE + "type"),
    ("funds: an object", lambda d: ModelComparisonEngine(d, ["y"], FACTORS, executor=object()),
     TypeError, EXECUTOR_MESSAGE + "object"),
    ("funds: an unknown name", lambda d: ModelComparisonEngine(d, ["y"], FACTORS,
                                                               executor="threads"),
     ValueError, r"executor must be an Executor, a Dask Client, 'auto', 'process', 'serial' or "
                 r"None, got 'threads'"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "pattern"), [c[1:] for c in EXECUTOR_CASES],
                         ids=[c[0] for c in EXECUTOR_CASES])  # fmt: skip
def test_anything_else_as_an_executor_is_refused(df, call, error, pattern):
    refuses(call, df, error, pattern)


# === 7. saved files =============================================================================
def unchanged_after(path: Path, call: Callable[[], Any], pattern: str) -> None:
    """call() raises SavedFileError naming ``path`` and matching ``pattern``; the file keeps
    its bytes."""
    before = path.read_bytes()
    with pytest.raises(SavedFileError, match=re.escape(str(path)) + ".*" + pattern):
        call()
    assert path.read_bytes() == before


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


FOREIGN = r"the file is truncated, corrupt or not written by tvbeta; write it again"


@pytest.fixture(scope="module")
def saved_comparison(tmp_path_factory) -> Path:
    """A real comparison (the fast methods) saved to a folder."""
    folder = tmp_path_factory.mktemp("comparison")
    compare_methods(returns(), ["y"], FACTORS, methods=["grid_seed", "rolling_ols"],
                    progress=False).save(folder)  # fmt: skip
    return folder


def comparison_copy(saved: Path, tmp_path: Path) -> Path:
    """The saved comparison's files and manifest (a complete run folder), in a fresh folder."""
    shutil.copytree(saved, tmp_path, dirs_exist_ok=True)
    return tmp_path


def damaged_by_the_run(folder: Path, name: str, damage: Callable[[Path], Any]) -> None:
    """Damage a file and list it at its new size, as a run that wrote a bad file would: the
    manifest check passes and the reader itself must name the file."""
    damage(folder / name)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = (folder / name).stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_saved_comparison_loads_back(saved_comparison):
    """The control: the file the cases below damage is readable as written."""
    assert list(Comparison.load(saved_comparison).tables) == ["y"]


COMPARISON_CASES = [
    ("truncated", lambda p: truncate(p), r"not valid JSON"),
    ("empty", lambda p: p.write_text(""), r"not valid JSON"),
    ("binary", lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe"), r"not UTF-8 text"),
    ("another JSON document", lambda p: p.write_text('{"format": "something else"}'),
     r"it has no 'settings' and 'series'"),
    ("a series without its table", lambda p: p.write_text(json.dumps(
        {"settings": {}, "series": {"y": {"forecasts": {}}}})), r"a series has no 'table'"),
]  # fmt: skip


@pytest.mark.parametrize(("damage", "pattern"), [c[1:] for c in COMPARISON_CASES],
                         ids=[c[0] for c in COMPARISON_CASES])  # fmt: skip
def test_a_damaged_comparison_file_is_named_and_left_alone(saved_comparison, tmp_path, damage,
                                                           pattern):  # fmt: skip
    folder = comparison_copy(saved_comparison, tmp_path)
    damaged_by_the_run(folder, "comparison.json", damage)
    unchanged_after(folder / "comparison.json", lambda: Comparison.load(folder),
                    rf"is not a readable tvbeta comparison .*{pattern}.*{FOREIGN}")  # fmt: skip


def test_a_comparison_file_changed_after_its_run_is_named(saved_comparison, tmp_path):
    """Damage after the run (the manifest lists another size): the folder is incomplete, and
    the message names the file and says to re-run."""
    folder = comparison_copy(saved_comparison, tmp_path)
    truncate(folder / "comparison.json")
    before = (folder / "comparison.json").read_bytes()
    with pytest.raises(IncompleteRunError, match=re.escape(str(folder)) + r" is not a complete "
                       r"tvbeta run: comparison.json has \d+ bytes where its manifest.json says "
                       r"\d+: it was changed after the run. Re-run"):  # fmt: skip
        Comparison.load(folder)
    assert (folder / "comparison.json").read_bytes() == before


def test_a_damaged_comparison_data_file_is_named(saved_comparison, tmp_path):
    folder = comparison_copy(saved_comparison, tmp_path)
    damaged_by_the_run(folder, "data.csv", lambda p: p.write_bytes(b"\xff\xfe\x00garbage"))
    unchanged_after(folder / "data.csv", lambda: Comparison.load(folder),
                    r"is not a readable tvbeta comparison's data \(data.csv\)")  # fmt: skip


SPEC_CASES = [
    ("truncated TOML", ".toml", lambda p: truncate(p, 0.6), r"not valid TOML"),
    ("truncated JSON", ".json", lambda p: truncate(p, 0.6), r"not valid JSON"),
    ("binary TOML", ".toml", lambda p: p.write_bytes(b"\xff\xfe\x00\x01"), r"not UTF-8 text"),
    ("JSON of a list", ".json", lambda p: p.write_text("[1, 2]"), r"it holds a list, not a table"),
    ("another TOML document", ".toml", lambda p: p.write_text('format = "other"\nK = 2\n'),
     r"not a tvbeta.KalmanSpec version 1 document"),
    ("a spec with a foreign field", ".json", lambda p: p.write_text(json.dumps(
        {**KalmanSpec(2).to_dict(), "transition_fn": "lambda"})), r"unknown spec field"),
    ("a spec whose P0 does not fit K", ".json", lambda p: p.write_text(json.dumps(
        {**KalmanSpec(2).to_dict(), "P0": [[1.0]]})), r"P0"),
]  # fmt: skip


@pytest.mark.parametrize(("suffix", "damage", "pattern"), [c[1:] for c in SPEC_CASES],
                         ids=[c[0] for c in SPEC_CASES])  # fmt: skip
def test_a_damaged_spec_file_is_named_and_left_alone(tmp_path, suffix, damage, pattern):
    path = tmp_path / f"spec{suffix}"
    KalmanSpec(2).set_intercept().save(path)
    assert KalmanSpec.load(path) == KalmanSpec(2).set_intercept()  # the control
    damage(path)
    unchanged_after(path, lambda: KalmanSpec.load(path),
                    rf"is not a readable tvbeta spec file \(.*{pattern}.*{FOREIGN}")  # fmt: skip


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory) -> Path:
    """A Bayes fit saved by BayesFit.save: the model of y on a and b with a posterior of 2 x 5
    drawn from the priors' scales (the file format does not depend on how draws were made)."""
    spec = bayes_spec(returns(), "y", FACTORS, burn=3)
    rng = np.random.default_rng(2)
    posterior = xr.Dataset(
        {"sigma_eps": (("chain", "draw"), rng.uniform(0.005, 0.02, (2, 5))),
         "sigma_beta": (("chain", "draw", "state"), rng.uniform(0.001, 0.05, (2, 5, 3)))},
        coords={"chain": [0, 1], "draw": np.arange(5), "state": list(spec.state_names)},
    )  # fmt: skip
    fit = BayesFit(tree=xr.DataTree.from_dict({"posterior": posterior}), beta=xr.Dataset(),
                   spec=spec, settings={"sampler": "none"})  # fmt: skip
    return fit.save(tmp_path_factory.mktemp("fit") / "y.nc")


def test_a_saved_bayes_fit_loads_back(saved_fit):
    loaded = BayesFit.load(saved_fit)
    np.testing.assert_array_equal(loaded.qr_draws()[1].shape, (10,))


NETCDF_CASES = [
    ("truncated", lambda p: truncate(p), r"cannot open it as NetCDF/HDF5"),
    ("empty", lambda p: p.write_bytes(b""), r"cannot open it as NetCDF/HDF5"),
    ("text", lambda p: p.write_text("not a netcdf file"), r"cannot open it as NetCDF/HDF5"),
    ("another NetCDF", lambda p: xr.Dataset({"v": ("x", [1.0, 2.0])}).to_netcdf(
        p, engine="h5netcdf"), r"it has no 'tvbeta_settings'"),
]  # fmt: skip


@pytest.mark.parametrize(("damage", "pattern"), [c[1:] for c in NETCDF_CASES],
                         ids=[c[0] for c in NETCDF_CASES])  # fmt: skip
def test_a_damaged_bayes_fit_file_is_named_and_left_alone(saved_fit, tmp_path, damage, pattern):
    path = tmp_path / "fit.nc"
    path.write_bytes(saved_fit.read_bytes())
    damage(path)
    unchanged_after(path, lambda: BayesFit.load(path),
                    rf"is not a readable tvbeta Bayes fit .*{pattern}.*{FOREIGN}")  # fmt: skip


# === 8. model files =============================================================================
BASE = """
[data]
source = "french"
start = 2012-01-01
end = 2017-03-31

[model]
targets = ["NoDur"]
factors = ["MktRF", "SMB"]
"""


def model_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.toml"
    path.write_text(text, encoding="utf-8")
    return path


MODEL_FILE_CASES = [
    ("q nonsense", 'q = "nonsense"\n',  # BASE ends in [model]
     r"\[model\] q: 'nonsense' is not allowed; use one of 'diag', 'full'"),
    ("tune 0", "[sampler]\ntune = 0", r"\[sampler\] tune: must be >= 1, got 0"),
    ("draws 0", "[sampler]\ndraws = 0", r"\[sampler\] draws: must be >= 1, got 0"),
    ("chains 0", "[sampler]\nchains = 0", r"\[sampler\] chains: must be >= 1, got 0"),
    ("target_accept 1.5", "[sampler]\ntarget_accept = 1.5",
     r"\[sampler\] target_accept: must be between 0.5 and 0.999, got 1.5"),
    ("negative prior scale", '[priors.sigma_eps]\ndist = "HalfNormal"\nsigma = -0.01',
     rf"\[priors\]: sigma of the HalfNormal prior must be a finite number > 0.*{SCALE_FIX}"),
    ("zero prior scale list", '[priors.sigma_beta]\nsigma = [0.1, 0.0, 0.1]',
     r"\[priors\]: sigma of the HalfNormal prior must be a finite number > 0"),
    ("misspelt prior parameter", "[priors.sigma_eps]\nsigmaa = 0.01",
     r"\[priors\]: HalfNormal has no parameter 'sigmaa'; did you mean 'sigma'\?"),
    ("misspelt prior setting", "[priors]\nbeta_drift_per_yr = 0.5",
     r"\[priors\]: unknown key 'beta_drift_per_yr'; did you mean 'beta_drift_per_year'\?"),
    ("initial_window 0", "[priors]\ninitial_window = 0",
     r"\[priors\]: initial_window must be a number of observed targets >= 1"),
    ("a target twice", 'targets = ["NoDur", "Hlth", "NoDur"]',
     r"\[model\] targets: lists \['NoDur'\] more than once; list each once"),
    ("methods empty", "[compare]\nmethods = []",
     r"\[compare\] methods: list one or more methods, each once"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "pattern"), [c[1:] for c in MODEL_FILE_CASES],
                         ids=[c[0] for c in MODEL_FILE_CASES])  # fmt: skip
def test_bad_model_file_settings_are_refused_naming_file_section_and_key(tmp_path, extra,
                                                                         pattern):  # fmt: skip
    if extra.startswith("targets"):
        text = BASE.replace('targets = ["NoDur"]', extra)
    else:
        text = BASE + extra + "\n"
    path = model_file(tmp_path, text)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ": " + pattern):
        load_config(path)
    assert path.read_bytes() == before


RANK_CASES = [
    ("oos_log_score", "", r"\[grid\] rank: 'oos_log_score' is a ranking for `tvbeta fit --method "
                          r"grid` only.*remove the key to compare"),
    ("loglik", '[compare]\nmethods = ["grid_seed", "rolling_ols"]\n',
     r"\[grid\] rank: 'loglik' ranks the grid as the method 'grid_loglik' does, which \[compare\] "
     r"methods leaves out: add 'grid_loglik' to methods, or remove the key"),
    ("mean_rmse", '[compare]\nmethods = ["grid_loglik"]\n',
     r"\[grid\] rank: 'mean_rmse' ranks the grid as the method 'grid_seed' does"),
]  # fmt: skip


@pytest.mark.parametrize(("rank", "compare", "pattern"), RANK_CASES,
                         ids=[c[0] for c in RANK_CASES])  # fmt: skip
def test_a_grid_rank_the_comparison_cannot_use_is_refused(tmp_path, rank, compare, pattern):
    path = model_file(tmp_path, f'{BASE}[grid]\nrank = "{rank}"\n{compare}')
    before = path.read_bytes()
    config = load_config(path)  # `tvbeta fit --method grid` uses it ...
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ": " + pattern):
        config.compare_kwargs()  # ... a comparison cannot
    assert path.read_bytes() == before


def test_a_grid_rank_a_comparison_runs_is_accepted(tmp_path):
    path = model_file(tmp_path, f'{BASE}[grid]\nrank = "loglik"\n')
    assert "grid_loglik" in load_config(path).compare_kwargs()["methods"]


def csv_model(tmp_path: Path, frequency: str | None, extra: str = "") -> Path:
    """A CSV source of 120 monthly rows; [data] frequency as given (None: read from dates)."""
    data = returns()[["y", "a", "b"]]
    data.to_csv(tmp_path / "returns.csv", index_label="Date")
    line = f'frequency = "{frequency}"\n' if frequency else ""
    text = (f'[data]\nsource = "csv"\npath = "returns.csv"\n{line}\n[model]\ntargets = ["y"]\n'
            f'factors = ["a", "b"]\n\n[compare]\nmethods = ["rolling_ols"]\n{extra}\n'
            f'[output]\nfolder = "{tmp_path / "out"}"\n')  # fmt: skip
    return model_file(tmp_path, text)


def log_scores(config_path: Path) -> pd.Series:
    config = load_config(config_path)
    result = compare_methods(config.load_data(), **config.compare_kwargs(), progress=False)
    return result.tables["y"]["log score"]


def test_data_frequency_sets_the_default_rolling_window(df):
    """The frequency reaches the comparison: 20 periods a year on these monthly rows (within a
    factor 2 of the dates' 12, so taken) makes the default rolling window three years of them,
    60 rows, as rolling_window = 60 does; without it the dates say monthly, 36 rows."""
    def scores(**kwargs) -> pd.Series:
        return compare_methods(df, ["y"], FACTORS, methods=["rolling_ols"], progress=False,
                               **kwargs).tables["y"]["log score"]  # fmt: skip

    declared = scores(bayes=BayesSettings(frequency=20.0))
    pd.testing.assert_series_equal(declared, scores(rolling_window=60))
    pd.testing.assert_series_equal(scores(), scores(rolling_window=36))
    assert declared.iloc[0] != scores().iloc[0]


def test_data_frequency_reaches_the_bayes_and_mle_model(tmp_path, df):
    """The frequency fixes the periods per year of the prior initial state, which the MLE
    shares: the model file's "monthly", 12.0 and the dates give the same MLE; 20 a year
    lengthens the default initial window from 12 rows to 20, so the MLE changes."""
    config = load_config(csv_model(tmp_path, "monthly"))
    assert config.bayes_settings().frequency == "monthly"
    runs = {
        name: compare_methods(df, ["y"], FACTORS, methods=["mle"], progress=False,
                              bayes=BayesSettings(frequency=freq)).tables["y"]["log score"]
        for name, freq in (("monthly", "monthly"), ("twelve", 12.0), ("dates", None),
                           ("twenty", 20.0))
    }  # fmt: skip
    pd.testing.assert_series_equal(runs["monthly"], runs["twelve"])
    pd.testing.assert_series_equal(runs["monthly"], runs["dates"])
    assert runs["twenty"].iloc[0] != runs["dates"].iloc[0]


@pytest.mark.parametrize("frequency", ["quarterly", "weekly"])
def test_a_data_frequency_that_contradicts_the_dates_is_refused(tmp_path, frequency):
    """A fresh user wrote frequency = "weekly" for aggregate = "weekly" on daily files: the
    priors per year were then scaled for weeks, silently. The model file's frequency must be
    within a factor 2 of the dates' spacing (here monthly rows); the error names the key and
    both frequencies and points to aggregate."""
    config = load_config(csv_model(tmp_path, frequency))
    with pytest.raises(ConfigError, match=rf"\[data\] frequency: frequency '{frequency}' .*"
                       r"contradicts the dates, 3\d day\(s\) apart \(median: 12 a "
                       r"year\).*aggregate = 'weekly'"):  # fmt: skip
        config.load_data()


# === 9. the command line ========================================================================
def run(capsys, *argv: Any) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


TINY = Path(__file__).resolve().parent / "fixtures" / "tiny.toml"


def test_cli_a_target_given_twice_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "compare", TINY, "--target", "NoDur", "--target", "NoDur",
                       "--output", tmp_path)  # fmt: skip
    assert code == 2 and "--target 'NoDur' is given more than once: give each target once" in err


@pytest.mark.parametrize("option", ["--tune", "--chains", "--draws", "--cores"])
def test_cli_a_sampler_count_below_one_is_a_usage_error(capsys, option):
    code, _, err = run(capsys, "run", TINY, option, "0")
    assert code == 2 and f"argument {option}: expected an integer >= 1, got '0'" in err


def test_cli_compare_refuses_a_grid_rank_it_cannot_use(capsys, tmp_path):
    path = model_file(tmp_path, f'{BASE}[grid]\nrank = "oos_log_score"\n')
    before = path.read_bytes()
    code, _, err = run(capsys, "compare", path, "--output", tmp_path / "out")
    assert path.read_bytes() == before
    assert code == 2 and "[grid] rank: 'oos_log_score' is a ranking for `tvbeta fit" in err
    assert not (tmp_path / "out" / "comparison.json").exists()


def test_cli_fit_grid_keeps_the_row_of_its_rank(capsys, tmp_path):
    """[grid] rank decides `tvbeta fit --method grid`: the kept row is the grid's best by that
    ranking (the reference: the grid's own table sorted by that column)."""
    best = {}
    for rank in ("mean_rmse", "loglik"):
        path = model_file(tmp_path, f'{BASE}[grid]\nrank = "{rank}"\n')
        code, _, _ = run(capsys, "fit", path, "--method", "grid", "--output", tmp_path / rank)
        grid = pd.read_csv(tmp_path / rank / "fit_grid" / "NoDur.grid.csv")
        column, ascending = {"mean_rmse": ("Mean RMSE", True),
                             "loglik": ("Cumulative Log-Likelihood", False)}[rank]  # fmt: skip
        assert code == 0
        best[rank] = grid.iloc[0]["Model Name"]
        assert best[rank] == grid.sort_values(column, ascending=ascending).iloc[0]["Model Name"]
    assert best["mean_rmse"] != best["loglik"]


def test_cli_bad_prior_exits_2_before_loading_data(capsys, tmp_path):
    path = model_file(tmp_path, BASE + '[priors.sigma_eps]\ndist = "HalfNormal"\nsigma = 0\n')
    before = path.read_bytes()
    code, _, err = run(capsys, "fit", path, "--method", "bayes", "--output", tmp_path / "out")
    assert path.read_bytes() == before
    assert code == 2 and "sigma of the HalfNormal prior must be a finite number > 0" in err


def test_cli_report_names_a_truncated_comparison(capsys, saved_comparison, tmp_path):
    folder = comparison_copy(saved_comparison, tmp_path)
    damaged_by_the_run(folder, "comparison.json", truncate)
    before = (folder / "comparison.json").read_bytes()
    code, _, err = run(capsys, "report", folder)
    assert code == 2 and f"{folder / 'comparison.json'} is not a readable tvbeta comparison" in err
    assert "truncated, corrupt or not written by tvbeta" in err
    assert (folder / "comparison.json").read_bytes() == before


def test_cli_warns_about_data_on_an_extreme_scale(capsys, tmp_path):
    path = csv_model(tmp_path, None)
    csv = tmp_path / "returns.csv"
    data = pd.read_csv(csv, index_col=0)
    (data * 1e9).to_csv(csv)
    before = csv.read_bytes()
    code, _, err = run(capsys, "compare", path, "--output", tmp_path / "out")
    assert code == 0 and "tvbeta: warning" in err and "rescale the column" in err
    assert csv.read_bytes() == before


# =================================================================================================
# The seed's scalar MLE setters (issue 10, section 6; branch mle): the lower bound, and data that
# are not decimal returns. Needs: warnings, numpy, pandas, run_kalman_grid_search, KalmanSpec,
# ReturnUnitsWarning, ScalarMLEWarning, set_R_from_mle.
# =================================================================================================
# The seed's bounds (../shared/seed/seed_api.md): q in [1e-8, 10], r in [1e-6, 100], on log
# scales from 1e-2; the value stays the seed's, the warning is advice. Each warning must point
# at the line that called tvbeta (the filename of the warning is this file).
def _daily(seed: int, noise: float, scale: float = 1.0, dates: bool = True) -> pd.DataFrame:
    """250 daily decimal returns x ~ N(3e-4, 0.012), y = 0.99 x + N(0, noise), times scale."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0003, 0.012, 250)
    y = 0.99 * x + rng.normal(0.0, noise, 250)
    index = pd.bdate_range("2021-01-04", periods=250) if dates else pd.RangeIndex(250)
    return pd.DataFrame({"fund": y * scale, "mkt": x * scale}, index=index)


def _caught(call):
    """(result, warnings raised by call()), every occurrence recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, caught


def test_scalar_q_mle_on_the_lower_bound_warns_that_betas_barely_move():
    """With the seed's default R = 0.01 (a 10% daily sd) the likelihood wants no drift: q
    stops at the seed's lower bound 1e-8 and the warning says what that means."""
    df = _daily(1, 0.002)
    before = df.copy()
    spec, caught = _caught(lambda: KalmanSpec(1).set_Q_from_mle(df, "fund", ["mkt"]))
    assert spec.q_scalar == 1e-8
    (w,) = [w for w in caught if issubclass(w.category, ScalarMLEWarning)]
    message = str(w.message)
    assert "search for q stopped at its lower bound 1e-08" in message
    assert "expanding-window OLS" in message and "R held at the spec's current value" in message
    assert "tvbeta.fit_mle(df, target_col, factor_cols)" in message
    assert w.filename == __file__
    pd.testing.assert_frame_equal(df, before)


def test_scalar_r_mle_on_the_lower_bound_warns_of_a_near_exact_fit():
    """y = 0.99 x + noise of sd 1e-5: the residual variance 1e-10 is far below the seed's lower
    bound 1e-6 for r, which stops the search there."""
    df = _daily(2, 1e-5)
    before = df.copy()
    spec = KalmanSpec(1).set_Q(1e-10)
    fitted, caught = _caught(lambda: set_R_from_mle(spec, df, "fund", ["mkt"]))
    assert fitted.r_scalar == 1e-6
    (w,) = [w for w in caught if issubclass(w.category, ScalarMLEWarning)]
    message = str(w.message)
    assert "search for r stopped at its lower bound 1e-06" in message
    assert "near-exact fit" in message and "tvbeta.fit_mle" in message
    assert w.filename == __file__
    pd.testing.assert_frame_equal(df, before)


def test_grid_search_warns_of_the_lower_bound_at_the_users_call():
    """The grid's own copy of the scalar search (its "const" Q, with the seed's R = 0.01)."""
    df = _daily(3, 0.002)
    before = df.copy()
    _, caught = _caught(lambda: run_kalman_grid_search(df, "fund", ["mkt"], KalmanSpec(1)))
    bound = [w for w in caught if "lower bound 1e-08" in str(w.message)]
    assert bound and all(w.filename == __file__ for w in bound)
    pd.testing.assert_frame_equal(df, before)


def test_percent_returns_warn_that_the_seeds_bounds_assume_decimals():
    """Daily returns times 100: a robust sd of ~1.2 per day, where decimal returns at an
    annualised volatility of 200% vary by at most 2 sqrt(1 / 365.25) = 0.105. The same data in
    decimals raise no such warning; the value found is kept."""
    decimal = _daily(4, 0.002)
    percent = decimal * 100.0
    before = percent.copy()
    spec = KalmanSpec(1).set_R(1.0)
    _, caught = _caught(lambda: spec.set_Q_from_mle(percent, "fund", ["mkt"]))
    (w,) = [w for w in caught if issubclass(w.category, ReturnUnitsWarning)]
    message = str(w.message)
    assert "do not look like decimal returns" in message
    assert "the target 'fund' (1.2" in message and "mkt (1.2" in message
    assert "a period of 1 day(s)" in message and "percent (divide by 100)" in message
    assert "q in [1e-8, 10], r in [1e-6, 100]" in message
    assert "index levels" not in message  # percent returns go below 0
    assert "mixes units" not in message  # both series are in percent
    assert w.filename == __file__
    pd.testing.assert_frame_equal(percent, before)
    _, clean = _caught(lambda: spec.set_Q_from_mle(decimal, "fund", ["mkt"]))
    assert not [w for w in clean if issubclass(w.category, ReturnUnitsWarning)]


def test_fit_mle_and_bayes_spec_warn_once_on_a_fund_in_percent_beside_decimal_factors():
    """A fresh user passed a table whose fund column was in percent (x 100) and the factors in
    decimals: fit_mle gave betas of 59 without a word. The public fits check the units of the
    table they are given, once per fit, naming the target only; decimal data stay quiet."""
    decimal = _daily(6, 0.002)
    percent = decimal.assign(fund=decimal["fund"] * 100.0)
    for call in (lambda df: fit_mle(df, "fund", ["mkt"]),
                 lambda df: bayes_spec(df, "fund", ["mkt"])):  # fmt: skip
        _, caught = _caught(partial(call, percent))
        (w,) = [w for w in caught if issubclass(w.category, ReturnUnitsWarning)]
        assert "the target 'fund' (1.2" in str(w.message) and "mkt" not in str(w.message)
        assert "the table mixes units (e.g. a percent fund beside decimal factors)" in str(
            w.message)  # fmt: skip
        assert w.filename == __file__
        _, clean = _caught(partial(call, decimal))
        assert not [w for w in clean if issubclass(w.category, ReturnUnitsWarning)]


def test_prices_warn_that_they_are_levels_not_percent_returns():
    """A fresh user fitted NAV levels (about 100, never below 0) and read "They look like
    percent": dividing prices by 100 mends nothing. Levels are named as such, with the fix."""
    decimal = _daily(4, 0.002)
    prices = decimal.copy()
    prices["fund"] = 100.0 * np.cumprod(1.0 + decimal["fund"].to_numpy())
    spec = KalmanSpec(1).set_R(1.0)
    _, caught = _caught(lambda: spec.set_Q_from_mle(prices, "fund", ["mkt"]))
    (w,) = [w for w in caught if issubclass(w.category, ReturnUnitsWarning)]
    assert ("the target 'fund': never below 0, as prices and index levels are; turn those into "
            "returns (p_t / p_(t-1) - 1).") in str(w.message)


def test_basis_points_without_dates_warn_and_say_a_year_was_assumed():
    """Returns in basis points (x 10,000) on a plain row index: the rule assumes yearly rows
    (the most lenient bound, 2) and still flags them."""
    df = _daily(5, 0.002, scale=1e4, dates=False)
    before = df.copy()
    _, caught = _caught(lambda: KalmanSpec(1).set_R_from_mle(df, "fund", ["mkt"]))
    (w,) = [w for w in caught if issubclass(w.category, ReturnUnitsWarning)]
    message = str(w.message)
    assert "yearly rows (the index has no dates; the most lenient case)" in message
    assert "basis points (divide by 10,000)" in message
    assert w.filename == __file__
    pd.testing.assert_frame_equal(df, before)


# ---------------------------------------------------------------------------------------------
# Issue 10, sections 3 and 6: covariances that are not positive semi-definite, and steps whose
# innovation variance is zero or overflows (the message names the real cause).
# ---------------------------------------------------------------------------------------------

_N, _K = 25, 2
#: non-negative variances, correlation 2: eigenvalues 3 and -1
_INDEFINITE = np.array([[1.0, 2.0], [2.0, 1.0]])


def _model(**changes) -> dict[str, np.ndarray]:
    """A valid model (y and Z drawn once, Q = 1e-4 I, R = 1e-2, P0 = I) with some arrays
    replaced."""
    rng = np.random.default_rng(10)
    model = dict(
        y=rng.normal(0.0, 0.1, _N), Z=rng.normal(0.0, 1.0, (_N, _K)), T=np.eye(_K)[None],
        Q=1e-4 * np.eye(_K)[None], R=np.array([1e-2]), a0=np.zeros(_K), P0=np.eye(_K),
    )  # fmt: skip
    return {**model, **changes}


def _assert_refused(call, kwargs, error, message) -> None:
    """call(**kwargs) raises `error` matching `message`, and no argument was modified."""
    before = copy.deepcopy(kwargs)
    with pytest.raises(error, match=re.escape(message)):
        call(**kwargs)
    for name, value in before.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(kwargs[name], value)
        else:
            np.testing.assert_array_equal(kwargs[name], value, err_msg=name)


def _per_step_q_bad_at(row: int) -> np.ndarray:
    Q = np.repeat(1e-4 * np.eye(_K)[None], _N, axis=0)
    Q[row] = _INDEFINITE
    return Q


@pytest.mark.parametrize(
    ("call", "changes", "message"),
    [
        (kalman_loglik, dict(Q=_INDEFINITE[None]), "Q is not positive semi-definite (time row 0)"),
        (kalman_filter, dict(Q=_per_step_q_bad_at(7)),
         "Q is not positive semi-definite (time row 7)"),
        (loglik_vjp, dict(Q=np.array([[[1.0, 1.0], [1.0, 0.0]]])),
         "Q is not positive semi-definite (time row 0)"),
        (kalman_loglik, dict(P0=_INDEFINITE), "P0 is not positive semi-definite"),
        (kalman_filter, dict(P0=100.0 * _INDEFINITE), "build P0 as L L'"),
    ],
)  # fmt: skip
def test_covariance_that_is_not_psd_is_refused_up_front(call, changes, message):
    # diagonals >= 0 and exactly symmetric: only the PSD check can catch these
    _assert_refused(call, _model(**changes), KalmanInputError, message)


def test_model_with_a_q_that_is_not_psd_is_refused_when_run():
    df = pd.DataFrame(
        np.random.default_rng(3).normal(0.0, 0.02, (40, 3)), columns=["fund", "f1", "f2"],
        index=pd.date_range("2020-01-03", periods=40, freq="W-FRI"),
    )  # fmt: skip
    engine = tvbeta.KalmanEngine(tvbeta.KalmanSpec(K=2).set_Q(1e-4 * _INDEFINITE))
    _assert_refused(
        engine.run, dict(df=df, target_col="fund", factor_cols=["f1", "f2"]), KalmanInputError,
        "Q is not positive semi-definite (time row 0)",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "changes", "message"),
    [
        # R = 0 and a design row loading on nothing: F_t = 0 for real
        (kalman_loglik, dict(R=np.array([0.0]), Z=np.zeros((_N, _K))),
         "F_t = z_t'P z_t + R_t = 0 at step 0: R_t = 0 and the predicted state covariance gives "
         "z_t no variance"),
        # R = 0 and |z| = 1e-170: z'P z underflows
        (kalman_filter, dict(R=np.array([0.0]), Z=np.full((_N, _K), 1e-170)),
         "underflowed to 0 at step 0: R_t = 0 and the data are too small for double precision"),
        # price levels of 1e160: F overflows
        (kalman_loglik, dict(Z=np.full((_N, _K), 1e160)),
         "the log-likelihood term at step 0 is not finite (F_t = inf, v_t = -0.11): the data's "
         "scale overflows double precision"),
        # a target of 1e200: v_t^2 overflows
        (loglik_vjp, dict(y=np.full(_N, 1e200)), "the data's scale overflows double precision"),
    ],
)  # fmt: skip
def test_failing_step_names_its_cause(call, changes, message):
    _assert_refused(call, _model(**changes), KalmanNumericalError, message)
