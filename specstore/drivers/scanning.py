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


def scan_page(
    nodes: list[redis.Redis],
    position: ScanPosition,
    pattern: str,
    count: int,
    *,
    reply_errors: bool = False,
) -> tuple[list[bytes], ScanPosition | None]:
    """One SCAN call on node ``position.node`` of ``nodes`` (see :func:`node_clients`): the
    keys it gave and where the scan stands after it (None once every node was seen)."""
    with backend_errors(f"scan {pattern}", writes=False, reply_errors=reply_errors):
        cursor, found = nodes[position.node].scan(
            cursor=position.cursor, match=pattern, count=count
        )
    return cast(list[bytes], found), position_after(position.node, int(cursor), len(nodes))


def scan_batches(
    client: RedisClient, pattern: str, count: int = 1000, start: ScanPosition | None = None
) -> Iterator[tuple[list[bytes], ScanPosition | None]]:
    """Yield (keys, position to resume after this batch; None once everything was seen)."""
    nodes = node_clients(client)
    position: ScanPosition | None = start or ScanPosition()
    while position is not None and position.node < len(nodes):
        keys, position = scan_page(nodes, position, pattern, count)
        yield keys, position
