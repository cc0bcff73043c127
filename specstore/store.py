"""SpecStore: request specs in Redis, in the api store or a cell store chosen by the context.

Every single-spec operation is one round trip: writes run one Lua script (atomic), reads one
HGETALL. Batches are one pipeline. Which backend (connection + prefix) holds each store comes
from the :class:`~specstore.topology.Topology`; a promote between two backends runs the
two-phase move of :mod:`specstore.core.two_phase`. The rules live in
:mod:`specstore.core.operations` (shared with :class:`~specstore.aio.AsyncSpecStore`); this
class runs them with redis-py's blocking clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from specstore import observability
from specstore.connection import RedisClient, connect
from specstore.context import RequestContext
from specstore.core import operations
from specstore.core.keys import API
from specstore.core.operations import BURIED_SECONDS, MOVE_LEASE_SECONDS, StoreState, utc_now
from specstore.core.records import StoredSpec
from specstore.core.results import BatchCreate, BatchDestroy, BatchRead, Promotion
from specstore.drivers.sync import run
from specstore.errors import InvalidInputError
from specstore.model import RequestSpec
from specstore.topology import Backend, Topology

__all__ = [
    "BURIED_SECONDS",
    "MOVE_LEASE_SECONDS",
    "BatchCreate",
    "BatchDestroy",
    "BatchRead",
    "Promotion",
    "SpecStore",
    "run_batch",
    "utc_now",
]


class SpecStore(StoreState[Backend, RedisClient]):
    """Persisted request specs: the api store and the cell stores, on one or more backends.

    ``SpecStore(client_or_topology, keyspace=..., codec=..., move_lease_seconds=...)`` or
    ``SpecStore.from_url(url, prefix=...)``.
    """

    connect = staticmethod(connect)
    single = staticmethod(Topology.single)

    @property
    def client(self) -> RedisClient:
        """The api backend's client."""
        return self.topology.api.client

    def close(self) -> None:
        self.topology.close()

    def __enter__(self) -> SpecStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------

    @observability.operation("create")
    def create(self, ctx: RequestContext, spec: RequestSpec) -> int:
        """Store a new spec in the context's store; returns its rev.

        Raises :class:`SpecExistsError` if the instance already has a spec in any store (or a
        move to one is under way). The rev continues above a destroyed predecessor's.
        """
        return run(operations.create(self, ctx, spec))

    @observability.operation("create_many")
    def create_many(self, ctx: RequestContext, specs: Sequence[RequestSpec]) -> BatchCreate:
        """Create many specs in the context's store: one pipeline (per step, per node).

        Specs that already exist anywhere are reported in ``existing``, not overwritten. A uuid
        listed twice is refused before anything is written (:class:`InvalidInputError`). When
        Redis fails part of the batch, :class:`BatchWriteError` carries the result: what was
        created, what failed (not written) and what is unknown (may have landed).
        """
        return run(operations.create_many(self, ctx, specs))

    @observability.operation("save")
    def save(self, ctx: RequestContext, spec: RequestSpec, rev: int | None = None) -> int:
        """Overwrite the stored spec where it lives; returns the new rev.

        With ``rev`` the write is a compare-and-set: :class:`ConflictError` if the stored rev
        differs. A context targeting another store than the spec's home raises
        :class:`WrongStoreError` (no second copy is ever created). In a cell on its own backend
        this is one round trip to that backend only.
        """
        return run(operations.save(self, ctx, spec, rev))

    @observability.operation("promote")
    def promote(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        """Move a spec from the api store to ``cell`` after scheduling; idempotent.

        On one backend this is one atomic script. To a cell on another backend it is the
        fenced move of :mod:`specstore.core.two_phase`; calling promote again joins and finishes a
        move that was interrupted, and returns the cell copy's current rev.
        """
        return run(operations.move(self, instance_uuid, API, cell))

    @observability.operation("move_to_cell")
    def move_to_cell(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        """Move a spec from the cell the context targets to ``cell`` (a cross-cell resize or
        migration, and its revert); idempotent like :meth:`promote`.

        ``locate`` answers the new cell as soon as its copy is there; the old cell then
        refuses writes (:class:`MoveInProgressError` while the move runs, then
        :class:`WrongStoreError`). Atomic when both cells share the api backend; otherwise
        the fenced move of :mod:`specstore.core.two_phase`.
        """
        if ctx.cell is None:
            raise InvalidInputError("move_to_cell moves out of a cell: target the source cell")
        return run(operations.move(self, instance_uuid, ctx.cell, cell))

    @observability.operation("resume_moves", after=observability.log_settled)
    def resume_moves(self) -> dict[str, str]:
        """Settle every move to a cell on another backend whose lease expired.

        Returns uuid -> "finished" | "rolled_back" | "destroyed" | "settled" (someone else did)
        | "unreachable" (the cell's backend is down; left for later) | "corrupt" (the record
        holds something specstore did not write; left as is). Moves still within their lease
        are never touched: their mover may be running.
        """
        return run(operations.resume_moves(self))

    @observability.operation("destroy")
    def destroy(
        self, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None = None
    ) -> None:
        """Delete the spec from the context's store (compare-and-set with ``rev``)."""
        run(operations.destroy(self, ctx, instance_uuid, rev))

    @observability.operation("destroy_bulk")
    def destroy_bulk(
        self, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
    ) -> BatchDestroy:
        """Delete many specs from the context's store: one pipeline (two for a cell on its
        own backend: the cell, then the authority). Each uuid is handled once.

        Specs living in another store are left alone and reported in ``elsewhere``, specs
        being moved in ``moving``. When Redis fails part of the batch,
        :class:`BatchWriteError` carries the result.
        """
        return run(operations.destroy_bulk(self, ctx, instance_uuids))

    # -- reads -------------------------------------------------------------------------------

    @observability.operation("get")
    def get(self, ctx: RequestContext, instance_uuid: UUID | str) -> StoredSpec:
        """The spec of ``instance_uuid`` in the context's store, with its rev and metadata."""
        return run(operations.get(self, ctx, instance_uuid))

    @observability.operation("get_many")
    def get_many(self, ctx: RequestContext, instance_uuids: Sequence[UUID | str]) -> BatchRead:
        """Many specs of the context's store in one pipeline; order kept, misses reported."""
        return run(operations.get_many(self, ctx, instance_uuids))

    @observability.operation("locate")
    def locate(self, instance_uuid: UUID | str) -> str | None:
        """Which store holds the spec: ``"api"``, a cell name, or None.

        Asks the authority (the api backend). While a move to a cell on another backend is
        open, the answer is the cell once its copy is there (it takes the writes), else the
        store the move started from. When the api backend cannot be reached, the cells' own
        backends answer for the specs they hold.
        """
        return run(operations.locate(self, instance_uuid))


def run_batch(
    backend: Backend, calls: list[Any], operation: str, *, whole_failure_raises: bool = False
) -> list[Any]:
    """:func:`specstore.core.operations.batch`, run (for the operator's bulk operations)."""
    return run(
        operations.batch(backend, calls, operation, whole_failure_raises=whole_failure_raises)
    )
