"""Figure 9: single-spec save / get latency of the asyncio store against asyncio baselines.

The asyncio twin of figures 1 and 2 (:mod:`benchmarks.latency`): every op runs in one event
loop on the same ``redis.asyncio`` client (same pool, same parser), and the ops are
interleaved run by run the way :func:`benchmarks.harness.measure_latencies` interleaves the
sync ones, so the ratios show what :class:`~specstore.aio.AsyncSpecStore` adds.

* specstore: ``await store.save(ctx, spec)`` (no rev: last-writer-wins, save.lua) and
  ``await store.get(ctx, uuid)``.
* raw: ``redis.asyncio`` HSET of the fields :func:`benchmarks.latency.raw_fields` gives (the
  document bytes specstore stores, encoded beforehand); HGETALL of such a hash, nothing
  decoded. Ratios against raw are information (no target).
* hand-rolled: ``model_dump_json`` (transient fields excluded) + SET; GET +
  ``model_validate_json``, both on ``redis.asyncio``. Target: the store is faster at p50.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio

from benchmarks.harness import Latency, Row, Target, latencies_of, record_run, rotated
from benchmarks.latency import HAND_TARGET, JSON_EXCLUDE, HashFields, raw_fields
from benchmarks.workload import Counts, chunks, keyspace, spec_copies
from specstore.aio import AsyncSpecStore
from specstore.connection import connect_async
from specstore.context import RequestContext
from specstore.model import RequestSpec

AsyncOp = Callable[[int], Awaitable[object]]
"""One measured coroutine call; receives the index of the call (to pick a key, a spec, ...)."""

FIGURE = 9


async def measure_async_latencies(
    ops: dict[str, AsyncOp], *, samples: int, runs: int, warmup: int
) -> dict[str, Latency]:
    """:func:`benchmarks.harness.measure_latencies` for coroutine ops: each call is awaited
    on its own (nothing else runs in the loop meanwhile), the ops interleaved run by run
    (A B C, then B C A, ...), medians over the runs of each run's p50 and p99."""
    names = list(ops)
    counters = dict.fromkeys(names, 0)
    for name in names:
        op = ops[name]
        for _ in range(warmup):
            await op(counters[name])
            counters[name] += 1
    per_run: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for run in range(runs):
        for name in rotated(names, run):
            op, start = ops[name], counters[name]
            timings = [0.0] * samples
            gc.collect()
            for i in range(samples):
                t0 = clock()
                await op(start + i)
                timings[i] = (clock() - t0) / 1000.0
            counters[name] = start + samples
            record_run(per_run[name], timings)
    return latencies_of(per_run, samples, runs)


async def _create_all(
    store: AsyncSpecStore, ctx: RequestContext, specs: Sequence[RequestSpec], batch: int = 1_000
) -> None:
    for chunk in chunks(specs, batch):
        result = await store.create_many(ctx, chunk)
        if len(result.created) != len(chunk):
            raise RuntimeError(f"setup: {len(result.existing)} specs already existed")


async def _hset_all(
    client: redis.asyncio.Redis, keys: Sequence[str], fields: Sequence[HashFields]
) -> None:
    pipe = client.pipeline(transaction=False)
    for key, mapping in zip(keys, fields, strict=True):
        pipe.hset(key, mapping=mapping)
    await pipe.execute()


async def _set_all(client: redis.asyncio.Redis, keys: Sequence[str], values: Sequence[str]) -> None:
    pipe = client.pipeline(transaction=False)
    for key, value in zip(keys, values, strict=True):
        pipe.set(key, value)
    await pipe.execute()


async def async_ops(
    store: AsyncSpecStore, client: redis.asyncio.Redis, prefix: str, pool_size: int
) -> dict[str, AsyncOp]:
    """Store, raw and hand-rolled save/get coroutines, each over its own pool of stored
    specs."""
    ctx = RequestContext(store=store)
    pool = spec_copies(pool_size)
    await _create_all(store, ctx, pool)
    uids = [str(spec.instance_uuid) for spec in pool]
    raw_keys = [f"{prefix}:aio-raw:spec:{{{uid}}}" for uid in uids]
    fields = [raw_fields(spec) for spec in pool]
    hand = spec_copies(pool_size)
    json_keys = [f"{prefix}:aio-json:spec:{{{s.instance_uuid}}}" for s in hand]
    for start in range(0, pool_size, 500):
        end = start + 500
        await _hset_all(client, raw_keys[start:end], fields[start:end])
        await _set_all(
            client,
            json_keys[start:end],
            [s.model_dump_json(exclude=JSON_EXCLUDE) for s in hand[start:end]],
        )
    n = pool_size

    async def ss_save(i: int) -> object:
        return await store.save(ctx, pool[i % n])

    async def raw_save(i: int) -> object:
        return await client.hset(raw_keys[i % n], mapping=fields[i % n])

    async def json_save(i: int) -> object:
        return await client.set(json_keys[i % n], hand[i % n].model_dump_json(exclude=JSON_EXCLUDE))

    async def ss_get(i: int) -> object:
        return await store.get(ctx, uids[i % n])

    async def raw_get(i: int) -> object:
        return await client.hgetall(raw_keys[i % n])

    async def json_get(i: int) -> object:
        raw = await client.get(json_keys[i % n])
        if raw is None:
            raise RuntimeError("hand-rolled async get: key vanished")
        return RequestSpec.model_validate_json(raw)

    return {
        "ss_save": ss_save,
        "raw_save": raw_save,
        "json_save": json_save,
        "ss_get": ss_get,
        "raw_get": raw_get,
        "json_get": json_get,
    }


async def _measure(url: str, prefix: str, counts: Counts) -> dict[str, Latency]:
    client = connect_async(url)
    if not isinstance(client, redis.asyncio.Redis):
        await client.aclose()
        raise SystemExit("figure 9 needs a single server (redis://, unix://)")
    store = AsyncSpecStore(client, keyspace=keyspace(prefix, "aio"))
    try:
        ops = await async_ops(store, client, prefix, counts.key_pool)
        return await measure_async_latencies(
            ops,
            samples=counts.latency_samples,
            runs=counts.latency_runs,
            warmup=counts.latency_warmup,
        )
    finally:
        await store.aclose()


def figure_9(url: str, prefix: str, counts: Counts) -> list[Row]:
    """Async save/get latencies: AsyncSpecStore vs raw redis.asyncio and vs pydantic JSON."""
    results = asyncio.run(_measure(url, prefix, counts))
    sampling = (
        f"{counts.latency_runs} runs x {counts.latency_samples} awaited calls after "
        f"{counts.latency_warmup} warm-up calls, per op, the six ops interleaved run "
        "by run in one event loop on one redis.asyncio client; median of the runs' "
        "p50/p99"
    )
    comparisons: list[tuple[str, str, str, str, Target | None, str]] = [
        (
            "async save latency",
            "ss_save",
            "raw_save",
            "redis.asyncio HSET, same doc bytes",
            None,
            f"Figure 9: {sampling}. save = await AsyncSpecStore.save without rev "
            "(save.lua); the raw HSET writes the same six fields with the document encoded "
            "beforehand; get = await AsyncSpecStore.get (HGETALL + decode + validate). Ratios vs "
            "raw are information (no target).",
        ),
        ("async get latency", "ss_get", "raw_get", "redis.asyncio HGETALL, no decode", None, ""),
        (
            "async save latency",
            "ss_save",
            "json_save",
            "model_dump_json + SET, asyncio",
            HAND_TARGET,
            "Figure 9 hand-rolled: one STRING key per spec holding "
            "model_dump_json(exclude=transient fields), SET / GET + model_validate_json on the "
            "same redis.asyncio client.",
        ),
        (
            "async get latency",
            "ss_get",
            "json_get",
            "GET + model_validate_json, asyncio",
            HAND_TARGET,
            "",
        ),
    ]
    rows: list[Row] = []
    for label, ours, theirs, baseline, target, note in comparisons:
        suffix = " vs hand-rolled" if theirs.startswith("json") else ""
        for pct in ("p50", "p99"):
            rows.append(
                Row(
                    FIGURE,
                    f"{label} {pct}{suffix}",
                    "us",
                    getattr(results[ours], pct),
                    getattr(results[theirs], pct),
                    baseline,
                    target if pct == "p50" else None,
                    note=note if pct == "p50" else "",
                )
            )
    return rows
