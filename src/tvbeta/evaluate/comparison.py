"""Hold a method comparison's results and save or load them.

Per-series tables and forecasts (`SeriesResult`), the summary across series, and the run
folder (`Comparison.save` / `Comparison.load`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tvbeta.data.validate import format_span
from tvbeta.evaluate.forecast import OneStepForecast
from tvbeta.evaluate.settings import REFERENCE
from tvbeta.model.io import unreadable
from tvbeta.outputs import atomic_path, read_manifest, run_folder, write_text

if TYPE_CHECKING:
    from tvbeta.evaluate.lfo import LFOResult


@dataclass
class SeriesResult:
    """One series: scores per method, the forecasts, the fitted objects and fit times."""

    target: str
    table: pd.DataFrame
    forecasts: dict[str, OneStepForecast]
    fits: dict[str, Any] = field(default_factory=dict)
    lfo: LFOResult | None = None
    """PSIS-LFO-CV of the Bayes fit over the test rows: its posterior updated through the test
    span instead of fixed at the training rows (None without Bayes or LFO)."""
    rolling_window: int | None = None
    """Observations in the rolling OLS window used (None without ``rolling_ols``)."""

    def __repr__(self) -> str:
        """Show the target, the methods, the best by log score and whether LFO ran."""
        best = self.table["log score"].idxmax() if "log score" in self.table else None
        return (f"SeriesResult(target={self.target!r}, methods={list(self.table.index)}, "
                f"best log score: {best}, LFO: {'yes' if self.lfo is not None else 'no'})")


@dataclass
class Comparison:
    """Per-series score tables, forecasts and fits, the summary across series, and the data.

    data : the rows and columns compared (a saved comparison re-plots without its source);
    settings : the arguments of `compare_methods` (JSON-friendly), including "n_train".
    """

    series: dict[str, SeriesResult]
    settings: dict[str, Any]
    data: pd.DataFrame

    def __repr__(self) -> str:
        """Show targets, factors, methods, rows, split, burn and rolling window."""
        st = self.settings
        return (
            f"Comparison(targets={list(self.series)}, factors={st.get('factors')}, "
            f"methods={st.get('methods')},\n  {len(self.data)} rows "
            f"{format_span(self.data.index)}, the first n_train={st.get('n_train')} fit, "
            f"burn={st.get('burn')}, rolling_window={st.get('rolling_window')}; "
            "see .summary and .tables)"
        )

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Per series (target name): its table of scores, one row per method."""
        return {name: s.table for name, s in self.series.items()}

    @property
    def summary(self) -> pd.DataFrame:
        """Per method: wins, mean log score and the mean difference to the reference method.

        Wins: series where the method has the best log score; the difference's standard error
        is across series; n test: the test steps scored in all series together.
        """
        scores_ = self._scores()
        wins = scores_.idxmax(axis=0).value_counts().reindex(scores_.index, fill_value=0)
        ref = REFERENCE if REFERENCE in scores_.index else scores_.index[0]
        out = pd.DataFrame({
            "wins": wins.astype(int),
            "mean log score": scores_.mean(axis=1),
            **self.differences(ref).to_dict("series"),
            "mean RMSE": pd.DataFrame({k: t["RMSE"] for k, t in self.tables.items()}).mean(axis=1),
            "mean coverage 90%": pd.DataFrame(
                {k: t["coverage 90%"] for k, t in self.tables.items()}).mean(axis=1),
            "n test": pd.DataFrame({k: t["n test"] for k, t in self.tables.items()}).sum(axis=1),
        })
        out.index.name = "method"
        return out

    def _scores(self) -> pd.DataFrame:
        return pd.DataFrame({name: t["log score"] for name, t in self.tables.items()})

    def differences(self, reference: str) -> pd.DataFrame:
        """Per method: the mean over series of its log score minus ``reference``'s, with the se.

        The standard error is across series (sd / sqrt(number of series); NaN for one series):
        each series' difference is a mean over its test steps.

        Raises
        ------
        KeyError
            ``reference`` is not a method of the comparison.
        """
        scores_ = self._scores()
        if reference not in scores_.index:
            raise KeyError(f"{reference!r} is not a method of this comparison: "
                           f"{list(scores_.index)}")
        diffs = scores_ - scores_.loc[reference]
        n = scores_.shape[1]
        return pd.DataFrame({
            f"mean diff vs {reference}": diffs.mean(axis=1),
            "se": diffs.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.nan,
        })  # fmt: skip

    @property
    def lfo_table(self) -> pd.DataFrame:
        """Per series with an LFO result: the Bayes test log score, fixed and updated posterior.

        Posterior fixed at the training rows vs PSIS-LFO updated through the test rows (nats
        per period, same rows), their mean paired difference and se, refits, the largest Pareto
        k and the test steps scored. Empty without LFO results.
        """
        rows = {}
        for name, s in self.series.items():
            if s.lfo is None:
                continue
            diff = s.lfo.elpd_i.to_numpy() - s.forecasts[REFERENCE].log_density
            rows[name] = {
                "bayes log score": s.table.loc[REFERENCE, "log score"],
                "LFO elpd per period": s.lfo.elpd / len(s.lfo.rows),
                "LFO - bayes": diff.mean(),
                "se": diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else np.nan,
                "refits": s.lfo.n_refits,
                "max pareto k": s.lfo.summary()["max pareto_k"],
                "n test": len(s.lfo.rows),
            }
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "series"
        return out

    def to_markdown(self, digits: int = 4) -> str:
        """Return the summary, the leave-future-out table (if any) and every per-series table."""
        parts = ["## Summary across series", self.summary.round(digits).to_markdown()]
        if not self.lfo_table.empty:
            parts += ["## Bayes: posterior fixed at training vs updated (PSIS-LFO-CV)",
                      self.lfo_table.round(digits).to_markdown()]  # fmt: skip
        for name, table in self.tables.items():
            parts += [f"## {name}", table.round(digits).to_markdown()]
        return "\n\n".join(parts) + "\n"

    def save(self, folder: str | Path) -> Path:
        """Save tables and forecasts as JSON (exact float round trip), fits beside them.

        Written at the end with a manifest (`tvbeta.outputs.run_folder`): an interrupted or
        failed save leaves ``folder`` as it was.
        """
        with run_folder(folder, info={"comparison": self.settings}) as stage:
            self.write_files(stage)
        return Path(folder)

    def write_files(self, folder: str | Path) -> None:
        """Write the files of `save` into ``folder``, without a manifest (the CLI adds more)."""
        folder = Path(folder)
        (folder / "fits").mkdir(parents=True, exist_ok=True)
        doc = {"settings": self.settings, "series": {}}
        for name, s in self.series.items():
            doc["series"][name] = {
                "table": s.table.to_dict(orient="split"),  # json writes floats by repr: exact
                "forecasts": {m: {f: getattr(fc, f).tolist() for f in OneStepForecast._fields}
                              for m, fc in s.forecasts.items()},
                "lfo": None if s.lfo is None else s.lfo.to_dict(),
            }
            for method, fit in s.fits.items():
                if fit is not None:
                    fit.save(folder / "fits" / f"{_slug(name)}.{method}.{_ext(fit)}")
        write_text(folder / "comparison.json", json.dumps(doc, indent=1))
        with atomic_path(folder / "data.csv") as tmp:
            self.data.to_csv(tmp)  # floats by repr: an exact round trip

    @classmethod
    def load(cls, folder: str | Path) -> Comparison:
        """Read a folder written by `save`; its fits stay on disk.

        ``Comparison.load_fit(folder, series, method)`` reads one, given the same folder.

        Raises
        ------
        IncompleteRunError
            The folder is not a complete run (`tvbeta.outputs`): no manifest (interrupted or
            failed), or a file it lists is missing or changed.
        FileNotFoundError
            No comparison.json or data.csv in the folder.
        SavedFileError
            comparison.json or data.csv is truncated, corrupt or not tvbeta's (the message
            names the file).
        """
        read_manifest(folder, needed=_SAVED)
        path, csv = Path(folder) / "comparison.json", Path(folder) / "data.csv"
        what = "tvbeta comparison (comparison.json written by Comparison.save)"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise unreadable(path, what, f"not UTF-8 text: {err.reason}") from err
        except json.JSONDecodeError as err:
            raise unreadable(path, what, f"not valid JSON: {err}") from err
        if not isinstance(doc, dict) or not {"settings", "series"} <= set(doc):
            raise unreadable(path, what, "it has no 'settings' and 'series'")
        try:
            data = pd.read_csv(csv, index_col=0, parse_dates=[0])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise unreadable(csv, "tvbeta comparison's data (data.csv)", str(err)) from err
        try:
            series = {name: _series_from_saved(name, s, data.index)
                      for name, s in doc["series"].items()}  # fmt: skip
        except KeyError as err:
            raise unreadable(path, what, f"a series has no {err.args[0]!r}") from err
        except (AttributeError, TypeError, ValueError) as err:
            raise unreadable(path, what, f"its contents do not fit: {err}") from err
        return cls(series, doc["settings"], data)

    @staticmethod
    def load_fit(folder: str | Path, series: str, method: str) -> Any:
        """Load a fit saved by `save`: a KalmanSpec (grid, MLE) or a BayesFit (bayes).

        Called on the class with the folder (a loaded comparison does not keep its folder):
        ``Comparison.load_fit("output/demo", "NoDur", "bayes")``.
        """
        stem = Path(folder) / "fits" / f"{_slug(series)}.{method}"
        if Path(f"{stem}.nc").exists():
            from tvbeta.estimate.bayes.fit import BayesFit

            return BayesFit.load(f"{stem}.nc")
        from tvbeta.model import KalmanSpec

        return KalmanSpec.load(f"{stem}.toml")


def _series_from_saved(name: str, s: dict[str, Any], index: pd.Index) -> SeriesResult:
    """One series of a saved comparison.json (tables, forecasts, LFO)."""
    t = s["table"]
    table = pd.DataFrame(t["data"], index=pd.Index(t["index"], name="method"),
                         columns=t["columns"])  # fmt: skip
    forecasts = {m: OneStepForecast(**{f: np.asarray(v) for f, v in fc.items()})
                 for m, fc in s["forecasts"].items()}  # fmt: skip
    lfo = s.get("lfo")
    if lfo is not None:
        from tvbeta.evaluate.lfo import LFOResult

        lfo = LFOResult.from_dict(lfo, index)
    return SeriesResult(name, table, forecasts, lfo=lfo)


_SAVED = ("comparison.json", "data.csv", "fits")
"""What `Comparison.save` writes and `load` reads (a report or model copy beside them may be
rewritten without making the comparison unreadable)."""


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _ext(fit: Any) -> str:
    return "nc" if type(fit).__name__ == "BayesFit" else "toml"
