"""The NUTS settings as one validated object, `SamplerSettings`, and the seed's check.

`fit_bayes`, comparisons, LFO refits, model files and the CLI pass this one object; it lives
outside `tvbeta.estimate.bayes` so that model files and the CLI read it without importing PyMC.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, fields, replace
from numbers import Integral, Real
from typing import Any, Literal, get_args

from tvbeta.constants import TARGET_ACCEPT

__all__ = ["SAMPLERS", "Sampler", "SamplerSettings", "check_seed"]

Sampler = Literal["auto", "pymc", "nutpie"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)


def nutpie_available() -> bool:
    return importlib.util.find_spec("nutpie") is not None


def default_cores(chains: int) -> int:
    """All CPUs this process may use, at most one per chain."""
    try:
        n_cpu = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n_cpu = os.cpu_count() or 1
    return max(1, min(chains, n_cpu))


def _check_count(name: str, value: Any, low: int, usual: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {low} (e.g. {usual}), got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low} (e.g. {usual}), got {value!r}")


def check_seed(seed: int) -> None:
    """Refuse a seed that is not an integer >= 0 (TypeError, ValueError), naming it."""
    _check_count("seed", seed, 0, "an integer such as 1")


@dataclass(frozen=True)
class SamplerSettings:
    """How NUTS samples, validated when made: the one object every Bayesian fit is given.

    draws, tune, chains : draws and tuning steps per chain, chains; cores : chains run at once
    (None: all available CPUs, at most ``chains``; PyMC's own default is one core on a 2-CPU
    machine); target_accept : NUTS target acceptance rate (raise it to 0.9-0.99 if the check
    reports divergent transitions); sampler : "auto" (nutpie when installed: Rust NUTS on
    PyTensor's compiled, cached log density, the fastest; else PyMC's NUTS), "pymc" or
    "nutpie"; n_paths : posterior draws of the beta path summaries (0: none). The seed is not
    a setting: it says which draws, not how to draw, and differs between the fits that share
    one object (each series of a comparison has its own).

    Raises
    ------
    ValueError, TypeError
        A count below its minimum (draws, tune, chains, cores: 1; n_paths: 0) or not an
        integer, a target_accept outside (0, 1), an unknown sampler; naming the setting.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    target_accept: float = TARGET_ACCEPT
    sampler: Sampler = "auto"
    n_paths: int = 200

    def __post_init__(self) -> None:
        """Refuse a setting that cannot run (see Raises), naming it."""
        for name, low, usual in (("draws", 1, "1000"), ("tune", 1, "1000"), ("chains", 1, "4"),
                                 ("cores", 1, "None (one per chain)"), ("n_paths", 0, "200")):
            if not (name == "cores" and self.cores is None):
                _check_count(name, getattr(self, name), low, usual)
        t = self.target_accept
        if isinstance(t, bool) or not isinstance(t, Real) or not 0.0 < t < 1.0:
            raise ValueError(
                f"target_accept must be a probability strictly between 0 and 1 (NUTS' target "
                f"acceptance rate; 0.8-0.95 is usual, higher for difficult posteriors), got {t!r}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {self.sampler!r}")

    @classmethod
    def of(cls, settings: SamplerSettings | None, **given: Any) -> SamplerSettings:
        """Return ``settings``, or if None the settings made of the keyword values ``given``.

        Raises
        ------
        TypeError
            ``settings`` is not a SamplerSettings, or also a keyword is set (not its default).
        """
        if settings is None:
            return cls(**given)
        if not isinstance(settings, cls):
            raise TypeError(f"settings must be a SamplerSettings, got {type(settings).__name__}")
        both = [f.name for f in fields(cls) if f.name in given and given[f.name] != f.default]
        if both:
            raise TypeError(f"{both} given both as keyword arguments and in settings: give "
                            "them in settings only")  # fmt: skip
        return settings

    def resolved(self) -> SamplerSettings:
        """Return these settings as they run here: sampler "auto" and cores None replaced."""
        sampler = ("nutpie" if nutpie_available() else "pymc") if self.sampler == "auto" \
            else self.sampler  # fmt: skip
        cores = default_cores(self.chains) if self.cores is None else int(self.cores)
        return replace(self, sampler=sampler, cores=cores)
