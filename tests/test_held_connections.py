"""The connection held per thread for single commands (specstore.drivers.held), on a real server.

What redis-py's pool does for every command must still hold on the held connection: a server
restart costs no failed call, a failed call never leaves a reply behind for the next one, a
forked child opens its own connection, and an ended thread gives its connection back.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from specstore import BackendError, RequestContext, RequestSpec, SpecNotFoundError, SpecStore
from specstore.drivers.held import HeldConnections, held_connections
from specstore.model import strip_transient
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.redis


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of this test's own: it is restarted or kept busy (DEBUG SLEEP)."""
    server = start_server(["--enable-debug-command", "yes"])
    yield server
    server.discard(kill=True)


def test_the_first_call_after_a_server_restart_succeeds(own_server: RedisServer) -> None:
    store = SpecStore.from_url(own_server.url)
    ctx = RequestContext(store=store)
    spec = strip_transient(typical_spec())
    store.create(ctx, spec)  # the held connection is open now
    own_server.stop()
    own_server.start()  # no persistence: the spec is gone, the server answers again
    with pytest.raises(SpecNotFoundError):  # not a BackendError
        store.get(ctx, spec.instance_uuid)
    assert store.create(ctx, spec) == 1
    assert store.save(ctx, spec) == 2
    store.close()


def test_a_call_that_timed_out_leaves_no_reply_for_the_next_call(own_server: RedisServer) -> None:
    store = SpecStore.from_url(own_server.url, socket_timeout=0.2)
    ctx = RequestContext(store=store)
    first, second = (strip_transient(typical_spec()) for _ in range(2))
    store.create(ctx, first)
    store.create(ctx, second)
    admin = own_server.client()
    busy = threading.Thread(target=lambda: admin.execute_command("DEBUG", "SLEEP", "0.6"))  # type: ignore[no-untyped-call]
    busy.start()
    time.sleep(0.15)  # the server is asleep now
    try:
        with pytest.raises(BackendError):
            store.get(ctx, first.instance_uuid)  # its reply comes after the timeout
    finally:
        busy.join()
    # the late reply to the first get must not be taken for the second one's
    assert store.get(ctx, second.instance_uuid).spec == second
    assert store.get(ctx, first.instance_uuid).spec == first
    admin.close()
    store.close()


def _get_in_child(url: str, uid: str, queue: multiprocessing.Queue[str]) -> None:
    # the child inherits the parent's store (fork): it must not share the parent's socket
    store = _FORKED[url]
    ctx = RequestContext(store=store)
    for _ in range(200):
        got = store.get(ctx, uid)
        if str(got.spec.instance_uuid) != uid:
            queue.put("wrong reply")
            return
    queue.put("ok")


_FORKED: dict[str, SpecStore] = {}


def test_a_forked_child_uses_a_connection_of_its_own(real_store: SpecStore, url: str) -> None:
    ctx = RequestContext(store=real_store)
    spec = strip_transient(typical_spec())
    other = strip_transient(typical_spec())
    real_store.create(ctx, spec)
    real_store.create(ctx, other)
    real_store.get(ctx, spec.instance_uuid)  # the parent's held connection is open
    _FORKED[url] = real_store
    fork = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = fork.Queue()
    child = fork.Process(target=_get_in_child, args=(url, str(spec.instance_uuid), queue))
    child.start()
    try:
        for _ in range(200):  # meanwhile the parent reads another spec on its own socket
            assert real_store.get(ctx, other.instance_uuid).spec == other
        assert queue.get(timeout=30) == "ok"
    finally:
        child.join(timeout=30)
        _FORKED.clear()
    assert child.exitcode == 0


def test_only_plain_clients_hold_connections(url: str) -> None:
    assert isinstance(held_connections(redis.Redis.from_url(url)), HeldConnections)
    assert held_connections(redis.Redis.from_url(url, single_connection_client=True)) is None
    blocking = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url))
    assert held_connections(blocking) is None
    memory = SpecStore.from_url("memory://held-test")
    assert held_connections(memory.client) is None


def test_threads_sharing_a_store_each_get_their_own_replies(real_store: SpecStore) -> None:
    ctx = RequestContext(store=real_store)
    specs = [strip_transient(typical_spec()) for _ in range(8)]
    for spec in specs:
        real_store.create(ctx, spec)
    errors: list[str] = []

    def work(spec: RequestSpec) -> None:
        rev = 1
        for n in range(150):
            spec.num_instances = n + 1
            rev = real_store.save(ctx, spec, rev=rev)
            got = real_store.get(ctx, spec.instance_uuid)
            batch = real_store.get_many(ctx, [spec.instance_uuid])
            if (got.spec, got.rev, batch.found[0].rev) != (spec, rev, rev):
                errors.append(f"{spec.instance_uuid}: crossed replies at step {n}")
                return

    threads = [threading.Thread(target=work, args=(spec,)) for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [real_store.get(ctx, s.instance_uuid).rev for s in specs] == [151] * len(specs)
