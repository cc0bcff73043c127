"""Resumable SCAN over every node of a backend (all masters of a cluster); never KEYS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import redis
from redis.cluster import RedisCluster

from specstore.connection import RedisClient, backend_errors
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


def node_clients(client: RedisClient) -> list[redis.Redis]:
    """One client per node to scan: the client itself, or each master of a cluster."""
    if isinstance(client, RedisCluster):
        primaries = sorted(client.get_primaries(), key=lambda n: n.name)  # type: ignore[no-untyped-call]
        return [client.get_redis_connection(node) for node in primaries]
    return [client]


def scan_batches(
    client: RedisClient, pattern: str, count: int = 1000, start: ScanPosition | None = None
) -> Iterator[tuple[list[bytes], ScanPosition | None]]:
    """Yield (keys, position to resume after this batch; None once everything was seen)."""
    nodes = node_clients(client)
    position = start or ScanPosition()
    for index in range(position.node, len(nodes)):
        cursor = position.cursor if index == position.node else 0
        while True:
            with backend_errors(f"scan {pattern}", writes=False):
                cursor, found = nodes[index].scan(cursor=cursor, match=pattern, count=count)
            yield cast(list[bytes], found), position_after(index, cursor, len(nodes))
            if cursor == 0:
                break


def position_after(node: int, cursor: int, nodes: int) -> ScanPosition | None:
    """Where a scan stands after a SCAN reply with ``cursor`` from node ``node`` of
    ``nodes``: that node again, the next one, or None at the end."""
    if cursor != 0:
        return ScanPosition(node, cursor)
    return ScanPosition(node + 1, 0) if node + 1 < nodes else None
