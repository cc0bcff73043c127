"""Specs for tests: the typical one lives in :mod:`specstore.samples` (the benchmarks use it
too); it is re-exported here under the names the tests use."""

from specstore.samples import flavor, typical_spec

__all__ = ["flavor", "typical_spec"]
