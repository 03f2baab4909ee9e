"""Fixtures shared across the test packages."""

from __future__ import annotations

import pytest

# pytest-xdist's controller imports the module of each warning a worker reports, from one
# receiving thread per worker. Two workers' first tvbeta warnings at once imported tvbeta in
# two threads, and Python's import-deadlock guard handed one of them a partially initialised
# tvbeta.model.setters: ImportError, both workers "node down", the run failed (2026-12-02).
# The warnings' modules are imported here, before any worker starts.
import tvbeta
import tvbeta.data.validate
import tvbeta.estimate.bayes.diagnostics
import tvbeta.estimate.bayes.sampler
import tvbeta.estimate.mle
import tvbeta.model.setters  # noqa: F401


@pytest.fixture(scope="module")
def dask_client():
    """A real local Dask cluster of two worker processes, one thread each, per test module.

    Closed after the module: its worker processes would otherwise stay children of the test
    process through the session (tests that count child processes, such as PyMC's chains in
    test_sampler, then see them).
    """
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        yield client
