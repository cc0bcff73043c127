"""Durability: a redis-server with AOF (fsync always) is SIGKILLed while writers save.

Writer threads create specs, save them with compare-and-set (``num_instances`` counts the
saves, so it always equals the rev) and promote some of them to a cell, recording every
acknowledged write with its rev and content. The server is killed mid-flight and restarted on
the same directory and port; then every acknowledged write must be there (the exact record of
the last acknowledgement, or of a later write whose reply was lost), every record must be
complete and decodable, every spec must have one home. A write that failed before it was sent
(``may_have_written=False``) must not be there. Several kill/restart rounds run on the same
data.

What this shows, and what it does not: SIGKILL ends the redis-server *process*; the machine,
its kernel and the page cache live on, so whatever the server had handed to write(2) reaches
the disk anyway -- the test passes with ``appendfsync no`` too. It shows that no write is
acknowledged before Redis has applied and appended it, that the AOF replays after a crash of
the process into complete, decodable records with one home each, and that the library's
``may_have_written`` is honest. It does not show that ``appendfsync always`` survives a power
loss or a kernel crash (that needs the disk's cache flushed, e.g. a VM hard reset or a
fault-injecting block device such as dm-flakey, which no test here provides).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from specstore import (
    BackendError,
    RequestContext,
    RequestSpec,
    SpecNotFoundError,
    SpecStore,
)
from specstore.core.keys import API
from specstore.model import strip_transient
from tests.factories import typical_spec
from tests.reliability import audit_keyspace
from tests.support.redis_server import RedisServer, start_server

pytestmark = [pytest.mark.reliability, pytest.mark.redis]

AOF = ["--appendonly", "yes", "--appendfsync", "always"]
WRITERS = 4
ROUNDS = 4
SPECS_PER_WRITER = 25
CELL = "cell1"


@dataclass(frozen=True)
class Version:
    """One state of one spec: where it lives, its rev and its exact persisted content."""

    home: str
    rev: int
    spec: RequestSpec


@dataclass
class Ledger:
    """What one writer knows: acknowledged state, and writes whose outcome is unknown."""

    acked: dict[str, Version] = field(default_factory=dict)
    maybe: dict[str, Version] = field(default_factory=dict)
    """Writes whose reply was lost (may_have_written=True): present or absent, never partial."""
    not_written: dict[str, Version] = field(default_factory=dict)
    """Writes that failed before being sent (may_have_written=False): must be absent."""
    acks: int = 0
    failures: int = 0
    unexpected: list[str] = field(default_factory=list)


class Writer(threading.Thread):
    """Creates, CAS-saves and promotes its own specs until told to stop."""

    def __init__(self, index: int, url: str, ledger: Ledger, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{index}", daemon=True)
        self.index = index
        self.url = url
        self.ledger = ledger
        self.stop_event = stop
        self.rng = random.Random(index * 7919 + int(time.time()))

    def run(self) -> None:
        store = SpecStore.from_url(self.url, socket_timeout=2, socket_connect_timeout=1)
        try:
            while not self.stop_event.is_set():
                self.step(store)
        except Exception as exc:  # reported through the ledger, checked by the test
            self.ledger.unexpected.append(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            store.close()

    def step(self, store: SpecStore) -> None:
        ledger = self.ledger
        ctx = RequestContext(project_id="p", user_id="u", store=store)
        writable = [u for u in ledger.acked if u not in ledger.maybe]
        if len(ledger.acked) + len(ledger.maybe) < SPECS_PER_WRITER and (
            not writable or self.rng.random() < 0.2
        ):
            spec = strip_transient(typical_spec())
            spec.scheduler_hints = {"writer": [str(self.index)]}
            uid = str(spec.instance_uuid)
            attempt = Version(API, 1, spec)
            self.write(uid, attempt, lambda: store.create(ctx, spec))
            return
        if not writable:
            time.sleep(0.01)  # everything is in doubt: nothing safe to write until re-read
            return
        uid = self.rng.choice(writable)
        current = ledger.acked[uid]
        if current.home == API and self.rng.random() < 0.1:
            attempt = Version(CELL, current.rev, current.spec)
            self.write(uid, attempt, lambda: store.promote(ctx, uid, CELL).rev)
            return
        bumped = current.spec.model_copy(update={"num_instances": current.spec.num_instances + 1})
        attempt = Version(current.home, current.rev + 1, bumped)
        home_ctx = ctx if current.home == API else ctx.target_cell(current.home)
        self.write(uid, attempt, lambda: store.save(home_ctx, bumped, rev=current.rev))

    def write(self, uid: str, attempt: Version, call: Callable[[], int]) -> None:
        ledger = self.ledger
        try:
            rev = call()
        except BackendError as exc:
            ledger.failures += 1
            if exc.may_have_written:
                ledger.maybe[uid] = attempt
            else:
                ledger.not_written.setdefault(uid, attempt)
                time.sleep(0.005)
            return
        if rev != attempt.rev:
            ledger.unexpected.append(f"{uid}: acknowledged rev {rev}, expected {attempt.rev}")
        ledger.acked[uid] = attempt
        ledger.acks += 1


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = start_server(AOF)
    yield server
    server.discard(kill=True)


def read_version(store: SpecStore, uid: str) -> Version | None:
    """What the restarted server holds for ``uid`` (None: nothing)."""
    home = store.locate(uid)
    if home is None:
        for where in (API, CELL):
            assert not store.client.exists(store.keys.spec_key(where, uid)), (
                f"{uid}: a spec hash in {where!r} without a location record"
            )
        return None
    ctx = RequestContext(store=store)
    try:
        stored = store.get(ctx if home == API else ctx.target_cell(home), uid)
    except SpecNotFoundError:
        pytest.fail(f"{uid}: location record names {home!r}, which holds nothing")
    return Version(home, stored.rev, stored.spec)


def settle(store: SpecStore, ledgers: list[Ledger]) -> tuple[int, int, int]:
    """Check every ledger against the restarted server; the observed state becomes the ack.

    Returns (acknowledged specs checked, in-doubt writes that landed, in-doubt writes that did
    not land).
    """
    checked = landed = not_landed = 0
    for ledger in ledgers:
        for uid in sorted(set(ledger.acked) | set(ledger.maybe) | set(ledger.not_written)):
            found = read_version(store, uid)
            acked, maybe = ledger.acked.get(uid), ledger.maybe.get(uid)
            # The last acknowledged state (nothing if never acknowledged), or the in-doubt write.
            allowed = [acked] if maybe is None else [acked, maybe]
            if found not in allowed:
                unsent = describe(ledger.not_written.get(uid))
                pytest.fail(
                    f"{uid}: stored {describe(found)}; acknowledged {describe(acked)}, in doubt "
                    f"{describe(maybe)}, failed before sending {unsent}"
                )
            if acked is not None:
                checked += 1
                assert found is not None and found.rev >= acked.rev
            if maybe is not None:
                if found == maybe:
                    landed += 1
                else:
                    not_landed += 1
            ledger.acked.pop(uid, None)
            if found is not None:
                ledger.acked[uid] = found
        ledger.maybe.clear()
        ledger.not_written.clear()
    return checked, landed, not_landed


def describe(version: Version | None) -> str:
    if version is None:
        return "nothing"
    return f"{version.home}@rev{version.rev}(num_instances={version.spec.num_instances})"


def test_acknowledged_writes_survive_sigkill(aof_server: RedisServer) -> None:
    ledgers = [Ledger() for _ in range(WRITERS)]
    totals = {"acks": 0, "failures": 0, "checked": 0, "landed": 0, "not_landed": 0}
    rng = random.Random()
    for round_no in range(ROUNDS):
        stop = threading.Event()
        writers = [Writer(i, aof_server.url, ledgers[i], stop) for i in range(WRITERS)]
        for writer in writers:
            writer.start()
        time.sleep(rng.uniform(1.0, 2.0))
        acks_before_kill = sum(ledger.acks for ledger in ledgers)
        aof_server.stop(kill=True)  # SIGKILL while the writers are mid-flight
        time.sleep(0.2)  # writers now fail before sending: connection refused
        stop.set()
        for writer in writers:
            writer.join(timeout=20)
            assert not writer.is_alive(), f"{writer.name} hangs"
        aof_server.start()  # same port, same directory: replays the AOF
        store = SpecStore.from_url(aof_server.url)
        try:
            checked, landed, not_landed = settle(store, ledgers)
            admin = aof_server.client()
            records = audit_keyspace(admin)
            admin.close()
        finally:
            store.close()
        unexpected = [u for ledger in ledgers for u in ledger.unexpected]
        assert not unexpected, unexpected
        assert acks_before_kill > 50, f"round {round_no}: too few writes to mean anything"
        assert len(records) == sum(len(ledger.acked) for ledger in ledgers)
        totals["checked"] += checked
        totals["landed"] += landed
        totals["not_landed"] += not_landed
    totals["acks"] = sum(ledger.acks for ledger in ledgers)
    totals["failures"] = sum(ledger.failures for ledger in ledgers)
    print(f"\ndurability: {ROUNDS} SIGKILL rounds, {totals['acks']} acknowledged writes, "
          f"{totals['checked']} acknowledged specs checked after restarts, "
          f"{totals['failures']} failed calls, in-doubt writes landed/absent "
          f"{totals['landed']}/{totals['not_landed']}, lost: 0")
    assert totals["failures"] >= ROUNDS  # each kill hit the writers

