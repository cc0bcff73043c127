"""Writes that span two backends: the api backend (the authority) and a cell's own backend.

The **authority** is the location record ``<prefix>:loc:{uuid}`` on the api backend: where the
spec lives, the highest rev of its lineage, an epoch that moves on with every change of home,
and the move in progress (id, source, target, lease). Every create, destroy, move and import
that involves a cell on another backend goes through it; saves and reads in that cell stay on
the cell's backend (one round trip, and they work while the api backend is down).

A **move** (promote api -> cell, a cross-cell move, or a create/import straight into a cell)
has these steps:

1. **begin** / **claim** (authority): a new epoch ``E`` and a move id; the lease starts. A
   source copy on the api backend is frozen (readable, writes refused: MoveInProgressError).
   1b. **freeze** (the source's own backend, for a source there): the same, there.
2. **adopt** (the target's backend): the copy is written with the target's record
   ``(store, epoch=E, adopted_by=move id)``; from now on the target accepts writes. A second
   adopt of the same move keeps what is there; an adopt of a move the target saw given up
   (its fence ``<prefix>:fence:{uuid}`` holds ``E`` or more), destroyed or superseded is
   refused: a late or duplicate step never acts on newer state. Within one cell backend the
   adopt is a rename; into a store on the api backend, adopt and commit are one step.
3. **commit** (authority): only the open move with that id may commit; the target becomes the
   home and a frozen source on the api backend is deleted.
   4. **release** (the source's own backend): the frozen source there is deleted; its record
   remembers where the copy went (writes there get WrongStoreError).

A move is **given up** only through the target: ``cell_fence`` either finds this move's copy
there (then the move is finished: commit), finds it destroyed there (the authority buries the
instance), or records ``E`` in the fence so any later adopt of it is refused -- and only then
is the move aborted at the authority and its source unfrozen. Whatever reaches the target
first, adopt or fence, decides; a fence that cannot be written leaves the move open. So a move
is never rolled back after its copy took a write, and never finished after it was rolled back.
``resume_moves`` and ``repair`` first **seize** a move at the authority, which succeeds only
once its lease expired (checked there, atomically) and lets no retried request join it.

A **destroy** in a cell on its own backend deletes the copy there (the cell's record keeps the
last rev and the epoch), then tells the authority, which buries the instance only if its epoch
is still ``E`` (a late report about an older copy changes nothing); a move still open to that
cell loses its frozen source too. The buried record keeps the lineage's rev, so a re-created
spec continues above it (no ABA).

Crash table (what a crash right after each step leaves, and how it is settled):

============================  ======================================  ===========================
after                         left behind                             settled by
============================  ======================================  ===========================
move: begin                   move open, source frozen (on the api    lease expires; resume/repair
                              backend), no copy in the target         seize, fence the target and
                                                                      roll back: the source is
                                                                      writable, as saved. Or call
                                                                      again: joins and finishes.
move: freeze                  the source on its own backend frozen    the same; the source is
                              too                                     unfrozen after the abort
move: adopt                   move open, target copy live (it may     resume/repair: the fence
                              already have taken saves), source       finds it adopted -> commit
                              frozen; ``locate`` answers the target   (and release). Or call again
                                                                      (returns the target's rev).
move: commit                  done at the authority; a source on its  repair: a copy the authority
                              own backend still frozen                does not name is dropped,
                                                                      its record cleared
create/import: claim          move open, nothing in the cell; no      resume/repair: fence, abort
                              other store can create the instance     (the epoch is kept)
create/import: adopt          move open, cell copy live               resume/repair: commit
destroy: cell step            cell copy gone (cell record buried),    destroy again: the cell's
                              authority still names the cell (so      buried record of epoch E
                              does ``locate``; while a move to it is  -> bury at the authority;
                              open, ``locate`` says it is gone)       or repair, the same (an
                                                                      open move: its source goes
                                                                      too; resume_moves)
============================  ======================================  ===========================

Which operations need the api backend: create, destroy, promote, move_to_cell and import in
any store; ``locate`` (it falls back to the cells' own records when the api backend is down).
Saves, gets and ``get_many`` in a cell on its own backend do not.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from specstore import observability
from specstore.core import lua
from specstore.core.calls import AnyBackend, Command, Script, Scripts, Steps
from specstore.core.keys import API
from specstore.core.records import check_reply, reply_error, reply_text
from specstore.errors import (
    BackendError,
    CorruptDocumentError,
    MoveAbortedError,
    SpecExistsError,
    SpecNotFoundError,
    SpecStoreError,
    StoreError,
)

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
    """The keys one instance's cross-backend write touches: the authority's, the target's,
    and the source's (a store on the api backend, or a cell on its own backend)."""

    api: AnyBackend
    cell_backend: AnyBackend
    """The target's backend."""
    cell: str
    """The target store."""
    uid: str
    source: str = API
    source_backend: AnyBackend | None = None
    """None: the source store lives on the api backend."""

    @property
    def source_here(self) -> bool:
        """True when the source copy is on the api backend (frozen by the authority itself)."""
        return self.source_backend is None or self.source_backend is self.api

    @property
    def target_here(self) -> bool:
        """True when the target store is on the api backend (adopt and commit are one step)."""
        return self.cell_backend is self.api

    @property
    def within(self) -> bool:
        """True when source and target share a cell's own backend (adopt is a rename there)."""
        return not self.source_here and self.cell_backend is self.source_backend

    @property
    def here_flag(self) -> str:
        return "1" if self.source_here else ""

    @property
    def authority_keys(self) -> list[str]:
        """[location record, source spec key] on the api backend."""
        return [self.api.keys.location_key(self.uid), self.api.keys.spec_key(self.source, self.uid)]

    @property
    def cell_keys(self) -> list[str]:
        """[target spec key, location record] on the target's backend."""
        return self.cell_backend.keys.home_keys(self.cell, self.uid)

    @property
    def fenced_keys(self) -> list[str]:
        """[target spec key, location record, fence] on the target's backend."""
        return [*self.cell_keys, self.cell_backend.keys.fence_key(self.uid)]

    @property
    def source_keys(self) -> list[str]:
        """[source spec key, location record] on the source's backend."""
        backend = self.source_backend or self.api
        return backend.keys.home_keys(self.source, self.uid)


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


# -- moves --------------------------------------------------------------------------------------


def move(route: Route, settings: MoveSettings, now: str) -> Steps[MoveOutcome]:
    """Run (or join and finish) the move of ``route.uid`` from its source to ``route.cell``."""
    uid, cell = route.uid, route.cell
    with observability.move_step("begin", route):
        reply = yield Script(
            route.api,
            lua.MOVE_BEGIN,
            route.authority_keys,
            [cell, new_move_id(), settings.lease_ms, now, route.source, route.here_flag],
            f"move {uid} to {cell} (begin)",
        )
    if reply_text(reply[0]) == "already":
        return MoveOutcome(uid, cell, (yield from _cell_rev(route)), moved=False)
    check_reply(reply[:2], uid, route.source, None)
    open_move = OpenMove(reply_text(reply[1]), int(reply[2]))
    _notify(settings, "begin", uid)
    try:
        if route.source_here:
            record = _pairs(reply[3])
        else:
            record = yield from freeze(route, open_move, settings)
        fields = [record.get(name, b"") for name in RECORD_FIELDS]
        if route.target_here:
            rev = yield from install(route, open_move, fields, settings)
        else:
            if route.within:
                rev = yield from within(route, open_move, settings)
            else:
                rev = yield from adopt(route, open_move, fields, settings)
            yield from commit(route, open_move, rev, settings)
        if not route.source_here and not route.within:
            yield from release(route, open_move, settings)
    except BackendError as exc:
        # The move is open (begin landed): the call as a whole did write. Calling it again
        # (or resume_moves after the lease) finishes or rolls it back.
        raise BackendError(exc.operation, exc.__cause__ or exc, may_have_written=True) from exc
    return MoveOutcome(uid, cell, rev, moved=True)


@observability.step("freeze")
def freeze(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[dict[str, Any]]:
    """Step 1b, for a source on a cell's own backend: freeze it there; its record."""
    uid = route.uid
    reply = yield Script(
        _source_backend(route),
        lua.CELL_FREEZE,
        route.source_keys,
        [route.source, route.cell, move.move_id, move.epoch],
        f"move {uid} to {route.cell} (freeze)",
    )
    if reply_text(reply[0]) == "ok":
        _notify(settings, "freeze", uid)
        return _pairs(reply[1])
    settled = yield from give_up(route, move, settings)
    if reply_text(reply[0]) == "stale" or settled == "finished":
        raise MoveAbortedError(uid, route.cell, settled)
    check_reply(reply, uid, route.source, None)
    raise StoreError(f"unexpected reply {reply!r} for {uid}")  # pragma: no cover


@observability.step("adopt")
def adopt(route: Route, move: OpenMove, record: list[Any], settings: MoveSettings) -> Steps[int]:
    """Step 2; the cell copy's rev. A refusal gives the move up and raises why."""
    uid, cell = route.uid, route.cell
    reply = yield Script(
        route.cell_backend,
        lua.CELL_ADOPT,
        route.fenced_keys,
        [cell, move.epoch, *record, move.move_id],
        f"move {uid} to {cell} (adopt)",
    )
    return (yield from _adopted(route, move, reply, settings))


@observability.step("adopt")
def within(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[int]:
    """Step 2 when source and target share a cell's own backend: one rename there."""
    uid, cell = route.uid, route.cell
    reply = yield Script(
        route.cell_backend,
        lua.CELL_MOVE_WITHIN,
        [*route.source_keys[:1], *route.cell_keys],
        [route.source, cell, move.move_id, move.epoch],
        f"move {uid} to {cell} (adopt)",
    )
    return (yield from _adopted(route, move, reply, settings))


def _adopted(route: Route, move: OpenMove, reply: Any, settings: MoveSettings) -> Steps[int]:
    uid, cell = route.uid, route.cell
    status = reply_text(reply[0])
    if status == "ok":
        _notify(settings, "adopt", uid)
        return int(reply[1])
    settled = yield from give_up(route, move, settings)
    if settled == "finished":  # a joined attempt of this very move adopted it meanwhile
        return (yield from _cell_rev(route))
    if status == "exists":
        raise SpecExistsError(uid, reply_text(reply[1]))
    if status == "foreign":
        raise CorruptDocumentError(
            f"the {reply_text(reply[1])} of {uid} in {cell!r} holds data specstore did not write"
        )
    raise MoveAbortedError(uid, cell, settled)


@observability.step("install")
def install(route: Route, move: OpenMove, record: list[Any], settings: MoveSettings) -> Steps[int]:
    """Steps 2 and 3 in one, when the target is on the api backend."""
    uid, cell = route.uid, route.cell
    reply = yield Script(
        route.api,
        lua.MOVE_INSTALL,
        [route.authority_keys[0], route.cell_keys[0]],
        [cell, move.move_id, *record],
        f"move {uid} to {cell} (install)",
    )
    status = reply_text(reply[0])
    if status == "ok":
        _notify(settings, "adopt", uid)
        _notify(settings, "commit", uid)
        return int(reply[1])
    settled = yield from give_up(route, move, settings)
    if status == "exists":
        raise SpecExistsError(uid, reply_text(reply[1]))
    check_reply(reply[:1] if status == "fenced" else reply, uid, cell, None)
    raise MoveAbortedError(uid, cell, settled)


@observability.step("commit")
def commit(route: Route, move: OpenMove, rev: int, settings: MoveSettings) -> Steps[None]:
    """Step 3 at the authority."""
    uid, cell = route.uid, route.cell
    reply = yield Script(
        route.api,
        lua.MOVE_COMMIT,
        route.authority_keys,
        [cell, move.move_id, rev, route.here_flag],
        f"move {uid} to {cell} (commit)",
    )
    if reply_text(reply[0]) == "fenced":
        # settled by someone else after our adopt: only a destroy in the target does that
        raise SpecNotFoundError(uid, cell)
    check_reply(reply, uid, API, None)
    _notify(settings, "commit", uid)


@observability.step("release")
def release(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[None]:
    """Step 4, for a source on a cell's own backend: the frozen copy there goes."""
    reply = yield Script(
        _source_backend(route),
        lua.CELL_RELEASE,
        route.source_keys,
        [move.move_id, route.cell, settings.buried_seconds],
        f"move {route.uid} to {route.cell} (release)",
    )
    check_reply(reply, route.uid, route.source, None)
    _notify(settings, "release", route.uid)


def _source_backend(route: Route) -> AnyBackend:
    return route.source_backend or route.api


def _cell_rev(route: Route) -> Steps[int]:
    """The target copy's rev (it lives there)."""
    rev = yield Command(
        route.cell_backend,
        ("HGET", route.cell_keys[0], "rev"),
        f"read the rev of {route.uid} in {route.cell}",
    )
    if rev is None:
        raise SpecNotFoundError(route.uid, route.cell)
    return int(rev)


def _pairs(items: Sequence[Any]) -> dict[str, Any]:
    return {reply_text(k): v for k, v in zip(items[0::2], items[1::2], strict=True)}


# -- giving a move up ---------------------------------------------------------------------------


@observability.step("settle")
def give_up(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[str]:
    """Settle an open move so that an adopt and a rollback can never both happen:

    * "finished": the move's copy is in the target (commit, release the source);
    * "destroyed": it was destroyed there (the authority buries the instance);
    * "rolled_back": the target refuses the move from now on (fenced), then the move is
      aborted at the authority and a frozen source unfrozen;
    * "settled": someone else settled it first.
    """
    if route.target_here:  # install checks the move id: aborting at the authority fences it
        outcome = yield from _abort(route, move, settings)
        if outcome == "settled" and (yield from _authority_store(route)) == route.cell:
            outcome = "finished"
        yield from _after_source(route, move, settings, released=outcome == "finished")
        return outcome
    found = yield from _fence(route, move, settings)
    if found[0] == "adopted":
        outcome = yield from _commit_settling(route, move, int(found[1] or 0))
        yield from _after_source(route, move, settings, released=True)
        return outcome
    if found[0] == "destroyed":
        outcome = yield from tell_destroyed(route, move.epoch, int(found[1]), settings)
        yield from _after_source(route, move, settings, released=True)
        return outcome
    outcome = yield from _abort(route, move, settings)
    yield from _after_source(route, move, settings, released=False)
    return outcome


@observability.step("seize")
def seize(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[str]:
    """Take over an open move to settle it, only if its lease expired (checked at the
    authority, atomically): "seized", "running" (leave it to its mover) or "settled"."""
    reply = yield Script(
        route.api,
        lua.MOVE_SEIZE,
        route.authority_keys[:1],
        [move.move_id, settings.lease_ms],
        f"settle the move of {route.uid} (seize)",
    )
    status = reply_text(reply[0])
    if status == "fenced":
        return "settled"
    if status == "running":
        return "running"
    check_reply(reply, route.uid, API, None)
    return "seized"


def settle_expired(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[str]:
    """What resume_moves and repair do with an open move: seize it (only past its lease),
    then give it up through the target. "running" when its mover still holds the lease."""
    seized = yield from seize(route, move, settings)
    if seized != "seized":
        return seized
    return (yield from give_up(route, move, settings))


def _fence(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[list[str]]:
    """Ask the target (or, for a move within one backend, the source) to refuse the move
    unless it already happened there: ["adopted", rev] | ["destroyed", rev] | ["aborted"]."""
    uid = route.uid
    label = f"settle the move of {uid} to {route.cell} (fence)"
    if route.within:
        reply = yield Script(
            _source_backend(route),
            lua.CELL_UNFREEZE,
            route.source_keys,
            [move.move_id, route.cell, move.epoch],
            label,
        )
    else:
        reply = yield Script(
            route.cell_backend,
            lua.CELL_FENCE,
            route.fenced_keys,
            [move.epoch, settings.buried_seconds, move.move_id],
            label,
        )
    # 'foreign': nothing could be marked there, so the move stays open (frozen, not lost)
    return check_reply(reply, uid, route.cell, None)


def _commit_settling(route: Route, move: OpenMove, rev: int) -> Steps[str]:
    reply = yield Script(
        route.api,
        lua.MOVE_COMMIT,
        route.authority_keys,
        [route.cell, move.move_id, rev, route.here_flag],
        f"settle the move of {route.uid} to {route.cell}",
    )
    return "finished" if reply_text(reply[0]) == "ok" else "settled"


def _abort(route: Route, move: OpenMove, settings: MoveSettings) -> Steps[str]:
    reply = yield Script(
        route.api,
        lua.MOVE_ABORT,
        route.authority_keys,
        [move.move_id, settings.buried_seconds, route.here_flag],
        f"settle the move of {route.uid} to {route.cell}",
    )
    return "rolled_back" if reply_text(reply[0]) == "ok" else "settled"


def _after_source(
    route: Route, move: OpenMove, settings: MoveSettings, *, released: bool
) -> Steps[None]:
    """A frozen source on a cell's own backend: released after the move happened, else
    unfrozen (nothing to do within one backend: the fence already did it)."""
    if route.source_here or route.within or route.source == "":
        return
    if released:
        yield from release(route, move, settings)
        return
    yield Script(
        _source_backend(route),
        lua.CELL_UNFREEZE,
        route.source_keys,
        [move.move_id, route.cell, move.epoch],
        f"settle the move of {route.uid} (unfreeze)",
    )


def _authority_store(route: Route) -> Steps[str | None]:
    home = yield Command(
        route.api, ("HGET", route.authority_keys[0], "store"), f"read the home of {route.uid}"
    )
    return reply_text(home) if home else None


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
    error: SpecStoreError | None = None


def create_copies(
    api: AnyBackend,
    cell_backend: AnyBackend,
    cell: str,
    copies: Sequence[NewCopy],
    settings: MoveSettings,
    now: str,
    *,
    revive: bool = True,
) -> Steps[list[CopyResult]]:
    """Claim, adopt and commit many new copies: one pipeline per step.

    ``revive=False`` (an import without overwrite) leaves a destroyed instance destroyed:
    its result is "buried"."""
    routes = [Route(api, cell_backend, cell, c.uid) for c in copies]
    results: dict[str, CopyResult] = {}

    claim_calls: list[lua.Call] = [
        (
            lua.MOVE_CLAIM,
            route.authority_keys[:1],
            [cell, new_move_id(), settings.lease_ms, now, copy.rev, "1" if revive else ""],
        )
        for route, copy in zip(routes, copies, strict=True)
    ]
    claimed: list[tuple[Route, NewCopy, OpenMove, int]] = []
    claim_replies = yield from _pipelined(api, claim_calls, "claim", results, copies)
    for route, copy, call, reply in zip(routes, copies, claim_calls, claim_replies, strict=True):
        if reply is None:
            continue
        status = reply_text(reply[0])
        if status == "ok":
            move = OpenMove(reply_text(call[2][1]), int(reply[1]))
            claimed.append((route, copy, move, int(reply[2])))
            _notify(settings, "claim", copy.uid)
        elif status in ("exists", "moving"):
            results[copy.uid] = CopyResult(copy.uid, status, home=reply_text(reply[1]))
        elif status == "buried":
            results[copy.uid] = CopyResult(copy.uid, "buried")
        else:
            results[copy.uid] = CopyResult(copy.uid, "failed", error=reply_error(reply, copy.uid))

    adopt_calls: list[lua.Call] = [
        (
            lua.CELL_ADOPT,
            route.fenced_keys,
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
                move.move_id,
            ],
        )
        for route, copy, move, rev in claimed
    ]
    adopted: list[tuple[Route, NewCopy, OpenMove, int]] = []
    claimed_copies = [item[1] for item in claimed]
    adopt_replies = yield from _pipelined(
        cell_backend, adopt_calls, "adopt", results, claimed_copies
    )
    for (route, copy, move, rev), reply in zip(claimed, adopt_replies, strict=True):
        if reply is None:
            continue
        if reply_text(reply[0]) == "ok":
            adopted.append((route, copy, move, rev))
            _notify(settings, "adopt", copy.uid)
            continue
        # refused (foreign data at the cell key): nothing of this move is in the cell
        try:
            yield from give_up(route, move, settings)
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
    commit_replies = yield from _pipelined(api, commit_calls, "commit", results, adopted_copies)
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
    backend: AnyBackend,
    calls: list[lua.Call],
    step: str,
    results: dict[str, CopyResult],
    copies: Sequence[NewCopy],
) -> Steps[list[Any]]:
    """Replies of one step's pipeline; None where the call failed (recorded in ``results``:
    "failed" when nothing can have landed, else "unknown")."""
    if not calls:
        return []
    try:
        replies = yield Scripts(backend, calls, f"{step} of {len(calls)} specs")
    except BackendError as exc:
        first = step == "claim" and not exc.may_have_written
        if not first:  # the claim landed: the call as a whole did write
            exc = BackendError(exc.operation, exc.__cause__ or exc, may_have_written=True)
        for copy in copies:
            results[copy.uid] = CopyResult(copy.uid, "failed" if first else "unknown", error=exc)
        return [None] * len(calls)
    out: list[Any] = []
    for copy, reply in zip(copies, replies, strict=True):
        if isinstance(reply, Exception):
            error = BackendError(f"{step} {copy.uid}", reply, may_have_written=step != "claim")
            error.__cause__ = reply
            status = "failed" if step == "claim" else "unknown"
            results[copy.uid] = CopyResult(copy.uid, status, error=error)
            out.append(None)
        else:
            out.append(reply)
    return out


# -- destroy in a cell on its own backend ---------------------------------------------------------


def destroy(
    route: Route,
    expected_rev: int | None,
    settings: MoveSettings,
    backend_of: Callable[[str], AnyBackend],
) -> Steps[None]:
    """Delete the cell copy (compare-and-set with ``expected_rev``), then tell the authority.

    When the copy was destroyed while the move that brought it was still open, its frozen
    source goes too (atomically with the authority's step when it is on the api backend).
    """
    uid, cell = route.uid, route.cell
    source_raw = yield Command(
        route.api, ("HGET", route.authority_keys[0], "move_from"), f"destroy {uid}"
    )
    source = reply_text(source_raw) if source_raw else ""
    if source:
        source_backend = backend_of(source)
        route = Route(route.api, route.cell_backend, cell, uid, source, source_backend)
    expected = "" if expected_rev is None else str(expected_rev)
    reply = yield Script(
        route.cell_backend,
        lua.DESTROY,
        route.cell_keys,
        [cell, expected, settings.buried_seconds, ""],
        f"destroy {uid}",
    )
    finishing = reply_text(reply[0]) == "not_found" and len(reply) == 3
    if finishing:  # destroyed here by a destroy that stopped before telling the authority
        last_rev, epoch = reply[1], reply[2]
    else:
        last_rev, epoch = check_reply(reply, uid, cell, expected_rev)
        _notify(settings, "destroy", uid)
    try:
        reply = yield _tell(route, int(epoch), int(last_rev), settings)
    except BackendError as exc:
        # the cell copy is gone; the authority still names the cell until repair runs
        raise BackendError(exc.operation, exc.__cause__ or exc, may_have_written=True) from exc
    fields = check_reply(reply, uid, API, None)
    if finishing and fields[0] != "destroyed":
        raise SpecNotFoundError(uid, cell)  # the authority had moved on: nothing was here
    if fields[0] == "destroyed" and fields[1] and not route.source_here:
        yield from release(route, OpenMove(fields[2], int(epoch)), settings)


def tell_destroyed(route: Route, epoch: int, last_rev: int, settings: MoveSettings) -> Steps[str]:
    """The authority's step of a destroy (also run by give_up and repair): "destroyed", or
    "settled" when the authority had moved on."""
    reply = yield _tell(route, epoch, last_rev, settings)
    return "destroyed" if check_reply(reply, route.uid, API, None)[0] == "destroyed" else "settled"


def _tell(route: Route, epoch: int, last_rev: int, settings: MoveSettings) -> Script:
    return Script(
        route.api,
        lua.MOVE_DESTROYED,
        route.authority_keys,
        [route.cell, epoch, last_rev, settings.buried_seconds, route.here_flag],
        f"destroy {route.uid} (authority)",
    )
