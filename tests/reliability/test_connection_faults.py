"""Connection faults between the store and a real redis-server, injected by a TCP proxy.

The store talks to the server through :class:`~tests.support.tcp_proxy.TcpProxy` with short
timeouts (0.5 s); the test checks the server directly. Faults: connections refused, connects
that time out, requests black-holed (the reply never comes), replies dropped after the request
ran, connections cut mid-request, and the server SIGKILLed and restarted behind the proxy.

What must hold: every failure is a :class:`BackendError` (never a raw redis-py error);
``may_have_written`` is False for reads and for failures before the request was sent, True for
a write whose reply was lost; a retry with the held rev never applies a write twice nor loses
it; promote, destroy and create retried after a lost reply are safe; after a restart the
scripts are loaded again and no acknowledged write (AOF, fsync always) is lost. The restarts
hit writes in flight -- before and after they ran -- so each retry path is taken.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from specstore import (
    BackendError,
    ConflictError,
    RequestContext,
    RequestSpec,
    SpecExistsError,
    SpecNotFoundError,
    SpecStore,
)
from specstore.core import lua
from specstore.model import strip_transient
from tests.factories import typical_spec
from tests.reliability import audit_keyspace
from tests.support.redis_server import RedisServer, start_server
from tests.support.tcp_proxy import TcpProxy
from tests.support.through_async import ThroughAsync

pytestmark = [pytest.mark.reliability, pytest.mark.redis]

AOF = ["--appendonly", "yes", "--appendfsync", "always"]
TIMEOUT = 0.5
CELL = "cell1"


@dataclass
class Rig:
    server: RedisServer
    proxy: TcpProxy
    store: SpecStore
    admin: redis.Redis
    ctx: RequestContext
    kind: str = "sync"
    kills: int = 0
    pending_cut: threading.Timer | None = None

    def new_store(self) -> SpecStore:
        return store_through_proxy(self.proxy, self.kind)

    def warm(self) -> None:
        """Make sure the store's pool holds a live connection (and the scripts are loaded)."""
        if self.pending_cut is not None:  # a cut still closing links would cut the new ones
            self.pending_cut.join()
            self.pending_cut = None
        self.proxy.forward()
        self.proxy.accept_again()
        self.store.locate(uuid.uuid4())  # the pool's connection
        with contextlib.suppress(SpecNotFoundError):  # the connection held for single calls
            self.store.get(self.ctx, uuid.uuid4())

    def snapshot(self, uid: str) -> dict[str, Any]:
        """The spec hashes and location record of ``uid`` on the server, with their content."""
        found: dict[str, Any] = {}
        for raw in self.admin.scan_iter(match=f"*{{{uid}}}*"):
            key = raw.decode()
            if ":spec:" not in key and ":loc:" not in key:
                continue
            if self.admin.type(key) == b"hash":
                found[key] = self.admin.hgetall(key)
            else:
                found[key] = self.admin.get(key)
        return found

    def created(self, home: str = "api") -> RequestSpec:
        """A new spec stored (directly, without faults) in ``home``; returns it at rev 1."""
        spec = strip_transient(typical_spec())
        self.proxy.forward()
        self.store.create(self.ctx, spec)
        if home != "api":
            self.store.promote(self.ctx, spec.instance_uuid, home)
        return spec


@pytest.fixture(scope="module")
def server_and_proxy() -> Iterator[tuple[RedisServer, TcpProxy]]:
    server = start_server(AOF)
    proxy = TcpProxy(server.port)
    yield server, proxy
    proxy.stop()
    server.discard(kill=True)


FAULT_TOTALS: dict[str, int] = {}


def store_through_proxy(proxy: TcpProxy, kind: str) -> SpecStore:
    """A SpecStore ("sync") or an AsyncSpecStore ("async") reaching the server through
    ``proxy``, with short timeouts."""
    options: dict[str, Any] = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
    if kind == "async":
        return ThroughAsync.on(proxy.url, client=options)
    return SpecStore.from_url(proxy.url, **options)


@pytest.fixture(params=["sync", "async"])
def rig(
    server_and_proxy: tuple[RedisServer, TcpProxy], request: pytest.FixtureRequest
) -> Iterator[Rig]:
    server, proxy = server_and_proxy
    proxy.heal()
    faults_before = proxy.faults
    store = store_through_proxy(proxy, request.param)
    admin = server.client()
    admin.flushall()
    ctx = RequestContext(project_id="p", user_id="u", store=store)
    rig = Rig(server, proxy, store, admin, ctx, request.param)
    # Load every script once, so that a dropped reply is never just a NOSCRIPT reply.
    warmup = rig.created()
    store.save(ctx, warmup, rev=1)
    store.promote(ctx, warmup.instance_uuid, CELL)
    store.destroy(ctx.target_cell(CELL), warmup.instance_uuid)
    yield rig
    injected = proxy.faults - faults_before + rig.kills
    FAULT_TOTALS["faults"] = FAULT_TOTALS.get("faults", 0) + injected
    print(f" [faults injected: {injected}; in this module so far: {FAULT_TOTALS['faults']}]")
    store.close()
    admin.close()
    proxy.heal()


def backend_failure(call: Callable[[], object]) -> BackendError:
    """The BackendError ``call`` raises; any other outcome fails the test."""
    failure: BackendError | None = None
    try:
        result = call()
    except BackendError as exc:
        failure = exc
    except Exception as exc:
        pytest.fail(f"raised {type(exc).__name__} instead of BackendError: {exc}")
    if failure is None:
        pytest.fail(f"did not fail (returned {result!r})")
    assert isinstance(failure.__cause__, redis.RedisError)  # the redis-py error, kept as cause
    return failure


# -- faults, each leaving the proxy broken until rig.warm() --------------------------------


def refuse(rig: Rig) -> None:
    rig.proxy.refuse()


def stall_connects(rig: Rig) -> None:
    rig.proxy.stall_connects()


def blackhole_handshake(rig: Rig) -> None:
    """A fresh connection whose handshake (HELLO/CLIENT SETINFO) is never answered."""
    rig.proxy.cut_all()
    rig.proxy.blackhole()


def blackhole_request(rig: Rig) -> None:
    """A live connection; the request is swallowed and its reply never comes (timeout)."""
    rig.warm()
    rig.proxy.blackhole()


def cut_in_flight(rig: Rig) -> None:
    """A live connection; the request is swallowed and the link cut while the client waits."""
    rig.warm()
    rig.proxy.blackhole()
    rig.pending_cut = threading.Timer(0.15, rig.proxy.cut_all)
    rig.pending_cut.start()


def drop_reply(rig: Rig) -> None:
    """A live connection; the request runs on the server, its reply is lost with the link."""
    rig.warm()
    rig.proxy.drop_next_reply()


BEFORE_SEND = {
    "refused": refuse,
    "connect-timeout": stall_connects,
    "handshake-timeout": blackhole_handshake,
}
NOT_FORWARDED = {"blackhole": blackhole_request, "cut-in-flight": cut_in_flight}
ALL_FAULTS = {**BEFORE_SEND, **NOT_FORWARDED, "drop-reply": drop_reply}

Call = Callable[[], object]


def op_create(rig: Rig) -> tuple[str, Call]:
    spec = strip_transient(typical_spec())
    return str(spec.instance_uuid), lambda: rig.store.create(rig.ctx, spec)


def op_create_many(rig: Rig) -> tuple[str, Call]:
    spec = strip_transient(typical_spec())
    return str(spec.instance_uuid), lambda: rig.store.create_many(rig.ctx, [spec])


def op_save(rig: Rig) -> tuple[str, Call]:
    spec = rig.created()
    bumped = spec.model_copy(update={"num_instances": spec.num_instances + 1})
    return str(spec.instance_uuid), lambda: rig.store.save(rig.ctx, bumped, rev=1)


def op_promote(rig: Rig) -> tuple[str, Call]:
    uid = rig.created().instance_uuid
    return str(uid), lambda: rig.store.promote(rig.ctx, uid, CELL)


def op_destroy(rig: Rig) -> tuple[str, Call]:
    uid = rig.created().instance_uuid
    return str(uid), lambda: rig.store.destroy(rig.ctx, uid, rev=1)


def op_destroy_bulk(rig: Rig) -> tuple[str, Call]:
    uid = rig.created().instance_uuid
    return str(uid), lambda: rig.store.destroy_bulk(rig.ctx, [uid])


WRITES: dict[str, Callable[[Rig], tuple[str, Call]]] = {
    "create": op_create,
    "create_many": op_create_many,
    "save": op_save,
    "promote": op_promote,
    "destroy": op_destroy,
    "destroy_bulk": op_destroy_bulk,
}


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(ALL_FAULTS))
def test_reads_fail_typed_and_say_nothing_was_written(rig: Rig, fault: str) -> None:
    spec = rig.created()
    uid = spec.instance_uuid
    reads: dict[str, Callable[[], object]] = {
        "get": lambda: rig.store.get(rig.ctx, uid),
        "get_many": lambda: rig.store.get_many(rig.ctx, [uid, uuid.uuid4()]),
        "locate": lambda: rig.store.locate(uid),
    }
    for name, call in reads.items():
        ALL_FAULTS[fault](rig)
        exc = backend_failure(call)
        assert exc.may_have_written is False, f"{name} under {fault}: {exc}"
        assert "nothing was written" in str(exc)
    rig.warm()
    assert rig.store.get(rig.ctx, uid).rev == 1  # and the store works again


@pytest.mark.parametrize("fault", sorted(BEFORE_SEND))
@pytest.mark.parametrize("write", sorted(WRITES))
def test_writes_failing_before_sending_say_nothing_was_written(
    rig: Rig, fault: str, write: str
) -> None:
    uid, call = WRITES[write](rig)
    before = rig.snapshot(uid)
    BEFORE_SEND[fault](rig)
    exc = backend_failure(call)
    assert rig.snapshot(uid) == before  # indeed nothing was written...
    assert exc.may_have_written is False, f"{write} under {fault}: {exc}"  # ...and it says so


@pytest.mark.parametrize("fault", ["blackhole", "cut-in-flight", "drop-reply"])
@pytest.mark.parametrize("write", sorted(WRITES))
def test_writes_whose_reply_is_lost_say_they_may_have_written(
    rig: Rig, fault: str, write: str
) -> None:
    uid, call = WRITES[write](rig)
    before = rig.snapshot(uid)
    ALL_FAULTS[fault](rig)
    exc = backend_failure(call)
    assert exc.may_have_written is True, f"{write} under {fault}: {exc}"
    rig.warm()
    landed = rig.snapshot(uid) != before
    assert landed is (fault == "drop-reply"), f"{write} under {fault}: landed={landed}"


def test_retry_with_held_rev_after_a_lost_reply_is_exactly_once(rig: Rig) -> None:
    """60 CAS saves, each hit by a fault; retrying with the held rev applies it exactly once."""
    rng = random.Random()
    specs = [rig.created() for _ in range(5)]
    kinds = ["drop-reply"] * 6 + ["cut-in-flight"] * 3 + ["blackhole"]
    outcomes: dict[str, int] = {"landed": 0, "not_landed": 0}
    for _ in range(60):
        uid = rng.choice(specs).instance_uuid
        rig.warm()
        held = rig.store.get(rig.ctx, uid)
        intended = held.spec.model_copy(
            update={
                "num_instances": held.spec.num_instances + 1,
                "availability_zone": f"az-{held.rev + 1}",
            }
        )
        ALL_FAULTS[rng.choice(kinds)](rig)
        exc = backend_failure(lambda: rig.store.save(rig.ctx, intended, rev=held.rev))  # noqa: B023
        assert exc.may_have_written is True
        rig.warm()
        conflict: ConflictError | None = None
        try:  # the caller's recovery: retry with the rev it holds
            assert rig.store.save(rig.ctx, intended, rev=held.rev) == held.rev + 1
        except ConflictError as exc:
            conflict = exc
        if conflict is None:
            outcomes["not_landed"] += 1
        else:
            assert conflict.actual_rev == held.rev + 1  # the first attempt landed, once
            outcomes["landed"] += 1
        after = rig.store.get(rig.ctx, uid)
        assert after.rev == held.rev + 1
        assert after.spec == intended
    total = sum(
        s.num_instances - 1 for s in (rig.store.get(rig.ctx, x.instance_uuid).spec for x in specs)
    )
    assert total == 60  # every intended increment applied, none twice
    assert outcomes["landed"] > 0 and outcomes["not_landed"] > 0
    print(
        f"\nexactly-once: 60 faulted CAS saves, {outcomes['landed']} had landed, "
        f"{outcomes['not_landed']} had not; 0 duplicated, 0 lost"
    )
    audit_keyspace(rig.admin)


def test_promote_destroy_create_retried_after_a_lost_reply_are_safe(rig: Rig) -> None:
    for _ in range(5):
        # create: the retry finds the spec it created, once, at rev 1
        spec = strip_transient(typical_spec())
        uid = str(spec.instance_uuid)
        drop_reply(rig)
        assert backend_failure(lambda: rig.store.create(rig.ctx, spec)).may_have_written  # noqa: B023
        rig.warm()
        with pytest.raises(SpecExistsError) as exists:
            rig.store.create(rig.ctx, spec)
        assert exists.value.store == "api"
        stored = rig.store.get(rig.ctx, uid)
        assert (stored.rev, stored.spec) == (1, spec)

        # promote: the retry reports the move as already done; one home, same rev
        drop_reply(rig)
        assert backend_failure(lambda: rig.store.promote(rig.ctx, uid, CELL)).may_have_written  # noqa: B023
        rig.warm()
        again = rig.store.promote(rig.ctx, uid, CELL)
        assert (again.moved, again.rev) == (False, 1)
        assert rig.store.locate(uid) == CELL
        cell_ctx = rig.ctx.target_cell(CELL)
        assert rig.store.get(cell_ctx, uid).spec == spec
        audit_keyspace(rig.admin)

        # destroy with the held rev: the retry finds nothing left to destroy
        drop_reply(rig)
        failure = backend_failure(lambda: rig.store.destroy(cell_ctx, uid, rev=1))  # noqa: B023
        assert failure.may_have_written
        rig.warm()
        with pytest.raises(SpecNotFoundError):
            rig.store.destroy(cell_ctx, uid, rev=1)
        left = rig.snapshot(uid)  # only the buried location record, keeping the last rev
        assert [(r[b"state"], r[b"rev"]) for r in left.values()] == [(b"destroyed", b"1")]

        # promote whose request never arrived: the retry moves it
        other = rig.created()
        blackhole_request(rig)
        assert backend_failure(
            lambda: rig.store.promote(rig.ctx, other.instance_uuid, CELL)  # noqa: B023
        ).may_have_written
        rig.warm()
        assert rig.store.promote(rig.ctx, other.instance_uuid, CELL).moved
    audit_keyspace(rig.admin)


SCRIPTS = [getattr(lua, name) for name in dir(lua) if isinstance(getattr(lua, name), lua.LuaScript)]


class Restarts:
    """SIGKILL + restart of the server behind the proxy, and what was acknowledged meanwhile."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.acked: dict[str, tuple[str, int, RequestSpec]] = {}
        """uuid -> (home, rev, persisted spec) of every acknowledged write."""
        self.first_call_failures = 0
        self.retries_landed = 0
        """Retries that found the first attempt had landed (it ran before the kill)."""
        self.retries_ran = 0
        """Retries that returned normally (they did the work, or found it done: idempotent)."""

    def write_some(self, count: int) -> None:
        rig = self.rig
        for _ in range(count):
            spec = strip_transient(typical_spec())
            created = rig.store.create(rig.ctx, spec)
            bumped = spec.model_copy(update={"num_instances": 2})
            rev = rig.store.save(rig.ctx, bumped, rev=created)
            self.acked[str(spec.instance_uuid)] = ("api", rev, bumped)

    def kill(self) -> None:
        self.rig.server.stop(kill=True)
        self.rig.kills += 1

    def restart(self) -> None:
        self.rig.server.start()
        assert self.rig.admin.script_exists(lua.SAVE.sha) == [False]  # the script cache is gone

    def kill_and_restart(self, downtime: float) -> None:
        rig = self.rig
        self.kill()
        time.sleep(downtime)
        if downtime:  # while it is down: typed failures; reads say nothing was written
            uid, (_, rev, spec) = next(iter(self.acked.items()))
            assert backend_failure(lambda: rig.store.get(rig.ctx, uid)).may_have_written is False
            assert backend_failure(lambda: rig.store.locate(uid)).may_have_written is False
            failed = backend_failure(lambda: rig.store.save(rig.ctx, spec, rev=rev))
            assert failed.operation.startswith("save")
        self.restart()

    def eventually(
        self,
        call: Callable[[], Any],
        *,
        ran_before_kill: bool,
        landed: Callable[[], Any] | None = None,
    ) -> Any:
        """``call`` hit by a SIGKILL of the server, then retried after the restart.

        ``ran_before_kill``: the request runs (fsynced to the AOF), its reply is lost, then the
        server is killed; otherwise the request is held by the proxy and the server killed
        while the call waits, so it never runs. Either way the call must fail typed, saying
        it may have written; the retry must do the work, or -- when it raises ConflictError /
        SpecExistsError -- ``landed`` must confirm the first attempt landed, exactly once
        (without ``landed`` the call must be safe to repeat, so such an error fails the test).
        """
        rig = self.rig
        rig.warm()
        if ran_before_kill:
            for script in SCRIPTS:  # so that the reply dropped is not a NOSCRIPT refusal
                rig.admin.script_load(script.source)
            rig.proxy.drop_next_reply()
            failure = backend_failure(call)
            self.kill()
        else:
            rig.proxy.blackhole()
            killer = threading.Timer(0.1, self.kill)
            killer.start()
            failure = backend_failure(call)
            killer.join()
        assert failure.may_have_written is True, failure
        self.first_call_failures += 1
        self.restart()
        rig.warm()
        try:
            result = call()
        except (ConflictError, SpecExistsError):
            if landed is None:
                raise
            self.retries_landed += 1
            return landed()
        self.retries_ran += 1
        return result

    def bump(self, uid: str, *, ran_before_kill: bool) -> None:
        """A CAS save of ``uid`` hit by a restart (then NOSCRIPT -> load -> run)."""
        rig = self.rig
        home, rev, spec = self.acked[uid]
        bumped = spec.model_copy(update={"num_instances": spec.num_instances + 1})

        def landed() -> int:
            stored = rig.store.get(rig.ctx, uid)
            assert (stored.rev, stored.spec) == (rev + 1, bumped)  # the first try, exactly once
            return stored.rev

        new_rev = self.eventually(
            lambda: rig.store.save(rig.ctx, bumped, rev=rev),
            ran_before_kill=ran_before_kill,
            landed=landed,
        )
        assert new_rev == rev + 1
        self.acked[uid] = (home, new_rev, bumped)

    def verify(self) -> None:
        rig = self.rig
        rig.warm()
        for uid, (home, rev, spec) in self.acked.items():
            ctx = rig.ctx if home == "api" else rig.ctx.target_cell(home)
            stored = rig.store.get(ctx, uid)
            assert (stored.rev, stored.spec) == (rev, spec), uid
        assert len(audit_keyspace(rig.admin)) == len(self.acked)


def test_server_restarts_behind_the_proxy_lose_no_acknowledged_write(rig: Rig) -> None:
    """SIGKILL + restart (AOF, fsync always) behind the proxy: with and without downtime, and
    hitting writes in flight (before and after they ran); the retries are exactly-once."""
    restarts = Restarts(rig)
    restarts.write_some(10)
    for downtime, ran in ((0.0, True), (0.3, False), (0.0, False), (0.3, True)):
        restarts.kill_and_restart(downtime)
        restarts.bump(next(iter(restarts.acked)), ran_before_kill=ran)
        assert rig.admin.script_exists(lua.SAVE.sha) == [True]  # NOSCRIPT handled: reloaded
        restarts.write_some(5)

    for ran in (True, False):  # the pipelined path reloads its scripts too
        batch = [strip_transient(typical_spec()) for _ in range(5)]
        created = restarts.eventually(
            lambda: rig.store.create_many(rig.ctx, batch),  # noqa: B023
            ran_before_kill=ran,
        )
        done = {*created.created, *created.existing}
        assert done == {str(s.instance_uuid) for s in batch}
        # the retry found what the first try made (a pipeline may land in part), or made it
        assert bool(created.existing) is ran
        for spec in batch:
            restarts.acked[str(spec.instance_uuid)] = ("api", 1, spec)

    for ran in (True, False):
        moved = next(uid for uid, (home, _, _) in restarts.acked.items() if home == "api")
        promotion = restarts.eventually(
            lambda: rig.store.promote(rig.ctx, moved, CELL),  # noqa: B023
            ran_before_kill=ran,
        )
        _, rev, spec = restarts.acked[moved]
        assert (promotion.rev, promotion.moved) == (rev, not ran)
        restarts.acked[moved] = (CELL, rev, spec)

    restarts.kill_and_restart(0.0)
    restarts.verify()
    hits = 4 + 2 + 2
    assert restarts.first_call_failures == hits
    assert restarts.retries_landed == 2  # the two CAS saves that ran before the kill
    print(
        f"\nrestarts: {rig.kills} SIGKILLs, {restarts.first_call_failures} calls hit in flight "
        f"(typed), {restarts.retries_landed} retries found the write landed, "
        f"{restarts.retries_ran} retries did it; {len(restarts.acked)} specs checked, lost: 0"
    )
