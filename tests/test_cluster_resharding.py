"""Batch paths across real slot migrations of the test cluster.

The store's cluster client learns the slot map when it connects; the slots are then moved with
CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE and SETSLOT NODE behind its back, so every
pipelined path meets MOVED (slot handed over) or ASK/TRYAGAIN (slot half migrated) replies.
Expected values come from plain clients on the nodes, never from the store under test.
"""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import msgpack
import pytest
import redis

from specstore import RequestContext, RequestSpec, SpecStore, connection
from specstore.bulk import export_specs, import_specs, migrate_documents
from specstore.model import strip_transient
from tests.factories import typical_spec
from tests.support.redis_cluster import RedisClusterNodes, command, slot_of, uuids_in_slot
from tests.support.redis_server import RedisServer
from tests.test_bulk import codec_v11

pytestmark = pytest.mark.cluster

PER_SLOT = 3


@pytest.fixture
def slot() -> int:
    """A random slot (that of a fresh UUID), so runs do not all exercise the same one."""
    return slot_of(str(typical_spec().instance_uuid))


@pytest.fixture(params=["sync", "async"])
def stale(request: pytest.FixtureRequest) -> SpecStore:
    """The store (SpecStore, or AsyncSpecStore through ThroughAsync), its client's slot map
    learnt before the test reshards."""
    name = "cluster_store" if request.param == "sync" else "cluster_async_store"
    store: SpecStore = request.getfixturevalue(name)
    store.get_many(RequestContext(store=store), [str(typical_spec().instance_uuid)])
    return store


def specs_in(slot: int, count: int = PER_SLOT) -> list[RequestSpec]:
    return [typical_spec(uid) for uid in uuids_in_slot(slot, count)]


def on_node(server: RedisServer, key: str) -> dict[bytes, bytes]:
    """HGETALL of ``key`` straight from one node (no redirection followed; ASKING first, so
    an importing node answers for the keys it already received)."""
    client = server.client()
    try:
        pipe = client.pipeline(transaction=False)
        command(pipe, "ASKING")
        pipe.hgetall(key)
        raw: dict[bytes, bytes] = pipe.execute()[1]
        return raw
    finally:
        client.close()


def stored(cluster: RedisClusterNodes, key: str) -> dict[bytes, bytes]:
    """The hash as the cluster holds it, through a fresh client (current slot map)."""
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.servers[0].port)
    try:
        raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
        return raw
    finally:
        client.close()


def spec_key(store: SpecStore, spec: RequestSpec, name: str = "api") -> str:
    return store.keys.spec_key(name, str(spec.instance_uuid))


def test_create_many_follows_moved_after_a_slot_was_handed_over(
    stale: SpecStore, redis_cluster: RedisClusterNodes, slot: int
) -> None:
    moved, elsewhere = specs_in(slot), [typical_spec() for _ in range(4)]
    target = redis_cluster.other_master(redis_cluster.owner(slot))
    redis_cluster.move_slot(slot, target)
    result = stale.create_many(RequestContext(store=stale), [*moved, *elsewhere])
    assert sorted(result.created) == sorted(str(s.instance_uuid) for s in [*moved, *elsewhere])
    for spec in moved:
        assert on_node(target, spec_key(stale, spec))[b"rev"] == b"1"
    for spec in elsewhere:
        assert stored(redis_cluster, spec_key(stale, spec))[b"rev"] == b"1"


def test_destroy_bulk_follows_moved_after_a_slot_was_handed_over(
    stale: SpecStore, redis_cluster: RedisClusterNodes, slot: int
) -> None:
    ctx = RequestContext(store=stale)
    specs = [*specs_in(slot), typical_spec(), typical_spec()]
    stale.create_many(ctx, specs)
    redis_cluster.move_slot(slot, redis_cluster.other_master(redis_cluster.owner(slot)))
    result = stale.destroy_bulk(ctx, [s.instance_uuid for s in specs])
    assert sorted(result.destroyed) == sorted(str(s.instance_uuid) for s in specs)
    for spec in specs:
        assert stored(redis_cluster, spec_key(stale, spec)) == {}


def test_get_many_and_export_follow_moved(
    stale: SpecStore, redis_cluster: RedisClusterNodes, slot: int
) -> None:
    ctx = RequestContext(store=stale)
    specs = [*specs_in(slot), typical_spec(), typical_spec()]
    stale.create_many(ctx, specs)
    redis_cluster.move_slot(slot, redis_cluster.other_master(redis_cluster.owner(slot)))
    read = stale.get_many(ctx, [s.instance_uuid for s in specs])
    assert (read.missing, read.corrupt) == ([], {})
    assert [r.spec for r in read.found] == [strip_transient(s) for s in specs]
    out = io.BytesIO()
    assert export_specs(stale, out, "jsonl").exported == len(specs)
    lines = {line["instance_uuid"]: line for line in map(json.loads, out.getvalue().splitlines())}
    for spec in specs:
        raw = stored(redis_cluster, spec_key(stale, spec))
        line = lines[str(spec.instance_uuid)]
        assert line["created_at"] == raw[b"created_at"].decode()
        assert line["updated_at"] == raw[b"updated_at"].decode()


@pytest.mark.parametrize("fmt", ["jsonl", "msgpack"])
def test_import_follows_moved(
    stale: SpecStore, redis_cluster: RedisClusterNodes, slot: int, fmt: Any
) -> None:
    ctx = RequestContext(store=stale)
    specs = [*specs_in(slot), typical_spec(), typical_spec()]
    stale.create_many(ctx, specs)
    before = {str(s.instance_uuid): stored(redis_cluster, spec_key(stale, s)) for s in specs}
    dump = io.BytesIO()
    export_specs(stale, dump, fmt)
    redis_cluster.flush()
    target = redis_cluster.other_master(redis_cluster.owner(slot))
    redis_cluster.move_slot(slot, target)
    result = import_specs(stale, lambda: io.BytesIO(dump.getvalue()), fmt)
    assert (result.created, result.rejected) == (len(specs), 0)
    for spec in specs:
        assert stored(redis_cluster, spec_key(stale, spec)) == before[str(spec.instance_uuid)]
    for spec in specs[:PER_SLOT]:
        assert on_node(target, spec_key(stale, spec)) == before[str(spec.instance_uuid)]


def test_migrate_follows_moved(
    stale: SpecStore,
    redis_cluster: RedisClusterNodes,
    slot: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The slot moves between migrate's read of the batch holding its keys and the rewrite
    of that batch (a read that met MOVED would have refreshed the client's slot map)."""
    specs = [*specs_in(slot), typical_spec(), typical_spec()]
    stale.create_many(RequestContext(store=stale), specs)
    read_hashes = connection.read_hashes

    def read_then_reshard(client: Any, keys: list[str]) -> Any:
        replies = read_hashes(client, keys)
        in_slot = any(slot_of(key[key.index("{") + 1 : -1]) == slot for key in keys)
        if in_slot and redis_cluster.owner(slot) is source:
            redis_cluster.move_slot(slot, redis_cluster.other_master(source))
        return replies

    source = redis_cluster.owner(slot)
    monkeypatch.setattr("specstore.bulk.common.read_hashes", read_then_reshard)
    summary = migrate_documents(SpecStore(stale.topology, codec=codec_v11()))
    assert redis_cluster.owner(slot) is not source
    assert (summary.rewritten, summary.failed) == (len(specs), 0)
    for spec in specs:
        raw = stored(redis_cluster, spec_key(stale, spec))
        assert (raw[b"schema"], raw[b"rev"]) == (b"RequestSpec/1.1", b"2")


# -- mid-migration: ASK and TRYAGAIN ----------------------------------------------------------


def instance_keys(store: SpecStore, spec: RequestSpec) -> list[str]:
    """Every key create/destroy touch for the instance (its spec and location record)."""
    return store.keys.home_keys("api", str(spec.instance_uuid))


def test_reads_and_rewrites_follow_ask_while_a_slot_is_half_migrated(
    stale: SpecStore, redis_cluster: RedisClusterNodes, slot: int
) -> None:
    """Specs whose keys were MIGRATEd are answered by the target after ASK; the others still
    by the source; both in the same batch."""
    ctx = RequestContext(store=stale)
    gone, staying = specs_in(slot, 2), specs_in(slot, 2)
    stale.create_many(ctx, [*gone, *staying])
    target = redis_cluster.other_master(redis_cluster.owner(slot))
    with redis_cluster.migrating(slot, target) as migration:
        for spec in gone:
            assert migration.move_keys(instance_keys(stale, spec)) == 2  # spec + location
        read = stale.get_many(ctx, [s.instance_uuid for s in [*gone, *staying]])
        assert [r.spec for r in read.found] == [strip_transient(s) for s in [*gone, *staying]]
        out = io.BytesIO()
        assert export_specs(stale, out, "msgpack").exported == 4
        uids = {r["instance_uuid"] for r in msgpack.Unpacker(io.BytesIO(out.getvalue()))}
        assert uids == {str(s.instance_uuid) for s in [*gone, *staying]}
        summary = migrate_documents(SpecStore(stale.topology, codec=codec_v11()))
        assert (summary.rewritten, summary.failed) == (4, 0)
        for spec in gone:
            assert on_node(target, spec_key(stale, spec))[b"schema"] == b"RequestSpec/1.1"
        for spec in staying:
            raw = on_node(migration.source, spec_key(stale, spec))
            assert raw[b"schema"] == b"RequestSpec/1.1"


def test_batch_writes_wait_out_a_half_migrated_slot(
    stale: SpecStore, redis_cluster: RedisClusterNodes, slot: int
) -> None:
    """Multi-key scripts get TRYAGAIN while their slot is half migrated; batch writes retry
    them (bounded) and complete once the slot is handed over, with every spec in one place."""
    ctx = RequestContext(store=stale)
    old, new = specs_in(slot, 2), specs_in(slot, 2)
    stale.create_many(ctx, old)
    target = redis_cluster.other_master(redis_cluster.owner(slot))
    results: dict[str, Any] = {}
    with redis_cluster.migrating(slot, target) as migration:
        migration.move_keys(instance_keys(stale, old[0]))

        def writes() -> None:
            results["created"] = stale.create_many(ctx, new).created
            results["destroyed"] = stale.destroy_bulk(ctx, [s.instance_uuid for s in old])

        writer = threading.Thread(target=writes, daemon=True)
        writer.start()
        time.sleep(0.3)  # the writer is now retrying TRYAGAIN replies
        assert writer.is_alive()
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert sorted(results["created"]) == sorted(str(s.instance_uuid) for s in new)
    assert sorted(results["destroyed"].destroyed) == sorted(str(s.instance_uuid) for s in old)
    for spec in new:
        assert on_node(target, spec_key(stale, spec))[b"rev"] == b"1"
    for spec in old:
        assert stored(redis_cluster, spec_key(stale, spec)) == {}
