"""The variance index of a volatility-scaled R_t as a function of its half-life: a PyTensor Op.

With ``Priors.index_half_life_sd > 0`` the half-life of the index's exponential average is
sampled (`tvbeta.estimate.bayes.model`), so log h_t must be a differentiable function of it.
The average's input, the first regression's residual variance then the squared residuals of
the rolling regressions (`VolatilityIndex.ewma_input`), does not depend on the half-life; the
recursion does. `EwmaLogOp` runs `tvbeta.model.volatility.ewma` (pandas' recursion, the one
the fixed index uses) and its forward-mode derivative in one O(m) sweep, and its pullback is
that derivative times the cotangent: the gradient is exact, and h_t stays known at t-1, so the
Kalman likelihood stays exact too.

Like the Kalman Ops (`tvbeta.estimate.bayes.op`), it has a Python `perform` and a native numba
implementation for nutpie's and PyMC's numba backend.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from tvbeta._numba_cache import sources_salt
from tvbeta.model.volatility import ewma

__all__ = ["EwmaLogOp"]

# PyTensor's numba cache keys an Op by class and props: the sources salt it (as in `op`)
_SALT = sources_salt()


@numba.njit(cache=True, fastmath=False)
def _ewma_log(hl, x):
    """Return (log w_s, d log w_s / d hl) for s = 0..m-2 (`EwmaLogOp`); hl a float."""
    # pandas' route from the half-life to the weight (`volatility.ewma_alpha`)
    decay = 1.0 - np.exp(np.log(0.5) / hl)
    alpha = 1.0 / (1.0 + (1.0 / decay - 1.0))
    w, dw = ewma(x, alpha)
    # alpha = 1 - 2^(-1/hl): d alpha / d hl = -(1 - alpha) log(2) / hl^2
    dalpha = -(1.0 - alpha) * np.log(2.0) / (hl * hl)
    m = x.shape[0] - 1
    return np.log(w[:m]), dw[:m] / w[:m] * dalpha


class EwmaLogOp(Op):
    """log_h = EwmaLogOp()(half_life, x): (m - 1,) the log of the average of x through s.

    half_life : scalar, periods (> 0); x : (m,) the average's input (`ewma_input`, data, NaN
    where a return is missing). Entry s is the log of `volatility.ewma`'s w_s, the average of
    x_0..x_s, which is log h_{t0+s} before centring (`VolatilityIndex.raw_log_h`: row t0 + s
    sees the residuals of rows before it only). Differentiable in half_life (exact, forward
    mode); the node's second output is that derivative, which the pullback reuses; calling the
    Op returns log_h only.
    """

    __props__ = ()

    def __call__(self, *inputs, **kwargs):
        """Return the log index only (its derivative stays internal to the gradient)."""
        return super().__call__(*inputs, **kwargs)[0]

    def make_node(self, half_life, x) -> Apply:
        """Build the Apply node: a scalar half-life and a vector x.

        Raises
        ------
        ValueError
            When half_life is not a scalar or x not a vector.
        """
        half_life = pt.as_tensor_variable(half_life).astype("float64")
        x = pt.as_tensor_variable(x).astype("float64")
        if half_life.type.ndim != 0 or x.type.ndim != 1:
            raise ValueError(f"half_life must be a scalar and x a vector, got dimensions "
                             f"{half_life.type.ndim} and {x.type.ndim}")  # fmt: skip
        return Apply(self, [half_life, x], [pt.vector(dtype="float64"),
                                            pt.vector(dtype="float64")])  # fmt: skip

    def perform(self, node, inputs, output_storage) -> None:
        """Compute log h and its derivative in Python mode (`_ewma_log`)."""
        half_life, x = inputs
        output_storage[0][0], output_storage[1][0] = _ewma_log(float(half_life), x)

    def infer_shape(self, node, shapes):
        """Return the output shapes: (m - 1,) twice."""
        return [(shapes[1][0] - 1,)] * 2

    def pullback(self, inputs, outputs, cotangents):
        """Return d/d half_life of sum_s g_s log h_s: g . (the forward sweep's derivative)."""
        return [pt.sum(cotangents[0] * outputs[1]),
                grad_not_implemented(self, 1, inputs[1], "x is data")]  # fmt: skip


@register_funcify_default_op_cache_key(EwmaLogOp)
def _numba_funcify_ewma_log(op, node=None, **kwargs):
    @numba.njit(fastmath=False)
    def ewma_log_op(half_life, x):
        return _ewma_log(half_life.item(), x)

    return ewma_log_op, _SALT
