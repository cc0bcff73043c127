"""Resumable SCAN over every node of a backend (all masters of a cluster) with redis-py's
blocking clients; never KEYS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import redis
from redis.cluster import RedisCluster

from specstore.connection import RedisClient, backend_errors
from specstore.core.scan import ScanPosition, position_after


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
