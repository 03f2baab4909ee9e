"""KalmanEngine: run a spec on a DataFrame (validate, filter, smooth) -> KalmanResult.

The seed's ``KalmanEngine(spec).run(df, target_col, factor_cols, burn)``: checks the data
(`prepare_design`), runs the Kalman filter and the state smoother once each, and labels the
output. The numbers are the seed's (predict first from (beta0, P0); log-likelihood
-0.5 (log F + v^2/F + log 2pi)).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from tvbeta.data.validate import Design, prepare_design
from tvbeta.kalman.filter import filter_state_space
from tvbeta.kalman.smoother import smooth_state_space
from tvbeta.model import reversion
from tvbeta.model.timevarying import SpecError
from tvbeta.results import KalmanResult

if TYPE_CHECKING:
    from tvbeta.model.spec import KalmanSpec


def design_for(spec: KalmanSpec, df: pd.DataFrame, target_col: Hashable,
               factor_cols: Sequence[Hashable] | str, burn: int = 0) -> Design:  # fmt: skip
    """Return the validated `Design` of ``df`` for ``spec`` (its intercept), with K checked.

    The arguments are those of `KalmanEngine.run`.

    Raises
    ------
    DataValidationError
        The data are unusable (see :func:`tvbeta.data.prepare_design`).
    SpecError
        The spec's K is not the number of factor columns (+ 1 with an intercept).
    """
    return check_states(spec, prepare_design(df, target_col, factor_cols,
                                             intercept=spec.intercept, burn=burn))


def check_states(spec: KalmanSpec, design: Design) -> Design:
    """Return ``design`` after checking that ``spec`` has its number of states.

    Raises
    ------
    SpecError
        The spec's K is not the number of factor columns (+ 1 with an intercept).
    """
    k = design.Z.shape[1]
    if spec.K != k:
        n_factors = k - int(spec.intercept)
        with_intercept = " plus the intercept" if spec.intercept else ""
        raise SpecError(
            f"the spec has K={spec.K} states but the data give {k}: {n_factors} factor "
            f"column(s){with_intercept}. Build the spec with KalmanSpec(K=len(factor_cols)) "
            "and add an intercept with .set_intercept(), which makes K = len(factor_cols) + 1"
        )
    return design


@dataclass(frozen=True, eq=False)
class KalmanEngine:
    """Runs one spec; holds no fitted state (each ``run`` returns its own result)."""

    spec: KalmanSpec

    def run(self, df: pd.DataFrame, target_col: Hashable, factor_cols: Sequence[Hashable] | str,
            burn: int = 0) -> KalmanResult:  # fmt: skip
        """Filter and smooth the target on the factors over every row of ``df``.

        Parameters
        ----------
        df : pd.DataFrame, (n_time, ...)
            Target and factor returns, one row per step, sorted unique index; not modified.
        target_col : hashable
            The fund's return column y_t (NaN = missing: predicted, not updated).
        factor_cols : sequence of hashable, (n_factors,)
            Factor return columns H_t, in state order.
        burn : int, default 0
            Observed steps dropped from the seed-style outputs and from the total
            log-likelihood; the result keeps every step's arrays. Rows before the first
            observed target are not part of the model.

        Returns
        -------
        KalmanResult
            Filtered, predicted and smoothed states with their covariances, innovations,
            gains and per-step log-likelihoods; ``meta`` is ``spec.describe(...)``.
        """
        return self.run_design(design_for(self.spec, df, target_col, factor_cols, burn), burn)

    def run_design(self, design: Design, burn: int = 0) -> KalmanResult:
        """`run` on a validated design (its K checked against the spec by the caller).

        A spec with ``phi`` (mean-reverting betas) is filtered and smoothed in the augmented
        state [beta; mu]; the result holds the K betas' moments (`reversion.beta_marginal`).
        """
        model = self.spec.state_space(design.y, design.Z)
        smoothed = smooth_state_space(model, filter_state_space(model))
        if self.spec.phi is not None:  # the augmented [beta; mu]: the user reads the betas
            smoothed = reversion.beta_marginal(smoothed, self.spec.K)
        meta = self.spec.describe(design.target_col, list(design.state_names))
        return KalmanResult(design=design, output=smoothed, target_name=str(design.target_col),
                            burn=burn, spec=self.spec, meta=meta)  # fmt: skip
