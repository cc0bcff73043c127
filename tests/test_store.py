"""SpecStore behaviour; every test runs on fakeredis and on a real redis-server."""

from __future__ import annotations

import uuid

import pytest

from specstore import (
    ConflictError,
    CorruptDocumentError,
    IncompatibleSchemaError,
    InvalidUUIDError,
    RequestContext,
    RequestSpec,
    SpecExistsError,
    SpecNotFoundError,
    SpecStore,
    WrongStoreError,
)
from specstore.errors import InvalidCellNameError
from specstore.model import strip_transient
from specstore.serializers.envelope import encode_envelope
from tests.conftest import BOTH_STORES, store_of_kind
from tests.factories import typical_spec


@pytest.fixture(params=BOTH_STORES)
def store(request: pytest.FixtureRequest) -> SpecStore:
    """The store suite runs against SpecStore and AsyncSpecStore alike."""
    return store_of_kind(request)


def all_keys(store: SpecStore) -> set[str]:
    return {k.decode() for k in store.client.scan_iter(match="*", count=1000)}


def test_create_then_get_returns_persisted_fields_with_metadata(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = typical_spec()
    assert store.create(ctx, spec) == 1
    stored = store.get(ctx, spec.instance_uuid)
    assert stored.spec == strip_transient(spec)
    assert stored.rev == 1
    assert stored.store == "api"
    assert stored.schema == "RequestSpec/1.0"
    assert (stored.project_id, stored.user_id) == (spec.project_id, spec.user_id)
    assert stored.created_at == stored.updated_at != ""
    assert store.locate(spec.instance_uuid) == "api"


def test_transient_fields_are_not_persisted_and_not_clobbered_on_refresh(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = typical_spec()
    spec.create(ctx)
    loaded = RequestSpec.get_by_instance_uuid(ctx, spec.instance_uuid)
    assert loaded.retry is None
    assert loaded.requested_destination is None
    assert loaded.ignore_hosts is None
    assert loaded.network_metadata is None
    assert loaded.requested_resources == []
    assert loaded.instance_group is not None
    assert loaded.instance_group.members == [] and loaded.instance_group.hosts == []
    # another writer changes a persisted field; our object keeps its per-request data
    loaded.availability_zone = "az9"
    loaded.save(ctx)
    spec.refresh(ctx)
    assert spec.availability_zone == "az9"
    assert spec.retry is not None and spec.retry.num_attempts == 1
    assert spec.requested_destination is not None and spec.requested_destination.host == "cmp-2"
    assert spec.instance_group is not None and spec.instance_group.hosts == ["cmp-1"]
    assert spec.rev == 2
    raw_doc = store.client.hget(store.keys.spec_key("api", str(spec.instance_uuid)), "doc")
    assert isinstance(raw_doc, bytes)
    assert b"retry" not in raw_doc and b"cmp-2" not in raw_doc and b"members" not in raw_doc


def test_create_twice_or_in_another_store_is_refused(store: SpecStore, ctx: RequestContext) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    with pytest.raises(SpecExistsError):
        store.create(ctx, spec)
    with pytest.raises(SpecExistsError) as info:
        store.create(ctx.target_cell("cell1"), spec)
    assert info.value.store == "api"
    assert len(all_keys(store)) == 2


def test_save_compare_and_set(store: SpecStore, ctx: RequestContext) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    spec.availability_zone = "az2"
    assert store.save(ctx, spec, rev=1) == 2
    spec.availability_zone = "az3"
    with pytest.raises(ConflictError) as info:
        store.save(ctx, spec, rev=1)
    assert (info.value.expected_rev, info.value.actual_rev) == (1, 2)
    assert store.get(ctx, spec.instance_uuid).spec.availability_zone == "az2"
    assert store.save(ctx, spec) == 3  # no rev held: unconditional
    assert store.get(ctx, spec.instance_uuid).spec.availability_zone == "az3"


def test_object_style_save_uses_held_rev(store: SpecStore, ctx: RequestContext) -> None:
    spec = typical_spec()
    spec.create(ctx)
    other = RequestSpec.get_by_instance_uuid(ctx, spec.instance_uuid)
    other.num_instances = 2
    other.save(ctx)
    spec.num_instances = 3
    with pytest.raises(ConflictError):
        spec.save(ctx)
    assert RequestSpec.get_by_instance_uuid(ctx, spec.instance_uuid).num_instances == 2


def test_save_of_unknown_spec_is_not_found(store: SpecStore, ctx: RequestContext) -> None:
    with pytest.raises(SpecNotFoundError):
        store.save(ctx, typical_spec())
    assert all_keys(store) == set()


def test_wrong_store_writes_are_refused_and_create_no_copy(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    cell_ctx = ctx.target_cell("cell1")
    with pytest.raises(WrongStoreError) as info:
        store.save(cell_ctx, spec)
    assert (info.value.targeted, info.value.actual) == ("cell1", "api")
    with pytest.raises(WrongStoreError):
        store.destroy(cell_ctx, spec.instance_uuid)
    with pytest.raises(SpecNotFoundError) as missing:
        store.get(cell_ctx, spec.instance_uuid)
    assert missing.value.home == "api"
    uid = str(spec.instance_uuid)
    assert all_keys(store) == {store.keys.spec_key("api", uid), store.keys.location_key(uid)}


def test_promote_moves_atomically_and_is_idempotent(store: SpecStore, ctx: RequestContext) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    store.save(ctx, spec, rev=1)
    first = store.promote(ctx, spec.instance_uuid, "cell1")
    again = store.promote(ctx, spec.instance_uuid, "cell1")
    assert (first.moved, first.rev) == (True, 2)
    assert (again.moved, again.rev) == (False, 2)
    uid = str(spec.instance_uuid)
    assert all_keys(store) == {store.keys.spec_key("cell1", uid), store.keys.location_key(uid)}
    assert store.locate(uid) == "cell1"
    stored = store.get(ctx.target_cell("cell1"), uid)
    assert stored.rev == 2 and stored.spec == strip_transient(spec)
    with pytest.raises(WrongStoreError):
        store.promote(ctx, uid, "cell2")
    with pytest.raises(SpecNotFoundError):
        store.promote(ctx, uuid.uuid4(), "cell1")


def test_destroy_with_and_without_rev(store: SpecStore, ctx: RequestContext) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    with pytest.raises(ConflictError):
        store.destroy(ctx, spec.instance_uuid, rev=5)
    store.destroy(ctx, spec.instance_uuid, rev=1)
    uid = str(spec.instance_uuid)
    loc = store.keys.location_key(uid)
    assert all_keys(store) == {loc}
    buried = store.client.hgetall(loc)
    assert (buried[b"store"], buried[b"rev"], buried[b"state"]) == (b"", b"1", b"destroyed")
    assert 0 < store.client.ttl(loc) <= 7 * 24 * 3600
    assert store.locate(spec.instance_uuid) is None
    with pytest.raises(SpecNotFoundError):
        store.destroy(ctx, spec.instance_uuid)


def test_get_many_keeps_order_and_reports_missing_and_corrupt(
    store: SpecStore, ctx: RequestContext
) -> None:
    specs = [typical_spec() for _ in range(5)]
    for spec in specs:
        store.create(ctx, spec)
    broken = str(specs[3].instance_uuid)
    store.client.hset(store.keys.spec_key("api", broken), "doc", b"SPEC\x01garbage")
    absent = str(uuid.uuid4())
    wanted: list[uuid.UUID | str] = [
        specs[4].instance_uuid,
        absent,
        specs[0].instance_uuid,
        broken,
        specs[2].instance_uuid,
    ]
    result = store.get_many(ctx, wanted)
    assert [str(s.spec.instance_uuid) for s in result.found] == [
        str(specs[4].instance_uuid),
        str(specs[0].instance_uuid),
        str(specs[2].instance_uuid),
    ]
    assert result.missing == [absent]
    assert list(result.corrupt) == [broken]
    assert isinstance(result.corrupt[broken], CorruptDocumentError)
    assert store.get_many(ctx, []).found == []


def test_destroy_bulk_leaves_specs_of_other_stores(store: SpecStore, ctx: RequestContext) -> None:
    specs = [typical_spec() for _ in range(4)]
    for spec in specs:
        store.create(ctx, spec)
    store.promote(ctx, specs[1].instance_uuid, "cell1")
    absent = str(uuid.uuid4())
    result = store.destroy_bulk(ctx, [s.instance_uuid for s in specs] + [absent])
    assert result.destroyed == [str(specs[i].instance_uuid) for i in (0, 2, 3)]
    assert result.elsewhere == {str(specs[1].instance_uuid): "cell1"}
    assert result.missing == [absent]
    assert store.locate(specs[1].instance_uuid) == "cell1"
    buried = {store.keys.location_key(str(specs[i].instance_uuid)) for i in (0, 2, 3)}
    assert all_keys(store) - buried == {
        store.keys.spec_key("cell1", str(specs[1].instance_uuid)),
        store.keys.location_key(str(specs[1].instance_uuid)),
    }
    assert buried <= all_keys(store)
    for key in buried:
        assert store.client.hget(key, "state") == b"destroyed"


def test_a_rev_held_from_before_destroy_cannot_touch_the_recreated_spec(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    store.save(ctx, spec, rev=1)
    stale_rev = store.get(ctx, spec.instance_uuid).rev
    store.destroy(ctx, spec.instance_uuid)
    assert store.create(ctx, spec) == stale_rev + 1  # revs continue above the old ones
    with pytest.raises(ConflictError):
        store.save(ctx, spec, rev=stale_rev)
    with pytest.raises(ConflictError):
        store.destroy(ctx, spec.instance_uuid, rev=stale_rev)
    uid = str(spec.instance_uuid)
    assert store.client.hget(store.keys.location_key(uid), "state") == b"live"
    assert store.client.ttl(store.keys.location_key(uid)) == -1


def test_corrupt_document_is_reported_and_not_overwritten_by_reads(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    key = store.keys.spec_key("api", str(spec.instance_uuid))
    store.client.hset(key, "doc", b"not a document")
    with pytest.raises(CorruptDocumentError):
        store.get(ctx, spec.instance_uuid)
    assert store.client.hget(key, "doc") == b"not a document"


def test_newer_major_document_is_refused_and_never_overwritten(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = typical_spec()
    store.create(ctx, spec)
    snapshot = spec.model_dump()
    key = store.keys.spec_key("api", str(spec.instance_uuid))
    newer = encode_envelope("RequestSpec", (2, 0), {"instance_uuid": spec.instance_uuid})
    store.client.hset(key, mapping={"doc": newer, "schema": "RequestSpec/2.0"})
    with pytest.raises(IncompatibleSchemaError):
        store.get(ctx, spec.instance_uuid)
    with pytest.raises(IncompatibleSchemaError):
        store.save(ctx, spec)
    assert store.client.hget(key, "doc") == newer
    assert spec.model_dump() == snapshot  # the in-memory spec is untouched, transient parts too
    assert spec.ignore_hosts == ["cmp-9"] and spec.retry is not None


@pytest.mark.parametrize("bad", ["not-a-uuid", "*", "{1}", "", "a" * 36, "0" * 32 + "::::", "1234"])
def test_malformed_uuids_are_refused_before_touching_redis(
    store: SpecStore, ctx: RequestContext, bad: str
) -> None:
    with pytest.raises(InvalidUUIDError):
        store.get(ctx, bad)
    with pytest.raises(InvalidUUIDError):
        store.locate(bad)
    with pytest.raises(InvalidUUIDError):
        store.destroy_bulk(ctx, [bad])
    assert all_keys(store) == set()


@pytest.mark.parametrize("bad", ["api", "cell*", "c{1}", "a:b", "", "-x", "x" * 64, "c 1"])
def test_cell_names_that_would_inject_key_patterns_are_refused(
    ctx: RequestContext, store: SpecStore, bad: str
) -> None:
    with pytest.raises(InvalidCellNameError):
        ctx.target_cell(bad)
    with pytest.raises(InvalidCellNameError):
        store.promote(ctx, uuid.uuid4(), bad)
