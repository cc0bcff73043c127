"""The request context: who is asking, and which store their writes go to."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from specstore.errors import SpecStoreError
from specstore.keys import API, validate_cell_name

if TYPE_CHECKING:
    from specstore.store import SpecStore


@dataclass(frozen=True)
class RequestContext:
    """Project, user and the target store of one request.

    Untargeted, a context reads and writes the api store; ``ctx.target_cell("cell1")`` returns
    a context for the cell1 store (as Nova's ``target_cell`` does for a cell's database).
    ``store`` is the :class:`~specstore.store.SpecStore` used by the object-style API
    (``spec.create(ctx)``, ``spec.save(ctx)``, ``RequestSpec.get_by_instance_uuid(ctx, uuid)``).
    """

    project_id: str | None = None
    user_id: str | None = None
    cell: str | None = None
    store: SpecStore | None = None

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

    def require_store(self) -> SpecStore:
        if self.store is None:
            raise SpecStoreError("this RequestContext has no SpecStore (pass store=...)")
        return self.store
