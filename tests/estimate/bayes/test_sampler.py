"""sample_nuts: nutpie (on PyTensor's compiled function) and PyMC's NUTS sample the same
posterior and return the same DataTree layout; the log density and gradient share one forward
Kalman sweep."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tvbeta.data import simulate
from tvbeta.estimate.bayes.model import bayes_spec, model_from_spec
from tvbeta.estimate.bayes.op import KalmanLoglikOp, KalmanVJPOp
from tvbeta.estimate.bayes.sampler import sample_nuts
from tvbeta.nuts import SamplerSettings

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
RUN = SamplerSettings(draws=600, tune=600, chains=2, cores=2, target_accept=0.9)


@pytest.fixture(scope="module")
def spec():
    sim = simulate(200, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                   seed=3)  # fmt: skip
    return bayes_spec(sim.frame, "y", ["f1"], burn=3)


@pytest.fixture(scope="module")
def model(spec):
    return model_from_spec(spec)


@pytest.fixture(scope="module")
def trees(model):
    return {s: sample_nuts(model, replace(RUN, sampler=s), seed=7).tree for s in ("nutpie", "pymc")}


def log_sigma_draws(tree) -> np.ndarray:
    post = tree["posterior"]
    sb = post["sigma_beta"].values.reshape(-1, post["sigma_beta"].shape[-1])
    return np.log(np.column_stack([post["sigma_eps"].values.reshape(-1), sb]))


def test_nutpie_and_pymc_posterior_means_agree_within_monte_carlo_error(trees):
    """Means of log sigma (well-defined, near-Gaussian scale) differ by < 4 combined MCSE,
    with MCSE from ArviZ's bulk ESS of each run."""
    import arviz as az

    means, mcse = {}, {}
    for name, tree in trees.items():
        x = log_sigma_draws(tree)
        ess = az.ess(tree, var_names=["sigma_eps", "sigma_beta"])
        ess = np.r_[ess["sigma_eps"].values.ravel(), ess["sigma_beta"].values.ravel()]
        means[name], mcse[name] = x.mean(0), x.std(0) / np.sqrt(ess)
    z = (means["nutpie"] - means["pymc"]) / np.hypot(mcse["nutpie"], mcse["pymc"])
    assert np.all(np.abs(z) < 4), z


def test_both_samplers_return_the_pm_sample_layout(trees):
    for name, tree in trees.items():
        assert {"posterior", "sample_stats", "observed_data"} <= set(tree.children), name
        post = tree["posterior"]
        assert post.sizes["chain"] == 2 and post.sizes["draw"] == 600, name
        assert post.attrs["sampling_time"] > 0, name
        assert "diverging" in tree["sample_stats"], name


def test_nutpie_run_is_reproducible_from_its_seed(model, trees):
    again = sample_nuts(model, replace(RUN, sampler="nutpie"), seed=7).tree
    np.testing.assert_array_equal(log_sigma_draws(again), log_sigma_draws(trees["nutpie"]))


def test_log_likelihood_group_equals_pymc_compute_log_likelihood(spec, model, trees):
    import pymc as pm

    from tvbeta.estimate.bayes.fit import log_likelihood

    tree = trees["pymc"].copy()
    with model:
        pm.compute_log_likelihood(tree, extend_inferencedata=True, progressbar=False)
    expected = tree["log_likelihood"]["y"]
    got = log_likelihood(trees["pymc"], spec)["y"]
    assert got.dims == expected.dims and got.shape == expected.shape
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-10, atol=1e-12)
    assert (got["time"].values == expected["time"].values).all()


def test_logp_and_gradient_graph_runs_one_forward_and_one_adjoint_sweep(model):
    fn = model.logp_dlogp_function(ravel_inputs=True)
    nodes = fn._pytensor_function.maker.fgraph.toposort()
    forward = [n for n in nodes if isinstance(n.op, KalmanLoglikOp)]
    adjoint = [n for n in nodes if isinstance(n.op, KalmanVJPOp)]
    assert len(forward) == 1 and len(adjoint) == 1
    # the adjoint reads the forward node's tape instead of re-running the filter
    assert adjoint[0].inputs[2].owner is forward[0]


# --- nutpie's C entry points: the model's log density, gradient and draws, any data -------------
# nutpie calls `_nutpie_model`'s cfuncs through C function pointers; here ctypes calls them the
# same way. Reference: PyMC's own log density and gradient of the model, compiled by PyTensor's
# Python linker (FAST_COMPILE: the Ops' Python `perform`, no numba).
def point_of(model, x: np.ndarray) -> dict[str, np.ndarray]:
    point, start = {}, 0
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        shape = model.initial_point()[value.name].shape
        size = int(np.prod(shape))
        point[value.name] = x[start : start + size].reshape(shape)
        start += size
    return point


def doubles(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def c_logp(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad, logp = np.zeros_like(x), np.zeros(1)
    code = compiled.compiled_logp_func.ctypes(
        x.size, doubles(x), doubles(grad), doubles(logp), compiled.user_data.ctypes.data
    )
    return code, float(logp[0]), grad


@pytest.mark.parametrize("seed", [3, 11])
def test_c_log_density_and_gradient_equal_pymcs_at_random_points(seed):
    """Two data sets of one model structure (the second reuses the first's compiled cfunc):
    each gets its own data's log density and gradient, to 1e-10 relative."""
    from tvbeta.estimate.bayes.sampler import _nutpie_model

    sim = simulate(150, 2, Q=[1e-6, 0.02**2, 0.01**2], R=0.01**2, beta0=[0.0, 1.0, 0.5],
                   intercept=True, seed=seed)  # fmt: skip
    model = model_from_spec(bayes_spec(sim.frame, "y", ["f1", "f2"], burn=3))
    compiled = _nutpie_model(model)
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    rng = np.random.default_rng(seed)
    for _ in range(5):
        x = rng.normal(0.0, 0.5, compiled.n_dim)
        code, value, grad = c_logp(compiled, x)
        assert code == 0
        np.testing.assert_allclose(value, logp(point_of(model, x)), rtol=1e-10)
        np.testing.assert_allclose(grad, dlogp(point_of(model, x)), rtol=1e-9, atol=1e-9)


def test_funds_of_one_model_structure_share_a_key_and_other_structures_do_not():
    """Different data and data-based prior scales, same structure: one key (one compiled
    model), also with a user's prior scale (an input too). Another noise model, Q form,
    number of factors or prior family: another key."""
    from tvbeta.estimate.bayes.priors import Prior, Priors
    from tvbeta.estimate.bayes.sampler import _structure_key

    frames = [simulate(150, 2, Q=[1e-6, q, q], R=r, beta0=[0.0, 1.0, 0.5], intercept=True,
                       seed=seed).frame for seed, q, r in ((3, 1e-4, 1e-4), (4, 4e-4, 9e-4))]
    specs = [bayes_spec(frame, "y", ["f1", "f2"], burn=3) for frame in frames]
    assert specs[0].resolved.sigma_eps != specs[1].resolved.sigma_eps  # the data's own scales

    def key(spec):
        return _structure_key(model_from_spec(spec))[0]

    assert key(specs[0]) == key(specs[1]) is not None
    others = [bayes_spec(frames[0], "y", ["f1", "f2"], burn=3, noise="volatility"),
              bayes_spec(frames[0], "y", ["f1", "f2"], burn=3, q="full"),
              bayes_spec(frames[0], "y", ["f1"], burn=3),
              bayes_spec(frames[0], "y", ["f1", "f2"], burn=3, priors=Priors(
                  sigma_eps=Prior("HalfStudentT", {"sigma": 0.01, "nu": 4})))]  # fmt: skip
    user_scale = Priors(sigma_eps=Prior("HalfNormal", {"sigma": 0.05}))
    assert key(bayes_spec(frames[1], "y", ["f1", "f2"], burn=3, priors=user_scale)) == key(specs[0])
    keys = {key(spec) for spec in others}
    assert len(keys) == len(others) and key(specs[0]) not in keys


def test_a_model_served_by_another_funds_compiled_model_samples_as_if_compiled_alone():
    """Fund b fitted after fund a (b's compiled model kept from a's) and b fitted again after
    the kept models are dropped (compiled afresh): the same draws, bit for bit."""
    from tvbeta.estimate.bayes import sampler

    run = SamplerSettings(draws=60, tune=60, chains=2, cores=1)
    models = [model_from_spec(bayes_spec(simulate(120, 1, Q=[1e-6, q], R=r, beta0=[0.0, 1.0],
                                                  intercept=True, seed=seed).frame,
                                         "y", ["f1"], burn=3))
              for seed, q, r in ((5, 1e-4, 1e-4), (6, 9e-4, 4e-4))]  # fmt: skip
    sampler._COMPILED.clear()
    sample_nuts(models[0], run, seed=1)
    kept = sample_nuts(models[1], run, seed=1).tree
    assert len(sampler._COMPILED) == 1
    sampler._COMPILED.clear()
    fresh = sample_nuts(models[1], run, seed=1).tree
    np.testing.assert_array_equal(log_sigma_draws(kept), log_sigma_draws(fresh))


def test_c_log_density_refuses_a_point_of_the_wrong_size(model):
    from tvbeta.estimate.bayes.sampler import _nutpie_model

    compiled = _nutpie_model(model)
    code, _, _ = c_logp(compiled, np.zeros(compiled.n_dim + 1))
    assert code == -1


def test_c_expansion_gives_the_constrained_values(model):
    """The draws nutpie stores: sigma_eps and sigma_beta as PyMC's transforms give them."""
    from tvbeta.estimate.bayes.sampler import _nutpie_model

    compiled = _nutpie_model(model)
    x = np.random.default_rng(5).normal(0.0, 0.5, compiled.n_dim)
    out = np.zeros(compiled.n_expanded)
    code = compiled.compiled_expand_func.ctypes(
        compiled.n_dim,
        compiled.n_expanded,
        doubles(x),
        doubles(out),
        compiled.user_data.ctypes.data,
    )
    assert code == 0
    names, slices, _ = compiled.shape_info
    expanded = dict(zip(names, (out[s] for s in slices), strict=True))
    point = point_of(model, x)
    for name in ("sigma_eps", "sigma_beta"):
        (value,) = model.replace_rvs_by_values([model[name]])  # its transform's backward
        fn = model.compile_fn(value, inputs=model.value_vars, mode="FAST_COMPILE",
                              on_unused_input="ignore")  # fmt: skip
        expected = fn(point)
        np.testing.assert_allclose(expanded[name], np.ravel(expected), rtol=1e-12)


COMPILE_TWICE = """
import json, sys
from tvbeta.data import simulate
from tvbeta.estimate.bayes.model import bayes_spec, model_from_spec
from tvbeta.estimate.bayes.sampler import _nutpie_model

sim = simulate(120, 1, Q=[1e-6, 0.02**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
               seed=int(sys.argv[1]))
compiled = _nutpie_model(model_from_spec(bayes_spec(sim.frame, "y", ["f1"], burn=3)))
hits = [compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits]
print(json.dumps(hits))
"""


def test_a_new_process_loads_the_c_entry_points_from_the_disk_cache():
    """Compiled once (by this or an earlier run), then loaded in a new process, for new data."""
    command = [sys.executable, "-c", COMPILE_TWICE]
    runs = [
        subprocess.run(
            [*command, str(seed)], capture_output=True, text=True, timeout=600, check=True
        )
        for seed in (1, 2)
    ]
    assert json.loads(runs[1].stdout.strip().splitlines()[-1]) == [1, 1], runs[1].stderr


LOG_DENSITY_BITS = """
import json, sys
import numpy as np
from tvbeta.data import simulate
from tvbeta.estimate.bayes.model import bayes_spec, model_from_spec
from tvbeta.estimate.bayes.sampler import _nutpie_model
from tests.estimate.bayes.test_sampler import c_logp

factors, options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else (2, {})
sim = simulate(120, factors, Q=[1e-6] + [0.02**2] * factors, R=0.01**2,
               beta0=[0.0] + [1.0] * factors, intercept=True, seed=5)
names = [f"f{j + 1}" for j in range(factors)]
compiled = _nutpie_model(model_from_spec(bayes_spec(sim.frame, "y", names, burn=3, **options)))
rng = np.random.default_rng(8)
bits = []
for _ in range(20):
    code, value, grad = c_logp(compiled, rng.normal(0.0, 0.5, compiled.n_dim))
    bits.append([code, value.hex(), *(float(g).hex() for g in grad)])
print(json.dumps({"hits": compiled.compiled_logp_func.cache_hits, "bits": bits}))
"""


def test_a_fresh_compile_and_a_cache_load_give_the_same_log_density_bits(tmp_path):
    """Same seed, same draws whatever the caches hold: the model compiled into an empty PyTensor
    cache and then loaded from it give bit-identical log densities and gradients. With
    PyTensor's default LLVM fast-math flags they did not (seed case: a different posterior
    for each cache state), so `sample_nuts` compiles without them."""
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path}"}
    root = Path(__file__).resolve().parents[3]
    fresh, loaded = (
        json.loads(subprocess.run(
            [sys.executable, "-c", LOG_DENSITY_BITS], capture_output=True, text=True,
            timeout=900, check=True, env=env, cwd=root,
        ).stdout.strip().splitlines()[-1])
        for _ in range(2)
    )  # fmt: skip
    assert (fresh["hits"], loaded["hits"]) == (0, 1)
    assert fresh["bits"] == loaded["bits"]


def test_a_fit_runs_the_kernels_of_the_current_sources_whatever_the_shared_cache_holds(
    tmp_path,
):
    """PyTensor's cache of compiled graphs (``~/.pytensor``, shared by every checkout and
    process) keys an Op by class and props, salted with every numba source
    (`tvbeta._numba_cache.sources_salt`): the model of mean-reverting betas on four factors and
    an intercept, loaded from the user's cache as a fit loads it (the first run fills the cache
    if it lacks the model, as any fit would), gives the log-density bits of the same model
    compiled from the current sources with empty PyTensor and numba caches. On 2026-12-03 it
    did not: an entry built against a stale numba cache held the previous mean-reverting kernel
    under the current key, so every fit on that machine ran the old code (slower, other bits)."""
    case = json.dumps([4, {"betas": "mean_reverting"}])
    root = Path(__file__).resolve().parents[3]
    empty = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'pytensor'}",
             "NUMBA_CACHE_DIR": str(tmp_path / "numba")}  # fmt: skip
    _, users, fresh = (
        json.loads(subprocess.run(
            [sys.executable, "-c", LOG_DENSITY_BITS, case], capture_output=True, text=True,
            timeout=900, check=True, env=env, cwd=root,
        ).stdout.strip().splitlines()[-1])
        for env in (os.environ, os.environ, empty)
    )  # fmt: skip
    assert (users["hits"], fresh["hits"]) == (1, 0)
    assert users["bits"] == fresh["bits"]


# --- when nutpie's fast path fails: PyMC's NUTS, one warning -----------------------------------
# The failure is real, not mocked: one attribute the fast path imports is removed from the real
# nutpie or PyTensor module (monkeypatch restores it), as a release that renamed it would do;
# nutpie, PyTensor and PyMC otherwise run as installed.
def expected_versions() -> str:
    from importlib import metadata

    return ", ".join(f"{p} {metadata.version(p)}" for p in ("nutpie", "pytensor", "pymc"))


def test_missing_nutpie_helper_falls_back_to_pymc_with_one_warning(spec, monkeypatch):
    import nutpie.compile_pymc

    from tvbeta.estimate.bayes.fit import fit_spec
    from tvbeta.estimate.bayes.sampler import SamplerFallbackWarning

    monkeypatch.delattr(nutpie.compile_pymc, "_wrap_with_lock")
    with pytest.warns(SamplerFallbackWarning) as caught:
        fit = fit_spec(spec, SamplerSettings(draws=50, tune=50, chains=2, cores=2, n_paths=0),
                       seed=1, check=False)  # fmt: skip
    (warning,) = [w for w in caught if w.category is SamplerFallbackWarning]  # one, not a cascade
    text = str(warning.message)
    assert text.startswith("nutpie's fast path failed, so PyMC's NUTS samples instead")
    assert "ImportError: cannot import name '_wrap_with_lock' from 'nutpie.compile_pymc'" in text
    assert f"installed: {expected_versions()}" in text
    assert fit.settings["sampler"] == "pymc"
    assert fit.tree["posterior"].sizes["draw"] == 50


def test_missing_pytensor_helper_falls_back_to_exactly_pymcs_nuts(model, trees, monkeypatch):
    """Same seed: the fallback's draws are the draws of sampler="pymc" (the fixture's)."""
    import pytensor.link.numba.cache

    from tvbeta.estimate.bayes.sampler import SamplerFallbackWarning

    monkeypatch.delattr(pytensor.link.numba.cache, "compile_numba_function_src")
    with pytest.warns(
        SamplerFallbackWarning, match="cannot import name 'compile_numba_function_src'"
    ):
        run = sample_nuts(model, replace(RUN, sampler="nutpie"), seed=7)
    assert run.sampler == "pymc"
    np.testing.assert_array_equal(log_sigma_draws(run.tree), log_sigma_draws(trees["pymc"]))


# --- Ctrl-C during sampling: KeyboardInterrupt, never a partial posterior ----------------------
# nutpie and PyMC both return the draws made before a KeyboardInterrupt (before: IndexError
# with 0 draws during tuning, NaN-padded chains after it). A thread sends SIGINT to the process
# once sampling has begun: nutpie's chains run in threads named nutpie-worker-*, PyMC's (cores
# = 2) in child processes; tune is long enough that sampling cannot end first. The check runs
# in a fresh Python: it counts the process's threads and children, which other tests of the
# same pytest worker change (Dask clusters, zarr's IO threads; PyMC forks its chains, and a
# fork of a process with such threads left chain processes behind in two CI runs).
INTERRUPT_CHECK = """
import json, os, signal, sys, threading, time
from dataclasses import replace
from pathlib import Path

import psutil

from tvbeta.data import simulate
from tvbeta.estimate.bayes.model import bayes_spec, model_from_spec
from tvbeta.estimate.bayes.sampler import sample_nuts
from tvbeta.nuts import SamplerSettings

name = sys.argv[1]


def thread_name(task):
    try:
        return (task / "comm").read_text()
    except FileNotFoundError:  # the thread ended between listing and reading
        return ""


def started():
    if name == "nutpie":
        return any("nutpie-worker" in thread_name(t) for t in Path("/proc/self/task").iterdir())
    return len(psutil.Process().children()) >= 2


sim = simulate(200, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True, seed=3)
model = model_from_spec(bayes_spec(sim.frame, "y", ["f1"], burn=3))
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored


def interrupt_when_started():
    while not started():
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=interrupt_when_started, daemon=True).start()
run = SamplerSettings(draws=10, tune=200_000, chains=2, cores=2, sampler=name)
try:
    sample_nuts(model, run, seed=7)
    raised = False
except KeyboardInterrupt:
    raised = True
deadline = time.monotonic() + 60
while started() and time.monotonic() < deadline:
    time.sleep(0.1)
if name == "pymc":
    children = psutil.Process().children()
    left = [" ".join(c.cmdline()) for c in children]
    for c in children:
        c.kill()  # a chain left behind holds the test's pipe (and a core): fail, do not hang
else:
    left = [thread_name(t) for t in Path("/proc/self/task").iterdir() if "nutpie" in thread_name(t)]
print(json.dumps({"raised": raised, "left": left}))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_interrupt_during_sampling_raises_and_stops_the_chains(sampler):
    proc = subprocess.run([sys.executable, "-c", INTERRUPT_CHECK, sampler], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["raised"], "sample_nuts returned instead of raising KeyboardInterrupt"
    assert result["left"] == []  # the chains are stopped: threads gone, child processes ended


BUSY_CHAINS = """
import json, os, signal, threading, time

import numpy as np
import psutil
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.op import Op

from tvbeta.estimate.bayes.sampler import sample_nuts
from tvbeta.nuts import SamplerSettings

PARENT = os.getpid()


class BusyInChains(Op):
    # zero, after ten minutes' work in a chain process (the parent's start-up calls are quick)
    itypes = [pt.dscalar]
    otypes = [pt.dscalar]

    def perform(self, node, inputs, outputs):
        if os.getpid() != PARENT:
            time.sleep(600)
        outputs[0][0] = np.asarray(0.0)

    def grad(self, inputs, output_grads):
        return [pt.zeros_like(inputs[0])]


with pm.Model() as model:
    x = pm.Normal("x")
    pm.Potential("busy", BusyInChains()(x))


def chains():
    return [c for c in psutil.Process().children() if c.status() != psutil.STATUS_ZOMBIE]


def interrupt_when_busy():
    while len(chains()) < 2:
        time.sleep(0.05)
    time.sleep(2)  # both chains inside their first gradient
    os.kill(os.getpid(), signal.SIGINT)


signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
threading.Thread(target=interrupt_when_busy, daemon=True).start()
run = SamplerSettings(draws=10, tune=10, chains=2, cores=2, sampler="pymc")
try:
    sample_nuts(model, run, seed=1)
    raised = False
except KeyboardInterrupt:
    raised = True
left = chains()
for c in left:
    c.kill()
print(json.dumps({"raised": raised, "left": [c.pid for c in left]}))
"""


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_interrupt_while_pymc_chains_are_busy_ends_the_chain_processes():
    """PyMC sends its chains "abort" and waits 2 s, but never terminates one that is still
    inside a gradient (PyMC 6.4's ``terminate_all``): it went on for as long as the gradient
    took, then waited for orders for ever. Here each chain's gradient takes ten minutes."""
    proc = subprocess.run([sys.executable, "-c", BUSY_CHAINS], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"raised": True, "left": []}
