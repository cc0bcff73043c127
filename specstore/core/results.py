"""What the store's batch operations and moves return (the same from both stores)."""

from __future__ import annotations

from dataclasses import dataclass, field

from specstore.core.records import StoredSpec
from specstore.errors import DocumentError, SpecStoreError


@dataclass(frozen=True)
class BatchRead:
    """Result of ``get_many``: found specs in request order, and the rest."""

    found: list[StoredSpec]
    missing: list[str]
    corrupt: dict[str, DocumentError] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchCreate:
    """Result of ``create_many``."""

    created: list[str]
    existing: dict[str, str]
    """Specs that already had a home (or a move under way to one): uuid -> that store."""
    failed: dict[str, SpecStoreError] = field(default_factory=dict)
    """Nothing of these was written."""
    unknown: dict[str, SpecStoreError] = field(default_factory=dict)
    """These may have landed: re-read them (``locate``) before retrying."""


@dataclass(frozen=True)
class BatchDestroy:
    """Result of ``destroy_bulk`` (each uuid once, in request order)."""

    destroyed: list[str]
    missing: list[str]
    elsewhere: dict[str, str] = field(default_factory=dict)
    """Specs that live in another store than the context's: uuid -> their home (kept)."""
    moving: dict[str, str] = field(default_factory=dict)
    """Specs being moved to another store right now: uuid -> the target (kept)."""
    failed: dict[str, SpecStoreError] = field(default_factory=dict)
    unknown: dict[str, SpecStoreError] = field(default_factory=dict)


@dataclass(frozen=True)
class Promotion:
    """Result of ``promote`` and ``move_to_cell``."""

    instance_uuid: str
    cell: str
    rev: int
    moved: bool
    """False when the spec already lived in the cell (promote is idempotent)."""
