"""Move operations against the store: read, plan, save with compare-and-set.

Most tests run on every backend of the ``store`` fixture; the end-to-end lifecycle runs on a
real redis-server and reads every step back from Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from specstore import (
    ConflictError,
    RequestContext,
    RequestSpec,
    SpecNotFoundError,
    SpecStore,
)
from specstore.core.records import StoredSpec
from specstore.errors import InvalidInputError
from specstore.model import Destination, Flavor, ImageMeta, strip_transient
from specstore.moves.operations import (
    cold_migrate,
    confirm_resize,
    evacuate,
    live_migrate,
    prepare_move,
    rebuild,
    resize,
    revert_resize,
    unshelve,
)
from specstore.moves.rules import MoveOperation, MovePlan
from tests.factories import flavor, typical_spec
from tests.support.redis_server import RedisServer

LARGE = flavor()
XLARGE = flavor("m1.xlarge", 16384, 8)
SOURCE = "src-host-9"
NEW_IMAGE = ImageMeta(
    id=uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
    name="debian-13",
    disk_format="raw",
    properties={"hw_disk_bus": "virtio", "os_distro": "debian"},
)


def booted(store: SpecStore, ctx: RequestContext, cell: str | None = "cell1") -> RequestSpec:
    """Create the boot request's spec in the api store (forced to SOURCE), promote it."""
    spec = typical_spec().model_copy(update={"force_hosts": [SOURCE]})
    store.create(ctx, spec)
    if cell is not None:
        store.promote(ctx, spec.instance_uuid, cell)
    return spec


def raw_doc(store: SpecStore, store_name: str, uid: str) -> bytes:
    backend = store.backend(store_name)
    doc = backend.client.hget(backend.keys.spec_key(store_name, uid), "doc")
    assert isinstance(doc, bytes)
    return doc


Call = Callable[[SpecStore, RequestContext, str], MovePlan]


@dataclass(frozen=True)
class OpRow:
    call: Call
    start: Flavor
    persisted_flavor: Flavor
    ignore_hosts: list[str] | None
    destination: Destination | None
    new_image: ImageMeta | None = None
    scheduled: bool = True


OP_TABLE: dict[str, OpRow] = {
    "resize": OpRow(
        lambda s, c, u: resize(s, c, u, XLARGE, source_host=SOURCE),
        LARGE, XLARGE, [SOURCE], Destination(cell="cell1"),
    ),
    "resize-same-host-to-host": OpRow(
        lambda s, c, u: resize(s, c, u, XLARGE, source_host=SOURCE, allow_same_host=True,
                               destination=Destination(host=SOURCE)),
        LARGE, XLARGE, None, Destination(host=SOURCE, cell="cell1"),
    ),
    "resize-cross-cell": OpRow(
        lambda s, c, u: resize(s, c, u, XLARGE, source_host=SOURCE,
                               destination=Destination(allow_cross_cell_move=True)),
        LARGE, XLARGE, [SOURCE], Destination(allow_cross_cell_move=True),
    ),
    "cold-migrate": OpRow(
        lambda s, c, u: cold_migrate(s, c, u, source_host=SOURCE, source_node="n9"),
        LARGE, LARGE, [SOURCE], Destination(cell="cell1"),
    ),
    "live-migrate": OpRow(
        lambda s, c, u: live_migrate(s, c, u, source_host=SOURCE,
                                     destination=Destination(host="cmp-3")),
        LARGE, LARGE, [SOURCE], Destination(host="cmp-3", cell="cell1"),
    ),
    "evacuate": OpRow(
        lambda s, c, u: evacuate(s, c, u, source_host=SOURCE),
        LARGE, LARGE, [SOURCE], Destination(cell="cell1"),
    ),
    "unshelve": OpRow(
        unshelve,
        LARGE, LARGE, None, Destination(cell="cell1"),
    ),
    "revert": OpRow(
        lambda s, c, u: revert_resize(s, c, u, LARGE),
        XLARGE, LARGE, None, None, scheduled=False,
    ),
    "confirm": OpRow(
        confirm_resize,
        XLARGE, XLARGE, None, None, scheduled=False,
    ),
    "evacuate-new-image": OpRow(
        lambda s, c, u: evacuate(s, c, u, source_host=SOURCE, new_image=NEW_IMAGE),
        LARGE, LARGE, [SOURCE], Destination(cell="cell1"), NEW_IMAGE,
    ),
    "rebuild-same-image": OpRow(
        lambda s, c, u: rebuild(s, c, u, source_host=SOURCE),
        LARGE, LARGE, None, None, scheduled=False,
    ),
    "rebuild-new-image": OpRow(
        lambda s, c, u: rebuild(s, c, u, source_host=SOURCE, source_node="n9",
                                new_image=NEW_IMAGE),
        LARGE, LARGE, None, Destination(host=SOURCE, node="n9", cell="cell1"), NEW_IMAGE,
    ),
    "generic-evacuate": OpRow(
        lambda s, c, u: prepare_move(s, c, u, "evacuate", source_host=SOURCE),
        LARGE, LARGE, [SOURCE], Destination(cell="cell1"),
    ),
}


@pytest.mark.parametrize("row", OP_TABLE.values(), ids=OP_TABLE.keys())
def test_operation_persists_with_cas_and_returns_the_request(
    store: SpecStore, ctx: RequestContext, row: OpRow
) -> None:
    spec = booted(store, ctx)
    uid = str(spec.instance_uuid)
    cell1 = ctx.target_cell("cell1")
    if row.start != LARGE:  # a resize already happened
        stored = store.get(cell1, uid)
        store.save(cell1, stored.spec.model_copy(update={"flavor": row.start}), rev=stored.rev)
    before = store.get(cell1, uid)

    plan = row.call(store, cell1, uid)

    after = store.get(cell1, uid)
    assert after.rev == before.rev + 1
    assert plan.persist.rev == after.rev
    assert after.spec == plan.persist
    assert after.spec.flavor == row.persisted_flavor
    assert after.spec.force_hosts == [SOURCE]  # forced host of the boot request is kept
    changed = {"flavor", "image"}
    if row.start != row.persisted_flavor:  # resize and revert re-derive NUMA and PCI
        changed |= {"numa_topology", "pci_requests"}
    assert after.spec.model_dump(exclude=changed) == before.spec.model_dump(exclude=changed)
    assert after.spec.image == (row.new_image or before.spec.image)
    assert plan.request.image == after.spec.image
    assert plan.needs_scheduling is row.scheduled
    assert plan.request.flavor == row.persisted_flavor
    assert plan.request.force_hosts is None
    assert plan.request.ignore_hosts == row.ignore_hosts
    assert plan.request.requested_destination == row.destination
    assert plan.request.num_instances == 1
    assert plan.request.availability_zone == "az1"
    assert store.locate(uid) == "cell1"
    doc = raw_doc(store, "cell1", uid)
    assert b"cmp-3" not in doc  # this move's destination is never stored
    assert b"allow_cross_cell_move" not in doc


def test_move_in_the_api_store_is_not_restricted_to_a_cell(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = booted(store, ctx, cell=None)
    plan = cold_migrate(store, ctx, spec.instance_uuid, source_host=SOURCE)
    assert plan.request.requested_destination is None
    assert plan.request.ignore_hosts == [SOURCE]
    assert store.get(ctx, spec.instance_uuid).rev == 2
    assert store.locate(spec.instance_uuid) == "api"


def test_stale_expected_rev_is_a_conflict_and_writes_nothing(
    store: SpecStore, ctx: RequestContext
) -> None:
    spec = booted(store, ctx)
    cell1 = ctx.target_cell("cell1")
    rev = store.get(cell1, spec.instance_uuid).rev
    live_migrate(store, cell1, spec.instance_uuid, source_host=SOURCE, expected_rev=rev)
    with pytest.raises(ConflictError) as info:
        resize(store, cell1, spec.instance_uuid, XLARGE, source_host=SOURCE, expected_rev=rev)
    assert (info.value.expected_rev, info.value.actual_rev) == (rev, rev + 1)
    stored = store.get(cell1, spec.instance_uuid)
    assert stored.rev == rev + 1
    assert stored.spec.flavor == LARGE


def test_write_between_read_and_save_is_a_conflict(
    store: SpecStore, ctx: RequestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = booted(store, ctx)
    cell1 = ctx.target_cell("cell1")
    real_get = store.get

    def get_then_concurrent_write(c: RequestContext, u: uuid.UUID | str) -> StoredSpec:
        stored = real_get(c, u)
        other = stored.spec.model_copy(update={"availability_zone": "az-other"})
        store.save(c, other, rev=stored.rev)  # another writer wins the race
        return stored

    monkeypatch.setattr(store, "get", get_then_concurrent_write)
    with pytest.raises(ConflictError) as info:
        resize(store, cell1, spec.instance_uuid, XLARGE, source_host=SOURCE)
    assert (info.value.expected_rev, info.value.actual_rev) == (1, 2)
    monkeypatch.undo()
    stored = store.get(cell1, spec.instance_uuid)
    assert (stored.rev, stored.spec.availability_zone, stored.spec.flavor) == (
        2, "az-other", LARGE
    )


def test_spec_is_read_where_the_context_targets(store: SpecStore, ctx: RequestContext) -> None:
    spec = booted(store, ctx)
    with pytest.raises(SpecNotFoundError) as info:
        evacuate(store, ctx, spec.instance_uuid, source_host=SOURCE)
    assert (info.value.store, info.value.home) == ("api", "cell1")
    with pytest.raises(SpecNotFoundError):
        unshelve(store, ctx.target_cell("cell1"), uuid.uuid4())
    assert store.get(ctx.target_cell("cell1"), spec.instance_uuid).rev == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, c, u: resize(s, c, u, LARGE, source_host=SOURCE), "resize to the flavor"),
        (lambda s, c, u: evacuate(s, c, u, source_host=SOURCE,
                                  destination=Destination(host=SOURCE)),
         "must not land on the source host"),
        (lambda s, c, u: live_migrate(s, c, u, source_host=SOURCE,
                                      destination=Destination(cell="cell2")),
         "live_migrate stays in cell 'cell1'"),
        (lambda s, c, u: prepare_move(s, c, u, MoveOperation.UNSHELVE, source_host=SOURCE),
         "no source host"),
    ],
    ids=["same-flavor", "evacuate-to-source", "live-migrate-other-cell", "unshelve-with-host"],
)
def test_refused_moves_write_nothing(
    store: SpecStore, ctx: RequestContext, call: Call, message: str
) -> None:
    spec = booted(store, ctx)
    cell1 = ctx.target_cell("cell1")
    with pytest.raises(InvalidInputError, match=message):
        call(store, cell1, str(spec.instance_uuid))
    stored = store.get(cell1, spec.instance_uuid)
    assert stored.rev == 1
    assert stored.spec == strip_transient(spec)


# -- end to end on a real redis-server ---------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[SpecStore, RequestContext, str], Any]
    store: str
    rev: int
    flavor: str
    request_ignore_hosts: list[str] | None = None
    request_destination: Destination | None = None


IN_CELL1 = Destination(cell="cell1")


def _boot(store: SpecStore, ctx: RequestContext, uid: str) -> None:
    spec = typical_spec(uid).model_copy(update={"force_hosts": ["cmp-1"]})
    spec.create(ctx)


LIFECYCLE: list[Step] = [
    Step("boot", _boot, "api", 1, "m1.large", None),
    Step("promote", lambda s, c, u: s.promote(c, u, "cell1"), "cell1", 1, "m1.large", None),
    Step("resize", lambda s, c, u: resize(s, c.target_cell("cell1"), u, XLARGE,
                                          source_host="cmp-1"),
         "cell1", 2, "m1.xlarge", ["cmp-1"], IN_CELL1),
    Step("revert", lambda s, c, u: revert_resize(s, c.target_cell("cell1"), u, LARGE),
         "cell1", 3, "m1.large", None),
    Step("migrate", lambda s, c, u: cold_migrate(s, c.target_cell("cell1"), u,
                                                 source_host="cmp-1"),
         "cell1", 4, "m1.large", ["cmp-1"], IN_CELL1),
    Step("evacuate", lambda s, c, u: evacuate(s, c.target_cell("cell1"), u,
                                              source_host="cmp-5"),
         "cell1", 5, "m1.large", ["cmp-5"], IN_CELL1),
]


@pytest.mark.redis
def test_lifecycle_on_real_redis(real_store: SpecStore, redis_server: RedisServer) -> None:
    uid = "7b2f3c1d-0e4a-4b5c-8d6e-9f0a1b2c3d4e"
    ctx = RequestContext("project-1", "user-1", store=real_store)
    raw = redis_server.client()
    try:
        for step in LIFECYCLE:
            result = step.run(real_store, ctx, uid)
            where = real_store.locate(uid)
            assert where == step.store, step.name
            key = (f"specstore:api:spec:{{{uid}}}" if step.store == "api"
                   else f"specstore:cell:{step.store}:spec:{{{uid}}}")
            assert raw.hget(key, "rev") == str(step.rev).encode(), step.name
            target = ctx if step.store == "api" else ctx.target_cell(step.store)
            stored = real_store.get(target, uid)
            assert stored.rev == step.rev, step.name
            assert stored.spec.flavor.name == step.flavor, step.name
            assert stored.spec.force_hosts == ["cmp-1"], step.name
            assert stored.spec.availability_zone == "az1", step.name
            assert stored.spec.ignore_hosts is None, step.name
            assert stored.spec.requested_destination is None, step.name
            assert stored.spec.instance_group is not None, step.name
            assert stored.spec.instance_group.policy == "anti-affinity", step.name
            assert stored.spec.instance_group.hosts == [], step.name
            if isinstance(result, MovePlan):
                assert result.request.ignore_hosts == step.request_ignore_hosts, step.name
                assert result.request.force_hosts is None, step.name
                assert result.request.flavor.name == step.flavor, step.name
                assert result.persist.rev == step.rev, step.name
                assert result.request.requested_destination == step.request_destination
        assert sorted(k.decode() for k in raw.scan_iter("specstore:*")) == [
            f"specstore:cell:cell1:spec:{{{uid}}}", f"specstore:loc:{{{uid}}}"
        ]

        # a second client moves the instance first: the stale plan is refused
        other = SpecStore.from_url(redis_server.url)
        try:
            live_migrate(other, ctx.target_cell("cell1"), uid, source_host="cmp-6")
        finally:
            other.close()
        with pytest.raises(ConflictError) as info:
            resize(real_store, ctx.target_cell("cell1"), uid, XLARGE, source_host="cmp-6",
                   expected_rev=5)
        assert (info.value.expected_rev, info.value.actual_rev) == (5, 6)
        assert raw.hget(f"specstore:cell:cell1:spec:{{{uid}}}", "rev") == b"6"
        assert real_store.get(ctx.target_cell("cell1"), uid).spec.flavor.name == "m1.large"
    finally:
        raw.close()
