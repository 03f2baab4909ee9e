"""Does `fit_qr` reach the maximum likelihood? Its llf against a brute-force reference maximum.

Cases (diagonal Q, each fitted as tvbeta fits it):

- ``funds``: the simulated funds of `bench.funds.simulated_funds` (K = 4 factors, no intercept,
  T = 520 weeks), the model and burn (K) of `fit_mle_funds` / `fit_funds`;
- ``demo``: the 7 industries of the demo model file on MktRF, SMB, HML, Mom with an intercept,
  1992-04 .. 2017-03, the first 210 months (the training rows), the Bayes model's a0, P0 and
  burn (K = 5), as the ``mle`` row of `compare_methods`.

Reference maximum of each case, by a search that shares no code with `fit_qr`'s: the
log-likelihood over the natural variances x = (Q_11 .. Q_kk, R) / scale (scale: s2 / var(z_i)
and s2, s2 the OLS residual variance), bounded to [0, 100] (fit_qr's upper bound; its lower,
1e-12 of the scale, is 0 to within ~1e-9 nats). Not in log space: a variance at 0 is a bound
with a finite projected gradient, not an ever flatter direction.

1. score ``--grid`` points (log-uniform: Q over 1e-8 .. 10 of its scale, R over 0.05 .. 1.5)
   with one batched filter call (`loglik_batch`);
2. L-BFGS-B (ftol 0, gtol 1e-12, the exact gradient) from the ``--climbs`` best points that lie
   apart (log10 distance >= 1) and from fit_qr's optimum, each variance also tried at 0;
3. the best end.

``--statsmodels N``: for the first N cases of each set, statsmodels' own filter
(`TVPRegression`, an independent implementation) scores the reference point (it must equal
tvbeta's filter there) and its own optimiser, started at the reference point, must not climb
higher (by > 1e-6 nats).

Reported: how many cases fit_qr is short of the reference by > 1e-6 and > 1e-3 nats, the
worst shortfall, and fit_qr's objective calls per case (value and gradient, `LoglikGrad`: the
machine-independent cost); ``--one-start`` also runs fit_qr with ``n_starts=1``.

``--volatility``: also `fit_mle(..., noise="volatility")` (`fit_qr_volatility`: R_t = R h_t^gamma)
of the 12 industries' training spans (the first 70% of the rows, MktRF SMB HML Mom and an
intercept, as `bench.menu`) against the profile maximum over gamma: at each gamma of a grid over
[-1, 3] by 0.1, then a bounded scalar maximisation next to the best, fit_qr of the constant-R
model of y / s on Z / s, s_t = h_t^(gamma/2), whose log-likelihood is the volatility model's
plus the sum of log s_t over the terms (a change of variables).

Run: ``.venv/bin/python scripts/mle_reference.py [--funds 1000] [--statsmodels 20]``
(0.2-0.6 s per fund on 2 shared cores: 1,000 funds in 3-10 minutes; `--json PATH` writes
every case's figures).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import minimize, minimize_scalar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench, run from anywhere

from bench.common import write_json
from bench.funds import FACTORS, simulated_funds

from tvbeta.estimate.mle import LoglikGrad, MLEConvergenceWarning, fit_qr
from tvbeta.kalman import StateSpace, loglik_batch
from tvbeta.kalman.arrays import KalmanNumericalError, burn_row

DEMO_TARGETS = ["NoDur", "Durbl", "Manuf", "Enrgy", "BusEq", "Hlth", "Money"]
DEMO_FACTORS = ["MktRF", "SMB", "HML", "Mom"]
DEMO_TRAIN = 210
UPPER = 100.0  # fit_qr's default upper bound, times the scale


def fund_cases(n_funds: int) -> list[tuple[str, StateSpace, int]]:
    """(name, arrays, burn) of the simulated funds, as `fit_mle_funds` builds them."""
    from tvbeta.model import KalmanSpec

    df = simulated_funds(n_funds)
    spec = KalmanSpec(K=len(FACTORS))
    Z = df[FACTORS].to_numpy()
    return [(name, spec.state_space(df[name].to_numpy(), Z), spec.K)
            for name in df.columns if name not in FACTORS]  # fmt: skip


def demo_cases() -> list[tuple[str, StateSpace, int]]:
    """(name, arrays, burn) of the demo industries' training rows, as `compare_methods` fits."""
    from tvbeta.data import load_french
    from tvbeta.estimate.bayes.model import bayes_spec
    from tvbeta.model import KalmanSpec

    df = load_french(excess=True).loc["1992-04-01":"2017-03-31"].iloc[:DEMO_TRAIN]
    out = []
    for target in DEMO_TARGETS:
        bs = bayes_spec(df, target, DEMO_FACTORS, intercept=True)
        out.append((target, KalmanSpec.from_parts(bs.model).state_space(bs.y, bs.Z), bs.burn))
    return out


def volatility_rows() -> list[dict]:
    """fit_qr_volatility's llf, gamma and objective calls against the profile maximum."""
    from tvbeta.data import FRENCH_FACTORS, load_french
    from tvbeta.estimate.mle import fit_mle
    from tvbeta.model import KalmanSpec

    df = load_french()
    df = df.iloc[: int(0.7 * len(df))]
    targets = [c for c in df.columns if c in VOLATILITY_TARGETS]
    rows = []
    for target in targets:
        _Calls.n = 0
        fit = fit_mle(df, target, list(FRENCH_FACTORS), noise="volatility")
        calls = _Calls.n
        design = fit.result.design
        m = KalmanSpec(K=len(FRENCH_FACTORS)).set_intercept().state_space(design.y, design.Z)
        log_h = fit.noise.log_h(design.y, design.Z)
        terms = np.zeros(m.n, bool)
        terms[burn_row(m.y, fit.burn) :] = True
        terms &= ~np.isnan(m.y)

        def profile(gamma: float, m=m, log_h=log_h, terms=terms, burn=fit.burn) -> float:
            s = np.exp(0.5 * gamma * log_h)
            scaled = m._replace(y=m.y / s, Z=np.ascontiguousarray(m.Z / s[:, None]))
            return fit_qr(scaled, burn=burn, standard_errors=False).llf - np.log(s[terms]).sum()

        grid = np.linspace(-1.0, 3.0, 41)
        values = np.array([profile(g) for g in grid])
        i = int(np.argmax(values))
        res = minimize_scalar(lambda g: -profile(g), bounds=(grid[max(i - 1, 0)],
                              grid[min(i + 1, grid.size - 1)]), method="bounded",
                              options=dict(xatol=1e-5))  # fmt: skip
        ref = max(-res.fun, values[i])
        rows.append(dict(case=target, llf=fit.llf, gamma=float(fit.estimate.params[-1]),
                         ref=ref, ref_gamma=float(res.x if -res.fun >= values[i] else grid[i]),
                         short=ref - fit.llf, calls=calls))  # fmt: skip
    return rows


VOLATILITY_TARGETS = ["NoDur", "Durbl", "Manuf", "Enrgy", "Chems", "BusEq", "Telcm", "Utils",
                      "Shops", "Hlth", "Money", "Other"]  # fmt: skip


class _Calls:
    """The objective calls (value and gradient, `LoglikGrad`) since the count was reset."""

    n = 0


def _counted(call):
    """Wrap `LoglikGrad.__call__` to count calls (the search's cost, machine-independent)."""

    @functools.wraps(call)
    def counted(self, Q, R):
        _Calls.n += 1
        return call(self, Q, R)

    return counted


def _scales(m: StateSpace) -> np.ndarray:
    """(k + 1,) the scale of each variance: s2 / var(z_i) (s2 for a constant column), s2."""
    obs = ~np.isnan(m.y)
    y, Z = m.y[obs], m.Z[obs]
    resid = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
    s2 = float(resid @ resid) / max(len(y) - Z.shape[1], 1)
    z_var = Z.var(axis=0)
    return np.r_[np.where(z_var > 1e-12, s2 / np.maximum(z_var, 1e-300), s2), s2]


def reference_max(
    m: StateSpace, burn: int, starts: list[np.ndarray], n_grid: int, n_climbs: int, seed: int = 0
) -> tuple[float, np.ndarray]:
    """Return (max log-likelihood, its (k + 1,) variances): screened grid + bounded climbs.

    starts: extra (k + 1,) variance vectors to climb from (fit_qr's optimum).
    """
    k = m.k
    scale = _scales(m)
    w = np.ones(m.n)
    w[: burn_row(m.y, burn)] = 0.0
    f = LoglikGrad(m, w)

    def negll(x: np.ndarray) -> tuple[float, np.ndarray]:
        v = x * scale
        try:
            val, dQ, dR = f(np.diag(v[:-1]), v[-1])
        except ArithmeticError:
            return 1e300, np.zeros_like(x)
        return -val, -np.r_[np.diag(dQ), dR] * scale

    rng = np.random.default_rng(seed)
    grid = np.column_stack(
        [
            10 ** rng.uniform(-8, 1, (n_grid, k)),
            10 ** rng.uniform(np.log10(0.05), np.log10(1.5), n_grid),
        ]
    )
    Qs = np.stack([np.diag(g[:-1] * scale[:-1])[None] for g in grid])
    Rs = grid[:, -1:] * scale[-1]
    try:
        score = loglik_batch(m.y[None], m.Z[None], m.T[None], Qs, Rs, m.a0[None], m.P0[None],
                             burn=burn)  # fmt: skip
    except KalmanNumericalError:
        score = np.array([-negll(g)[0] for g in grid])
    order = np.argsort(-np.nan_to_num(score, nan=-np.inf))
    chosen: list[np.ndarray] = []
    for i in order:
        if len(chosen) == n_climbs:
            break
        if all(np.max(np.abs(np.log10(grid[i]) - np.log10(c))) >= 1 for c in chosen):
            chosen.append(grid[i])
    bounds = [(0.0, UPPER)] * (k + 1)
    best_val, best_x = np.inf, None
    for x0 in chosen + [np.clip(s / scale, 0.0, UPPER) for s in starts]:
        res = minimize(
            negll,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options=dict(maxiter=20000, maxfun=40000, ftol=0.0, gtol=1e-12),
        )
        x = res.x
        val = negll(x)[0]
        for i in range(k):  # a variance the climb left just above 0
            trial = x.copy()
            trial[i] = 0.0
            tv = negll(trial)[0]
            if tv <= val:
                x, val = trial, tv
        if val < best_val:
            best_val, best_x = val, x
    return -best_val, best_x * scale


def statsmodels_check(m: StateSpace, burn: int, v: np.ndarray) -> tuple[float, float]:
    """(statsmodels' llf at variances v, its optimiser's best llf started at v)."""
    from tvbeta.estimate.statsmodels_twin import TVPRegression

    first = int(np.flatnonzero(~np.isnan(m.y))[0])
    y, Z = m.y[first:], m.Z[first:]
    # tvbeta's a0 is beta_{-1}: rows before the first observation only predict (T = I), so
    # they add their Q to P0
    P0 = m.P0 + first * np.diag(v[:-1])
    twin = TVPRegression(y, Z, a0=m.a0, P0=P0, burn=burn_row(y, burn))
    at = twin.loglike(np.maximum(v, 1e-300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = twin.fit(start_params=np.maximum(v, 1e-30 * v.max()), disp=False, maxiter=5000)
    return float(at), float(max(at, res.llf))


def main(argv: list[str] | None = None) -> int:
    """Measure fit_qr's shortfall against the reference on the chosen sets."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--funds", type=int, default=1000, help="simulated funds (1000)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo industries")
    parser.add_argument("--grid", type=int, default=400, help="screened points (400)")
    parser.add_argument("--climbs", type=int, default=8, help="climbs from the grid (8)")
    parser.add_argument(
        "--statsmodels",
        type=int,
        default=0,
        metavar="N",
        help="statsmodels check of the first N cases of each set (0)",
    )
    parser.add_argument("--one-start", action="store_true", help="also fit_qr(n_starts=1)")
    parser.add_argument("--volatility", action="store_true",
                        help="also the volatility-scaled R of the 12 industries")  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="write every case's figures here")
    args = parser.parse_args(argv)

    sets = {"funds": fund_cases(args.funds)} if args.funds else {}
    if not args.no_demo:
        sets["demo"] = demo_cases()
    warnings.simplefilter("ignore", MLEConvergenceWarning)
    LoglikGrad.__call__ = _counted(LoglikGrad.__call__)
    report: dict[str, list[dict]] = {}
    for set_name, cases in sets.items():
        rows: list[dict] = []
        t_fit = t_ref = 0.0
        for i, (name, m, burn) in enumerate(cases):
            t0, _Calls.n = time.perf_counter(), 0
            fit = fit_qr(m, burn=burn, standard_errors=False)
            t_fit += time.perf_counter() - t0
            row = dict(case=name, llf=fit.llf, n_starts=fit.n_starts, calls=_Calls.n)
            if args.one_start:
                row["llf_one_start"] = fit_qr(m, burn=burn, n_starts=1,
                                              standard_errors=False).llf  # fmt: skip
            t0 = time.perf_counter()
            ref, v = reference_max(m, burn, [np.r_[np.diag(fit.Q), fit.R]], args.grid,
                                   args.climbs)  # fmt: skip
            t_ref += time.perf_counter() - t0
            row.update(ref=ref, short=ref - fit.llf, ref_params=v.tolist(),
                       fit_params=np.r_[np.diag(fit.Q), fit.R].tolist())  # fmt: skip
            if i < args.statsmodels:
                row["sm_at_ref"], row["sm_fit"] = statsmodels_check(m, burn, v)
            rows.append(row)
        report[set_name] = rows
        short = np.array([r["short"] for r in rows])
        worst = rows[int(np.argmax(short))]
        print(f"{set_name}: {len(rows)} cases; fit_qr short of the reference by > 1e-6 nats: "
              f"{int((short > 1e-6).sum())}, > 1e-3: {int((short > 1e-3).sum())}; worst "
              f"{short.max():.3g} nats ({worst['case']}); objective calls per case: mean "
              f"{np.mean([r['calls'] for r in rows]):.1f}, median "
              f"{np.median([r['calls'] for r in rows]):.0f}; time fit_qr {t_fit:.1f} s, "
              f"reference {t_ref:.1f} s")  # fmt: skip
        if args.one_start:
            one = np.array([r["ref"] - r["llf_one_start"] for r in rows])
            print(
                f"  n_starts=1: short by > 1e-6: {int((one > 1e-6).sum())}, > 1e-3: "
                f"{int((one > 1e-3).sum())}, worst {one.max():.3g} nats"
            )
        checked = [r for r in rows if "sm_fit" in r]
        if checked:
            gap = max(abs(r["sm_at_ref"] - r["ref"]) for r in checked)
            climb = max(r["sm_fit"] - r["ref"] for r in checked)
            print(
                f"  statsmodels on {len(checked)}: |its llf - tvbeta's| at the reference "
                f"<= {gap:.2g} nats; its optimiser from there climbs by at most "
                f"{climb:.2g} nats"
            )
    if args.volatility:
        rows = report["volatility"] = volatility_rows()
        short = np.array([r["short"] for r in rows])
        worst = rows[int(np.argmax(short))]
        print(f"volatility: {len(rows)} industries; short of the profile maximum by > 1e-6 nats: "
              f"{int((short > 1e-6).sum())}, > 1e-3: {int((short > 1e-3).sum())}; worst "
              f"{short.max():.3g} nats ({worst['case']}); objective calls of fit_mle per "
              f"industry: median {np.median([r['calls'] for r in rows]):.0f}")  # fmt: skip
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
