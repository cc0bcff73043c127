"""SpecStore: request specs in Redis, in the api store or a cell store chosen by the context.

Every single-spec operation is one round trip: writes run one Lua script (atomic), reads one
HGETALL. Batches are one pipeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec
from specstore import lua
from specstore.connection import RedisClient, backend_errors, connect
from specstore.context import RequestContext
from specstore.errors import DocumentError, SpecNotFoundError, StoreError
from specstore.keys import API, Keyspace, normalize_uuid, validate_cell_name
from specstore.model import RequestSpec
from specstore.records import StoredSpec, check_reply, parse_record, reply_text, write_args


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
    """Persisted request specs on one Redis server or cluster, under one key prefix."""

    def __init__(
        self,
        client: RedisClient,
        *,
        keyspace: Keyspace | None = None,
        codec: DocumentCodec = DEFAULT_CODEC,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.client = client
        self.keys = keyspace or Keyspace()
        self.codec = codec
        self.clock = clock

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

    def close(self) -> None:
        self.client.close()

    # -- writes ------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, spec: RequestSpec) -> int:
        """Store a new spec in the context's store; returns its rev (1).

        Raises :class:`SpecExistsError` if the instance already has a spec in any store.
        """
        uid, store = str(spec.instance_uuid), ctx.store_name
        args = write_args(spec, self.codec)
        keys = [self.keys.spec_key(store, uid), self.keys.location_key(uid)]
        argv = [store, args.doc, args.schema, args.project_id, args.user_id, self.clock()]
        with backend_errors(f"create {uid}", writes=True):
            reply = lua.run_script(self.client, lua.CREATE, keys, argv)
        return int(check_reply(reply, uid, store, None)[0])

    def save(self, ctx: RequestContext, spec: RequestSpec, rev: int | None = None) -> int:
        """Overwrite the stored spec where it lives; returns the new rev.

        With ``rev`` the write is a compare-and-set: :class:`ConflictError` if the stored rev
        differs. A context targeting another store than the spec's home raises
        :class:`WrongStoreError` (no second copy is ever created).
        """
        uid, store = str(spec.instance_uuid), ctx.store_name
        args = write_args(spec, self.codec)
        keys = [self.keys.spec_key(store, uid), self.keys.location_key(uid)]
        expected = "" if rev is None else str(rev)
        argv = [store, expected, args.doc, args.schema, args.project_id, args.user_id,
                self.clock(), self.codec.current_version[0]]
        with backend_errors(f"save {uid}", writes=True):
            reply = lua.run_script(self.client, lua.SAVE, keys, argv)
        return int(check_reply(reply, uid, store, rev)[0])

    def promote(self, ctx: RequestContext, instance_uuid: UUID | str, cell: str) -> Promotion:
        """Move a spec from the api store to ``cell`` after scheduling (atomic, idempotent)."""
        uid, cell = normalize_uuid(instance_uuid), validate_cell_name(cell)
        keys = [
            self.keys.spec_key(API, uid),
            self.keys.spec_key(cell, uid),
            self.keys.location_key(uid),
        ]
        with backend_errors(f"promote {uid} to {cell}", writes=True):
            reply = lua.run_script(self.client, lua.PROMOTE, keys, [cell])
        rev, outcome = check_reply(reply, uid, API, None)
        return Promotion(uid, cell, int(rev), moved=outcome == "moved")

    def destroy(
        self, ctx: RequestContext, instance_uuid: UUID | str, rev: int | None = None
    ) -> None:
        """Delete the spec (and its location record) from the context's store."""
        uid, store = normalize_uuid(instance_uuid), ctx.store_name
        keys = [self.keys.spec_key(store, uid), self.keys.location_key(uid)]
        argv = [store, "" if rev is None else str(rev)]
        with backend_errors(f"destroy {uid}", writes=True):
            reply = lua.run_script(self.client, lua.DESTROY, keys, argv)
        check_reply(reply, uid, store, rev)

    def destroy_bulk(
        self, ctx: RequestContext, instance_uuids: Iterable[UUID | str]
    ) -> BatchDestroy:
        """Delete many specs from the context's store in one pipeline.

        Specs living in another store are left alone and reported in ``elsewhere``.
        """
        store = ctx.store_name
        uids = [normalize_uuid(u) for u in instance_uuids]
        calls: list[lua.Call] = [
            (lua.DESTROY, [self.keys.spec_key(store, u), self.keys.location_key(u)], [store, ""])
            for u in uids
        ]
        with backend_errors(f"destroy_bulk of {len(uids)} specs", writes=True):
            replies = lua.run_scripts_pipelined(self.client, calls) if calls else []
        destroyed: list[str] = []
        missing: list[str] = []
        elsewhere: dict[str, str] = {}
        for uid, reply in zip(uids, replies, strict=True):
            if isinstance(reply, Exception):
                raise StoreError(f"destroy of {uid} failed: {reply}")
            status = reply_text(reply[0])
            if status == "ok":
                destroyed.append(uid)
            elif status == "wrong_store":
                elsewhere[uid] = reply_text(reply[1])
            else:
                missing.append(uid)
        return BatchDestroy(destroyed, missing, elsewhere)

    # -- reads -------------------------------------------------------------------------------

    def get(self, ctx: RequestContext, instance_uuid: UUID | str) -> StoredSpec:
        """The spec of ``instance_uuid`` in the context's store, with its rev and metadata."""
        uid, store = normalize_uuid(instance_uuid), ctx.store_name
        with backend_errors(f"get {uid}", writes=False):
            raw: dict[bytes, bytes] = self.client.hgetall(self.keys.spec_key(store, uid))
        if not raw:
            raise SpecNotFoundError(uid, store, home=self.locate(uid))
        return parse_record(raw, store, uid, self.codec)

    def get_many(
        self, ctx: RequestContext, instance_uuids: Sequence[UUID | str]
    ) -> BatchRead:
        """Many specs of the context's store in one pipeline; order kept, misses reported."""
        store = ctx.store_name
        uids = [normalize_uuid(u) for u in instance_uuids]
        with backend_errors(f"get_many of {len(uids)} specs", writes=False):
            pipe = self.client.pipeline(transaction=False)
            for uid in uids:
                pipe.hgetall(self.keys.spec_key(store, uid))
            replies: list[dict[bytes, bytes]] = pipe.execute() if uids else []
        found: list[StoredSpec] = []
        missing: list[str] = []
        corrupt: dict[str, DocumentError] = {}
        for uid, raw in zip(uids, replies, strict=True):
            if not raw:
                missing.append(uid)
                continue
            try:
                found.append(parse_record(raw, store, uid, self.codec))
            except DocumentError as exc:
                corrupt[uid] = exc
        return BatchRead(found, missing, corrupt)

    def locate(self, instance_uuid: UUID | str) -> str | None:
        """Which store holds the spec: ``"api"``, a cell name, or None."""
        uid = normalize_uuid(instance_uuid)
        with backend_errors(f"locate {uid}", writes=False):
            home: bytes | None = self.client.get(self.keys.location_key(uid))
        return None if home is None else home.decode("utf-8", "replace")

