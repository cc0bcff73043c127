"""Single commands and pipelines on spare ``redis.asyncio`` connections, checked before sending.

The asyncio twin of :mod:`specstore.drivers.held`, for the same two reasons:

* redis.asyncio's per-command path (pool lock and bookkeeping, retry wrapper, response
  callbacks) costs about as much as the round trip on loopback;
* its pool hands out a connection the server closed while it was idle (a restart, a cut
  link) when the event loop has not yet seen the close: the command is then sent into a
  dead socket and its failure cannot tell whether it ran. Here a spare connection whose
  socket is readable while idle (closed, or holding data nobody asked for) is reconnected
  *before* anything is sent.

Each call takes a connection of its own (tasks never share one), drops it on any failure
or cancellation (so no late reply meets the next call) and puts it back; at most half of
the pool's ``max_connections`` wait aside. Only a plain ``redis.asyncio.Redis`` on a plain
pool of TCP or unix connections without a client-side cache is served this way; TLS
connections (whose socket may hold TLS records the loop reads on its own), Redis Cluster
and fakeredis go through redis-py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import Connection, ConnectionPool, UnixDomainSocketConnection

from specstore.connection import closed_or_out_of_step as _closed_or_out_of_step
from specstore.drivers.held import HAS_PACKER, pack

_PLAIN_CONNECTIONS = (Connection, UnixDomainSocketConnection)


class DirectConnections:
    """``await execute(*args)`` / ``await pipeline(commands)``: raw replies, as
    :class:`specstore.drivers.held.HeldConnections` gives them."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._pool: ConnectionPool = client.connection_pool
        self._spare: deque[Any] = deque()
        self._most_spare = self._pool.max_connections // 2

    async def _take(self) -> Any:
        """A connection for one call, connected and with nothing waiting on it (the pool's
        own check misses a close the event loop has not seen yet: checked here too)."""
        try:
            connection = self._spare.pop()
        except IndexError:
            connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            if not connection.is_connected:
                await connection.connect()
            elif _closed_or_out_of_step(connection):
                await connection.disconnect()
                await connection.connect()
        except BaseException:
            await connection.disconnect(nowait=True)
            await self._pool.release(connection)
            raise
        return connection

    async def _give_back(self, connection: Any) -> None:
        if len(self._spare) < self._most_spare:
            self._spare.append(connection)
        else:
            await self._pool.release(connection)

    async def execute(self, *args: Any) -> Any:
        connection = await self._take()
        try:
            await _send(connection, pack(args))
            reply = await connection.read_response()
        except redis.ResponseError:
            await self._give_back(connection)  # an error reply: the connection is in step
            raise
        except BaseException:
            await connection.disconnect(nowait=True)  # a late reply must meet no one
            await self._pool.release(connection)
            raise
        await self._give_back(connection)
        return reply

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Many commands in one round trip; each error reply is returned in its place."""
        connection = await self._take()
        try:
            await _send(connection, b"".join(pack(command) for command in commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            await connection.disconnect(nowait=True)
            await self._pool.release(connection)
            raise
        await self._give_back(connection)
        return replies


async def _send(connection: Any, data: bytes) -> None:
    """Write ``data`` as redis.asyncio's ``send_packed_command`` does, less its
    ``asyncio.wait_for`` around every write (on Python 3.11 a task and a turn of the event loop
    per call): the write is only waited on when the transport asks for it (its buffer over the
    high-water mark), and then under the connection's socket timeout. The caller drops the
    connection on any failure."""
    writer = connection._writer
    try:
        writer.write(data)
        transport = writer.transport
        if connection.socket_timeout and (
            transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]
        ):
            await asyncio.wait_for(writer.drain(), connection.socket_timeout)
        else:
            await writer.drain()  # returns at once, unless the connection was lost
    except asyncio.TimeoutError:
        raise redis.TimeoutError("Timeout writing to socket") from None
    except OSError as exc:
        raise redis.ConnectionError(f"Error while writing to socket: {exc}") from exc


def direct_connections(client: object) -> DirectConnections | None:
    """Spare connections for a plain ``redis.asyncio.Redis``; None where redis-py's own
    path is kept (see the module docstring)."""
    if not HAS_PACKER or type(client) is not redis.asyncio.Redis or client.connection is not None:
        return None
    pool = client.connection_pool
    if type(pool) is not ConnectionPool or getattr(pool, "cache", None) is not None:
        return None
    if pool.connection_class not in _PLAIN_CONNECTIONS:
        return None
    return DirectConnections(client)
