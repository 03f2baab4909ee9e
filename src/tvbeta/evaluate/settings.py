"""Say what a method comparison runs: its methods, Bayes and grid settings, train/test split.

The settings of `compare_methods` (and of model files, which build them): frozen dataclasses,
validated when made, recorded with every comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tvbeta.data.validate import repeated
from tvbeta.nuts import SamplerSettings

if TYPE_CHECKING:
    from tvbeta.estimate.bayes.priors import Priors

VARIANTS: dict[str, dict[str, str]] = {
    "": {},
    "_vol": {"noise": "volatility"},
    "_shrink": {"shrinkage": "horseshoe"},
    "_mr": {"betas": "mean_reverting"},
    "_vol_mr": {"noise": "volatility", "betas": "mean_reverting"},
}
"""The model variants a comparison fits: method suffix -> model options of
`BayesSpec.from_design` (``bayes`` + suffix is the posterior, ``mle`` + suffix its MLE).
``_vol``: a volatility-scaled R_t = sigma_eps^2 h_t^gamma (`tvbeta.model.volatility`);
``_shrink``: the horseshoe prior of the drift sds (`horseshoe_sigma_beta`); ``_mr``:
mean-reverting betas (`tvbeta.model.reversion`; phi estimated per state); ``_vol_mr``: both
the volatility-scaled R_t and mean-reverting betas."""
PRIOR_OPTIONS = frozenset({"shrinkage"})
"""Model options that change only the prior: a variant with one has no MLE (a prior has no
maximum likelihood; the plain ``mle`` is its plug-in peer)."""
MLE_VARIANTS = tuple("mle" + s for s, o in VARIANTS.items() if not PRIOR_OPTIONS & set(o))
"""The MLE methods, one per variant without a prior option."""
BAYES_VARIANTS = tuple("bayes" + s for s in VARIANTS)
"""The Bayes methods ``bayes_stacked`` weighs (at least two of them must run)."""
METHODS = ("grid_seed", "grid_loglik", *MLE_VARIANTS, *BAYES_VARIANTS, "bayes_stacked",
           "rolling_ols")
"""Every method a comparison knows, in the order of its tables (`VARIANTS`); ``bayes_stacked``:
the Bayes variants' predictives stacked with weights from the training span."""
DEFAULT_METHODS = ("grid_seed", "grid_loglik", "mle", "bayes", "rolling_ols")
"""The methods run when none are named."""
REFERENCE = "bayes"
LFO_STEP = "lfo"
"""The step after the methods: leave-future-out cross-validation of the Bayes fit."""


@dataclass(frozen=True)
class BayesSettings:
    """The ``bayes`` method's model and NUTS settings (see `tvbeta.estimate.bayes.fit_bayes`).

    ``q``, ``priors`` and ``frequency`` (periods per year, or a name such as "weekly"; None:
    from the dates) define the model that ``mle`` maximises too; `check` runs before any fit.
    ``priors`` serve every variant; a sampled index half-life (``index_half_life_sd``) those
    with a volatility-scaled R (`variant_priors`).
    """

    nuts: SamplerSettings = SamplerSettings()
    q: str = "diag"
    priors: dict[str, Any] | None = None
    n_predictive: int = 400  # posterior draws in the predictive mixture
    lfo_threshold: float | None = 0.7  # PSIS-LFO-CV refit threshold (`evaluate.lfo`); None: no LFO
    frequency: str | float | None = None
    lfo_train: float | None = None
    """Training-span PSIS-LFO of every Bayes variant: the fraction of the training rows its
    first posterior is fitted on; the rest of the training rows are scored one step ahead
    (`evaluate.lfo.lfo_cv`, refit threshold ``lfo_threshold`` or 0.7). None: not run (each
    variant costs one more fit, and a refit per high Pareto k)."""

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as one flat JSON-ready dict, as comparisons record them."""
        return {**asdict(self.nuts), **{f.name: getattr(self, f.name) for f in fields(self)
                                        if f.name != "nuts"}}  # fmt: skip

    @cached_property
    def parsed_priors(self) -> Priors:
        """Return ``priors`` as `Priors`, parsed once and passed down to every fit.

        Raises
        ------
        ValueError, TypeError
            An unknown prior setting or a bad value (`Priors.from_dict` names it).
        """
        from tvbeta.estimate.bayes.priors import Priors

        return Priors.from_dict(self.priors)

    def variant_priors(self, options: Mapping[str, Any]) -> Priors:
        """Return the priors of the variant with model ``options`` (`VARIANTS`' values).

        `parsed_priors`, with ``index_half_life_sd`` set to 0 for a variant without a
        volatility index (its model has no half-life to sample, and would refuse one).
        """
        priors = self.parsed_priors
        if options.get("noise") == "volatility":
            return priors
        return replace(priors, index_half_life_sd=0.0)

    def check(self, methods: Sequence[str]) -> None:
        """Refuse settings the given methods cannot run with (model: mle*, bayes*; NUTS: bayes*).

        Raises
        ------
        ValueError, TypeError
        """
        if not {*MLE_VARIANTS, *BAYES_VARIANTS} & set(methods):
            return
        from tvbeta.estimate.mle import check_q_form

        check_q_form(self.q)
        from tvbeta.estimate.bayes.model import check_shrinkage
        from tvbeta.estimate.bayes.priors import periods_per_year

        self.parsed_priors  # noqa: B018 (parsed here, to raise before anything is fitted)
        for suffix, options in VARIANTS.items():
            if "bayes" + suffix in methods and "shrinkage" in options:
                try:
                    check_shrinkage(options["shrinkage"], self.q, self.parsed_priors)
                except ValueError as err:
                    raise ValueError(f"method {'bayes' + suffix!r}: {err}") from err
        if self.frequency is not None:
            periods_per_year(None, self.frequency)
        if not set(BAYES_VARIANTS) & set(methods):
            return
        if not isinstance(self.nuts, SamplerSettings):
            raise TypeError(f"nuts must be a SamplerSettings, got {type(self.nuts).__name__}")
        if isinstance(self.n_predictive, bool) or not isinstance(self.n_predictive, int) \
                or self.n_predictive < 1:  # fmt: skip
            raise ValueError(f"n_predictive must be an integer >= 1 (posterior draws in the "
                             f"predictive mixture, e.g. 400), got {self.n_predictive!r}")
        if self.lfo_threshold is not None:
            from tvbeta.evaluate.lfo import check_threshold

            check_threshold(self.lfo_threshold, "lfo_threshold")
        from tvbeta.evaluate.lfo import MIN_PSIS_DRAWS

        n_draws = self.nuts.draws * self.nuts.chains
        smoothed = self.lfo_threshold != 0  # exact LFO (threshold 0) never smooths
        psis_users = [m for m in ("bayes_stacked",) if m in methods]
        psis_users += ["lfo"] * (self.lfo_threshold is not None and smoothed and "bayes" in methods)
        psis_users += ["lfo_train"] * (self.lfo_train is not None and smoothed)
        if psis_users and n_draws < MIN_PSIS_DRAWS:
            raise ValueError(
                f"{', '.join(psis_users)} need(s) at least {MIN_PSIS_DRAWS} posterior draws in "
                f"all (Pareto smoothing fits its tail to a fifth of them), got chains x draws = "
                f"{self.nuts.chains} x {self.nuts.draws} = {n_draws}: sample more draws")
        if self.lfo_train is not None and (isinstance(self.lfo_train, bool)
                                           or not 0.0 < self.lfo_train < 1.0):  # fmt: skip
            raise ValueError(f"lfo_train must be a fraction in (0, 1) of the training rows "
                             f"(e.g. 0.5) or None, got {self.lfo_train!r}")


@dataclass(frozen=True)
class GridSettings:
    """The seed's default grid (intercept yes/no x Q setters x R setters x OLS init)."""

    try_both_intercepts: bool = True


@dataclass(frozen=True)
class Split:
    """The first n_train of n rows fit the hyperparameters; later observed targets are scored."""

    n: int
    n_train: int

    @classmethod
    def from_test_size(cls, n: int, test_size: int | float) -> Split:
        """Return the split of ``n`` rows that holds out ``test_size`` rows at the end.

        Parameters
        ----------
        n : int
            Number of rows.
        test_size : int or float
            Number of test rows, or a fraction of ``n`` (a float; rounds up).

        Raises
        ------
        ValueError
            The split leaves no training or no test rows.
        """
        n_test = math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)
        if not 0 < n_test < n:
            raise ValueError(f"test_size={test_size!r} leaves no training or no test rows (n={n})")
        return cls(n, n - n_test)


def check_methods(methods: Sequence[str]) -> None:
    """One or more names from `METHODS`, each once (a list, not one name).

    Raises
    ------
    ValueError, TypeError
    """
    if isinstance(methods, str):
        raise TypeError(f"methods must be a list of method names, e.g. [{methods!r}], "
                        f"got the string {methods!r}")  # fmt: skip
    methods = list(methods)
    if not methods:
        raise ValueError(f"methods is empty: choose one or more of {list(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    twice = repeated(methods)
    if twice:
        raise ValueError(f"methods lists {twice} more than once: list each method once")
    variants = [m for m in methods if m in BAYES_VARIANTS]
    if "bayes_stacked" in methods and len(variants) < 2:
        raise ValueError(f"bayes_stacked weighs two or more of {list(BAYES_VARIANTS)}, but "
                         f"methods has {variants}: add the variants to stack")
