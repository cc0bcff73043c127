"""One authority for where a spec lives, with a cell on its own redis-server.

The api store (and cell1) live on one server, cell2 on another. Each test is a scenario in
which an earlier design broke a guarantee: a second home, a rev reused across a destroy, a
repair or a late step undoing acknowledged writes, a frozen spec.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from specstore import RequestContext, SpecStore, bulk, legacy
from specstore.connection import connect
from specstore.core.keys import API, Keyspace
from specstore.core.results import BatchDestroy
from specstore.errors import (
    BatchWriteError,
    ConflictError,
    CorruptDocumentError,
    MoveAbortedError,
    MoveInProgressError,
    SpecExistsError,
    SpecNotFoundError,
)
from specstore.model import RequestSpec
from specstore.topology import Backend, Topology
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.redis

REMOTE = "cell2"
LOCAL = "cell1"


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[RedisServer, RedisServer]]:
    api, cell = start_server(), start_server()
    yield api, cell
    api.discard()
    cell.discard()


@pytest.fixture
def servers(two_servers: tuple[RedisServer, RedisServer]) -> tuple[RedisServer, RedisServer]:
    for server in two_servers:
        client = server.client()
        client.flushall()
        client.close()
    return two_servers


def make_store(servers: tuple[RedisServer, RedisServer], **options: Any) -> SpecStore:
    """api and cell1 on the first server, cell2 on the second."""
    api, cell = servers
    topology = Topology(
        Backend("api", connect(api.url), Keyspace()),
        {REMOTE: Backend(REMOTE, connect(cell.url), Keyspace())},
    )
    return SpecStore(topology, **options)


def homes(store: SpecStore, uid: str) -> list[str]:
    """Every store holding a copy, read straight from both servers."""
    api, cell = store.topology.api, store.topology.cells[REMOTE]
    found = [s for s in (API, LOCAL) if api.client.exists(api.keys.spec_key(s, uid))]
    if cell.client.exists(cell.keys.spec_key(REMOTE, uid)):
        found.append(REMOTE)
    return found


class CrashError(Exception):
    """Stands in for the process dying right after a step."""


def crash_after(step: str) -> Any:
    def hook(done: str, _uid: str) -> None:
        if done == step:
            raise CrashError(step)

    return hook


def booted(store: SpecStore) -> tuple[RequestContext, RequestSpec, str]:
    ctx = RequestContext(project_id="p", user_id="u", store=store)
    spec = typical_spec()
    store.create(ctx, spec)
    return ctx, spec, str(spec.instance_uuid)


# 1 ------------------------------------------------------------------------------------------


def test_no_second_home_on_create_when_the_spec_lives_in_a_remote_cell(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    store.promote(ctx, uid, REMOTE)
    with pytest.raises(SpecExistsError) as info:
        store.create(ctx, spec)
    assert info.value.store == REMOTE
    assert store.create_many(ctx, [spec]).existing == {uid: REMOTE}
    record = legacy.InstanceRecord(uuid=uuid.UUID(uid), flavor=spec.flavor, project_id="p")
    assert legacy.ensure_spec(store, ctx, record) is False
    assert legacy.migrate_instances(store, ctx, [record]).already_present == 1
    assert homes(store, uid) == [REMOTE]
    assert store.locate(uid) == REMOTE
    kept = store.get(ctx.target_cell(REMOTE), uid).spec
    assert kept.scheduler_hints == spec.scheduler_hints  # not replaced by a minimal spec


def test_no_second_home_on_create_in_a_remote_cell_when_the_spec_lives_in_api(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    cell_ctx = ctx.target_cell(REMOTE)
    assert store.create_many(cell_ctx, [spec]).existing == {uid: API}
    with pytest.raises(SpecExistsError):
        store.create(cell_ctx, spec)
    assert homes(store, uid) == [API]
    # and the spec still promotes normally: nothing stale waits in the cell
    assert store.promote(ctx, uid, REMOTE).rev == 1
    assert homes(store, uid) == [REMOTE]


def test_create_in_a_remote_cell_goes_through_the_authority(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx = RequestContext(store=store).target_cell(REMOTE)
    specs = [typical_spec() for _ in range(3)]
    assert store.create(ctx, specs[0]) == 1
    result = store.create_many(ctx, specs)
    assert result.created == [str(s.instance_uuid) for s in specs[1:]]
    assert result.existing == {str(specs[0].instance_uuid): REMOTE}
    for spec in specs:
        assert store.locate(spec.instance_uuid) == REMOTE
        assert homes(store, str(spec.instance_uuid)) == [REMOTE]
    with pytest.raises(SpecExistsError):
        store.create(ctx.untargeted(), specs[1])


# 2 ------------------------------------------------------------------------------------------


def test_revs_continue_across_destroy_in_a_remote_cell_and_recreate_through_api(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    store.promote(ctx, uid, REMOTE)
    cell_ctx = ctx.target_cell(REMOTE)
    held = store.save(cell_ctx, spec, rev=1)
    store.destroy(cell_ctx, uid)
    assert store.locate(uid) is None
    assert store.create(ctx, spec) == held + 1
    with pytest.raises(ConflictError):
        store.save(ctx, spec, rev=held)
    store.promote(ctx, uid, REMOTE)
    store.destroy(cell_ctx, uid)
    assert store.create(cell_ctx, spec) == held + 2  # straight into the cell, too
    with pytest.raises(ConflictError):
        store.save(cell_ctx, spec, rev=held + 1)


# 3 ------------------------------------------------------------------------------------------


def test_repair_leaves_a_move_within_its_lease_alone(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    plain = make_store(servers)
    seen: dict[str, Any] = {}

    def repair_mid_move(step: str, uid: str) -> None:
        if step == "begin":
            seen["report"] = bulk.repair(plain)
            with pytest.raises(MoveInProgressError):
                plain.save(RequestContext(store=plain), spec)

    mover = make_store(servers, on_move_step=repair_mid_move)
    ctx, spec, uid = booted(mover)
    assert mover.promote(ctx, uid, REMOTE).moved
    assert seen["report"].repaired == 0
    assert homes(plain, uid) == [REMOTE]
    assert plain.resume_moves() == {}


def test_a_move_given_up_after_its_lease_never_adopts_later(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """The slow mover's lease expires; repair rolls the move back; a save through api is
    acknowledged; the mover's late adopt is refused, so no acknowledged save is lost."""
    plain = make_store(servers)
    acknowledged: dict[str, int] = {}

    def stall_after_begin(step: str, uid: str) -> None:
        if step == "begin":
            time.sleep(0.01)  # the 1 ms lease runs out
            assert bulk.repair(plain).repaired == 1
            spec.availability_zone = "az-after-rollback"
            acknowledged["rev"] = plain.save(RequestContext(store=plain), spec)

    slow = make_store(servers, move_lease_seconds=0.001, on_move_step=stall_after_begin)
    ctx, spec, uid = booted(slow)
    with pytest.raises(MoveAbortedError):
        slow.promote(ctx, uid, REMOTE)
    assert homes(plain, uid) == [API] and plain.locate(uid) == API
    stored = plain.get(ctx, uid)
    assert (stored.rev, stored.spec.availability_zone) == (acknowledged["rev"], "az-after-rollback")
    assert bulk.repair(plain).found == 0
    with pytest.raises(SpecNotFoundError):
        plain.save(ctx.target_cell(REMOTE), spec)  # the cell never took writes


# 4 ------------------------------------------------------------------------------------------


def test_a_late_adopt_of_a_retried_promote_cannot_resurrect_a_destroyed_spec(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    fast = make_store(servers)

    def retry_finishes_and_destroys(step: str, uid: str) -> None:
        if step == "begin":
            assert fast.promote(RequestContext(store=fast), uid, REMOTE).moved  # joins
            fast.destroy(RequestContext(store=fast).target_cell(REMOTE), uid)

    slow = make_store(servers, on_move_step=retry_finishes_and_destroys)
    ctx, _, uid = booted(slow)
    with pytest.raises(MoveAbortedError):
        slow.promote(ctx, uid, REMOTE)
    assert homes(fast, uid) == []
    assert fast.locate(uid) is None
    assert bulk.repair(fast).found == 0


# 5 ------------------------------------------------------------------------------------------


def test_resume_after_a_crash_after_adopt_never_brings_back_a_destroyed_spec(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("adopt"))
    ctx, spec, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    store = make_store(servers)
    # in the window the cell takes the writes, and locate says so
    assert store.locate(uid) == REMOTE
    with pytest.raises(MoveInProgressError):
        store.save(ctx, spec)
    cell_ctx = ctx.target_cell(REMOTE)
    assert store.save(cell_ctx, spec, rev=1) == 2
    store.destroy(cell_ctx, uid, rev=2)
    time.sleep(0.01)
    assert store.resume_moves() == {}  # the destroy settled the move: nothing to resume
    assert homes(store, uid) == [] and store.locate(uid) is None
    with pytest.raises(SpecNotFoundError):
        store.get(ctx, uid)


def test_resume_after_a_crash_inside_a_remote_destroy_finishes_the_destroy(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    mover = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("adopt"))
    ctx, _, uid = booted(mover)
    with pytest.raises(CrashError):
        mover.promote(ctx, uid, REMOTE)
    destroyer = make_store(servers, on_move_step=crash_after("destroy"))
    with pytest.raises(CrashError):
        destroyer.destroy(ctx.target_cell(REMOTE), uid)
    store = make_store(servers)
    time.sleep(0.01)
    assert store.resume_moves() == {uid: "destroyed"}
    assert homes(store, uid) == [] and store.locate(uid) is None
    assert store.create(ctx, typical_spec(uid)) == 2  # the lineage continues


def test_a_destroy_retried_after_a_crash_after_its_cell_step_finishes_it(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """The first destroy deleted the cell copy and stopped before telling the authority
    (found by review): the authority still named the cell, a retried destroy said
    SpecNotFoundError and changed nothing, and no create was possible until repair ran."""
    store = make_store(servers)
    ctx, _, uid = booted(store)
    store.promote(ctx, uid, REMOTE)
    destroyer = make_store(servers, on_move_step=crash_after("destroy"))
    with pytest.raises(CrashError):
        destroyer.destroy(ctx.target_cell(REMOTE), uid)
    assert store.locate(uid) == REMOTE and homes(store, uid) == []
    store.destroy(ctx.target_cell(REMOTE), uid)  # the retry finishes it
    assert store.locate(uid) is None
    with pytest.raises(SpecNotFoundError):  # and a third one finds nothing to do
        store.destroy(ctx.target_cell(REMOTE), uid)
    assert store.create(ctx, typical_spec(uid)) == 2  # the lineage continues


def test_a_retried_remote_destroy_leaves_a_newer_copy_alone(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """The authority moved on (the spec was re-created in the cell under a new epoch): the
    buried record of the old copy is no reason to touch the new one."""
    store = make_store(servers)
    ctx, _, uid = booted(store)
    cell_ctx = ctx.target_cell(REMOTE)
    store.promote(ctx, uid, REMOTE)
    store.destroy(cell_ctx, uid)
    with pytest.raises(SpecNotFoundError):
        store.destroy(cell_ctx, uid)
    rev = store.create(cell_ctx, typical_spec(uid))
    assert store.locate(uid) == REMOTE and store.get(cell_ctx, uid).rev == rev


def test_a_destroy_bulk_retried_after_its_authority_step_failed_finishes_it(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """The cell copies went, the authority refused its step (found by review): a retried
    destroy_bulk reported them missing and the authority kept naming the cell."""
    store = make_store(servers)
    ctx = RequestContext(project_id="p", user_id="u", store=store)
    specs = [typical_spec() for _ in range(3)]
    store.create_many(ctx, specs)
    uids = [str(s.instance_uuid) for s in specs]
    for uid in uids:
        store.promote(ctx, uid, REMOTE)
    cell_ctx = ctx.target_cell(REMOTE)
    admin = servers[0].client()
    admin.acl_setuser("default", enabled=True, nopass=True, commands=["-evalsha", "-eval"])
    try:
        with pytest.raises(BatchWriteError) as info:
            store.destroy_bulk(cell_ctx, uids)
    finally:
        admin.acl_setuser("default", enabled=True, nopass=True, commands=["+@all"])
        admin.close()
    result = info.value.result
    assert isinstance(result, BatchDestroy) and sorted(result.unknown) == sorted(uids)
    assert [store.locate(u) for u in uids] == [REMOTE] * 3
    again = store.destroy_bulk(cell_ctx, uids)
    assert (again.destroyed, again.missing) == (uids, [])
    assert [store.locate(u) for u in uids] == [None] * 3
    assert store.destroy_bulk(cell_ctx, uids).missing == uids
    assert store.create_many(ctx, specs).created == uids  # nothing names the cell any more


def test_a_destroy_bulk_whose_authority_read_fails_says_the_batch_did_write(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """The cell copies went before the authority's record could be read: the batch wrote,
    and says so per spec (unknown), never "nothing was written"; a retry finishes it."""
    store = make_store(servers)
    ctx = RequestContext(project_id="p", user_id="u", store=store)
    specs = [typical_spec() for _ in range(2)]
    store.create_many(ctx, specs)
    uids = [str(s.instance_uuid) for s in specs]
    for uid in uids:
        store.promote(ctx, uid, REMOTE)
    cell_ctx = ctx.target_cell(REMOTE)
    admin = servers[0].client()
    admin.acl_setuser("default", enabled=True, nopass=True, commands=["-hget"])
    try:
        with pytest.raises(BatchWriteError) as info:
            store.destroy_bulk(cell_ctx, uids)
    finally:
        admin.acl_setuser("default", enabled=True, nopass=True, commands=["+@all"])
        admin.close()
    result = info.value.result
    assert info.value.may_have_written
    assert isinstance(result, BatchDestroy) and sorted(result.unknown) == sorted(uids)
    assert homes(store, uids[0]) == [] and homes(store, uids[1]) == []
    assert store.destroy_bulk(cell_ctx, uids).destroyed == uids
    assert [store.locate(u) for u in uids] == [None, None]


def test_repair_finishes_a_remote_destroy_the_authority_was_not_told_of(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    store.promote(ctx, uid, REMOTE)
    destroyer = make_store(servers, on_move_step=crash_after("destroy"))
    with pytest.raises(CrashError):
        destroyer.destroy(ctx.target_cell(REMOTE), uid)
    report = bulk.repair(store)
    assert report.repaired == 1
    assert store.locate(uid) is None
    assert store.create(ctx, spec) == 2


# 6 ------------------------------------------------------------------------------------------


def test_reimporting_a_backup_from_before_a_promote_makes_no_second_home(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx, _, uid = booted(store)
    backup = io.BytesIO()
    bulk.export_specs(store, backup)
    store.promote(ctx, uid, REMOTE)
    summary = bulk.import_specs(store, lambda: io.BytesIO(backup.getvalue()), "jsonl")
    assert (summary.created, summary.existing) == (0, 1)
    assert homes(store, uid) == [REMOTE] and store.locate(uid) == REMOTE


def test_an_export_taken_mid_move_imports_to_one_home(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    crashing = make_store(servers, on_move_step=crash_after("adopt"))
    ctx, _, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    crashing.save(ctx.target_cell(REMOTE), typical_spec(uid))  # the cell copy takes a write
    dump = io.BytesIO()
    summary = bulk.export_specs(crashing, dump)
    assert summary.exported == 1  # the frozen api copy is not exported beside the cell's
    for server in servers:
        server.client().flushall()
    restored = make_store(servers)
    result = bulk.import_specs(restored, lambda: io.BytesIO(dump.getvalue()), "jsonl")
    assert result.created == 1
    assert homes(restored, uid) == [REMOTE]
    assert restored.get(ctx.target_cell(REMOTE), uid).rev == 2
    assert bulk.repair(restored).found == 0


def test_an_import_over_a_copy_adopted_by_an_open_move_keeps_the_move_visible(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """BUG (found by the model-based checker): replacing the cell copy of a move that crashed
    after adopt dropped the cell's mark of that adoption, so ``locate`` answered None for a
    spec whose import was just acknowledged, and the cell copy had no home."""
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("adopt"))
    ctx, _, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    assert crashing.locate(uid) == REMOTE  # the cell copy takes the writes
    backup = io.BytesIO()
    bulk.export_specs(crashing, backup, stores=[REMOTE])
    cell_ctx = ctx.target_cell(REMOTE)
    later = typical_spec(uid)
    later.availability_zone = "az-later"
    before = crashing.save(cell_ctx, later)
    store = make_store(servers)
    summary = bulk.import_specs(
        store, lambda: io.BytesIO(backup.getvalue()), "jsonl", overwrite=True
    )
    assert (summary.replaced, summary.created) == (1, 0)
    assert store.locate(uid) == REMOTE
    imported = store.get(cell_ctx, uid).rev
    assert imported > before
    time.sleep(0.01)
    assert store.resume_moves() == {uid: "finished"}
    assert store.locate(uid) == REMOTE and homes(store, uid) == [REMOTE]
    assert store.get(cell_ctx, uid).rev == imported


def test_import_into_a_remote_cell_continues_the_lineage(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    store.promote(ctx, uid, REMOTE)
    cell_ctx = ctx.target_cell(REMOTE)
    backup = io.BytesIO()
    bulk.export_specs(store, backup)
    held = store.save(cell_ctx, spec)
    store.destroy(cell_ctx, uid)
    kept = bulk.import_specs(store, lambda: io.BytesIO(backup.getvalue()), "jsonl")
    assert (kept.created, kept.existing) == (0, 1)  # destroyed since: stays destroyed
    assert store.locate(uid) is None
    summary = bulk.import_specs(
        store, lambda: io.BytesIO(backup.getvalue()), "jsonl", overwrite=True
    )
    assert summary.created == 1  # the operator asked for it back
    restored = store.get(cell_ctx, uid)
    assert restored.rev > held  # a rev held from before the destroy never matches
    with pytest.raises(ConflictError):
        store.save(cell_ctx, spec, rev=held)


# 7 ------------------------------------------------------------------------------------------


def test_a_cell_configured_with_the_api_url_shares_the_api_backend(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    url = servers[0].url
    topology = Topology.from_config({"redis_url": url, "cells": {REMOTE: {"redis_url": url}}})
    store = SpecStore(topology)
    ctx, _, uid = booted(store)
    assert not store.is_remote(REMOTE)
    assert store.promote(ctx, uid, REMOTE).moved
    assert store.locate(uid) == REMOTE
    store.close()


def test_an_adopt_refused_for_any_reason_rolls_the_move_back_at_once(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    cell = store.topology.cells[REMOTE]
    cell.client.set(cell.keys.location_key(uid), b"not a location record")
    with pytest.raises(CorruptDocumentError):
        store.promote(ctx, uid, REMOTE)
    assert store.locate(uid) == API
    assert store.save(ctx, spec, rev=1) == 2  # not frozen
    assert cell.client.get(cell.keys.location_key(uid)) == b"not a location record"


# 8 ------------------------------------------------------------------------------------------


def test_a_foreign_key_under_the_prefix_does_not_stop_resume_moves(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("begin"))
    ctx, _, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    api = crashing.topology.api
    strays = [str(uuid.uuid4()) for _ in range(2)]
    api.client.set(api.keys.location_key(strays[0]), b"a string")
    api.client.hset(api.keys.location_key(strays[1]), "move_id", "someone else's")
    api.client.set(api.keys.spec_key(API, strays[0]), b"not a hash")
    time.sleep(0.01)
    settled = make_store(servers).resume_moves()
    assert settled[uid] == "rolled_back"
    assert settled[strays[0]] == "corrupt"
    assert api.client.get(api.keys.location_key(strays[0])) == b"a string"
    assert api.client.hgetall(api.keys.location_key(strays[1])) == {b"move_id": b"someone else's"}


# 9 ------------------------------------------------------------------------------------------


def test_promote_again_after_a_crash_after_adopt_returns_the_current_rev(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    crashing = make_store(servers, on_move_step=crash_after("adopt"))
    ctx, spec, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    store = make_store(servers)
    assert store.save(ctx.target_cell(REMOTE), spec) == 2
    again = store.promote(ctx, uid, REMOTE)
    assert (again.rev, again.moved) == (2, True)
    assert store.promote(ctx, uid, REMOTE).moved is False
    assert homes(store, uid) == [REMOTE]


def test_destroy_bulk_and_locate_agree_about_a_spec_mid_move(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    for step, home in (("begin", API), ("adopt", REMOTE)):
        crashing = make_store(servers, on_move_step=crash_after(step))
        ctx, _, uid = booted(crashing)
        with pytest.raises(CrashError):
            crashing.promote(ctx, uid, REMOTE)
        store = make_store(servers)
        assert store.locate(uid) == home
        result = store.destroy_bulk(ctx, [uid])
        assert result.moving == {uid: REMOTE} and not result.destroyed
        assert not result.elsewhere
        if home == REMOTE:
            with pytest.raises(MoveInProgressError):
                store.destroy(ctx, uid)
            assert store.destroy_bulk(ctx.target_cell(REMOTE), [uid]).destroyed == [uid]
        assert homes(store, uid) == ([API] if home == API else [])
