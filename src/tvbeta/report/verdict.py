"""The plain-language answer to "does Bayes beat the grid?", computed from the score tables.

The evidence is the mean out-of-sample log score (nats per step); a difference is clear when
it exceeds two standard errors: paired over the test steps for one series
(`compare._add_differences`), of the per-series differences across series (`Comparison.summary`).
"Bayes" is plain ``bayes``, or ``bayes_stacked`` when the comparison stacked the model menu's
variants: the stack is the Bayesian predictive chosen with the training span only, so it answers
the question without looking at the test rows (picking the variant with the best test score
would).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from tvbeta.evaluate.comparison import Comparison
from tvbeta.evaluate.settings import BAYES_VARIANTS
from tvbeta.viz.compare import method_label

REFERENCE = "bayes"
STACKED = "bayes_stacked"
#: What Bayes is compared against in the verdict, in this order (the seed's grid first).
BASELINES = ("grid_seed", "mle")
CLEAR = 2.0  # standard errors


class Difference(NamedTuple):
    """Bayes minus a baseline: mean over series, its se, per-series values and paired ses.

    ``method``: the Bayes method compared (``bayes`` or ``bayes_stacked``).
    """

    baseline: str
    mean: float
    se: float
    per_series: pd.Series
    paired_se: pd.Series
    method: str = REFERENCE

    @property
    def ahead(self) -> int:
        """Number of series where Bayes is ahead by more than CLEAR paired standard errors."""
        return int(np.sum(self.per_series > CLEAR * self.paired_se))

    @property
    def behind(self) -> int:
        """Number of series where Bayes is behind by more than CLEAR paired standard errors."""
        return int(np.sum(self.per_series < -CLEAR * self.paired_se))


class Verdict(NamedTuple):
    """The answer: a headline, its supporting sentences, and the differences per baseline."""

    headline: str
    sentences: list[str]
    differences: dict[str, Difference]


def difference(comparison: Comparison, baseline: str,
               method: str = REFERENCE) -> Difference | None:  # fmt: skip
    """Return ``method`` minus ``baseline`` in mean log score, per series and averaged, or None.

    Paired over each series' test steps from its forecasts; plain Bayes, of a comparison that
    holds only its tables, from their paired columns (baseline minus bayes, sign flipped).
    """
    d, se_i = {}, {}
    for name, s in comparison.series.items():
        if {method, baseline} <= set(s.forecasts):
            x = s.forecasts[method].log_density - s.forecasts[baseline].log_density
            d[name] = float(x.mean())
            se_i[name] = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else np.nan
        elif method == REFERENCE and {method, baseline} <= set(s.table.index):
            d[name] = -float(s.table.loc[baseline, f"diff vs {REFERENCE}"])
            se_i[name] = float(s.table.loc[baseline, "diff se"])
    if not d:
        return None
    d, se_i = pd.Series(d), pd.Series(se_i)
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float(se_i.iloc[0])
    return Difference(baseline, float(d.mean()), se, d, se_i, method)


def _wins(scores: pd.DataFrame) -> pd.Series:
    return scores.idxmax(axis=0).value_counts()


def _headline(d: Difference, n: int) -> str:
    what = method_label(d.baseline) if d.baseline != "grid_seed" else "the seed's grid search"
    short = "grid" if d.baseline.startswith("grid") else method_label(d.baseline)
    who = "Bayes" if d.method == REFERENCE else method_label(d.method)
    num = f"{who} − {short}: {d.mean:+.3f} nats/step, se {d.se:.3f}"
    subject = "Bayesian estimation of Q and R" + (
        "" if d.method == REFERENCE else
        " (the model menu's Bayes variants stacked by their training-span scores)")  # fmt: skip
    if d.mean > CLEAR * d.se:
        return f"Yes: {subject} beat {what} out of sample ({num})."
    if d.mean < -CLEAR * d.se:
        return f"No: {what} beat {subject} out of sample ({num})."
    return (
        f"No clear difference: {subject} and {what} are within "
        f"{CLEAR:g} standard errors out of sample ({num}, {n} series)."
    )


def verdict(comparison: Comparison, *, failed_sampling: Sequence[str] = ()) -> Verdict:
    """Return the headline and supporting sentences from the score tables.

    Parameters
    ----------
    comparison : Comparison
        From `compare_methods` or `Comparison.load`.
    failed_sampling : sequence of str
        Series whose Bayesian fit failed a convergence check (a caveat).

    Returns
    -------
    Verdict
        The headline, the sentences and the differences of Bayes (``bayes_stacked`` when it
        ran, else ``bayes``: module docstring) against each baseline of `BASELINES` that was
        run.
    """
    tables = comparison.tables
    n = len(tables)
    scores = pd.DataFrame({s: t["log score"] for s, t in tables.items()})
    wins = _wins(scores)
    sentences = []
    lead = STACKED if STACKED in scores.index else REFERENCE
    diffs = {b: d for b in BASELINES if (d := difference(comparison, b, lead)) is not None}
    if not diffs:  # a stack without forecasts to pair (hand-made tables): plain Bayes
        lead = REFERENCE
        diffs = {b: d for b in BASELINES if (d := difference(comparison, b)) is not None}
    who = "Bayes" if lead == REFERENCE else method_label(lead)
    if lead in scores.index:
        others = ", ".join(f"{method_label(m)} {c}" for m, c in wins.items() if m != lead)
        sentences.append(
            f"{who} had the best out-of-sample log score in "
            f"{int(wins.get(lead, 0))} of {n} series"
            + (f" (other winners: {others})." if others else ".")
        )
    else:
        sentences.append(
            "Best out-of-sample log score per series: "
            + ", ".join(f"{method_label(m)} {c} of {n}" for m, c in wins.items())
            + "."
        )
    for d in diffs.values():
        where = "across series" if n > 1 else "paired over the test steps"
        sentences.append(
            f"{who} minus {method_label(d.baseline)}: {d.mean:+.3f} nats/step on average "
            f"(se {d.se:.3f} {where}); {who} was ahead by more than {CLEAR:g} paired se in "
            f"{d.ahead} and behind by more than {CLEAR:g} in {d.behind} of {len(d.per_series)} "
            "series."
        )
    mean_scores = scores.mean(axis=1)
    best = str(mean_scores.idxmax())
    sentences.append(
        f"Highest mean log score across series: {method_label(best)} "
        f"({mean_scores[best]:.3f} nats/step)."
    )
    if all("coverage 90%" in t for t in tables.values()):
        cov = pd.DataFrame({s: t["coverage 90%"] for s, t in tables.items()}).mean(axis=1)
        sentences.append(
            "Mean coverage of the 90% prediction intervals: "
            + ", ".join(f"{method_label(m)} {v:.2f}" for m, v in cov.items())
            + " (nominal 0.90)."
        )
    lfo = comparison.lfo_table
    if not lfo.empty:
        gain = lfo["LFO - bayes"]
        ahead = int(np.sum(gain > CLEAR * lfo["se"]))
        sentences.append(
            f"Updating the posterior through the test span (leave-future-out) changes the Bayes "
            f"log score by {gain.mean():+.3f} nats/step on average; more than {CLEAR:g} paired "
            f"se better in {ahead} of {len(lfo)} series ({int(lfo['refits'].sum())} refits)."
        )
    if lead == STACKED:
        sentences += _stacking(tables)
    if 1 < n < 5 and diffs:
        sentences.append(f"With {n} series the across-series standard error is itself rough.")
    if failed_sampling:
        sentences.append(
            f"Caution: the Bayesian posterior failed a convergence check in "
            f"{len(failed_sampling)} of {n} series ({', '.join(failed_sampling)}); "
            "see Sampling diagnostics."
        )
    first = next(iter(diffs.values()), None)
    if first is not None:
        headline = _headline(first, n)
    else:
        headline = f"Best mean out-of-sample log score: {method_label(best)}."
    menu = _menu(comparison, [m for m in scores.index if m != lead])
    if menu:  # the question asked of each variant run, not of plain Bayes alone
        headline = f"{headline} {menu}"
    return Verdict(headline, sentences, diffs)


def _stacking(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Say the stack's weights per series, and where they are close to a coin toss.

    Stacking puts all weight on one variant when the others add nothing to its training-span
    predictive, however small the gap: where the two best training LOO scores differ by less
    than a standard error of either, another draw of the posterior can flip the choice (a
    fresh user's two runs did, on a 0.001-nat gap with se 0.07).
    """
    parts, close = [], []
    for name, t in tables.items():
        if "stacking weight" not in t:
            continue
        w = t["stacking weight"].dropna()
        if w.empty:
            continue
        parts.append(f"{name}: " + ", ".join(f"{m} {x:.2f}" for m, x in w.items() if x >= 0.005))
        loo = t.loc[w.index, ["train LOO", "train LOO se"]].dropna()
        top = loo["train LOO"].nlargest(2)
        if len(top) == 2 and top.iloc[0] - top.iloc[1] < loo.loc[top.index, "train LOO se"].max():
            close.append(name)
    out = ["Stacking weights (training-span PSIS-LOO): " + "; ".join(parts) + "."] if parts else []
    if close:
        out.append(
            f"In {', '.join(close)} the two best variants' training LOO scores differ by less "
            "than a standard error: which one the stack weighs is close to a coin toss there "
            "(another seed can flip it), so read the variants' own rows too.")
    return out


#: The model menu's Bayes methods, each answered beside the headline's when it ran.
MENU = tuple(m for m in (*BAYES_VARIANTS, "bayes_stacked") if m != REFERENCE)


def _menu(comparison: Comparison, methods: list[str]) -> str:
    """'Model menu against the seed's grid (and rolling OLS), mean over series (se): ...'."""
    variants = [m for m in methods if m in MENU]
    against = [b for b in ("grid_seed", "rolling_ols") if b in methods]
    if not variants or not against:
        return ""
    table = {b: comparison.differences(b) for b in against}

    def one(m: str) -> str:
        parts = [f"{d.loc[m].iloc[0]:+.3f}"
                 + ("" if np.isnan(d.loc[m, "se"]) else f" (se {d.loc[m, 'se']:.3f})")
                 for d in table.values()]  # fmt: skip
        return f"{m} {' / '.join(parts)}"

    names = " / ".join("the seed's grid" if b == "grid_seed" else "rolling OLS" for b in against)
    return (f"Model menu minus {names}, nats/step, mean over series"
            + (" (se across series)" if len(comparison.tables) > 1 else "") + ": "
            + "; ".join(one(m) for m in variants) + ".")
