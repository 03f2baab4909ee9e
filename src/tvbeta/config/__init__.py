"""Model files: TOML files that say which data, which model and which settings to run.

``load_config(path) -> RunConfig`` reads and checks a model file; ``RunConfig.load_data()``
loads its data. Every problem raises `ConfigError` (a ``ValueError``) whose message names the
file, the section and key, and what to do.

Schema (sections other than [data] and [model] are optional; a top-level ``description``
string is allowed)::

    [data]
    source = "french"      # "french" (built in, monthly) | "seed" (the seed's weekly ETFs from
                           # ../shared/data) | "csv" (one file) | "files" (a fund file and a
                           # factor file) | "nile" (statsmodels' annual Nile flow)
    start = "1992-01-01"   # optional, inclusive (TOML dates work too)
    end = "2017-03-31"     # optional, inclusive
    frequency = "monthly"  # rows' frequency; fixed for french/seed/nile, optional for csv and
                           # files (else read from the dates): the periods per year of the
                           # Bayes priors, of the prior initial state (Bayes, MLE) and of the
                           # default rolling OLS window (three years)
    excess = true          # french: industries and portfolios minus RF (default true)
    data_dir = "..."       # seed: folder of the seed's CSVs, relative to the model file
    path = "returns.csv"   # csv: relative to the model file; dates first, decimal returns
    aggregate = "weekly"   # csv, files: daily -> weekly (W-FRI): returns compound ...
    additive_cols = []     # csv: ... and these columns (e.g. yield changes) are summed
    fund_csv = "fund.csv"  # files: relative to the model file; dates first, one column per
                           # target (several funds: one column each; an empty cell is missing)
    factor_csv = "f.csv"   # files: dates first, the factors' columns. Read by
                           # tvbeta.data.load_funds_and_factors, each target a fund column: the
                           # factor dates within the fund file's, a date the fund file lacks kept
                           # as a missing return; its DataWarnings name the dropped dates. With
                           # aggregate each file compounds its own days to weeks (a week with an
                           # empty cell missing), and start/end pick weeks by their Friday
    units = "decimal"      # files: "decimal" (0.01 = 1%) | "percent" (both files, divided by 100)
    factor_units = "percent"  # files, optional: the factor file's units when they differ
    date_format = "%m/%d/%Y"  # csv, files, optional: the dates' strftime format (default
                           # ISO 1995-01-31; a format without a day is the month's last day)
    factor_date_format = "%Y%m"  # files, optional: the factor file's, when it differs

    [model]
    targets = ["NoDur"]    # each target is fitted on its own, on the same factors; with
                           # source = "files" it may be left out: every column of fund_csv
    factors = ["MktRF"]    # may be empty only with intercept = true (a local level)
    intercept = true
    q = "diag"             # "diag" | "full" state noise covariance
    noise = "constant"     # "constant" | "volatility" (R_t = sigma_eps^2 h_t^gamma) for `fit`;
                           # a comparison runs the variants [compare] methods name
    shrinkage = "none"     # "none" | "horseshoe" (prior of the drift sds; q = "diag") for
                           # `fit --method bayes`; a comparison's variant is bayes_shrink
    betas = "random_walk"  # "random_walk" | "mean_reverting" (to long-run means mu) for
                           # `fit --method mle/bayes`; a comparison's variants are mle_mr,
                           # bayes_mr (and mle_vol_mr, bayes_vol_mr with a volatility-scaled R_t)
    burn = 12              # optional: leading observed steps left out of the likelihood

    [priors]               # passed to tvbeta.estimate.bayes.priors.Priors.from_dict
    [sampler]              # draws, tune, chains, cores, target_accept, seed, sampler, n_paths
    [grid]                 # try_both_intercepts, rank ("mean_rmse" | "loglik" | "oos_log_score":
                           # the row `fit --method grid` keeps; default "mean_rmse". `compare`
                           # ranks the grid as its methods do, so there rank must be
                           # "mean_rmse" with grid_seed or "loglik" with grid_loglik listed)
    [split]                # test_size: fraction in (0, 1) or a number of rows
    [compare]              # methods (subset of METHODS), rolling_window (periods), lfo (bool,
                           # PSIS-LFO-CV of the Bayes fits, default true), lfo_threshold (0.7),
                           # lfo_train (optional fraction, e.g. 0.5: every Bayes variant's
                           # PSIS-LFO within the training rows, from that fraction on),
                           # workers (optional: run/compare on a local Dask cluster of that
                           # many worker processes, as --workers N)
    [output]               # folder, relative to the working directory
"""

from tvbeta.config import schema
from tvbeta.config.fields import ConfigError
from tvbeta.config.parse import load_config
from tvbeta.config.schema import *  # noqa: F403 (the sections' dataclasses and METHODS)
from tvbeta.config.sources import SOURCES

__all__ = ["SOURCES", "ConfigError", "load_config", *schema.__all__]
