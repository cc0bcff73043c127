"""Figure 11: the floors under the targets that stay missed, measured in the same run.

Every row is information (no target): it sets something specstore does against the least
any implementation keeping the same promise would do, or against what a target leaves.

* Redis time per call (INFO commandstats; single calls, the ops in rounds, median of the
  rounds): a SET of the hand-rolled JSON; the *bare checked write*, a script that runs only
  the three commands a one-round-trip compare-and-set with the home check needs (HMGET of
  the location record, HMGET of the spec's rev and schema, HSET of the six fields) and
  checks nothing; and save.lua, which runs those three and its checks.
* Client time of the encode between round trips: each encode timed on its own inside a loop
  of real round trips (so it starts with the caches a single save finds), specstore's checked
  encode against ``model_dump_json``; the same encodes timed in a tight loop for comparison.
* The codec budget of the "1.5x faster than pydantic JSON both ways" target:
  ``(model_dump_json + model_validate_json) / 1.5``, against pydantic's own cheapest dump
  (``model_dump``, python mode, nothing checked) plus its cheapest validation
  (``validate_python`` of the payload already unpacked): no msgpack at all.
* ``create_many``: the batch is sent only once every spec in it was encoded and checked
  (nothing is written for a batch with a bad spec), so per spec the encode and create.lua's
  Redis time add up; against the hand-rolled pipeline's whole time per spec.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from benchmarks.batch import hand_rolled_create
from benchmarks.harness import Row, interleaved_micros, rotated
from benchmarks.latency import JSON_EXCLUDE, NOW, server_micros
from benchmarks.workload import BASE_SPEC, Counts, chunks, delete_keys, keyspace, spec_copies
from specstore.context import RequestContext
from specstore.core import lua
from specstore.core.keys import API
from specstore.core.records import write_args
from specstore.model import RequestSpec
from specstore.serializers.msgpack_codec import DEFAULT_CODEC
from specstore.store import SpecStore

T = TypeVar("T")

BARE_CHECKED_WRITE = """
local loc = redis.call('HMGET', KEYS[2], 'store', 'state', 'epoch', 'rev', 'move_id', 'move_from')
local stored = redis.call('HMGET', KEYS[1], 'rev', 'schema')
local rev = (tonumber(stored[1]) or 0) + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'rev', rev, 'schema', ARGV[4], 'project_id', ARGV[5],
  'user_id', ARGV[6], 'updated_at', ARGV[7])
return {'ok', rev}
"""
"""save.lua's three commands in its usual case (the location record's six fields its
``lives_in`` reads), with its keys and arguments, and none of its checks."""


def save_argv(spec: RequestSpec) -> list[str | bytes | int]:
    """The arguments ``store.save(ctx, spec)`` sends save.lua in the api store (no rev)."""
    args = write_args(spec, DEFAULT_CODEC)
    return [API, "", args.doc, args.schema, args.project_id, args.user_id, NOW,
            DEFAULT_CODEC.current_version[0]]


def figure_11(client: redis.Redis, prefix: str, counts: Counts) -> list[Row]:
    keys = keyspace(prefix, "floor")
    store = SpecStore(client, keyspace=keys)
    ctx = RequestContext(store=store)
    spec = BASE_SPEC.model_copy(deep=True)
    store.create(ctx, spec)
    uid = str(spec.instance_uuid)
    json_key, raw_key = f"{prefix}:floor:json:{{{uid}}}", f"{prefix}:floor:raw:{{{uid}}}"
    text = spec.model_dump_json(exclude=JSON_EXCLUDE)
    rows = _single_save(client, store, spec, json_key, raw_key, counts)
    rows += _codec_budget(spec, text, counts)
    rows += _batch_create(client, store, ctx, prefix, counts)
    client.unlink(json_key, raw_key, *keys.home_keys(API, uid))
    return rows


def _single_save(client: redis.Redis, store: SpecStore, spec: RequestSpec, json_key: str,
                 raw_key: str, counts: Counts) -> list[Row]:
    uid = str(spec.instance_uuid)
    home = store.keys.home_keys(API, uid)
    argv = save_argv(spec)
    client.script_load(lua.SAVE.source)
    bare = client.script_load(BARE_CHECKED_WRITE)
    text = spec.model_dump_json(exclude=JSON_EXCLUDE)
    calls, rounds = max(50, counts.latency_samples // 2), counts.latency_runs
    server = _rounds({
        "set": lambda: server_micros(client, "set", lambda _i: client.set(json_key, text), calls),
        "bare": lambda: server_micros(
            client, "evalsha", lambda _i: client.evalsha(bare, 2, *home, *argv), calls),
        "save": lambda: server_micros(
            client, "evalsha", lambda _i: client.evalsha(lua.SAVE.sha, 2, *home, *argv), calls),
    }, rounds)
    def encode() -> bytes:
        return DEFAULT_CODEC.encode(spec)

    def dump_json() -> str:
        return spec.model_dump_json(exclude=JSON_EXCLUDE)

    between = _rounds({
        "encode": lambda: _between_round_trips(
            encode, lambda doc: client.hset(raw_key, "doc", doc), calls),
        "json": lambda: _between_round_trips(
            dump_json, lambda body: client.set(json_key, body), calls),
    }, rounds)
    tight = interleaved_micros({"encode": encode, "json": dump_json},
                               number=counts.codec_number, repeat=counts.codec_repeat)
    note = (f"Figure 11: Redis time from INFO commandstats over {calls} single calls per op, "
            f"{rounds} rounds with the ops interleaved, median of the rounds. The bare checked "
            "write runs save.lua's three commands (HMGET of the location record, HMGET of rev "
            "and schema, HSET of the six fields) with the same keys and arguments, and checks "
            "nothing. 'Between round trips': each encode timed on its own in a loop that sends "
            "its result after it (redis-py HSET / SET), median per round, median of the rounds; "
            "'tight loop': the same encodes back to back (figure 5's way).")
    return [
        Row(11, "Redis time per save: bare checked write vs SET", "us", server["bare"],
            server["set"], "SET of the hand-rolled JSON", note=note),
        Row(11, "Redis time per save: save.lua vs bare checked write", "us", server["save"],
            server["bare"], "bare checked write"),
        Row(11, "encode between round trips", "us", between["encode"], between["json"],
            "model_dump_json between round trips"),
        Row(11, "encode in a tight loop", "us", tight["encode"], tight["json"],
            "model_dump_json in a tight loop"),
    ]


def _codec_budget(spec: RequestSpec, text: str, counts: Counts) -> list[Row]:
    doc = DEFAULT_CODEC.encode(spec)
    payload = DEFAULT_CODEC._reader.payload(doc)  # the current version's unpacked payload
    if payload is None:
        raise RuntimeError("the typical spec's document does not take the current-version path")
    validator = RequestSpec.__pydantic_validator__
    if validator.validate_python(payload) != RequestSpec.model_validate_json(text):
        raise RuntimeError("the unpacked payload and the pydantic JSON hold different specs")
    exclude = JSON_EXCLUDE
    times = interleaved_micros({
        "json_encode": lambda: spec.model_dump_json(exclude=exclude),
        "json_decode": lambda: RequestSpec.model_validate_json(text),
        "dump": lambda: spec.model_dump(exclude=exclude, exclude_defaults=True),
        "validate": lambda: validator.validate_python(payload),
    }, number=counts.codec_number, repeat=counts.codec_repeat)
    budget = (times["json_encode"] + times["json_decode"]) / 1.5
    budget_name = "(model_dump_json + model_validate_json) / 1.5"
    return [
        Row(11, "pydantic's cheapest dump + validation vs the 1.5x codec budget", "us",
            times["dump"] + times["validate"], budget, budget_name,
            note="Codec budget: the most encode + decode may take for the target 'at least "
                 "1.5x faster than pydantic JSON both ways'. Against it: model_dump (python "
                 "mode, transient fields and defaults left out, nothing checked) plus "
                 "validate_python of the document's payload already unpacked (no msgpack). "
                 f"Median of {counts.codec_repeat} loops of {counts.codec_number} calls, "
                 "interleaved."),
        Row(11, "validate_python alone vs the 1.5x codec budget", "us", times["validate"],
            budget, budget_name),
    ]


def _batch_create(client: redis.Redis, store: SpecStore, ctx: RequestContext, prefix: str,
                  counts: Counts) -> list[Row]:
    size = counts.batch_size
    specs = spec_copies(max(size, counts.batch_total // 4))
    batches = list(chunks(specs, size))
    created: list[str] = []

    def create(i: int) -> object:
        batch = batches[i]
        created.extend(str(s.instance_uuid) for s in batch)
        return store.create_many(ctx, batch)

    client.script_load(lua.CREATE.source)  # (a first NOSCRIPT reply would count as a call)
    scripts = server_micros(client, "evalsha", create, len(batches))
    encode = interleaved_micros({"encode": lambda: DEFAULT_CODEC.encode(specs[0])},
                                number=counts.codec_number, repeat=counts.codec_repeat)["encode"]
    json_keys = [f"{prefix}:floor:jsonbatch:{{{s.instance_uuid}}}" for s in specs]
    start = time.perf_counter()
    hand_rolled_create(client, json_keys, specs, size)
    hand = (time.perf_counter() - start) / len(specs) * 1e6
    delete_keys(client, json_keys + [k for u in created for k in store.keys.home_keys(API, u)])
    return [
        Row(11, "create_many per spec: encode + create.lua's Redis time", "us",
            encode + scripts, hand, "hand-rolled pipelined create, whole time per spec",
            note=f"create_many: create.lua's Redis time per call (INFO commandstats) over "
                 f"{len(specs)} specs in pipelines of {size}, plus the encode of one spec "
                 "(tight loop); a batch is sent once all its specs are encoded and checked, so "
                 "the two do not overlap. Hand-rolled: model_dump_json + pipelined SET of the "
                 "same specs in pipelines of the same size, timed whole, once."),
    ]


def _rounds(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Each measure once per round, the order rotated round by round; the median per name."""
    values: dict[str, list[float]] = {name: [] for name in measures}
    for run in range(rounds):
        for name in rotated(list(measures), run):
            values[name].append(measures[name]())
    return {name: statistics.median(found) for name, found in values.items()}


def _between_round_trips(make: Callable[[], T], send: Callable[[T], object],
                         calls: int) -> float:
    """Median time of ``make()`` (us) when each call is followed by a round trip that
    sends what it made."""
    clock = time.perf_counter_ns
    times = [0.0] * calls
    for i in range(calls):
        t0 = clock()
        made = make()
        times[i] = (clock() - t0) / 1000.0
        send(made)
    return statistics.median(times)
