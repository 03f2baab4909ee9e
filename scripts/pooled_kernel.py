"""What the batched likelihood costs: one value + gradient of J funds, pooled vs separate.

For random-walk funds (T = I, k a constant) of n weekly rows, timed in the same run and
interleaved (`bench.common.compare`, medians): `PooledLoglikOp`'s kernels over all funds
fund after fund, and J calls of the single-fund kernels `KalmanLoglikOp` runs (the Python
loop of a per-fund model). Value and gradient: forward sweep with tape, then the adjoint sweep.
With ``--betas mean_reverting`` the same for mean-reverting betas (phi = 0.99 per period): the
pooled Op built with ``reversion=True`` against J calls of the terms' collapsed kernels
(`tvbeta.kalman.collapsed.collapsed_tape_kernel` and its adjoint, which the pooled Op runs per
fund; the single-fund model's log density runs the cheaper sum kernel instead).

Run: ``.venv/bin/python scripts/pooled_kernel.py [--funds 12 100] [--n 60 520] [--k 5]
[--betas mean_reverting]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.common, run from anywhere

from bench.common import compare, fmt_ratio, fmt_time, print_table


def calls(J: int, n: int, k: int, seed: int = 0, betas: str = "random_walk") -> dict:
    """Return the two ways to get every fund's value and gradient, as callables."""
    from tvbeta.estimate.bayes.op import (
        _adjoint,
        _forward,
        _pooled_adjoint,
        _pooled_forward,
    )
    from tvbeta.kalman.collapsed import (
        collapsed_adjoint_kernel,
        collapsed_tape_kernel,
        collapsed_tape_width,
    )
    from tvbeta.kalman.filter import constant_k

    rng = np.random.default_rng(seed)
    Z = np.concatenate([np.ones((J, n, 1)), 0.02 * rng.standard_normal((J, n, k - 1))], axis=2)
    y = np.einsum("jtk,jtk->jt", Z, 1.0 + np.cumsum(0.01 * rng.standard_normal((J, n, k)), 1))
    y += 0.01 * rng.standard_normal((J, n))
    Q, R = np.tile(np.eye(k) * 1e-4, (J, 1, 1)), np.full((J, 1), 1e-4)
    T, a0, P0 = np.eye(k), np.zeros((J, k)), np.tile(np.eye(k), (J, 1, 1))
    w, static = np.ones((J, n)), constant_k(k)
    reversion, phi = betas == "mean_reverting", np.full((J, k), 0.99)
    T_or_phi = phi if reversion else T

    def pooled():
        ll, tape = _pooled_forward(Q, R, y, Z, T_or_phi, a0, P0, static, reversion)
        return _pooled_adjoint(w, ll, tape, y, Z, T_or_phi, R, static, reversion)

    def separate():
        for j in range(J):
            if reversion:
                ll, tape = np.empty(n), np.empty((n, collapsed_tape_width(k)))
                collapsed_tape_kernel(y[j], Z[j], phi[j], Q[j], R[j], a0[j], P0[j], ll, tape,
                                      static)  # fmt: skip
                dQ, dR, dphi = np.empty((k, k)), np.empty(1), np.empty(k)
                collapsed_adjoint_kernel(y[j], Z[j], phi[j], w[j], tape, dQ, dR, dphi, static)
            else:
                ll, tape = _forward(Q[j], R[j], y[j], Z[j], T, a0[j], P0[j], static)
                _adjoint(w[j], ll, tape, y[j], Z[j], T, R[j], static)

    fns = {"pooled": pooled, "separate calls": separate}
    for fn in fns.values():
        fn()  # compile or cache load
    return fns


def main(argv: list[str] | None = None) -> int:
    """Time the two for each (funds, n) pair and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--funds", type=int, nargs="+", default=[12, 100])
    parser.add_argument("--n", type=int, nargs="+", default=[60, 520])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--betas", choices=["random_walk", "mean_reverting"],
                        default="random_walk")  # fmt: skip
    args = parser.parse_args(argv)
    rows = []
    for J, n in zip(args.funds, args.n, strict=True):
        t = compare(calls(J, n, args.k, betas=args.betas), repeat=args.repeat, target=0.2)
        base = t["pooled"].median
        rows += [[f"{J} x {n} x k={args.k}", name, fmt_time(x.median), fmt_ratio(x.median / base)]
                 for name, x in t.items()]  # fmt: skip
    print_table("Value + gradient of every fund (median of interleaved repeats)",
                ["funds x rows", "how", "time", "vs pooled"], rows)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
