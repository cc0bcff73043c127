"""Scheduler bookkeeping: destination, retries, limits, network metadata, requested networks."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from specstore.model.base import FreeformMap, NonNegativeInt, SpecModel, StrSet


class Destination(SpecModel):
    """Where the caller asks this particular request to land (never persisted)."""

    host: str | None = None
    node: str | None = None
    cell: str | None = None
    aggregates: list[str] = Field(default_factory=list)
    forbidden_aggregates: StrSet = Field(default_factory=set)
    allow_cross_cell_move: bool = False


class ComputeNodeRef(SpecModel):
    """A compute node already tried by this request."""

    host: str
    hypervisor_hostname: str | None = None


class SchedulerRetries(SpecModel):
    """Reschedule attempts of this request (never persisted)."""

    num_attempts: NonNegativeInt = 0
    hosts: list[ComputeNodeRef] = Field(default_factory=list)


class SchedulerLimits(SpecModel):
    """Oversubscription limits the chosen host reported for the claim."""

    vcpu: NonNegativeInt | None = None
    memory_mb: NonNegativeInt | None = None
    disk_gb: NonNegativeInt | None = None
    numa_topology: FreeformMap | None = None


class NetworkMetadata(SpecModel):
    """Physical networks and tunneling the instance's ports need (never persisted)."""

    physnets: StrSet = Field(default_factory=set)
    tunneled: bool = False


class RequestedNetwork(SpecModel):
    """One network or port requested at boot (never persisted)."""

    network_id: str | None = None
    port_id: UUID | None = None
    address: str | None = None
    tag: str | None = None
