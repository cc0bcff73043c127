"""Find and settle what crashes left behind: second homes, open moves, stale records."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

import redis

from specstore import observability
from specstore.bulk.common import (
    MAX_REPORTED,
    NOT_A_HASH,
    Progress,
    note,
    spec_key_batches,
)
from specstore.connection import backend_errors, is_wrong_type
from specstore.core import lua, two_phase
from specstore.core.keys import API, normalize_uuid, validate_store_name
from specstore.core.records import reply_text
from specstore.core.repair_rules import Observation, Plan, Record, plan_repair
from specstore.drivers import lua_sync
from specstore.drivers.scanning import scan_batches
from specstore.drivers.sync import run
from specstore.errors import (
    BackendError,
    CorruptDocumentError,
    InvalidInputError,
    SpecStoreError,
)
from specstore.store import SpecStore
from specstore.topology import Backend


@dataclass
class RepairReport:
    checked: int = 0
    plans: list[Plan] = field(default_factory=list)
    """The unhealthy instances found (at most MAX_REPORTED kept) and what was (or would be)
    done."""
    repaired: int = 0
    dry_run: bool = False
    found: int = 0
    skipped: int = 0
    """Instances left alone because a key of theirs holds something that is not a spec."""
    problems: list[str] = field(default_factory=list)


def repair(
    store: SpecStore,
    *,
    dry_run: bool = False,
    batch: int = 500,
    progress: Progress | None = None,
) -> RepairReport:
    """Find instances with more than one home or a location record that disagrees; fix them
    by the rule in :mod:`specstore.core.repair_rules` (only report with ``dry_run``).

    ``checked`` counts instances: one seen through its spec key is not counted again through
    its location record. ``progress`` is called with the instances just checked."""
    report = RepairReport(dry_run=dry_run)
    seen: set[str] = set()
    for candidates in _repair_candidates(store, batch):
        with observability.batch("repair", len(candidates)):
            counted = _repair_batch(store, candidates, seen, report, dry_run)
        if progress is not None and counted:
            progress(counted)
    return report


def _repair_batch(
    store: SpecStore,
    candidates: dict[str, set[str]],
    seen: set[str],
    report: RepairReport,
    dry_run: bool,
) -> int:
    """Check (and fix) one scanned batch; the instances counted."""
    counted = 0
    for uid, extra_stores in candidates.items():
        if uid in seen:
            continue
        # extra_stores is empty for a uid found through its location record: counted
        # already with its copy, unless it has none
        first_sighting = bool(extra_stores)
        try:
            obs = observe(store, uid, extra_stores)
        except CorruptDocumentError as exc:
            seen.add(uid)  # remembered like damage: memory bounded by what is broken
            report.checked += 1
            counted += 1
            report.skipped += 1  # not ours to fix: left as it is
            note(report.problems, str(exc))
            observability.logger.warning("repair skipped %s: %s", uid, exc)
            continue
        if first_sighting or not obs.copies:
            report.checked += 1
            counted += 1
        plan = plan_repair(obs)
        if plan.healthy:
            continue
        seen.add(uid)  # only unhealthy ones are remembered: memory bounded by damage
        report.found += 1
        if len(report.plans) < MAX_REPORTED:
            report.plans.append(plan)
        if not dry_run:
            try:
                apply_plan(store, obs, plan)
            except BackendError:
                raise
            except SpecStoreError as exc:  # this instance only: the others go on
                report.skipped += 1
                note(report.problems, f"{uid}: not repaired: {exc}")
                continue
            report.repaired += 1
    return counted


def _repair_candidates(store: SpecStore, batch: int) -> Iterator[dict[str, set[str]]]:
    """Per scanned batch: uuid -> stores seen holding a copy (spec keys, then location keys)."""
    for _, keys, _ in spec_key_batches(store, None, batch):
        found: dict[str, set[str]] = {}
        for item in keys:
            found.setdefault(item.instance_uuid, set()).add(item.store)
        yield found
    for backend in store.topology.backends():
        for raw_keys, _ in scan_batches(backend.client, backend.keys.location_pattern(), batch):
            uids: dict[str, set[str]] = {}
            for raw in raw_keys:
                key = reply_text(raw)
                uid = key[key.rfind("{") + 1 : -1]
                try:
                    uids[normalize_uuid(uid)] = set()
                except InvalidInputError:
                    continue
            yield uids


def observe(store: SpecStore, uid: str, extra_stores: Collection[str] = ()) -> Observation:
    """The authority, the cells' own records and the copies of ``uid`` in every store that
    could hold it; CorruptDocumentError when a key of it holds something specstore did not
    write."""
    topology = store.topology
    api = topology.api
    with backend_errors(f"repair {uid}", writes=False):
        now_ms = _server_ms(api)
        authority = _read_record(api, uid, now_ms)
        cell_records: dict[str, Record] = {}
        for backend in topology.backends()[1:]:
            record = _read_record(backend, uid, now_ms)
            if record is not None:
                cell_records[backend.name] = record
    candidates = {API, *extra_stores, *topology.cells}
    if authority is not None and authority.store:
        candidates.add(authority.store)
    copies: dict[str, int] = {}
    backend_of: dict[str, str] = {}
    for name in sorted(candidates):
        try:
            backend = topology.backend_for(validate_store_name(name))
        except SpecStoreError:
            continue
        backend_of[name] = backend.name
        key = backend.keys.spec_key(name, uid)
        with backend_errors(f"repair {uid}", writes=False):
            try:
                rev = backend.client.hget(key, "rev")
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                raise CorruptDocumentError(f"{name} {uid}: {NOT_A_HASH}") from None
        if rev is not None:
            if not rev.isdigit():
                raise CorruptDocumentError(f"{name} {uid}: the spec record has a bad rev")
            copies[name] = int(rev)
    return Observation(uid, authority, copies, cell_records, backend_of, api.name)


def _server_ms(backend: Backend) -> int:
    seconds, micros = backend.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _read_record(backend: Backend, uid: str, now_ms: int) -> Record | None:
    key = backend.keys.location_key(uid)
    try:
        raw = {reply_text(k): reply_text(v) for k, v in backend.client.hgetall(key).items()}
    except redis.ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        raise CorruptDocumentError(f"the location record of {uid} is not a hash") from None
    if not raw:
        return None
    try:
        return Record(
            store=raw["store"] or None,
            rev=int(raw.get("rev", "0")),
            epoch=int(raw.get("epoch", "0")),
            state=raw["state"],
            move_id=raw.get("move_id"),
            move_to=raw.get("move_to"),
            move_from=raw.get("move_from"),
            home_epoch=int(raw["home_epoch"]) if raw.get("home_epoch") else None,
            lease_expired=int(raw.get("lease_until", "0")) < now_ms,
        )
    except (KeyError, ValueError):
        raise CorruptDocumentError(
            f"the location record of {uid} on {backend.name} holds data specstore did not write"
        ) from None


def apply_plan(store: SpecStore, obs: Observation, plan: Plan) -> None:
    """Carry out ``plan``; every write is conditional on what ``obs`` saw."""
    topology = store.topology
    backends = {b.name: b for b in topology.backends()}
    uid = plan.instance_uuid
    ttl = store.moves.buried_seconds
    if plan.settle_move is not None:
        source, cell, move_id, epoch = plan.settle_move
        route = store.route(cell, uid, source)
        run(two_phase.settle_expired(route, two_phase.OpenMove(move_id, epoch), store.moves))
        return
    if plan.finish_destroy is not None:
        cell, epoch, rev = plan.finish_destroy
        run(two_phase.tell_destroyed(store.route(cell, uid), epoch, rev, store.moves))
    authority = obs.authority
    # a cell record names the epoch its copy was installed under: the home's, or a new one
    epoch = authority.installed if authority is not None else 0
    with backend_errors(f"repair {uid}", writes=True):
        if plan.set_authority is not None:
            home, rev = plan.set_authority
            epoch = (authority.epoch if authority is not None else 0) + 1
            reply = lua_sync.run_script(
                topology.api.client,
                lua.LOC_REPAIR,
                [topology.api.keys.location_key(uid)],
                _repair_args(authority, home, rev, epoch, ttl),
            )
            if reply_text(reply[1]) == "changed":
                return  # the authority moved on since it was observed: nothing here is stale
        for name, rev in plan.drop.items():
            backend = topology.backend_for(name)
            lua_sync.run_script(
                backend.client, lua.DROP_COPY, [backend.keys.spec_key(name, uid)], [str(rev)]
            )
        for backend_name, (home, rev) in plan.set_cell_records.items():
            backend = backends[backend_name]
            lua_sync.run_script(
                backend.client,
                lua.LOC_REPAIR,
                [backend.keys.location_key(uid)],
                _repair_args(
                    obs.cell_records.get(backend_name), home, rev, epoch if home else "", ttl
                ),
            )


def _repair_args(
    seen: Record | None, home: str, rev: int, epoch: int | str, ttl: int
) -> list[object]:
    """loc_repair's ARGV: what it must still find (epoch, move id, store, state), and what to
    write."""
    if seen is None:
        return ["", home, rev, epoch, ttl, "", "", ""]
    return [
        str(seen.epoch),
        home,
        rev,
        epoch,
        ttl,
        seen.move_id or "",
        seen.store or "",
        seen.state,
    ]
