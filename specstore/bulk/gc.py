"""Orphaned api-store specs: found by a whole-store scan, removed with compare-and-set.

A spec is created in the api store when a boot is accepted and promoted to a cell once the
instance is scheduled. Two kinds are left behind (Nova bugs 1724621 and 1678056): specs of
instances that were never scheduled, and specs of instances deleted without their spec.
:func:`collect_orphans` scans the api store's spec keys (SCAN + one pipelined ``HMGET`` of
``rev`` and ``created_at`` per batch), asks ``live`` which of the batch's instances exist,
decides each spec with the pure :func:`decide`, and removes an orphan with
``store.destroy(ctx, uuid, rev=<the rev read>)``:

- an instance that is not live is an orphan once its spec is ``min_age_seconds`` old; a
  younger one is kept (a boot in flight may not be in the caller's list yet: make
  ``min_age_seconds`` longer than the list's age plus the longest boot);
- with ``unpromoted_older_than``, a spec older than that is an orphan whatever ``live`` says
  (a time-to-live for specs never promoted; never shorter than ``min_age_seconds``);
- a spec whose ``created_at`` cannot be read is never removed (skipped, reported).

The removal is compare-and-set on the rev read: a spec written since (:class:`ConflictError`),
promoted since (:class:`WrongStoreError`), being moved to a cell on another backend
(:class:`MoveInProgressError`) or gone is skipped and reported, never removed. Ages use this
process's clock against ``created_at`` as its writer's clock wrote it: keep clocks in sync,
or allow for skew in ``min_age_seconds``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from specstore.bulk.common import MAX_REPORTED, Progress, spec_key_batches
from specstore.connection import backend_errors, is_wrong_type
from specstore.context import RequestContext
from specstore.core.keys import API
from specstore.core.records import reply_text
from specstore.errors import (
    ConflictError,
    CorruptDocumentError,
    InvalidInputError,
    InvalidUUIDError,
    MoveInProgressError,
    SpecNotFoundError,
    WrongStoreError,
)
from specstore.store import SpecStore
from specstore.topology import Backend

Live = Callable[[list[str]], Iterable[str]] | Collection[str]
"""Which instances exist: a callable given a batch's instance uuids that returns the live
ones among them, or a collection of every live instance's uuid (any spelling)."""

DEFAULT_MIN_AGE_SECONDS = 3600.0
"""A spec younger than this is never removed (a boot in flight)."""

Verdict = Literal["live", "young", "orphan", "unpromoted", "unreadable"]


@dataclass(frozen=True)
class SpecState:
    """What the scan read of one api-store spec."""

    instance_uuid: str
    rev: int | None
    created_at: dt.datetime | None


def decide(
    state: SpecState,
    *,
    live: bool,
    now: dt.datetime,
    min_age_seconds: float,
    unpromoted_older_than: float | None = None,
) -> Verdict:
    """``orphan``/``unpromoted`` (remove it), ``live``/``young`` (keep it), ``unreadable``
    (no rev or creation time: keep it, report it)."""
    if state.rev is None or state.created_at is None:
        return "unreadable"
    age = (now - state.created_at).total_seconds()
    if age < min_age_seconds:
        return "young" if not live else "live"
    if unpromoted_older_than is not None and age >= unpromoted_older_than:
        return "unpromoted"
    return "live" if live else "orphan"


@dataclass(frozen=True)
class Skipped:
    instance_uuid: str
    reason: str


@dataclass
class GcReport:
    """Counts are exact; the uuid lists hold at most ``MAX_REPORTED`` entries each."""

    dry_run: bool
    checked: int = 0
    orphans: list[str] = field(default_factory=list)
    """Not live and older than the minimum age."""
    unpromoted: list[str] = field(default_factory=list)
    """Older than ``unpromoted_older_than`` (live or not)."""
    orphan_count: int = 0
    unpromoted_count: int = 0
    removed: int = 0
    """Specs destroyed (0 on a dry run)."""
    young: int = 0
    """Not live, but too young to be removed."""
    skipped: list[Skipped] = field(default_factory=list)
    skipped_count: int = 0

    def skip(self, uid: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED:
            self.skipped.append(Skipped(uid, reason))


def collect_orphans(
    store: SpecStore,
    live: Live,
    *,
    dry_run: bool = False,
    min_age_seconds: float = DEFAULT_MIN_AGE_SECONDS,
    unpromoted_older_than: float | None = None,
    batch: int = 500,
    progress: Progress | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> GcReport:
    """Find (and unless ``dry_run`` remove) orphaned api-store specs; see the module doc.

    ``progress`` is called with the number of keys of each batch handled; ``clock`` gives
    "now" (timezone-aware; default: UTC now). Raises :class:`InvalidInputError` for a negative
    age or a malformed uuid among the live ones, :class:`~specstore.errors.BackendError` when
    Redis fails (what was removed before stays removed; run it again).
    """
    if min_age_seconds < 0 or (unpromoted_older_than is not None and unpromoted_older_than < 0):
        raise InvalidInputError("ages must not be negative")
    live_of = _live_lookup(live)
    ctx = RequestContext(store=store)
    now_of = clock or (lambda: dt.datetime.now(dt.timezone.utc))
    report = GcReport(dry_run=dry_run)
    for backend, keys, _ in spec_key_batches(store, [API], batch):
        states = _read_states(backend, [k.key for k in keys], [k.instance_uuid for k in keys])
        readable = [s for s in states if s is not None]
        alive = live_of([s.instance_uuid for s in readable]) if readable else set()
        now = now_of()
        for key, state in zip(keys, states, strict=True):
            report.checked += 1
            if state is None:
                report.skip(key.instance_uuid, "the key holds something that is not a spec hash")
                continue
            verdict = decide(
                state,
                live=state.instance_uuid in alive,
                now=now,
                min_age_seconds=min_age_seconds,
                unpromoted_older_than=unpromoted_older_than,
            )
            if verdict == "young":
                report.young += 1
            elif verdict == "unreadable":
                report.skip(state.instance_uuid, "no readable rev or created_at")
            elif verdict in ("orphan", "unpromoted"):
                _found(report, state.instance_uuid, verdict)
                if not dry_run:
                    _remove(store, ctx, state, report)
        if progress is not None:
            progress(len(keys))
    return report


def _live_lookup(live: Live) -> Callable[[list[str]], set[str]]:
    if callable(live):
        ask = live

        def lookup(uids: list[str]) -> set[str]:
            return {canonical_uuid(u) for u in ask(uids)}

        return lookup
    known = {canonical_uuid(u) for u in live}
    return known.intersection


def canonical_uuid(value: object) -> str:
    """The lower-case hyphenated form of a uuid in any spelling ``uuid.UUID`` accepts."""
    if isinstance(value, UUID):
        return str(value)
    try:
        return str(UUID(str(value).strip()))
    except ValueError:
        raise InvalidUUIDError(value) from None


def _read_states(backend: Backend, keys: list[str], uids: list[str]) -> list[SpecState | None]:
    """``rev`` and ``created_at`` of each key in one pipeline; None for a key of another type."""
    if not keys:
        return []
    with backend_errors(f"read {len(keys)} specs", writes=False):
        pipe = backend.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, ["rev", "created_at"])
        replies = pipe.execute(raise_on_error=False)
    states: list[SpecState | None] = []
    for uid, reply in zip(uids, replies, strict=True):
        if isinstance(reply, Exception):
            if not is_wrong_type(reply):
                raise reply
            states.append(None)
            continue
        rev_raw, created_raw = reply
        states.append(SpecState(uid, _int(rev_raw), _time(created_raw)))
    return states


def _int(raw: object) -> int | None:
    try:
        return int(reply_text(raw)) if raw is not None else None
    except ValueError:
        return None


def _time(raw: object) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(reply_text(raw))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _found(report: GcReport, uid: str, verdict: Verdict) -> None:
    if verdict == "orphan":
        report.orphan_count += 1
        if len(report.orphans) < MAX_REPORTED:
            report.orphans.append(uid)
    else:
        report.unpromoted_count += 1
        if len(report.unpromoted) < MAX_REPORTED:
            report.unpromoted.append(uid)


def _remove(store: SpecStore, ctx: RequestContext, state: SpecState, report: GcReport) -> None:
    uid = state.instance_uuid
    try:
        store.destroy(ctx, uid, rev=state.rev)
    except ConflictError as exc:
        report.skip(uid, f"written since it was read (rev {state.rev} -> {exc.actual_rev})")
    except WrongStoreError as exc:
        report.skip(uid, f"promoted to {exc.actual} since it was read")
    except MoveInProgressError as exc:
        report.skip(uid, f"being moved to {exc.cell}")
    except SpecNotFoundError:
        report.skip(uid, "removed by someone else since it was read")
    except CorruptDocumentError as exc:
        report.skip(uid, str(exc))
    else:
        report.removed += 1
