"""The child process of figure 10 (:mod:`benchmarks.instructions`): one op, ``n`` calls.

    python -m benchmarks.instructions_child <op> <n> <port>

Connects to the redis-server on 127.0.0.1:<port> and sets up: a store under a key prefix of
its own (:class:`~specstore.store.SpecStore`, or :class:`~specstore.aio.AsyncSpecStore` on
``redis.asyncio`` for the ``a`` ops; keys an earlier run left under it are deleted first),
the typical spec created in it and read back, and the same spec as a hand-rolled JSON STRING
key, set and read back. Then 3 warm-up calls of the op, then ``n`` calls (awaited one at a
time in one event loop for the async ops). With ``n=0`` it does everything but the measured
calls: the parent runs it under callgrind both ways and divides the difference by ``n``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis
import redis.asyncio

from benchmarks.latency import JSON_EXCLUDE
from specstore.aio import AsyncSpecStore
from specstore.context import RequestContext
from specstore.core.keys import Keyspace
from specstore.model import RequestSpec
from specstore.samples import typical_spec
from specstore.store import SpecStore

SYNC_OPS = ("get", "hand_get", "save", "hand_save")
ASYNC_OPS = ("aget", "hand_aget", "asave", "hand_asave")
OPS = SYNC_OPS + ASYNC_OPS
WARMUP = 3
UID = uuid.UUID("7c1e4a2b-5d3f-4e6a-9b8c-0d2f4a6b8c1e")


def _prefix(op: str, n: int) -> str:
    """The run's own keys (n zero-padded: every run's keys are as long as every other's)."""
    return f"instr-{op}-{n:07d}"


def _decoded(raw: bytes | str | None) -> RequestSpec:
    if raw is None:
        raise RuntimeError("hand-rolled get: key vanished")
    return RequestSpec.model_validate_json(raw)


def _run_sync(op: str, n: int, port: int) -> object:
    client = redis.Redis(port=port)
    prefix = _prefix(op, n)
    store = SpecStore(client, keyspace=Keyspace(prefix))
    try:
        for stale in client.scan_iter(f"{prefix}:*"):  # a run before on this server
            client.delete(stale)
        ctx, spec, uid = RequestContext(store=store), typical_spec(UID), str(UID)
        store.create(ctx, spec)
        store.get(ctx, uid)
        key = f"{prefix}:json:spec:{{{uid}}}"
        client.set(key, spec.model_dump_json(exclude=JSON_EXCLUDE))
        _decoded(client.get(key))
        calls: dict[str, Callable[[], object]] = {
            "get": lambda: store.get(ctx, uid),
            "hand_get": lambda: _decoded(client.get(key)),
            "save": lambda: store.save(ctx, spec),
            "hand_save": lambda: client.set(key, spec.model_dump_json(exclude=JSON_EXCLUDE)),
        }
        call, result = calls[op], None
        for _ in range(WARMUP + n):
            result = call()
        return result
    finally:
        store.close()


async def _run_async(op: str, n: int, port: int) -> object:
    client = redis.asyncio.Redis(port=port)
    prefix = _prefix(op, n)
    store = AsyncSpecStore(client, keyspace=Keyspace(prefix))
    try:
        async for stale in client.scan_iter(f"{prefix}:*"):  # a run before on this server
            await client.delete(stale)
        ctx, spec, uid = RequestContext(store=store), typical_spec(UID), str(UID)
        await store.create(ctx, spec)
        await store.get(ctx, uid)
        key = f"{prefix}:json:spec:{{{uid}}}"
        await client.set(key, spec.model_dump_json(exclude=JSON_EXCLUDE))
        _decoded(await client.get(key))

        async def hand_aget() -> RequestSpec:
            return _decoded(await client.get(key))

        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "aget": lambda: store.get(ctx, uid),
            "hand_aget": hand_aget,
            "asave": lambda: store.save(ctx, spec),
            "hand_asave": lambda: client.set(key, spec.model_dump_json(exclude=JSON_EXCLUDE)),
        }
        call, result = calls[op], None
        for _ in range(WARMUP + n):
            result = await call()
        return result
    finally:
        await store.aclose()


def run(op: str, n: int, port: int) -> object:
    """Set up, then ``3 + n`` calls of ``op``; the last call's result."""
    if op in SYNC_OPS:
        return _run_sync(op, n, port)
    if op in ASYNC_OPS:
        return asyncio.run(_run_async(op, n, port))
    raise ValueError(f"unknown op {op!r}: choose among {', '.join(OPS)}")


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3 or argv[0] not in OPS or not (argv[1].isdigit() and argv[2].isdigit()):
        print(f"usage: python -m benchmarks.instructions_child {{{','.join(OPS)}}} <n> <port>",
              file=sys.stderr)
        return 2
    run(argv[0], int(argv[1]), int(argv[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
