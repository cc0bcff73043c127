"""NUMA topology, PCI requests and placement request groups."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from specstore.model.base import (
    CountMap,
    IntMap,
    IntSet,
    NonNegativeInt,
    PositiveInt,
    SortedDict,
    SpecModel,
    StrMap,
    StrSet,
)

CPUPolicy = Literal["shared", "dedicated", "mixed"]
CPUThreadPolicy = Literal["prefer", "isolate", "require"]
PCINUMAPolicy = Literal["required", "legacy", "preferred", "socket"]


class InstanceNUMACell(SpecModel):
    """One guest NUMA cell: CPUs, memory (MiB) and page size (KiB)."""

    id: NonNegativeInt
    memory: PositiveInt
    cpuset: IntSet = Field(default_factory=set)
    pcpuset: IntSet = Field(default_factory=set)
    cpuset_reserved: IntSet | None = None
    pagesize: PositiveInt | None = None
    cpu_policy: CPUPolicy | None = None
    cpu_thread_policy: CPUThreadPolicy | None = None
    cpu_pinning: IntMap = Field(default_factory=SortedDict)


class InstanceNUMATopology(SpecModel):
    """Guest NUMA topology requested by the flavor or image."""

    cells: list[InstanceNUMACell] = Field(min_length=1)
    emulator_threads_policy: Literal["share", "isolate"] | None = None


class InstancePCIRequest(SpecModel):
    """A request for ``count`` PCI devices matching ``spec`` (alias or SR-IOV port)."""

    count: PositiveInt
    spec: list[StrMap] = Field(default_factory=list)
    alias_name: str | None = None
    is_new: bool = False
    numa_policy: PCINUMAPolicy | None = None
    request_id: UUID | None = None
    requester_id: str | None = None


class InstancePCIRequests(SpecModel):
    """All PCI requests of the instance."""

    requests: list[InstancePCIRequest] = Field(default_factory=list)


class RequestGroup(SpecModel):
    """A placement request group (resources and traits to be met by one provider subtree)."""

    requester_id: str | None = None
    resources: CountMap = Field(default_factory=SortedDict)
    required_traits: StrSet = Field(default_factory=set)
    forbidden_traits: StrSet = Field(default_factory=set)
    aggregates: list[list[str]] = Field(default_factory=list)
    forbidden_aggregates: StrSet = Field(default_factory=set)
    use_same_provider: bool = True
    in_tree: str | None = None
    provider_uuids: list[UUID] = Field(default_factory=list)


class RequestLevelParams(SpecModel):
    """Placement parameters that apply to the whole request rather than one group."""

    root_required: StrSet = Field(default_factory=set)
    root_forbidden: StrSet = Field(default_factory=set)
    same_subtree: list[list[str]] = Field(default_factory=list)
