"""Fixtures of the data-layer tests: the seed's real data folder, skipped when absent."""

from pathlib import Path

import pytest

# tests/data/conftest.py -> parents[2] is the repository root; the data sits next to it.
SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    """The folder ``<repo>/../shared/data``; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"seed data folder {SHARED_DATA} is absent")
    return SHARED_DATA
