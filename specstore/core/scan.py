"""Where a resumable SCAN over every node of a backend stands (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from specstore.errors import InvalidInputError


@dataclass(frozen=True)
class ScanPosition:
    """Where a scan stands: node index (in the backend's node list) and that node's cursor.

    Its text form ``"<node>:<cursor>"`` is what ``--cursor`` takes to resume.
    """

    node: int = 0
    cursor: int = 0

    def __str__(self) -> str:
        return f"{self.node}:{self.cursor}"

    @classmethod
    def parse(cls, text: str) -> ScanPosition:
        node, sep, cursor = text.partition(":")
        if not (sep and node.isdigit() and cursor.isdigit()):
            raise InvalidInputError(f"a scan cursor looks like '0:1234', not {text!r}")
        return cls(int(node), int(cursor))


def position_after(node: int, cursor: int, nodes: int) -> ScanPosition | None:
    """Where a scan stands after a SCAN reply with ``cursor`` from node ``node`` of
    ``nodes``: that node again, the next one, or None at the end."""
    if cursor != 0:
        return ScanPosition(node, cursor)
    return ScanPosition(node + 1, 0) if node + 1 < nodes else None
