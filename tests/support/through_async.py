"""A SpecStore whose operations run on an AsyncSpecStore: the sync test suites, run as they
are against the asyncio store.

The adapter keeps a blocking topology on the same servers and keyspace, so a test's raw
checks (``store.client``, ``store.topology``) and the operator's bulk operations see what
the asyncio store wrote; every store operation itself is the asyncio store's coroutine, run
to completion on the adapter's own event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from specstore import RequestContext, SpecStore
from specstore.aio import AsyncSpecStore
from specstore.connection import connect, connect_async
from specstore.model import RequestSpec
from specstore.operations import BatchCreate, BatchDestroy, BatchRead, Promotion
from specstore.records import StoredSpec
from specstore.topology import AsyncBackend, Backend, Topology

T = TypeVar("T")


def async_twin(topology: Topology[Backend], urls: dict[str, str]) -> Topology[AsyncBackend]:
    """The asyncio topology of ``topology``: each backend's URL (by backend name) opened
    with ``redis.asyncio``, the same keyspaces and the same sharing of backends."""
    twins: dict[int, AsyncBackend] = {
        id(b): AsyncBackend(b.name, connect_async(urls[b.name]), b.keys)
        for b in topology.backends()
    }
    return Topology(
        twins[id(topology.api)],
        {name: twins[id(b)] for name, b in topology.cells.items()},
        topology.only_listed_cells,
    )


class ThroughAsync(SpecStore):
    """:class:`SpecStore`'s interface, served by an :class:`AsyncSpecStore`."""

    def __init__(self, topology: Topology[Backend], urls: dict[str, str], **options: Any) -> None:
        super().__init__(topology, **options)
        self.loop = asyncio.new_event_loop()
        self.async_store = AsyncSpecStore(async_twin(topology, urls), **options)

    @classmethod
    def on(cls, url: str, **options: Any) -> ThroughAsync:
        """Every store on the Redis at ``url``."""
        return cls(Topology.single(connect(url)), {"api": url}, **options)

    def wait(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def close(self) -> None:
        self.wait(self.async_store.aclose())
        self.loop.close()
        super().close()

    def create(self, ctx: RequestContext, spec: RequestSpec) -> int:
        return self.wait(self.async_store.create(ctx, spec))

    def create_many(self, ctx: RequestContext, specs: Sequence[RequestSpec]) -> BatchCreate:
        return self.wait(self.async_store.create_many(ctx, specs))

    def save(self, ctx: RequestContext, spec: RequestSpec, rev: int | None = None) -> int:
        return self.wait(self.async_store.save(ctx, spec, rev))

    def promote(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        return self.wait(self.async_store.promote(ctx, instance_uuid, cell))

    def move_to_cell(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        return self.wait(self.async_store.move_to_cell(ctx, instance_uuid, cell))

    def resume_moves(self) -> dict[str, str]:
        return self.wait(self.async_store.resume_moves())

    def destroy(
        self, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None = None
    ) -> None:
        self.wait(self.async_store.destroy(ctx, instance_uuid, rev))

    def destroy_bulk(
        self, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
    ) -> BatchDestroy:
        return self.wait(self.async_store.destroy_bulk(ctx, instance_uuids))

    def get(self, ctx: RequestContext, instance_uuid: UUID | str) -> StoredSpec:
        return self.wait(self.async_store.get(ctx, instance_uuid))

    def get_many(self, ctx: RequestContext, instance_uuids: Sequence[UUID | str]) -> BatchRead:
        return self.wait(self.async_store.get_many(ctx, instance_uuids))

    def locate(self, instance_uuid: UUID | str) -> str | None:
        return self.wait(self.async_store.locate(instance_uuid))
