"""Run NUTS on a tvbeta model: nutpie's Rust sampler on PyTensor's compiled function, or PyMC's.

nutpie calls the model's log density and gradient through a C function pointer, from its chains'
threads, with no Python and no GIL between the sampler and the compiled code: PyTensor compiles
the graph to numba (cached on disk) and a small numba ``cfunc`` (also cached) calls it through
its native address (`_nutpie_model`, the comment above it). On the seed case that halves a warm
fit's CPU time against calling the same function from Python (nutpie's Python-function
interface, used before), and the chains evaluate gradients in parallel.

Why not ``pm.sample(nuts_sampler="nutpie")`` or ``nutpie.compile_pymc_model``: nutpie's numba
backend builds a ``cfunc`` that holds the data as dynamic globals and links the whole graph in,
which numba cannot cache, so every model recompiles it (5-15 s: more than the sampling).

Same seed, same draws: PyTensor's numba backend compiles with LLVM fast-math flags by default
(``numba__fastmath``: reassociation, contraction, approximate functions). With them, the
draws of one seed depended on what the compile caches held: on the seed case, a cold cache, a
warm one and a warm numba cache with a cold PyTensor one gave three different posteriors
(a graph compiled in the process and the same graph loaded from the cache round differently).
Both samplers' models compile with fast-math off (`_without_fast_math`; the kernels set
``fastmath=False`` themselves, `tvbeta._numba_cache`, and the model's few scalar operations lose
nothing measurable) and a seed gives the same draws
whatever the caches hold (`tests/estimate/bayes/test_sampler.py`). The flag is PyTensor's
global config, so those compiles (with PyMC's sampler, its whole run) take a lock: fits in
threads (`fit_funds` with a thread pool) neither compile with another thread's setting nor
leave it changed.

One compiled model per structure: the data and the prior scales (the defaults come from each
fund's returns) are shared inputs of the graph, not constants, so the graph of every fund of one
structure (states, Q form, noise and betas model, prior families) is the same, and the compiled
functions of the first are kept for the next (`_compiled_functions`, keyed by a hash of the
graph, `_structure_key`). Compiling costs ~1 s per model even from warm disk caches (PyTensor's
rewrites and function making), so a refit in a notebook, the next fund of a loop or a Dask
worker's next task skips it; the draws are those of a fresh compile, bit for bit.

The result is the DataTree ``pm.sample`` returns (``posterior.attrs["sampling_time"]`` too),
whichever sampler ran.

This uses private parts of nutpie 0.16 (`_make_functions`, `_prepare_dims_and_coords`,
`_wrap_with_lock`, `_rv_dict_to_flat_array_wrapper`, `CompiledPyMCModel` and its C
signatures), of PyTensor 3.3 (the numba function of a compiled graph, its disk cache) and
numba's calling convention, hence pyproject's pins. Should a release change them
(AttributeError, ImportError, TypeError or a numba error while building nutpie's model), PyMC's
NUTS samples instead, with one `SamplerFallbackWarning` naming what failed and the versions
installed.

Ctrl-C: nutpie and PyMC both answer a KeyboardInterrupt by returning the draws made so far; a
partial posterior is no posterior (none during tuning, ragged chains after), so nutpie is waited
on and cancelled by hand and any interrupt noted is raised again: `sample_nuts` returns every
draw or raises KeyboardInterrupt. PyMC's chains run in processes it forks, and two of its paths
leave them running after a Ctrl-C (PyMC 6.4): an interrupt while it is still starting them
(``ParallelSampler.__init__``, before the block that aborts them), and a chain that does not
answer the abort (``ProcessAdapter.terminate_all`` computes its patience so that it never
terminates). A forked chain holds both ends of its own message pipe, so it waits for orders
for ever, holding its memory and the caller's stdout. `_sample_pymc` ends every chain process
of its call that outlives ``pm.sample`` (seen in CI: a chain left behind, the test's pipe
never closed).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import wraps
from importlib import metadata
from typing import Literal, NamedTuple

import numba
import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from tvbeta._warn import warn_caller
from tvbeta.constants import NUTPIE_ADAPTATION, NUTPIE_ADAPTATION_REVERTING
from tvbeta.interrupts import noting_interrupts
from tvbeta.nuts import SamplerSettings

__all__ = ["NUTSRun", "SamplerFallbackWarning", "SamplerSettings", "adaptation_for", "sample_nuts"]

SamplerName = Literal["pymc", "nutpie"]
_INTERNALS_CHANGED = (AttributeError, ImportError, TypeError, numba.core.errors.NumbaError)
"""What a release that renames or re-signs a private helper raises while we build the model."""


class SamplerFallbackWarning(UserWarning):
    """nutpie's fast path failed (its or PyTensor's internals changed); PyMC's NUTS ran."""


class NUTSRun(NamedTuple):
    """What `sample_nuts` returns."""

    tree: xr.DataTree
    """As from ``pm.sample``: posterior, sample_stats, observed_data, constant_data."""
    seconds: float
    """Wall time of the call, compilation included."""
    sampler: SamplerName
    """The sampler that ran: "pymc" when nutpie was asked for but its fast path failed."""
    adaptation: str
    """The mass-matrix adaptation that ran: nutpie's (the one asked for), or PyMC's "diag"."""


def adaptation_for(betas: str) -> Literal["diag", "low_rank"]:
    """Return nutpie's mass-matrix adaptation for a model whose betas are ``betas``.

    "mean_reverting": `tvbeta.constants.NUTPIE_ADAPTATION_REVERTING`; else (random walks)
    `tvbeta.constants.NUTPIE_ADAPTATION`.
    """
    return NUTPIE_ADAPTATION_REVERTING if betas == "mean_reverting" else NUTPIE_ADAPTATION


def sample_nuts(
    model: pm.Model,
    settings: SamplerSettings,
    *,
    seed: int,
    progressbar: bool = False,
    adaptation: Literal["diag", "low_rank"] = NUTPIE_ADAPTATION,
) -> NUTSRun:
    """NUTS draws of the model's free variables, every one of them (``settings.n_paths`` unused).

    ``adaptation``: nutpie's mass-matrix adaptation (`adaptation_for` the model's betas);
    PyMC's NUTS adapts a diagonal one.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C during compilation or sampling, even though both samplers would return
        the draws made so far (see the module doc).
    """
    s = settings.resolved()
    t0 = time.perf_counter()
    with noting_interrupts() as interrupt:
        compiled = None
        if s.sampler == "nutpie":
            try:
                compiled = _nutpie_model(model)
            except _INTERNALS_CHANGED as err:
                warn_caller(_fallback_message(err), SamplerFallbackWarning)
        try:
            if compiled is None:
                tree = _sample_pymc(model, s, seed, progressbar)
            else:
                tree = _sample_nutpie(compiled, model, s, seed, progressbar, adaptation)
        except Exception:
            interrupt.check()  # a swallowed Ctrl-C made the sampler fail: report the Ctrl-C
            raise
        interrupt.check()
    if compiled is None:
        return NUTSRun(tree, time.perf_counter() - t0, "pymc", "diag")
    return NUTSRun(tree, time.perf_counter() - t0, "nutpie", adaptation)


_COMPILE_LOCK = threading.Lock()


def _without_fast_math[**P, R](f: Callable[P, R]) -> Callable[P, R]:
    """Run ``f`` with PyTensor's numba fast-math off, one such call at a time (module doc)."""

    @wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # a new change_flags per call: one shared instance keeps the saved value on itself
        with _COMPILE_LOCK, pytensor.config.change_flags(numba__fastmath=False):
            return f(*args, **kwargs)

    return wrapper


@_without_fast_math
def _sample_pymc(model, s: SamplerSettings, seed, progressbar):
    before = set(multiprocessing.active_children())
    try:
        with model:
            return pm.sample(
                draws=s.draws, tune=s.tune, chains=s.chains, cores=s.cores, random_seed=seed,
                nuts_sampler="pymc", nuts={"target_accept": s.target_accept},
                progressbar=progressbar, quiet=not progressbar, compute_convergence_checks=False,
            )  # fmt: skip
    finally:
        _end_chain_processes(before)


#: The name PyMC 6.4 gives its chain processes (``ProcessAdapter``: ``worker_chain_<chain>``).
_CHAIN_PROCESS = "worker_chain_"


def _end_chain_processes(before: set[multiprocessing.process.BaseProcess]) -> None:
    """Terminate PyMC's chain processes started since ``before`` that are still running.

    After ``pm.sample`` a finished chain has been joined; one still alive was left by an
    interrupt (module doc). Processes of other threads' work are not PyMC's chains: kept.
    """
    left = [
        p for p in multiprocessing.active_children()
        if p not in before and p.name.startswith(_CHAIN_PROCESS)
    ]  # fmt: skip
    for process in left:
        process.terminate()
    for process in left:
        process.join()


def _sample_nutpie(compiled, model, s: SamplerSettings, seed, progressbar, adaptation):
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    t1 = time.perf_counter()
    # blocking=False and our own wait: nutpie.sample would turn Ctrl-C into a partial trace
    run = nutpie.sample(
        compiled, draws=s.draws, tune=max(s.tune, 1), chains=s.chains, cores=s.cores, seed=seed,
        save_warmup=False, progress_bar=progressbar, target_accept=s.target_accept,
        adaptation=adaptation, blocking=False,
    )  # fmt: skip
    try:
        tree = run.wait()
    except BaseException:
        run.cancel()  # stop the chains' threads and drop their draws
        raise
    patch_nutpie_idata(tree, model, sampling_time=time.perf_counter() - t1)
    return tree


def _fallback_message(err: Exception) -> str:
    versions = ", ".join(f"{name} {_version(name)}" for name in ("nutpie", "pytensor", "pymc"))
    return (
        "nutpie's fast path failed, so PyMC's NUTS samples instead (same posterior, slower)\n"
        f"{type(err).__name__}: {err}\n"
        f"installed: {versions}; tvbeta.estimate.bayes.sampler uses private helpers of nutpie "
        "0.16 and PyTensor 3.3's numba functions: install the versions pyproject.toml pins "
        "(nutpie<0.17, pytensor<3.4)"
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(not installed)"


# --- nutpie's model over C function pointers -------------------------------------------------
# nutpie's Rust sampler calls the log density through a C function pointer
# ``int64 logp(n_dim, x*, grad_out*, logp_out*, user_data*)`` (and one for the draws' expansion),
# from its chains' threads with no Python in between. PyTensor compiles the model's graph to a
# numba function (cached on disk); a small numba ``cfunc`` calls it through its native address,
# which it reads from ``user_data`` at run time, as it reads the data's pointers and shapes. So
# the cfunc's code depends only on the graph's argument and return types, never on the data or
# on an address of this process: numba caches it on disk (about 2 s the first time per model
# structure, then milliseconds), and nothing is linked or recompiled per data set. nutpie's own
# numba backend links the graph into its cfunc and recompiles it for every model (5-15 s).

_LOGP_SIGNATURE = "int64(uint64, CPointer(float64), CPointer(float64), CPointer(float64), voidptr)"
_EXPAND_SIGNATURE = "int64(uint64, uint64, CPointer(float64), CPointer(float64), voidptr)"
# nutpie's codes: 3 and 4 (a non-finite gradient or log density) reject the proposal as a
# divergence; any other non-zero code ends the run with an error.
_LOGP_BODY = """\
def tvbeta_logp(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    header = numba.carray(user_data_, ({n_header},), np.int64)
    x = numba.carray(x_, ({n_dim},))
    ok, (value, grad) = call_native(header[0], (x, {views}))
    if not ok:
        return 1
    logp_[0] = value[()]
    for i in range({n_dim}):
        out_[i] = grad[i]
        if not np.isfinite(grad[i]):
            return 3
    if not np.isfinite(logp_[0]):
        return 4
    return 0
"""
_EXPAND_BODY = """\
def tvbeta_expand(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim} or expanded != {n_expanded}:
        return -1
    header = numba.carray(user_data_, ({n_header},), np.int64)
    x = numba.carray(x_, ({n_dim},))
    ok, (values,) = call_native(header[1], (x, {views}))
    if not ok:
        return -2
    for i in range({n_expanded}):
        out_[i] = values[i]
    return 0
"""


@intrinsic
def _void_pointer(typingctx, address):
    """Return the int64 `address` as a void pointer (for ``numba.carray``)."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


@_without_fast_math
def _nutpie_model(model: pm.Model):
    """Return nutpie's model over C function pointers to PyTensor's compiled (numba) functions.

    ``user_data`` (int64): the native addresses of the log density-and-gradient and of the
    expansion, then for each shared variable its data pointer and shape. The compiled
    functions of a model structure are kept (`_compiled_functions`), so a second model of the
    same structure (another fund, the same fund's refit) only reads its own data.
    """
    from nutpie.compile_pymc import (
        CompiledPyMCModel,
        _prepare_dims_and_coords,
        _rv_dict_to_flat_array_wrapper,
        _wrap_with_lock,
    )
    from pymc.initial_point import make_initial_point_fn

    pymc_initial_point = make_initial_point_fn(
        model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )  # fmt: skip
    made, inputs = _compiled_functions(model)
    n_dim, n_expanded, logp_fn, expand_fn, shape_info, reparameterized = made
    n_free = len(model.free_RVs)
    initial_point = _rv_dict_to_flat_array_wrapper(
        _wrap_with_lock(pymc_initial_point), names=shape_info[0][:n_free],
        shapes=shape_info[2][:n_free],
    )  # fmt: skip
    shared: dict = {}  # compiled shared variable -> this model's value, C-contiguous, kept alive
    for var in [*logp_fn.get_shared(), *expand_fn.get_shared()]:
        own = inputs[var.name] if inputs else var  # a kept model's variable: this one's value
        shared.setdefault(var, np.array(own.get_value(), order="C", copy=True))
    header, offsets = [0, 0], {}
    for var, value in shared.items():
        offsets[var] = len(header)
        header += [value.ctypes.data, *value.shape]
    user_data = np.array(header, dtype=np.int64)
    cfuncs = []
    for slot, (fn, body, signature) in enumerate(
        ((logp_fn, _LOGP_BODY, _LOGP_SIGNATURE), (expand_fn, _EXPAND_BODY, _EXPAND_SIGNATURE))
    ):
        args = [np.zeros(n_dim), *(shared[var] for var in fn.get_shared())]
        address, caller, types_text = _native_function(fn.vm.jit_fn, args)
        user_data[slot] = address
        views = "".join(_carray_source(shared[var], offsets[var]) for var in fn.get_shared())
        source = body.format(n_dim=n_dim, n_expanded=n_expanded, n_header=len(header),
                             views=views)  # fmt: skip
        cfuncs.append(_cached_cfunc(source, signature, caller, types_text))
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=cfuncs[0], compiled_expand_func=cfuncs[1],
        initial_point_func=initial_point,
        shared_data={str(i): value for i, value in enumerate(shared.values())},
        shared_var_keys={}, user_data=user_data, n_expanded=n_expanded, shape_info=shape_info,
        logp_func=logp_fn, expand_func=expand_fn, reparameterized_names=reparameterized,
    )  # fmt: skip


_COMPILED: OrderedDict[str, tuple] = OrderedDict()
"""`_compiled_functions`' cache: structure key -> nutpie's compiled functions, newest last."""
COMPILED_KEPT = 32
"""Model structures whose compiled functions a process keeps (least recently used dropped)."""


def _compiled_functions(model: pm.Model) -> tuple[tuple, dict]:
    """Return nutpie's functions of ``model`` (compiled, or kept from a model of its structure).

    The functions are those of nutpie's ``_make_functions`` (without its initial point, which
    reads the model's own values): (n_dim, n_expanded, logp_fn, expand_fn, shape_info,
    reparameterized names), and ``model``'s shared variables by name when the functions were
    kept from another model (the caller passes their values in place of the functions' own
    variables'), else {} (the functions' variables are ``model``'s). Compiling costs ~1 s per
    model (PyTensor's rewrites and function making; the numba code comes from the disk cache),
    sampling the seed case ~1.7 s, so a fund's second fit in a process, or another fund's,
    saves that second. The structure key (`_structure_key`) is the graph of the log density
    and of the traced variables with every constant's bytes and every shared variable's name
    and type, so models that share a key compute the same function of their inputs; a model
    with an unnamed shared variable or an Op without ``__props__`` is compiled every time.
    """
    from nutpie.compile_pymc import _make_functions

    key, inputs = _structure_key(model)
    if key is not None and key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key], inputs
    made = _make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=lambda seed: {},  # unused: `_nutpie_model` makes the model's own
    )  # fmt: skip
    if len(made) != 7:  # a changed private helper, like a renamed one
        raise TypeError(f"nutpie.compile_pymc._make_functions returned {len(made)} values, "
                        "expected 7")  # fmt: skip
    functions = (*made[:4], *made[5:])
    if key is not None:
        _COMPILED[key] = functions
        while len(_COMPILED) > COMPILED_KEPT:
            _COMPILED.popitem(last=False)
    return functions, {}


def _structure_key(model: pm.Model) -> tuple[str | None, dict]:
    """Return (a hash of ``model``'s structure or None, its shared variables by name).

    Hashed, in topological order: each node's Op (class and ``__props__``), where its inputs
    come from, each constant's type and bytes, each shared variable's name and type, each other
    root's name and type; the outputs are the log density and the traced variables. None when a
    shared variable has no unique name or an Op has no ``__props__`` (its parameters unknown).
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort

    outputs = [model.logp(), *model.unobserved_value_vars]
    digest, inputs, position = hashlib.sha256(), {}, {}
    roots: dict = {}

    def source(var) -> str:
        if var.owner is not None:
            return f"n{position[var.owner]}.{var.owner.outputs.index(var)}"
        if var not in roots:
            if isinstance(var, Constant):
                data = np.asarray(var.data)
                text = f"const {var.type} {data.dtype} {data.shape} {data.tobytes().hex()}"
            elif isinstance(var, SharedVariable):
                if var.name is None or inputs.setdefault(var.name, var) is not var:
                    raise LookupError(var.name)
                text = f"shared {var.name} {var.type}"
            else:
                text = f"input {var.name} {var.type}"
            roots[var] = f"r{len(roots)}"
            digest.update(f"{roots[var]}={text};".encode())
        return roots[var]

    try:
        for node in toposort(outputs):
            props = getattr(node.op, "__props__", None)
            if props is None:
                return None, inputs
            position[node] = len(position)
            values = [repr(getattr(node.op, name)) for name in props]
            digest.update(f"{type(node.op).__qualname__}{values}"
                          f"({','.join(source(v) for v in node.inputs)});".encode())  # fmt: skip
        digest.update(f"out {[source(v) for v in outputs]}".encode())
    except LookupError:
        return None, inputs
    return digest.hexdigest(), inputs


def _native_function(jit, args: list[np.ndarray]):
    """Return the native address, a caller intrinsic and their types (text) of `jit`.

    `jit` is PyTensor's numba function.
    One call with `args` compiles it, or loads it from PyTensor's disk cache; its native entry
    point follows numba's calling convention, which the intrinsic speaks.
    """
    jit(*args)
    if len(jit.signatures) != 1:
        raise TypeError(f"PyTensor's compiled function has {len(jit.signatures)} signatures, "
                        "expected 1")  # fmt: skip
    (signature,) = jit.signatures
    compiled = jit.overloads[signature]
    address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
    return_type = compiled.signature.return_type
    return address, _native_caller(signature, return_type), f"{signature} -> {return_type}"


def _native_caller(signature, return_type):
    """Return a numba intrinsic ``call_native(address, args) -> (ok, out)``.

    It calls the numba function at ``address`` (int64, known only at run time) with the tuple
    ``args`` as its one (star-args) argument; ``ok`` is False if it raised (``out`` then holds
    empty arrays).
    """
    if len(signature) != 1 or not isinstance(signature[0], types.BaseTuple):
        raise TypeError(f"PyTensor's compiled function takes {signature}, expected one tuple "
                        "of its inputs")  # fmt: skip

    @intrinsic
    def call_native(typingctx, address, args):
        def codegen(context, builder, _, llvm_args):
            function_type = context.call_conv.get_function_type(return_type, list(signature))
            function = builder.inttoptr(llvm_args[0], function_type.as_pointer())
            status, out = context.call_conv.call_function(
                builder, function, return_type, list(signature), [llvm_args[1]]
            )
            return context.make_tuple(builder, result, [builder.not_(status.is_error), out])

        result = types.Tuple([types.boolean, return_type])
        return result(address, args), codegen

    return call_native


def _carray_source(value: np.ndarray, offset: int) -> str:
    """Source of a view of one shared array, its pointer and shape read from the header."""
    shape = "".join(f"header[{offset + 1 + d}], " for d in range(value.ndim))
    return f"numba.carray(_void_pointer(header[{offset}]), ({shape}), np.{value.dtype.name}), "


def _cached_cfunc(source: str, signature: str, caller, types_text: str):
    """Compile `source` as a numba cfunc, cached on disk.

    The key is the source and the types of the function it calls.
    """
    from pytensor.link.numba.cache import compile_numba_function_src

    name = source.split("(", 1)[0].removeprefix("def ")
    key = hashlib.sha256(f"{source}\n{types_text}".encode()).hexdigest()
    function = compile_numba_function_src(
        source, name, cache_key=f"tvbeta-nutpie-{key}",
        # __name__: the module numba imports to rebuild the function's environment from its cache
        global_env={"__name__": __name__, "numba": numba, "np": np, "call_native": caller,
                    "_void_pointer": _void_pointer},
    )  # fmt: skip
    return numba.cfunc(signature, cache=True)(function)
