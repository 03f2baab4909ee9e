"""Leave-future-out cross-validation of a Bayesian fit: exact and PSIS-approximated, 1 step ahead.

Bürkner, Gabry & Vehtari (2020), "Approximate leave-future-out cross-validation for Bayesian
time series models", Journal of Statistical Computation and Simulation 90(14), 2499-2523,
with M = 1 (one-step-ahead prediction). Every test row i >= L (L = ``n_train``) is scored by

    elpd_i = log p(y_i | y_{<i}) = log E_{theta | y_{<i}} p(y_i | y_{<i}, theta),

theta = (Q, R), in nats per period. The filter gives ll[s, t] = log p(y_t | y_{<t}, theta_s)
exactly for every posterior draw and row, in one batched pass (`BayesSpec.loglik_terms`). The
expectation under p(theta | y_{<i}) is estimated from the S draws of the last posterior, fitted
on rows < i*, by importance sampling with log ratios r_s = sum_{t=i*}^{i-1} ll[s, t] and

    elpd_i = log sum_s w_s exp(ll[s, i]),   w = PSIS-smoothed normalised weights of r  (`psis`).

When the Pareto k-hat of r exceeds ``threshold`` (default 0.7) the weights are unreliable: the
posterior is refitted exactly on rows < i (``refit(i)``) and i* = i. The first posterior is
the fit's, on rows < L. ``threshold = 0`` refits at every test row: exact LFO-CV.

The model stays the fit's (priors with their resolved scales, a0, P0, T, burn; the burn-in
lies before L and never enters a ratio or a score). Missing targets are not scored and add
nothing to the ratios.

PSIS (Vehtari, Simpson, Gelman, Yao & Gabry 2024, "Pareto smoothed importance sampling",
JMLR 25(72)) is arviz-stats' `array_stats.psislw`: the largest M = 3 sqrt(S) ratios (S/5 when
S <= 225) are replaced by the expected order statistics of a generalized Pareto fitted by
Zhang & Stephens' estimator with a weakly informative prior on k, truncated at the largest ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats
from scipy.special import logsumexp

from tvbeta.data import Design, prepare_design

if TYPE_CHECKING:
    from tvbeta.estimate.bayes.fit import BayesFit
    from tvbeta.estimate.bayes.model import BayesSpec, SystemDraws

__all__ = ["Draws", "LFOResult", "default_refit", "lfo_cv", "psis"]

Draws = tuple[np.ndarray, ...]
"""Posterior draws of the filter's arrays: (T, Q, R) as `BayesFit.system_draws` returns them
(`SystemDraws`), or (Q (S, k, k), R (S,) or (S, n)) of a model whose T is fixed."""

DEFAULT_THRESHOLD = 0.7
MIN_PSIS_DRAWS = 25
"""PSIS fits its tail to S/5 >= 5 draws at least."""


@dataclass(frozen=True, eq=False)
class LFOResult:
    """Leave-future-out elpd of one-step-ahead predictions over the m scored test rows.

    elpd : sum of elpd_i (nats); se : sqrt(m var(elpd_i)); elpd_i : (m,) log p(y_i | y_{<i})
    per scored row (nats per period), by time label; pareto_k : (m,) k-hat of the importance
    ratios at each row, the one that triggered a refit where one was made (NaN where no ratios
    were needed: right after a refit or the fit, every row when threshold = 0; -inf when the
    largest ratios are all equal); rows : (m,) row positions scored; refit_rows : rows i where
    the posterior was refitted on rows < i; n_train : L; threshold : the k-hat refit threshold;
    n_draws : draws of the first posterior.
    """

    elpd: float
    se: float
    elpd_i: pd.Series
    pareto_k: pd.Series
    rows: np.ndarray
    refit_rows: tuple[int, ...]
    n_train: int
    threshold: float
    n_draws: int

    @property
    def n_refits(self) -> int:
        """Number of refits of the posterior over the test rows."""
        return len(self.refit_rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per scored test row: elpd (nats), pareto_k, refit (posterior refitted here)."""
        return pd.DataFrame({"elpd": self.elpd_i, "pareto_k": self.pareto_k,
                             "refit": np.isin(self.rows, self.refit_rows)},
                            index=self.elpd_i.index)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly, exact dict of the result (no time labels: `from_dict`)."""
        return {
            "elpd_i": self.elpd_i.tolist(), "pareto_k": self.pareto_k.tolist(),
            "rows": self.rows.tolist(), "refit_rows": list(self.refit_rows),
            "n_train": self.n_train, "threshold": self.threshold, "n_draws": self.n_draws,
            "elpd": self.elpd, "se": self.se,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any], index: pd.Index) -> LFOResult:
        """Inverse of `to_dict`; index : the time labels of every row of the series."""
        rows = np.asarray(d["rows"], dtype=np.int64)
        labels = index[rows]
        return cls(
            elpd=float(d["elpd"]), se=float(d["se"]),
            elpd_i=pd.Series(np.asarray(d["elpd_i"], dtype=float), index=labels, name="elpd"),
            pareto_k=pd.Series(np.asarray(d["pareto_k"], dtype=float), index=labels,
                               name="pareto_k"),
            rows=rows, refit_rows=tuple(int(r) for r in d["refit_rows"]),
            n_train=int(d["n_train"]), threshold=float(d["threshold"]), n_draws=int(d["n_draws"]),
        )  # fmt: skip

    def summary(self) -> pd.Series:
        """Summarise elpd (sum, nats) and se, per period, test rows, refits and the largest k."""
        m = len(self.rows)
        k = self.pareto_k.to_numpy()
        finite = k[np.isfinite(k)]
        return pd.Series(
            {
                "elpd": self.elpd, "se": self.se,
                "elpd per period": self.elpd / m, "se per period": self.se / m,
                "n test": m, "n_train": self.n_train, "n_refits": self.n_refits,
                "max pareto_k": float(finite.max()) if finite.size else np.nan,
                "threshold": self.threshold, "n_draws": self.n_draws,
            },
            name="exact LFO-CV" if self.threshold == 0 else "PSIS-LFO-CV",
        )  # fmt: skip


def psis(log_ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto smoothed importance sampling of one vector of log importance ratios.

    log_ratios : (S,) finite, S >= 25. Returns the smoothed log weights (S,), normalised so that
    sum(exp) = 1, and the Pareto k-hat (k < 0.7: reliable; Vehtari et al. 2024). r_eff = 1.
    When the ratios are all equal (nothing to smooth) the weights are uniform and k-hat = -inf.
    """
    lr = np.asarray(log_ratios, dtype=np.float64)
    if lr.ndim != 1 or lr.size < MIN_PSIS_DRAWS:
        raise ValueError(
            f"log_ratios must be a vector of at least {MIN_PSIS_DRAWS} draws, got {lr.shape}"
        )
    if not np.all(np.isfinite(lr)):
        raise ValueError("log_ratios must be finite")
    try:
        # psislw takes the negated log ratios (loo's convention: -log_lik for PSIS-LOO)
        lw, k = array_stats.psislw(-lr, r_eff=1.0)
    except ValueError as err:
        if "tail values are the same" not in str(err):
            raise
        return lr - logsumexp(lr), -np.inf
    return lw, float(k)


def _checked_draws(draws: Draws, spec: BayesSpec, source: str) -> SystemDraws:
    from tvbeta.estimate.bayes.model import SystemDraws

    K = spec.n_states
    arrays = [np.asarray(x, dtype=np.float64) for x in draws]
    if len(arrays) == 2 and spec.betas == "random_walk":
        arrays.insert(0, spec.T[None])
    T, Q, R = arrays if len(arrays) == 3 else (np.empty(0),) * 3
    if R.ndim not in (1, 2) or Q.shape != (len(R), K, K) or T.shape[1:] != (K, K) or len(
            T) not in (1, len(R)):  # fmt: skip
        raise ValueError(f"{source} must give (T (1 | S, {K}, {K}), Q (S, {K}, {K}), R (S,) or "
                         f"R_t (S, n)) (`BayesFit.system_draws`), or (Q, R) for a random-walk "
                         f"model, got shapes {[a.shape for a in arrays]}")
    if len(R) == 0:
        raise ValueError(f"{source} has no posterior draws")
    return SystemDraws(T, Q, R)


def _head(spec: BayesSpec, n_rows: int) -> BayesSpec:
    """Return the same model on the first n_rows rows (priors and initial state kept)."""
    return replace(spec, index=spec.index[:n_rows], y=spec.y[:n_rows], Z=spec.Z[:n_rows])


def default_refit(
    fit: BayesFit, spec: BayesSpec, seed: int | None = None
) -> Callable[[int], Draws]:
    """Return refit(n_rows) -> draws: `fit_spec` on the first n_rows rows of ``spec``.

    The fit's sampler settings and seed (or ``seed``) at every refit, no beta paths; ``spec``
    carries the fit's priors and initial state: the same model on fewer rows.
    """
    from tvbeta.estimate.bayes.fit import fit_spec

    try:
        settings = replace(fit.sampler_settings, n_paths=0)
        seed = fit.settings["seed"] if seed is None else seed
    except KeyError as err:
        raise ValueError(f"refit: the fit's settings lack {err.args[0]!r}; pass refit= "
                         "explicitly") from err  # fmt: skip

    def refit(n_rows: int) -> Draws:
        return fit_spec(_head(spec, n_rows), settings, seed=seed).system_draws(spec)

    return refit


def _full_spec(fit: BayesFit, data: pd.DataFrame | Design | None) -> BayesSpec:
    """Return the fit's model on the whole series: ``data`` (DataFrame or Design), else its own."""
    spec = fit.spec
    if data is None:
        return spec
    if isinstance(data, pd.DataFrame):
        if spec.target_col is None or spec.factor_cols is None:
            raise ValueError("data: the fit was built from arrays (no column names); pass a Design")
        data = prepare_design(data, spec.target_col, list(spec.factor_cols),
                              intercept=spec.intercept, burn=spec.burn)  # fmt: skip
    if not isinstance(data, Design):
        raise TypeError(f"data must be a DataFrame, a tvbeta.data.Design or None, got {type(data)}")
    if tuple(data.state_names) != tuple(spec.state_names):
        raise ValueError(
            f"data: states {data.state_names} differ from the fit's {spec.state_names}"
        )
    m = min(spec.n, len(data.y))
    same = (
        np.array_equal(data.y[:m], spec.y[:m], equal_nan=True)
        and np.array_equal(data.Z[:m], spec.Z[:m])
        and data.index[:m].equals(spec.index[:m])
    )
    if not same:
        raise ValueError(
            f"data: its first {m} rows differ from the fit's data; pass the series the fit was "
            "trained on, extended by the test rows"
        )
    return replace(spec, index=data.index, y=data.y, Z=data.Z)


def _check_split(spec: BayesSpec, n_train: int) -> np.ndarray:
    """Scored test rows (observed targets at positions >= n_train)."""
    lo, hi = spec.first_row + 2, spec.n - 1
    if not isinstance(n_train, int | np.integer) or not lo <= n_train <= hi:
        raise ValueError(
            f"n_train must be an integer in [first_row + 2, n - 1] = [{lo}, {hi}] (training "
            f"rows after the burn-in of {spec.burn} observed steps, and at least one test "
            f"row), got {n_train!r}"
        )
    rows = spec.steps[spec.steps >= n_train]
    if rows.size == 0:
        raise ValueError(f"n_train={n_train}: the test rows have no observed target")
    return rows


def check_threshold(threshold: float, argument: str = "threshold") -> float:
    """Return the Pareto k refit threshold as a float; refuse a negative or NaN one, naming it."""
    if not threshold >= 0:
        raise ValueError(
            f"{argument} must be >= 0 (0: exact LFO, inf: never refit), got {threshold!r}"
        )
    return float(threshold)


def _uniform(n_draws: int) -> np.ndarray:
    return np.full(n_draws, -np.log(n_draws))


def _lfo_scores(
    ll: np.ndarray,
    rows: np.ndarray,
    n_train: int,
    threshold: float,
    terms_after_refit: Callable[[int], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Run the LFO recursion: (elpd_i (m,), k-hat (m,), refit rows).

    From the first posterior's terms ll (S, n); terms_after_refit(i) gives those of the
    posterior on rows < i. Rows since the last posterior (star) hold an observation exactly when
    a row was scored before (j > 0; a missing row n_train adds none).
    """
    elpd, khat = np.empty(rows.size), np.full(rows.size, np.nan)
    refits, star = [], n_train
    for j, i in enumerate(rows):
        log_w = _uniform(ll.shape[0])
        if j > 0 and threshold > 0:
            log_w, khat[j] = psis(ll[:, star:i].sum(axis=1))
        if j > 0 and not khat[j] <= threshold:  # k-hat too high, or threshold 0 (exact)
            ll, star = terms_after_refit(int(i)), i
            refits.append(int(i))
            log_w = _uniform(ll.shape[0])
        elpd[j] = logsumexp(log_w + ll[:, i])
    return elpd, khat, refits


def lfo_cv(
    fit: BayesFit,
    data: pd.DataFrame | Design | None = None,
    *,
    n_train: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    refit: Callable[[int], Draws] | None = None,
    seed: int | None = None,
) -> LFOResult:
    """PSIS-LFO-CV (exact when threshold = 0) of one-step-ahead predictions (module docstring).

    Parameters
    ----------
    fit : BayesFit
        The posterior on the training rows < n_train; its model (priors, a0, P0, T, burn) is
        used throughout. If it was fitted on another number of rows, the first posterior is
        ``refit(n_train)`` instead (and counts as a refit); its default prior scales were then
        resolved on those rows, test rows included if it saw them.
    data : DataFrame, Design or None
        The whole series (training then test rows), whose first rows are the fit's data; a
        DataFrame with the fit's target and factor columns. None: the fit's own data.
    n_train : int, optional
        L, the number of training rows; rows L..n-1 with an observed target are scored.
        Default: the fit's number of rows.
    threshold : float, default 0.7
        Refit when the Pareto k-hat of the importance ratios exceeds it; 0: refit at every
        test row (exact LFO-CV); inf: never refit.
    refit : callable, optional
        refit(n_rows) -> posterior draws given rows < n_rows (`Draws`). Default
        `default_refit`: NUTS with the fit's settings on the truncated data.
    seed : int, optional
        Seed of the default refit (default: the fit's seed).

    Returns
    -------
    LFOResult
        elpd (sum over test rows, nats), se, elpd_i per test row (nats per period), k-hat per
        row, refit rows.
    """
    spec = _full_spec(fit, data)
    n_train = fit.spec.n if n_train is None else n_train
    rows = _check_split(spec, n_train)
    threshold = check_threshold(threshold)
    refit = default_refit(fit, spec, seed) if refit is None else refit

    def terms_after_refit(n_rows: int) -> np.ndarray:
        return spec.loglik_terms(_checked_draws(refit(n_rows), spec, f"refit({n_rows})"))

    if fit.spec.n == n_train:
        ll, first_refit = spec.loglik_terms(_checked_draws(fit.system_draws(spec), spec, "fit")), []
    else:
        ll, first_refit = terms_after_refit(n_train), [n_train]
    elpd, khat, refits = _lfo_scores(ll, rows, n_train, threshold, terms_after_refit)
    index = spec.index[rows]
    return LFOResult(
        elpd=float(elpd.sum()), se=float(np.sqrt(rows.size * np.var(elpd))),
        elpd_i=pd.Series(elpd, index=index, name="elpd"),
        pareto_k=pd.Series(khat, index=index, name="pareto_k"), rows=rows,
        refit_rows=tuple(first_refit + refits), n_train=int(n_train), threshold=threshold,
        n_draws=ll.shape[0],
    )  # fmt: skip
