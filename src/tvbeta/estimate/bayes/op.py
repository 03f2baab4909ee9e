"""The Kalman log-likelihood as a PyTensor Op with an exact pullback and native numba code.

Two Ops wrap the compiled kernels of `tvbeta.kalman` (no Kalman math is written here):

- `KalmanLoglikOp`:  (Q, R, y, Z, T, a0, P0) -> ll, the n one-step log predictive densities
  ll_t = log p(y_t | y_{<t}; Q, R) (0 where y_t is NaN), from `loglik_vjp_kernel`'s forward
  sweep. Returning the terms rather than their sum is what lets `pm.compute_log_likelihood`
  and `az.loo` see one term per time step.
- `KalmanVJPOp`:  (w, Q, R, y, Z, T, a0, P0) -> (dQ, dR, da0, dP0), the exact gradient of
  sum_t w_t ll_t by the adjoint sweep of `loglik_vjp_kernel`. It is the pullback of the first
  Op with the cotangent of ll as the weights w, so a gradient costs one forward and one backward
  pass whatever the number of parameters.

Shapes: Q (k, k), R () scalar, y (n,) with NaN for missing, Z (n, k), T (k, k), a0 (k,),
P0 (k, k); Q, T, R are constant over time. dQ is the symmetric adjoint of Q: for any (symmetric)
perturbation dQ, d value = sum_ij dQbar_ij dQ_ij, which is also the gradient with respect to a
general matrix because the filter only sees the symmetric part of Q.

A numerical failure (an innovation variance F_t <= 0 or NaN, e.g. NaN parameters proposed by a
sampler) does not raise: every ll_t is -inf and the gradients are 0, so the total log density
is -inf and NUTS rejects the proposal (a divergence) instead of stopping.

Both Ops have a Python `perform` (any PyTensor backend but JAX) and a native numba
implementation registered with `register_funcify_default_op_cache_key`, so the default (numba)
backend compiles them into the graph without the object-mode fallback.
"""

from __future__ import annotations

import hashlib
import inspect

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from tvbeta.kalman import gradient as _gradient_module
from tvbeta.kalman import steps as _steps_module
from tvbeta.kalman.gradient import loglik_vjp_kernel

__all__ = ["KalmanLoglikOp", "KalmanVJPOp", "kalman_loglik_terms", "kalman_loglik_vjp"]

_INPUT_NDIMS = {"Q": 2, "R": 0, "y": 1, "Z": 2, "T": 2, "a0": 1, "P0": 2}

# Salt for PyTensor's on-disk numba cache: its default key only sees the Op class and props,
# so a change of the kernels' source must change the key, or a stale compiled graph is reused.
_KERNEL_SALT = int(
    hashlib.sha256(
        (inspect.getsource(_gradient_module) + inspect.getsource(_steps_module)).encode()
    ).hexdigest()[:12],
    16,
)


def _as_inputs(*args) -> list[pt.TensorVariable]:
    """float64 tensors with the expected number of dimensions, named in errors."""
    out = []
    for (name, ndim), x in zip(_INPUT_NDIMS.items(), args, strict=True):
        var = pt.as_tensor_variable(x).astype("float64")
        if var.type.ndim != ndim:
            raise ValueError(f"{name} must have {ndim} dimension(s), got {var.type.ndim}")
        out.append(var)
    return out


def _run_kernel(w, Q, R, y, Z, T, a0, P0):
    """Call the kernel on (k, k) Q/T and scalar R; returns (ll, dQ, dR, da0, dP0, bad)."""
    n, k = Z.shape
    ll = np.empty(n)
    dQ = np.empty((1, k, k))
    dR = np.empty(1)
    da0 = np.empty(k)
    dP0 = np.empty((k, k))
    R1 = np.full(1, float(R))
    bad = loglik_vjp_kernel(
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(Z, dtype=np.float64),
        np.ascontiguousarray(T, dtype=np.float64).reshape(1, k, k),
        np.ascontiguousarray(Q, dtype=np.float64).reshape(1, k, k),
        R1,
        np.ascontiguousarray(a0, dtype=np.float64),
        np.ascontiguousarray(P0, dtype=np.float64),
        np.ascontiguousarray(w, dtype=np.float64),
        ll, dQ, dR, da0, dP0,
    )  # fmt: skip
    return ll, dQ, dR, da0, dP0, bad


def kalman_loglik_terms(Q, R, y, Z, T, a0, P0) -> np.ndarray:
    """The Op's computation in plain numpy: (n,) terms, all -inf on a numerical failure."""
    ll, *_, bad = _run_kernel(np.zeros(len(y)), Q, R, y, Z, T, a0, P0)
    if bad >= 0:
        ll[:] = -np.inf
    return ll


def kalman_loglik_vjp(w, Q, R, y, Z, T, a0, P0):
    """The VJP Op's computation in plain numpy: (dQ (k, k), dR (), da0 (k,), dP0 (k, k))."""
    _, dQ, dR, da0, dP0, bad = _run_kernel(w, Q, R, y, Z, T, a0, P0)
    if bad >= 0:
        dQ[:], dR[:], da0[:], dP0[:] = 0.0, 0.0, 0.0, 0.0
    return dQ[0], np.asarray(dR[0]), da0, dP0


class KalmanLoglikOp(Op):
    """ll = KalmanLoglikOp()(Q, R, y, Z, T, a0, P0): (n,) one-step log predictive densities.

    Differentiable with respect to Q, R, a0 and P0 (exact, through `KalmanVJPOp`); y, Z and T
    are data (their gradients are not implemented).
    """

    __props__ = ()

    def make_node(self, Q, R, y, Z, T, a0, P0) -> Apply:
        inputs = _as_inputs(Q, R, y, Z, T, a0, P0)
        n = inputs[2].type.shape[0]
        return Apply(self, inputs, [pt.tensor(dtype="float64", shape=(n,))])

    def perform(self, node, inputs, output_storage) -> None:
        output_storage[0][0] = kalman_loglik_terms(*inputs)

    def infer_shape(self, node, shapes):
        return [shapes[2]]

    def pullback(self, inputs, outputs, cotangents):
        _, _, y, Z, T, _, _ = inputs
        dQ, dR, da0, dP0 = KalmanVJPOp()(cotangents[0], *inputs)
        return [
            dQ,
            dR,
            grad_not_implemented(self, 2, y, "y is data"),
            grad_not_implemented(self, 3, Z, "Z is data"),
            grad_not_implemented(self, 4, T, "T is fixed"),
            da0,
            dP0,
        ]


class KalmanVJPOp(Op):
    """(dQ, dR, da0, dP0) = KalmanVJPOp()(w, Q, R, y, Z, T, a0, P0): gradient of sum_t w_t ll_t.

    Not differentiable itself (no second derivatives: NUTS needs none).
    """

    __props__ = ()

    def make_node(self, w, Q, R, y, Z, T, a0, P0) -> Apply:
        w = pt.as_tensor_variable(w).astype("float64")
        if w.type.ndim != 1:
            raise ValueError(f"w must be a vector, got {w.type.ndim} dimension(s)")
        inputs = _as_inputs(Q, R, y, Z, T, a0, P0)
        Qv, _, _, _, _, a0v, P0v = inputs
        outputs = [Qv.type(), pt.scalar(dtype="float64"), a0v.type(), P0v.type()]
        return Apply(self, [w, *inputs], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        for storage, value in zip(output_storage, kalman_loglik_vjp(*inputs), strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        return [shapes[1], (), shapes[6], shapes[7]]


# ----------------------------------------------------------------------------------------------
# Native numba implementations (PyTensor's default backend). They call the same njit kernel as
# `perform`; 0-d inputs (R) arrive as 0-d arrays, other inputs may be non-contiguous views.


@numba.njit(cache=True)
def _nb_run(w, Q, R, y, Z, T, a0, P0):
    n, k = Z.shape
    ll = np.empty(n)
    dQ = np.empty((1, k, k))
    dR = np.empty(1)
    da0 = np.empty(k)
    dP0 = np.empty((k, k))
    R1 = np.empty(1)
    R1[0] = R[()]
    bad = loglik_vjp_kernel(
        np.ascontiguousarray(y),
        np.ascontiguousarray(Z),
        np.ascontiguousarray(T).reshape((1, k, k)),
        np.ascontiguousarray(Q).reshape((1, k, k)),
        R1,
        np.ascontiguousarray(a0),
        np.ascontiguousarray(P0),
        np.ascontiguousarray(w),
        ll, dQ, dR, da0, dP0,
    )  # fmt: skip
    return ll, dQ, dR, da0, dP0, bad


@register_funcify_default_op_cache_key(KalmanLoglikOp)
def _numba_funcify_loglik(op, node=None, **kwargs):
    @numba.njit
    def kalman_loglik_op(Q, R, y, Z, T, a0, P0):
        ll, _, _, _, _, bad = _nb_run(np.zeros(y.shape[0]), Q, R, y, Z, T, a0, P0)
        if bad >= 0:
            ll[:] = -np.inf
        return ll

    return kalman_loglik_op, _KERNEL_SALT


@register_funcify_default_op_cache_key(KalmanVJPOp)
def _numba_funcify_vjp(op, node=None, **kwargs):
    @numba.njit
    def kalman_vjp_op(w, Q, R, y, Z, T, a0, P0):
        _, dQ, dR, da0, dP0, bad = _nb_run(w, Q, R, y, Z, T, a0, P0)
        if bad >= 0:
            dQ[:] = 0.0
            dR[:] = 0.0
            da0[:] = 0.0
            dP0[:] = 0.0
        return dQ[0].copy(), np.asarray(dR[0]), da0, dP0

    return kalman_vjp_op, _KERNEL_SALT
