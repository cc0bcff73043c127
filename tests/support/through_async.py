"""A SpecStore whose operations run on an AsyncSpecStore: the sync test suites, run as they
are against the asyncio store.

The adapter keeps a blocking topology on the same servers and keyspace, so a test's raw
checks (``store.client``, ``store.topology``) and the operator's bulk operations see what
the asyncio store wrote; every store operation itself is the asyncio store's coroutine, run
to completion on the adapter's own event loop. A call made while an event loop runs (a test
hook acting inside another call's move step) cannot wait on a loop: it runs on the blocking
store, on the same data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from specstore import RequestContext, SpecStore
from specstore.aio import AsyncSpecStore
from specstore.connection import connect, connect_async
from specstore.core.records import StoredSpec
from specstore.core.results import BatchCreate, BatchDestroy, BatchRead, Promotion
from specstore.model import RequestSpec
from specstore.topology import AsyncBackend, Backend, Topology

T = TypeVar("T")


def async_twin(
    topology: Topology[Backend], urls: dict[str, str], client: dict[str, Any] | None = None
) -> Topology[AsyncBackend]:
    """The asyncio topology of ``topology``: each backend's URL (by backend name) opened
    with ``redis.asyncio`` (``client``: its options), the same keyspaces and the same
    sharing of backends."""
    twins: dict[int, AsyncBackend] = {
        id(b): AsyncBackend(b.name, connect_async(urls[b.name], **(client or {})), b.keys)
        for b in topology.backends()
    }
    return Topology(
        twins[id(topology.api)],
        {name: twins[id(b)] for name, b in topology.cells.items()},
        topology.only_listed_cells,
    )


class ThroughAsync(SpecStore):
    """:class:`SpecStore`'s interface, served by an :class:`AsyncSpecStore`."""

    def __init__(
        self,
        topology: Topology[Backend],
        urls: dict[str, str],
        *,
        client: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(topology, **options)
        self.loop = asyncio.new_event_loop()
        self.async_store = AsyncSpecStore(async_twin(topology, urls, client), **options)

    @classmethod
    def on(cls, url: str, *, client: dict[str, Any] | None = None) -> ThroughAsync:
        """Every store on the Redis at ``url`` (``client``: the clients' options)."""
        return cls(Topology.single(connect(url, **(client or {}))), {"api": url}, client=client)

    def wait(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def _run(self, name: str, *args: Any) -> Any:
        if asyncio._get_running_loop() is not None:
            return getattr(SpecStore, name)(self, *args)
        return self.wait(getattr(self.async_store, name)(*args))

    def close(self) -> None:
        self.wait(self.async_store.aclose())
        self.loop.close()
        super().close()

    def create(self, ctx: RequestContext, spec: RequestSpec) -> int:
        return self._run("create", ctx, spec)  # type: ignore[no-any-return]

    def create_many(self, ctx: RequestContext, specs: Sequence[RequestSpec]) -> BatchCreate:
        return self._run("create_many", ctx, specs)  # type: ignore[no-any-return]

    def save(self, ctx: RequestContext, spec: RequestSpec, rev: int | None = None) -> int:
        return self._run("save", ctx, spec, rev)  # type: ignore[no-any-return]

    def promote(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        return self._run("promote", ctx, instance_uuid, cell)  # type: ignore[no-any-return]

    def move_to_cell(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        return self._run("move_to_cell", ctx, instance_uuid, cell)  # type: ignore[no-any-return]

    def resume_moves(self) -> dict[str, str]:
        return self._run("resume_moves")  # type: ignore[no-any-return]

    def destroy(
        self, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None = None
    ) -> None:
        self._run("destroy", ctx, instance_uuid, rev)

    def destroy_bulk(
        self, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
    ) -> BatchDestroy:
        return self._run("destroy_bulk", ctx, instance_uuids)  # type: ignore[no-any-return]

    def get(self, ctx: RequestContext, instance_uuid: UUID | str) -> StoredSpec:
        return self._run("get", ctx, instance_uuid)  # type: ignore[no-any-return]

    def get_many(self, ctx: RequestContext, instance_uuids: Sequence[UUID | str]) -> BatchRead:
        return self._run("get_many", ctx, instance_uuids)  # type: ignore[no-any-return]

    def locate(self, instance_uuid: UUID | str) -> str | None:
        return self._run("locate", instance_uuid)  # type: ignore[no-any-return]
