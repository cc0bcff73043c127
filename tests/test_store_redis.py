"""Acceptance tests that only mean something on a real redis-server."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from specstore import (
    BackendError,
    ConflictError,
    RequestContext,
    SpecNotFoundError,
    SpecStore,
    SpecStoreError,
    WrongStoreError,
)
from specstore.model import strip_transient
from tests.factories import flavor, typical_spec
from tests.support.redis_server import RedisServer, free_port, require_binary

pytestmark = pytest.mark.redis


def scan_keys(server: RedisServer) -> set[str]:
    """What an operator sees with ``redis-cli --scan`` (the README's inspection command)."""
    cli = require_binary("redis-cli")
    out = subprocess.run(
        [cli, "-p", str(server.port), "--scan", "--pattern", "specstore:*"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def hget_cli(server: RedisServer, key: str, field: str) -> str:
    cli = require_binary("redis-cli")
    return subprocess.run(
        [cli, "-p", str(server.port), "HGET", key, field],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_lifecycle_keys_match_readme_layout(
    real_store: SpecStore, redis_server: RedisServer
) -> None:
    store, spec = real_store, typical_spec()
    uid = str(spec.instance_uuid)
    api = RequestContext("project-1", "user-1", store=store)
    cell1 = api.target_cell("cell1")

    spec.create(api)
    assert scan_keys(redis_server) == {f"specstore:api:spec:{{{uid}}}", f"specstore:loc:{{{uid}}}"}
    assert hget_cli(redis_server, f"specstore:api:spec:{{{uid}}}", "rev") == "1"
    assert store.get(api, uid).spec == strip_transient(spec)

    assert store.promote(api, uid, "cell1").moved
    assert scan_keys(redis_server) == {
        f"specstore:cell:cell1:spec:{{{uid}}}",
        f"specstore:loc:{{{uid}}}",
    }
    assert store.locate(uid) == "cell1"
    loaded = store.get(cell1, uid)
    assert loaded.spec == strip_transient(spec)

    resized = loaded.spec.model_copy(update={"flavor": flavor("m1.xlarge", 16384, 8)})
    assert store.save(cell1, resized, rev=loaded.rev) == 2
    with pytest.raises(ConflictError):
        store.save(cell1, resized, rev=loaded.rev)
    assert hget_cli(redis_server, f"specstore:cell:cell1:spec:{{{uid}}}", "rev") == "2"
    assert hget_cli(redis_server, f"specstore:cell:cell1:spec:{{{uid}}}", "schema") == (
        "RequestSpec/1.0"
    )
    assert store.get(cell1, uid).spec.flavor.name == "m1.xlarge"

    store.destroy(cell1, uid, rev=2)
    assert scan_keys(redis_server) == {f"specstore:loc:{{{uid}}}"}
    assert hget_cli(redis_server, f"specstore:loc:{{{uid}}}", "rev") == "2"
    assert hget_cli(redis_server, f"specstore:loc:{{{uid}}}", "state") == "destroyed"


def test_concurrent_cas_updates_lose_nothing(real_store: SpecStore) -> None:
    """8 threads get -> modify -> save with CAS on one spec for a few seconds."""
    ctx = RequestContext(store=real_store)
    spec = typical_spec()
    spec.create(ctx)
    uid = spec.instance_uuid
    deadline = time.monotonic() + 3.0
    successes = [0] * 8
    conflicts = [0] * 8

    def worker(index: int) -> None:
        store = SpecStore.from_url(real_store_url(real_store))
        try:
            while time.monotonic() < deadline:
                stored = store.get(ctx, uid)
                bumped = stored.spec.model_copy(
                    update={"num_instances": stored.spec.num_instances + 1}
                )
                try:
                    store.save(ctx, bumped, rev=stored.rev)
                    successes[index] += 1
                except ConflictError:
                    conflicts[index] += 1
        finally:
            store.close()

    run_threads([lambda i=i: worker(i) for i in range(8)])  # type: ignore[misc]
    final = real_store.get(ctx, uid)
    assert sum(successes) > 50 and sum(conflicts) > 0
    assert final.rev == 1 + sum(successes)
    assert final.spec.num_instances == 1 + sum(successes)


def test_promote_racing_save_ends_with_one_home_and_no_loss(real_store: SpecStore) -> None:
    url = real_store_url(real_store)
    api = RequestContext(store=real_store)
    for _ in range(40):
        spec = typical_spec()
        spec.create(api)
        uid = str(spec.instance_uuid)
        saved_zones: list[str] = []
        barrier = threading.Barrier(2)

        def saver(
            spec_uuid: str = uid,
            zones: list[str] = saved_zones,
            barrier: threading.Barrier = barrier,
        ) -> None:
            store = SpecStore.from_url(url)
            barrier.wait()
            try:
                for n in range(20):
                    current = store.get(api, spec_uuid).spec
                    current.availability_zone = f"az-{n}"
                    store.save(api, current)
                    zones.append(f"az-{n}")
            except (SpecNotFoundError, WrongStoreError):
                pass  # promoted between our get and save, or before our get: expected
            finally:
                store.close()

        def promoter(spec_uuid: str = uid, barrier: threading.Barrier = barrier) -> None:
            store = SpecStore.from_url(url)
            barrier.wait()
            store.promote(api, spec_uuid, "cell1")
            store.close()

        run_threads([saver, promoter])
        assert real_store.locate(uid) == "cell1"
        assert real_store.client.exists(real_store.keys.spec_key("api", uid)) == 0
        final = real_store.get(api.target_cell("cell1"), uid)
        expected_zone = saved_zones[-1] if saved_zones else spec.availability_zone
        assert final.spec.availability_zone == expected_zone
        assert final.rev == 1 + len(saved_zones)


def test_concurrent_double_promote_moves_once(real_store: SpecStore) -> None:
    url = real_store_url(real_store)
    api = RequestContext(store=real_store)
    for _ in range(40):
        spec = typical_spec()
        spec.create(api)
        uid = str(spec.instance_uuid)
        outcomes: list[Any] = []
        barrier = threading.Barrier(3)

        def promote(
            cell: str,
            spec_uuid: str = uid,
            out: list[Any] = outcomes,
            barrier: threading.Barrier = barrier,
        ) -> None:
            store = SpecStore.from_url(url)
            barrier.wait()
            try:
                out.append(store.promote(api, spec_uuid, cell).moved)
            except WrongStoreError as exc:
                out.append(exc.actual)
            finally:
                store.close()

        run_threads([lambda: promote("cell1"), lambda: promote("cell1"), lambda: promote("cell2")])
        home = real_store.locate(uid)
        assert home in ("cell1", "cell2")
        assert outcomes.count(True) == 1
        keys = {k.decode() for k in real_store.client.scan_iter(match=f"*{uid}*")}
        assert keys == {real_store.keys.spec_key(home, uid), real_store.keys.location_key(uid)}
        assert real_store.get(api.target_cell(home), uid).spec == strip_transient(spec)


class CountingConnection(redis.Connection):
    """A connection that counts round trips (one per packed send: a command or a pipeline)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.fixture
def counting_store(redis_server: RedisServer, real_store: SpecStore) -> Iterator[SpecStore]:
    pool = redis.ConnectionPool(port=redis_server.port, connection_class=CountingConnection)
    store = SpecStore(redis.Redis(connection_pool=pool))
    yield store
    store.close()


def round_trips(action: Callable[[], object]) -> int:
    before = CountingConnection.sends
    action()
    return CountingConnection.sends - before


def test_one_round_trip_per_single_spec_operation(
    counting_store: SpecStore, redis_server: RedisServer
) -> None:
    store = counting_store
    api = RequestContext(store=store)
    warm = typical_spec()  # first calls load the scripts (NOSCRIPT -> SCRIPT LOAD)
    store.create(api, warm)
    store.save(api, warm)
    store.promote(api, warm.instance_uuid, "cell0")
    store.destroy(api.target_cell("cell0"), warm.instance_uuid)
    store.locate(warm.instance_uuid)  # and open the pool's connection beside the held one

    spec = typical_spec()
    uid = spec.instance_uuid
    cell1 = api.target_cell("cell1")
    admin = redis_server.client()
    admin.config_resetstat()
    assert round_trips(lambda: store.create(api, spec)) == 1
    assert round_trips(lambda: store.get(api, uid)) == 1
    assert round_trips(lambda: store.save(api, spec, rev=1)) == 1
    assert round_trips(lambda: store.promote(api, uid, "cell1")) == 1
    assert round_trips(lambda: store.locate(uid)) == 1
    assert round_trips(lambda: store.destroy(cell1, uid)) == 1
    stats = admin.info("commandstats")
    admin.close()
    assert stats["cmdstat_evalsha"]["calls"] == 4  # create, save, promote, destroy
    # get is one HGETALL; create, promote and destroy read the location record with HGETALL
    # too; save, the spec living where it writes, with one HMGET of it (and one of the spec's
    # rev and schema); locate is one HMGET
    assert stats["cmdstat_hgetall"]["calls"] == 1 + 3
    assert stats["cmdstat_hmget"]["calls"] == 2 + 1

    batch = [typical_spec() for _ in range(50)]
    for item in batch:
        store.create(api, item)
    uids = [s.instance_uuid for s in batch]
    assert round_trips(lambda: store.get_many(api, uids)) == 1
    assert round_trips(lambda: store.destroy_bulk(api, uids)) == 1


def test_redis_down_gives_typed_errors_saying_nothing_was_written() -> None:
    store = SpecStore.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    ctx = RequestContext(store=store)
    spec = typical_spec()
    with pytest.raises(BackendError) as read_error:
        store.get(ctx, spec.instance_uuid)
    assert read_error.value.may_have_written is False
    with pytest.raises(BackendError) as write_error:
        store.save(ctx, spec)
    assert write_error.value.may_have_written is False
    assert "save" in str(write_error.value)


def test_scripts_are_reloaded_after_a_script_flush(real_store: SpecStore) -> None:
    ctx = RequestContext(store=real_store)
    spec = typical_spec()
    real_store.create(ctx, spec)
    real_store.client.script_flush()
    assert real_store.save(ctx, spec) == 2
    real_store.client.script_flush()
    others = [typical_spec() for _ in range(3)]
    for other in others:
        real_store.create(ctx, other)
    real_store.client.script_flush()
    result = real_store.destroy_bulk(ctx, [s.instance_uuid for s in others])
    assert len(result.destroyed) == 3


def real_store_url(store: SpecStore) -> str:
    assert isinstance(store.client, redis.Redis)
    kwargs = store.client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Run the targets concurrently; re-raise the first exception any of them raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def test_uuid_of_unknown_instance_is_fine_to_locate(real_store: SpecStore) -> None:
    assert real_store.locate(uuid.uuid4()) is None


ODD_NUMBERS = ["nan", "inf", "-inf", "1e3", "0x10", " 2 ", "2.0", "-1", "99999999999999999999"]
"""Number spellings Lua's tonumber reads but specstore never writes."""


def _odd_records(real_store: SpecStore, odd: str) -> Iterator[tuple[str, str]]:
    """(uid, which record holds ``odd``): a live api spec whose location record's rev or
    epoch, or whose spec record's rev, is ``odd``."""
    client = real_store.client
    keys = real_store.keys
    for where in ("location rev", "location epoch", "spec rev"):
        spec = typical_spec()
        uid = str(spec.instance_uuid)
        real_store.create(RequestContext(store=real_store), spec)
        key, field = (
            (keys.spec_key("api", uid), "rev")
            if where == "spec rev"
            else (keys.location_key(uid), where.split()[1])
        )
        client.hset(key, field, odd)
        yield uid, where


def _writes(store: SpecStore, ctx: RequestContext, uid: str) -> dict[str, Callable[[], object]]:
    spec = typical_spec(uid)
    return {
        "save": lambda: store.save(ctx, spec),
        "save with rev": lambda: store.save(ctx, spec, rev=1),
        "promote": lambda: store.promote(ctx, uid, "cell1"),
        "destroy": lambda: store.destroy(ctx, uid),
        "create": lambda: store.create(ctx, spec),
    }


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_records_holding_numbers_specstore_never_writes_are_refused_as_foreign(
    real_store: SpecStore, odd: str
) -> None:
    """Each write over such a record fails typed and changes nothing (it used to write 'nan'
    revs, or fail with a bare ValueError)."""
    ctx = RequestContext(store=real_store)
    client = real_store.client
    for uid, where in list(_odd_records(real_store, odd)):
        keys = [real_store.keys.spec_key("api", uid), real_store.keys.location_key(uid)]
        before = [client.hgetall(k) for k in keys]
        writes = _writes(real_store, ctx, uid)
        for name, write in writes.items():
            try:
                write()
            except SpecStoreError:
                pass
            else:
                pytest.fail(f"{name} over an odd {where} ({odd!r}) did not fail")
            assert [client.hgetall(k) for k in keys] == before, (name, where)


def test_revs_far_past_what_any_spec_reaches_still_count(real_store: SpecStore) -> None:
    """Revs up to 2**53 - 1 (where Lua's numbers stop being exact; no spec gets near) are read
    and written as the numbers they are (a limit of 15 digits refused them from 10**15 on)."""
    ctx = RequestContext(store=real_store)
    spec = typical_spec()
    uid = str(spec.instance_uuid)
    real_store.create(ctx, spec)
    high = 2**53 - 4
    for key in (real_store.keys.spec_key("api", uid), real_store.keys.location_key(uid)):
        real_store.client.hset(key, "rev", high)
    revs = [real_store.save(ctx, spec, rev=high + n) for n in range(3)]
    assert revs == [high + 1, high + 2, 2**53 - 1]
    assert real_store.promote(ctx, uid, "cell1").rev == 2**53 - 1
    assert real_store.get(ctx.target_cell("cell1"), uid).rev == 2**53 - 1
