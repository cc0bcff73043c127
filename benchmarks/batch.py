"""Figure 3: batch save / get throughput with pipelining, against raw pipelined redis-py.

* batch save: ``store.create_many`` -- one pipeline of create.lua calls per batch
  (``specstore.core.lua_sync.run_scripts_pipelined`` with the arguments ``SpecStore.create`` builds,
  documents encoded inside the timed region); raw: pipelined HSET of the same fields with
  the documents encoded beforehand.
* batch get: ``store.get_many`` (pipelined HGETALL, every document decoded and validated);
  raw: pipelined HGETALL of the same hashes, nothing decoded.
* hand-rolled (both): ``model_dump_json`` (transient fields excluded) + pipelined SET, and
  pipelined GET + ``model_validate_json``, in pipelines of the same size.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

import redis

from benchmarks.harness import Row, Target, Work, measure_throughputs
from benchmarks.latency import JSON_EXCLUDE, create_all, raw_fields
from benchmarks.workload import Counts, chunks, delete_keys, keyspace, spec_copies
from specstore.context import RequestContext
from specstore.core.keys import API
from specstore.model import RequestSpec
from specstore.store import SpecStore

SAVE_TARGET = Target("value", ">=", 40_000, "specs/s")
GET_TARGET = Target("value", ">=", 60_000, "specs/s")
HAND_TARGET = Target("ratio", ">=", 1.0)
"""Faster than the hand-rolled pipelined pattern."""


def hand_rolled_create(client: redis.Redis, keys: Sequence[str], specs: Sequence[RequestSpec],
                       size: int) -> int:
    """The hand-rolled batch save: ``model_dump_json`` + SET of each spec to its key,
    ``size`` SETs a pipeline; how many were written."""
    for start in range(0, len(keys), size):
        pipe = client.pipeline(transaction=False)
        for key, spec in zip(keys[start:start + size], specs[start:start + size], strict=True):
            pipe.set(key, spec.model_dump_json(exclude=JSON_EXCLUDE))
        pipe.execute()
    return len(keys)


def figure_3(client: redis.Redis, prefix: str, counts: Counts) -> list[Row]:
    keys = keyspace(prefix, "batch")
    store = SpecStore(client, keyspace=keys)
    ctx = RequestContext(store=store)
    specs = spec_copies(counts.batch_total)
    uids = [str(s.instance_uuid) for s in specs]
    ss_keys = [keys.spec_key(API, u) for u in uids] + [keys.location_key(u) for u in uids]
    raw_keys = [f"{prefix}:rawbatch:spec:{{{u}}}" for u in uids]
    fields = raw_fields(specs[0])
    size = counts.batch_size

    def ss_save(_run: int) -> int:
        created = 0
        for chunk in chunks(specs, size):
            created += len(store.create_many(ctx, chunk).created)
        if created != len(specs):
            raise RuntimeError(f"batch save created {created} of {len(specs)} specs")
        return created

    def raw_save(_run: int) -> int:
        for start in range(0, len(raw_keys), size):
            pipe = client.pipeline(transaction=False)
            for key in raw_keys[start:start + size]:
                pipe.hset(key, mapping=fields)
            pipe.execute()
        return len(raw_keys)

    json_keys = [f"{prefix}:jsonbatch:spec:{{{u}}}" for u in uids]

    def json_save(_run: int) -> int:
        return hand_rolled_create(client, json_keys, specs, size)

    saves = measure_throughputs({
        "ss": Work(ss_save, teardown=lambda _run: delete_keys(client, ss_keys)),
        "raw": Work(raw_save, teardown=lambda _run: delete_keys(client, raw_keys)),
        "json": Work(json_save, teardown=lambda _run: delete_keys(client, json_keys)),
    }, runs=counts.batch_runs)

    create_all(store, ctx, specs, size)
    raw_save(0)
    json_save(0)
    # Reads should not pay for the benchmark's own heap: drop the 20,000 input specs, which
    # would otherwise make every full garbage collection during get_many walk them.
    specs.clear()
    gc.collect()

    def ss_get(_run: int) -> int:
        found = 0
        for start in range(0, len(uids), size):
            result = store.get_many(ctx, uids[start:start + size])
            found += len(result.found)
        if found != len(uids):
            raise RuntimeError(f"batch get found {found} of {len(uids)} specs")
        return found

    def raw_get(_run: int) -> int:
        found = 0
        for start in range(0, len(raw_keys), size):
            pipe = client.pipeline(transaction=False)
            for key in raw_keys[start:start + size]:
                pipe.hgetall(key)
            found += sum(1 for reply in pipe.execute() if reply)
        return found

    def json_get(_run: int) -> int:
        found = 0
        for start in range(0, len(json_keys), size):
            pipe = client.pipeline(transaction=False)
            for key in json_keys[start:start + size]:
                pipe.get(key)
            found += len([RequestSpec.model_validate_json(v) for v in pipe.execute() if v])
        return found

    gets = measure_throughputs({"ss": Work(ss_get), "raw": Work(raw_get),
                                "json": Work(json_get)}, runs=counts.batch_runs)
    delete_keys(client, ss_keys + raw_keys + json_keys)
    setting = (f"{counts.batch_runs} runs x {counts.batch_total} specs in pipelines of {size}; "
               "median of the runs")
    return [
        Row(3, "batch save throughput", "specs/s", saves["ss"].per_second,
            saves["raw"].per_second, "raw pipelined HSET", SAVE_TARGET,
            note=f"Figure 3: {setting}. Batch save = store.create_many (a pipeline of "
                 "create.lua EVALSHA calls via lua_sync.run_scripts_pipelined, the same arguments "
                 "SpecStore.create builds; it exists now, so no hand-built pipeline is needed); "
                 "it also writes the location key. Raw HSET: same fields, documents encoded "
                 "beforehand, no location key.",
            path="batch save", higher_is_better=True),
        Row(3, "batch get throughput", "specs/s", gets["ss"].per_second,
            gets["raw"].per_second, "raw pipelined HGETALL", GET_TARGET,
            note="batch get = store.get_many (every document decoded and validated); raw: "
                 "pipelined HGETALL, nothing decoded.",
            path="batch get", higher_is_better=True),
        Row(3, "batch save throughput vs hand-rolled", "specs/s", saves["ss"].per_second,
            saves["json"].per_second, "model_dump_json + pipelined SET", HAND_TARGET,
            note="Hand-rolled batch: model_dump_json(exclude=transient fields) + SET, and GET + "
                 "model_validate_json, pipelined in batches of the same size, one STRING key "
                 "per spec (no location key).", higher_is_better=True),
        Row(3, "batch get throughput vs hand-rolled", "specs/s", gets["ss"].per_second,
            gets["json"].per_second, "pipelined GET + model_validate_json", HAND_TARGET,
            higher_is_better=True),
    ]
