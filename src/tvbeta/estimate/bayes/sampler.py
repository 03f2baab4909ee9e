"""Run NUTS on a tvbeta model: nutpie's Rust sampler on PyTensor's compiled function, or PyMC's.

Why not ``pm.sample(nuts_sampler="nutpie")``: PyMC then has nutpie wrap the log density in a
numba ``cfunc`` holding the data as dynamic globals, which numba cannot cache, so every process
recompiles it (5-15 s: more than the sampling). Here nutpie calls PyTensor's compiled (numba,
cached on disk) log density and gradient through its Python-function interface: set-up about
half a second, a few microseconds of Python per call. nutpie runs the chains in threads, so the
graph is compiled ``nogil=True`` (`_NogilNumbaLinker`, its own cache entry): two chains then
evaluate gradients at once (2 x 20,000 calls of the seed case: 0.65 s against 1.32 s).

The result is the DataTree ``pm.sample`` returns (``posterior.attrs["sampling_time"]`` too),
whichever sampler ran.

This uses three private helpers of nutpie 0.16 (`_make_functions`, `_prepare_dims_and_coords`,
`_wrap_with_lock`: the steps of its JAX path) and PyTensor 3.3's numba linker and cache
registry, hence pyproject's pins. Should a release change them (AttributeError, ImportError or
TypeError while building nutpie's model), PyMC's NUTS samples instead, with one
`SamplerFallbackWarning` naming what failed and the versions installed.

Ctrl-C: nutpie and PyMC both answer a KeyboardInterrupt by returning the draws made so far; a
partial posterior is no posterior (none during tuning, ragged chains after), so nutpie is waited
on and cancelled by hand and any interrupt noted is raised again: `sample_nuts` returns every
draw or raises KeyboardInterrupt.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Literal, NamedTuple

import numpy as np
import pymc as pm
import xarray as xr

from tvbeta._warn import warn_caller
from tvbeta.constants import NUTPIE_ADAPTATION
from tvbeta.interrupts import noting_interrupts
from tvbeta.nuts import SamplerSettings

__all__ = ["NUTSRun", "SamplerFallbackWarning", "SamplerSettings", "sample_nuts"]

SamplerName = Literal["pymc", "nutpie"]
_INTERNALS_CHANGED = (AttributeError, ImportError, TypeError)
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


def sample_nuts(
    model: pm.Model,
    settings: SamplerSettings,
    *,
    seed: int,
    progressbar: bool = False,
) -> NUTSRun:
    """NUTS draws of the model's free variables, every one of them (``settings.n_paths`` unused).

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
                tree = _sample_nutpie(compiled, model, s, seed, progressbar)
        except Exception:
            interrupt.check()  # a swallowed Ctrl-C made the sampler fail: report the Ctrl-C
            raise
        interrupt.check()
    return NUTSRun(tree, time.perf_counter() - t0, "pymc" if compiled is None else "nutpie")


def _sample_pymc(model, s: SamplerSettings, seed, progressbar):
    with model:
        return pm.sample(
            draws=s.draws, tune=s.tune, chains=s.chains, cores=s.cores, random_seed=seed,
            nuts_sampler="pymc", nuts={"target_accept": s.target_accept},
            progressbar=progressbar, quiet=not progressbar, compute_convergence_checks=False,
        )  # fmt: skip


def _sample_nutpie(compiled, model, s: SamplerSettings, seed, progressbar):
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    t1 = time.perf_counter()
    # blocking=False and our own wait: nutpie.sample would turn Ctrl-C into a partial trace
    run = nutpie.sample(
        compiled, draws=s.draws, tune=max(s.tune, 1), chains=s.chains, cores=s.cores, seed=seed,
        save_warmup=False, progress_bar=progressbar, target_accept=s.target_accept,
        adaptation=NUTPIE_ADAPTATION, blocking=False,
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
        "0.16 and PyTensor 3.3's numba linker: install the versions pyproject.toml pins "
        "(nutpie<0.17, pytensor<3.4)"
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _nogil_numba_mode():
    """PyTensor's NUMBA mode with `_NogilNumbaLinker`."""
    from pytensor.compile.mode import Mode, get_mode
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS
    from pytensor.link.numba.dispatch.basic import numba_njit
    from pytensor.link.numba.linker import NumbaLinker

    class _NogilNumbaLinker(NumbaLinker):
        """Compile the final function ``nogil=True`` (own cache key: not a GIL-holding build)."""

        def jit_compile(self, fn_and_cache):
            fn, cache_key = fn_and_cache
            if cache_key is not None:
                CACHED_SRC_FUNCTIONS[fn.py_func] = f"{cache_key}-nogil"
            return numba_njit(fn.py_func, final_function=True, cache=cache_key is not None,
                              nogil=True)  # fmt: skip

    return Mode(linker=_NogilNumbaLinker(), optimizer=get_mode("NUMBA").provided_optimizer)


def _nutpie_model(model: pm.Model):
    """Return nutpie's model object over PyTensor's compiled (numba) log density and gradient."""
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords, _wrap_with_lock
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    pymc_initial_point = make_initial_point_fn(
        model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )  # fmt: skip
    made = _make_functions(
        model, mode=_nogil_numba_mode(), compute_grad=True, join_expanded=False,
        pymc_initial_point_fn=_wrap_with_lock(pymc_initial_point),
    )  # fmt: skip
    if len(made) != 7:  # a changed private helper, like a renamed one
        raise TypeError(f"nutpie.compile_pymc._make_functions returned {len(made)} values, "
                        "expected 7")  # fmt: skip
    n_dim, _, logp_fn, expand_fn, initial_point, shape_info, reparameterized = made
    logp_jit, expand_jit = logp_fn.vm.jit_fn, expand_fn.vm.jit_fn
    logp_data = [var.get_value() for var in logp_fn.get_shared()]
    expand_data = [var.get_value() for var in expand_fn.get_shared()]
    names, _, shapes = shape_info

    def make_logp():
        def logp(x):
            value, grad = logp_jit(x, *logp_data)
            return float(value), grad

        return logp

    def make_expand(seed1, seed2, chain):
        def expand(x):
            values = expand_jit(x, *expand_data)
            return {
                name: np.asarray(value, dtype=np.float64, order="C").reshape(shape)
                for name, value, shape in zip(names, values, shapes, strict=True)
            }

        return expand

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return from_pyfunc(
        ndim=n_dim, make_logp_fn=make_logp, make_expand_fn=make_expand,
        make_initial_point_fn=initial_point, expanded_dtypes=[np.dtype(np.float64)] * len(names),
        expanded_shapes=shapes, expanded_names=names, dims=dims, coords=coords,
        reparameterized_names=reparameterized,
    )  # fmt: skip
