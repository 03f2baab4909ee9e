"""A variance index h_t known at t-1, for observation noise that scales with volatility.

The volatility-scaled model replaces the constant R by R_t = sigma_eps^2 h_t^gamma (gamma = 0 is
the constant model). h_t is an exponentially weighted average of past squared one-step residuals
of a rolling OLS (each residual y_s - z_s' b_s with b_s fitted on the ``window`` observations
before s, so h_t uses y_{<t} only): the Kalman likelihood stays exact, and R_t enters the
filter like the seed's per-time R. Residuals, not raw returns, because what R_t describes is the
part of y the factors leave unexplained; on the built-in industries an index from residuals
gained about three times as much log score as one from squared returns (issue 12).

The seed's setters also make R time-varying, by plugging in a rolling volatility with a fixed
scale (`set_R_from_rolling_ols_residuals`: R_t = the in-window residual variance;
`set_R_from_rolling_factor_vols`: the factors' rolling variance). Here the shape of R_t comes
from the index and its scale sigma_eps and elasticity gamma are estimated (MLE) or sampled.

log h is centred on the training steps (its mean there is 0, `VolatilityIndex.centred`), so
sigma_eps^2 is the geometric mean of R_t over the training span whatever gamma is, and the
test span is scaled with the training span's constant.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from tvbeta.model.heuristics import rolling_ols

#: Defaults in years, turned into periods by the data's frequency: a three-year rolling
#: regression (the rolling OLS baseline's window) and a half-life of six months, the settings
#: of the experiment in issue 12 on monthly industries.
WINDOW_YEARS, HALF_LIFE_YEARS = 3.0, 0.5


@dataclass(frozen=True)
class VolatilityIndex:
    """How h_t is built, and the constant that centres log h on the training steps.

    window : observations in each rolling regression (> k + 2); half_life : of the exponential
    weights, in periods (> 0); offset : subtracted from log h (set by `centred`).
    """

    window: int
    half_life: float
    offset: float = 0.0

    def __post_init__(self) -> None:
        """Refuse a window or half-life that cannot make an index.

        Raises
        ------
        ValueError
            ``window`` not an integer >= 3, or ``half_life`` not a positive number.
        """
        if isinstance(self.window, bool) or not isinstance(self.window, int | np.integer) \
                or self.window < 3:
            raise ValueError(f"window must be an integer >= 3 observations, got {self.window!r}")
        if not np.isfinite(self.half_life) or self.half_life <= 0:
            raise ValueError(f"half_life must be a positive number of periods, got "
                             f"{self.half_life!r}")

    @classmethod
    def for_frequency(cls, ppy: float, n_observed: int, k: int) -> VolatilityIndex:
        """Return the default index for ``ppy`` periods per year (`WINDOW_YEARS` and co.).

        The window is capped at a third of the ``n_observed`` training targets (and kept above
        the k + 2 a regression on k columns needs), so short series still get an index.
        """
        window = min(round(WINDOW_YEARS * ppy), n_observed // 3)
        return cls(int(max(window, k + 3)), HALF_LIFE_YEARS * ppy)

    @classmethod
    def default_for(cls, y: np.ndarray, Z: np.ndarray, *, burn: int, ppy: float) -> VolatilityIndex:
        """Return the default index (`for_frequency`) centred on the likelihood's steps.

        Those are the observed targets after the first ``burn``; y (n,), Z (n, k).

        Raises
        ------
        ValueError
            As `centred`.
        """
        observed = np.flatnonzero(~np.isnan(y))
        index = cls.for_frequency(ppy, observed.size, Z.shape[1])
        return index.centred(y, Z, observed[burn:])

    def ewma_input(self, y: np.ndarray, Z: np.ndarray) -> tuple[int, np.ndarray]:
        """Return (t0, x): the first row with an index and the sequence its average runs over.

        x (n - t0 + 1,) is the in-window residual variance of the first rolling regression
        (row t0), then the squared residuals e_s^2 of rows s = t0..n-1 (NaN where y_s is
        missing); h_t is the average of x through s = t - 1 (`ewma`). The half-life does not
        enter, so a sampled half-life re-averages the same x. t0 = n (x of one value) when no
        regression exists.
        """
        y = np.ascontiguousarray(y, dtype=np.float64)
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        return _ewma_input(self.window, y.tobytes(), Z.tobytes(), Z.shape)

    def raw_log_h(self, y: np.ndarray, Z: np.ndarray,
                  half_life: float | None = None) -> np.ndarray:  # fmt: skip
        """Return log h_t (n,) before centring; NaN until the first rolling regression exists.

        h_t is the exponentially weighted mean of e_s^2 over the observed s < t, started at the
        in-window residual variance of the first regression (so it is not one squared residual).
        A missing y_s or a row before the first regression adds nothing. ``half_life`` (periods)
        replaces the index's own (a sampled half-life's draw).
        """
        t0, x = self.ewma_input(y, Z)
        log_h = np.full(y.shape, np.nan)
        hl = self.half_life if half_life is None else half_life
        log_h[t0:] = np.log(ewma(x, ewma_alpha(hl))[0][:-1])
        return log_h

    def centred(self, y: np.ndarray, Z: np.ndarray, steps: np.ndarray) -> VolatilityIndex:
        """Return a copy whose log h has mean 0 over ``steps`` (the training likelihood's rows).

        Raises
        ------
        ValueError
            When no step in ``steps`` has an index yet (too few observations for the window).
        """
        raw = self.raw_log_h(y, Z)[steps]
        raw = raw[np.isfinite(raw)]
        if raw.size == 0:
            raise self._no_index_on(steps)
        return replace(self, offset=float(raw.mean()))

    def _no_index_on(self, steps: np.ndarray) -> ValueError:
        return ValueError(
            f"the volatility index needs {self.window} observed targets before the scored "
            f"steps and has none on the {len(steps)} of them: use a shorter window or more data")

    def log_h_at(self, half_lives: np.ndarray, y: np.ndarray, Z: np.ndarray, steps: np.ndarray,
                 rows_y: np.ndarray | None = None,
                 rows_Z: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """Return the centred log h_t (D, n) at each of ``half_lives`` (D,) (periods).

        Each half-life's index is centred on ``steps`` of (y, Z) (as `centred`) and given on
        the rows (rows_y, rows_Z) (default: y, Z), 0 before the first regression (as
        `log_h`): the per-draw index of a sampled half-life. The rolling regressions run once.

        Raises
        ------
        ValueError
            As `centred`.
        """
        t0, x = self.ewma_input(y, Z)
        r0, rx = (t0, x) if rows_y is None else self.ewma_input(rows_y, rows_Z)
        centre = steps[steps >= t0] - t0
        if centre.size == 0:
            raise self._no_index_on(steps)
        half_lives = np.atleast_1d(np.asarray(half_lives, dtype=np.float64))
        out = np.zeros((half_lives.size, len(y) if rows_y is None else len(rows_y)))
        for d, half_life in enumerate(half_lives):
            alpha = ewma_alpha(half_life)
            offset = np.log(ewma(x, alpha)[0][centre]).mean()
            out[d, r0:] = np.log(ewma(rx, alpha)[0][:-1]) - offset
        return out

    def log_h(self, y: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Return the centred log h_t (n,); 0 (h = 1, the constant model) before it exists."""
        log_h = self.raw_log_h(y, Z) - self.offset
        return np.where(np.isfinite(log_h), log_h, 0.0)


@functools.lru_cache(maxsize=16)
def _ewma_input(window: int, y: bytes, Z: bytes, shape: tuple[int, int]) -> tuple[int, np.ndarray]:
    """`VolatilityIndex.ewma_input` of y (n,) and Z ``shape`` given as their bytes (float64).

    Kept by content: the batched rolling regressions cost more than a volatility-scaled MLE's
    likelihood evaluations (5 ms against 20 ms on 573 months, k = 5), and one fit asks for the
    same rows' index two or three times (centring it, the fit, its forecasts). x is read-only.
    """
    y_, Z_ = np.frombuffer(y), np.frombuffer(Z).reshape(shape)
    beta, resid = rolling_ols(y_, Z_, window)
    first = np.flatnonzero(~np.isnan(beta[:, 0]))
    if first.size == 0:
        x = np.ones(1)
        t0 = len(y_)
    else:
        t0 = int(first[0])
        e2 = (y_[t0:] - np.einsum("tk,tk->t", Z_[t0:], beta[t0:])) ** 2
        x = np.r_[resid[t0].var(), e2]
    x.flags.writeable = False
    return t0, x


def ewma_alpha(half_life: float) -> float:
    """Return the smoothing weight of a half-life (periods) as pandas computes it.

    alpha = 1 - 2^(-1 / half_life), through pandas' centre of mass (``ewm(halflife=)``), so
    `ewma` equals ``Series.ewm(halflife=half_life, adjust=False, ignore_na=True).mean()`` bit
    for bit (tests/model/test_volatility.py).
    """
    decay = 1 - np.exp(np.log(0.5) / half_life)
    comass = float(1 / decay - 1)
    return 1.0 / (1.0 + comass)


@njit(cache=True, fastmath=False)
def ewma(x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the exponentially weighted mean of x through each s (m,) and its d / d alpha.

    w_0 = x_0; w_s = (1 - alpha) w_{s-1} + alpha x_s, a NaN x_s skipped (w_s = w_{s-1}):
    pandas' ``ewm(adjust=False, ignore_na=True).mean()`` recursion, its operations in its order
    (pandas/_libs/window/aggregations.pyx), so the values are pandas' bit for bit. The
    derivative (forward mode: dw_s = x_s - w_{s-1} + (1 - alpha) dw_{s-1}) is what a sampled
    half-life's gradient needs, at O(m).
    """
    m = x.shape[0]
    out, grad = np.empty(m), np.empty(m)
    keep = 1.0 - alpha
    w, dw = x[0], 0.0
    out[0], grad[0] = w, dw
    for s in range(1, m):
        cur = x[s]
        if cur == cur:  # observed
            if w == w:
                dw = (cur - w) + keep * dw
                if w != cur:  # pandas' guard against rounding on a constant series
                    w = keep * w + alpha * cur
                    w /= keep + alpha
            else:
                w, dw = cur, 0.0
        out[s], grad[s] = w, dw
    return out, grad


def scaled_noise(R: float | np.ndarray, gamma: float | np.ndarray,
                 log_h: np.ndarray) -> np.ndarray:  # fmt: skip
    """Return R_t = R h_t^gamma = R exp(gamma log h_t) on the rows of log_h (n,).

    R and gamma scalars give (n,); R and gamma (D,), one per posterior draw, give (D, n), with
    log_h (n,) or one index per draw (D, n) (a sampled half-life). One
    function for the MLE's fit and forecast and the posterior's draws, so they scale alike.
    """
    R, gamma = np.asarray(R, dtype=np.float64), np.asarray(gamma, dtype=np.float64)
    return R[..., None] * np.exp(gamma[..., None] * log_h)
