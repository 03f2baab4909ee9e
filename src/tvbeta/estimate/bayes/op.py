"""The Kalman log-likelihood as a PyTensor Op with an exact pullback and native numba code.

Two Ops wrap the compiled kernels of `tvbeta.kalman` (no Kalman math is written here):

- `KalmanLoglikOp`:  (Q, R, y, Z, T, a0, P0) -> ll, the n one-step log predictive densities
  ll_t = log p(y_t | y_{<t}; Q, R) (0 where y_t is NaN), by `tape_kernel`'s forward sweep: the
  terms, not their sum, so `pm.compute_log_likelihood` and `az.loo` see one per time step.
- `KalmanVJPOp`:  (w, ll, tape, ...) -> (dQ, dR, da0, dP0[, dT]), the exact gradient of
  sum_t w_t ll_t by `adjoint_kernel`'s backward sweep over that tape: the first Op's pullback,
  so a log density and its gradient cost one forward and one backward sweep.

Shapes: Q (k, k), R (1,) constant or (n,) per step (a volatility-scaled R_t; dR has its shape),
y (n,) with NaN for missing, Z (n, k), T (k, k), a0 (k,), P0 (k, k); Q and T constant over
time. dQ is the symmetric adjoint of Q (d value = sum_ij dQbar_ij dQ_ij), also the gradient
for a general matrix: the filter sees only Q's symmetric part. T gets a gradient only from Ops
built with ``transition_gradient=True`` (a transition that depends on parameters): their
forward sweep is the full filter, storing the filtered states the adjoint needs for dT
(`gradient.transition_tape_kernel`).

Mean-reverting betas have their own pair, `ReversionLogpOp` and `ReversionLogpVJPOp`: the
sum of the terms of the filter of the augmented state [beta; mu] after the burn-in, with dphi,
by one k-state filter with the long-run means integrated out in closed form
(`tvbeta.kalman.collapsed.collapsed_sum_kernel`). Their sum, not the terms: the terms need a
second filter (without it the kernels cost 0.78x); the model's pointwise terms come from the
posterior draws afterwards.

A numerical failure (F_t <= 0 or NaN, e.g. NaN parameters proposed by a sampler) does not
raise: every ll_t (the reversion Op's value) is -inf and the gradients 0, so NUTS rejects the
proposal instead of stopping.

Many funds at once have their own pair, `PooledLoglikOp` and `PooledVJPOp`: every fund's
terms (J, n) and the gradient in Q_j, R_j of all of them, in one numba call that loops over
the funds one after another (`tape_kernel` and `adjoint_kernel` per fund, nothing else), for
the pooled model (`tvbeta.estimate.bayes.pooled`); built with ``reversion=True`` they take each
fund's phi instead of a shared T and run the collapsed kernels of the terms per fund
(`tvbeta.kalman.collapsed.collapsed_tape_kernel` and its adjoint; the gradient then in phi
(J, k) too). Funds of different lengths are padded with
NaN targets at the end: a NaN y_t has ll_t = 0 and the earlier terms do not see the rows after
them.

Every Op has a Python `perform` (any backend but JAX) and a native numba implementation
(`register_funcify_default_op_cache_key`): no object-mode fallback in the default backend.
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
from tvbeta.kalman.collapsed import (
    collapsed_adjoint_kernel,
    collapsed_sum_adjoint_kernel,
    collapsed_sum_kernel,
    collapsed_sum_width,
    collapsed_tape_kernel,
    collapsed_tape_width,
)
from tvbeta.kalman.filter import MAX_CONSTANT_K, constant_k
from tvbeta.kalman.gradient import (
    adjoint_kernel,
    tape_kernel,
    tape_width,
    transition_tape_kernel,
)

__all__ = [
    "KalmanLoglikOp", "KalmanVJPOp", "PooledLoglikOp", "PooledVJPOp", "ReversionLogpOp",
    "ReversionLogpVJPOp",
]  # fmt: skip

_INPUT_NDIMS = {"Q": 2, "R": 1, "y": 1, "Z": 2, "T": 2, "a0": 1, "P0": 2}
_REVERSION_NDIMS = {**_INPUT_NDIMS, "phi": 1}
_POOLED_NDIMS = {"Q": 3, "R": 2, "y": 2, "Z": 3, "T": 2, "a0": 2, "P0": 3}
del _REVERSION_NDIMS["T"]

# PyTensor's on-disk numba cache keys an Op by class and props only: the salt of every numba
# source changes the key whenever the code it compiles in does (`tvbeta._numba_cache`).
_KERNEL_SALT = sources_salt()


def _as_inputs(*args, ndims: dict[str, int] = _INPUT_NDIMS) -> list[pt.TensorVariable]:
    """float64 tensors with the expected number of dimensions, named in errors.

    An R with one dimension too few (a scalar, or (J,) of the pooled Ops) gains a last axis of
    1: its gradient flows back through that reshape.
    """
    out = []
    for (name, ndim), x in zip(ndims.items(), args, strict=True):
        var = pt.as_tensor_variable(x).astype("float64")
        if name == "R" and var.type.ndim == ndim - 1:
            var = pt.shape_padright(var)
        if var.type.ndim != ndim:
            raise ValueError(f"{name} must have {ndim} dimension(s), got {var.type.ndim}")
        out.append(var)
    return out


@numba.njit(cache=True, fastmath=False)
def _forward(Q, R, y, Z, T, a0, P0, static_k):
    """Return (ll (n,), tape (n, k + 2)) of the forward sweep.

    Every ll_t = -inf on a numerical failure. R (1 | n,); static_k: `sweep_constant(T, k)`.
    """
    n, k = Z.shape
    ll = np.empty(n)
    tape = np.empty((n, k + 2))
    bad = tape_kernel(
        np.ascontiguousarray(y), np.ascontiguousarray(Z),
        np.ascontiguousarray(T).reshape((1, k, k)), np.ascontiguousarray(Q).reshape((1, k, k)),
        np.ascontiguousarray(R), np.ascontiguousarray(a0), np.ascontiguousarray(P0), ll, tape,
        static_k,
    )  # fmt: skip
    if bad >= 0:
        ll[:] = -np.inf
    return ll, tape


@numba.njit(cache=True, fastmath=False)
def _forward_transition(Q, R, y, Z, T, a0, P0):
    """Return (ll (n,), tape (n, `tape_width(k, True)`)) of the full filter, for dT.

    Every ll_t = -inf on a numerical failure. R (1 | n,).
    """
    n, k = Z.shape
    ll = np.empty(n)
    tape = np.empty((n, tape_width(k, True)))
    bad = transition_tape_kernel(
        np.ascontiguousarray(y), np.ascontiguousarray(Z),
        np.ascontiguousarray(T).reshape((1, k, k)), np.ascontiguousarray(Q).reshape((1, k, k)),
        np.ascontiguousarray(R), np.ascontiguousarray(a0), np.ascontiguousarray(P0), ll, tape,
    )  # fmt: skip
    if bad >= 0:
        ll[:] = -np.inf
    return ll, tape


@numba.njit(cache=True, fastmath=False)
def _adjoint(w, ll, tape, y, Z, T, R, static_k):
    """Return (dQ (k, k), dR like R, da0 (k,), dP0 (k, k), dT (k, k)).

    All 0 when the forward sweep failed; dT 0 after a narrow tape (no transition gradient).
    static_k: as for `_forward` (`filter.constant_k`), or None.
    """
    k = Z.shape[1]
    dQ = np.zeros((1, k, k))
    dR = np.zeros(R.shape[0])
    da0 = np.zeros(k)
    dP0 = np.zeros((k, k))
    dT = np.zeros((1, k, k))
    if np.all(np.isfinite(ll)):  # a failed forward sweep set every term to -inf
        adjoint_kernel(
            np.ascontiguousarray(y), np.ascontiguousarray(Z),
            np.ascontiguousarray(T).reshape((1, k, k)), np.ascontiguousarray(w), tape,
            dQ, dR, da0, dP0, dT, static_k,
        )  # fmt: skip
    return dQ[0].copy(), dR, da0, dP0, dT[0].copy()


class _KalmanFlags:
    """The Kalman Ops' ``random_walk_k`` and ``transition_gradient`` (`KalmanLoglikOp`).

    Raises
    ------
    ValueError
        When random_walk_k is outside 0..`filter.MAX_CONSTANT_K`, or is set together with
        transition_gradient.
    """

    __props__ = ("random_walk_k", "transition_gradient")

    def __init__(self, random_walk_k: int = 0, transition_gradient: bool = False) -> None:
        if not 0 <= random_walk_k <= MAX_CONSTANT_K:
            raise ValueError(f"random_walk_k must be in 0..{MAX_CONSTANT_K}, got {random_walk_k}")
        if random_walk_k and transition_gradient:
            raise ValueError(
                "random_walk_k and transition_gradient exclude each other: a random-walk T is "
                "fixed; use random_walk_k=0 for a transition with a gradient"
            )
        self.random_walk_k = int(random_walk_k)
        self.transition_gradient = bool(transition_gradient)
        super().__init__()

    @property
    def static_k(self) -> tuple[float, ...] | None:
        """The sweeps' static_k argument."""
        return constant_k(self.random_walk_k)


class KalmanLoglikOp(_KalmanFlags, Op):
    """ll = KalmanLoglikOp(k)(Q, R, y, Z, T, a0, P0): (n,) one-step log predictive densities.

    Differentiable in Q, R, a0 and P0 (exact, by `KalmanVJPOp`), and in T with
    ``transition_gradient=True``; y and Z are data. The node's second output is the forward
    sweep's tape (n, `gradient.tape_width`), which the pullback reuses; calling the Op returns
    ll only.

    random_walk_k: k for a random-walk model (T = I, k <= `filter.MAX_CONSTANT_K`), whose sweep
    numba compiles with k a constant (`filter.sweep_constant`); 0 (default) for any other. The
    data are shared variables, unknown at compile time, so the model says which copy it needs;
    a T that is not the identity raises at run time.

    transition_gradient: run the full filter forward (`gradient.transition_tape_kernel`) so
    that the pullback also gives dT (k, k); about twice the forward cost and a tape of
    k + 2 + k + k^2 columns, so only for a T that depends on parameters. Not combined with
    random_walk_k.

    Raises
    ------
    ValueError
        When random_walk_k is outside 0..`filter.MAX_CONSTANT_K`, or is set together with
        transition_gradient.
    """

    __props__ = _KalmanFlags.__props__

    def __call__(self, *inputs, **kwargs):
        """Return the terms output only (the tape stays internal to the gradient)."""
        return super().__call__(*inputs, **kwargs)[0]

    def make_node(self, Q, R, y, Z, T, a0, P0) -> Apply:
        """Build the Apply node: outputs the (n,) terms and the (n, `tape_width`) tape."""
        inputs = _as_inputs(Q, R, y, Z, T, a0, P0)
        n = inputs[2].type.shape[0]
        outputs = [pt.tensor(dtype="float64", shape=(n,)), pt.matrix(dtype="float64")]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        """Compute the terms and the tape in Python mode (`_forward`, `_forward_transition`)."""
        if self.transition_gradient:
            output_storage[0][0], output_storage[1][0] = _forward_transition(*inputs)
        else:
            output_storage[0][0], output_storage[1][0] = _forward(*inputs, self.static_k)

    def infer_shape(self, node, shapes):
        """Return the output shapes: (n,) like y, and (n, `tape_width`)."""
        n, k = shapes[3]
        extra = k + k * k if self.transition_gradient else 0  # `tape_width`, on symbolic k
        return [shapes[2], (n, k + 2 + extra)]

    def pullback(self, inputs, outputs, cotangents):
        """Return the gradients of Q, R, a0, P0 (and T) by `KalmanVJPOp`; y and Z get none."""
        Q, R, y, Z, T, a0, P0 = inputs
        ll, tape = outputs
        vjp = KalmanVJPOp(self.random_walk_k, self.transition_gradient)
        grads = vjp(cotangents[0], ll, tape, y, Z, T, R, Q, a0, P0)
        dQ, dR, da0, dP0 = grads[:4]
        if self.transition_gradient:
            dT = grads[4]
        else:
            dT = grad_not_implemented(
                self, 4, T, "T is fixed: build the Op with transition_gradient=True"
            )
        return [
            dQ,
            dR,
            grad_not_implemented(self, 2, y, "y is data"),
            grad_not_implemented(self, 3, Z, "Z is data"),
            dT,
            da0,
            dP0,
        ]


class KalmanVJPOp(_KalmanFlags, Op):
    """Compute the gradient of sum_t w_t ll_t by the adjoint sweep over (ll, tape).

    (dQ, dR, da0, dP0) = KalmanVJPOp(k)(w, ll, tape, y, Z, T, R, Q, a0, P0); with
    ``transition_gradient=True`` (after a `KalmanLoglikOp` built so) a fifth output dT (k, k).
    R gives dR its shape, Q, a0 and P0 only give the gradients their types. Not differentiable
    itself (NUTS needs no second derivatives). random_walk_k as for `KalmanLoglikOp` (its
    pullback passes its own): the adjoint sweep's copy compiled with k a constant, about 2.5x
    faster than the generic one at k = 3 (52 -> 21 us on the seed case).
    """

    __props__ = _KalmanFlags.__props__

    def make_node(self, w, ll, tape, y, Z, T, R, Q, a0, P0) -> Apply:
        """Build the Apply node; the outputs take the types of Q, R, a0, P0 (and T).

        Raises
        ------
        ValueError
            When ``w`` is not a vector.
        """
        w, ll, tape = (pt.as_tensor_variable(x).astype("float64") for x in (w, ll, tape))
        if w.type.ndim != 1:
            raise ValueError(f"w must be a vector, got {w.type.ndim} dimension(s)")
        Q, R, y, Z, T, a0, P0 = _as_inputs(Q, R, y, Z, T, a0, P0)
        outputs = [Q.type(), R.type(), a0.type(), P0.type()]
        if self.transition_gradient:
            outputs.append(T.type())
        return Apply(self, [w, ll, tape, y, Z, T, R, Q, a0, P0], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        """Compute (dQ, dR, da0, dP0[, dT]) in Python mode (`_adjoint`)."""
        values = _adjoint(*inputs[:7], self.static_k)[: len(output_storage)]
        for storage, value in zip(output_storage, values, strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        """Return the output shapes: those of Q, R, a0 and P0 (and T)."""
        return [shapes[7], shapes[6], shapes[8], shapes[9]] + shapes[5:6] * len(node.outputs[4:])


@numba.njit(cache=True, fastmath=False)
def _reversion_logp(Q, R, y, Z, phi, a0, P0, start, static_k):
    """Return (value (0-d), tape (n, `collapsed_sum_width(k)`), post (2, k, k + 1)).

    value: the sum of the one-step terms from row ``start`` (0-d int) on, -inf on a failure
    (a bad step, or the means' sums overflowing: `collapsed.MEANS_OVERFLOW`).
    static_k: `filter.constant_k(k)`, or None (k read at run time).
    """
    n, k = Z.shape
    tape = np.empty((n, collapsed_sum_width(k)))
    post = np.empty((2, k, k + 1))
    value, bad = collapsed_sum_kernel(
        np.ascontiguousarray(y), np.ascontiguousarray(Z), np.ascontiguousarray(phi),
        np.ascontiguousarray(Q), np.ascontiguousarray(R), np.ascontiguousarray(a0),
        np.ascontiguousarray(P0), start[()], tape, post, static_k,
    )  # fmt: skip
    return np.array(value if bad == -1 else -np.inf), tape, post  # a failed step or overflow


@numba.njit(cache=True, fastmath=False)
def _reversion_logp_adjoint(g, value, tape, post, y, Z, phi, a0, start, R, static_k):
    """Return g times (dQ (k, k), dR like R, dphi (k,)); all 0 when the forward sweep failed."""
    k = Z.shape[1]
    dQ, dR, dphi = np.zeros((k, k)), np.zeros(R.shape[0]), np.zeros(k)
    if np.isfinite(value[()]):
        collapsed_sum_adjoint_kernel(
            np.ascontiguousarray(y), np.ascontiguousarray(Z), np.ascontiguousarray(phi),
            np.ascontiguousarray(a0), start[()], tape, post, dQ, dR, dphi, static_k,
        )  # fmt: skip
        scale = g[()]
        dQ *= scale
        dR *= scale
        dphi *= scale
    return dQ, dR, dphi


class _StaticK:
    """The reversion Ops' ``k``: which copy of the collapsed kernels runs.

    k: the number of betas for the copy compiled with k a constant (k <= 5), 0 for the copy
    that reads k at run time (`tvbeta.kalman.filter.constant_k`).
    """

    def __init__(self, k: int = 0) -> None:
        if not 0 <= k <= MAX_CONSTANT_K:
            raise ValueError(f"k must be in 0..{MAX_CONSTANT_K}, got {k}")
        self.k = int(k)
        super().__init__()

    @property
    def static_k(self) -> tuple[float, ...] | None:
        """The kernels' static_k argument."""
        return constant_k(self.k)


class ReversionLogpOp(_StaticK, Op):
    """logp = ReversionLogpOp(k)(Q, R, y, Z, phi, a0, P0, start): the log-likelihood, reverting.

    The sum of the one-step log predictive densities from row ``start`` on (the first
    likelihood step after the burn-in) of beta_t - mu = diag(phi)(beta_{t-1} - mu) + eta_t
    with the long-run means mu integrated out (beta_{-1}, mu independent N(a0, P0)): the sum
    of the augmented filter's terms of [beta; mu], by one k-state filter and the means in
    closed form (`tvbeta.kalman.collapsed.collapsed_sum_kernel`). Q (k, k), R (1 | n,), y (n,)
    with NaN for missing, Z (n, k), phi (k,) per period in (0, 1], a0 (k,), P0 (k, k), start:
    a 0-d integer. Differentiable in Q, R and phi (exact, by `ReversionLogpVJPOp`); the rest
    are data. A numerical failure gives -inf and zero gradients, so NUTS rejects the proposal.
    The node's other outputs are the tape and the means' cotangents the pullback reuses;
    calling the Op returns the value only. k (0..5): Z's columns, for the kernels' copy
    compiled with k a constant (faster); 0 reads k at run time. The pointwise terms (for LOO
    and stacking) come from the draws afterwards
    (`tvbeta.kalman.collapsed.reversion_loglik_terms`), not from this graph.

    Raises
    ------
    ValueError
        When k is outside 0..5; at run time, when a k > 0 is not Z's number of columns.
    """

    __props__ = ("k",)

    def __call__(self, *inputs, **kwargs):
        """Return the value output only (the tape stays internal to the gradient)."""
        return super().__call__(*inputs, **kwargs)[0]

    def make_node(self, Q, R, y, Z, phi, a0, P0, start) -> Apply:
        """Build the Apply node: outputs the value (0-d), the tape and the means' cotangents."""
        inputs = _as_inputs(Q, R, y, Z, a0, P0, phi, ndims=_REVERSION_NDIMS)
        Q, R, y, Z, a0, P0, phi = inputs
        start = pt.as_tensor_variable(start).astype("int64")
        if start.type.ndim != 0:
            raise ValueError(f"start must be a scalar row index, got {start.type.ndim} dims")
        outputs = [pt.tensor(dtype="float64", shape=()), pt.matrix(dtype="float64"),
                   pt.tensor3(dtype="float64")]  # fmt: skip
        return Apply(self, [Q, R, y, Z, phi, a0, P0, start], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        """Compute the value, the tape and the cotangents in Python mode (`_reversion_logp`)."""
        for storage, value in zip(output_storage, _reversion_logp(*inputs, self.static_k),
                                  strict=True):  # fmt: skip
            storage[0] = value

    def infer_shape(self, node, shapes):
        """Return the output shapes: (), (n, `collapsed_sum_width(k)`) and (2, k, k + 1)."""
        n, k = shapes[3]
        return [(), (n, 2 * k * k + 3 * k + 2), (2, k, k + 1)]

    def pullback(self, inputs, outputs, cotangents):
        """Return the gradients of Q, R and phi by `ReversionLogpVJPOp`; the data get none."""
        Q, R, y, Z, phi, a0, P0, start = inputs
        value, tape, post = outputs
        dQ, dR, dphi = ReversionLogpVJPOp(self.k)(cotangents[0], value, tape, post, y, Z, phi,
                                                  a0, start, R, Q)  # fmt: skip
        data = {2: (y, "y is data"), 3: (Z, "Z is data"), 5: (a0, "a0 is fixed"),
                6: (P0, "P0 is fixed"), 7: (start, "start is a row index")}  # fmt: skip
        missing = {i: grad_not_implemented(self, i, x, why) for i, (x, why) in data.items()}
        return [dQ, dR, missing[2], missing[3], dphi, missing[5], missing[6], missing[7]]


class ReversionLogpVJPOp(_StaticK, Op):
    """Compute g times the gradient of `ReversionLogpOp`'s value (its pullback).

    (dQ, dR, dphi) = ReversionLogpVJPOp(k)(g, value, tape, post, y, Z, phi, a0, start, R, Q),
    by `collapsed_sum_adjoint_kernel`; g the value's cotangent (0-d); R and Q give dR and dQ
    their types; k as in `ReversionLogpOp`. Not differentiable itself (NUTS needs no second
    derivatives).
    """

    __props__ = ("k",)

    def make_node(self, g, value, tape, post, y, Z, phi, a0, start, R, Q) -> Apply:
        """Build the Apply node; the outputs take the types of Q, R and phi."""
        g, value, tape, post = (pt.as_tensor_variable(x).astype("float64")
                                for x in (g, value, tape, post))  # fmt: skip
        start = pt.as_tensor_variable(start).astype("int64")
        Q, R, y, Z, phi, a0 = _as_inputs(Q, R, y, Z, phi, a0, ndims={
            "Q": 2, "R": 1, "y": 1, "Z": 2, "phi": 1, "a0": 1})  # fmt: skip
        return Apply(self, [g, value, tape, post, y, Z, phi, a0, start, R, Q],
                     [Q.type(), R.type(), phi.type()])  # fmt: skip

    def perform(self, node, inputs, output_storage) -> None:
        """Compute g (dQ, dR, dphi) in Python mode (`_reversion_logp_adjoint`)."""
        grads = _reversion_logp_adjoint(*inputs[:10], self.static_k)
        for storage, value in zip(output_storage, grads, strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        """Return the output shapes: those of Q, R and phi."""
        return [shapes[10], shapes[9], shapes[6]]


@numba.njit(cache=True, fastmath=False, inline="always")
def _pooled_member(j, Q, R, y, Z, T, a0, P0, static_k, reversion, ll, tape):
    """Forward sweep of fund j into ll[j], tape[j]; every ll[j, t] = -inf on a failure.

    reversion: T is phi (J, k), each fund's persistences, and the sweep `collapsed_tape_kernel`;
    else T (k, k) is every fund's transition and the sweep `tape_kernel`.
    """
    k = Z.shape[2]
    if reversion:
        bad = collapsed_tape_kernel(y[j], Z[j], T[j], Q[j], R[j], a0[j], P0[j], ll[j], tape[j],
                                    static_k)  # fmt: skip
    else:
        bad = tape_kernel(y[j], Z[j], T.reshape((1, k, k)), Q[j].reshape((1, k, k)), R[j],
                          a0[j], P0[j], ll[j], tape[j], static_k)  # fmt: skip
    if bad >= 0:
        ll[j, :] = -np.inf


@numba.njit(cache=True, fastmath=False)
def _pooled_forward(Q, R, y, Z, T, a0, P0, static_k, reversion=False):
    """Return (ll (J, n), tape (J, n, width)): every fund's forward sweep, one after another.

    width: k + 2, or `collapsed_tape_width(k)` with ``reversion`` (T is then phi (J, k)).
    """
    J, n, k = Z.shape
    width = collapsed_tape_width(k) if reversion else k + 2
    ll, tape = np.empty((J, n)), np.empty((J, n, width))
    Q, R, y, Z = np.ascontiguousarray(Q), np.ascontiguousarray(R), np.ascontiguousarray(y), \
        np.ascontiguousarray(Z)  # fmt: skip
    T, a0, P0 = np.ascontiguousarray(T), np.ascontiguousarray(a0), np.ascontiguousarray(P0)
    for j in range(J):
        _pooled_member(j, Q, R, y, Z, T, a0, P0, static_k, reversion, ll, tape)
    return ll, tape


@numba.njit(cache=True, fastmath=False, inline="always")
def _pooled_member_adjoint(j, w, ll, tape, y, Z, T, dQ, dR, dphi, static_k, reversion):
    """Adjoint sweep of fund j into dQ[j], dR[j] (and dphi[j]); 0 when its forward sweep failed.

    reversion: as for `_pooled_member`.
    """
    k = Z.shape[2]
    dQj = np.zeros((1, k, k))
    if np.all(np.isfinite(ll[j])):
        if reversion:
            collapsed_adjoint_kernel(y[j], Z[j], T[j], w[j], tape[j], dQj[0], dR[j], dphi[j],
                                     static_k)  # fmt: skip
        else:
            da0, dP0 = np.empty(k), np.empty((k, k))  # a0, P0 are data: not returned
            # a narrow tape: dT (dQj again) is not touched
            adjoint_kernel(y[j], Z[j], T.reshape((1, k, k)), w[j], tape[j], dQj, dR[j], da0,
                           dP0, dQj, static_k)  # fmt: skip
    dQ[j] = dQj[0]


@numba.njit(cache=True, fastmath=False)
def _pooled_adjoint(w, ll, tape, y, Z, T, R, static_k, reversion=False):
    """Return (dQ (J, k, k), dR like R (J, 1 | n), dphi (J, k)) of sum_jt w_jt ll_jt.

    Fund after fund; dphi is 0 unless ``reversion`` (T is then phi). static_k: as for
    `_pooled_forward`.
    """
    J, k = Z.shape[0], Z.shape[2]
    dQ, dR, dphi = np.empty((J, k, k)), np.zeros(R.shape), np.zeros((J, k))
    w, y = np.ascontiguousarray(w), np.ascontiguousarray(y)
    Z, T = np.ascontiguousarray(Z), np.ascontiguousarray(T)
    for j in range(J):
        _pooled_member_adjoint(j, w, ll, tape, y, Z, T, dQ, dR, dphi, static_k, reversion)
    return dQ, dR, dphi


class _PooledFlags(_StaticK):
    """The pooled Ops' ``k`` (as `_StaticK`) and ``reversion``: which betas the funds have.

    reversion=False: random walks (or any T shared by the funds), the fifth input T (k, k);
    True: mean-reverting betas, the fifth input phi (J, k), each fund's persistences per
    period, and the terms' sweeps of `tvbeta.kalman.collapsed`, per fund.
    """

    __props__ = ("k", "reversion")

    def __init__(self, k: int = 0, reversion: bool = False) -> None:
        self.reversion = bool(reversion)
        super().__init__(k)

    def _ndims(self) -> dict[str, int]:
        """Return the inputs' names (the fifth T or phi) and dimensions, for `_as_inputs`."""
        if not self.reversion:
            return _POOLED_NDIMS
        return {("phi" if name == "T" else name): nd for name, nd in _POOLED_NDIMS.items()}


class PooledLoglikOp(_PooledFlags, Op):
    """ll = PooledLoglikOp(k, reversion)(Q, R, y, Z, T | phi, a0, P0): (J, n) terms of J funds.

    Fund j's row ll[j] is `KalmanLoglikOp`'s terms of (Q[j], R[j], y[j], Z[j], T, a0[j], P0[j]),
    or with ``reversion=True`` the terms of mean-reverting betas of (Q[j], R[j], y[j], Z[j],
    phi[j], a0[j], P0[j]) (`tvbeta.kalman.collapsed.reversion_loglik_terms`'s): Q (J, k, k), R
    (J,) or (J, 1 | n), y (J, n) with NaN for missing (funds shorter than n padded with NaN at
    the end), Z (J, n, k) finite, T (k, k) shared or phi (J, k) per period in (0, 1], a0 (J, k),
    P0 (J, k, k). One numba call for all funds. Differentiable in Q and R, and in phi (exact, by
    `PooledVJPOp`); y, Z, T, a0 and P0 are data. A fund whose sweep fails numerically gets every
    term -inf (the sampler rejects the proposal). The second output is the tape (J, n, k + 2),
    or (J, n, `collapsed_tape_width(k)`), that the pullback reuses; calling the Op returns ll
    only.

    k: Z's columns for the kernels' copy compiled with k a constant (k <= 5, with
    ``reversion=False`` only for a random walk, T = I; `filter.constant_k`, faster); 0 reads k
    at run time (any T). The funds run one after another: spread over numba's threads
    (``prange``) they were slower on the machines measured (`tvbeta.estimate.bayes.pooled`).

    Raises
    ------
    ValueError
        When k is outside 0..`filter.MAX_CONSTANT_K`; an input with the wrong number of
        dimensions.
    """

    __props__ = _PooledFlags.__props__

    def __call__(self, *inputs, **kwargs):
        """Return the terms output only (the tape stays internal to the gradient)."""
        return super().__call__(*inputs, **kwargs)[0]

    def make_node(self, Q, R, y, Z, T, a0, P0) -> Apply:
        """Build the Apply node: outputs the (J, n) terms and the (J, n, width) tape."""
        inputs = _as_inputs(Q, R, y, Z, T, a0, P0, ndims=self._ndims())
        outputs = [pt.tensor(dtype="float64", shape=inputs[2].type.shape), pt.tensor3("float64")]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        """Compute the terms and the tape in Python mode (`_pooled_forward`)."""
        output_storage[0][0], output_storage[1][0] = _pooled_forward(*inputs, self.static_k,
                                                                     self.reversion)  # fmt: skip

    def infer_shape(self, node, shapes):
        """Return the output shapes: (J, n) like y, and the tape's (J, n, width)."""
        J, n, k = shapes[3]
        width = 3 * k * k + 5 * k + 4 if self.reversion else k + 2  # on a symbolic k
        return [shapes[2], (J, n, width)]

    def pullback(self, inputs, outputs, cotangents):
        """Return the gradients of Q, R (and phi) by `PooledVJPOp`; the data get none."""
        Q, R, y, Z, T, a0, P0 = inputs
        ll, tape = outputs
        grads = PooledVJPOp(self.k, self.reversion)(cotangents[0], ll, tape, y, Z, T, R, Q)
        data = {2: (y, "y is data"), 3: (Z, "Z is data"), 5: (a0, "a0 is fixed"),
                6: (P0, "P0 is fixed")}  # fmt: skip
        missing = {i: grad_not_implemented(self, i, x, why) for i, (x, why) in data.items()}
        dT = grads[2] if self.reversion else grad_not_implemented(self, 4, T, "T is fixed")
        return [grads[0], grads[1], missing[2], missing[3], dT, missing[5], missing[6]]


class PooledVJPOp(_PooledFlags, Op):
    """Compute the gradient of sum_jt w_jt ll_jt after `PooledLoglikOp` (its pullback).

    (dQ (J, k, k), dR like R[, dphi (J, k)]) = PooledVJPOp(k, reversion)(w, ll, tape, y, Z,
    T | phi, R, Q), fund by fund by `adjoint_kernel` (or `collapsed_adjoint_kernel` with
    ``reversion``, which adds dphi); R, Q and phi give the gradients their types; k and
    reversion as in `PooledLoglikOp`. Not differentiable itself.
    """

    __props__ = _PooledFlags.__props__

    def make_node(self, w, ll, tape, y, Z, T, R, Q) -> Apply:
        """Build the Apply node; the outputs take the types of Q and R (and phi).

        Raises
        ------
        ValueError
            When ``w`` is not (J, n).
        """
        w, ll, tape = (pt.as_tensor_variable(x).astype("float64") for x in (w, ll, tape))
        if w.type.ndim != 2:
            raise ValueError(f"w must be a matrix (J, n), got {w.type.ndim} dimension(s)")
        ndims, fifth = self._ndims(), "phi" if self.reversion else "T"
        Q, R, y, Z, T = _as_inputs(Q, R, y, Z, T, ndims={name: ndims[name] for name in (
            "Q", "R", "y", "Z", fifth)})  # fmt: skip
        outputs = [Q.type(), R.type()] + [T.type()] * self.reversion
        return Apply(self, [w, ll, tape, y, Z, T, R, Q], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        """Compute (dQ, dR[, dphi]) in Python mode (`_pooled_adjoint`)."""
        grads = _pooled_adjoint(*inputs[:7], self.static_k, self.reversion)
        for storage, value in zip(output_storage, grads[: len(output_storage)], strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        """Return the output shapes: those of Q and R (and phi)."""
        return [shapes[7], shapes[6]] + [shapes[5]] * self.reversion


# ----------------------------------------------------------------------------------------------
# Native numba implementations (PyTensor's default backend): the same njit functions as
# `perform`; inputs may be non-contiguous views.


@register_funcify_default_op_cache_key(KalmanLoglikOp)
def _numba_funcify_loglik(op, node=None, **kwargs):
    static_k = op.static_k  # a compile-time constant of the closure
    if op.transition_gradient:

        @numba.njit(fastmath=False)
        def kalman_loglik_transition_op(Q, R, y, Z, T, a0, P0):
            return _forward_transition(Q, R, y, Z, T, a0, P0)

        return kalman_loglik_transition_op, _KERNEL_SALT

    @numba.njit(fastmath=False)
    def kalman_loglik_op(Q, R, y, Z, T, a0, P0):
        return _forward(Q, R, y, Z, T, a0, P0, static_k)

    return kalman_loglik_op, _KERNEL_SALT


@register_funcify_default_op_cache_key(KalmanVJPOp)
def _numba_funcify_vjp(op, node=None, **kwargs):
    if op.transition_gradient:

        @numba.njit(fastmath=False)
        def kalman_vjp_transition_op(w, ll, tape, y, Z, T, R, Q, a0, P0):
            return _adjoint(w, ll, tape, y, Z, T, R, None)

        return kalman_vjp_transition_op, _KERNEL_SALT

    static_k = op.static_k  # a compile-time constant of the closure

    @numba.njit(fastmath=False)
    def kalman_vjp_op(w, ll, tape, y, Z, T, R, Q, a0, P0):
        dQ, dR, da0, dP0, _ = _adjoint(w, ll, tape, y, Z, T, R, static_k)
        return dQ, dR, da0, dP0

    return kalman_vjp_op, _KERNEL_SALT


@register_funcify_default_op_cache_key(ReversionLogpOp)
def _numba_funcify_reversion(op, node=None, **kwargs):
    static_k = op.static_k  # a compile-time constant of the closure

    @numba.njit(fastmath=False)
    def reversion_logp_op(Q, R, y, Z, phi, a0, P0, start):
        return _reversion_logp(Q, R, y, Z, phi, a0, P0, start, static_k)

    return reversion_logp_op, _KERNEL_SALT


@register_funcify_default_op_cache_key(ReversionLogpVJPOp)
def _numba_funcify_reversion_vjp(op, node=None, **kwargs):
    static_k = op.static_k

    @numba.njit(fastmath=False)
    def reversion_logp_vjp_op(g, value, tape, post, y, Z, phi, a0, start, R, Q):
        return _reversion_logp_adjoint(g, value, tape, post, y, Z, phi, a0, start, R, static_k)

    return reversion_logp_vjp_op, _KERNEL_SALT


@register_funcify_default_op_cache_key(PooledLoglikOp)
def _numba_funcify_pooled(op, node=None, **kwargs):
    static_k, reversion = op.static_k, op.reversion  # compile-time constants of the closure

    @numba.njit(fastmath=False)
    def pooled_loglik_op(Q, R, y, Z, T, a0, P0):
        return _pooled_forward(Q, R, y, Z, T, a0, P0, static_k, reversion)

    return pooled_loglik_op, _KERNEL_SALT


@register_funcify_default_op_cache_key(PooledVJPOp)
def _numba_funcify_pooled_vjp(op, node=None, **kwargs):
    static_k = op.static_k  # a compile-time constant of the closure
    if op.reversion:

        @numba.njit(fastmath=False)
        def pooled_reversion_vjp_op(w, ll, tape, y, Z, phi, R, Q):
            return _pooled_adjoint(w, ll, tape, y, Z, phi, R, static_k, True)

        return pooled_reversion_vjp_op, _KERNEL_SALT

    @numba.njit(fastmath=False)
    def pooled_vjp_op(w, ll, tape, y, Z, T, R, Q):
        dQ, dR, _ = _pooled_adjoint(w, ll, tape, y, Z, T, R, static_k, False)
        return dQ, dR

    return pooled_vjp_op, _KERNEL_SALT
