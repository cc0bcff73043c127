"""The request context: who is asking, and which store their writes go to."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any, Protocol

from specstore.core.keys import API, validate_cell_name
from specstore.errors import SpecStoreError


class Stored(Protocol):
    """A stored spec as a store's ``get`` returns it (a
    :class:`specstore.core.records.StoredSpec`)."""

    @property
    def spec(self) -> Any: ...

    @property
    def rev(self) -> int: ...


class Specs(Protocol):
    """What the object-style calls need of a blocking store (a SpecStore); the context
    names it by its interface, so that it needs nothing of the store layer."""

    def create(self, ctx: RequestContext, spec: Any) -> int: ...

    def save(self, ctx: RequestContext, spec: Any, rev: int | None = None) -> int: ...

    def destroy(self, ctx: RequestContext, instance_uuid: Any, rev: int | None = None) -> None: ...

    def get(self, ctx: RequestContext, instance_uuid: Any) -> Stored: ...


class AsyncSpecs(Protocol):
    """:class:`Specs` of an asyncio store (an AsyncSpecStore)."""

    async def create(self, ctx: RequestContext, spec: Any) -> int: ...

    async def save(self, ctx: RequestContext, spec: Any, rev: int | None = None) -> int: ...

    async def destroy(
        self, ctx: RequestContext, instance_uuid: Any, rev: int | None = None
    ) -> None: ...

    async def get(self, ctx: RequestContext, instance_uuid: Any) -> Stored: ...


@dataclass(frozen=True)
class RequestContext:
    """Project, user and the target store of one request.

    Untargeted, a context reads and writes the api store; ``ctx.target_cell("cell1")`` returns
    a context for the cell1 store (as Nova's ``target_cell`` does for a cell's database).
    ``store`` is the :class:`~specstore.store.SpecStore` used by the object-style API
    (``spec.create(ctx)``, ``spec.save(ctx)``, ``RequestSpec.get_by_instance_uuid(ctx, uuid)``),
    or the :class:`~specstore.aio.AsyncSpecStore` its coroutines use (``await
    spec.acreate(ctx)``, ``await spec.asave(ctx)``, ``await
    RequestSpec.aget_by_instance_uuid(ctx, uuid)``).
    """

    project_id: str | None = None
    user_id: str | None = None
    cell: str | None = None
    store: Specs | AsyncSpecs | None = None

    def __post_init__(self) -> None:
        if self.cell is not None:
            validate_cell_name(self.cell)

    def target_cell(self, cell: str) -> RequestContext:
        """A copy of this context targeting ``cell``'s store."""
        return replace(self, cell=validate_cell_name(cell))

    def untargeted(self) -> RequestContext:
        """A copy of this context targeting the api store."""
        return replace(self, cell=None)

    @property
    def store_name(self) -> str:
        """``"api"`` when untargeted, else the targeted cell's name."""
        return self.cell if self.cell is not None else API

    def require_store(self) -> Specs:
        """The context's blocking store (for ``spec.save(ctx)`` and the like)."""
        if self.store is None or _is_async(self.store):
            raise SpecStoreError(_wanted("a SpecStore", "acreate/asave/aget_by_instance_uuid"))
        return self.store  # type: ignore[return-value]

    def require_async_store(self) -> AsyncSpecs:
        """The context's asyncio store (for ``await spec.asave(ctx)`` and the like)."""
        if self.store is None or not _is_async(self.store):
            raise SpecStoreError(_wanted("an AsyncSpecStore", "create/save/get_by_instance_uuid"))
        return self.store  # type: ignore[return-value]


def _is_async(store: object) -> bool:
    return inspect.iscoroutinefunction(getattr(store, "get", None))


def _wanted(kind: str, other: str) -> str:
    return (
        f"this call needs a RequestContext holding {kind} (store=...); "
        f"with the other kind use {other}"
    )
