"""Moves to a cell on its own redis-server: two-phase, crash-safe, settled by resume_moves."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from specstore import RequestContext, RequestSpec, SpecStore
from specstore.bulk import repair
from specstore.connection import connect
from specstore.core.keys import Keyspace
from specstore.errors import (
    BackendError,
    MoveInProgressError,
    SpecExistsError,
    SpecNotFoundError,
)
from specstore.model import strip_transient
from specstore.topology import Backend, Topology
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.redis


class CrashError(Exception):
    """Stands in for the process dying after a step."""


@pytest.fixture
def servers() -> Iterator[tuple[RedisServer, RedisServer]]:
    api, cell = start_server(), start_server()
    yield api, cell
    for server in (api, cell):
        server.discard()


def make_store(
    api: RedisServer, cell: RedisServer, *, lease: float = 0.001, **kwargs: object
) -> SpecStore:
    """A store with the api store on ``api`` and cell1 on ``cell``; moves' leases expire at
    once unless ``lease`` says otherwise, so that resume/repair may settle them."""
    topology = Topology(
        Backend("api", connect(api.url), Keyspace()),
        {"cell1": Backend("cell1", connect(cell.url), Keyspace())},
    )
    return SpecStore(topology, move_lease_seconds=lease, **kwargs)  # type: ignore[arg-type]


def homes(store: SpecStore, uid: str) -> list[str]:
    """Every store that holds a copy of the spec, read straight from both servers."""
    api, cell = store.topology.api, store.topology.cells["cell1"]
    found = []
    if api.client.exists(api.keys.spec_key("api", uid)):
        found.append("api")
    if cell.client.exists(cell.keys.spec_key("cell1", uid)):
        found.append("cell1")
    return found


def test_promote_across_servers_moves_once(servers: tuple[RedisServer, RedisServer]) -> None:
    store = make_store(*servers)
    ctx = RequestContext(store=store)
    spec = typical_spec()
    spec.create(ctx)
    uid = str(spec.instance_uuid)
    first = store.promote(ctx, uid, "cell1")
    again = store.promote(ctx, uid, "cell1")
    assert (first.moved, again.moved) == (True, False)
    assert homes(store, uid) == ["cell1"]
    api_keys = servers[0].client().keys("*")
    assert api_keys == [store.keys.location_key(uid).encode()]  # the authority only
    assert servers[0].client().hget(api_keys[0], "store") == b"cell1"
    assert store.locate(uid) == "cell1"
    stored = store.get(ctx.target_cell("cell1"), uid)
    assert stored.spec == strip_transient(spec) and stored.rev == 1
    stored.spec.availability_zone = "az7"
    assert store.save(ctx.target_cell("cell1"), stored.spec, rev=1) == 2


def test_api_copy_is_readable_but_frozen_while_a_move_is_half_done(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    def crash_after_begin(step: str, uid: str) -> None:
        if step == "begin":
            raise CrashError(step)

    crashing = make_store(*servers, on_move_step=crash_after_begin)
    ctx = RequestContext(store=crashing)
    spec = typical_spec()
    spec.create(ctx)
    with pytest.raises(CrashError):
        crashing.promote(ctx, spec.instance_uuid, "cell1")
    assert crashing.get(ctx, spec.instance_uuid).spec == strip_transient(spec)
    with pytest.raises(MoveInProgressError):
        crashing.save(ctx, spec)
    with pytest.raises(MoveInProgressError):
        crashing.destroy(ctx, spec.instance_uuid)
    healthy = make_store(*servers)
    assert healthy.promote(ctx, spec.instance_uuid, "cell1").moved
    assert homes(healthy, str(spec.instance_uuid)) == ["cell1"]


@pytest.mark.parametrize(
    "foreign",
    [
        {"owner": "someone else"},  # a hash that is not a spec copy
        {"rev": "9", "doc": "x"},  # a rev, but no location record says the spec lives there
    ],
)
def test_promote_across_servers_never_replaces_foreign_data_at_the_cell_key(
    servers: tuple[RedisServer, RedisServer], foreign: dict[str, str]
) -> None:
    store = make_store(*servers)
    ctx = RequestContext(store=store)
    spec = typical_spec()
    spec.create(ctx)
    uid = str(spec.instance_uuid)
    cell = store.topology.cells["cell1"]
    cell_key = cell.keys.spec_key("cell1", uid)
    cell.client.hset(cell_key, mapping=cast(Any, foreign))
    with pytest.raises(SpecExistsError):
        store.promote(ctx, uid, "cell1")
    assert cell.client.hgetall(cell_key) == {k.encode(): v.encode() for k, v in foreign.items()}
    assert store.locate(uid) == "api"
    spec.availability_zone = "az9"
    assert store.save(ctx, spec, rev=1) == 2  # rolled back at once: writable in the api store


STEPS = [None, "begin", "adopt", "commit"]


@pytest.mark.parametrize("settle", ["resume_moves", "repair"])
def test_crash_after_each_step_then_settling_leaves_one_home_for_1000_specs(
    servers: tuple[RedisServer, RedisServer], settle: str
) -> None:
    plain = make_store(*servers)
    ctx = RequestContext(store=plain)
    specs: dict[str, RequestSpec] = {}
    crash_at: dict[str, str | None] = {}
    for index in range(1000):
        spec = typical_spec()
        spec.create(ctx)
        spec.availability_zone = f"az-{index}"
        spec.save(ctx)
        uid = str(spec.instance_uuid)
        specs[uid] = spec
        crash_at[uid] = STEPS[index % len(STEPS)]

    def hook(step: str, uid: str) -> None:
        if crash_at[uid] == step:
            raise CrashError(step)

    crashing = make_store(*servers, on_move_step=hook)
    for uid in specs:
        with contextlib.suppress(CrashError):
            crashing.promote(ctx, uid, "cell1")
    half_done = {uid for uid, step in crash_at.items() if step in ("begin", "adopt")}
    if settle == "resume_moves":
        settled = plain.resume_moves()
        expected_outcome = {"begin": "rolled_back", "adopt": "finished"}
        assert settled == {uid: expected_outcome[str(crash_at[uid])] for uid in half_done}
    else:
        report = repair(plain)
        assert {p.instance_uuid for p in report.plans} == half_done
        assert all(p.settle_move and p.settle_move[:2] == ("api", "cell1") for p in report.plans)
        assert repair(plain, dry_run=True).found == 0
    assert plain.resume_moves() == {}
    for uid, spec in specs.items():
        expected_home = "api" if crash_at[uid] == "begin" else "cell1"
        assert homes(plain, uid) == [expected_home], uid
        assert plain.locate(uid) == expected_home
        stored = plain.get(ctx if expected_home == "api" else ctx.target_cell("cell1"), uid)
        assert stored.spec == strip_transient(spec)
        assert stored.rev == 2


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import redis
    from specstore import RequestContext, SpecStore
    from specstore.core.keys import Keyspace
    from specstore.topology import Backend, Topology

    api_port, cell_port, step, uid = sys.argv[1:]
    def hook(done, _uid):
        if done == step:
            os.kill(os.getpid(), signal.SIGKILL)
    topology = Topology(
        Backend("api", redis.Redis(port=int(api_port)), Keyspace()),
        {"cell1": Backend("cell1", redis.Redis(port=int(cell_port)), Keyspace())},
    )
    store = SpecStore(topology, move_lease_seconds=0.001, on_move_step=hook)
    store.promote(RequestContext(store=store), uid, "cell1")
    """
)


@pytest.mark.parametrize("step", ["begin", "adopt", "commit"])
def test_process_killed_between_steps_is_settled_by_resume(
    servers: tuple[RedisServer, RedisServer], step: str
) -> None:
    store = make_store(*servers)
    ctx = RequestContext(store=store)
    spec = typical_spec()
    spec.create(ctx)
    uid = str(spec.instance_uuid)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    result = subprocess.run(
        [sys.executable, "-c", KILLER, str(servers[0].port), str(servers[1].port), step, uid],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == -9, result.stderr.decode()
    store.resume_moves()
    expected = "api" if step == "begin" else "cell1"
    assert homes(store, uid) == [expected]
    target = ctx if expected == "api" else ctx.target_cell("cell1")
    assert store.get(target, uid).spec == strip_transient(spec)


def test_cell_server_stopped_mid_move_completes_on_next_attempt(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    api_server, cell_server = servers
    store = make_store(api_server, cell_server)
    ctx = RequestContext(store=store)
    spec, other = typical_spec(), typical_spec()
    spec.create(ctx)
    other.create(ctx)
    cell_server.stop()
    with pytest.raises(BackendError) as info:
        store.promote(ctx, spec.instance_uuid, "cell1")
    assert info.value.may_have_written is True  # the move was opened on the api server
    with pytest.raises(BackendError):
        store.promote(ctx, other.instance_uuid, "cell1")
    time.sleep(0.01)  # both leases (1 ms) expire
    assert store.resume_moves() == {
        str(spec.instance_uuid): "unreachable",
        str(other.instance_uuid): "unreachable",
    }
    assert store.get(ctx, spec.instance_uuid).spec == strip_transient(spec)  # still readable

    cell_server.start()
    assert store.promote(ctx, spec.instance_uuid, "cell1").moved
    assert homes(store, str(spec.instance_uuid)) == ["cell1"]
    # the other move is rolled back on resume: the cell never got its copy
    assert store.resume_moves() == {str(other.instance_uuid): "rolled_back"}
    assert homes(store, str(other.instance_uuid)) == ["api"]
    other.num_instances = 2
    store.save(ctx, other)  # writable again


def test_reads_of_promoted_specs_work_while_the_api_server_is_down(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    api_server, _ = servers
    store = make_store(*servers)
    ctx = RequestContext(store=store)
    moved = [typical_spec() for _ in range(5)]
    for spec in moved:
        spec.create(ctx)
        store.promote(ctx, spec.instance_uuid, "cell1")
    api_server.stop()
    cell_ctx = ctx.target_cell("cell1")
    for spec in moved:
        assert store.get(cell_ctx, spec.instance_uuid).spec == strip_transient(spec)
    batch = store.get_many(cell_ctx, [s.instance_uuid for s in moved])
    assert len(batch.found) == 5
    assert store.locate(moved[0].instance_uuid) == "cell1"
    with pytest.raises(BackendError):
        store.get(ctx, moved[0].instance_uuid)
    with pytest.raises(SpecNotFoundError):
        store.get(cell_ctx, typical_spec().instance_uuid)  # miss: locate skips the down api


def test_a_cell_server_out_of_memory_takes_no_copy(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """The cell's own server at its memory limit (noeviction) refuses the copy before writing
    anything: a create in the cell and a promote to it fail typed, the cell's server holds
    no spec key, resume_moves rolls both back, and both work once memory is there again."""
    api_server, cell_server = servers
    store = make_store(api_server, cell_server)
    api_ctx = RequestContext(store=store)
    cell_ctx = api_ctx.target_cell("cell1")
    waiting = typical_spec()
    waiting.create(api_ctx)
    uid = str(waiting.instance_uuid)
    new = typical_spec()
    admin = cell_server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    try:
        with pytest.raises(BackendError):
            store.promote(api_ctx, uid, "cell1")
        with pytest.raises(BackendError):
            store.create(cell_ctx, new)
        spec_keys = [k for k in admin.keys("*") if b":spec:" in k]
        assert spec_keys == []
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
    time.sleep(0.01)  # the moves' 1 ms leases run out
    assert set(store.resume_moves().values()) == {"rolled_back"}
    assert store.locate(uid) == "api"
    assert store.promote(api_ctx, uid, "cell1").moved
    store.create(cell_ctx, new)
    assert store.locate(str(new.instance_uuid)) == "cell1"
    assert homes(store, uid) == ["cell1"]


def test_resume_moves_goes_on_past_a_cell_server_out_of_memory(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    """Moves left open to two cells on their own servers; one of them is at its memory limit:
    resume_moves settles every move to the other, reports each of the first as unreachable
    (Redis's error reply is settled like a lost connection), and settles those too once memory
    is back."""
    api_server, full_server = servers
    other_server = start_server()
    try:
        topology = Topology(
            Backend("api", connect(api_server.url), Keyspace()),
            {
                "cell1": Backend("cell1", connect(full_server.url), Keyspace()),
                "cell2": Backend("cell2", connect(other_server.url), Keyspace()),
            },
        )

        def crash(step: str, uid: str) -> None:
            if step == "begin":
                raise CrashError(uid)

        crashing = SpecStore(topology, move_lease_seconds=0.001, on_move_step=crash)
        store = SpecStore(topology, move_lease_seconds=0.001)
        ctx = RequestContext(store=crashing)
        target: dict[str, str] = {}
        for index in range(8):
            spec = typical_spec()
            spec.create(ctx)
            uid = str(spec.instance_uuid)
            target[uid] = "cell1" if index % 2 else "cell2"
            with pytest.raises(CrashError):
                crashing.promote(ctx, uid, target[uid])
        time.sleep(0.01)
        admin = full_server.client()
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        try:
            settled = store.resume_moves()
        finally:
            admin.config_set("maxmemory", 0)
            admin.close()
        assert settled == {
            uid: "unreachable" if cell == "cell1" else "rolled_back" for uid, cell in target.items()
        }
        assert set(store.resume_moves().values()) == {"rolled_back"}
        assert {store.locate(uid) for uid in target} == {"api"}
    finally:
        other_server.discard()
