"""SpecStore: request specs in Redis, in the api store or a cell store chosen by the context.

Every single-spec operation is one round trip: writes run one Lua script (atomic), reads one
HGETALL. Batches are one pipeline. Which backend (connection + prefix) holds each store comes
from the :class:`~specstore.topology.Topology`; a promote between two backends runs the
two-phase move of :mod:`specstore.two_phase`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import redis

from serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec
from specstore import lua, observability, two_phase
from specstore.connection import (
    RedisClient,
    backend_errors,
    connect,
    is_wrong_type,
    read_hashes,
)
from specstore.context import RequestContext
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
from specstore.keys import API, Keyspace, normalize_uuid, validate_cell_name, validate_store_name
from specstore.model import RequestSpec
from specstore.records import (
    StoredSpec,
    WriteArgs,
    check_reply,
    parse_record,
    reply_error,
    reply_text,
    write_args,
)
from specstore.scan import scan_batches
from specstore.topology import Backend, Topology

BURIED_SECONDS = 7 * 24 * 3600
"""How long a destroyed spec's location record (its last rev) is kept: a spec re-created within
that time continues above it, so a rev held from before the destroy never matches."""

MOVE_LEASE_SECONDS = 30.0
"""How long a move to a cell on another backend may run before resume/repair may settle it."""


def utc_now() -> str:
    """Timestamp written to ``created_at`` / ``updated_at`` (ISO 8601, UTC, microseconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class BatchRead:
    """Result of :meth:`SpecStore.get_many`: found specs in request order, and the rest."""

    found: list[StoredSpec]
    missing: list[str]
    corrupt: dict[str, DocumentError] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchCreate:
    """Result of :meth:`SpecStore.create_many`."""

    created: list[str]
    existing: dict[str, str]
    """Specs that already had a home (or a move under way to one): uuid -> that store."""
    failed: dict[str, SpecStoreError] = field(default_factory=dict)
    """Nothing of these was written."""
    unknown: dict[str, SpecStoreError] = field(default_factory=dict)
    """These may have landed: re-read them (``locate``) before retrying."""


@dataclass(frozen=True)
class BatchDestroy:
    """Result of :meth:`SpecStore.destroy_bulk` (each uuid once, in request order)."""

    destroyed: list[str]
    missing: list[str]
    elsewhere: dict[str, str] = field(default_factory=dict)
    """Specs that live in another store than the context's: uuid -> their home (kept)."""
    moving: dict[str, str] = field(default_factory=dict)
    """Specs being moved to another store right now: uuid -> the target (kept)."""
    failed: dict[str, SpecStoreError] = field(default_factory=dict)
    unknown: dict[str, SpecStoreError] = field(default_factory=dict)


@dataclass(frozen=True)
class Promotion:
    """Result of :meth:`SpecStore.promote`."""

    instance_uuid: str
    cell: str
    rev: int
    moved: bool
    """False when the spec already lived in the cell (promote is idempotent)."""


class SpecStore:
    """Persisted request specs: the api store and the cell stores, on one or more backends."""

    def __init__(
        self,
        target: RedisClient | Topology,
        *,
        keyspace: Keyspace | None = None,
        codec: DocumentCodec = DEFAULT_CODEC,
        clock: Callable[[], str] = utc_now,
        move_lease_seconds: float = MOVE_LEASE_SECONDS,
        on_move_step: two_phase.MoveHook | None = None,
    ) -> None:
        """``target`` is one client (every store on it, under ``keyspace``) or a topology.

        ``move_lease_seconds``: how long a move to a cell on another backend may run before
        ``resume_moves``/``repair`` may settle it. ``on_move_step`` is a test hook called after
        each step of such a move.
        """
        if isinstance(target, Topology):
            if keyspace is not None:
                raise TypeError("pass the keyspace inside the Topology")
            self.topology = target
        else:
            self.topology = Topology.single(target, keyspace)
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
    ) -> SpecStore:
        """A store on the Redis at ``url`` (see :func:`specstore.connection.connect`)."""
        return cls(connect(url, **options), keyspace=Keyspace(prefix), codec=codec)

    @property
    def client(self) -> RedisClient:
        """The api backend's client."""
        return self.topology.api.client

    @property
    def keys(self) -> Keyspace:
        """The api backend's keyspace."""
        return self.topology.api.keys

    def backend(self, store: str) -> Backend:
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

    def close(self) -> None:
        self.topology.close()

    def __enter__(self) -> SpecStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------

    @observability.operation("create")
    def create(self, ctx: RequestContext, spec: RequestSpec) -> int:
        """Store a new spec in the context's store; returns its rev.

        Raises :class:`SpecExistsError` if the instance already has a spec in any store (or a
        move to one is under way). The rev continues above a destroyed predecessor's.
        """
        uid, store = str(spec.instance_uuid), ctx.store_name
        args = write_args(spec, self.codec)
        if self.is_remote(store):
            (result,) = two_phase.create_copies(
                self.topology.api,
                self.backend(store),
                store,
                [self._new_copy(uid, args, self.clock())],
                self.moves,
                self.clock(),
            )
            return _created_rev(result, store)
        api = self.topology.api
        argv = [store, args.doc, args.schema, args.project_id, args.user_id, self.clock()]
        with backend_errors(f"create {uid}", writes=True):
            reply = lua.run_script(
                api.client, lua.CREATE, api.keys.home_keys(store, uid), argv, held=api.held
            )
        return int(check_reply(reply, uid, store, None)[0])

    @observability.operation("create_many")
    def create_many(self, ctx: RequestContext, specs: Sequence[RequestSpec]) -> BatchCreate:
        """Create many specs in the context's store: one pipeline (per step, per node).

        Specs that already exist anywhere are reported in ``existing``, not overwritten. A uuid
        listed twice is refused before anything is written (:class:`InvalidInputError`). When
        Redis fails part of the batch, :class:`BatchWriteError` carries the result: what was
        created, what failed (not written) and what is unknown (may have landed).
        """
        store = ctx.store_name
        uids = [str(spec.instance_uuid) for spec in specs]
        twice = sorted({u for u in uids if uids.count(u) > 1}) if len(set(uids)) < len(uids) else []
        if twice:
            raise InvalidInputError(f"create_many lists these instances twice: {twice}")
        now = self.clock()
        copies = [
            self._new_copy(uid, write_args(s, self.codec), now)
            for uid, s in zip(uids, specs, strict=True)
        ]
        if self.is_remote(store):
            results = two_phase.create_copies(
                self.topology.api, self.backend(store), store, copies, self.moves, now
            )
        else:
            results = self._create_local(store, copies)
        created = [r.uid for r in results if r.status == "created"]
        existing = {r.uid: r.home for r in results if r.status in ("exists", "moving")}
        failed = {r.uid: r.error for r in results if r.status == "failed" and r.error}
        unknown = {r.uid: r.error for r in results if r.status == "unknown" and r.error}
        result = BatchCreate(created, existing, failed, unknown)
        _raise_if_redis_failed(
            f"create_many of {len(specs)} specs ({len(created)} created, {len(failed)} "
            f"failed, {len(unknown)} unknown)",
            result,
            failed,
            unknown,
            landed=bool(created),
        )
        return result

    def _new_copy(self, uid: str, args: WriteArgs, now: str) -> two_phase.NewCopy:
        return two_phase.NewCopy(
            uid, args.doc, 1, args.schema, args.project_id, args.user_id, now, now
        )

    def _create_local(
        self, store: str, copies: Sequence[two_phase.NewCopy]
    ) -> list[two_phase.CopyResult]:
        api = self.topology.api
        calls: list[lua.Call] = [
            (
                lua.CREATE,
                api.keys.home_keys(store, c.uid),
                [store, c.doc, c.schema, c.project_id, c.user_id, c.created_at],
            )
            for c in copies
        ]
        replies = run_batch(api, calls, f"create_many of {len(calls)} specs")
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

    @observability.operation("save")
    def save(self, ctx: RequestContext, spec: RequestSpec, rev: int | None = None) -> int:
        """Overwrite the stored spec where it lives; returns the new rev.

        With ``rev`` the write is a compare-and-set: :class:`ConflictError` if the stored rev
        differs. A context targeting another store than the spec's home raises
        :class:`WrongStoreError` (no second copy is ever created). In a cell on its own backend
        this is one round trip to that backend only.
        """
        uid, store = str(spec.instance_uuid), ctx.store_name
        backend = self.backend(store)
        args = write_args(spec, self.codec)
        expected = "" if rev is None else str(rev)
        argv = [
            store,
            expected,
            args.doc,
            args.schema,
            args.project_id,
            args.user_id,
            self.clock(),
            self.codec.current_version[0],
        ]
        with backend_errors(f"save {uid}", writes=True):
            reply = lua.run_script(
                backend.client,
                lua.SAVE,
                backend.keys.home_keys(store, uid),
                argv,
                held=backend.held,
            )
        return int(check_reply(reply, uid, store, rev)[0])

    @observability.operation("promote")
    def promote(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        """Move a spec from the api store to ``cell`` after scheduling; idempotent.

        On one backend this is one atomic script. To a cell on another backend it is the
        fenced move of :mod:`specstore.two_phase`; calling promote again joins and finishes a
        move that was interrupted, and returns the cell copy's current rev.
        """
        return self._move(normalize_uuid(instance_uuid), API, validate_cell_name(cell))

    @observability.operation("move_to_cell")
    def move_to_cell(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        """Move a spec from the cell the context targets to ``cell`` (a cross-cell resize or
        migration, and its revert); idempotent like :meth:`promote`.

        ``locate`` answers the new cell as soon as its copy is there; the old cell then
        refuses writes (:class:`MoveInProgressError` while the move runs, then
        :class:`WrongStoreError`). Atomic when both cells share the api backend; otherwise
        the fenced move of :mod:`specstore.two_phase`.
        """
        if ctx.cell is None:
            raise InvalidInputError("move_to_cell moves out of a cell: target the source cell")
        return self._move(normalize_uuid(instance_uuid), ctx.cell, validate_cell_name(cell))

    def _move(self, uid: str, source: str, cell: str) -> Promotion:
        api = self.topology.api
        if self.is_remote(cell) or self.is_remote(source):
            outcome = two_phase.move(self.route(cell, uid, source), self.moves, self.clock())
            return Promotion(uid, cell, outcome.rev, outcome.moved)
        keys = [
            api.keys.spec_key(source, uid),
            api.keys.spec_key(cell, uid),
            api.keys.location_key(uid),
        ]
        with backend_errors(f"move {uid} to {cell}", writes=True):
            reply = lua.run_script(api.client, lua.PROMOTE, keys, [cell, source], held=api.held)
        rev, outcome_name = check_reply(reply, uid, source, None)
        return Promotion(uid, cell, int(rev), moved=outcome_name == "moved")

    @observability.operation("resume_moves", after=observability.log_settled)
    def resume_moves(self) -> dict[str, str]:
        """Settle every move to a cell on another backend whose lease expired.

        Returns uuid -> "finished" | "rolled_back" | "destroyed" | "settled" (someone else did)
        | "unreachable" (the cell's backend is down; left for later) | "corrupt" (the record
        holds something specstore did not write; left as is). Moves still within their lease
        are never touched: their mover may be running.
        """
        api = self.topology.api
        settled: dict[str, str] = {}
        for keys, _ in scan_batches(api.client, api.keys.location_pattern(), 500):
            for uid, move in self._expired_moves(api, [reply_text(k) for k in keys]).items():
                if move is None:
                    settled[uid] = "corrupt"
                    continue
                source, cell, open_move = move
                try:
                    route = self.route(cell, uid, source)
                    outcome = two_phase.settle_expired(route, open_move, self.moves)
                    if outcome != "running":
                        settled[uid] = outcome
                except BackendError:
                    settled[uid] = "unreachable"
                except SpecStoreError:  # data specstore did not write: left as it is
                    settled[uid] = "corrupt"
        return settled

    def _expired_moves(
        self, api: Backend, keys: list[str]
    ) -> dict[str, tuple[str, str, two_phase.OpenMove] | None]:
        """Of these location keys, the open moves whose lease expired: (source, target, move);
        None where the record is not ours."""
        owned = [(k, u) for k in keys if (u := api.keys.parse_location_key(k)) is not None]
        if not owned:
            return {}
        with backend_errors("resume_moves", writes=False):
            pipe = api.client.pipeline(transaction=False)
            pipe.time()
            for key, _ in owned:
                pipe.hmget(key, ["move_id", "move_to", "epoch", "lease_until", "move_from"])
            replies = pipe.execute(raise_on_error=False)
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
                move = two_phase.OpenMove(reply_text(move_id), int(epoch))
                found[uid] = (source, cell, move)
            except (ValueError, TypeError, SpecStoreError):
                found[uid] = None
        return found

    @observability.operation("destroy")
    def destroy(
        self, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None = None
    ) -> None:
        """Delete the spec from the context's store (compare-and-set with ``rev``)."""
        uid, store = normalize_uuid(instance_uuid), ctx.store_name
        if self.is_remote(store):
            two_phase.destroy(self.route(store, uid), rev, self.moves, self.backend)
            return
        api = self.topology.api
        argv = [store, "" if rev is None else str(rev), BURIED_SECONDS, "1"]
        with backend_errors(f"destroy {uid}", writes=True):
            reply = lua.run_script(
                api.client, lua.DESTROY, api.keys.home_keys(store, uid), argv, held=api.held
            )
        check_reply(reply, uid, store, rev)

    @observability.operation("destroy_bulk")
    def destroy_bulk(
        self, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
    ) -> BatchDestroy:
        """Delete many specs from the context's store: one pipeline (two for a cell on its
        own backend: the cell, then the authority). Each uuid is handled once.

        Specs living in another store are left alone and reported in ``elsewhere``, specs
        being moved in ``moving``. When Redis fails part of the batch,
        :class:`BatchWriteError` carries the result.
        """
        store = ctx.store_name
        uids = list(dict.fromkeys(normalize_uuid(u) for u in instance_uuids))
        remote = self.is_remote(store)
        backend = self.backend(store)
        authority = "" if remote else "1"
        calls: list[lua.Call] = [
            (lua.DESTROY, backend.keys.home_keys(store, u), [store, "", BURIED_SECONDS, authority])
            for u in uids
        ]
        replies = run_batch(backend, calls, f"destroy_bulk of {len(uids)} specs")
        destroyed: list[str] = []
        missing: list[str] = []
        elsewhere: dict[str, str] = {}
        moving: dict[str, str] = {}
        failed: dict[str, SpecStoreError] = {}
        unknown: dict[str, SpecStoreError] = {}
        told: list[tuple[str, int, int]] = []
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
            elif status == "not_found":
                missing.append(uid)
            else:
                failed[uid] = reply_error(reply, uid)
        if remote and told:
            self._tell_destroyed(store, told, destroyed, unknown)
        result = BatchDestroy(destroyed, missing, elsewhere, moving, failed, unknown)
        _raise_if_redis_failed(
            f"destroy_bulk of {len(uids)} specs ({len(destroyed)} destroyed, {len(failed)} "
            f"failed, {len(unknown)} unknown)",
            result,
            failed,
            unknown,
            landed=bool(destroyed),
        )
        return result

    def _tell_destroyed(
        self,
        cell: str,
        told: list[tuple[str, int, int]],
        destroyed: list[str],
        unknown: dict[str, SpecStoreError],
    ) -> None:
        """The authority's step of a remote destroy_bulk; a failure moves the spec from
        ``destroyed`` to ``unknown`` (its copy is gone, the authority may still name it)."""
        api = self.topology.api
        with backend_errors(f"destroy_bulk of {len(told)} specs (authority)", writes=False):
            pipe = api.client.pipeline(transaction=False)
            for uid, _, _ in told:
                pipe.hget(api.keys.location_key(uid), "move_from")
            sources = [reply_text(r) if r else "" for r in pipe.execute()]
        routes = [
            self.route(cell, uid, source) for (uid, _, _), source in zip(told, sources, strict=True)
        ]
        calls: list[lua.Call] = [
            (
                lua.MOVE_DESTROYED,
                route.authority_keys,
                [cell, epoch, last_rev, BURIED_SECONDS, route.here_flag],
            )
            for route, (_, last_rev, epoch) in zip(routes, told, strict=True)
        ]
        replies = run_batch(api, calls, f"destroy_bulk of {len(calls)} specs (authority)")
        for route, (uid, _, epoch), reply in zip(routes, told, replies, strict=True):
            if isinstance(reply, StoreError):
                destroyed.remove(uid)
                unknown[uid] = reply
                continue
            fields = [reply_text(v) for v in reply]
            if (
                fields[1:2] == ["destroyed"]
                and len(fields) > 3
                and fields[2]
                and not route.source_here
            ):
                # destroyed before its move committed: the frozen source goes too
                two_phase.release(route, two_phase.OpenMove(fields[3], epoch), self.moves)

    # -- reads -------------------------------------------------------------------------------

    @observability.operation("get")
    def get(self, ctx: RequestContext, instance_uuid: UUID | str) -> StoredSpec:
        """The spec of ``instance_uuid`` in the context's store, with its rev and metadata."""
        uid, store = normalize_uuid(instance_uuid), ctx.store_name
        backend = self.backend(store)
        key = backend.keys.spec_key(store, uid)
        with backend_errors(f"get {uid}", writes=False):
            try:
                raw = backend.hgetall(key)
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                raise _not_a_hash(uid, store) from None
        if not raw:
            raise SpecNotFoundError(uid, store, home=self._home_hint(uid, backend))
        return parse_record(raw, store, uid, self.codec)

    @observability.operation("get_many")
    def get_many(self, ctx: RequestContext, instance_uuids: Sequence[UUID | str]) -> BatchRead:
        """Many specs of the context's store in one pipeline; order kept, misses reported."""
        store = ctx.store_name
        backend = self.backend(store)
        uids = [normalize_uuid(u) for u in instance_uuids]
        with backend_errors(f"get_many of {len(uids)} specs", writes=False):
            replies = read_hashes(
                backend.client, [backend.keys.spec_key(store, u) for u in uids], backend.held
            )
        found: list[StoredSpec] = []
        missing: list[str] = []
        corrupt: dict[str, DocumentError] = {}
        for uid, raw in zip(uids, replies, strict=True):
            if raw is None:
                corrupt[uid] = _not_a_hash(uid, store)
                continue
            if not raw:
                missing.append(uid)
                continue
            try:
                found.append(parse_record(raw, store, uid, self.codec))
            except DocumentError as exc:
                corrupt[uid] = exc
        return BatchRead(found, missing, corrupt)

    @observability.operation("locate")
    def locate(self, instance_uuid: UUID | str) -> str | None:
        """Which store holds the spec: ``"api"``, a cell name, or None.

        Asks the authority (the api backend). While a move to a cell on another backend is
        open, the answer is the cell once its copy is there (it takes the writes), else the
        store the move started from. When the api backend cannot be reached, the cells' own
        backends answer for the specs they hold.
        """
        uid = normalize_uuid(instance_uuid)
        api = self.topology.api
        fields = ["store", "state", "move_id", "move_to"]
        try:
            with backend_errors(f"locate {uid}", writes=False):
                try:
                    raw = api.client.hmget(api.keys.location_key(uid), fields)
                except redis.ResponseError as exc:
                    if not is_wrong_type(exc):
                        raise
                    raise _foreign_location(uid) from None
        except BackendError as exc:
            return self._locate_in_cells(uid, exc)
        store, state, move_id, move_to = (None if v is None else reply_text(v) for v in raw)
        if state is None:
            if api.client.exists(api.keys.location_key(uid)):
                raise _foreign_location(uid)
            return None
        if move_id is not None and move_to is not None and self.is_remote(move_to):
            adopted = self._adopted_by(move_to, uid, move_id)
            if adopted == "live":
                return move_to
            if adopted == "destroyed":
                return None  # destroyed in the target before the authority was told
        return store or None

    def _adopted_by(self, cell: str, uid: str, move_id: str) -> str | None:
        """What the move ``move_id`` left in ``cell`` (on its own backend): "live" (its copy
        is there), "destroyed" (it was, and was destroyed), or None (not adopted)."""
        backend = self.backend(cell)
        with backend_errors(f"locate {uid}", writes=False):
            try:
                store, state, adopted_by = backend.client.hmget(
                    backend.keys.location_key(uid), ["store", "state", "adopted_by"]
                )
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                return None  # not a record of ours: it cannot have adopted anything
        if adopted_by is None or reply_text(adopted_by) != move_id:
            return None
        if store and reply_text(store) == cell:
            return "live"
        return "destroyed" if state == b"destroyed" else None

    def _locate_in_cells(self, uid: str, failure: BackendError) -> str:
        """``locate`` with the api backend down: a cell backend holding the live copy."""
        for backend in self.topology.backends()[1:]:
            try:
                with backend_errors(f"locate {uid}", writes=False):
                    store = backend.client.hget(backend.keys.location_key(uid), "store")
            except (BackendError, redis.ResponseError):
                continue
            if store:
                return reply_text(store)
        raise failure

    def _home_hint(self, uid: str, backend: Backend) -> str | None:
        """Where the spec lives, for an error message; None when that cannot be told. A miss
        in a cell on its own backend asks only that backend (never waits on the api's)."""
        if backend is self.topology.api:
            try:
                return self.locate(uid)
            except (BackendError, CorruptDocumentError):
                return None
        try:
            with backend_errors(f"get {uid}", writes=False):
                store, moved_to = backend.client.hmget(
                    backend.keys.location_key(uid), ["store", "moved_to"]
                )
        except BackendError:
            return None
        where = store or moved_to
        return reply_text(where) if where else None

    def _scan(self, backend: Backend, pattern: str, count: int = 1000) -> Iterator[str]:
        """Keys matching ``pattern`` on ``backend`` (every master of a cluster); never KEYS."""
        for keys, _ in scan_batches(backend.client, pattern, count):
            for key in keys:
                yield reply_text(key)


def run_batch(
    backend: Backend, calls: list[lua.Call], operation: str, *, whole_failure_raises: bool = False
) -> list[Any]:
    """Replies of a pipelined batch of script calls, each failed call as a BackendError.

    A failed call's ``may_have_written`` is False when Redis refused it before running it
    (out of memory, read-only replica, busy, redirected), else True. When the whole pipeline
    fails (connection lost, authentication), every call gets the same error, or it is raised
    with ``whole_failure_raises``.
    """
    if not calls:
        return []
    try:
        with backend_errors(operation, writes=True):
            replies = lua.run_scripts_pipelined(backend.client, calls, held=backend.held)
    except BackendError as exc:
        if whole_failure_raises:
            raise
        return [exc] * len(calls)
    return [_call_failed(operation, r) if isinstance(r, Exception) else r for r in replies]


def _call_failed(operation: str, exc: Exception) -> BackendError:
    error = BackendError(operation, exc, may_have_written=not _refused_before_running(exc))
    error.__cause__ = exc
    return error


_REFUSED_BEFORE_RUNNING = (
    redis.exceptions.NoScriptError,
    redis.exceptions.NoPermissionError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
)
"""Replies by which Redis refuses a call before running any of it (redis-py strips the code)."""


def _refused_before_running(exc: Exception) -> bool:
    if isinstance(exc, _REFUSED_BEFORE_RUNNING):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(("BUSY", "NOPERM", "OOM"))


def _raise_if_redis_failed(
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
    raise BatchWriteError(
        operation, cause, result, may_have_written=landed or bool(unknown)
    ) from cause


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


def _not_a_hash(uid: str, store: str) -> CorruptDocumentError:
    return CorruptDocumentError(
        f"spec key of {uid} in {store!r} holds a value that is not a spec hash"
    )
