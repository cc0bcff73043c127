"""Run Lua scripts with redis-py's blocking clients: EVALSHA, NOSCRIPT, pipelines, and a
Redis Cluster's redirections while a slot moves."""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterError, NoScriptError, ResponseError, TryAgainError

from specstore.connection import PartlySent, RedisClient, SpareConnections
from specstore.core import lua
from specstore.core.lua import Call, LuaScript, as_noscript, evalsha, is_redirection, not_loaded


def run_script(
    client: RedisClient,
    script: LuaScript,
    keys: list[str],
    args: list[Any],
    *,
    held: SpareConnections | None = None,
) -> Any:
    """EVALSHA; on NOSCRIPT (first use, or the server restarted) load the script and call again.

    Re-running is safe: NOSCRIPT means the script did not run at all. With ``held`` the call
    goes over one of its spare connections to the same server.
    """
    execute = client.execute_command if held is None else held.execute
    try:
        return execute("EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(script.source)
        return execute("EVALSHA", script.sha, len(keys), *keys, *args)


def run_scripts_pipelined(
    client: RedisClient, calls: list[Call], *, held: SpareConnections | None = None
) -> list[Any]:
    """Run many script calls in one pipeline; replies (or ResponseErrors) in call order.

    Calls that failed with NOSCRIPT did not run; they are re-run in a second pipeline after
    loading their scripts, which only happens on the first batch after a server restart.
    With ``held`` the pipeline goes over one of its spare connections to the same server.
    """
    replies = _pipeline(client, calls, held)
    missing = not_loaded(replies)
    if missing:
        for script in {calls[i][0] for i in missing}:
            client.script_load(script.source)
        again = _pipeline(client, [calls[i] for i in missing], held)
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


def _pipeline(client: RedisClient, calls: list[Call], held: SpareConnections | None) -> list[Any]:
    if isinstance(client, RedisCluster):
        return _cluster_pipelines(client, calls)
    if held is not None:
        return held.pipeline([evalsha(call) for call in calls])
    return _node_pipeline(client, calls)


def _node_pipeline(client: redis.Redis, calls: list[Call]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    return [as_noscript(r) for r in replies]


def _cluster_pipelines(client: RedisCluster, calls: list[Call]) -> list[Any]:
    """One pipeline per master (redis-py's cluster pipeline refuses EVALSHA).

    A call answered MOVED, ASK (its slot is moving or moved during resharding) or TRYAGAIN
    (a multi-key call while its slot is half migrated) did not run; it is re-sent on its own
    through the cluster client, which follows the redirection and updates its slot map.

    When a master fails after another master's pipeline was answered, the failure is raised as
    :class:`~specstore.connection.PartlySent`: the batch may have written, even when that
    master's own failure happened before anything was sent to it.
    """
    by_node: dict[str, list[int]] = {}
    nodes: dict[str, Any] = {}
    for index, (_, keys, _) in enumerate(calls):
        node = client.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
        by_node.setdefault(node.name, []).append(index)
        nodes[node.name] = node
    replies: list[Any] = [None] * len(calls)
    answered = 0
    try:
        for name, indexes in by_node.items():
            node_client = client.get_redis_connection(nodes[name])
            for index, reply in zip(
                indexes, _node_pipeline(node_client, [calls[i] for i in indexes]), strict=True
            ):
                replies[index] = reply
            answered += 1
        for index, reply in enumerate(replies):
            if is_redirection(reply):
                replies[index] = _resend(client, calls[index])
    except redis.RedisError as exc:
        if answered and not isinstance(exc, ResponseError):  # (another master's pipeline ran)
            raise PartlySent(f"after {answered} of {len(by_node)} masters answered: {exc}") from exc
        raise
    return replies


def _resend(client: RedisCluster, call: Call) -> Any:
    """Run one redirected call through the cluster client; its reply or its ResponseError.

    redis-py follows MOVED/ASK and retries TRYAGAIN a few times; when the slot is still half
    migrated after that ("TTL exhausted"), keep trying until ``REDIRECT_WAIT_SECONDS`` passed.
    Every one of those refusals means the call did not run, so re-sending is safe.
    """
    script, keys, args = call
    deadline = time.monotonic() + lua.REDIRECT_WAIT_SECONDS
    while True:
        try:
            return run_script(client, script, keys, args)
        except (TryAgainError, ClusterError) as exc:
            if time.monotonic() >= deadline:
                return exc
            time.sleep(0.05)
        except ResponseError as exc:
            return exc
