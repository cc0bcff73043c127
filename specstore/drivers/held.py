"""Single commands and pipelines on connections kept aside from the pool, for the hot paths.

redis-py's per-command path (pool lock and bookkeeping, readiness check, retry wrapper,
response callbacks, command packing in Python) costs about as much as the round trip itself
on loopback. ``get``, ``save`` and the batches send one command or one pipeline each, so they
take a connection from a small stack of spare ones (taken from the client's own pool, so they
count against its ``max_connections``), talk to it directly and put it back. What the pool's
path does that matters is kept:

* each call has a connection of its own for the whole call: threads, and a call made from a
  signal handler or finalizer while another call on the same thread waits, never share one;
* a connection that has data waiting, or that the server closed while it was idle (a restart),
  is reconnected *before* anything is sent, so a restarted server costs no failed call;
* any failure while connecting, sending or reading drops the connection (redis-py's
  connection does that itself for sending and reading), so neither a late reply nor a
  half-done handshake is met by the next call; nothing is retried, as on every other path
  (:mod:`specstore.connection`);
* at most half of ``max_connections`` wait on the stack; the others go back to the pool, so
  the pool's own paths (script loading, scans, moves) always find room;
* a forked child never uses its parent's sockets; ``client.close()`` closes these connections
  too (the pool disconnects the connections it handed out).

Only a plain ``redis.Redis`` client on a plain ``ConnectionPool`` without a client-side cache
(and not a ``single_connection_client``) is served this way. Redis Cluster clients (which
route by slot and follow redirections), blocking and sentinel pools, cached clients and the
embedded fakeredis go through redis-py.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.connection import Connection, ConnectionPool, SSLConnection, UnixDomainSocketConnection

from specstore.connection import RedisClient

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:  # redis-py's packer wraps hiredis's in Python that costs more than the packing itself
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is a dependency
    _hiredis_pack = None

_PLAIN_CONNECTIONS = (Connection, SSLConnection, UnixDomainSocketConnection)


class HeldConnections:
    """``execute(*args)`` / ``pipeline(commands)`` on a spare connection, raw replies.

    Replies are as the server sent them (no redis-py response callbacks): HGETALL gives a flat
    list in RESP2. Error replies raise their redis-py exception (``NoScriptError``,
    ``ResponseError``); in a pipeline they are returned in their place.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pool: ConnectionPool = client.connection_pool
        self._pid = os.getpid()
        self._spare: deque[Any] = deque()
        self._most_spare = self._pool.max_connections // 2

    def _take(self) -> Any:
        """A connection for one call, connected and with nothing waiting on it."""
        if self._pid != os.getpid():  # a forked child: the spares are the parent's sockets
            self._pid, self._spare = os.getpid(), deque()
        try:
            connection = self._spare.pop()
        except IndexError:
            return self._pool.get_connection()  # connected and checked by the pool
        try:
            if connection._sock is None:
                connection.connect()
            elif _closed_or_out_of_step(connection):
                connection.disconnect()
                connection.connect()
        except BaseException:
            # an interrupted connect may have left a socket without its handshake
            connection.disconnect()
            self._pool.release(connection)
            raise
        return connection

    def _give_back(self, connection: Any) -> None:
        if len(self._spare) < self._most_spare and self._pid == os.getpid():
            self._spare.append(connection)
        else:
            self._pool.release(connection)

    def execute(self, *args: Any) -> Any:
        connection = self._take()
        try:
            connection.send_packed_command([_pack(connection, args)], check_health=False)
            return connection.read_response()
        finally:
            self._give_back(connection)

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Many commands in one round trip; each error reply is returned in its place."""
        connection = self._take()
        try:
            packed = b"".join(_pack(connection, command) for command in commands)
            connection.send_packed_command([packed], check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            return replies
        finally:
            self._give_back(connection)


def _pack(connection: Any, args: Sequence[Any]) -> bytes:
    if _hiredis_pack is None:  # pragma: no cover
        return b"".join(connection.pack_command(*args))
    return pack(args)


def pack(args: Sequence[Any]) -> bytes:
    """One command in the Redis protocol, by hiredis's packer (see :data:`HAS_PACKER`).
    Numbers are sent as their text: hiredis's packer can crash the process when a signal
    handler raises while it formats an int."""
    assert _hiredis_pack is not None
    return _hiredis_pack(tuple([str(a) if type(a) is int else a for a in args]))


HAS_PACKER = _hiredis_pack is not None
"""hiredis is installed (a dependency): :func:`pack` works."""


def _closed_or_out_of_step(connection: Any) -> bool:
    """True when an idle connection has data waiting or the server closed it (as the pool
    checks before handing a connection out)."""
    try:
        return bool(connection.can_read())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True


def held_connections(client: RedisClient) -> HeldConnections | None:
    """Spare connections for a plain ``redis.Redis`` client; None where redis-py's own path
    must be kept (cluster, fakeredis, a single connection, blocking or sentinel pools,
    client-side caching)."""
    if type(client) is not redis.Redis or client.connection is not None:
        return None  # (a single_connection_client asked for one connection: it keeps it)
    pool = client.connection_pool
    if type(pool) is not ConnectionPool or getattr(pool, "cache", None) is not None:
        return None
    if not issubclass(pool.connection_class, _PLAIN_CONNECTIONS):
        return None
    return HeldConnections(client)
