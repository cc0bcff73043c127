"""Redis connections from URLs, and the translation of Redis failures into specstore errors.

URLs:

* ``memory://`` or ``memory://<name>`` -- the embedded default: an in-process fakeredis
  server with Lua, for demos and unit tests. Clients opened with the same name share data.
* ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix://path``
* ``redis+cluster://host:port`` / ``rediss+cluster://host:port`` -- a Redis Cluster, reached
  through any of its nodes.

Clients never retry a command on their own: a write whose reply was lost may or may not have
landed, and only the caller (holding a rev) can retry it safely. Connection attempts, which
send nothing, are not retried either, so a down server is reported at once.
"""

from __future__ import annotations

import contextlib
import re
import select
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Protocol, TypeAlias
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from specstore.errors import BackendError, InvalidInputError

RedisClient: TypeAlias = "redis.Redis | RedisCluster"
AsyncRedisClient: TypeAlias = "redis.asyncio.Redis | AsyncRedisCluster"

_memory_servers: dict[str, Any] = {}
_memory_lock = threading.Lock()


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def connect(url: str, **options: Any) -> RedisClient:
    """A client for ``url``; extra keyword options go to redis-py."""
    scheme = _scheme(url)
    if scheme == "memory":
        return _memory_client(url)
    options.setdefault("retry", _no_retry())
    with _url_errors(url):
        if scheme in _CLUSTER_SCHEMES:
            try:  # (the blocking cluster client asks a node for the slot map at once)
                return _Cluster.from_url(url.replace("+cluster", "", 1), **options)
            except (RedisClusterException, redis.RedisError) as exc:
                operation = f"connecting to the cluster at {redact(url)}"
                raise BackendError(operation, exc, may_have_written=False) from exc
        options.setdefault("redis_connect_func", _handshake)
        client: redis.Redis = redis.Redis.from_url(url, **options)
        return client


def connect_async(url: str, **options: Any) -> AsyncRedisClient:
    """A ``redis.asyncio`` client for ``url`` (the same URLs as :func:`connect`)."""
    scheme = _scheme(url)
    if scheme == "memory":
        return _memory_client_async(url)
    options.setdefault("retry", AsyncRetry(NoBackoff(), 0))
    with _url_errors(url):
        if scheme in _CLUSTER_SCHEMES:
            return _AsyncCluster.from_url(url.replace("+cluster", "", 1), **options)
        options.setdefault("redis_connect_func", _handshake_async)
        client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(url, **options)
        return client


_CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def _scheme(url: str) -> str:
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("memory", "redis", "rediss", "unix", *_CLUSTER_SCHEMES):
        raise InvalidInputError(
            f"unsupported Redis URL scheme {scheme!r} (use memory://, redis://, rediss://, "
            "unix://, redis+cluster:// or rediss+cluster://)"
        )
    return scheme


@contextlib.contextmanager
def _url_errors(url: str) -> Iterator[None]:
    try:
        yield
    except (ValueError, TypeError) as exc:
        # the message may quote the URL; say it again with the password hidden
        raise InvalidInputError(f"invalid Redis URL {redact(url)}: {redact(str(exc))}") from None


def _memory_client(url: str) -> RedisClient:
    import fakeredis  # imported lazily: only the embedded default needs it

    name = urlsplit(url).netloc or "default"
    with _memory_lock:
        server = _memory_servers.get(name)
        if server is None:
            server = _memory_servers[name] = fakeredis.FakeServer(version=(7,))
    client: redis.Redis = fakeredis.FakeRedis(server=server)
    return client


def _memory_client_async(url: str) -> AsyncRedisClient:
    import fakeredis

    _memory_client(url).close()  # makes the named server, shared with sync clients
    client: redis.asyncio.Redis = fakeredis.FakeAsyncRedis(
        server=_memory_servers[urlsplit(url).netloc or "default"]
    )
    return client


_SECRET_PARAMS = re.compile(r"(?<=[?&])((?:ssl_)?password)=[^&#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` with every password replaced by ``***``, for messages and logs.

    Works on the text alone (no parsing of host or port), so a malformed URL is redacted too:
    the user-info part before the last ``@`` keeps its user name, and ``password=`` /
    ``ssl_password=`` query parameters lose their values.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        at = rest.rfind("@", 0, query_at)
        user, colon, _ = rest[: max(at, 0)].partition(":")
        if at >= 0 and colon:
            rest = f"{user}:***{rest[at:]}"
        url = f"{scheme}{sep}{rest}"
    return _SECRET_PARAMS.sub(r"\1=***", url)


class _HandshakeError(redis.ConnectionError):
    """A new connection's handshake (HELLO, AUTH, CLIENT SETINFO, SELECT) failed: the command
    that needed the connection was never sent."""


def _handshake(connection: Any) -> None:
    """redis-py's own connection handshake, its failures marked as happening before sending."""
    try:
        connection.on_connect()
    except redis.RedisError as exc:
        raise _HandshakeError(f"handshake failed while connecting to redis: {exc}") from exc


async def _handshake_async(connection: Any) -> None:
    """:func:`_handshake` for ``redis.asyncio`` connections."""
    try:
        await connection.on_connect()
    except redis.RedisError as exc:
        raise _HandshakeError(f"handshake failed while connecting to redis: {exc}") from exc


class _NotSentError(redis.ConnectionError):
    """Checking or reconnecting an idle connection failed: the command that needed it was never
    sent."""


class _Sending:
    """Whether the command of one :func:`backend_errors` block (tracking sends) was written,
    wholly or in part, to a connection of an asyncio cluster client."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


_SENDING: ContextVar[_Sending | None] = ContextVar("specstore_sending", default=None)
"""The :class:`_Sending` of the block running (a task made inside it, as the cluster client
makes one per node, shares it)."""

_NOT_THE_CALLS_OWN = frozenset(
    {
        b"ASKING",
        b"AUTH",
        b"CLIENT",
        b"CLUSTER",
        b"COMMAND",
        b"HELLO",
        b"PING",
        b"READONLY",
        b"READWRITE",
        b"SELECT",
    }
)
"""Commands the cluster client sends of its own (slot-map refreshes, command table,
redirections, handshakes): sending one of them sends nothing of the store's call."""


def _command_name(chunk: bytes | bytearray | memoryview) -> bytes:
    """The name of the first command packed in ``chunk`` (``*N\\r\\n$L\\r\\nNAME\\r\\n...``),
    upper case; b"" when it cannot tell (taken as the call's own)."""
    parts = bytes(chunk[:64]).split(b"\r\n", 3)
    return parts[2].upper() if len(parts) > 3 else b""


class _CheckedNodeConnection(AsyncConnection):
    """A connection of an asyncio cluster client that is checked before each command, as
    redis.asyncio's ``ConnectionPool.ensure_connection`` checks the connections it hands out
    (``ClusterNode`` checks nothing): one the server or the network closed while it was idle,
    or with data nobody asked for, is reconnected *before* the command is sent. A failure of
    the check, the connect or the handshake says it happened before sending, and writing the
    command of the store's own call marks that call as sent (see :func:`backend_errors`)."""

    _connecting = False

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self.is_connected:
            return
        self._connecting = True
        try:
            await super().connect_check_health(check_health, retry_socket_connect)
        except redis.RedisError as exc:
            if _before_send(exc):
                raise
            raise _HandshakeError(f"handshake failed while connecting to redis: {exc}") from exc
        finally:
            self._connecting = False

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if self._connecting:  # (the handshake's own commands)
            await super().send_packed_command(command, check_health)
            return
        chunks: list[bytes]
        if isinstance(command, str):
            chunks = [command.encode()]
        elif isinstance(command, bytes):
            chunks = [command]
        else:
            chunks = list(command)
        try:
            if self.is_connected and await self._stale():
                await self.disconnect(nowait=True)
            if not self.is_connected:
                await self.connect()  # type: ignore[no-untyped-call]
        except redis.RedisError as exc:
            if _before_send(exc):
                raise
            raise _NotSentError(f"checking an idle connection failed: {exc}") from exc
        sending = _SENDING.get()
        if sending is not None and chunks and _command_name(chunks[0]) not in _NOT_THE_CALLS_OWN:
            sending.sent = True  # (before writing: a failed write may have sent a part)
        await super().send_packed_command(chunks, check_health)

    async def _stale(self) -> bool:
        try:
            if await self.can_read():
                return True
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return True
        return closed_or_out_of_step(self)


class _CheckedNodeSSLConnection(_CheckedNodeConnection, AsyncSSLConnection):
    """:class:`_CheckedNodeConnection` over TLS."""


_CHECKED_NODE_CONNECTIONS: dict[type[Any], type[Any]] = {
    AsyncConnection: _CheckedNodeConnection,
    AsyncSSLConnection: _CheckedNodeSSLConnection,
}


class _AsyncCluster(AsyncRedisCluster):
    """An asyncio cluster client whose node connections are :class:`_CheckedNodeConnection`
    (it takes no ``connection_class``: it is set on its connection options, from which it
    makes every node, and on the startup nodes made already)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        checked = _CHECKED_NODE_CONNECTIONS.get(self.connection_kwargs["connection_class"])
        if checked is not None:
            self.connection_kwargs["connection_class"] = checked
            for node in self.nodes_manager.startup_nodes.values():
                node.connection_class = checked


def closed_or_out_of_step(connection: Any) -> bool:
    """True when an idle ``redis.asyncio`` connection was closed by the server or has data
    waiting, whether or not the event loop has seen it yet."""
    reader = connection._reader
    writer = connection._writer
    if reader is None or writer is None or reader.at_eof():
        return True
    sock = writer.get_extra_info("socket")
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class PartlySent(redis.RedisError):
    """A call made of several requests (one pipeline per cluster node) failed after an earlier
    request of it was answered: whatever the failure, the call may have written."""


class _Cluster(RedisCluster):
    """A blocking cluster client whose connection handshakes fail as :func:`_handshake` makes
    them fail: RedisCluster runs the handshake in its own ``on_connect`` (a
    ``redis_connect_func`` given to it only runs after that)."""

    def on_connect(self, connection: Any) -> None:
        try:
            super().on_connect(connection)  # type: ignore[no-untyped-call]
        except redis.RedisError as exc:
            raise _HandshakeError(f"handshake failed while connecting to redis: {exc}") from exc


def _before_send(exc: redis.RedisError) -> bool:
    """True when redis-py failed while connecting, i.e. before any command was sent.

    Covers a refused or timed-out connect (``ConnectionError``/``TimeoutError`` "... connecting
    to ..."), a failed handshake on a new connection, and a pool that had no connection to
    give (``MaxConnectionsError``).
    """
    if isinstance(exc, (_HandshakeError, _NotSentError, redis.exceptions.MaxConnectionsError)):
        return True
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) and (
        "connecting to" in str(exc)
    )


class _BackendErrors:
    """:func:`backend_errors` (a class: every Redis call goes through one, and a generator-based
    context manager costs each of them about 1 us)."""

    __slots__ = ("operation", "reply_errors", "sending", "token", "writes")

    def __init__(
        self, operation: str, writes: bool, reply_errors: bool, tracks_sending: bool
    ) -> None:
        self.operation, self.writes, self.reply_errors = operation, writes, reply_errors
        self.sending = _Sending() if tracks_sending else None

    def __enter__(self) -> None:
        if self.sending is not None:
            self.token = _SENDING.set(self.sending)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        sent = False
        if self.sending is not None:
            _SENDING.reset(self.token)
            sent = self.sending.sent
        if isinstance(exc, redis.RedisError):
            if self.reply_errors and isinstance(exc, redis.ResponseError):
                return
            # (with sends tracked, a failure that looks as if it came before sending -- a slot
            # map refresh failing to connect after the command was sent -- says nothing)
            may_have_written = self.writes and (sent or not _before_send(exc))
            raise BackendError(self.operation, exc, may_have_written=may_have_written) from exc
        if isinstance(exc, RedisClusterException):  # (no RedisError)
            # A cluster client that reached no node to refresh its slot map. The blocking client
            # refreshes right after a command failed, inside its handler: that failure is the
            # context and says whether anything was sent. Otherwise the client was routing a
            # command it had not sent yet (the asyncio client refreshes before sending), unless
            # the tracked sends say otherwise.
            failed = exc.__context__
            sent = sent or (isinstance(failed, redis.RedisError) and not _before_send(failed))
            raise BackendError(self.operation, exc, may_have_written=self.writes and sent) from exc
        # (nothing went wrong, or not in redis-py: it goes on as it is)


def backend_errors(
    operation: str, *, writes: bool, reply_errors: bool = False, tracks_sending: bool = False
) -> _BackendErrors:
    """Turn redis-py failures inside the block into :class:`BackendError`; with
    ``reply_errors`` an error reply of Redis (``ResponseError``) passes as it is.

    With ``tracks_sending`` (calls of an asyncio cluster client made by
    :func:`connect_async`) the block also notes whether its command was written to a node
    (its connections mark it): then the call may have written, whatever the failure says.
    Only a call that sent nothing and failed before sending says nothing was written."""
    return _BackendErrors(operation, writes, reply_errors, tracks_sending)


def is_wrong_type(exc: BaseException) -> bool:
    """True for Redis's WRONGTYPE reply: the key holds a value of another type."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("WRONGTYPE")


def read_hashes(
    client: RedisClient, keys: Sequence[str], held: SpareConnections | None = None
) -> list[dict[bytes, bytes] | None]:
    """HGETALL of every key in one pipeline; None where a key holds something other than a hash
    (written by someone else). Any other failure raises. Call inside :func:`backend_errors`.
    With ``held`` the pipeline goes over one of its spare connections to the same server."""
    if not keys:
        return []
    replies: list[Any]
    if held is not None:
        replies = held.pipeline([("HGETALL", key) for key in keys])
    else:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        replies = pipe.execute(raise_on_error=False)
    return hash_replies(replies)


def hash_replies(replies: list[Any]) -> list[dict[bytes, bytes] | None]:
    """HGETALL replies as dicts, None where the key held another type; any other error
    raises."""
    for reply in replies:
        if isinstance(reply, Exception) and not is_wrong_type(reply):
            raise reply
    return [None if isinstance(reply, Exception) else as_dict(reply) for reply in replies]


class SpareConnections(Protocol):
    """What the blocking calls take of :class:`specstore.drivers.held.HeldConnections`."""

    def execute(self, *args: Any) -> Any: ...

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]: ...


def as_dict(reply: Any) -> Any:
    """An HGETALL reply as redis-py's callback gives it: RESP2's flat list as a dict."""
    if isinstance(reply, list):
        pairs = iter(reply)
        return dict(zip(pairs, pairs, strict=True))
    return reply
