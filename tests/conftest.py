"""Fixtures shared across the test packages."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dask_client():
    """A real local Dask cluster of two worker processes, one thread each (started once)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        yield client
