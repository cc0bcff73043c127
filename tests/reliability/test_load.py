"""Concurrency under load: several processes hammer an overlapping set of specs.

Each process, for a bounded time, picks one of ~50 specs at random and does one of:

* **read-modify-write** with compare-and-set: ``num_instances`` +1 and its own counter in
  ``scheduler_hints`` (``w<index>``) +1;
* **promote** from the api store to cell1 or cell2;
* **destroy** (compare-and-set on the rev it read) and **recreate** as a new generation (a fresh
  ``gen`` token in ``scheduler_hints``).

Every successful operation is logged with the spec's generation and the revs before/after.
The checker then proves, per spec generation: it was created once; its successful saves carry
exactly the revs created+1..final (no lost update, none twice); its counter counts them and
each process's counter equals that process's logged saves; each process saw its revs strictly
increase; a generation ends destroyed (at its final rev) or is the live one -- none vanishes.
And every spec has at most one home, named by its location record.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from specstore import (
    ConflictError,
    RequestContext,
    RequestSpec,
    SpecExistsError,
    SpecNotFoundError,
    SpecStore,
    WrongStoreError,
)
from specstore.core.keys import API
from specstore.model import strip_transient
from tests.factories import typical_spec
from tests.reliability import audit_keyspace
from tests.support.redis_server import RedisServer, start_server

pytestmark = pytest.mark.reliability

PROCESSES = 4
SPECS = 50
SECONDS = 8.0
CELLS = ("cell1", "cell2")
EXPECTED_MISSES = (ConflictError, SpecNotFoundError, WrongStoreError, SpecExistsError)


def new_generation(uid: str, token: str) -> RequestSpec:
    spec = strip_transient(typical_spec(uid))
    spec.scheduler_hints = {"gen": [token]}
    return spec


def generation_of(spec: RequestSpec) -> str:
    return spec.scheduler_hints["gen"][0]


class LoadWorker:
    """One process's loop; ``log`` holds its successful operations in the order they ran."""

    def __init__(self, index: int, url: str, uids: list[str], seed: int) -> None:
        self.index = index
        self.store = SpecStore.from_url(url, socket_timeout=10)
        self.ctx = RequestContext(project_id="p", user_id="u", store=self.store)
        self.uids = uids
        self.rng = random.Random(seed)
        self.log: list[dict[str, Any]] = []
        self.misses: Counter[str] = Counter()
        self.created = 0

    def ctx_for(self, home: str) -> RequestContext:
        return self.ctx if home == API else self.ctx.target_cell(home)

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            uid = self.rng.choice(self.uids)
            roll = self.rng.random()
            try:
                home = self.store.locate(uid)
                if home is None:
                    self.create(uid)
                elif roll < 0.70:
                    self.read_modify_write(uid, home)
                elif roll < 0.85:
                    self.promote(uid, home)
                else:
                    self.destroy_and_recreate(uid, home)
            except EXPECTED_MISSES as exc:
                self.misses[type(exc).__name__] += 1

    def create(self, uid: str) -> None:
        self.created += 1
        token = f"p{self.index}-{self.created}"
        rev = self.store.create(self.ctx, new_generation(uid, token))
        self.log.append({"op": "create", "uid": uid, "gen": token, "before": 0, "after": rev})

    def read_modify_write(self, uid: str, home: str) -> None:
        ctx = self.ctx_for(home)
        stored = self.store.get(ctx, uid)
        mine = f"w{self.index}"
        hints = dict(stored.spec.scheduler_hints)
        hints[mine] = [str(int(hints.get(mine, ["0"])[0]) + 1)]
        bumped = stored.spec.model_copy(
            update={"num_instances": stored.spec.num_instances + 1, "scheduler_hints": hints}
        )
        rev = self.store.save(ctx, bumped, rev=stored.rev)
        self.log.append({"op": "save", "uid": uid, "gen": generation_of(stored.spec),
                         "before": stored.rev, "after": rev, "store": home})

    def promote(self, uid: str, home: str) -> None:
        if home != API:
            self.misses["already_promoted"] += 1
            return
        cell = self.rng.choice(CELLS)
        outcome = self.store.promote(self.ctx, uid, cell)
        self.log.append({"op": "promote", "uid": uid, "gen": None, "before": outcome.rev,
                         "after": outcome.rev, "store": cell, "moved": outcome.moved})

    def destroy_and_recreate(self, uid: str, home: str) -> None:
        ctx = self.ctx_for(home)
        stored = self.store.get(ctx, uid)
        self.store.destroy(ctx, uid, rev=stored.rev)
        self.log.append({"op": "destroy", "uid": uid, "gen": generation_of(stored.spec),
                         "before": stored.rev, "after": stored.rev, "store": home})
        self.create(uid)


def load_process(
    index: int, url: str, uids: list[str], seconds: float, out: str, start: Any
) -> None:
    """Entry point of one spawned process: wait for the start, run, write the log as JSON."""
    result: dict[str, Any] = {"index": index}
    try:
        worker = LoadWorker(index, url, uids, seed=random.SystemRandom().randrange(2**32))
        start.wait(timeout=60)
        worker.run(seconds)
        result.update(log=worker.log, misses=dict(worker.misses))
    except BaseException:
        result["error"] = traceback.format_exc()
    Path(out).write_text(json.dumps(result))


@dataclass
class Generation:
    uid: str
    token: str
    creates: int = 0
    created_rev: int = 1
    saves: list[tuple[int, int, int]] = field(default_factory=list)
    """(process, rev before, rev after) of every successful save."""
    destroyed_at: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def load_server() -> Iterator[RedisServer]:
    server = start_server()
    yield server
    server.discard()


def collect_generations(
    logs: dict[int, list[dict[str, Any]]], problems: list[str]
) -> dict[tuple[str, str], Generation]:
    """The logged operations grouped by spec generation; checks each process's own order."""
    gens: dict[tuple[str, str], Generation] = {}
    for proc, entries in logs.items():
        last_rev: dict[tuple[str, str], int] = {}
        for entry in entries:
            uid, token, op = entry["uid"], entry["gen"], entry["op"]
            if op == "promote":
                continue
            g = gens.setdefault((uid, token), Generation(uid, token))
            if op == "create":
                g.creates += 1
                g.created_rev = entry["after"]
            elif op == "save":
                if entry["after"] != entry["before"] + 1:
                    problems.append(f"{uid}/{token}: save {entry['before']}->{entry['after']}")
                g.saves.append((proc, entry["before"], entry["after"]))
            elif op == "destroy":
                g.destroyed_at.append(entry["before"])
            seen = last_rev.get((uid, token), 0)
            if (op in ("save", "destroy") and entry["after"] < seen) or (
                op == "save" and entry["after"] == seen
            ):
                problems.append(f"process {proc} saw {uid}/{token} go back: rev {seen} then "
                                f"{entry['after']} ({op})")
            last_rev[(uid, token)] = entry["after"]
    return gens


def check_generation(
    g: Generation, live: RequestSpec | None, live_rev: int, procs: list[int], problems: list[str]
) -> None:
    """One generation's saves against how it ended (destroyed, or the stored ``live``)."""
    name = f"{g.uid}/{g.token}"
    if g.creates != 1:
        problems.append(f"{name}: created {g.creates} times")
    is_live = live is not None and generation_of(live) == g.token
    if len(g.destroyed_at) > 1:
        problems.append(f"{name}: destroyed {len(g.destroyed_at)} times")
    if g.destroyed_at and is_live:
        problems.append(f"{name}: destroyed at rev {g.destroyed_at[0]} but still stored")
    if g.destroyed_at:
        final = g.destroyed_at[0]
    elif is_live:
        final = live_rev
    else:
        problems.append(f"{name}: vanished (neither destroyed nor stored); its saves were "
                        f"{sorted(a for _, _, a in g.saves)}")
        return
    afters = Counter(after for _, _, after in g.saves)
    twice = sorted(rev for rev, n in afters.items() if n > 1)
    if twice:
        problems.append(f"{name}: revs acknowledged more than once: {twice}")
    if sorted(afters) != list(range(g.created_rev + 1, final + 1)):
        problems.append(f"{name}: final rev {final} but acknowledged saves "
                        f"{sorted(afters.elements())} (lost or phantom updates)")
    if live is None or not is_live:
        return
    if live.num_instances != final - g.created_rev + 1:
        problems.append(f"{name}: counter {live.num_instances} but created at rev "
                        f"{g.created_rev}, now at rev {final}")
    per_process = Counter(proc for proc, _, _ in g.saves)
    for proc in procs:
        stored = int(live.scheduler_hints.get(f"w{proc}", ["0"])[0])
        if stored != per_process[proc]:
            problems.append(f"{name}: process {proc} counter {stored}, but it logged "
                            f"{per_process[proc]} saves")


def check_logs(logs: dict[int, list[dict[str, Any]]], live: dict[str, RequestSpec],
               live_revs: dict[str, int]) -> list[str]:
    """Every violation of the rules in the module docstring, as text (empty: all good)."""
    problems: list[str] = []
    gens = collect_generations(logs, problems)
    for (uid, _), g in gens.items():
        check_generation(g, live.get(uid), live_revs.get(uid, 0), list(logs), problems)
    for uid, spec in live.items():
        if (uid, generation_of(spec)) not in gens:
            problems.append(f"{uid}: stored generation {generation_of(spec)} was never created")
    return problems


@pytest.mark.redis
def test_processes_racing_cas_promote_destroy_lose_nothing(
    load_server: RedisServer, tmp_path: Path
) -> None:
    store = SpecStore.from_url(load_server.url)
    admin = load_server.client()
    admin.flushall()
    ctx = RequestContext(store=store)
    uids = [str(uuid.uuid4()) for _ in range(SPECS)]
    initial: list[dict[str, Any]] = []
    for n, uid in enumerate(uids):
        rev = store.create(ctx, new_generation(uid, f"init-{n}"))
        initial.append({"op": "create", "uid": uid, "gen": f"init-{n}", "before": 0, "after": rev})

    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    outs = [tmp_path / f"worker-{i}.json" for i in range(PROCESSES)]
    procs = [
        spawn.Process(target=load_process,
                      args=(i, load_server.url, uids, SECONDS, str(outs[i]), start))
        for i in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.5)
    start.set()
    began = time.monotonic()
    for proc in procs:
        proc.join(timeout=SECONDS + 60)
        assert proc.exitcode == 0, f"load process exited with {proc.exitcode}"
    elapsed = time.monotonic() - began

    results = [json.loads(out.read_text()) for out in outs]
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors[0]
    logs: dict[int, list[dict[str, Any]]] = {r["index"]: r["log"] for r in results}
    logs[-1] = initial  # the parent's creates, as a process of their own

    homes = audit_keyspace(admin)
    live = {uid: stored.spec for uid, stored in homes.items()}
    live_revs = {uid: stored.rev for uid, stored in homes.items()}
    assert set(live) <= set(uids)
    problems = check_logs(logs, live, live_revs)

    ops = Counter(e["op"] for r in results for e in r["log"])
    misses: Counter[str] = Counter()
    for r in results:
        misses.update(r["misses"])
    total = sum(ops.values())
    print(f"\nload: {PROCESSES} processes x {SECONDS:.0f}s on {SPECS} specs ({elapsed:.1f}s): "
          f"{total} successful operations {dict(ops)}, {sum(misses.values())} refused "
          f"{dict(misses)}; {len(problems)} violations")
    assert not problems, f"{len(problems)} violations:\n" + "\n".join(problems[:30])
    assert ops["save"] > 500 and ops["promote"] > 20 and ops["destroy"] > 20
    assert misses["ConflictError"] > 0  # the processes really did race
    store.close()
    admin.close()


@pytest.mark.redis
def test_stale_rev_from_a_destroyed_generation_is_refused(load_server: RedisServer) -> None:
    """ABA: a rev read before destroy + re-create must not compare-and-set the new spec.

    Otherwise a caller holding rev 1 of the old spec silently overwrites (or destroys) the new
    one, and the load test above sees generations vanish or get destroyed twice.
    """
    store = SpecStore.from_url(load_server.url)
    ctx = RequestContext(store=store)
    uid = str(uuid.uuid4())
    store.create(ctx, new_generation(uid, "old"))
    held = store.get(ctx, uid)
    store.destroy(ctx, uid, rev=held.rev)
    store.create(ctx, new_generation(uid, "new"))
    stale = held.spec.model_copy(update={"num_instances": 2})
    with pytest.raises(ConflictError):
        store.save(ctx, stale, rev=held.rev)
    with pytest.raises(ConflictError):
        store.destroy(ctx, uid, rev=held.rev)
    assert generation_of(store.get(ctx, uid).spec) == "new"
    store.close()


def test_checker_catches_lost_phantom_and_vanished_updates() -> None:
    """The checker itself can fail: feed it logs with each kind of damage."""
    uid = str(uuid.uuid4())
    spec = new_generation(uid, "g1").model_copy(
        update={"num_instances": 3, "scheduler_hints": {"gen": ["g1"], "w0": ["2"]}}
    )
    good = {0: [
        {"op": "create", "uid": uid, "gen": "g1", "before": 0, "after": 1},
        {"op": "save", "uid": uid, "gen": "g1", "before": 1, "after": 2},
        {"op": "save", "uid": uid, "gen": "g1", "before": 2, "after": 3},
    ]}
    assert check_logs(good, {uid: spec}, {uid: 3}) == []
    lost = check_logs({0: good[0][:2]}, {uid: spec}, {uid: 3})  # an acknowledged save missing
    assert any("lost or phantom" in p for p in lost)
    twice = {0: good[0], 1: [good[0][2]]}  # rev 3 acknowledged to two processes
    assert any("more than once" in p for p in check_logs(twice, {uid: spec}, {uid: 3}))
    assert any("counter" in p for p in check_logs(good, {uid: spec}, {uid: 4}))
    other = new_generation(uid, "g2")  # g1 overwritten by a generation never created
    vanished = check_logs(good, {uid: other}, {uid: 1})
    assert any("vanished" in p for p in vanished)
    assert any("never created" in p for p in vanished)
    back = {0: [*good[0], {"op": "save", "uid": uid, "gen": "g1", "before": 1, "after": 2}]}
    assert any("go back" in p for p in check_logs(back, {uid: spec}, {uid: 3}))
