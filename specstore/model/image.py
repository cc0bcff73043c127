"""Image metadata the spec keeps for scheduling (properties drive many filters)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from specstore.model.base import FreeformMap, NonNegativeInt, SortedDict, SpecModel, UtcDatetime


class ImageMeta(SpecModel):
    """Glance image metadata; ``properties`` is free-form (``hw_*``, ``os_*``, ...)."""

    id: UUID | None = None
    name: str | None = None
    status: str | None = None
    visibility: str | None = None
    protected: bool | None = None
    checksum: str | None = None
    owner: str | None = None
    size: NonNegativeInt | None = None
    virtual_size: NonNegativeInt | None = None
    container_format: str | None = None
    disk_format: str | None = None
    min_ram: NonNegativeInt | None = None
    min_disk: NonNegativeInt | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    properties: FreeformMap = Field(default_factory=SortedDict)
