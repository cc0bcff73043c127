"""Orphaned api-store specs: the pure decision, then collect_orphans on every backend."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from specstore import RequestContext, SpecStore
from specstore.bulk.gc import SpecState, Verdict, collect_orphans, decide
from specstore.connection import connect
from specstore.core.keys import Keyspace
from specstore.errors import InvalidInputError, InvalidUUIDError
from specstore.topology import Backend, Topology
from tests.factories import typical_spec
from tests.support.redis_server import RedisServer, start_server

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
HOUR = 3600.0


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


S = "3d0a1c44-5f4b-4c1e-9a55-0d2f9e6b7a10"
DECIDE_TABLE: dict[str, tuple[SpecState, bool, float | None, Verdict]] = {
    "live-old": (SpecState(S, 3, ago(10 * HOUR)), True, None, "live"),
    "dead-old": (SpecState(S, 3, ago(10 * HOUR)), False, None, "orphan"),
    "dead-exactly-min-age": (SpecState(S, 3, ago(HOUR)), False, None, "orphan"),
    "dead-young": (SpecState(S, 3, ago(HOUR - 1)), False, None, "young"),
    "live-young": (SpecState(S, 3, ago(1)), True, None, "live"),
    "live-past-ttl": (SpecState(S, 3, ago(5 * HOUR)), True, 4 * HOUR, "unpromoted"),
    "dead-past-ttl": (SpecState(S, 3, ago(5 * HOUR)), False, 4 * HOUR, "unpromoted"),
    "live-before-ttl": (SpecState(S, 3, ago(3 * HOUR)), True, 4 * HOUR, "live"),
    "dead-before-ttl": (SpecState(S, 3, ago(3 * HOUR)), False, 4 * HOUR, "orphan"),
    "ttl-never-below-min-age": (SpecState(S, 3, ago(HOUR / 2)), True, 60.0, "live"),
    "no-created-at": (SpecState(S, 3, None), False, None, "unreadable"),
    "no-rev": (SpecState(S, None, ago(10 * HOUR)), False, None, "unreadable"),
    "created-in-the-future": (SpecState(S, 3, NOW + dt.timedelta(hours=1)), False, None, "young"),
}


@pytest.mark.parametrize(
    ("state", "live", "ttl", "verdict"), DECIDE_TABLE.values(), ids=DECIDE_TABLE
)
def test_decide(state: SpecState, live: bool, ttl: float | None, verdict: Verdict) -> None:
    got = decide(state, live=live, now=NOW, min_age_seconds=HOUR, unpromoted_older_than=ttl)
    assert got == verdict


# -- against a store ----------------------------------------------------------------------------


def create_at(store: SpecStore, when: dt.datetime, cell: str | None = None) -> str:
    """Create a spec as if at ``when`` (the store's clock), promoted to ``cell`` if given."""
    clock = store.clock
    store.clock = lambda: when.isoformat(timespec="microseconds")
    try:
        ctx = RequestContext(store=store)
        spec = typical_spec()
        store.create(ctx, spec)
        if cell is not None:
            store.promote(ctx, spec.instance_uuid, cell)
    finally:
        store.clock = clock
    return str(spec.instance_uuid)


def snapshot(store: SpecStore) -> dict[str, Any]:
    """Every key of every backend with its type and content."""
    found: dict[str, Any] = {}
    for backend in store.topology.backends():
        client = backend.client
        for key in client.scan_iter(match="*"):
            kind = client.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            value = client.hgetall(key) if kind == "hash" else client.get(key)
            found[f"{backend.name}:{key!r}"] = (kind, value)
    return found


@pytest.fixture
def scene(store: SpecStore) -> dict[str, str]:
    """Specs in the api store (old or young, live or not) and one promoted to cell1."""
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "live-old": create_at(store, now - dt.timedelta(hours=10)),
        "dead-old": create_at(store, now - dt.timedelta(hours=10)),
        "dead-older": create_at(store, now - dt.timedelta(days=30)),
        "dead-young": create_at(store, now - dt.timedelta(minutes=5)),
        "live-young": create_at(store, now - dt.timedelta(minutes=5)),
        "live-stale": create_at(store, now - dt.timedelta(days=3)),
        "dead-promoted": create_at(store, now - dt.timedelta(days=30), cell="cell1"),
    }


def live_of(scene: dict[str, str]) -> set[str]:
    return {uid for name, uid in scene.items() if name.startswith("live")}


def test_removes_orphans_and_keeps_live_young_and_promoted(
    store: SpecStore, scene: dict[str, str]
) -> None:
    batches: list[list[str]] = []
    progress: list[int] = []

    def live(uids: list[str]) -> set[str]:
        batches.append(uids)
        return live_of(scene) & set(uids)

    report = collect_orphans(store, live, batch=2, progress=progress.append)
    assert sorted(report.orphans) == sorted([scene["dead-old"], scene["dead-older"]])
    assert report.orphan_count == report.removed == 2
    assert report.unpromoted == []
    assert report.checked == sum(progress) == 6  # the promoted spec is not in the api store
    assert sorted(u for b in batches for u in b) == sorted(
        uid for name, uid in scene.items() if name != "dead-promoted"
    )
    assert report.young == 1
    assert report.skipped == []
    assert not report.dry_run
    ctx = RequestContext(store=store)
    for name, uid in scene.items():
        expected = {"dead-old": None, "dead-older": None, "dead-promoted": "cell1"}.get(name, "api")
        assert store.locate(uid) == expected, name
    store.get(ctx.target_cell("cell1"), scene["dead-promoted"])


def test_dry_run_changes_nothing(store: SpecStore, scene: dict[str, str]) -> None:
    before = snapshot(store)
    report = collect_orphans(store, live_of(scene), dry_run=True)
    assert report.dry_run
    assert sorted(report.orphans) == sorted([scene["dead-old"], scene["dead-older"]])
    assert report.removed == 0
    assert snapshot(store) == before


def test_unpromoted_older_than_removes_live_ones_too_and_reports_them_apart(
    store: SpecStore, scene: dict[str, str]
) -> None:
    report = collect_orphans(store, live_of(scene), unpromoted_older_than=2 * 86400)
    # past the time-to-live whether live or not: reported as unpromoted, not as orphans
    assert sorted(report.unpromoted) == sorted([scene["live-stale"], scene["dead-older"]])
    assert report.unpromoted_count == 2
    assert report.orphans == [scene["dead-old"]]
    assert report.removed == 3
    assert store.locate(scene["dead-older"]) is None
    assert store.locate(scene["live-stale"]) is None
    assert store.locate(scene["live-old"]) == "api"


def test_a_spec_written_or_promoted_between_read_and_removal_is_kept(
    store: SpecStore, scene: dict[str, str]
) -> None:
    ctx = RequestContext(store=store)
    written, promoted = scene["dead-old"], scene["dead-older"]

    def live_and_meanwhile(uids: list[str]) -> set[str]:
        if written in uids:  # a boot retried: its spec saved after the scan read the rev
            stored = store.get(ctx, written)
            store.save(ctx, stored.spec, rev=stored.rev)
        if promoted in uids:  # scheduled at last: promoted after the scan read it
            store.promote(ctx, promoted, "cell1")
        return live_of(scene) & set(uids)

    report = collect_orphans(store, live_and_meanwhile)
    assert report.removed == 0
    reasons = {s.instance_uuid: s.reason for s in report.skipped}
    assert reasons == {
        written: "written since it was read (rev 1 -> 2)",
        promoted: "promoted to cell1 since it was read",
    }
    assert report.skipped_count == 2
    assert store.locate(written) == "api"
    assert store.get(ctx, written).rev == 2
    assert store.locate(promoted) == "cell1"


def test_live_collection_in_any_spelling_and_bad_input(
    store: SpecStore, scene: dict[str, str]
) -> None:
    spelled = [uuid.UUID(u).hex.upper() for u in live_of(scene)]
    report = collect_orphans(store, spelled, dry_run=True)
    assert sorted(report.orphans) == sorted([scene["dead-old"], scene["dead-older"]])
    with pytest.raises(InvalidUUIDError):
        collect_orphans(store, ["not-a-uuid"], dry_run=True)
    with pytest.raises(InvalidInputError, match="ages must not be negative"):
        collect_orphans(store, [], min_age_seconds=-1)


def test_a_key_that_is_not_a_spec_hash_is_skipped_and_left_alone(store: SpecStore) -> None:
    backend = store.topology.api
    uid = str(uuid.uuid4())
    key = backend.keys.spec_key("api", uid)
    backend.client.set(key, b"someone else's")
    report = collect_orphans(store, [], min_age_seconds=0)
    assert [(s.instance_uuid, s.reason) for s in report.skipped] == [
        (uid, "the key holds something that is not a spec hash")
    ]
    assert backend.client.get(key) == b"someone else's"


# -- a spec being moved to a cell on another backend --------------------------------------------


@pytest.fixture(scope="module")
def cell_server() -> Iterator[RedisServer]:
    server = start_server()
    yield server
    server.discard()


class CrashError(Exception):
    """Stands in for the mover dying right after the move began."""


@pytest.mark.redis
def test_a_spec_being_moved_is_skipped(url: str, cell_server: RedisServer) -> None:
    cell_client = cell_server.client()
    cell_client.flushall()

    def topology() -> Topology[Backend]:
        return Topology(
            Backend("api", connect(url), Keyspace()),
            {"cell2": Backend("cell2", connect(cell_server.url), Keyspace())},
        )

    def crash_after_begin(step: str, _uid: str) -> None:
        if step == "begin":
            raise CrashError(step)

    mover = SpecStore(topology(), on_move_step=crash_after_begin)
    uid = create_at(mover, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    with pytest.raises(CrashError):
        mover.promote(RequestContext(store=mover), uid, "cell2")
    store = SpecStore(topology())
    report = collect_orphans(store, [])
    assert report.orphans == [uid]
    assert report.removed == 0
    assert [(s.instance_uuid, s.reason) for s in report.skipped] == [(uid, "being moved to cell2")]
    assert store.locate(uid) == "api"
    for s in (mover, store):
        s.close()
    cell_client.close()
