"""sample_nuts: nutpie (on PyTensor's compiled function) and PyMC's NUTS sample the same
posterior and return the same DataTree layout; the log density and gradient share one forward
Kalman sweep."""

from __future__ import annotations

import numpy as np
import pytest

from tvbeta.data import simulate
from tvbeta.estimate.bayes.model import bayes_spec, model_from_spec
from tvbeta.estimate.bayes.op import KalmanLoglikOp, KalmanVJPOp
from tvbeta.estimate.bayes.sampler import sample_nuts

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
RUN = dict(draws=600, tune=600, chains=2, cores=2, target_accept=0.9)


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
    return {s: sample_nuts(model, sampler=s, seed=7, **RUN)[0] for s in ("nutpie", "pymc")}


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
    again, _ = sample_nuts(model, sampler="nutpie", seed=7, **RUN)
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
