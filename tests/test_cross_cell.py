"""Moving a spec from one cell to another (a cross-cell resize and its revert), on three real
servers: api and cell1 on the first, cell2 and cell3 on the second, cell4 on the third."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from specstore import RequestContext, SpecStore, bulk
from specstore.connection import connect
from specstore.core.keys import API, Keyspace
from specstore.errors import MoveInProgressError, SpecStoreError, WrongStoreError
from specstore.topology import Backend, Topology
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.redis

CELLS = ("cell1", "cell2", "cell3", "cell4")


@pytest.fixture(scope="module")
def three() -> Iterator[list[RedisServer]]:
    servers = [start_server() for _ in range(3)]
    yield servers
    for server in servers:
        server.discard()


@pytest.fixture
def servers(three: list[RedisServer]) -> list[RedisServer]:
    for server in three:
        client = server.client()
        client.flushall()
        client.close()
    return three


def make_store(servers: list[RedisServer], **options: Any) -> SpecStore:
    second = Backend("second", connect(servers[1].url), Keyspace())
    third = Backend("third", connect(servers[2].url), Keyspace())
    topology = Topology(
        Backend(API, connect(servers[0].url), Keyspace()),
        {"cell2": second, "cell3": second, "cell4": third},
    )
    return SpecStore(topology, **options)


def homes(store: SpecStore, uid: str) -> list[str]:
    """Every store holding a copy, read from the servers themselves."""
    found = []
    for name in (API, *CELLS):
        backend = store.backend(name)
        if backend.client.exists(backend.keys.spec_key(name, uid)):
            found.append(name)
    return found


def in_cell(store: SpecStore, cell: str) -> tuple[RequestContext, str]:
    ctx = RequestContext(project_id="p", store=store)
    spec = typical_spec()
    store.create(ctx, spec)
    uid = str(spec.instance_uuid)
    store.promote(ctx, uid, cell)
    return ctx, uid


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("cell1", "cell2"),  # api backend -> a cell's own
        ("cell2", "cell4"),  # one cell's own backend -> another's
        ("cell2", "cell3"),  # two cells on the same own backend
        ("cell2", "cell1"),  # a cell's own backend -> the api backend
        ("cell4", "cell2"),
    ],
)
def test_a_cross_cell_move_and_its_revert_keep_one_home_and_the_spec(
    servers: list[RedisServer], source: str, target: str
) -> None:
    store = make_store(servers)
    ctx, uid = in_cell(store, source)
    src_ctx, dst_ctx = ctx.target_cell(source), ctx.target_cell(target)
    spec = store.get(src_ctx, uid).spec
    spec.availability_zone = "az-before-the-move"
    rev = store.save(src_ctx, spec, rev=1)
    moved = store.move_to_cell(src_ctx, uid, target)
    assert (moved.moved, moved.rev) == (True, rev)
    assert homes(store, uid) == [target] and store.locate(uid) == target
    with pytest.raises(WrongStoreError) as info:
        store.save(src_ctx, spec)
    assert info.value.actual == target
    stored = store.get(dst_ctx, uid)
    assert (stored.rev, stored.spec.availability_zone) == (rev, "az-before-the-move")
    assert store.move_to_cell(src_ctx, uid, target).moved is False  # idempotent
    rev = store.save(dst_ctx, stored.spec, rev=rev)
    back = store.move_to_cell(dst_ctx, uid, source)  # the revert moves it back
    assert (back.moved, back.rev) == (True, rev)
    assert homes(store, uid) == [source] and store.locate(uid) == source
    assert store.save(src_ctx, stored.spec, rev=rev) == rev + 1
    assert bulk.repair(store).found == 0


class CrashError(Exception):
    pass


@pytest.mark.parametrize(
    ("source", "target"), [("cell2", "cell4"), ("cell2", "cell3"), ("cell2", "cell1")]
)
@pytest.mark.parametrize("step", ["begin", "freeze", "adopt", "commit"])
def test_a_crash_after_any_step_of_a_cross_cell_move_is_settled_by_resume(
    servers: list[RedisServer], source: str, target: str, step: str
) -> None:
    def crash(done: str, _uid: str) -> None:
        if done == step:
            raise CrashError(done)

    store = make_store(servers, move_lease_seconds=0.001)
    ctx, uid = in_cell(store, source)
    src_ctx = ctx.target_cell(source)
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash)
    with contextlib.suppress(CrashError):
        crashing.move_to_cell(src_ctx, uid, target)
    home = store.locate(uid)
    assert home in (source, target)
    for other in {source, target} - {home}:
        with pytest.raises((MoveInProgressError, WrongStoreError, SpecStoreError)):
            store.save(ctx.target_cell(other), store.get(ctx.target_cell(home), uid).spec)
    time.sleep(0.01)
    store.resume_moves()
    bulk.repair(store)
    final = store.locate(uid)
    assert final in (source, target)
    assert homes(store, uid) == [final]
    assert store.save(ctx.target_cell(final), store.get(ctx.target_cell(final), uid).spec) == 2
    assert bulk.repair(store).found == 0


@pytest.mark.parametrize("target", ["cell1", "cell4"])
def test_a_destroy_of_the_source_of_an_open_or_rolled_back_move_reaches_the_authority(
    servers: list[RedisServer], target: str
) -> None:
    """The model-based checker found this: a cross-cell move out of cell2 opened (the epoch
    moved on) but not yet frozen there; a destroy in cell2 was acknowledged, yet the
    authority kept naming cell2. The authority matches the report against the epoch the
    home's copy was installed under, and the open move ends with it."""

    def crash(done: str, _uid: str) -> None:
        if done == "begin":
            raise CrashError(done)

    store = make_store(servers, move_lease_seconds=0.001)
    ctx, uid = in_cell(store, "cell2")
    crashing = make_store(servers, move_lease_seconds=0.001, on_move_step=crash)
    with pytest.raises(CrashError):
        crashing.move_to_cell(ctx.target_cell("cell2"), uid, target)
    store.destroy(ctx.target_cell("cell2"), uid)  # the source was not frozen yet
    assert store.locate(uid) is None and homes(store, uid) == []
    time.sleep(0.01)
    assert store.resume_moves() == {}  # the destroy ended the move
    assert store.create(ctx, typical_spec(uid)) == 2  # the lineage continues

    # and after a move out of cell2 was rolled back (the epoch moved on without a new home)
    ctx, uid = in_cell(store, "cell2")
    with pytest.raises(CrashError):
        crashing.move_to_cell(ctx.target_cell("cell2"), uid, target)
    time.sleep(0.01)
    assert store.resume_moves() == {uid: "rolled_back"}
    store.destroy(ctx.target_cell("cell2"), uid)
    assert store.locate(uid) is None
    assert bulk.repair(store).found == 0


def test_a_move_within_one_backend_destroyed_before_its_commit_is_settled_as_destroyed(
    servers: list[RedisServer],
) -> None:
    """Found by the model-based checker (seed 1130765136): cell2 -> cell3 (one backend) crashed
    after the rename; the copy was destroyed in cell3 and that destroy crashed before telling
    the authority. Settling the move must bury the instance, not roll it back to a cell2 that
    holds nothing."""
    store = make_store(servers, move_lease_seconds=0.001)
    ctx, uid = in_cell(store, "cell2")

    def crash_after(step: str) -> Any:
        def hook(done: str, _uid: str) -> None:
            if done == step:
                raise CrashError(done)

        return hook

    mover = make_store(servers, move_lease_seconds=0.001, on_move_step=crash_after("adopt"))
    with pytest.raises(CrashError):
        mover.move_to_cell(ctx.target_cell("cell2"), uid, "cell3")
    assert store.locate(uid) == "cell3"
    destroyer = make_store(servers, on_move_step=crash_after("destroy"))
    with pytest.raises(CrashError):
        destroyer.destroy(ctx.target_cell("cell3"), uid)
    assert store.locate(uid) is None
    time.sleep(0.01)
    assert store.resume_moves() == {uid: "destroyed"}
    assert store.locate(uid) is None and homes(store, uid) == []
    assert store.create(ctx, typical_spec(uid)) == 2
