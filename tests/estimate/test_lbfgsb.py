"""`minimize_lbfgsb` is scipy's L-BFGS-B: same iterates, value and message as ``minimize``.

Reference: ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` on the same objective,
bounds and options, compared to the last bit (the driver runs the same compiled routine; any
difference in the evaluations it makes or the order of them would show).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from tvbeta.estimate import lbfgsb
from tvbeta.estimate.lbfgsb import minimize_lbfgsb
from tvbeta.estimate.mle import LoglikGrad
from tvbeta.kalman import StateSpace


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    """The Rosenbrock function in 4 dimensions and its gradient."""
    f = float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return f, g


def kalman_objective() -> tuple:
    """Minus the log-likelihood of a simulated 2-state random-walk regression, in log (Q, R)."""
    rng = np.random.default_rng(3)
    n, k = 200, 2
    Z = rng.normal(0, 0.02, (n, k))
    beta = 0.8 + np.cumsum(rng.normal(0, 0.02, (n, k)), axis=0)
    y = np.einsum("tk,tk->t", Z, beta) + rng.normal(0, 0.01, n)
    m = StateSpace(y, Z, np.eye(k)[None], np.zeros((1, k, k)), np.ones(1), np.zeros(k),
                   np.eye(k))  # fmt: skip
    f = LoglikGrad(m, np.ones(n))

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        v = np.exp(u)
        val, dQ, dR = f(np.diag(v[:k]), v[k])
        return -val / n, -np.append(dQ.diagonal(), dR) * v / n

    return objective, np.log([1e-3, 1e-3, 1e-3]), np.full(3, np.log(1e-12)), np.full(3, 0.0)


CASES = {
    # unbounded, converges on the relative reduction of f
    "rosenbrock": (rosenbrock, np.array([-1.2, 1.0, -0.5, 0.3]), np.full(4, -np.inf),
                   np.full(4, np.inf), dict(maxiter=500, gtol=1e-10, ftol=1e-15)),
    # the optimum on an upper bound, the start outside the bounds (clipped)
    "rosenbrock at a bound": (rosenbrock, np.array([3.0, 2.0, 0.0, 0.0]),
                              np.array([-np.inf, -2.0, -2.0, 0.0]),
                              np.array([0.5, np.inf, 2.0, 0.6]),
                              dict(maxiter=500, gtol=1e-8, ftol=1e-12)),
    # stopped by the iteration limit
    "iteration limit": (rosenbrock, np.array([-1.2, 1.0, -0.5, 0.3]), np.full(4, -np.inf),
                        np.full(4, np.inf), dict(maxiter=7, gtol=1e-10, ftol=1e-15)),
    # stopped by the evaluation limit
    "evaluation limit": (rosenbrock, np.array([-1.2, 1.0, -0.5, 0.3]), np.full(4, -np.inf),
                         np.full(4, np.inf), dict(maxiter=500, gtol=1e-10, ftol=1e-15,
                                                  maxfun=5)),
    "kalman": (*kalman_objective(), dict(maxiter=2000, gtol=1e-8 / 200, ftol=1e-12)),
}  # fmt: skip


def scipy_minimize(fun, x0, lower, upper, options):
    bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b)
              for a, b in zip(lower, upper, strict=True)]  # fmt: skip
    return minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)


@pytest.mark.parametrize("case", list(CASES))
def test_minimize_lbfgsb_ends_where_scipys_minimize_ends_to_the_last_bit(case):
    fun, x0, lower, upper, options = CASES[case]
    expected = scipy_minimize(fun, x0, lower, upper, options)
    got = minimize_lbfgsb(fun, x0, lower, upper, **options)
    np.testing.assert_array_equal(got.x, expected.x)
    assert got.fun == expected.fun
    assert (got.message, got.nit, got.nfev) == (expected.message, expected.nit, expected.nfev)


def test_minimize_lbfgsb_calls_the_objective_at_the_points_scipy_does():
    fun, x0, lower, upper, options = CASES["rosenbrock at a bound"]
    seen: dict[str, list] = {"scipy": [], "ours": []}

    def recording(name):
        def f(x):
            seen[name].append(x.copy())
            return fun(x)
        return f

    scipy_minimize(recording("scipy"), x0, lower, upper, options)
    minimize_lbfgsb(recording("ours"), x0, lower, upper, **options)
    np.testing.assert_array_equal(np.array(seen["ours"]), np.array(seen["scipy"]))


def test_the_installed_scipy_runs_the_direct_driver():
    # pyproject pins scipy to the releases whose private routine the driver calls; on one
    # of them the fallback to minimize must not be what runs
    assert lbfgsb._lbfgsb is not None
    fun, x0, lower, upper, options = CASES["kalman"]
    expected = scipy_minimize(fun, x0, lower, upper, options)
    got = lbfgsb._drive(fun, np.clip(x0, lower, upper), lower, upper, options["maxiter"],
                        options["gtol"], options["ftol"], 10, 20, 15000)  # fmt: skip
    np.testing.assert_array_equal(got.x, expected.x)


def test_without_scipys_private_routine_minimize_runs_with_the_same_result(monkeypatch):
    fun, x0, lower, upper, options = CASES["rosenbrock at a bound"]
    expected = minimize_lbfgsb(fun, x0, lower, upper, **options)
    monkeypatch.setattr(lbfgsb, "_lbfgsb", None)  # as when a release moved it
    got = minimize_lbfgsb(fun, x0, lower, upper, **options)
    np.testing.assert_array_equal(got.x, expected.x)
    assert (got.fun, got.message, got.nit, got.nfev) == (expected.fun, expected.message,
                                                         expected.nit, expected.nfev)
