"""export / import / migrate / stats / repair through the library, on every backend."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from redis.cluster import RedisCluster

from specstore import RequestContext, RequestSpec, SpecStore
from specstore.bulk import collect_stats, export_specs, import_specs, migrate_documents, repair
from specstore.model import persisted_payload
from specstore.serializers.envelope import encode_envelope
from specstore.serializers.msgpack_codec import DocumentCodec
from specstore.serializers.schemas import REGISTRY
from tests.factories import typical_spec


class RequestSpecV11(RequestSpec):
    """A 1.1 of the schema that appends one optional field."""

    boot_priority: int = 0


def codec_v11() -> DocumentCodec:
    registry = REGISTRY.copy()

    def upgrade(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "boot_priority": 5}

    def downgrade(payload: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payload.items() if k != "boot_priority"}

    registry.release("RequestSpec", (1, 1), upgrade=upgrade, downgrade=downgrade)
    return DocumentCodec(model=RequestSpecV11, registry=registry)


def stored_hashes(store: SpecStore) -> dict[tuple[str, str], dict[bytes, bytes]]:
    """(store, uuid) -> the spec hash, read with plain SCAN + HGETALL on every node."""
    found: dict[tuple[str, str], dict[bytes, bytes]] = {}
    for backend in store.topology.backends():
        client = backend.client
        nodes = (
            [client.get_redis_connection(n) for n in client.get_primaries()]  # type: ignore[no-untyped-call]
            if isinstance(client, RedisCluster)
            else [client]
        )
        for node in nodes:
            keys = list(node.scan_iter(match=f"{backend.keys.prefix}:*spec:{{*}}", count=1000))
            pipe = node.pipeline(transaction=False)
            for raw_key in keys:
                pipe.hgetall(raw_key)
            for raw_key, raw in zip(keys, pipe.execute(), strict=True):
                key = raw_key.decode()
                name = "api" if ":api:" in key else key.split(":")[2]
                found[(name, key[key.index("{") + 1 : -1])] = raw
    return found


def exported_meta(data: bytes) -> dict[tuple[str, str], tuple[str, str, int]]:
    lines = [json.loads(line) for line in data.splitlines()]
    return {
        (r["store"], r["instance_uuid"]): (r["created_at"], r["updated_at"], r["rev"])
        for r in lines
    }


def test_export_import_round_trip_keeps_stores_revs_and_timestamps(
    store: SpecStore, ctx: RequestContext, tmp_path: Path
) -> None:
    specs = [typical_spec() for _ in range(25)]
    ticks = iter(f"2026-03-0{d}T0{h}:00:00.000000+00:00" for d in range(1, 10) for h in range(10))
    store.clock = lambda: next(ticks)  # distinct, known timestamps
    store.create_many(ctx, specs[:15])
    store.create_many(ctx.target_cell("cell3"), specs[15:])
    store.save(ctx, specs[0])
    before = stored_hashes(store)
    assert len(before) == 25
    assert (
        before[("api", str(specs[0].instance_uuid))][b"updated_at"]
        != (before[("api", str(specs[0].instance_uuid))][b"created_at"])
    )
    first = tmp_path / "first.jsonl"
    with first.open("wb") as out:
        summary = export_specs(store, out, "jsonl", batch=7)
    assert (summary.exported, summary.skipped) == (25, 0)
    assert exported_meta(first.read_bytes()) == {
        where: (raw[b"created_at"].decode(), raw[b"updated_at"].decode(), int(raw[b"rev"]))
        for where, raw in before.items()
    }
    for client in {id(b.client): b.client for b in store.topology.backends()}.values():
        client.flushall()
    result = import_specs(store, lambda: first.open("rb"), "jsonl", batch=4)
    assert (result.created, result.rejected, result.existing) == (25, 0, 0)
    assert stored_hashes(store) == before  # doc, rev, schema, owner and both timestamps
    again = io.BytesIO()
    export_specs(store, again, "jsonl")
    assert sorted(again.getvalue().splitlines()) == sorted(first.read_bytes().splitlines())
    assert store.get(ctx, specs[0].instance_uuid).rev == 2
    assert store.locate(specs[20].instance_uuid) == "cell3"


def test_migrate_rewrites_old_documents_in_resumable_batches(
    store: SpecStore, ctx: RequestContext
) -> None:
    specs = [typical_spec() for _ in range(23)]
    store.create_many(ctx, specs)
    newer = SpecStore(store.topology, codec=codec_v11())
    cursor: str | None = None
    rewritten, rounds = 0, 0
    while True:
        summary = migrate_documents(newer, batch=5, cursor=cursor, max_batches=1)
        rewritten += summary.rewritten
        rounds += 1
        cursor = summary.cursor
        if cursor is None:
            break
    assert rewritten == 23 and rounds > 1
    stats = collect_stats(newer)
    assert dict(stats["api"].schemas) == {"RequestSpec/1.1": 23}
    loaded = newer.get(ctx, specs[0].instance_uuid).spec
    assert isinstance(loaded, RequestSpecV11) and loaded.boot_priority == 5
    assert newer.get(ctx, specs[0].instance_uuid).rev == 2
    again = migrate_documents(newer)
    assert (again.rewritten, again.current, again.cursor) == (0, 23, None)
    old = migrate_documents(store)  # old code sees newer documents and leaves them alone
    assert (old.rewritten, old.newer) == (0, 23)


def spec_keys(store: SpecStore, specs: list[RequestSpec], name: str = "api") -> list[str]:
    return [store.keys.spec_key(name, str(s.instance_uuid)) for s in specs]


def settle_rehashing(store: SpecStore, ctx: RequestContext, specs: list[RequestSpec]) -> None:
    """Let a real server finish rehashing its keyspace after the writes, so that a SCAN call
    re-issued by a resumed run gets the same reply (while Redis rehashes a dict, SCAN's reply
    for one cursor changes as the rehash moves on; migrate then handles that reply again,
    which is harmless but makes counts vary). Each key lookup moves a rehash one step and the
    server's cron finishes it within about 100 ms."""
    for _ in range(2):
        store.get_many(ctx, [s.instance_uuid for s in specs[:25]])
        store.get_many(ctx.target_cell("cell3"), [s.instance_uuid for s in specs[25:]])
    time.sleep(0.3)


def test_migrate_batches_hold_exactly_batch_specs_and_resuming_covers_each_once(
    store: SpecStore, ctx: RequestContext
) -> None:
    """BUG: a batch held whatever one SCAN call returned (COUNT is a hint), so
    ``--batch 500 --max-batches 2`` scanned 506 specs."""
    specs = [typical_spec() for _ in range(40)]
    store.create_many(ctx, specs[:25])
    store.create_many(ctx.target_cell("cell3"), specs[25:])
    settle_rehashing(store, ctx, specs)
    newer = SpecStore(store.topology, codec=codec_v11())
    first = migrate_documents(newer, batch=7, max_batches=2)
    assert (first.scanned, first.rewritten) == (14, 14)
    scanned, cursors = [first.scanned], [first.cursor]
    while cursors[-1] is not None:
        summary = migrate_documents(newer, batch=7, cursor=cursors[-1], max_batches=1)
        scanned.append(summary.scanned)
        cursors.append(summary.cursor)
    assert scanned[:-1] == [14] + [7] * (len(scanned) - 2) and 1 <= scanned[-1] <= 7
    assert sum(scanned) == 40  # nothing handled twice, nothing skipped
    keys = spec_keys(store, specs[:25]) + spec_keys(store, specs[25:], "cell3")
    assert {store.client.hget(key, "schema") for key in keys} == {b"RequestSpec/1.1"}


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.cluster),
    ]
)
def server_store(request: pytest.FixtureRequest) -> SpecStore:
    """A store on a real server or cluster, whose SCAN replies do not line up with batches
    (fakeredis applies COUNT after MATCH, so its replies hold exactly COUNT keys)."""
    names = {"redis": "real_store", "cluster": "cluster_store"}
    result: SpecStore = request.getfixturevalue(names[request.param])
    return result


def test_migrate_cursor_with_a_foreign_fingerprint_handles_the_whole_reply_again(
    server_store: SpecStore,
) -> None:
    """When the re-issued SCAN reply does not start with the keys already handled, none of
    it is skipped (handling a key twice is harmless, skipping one is not)."""
    store = server_store
    store.create_many(RequestContext(store=store), [typical_spec() for _ in range(30)])
    cursor: str | None = None
    before = 0
    while True:  # walk to a cursor that ends inside a SCAN reply
        summary = migrate_documents(store, batch=4, cursor=cursor, max_batches=1)
        before += summary.scanned
        cursor = summary.cursor
        assert cursor is not None, "no batch ended inside a SCAN reply"
        if cursor.count(":") == 4:
            break
    skip = int(cursor.split(":")[3])
    honest = migrate_documents(store, batch=4, cursor=cursor)
    foreign = migrate_documents(store, batch=4, cursor=cursor.rsplit(":", 1)[0] + ":" + "0" * 16)
    assert before + honest.scanned == 30
    assert foreign.scanned == honest.scanned + skip


def test_migrate_counts_unreadable_documents_as_failed_never_as_current(
    store: SpecStore, ctx: RequestContext
) -> None:
    """BUG: a document was judged by its ``schema`` field alone, so garbage bytes under
    "RequestSpec/1.0" were reported as already current (and the command exited 0)."""
    good, garbage, invalid, foreign = (
        [typical_spec() for _ in range(4)],
        *[typical_spec() for _ in range(3)],
    )
    store.create_many(ctx, [*good, garbage, invalid, foreign])
    client, keys = store.client, store.keys
    client.hset(keys.spec_key("api", str(garbage.instance_uuid)), "doc", b"garbage")
    payload = persisted_payload(invalid)
    payload["flavor"]["vcpus"] = 0
    client.hset(
        keys.spec_key("api", str(invalid.instance_uuid)),
        "doc",
        encode_envelope("RequestSpec", (1, 0), payload),
    )
    other_doc = client.hget(keys.spec_key("api", str(good[0].instance_uuid)), "doc")
    client.hset(keys.spec_key("api", str(foreign.instance_uuid)), "doc", cast(bytes, other_doc))
    summary = migrate_documents(store)
    assert (summary.scanned, summary.current, summary.failed) == (7, 4, 3)
    named = " ".join(summary.problems)
    assert all(str(s.instance_uuid) in named for s in (garbage, invalid, foreign))


def test_stats_count_per_store_and_version(store: SpecStore, ctx: RequestContext) -> None:
    store.create_many(ctx, [typical_spec() for _ in range(4)])
    store.create_many(ctx.target_cell("cell1"), [typical_spec() for _ in range(3)])
    stats = collect_stats(store, sample=2)
    assert {name: s.count for name, s in stats.items()} == {"api": 4, "cell1": 3}
    assert dict(stats["cell1"].schemas) == {"RequestSpec/1.0": 3}
    assert stats["api"].sampled <= 2


def test_repair_is_a_no_op_on_a_healthy_store(store: SpecStore, ctx: RequestContext) -> None:
    specs = [typical_spec() for _ in range(6)]
    store.create_many(ctx, specs)
    store.promote(ctx, specs[0].instance_uuid, "cell1")
    report = repair(store)
    assert (report.found, report.repaired) == (0, 0) and report.checked >= 6


@pytest.mark.cluster
def test_10000_specs_round_trip_across_a_cluster(cluster_store: SpecStore, tmp_path: Path) -> None:
    ctx = RequestContext(store=cluster_store)
    base = typical_spec()
    for start in range(0, 10_000, 1000):
        batch = [base.model_copy(update={"instance_uuid": uuid.uuid4()}) for _ in range(1000)]
        target = ctx if start % 2000 == 0 else ctx.target_cell("cell1")
        assert len(cluster_store.create_many(target, batch).created) == 1000
    dump = tmp_path / "cluster.msgpack"
    with dump.open("wb") as out:
        assert export_specs(cluster_store, out, "msgpack").exported == 10_000
    before = stored_hashes(cluster_store)
    assert len(before) == 10_000
    cluster_store.client.flushall()
    assert export_specs(cluster_store, io.BytesIO(), "msgpack").exported == 0
    result = import_specs(cluster_store, lambda: dump.open("rb"), "msgpack")
    assert (result.created, result.rejected) == (10_000, 0)
    assert stored_hashes(cluster_store) == before  # timestamps and all, as stored
    again = io.BytesIO()
    assert export_specs(cluster_store, again, "msgpack").exported == 10_000
    import msgpack

    def records(data: bytes) -> list[Any]:
        return sorted(
            msgpack.Unpacker(io.BytesIO(data), raw=False), key=lambda r: r["instance_uuid"]
        )

    assert records(again.getvalue()) == records(dump.read_bytes())
    client = cluster_store.client
    assert isinstance(client, RedisCluster)
    nodes = client.get_primaries()  # type: ignore[no-untyped-call]
    per_node = [client.dbsize(target_nodes=node) for node in nodes]
    assert len(per_node) == 3 and all(count > 0 for count in per_node)
