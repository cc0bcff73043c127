"""The RequestSpec document schema.

Version history (a new entry for every released change; see the evolution rules in
:mod:`serializers.migrations` and the README):

    1.0  Initial version: the persisted fields of RequestSpec (Nova RequestSpec 1.15 less
         the transient per-request fields and the server group's members/hosts).

To release 1.1: append the new optional fields at the end of their model, then add
``registry.release(SCHEMA, (1, 1), upgrade=..., downgrade=...)`` below with steps that add
the field's default and drop it again.
"""

from __future__ import annotations

from specstore.serializers.migrations import MigrationRegistry

SCHEMA = "RequestSpec"


def register(registry: MigrationRegistry) -> None:
    registry.release(SCHEMA, (1, 0))
