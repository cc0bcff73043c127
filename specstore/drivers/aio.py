"""Run the store's logic with ``redis.asyncio`` clients (a server or a Redis Cluster)."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Sequence
from typing import Any, TypeVar, cast

import redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterError, NoScriptError, TryAgainError

from specstore.connection import AsyncRedisClient, PartlySent, backend_errors, hash_replies
from specstore.core import lua
from specstore.core.calls import (
    Command,
    Commands,
    Hashes,
    Request,
    ScanPage,
    Script,
    Scripts,
    Steps,
)
from specstore.core.scan import ScanPosition, position_after
from specstore.drivers.aio_connections import DirectConnections, direct_connections
from specstore.drivers.replies import throw_reply_error
from specstore.topology import AsyncBackend

T = TypeVar("T")


async def run(steps: Steps[T]) -> T:
    """Drive ``steps`` to its result, awaiting each call it yields (see
    :func:`specstore.drivers.sync.run`: the same contract)."""
    try:
        request = next(steps)
        while True:
            try:
                reply = await execute(request)
            except redis.ResponseError as exc:
                request = throw_reply_error(steps, request, exc)
            except BaseException as exc:  # (its spans and blocks unwind)
                request = steps.throw(exc)
            else:
                request = steps.send(reply)
    except StopIteration as stop:
        return cast(T, stop.value)


async def execute(request: Request) -> Any:
    """One call's reply; redis-py failures become BackendError (reply errors stay as they
    are, for the logic to read). On a cluster client the call's sends are tracked: once its
    command was written, a failure says it may have written whatever it looks like."""
    backend = cast(AsyncBackend, request.backend)
    tracks = isinstance(backend.client, RedisCluster)
    if isinstance(request, Command):
        with backend_errors(
            request.label, writes=request.writes, reply_errors=True, tracks_sending=tracks
        ):
            return await _one(backend, request.args)
    if isinstance(request, Script):
        with backend_errors(
            request.label, writes=request.writes, reply_errors=True, tracks_sending=tracks
        ):
            return await _script(backend, (request.script, request.keys, request.args))
    if isinstance(request, Scripts):
        with backend_errors(request.label, writes=True, reply_errors=True, tracks_sending=tracks):
            return await _scripts(backend, request.calls)
    if isinstance(request, Hashes):
        with backend_errors(request.label, writes=False, reply_errors=True):
            return hash_replies(await _many(backend, [("HGETALL", k) for k in request.keys]))
    if isinstance(request, Commands):
        with backend_errors(
            request.label, writes=request.writes, reply_errors=True, tracks_sending=tracks
        ):
            return await _many(backend, request.commands)
    with backend_errors(f"scan {request.pattern}", writes=False, reply_errors=True):
        return await _scan(backend.client, request)


async def _script(backend: AsyncBackend, call: lua.Call) -> Any:
    """EVALSHA, loading the script on NOSCRIPT (it did not run: calling again is safe)."""
    try:
        return await _one(backend, lua.evalsha(call))
    except NoScriptError:
        await _load(backend, call[0])
        return await _one(backend, lua.evalsha(call))


async def _scripts(backend: AsyncBackend, calls: Sequence[lua.Call]) -> list[Any]:
    """Script calls in one pipeline (on a cluster: one by one, see :func:`_many`);
    NOSCRIPT ones again after loading their scripts."""
    replies = await _many(backend, [lua.evalsha(call) for call in calls])
    missing = lua.not_loaded(replies)
    if missing:
        for script in {calls[i][0] for i in missing}:
            await _load(backend, script)
        again = await _many(backend, [lua.evalsha(calls[i]) for i in missing])
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


async def _load(backend: AsyncBackend, script: lua.LuaScript) -> None:
    direct = _direct(backend)
    if direct is not None:
        await direct.execute("SCRIPT", "LOAD", script.source)
    else:  # (a cluster client loads it on every master)
        await backend.client.script_load(script.source)


async def _one(backend: AsyncBackend, command: tuple[Any, ...]) -> Any:
    direct = _direct(backend)
    if direct is not None:
        return await direct.execute(*command)
    return await backend.client.execute_command(*command)


async def _many(backend: AsyncBackend, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Replies of ``commands`` in order, each error reply in its place."""
    if not commands:
        return []
    direct = _direct(backend)
    if direct is not None:
        return await direct.pipeline(commands)
    client = backend.client
    if isinstance(client, RedisCluster):
        # redis.asyncio's cluster pipeline: one pipeline per node, MOVED/ASK followed
        nodes = client.pipeline()
        for command in commands:
            nodes.execute_command(*command)
        try:
            replies = list(await nodes.execute(raise_on_error=False))
        except redis.RedisError as exc:
            # its pipelines to the masters run side by side: with several, one failing says
            # nothing of the others, which may have run
            if _masters_of(client, commands) > 1:
                raise PartlySent(f"a pipeline to one of several masters failed: {exc}") from exc
            raise
        for index, reply in enumerate(replies):
            if isinstance(reply, (TryAgainError, ClusterError)):  # did not run: again
                replies[index] = await _waiting_out_migration(client, commands[index])
        return replies
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute(raise_on_error=False))


def _masters_of(client: RedisCluster, commands: Sequence[tuple[Any, ...]]) -> int:
    """How many masters ``commands`` go to, by the client's slot map (as many as there are
    commands when it cannot tell)."""
    names: set[str] = set()
    for command in commands:
        key = command[3] if command[0] == "EVALSHA" else command[1]
        try:
            node = client.get_node_from_key(key)
        except Exception:
            node = None
        if node is None:
            return len(commands)
        names.add(node.name)
    return len(names)


async def _waiting_out_migration(client: RedisCluster, command: tuple[Any, ...]) -> Any:
    """One call of a cluster batch: its reply, or its error reply in its place. redis-py
    follows MOVED/ASK and retries TRYAGAIN a few times; while the slot stays half migrated
    ("TTL exhausted") the call is sent again until ``REDIRECT_WAIT_SECONDS`` passed, as the
    blocking driver does (each of those refusals means the call did not run)."""
    deadline = time.monotonic() + lua.REDIRECT_WAIT_SECONDS
    while True:
        try:
            return await client.execute_command(*command)
        except (TryAgainError, ClusterError) as exc:
            if time.monotonic() >= deadline:
                return exc
            await asyncio.sleep(0.05)
        except redis.ResponseError as exc:
            return exc


async def _scan(
    client: AsyncRedisClient, request: ScanPage
) -> tuple[list[bytes], ScanPosition | None]:
    index, cursor = request.position.node, request.position.cursor
    arguments = ("SCAN", cursor, "MATCH", request.pattern, "COUNT", request.count)
    if isinstance(client, RedisCluster):
        # redis.asyncio's cluster client learns its nodes on its first command: until then
        # it has no primaries (a fresh store's resume_moves would index an empty list)
        await client.initialize()
        nodes = sorted(client.get_primaries(), key=lambda n: n.name)
        reply = await client.execute_command(*arguments, target_nodes=nodes[index])
        count = len(nodes)
    else:
        reply = await client.execute_command(*arguments)  # type: ignore[no-untyped-call]
        count = 1
    next_cursor, keys = _scan_reply(reply)
    return keys, position_after(index, next_cursor, count)


def _scan_reply(reply: Any) -> tuple[int, list[bytes]]:
    """A SCAN reply as (cursor, keys), whichever shape redis-py's callback gave it (the
    asyncio cluster client gives ``({node: cursor}, keys)`` for one target node)."""
    if isinstance(reply, dict):  # by node
        (reply,) = reply.values()
    cursor, keys = reply
    if isinstance(cursor, dict):
        (cursor,) = cursor.values()
    return int(cursor), list(keys)


_DIRECT: weakref.WeakKeyDictionary[AsyncBackend, DirectConnections | None] = (
    weakref.WeakKeyDictionary()
)


def _direct(backend: AsyncBackend) -> DirectConnections | None:
    """The backend's spare connections (made on first use; None where its client keeps
    redis-py's own path, see :mod:`specstore.drivers.aio_connections`)."""
    try:
        return _DIRECT[backend]
    except KeyError:
        direct = _DIRECT[backend] = direct_connections(backend.client)
        return direct
