"""Single commands on a connection held per thread, for the one-round-trip hot paths.

redis-py's per-command path (pool lock and bookkeeping, readiness check, retry wrapper,
response callbacks) costs about as much as the round trip itself on loopback. ``get`` and
``save`` send one command each, so they keep one connection per thread, taken from the
client's own pool, and talk to it directly. What the pool's path does that matters is kept:

* a connection that has data waiting, or that the server closed while it was idle (a restart),
  is reconnected *before* anything is sent, so a restarted server costs no failed call;
* any failure other than a Redis error reply drops the connection (redis-py's connection does
  that itself), so a late reply is never read by the next command; nothing is retried, as on
  every other path (:mod:`specstore.connection`);
* a forked child never uses its parent's socket;
* a connection whose thread has ended goes back to the pool; ``client.close()`` closes held
  connections too (the pool disconnects the connections in use).

Only a plain ``redis.Redis`` client is held this way. Redis Cluster clients (which route by
slot and follow redirections) and the embedded fakeredis go through redis-py as before.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.connection import ConnectionPool

from specstore.connection import RedisClient

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:  # redis-py's packer wraps hiredis's in Python that costs more than the packing itself
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is a dependency
    _hiredis_pack = None


class _Held:
    """One thread's connection; returned to the pool when the thread's locals are freed."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pid = os.getpid()
        self.connection = pool.get_connection()
        weakref.finalize(self, _release, pool, self.connection, self.pid)


def _release(pool: ConnectionPool, connection: Any, pid: int) -> None:
    if os.getpid() == pid:
        pool.release(connection)


class HeldConnections:
    """``execute(*args)``: one command on this thread's held connection, its raw reply.

    Replies are as the server sent them (no redis-py response callbacks): HGETALL gives a flat
    list. Error replies raise their redis-py exception (``NoScriptError``, ``ResponseError``).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pool: ConnectionPool = client.connection_pool
        self._local = threading.local()

    def _connection(self) -> Any:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            held = self._local.held = _Held(self._pool)
        return held.connection

    def _ready(self) -> Any:
        """This thread's connection, connected and with nothing waiting on it."""
        connection = self._connection()
        if connection._sock is None:
            connection.connect()
        elif _closed_or_out_of_step(connection):
            connection.disconnect()
            connection.connect()
        return connection

    def execute(self, *args: Any) -> Any:
        connection = self._ready()
        # redis-py's connection drops its socket itself on any failure while sending or
        # reading (a timeout, an interrupt), so a late reply is never read by the next call
        connection.send_packed_command([_pack(connection, args)], check_health=False)
        return connection.read_response()

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Many commands in one round trip; each error reply is returned in its place."""
        connection = self._ready()
        packed = b"".join(_pack(connection, command) for command in commands)
        connection.send_packed_command([packed], check_health=False)
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies


def _pack(connection: Any, args: Sequence[Any]) -> bytes:
    """One command in the Redis protocol (str, bytes and numbers, as specstore sends)."""
    if _hiredis_pack is None:  # pragma: no cover
        return b"".join(connection.pack_command(*args))
    return _hiredis_pack(tuple(args))


def _closed_or_out_of_step(connection: Any) -> bool:
    """True when an idle connection has data waiting or the server closed it (as the pool
    checks before handing a connection out)."""
    try:
        return bool(connection.can_read())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True


def held_connections(client: RedisClient) -> HeldConnections | None:
    """Held connections for a plain ``redis.Redis`` client; None for cluster and fakeredis."""
    if type(client) is not redis.Redis:
        return None
    if type(client.connection_pool) is not ConnectionPool:
        return None  # a blocking or sentinel pool keeps its own rules
    return HeldConnections(client)
