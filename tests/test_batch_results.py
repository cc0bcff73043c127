"""What a batch reports when Redis fails part of it, and the rule for a uuid listed twice."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest

from specstore import RequestContext, SpecStore, bulk
from specstore.errors import BackendError, BatchWriteError, InvalidInputError
from specstore.store import BatchCreate, BatchDestroy
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer, start_server


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    server = start_server()
    yield server
    server.discard()


@pytest.fixture
def half_store(acl_server: RedisServer) -> Iterator[SpecStore]:
    """A store whose Redis user may touch only the keys of instances whose uuid starts with
    0-7: Redis refuses (NOPERM) every script call for the other half, one call at a time."""
    admin = acl_server.client()
    admin.flushall()
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "half", "reset", "on", ">half-pw", "~specstore:*{[0-7]*", "+@all"
    )
    store = SpecStore.from_url(f"redis://half:half-pw@127.0.0.1:{acl_server.port}/0")
    yield store
    store.close()
    admin.close()


def allowed(uid: str) -> bool:
    return uid[0] in "01234567"


@pytest.mark.redis
def test_a_half_failed_create_many_says_per_spec_what_landed(
    half_store: SpecStore, acl_server: RedisServer
) -> None:
    specs = [typical_spec() for _ in range(40)]
    uids = [str(s.instance_uuid) for s in specs]
    with pytest.raises(BatchWriteError) as info:
        half_store.create_many(RequestContext(store=half_store), specs)
    error = info.value
    assert isinstance(error, BackendError) and error.may_have_written  # some landed
    result = error.result
    assert isinstance(result, BatchCreate)
    assert not result.unknown and not result.existing
    assert sorted(result.created) == sorted(u for u in uids if allowed(u))
    assert sorted(result.failed) == sorted(u for u in uids if not allowed(u))
    for cause in result.failed.values():
        assert isinstance(cause, BackendError) and not cause.may_have_written
    # checked on the server itself: exactly the reported ones landed
    admin = SpecStore.from_url(acl_server.url)
    assert {u for u in uids if admin.locate(u) == "api"} == set(result.created)
    admin.close()


@pytest.mark.redis
def test_a_half_failed_destroy_bulk_says_per_spec_what_landed(
    half_store: SpecStore, acl_server: RedisServer
) -> None:
    admin = SpecStore.from_url(acl_server.url)
    specs = [typical_spec() for _ in range(40)]
    admin.create_many(RequestContext(store=admin), specs)
    uids = [str(s.instance_uuid) for s in specs]
    with pytest.raises(BatchWriteError) as info:
        half_store.destroy_bulk(RequestContext(store=half_store), uids)
    result = info.value.result
    assert isinstance(result, BatchDestroy)
    assert sorted(result.destroyed) == sorted(u for u in uids if allowed(u))
    assert sorted(result.failed) == sorted(u for u in uids if not allowed(u))
    assert {u for u in uids if admin.locate(u) == "api"} == set(result.failed)
    admin.close()


@pytest.mark.redis
def test_a_half_failed_import_counts_what_failed_and_a_rerun_finishes(
    half_store: SpecStore, acl_server: RedisServer
) -> None:
    source = SpecStore.from_url("memory://batch-results-import")
    specs = [typical_spec() for _ in range(40)]
    source.create_many(RequestContext(store=source), specs)
    dump = io.BytesIO()
    bulk.export_specs(source, dump)
    summary = bulk.import_specs(half_store, lambda: io.BytesIO(dump.getvalue()), "jsonl")
    expected_ok = sum(allowed(str(s.instance_uuid)) for s in specs)
    assert (summary.created, summary.failed) == (expected_ok, 40 - expected_ok)
    assert not summary.complete
    assert sum("not imported" in p for p in summary.problems) == 40 - expected_ok
    admin = SpecStore.from_url(acl_server.url)
    again = bulk.import_specs(admin, lambda: io.BytesIO(dump.getvalue()), "jsonl")
    assert (again.created, again.unchanged, again.failed) == (40 - expected_ok, expected_ok, 0)
    admin.close()


def test_create_many_refuses_a_uuid_listed_twice_before_writing(memory_store: SpecStore) -> None:
    ctx = RequestContext(store=memory_store)
    spec, other = typical_spec(), typical_spec()
    with pytest.raises(InvalidInputError, match=str(spec.instance_uuid)):
        memory_store.create_many(ctx, [spec, other, typical_spec(spec.instance_uuid)])
    assert memory_store.locate(other.instance_uuid) is None


def test_destroy_bulk_handles_a_uuid_listed_twice_once(memory_store: SpecStore) -> None:
    ctx = RequestContext(store=memory_store)
    spec = typical_spec()
    memory_store.create(ctx, spec)
    absent = str(uuid.uuid4())
    result = memory_store.destroy_bulk(
        ctx, [spec.instance_uuid, absent, spec.instance_uuid, absent]
    )
    assert (result.destroyed, result.missing) == ([str(spec.instance_uuid)], [absent])
