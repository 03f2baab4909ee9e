"""Beta paths with a central band, from any fit: the one form every beta figure draws.

* Kalman result or MLE fit: beta_t | y ~ N(mean, P) given Q and R (for an MLE fit at their
  estimate: the band leaves out their estimation error): mean +/- z sqrt(diag P),
  z = Phi^{-1}((1 + level) / 2) (1.645 at 90%).
* Bayes fit: the (1 - level) / 2 and (1 + level) / 2 quantiles of the posterior beta paths,
  mixing over the posterior of Q and R (`tvbeta.estimate.bayes.paths`), and the posterior mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from tvbeta.constants import STATE, TIME
from tvbeta.results import KalmanResult, diagonal_sd

__all__ = ["DEFAULT_LEVEL", "KIND_LABELS", "BandArrays", "BandPath", "band_arrays", "beta_bands",
           "check_level", "fit_dict"]

#: The band of every beta figure unless ``level`` says otherwise: a central 90% interval.
DEFAULT_LEVEL = 0.9
Kind = Literal["filtered", "smoothed"]
#: What each kind of path means, for legends and titles.
KIND_LABELS: dict[str, str] = {
    "filtered": "filtered (real-time)", "smoothed": "smoothed (hindsight)"
}  # fmt: skip
ACCEPTED = "a KalmanResult, an MLEFit, a BayesFit (or its .beta Dataset) or the seed's result dict"


class BandPath(NamedTuple):
    """One fit's beta paths: ``mean``, ``lower``, ``upper`` are (time, state) DataFrames.

    band : what the band is, for the legend (e.g. "smoothed (hindsight), 90% posterior band");
    level : its central probability, when known.
    """

    mean: pd.DataFrame
    lower: pd.DataFrame
    upper: pd.DataFrame
    band: str
    level: float | None = None


def check_level(level: object) -> float:
    """``level`` as a float in (0, 1), else ValueError naming it."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise TypeError(f"level must be a number in (0, 1) such as 0.9, got {level!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(
            f"level must lie strictly between 0 and 1 (the band's central probability, e.g. "
            f"0.9 for 90%), got {level!r}"
        )
    return float(level)


def _is_seed_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and isinstance(obj.get("beta"), pd.DataFrame)


def _is_fit(obj: object) -> bool:
    from tvbeta.estimate.mle import MLEFit  # lazy: tvbeta.viz loads before tvbeta.estimate

    return (
        isinstance(obj, (KalmanResult, MLEFit, xr.Dataset))
        or isinstance(getattr(obj, "beta", None), xr.Dataset)
        or _is_seed_dict(obj)
    )


def fit_dict(fits: Any, name: str = "fits") -> dict[str, Any]:
    """One fit -> ``{"": fit}``; a mapping label -> fit -> a dict of it (order kept).

    Raises
    ------
    TypeError
        When ``fits`` (or one of its values) is not a fit; ValueError when the mapping is empty.
    """
    if _is_fit(fits):
        return {"": fits}
    if not isinstance(fits, Mapping):
        raise TypeError(
            f"{name} must be {ACCEPTED}, or a dict name -> such fits; got {type(fits).__name__}"
        )
    if not fits:
        raise ValueError(f"no fits to plot: {name} is empty")
    for label, fit in fits.items():
        if not _is_fit(fit):
            raise TypeError(f"{name}[{label!r}] must be {ACCEPTED}; got {type(fit).__name__}")
    return {str(label): fit for label, fit in fits.items()}


class BandArrays(NamedTuple):
    """`BandPath` as arrays: ``mean``, ``lower``, ``upper`` (time, state), their labels."""

    index: pd.Index
    states: list[str]
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    band: str


def _gaussian(mean: np.ndarray, sd: np.ndarray, kind: str, level: float,
              given: str) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
    """Return (lower, upper, band text) of mean +/- z sd."""
    z = NormalDist().inv_cdf((1 + level) / 2)  # the stdlib's: scipy.stats takes ~1 s to import
    band = f"{KIND_LABELS[kind]}, {level:.0%} band (± {z:.3g} sd {given})"
    width = z * sd
    return mean - width, mean + width, band


def _frames(arrays: BandArrays, level: float) -> BandPath:
    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=arrays.index, columns=arrays.states)

    return BandPath(frame(arrays.mean), frame(arrays.lower), frame(arrays.upper), arrays.band,
                    level)  # fmt: skip


def _kalman(result: KalmanResult, kind: str, level: float, given: str) -> BandArrays:
    mean, sd = result.state_moments(kind)
    return BandArrays(result.time_index, list(result.state_names), mean,
                      *_gaussian(mean, sd, kind, level, given))  # fmt: skip


def _bayes(fit: Any, kind: str, level: float) -> BandPath:
    """Return the posterior mean and central quantiles of a Bayes fit's betas.

    Quantiles not stored are re-summarised from the fit's posterior, same draws and seed.
    """
    from tvbeta.estimate.bayes.paths import beta_path_summary, quantile_label

    ds = fit if isinstance(fit, xr.Dataset) else fit.beta
    if f"{kind}_mean" not in ds:
        raise ValueError(
            "this Bayes fit has no beta paths (it was fitted with n_paths=0): refit with "
            "n_paths > 0"
        )
    qs = ((1 - level) / 2, (1 + level) / 2)
    stored = [float(q) for q in ds.attrs.get("quantiles", [])]
    if not all(any(np.isclose(q, s) for s in stored) for q in qs):
        if isinstance(fit, xr.Dataset):
            raise ValueError(
                f"level={level:g}: this beta Dataset stores the quantiles {stored} only; pass "
                "the BayesFit itself (it re-summarises its posterior at any level), or a level "
                "whose two quantiles are stored"
            )
        ds = beta_path_summary(fit.spec, fit.system_draws(), n_paths=int(ds.attrs["n_paths"]),
                               seed=int(ds.attrs["seed"]), quantiles=qs)  # fmt: skip

    def frame(var: str) -> pd.DataFrame:
        table = ds[var].transpose(TIME, STATE).to_pandas()
        return table.rename_axis(index=None, columns=None)

    lower, upper = (frame(f"{kind}_{quantile_label(q)}") for q in qs)
    band = (f"{KIND_LABELS[kind]}, {level:.0%} posterior band over {ds.attrs['n_paths']} "
            "draws of the parameters")  # fmt: skip
    return BandPath(frame(f"{kind}_mean"), lower, upper, band, level)


def beta_bands(fit: Any, kind: Kind = "smoothed", level: float = DEFAULT_LEVEL) -> BandPath:
    """Return a fit's beta paths and their central ``level`` band, as (time, state) frames.

    Parameters
    ----------
    fit : KalmanResult, MLEFit, BayesFit, BayesFit.beta Dataset or the seed's result dict
        The seed's dict (keys "beta", "beta_cov") has the filtered paths only.
    kind : {"smoothed", "filtered"}
        Hindsight (beta_t given every observation) or real time (given y up to t).
    level : float in (0, 1), default 0.9
        Central probability of the band.

    Returns
    -------
    BandPath
        mean, lower, upper : (time, state) DataFrames, rows after the burn-in;
        band : a legend text naming the kind and the level; level.

    Raises
    ------
    TypeError
        ``fit`` of another type; ValueError for a ``kind`` or ``level`` outside the accepted
        values, or a smoothed band of the seed's dict.
    """
    level = _checked(kind, level)
    arrays = _kalman_of(fit, kind, level)
    if arrays is not None:
        return _frames(arrays, level)
    if isinstance(fit, xr.Dataset) or isinstance(getattr(fit, "beta", None), xr.Dataset):
        return _bayes(fit, kind, level)
    if _is_seed_dict(fit):
        if kind != "filtered":
            raise ValueError(
                "the seed's result dict holds the filtered betas only: pass kind='filtered', "
                "or the KalmanResult for smoothed paths"
            )
        beta = fit["beta"]
        cov = np.stack(list(fit["beta_cov"].values())) if len(beta) else np.empty((0, 0, 0))
        mean = beta.to_numpy()
        return _frames(BandArrays(beta.index, list(beta.columns), mean,
                                  *_gaussian(mean, diagonal_sd(cov), kind, level,
                                             "given Q, R")), level)  # fmt: skip
    raise TypeError(f"fit must be {ACCEPTED}; got {type(fit).__name__}")


def band_arrays(fit: Any, kind: Kind = "smoothed", level: float = DEFAULT_LEVEL) -> BandArrays:
    """Return `beta_bands` of ``fit`` as arrays (the same values).

    Of a KalmanResult or an MLEFit without building DataFrames, which cost more than the
    smoother itself (~1 ms of a fund's ~20 ms in `tvbeta.funds.fit_funds`); of other fits
    from `beta_bands`' frames. Raises as `beta_bands`.
    """
    level = _checked(kind, level)
    arrays = _kalman_of(fit, kind, level)
    if arrays is not None:
        return arrays
    path = beta_bands(fit, kind, level)
    return BandArrays(path.mean.index, [str(c) for c in path.mean.columns],
                      path.mean.to_numpy(), path.lower.to_numpy(), path.upper.to_numpy(),
                      path.band)  # fmt: skip


def _checked(kind: str, level: float) -> float:
    """Return ``level`` checked (`check_level`); ValueError for an unknown ``kind``."""
    level = check_level(level)
    if kind not in KIND_LABELS:
        raise ValueError(f"kind must be one of {list(KIND_LABELS)}, got {kind!r}")
    return level


def _kalman_of(fit: Any, kind: str, level: float) -> BandArrays | None:
    """Return the Gaussian band of a KalmanResult or MLEFit (given Q and R), else None."""
    from tvbeta.estimate.mle import MLEFit

    if isinstance(fit, MLEFit):
        return _kalman(fit.result, kind, level, "given Q, R at the MLE")
    if isinstance(fit, KalmanResult):
        return _kalman(fit, kind, level, "given Q, R")
    return None
