"""L-BFGS-B: scipy's own routine, driven without `scipy.optimize.minimize`'s per-call layers.

The MLE searches call their objective (one Kalman log-likelihood and its gradient, ~110 us for
T = 520 weeks and k = 4) ~50 times per fund. Around each call ``minimize`` adds ~90 us of
Python (``ScalarFunction``'s bookkeeping, array-API conversions, memoisation wrappers): a
sixth of a fund's MLE, and the difference between issue 14's 1,000 funds in 15 s on 2 cores
and not. `minimize_lbfgsb` runs the same compiled routine (``setulb``, Byrd, Lu, Nocedal and
Zhu 1995, as scipy translated it) with the same settings, the same evaluations in the same
order, and returns the same point, value and message, bit for bit
(``tests/estimate/test_lbfgsb.py`` against ``minimize``).

``setulb``, its workspace layout and message tables are private to scipy (as of 1.18), hence
pyproject's pin; should a release move or re-sign them, ``minimize`` runs instead (the same
numbers, slower).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

try:
    from scipy.optimize._lbfgsb_py import (
        HAS_ILP64,
        _lbfgsb,
        status_messages,
        task_messages,
    )
except ImportError:  # a release that moved them: `minimize` runs
    _lbfgsb = None

__all__ = ["LBFGSBResult", "minimize_lbfgsb"]

_FG, _NEW_X, _STOP = 3, 1, 5
"""``setulb``'s task codes: evaluate f and g at x, an iteration ended, stop (any other: done)."""
_MAXITER, _MAXFUN = 504, 502
"""Its stop reasons: the iteration limit, the evaluation limit."""


class LBFGSBResult(NamedTuple):
    """Where L-BFGS-B ended: as ``minimize``'s result's fields of the same names."""

    x: np.ndarray
    """(n,) the last iterate."""
    fun: float
    """The objective at ``x``."""
    message: str
    """Why it stopped, e.g. "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"."""
    nit: int
    """Iterations."""
    nfev: int
    """Evaluations of the objective (with its gradient)."""


def minimize_lbfgsb(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    maxiter: int,
    gtol: float,
    ftol: float,
    maxcor: int = 10,
    maxls: int = 20,
    maxfun: int = 15000,
) -> LBFGSBResult:
    """Minimise ``fun`` (value and gradient) within [lower, upper] by L-BFGS-B.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, g)``, x and g (n,) float64; it must not keep or modify x.
    x0 : (n,) array
        The start, clipped into the bounds.
    lower, upper : (n,) arrays
        The bounds; -inf / inf where there is none.
    maxiter, gtol, ftol, maxcor, maxls, maxfun
        As ``minimize(method="L-BFGS-B")``'s options (the stop tests: projected gradient
        <= gtol, relative reduction of f <= ftol).

    Returns
    -------
    LBFGSBResult
        The fields ``minimize`` would return for the same call, equal to the last bit.
    """
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    x = np.clip(np.asarray(x0, dtype=np.float64).ravel(), lower, upper)
    if _lbfgsb is not None:
        try:
            return _drive(fun, x, lower, upper, maxiter, gtol, ftol, maxcor, maxls, maxfun)
        except _SignatureChanged:
            pass
    bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b)
              for a, b in zip(lower, upper, strict=True)]  # fmt: skip
    res = minimize(fun, x, jac=True, method="L-BFGS-B", bounds=bounds,
                   options=dict(maxiter=maxiter, gtol=gtol, ftol=ftol, maxcor=maxcor,
                                maxls=maxls, maxfun=maxfun))  # fmt: skip
    return LBFGSBResult(res.x, float(res.fun), str(res.message), int(res.nit), int(res.nfev))


class _SignatureChanged(Exception):
    """``setulb`` refused its arguments: a scipy release changed it."""


def _drive(fun, x, lower, upper, maxiter, gtol, ftol, m, maxls, maxfun) -> LBFGSBResult:
    """Run scipy 1.18's ``_minimize_lbfgsb`` loop without ``ScalarFunction`` around ``fun``."""
    n = x.size
    int_dtype = np.int64 if HAS_ILP64 else np.int32
    # nbd: 0 unbounded, 1 lower only, 2 both, 3 upper only
    nbd = (np.isfinite(lower) & ~np.isfinite(upper)) * 1 \
        + (np.isfinite(lower) & np.isfinite(upper)) * 2 \
        + (~np.isfinite(lower) & np.isfinite(upper)) * 3  # fmt: skip
    nbd = nbd.astype(int_dtype)
    low, high = np.where(np.isfinite(lower), lower, 0.0), np.where(np.isfinite(upper), upper, 0.0)
    factr = ftol / np.finfo(float).eps
    f, g = fun(x.copy())  # where ScalarFunction evaluates: at the start, before the routine
    f, g = float(f), np.asarray(g, dtype=np.float64)
    at, nfev = x.copy(), 1
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, np.float64)
    iwa = np.zeros(3 * n, dtype=int_dtype)
    task, ln_task = np.zeros(2, dtype=int_dtype), np.zeros(2, dtype=int_dtype)
    lsave, isave = np.zeros(4, dtype=int_dtype), np.zeros(44, dtype=int_dtype)
    dsave = np.zeros(29, dtype=np.float64)
    f_in, g_in = np.array(0.0), np.zeros(n)  # the routine's first call: as in scipy's loop
    nit = 0
    first = True
    while True:
        try:
            _lbfgsb.setulb(m, x, low, high, nbd, f_in, g_in, factr, gtol, wa, iwa, task, lsave,
                           isave, dsave, maxls, ln_task)  # fmt: skip
        except (TypeError, ValueError) as err:
            if first:
                raise _SignatureChanged from err
            raise
        first = False
        if task[0] == _FG:
            if not np.array_equal(x, at):  # the last point's values are kept, as scipy does
                f, g = fun(x.copy())
                f, g = float(f), np.asarray(g, dtype=np.float64)
                at, nfev = x.copy(), nfev + 1
            f_in, g_in = f, g
        elif task[0] == _NEW_X:
            nit += 1
            if nit >= maxiter:
                task[0], task[1] = _STOP, _MAXITER
            elif nfev > maxfun:
                task[0], task[1] = _STOP, _MAXFUN
        else:
            break
    return LBFGSBResult(x, float(f_in), f"{status_messages[task[0]]}: {task_messages[task[1]]}",
                        nit, nfev)  # fmt: skip
