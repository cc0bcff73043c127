"""Moving a spec from the api store to a cell on another backend, in three idempotent steps.

1. **intent** (api backend): the api copy is marked ``moving_to=<cell>``; from then on writes
   to it are refused (:class:`~specstore.errors.MoveInProgressError`); it stays readable.
2. **adopt** (cell backend): the cell copy is written with the same doc and rev. A cell copy of
   the same or a newer rev is kept (the step can run again safely).
3. **release** (api backend): the api copy and its location record are removed, only if still
   marked for that cell.

Readers see the spec at every point: the api copy until step 3, the cell copy from step 2.
A crash between steps leaves a marked api copy. :func:`resume_move` settles it by one rule:

* the cell copy exists (its backend has it, located in that cell) -> **finish** (step 3);
* the cell copy is missing -> **roll back**: the mark is removed and the spec stays in the api
  store, writable, exactly as saved. Calling ``promote`` again starts the move afresh.
* the cell backend cannot be reached -> left as it is (reported), to be settled later.

Step 2 never replaces what it did not write: when the cell key holds anything but this spec's
copy, the move is rolled back at once and :class:`~specstore.errors.SpecExistsError` raised.

So no crash point loses the spec, and none leaves it with two homes once settled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from specstore import lua
from specstore.connection import backend_errors
from specstore.errors import BackendError, StoreError
from specstore.keys import API
from specstore.records import check_reply, reply_text
from specstore.topology import Backend

MoveHook = Callable[[str, str], None]
"""Called as ``hook(step, instance_uuid)`` after each step ("intent", "adopt", "release")."""

RECORD_FIELDS = ("doc", "rev", "schema", "project_id", "user_id", "created_at", "updated_at")
"""The spec record's fields, in the order move_adopt.lua takes them."""


@dataclass(frozen=True)
class MoveOutcome:
    instance_uuid: str
    cell: str
    rev: int
    moved: bool


def move(
    api: Backend, cell_backend: Backend, uid: str, cell: str, now: str, hook: MoveHook | None
) -> MoveOutcome:
    """Run (or finish) the three steps; raises the store's typed errors."""
    api_keys = [api.keys.spec_key(API, uid), api.keys.location_key(uid)]
    with backend_errors(f"promote {uid} to {cell} (intent)", writes=True):
        reply = lua.run_script(api.client, lua.MOVE_INTENT, api_keys, [cell, now])
    if reply_text(reply[0]) == "not_found":
        rev = _cell_rev(cell_backend, uid, cell)
        if rev is not None:  # moved earlier: promote is idempotent
            return MoveOutcome(uid, cell, rev, moved=False)
    check_reply(reply, uid, API, None)
    record = _record(reply)
    _notify(hook, "intent", uid)
    try:
        return _adopt_and_release(api, api_keys, cell_backend, uid, cell, record, hook)
    except BackendError as exc:
        # The intent landed, so the promote as a whole did write: say so.
        raise BackendError(exc.operation, exc.__cause__ or exc, may_have_written=True) from exc


def _adopt_and_release(
    api: Backend,
    api_keys: list[str],
    cell_backend: Backend,
    uid: str,
    cell: str,
    record: dict[str, object],
    hook: MoveHook | None,
) -> MoveOutcome:
    cell_keys = [cell_backend.keys.spec_key(cell, uid), cell_backend.keys.location_key(uid)]
    with backend_errors(f"promote {uid} to {cell} (adopt)", writes=True):
        reply = lua.run_script(
            cell_backend.client,
            lua.MOVE_ADOPT,
            cell_keys,
            [cell, *(record.get(name, b"") for name in RECORD_FIELDS)],
        )
    if reply_text(reply[0]) == "exists":
        # something else sits at the cell key: leave it, and the spec writable in the api store
        with backend_errors(f"promote {uid} to {cell} (roll back)", writes=True):
            lua.run_script(api.client, lua.MOVE_ROLLBACK, api_keys[:1], [cell])
    check_reply(reply, uid, cell, None)
    _notify(hook, "adopt", uid)

    with backend_errors(f"promote {uid} to {cell} (release)", writes=True):
        reply = lua.run_script(api.client, lua.MOVE_RELEASE, api_keys, [cell])
    if reply_text(reply[0]) == "not_marked":
        raise StoreError(
            f"the move of {uid} to {cell!r} was rolled back while it ran; the cell copy is "
            "left in place -- run repair to settle the duplicate"
        )
    check_reply(reply, uid, API, None)
    _notify(hook, "release", uid)
    return MoveOutcome(uid, cell, int(reply_text(record["rev"])), moved=True)


def resume_move(api: Backend, cell_backend: Backend, uid: str, cell: str) -> str:
    """Settle a marked api copy by the module's rule: "finished", "rolled_back",
    "not_marked" (nothing to do) or "unreachable" (the cell backend is down; left as is)."""
    api_keys = [api.keys.spec_key(API, uid), api.keys.location_key(uid)]
    try:
        cell_rev = _cell_rev(cell_backend, uid, cell)
    except BackendError:
        return "unreachable"
    with backend_errors(f"resume move of {uid}", writes=True):
        if cell_rev is not None:
            reply = lua.run_script(api.client, lua.MOVE_RELEASE, api_keys, [cell])
            return "finished" if reply_text(reply[0]) == "ok" else "not_marked"
        reply = lua.run_script(api.client, lua.MOVE_ROLLBACK, api_keys[:1], [cell])
    return check_reply(reply, uid, API, None)[0]


def _cell_rev(cell_backend: Backend, uid: str, cell: str) -> int | None:
    """The cell copy's rev when the spec lives in ``cell`` on its backend, else None."""
    with backend_errors(f"promote {uid} to {cell}", writes=False):
        pipe = cell_backend.client.pipeline(transaction=False)
        pipe.get(cell_backend.keys.location_key(uid))
        pipe.hget(cell_backend.keys.spec_key(cell, uid), "rev")
        home, rev = pipe.execute()
    if home is None or reply_text(home) != cell or rev is None:
        return None
    return int(rev)


def _record(reply: list[object]) -> dict[str, object]:
    """The intent reply's record, values as Redis returned them (the doc stays bytes)."""
    items = reply[1:]
    return {reply_text(k): v for k, v in zip(items[0::2], items[1::2], strict=True)}


def _notify(hook: MoveHook | None, step: str, uid: str) -> None:
    if hook is not None:
        hook(step, uid)
