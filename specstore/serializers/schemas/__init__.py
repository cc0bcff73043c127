"""Released schema versions, one module per schema, each opening with its history."""

from specstore.serializers.migrations import MigrationRegistry
from specstore.serializers.schemas import request_spec

REGISTRY = MigrationRegistry()
request_spec.register(REGISTRY)

__all__ = ["REGISTRY"]
