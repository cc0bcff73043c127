"""The RequestSpec: everything the scheduler needs to place (and later move) an instance."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator

from specstore.model.base import PositiveInt, SortedDict, SpecModel
from specstore.model.flavor import Flavor
from specstore.model.image import ImageMeta
from specstore.model.instance_group import InstanceGroup
from specstore.model.resources import (
    InstanceNUMATopology,
    InstancePCIRequests,
    RequestGroup,
    RequestLevelParams,
)
from specstore.model.scheduling import (
    Destination,
    NetworkMetadata,
    RequestedNetwork,
    SchedulerLimits,
    SchedulerRetries,
)
from specstore.model.transient import keep_transient

if TYPE_CHECKING:
    from specstore.context import RequestContext, Stored


def _hints(value: object, handler: ValidatorFunctionWrapHandler) -> dict[str, list[str]]:
    """Nova accepts a bare hint value and stores it as a one-element list; so do we. The
    validated map is kept key-sorted (one Python call for both)."""
    if isinstance(value, dict) and not _LISTS_ONLY.issuperset(map(type, value.values())):
        value = {k: v if isinstance(v, list) else [v] for k, v in value.items()}
    hints: dict[str, list[str]] = handler(value)
    keys = [*hints]
    if keys == sorted(keys):
        return SortedDict(hints)
    return SortedDict(sorted(hints.items()))


_LISTS_ONLY = frozenset({list})
SchedulerHints = Annotated[dict[str, list[str]], WrapValidator(_hints)]

NewerMinorFields = tuple[tuple[int, int], dict[Any, Any]]
_BOOKKEEPING = ("_rev", "_newer_minor_fields")


class RequestSpec(SpecModel):
    """A server's scheduling request, with the field set of Nova's RequestSpec 1.15.

    Fields named in :data:`specstore.model.persistence.TRANSIENT_FIELDS` describe one request
    only and are stripped when the spec is persisted.
    """

    instance_uuid: UUID
    flavor: Flavor
    project_id: str | None = None
    user_id: str | None = None
    availability_zone: str | None = None
    image: ImageMeta | None = None
    num_instances: PositiveInt = 1
    numa_topology: InstanceNUMATopology | None = None
    pci_requests: InstancePCIRequests | None = None
    ignore_hosts: list[str] | None = None
    force_hosts: list[str] | None = None
    force_nodes: list[str] | None = None
    requested_destination: Destination | None = None
    retry: SchedulerRetries | None = None
    limits: SchedulerLimits | None = None
    instance_group: InstanceGroup | None = None
    scheduler_hints: SchedulerHints = Field(default_factory=SortedDict)
    security_groups: list[str] = Field(default_factory=list)
    network_metadata: NetworkMetadata | None = None
    is_bfv: bool = False
    requested_resources: list[RequestGroup] = Field(default_factory=list)
    request_level_params: RequestLevelParams | None = None
    requested_networks: list[RequestedNetwork] = Field(default_factory=list)

    # Store bookkeeping lives in slots, not in pydantic private attributes: a model with
    # private attributes runs a Python ``model_post_init`` on every validation. Copies and
    # pickles carry the slots (``__copy__``, ``__deepcopy__``, ``__getstate__`` below).
    __slots__ = ("_newer_minor_fields", "_rev")
    if TYPE_CHECKING:
        _rev: int | None
        _newer_minor_fields: NewerMinorFields | None

    @property
    def newer_minor_fields(self) -> NewerMinorFields | None:
        """(version, fields) read from a newer minor schema version that this code does not
        know; the document codec writes them back untouched."""
        value: NewerMinorFields | None = _slot_value(self, "_newer_minor_fields")
        return value

    @newer_minor_fields.setter
    def newer_minor_fields(self, value: NewerMinorFields | None) -> None:
        object.__setattr__(self, "_newer_minor_fields", value)

    def _bookkeeping(self) -> dict[str, Any]:
        return {name: _slot_value(self, name) for name in _BOOKKEEPING}

    def _set_bookkeeping(self, values: dict[str, Any]) -> None:
        for name in _BOOKKEEPING:
            object.__setattr__(self, name, values.get(name))

    def __copy__(self) -> RequestSpec:
        clone = super().__copy__()
        clone._set_bookkeeping(self._bookkeeping())
        return clone

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> RequestSpec:
        clone = super().__deepcopy__(memo)
        clone._set_bookkeeping(copy.deepcopy(self._bookkeeping(), memo))
        return clone

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["__specstore_bookkeeping__"] = self._bookkeeping()
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        bookkeeping = state.pop("__specstore_bookkeeping__", {})
        super().__setstate__(state)
        self._set_bookkeeping(bookkeeping)

    def get_scheduler_hint(self, name: str, default: object = None) -> object:
        """A hint's value: the bare value when it holds one element, else the list."""
        values = self.scheduler_hints.get(name)
        if values is None:
            return default
        return values[0] if len(values) == 1 else values

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class with equal fields (store bookkeeping is ignored)."""
        if not isinstance(other, RequestSpec) or type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None

    # -- object-style persistence (the store comes from the context) -------------------------

    @property
    def rev(self) -> int | None:
        """Revision of the stored copy this object was last read from or written as."""
        value: int | None = _slot_value(self, "_rev")
        return value

    def create(self, ctx: RequestContext) -> None:
        """Store this new spec in the context's store (the api store when untargeted)."""
        self._rev = ctx.require_store().create(ctx, self)

    def save(self, ctx: RequestContext) -> None:
        """Write this spec where it lives; compare-and-set when a rev is held."""
        self._rev = ctx.require_store().save(ctx, self, rev=self.rev)

    def destroy(self, ctx: RequestContext) -> None:
        """Delete the stored spec; compare-and-set when a rev is held."""
        ctx.require_store().destroy(ctx, self.instance_uuid, rev=self.rev)
        self._rev = None

    @classmethod
    def get_by_instance_uuid(cls, ctx: RequestContext, instance_uuid: UUID | str) -> RequestSpec:
        """The stored spec of ``instance_uuid`` in the context's store."""
        return _with_rev(ctx.require_store().get(ctx, instance_uuid))

    def refresh(self, ctx: RequestContext) -> None:
        """Reload the persisted fields in place; transient per-request fields are kept."""
        self._reload(ctx.require_store().get(ctx, self.instance_uuid))

    # the same, as coroutines, when the context holds an AsyncSpecStore

    async def acreate(self, ctx: RequestContext) -> None:
        """:meth:`create`, awaited."""
        self._rev = await ctx.require_async_store().create(ctx, self)

    async def asave(self, ctx: RequestContext) -> None:
        """:meth:`save`, awaited."""
        self._rev = await ctx.require_async_store().save(ctx, self, rev=self.rev)

    async def adestroy(self, ctx: RequestContext) -> None:
        """:meth:`destroy`, awaited."""
        await ctx.require_async_store().destroy(ctx, self.instance_uuid, rev=self.rev)
        self._rev = None

    @classmethod
    async def aget_by_instance_uuid(
        cls, ctx: RequestContext, instance_uuid: UUID | str
    ) -> RequestSpec:
        """:meth:`get_by_instance_uuid`, awaited."""
        return _with_rev(await ctx.require_async_store().get(ctx, instance_uuid))

    async def arefresh(self, ctx: RequestContext) -> None:
        """:meth:`refresh`, awaited."""
        self._reload(await ctx.require_async_store().get(ctx, self.instance_uuid))

    def _reload(self, stored: Stored) -> None:
        merged = keep_transient(stored.spec, self)
        for name in type(self).model_fields:
            object.__setattr__(self, name, getattr(merged, name))
        self._newer_minor_fields = merged.newer_minor_fields
        self._rev = stored.rev

    @property
    def memory_mb(self) -> int:
        return self.flavor.memory_mb

    @property
    def vcpus(self) -> int:
        return self.flavor.vcpus


_SLOTS = {name: RequestSpec.__dict__[name] for name in _BOOKKEEPING}


def _slot_value(spec: RequestSpec, name: str) -> Any:
    """A bookkeeping slot's value, None when unset (read through the slot itself: an unset
    slot would otherwise go through pydantic's slow ``__getattr__``)."""
    try:
        return _SLOTS[name].__get__(spec, type(spec))
    except AttributeError:
        return None


def _with_rev(stored: Stored) -> RequestSpec:
    """The stored spec, knowing the rev it was read at."""
    spec: RequestSpec = stored.spec
    spec._rev = stored.rev
    return spec
