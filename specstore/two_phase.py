"""Writes that span two backends: the api backend (the authority) and a cell's own backend.

The **authority** is the location record ``<prefix>:loc:{uuid}`` on the api backend: where the
spec lives, the highest rev of its lineage, an epoch that moves on with every change of home,
and the move in progress (id, target, lease). Every create, destroy, promote and import that
involves a cell on another backend goes through it; saves and reads in that cell stay on the
cell's backend (one round trip, and they work while the api backend is down).

A **move** (promote api -> cell, or a create/import straight into the cell) has three steps:

1. **begin** / **claim** (authority): a new epoch ``E`` and a move id; the lease starts. For a
   promote the api copy is frozen (readable, writes refused with ``MoveInProgressError``).
2. **adopt** (cell backend): the cell copy is written together with the cell's location
   record ``(store=cell, epoch=E)``. From now on the cell accepts writes. A second adopt of
   the same move keeps what is there; an adopt of an epoch the cell saw aborted, destroyed or
   superseded is refused (**fencing**: a late or duplicate step never acts on newer state).
3. **commit** (authority): only the open move with that id may commit; the cell becomes the
   home and the frozen api copy is deleted.

A move is **given up** only through the cell: ``cell_fence`` either finds the move's copy there
(then the move is finished: commit), finds it destroyed there (the authority buries the
instance), or records ``E`` as aborted so a late adopt is refused -- and only then is the move
aborted at the authority. Whatever reaches the cell first, adopt or fence, decides. So a
move is never rolled back after its cell copy took a write, and never finished after it was
rolled back. ``resume_moves`` and ``repair`` give up only moves whose lease expired.

A **destroy** in a cell on its own backend deletes the copy there (the cell's record keeps the
last rev and the epoch), then tells the authority, which buries the instance only if its epoch
is still ``E`` (a late report about an older copy changes nothing). The authority's buried
record keeps the lineage's rev, so a re-created spec continues above it (no ABA).

Crash table (what a crash right after each step leaves, and how it is settled):

============================  ======================================  ===========================
after                         left behind                             settled by
============================  ======================================  ===========================
promote: begin                move open, api copy frozen, no cell     lease expires; resume/repair
                              copy                                    fence the cell (aborted) and
                                                                      roll back: the api copy is
                                                                      writable, as saved. Or
                                                                      promote again: joins the
                                                                      move and finishes it.
promote: adopt                move open, cell copy live (it may       resume/repair: fence finds
                              already have taken saves), api copy     it adopted -> commit. Or
                              frozen; ``locate`` answers the cell     promote again (finishes;
                                                                      returns the cell's rev).
promote: commit               done                                    --
create/import: claim          move open, nothing in the cell; no      resume/repair: fence,
                              other store can create the instance     abort (nothing remains)
create/import: adopt          move open, cell copy live               resume/repair: commit
destroy: cell step            cell copy gone (cell record buried),    repair: the cell's record
                              authority still names the cell          shows the destroy of epoch
                                                                      E -> bury at the authority
                                                                      (an open move: the api copy
                                                                      goes too)
============================  ======================================  ===========================

Which operations need the api backend: create, destroy, promote and import in any store;
``locate`` (it falls back to the cells' own records when the api backend is down). Saves,
gets and ``get_many`` in a cell on its own backend do not.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from specstore import lua
from specstore.connection import backend_errors
from specstore.errors import (
    BackendError,
    CorruptDocumentError,
    MoveAbortedError,
    SpecExistsError,
    SpecNotFoundError,
    StoreError,
)
from specstore.keys import API
from specstore.records import check_reply, reply_error, reply_text
from specstore.topology import Backend

MoveHook = Callable[[str, str], None]
"""Called as ``hook(step, instance_uuid)`` after each step: "begin", "claim", "adopt",
"commit", and "destroy" (the cell step of a destroy)."""

RECORD_FIELDS = ("doc", "rev", "schema", "project_id", "user_id", "created_at", "updated_at")
"""The spec record's fields, in the order cell_adopt.lua takes them (after cell, epoch)."""


@dataclass(frozen=True)
class MoveSettings:
    lease_ms: int
    """How long a move may run before resume/repair may give it up."""
    buried_seconds: int
    """How long a destroyed instance's record (its last rev and epoch) is kept."""
    hook: MoveHook | None = None


@dataclass(frozen=True)
class Route:
    """The keys one instance's cross-backend write touches."""

    api: Backend
    cell_backend: Backend
    cell: str
    uid: str

    @property
    def authority_keys(self) -> list[str]:
        """[location record, api spec key] on the api backend."""
        return [self.api.keys.location_key(self.uid), self.api.keys.spec_key(API, self.uid)]

    @property
    def cell_keys(self) -> list[str]:
        """[cell spec key, cell location record] on the cell's backend."""
        return self.cell_backend.keys.home_keys(self.cell, self.uid)


@dataclass(frozen=True)
class OpenMove:
    move_id: str
    epoch: int


@dataclass(frozen=True)
class MoveOutcome:
    instance_uuid: str
    cell: str
    rev: int
    moved: bool


@dataclass(frozen=True)
class NewCopy:
    """A spec to write into a cell on its own backend (create or import)."""

    uid: str
    doc: bytes
    rev: int
    """The lowest rev wanted (1 for a create; an import's own); the lineage may raise it."""
    schema: str
    project_id: str
    user_id: str
    created_at: str
    updated_at: str


def new_move_id() -> str:
    return uuid_module.uuid4().hex


def _notify(settings: MoveSettings, step: str, uid: str) -> None:
    if settings.hook is not None:
        settings.hook(step, uid)


# -- promote ------------------------------------------------------------------------------------


def promote(route: Route, settings: MoveSettings, now: str) -> MoveOutcome:
    """Run (or join and finish) the move of ``route.uid`` to ``route.cell``."""
    uid, cell = route.uid, route.cell
    with backend_errors(f"promote {uid} to {cell} (begin)", writes=True):
        reply = lua.run_script(
            route.api.client,
            lua.MOVE_BEGIN,
            route.authority_keys,
            [cell, new_move_id(), settings.lease_ms, now],
        )
    if reply_text(reply[0]) == "already":
        return MoveOutcome(uid, cell, _cell_rev(route), moved=False)
    check_reply(reply[:2], uid, API, None)
    move = OpenMove(reply_text(reply[1]), int(reply[2]))
    record = _pairs(reply[3])
    _notify(settings, "begin", uid)
    try:
        rev = adopt(route, move, [record.get(name, b"") for name in RECORD_FIELDS], settings)
        commit(route, move, rev, settings)
    except BackendError as exc:
        # The move is open (begin landed): the promote as a whole did write. Promote again
        # (or resume_moves after the lease) finishes or rolls it back.
        raise BackendError(exc.operation, exc.__cause__ or exc, may_have_written=True) from exc
    return MoveOutcome(uid, cell, rev, moved=True)


def adopt(route: Route, move: OpenMove, record: list[Any], settings: MoveSettings) -> int:
    """Step 2; the cell copy's rev. A refusal gives the move up and raises why."""
    uid, cell = route.uid, route.cell
    with backend_errors(f"move {uid} to {cell} (adopt)", writes=True):
        reply = lua.run_script(
            route.cell_backend.client, lua.CELL_ADOPT, route.cell_keys, [cell, move.epoch, *record]
        )
    status = reply_text(reply[0])
    if status == "ok":
        _notify(settings, "adopt", uid)
        return int(reply[1])
    settled = give_up(route, move, settings)
    if settled == "finished":  # a joined attempt of this very move adopted it meanwhile
        return _cell_rev(route)
    if status == "exists":
        raise SpecExistsError(uid, reply_text(reply[1]))
    if status == "foreign":
        raise CorruptDocumentError(
            f"the {reply_text(reply[1])} of {uid} in {cell!r} holds data specstore did not write"
        )
    raise MoveAbortedError(uid, cell, settled)


def commit(route: Route, move: OpenMove, rev: int, settings: MoveSettings) -> None:
    uid, cell = route.uid, route.cell
    with backend_errors(f"move {uid} to {cell} (commit)", writes=True):
        reply = lua.run_script(
            route.api.client, lua.MOVE_COMMIT, route.authority_keys, [cell, move.move_id, rev]
        )
    if reply_text(reply[0]) == "fenced":
        # settled by someone else after our adopt: only a destroy in the cell does that
        raise SpecNotFoundError(uid, cell)
    check_reply(reply, uid, API, None)
    _notify(settings, "commit", uid)


def _cell_rev(route: Route) -> int:
    """The cell copy's rev (it lives there)."""
    with backend_errors(f"read the rev of {route.uid} in {route.cell}", writes=False):
        rev = route.cell_backend.client.hget(route.cell_keys[0], "rev")
    if rev is None:
        raise SpecNotFoundError(route.uid, route.cell)
    return int(rev)


def _pairs(items: Sequence[Any]) -> dict[str, Any]:
    return {reply_text(k): v for k, v in zip(items[0::2], items[1::2], strict=True)}


# -- giving a move up ---------------------------------------------------------------------------


def give_up(route: Route, move: OpenMove, settings: MoveSettings) -> str:
    """Settle an open move through the cell: "finished" (its copy is there: commit),
    "destroyed" (its copy was destroyed there: the authority buries the instance), or
    "rolled_back" (fenced: a late adopt is refused, then aborted at the authority). "settled"
    when someone else settled it first."""
    uid = route.uid
    with backend_errors(f"settle the move of {uid} to {route.cell} (fence)", writes=True):
        reply = lua.run_script(
            route.cell_backend.client,
            lua.CELL_FENCE,
            route.cell_keys,
            [move.epoch, settings.buried_seconds],
        )
    # a cell record specstore did not write refuses every adopt: the move can only roll back
    found = ["aborted"] if reply_text(reply[0]) == "foreign" else check_reply(reply, uid, "", None)
    with backend_errors(f"settle the move of {uid} to {route.cell}", writes=True):
        if found[0] == "adopted":
            reply = lua.run_script(
                route.api.client,
                lua.MOVE_COMMIT,
                route.authority_keys,
                [route.cell, move.move_id, found[1] or 0],
            )
            return "finished" if reply_text(reply[0]) == "ok" else "settled"
        if found[0] == "destroyed":
            reply = lua.run_script(
                route.api.client,
                lua.MOVE_DESTROYED,
                route.authority_keys,
                [route.cell, move.epoch, found[1], settings.buried_seconds],
            )
            return "destroyed" if reply_text(reply[1]) == "destroyed" else "settled"
        reply = lua.run_script(
            route.api.client,
            lua.MOVE_ABORT,
            route.authority_keys,
            [move.move_id, settings.buried_seconds],
        )
    return "rolled_back" if reply_text(reply[0]) == "ok" else "settled"


# -- create and import into a cell on its own backend ---------------------------------------------


@dataclass(frozen=True)
class CopyResult:
    """What became of one :class:`NewCopy`: status "created" (with rev), "exists" / "moving"
    (with the home or target), "failed" (with the error; nothing of it remains) or "unknown"
    (with the error: the write may have landed; resume_moves settles it after the lease)."""

    uid: str
    status: str
    rev: int = 0
    home: str = ""
    error: StoreError | None = None


def create_copies(
    api: Backend,
    cell_backend: Backend,
    cell: str,
    copies: Sequence[NewCopy],
    settings: MoveSettings,
    now: str,
) -> list[CopyResult]:
    """Claim, adopt and commit many new copies: one pipeline per step."""
    routes = [Route(api, cell_backend, cell, c.uid) for c in copies]
    results: dict[str, CopyResult] = {}

    claim_calls: list[lua.Call] = [
        (
            lua.MOVE_CLAIM,
            route.authority_keys[:1],
            [cell, new_move_id(), settings.lease_ms, now, copy.rev],
        )
        for route, copy in zip(routes, copies, strict=True)
    ]
    claimed: list[tuple[Route, NewCopy, OpenMove, int]] = []
    for route, copy, call, reply in zip(
        routes,
        copies,
        claim_calls,
        _pipelined(api, claim_calls, "claim", results, copies),
        strict=True,
    ):
        if reply is None:
            continue
        status = reply_text(reply[0])
        if status == "ok":
            move = OpenMove(reply_text(call[2][1]), int(reply[1]))
            claimed.append((route, copy, move, int(reply[2])))
            _notify(settings, "claim", copy.uid)
        elif status in ("exists", "moving"):
            results[copy.uid] = CopyResult(copy.uid, status, home=reply_text(reply[1]))
        else:
            results[copy.uid] = CopyResult(copy.uid, "failed", error=reply_error(reply, copy.uid))

    adopt_calls: list[lua.Call] = [
        (
            lua.CELL_ADOPT,
            route.cell_keys,
            [
                cell,
                move.epoch,
                copy.doc,
                rev,
                copy.schema,
                copy.project_id,
                copy.user_id,
                copy.created_at,
                copy.updated_at,
            ],
        )
        for route, copy, move, rev in claimed
    ]
    adopted: list[tuple[Route, NewCopy, OpenMove, int]] = []
    claimed_copies = [item[1] for item in claimed]
    adopt_replies = _pipelined(cell_backend, adopt_calls, "adopt", results, claimed_copies)
    for (route, copy, move, rev), reply in zip(claimed, adopt_replies, strict=True):
        if reply is None:
            continue
        if reply_text(reply[0]) == "ok":
            adopted.append((route, copy, move, rev))
            _notify(settings, "adopt", copy.uid)
            continue
        # refused (foreign data at the cell key): nothing of this move is in the cell
        try:
            give_up(route, move, settings)
        except StoreError as exc:
            results[copy.uid] = CopyResult(copy.uid, "unknown", error=exc)
            continue
        if reply_text(reply[0]) == "exists":
            results[copy.uid] = CopyResult(copy.uid, "exists", home=reply_text(reply[1]))
        else:
            results[copy.uid] = CopyResult(copy.uid, "failed", error=reply_error(reply, copy.uid))

    commit_calls: list[lua.Call] = [
        (lua.MOVE_COMMIT, route.authority_keys, [cell, move.move_id, rev])
        for route, _, move, rev in adopted
    ]
    adopted_copies = [item[1] for item in adopted]
    commit_replies = _pipelined(api, commit_calls, "commit", results, adopted_copies)
    for (_, copy, _, rev), reply in zip(adopted, commit_replies, strict=True):
        if reply is None:
            continue
        if reply_text(reply[0]) == "ok":
            results[copy.uid] = CopyResult(copy.uid, "created", rev=rev)
            _notify(settings, "commit", copy.uid)
        else:  # destroyed in the cell before the commit: it was created, and is gone again
            results[copy.uid] = CopyResult(copy.uid, "created", rev=rev)
    return [results[c.uid] for c in copies]


def _pipelined(
    backend: Backend,
    calls: list[lua.Call],
    step: str,
    results: dict[str, CopyResult],
    copies: Sequence[NewCopy],
) -> list[Any]:
    """Replies of one step's pipeline; None where the call failed (recorded in ``results``:
    "failed" when nothing can have landed, else "unknown")."""
    if not calls:
        return []
    try:
        with backend_errors(f"{step} of {len(calls)} specs", writes=True):
            replies = lua.run_scripts_pipelined(backend.client, calls)
    except BackendError as exc:
        first = step == "claim" and not exc.may_have_written
        for copy in copies:
            results[copy.uid] = CopyResult(copy.uid, "failed" if first else "unknown", error=exc)
        return [None] * len(calls)
    out: list[Any] = []
    for copy, reply in zip(copies, replies, strict=True):
        if isinstance(reply, Exception):
            error = BackendError(f"{step} {copy.uid}", reply, may_have_written=step != "claim")
            status = "failed" if step == "claim" else "unknown"
            results[copy.uid] = CopyResult(copy.uid, status, error=error)
            out.append(None)
        else:
            out.append(reply)
    return out


# -- destroy in a cell on its own backend ---------------------------------------------------------


def destroy(route: Route, expected_rev: int | None, settings: MoveSettings) -> None:
    """Delete the cell copy (compare-and-set with ``expected_rev``), then tell the authority."""
    uid, cell = route.uid, route.cell
    expected = "" if expected_rev is None else str(expected_rev)
    with backend_errors(f"destroy {uid}", writes=True):
        reply = lua.run_script(
            route.cell_backend.client,
            lua.DESTROY,
            route.cell_keys,
            [cell, expected, settings.buried_seconds, ""],
        )
    last_rev, epoch = check_reply(reply, uid, cell, expected_rev)
    _notify(settings, "destroy", uid)
    tell_destroyed(route, int(epoch), int(last_rev), settings)


def tell_destroyed(route: Route, epoch: int, last_rev: int, settings: MoveSettings) -> None:
    """The authority's step of a destroy (also run by repair)."""
    try:
        with backend_errors(f"destroy {route.uid} (authority)", writes=True):
            reply = lua.run_script(
                route.api.client,
                lua.MOVE_DESTROYED,
                route.authority_keys,
                [route.cell, epoch, last_rev, settings.buried_seconds],
            )
    except BackendError as exc:
        # the cell copy is gone; the authority still names the cell until repair runs
        raise BackendError(exc.operation, exc.__cause__ or exc, may_have_written=True) from exc
    check_reply(reply, route.uid, API, None)
