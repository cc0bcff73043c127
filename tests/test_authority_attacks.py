"""Attacks on the one-authority design (api on one redis-server, cell2 on another).

Each test is one attack on a guarantee of specstore/core/two_phase.py: a second client, a retry, a
crash between steps, a late or duplicate step, a restarted or hung server, a foreign key. A
test that fails shows the guarantee broken; its docstring says how.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from specstore import RequestContext, SpecStore, bulk, legacy
from specstore.bulk import repairing
from specstore.core import lua, two_phase
from specstore.core.keys import API
from specstore.core.records import reply_text, write_args
from specstore.drivers import lua_sync
from specstore.drivers.sync import run
from specstore.errors import (
    BackendError,
    CorruptDocumentError,
    MoveAbortedError,
    MoveInProgressError,
    SpecExistsError,
    SpecNotFoundError,
    StoreError,
)
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer, start_server
from tests.test_authority import (
    REMOTE,
    CrashError,
    booted,
    crash_after,
    homes,
    make_store,
)

pytestmark = pytest.mark.redis

Servers = tuple[RedisServer, RedisServer]


@pytest.fixture(scope="module")
def two_servers() -> Iterator[Servers]:
    api, cell = start_server(), start_server()
    yield api, cell
    api.discard()
    cell.discard()


@pytest.fixture
def servers(two_servers: Servers) -> Servers:
    for server in two_servers:
        client = server.client()
        client.flushall()
        client.close()
    return two_servers


@pytest.fixture
def restartable() -> Iterator[Servers]:
    """Our own api and cell servers, which a test may kill, restart or pause."""
    api, cell = start_server(), start_server()
    yield api, cell
    for server in (api, cell):
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.discard(kill=True)


def cell_record(store: SpecStore, uid: str) -> dict[bytes, bytes]:
    cell = store.topology.cells[REMOTE]
    raw: dict[bytes, bytes] = cell.client.hgetall(cell.keys.location_key(uid))  # type: ignore[assignment]
    return raw


def adopt_args(store: SpecStore, spec: Any, rev: int) -> list[Any]:
    args = write_args(spec, store.codec)
    now = store.clock()
    return [args.doc, rev, args.schema, args.project_id, args.user_id, now, now]


# G7: a corrupt cell copy aborts the whole resume_moves / repair / promote ---------


def _adopted_move_with_a_foreign_cell_copy(servers: Servers) -> tuple[SpecStore, str, str]:
    """A promote crashed after adopt (move open, lease 1 ms); the cell spec key was then
    replaced by a hash specstore did not write. A second move crashed after begin."""
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("adopt"))
    ctx, _, corrupt = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, corrupt, REMOTE)
    cell = crashing.topology.cells[REMOTE]
    key = cell.keys.spec_key(REMOTE, corrupt)
    cell.client.delete(key)
    cell.client.hset(key, mapping={"owner": "someone-else"})
    other = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("begin"))
    ctx2, _, healthy = booted(other)
    with pytest.raises(CrashError):
        other.promote(ctx2, healthy, REMOTE)
    time.sleep(0.01)
    return make_store(servers), corrupt, healthy


def test_resume_moves_over_a_foreign_cell_copy_keeps_the_frozen_api_copy(servers: Servers) -> None:
    """cell_fence.lua line 12 answers {'ok', 'adopted', HGET rev}; for a hash without 'rev'
    that is a nil bulk, which two_phase.give_up turns into the text "None" and passes to
    move_commit.lua as the rev. move_commit.lua DELetes the frozen api copy (line 13) and
    only then fails on math.max(loc.rev, tonumber("None")) (line 14): Redis does not roll a
    script back, so the only intact copy is gone while the authority still says store=api
    with the move open. resume_moves reports it as "unreachable" (a BackendError with
    may_have_written=True), not "corrupt", and retries it on every run."""
    store, corrupt, healthy = _adopted_move_with_a_foreign_cell_copy(servers)
    settled = store.resume_moves()
    assert API in homes(store, corrupt), "the frozen api copy was deleted by a failed commit"
    assert settled.get(corrupt) == "corrupt"  # observed: "unreachable"
    assert settled[healthy] == "rolled_back"


def test_repair_survives_a_foreign_hash_at_an_adopted_cell_copy(servers: Servers) -> None:
    """Same failed commit through repair -> apply_plan -> give_up: bulk.repair does not catch
    the BackendError, so one corrupt key aborts the whole repair (the other expired move is
    never settled) -- and the frozen api copy is deleted as above."""
    store, _corrupt, healthy = _adopted_move_with_a_foreign_cell_copy(servers)
    report = bulk.repair(store)  # observed: BackendError (bad argument #2 to 'max')
    assert report.skipped >= 1
    assert store.locate(healthy) == API


def test_promote_joining_over_a_foreign_cell_copy_raises_a_typed_error(servers: Servers) -> None:
    """cell_adopt.lua line 12 ('already' branch) returns {'ok', HGET rev, 'already'}; with no
    rev the reply holds a nil and two_phase.adopt's int(reply[1]) (line 198) raises a bare
    TypeError, not a specstore error."""
    crashing = make_store(servers, on_move_step=crash_after("adopt"))
    ctx, _, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    cell = crashing.topology.cells[REMOTE]
    key = cell.keys.spec_key(REMOTE, uid)
    cell.client.delete(key)
    cell.client.hset(key, mapping={"owner": "someone-else"})
    with pytest.raises(CorruptDocumentError):  # observed: TypeError
        make_store(servers).promote(ctx, uid, REMOTE)


# Fencing: the epoch is reused after a create is rolled back ---------


def test_create_in_a_remote_cell_works_again_after_a_rolled_back_create(servers: Servers) -> None:
    """move_abort.lua line 14 DELetes the authority record of a rolled-back create (rev 0),
    so its epoch restarts at 0. The cell still holds the fence's 'aborted' record at epoch 1
    (kept BURIED_SECONDS = 7 days). The next create claims epoch 1 again; cell_adopt.lua
    line 10-13 refuses it as 'stale'; create_copies hands that reply to reply_error, which
    does not know 'stale', so create raises a bare StoreError("unexpected script reply
    ['stale']") -- for 7 days, for create, create_many, import and legacy.ensure_spec."""
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("claim"))
    cell_ctx = RequestContext(store=crashing).target_cell(REMOTE)
    spec = typical_spec()
    uid = str(spec.instance_uuid)
    with pytest.raises(CrashError):
        crashing.create(cell_ctx, spec)
    time.sleep(0.01)
    store = make_store(servers)
    assert store.resume_moves() == {uid: "rolled_back"}
    assert store.locate(uid) is None and homes(store, uid) == []
    assert store.create(cell_ctx, spec) == 1  # observed: StoreError (unexpected reply 'stale')


def test_ensure_spec_returns_a_bool_after_a_rolled_back_create(servers: Servers) -> None:
    """legacy.ensure_spec promises True/False; after the epoch reuse above it raises
    StoreError("unexpected script reply ['stale']")."""
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("claim"))
    cell_ctx = RequestContext(store=crashing).target_cell(REMOTE)
    spec = typical_spec()
    with pytest.raises(CrashError):
        crashing.create(cell_ctx, spec)
    time.sleep(0.01)
    store = make_store(servers)
    store.resume_moves()
    record = legacy.InstanceRecord(uuid=spec.instance_uuid, flavor=spec.flavor, project_id="p")
    assert legacy.ensure_spec(store, cell_ctx, record) is True  # observed: StoreError


# G5: resume gives up a move whose lease a retried promote has just renewed ---------


def test_resume_moves_leaves_a_move_whose_lease_was_renewed_after_its_scan(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """resume_moves scans the leases, then settles. A retried promote that joins in between
    renews the lease: the resumer's seize (which checks the lease again, atomically, at the
    authority) must then leave the move to its mover instead of fencing it."""
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("begin"))
    ctx, _, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    time.sleep(0.01)
    real_seize = two_phase.seize
    joined: list[str] = []

    def seize(route: two_phase.Route, move: two_phase.OpenMove, settings: Any) -> Any:
        if route.uid == uid and not joined:
            joined.append(uid)  # a retried promote joins (30 s lease) and stops after begin
            retrier = make_store(servers, on_move_step=crash_after("begin"))
            with pytest.raises(CrashError):
                retrier.promote(ctx, uid, REMOTE)
        return real_seize(route, move, settings)

    monkeypatch.setattr(two_phase, "seize", seize)
    settled = make_store(servers).resume_moves()
    monkeypatch.undo()
    assert joined and uid not in settled  # left to its mover
    assert make_store(servers).promote(ctx, uid, REMOTE).moved  # the mover finishes it


def test_a_retried_promote_cannot_join_a_move_being_settled(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: resume seized the expired move; a retried promote that arrives while
    it settles is refused (typed), never joined and then undone."""
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("begin"))
    ctx, _, uid = booted(crashing)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    time.sleep(0.01)
    real_give_up = two_phase.give_up
    refused: list[Exception] = []

    def give_up(route: two_phase.Route, move: two_phase.OpenMove, settings: Any) -> Any:
        if route.uid == uid and not refused:
            with pytest.raises(MoveInProgressError) as info:
                make_store(servers).promote(ctx, uid, REMOTE)
            refused.append(info.value)
        return real_give_up(route, move, settings)

    monkeypatch.setattr(two_phase, "give_up", give_up)
    settled = make_store(servers).resume_moves()  # its own lease: 30 s
    monkeypatch.undo()
    assert refused and settled[uid] == "rolled_back"
    assert make_store(servers).promote(ctx, uid, REMOTE).moved  # a new attempt works


# G3 / G1: repair racing a promote and a destroy ---------


def _repair_races_a_promote_and_a_destroy(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> tuple[SpecStore, RequestContext, Any, str]:
    """repair observes the authority (api, epoch 1); a promote then finishes (cell2, epoch
    2) before repair reads the cell's record and the copies; then the spec is destroyed in
    cell2 (acknowledged) before repair writes. Returns (store, ctx, spec, uid)."""
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    repairer = make_store(servers)
    cell_backend = repairer.topology.cells[REMOTE]
    real_read, real_apply = repairing._read_record, repairing.apply_plan
    done: set[str] = set()

    def read_record(backend: Any, u: str, now_ms: int) -> Any:
        if backend is cell_backend and u == uid and "promote" not in done:
            done.add("promote")
            store.promote(ctx, uid, REMOTE)
        return real_read(backend, u, now_ms)

    def apply_plan(s: SpecStore, obs: Any, plan: Any) -> None:
        if obs.instance_uuid == uid and "destroy" not in done:
            done.add("destroy")
            store.destroy(ctx.target_cell(REMOTE), uid)
        real_apply(s, obs, plan)

    monkeypatch.setattr(repairing, "_read_record", read_record)
    monkeypatch.setattr(repairing, "apply_plan", apply_plan)
    bulk.repair(repairer)
    monkeypatch.undo()
    assert done == {"promote", "destroy"}
    return store, ctx, spec, uid


def test_repair_racing_a_destroy_leaves_the_destroyed_spec_dead(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan (rule 3: keep cell2 under a new epoch) writes the cell's record with
    loc_repair.lua, guarded only by 'epoch unchanged'. destroy.lua on a cell's own backend
    keeps the epoch (ARGV[4] = ''), so the guard passes after the destroy and make_live turns
    the buried record live again (store=cell2, PERSISTed) for a spec that is gone. The
    authority says destroyed, the cell says it lives there: a create in cell2 is refused
    with SpecExistsError(home='cell2'), and with the api down locate() answers 'cell2'."""
    store, ctx, spec, uid = _repair_races_a_promote_and_a_destroy(servers, monkeypatch)
    assert store.locate(uid) is None and homes(store, uid) == []
    assert cell_record(store, uid).get(b"store") == b"", cell_record(store, uid)
    assert store.create(ctx.target_cell(REMOTE), spec) > 0


def test_a_duplicate_adopt_after_a_fence_that_left_no_mark_makes_a_second_writable_copy(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cell_fence.lua line 15 writes the 'aborted' mark only when the cell holds no live
    record; with a live record of another lineage (here: the one the repair race brought
    back) it answers 'aborted' and writes nothing. The create is rolled back at the
    authority, repair then buries the stray record (loc_repair keeps its old epoch 2), and
    a duplicate delivery of the create's adopt (epoch 4 > 2) is accepted by cell_adopt.lua:
    cell2 takes writes for a spec the authority calls destroyed, and a create in api makes
    a second live, writable home."""
    store, ctx, spec, uid = _repair_races_a_promote_and_a_destroy(servers, monkeypatch)
    moves: list[two_phase.OpenMove] = []
    real_give_up = two_phase.give_up

    def give_up(route: two_phase.Route, move: two_phase.OpenMove, settings: Any) -> Any:
        moves.append(move)
        return real_give_up(route, move, settings)

    monkeypatch.setattr(two_phase, "give_up", give_up)
    cell_ctx = ctx.target_cell(REMOTE)
    with contextlib.suppress(SpecExistsError):
        store.create(cell_ctx, spec)
    monkeypatch.undo()
    bulk.repair(store)  # buries the stray cell record
    if moves:  # the create was refused: its adopt message arrives a second time
        late = moves[0]
        rev = int(store.client.hget(store.keys.location_key(uid), "rev") or 0) + 1
        route = store.route(REMOTE, uid)
        run(two_phase.adopt(route, late, adopt_args(store, spec, rev), store.moves))
    writable = []
    for target in (cell_ctx, ctx):
        try:
            if target is ctx:
                store.create(ctx, spec)
            store.save(target, spec)
            writable.append(target.store_name)
        except StoreError:
            pass
    assert len(writable) <= 1, f"{writable} both accept writes; locate={store.locate(uid)}"


def test_a_late_adopt_after_the_operator_removed_a_foreign_cell_record_is_refused(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A foreign value at the cell's location key makes the promote's adopt refuse; give_up
    treats cell_fence's 'foreign' as aborted (two_phase.give_up line 244) and rolls the move
    back at the authority -- but no 'aborted' mark for its epoch is left in the cell (there
    is nowhere to write it). The operator removes the foreign key as the CorruptDocumentError
    asks; a late (or duplicated) adopt of that move then lands: cell2 takes writes while the
    api copy, rolled back and writable, takes them too."""
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    cell = store.topology.cells[REMOTE]
    cell.client.set(cell.keys.location_key(uid), b"not a location record")
    moves: list[two_phase.OpenMove] = []
    real_give_up = two_phase.give_up

    def give_up(route: two_phase.Route, move: two_phase.OpenMove, settings: Any) -> Any:
        moves.append(move)
        return real_give_up(route, move, settings)

    monkeypatch.setattr(two_phase, "give_up", give_up)
    with pytest.raises(CorruptDocumentError):
        store.promote(ctx, uid, REMOTE)
    monkeypatch.undo()
    cell.client.delete(cell.keys.location_key(uid))  # the operator cleans up
    with contextlib.suppress(StoreError):
        route = store.route(REMOTE, uid)
        run(two_phase.adopt(route, moves[0], adopt_args(store, spec, 1), store.moves))
    writable = []
    for target in (ctx, ctx.target_cell(REMOTE)):
        try:
            store.save(target, spec)
            writable.append(target.store_name)
        except StoreError:
            pass
    assert len(writable) <= 1, f"{writable} both accept writes"


# G1 / G2 / G4: the api backend restarts from its last snapshot ---------


def _api_restarted_from_a_snapshot(servers: Servers) -> tuple[SpecStore, RequestContext, Any, str]:
    """api: create (rev 1), SAVE (Redis's default persistence is a periodic RDB snapshot),
    promote to cell2 and save there (rev 2, acknowledged by the cell's server, which stays
    up); then the api server is killed and restarts from its snapshot."""
    api_server, _ = servers
    store = make_store(servers)
    ctx, spec, uid = booted(store)
    api_server.client().save()
    store.promote(ctx, uid, REMOTE)
    spec.availability_zone = "az-saved-in-cell2"
    assert store.save(ctx.target_cell(REMOTE), spec) == 2
    store.close()
    api_server.stop(kill=True)
    api_server.start()
    return make_store(servers), ctx, spec, uid


@pytest.mark.xfail(
    strict=True,
    reason="the api backend is the authority: it must keep every acknowledged write (AOF); "
    "restored from an older snapshot it forgets moves that happened (README: durability)",
)
def test_after_the_api_restarts_from_a_snapshot_only_one_store_takes_writes(
    restartable: Servers,
) -> None:
    """The authority rolled back to (api, epoch 1) while cell2's own record still says
    (cell2, epoch 2): save.lua accepts writes in both stores. Nothing compares the cell's
    epoch with the authority's (the cell's is newer: proof the authority lost its tail)."""
    store, ctx, spec, _ = _api_restarted_from_a_snapshot(restartable)
    accepted = []
    for target in (ctx, ctx.target_cell(REMOTE)):
        try:
            store.save(target, spec)
            accepted.append(target.store_name)
        except StoreError:
            pass
    assert len(accepted) <= 1, f"both {accepted} accepted a save"


def test_a_promote_after_the_api_restarted_keeps_the_acknowledged_api_save(
    restartable: Servers,
) -> None:
    """After the restart a save in api is acknowledged (rev 2, 'az-saved-in-api'). promote
    then opens a move with epoch 2 again (move_begin.lua: epoch + 1 of the rolled-back
    record); cell_adopt.lua line 12 sees its own record at epoch 2 for cell2 and answers
    'already' (the epoch is the only fence, the move id is not compared); move_commit.lua
    DELetes the api copy. The acknowledged api save is gone, and its rev 2 now names the cell
    document: a compare-and-set holding rev 2 from the api succeeds on a different document."""
    store, ctx, spec, uid = _api_restarted_from_a_snapshot(restartable)
    spec.availability_zone = "az-saved-in-api"
    held = store.save(ctx, spec, rev=1)
    # the cell's copy was adopted by another move of the same epoch: refused, not 'already'
    with pytest.raises(MoveAbortedError):
        store.promote(ctx, uid, REMOTE)
    kept = store.get(ctx, uid)  # the acknowledged api save is still there, and writable
    assert (kept.rev, kept.spec.availability_zone) == (held, "az-saved-in-api")
    assert store.save(ctx, spec, rev=held) == held + 1


# G6: a cell without the api backend ---------


def test_a_create_whose_claim_landed_does_not_say_nothing_was_written(
    restartable: Servers,
) -> None:
    """With cell2's server down, create in cell2: the claim lands at the authority (a
    'creating' move) and the adopt is refused at connect: the create must say the write may
    have landed. Once the lease ran out, resume rolls the claim back and the create works."""
    _, cell_server = restartable
    store = make_store(restartable, move_lease_seconds=0.001)
    cell_server.stop()
    ctx = RequestContext(store=store).target_cell(REMOTE)
    spec = typical_spec()
    with pytest.raises(BackendError) as info:
        store.create(ctx, spec)
    assert info.value.may_have_written, str(info.value)  # observed: False
    cell_server.start()
    time.sleep(0.01)
    assert store.resume_moves() == {str(spec.instance_uuid): "rolled_back"}
    assert store.create(ctx, spec) == 1


def test_a_get_of_a_missing_spec_in_a_cell_does_not_wait_for_a_hung_api(
    restartable: Servers,
) -> None:
    """get() in cell2 reads cell2's server only, but a miss calls _home_hint -> locate on the
    api backend (store.py get, line 504) with no socket timeout: while the api server hangs
    (SIGSTOP), a get of a missing spec in cell2 never returns. Saves in cell2 do work."""
    api_server, _ = restartable
    store = make_store(restartable)
    ctx, spec, uid = booted(store)
    store.promote(ctx, uid, REMOTE)
    cell_ctx = ctx.target_cell(REMOTE)
    assert api_server.process is not None
    os.kill(api_server.process.pid, signal.SIGSTOP)
    try:
        assert store.save(cell_ctx, spec) == 2  # the cell works on its own
        outcome: list[Any] = []

        def miss() -> None:
            try:
                store.get(cell_ctx, str(uuid.uuid4()))
            except SpecNotFoundError as exc:
                outcome.append(exc)

        reader = threading.Thread(target=miss, daemon=True)
        reader.start()
        reader.join(3)
        assert outcome, "get of a missing spec in cell2 is still waiting for the api server"
    finally:
        os.kill(api_server.process.pid, signal.SIGCONT)


# G3: an old backup brings a destroyed spec back ---------


@pytest.mark.parametrize("where", [API, REMOTE])
def test_reimporting_an_old_backup_does_not_bring_back_a_destroyed_spec(
    servers: Servers, where: str
) -> None:
    """restore.lua (api, line 27) and move_claim.lua (cell) only check that the instance has
    no live home: a buried record (state 'destroyed') is treated as free, so a plain import
    (no --overwrite, nothing explicit) re-creates every spec destroyed since the backup."""
    store = make_store(servers)
    ctx, _, uid = booted(store)
    if where == REMOTE:
        store.promote(ctx, uid, REMOTE)
        ctx = ctx.target_cell(REMOTE)
    backup = io.BytesIO()
    bulk.export_specs(store, backup)
    store.destroy(ctx, uid)
    bulk.import_specs(store, lambda: io.BytesIO(backup.getvalue()), "jsonl")
    assert store.locate(uid) is None, "the destroyed spec is back"


# G7: foreign hashes overwritten ---------


def test_import_overwrite_leaves_a_foreign_hash_at_a_spec_key_alone(servers: Servers) -> None:
    """restore.lua line 15-20: HMGET doc, rev of a hash without our fields gives nils, and
    with overwrite write_spec DELetes the key. A foreign string at the same key is refused
    ('foreign'); a foreign hash is destroyed."""
    store = make_store(servers)
    _, _, uid = booted(store)
    backup = io.BytesIO()
    bulk.export_specs(store, backup)
    api = store.topology.api
    key = api.keys.spec_key(API, uid)
    api.client.delete(key)
    api.client.hset(key, mapping={"owner": "billing", "plan": "gold"})
    bulk.import_specs(store, lambda: io.BytesIO(backup.getvalue()), "jsonl", overwrite=True)
    assert api.client.hgetall(key) == {b"owner": b"billing", b"plan": b"gold"}


def test_create_leaves_a_foreign_hash_with_a_state_field_at_the_location_key(
    servers: Servers,
) -> None:
    """_lib.lua read_loc takes any hash with a 'state' field for a location record: create
    overwrites someone else's {'state': 'ACTIVE', 'host': ...} and PERSISTs it (its TTL is
    dropped)."""
    store = make_store(servers)
    api = store.topology.api
    spec = typical_spec()
    key = api.keys.location_key(str(spec.instance_uuid))
    api.client.hset(key, mapping={"state": "ACTIVE", "host": "compute-1"})
    api.client.expire(key, 3600)
    with pytest.raises(CorruptDocumentError):
        store.create(RequestContext(store=store), spec)
    assert api.client.hgetall(key) == {b"state": b"ACTIVE", b"host": b"compute-1"}


# attacks that held (kept as regression tests) ---------


def test_late_steps_of_a_rolled_back_move_change_nothing(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held: after resume rolled a promote back and the api copy took a save, the old move's
    adopt, commit and give_up (sent late, with the old OpenMove) are all refused."""
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("begin"))
    ctx, spec, uid = booted(crashing)
    moves: list[two_phase.OpenMove] = []
    real = lua_sync.run_script

    def spy(client: Any, script: Any, keys: list[str], args: list[Any], **options: Any) -> Any:
        reply = real(client, script, keys, args, **options)
        if script is lua.MOVE_BEGIN and reply_text(reply[0]) == "ok":
            moves.append(two_phase.OpenMove(reply_text(reply[1]), int(reply[2])))
        return reply

    monkeypatch.setattr(lua_sync, "run_script", spy)
    with pytest.raises(CrashError):
        crashing.promote(ctx, uid, REMOTE)
    monkeypatch.undo()
    time.sleep(0.01)
    store = make_store(servers)
    assert store.resume_moves() == {uid: "rolled_back"}
    acked = store.save(ctx, spec)
    route = store.route(REMOTE, uid)
    with pytest.raises((SpecNotFoundError, MoveAbortedError)):
        run(two_phase.adopt(route, moves[0], adopt_args(store, spec, 1), store.moves))
    with pytest.raises(SpecNotFoundError):
        run(two_phase.commit(route, moves[0], 1, store.moves))
    assert run(two_phase.give_up(route, moves[0], store.moves)) == "settled"
    assert homes(store, uid) == [API] and store.get(ctx, uid).rev == acked


def test_two_cells_on_one_remote_backend_never_share_a_spec(servers: Servers) -> None:
    """Held: cell2 and cell3 share one remote server (one cell record per instance there);
    mid-move to cell2, nothing can promote, save or create the instance in cell3."""
    api_server, cell_server = servers
    from specstore.topology import Topology

    topology = Topology.from_config(
        {
            "redis_url": api_server.url,
            "cells": {
                REMOTE: {"redis_url": cell_server.url},
                "cell3": {"redis_url": cell_server.url},
            },
        }
    )
    store = SpecStore(topology, on_move_step=crash_after("adopt"))
    ctx, spec, uid = booted(store)
    with pytest.raises(CrashError):
        store.promote(ctx, uid, REMOTE)
    plain = SpecStore(
        Topology.from_config(
            {
                "redis_url": api_server.url,
                "cells": {
                    REMOTE: {"redis_url": cell_server.url},
                    "cell3": {"redis_url": cell_server.url},
                },
            }
        )
    )
    with pytest.raises(StoreError):
        plain.promote(ctx, uid, "cell3")
    with pytest.raises(StoreError):
        plain.save(ctx.target_cell("cell3"), spec)
    with pytest.raises(StoreError):
        plain.create(ctx.target_cell("cell3"), spec)
    assert plain.promote(ctx, uid, REMOTE).moved
    assert plain.locate(uid) == REMOTE


def test_one_database_under_two_urls_and_one_prefix_is_refused(servers: Servers) -> None:
    """Broken before: the api at 127.0.0.1 and a cell at localhost of the same server were
    taken for two backends, and a repair buried every healthy api spec. Now the topology
    refuses them; other prefixes, another database number, and a server that is down (it
    cannot be asked) are fine."""
    from specstore.errors import ConfigurationError
    from specstore.topology import Topology

    api_server, cell_server = servers
    alias = api_server.url.replace("127.0.0.1", "localhost")
    assert alias != api_server.url
    with pytest.raises(ConfigurationError, match="same Redis database"):
        Topology.from_config({"redis_url": api_server.url, "cells": {"c1": {"redis_url": alias}}})
    with pytest.raises(ConfigurationError, match="same Redis database"):
        Topology.from_config_async(
            {"redis_url": api_server.url, "cells": {"c1": {"redis_url": alias}}}
        )
    for cell in (
        {"redis_url": alias, "prefix": "elsewhere"},
        {"redis_url": alias.rsplit("/", 1)[0] + "/1"},
        {"redis_url": cell_server.url},
    ):
        Topology.from_config({"redis_url": api_server.url, "cells": {"c1": cell}}).close()
    down = start_server()
    down_url = down.url
    down.discard(kill=True)
    Topology.from_config(
        {"redis_url": api_server.url, "cells": {"c1": {"redis_url": down_url}}}
    ).close()


@pytest.mark.cluster
def test_two_nodes_of_one_cluster_under_one_prefix_are_refused(redis_cluster: Any) -> None:
    from specstore.errors import ConfigurationError
    from specstore.topology import Topology

    first, second = (f"redis+cluster://127.0.0.1:{s.port}" for s in redis_cluster.servers[:2])
    with pytest.raises(ConfigurationError, match="same Redis database"):
        Topology.from_config({"redis_url": first, "cells": {"c1": {"redis_url": second}}})


def test_a_cluster_cell_that_is_down_at_startup_fails_typed_or_not_at_all(
    servers: Servers,
) -> None:
    """The blocking cluster client asks for the slot map when it is made: a cell whose cluster
    is down makes from_config fail with BackendError (it raised redis-py's own exception);
    the asyncio client connects lazily, so from_config_async succeeds (the alias check skips
    a cluster it cannot ask)."""
    from specstore.errors import BackendError
    from specstore.topology import Topology
    from tests.support.redis_server import free_port

    api_server, _ = servers
    config = {
        "redis_url": api_server.url,
        "cells": {"c1": {"redis_url": f"redis+cluster://127.0.0.1:{free_port()}"}},
    }
    with pytest.raises(BackendError, match="nothing was written"):
        Topology.from_config(config)
    Topology.from_config_async(config)
