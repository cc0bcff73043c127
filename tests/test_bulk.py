"""export / import / migrate / stats / repair through the library, on every backend."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import RedisCluster

from serializers.msgpack_codec import DocumentCodec
from serializers.schemas import REGISTRY
from specstore import RequestContext, RequestSpec, SpecStore
from specstore.bulk import collect_stats, export_specs, import_specs, migrate_documents, repair
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


def test_export_import_round_trip_keeps_stores_revs_and_timestamps(
    store: SpecStore, ctx: RequestContext, tmp_path: Path
) -> None:
    specs = [typical_spec() for _ in range(25)]
    store.create_many(ctx, specs[:15])
    store.create_many(ctx.target_cell("cell3"), specs[15:])
    store.save(ctx, specs[0])
    first = tmp_path / "first.jsonl"
    with first.open("wb") as out:
        summary = export_specs(store, out, "jsonl", batch=7)
    assert (summary.exported, summary.skipped) == (25, 0)
    for client in {id(b.client): b.client for b in store.topology.backends()}.values():
        client.flushall()
    result = import_specs(store, lambda: first.open("rb"), "jsonl", batch=4)
    assert (result.created, result.rejected, result.existing) == (25, 0, 0)
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
    cluster_store.client.flushall()
    assert export_specs(cluster_store, io.BytesIO(), "msgpack").exported == 0
    result = import_specs(cluster_store, lambda: dump.open("rb"), "msgpack")
    assert (result.created, result.rejected) == (10_000, 0)
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
