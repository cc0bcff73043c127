"""AsyncSpecStore: the store on ``redis.asyncio``, for FastAPI, aiohttp and asyncio workers.

It runs the very operations of :class:`~specstore.store.SpecStore` (written once, in
:mod:`specstore.core.operations` and :mod:`specstore.core.two_phase`) through the asyncio driver, so
it keeps every guarantee and raises the same typed errors. Each method is the coroutine of
its :class:`~specstore.store.SpecStore` namesake; see there for the details::

    async with AsyncSpecStore.from_url("redis://localhost:6379/0") as store:
        ctx = RequestContext(store=store)
        rev = await store.create(ctx, spec)
        stored = await store.get(ctx, spec.instance_uuid)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from specstore import observability
from specstore.connection import AsyncRedisClient, connect_async
from specstore.context import RequestContext
from specstore.core import operations
from specstore.core.keys import API
from specstore.core.operations import StoreState
from specstore.core.records import StoredSpec
from specstore.core.results import BatchCreate, BatchDestroy, BatchRead, Promotion
from specstore.drivers.aio import run
from specstore.errors import InvalidInputError
from specstore.model import RequestSpec
from specstore.topology import AsyncBackend, Topology


class AsyncSpecStore(StoreState[AsyncBackend, AsyncRedisClient]):
    """Persisted request specs on ``redis.asyncio`` (a server or a Redis Cluster).

    Built like :class:`~specstore.store.SpecStore`: on one ``redis.asyncio`` client, on a
    topology from :meth:`Topology.from_config_async`, or with ``from_url``.
    """

    connect = staticmethod(connect_async)
    single = staticmethod(Topology.single_async)

    @property
    def client(self) -> AsyncRedisClient:
        """The api backend's client."""
        return self.topology.api.client

    async def aclose(self) -> None:
        await self.topology.aclose()

    async def __aenter__(self) -> AsyncSpecStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @observability.operation("create")
    async def create(self, ctx: RequestContext, spec: RequestSpec) -> int:
        """Store a new spec in the context's store; its rev."""
        return await run(operations.create(self, ctx, spec))

    @observability.operation("create_many")
    async def create_many(self, ctx: RequestContext, specs: Sequence[RequestSpec]) -> BatchCreate:
        """Create many specs in the context's store, in one pipeline per step."""
        return await run(operations.create_many(self, ctx, specs))

    @observability.operation("save")
    async def save(self, ctx: RequestContext, spec: RequestSpec, rev: int | None = None) -> int:
        """Overwrite the spec where it lives (compare-and-set with ``rev``); the new rev."""
        return await run(operations.save(self, ctx, spec, rev))

    @observability.operation("promote")
    async def promote(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        """Move a spec from the api store to ``cell``; idempotent."""
        return await run(operations.move(self, instance_uuid, API, cell))

    @observability.operation("move_to_cell")
    async def move_to_cell(
        self, ctx: RequestContext, instance_uuid: UUID | str, cell: str
    ) -> Promotion:
        """Move a spec from the cell the context targets to ``cell``; idempotent."""
        if ctx.cell is None:
            raise InvalidInputError("move_to_cell moves out of a cell: target the source cell")
        return await run(operations.move(self, instance_uuid, ctx.cell, cell))

    @observability.operation("resume_moves", after=observability.log_settled)
    async def resume_moves(self) -> dict[str, str]:
        """Settle every move whose lease expired: uuid -> how it was settled."""
        return await run(operations.resume_moves(self))

    @observability.operation("destroy")
    async def destroy(
        self, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None = None
    ) -> None:
        """Delete the spec from the context's store (compare-and-set with ``rev``)."""
        await run(operations.destroy(self, ctx, instance_uuid, rev))

    @observability.operation("destroy_bulk")
    async def destroy_bulk(
        self, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
    ) -> BatchDestroy:
        """Delete many specs from the context's store, each uuid once."""
        return await run(operations.destroy_bulk(self, ctx, instance_uuids))

    @observability.operation("get")
    async def get(self, ctx: RequestContext, instance_uuid: UUID | str) -> StoredSpec:
        """The spec of ``instance_uuid`` in the context's store, with its rev."""
        return await run(operations.get(self, ctx, instance_uuid))

    @observability.operation("get_many")
    async def get_many(
        self, ctx: RequestContext, instance_uuids: Sequence[UUID | str]
    ) -> BatchRead:
        """Many specs of the context's store in one pipeline; order kept."""
        return await run(operations.get_many(self, ctx, instance_uuids))

    @observability.operation("locate")
    async def locate(self, instance_uuid: UUID | str) -> str | None:
        """Which store holds the spec: ``"api"``, a cell name, or None."""
        return await run(operations.locate(self, instance_uuid))
