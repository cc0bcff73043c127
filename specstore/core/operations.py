"""The store's operations, written once for the sync and the asyncio store.

Each operation is a generator of :mod:`specstore.core.calls`: it yields the Redis calls it needs
and returns its result, so :class:`~specstore.store.SpecStore` and
:class:`~specstore.aio.AsyncSpecStore` run the very same rules and differ only in their
driver. Every single-spec operation is one round trip: writes run one Lua script (atomic),
reads one HGETALL. Batches are one pipeline. A write between two backends runs the fenced
move of :mod:`specstore.core.two_phase`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

import redis

from specstore.connection import as_dict, is_wrong_type
from specstore.context import RequestContext
from specstore.core import lua, two_phase
from specstore.core.calls import (
    AnyBackend,
    Command,
    Commands,
    Hashes,
    ScanPage,
    Script,
    Scripts,
    Steps,
)
from specstore.core.keys import (
    API,
    Keyspace,
    normalize_uuid,
    validate_cell_name,
    validate_store_name,
)
from specstore.core.records import (
    StoredSpec,
    WriteArgs,
    check_reply,
    parse_record,
    reply_error,
    reply_text,
    write_args,
)
from specstore.core.results import BatchCreate, BatchDestroy, BatchRead, Promotion
from specstore.core.scan import ScanPosition
from specstore.errors import (
    BackendError,
    BatchWriteError,
    CorruptDocumentError,
    DocumentError,
    InvalidInputError,
    SpecExistsError,
    SpecNotFoundError,
    SpecStoreError,
    StoreError,
)
from specstore.model import RequestSpec
from specstore.serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec
from specstore.topology import B, Topology

C = TypeVar("C")
"""The client type of a store: redis-py's blocking clients or redis.asyncio's."""

BURIED_SECONDS = 7 * 24 * 3600
"""How long a destroyed spec's location record (its last rev) is kept: a spec re-created within
that time continues above it, so a rev held from before the destroy never matches."""

MOVE_LEASE_SECONDS = 30.0
"""How long a move to a cell on another backend may run before resume/repair may settle it."""


def utc_now() -> str:
    """Timestamp written to ``created_at`` / ``updated_at`` (ISO 8601, UTC, microseconds):
    what ``datetime.now(timezone.utc).isoformat(timespec="microseconds")`` gives, its date and
    time of day made once per second."""
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _SECOND_TEXT[0]
    if cached[0] != second:
        moment = dt.datetime.fromtimestamp(second, dt.timezone.utc)
        cached = _SECOND_TEXT[0] = (second, moment.strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{micros:06d}+00:00"


_SECOND_TEXT: list[tuple[int, str]] = [(-1, "")]
"""The last second :func:`utc_now` wrote, and its text (replaced whole: threads see a pair)."""


class StoreState(Generic[B, C]):
    """What both stores hold: the topology, the codec, the clock and the move settings.

    A store is built on one client ``C`` (every store on it, under ``keyspace``) or on a
    topology of backends ``B``; ``from_url`` opens the client.
    """

    def __init__(
        self,
        target: C | Topology[B],
        *,
        keyspace: Keyspace | None = None,
        codec: DocumentCodec = DEFAULT_CODEC,
        clock: Callable[[], str] = utc_now,
        move_lease_seconds: float = MOVE_LEASE_SECONDS,
        on_move_step: two_phase.MoveHook | None = None,
    ) -> None:
        """``move_lease_seconds``: how long a move to a cell on another backend may run
        before ``resume_moves``/``repair`` may settle it. ``on_move_step`` is a test hook
        called after each step of such a move."""
        if isinstance(target, Topology):
            if keyspace is not None:
                raise TypeError("pass the keyspace inside the Topology")
            topology: Topology[B] = target
        else:
            topology = self.single(target, keyspace)
        self.topology: Topology[B] = topology
        self.codec = codec
        self.clock = clock
        self.moves = two_phase.MoveSettings(
            lease_ms=max(1, round(move_lease_seconds * 1000)),
            buried_seconds=BURIED_SECONDS,
            hook=on_move_step,
        )

    @classmethod
    def from_url(
        cls,
        url: str = "memory://",
        *,
        prefix: str = "specstore",
        codec: DocumentCodec = DEFAULT_CODEC,
        **options: Any,
    ) -> Self:
        """A store on the Redis at ``url`` (see :mod:`specstore.connection`); ``options``
        go to redis-py."""
        return cls(cls.connect(url, **options), keyspace=Keyspace(prefix), codec=codec)

    @staticmethod
    def connect(url: str, **options: Any) -> C:
        raise NotImplementedError

    @staticmethod
    def single(client: C, keys: Keyspace | None) -> Topology[B]:
        raise NotImplementedError

    @property
    def keys(self) -> Keyspace:
        """The api backend's keyspace."""
        return self.topology.api.keys

    def backend(self, store: str) -> B:
        return self.topology.backend_for(store)

    def route(self, cell: str, uid: str, source: str = API) -> two_phase.Route:
        """The keys a cross-backend write of ``uid`` into ``cell`` (from ``source``) touches."""
        source_backend = self.backend(source) if source else None
        return two_phase.Route(
            self.topology.api, self.backend(cell), cell, uid, source or API, source_backend
        )

    def is_remote(self, store: str) -> bool:
        """True when ``store`` is a cell on another backend than the api store's."""
        return self.backend(store) is not self.topology.api


State = StoreState[Any, Any]

# -- writes ----------------------------------------------------------------------------------


def create(state: State, ctx: RequestContext, spec: RequestSpec) -> Steps[int]:
    uid, store = str(spec.instance_uuid), ctx.store_name
    args = write_args(spec, state.codec)
    if state.is_remote(store):
        (result,) = yield from two_phase.create_copies(
            state.topology.api,
            state.backend(store),
            store,
            [_new_copy(uid, args, state.clock())],
            state.moves,
            state.clock(),
        )
        return _created_rev(result, store)
    api = state.topology.api
    argv = [store, args.doc, args.schema, args.project_id, args.user_id, state.clock()]
    reply = yield Script(api, lua.CREATE, api.keys.home_keys(store, uid), argv, f"create {uid}")
    return int(check_reply(reply, uid, store, None)[0])


def create_many(
    state: State, ctx: RequestContext, specs: Sequence[RequestSpec]
) -> Steps[BatchCreate]:
    store = ctx.store_name
    uids = [str(spec.instance_uuid) for spec in specs]
    twice = sorted({u for u in uids if uids.count(u) > 1}) if len(set(uids)) < len(uids) else []
    if twice:
        raise InvalidInputError(f"create_many lists these instances twice: {twice}")
    now = state.clock()
    copies = [
        _new_copy(uid, write_args(s, state.codec), now) for uid, s in zip(uids, specs, strict=True)
    ]
    if state.is_remote(store):
        results = yield from two_phase.create_copies(
            state.topology.api, state.backend(store), store, copies, state.moves, now
        )
    else:
        results = yield from _create_local(state, store, copies)
    created = [r.uid for r in results if r.status == "created"]
    existing = {r.uid: r.home for r in results if r.status in ("exists", "moving")}
    failed = {r.uid: r.error for r in results if r.status == "failed" and r.error}
    unknown = {r.uid: r.error for r in results if r.status == "unknown" and r.error}
    result = BatchCreate(created, existing, failed, unknown)
    raise_if_redis_failed(
        f"create_many of {len(specs)} specs ({len(created)} created, {len(failed)} "
        f"failed, {len(unknown)} unknown)",
        result,
        failed,
        unknown,
        landed=bool(created),
    )
    return result


def _new_copy(uid: str, args: WriteArgs, now: str) -> two_phase.NewCopy:
    return two_phase.NewCopy(uid, args.doc, 1, args.schema, args.project_id, args.user_id, now, now)


def _create_local(
    state: State, store: str, copies: Sequence[two_phase.NewCopy]
) -> Steps[list[two_phase.CopyResult]]:
    api = state.topology.api
    calls: list[lua.Call] = [
        (
            lua.CREATE,
            api.keys.home_keys(store, c.uid),
            [store, c.doc, c.schema, c.project_id, c.user_id, c.created_at],
        )
        for c in copies
    ]
    replies = yield from batch(api, calls, f"create_many of {len(calls)} specs")
    results = []
    for copy, reply in zip(copies, replies, strict=True):
        if isinstance(reply, StoreError):
            status = "unknown" if _may_have_run(reply) else "failed"
            results.append(two_phase.CopyResult(copy.uid, status, error=reply))
        elif reply_text(reply[0]) == "ok":
            results.append(two_phase.CopyResult(copy.uid, "created", rev=int(reply[1])))
        elif reply_text(reply[0]) == "exists":
            results.append(two_phase.CopyResult(copy.uid, "exists", home=reply_text(reply[1])))
        else:
            results.append(
                two_phase.CopyResult(copy.uid, "failed", error=reply_error(reply, copy.uid))
            )
    return results


def save(state: State, ctx: RequestContext, spec: RequestSpec, rev: int | None) -> Steps[int]:
    uid, store = str(spec.instance_uuid), ctx.store_name
    backend = state.backend(store)
    args = write_args(spec, state.codec)
    argv = [
        store,
        "" if rev is None else str(rev),
        args.doc,
        args.schema,
        args.project_id,
        args.user_id,
        state.clock(),
        state.codec.current_version[0],
    ]
    reply = yield Script(backend, lua.SAVE, backend.keys.home_keys(store, uid), argv, f"save {uid}")
    return int(check_reply(reply, uid, store, rev)[0])


def move(state: State, instance_uuid: UUID | str, source: str, cell: str) -> Steps[Promotion]:
    """A promote (``source`` "api") or a move between cells."""
    uid, cell = normalize_uuid(instance_uuid), validate_cell_name(cell)
    api = state.topology.api
    if state.is_remote(cell) or state.is_remote(source):
        route = state.route(cell, uid, source)
        outcome = yield from two_phase.move(route, state.moves, state.clock())
        return Promotion(uid, cell, outcome.rev, outcome.moved)
    keys = [
        api.keys.spec_key(source, uid),
        api.keys.spec_key(cell, uid),
        api.keys.location_key(uid),
    ]
    reply = yield Script(api, lua.PROMOTE, keys, [cell, source], f"move {uid} to {cell}")
    rev, outcome_name = check_reply(reply, uid, source, None)
    return Promotion(uid, cell, int(rev), moved=outcome_name == "moved")


def resume_moves(state: State) -> Steps[dict[str, str]]:
    api = state.topology.api
    settled: dict[str, str] = {}
    position: ScanPosition | None = ScanPosition()
    while position is not None:
        keys, position = yield ScanPage(api, api.keys.location_pattern(), 500, position)
        expired = yield from _expired_moves(api, [reply_text(k) for k in keys])
        for uid, found in expired.items():
            if found is None:
                settled[uid] = "corrupt"
                continue
            source, cell, open_move = found
            try:
                route = state.route(cell, uid, source)
                outcome = yield from two_phase.settle_expired(route, open_move, state.moves)
                if outcome != "running":
                    settled[uid] = outcome
            except BackendError:
                settled[uid] = "unreachable"
            except SpecStoreError:  # data specstore did not write: left as it is
                settled[uid] = "corrupt"
    return settled


def _expired_moves(
    api: AnyBackend, keys: list[str]
) -> Steps[dict[str, tuple[str, str, two_phase.OpenMove] | None]]:
    """Of these location keys, the open moves whose lease expired: (source, target, move);
    None where the record is not ours."""
    owned = [(k, u) for k in keys if (u := api.keys.parse_location_key(k)) is not None]
    if not owned:
        return {}
    fields = ("move_id", "move_to", "epoch", "lease_until", "move_from")
    replies = yield Commands(
        api, [("TIME",), *(("HMGET", key, *fields) for key, _ in owned)], "resume_moves"
    )
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    found: dict[str, tuple[str, str, two_phase.OpenMove] | None] = {}
    for (_, uid), reply in zip(owned, replies[1:], strict=True):
        if isinstance(reply, Exception):
            found[uid] = None
            continue
        move_id, move_to, epoch, lease_until, move_from = reply
        if move_id is None:
            continue
        try:
            if int(lease_until or 0) >= now_ms:
                continue
            cell = validate_cell_name(reply_text(move_to))
            source = validate_store_name(reply_text(move_from)) if move_from else ""
            found[uid] = (source, cell, two_phase.OpenMove(reply_text(move_id), int(epoch)))
        except (ValueError, TypeError, SpecStoreError):
            found[uid] = None
    return found


def destroy(
    state: State, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None
) -> Steps[None]:
    uid, store = normalize_uuid(instance_uuid), ctx.store_name
    if state.is_remote(store):
        yield from two_phase.destroy(state.route(store, uid), rev, state.moves, state.backend)
        return
    api = state.topology.api
    argv = [store, "" if rev is None else str(rev), BURIED_SECONDS, "1"]
    reply = yield Script(api, lua.DESTROY, api.keys.home_keys(store, uid), argv, f"destroy {uid}")
    check_reply(reply, uid, store, rev)


def destroy_bulk(
    state: State, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
) -> Steps[BatchDestroy]:
    store = ctx.store_name
    uids = list(dict.fromkeys(normalize_uuid(u) for u in instance_uuids))
    remote = state.is_remote(store)
    backend = state.backend(store)
    authority = "" if remote else "1"
    calls: list[lua.Call] = [
        (lua.DESTROY, backend.keys.home_keys(store, u), [store, "", BURIED_SECONDS, authority])
        for u in uids
    ]
    replies = yield from batch(backend, calls, f"destroy_bulk of {len(uids)} specs")
    destroyed: list[str] = []
    missing: list[str] = []
    elsewhere: dict[str, str] = {}
    moving: dict[str, str] = {}
    failed: dict[str, SpecStoreError] = {}
    unknown: dict[str, SpecStoreError] = {}
    told: list[tuple[str, int, int]] = []
    finishing: set[str] = set()
    """Destroyed in the cell by an earlier call that did not tell the authority."""
    for uid, reply in zip(uids, replies, strict=True):
        if isinstance(reply, StoreError):
            (unknown if _may_have_run(reply) else failed)[uid] = reply
            continue
        status = reply_text(reply[0])
        if status == "ok":
            destroyed.append(uid)
            told.append((uid, int(reply[1]), int(reply[2])))
        elif status == "wrong_store":
            elsewhere[uid] = reply_text(reply[1])
        elif status == "moving":
            moving[uid] = reply_text(reply[1])
        elif status == "not_found" and remote and len(reply) == 3:
            finishing.add(uid)
            destroyed.append(uid)
            told.append((uid, int(reply[1]), int(reply[2])))
        elif status == "not_found":
            missing.append(uid)
        else:
            failed[uid] = reply_error(reply, uid)
    if remote and told:
        buried = yield from _tell_destroyed(state, store, told, destroyed, unknown)
        stale = [u for u in destroyed if u in finishing and u not in buried]
        if stale:  # the authority had moved on: nothing of these was here
            destroyed[:] = [u for u in destroyed if u not in stale]
            missing = [u for u in uids if u in missing or u in stale]
    result = BatchDestroy(destroyed, missing, elsewhere, moving, failed, unknown)
    raise_if_redis_failed(
        f"destroy_bulk of {len(uids)} specs ({len(destroyed)} destroyed, {len(failed)} "
        f"failed, {len(unknown)} unknown)",
        result,
        failed,
        unknown,
        landed=bool(destroyed),
    )
    return result


def _tell_destroyed(
    state: State,
    cell: str,
    told: list[tuple[str, int, int]],
    destroyed: list[str],
    unknown: dict[str, SpecStoreError],
) -> Steps[set[str]]:
    """The authority's step of a remote destroy_bulk; a failure moves the spec from
    ``destroyed`` to ``unknown`` (its copy is gone, the authority may still name it).
    Returns the specs the authority buried (it named this copy)."""
    api = state.topology.api
    label = f"destroy_bulk of {len(told)} specs (authority)"
    reads = [("HGET", api.keys.location_key(uid), "move_from") for uid, _, _ in told]
    try:
        replies = yield Commands(api, reads, label)
    except BackendError as exc:
        replies = [exc] * len(told)
    for (uid, _, _), reply in zip(told, replies, strict=True):
        if isinstance(reply, Exception):  # its copy is gone: the batch did write
            destroyed.remove(uid)
            unknown[uid] = BackendError(label, reply.__cause__ or reply, may_have_written=True)
    read = [(t, r) for t, r in zip(told, replies, strict=True) if not isinstance(r, Exception)]
    told, replies = [t for t, _ in read], [r for _, r in read]
    routes = [
        state.route(cell, uid, reply_text(source) if source else "")
        for (uid, _, _), source in zip(told, replies, strict=True)
    ]
    calls: list[lua.Call] = [
        (
            lua.MOVE_DESTROYED,
            route.authority_keys,
            [cell, epoch, last_rev, BURIED_SECONDS, route.here_flag],
        )
        for route, (_, last_rev, epoch) in zip(routes, told, strict=True)
    ]
    outcomes = yield from batch(api, calls, f"destroy_bulk of {len(calls)} specs (authority)")
    buried: set[str] = set()
    for route, (uid, _, epoch), reply in zip(routes, told, outcomes, strict=True):
        if isinstance(reply, StoreError):
            destroyed.remove(uid)
            unknown[uid] = reply
            continue
        fields = [reply_text(v) for v in reply]
        if fields[1:2] == ["destroyed"]:
            buried.add(uid)
        if fields[1:2] == ["destroyed"] and len(fields) > 3 and fields[2] and not route.source_here:
            # destroyed before its move committed: the frozen source goes too
            yield from two_phase.release(route, two_phase.OpenMove(fields[3], epoch), state.moves)
    return buried


# -- reads -----------------------------------------------------------------------------------


def get(state: State, ctx: RequestContext, instance_uuid: UUID | str) -> Steps[StoredSpec]:
    uid, store = normalize_uuid(instance_uuid), ctx.store_name
    backend = state.backend(store)
    try:
        raw = yield Command(backend, ("HGETALL", backend.keys.spec_key(store, uid)), f"get {uid}")
    except redis.ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        raise not_a_hash(uid, store) from None
    if not raw:
        raise SpecNotFoundError(uid, store, home=(yield from _home_hint(state, uid, backend)))
    return parse_record(as_dict(raw), store, uid, state.codec)


def get_many(
    state: State, ctx: RequestContext, instance_uuids: Sequence[UUID | str]
) -> Steps[BatchRead]:
    store = ctx.store_name
    backend = state.backend(store)
    uids = [normalize_uuid(u) for u in instance_uuids]
    keys = [backend.keys.spec_key(store, u) for u in uids]
    replies = yield Hashes(backend, keys, f"get_many of {len(uids)} specs")
    found: list[StoredSpec] = []
    missing: list[str] = []
    corrupt: dict[str, DocumentError] = {}
    for uid, raw in zip(uids, replies, strict=True):
        if raw is None:
            corrupt[uid] = not_a_hash(uid, store)
        elif not raw:
            missing.append(uid)
        else:
            try:
                found.append(parse_record(raw, store, uid, state.codec))
            except DocumentError as exc:
                corrupt[uid] = exc
    return BatchRead(found, missing, corrupt)


def locate(state: State, instance_uuid: UUID | str) -> Steps[str | None]:
    uid = normalize_uuid(instance_uuid)
    api = state.topology.api
    fields = ("store", "state", "move_id", "move_to")
    try:
        raw = yield Command(api, ("HMGET", api.keys.location_key(uid), *fields), f"locate {uid}")
    except redis.ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        raise _foreign_location(uid) from None
    except BackendError as exc:
        return (yield from _locate_in_cells(state, uid, exc))
    store, loc_state, move_id, move_to = (None if v is None else reply_text(v) for v in raw)
    if loc_state is None:
        if (yield Command(api, ("EXISTS", api.keys.location_key(uid)), f"locate {uid}")):
            raise _foreign_location(uid)
        return None
    if move_id is not None and move_to is not None and state.is_remote(move_to):
        adopted = yield from _adopted_by(state, move_to, uid, move_id)
        if adopted == "live":
            return move_to
        if adopted == "destroyed":
            return None  # destroyed in the target before the authority was told
    return store or None


def _adopted_by(state: State, cell: str, uid: str, move_id: str) -> Steps[str | None]:
    """What the move ``move_id`` left in ``cell`` (on its own backend): "live" (its copy
    is there), "destroyed" (it was, and was destroyed), or None (not adopted)."""
    backend = state.backend(cell)
    key = backend.keys.location_key(uid)
    try:
        store, loc_state, adopted_by = yield Command(
            backend, ("HMGET", key, "store", "state", "adopted_by"), f"locate {uid}"
        )
    except redis.ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        return None  # not a record of ours: it cannot have adopted anything
    if adopted_by is None or reply_text(adopted_by) != move_id:
        return None
    if store and reply_text(store) == cell:
        return "live"
    return "destroyed" if loc_state == b"destroyed" else None


def _locate_in_cells(state: State, uid: str, failure: BackendError) -> Steps[str]:
    """``locate`` with the api backend down: a cell backend holding the live copy."""
    for backend in state.topology.backends()[1:]:
        try:
            store = yield Command(
                backend, ("HGET", backend.keys.location_key(uid), "store"), f"locate {uid}"
            )
        except (BackendError, redis.ResponseError):
            continue
        if store:
            return reply_text(store)
    raise failure


def _home_hint(state: State, uid: str, backend: AnyBackend) -> Steps[str | None]:
    """Where the spec lives, for an error message; None when that cannot be told. A miss
    in a cell on its own backend asks only that backend (never waits on the api's)."""
    if backend is state.topology.api:
        try:
            return (yield from locate(state, uid))
        except (BackendError, CorruptDocumentError):
            return None
    try:
        store, moved_to = yield Command(
            backend, ("HMGET", backend.keys.location_key(uid), "store", "moved_to"), f"get {uid}"
        )
    except (BackendError, redis.ResponseError):
        return None
    where = store or moved_to
    return reply_text(where) if where else None


# -- batches ---------------------------------------------------------------------------------


def batch(
    backend: AnyBackend,
    calls: list[lua.Call],
    operation: str,
    *,
    whole_failure_raises: bool = False,
) -> Steps[list[Any]]:
    """Replies of a pipelined batch of script calls, each failed call as a BackendError.

    A failed call's ``may_have_written`` is False when Redis refused it before running it
    (out of memory, read-only replica, busy, redirected), else True. When the whole pipeline
    fails (connection lost, authentication), every call gets the same error, or it is raised
    with ``whole_failure_raises``.
    """
    if not calls:
        return []
    try:
        replies = yield Scripts(backend, calls, operation)
    except BackendError as exc:
        if whole_failure_raises:
            raise
        return [exc] * len(calls)
    return [_call_failed(operation, r) if isinstance(r, Exception) else r for r in replies]


def _call_failed(operation: str, exc: Exception) -> BackendError:
    error = BackendError(operation, exc, may_have_written=not lua.refused_before_running(exc))
    error.__cause__ = exc
    return error




def raise_if_redis_failed(
    operation: str,
    result: object,
    failed: dict[str, SpecStoreError],
    unknown: dict[str, SpecStoreError],
    *,
    landed: bool,
) -> None:
    """BatchWriteError (carrying ``result``) when Redis failed part of a batch; a batch whose
    only failures are typed refusals (data specstore did not write) returns normally."""
    redis_errors = [e for e in (*failed.values(), *unknown.values()) if isinstance(e, BackendError)]
    if not redis_errors:
        return
    cause = _root_cause(redis_errors[0])
    may_have_written = landed or bool(unknown)
    raise BatchWriteError(operation, cause, result, may_have_written=may_have_written) from cause


def _root_cause(error: SpecStoreError) -> BaseException:
    """The Redis error behind a BackendError (what a batch error names as its cause)."""
    return error.__cause__ or error if isinstance(error, BackendError) else error


def _may_have_run(error: SpecStoreError) -> bool:
    return isinstance(error, BackendError) and error.may_have_written


def _created_rev(result: two_phase.CopyResult, store: str) -> int:
    if result.status == "created":
        return result.rev
    if result.status in ("exists", "moving"):
        raise SpecExistsError(result.uid, result.home or store)
    assert result.error is not None
    raise result.error


def _foreign_location(uid: str) -> CorruptDocumentError:
    return CorruptDocumentError(
        f"the location record of {uid} holds data specstore did not write; left as is"
    )


def not_a_hash(uid: str, store: str) -> CorruptDocumentError:
    return CorruptDocumentError(
        f"spec key of {uid} in {store!r} holds a value that is not a spec hash"
    )
