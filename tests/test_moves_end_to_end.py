"""The moves Nova never finished, end to end on real Redis, with one server and with two:
boot -> promote to cell1 -> cross-cell resize to cell2 -> revert -> resize again, confirm ->
rebuild with a new image. After each step the spec has one home and holds what the move
table says it must (the transient fields never)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from specstore import RequestContext, SpecStore
from specstore.connection import connect
from specstore.core.keys import API, Keyspace
from specstore.errors import WrongStoreError
from specstore.model import ImageMeta, RequestSpec
from specstore.moves import operations as move_ops
from specstore.topology import Backend, Topology
from tests.factories import flavor, typical_spec
from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.redis

SMALL, BIG = flavor("m1.medium", 4096, 2), flavor("m1.xlarge", 16384, 8)
NEW_IMAGE = ImageMeta(
    id=uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
    name="debian-13",
    properties={"hw_disk_bus": "virtio", "os_distro": "debian"},
)


@pytest.fixture(scope="module")
def two() -> Iterator[list[RedisServer]]:
    servers = [start_server(), start_server()]
    yield servers
    for server in servers:
        server.discard()


@pytest.fixture(params=["one server", "two servers"])
def store(request: pytest.FixtureRequest, two: list[RedisServer]) -> Iterator[SpecStore]:
    for server in two:
        client = server.client()
        client.flushall()
        client.close()
    api = Backend(API, connect(two[0].url), Keyspace())
    cells = (
        {}
        if request.param == "one server"
        else {"cell2": Backend("cell2", connect(two[1].url), Keyspace())}
    )
    spec_store = SpecStore(Topology(api, cells))
    yield spec_store
    spec_store.close()


def homes(store: SpecStore, uid: str) -> list[str]:
    found = []
    for name in (API, "cell1", "cell2"):
        backend = store.backend(name)
        if backend.client.exists(backend.keys.spec_key(name, uid)):
            found.append(name)
    return found


def persisted(store: SpecStore, ctx: RequestContext, uid: str, home: str) -> RequestSpec:
    """The spec where it must live now, checked to be its only home and free of transient
    fields."""
    assert homes(store, uid) == [home] and store.locate(uid) == home
    spec = store.get(ctx.target_cell(home), uid).spec
    assert spec.retry is None and spec.ignore_hosts is None
    assert spec.requested_destination is None
    return spec


def test_boot_cross_cell_resize_revert_confirm_rebuild(store: SpecStore) -> None:
    ctx = RequestContext(project_id="p", user_id="u", store=store)
    boot = typical_spec()
    boot.flavor = SMALL
    uid = str(boot.instance_uuid)
    store.create(ctx, boot)
    store.promote(ctx, uid, "cell1")
    spec = persisted(store, ctx, uid, "cell1")
    assert spec.flavor.name == "m1.medium"
    cell1, cell2 = ctx.target_cell("cell1"), ctx.target_cell("cell2")

    # cross-cell resize: prepared in the source cell (new flavor persisted), then the spec
    # moves with the instance to the cell the scheduler chose
    plan = move_ops.resize(store, cell1, uid, BIG, source_host="cmp-1")
    assert plan.request.ignore_hosts == ["cmp-1"] and plan.persist.flavor.name == "m1.xlarge"
    store.move_to_cell(cell1, uid, "cell2")
    spec = persisted(store, ctx, uid, "cell2")
    assert spec.flavor.name == "m1.xlarge"
    assert spec.availability_zone == boot.availability_zone
    assert spec.scheduler_hints == boot.scheduler_hints
    with pytest.raises(WrongStoreError):
        store.save(cell1, spec)

    # revert: the old flavor back, and the spec moves back to cell1
    move_ops.revert_resize(store, cell2, uid, SMALL)
    store.move_to_cell(cell2, uid, "cell1")
    spec = persisted(store, ctx, uid, "cell1")
    assert spec.flavor.name == "m1.medium"

    # resize again, and confirm: the new flavor stays
    move_ops.resize(store, cell1, uid, BIG, source_host="cmp-1")
    store.move_to_cell(cell1, uid, "cell2")
    move_ops.confirm_resize(store, cell2, uid)
    spec = persisted(store, ctx, uid, "cell2")
    assert spec.flavor.name == "m1.xlarge"

    # rebuild with a new image: the persisted image (and properties) are the new one's
    plan = move_ops.rebuild(store, cell2, uid, source_host="cmp-9", new_image=NEW_IMAGE)
    assert plan.needs_scheduling and plan.request.requested_destination is not None
    assert plan.request.requested_destination.host == "cmp-9"
    spec = persisted(store, ctx, uid, "cell2")
    assert spec.image is not None and spec.image.id == NEW_IMAGE.id
    assert spec.image.properties == NEW_IMAGE.properties
    assert spec.flavor.name == "m1.xlarge"
    assert spec.availability_zone == boot.availability_zone
