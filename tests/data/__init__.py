"""Tests of tvbeta.data."""
