"""specstore: persist cloud scheduling request specs in Redis.

>>> from specstore import RequestContext, SpecStore
>>> store = SpecStore.from_url("memory://")          # or redis://, rediss://, ...
>>> ctx = RequestContext(project_id="p", user_id="u", store=store)
>>> spec.create(ctx)                                  # api store (untargeted context)
>>> store.promote(ctx, spec.instance_uuid, "cell1")   # after scheduling
>>> spec.save(ctx.target_cell("cell1"))               # later moves write to the cell
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from specstore.context import RequestContext
from specstore.errors import (
    BackendError,
    ConflictError,
    CorruptDocumentError,
    IncompatibleSchemaError,
    InvalidUUIDError,
    SpecExistsError,
    SpecNotFoundError,
    SpecStoreError,
    WrongStoreError,
)
from specstore.keys import API, Keyspace
from specstore.model import RequestSpec

if TYPE_CHECKING:
    from specstore.legacy import InstanceRecord, MigrationBatchResult
    from specstore.move_ops import prepare_move
    from specstore.moves import MoveOperation, MovePlan, spec_for_move
    from specstore.records import StoredSpec
    from specstore.store import BatchCreate, BatchDestroy, BatchRead, Promotion, SpecStore

# The store layer imports serializers, which import specstore.errors: loading it lazily keeps
# `import serializers` (or any serializers submodule) free of import cycles.
_LAZY = {
    "InstanceRecord": "specstore.legacy",
    "MigrationBatchResult": "specstore.legacy",
    "MoveOperation": "specstore.moves",
    "MovePlan": "specstore.moves",
    "spec_for_move": "specstore.moves",
    "prepare_move": "specstore.move_ops",
    "StoredSpec": "specstore.records",
    "BatchCreate": "specstore.store",
    "BatchDestroy": "specstore.store",
    "BatchRead": "specstore.store",
    "Promotion": "specstore.store",
    "SpecStore": "specstore.store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'specstore' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "API",
    "BackendError",
    "BatchCreate",
    "BatchDestroy",
    "BatchRead",
    "ConflictError",
    "CorruptDocumentError",
    "IncompatibleSchemaError",
    "InstanceRecord",
    "InvalidUUIDError",
    "Keyspace",
    "MigrationBatchResult",
    "MoveOperation",
    "MovePlan",
    "Promotion",
    "RequestContext",
    "RequestSpec",
    "SpecExistsError",
    "SpecNotFoundError",
    "SpecStore",
    "SpecStoreError",
    "StoredSpec",
    "WrongStoreError",
    "prepare_move",
    "spec_for_move",
]
__version__ = "0.1.0"
