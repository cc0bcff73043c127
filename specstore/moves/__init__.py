"""Moves: what a resize, migration, evacuation, unshelve or rebuild is scheduled with.

:mod:`.rules` (pure) turns the persisted spec into the request for the scheduler and the spec
to persist; :mod:`.derived` (pure) re-derives NUMA and PCI requests from a new flavor;
:mod:`.operations` reads, plans and saves them against a store with compare-and-set.
"""
