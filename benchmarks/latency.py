"""Figures 1, 2 and 6: single-spec save / get / promote latency against baselines.

Every op runs on the same client (same connection pool, same hiredis parser) so the ratios
show what specstore adds, not a difference between clients.

* specstore: ``store.save(ctx, spec)`` (no rev: last-writer-wins; a CAS save runs the same
  script), ``store.get(ctx, uuid)``, ``store.promote(ctx, uuid, "cell1")``.
* raw (figure 1): redis-py HSET of the same hash fields save.lua writes, with the document
  bytes specstore stores encoded beforehand; HGETALL of such a hash, nothing decoded; promote
  = RENAME + SET of the location key in one MULTI/EXEC (no checks).
* hand-rolled (figure 2): ``model_dump_json`` (transient fields excluded, as specstore does)
  + SET; GET + ``model_validate_json``; promote = WATCH + GET location + MULTI/RENAME/SET/EXEC,
  the checked move one would write without Lua (three round trips).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from uuid import uuid4

import redis
from redis.cluster import RedisCluster

from benchmarks.harness import Latency, Op, Row, Target, measure_latencies, not_run
from benchmarks.workload import Counts, chunks, keyspace, spec_copies
from specstore.connection import RedisClient
from specstore.context import RequestContext
from specstore.core.records import write_args
from specstore.model import TRANSIENT_FIELDS, TRANSIENT_GROUP_FIELDS, RequestSpec
from specstore.serializers.msgpack_codec import DEFAULT_CODEC
from specstore.store import SpecStore

SAVE_GET_TARGET = Target("ratio", "<=", 1.4)
"""Single save/get p50 within 1.4x of raw redis-py on the same bytes."""
SAVE_GET_P99_TARGET = Target("ratio", "<=", 2.0)
"""... and p99 within 2x of raw p99."""
HAND_TARGET = Target("ratio", "<", 1.0)
"""Faster than the hand-rolled pattern (pydantic JSON + SET/GET) at p50."""
CELL = "cell1"

JSON_EXCLUDE: dict[str, Any] = {
    **dict.fromkeys(TRANSIENT_FIELDS, True),
    "instance_group": dict.fromkeys(TRANSIENT_GROUP_FIELDS, True),
}
"""What a hand-rolled JSON store leaves out to persist the same fields specstore persists."""

NOW = "2026-01-01T00:00:00.000000+00:00"

HashFields = dict[Any, Any]
"""Field -> value of a spec HASH, as redis-py's HSET takes it."""


def raw_fields(spec: RequestSpec) -> HashFields:
    """The fields save.lua writes, with specstore's document bytes for ``spec``."""
    args = write_args(spec, DEFAULT_CODEC)
    return {"doc": args.doc, "rev": "1", "schema": args.schema, "project_id": args.project_id,
            "user_id": args.user_id, "updated_at": NOW}


def create_all(store: SpecStore, ctx: RequestContext, specs: Sequence[RequestSpec],
               batch: int = 1_000) -> None:
    for chunk in chunks(specs, batch):
        result = store.create_many(ctx, chunk)
        if len(result.created) != len(chunk):
            raise RuntimeError(f"setup: {len(result.existing)} specs already existed")


def _hset_all(client: RedisClient, keys: Sequence[str], fields: Sequence[HashFields],
              loc_keys: Sequence[str] | None = None) -> None:
    pipe = client.pipeline(transaction=False)
    for i, key in enumerate(keys):
        pipe.hset(key, mapping=fields[i])
        if loc_keys is not None:
            pipe.set(loc_keys[i], "api")
    pipe.execute()


def _set_all(client: RedisClient, keys: Sequence[str], values: Sequence[str],
             loc_keys: Sequence[str]) -> None:
    pipe = client.pipeline(transaction=False)
    for key, value, loc in zip(keys, values, loc_keys, strict=True):
        pipe.set(key, value)
        pipe.set(loc, "api")
    pipe.execute()


def save_get_ops(store: SpecStore, prefix: str, pool_size: int) -> dict[str, Op]:
    """specstore save/get and raw HSET/HGETALL ops over a pool of stored specs."""
    ctx = RequestContext(store=store)
    client = store.client
    pool = spec_copies(pool_size)
    create_all(store, ctx, pool)
    uids = [str(spec.instance_uuid) for spec in pool]
    raw_keys = [f"{prefix}:raw:spec:{{{uid}}}" for uid in uids]
    fields = [raw_fields(spec) for spec in pool]
    for start in range(0, pool_size, 500):
        _hset_all(client, raw_keys[start:start + 500], fields[start:start + 500])
    n = pool_size

    def ss_save(i: int) -> object:
        return store.save(ctx, pool[i % n])

    def raw_save(i: int) -> object:
        return client.hset(raw_keys[i % n], mapping=fields[i % n])

    def ss_get(i: int) -> object:
        return store.get(ctx, uids[i % n])

    def raw_get(i: int) -> object:
        return client.hgetall(raw_keys[i % n])

    return {"ss_save": ss_save, "raw_save": raw_save, "ss_get": ss_get, "raw_get": raw_get}


def server_micros(client: RedisClient, command: str, op: Op, calls: int) -> float:
    """Redis's own time per ``command`` (INFO commandstats) over ``calls`` calls of ``op``."""

    def totals() -> tuple[float, int]:
        stats: dict[str, Any] = {}
        for info in _node_infos(client):
            for key, value in info.items():
                if key == f"cmdstat_{command}":
                    stats["usec"] = stats.get("usec", 0) + value["usec"]
                    stats["calls"] = stats.get("calls", 0) + value["calls"]
        return float(stats.get("usec", 0)), int(stats.get("calls", 0))

    usec, count = totals()
    for i in range(calls):
        op(i)
    usec_after, count_after = totals()
    return (usec_after - usec) / max(1, count_after - count)


def _node_infos(client: RedisClient) -> list[dict[str, Any]]:
    """INFO commandstats of the server, or of each cluster node."""
    if isinstance(client, RedisCluster):
        per_node = client.info("commandstats", target_nodes=RedisCluster.ALL_NODES)
        return [v for v in per_node.values() if isinstance(v, dict)]
    info: dict[str, Any] = client.info("commandstats")
    return [info]


def _latency_rows(figure: int, results: dict[str, Latency], pairs: list[tuple[str, str, str]],
                  baseline_name: dict[str, str], targets: dict[str, Target],
                  notes: dict[str, str] | None = None) -> list[Row]:
    rows: list[Row] = []
    for label, ours, theirs in pairs:
        for pct in ("p50", "p99"):
            target = targets.get(label if pct == "p50" else f"{label} p99")
            note = (notes or {}).get(label, "") if pct == "p50" else ""
            rows.append(Row(figure, f"{label} latency {pct}", "us",
                            getattr(results[ours], pct), getattr(results[theirs], pct),
                            baseline_name[label], target, note=note,
                            path=f"single {label}" if pct == "p50" else None))
    return rows


def json_ops(client: redis.Redis, prefix: str, pool_size: int) -> dict[str, Op]:
    """Hand-rolled save/get: pydantic JSON in one STRING key per spec."""
    pool = spec_copies(pool_size)
    keys = [f"{prefix}:json:spec:{{{s.instance_uuid}}}" for s in pool]
    locs = [f"{prefix}:json:loc:{{{s.instance_uuid}}}" for s in pool]
    _set_all(client, keys, [s.model_dump_json(exclude=JSON_EXCLUDE) for s in pool], locs)
    n = pool_size

    def json_save(i: int) -> object:
        return client.set(keys[i % n], pool[i % n].model_dump_json(exclude=JSON_EXCLUDE))

    def json_get(i: int) -> object:
        raw = client.get(keys[i % n])
        if raw is None:
            raise RuntimeError("hand-rolled get: key vanished")
        return RequestSpec.model_validate_json(raw)

    return {"json_save": json_save, "json_get": json_get}


def promote_ops(store: SpecStore, prefix: str, stock: int) -> dict[str, Op]:
    """specstore, raw and hand-rolled promotes; each call consumes one of ``stock`` specs."""
    ctx = RequestContext(store=store)
    client = store.client
    ss_specs = spec_copies(stock)
    create_all(store, ctx, ss_specs)
    ss_uids = [str(s.instance_uuid) for s in ss_specs]

    def keys(kind: str) -> tuple[list[str], list[str], list[str]]:
        uids = [str(uuid4()) for _ in range(stock)]
        return ([f"{prefix}:{kind}:api:spec:{{{u}}}" for u in uids],
                [f"{prefix}:{kind}:cell:{CELL}:spec:{{{u}}}" for u in uids],
                [f"{prefix}:{kind}:loc:{{{u}}}" for u in uids])

    raw_api, raw_cell, raw_loc = keys("raw")
    hand_api, hand_cell, hand_loc = keys("json")
    fields = raw_fields(ss_specs[0])
    body = ss_specs[0].model_dump_json(exclude=JSON_EXCLUDE)
    for start in range(0, stock, 1_000):
        end = min(start + 1_000, stock)
        _hset_all(client, raw_api[start:end], [fields] * (end - start), raw_loc[start:end])
        _set_all(client, hand_api[start:end], [body] * (end - start), hand_loc[start:end])

    def ss_promote(i: int) -> object:
        return store.promote(ctx, ss_uids[i], CELL)

    def raw_promote(i: int) -> object:
        pipe = client.pipeline(transaction=True)
        pipe.rename(raw_api[i], raw_cell[i])
        pipe.set(raw_loc[i], CELL)
        return pipe.execute()

    def hand_promote(i: int) -> object:
        with client.pipeline(transaction=True) as pipe:
            cast(Any, pipe).watch(hand_loc[i])
            if pipe.get(hand_loc[i]) != b"api":
                raise RuntimeError("hand-rolled promote: spec not in the api store")
            pipe.multi()
            pipe.rename(hand_api[i], hand_cell[i])
            pipe.set(hand_loc[i], CELL)
            return pipe.execute()

    return {"ss_promote": ss_promote, "raw_promote": raw_promote, "hand_promote": hand_promote}


def figures_1_2(client: redis.Redis, prefix: str, counts: Counts) -> list[Row]:
    """Single-spec latencies: specstore vs raw redis-py (1) and vs pydantic JSON (2)."""
    store = SpecStore(client, keyspace=keyspace(prefix, "lat"))
    stock = counts.latency_warmup + counts.latency_runs * counts.latency_samples
    ops = {**save_get_ops(store, prefix, counts.key_pool),
           **json_ops(client, prefix, counts.key_pool),
           **promote_ops(store, prefix, stock)}
    results = measure_latencies(ops, samples=counts.latency_samples, runs=counts.latency_runs,
                                warmup=counts.latency_warmup)
    calls = min(500, counts.latency_samples)
    server = {name: server_micros(client, command, ops[name], calls) for name, command in
              (("ss_save", "evalsha"), ("raw_save", "hset"), ("ss_get", "hgetall"))}
    sampling = (f"{counts.latency_runs} runs x {counts.latency_samples} calls after "
                f"{counts.latency_warmup} warm-up calls, per op, ops interleaved run by run; "
                "median of the runs' p50/p99")
    rows = _latency_rows(
        1, results,
        [("save", "ss_save", "raw_save"), ("get", "ss_get", "raw_get"),
         ("promote", "ss_promote", "raw_promote")],
        {"save": "raw HSET, same doc bytes", "get": "raw HGETALL, no decode",
         "promote": "raw MULTI RENAME+SET"},
        {"save": SAVE_GET_TARGET, "get": SAVE_GET_TARGET,
         "save p99": SAVE_GET_P99_TARGET, "get p99": SAVE_GET_P99_TARGET},
        notes={"save": f"Figure 1: {sampling}. save = store.save without rev (save.lua); the "
               "raw HSET writes the same six fields with the document encoded beforehand; "
               "get = store.get (HGETALL + decode + validate). Redis's own time per call "
               f"(INFO commandstats over {calls} more calls): save.lua "
               f"{server['ss_save']:.1f} us vs HSET {server['raw_save']:.1f} us; HGETALL "
               f"{server['ss_get']:.1f} us.",
               "promote": "raw promote: RENAME api->cell hash + SET location in one MULTI/EXEC, "
               "no checks; specstore's promote.lua checks home, rev and move marker."},
    )
    rows += _latency_rows(
        2, results,
        [("save", "ss_save", "json_save"), ("get", "ss_get", "json_get"),
         ("promote", "ss_promote", "hand_promote")],
        {"save": "model_dump_json + SET", "get": "GET + model_validate_json",
         "promote": "WATCH/GET/MULTI RENAME+SET"},
        {"save": HAND_TARGET, "get": HAND_TARGET},
        notes={"save": "Figure 2: hand-rolled store = one STRING key per spec holding "
               "model_dump_json(exclude=transient fields); promote = WATCH location, GET it, "
               "MULTI RENAME + SET EXEC (3 round trips: the checked move without Lua)."},
    )
    for row in rows:
        if row.figure == 2:
            row.path = None
    return rows


def figure_6(cluster_url: str | None, prefix: str, counts: Counts) -> list[Row]:
    """Save/get latency on a 3-master Redis Cluster, vs raw HSET/HGETALL through the same
    RedisCluster client; "not run" rows without ``--cluster``."""
    labels = [("save", "raw HSET (cluster)"), ("get", "raw HGETALL (cluster)")]
    if cluster_url is None:
        rows: list[Row] = []
        for label, base in labels:
            for pct in ("p50", "p99"):
                rows.append(not_run(6, f"cluster {label} latency {pct}", "us", base,
                                    "" if rows else "Figure 6 runs with --cluster only.",
                                    SAVE_GET_TARGET if pct == "p50" else None))
        return rows
    store = SpecStore.from_url(cluster_url, prefix=f"{prefix}:cl")
    try:
        ops = save_get_ops(store, f"{prefix}:cl", counts.key_pool)
        results = measure_latencies(ops, samples=counts.cluster_samples,
                                    runs=counts.cluster_runs, warmup=counts.latency_warmup)
        calls = min(500, counts.cluster_samples)
        server = {name: server_micros(store.client, command, ops[name], calls) for name, command
                  in (("ss_save", "evalsha"), ("raw_save", "hset"), ("ss_get", "hgetall"))}
    finally:
        store.close()
    rows = _latency_rows(
        6, results, [("save", "ss_save", "raw_save"), ("get", "ss_get", "raw_get")],
        dict(labels), {"save": SAVE_GET_TARGET, "get": SAVE_GET_TARGET},
        notes={"save": f"Figure 6: 3 masters on loopback (redis-cli --cluster create), "
               f"{counts.cluster_runs} runs x {counts.cluster_samples} calls; "
               "SpecStore.from_url('redis+cluster://...'). Redis's own time per call: "
               f"save.lua {server['ss_save']:.1f} us vs HSET {server['raw_save']:.1f} us; "
               f"HGETALL {server['ss_get']:.1f} us."},
    )
    for row in rows:
        row.name = f"cluster {row.name}"
        row.path = None
    return rows
