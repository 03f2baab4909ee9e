"""Self-contained HTML reports: a method comparison, and many funds' fits on one page.

The comparison answers "does Bayes beat the seed's grid?" (`write_report`); the many-funds
page ranks `fit_funds` summaries (`write_funds_report`). Modules: `analysis` (the numbers),
`verdict` (the plain-language answer), `sections` (HTML per section), `page` (tables, figures,
the page shell), `funds` (the many-funds page); the comparison's figures are in
`tvbeta.viz.compare`.
"""

from __future__ import annotations

import os
from pathlib import Path

from tvbeta.evaluate.comparison import Comparison
from tvbeta.outputs import write_text
from tvbeta.report import analysis
from tvbeta.report import sections as S
from tvbeta.report.funds import write_funds_report
from tvbeta.report.page import box, esc, page
from tvbeta.report.verdict import Verdict, verdict

__all__ = ["Verdict", "verdict", "write_funds_report", "write_report"]


def write_report(
    comparison: Comparison,
    path: str | os.PathLike[str],
    *,
    folder: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write the comparison as one self-contained HTML file (works offline).

    Parameters
    ----------
    comparison : Comparison
        From `compare_methods`, or `Comparison.load` (then pass ``folder`` for the fits).
    path : path-like
        The HTML file to write (parent folders are created).
    folder : path-like, optional
        The folder given to `Comparison.save`: fits missing from ``comparison`` are loaded
        from it. Without any fits, the beta-path, posterior and sampling sections say so.
    title : str, optional
        Page title; default asks whether Bayes beat the grid search (the MLE when no grid
        ran; `verdict.BASELINES`) and names the number of series, or, without Bayes and a
        baseline, says how many methods were compared.

    Returns
    -------
    Path
        ``path``. The file holds plotly.js once (inline, ~4.8 MB) and every figure as a div
        with its data; nothing is fetched from the network. Sections: data; model and methods;
        scores and verdict; beta paths by method; posterior of Q and R against the grid's and
        MLE's values; sampling diagnostics; calibration of the test-span forecasts.
    """
    from tvbeta.estimate.bayes.diagnostics import check_convergence

    fits = analysis.gather_fits(comparison, folder)
    ctx = S.Context(comparison, fits, analysis.layout(comparison))
    ctx.convergence = {s: check_convergence(ctx.bayes(s), warn=False)
                       for s in fits if ctx.bayes(s) is not None}  # fmt: skip
    failed = [s for s, r in ctx.convergence.items() if not r.ok]
    v = verdict(comparison, failed_sampling=failed)
    n = len(comparison.series)
    methods = list(dict.fromkeys(m for s in comparison.series.values() for m in s.table.index))
    title = title or _title(v, methods, n)
    sections = [
        ("data", "1. Data", S.data_section(ctx)),
        ("model", "2. Model and methods", S.model_section(ctx)),
        ("comparison", "3. Out-of-sample comparison", S.comparison_section(ctx, v)),
        ("betas", "4. Beta paths by method", S.betas_section(ctx)),
        ("posterior", "5. Posterior of Q and R", S.posterior_section(ctx)),
        ("alpha", "6. Alpha: probability above zero", S.alpha_section(ctx)),
        ("sampling", "7. Sampling diagnostics", S.sampling_section(ctx)),
        ("residuals", "8. Forecast checks on the test span", S.residuals_section(ctx)),
    ]
    lead = box(
        f'<strong>Answer:</strong> {esc(v.headline)} <a href="#comparison">Details</a>.', "answer"
    )
    subtitle = f"{n} series; methods: {', '.join(methods)}."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, page(title, sections, subtitle=subtitle, lead=lead))


#: The question a report's title asks, by the verdict's first baseline (`verdict.BASELINES`).
QUESTION = {"grid_seed": "the grid search", "mle": "maximum likelihood"}


def _title(v: Verdict, methods: list[str], n: int) -> str:
    """Return the question the verdict answers; without Bayes and a baseline, what ran."""
    baseline = next(iter(v.differences), None)
    if baseline is None:
        return f"tvbeta: out-of-sample comparison of {len(methods)} methods ({n} series)"
    return f"tvbeta: does Bayesian estimation of Q and R beat {QUESTION[baseline]}? ({n} series)"
