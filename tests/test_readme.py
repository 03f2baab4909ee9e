"""The README's Python blocks run as written and show what the text around them says.

Each ```python block is executed unchanged as a script file (``python block.py``, so a block
that starts processes must guard itself as a user's script must: Dask's workers import the
script again), in a fresh Python (the one running pytest), in an empty temporary folder (the
blocks write betas.html and two CSV files; the repository is not touched). A few lines around
the block, under ``if __name__ == "__main__"``, record every warning and, after the block,
read a few values from the block's own variables; the checks below compare them with what the
README states, using references outside the code under test where there are numbers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)

BEFORE = """\
import warnings as _warnings
if __name__ == "__main__":
    _recording = _warnings.catch_warnings(record=True)
    _caught = _recording.__enter__()
    _warnings.simplefilter("always")
"""
AFTER = """
if __name__ == "__main__":
    import json as _json, sys as _sys
    _facts = {_k: eval(_e) for _k, _e in _json.loads(open(_sys.argv[1]).read()).items()}
    _facts["warnings"] = [[w.category.__name__, str(w.message)] for w in _caught]
    print("\\0" + _json.dumps(_facts, default=float))
"""


def run_block(index: int, tmp_path: Path, probes: dict[str, str]) -> dict:
    """Run README block ``index`` as a script and return ``probes`` evaluated in it."""
    script, probe_file = tmp_path / "block.py", tmp_path / "probes.json"
    script.write_text(BEFORE + BLOCKS[index] + AFTER)
    probe_file.write_text(json.dumps(probes))
    proc = subprocess.run(
        [sys.executable, str(script), str(probe_file)],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, f"README block {index} failed:\n{proc.stderr[-3000:]}"
    printed, _, facts = proc.stdout.rpartition("\0")
    return {**json.loads(facts), "stdout": printed}


def block_with(text: str) -> int:
    """The index of the one block containing ``text``."""
    found = [i for i, b in enumerate(BLOCKS) if text in b]
    assert len(found) == 1, f"{len(found)} README blocks contain {text!r}"
    return found[0]


def test_every_block_is_checked_below():
    """Six blocks: recommended MLE, the seed's path, own data, Bayes, the model menu, many funds
    (a new one needs a test)."""
    assert len(BLOCKS) == 6


def test_the_recommended_example_prints_betas_that_move(tmp_path):
    """The reference for "moves" is the random walk fit_mle itself reports: with Q[MktRF] =
    q the beta's change over n months has sd sqrt(n q) (0.49 for q = 3e-4, n = 819); the
    smoothed path must move by at least a fifth of that, where the seed's scalar path (next
    test) moves by less than 0.002."""
    facts = run_block(block_with("fit = tvbeta.fit_mle(df, target, factors)"), tmp_path, {
        "q_mkt": "float(fit.params['Q[MktRF]'])",
        "n": "len(df)",
        "moves": "(betas.max() - betas.min()).to_dict()",
        "dims": "list(fit.result.to_xarray().sizes)",
        "on_bound": "list(fit.summary().index[fit.summary()['at bound']])",
    })  # fmt: skip
    sd_walk = (facts["n"] * facts["q_mkt"]) ** 0.5
    assert facts["moves"]["MktRF"] > 0.2 * sd_walk > 0.05
    assert facts["moves"]["Mom"] > 0.5  # README: "the Mom beta by about 1.2"
    assert facts["dims"] == ["time", "state", "state_"]
    assert (tmp_path / "betas.html").stat().st_size > 0
    assert "Q[MktRF]" in facts["stdout"] and "at bound" in facts["stdout"]
    assert facts["on_bound"] == ["Q[Intercept]", "Q[SMB]"]  # as the README says
    assert not [m for c, m in facts["warnings"] if c == "MLEConvergenceWarning"]  # a finding


def test_the_seed_path_warns_at_the_lower_bound_and_its_betas_are_flat(tmp_path):
    """README: q stops at 1e-8 with a ScalarMLEWarning, no smoothed beta moves by more than
    0.002 (a random walk with q = 1e-8 has sd sqrt(807 q) = 0.003 over 807 months), the
    Dataset has dims (time, state, state_), log-likelihood 1743.7."""
    facts = run_block(block_with("set_Q_from_mle"), tmp_path, {
        "q": "spec.q_scalar",
        "moves": "float((result.beta_smooth.max() - result.beta_smooth.min()).max())",
        "dims": "list(result.to_xarray().sizes)",
        "llf": "result.log_likelihood",
    })  # fmt: skip
    assert facts["q"] == 1e-8
    warned = [m for c, m in facts["warnings"] if c == "ScalarMLEWarning"]
    assert warned and "stopped at its lower bound 1e-08" in warned[0]
    assert "The betas barely move" in warned[0]
    assert facts["moves"] < 0.002
    assert facts["dims"] == ["time", "state", "state_"]
    assert round(facts["llf"], 1) == 1743.7
    assert "q = 1e-08 for every state" in facts["stdout"]


def test_the_llf_explanation_adds_up(tmp_path):
    """The README's decomposition of 1838.9 - 1743.7: the MLE's Q and R on the seed spec's
    initial state and burn score 1823.6, and burn 5 instead of 12 adds 15.3 nats."""
    source = BLOCKS[block_with("set_Q_from_mle")] + (
        "\nimport dataclasses\n"
        "fit = tvbeta.fit_mle(df, target, factors)\n"
        "mixed = dataclasses.replace(spec, Q=fit.spec.Q, R=fit.spec.R)\n"
        "ll12 = tvbeta.KalmanEngine(mixed).run(df, target, factors, burn=12).log_likelihood\n"
        "ll5 = tvbeta.KalmanEngine(mixed).run(df, target, factors, burn=5).log_likelihood\n"
    )
    BLOCKS.append(source)
    try:
        facts = run_block(len(BLOCKS) - 1, tmp_path, {"fit": "fit.llf", "ll12": "ll12",
                                                      "ll5": "ll5"})
    finally:
        BLOCKS.pop()
    assert round(facts["fit"], 1) == 1838.9
    assert round(facts["ll12"], 1) == 1823.6
    assert round(facts["ll5"] - facts["ll12"], 1) == 15.3
    assert abs(facts["ll5"] - facts["fit"]) < 0.01  # the initial state: < 0.01 nats


def test_the_own_data_block_reports_the_120_dropped_factor_rows(tmp_path):
    """By hand: factors 1990-01 .. 2017-03, fund 2000-01 .. 2017-03: 120 monthly factor rows
    (1990-1999) have no fund row, none the other way."""
    facts = run_block(block_with("load_fund_and_factors"), tmp_path, {
        "counts": "[data.fund_only, data.factors_only]",
        "rows": "len(data.df)",
    })  # fmt: skip
    assert facts["counts"] == [0, 120]
    assert facts["rows"] == 207  # 2000-01 .. 2017-03
    dropped = [m for c, m in facts["warnings"] if c == "DataWarning"]
    assert any("120 factor row(s) outside the fund's dates (1990-01-31, 1990-02-28, 1990-03-31 "
               "and 117 more) were dropped" in m for m in dropped)  # fmt: skip


@pytest.mark.slow
def test_the_bayes_block_prints_the_posterior_and_the_comparison(tmp_path):
    """Runs as written (500 + 500 draws, the comparison with LFO); prints Q/R and the table."""
    facts = run_block(block_with("bayes = tvbeta.fit_bayes"), tmp_path, {
        "qr": "list(bayes.qr_summary().index)",
        "methods": "list(comparison.summary.index)",
    })  # fmt: skip
    assert "Q[MktRF]" in facts["qr"] and "R" in facts["qr"]
    assert len(facts["methods"]) == 5
    assert (tmp_path / "bayes_vs_mle_betas.html").stat().st_size > 100_000  # plotly.js embedded


def test_the_model_menu_block_estimates_gamma_and_alpha_probabilities(tmp_path):
    """Runs as written (300 + 300 draws): gamma by MLE with a standard error and by NUTS, and
    P(alpha > 0) in [0, 1], filtered and smoothed."""
    facts = run_block(block_with('noise="volatility"'), tmp_path, {
        "gamma_mle": "float(mle.params['gamma'])",
        "gamma_se": "float(mle.se['gamma'])",
        "gamma_post": "float(fit.summary().loc['gamma', 'posterior median'])",
        "alpha": "fit.alpha_probability().to_numpy().tolist()",
    })  # fmt: skip
    assert 0 < facts["gamma_se"] < 0.5
    assert abs(facts["gamma_post"] - facts["gamma_mle"]) < 3 * facts["gamma_se"]
    assert all(0 <= p <= 1 for row in facts["alpha"] for p in row)
    assert (tmp_path / "alpha.html").stat().st_size > 0


def test_the_many_funds_block_fits_every_fund_on_a_cluster_and_writes_the_page(tmp_path):
    """Runs as written (a 2-worker LocalCluster; Bayes 2 x (200 + 200) on two funds into a
    store): the MLE Dataset has the six funds, the drift ranking covers them, the Bayes store
    holds one part per fund (tests/test_fit_funds.py checks resuming)."""
    pytest.importorskip("distributed")
    facts = run_block(block_with("tvbeta.fit_funds"), tmp_path, {
        "funds": "list(mle['fund'].values)",
        "ranked": "sorted(style_drift(mle).index)",
        "p": "bayes['p_alpha_filtered'].isel(time=-1).values.tolist()",
    })  # fmt: skip
    assert facts["funds"] == ["NoDur", "Durbl", "Manuf", "Enrgy", "BusEq", "Hlth"]
    assert facts["ranked"] == sorted(facts["funds"])
    assert all(0 <= p <= 1 for p in facts["p"])
    assert len(list((tmp_path / "bayes_funds").glob("part-*.zarr"))) == 2
    assert (tmp_path / "funds.html").stat().st_size > 1_000_000  # plotly.js embedded
