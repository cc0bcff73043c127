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
from typing import Any, cast
from uuid import UUID

import redis

from serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec
from specstore import lua, two_phase
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
    CorruptDocumentError,
    DocumentError,
    SpecExistsError,
    SpecNotFoundError,
    StoreError,
)
from specstore.keys import API, Keyspace, normalize_uuid, validate_cell_name
from specstore.model import RequestSpec
from specstore.records import StoredSpec, check_reply, parse_record, reply_text, write_args
from specstore.scan import scan_batches
from specstore.topology import Backend, Topology

TOMBSTONE_SECONDS = 7 * 24 * 3600
"""How long a destroyed spec's last rev is kept (a re-created spec's revs continue above it)."""


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
    """Specs that already had a home: uuid -> that home (left untouched)."""


@dataclass(frozen=True)
class BatchDestroy:
    """Result of :meth:`SpecStore.destroy_bulk`."""

    destroyed: list[str]
    missing: list[str]
    elsewhere: dict[str, str] = field(default_factory=dict)
    """Specs that live in another store than the context's: uuid -> their home (kept)."""


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
        on_move_step: two_phase.MoveHook | None = None,
    ) -> None:
        """``target`` is one client (every store on it, under ``keyspace``) or a topology.

        ``on_move_step`` is a test hook called after each step of a two-phase move.
        """
        if isinstance(target, Topology):
            if keyspace is not None:
                raise TypeError("pass the keyspace inside the Topology")
            self.topology = target
        else:
            self.topology = Topology.single(target, keyspace)
        self.codec = codec
        self.clock = clock
        self.on_move_step = on_move_step

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

    def close(self) -> None:
        self.topology.close()

    def __enter__(self) -> SpecStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, spec: RequestSpec) -> int:
        """Store a new spec in the context's store; returns its rev (1).

        Raises :class:`SpecExistsError` if the instance already has a spec in any store.
        """
        uid, store = str(spec.instance_uuid), ctx.store_name
        backend = self.backend(store)
        if backend is not self.topology.api:
            # Across backends uniqueness cannot be checked atomically; check first (repair
            # settles the rare duplicate a race leaves).
            home = self.locate(uid)
            if home is not None:
                raise SpecExistsError(uid, home)
        args = write_args(spec, self.codec)
        keys = backend.keys.lifecycle_keys(store, uid)
        argv = [store, args.doc, args.schema, args.project_id, args.user_id, self.clock()]
        with backend_errors(f"create {uid}", writes=True):
            reply = lua.run_script(backend.client, lua.CREATE, keys, argv)
        return int(check_reply(reply, uid, store, None)[0])

    def create_many(self, ctx: RequestContext, specs: Sequence[RequestSpec]) -> BatchCreate:
        """Create many specs in the context's store in one pipeline (one per node).

        Specs that already exist anywhere on the backend are reported, not overwritten.
        """
        store = ctx.store_name
        backend = self.backend(store)
        now = self.clock()
        calls: list[lua.Call] = []
        for spec in specs:
            uid = str(spec.instance_uuid)
            args = write_args(spec, self.codec)
            calls.append(
                (
                    lua.CREATE,
                    backend.keys.lifecycle_keys(store, uid),
                    [store, args.doc, args.schema, args.project_id, args.user_id, now],
                )
            )
        with backend_errors(f"create_many of {len(calls)} specs", writes=True):
            replies = lua.run_scripts_pipelined(backend.client, calls) if calls else []
        created: list[str] = []
        existing: dict[str, str] = {}
        for spec, reply in zip(specs, replies, strict=True):
            uid = str(spec.instance_uuid)
            if isinstance(reply, Exception):
                raise StoreError(f"create of {uid} failed: {reply}")
            if reply_text(reply[0]) == "ok":
                created.append(uid)
            else:
                existing[uid] = reply_text(reply[1])
        return BatchCreate(created, existing)

    def save(self, ctx: RequestContext, spec: RequestSpec, rev: int | None = None) -> int:
        """Overwrite the stored spec where it lives; returns the new rev.

        With ``rev`` the write is a compare-and-set: :class:`ConflictError` if the stored rev
        differs. A context targeting another store than the spec's home raises
        :class:`WrongStoreError` (no second copy is ever created).
        """
        uid, store = str(spec.instance_uuid), ctx.store_name
        backend = self.backend(store)
        args = write_args(spec, self.codec)
        keys = [backend.keys.spec_key(store, uid), backend.keys.location_key(uid)]
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
            reply = lua.run_script(backend.client, lua.SAVE, keys, argv)
        return int(check_reply(reply, uid, store, rev)[0])

    def promote(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        """Move a spec from the api store to ``cell`` after scheduling; idempotent.

        On one backend this is one atomic script. To a cell on another backend it is the
        two-phase move of :mod:`specstore.two_phase`; calling promote again finishes a move
        that was interrupted.
        """
        uid, cell = normalize_uuid(instance_uuid), validate_cell_name(cell)
        api, target = self.topology.api, self.backend(cell)
        if target is not api:
            outcome = two_phase.move(api, target, uid, cell, self.clock(), self.on_move_step)
            return Promotion(uid, cell, outcome.rev, outcome.moved)
        keys = [
            api.keys.spec_key(API, uid),
            api.keys.spec_key(cell, uid),
            api.keys.location_key(uid),
        ]
        with backend_errors(f"promote {uid} to {cell}", writes=True):
            reply = lua.run_script(api.client, lua.PROMOTE, keys, [cell])
        rev, outcome_name = check_reply(reply, uid, API, None)
        return Promotion(uid, cell, int(rev), moved=outcome_name == "moved")

    def resume_moves(self, min_age_seconds: float = 60.0) -> dict[str, str]:
        """Settle every two-phase move interrupted at least ``min_age_seconds`` ago.

        Returns uuid -> "finished" | "rolled_back" | "unreachable" (see
        :mod:`specstore.two_phase` for the rule). The age keeps it from racing a move that is
        still running.
        """
        api = self.topology.api
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=min_age_seconds)
        settled: dict[str, str] = {}
        for key in self._scan(api, api.keys.spec_pattern(API)):
            parsed = api.keys.parse_spec_key(key)
            if parsed is None:
                continue
            with backend_errors("resume_moves", writes=False):
                cell_raw, since_raw = api.client.hmget(key, ["moving_to", "moving_since"])
            if cell_raw is None:
                continue
            since = dt.datetime.fromisoformat(reply_text(since_raw or b"1970-01-01T00:00:00+00:00"))
            if since > cutoff:
                continue
            cell = reply_text(cell_raw)
            settled[parsed[1]] = two_phase.resume_move(api, self.backend(cell), parsed[1], cell)
        return settled

    def destroy(
        self, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None = None
    ) -> None:
        """Delete the spec (and its location record) from the context's store."""
        uid, store = normalize_uuid(instance_uuid), ctx.store_name
        backend = self.backend(store)
        keys = backend.keys.lifecycle_keys(store, uid)
        argv = [store, "" if rev is None else str(rev), TOMBSTONE_SECONDS]
        with backend_errors(f"destroy {uid}", writes=True):
            reply = lua.run_script(backend.client, lua.DESTROY, keys, argv)
        check_reply(reply, uid, store, rev)

    def destroy_bulk(
        self, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
    ) -> BatchDestroy:
        """Delete many specs from the context's store in one pipeline.

        Specs living in another store are left alone and reported in ``elsewhere``.
        """
        store = ctx.store_name
        backend = self.backend(store)
        uids = [normalize_uuid(u) for u in instance_uuids]
        calls: list[lua.Call] = [
            (lua.DESTROY, backend.keys.lifecycle_keys(store, u), [store, "", TOMBSTONE_SECONDS])
            for u in uids
        ]
        with backend_errors(f"destroy_bulk of {len(uids)} specs", writes=True):
            replies = lua.run_scripts_pipelined(backend.client, calls) if calls else []
        destroyed: list[str] = []
        missing: list[str] = []
        elsewhere: dict[str, str] = {}
        for uid, reply in zip(uids, replies, strict=True):
            if isinstance(reply, Exception):
                raise StoreError(f"destroy of {uid} failed: {reply}")
            status = reply_text(reply[0])
            if status == "ok":
                destroyed.append(uid)
            elif status in ("wrong_store", "moving"):
                elsewhere[uid] = reply_text(reply[1])
            else:
                missing.append(uid)
        return BatchDestroy(destroyed, missing, elsewhere)

    # -- reads -------------------------------------------------------------------------------

    def get(self, ctx: RequestContext, instance_uuid: UUID | str) -> StoredSpec:
        """The spec of ``instance_uuid`` in the context's store, with its rev and metadata."""
        uid, store = normalize_uuid(instance_uuid), ctx.store_name
        backend = self.backend(store)
        key = backend.keys.spec_key(store, uid)
        with backend_errors(f"get {uid}", writes=False):
            try:
                raw = cast(dict[bytes, bytes], backend.client.hgetall(key))
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                raise _not_a_hash(uid, store) from None
        if not raw:
            raise SpecNotFoundError(uid, store, home=self._home_hint(uid))
        return parse_record(raw, store, uid, self.codec)

    def get_many(self, ctx: RequestContext, instance_uuids: Sequence[UUID | str]) -> BatchRead:
        """Many specs of the context's store in one pipeline; order kept, misses reported."""
        store = ctx.store_name
        backend = self.backend(store)
        uids = [normalize_uuid(u) for u in instance_uuids]
        with backend_errors(f"get_many of {len(uids)} specs", writes=False):
            replies = read_hashes(backend.client, [backend.keys.spec_key(store, u) for u in uids])
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

    def locate(self, instance_uuid: UUID | str) -> str | None:
        """Which store holds the spec: ``"api"``, a cell name, or None.

        Asks the api backend first, then each other backend (a spec mid-move is still in
        ``"api"``). A backend that cannot be reached is skipped when another one answers.
        """
        uid = normalize_uuid(instance_uuid)
        failure: BackendError | None = None
        for backend in self.topology.backends():
            try:
                with backend_errors(f"locate {uid}", writes=False):
                    home = cast("bytes | None", backend.client.get(backend.keys.location_key(uid)))
            except BackendError as exc:
                failure = failure or exc
                continue
            if home is not None:
                return reply_text(home)
        if failure is not None:
            raise failure
        return None

    def _home_hint(self, uid: str) -> str | None:
        """Where the spec lives, for an error message; None when that cannot be told."""
        try:
            return self.locate(uid)
        except BackendError:
            return None

    def _scan(self, backend: Backend, pattern: str, count: int = 1000) -> Iterator[str]:
        """Keys matching ``pattern`` on ``backend`` (every master of a cluster); never KEYS."""
        for keys, _ in scan_batches(backend.client, pattern, count):
            for key in keys:
                yield reply_text(key)


def _not_a_hash(uid: str, store: str) -> CorruptDocumentError:
    return CorruptDocumentError(
        f"spec key of {uid} in {store!r} holds a value that is not a spec hash"
    )
