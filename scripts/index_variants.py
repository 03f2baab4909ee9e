"""Two noise variants issue 12 names that tvbeta does not build, scored before building them.

Issue 12, point 1 asks for R_t = sigma_eps^2 h_t^gamma (built: ``noise="volatility"``, h_t the
exponentially weighted mean of past squared residuals of a rolling OLS, `tvbeta.model.
volatility`) and, optionally, for Q_t = diag(sigma_beta^2) h_t^delta and for an index driven by
the filter's own past innovations (a GARCH-type recursion). This study fits those variants by
maximum likelihood on the README's 30-asset split (12 French industries and 18 size / value /
momentum portfolios on MktRF, SMB, HML, Mom with an intercept, monthly 1949-2017, the first 70%
fitted, the last 246 months scored one step ahead, burn K, the initial state of `mle_vol`) and
scores them against `mle_vol` of `compare_methods` on the same months:

- ``residual``: R_t = sigma_eps^2 h_t^gamma with the library's index, refitted here: a check
  that this script's likelihood and scores are the library's (on the 30 series the mean
  difference is 0.0000 nats, the largest 0.0005: finite differences end a little off the
  library's exact-gradient maximum);
- ``residual+Q``: the same plus Q_t = diag(q) h_t^delta (delta in [-3, 3]);
- ``innovation``: R_t = sigma_eps^2 (g_t / g_ref)^gamma with g_t = (1 - lam) g_{t-1} + lam
  v_{t-1}^2, v the filter's own one-step innovation (g_ref the training OLS residual variance,
  where g starts; a missing y carries g on): lam fixed at the library's six-month half-life
  (``innovation``) or estimated (``innovation, lam``);
- ``standardised``: the same with lam v_{t-1}^2 / F_{t-1} g_ref, a GARCH on standardised
  innovations (``standardised``, ``standardised, lam``).

The filter is the library's square-root step (`tvbeta.kalman.steps`: `predict_random_walk`,
`update`); the recursion is what the library's kernels cannot express (R_t there is an input).
The maximum is L-BFGS-B with finite-difference gradients from two starts (`mle_vol`'s Q and a
small Q), which is why this is a study: built into the package, each variant would need its
exact gradient through the recursion and a place in every consumer of R_t. Reported: the mean
over the 30 series of each variant's mean log score minus `mle_vol`'s (nats per month), its
standard error across series, the series it improves, and the mean 90% coverage.

Run: ``.venv/bin/python scripts/index_variants.py [--series N] [--json out.json]`` (about 2
minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
from numba import njit
from scipy.optimize import minimize

from tvbeta.data import FRENCH_FACTORS, load_french
from tvbeta.data.validate import prepare_design
from tvbeta.estimate.grid import extend_spec
from tvbeta.evaluate.compare import compare_methods
from tvbeta.kalman.steps import predict_random_walk, udu_factor, update
from tvbeta.model.volatility import HALF_LIFE_YEARS, VolatilityIndex, ewma_alpha

ASSETS = ["NoDur", "Durbl", "Manuf", "Enrgy", "Chems", "BusEq", "Telcm", "Utils", "Shops", "Hlth",
          "Money", "Other", "S1V1", "S1V3", "S1V5", "S3V1", "S3V3", "S3V5", "S5V1", "S5V3",
          "S5V5", "S1M1", "S1M3", "S1M5", "S3M1", "S3M3", "S3M5", "S5M1", "S5M3", "S5M5"]
#: name: (index, delta free, lam free); index 0 residual, 1 raw innovations, 2 standardised
VARIANTS = {"residual": (0, False, False), "residual+Q": (0, True, False),
            "innovation": (1, False, False), "innovation, lam": (1, False, True),
            "standardised": (2, False, False), "standardised, lam": (2, False, True)}
Z90 = 1.6448536269514722


@njit(cache=True)
def one_step(y, Z, q, a0, P0, sig2, gamma, delta, log_h, lam, g_ref, index):
    """Return (v, F) (n,) of the one-step forecasts (NaN where y is missing or before it starts).

    Random-walk betas from N(a0, P0 + Q_first); Q_t = diag(q) exp(delta log_h_t); R_t =
    sig2 exp(gamma log_h_t) (index 0) or sig2 (g_t / g_ref)^gamma (1: g from past v^2; 2: from
    past v^2 / F times g_ref), g starting at g_ref.
    """
    n, k = Z.shape
    a, UD, QUD = a0.copy(), np.empty((k, k)), np.empty((k, k))
    udu_factor(P0, UD, 0.0)
    x, s = np.empty(k), np.empty(k)
    v_out, F_out = np.full(n, np.nan), np.full(n, np.nan)
    g = g_ref
    first = 0
    while first < n and np.isnan(y[first]):
        first += 1
    for t in range(first, n):
        udu_factor(np.diag(q * np.exp(delta * log_h[t])), QUD, 0.0)
        predict_random_walk(UD, QUD, x)
        if np.isnan(y[t]):
            continue
        r = sig2 * (np.exp(gamma * log_h[t]) if index == 0 else (g / g_ref) ** gamma)
        v, F, _ = update(a, UD, y[t], Z[t], r, s)
        v_out[t], F_out[t] = v, F
        if index == 1:
            g = (1.0 - lam) * g + lam * v * v
        elif index == 2:
            g = (1.0 - lam) * g + lam * g_ref * v * v / F
    return v_out, F_out


def log_terms(v: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Gaussian one-step log densities (nats)."""
    return -0.5 * (np.log(2 * np.pi * F) + v * v / F)


def fit_variant(name: str, y, Z, a0, P0, log_h, train, q_start, sig2_start) -> dict:
    """Maximise the training terms' sum over (log q, log sig2, gamma[, delta][, logit lam])."""
    index, free_delta, free_lam = VARIANTS[name]
    k = Z.shape[1]
    lam_fixed = ewma_alpha(HALF_LIFE_YEARS * 12)
    obs = train[~np.isnan(y[train])]
    b = np.linalg.lstsq(Z[obs], y[obs], rcond=None)[0]
    g_ref = float(np.mean((y[obs] - Z[obs] @ b) ** 2))

    def unpack(x):
        delta = x[k + 2] if free_delta else 0.0
        lam = 1.0 / (1.0 + np.exp(-x[-1])) if free_lam else lam_fixed
        return np.exp(x[:k]), np.exp(x[k]), x[k + 1], delta, lam

    def run(x):
        q, sig2, gamma, delta, lam = unpack(x)
        return one_step(y, Z, q, a0, P0, sig2, gamma, delta, log_h, lam, g_ref, index)

    def objective(x):
        v, F = run(x)
        value = -np.nansum(log_terms(v, F)[train])
        return value if np.isfinite(value) else 1e10

    bounds = [(np.log(1e-12), 0.0)] * k + [(np.log(1e-8), 0.0), (-1.0, 3.0)]
    bounds += [(-3.0, 3.0)] * free_delta + [(-8.0, 3.0)] * free_lam
    best = None
    for q0 in (np.log(np.maximum(q_start, 1e-10)), np.full(k, np.log(1e-6))):
        x0 = np.r_[q0, np.log(sig2_start), 0.5, [0.0] * free_delta,
                   [np.log(lam_fixed / (1 - lam_fixed))] * free_lam]  # fmt: skip
        res = minimize(objective, x0, method="L-BFGS-B", bounds=bounds,
                       options={"maxfun": 20000})  # fmt: skip
        best = res if best is None or res.fun < best.fun else best
    _, _, gamma, delta, lam = unpack(best.x)
    return {"llf": -float(best.fun), "gamma": float(gamma), "delta": float(delta),
            "lam": float(lam), "v_F": run(best.x)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Fit and score every variant on each series; print the summary against `mle_vol`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=len(ASSETS), help="the first N assets")
    parser.add_argument("--json", help="write per-series figures to this file")
    args = parser.parse_args(argv)
    assets = ASSETS[: args.series]
    factors = list(FRENCH_FACTORS)
    data = load_french(excess=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = compare_methods(data, assets, factors, methods=["mle_vol"], progress=False)
    n_train = comp.settings["n_train"]
    rows = {}
    for name in assets:
        design = prepare_design(data, name, factors, intercept=True)
        m = extend_spec(comp.series[name].fits["mle_vol"], len(design.y)).state_space(
            design.y, design.Z)
        y, Z, k = m.y, m.Z, m.Z.shape[1]
        observed = np.flatnonzero(~np.isnan(y))
        train = observed[(observed < n_train)][k:]  # burn K, as compare_methods
        test = observed[observed >= n_train]
        log_h = VolatilityIndex.default_for(y[:n_train], Z[:n_train], burn=k, ppy=12).log_h(y, Z)
        q_start = np.diag(m.Q[0]).copy()
        sig2_start = float(np.exp(np.mean(np.log(m.R[train]))))
        row = {"mle_vol": float(comp.series[name].table.loc["mle_vol", "log score"])}
        for variant in VARIANTS:
            fit = fit_variant(variant, y, Z, m.a0, m.P0, log_h, train, q_start, sig2_start)
            v, F = fit.pop("v_F")
            row[variant] = {**fit, "score": float(np.mean(log_terms(v, F)[test])),
                            "coverage": float(np.mean(np.abs(v[test]) <= Z90 * np.sqrt(F[test])))}
        rows[name] = row
        print(name, {v: round(row[v]["score"] - row["mle_vol"], 4) for v in VARIANTS}, flush=True)
    print(f"\n{len(assets)} series; each variant's mean log score minus mle_vol's (nats/month):")
    print(f"{'variant':<20}{'diff':>9}{'se':>8}{'better':>8}{'cov90':>7}{'d llf':>8}")
    for variant in VARIANTS:
        d = np.array([r[variant]["score"] - r["mle_vol"] for r in rows.values()])
        llf = np.mean([r[variant]["llf"] - r["residual"]["llf"] for r in rows.values()])
        cover = np.mean([r[variant]["coverage"] for r in rows.values()])
        print(f"{variant:<20}{d.mean():>+9.4f}{d.std(ddof=1) / np.sqrt(d.size):>8.4f}"
              f"{int((d > 0).sum()):>8d}{cover:>7.3f}{llf:>+8.2f}")
    print("d llf: the training log-likelihood's mean gain over `residual` (nats)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
