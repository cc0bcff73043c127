"""Move operations against the store: read the spec, plan the move, save with compare-and-set.

Every function reads the persisted spec where the context targets (a promoted instance lives
in its cell's store: pass ``ctx.target_cell(cell)``), computes the :class:`MovePlan` with
:func:`specstore.moves.spec_for_move`, writes ``plan.persist`` back with compare-and-set on
the rev it read, and returns the plan: ``plan.request`` is what goes to the scheduler.

The write happens for every operation, also when the persisted fields do not change: it
claims the spec for this move, so two moves prepared from the same rev cannot both proceed
(the second gets :class:`~specstore.errors.ConflictError`). A conflict always propagates;
re-read and decide again. ``plan.persist.rev`` is the rev written.

A scheduled move is restricted to the cell the context targets (the instance's cell) unless
the destination allows a cross-cell move. A resize persists the new flavor here, before
scheduling: if scheduling fails, undo it with :func:`revert_resize` and the old flavor.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from specstore.context import RequestContext
from specstore.core.keys import normalize_uuid
from specstore.errors import ConflictError
from specstore.model import (
    Destination,
    Flavor,
    ImageMeta,
    InstanceNUMATopology,
    InstancePCIRequests,
)
from specstore.moves.derived import PciAlias
from specstore.moves.rules import DERIVE, Derive, MoveOperation, MovePlan, spec_for_move
from specstore.store import SpecStore


def prepare_move(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    operation: MoveOperation | str,
    *,
    new_flavor: Flavor | None = None,
    old_flavor: Flavor | None = None,
    source_host: str | None = None,
    source_node: str | None = None,
    allow_same_host: bool = False,
    destination: Destination | None = None,
    expected_rev: int | None = None,
    new_image: ImageMeta | None = None,
    numa_topology: InstanceNUMATopology | Derive | None = DERIVE,
    pci_requests: InstancePCIRequests | Derive | None = DERIVE,
    pci_aliases: Mapping[str, PciAlias] | None = None,
) -> MovePlan:
    """Plan ``operation`` for the instance and persist ``plan.persist`` (compare-and-set).

    The arguments are those of :func:`~specstore.moves.spec_for_move` (``source_cell`` is the
    cell ``ctx`` targets). ``expected_rev``: the rev the caller's decision was based on; when
    the stored rev differs, :class:`ConflictError` is raised before anything is written.
    Without it the save is compare-and-set on the rev just read.

    Raises :class:`~specstore.errors.SpecNotFoundError` when the context's store holds no spec
    for the instance (the error names its home when it lives elsewhere),
    :class:`~specstore.errors.InvalidInputError` for arguments the operation refuses, and
    :class:`ConflictError` when the spec changed underneath.
    """
    stored = store.get(ctx, instance_uuid)
    if expected_rev is not None and stored.rev != expected_rev:
        raise ConflictError(normalize_uuid(instance_uuid), expected_rev, stored.rev)
    spec = stored.spec
    spec._rev = stored.rev
    plan = spec_for_move(
        spec,
        operation,
        new_flavor=new_flavor,
        old_flavor=old_flavor,
        source_host=source_host,
        source_node=source_node,
        allow_same_host=allow_same_host,
        destination=destination,
        source_cell=ctx.cell,
        new_image=new_image,
        numa_topology=numa_topology,
        pci_requests=pci_requests,
        pci_aliases=pci_aliases,
    )
    plan.persist._rev = store.save(ctx, plan.persist, rev=stored.rev)
    return plan


def resize(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    new_flavor: Flavor,
    *,
    source_host: str,
    source_node: str | None = None,
    allow_same_host: bool = False,
    destination: Destination | None = None,
    expected_rev: int | None = None,
    numa_topology: InstanceNUMATopology | Derive | None = DERIVE,
    pci_requests: InstancePCIRequests | Derive | None = DERIVE,
    pci_aliases: Mapping[str, PciAlias] | None = None,
) -> MovePlan:
    """Resize to ``new_flavor``; the stored spec holds ``new_flavor`` from now on, and the NUMA
    topology and PCI alias requests it derives (unless given: see
    :func:`~specstore.moves.spec_for_move`)."""
    return prepare_move(
        store,
        ctx,
        instance_uuid,
        MoveOperation.RESIZE,
        new_flavor=new_flavor,
        source_host=source_host,
        source_node=source_node,
        allow_same_host=allow_same_host,
        destination=destination,
        expected_rev=expected_rev,
        numa_topology=numa_topology,
        pci_requests=pci_requests,
        pci_aliases=pci_aliases,
    )


def cold_migrate(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    *,
    source_host: str,
    source_node: str | None = None,
    allow_same_host: bool = False,
    destination: Destination | None = None,
    expected_rev: int | None = None,
) -> MovePlan:
    """Cold-migrate with the current flavor, away from ``source_host`` unless allowed."""
    return prepare_move(
        store,
        ctx,
        instance_uuid,
        MoveOperation.COLD_MIGRATE,
        source_host=source_host,
        source_node=source_node,
        allow_same_host=allow_same_host,
        destination=destination,
        expected_rev=expected_rev,
    )


def live_migrate(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    *,
    source_host: str,
    source_node: str | None = None,
    destination: Destination | None = None,
    expected_rev: int | None = None,
) -> MovePlan:
    """Live-migrate within the instance's cell, never to ``source_host``."""
    return prepare_move(
        store,
        ctx,
        instance_uuid,
        MoveOperation.LIVE_MIGRATE,
        source_host=source_host,
        source_node=source_node,
        destination=destination,
        expected_rev=expected_rev,
    )


def evacuate(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    *,
    source_host: str,
    source_node: str | None = None,
    destination: Destination | None = None,
    expected_rev: int | None = None,
    new_image: ImageMeta | None = None,
) -> MovePlan:
    """Rebuild elsewhere in the instance's cell; ``source_host`` (down) is excluded. With
    ``new_image`` the stored spec holds that image from now on."""
    return prepare_move(
        store,
        ctx,
        instance_uuid,
        MoveOperation.EVACUATE,
        source_host=source_host,
        source_node=source_node,
        destination=destination,
        expected_rev=expected_rev,
        new_image=new_image,
    )


def rebuild(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    *,
    source_host: str,
    source_node: str | None = None,
    new_image: ImageMeta | None = None,
    expected_rev: int | None = None,
) -> MovePlan:
    """Rebuild on ``source_host``; with ``new_image`` the stored spec holds that image from now
    on and, when it is another image, ``plan.needs_scheduling`` is true: schedule
    ``plan.request`` (restricted to the source host) before rebuilding."""
    return prepare_move(
        store,
        ctx,
        instance_uuid,
        MoveOperation.REBUILD,
        source_host=source_host,
        source_node=source_node,
        new_image=new_image,
        expected_rev=expected_rev,
    )


def unshelve(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    *,
    destination: Destination | None = None,
    expected_rev: int | None = None,
) -> MovePlan:
    """Schedule a shelved-offloaded instance (it has no host) within its cell."""
    return prepare_move(
        store,
        ctx,
        instance_uuid,
        MoveOperation.UNSHELVE,
        destination=destination,
        expected_rev=expected_rev,
    )


def revert_resize(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    old_flavor: Flavor,
    *,
    expected_rev: int | None = None,
    numa_topology: InstanceNUMATopology | Derive | None = DERIVE,
    pci_requests: InstancePCIRequests | Derive | None = DERIVE,
    pci_aliases: Mapping[str, PciAlias] | None = None,
) -> MovePlan:
    """Revert a resize (or cold migration): the stored spec gets ``old_flavor`` back, and
    ``numa_topology``/``pci_requests`` from before the resize when given (else what
    ``old_flavor`` derives)."""
    return prepare_move(
        store,
        ctx,
        instance_uuid,
        MoveOperation.RESIZE_REVERT,
        old_flavor=old_flavor,
        expected_rev=expected_rev,
        numa_topology=numa_topology,
        pci_requests=pci_requests,
        pci_aliases=pci_aliases,
    )


def confirm_resize(
    store: SpecStore,
    ctx: RequestContext,
    instance_uuid: UUID | str,
    *,
    expected_rev: int | None = None,
) -> MovePlan:
    """Confirm a resize: the stored spec keeps the new flavor."""
    return prepare_move(
        store, ctx, instance_uuid, MoveOperation.RESIZE_CONFIRM, expected_rev=expected_rev
    )
