"""specstore: persist cloud scheduling request specs in Redis.

    >>> from specstore import RequestContext, SpecStore
    >>> store = SpecStore.from_url("memory://")          # or redis://, rediss://, ...
    >>> ctx = RequestContext(project_id="p", user_id="u", specs=store)
    >>> spec.create(ctx)                                  # api store (untargeted context)
    >>> store.promote(ctx, spec.instance_uuid, "cell1")   # after scheduling
    >>> spec.save(ctx.target_cell("cell1"))               # later moves write to the cell
"""

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
from specstore.records import StoredSpec
from specstore.store import BatchDestroy, BatchRead, Promotion, SpecStore

__all__ = [
    "API",
    "BackendError",
    "BatchDestroy",
    "BatchRead",
    "ConflictError",
    "CorruptDocumentError",
    "IncompatibleSchemaError",
    "InvalidUUIDError",
    "Keyspace",
    "Promotion",
    "RequestContext",
    "RequestSpec",
    "SpecExistsError",
    "SpecNotFoundError",
    "SpecStore",
    "SpecStoreError",
    "StoredSpec",
    "WrongStoreError",
]
__version__ = "0.1.0"
