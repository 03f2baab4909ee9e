"""Bayesian benchmark: `fit_bayes` on the seed case, cold and warm compile caches, per sampler.

The seed case (weekly FPE ~ PFF + ICVT with an intercept, 2016-2022, burn 12; a simulated
stand-in of the same shape when ../shared/data is absent) and the industry case (NoDur, monthly,
on MktRF, SMB, HML and Mom with an intercept: k = 5, the demo's 210 training months, burn 5),
default priors, 4 chains x (1000 tune + 1000 draws), cores=2. Each run is a fresh process:
"cold" points PyTensor's and numba's caches at empty folders (PYTENSOR_FLAGS=base_compiledir=...,
NUMBA_CACHE_DIR=...), "warm" reuses them, and the warm process then fits the case again with
another seed ("again": a notebook's refit, or the next fund of a loop, with the compiled model
kept in the process). Reported: wall time of the `fit_bayes` call (imports
excluded; it includes compiling, sampling, log-likelihood, beta paths and diagnostics), the
sampler's own sampling time, min bulk ESS over Q and R parameters, and ESS per wall second.
Goals (issue 14): warm <= 2 s on the seed case and <= 4 s on the industry case, cold < 60 s,
and warm ESS per second >= 100x pymc-extras' warm run on the seed case.

With ``--peer VENV`` (default /work/bench-venv, skipped when absent) the same data and priors
run through pymc-extras' statespace model (Regression(innovations=True) + MeasurementError)
with that venv's Python; see `bench/bayes_peer.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import environment, print_table, verdict, write_json

GOAL_WARM = {"seed": 2.0, "industry": 4.0}
GOAL_COLD = 60.0
GOAL_ESS_RATIO = 100.0  # min bulk ESS per wall second, warm, against pymc-extras warm
TARGET = "Preferred Income (FPE)"
FACTORS = ["Preferred Stock (PFF)", "Convertibles (ICVT)"]
BURN = 12
PEER_VENV = Path("/work/bench-venv")


def seed_frame():
    """(frame, target, factors, source): the seed data, or a simulated stand-in."""
    from tvbeta.data import load_seed_weekly, shared_data_dir, simulate

    if shared_data_dir() is not None:
        return load_seed_weekly(), TARGET, FACTORS, "seed"
    sim = simulate(365, ["PFF", "ICVT"], Q=[1e-8, 0.01, 3e-5], R=1.4e-5,
                   beta0=[0.0, 0.7, 0.1], intercept=True, seed=7)  # fmt: skip
    return sim.frame, "y", ["PFF", "ICVT"], "simulated"


def industry_frame():
    """(frame, target, factors, source): NoDur's first 210 months of the demo's span."""
    from tvbeta.data import load_french

    frame = load_french(excess=True).loc["1992-04-01":"2017-03-31"].iloc[:210]
    return frame, "NoDur", ["MktRF", "SMB", "HML", "Mom"], "industry"


CASES = {"seed": (seed_frame, BURN), "industry": (industry_frame, 5)}


def worker(case: str, sampler: str, draws: int, tune: int, chains: int, out: str,
           again: bool = False) -> None:
    """One timed fit in this process; writes its figures as JSON to `out`.

    ``again``: then a second fit of the same case with another seed, in the same process (a
    notebook's refit: the compiled model is kept, `tvbeta.estimate.bayes.sampler`), timed too.
    """
    t0 = time.perf_counter()
    import warnings

    from tvbeta.estimate.bayes.fit import fit_bayes

    t_import = time.perf_counter() - t0
    make_frame, burn = CASES[case]
    df, target, factors, source = make_frame()
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_bayes(df, target, factors, burn=burn, draws=draws, tune=tune, chains=chains,
                        cores=2, seed=1, sampler=sampler)  # fmt: skip
    wall = time.perf_counter() - t1
    figures = {"source": source, "import_s": t_import, **_fit_figures(fit, wall)}
    if again:
        t2 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_bayes(df, target, factors, burn=burn, draws=draws, tune=tune,
                            chains=chains, cores=2, seed=2, sampler=sampler)  # fmt: skip
        figures["again"] = _fit_figures(fit, time.perf_counter() - t2)
    Path(out).write_text(json.dumps(figures))


def _fit_figures(fit, wall: float) -> dict:
    from tvbeta.estimate.bayes import diagnostics as dg

    report = dg.check_convergence(fit, warn=False)
    table = report.summary
    return {
        "sampler": fit.settings["sampler"], "fit_wall_s": wall,
        "sample_call_s": fit.settings["wall_time_sample"],
        "sampling_time_s": fit.settings["sampling_time"],
        "min_ess_bulk": float(table["ess_bulk"].min()),
        "max_rhat": float(table["r_hat"].max()), "divergences": report.n_divergent,
        "posterior_mean": {str(i): float(v) for i, v in table["mean"].items()},
    }  # fmt: skip


def run_worker(case: str, sampler: str, cache: Path, args: argparse.Namespace,
               again: bool = False) -> dict:  # fmt: skip
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [sys.executable, "-m", "bench.bayes", "--worker", "--case", case, "--sampler", sampler,
           "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains),
           "--out", out, *(["--again"] if again else [])]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, cwd=Path(__file__).resolve().parents[1])
    figures = json.loads(Path(out).read_text())
    figures["process_s"] = time.perf_counter() - t0
    os.unlink(out)
    return figures


def run_peer(venv: Path, args: argparse.Namespace) -> dict | None:
    """pymc-extras statespace in its own venv (warm: run twice, report the second)."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"[bench] bayes: peer venv {venv} absent, pymc-extras skipped")
        return None
    from tvbeta.estimate.bayes.model import bayes_spec

    df, target, factors, _ = seed_frame()
    spec = bayes_spec(df, target, factors, burn=BURN)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "case.json"
        data.write_text(json.dumps({
            "y": spec.y.tolist(), "Z": spec.Z.tolist(), "a0": spec.a0.tolist(),
            "P0": spec.P0.tolist(), "burn": spec.burn,
            "sigma_eps": spec.resolved.sigma_eps.params["sigma"],
            "sigma_beta": spec.resolved.sigma_beta.params["sigma"],
            "draws": args.draws, "tune": args.tune, "chains": args.chains,
        }))  # fmt: skip
        runs = []
        for _ in range(2):
            out = Path(tmp) / "peer.json"
            t0 = time.perf_counter()
            subprocess.run([str(python), str(Path(__file__).with_name("bayes_peer.py")),
                            str(data), str(out)], check=True)  # fmt: skip
            fig = json.loads(out.read_text())
            fig["process_s"] = time.perf_counter() - t0
            runs.append(fig)
    return {"cold_or_first": runs[0], "warm": runs[1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench bayes", description=__doc__)
    parser.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument("--samplers", default="nutpie,pymc", help="comma-separated samplers")
    parser.add_argument("--cases", default="seed,industry", help="comma-separated: seed, industry")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--peer", type=Path, default=PEER_VENV, help="venv with pymc-extras")
    parser.add_argument("--no-peer", action="store_true", help="skip pymc-extras")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sampler", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--case", default="seed", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.case, args.sampler, args.draws, args.tune, args.chains, args.out, args.again)
        return 0

    from tvbeta.nuts import nutpie_available

    samplers = [s for s in args.samplers.split(",") if s != "nutpie" or nutpie_available()]
    results: dict = {"environment": environment(), "runs": {}}
    rows = []
    status = 0
    for case in args.cases.split(","):
        for sampler in samplers:
            with tempfile.TemporaryDirectory(prefix="tvbeta-bench-cache-") as cache:
                cold = run_worker(case, sampler, Path(cache), args)
                warm = run_worker(case, sampler, Path(cache), args, again=True)
            again = warm.pop("again")
            results["runs"].setdefault(case, {})[sampler] = {"cold": cold, "warm": warm,
                                                             "again": again}  # fmt: skip
            for label, fig, goal in (("cold", cold, GOAL_COLD),
                                     ("warm", warm, GOAL_WARM[case]),
                                     ("again", again, GOAL_WARM[case])):  # fmt: skip
                ok = verdict(fig["fit_wall_s"], goal, at_least=False)
                status = max(status, 0 if ok == "PASS" else 1)
                ess_s = fig["min_ess_bulk"] / fig["fit_wall_s"]
                rows.append([f"tvbeta {sampler}, {warm['source']} ({label})",
                             f"{fig['fit_wall_s']:.1f}", f"{fig['sampling_time_s']:.1f}",
                             f"{fig['min_ess_bulk']:.0f}", f"{ess_s:.0f}",
                             f"{fig['max_rhat']:.3f}", str(fig["divergences"]),
                             f"<= {goal:.0f} s {ok}"])  # fmt: skip
    peer = None if args.no_peer else run_peer(args.peer, args)
    if peer is not None:
        results["peer"] = peer
        for label, fig in (("first", peer["cold_or_first"]), ("warm", peer["warm"])):
            rows.append([f"pymc-extras nutpie ({label})", f"{fig['fit_wall_s']:.1f}",
                         f"{fig['sampling_time_s']:.1f}", f"{fig['min_ess_bulk']:.0f}",
                         f"{fig['min_ess_bulk'] / fig['fit_wall_s']:.0f}",
                         f"{fig['max_rhat']:.3f}", str(fig["divergences"]), ""])  # fmt: skip
    print_table(
        f"fit_bayes, {args.chains} chains x ({args.tune} + {args.draws}), cores=2",
        ["run", "wall s", "sampling s", "min ESS", "ESS/s", "max R-hat", "div", "goal"],
        rows,
        note="wall = the fit call (compile + sample + log-lik + beta paths + checks), "
        "imports excluded; ESS/s = min bulk ESS / wall; pymc-extras runs the seed case",
    )
    seed_runs = results["runs"].get("seed", {})
    if peer is not None and seed_runs:
        peer_rate = peer["warm"]["min_ess_bulk"] / peer["warm"]["fit_wall_s"]
        default = "nutpie" if nutpie_available() else "pymc"  # what sampler="auto" runs
        for sampler, run in seed_runs.items():
            for label in ("warm", "again"):
                ratio = run[label]["min_ess_bulk"] / run[label]["fit_wall_s"] / peer_rate
                run[f"ess_per_s_ratio_vs_peer_{label}"] = ratio
                line = (f"ESS/s, tvbeta {sampler} ({label}: "
                        f"{'a new process' if label == 'warm' else 'a 2nd fit in it'}) / "
                        f"pymc-extras (warm): {ratio:.1f}x")  # fmt: skip
                if sampler == default:  # the goal is the default's; the other for reference
                    ok = verdict(ratio, GOAL_ESS_RATIO, at_least=True)
                    status = max(status, 0 if ok == "PASS" else 1)
                    line += f" (the default sampler; goal >= {GOAL_ESS_RATIO:.0f}x) {ok}"
                print(line)
    if args.json:
        write_json(args.json, results)
    return status


if __name__ == "__main__":
    sys.exit(main())
