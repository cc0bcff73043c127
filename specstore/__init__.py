"""specstore: persist cloud scheduling request specs in Redis.

>>> import uuid
>>> from specstore import Flavor, RequestContext, RequestSpec, SpecStore
>>> store = SpecStore.from_url("memory://doctest")    # or redis://, rediss://, ...
>>> ctx = RequestContext(project_id="p", user_id="u", store=store)
>>> flavor = Flavor(flavorid="1", name="m1.small", memory_mb=2048, vcpus=1, root_gb=20)
>>> spec = RequestSpec(instance_uuid=uuid.uuid4(), project_id="p", flavor=flavor)
>>> spec.create(ctx)                                  # api store (untargeted context)
>>> store.promote(ctx, spec.instance_uuid, "cell1").cell   # after scheduling
'cell1'
>>> spec.save(ctx.target_cell("cell1"))               # later moves write to the cell
>>> store.close()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from specstore.context import RequestContext
from specstore.core.keys import API, Keyspace
from specstore.errors import (
    BackendError,
    ConflictError,
    CorruptDocumentError,
    IncompatibleSchemaError,
    InvalidInputError,
    InvalidUUIDError,
    SpecExistsError,
    SpecNotFoundError,
    SpecStoreError,
    WrongStoreError,
)
from specstore.model import (
    PERSISTED_FIELDS,
    TRANSIENT_FIELDS,
    ComputeNodeRef,
    Destination,
    Flavor,
    GroupPolicy,
    ImageMeta,
    InstanceGroup,
    InstanceNUMACell,
    InstanceNUMATopology,
    InstancePCIRequest,
    InstancePCIRequests,
    NetworkMetadata,
    RequestedNetwork,
    RequestGroup,
    RequestLevelParams,
    RequestSpec,
    SchedulerLimits,
    SchedulerRetries,
)
from specstore.version import __version__ as __version__

if TYPE_CHECKING:
    from specstore.core.records import StoredSpec
    from specstore.legacy import InstanceRecord, MigrationBatchResult
    from specstore.moves.operations import prepare_move
    from specstore.moves.rules import MoveOperation, MovePlan, spec_for_move
    from specstore.store import BatchCreate, BatchDestroy, BatchRead, Promotion, SpecStore

# The layers, each importing only those before it: errors, keys, model, context ->
# serializers -> records, operations, stores, bulk, moves, cli. The package itself loads only
# the first ones; the others are loaded when asked for, so importing a lower layer (say
# specstore.serializers) never loads a higher one.
_LAZY = {
    "InstanceRecord": "specstore.legacy",
    "MigrationBatchResult": "specstore.legacy",
    "MoveOperation": "specstore.moves.rules",
    "MovePlan": "specstore.moves.rules",
    "spec_for_move": "specstore.moves.rules",
    "prepare_move": "specstore.moves.operations",
    "StoredSpec": "specstore.core.records",
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
    "PERSISTED_FIELDS",
    "TRANSIENT_FIELDS",
    "BackendError",
    "BatchCreate",
    "BatchDestroy",
    "BatchRead",
    "ComputeNodeRef",
    "ConflictError",
    "CorruptDocumentError",
    "Destination",
    "Flavor",
    "GroupPolicy",
    "ImageMeta",
    "IncompatibleSchemaError",
    "InstanceGroup",
    "InstanceNUMACell",
    "InstanceNUMATopology",
    "InstancePCIRequest",
    "InstancePCIRequests",
    "InstanceRecord",
    "InvalidInputError",
    "InvalidUUIDError",
    "Keyspace",
    "MigrationBatchResult",
    "MoveOperation",
    "MovePlan",
    "NetworkMetadata",
    "Promotion",
    "RequestContext",
    "RequestGroup",
    "RequestLevelParams",
    "RequestSpec",
    "RequestedNetwork",
    "SchedulerLimits",
    "SchedulerRetries",
    "SpecExistsError",
    "SpecNotFoundError",
    "SpecStore",
    "SpecStoreError",
    "StoredSpec",
    "WrongStoreError",
    "prepare_move",
    "spec_for_move",
]
