"""Specs for instances that predate persistence (Nova's ``migrate_instances_add_request_spec``).

An instance booted before specs were stored has none, so its moves would have nothing to be
scheduled under. Its own record still holds the essentials (flavor, image, availability zone,
NUMA topology, PCI requests, project and user): :func:`spec_from_instance` builds a minimal
spec from them, :func:`ensure_spec` stores it when missing, and :func:`migrate_instances` does
that in resumable batches (an online data migration).

What the record cannot tell (scheduler hints, forced hosts, the server group of the boot
request) is not invented: the minimal spec leaves them empty, as Nova's does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from specstore.context import RequestContext
from specstore.core.keys import normalize_uuid
from specstore.errors import InvalidInputError, SpecExistsError
from specstore.model import (
    Flavor,
    ImageMeta,
    InstanceNUMATopology,
    InstancePCIRequests,
    RequestSpec,
)
from specstore.model.base import SpecModel
from specstore.store import SpecStore

DEFAULT_BATCH_SIZE = 50


class InstanceRecord(SpecModel):
    """The fields of an instance's own record that a minimal spec is built from."""

    uuid: UUID
    flavor: Flavor
    project_id: str | None = None
    user_id: str | None = None
    availability_zone: str | None = None
    image_meta: ImageMeta | None = None
    numa_topology: InstanceNUMATopology | None = None
    pci_requests: InstancePCIRequests | None = None


def spec_from_instance(record: InstanceRecord) -> RequestSpec:
    """A minimal spec for ``record``: its flavor, image, zone, NUMA and PCI requests, project
    and user; ``num_instances`` 1; everything else at its default. Nested values are copies."""
    copy = record.model_copy(deep=True)
    return RequestSpec(
        instance_uuid=copy.uuid,
        flavor=copy.flavor,
        project_id=copy.project_id,
        user_id=copy.user_id,
        availability_zone=copy.availability_zone,
        image=copy.image_meta,
        numa_topology=copy.numa_topology,
        pci_requests=copy.pci_requests,
        num_instances=1,
    )


def ensure_spec(store: SpecStore, ctx: RequestContext, record: InstanceRecord) -> bool:
    """Store a minimal spec for ``record`` in the context's store unless it has one.

    Returns True when created, False when a spec already existed (in any store; it is left
    untouched). Race-safe: a concurrent creator makes this return False, never a duplicate.
    """
    try:
        store.create(ctx, spec_from_instance(record))
    except SpecExistsError:
        return False
    return True


@dataclass(frozen=True)
class MigrationBatchResult:
    """Outcome of one :func:`migrate_instances` call."""

    created: int
    already_present: int
    marker: str | None
    """Pass it back to resume after this batch; None when every record has been processed."""

    @property
    def processed(self) -> int:
        return self.created + self.already_present


def migrate_instances(
    store: SpecStore,
    ctx: RequestContext,
    records: Iterable[InstanceRecord],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    marker: str | None = None,
) -> MigrationBatchResult:
    """One batch of the online migration: ensure a spec for each record after ``marker``.

    Records are taken in uuid order, those whose uuid sorts after ``marker`` (all when it is
    None), at most ``batch_size`` of them. The returned marker is the last uuid processed, or
    None when no record is left after it. A uuid listed twice is processed once (the first
    record wins). Re-running is safe: an interrupted batch run again finds the specs it
    already created and counts them as already present.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
    after = None if marker is None else normalize_uuid(marker)
    by_uuid: dict[str, InstanceRecord] = {}
    for record in records:
        by_uuid.setdefault(str(record.uuid), record)
    pending = sorted(uid for uid in by_uuid if after is None or uid > after)
    batch = pending[:batch_size]
    created = 0
    for uid in batch:
        if ensure_spec(store, ctx, by_uuid[uid]):
            created += 1
    next_marker = batch[-1] if len(pending) > len(batch) else None
    return MigrationBatchResult(created, len(batch) - created, next_marker)
