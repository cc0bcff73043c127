"""The asyncio store on real Redis: concurrency through asyncio.gather, the object-style
coroutines, and interplay with the blocking store on the same data.

(The store suite, the cross-backend model-based test and the connection-fault tests run
against the asyncio store as well: see ``BOTH_STORES`` in conftest.)
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from specstore import ConflictError, RequestContext, RequestSpec, SpecStore
from specstore.aio import AsyncSpecStore
from specstore.errors import BackendError, SpecStoreError
from tests.factories import typical_spec
from tests.support.redis_cluster import RedisClusterNodes
from tests.support.redis_server import RedisServer, start_server
from tests.support.through_async import ThroughAsync

TASKS = 30


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.cluster),
    ]
)
def server_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        url: str = request.getfixturevalue("url")
        return url
    cluster: RedisClusterNodes = request.getfixturevalue("redis_cluster")
    cluster.flush()
    return cluster.url


def run(coroutine: object) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


def test_tens_of_tasks_doing_get_modify_save_on_one_spec(server_url: str) -> None:
    """Each task reads the spec, changes it and saves with the rev it read, retrying on a
    conflict. Every acknowledged save is one rev; the conflicts are seen, and typed."""

    async def scenario() -> None:
        async with AsyncSpecStore.from_url(server_url) as store:
            ctx = RequestContext(store=store)
            spec = typical_spec()
            first = await store.create(ctx, spec)
            outcomes: Counter[str] = Counter()
            acknowledged: list[int] = []

            async def worker(index: int) -> None:
                while True:
                    stored = await store.get(ctx, spec.instance_uuid)
                    stored.spec.scheduler_hints = {"worker": [str(index)]}
                    await asyncio.sleep(0)  # let the others read the same rev
                    try:
                        acknowledged.append(await store.save(ctx, stored.spec, rev=stored.rev))
                    except ConflictError:
                        outcomes["conflict"] += 1
                        continue
                    outcomes["saved"] += 1
                    return

            await asyncio.gather(*(worker(i) for i in range(TASKS)))
            final = await store.get(ctx, spec.instance_uuid)
            assert outcomes["saved"] == TASKS
            assert outcomes["conflict"] > 0
            assert sorted(acknowledged) == list(range(first + 1, first + TASKS + 1))
            assert final.rev == first + TASKS
            winner = final.spec.scheduler_hints["worker"][0]
            assert acknowledged[-1] == final.rev and winner.isdigit()

    run(scenario())


def test_saves_of_one_read_rev_side_by_side_let_exactly_one_win(server_url: str) -> None:
    async def scenario() -> None:
        async with AsyncSpecStore.from_url(server_url) as store:
            ctx = RequestContext(store=store)
            spec = typical_spec()
            rev = await store.create(ctx, spec)
            results = await asyncio.gather(
                *(store.save(ctx, spec, rev=rev) for _ in range(TASKS)), return_exceptions=True
            )
            assert results.count(rev + 1) == 1
            assert sum(isinstance(r, ConflictError) for r in results) == TASKS - 1
            assert (await store.get(ctx, spec.instance_uuid)).rev == rev + 1

    run(scenario())


def test_object_style_coroutines(server_url: str) -> None:
    async def scenario() -> None:
        async with AsyncSpecStore.from_url(server_url) as store:
            ctx = RequestContext(store=store)
            spec = typical_spec()
            await spec.acreate(ctx)
            assert spec.rev == 1
            spec.availability_zone = "az-2"
            await spec.asave(ctx)
            loaded = await RequestSpec.aget_by_instance_uuid(ctx, spec.instance_uuid)
            assert (loaded.availability_zone, loaded.rev) == ("az-2", 2)
            stale = await RequestSpec.aget_by_instance_uuid(ctx, spec.instance_uuid)
            await loaded.asave(ctx)
            with pytest.raises(ConflictError):
                await stale.asave(ctx)
            await stale.arefresh(ctx)
            assert stale.rev == 3
            await stale.adestroy(ctx)
            assert await store.locate(spec.instance_uuid) is None

    run(scenario())


def test_resume_moves_as_the_first_call_of_a_fresh_store(server_url: str) -> None:
    """A repair loop's store may call resume_moves first: on a cluster the client has not
    yet learnt its nodes then (it used to raise IndexError). Found by the model-based test's
    api-on-cluster layout."""
    with SpecStore.from_url(server_url) as blocking:
        blocking.create(RequestContext(store=blocking), typical_spec())

    async def scenario() -> None:
        async with AsyncSpecStore.from_url(server_url) as store:
            assert await store.resume_moves() == {}

    run(scenario())


def test_a_context_holding_the_other_kind_of_store_is_a_typed_error(url: str) -> None:
    async def scenario() -> None:
        async with AsyncSpecStore.from_url(url) as store:
            spec = typical_spec()
            with pytest.raises(SpecStoreError, match="AsyncSpecStore"):
                await spec.acreate(RequestContext(store=SpecStore.from_url(url)))
            with pytest.raises(SpecStoreError, match="a SpecStore"):
                spec.create(RequestContext(store=store))
            assert await store.locate(spec.instance_uuid) is None

    run(scenario())


def test_the_sync_and_the_asyncio_store_share_data_and_revs(server_url: str) -> None:
    blocking = SpecStore.from_url(server_url)
    spec = typical_spec()
    ctx = RequestContext(store=blocking)
    rev = blocking.create(ctx, spec)

    async def scenario() -> None:
        async with AsyncSpecStore.from_url(server_url) as store:
            actx = RequestContext(store=store)
            stored = await store.get(actx, spec.instance_uuid)
            assert stored.rev == rev and stored.spec == blocking.get(ctx, spec.instance_uuid).spec
            promoted = await store.promote(actx, spec.instance_uuid, "cell1")
            saved = await store.save(actx.target_cell("cell1"), spec, rev=promoted.rev)
            with pytest.raises(ConflictError):
                await store.save(actx.target_cell("cell1"), spec, rev=promoted.rev)
            held.append(saved)

    held: list[int] = []
    run(scenario())
    assert blocking.locate(spec.instance_uuid) == "cell1"
    with pytest.raises(ConflictError):
        blocking.save(ctx.target_cell("cell1"), spec, rev=held[0] - 1)
    assert blocking.save(ctx.target_cell("cell1"), spec, rev=held[0]) == held[0] + 1
    blocking.close()


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_error_reply_the_logic_does_not_read_is_a_backend_error(
    redis_server: RedisServer, url: str, kind: str
) -> None:
    """Redis refusing a write (OOM under maxmemory) reaches the caller as a BackendError,
    from either store: never as redis-py's ResponseError; and it says nothing was written
    (Redis refuses a script at its first write)."""
    store = SpecStore.from_url(url) if kind == "sync" else ThroughAsync.on(url)
    ctx = RequestContext(store=store)
    spec, refused = typical_spec(), typical_spec()
    store.create(ctx, spec)
    admin = redis_server.client()
    admin.config_set("maxmemory", 1)
    try:
        writes: list[Callable[[], object]] = [
            lambda: store.create(ctx, refused),
            lambda: store.save(ctx, spec, rev=1),
        ]
        for write in writes:
            with pytest.raises(BackendError, match="maxmemory") as info:
                write()
            assert not info.value.may_have_written
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
    assert store.get(ctx, spec.instance_uuid).rev == 1
    assert store.locate(refused.instance_uuid) is None
    store.close()


def test_calls_cancelled_midway_leave_no_reply_for_the_next_call(server_url: str) -> None:
    """Cancelled at any point of a call (after 0-3 turns of the event loop: before it starts,
    between sending and reading, while reading), a call's connection is dropped: a late reply
    never answers the next call, and every later call reads its own spec. (Turns of the loop,
    not timeouts: a fast server answers within any short timeout.)"""

    async def scenario() -> None:
        async with AsyncSpecStore.from_url(server_url) as store:
            ctx = RequestContext(store=store)
            specs = [typical_spec() for _ in range(8)]
            await store.create_many(ctx, specs)
            cancelled_midway = 0
            for round_ in range(300):
                spec = specs[round_ % len(specs)]
                call = asyncio.ensure_future(
                    store.get_many(ctx, [s.instance_uuid for s in specs])
                    if round_ % 3 == 0
                    else store.get(ctx, spec.instance_uuid)
                )
                turns = random.randrange(4)
                for _ in range(turns):
                    await asyncio.sleep(0)
                call.cancel()
                try:
                    await call
                except asyncio.CancelledError:
                    cancelled_midway += turns > 0
                other = specs[(round_ + 3) % len(specs)]
                stored = await store.get(ctx, other.instance_uuid)
                assert stored.spec.instance_uuid == other.instance_uuid
                assert await store.locate(other.instance_uuid) == "api"
            assert cancelled_midway > 0

    run(scenario())


@pytest.mark.redis
def test_connections_beyond_the_spare_ones_are_checked_before_sending(
    redis_server: RedisServer, url: str
) -> None:
    """More calls at once than spare connections are kept: the extra connections go back to
    redis-py's pool; after the server closed them all, every call still succeeds."""

    async def scenario() -> None:
        async with AsyncSpecStore.from_url(url, max_connections=4) as store:  # 2 spare
            ctx = RequestContext(store=store)
            specs = [typical_spec() for _ in range(3)]
            await store.create_many(ctx, specs)
            await asyncio.gather(*(store.get(ctx, s.instance_uuid) for s in specs))
            admin = redis_server.client()
            admin.client_kill_filter(_type="normal", skipme=True)
            admin.close()
            revs = await asyncio.gather(*(store.save(ctx, s, rev=1) for s in specs))
            assert revs == [2, 2, 2]

    run(scenario())


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_pool_out_of_connections_says_nothing_was_written(url: str, kind: str) -> None:
    """redis-py's MaxConnectionsError: no command was sent, and the error says so."""
    spec = typical_spec()
    SpecStore.from_url(url).create(RequestContext(), spec)

    async def saves() -> list[object]:
        async with AsyncSpecStore.from_url(url, max_connections=2) as store:
            ctx = RequestContext(store=store)
            return list(
                await asyncio.gather(
                    *(store.save(ctx, spec, rev=1) for _ in range(10)), return_exceptions=True
                )
            )

    if kind == "async":
        results = asyncio.run(saves())
    else:
        store = SpecStore.from_url(url, max_connections=1)
        ctx = RequestContext(store=store)
        assert isinstance(store.client, redis.Redis)
        pool = store.client.connection_pool
        held = pool.get_connection()  # the only connection, taken
        results = []
        try:
            results.append(backend_error(lambda: store.save(ctx, spec, rev=1)))
        finally:
            pool.release(held)
    failures = [r for r in results if isinstance(r, BackendError)]
    assert failures and all(not f.may_have_written for f in failures)
    stored_rev = SpecStore.from_url(url).get(RequestContext(), spec.instance_uuid).rev
    assert stored_rev == 1 + sum(r == 2 for r in results)


def backend_error(call: Callable[[], object]) -> BackendError:
    with pytest.raises(BackendError) as info:
        call()
    return info.value


@pytest.mark.redis
def test_a_batch_the_server_does_not_read_fails_typed_within_the_socket_timeout() -> None:
    """A batch larger than the socket buffers, sent to a server that reads nothing (stopped):
    the asyncio store waits for its write buffer under the socket timeout, then says the batch
    may have been written; once the server runs again, the next call works."""
    server = start_server()
    assert server.process is not None
    pid = server.process.pid

    async def scenario() -> None:
        async with AsyncSpecStore.from_url(server.url, socket_timeout=1.0) as store:
            ctx = RequestContext(store=store)
            await store.create(ctx, typical_spec())  # scripts loaded, a connection spare
            specs = [typical_spec() for _ in range(12_000)]  # about 18 MB of requests
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(BackendError) as info:
                    await asyncio.wait_for(store.create_many(ctx, specs), timeout=30)
                waited = time.monotonic() - started
            finally:
                os.kill(pid, signal.SIGCONT)
            assert info.value.may_have_written
            assert waited < 15, f"waited {waited:.1f} s"
            later = typical_spec()
            assert await store.create(ctx, later) >= 1

    try:
        run(scenario())
    finally:
        server.discard(kill=True)
