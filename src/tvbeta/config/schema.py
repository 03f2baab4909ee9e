"""The model file's sections as frozen dataclasses; `tvbeta.config.parse` fills them.

See the package docstring for the schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from tvbeta.config.fields import ConfigError, Where
from tvbeta.config.sources import COMMON_DATA_KEYS, SOURCE_KEYS, load_data
from tvbeta.data.validate import repeated
from tvbeta.evaluate.settings import DEFAULT_METHODS, METHODS  # the comparison owns them
from tvbeta.nuts import SamplerSettings
from tvbeta.outputs import write_text

__all__ = [
    "DEFAULT_METHODS", "METHODS", "CompareConfig", "DataConfig", "GridConfig", "ModelConfig",
    "OutputConfig", "RunConfig", "SamplerConfig", "SplitConfig",
]  # fmt: skip


@dataclass(frozen=True)
class DataConfig:
    """[data]: where the returns come from (paths already resolved against the model file)."""

    source: str
    path: Path | None = None
    data_dir: Path | None = None
    start: str | None = None
    end: str | None = None
    frequency: str | None = None
    aggregate: str | None = None
    additive_cols: tuple[str, ...] = ()
    excess: bool = True
    fund_csv: Path | None = None
    factor_csv: Path | None = None
    units: Literal["decimal", "percent"] = "decimal"
    factor_units: Literal["decimal", "percent"] | None = None  # None: as ``units``
    date_format: str | None = None  # None: ISO 8601 (`tvbeta.data.io.DATE_FORMATS_DOC`)
    factor_date_format: str | None = None  # None: as ``date_format``

    @property
    def model_frequency(self) -> str | None:
        """Frequency of the rows the model sees (after aggregation); None: infer from dates."""
        return self.aggregate or self.frequency


@dataclass(frozen=True)
class ModelConfig:
    """[model]: targets regressed one at a time on the same factors."""

    targets: tuple[str, ...]
    factors: tuple[str, ...]
    intercept: bool = True
    q: str = "diag"
    burn: int | None = None
    noise: str = "constant"  # of `tvbeta fit`; a comparison runs the variants its methods name
    shrinkage: str = "none"  # of `tvbeta fit --method bayes`, as noise
    betas: str = "random_walk"  # of `tvbeta fit --method mle or bayes`, as noise


@dataclass(frozen=True)
class SamplerConfig(SamplerSettings):
    """[sampler]: the NUTS settings of the Bayesian fits, and the seed of every random choice."""

    seed: int = 0  # checked by the file's reader and by the fits

    @property
    def nuts(self) -> SamplerSettings:
        """The NUTS settings without the seed."""
        return SamplerSettings(**{f.name: getattr(self, f.name) for f in fields(SamplerSettings)})


# The comparison method that ranks the grid as each [grid] rank does (oos_log_score: none).
RANK_METHODS: dict[str, str] = {"mean_rmse": "grid_seed", "loglik": "grid_loglik"}


@dataclass(frozen=True)
class GridConfig:
    """[grid]: the seed's grid search.

    ``rank`` picks the best row for ``tvbeta fit`` (None: the seed's "mean_rmse"). A comparison
    ranks the grid as its methods say (``RANK_METHODS``), so there a rank must name one of them
    (`RunConfig.compare_kwargs`).
    """

    try_both_intercepts: bool = True
    rank: str | None = None

    @property
    def fit_rank(self) -> str:
        """The ranking `tvbeta fit --method grid` keeps the best row of."""
        return self.rank or "mean_rmse"


@dataclass(frozen=True)
class SplitConfig:
    """[split]: the last rows held out; a float in (0, 1) is a fraction, an int a count."""

    test_size: int | float = 0.3


@dataclass(frozen=True)
class CompareConfig:
    """[compare]: the methods compared out of sample and their settings."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    rolling_window: int | None = None  # of the rolling OLS, in periods
    lfo: bool = True  # PSIS-LFO-CV of the Bayes fits over the test span (`tvbeta.evaluate.lfo`)
    lfo_threshold: float = 0.7  # refit when the Pareto k of the importance ratios exceeds it
    lfo_train: float | None = None  # training-span LFO of every Bayes variant from this fraction
    workers: int | None = None  # `tvbeta compare`: a local Dask cluster of this many processes


@dataclass(frozen=True)
class OutputConfig:
    """[output]: the results folder, relative to the working directory."""

    folder: Path


@dataclass(frozen=True)
class RunConfig:
    """A validated model file. Change it with `override` or `dataclasses.replace`."""

    path: Path
    data: DataConfig
    model: ModelConfig
    output: OutputConfig
    priors: Mapping[str, Any] = field(default_factory=dict, hash=False)
    sampler: SamplerConfig = SamplerConfig()
    grid: GridConfig = GridConfig()
    split: SplitConfig = SplitConfig()
    compare: CompareConfig = CompareConfig()
    description: str = ""
    targets_from_command_line: bool = False
    """The targets came from ``--target`` (`override`): errors about them name that option."""

    @property
    def name(self) -> str:
        """The model file's stem, e.g. "french_industries"."""
        return self.path.stem

    def load_data(self) -> pd.DataFrame:
        """Load the data: columns ``[*targets, *factors]``; ConfigError names any problem."""
        return load_data(self)

    def override(self, *, seed: int | None = None, output: str | Path | None = None,
                 targets: tuple[str, ...] | None = None, **sampler: Any) -> RunConfig:  # fmt: skip
        """Return a copy with command-line overrides; None leaves a setting as the file has it.

        ``sampler`` holds [sampler] fields (draws, tune, chains, ...); None values are skipped.
        """
        new_sampler = {k: v for k, v in sampler.items() if v is not None}
        if seed is not None:
            new_sampler["seed"] = seed
        out = replace(self, sampler=replace(self.sampler, **new_sampler))
        if output is not None:
            out = replace(out, output=OutputConfig(Path(output)))
        if targets:
            twice = repeated(targets)
            if twice:
                raise ConfigError(f"--target {twice[0]!r} is given more than once: give each "
                                  "target once")  # fmt: skip
            both = sorted(set(targets) & set(self.model.factors))
            if both:
                raise ConfigError(f"{self.path}: [model] factors include {both}: a target "
                                  "cannot also be a factor; choose another target")  # fmt: skip
            out = replace(out, model=replace(out.model, targets=tuple(targets)),
                          targets_from_command_line=True)  # fmt: skip
        return out

    def bayes_settings(self) -> Any:
        """`tvbeta.evaluate.settings.BayesSettings` from [sampler], [priors] and [model] q."""
        from tvbeta.evaluate.settings import BayesSettings

        lfo = self.compare.lfo_threshold if self.compare.lfo else None
        return BayesSettings(nuts=self.sampler.nuts, q=self.model.q,
                             priors=dict(self.priors) or None, lfo_threshold=lfo,
                             frequency=self.data.model_frequency,
                             lfo_train=self.compare.lfo_train)  # fmt: skip

    def grid_settings(self) -> Any:
        """`tvbeta.evaluate.settings.GridSettings` from [grid]."""
        from tvbeta.evaluate.settings import GridSettings

        return GridSettings(try_both_intercepts=self.grid.try_both_intercepts)

    def compare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `tvbeta.evaluate.compare.compare_methods` after ``data``.

        ``compare_methods(config.load_data(), **config.compare_kwargs())`` runs the file's
        comparison.

        Raises
        ------
        ConfigError
            [grid] rank names a ranking the comparison does not run: "oos_log_score" (no
            comparison method ranks the grid that way), or one whose method (`RANK_METHODS`)
            [compare] methods leaves out.
        """
        rank = self.grid.rank
        if rank is not None and RANK_METHODS.get(rank) not in self.compare.methods:
            where = Where(self.path, "grid")
            if rank not in RANK_METHODS:
                raise where.error(
                    f"{rank!r} is a ranking for `tvbeta fit --method grid` only: a comparison "
                    "ranks the grid as its methods do (grid_seed: in-sample mean RMSE, "
                    "grid_loglik: log-likelihood) and scores every method on the held-out rows "
                    "itself; remove the key to compare (or keep it in a model file for fit)",
                    "rank",
                )
            raise where.error(
                f"{rank!r} ranks the grid as the method {RANK_METHODS[rank]!r} does, which "
                f"[compare] methods leaves out: add {RANK_METHODS[rank]!r} to methods, or remove "
                "the key", "rank")  # fmt: skip
        m = self.model
        return dict(targets=m.targets, factors=m.factors, intercept=m.intercept,
                    test_size=self.split.test_size, burn=m.burn, methods=self.compare.methods,
                    bayes=self.bayes_settings(), grid=self.grid_settings(),
                    rolling_window=self.compare.rolling_window, seed=self.sampler.seed)  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Write every setting (as used, overrides included) to a TOML model file."""
        import tomli_w

        header = f"# the settings used: {self.path} with any command-line overrides\n"
        return write_text(path, header + tomli_w.dumps(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        """Plain TOML-ready dict of every setting (None dropped, paths as strings)."""
        out: dict[str, Any] = {"description": self.description} if self.description else {}
        for name in ("data", "model", "sampler", "grid", "split", "compare", "output"):
            section = dataclasses.asdict(getattr(self, name))
            out[name] = {k: _plain(v) for k, v in section.items() if v is not None}
        used = (*COMMON_DATA_KEYS, *SOURCE_KEYS[self.data.source])  # the others are errors
        out["data"] = {k: v for k, v in out["data"].items() if k in used and v != []}
        if self.priors:
            out["priors"] = dict(self.priors)
        return out


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) \
        else value  # fmt: skip
