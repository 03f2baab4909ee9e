"""Fixtures shared across the test packages."""

from __future__ import annotations

import pytest


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
