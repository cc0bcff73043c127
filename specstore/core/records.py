"""Stored records: spec HASH fields <-> StoredSpec, and Lua replies -> typed errors (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specstore.errors import (
    ConflictError,
    CorruptDocumentError,
    IncompatibleSchemaError,
    MoveAbortedError,
    MoveInProgressError,
    SpecExistsError,
    SpecNotFoundError,
    SpecStoreError,
    StoreError,
    WrongStoreError,
)
from specstore.model import RequestSpec
from specstore.serializers.envelope import format_version
from specstore.serializers.msgpack_codec import DocumentCodec

FIELD_DOC = b"doc"
FIELD_REV = b"rev"


@dataclass(frozen=True, init=False)
class StoredSpec:
    """A spec as read from a store, with its revision and plain-text metadata."""

    spec: RequestSpec
    rev: int
    store: str
    schema: str
    project_id: str
    user_id: str
    created_at: str
    updated_at: str

    def __init__(
        self,
        spec: RequestSpec,
        rev: int,
        store: str,
        schema: str,
        project_id: str,
        user_id: str,
        created_at: str,
        updated_at: str,
    ) -> None:
        # Every read makes one: set through __dict__ (the frozen dataclass's own __init__
        # calls object.__setattr__ per field, five times the cost). Still frozen afterwards.
        self.__dict__.update(
            spec=spec,
            rev=rev,
            store=store,
            schema=schema,
            project_id=project_id,
            user_id=user_id,
            created_at=created_at,
            updated_at=updated_at,
        )


@dataclass(slots=True)
class WriteArgs:
    """What a write sends besides keys: the document and its plain-text metadata."""

    doc: bytes
    schema: str
    project_id: str
    user_id: str


def write_args(spec: RequestSpec, codec: DocumentCodec) -> WriteArgs:
    version, doc = codec.encode_versioned(spec)
    return WriteArgs(
        doc=doc,
        schema=f"{codec.schema}/{format_version(version)}",
        project_id=spec.project_id or "",
        user_id=spec.user_id or "",
    )


def parse_record(
    raw: dict[bytes, bytes], store: str, instance_uuid: str, codec: DocumentCodec
) -> StoredSpec:
    """A StoredSpec from an HGETALL reply (non-empty); corrupt records raise typed errors.
    ``instance_uuid`` is canonical (:func:`~specstore.core.keys.normalize_uuid`)."""
    doc, rev = raw.get(FIELD_DOC), raw.get(FIELD_REV)
    if doc is None or rev is None or not rev.isdigit():
        raise CorruptDocumentError(f"spec record {instance_uuid} in {store!r} lacks doc or rev")
    try:
        spec = codec.decode(doc)
    except (CorruptDocumentError, IncompatibleSchemaError) as exc:
        raise type(exc)(f"spec {instance_uuid} in {store!r}: {exc}") from exc
    if spec.instance_uuid.hex != instance_uuid.replace("-", ""):  # (cheaper than str())
        raise CorruptDocumentError(
            f"spec record {instance_uuid} in {store!r} holds instance {spec.instance_uuid}"
        )
    return StoredSpec(
        spec=spec,
        rev=int(rev),
        store=store,
        schema=raw.get(b"schema", b"").decode("utf-8", "replace"),
        project_id=raw.get(b"project_id", b"").decode("utf-8", "replace"),
        user_id=raw.get(b"user_id", b"").decode("utf-8", "replace"),
        created_at=raw.get(b"created_at", b"").decode("utf-8", "replace"),
        updated_at=raw.get(b"updated_at", b"").decode("utf-8", "replace"),
    )


def reply_text(value: Any) -> str:
    """A Lua reply element as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def check_reply(reply: Any, instance_uuid: str, store: str, expected_rev: int | None) -> list[str]:
    """The reply's fields after an ``ok`` status; the typed error for any other status."""
    if reply and reply[0] == b"ok":  # (every successful write: no per-field call)
        return [v.decode("utf-8", "replace") if type(v) is bytes else str(v) for v in reply[1:]]
    fields = [reply_text(v) for v in reply]
    status, rest = fields[0], fields[1:]
    if status == "ok":
        return rest
    if status in ("exists", "moving") and not rest:  # a move without its destination
        raise CorruptDocumentError(
            f"the location record of {instance_uuid} holds a move specstore did not write "
            "(no destination); left as is"
        )
    if status == "not_found":
        raise SpecNotFoundError(instance_uuid, store)
    if status == "wrong_store":
        raise WrongStoreError(instance_uuid, targeted=store, actual=rest[0])
    if status == "exists":
        raise SpecExistsError(instance_uuid, rest[0])
    if status == "moving":
        raise MoveInProgressError(instance_uuid, rest[0])
    if status == "incompatible":
        raise IncompatibleSchemaError(
            f"spec {instance_uuid} in {store!r} is stored as {rest[0]}, a newer major version "
            "than this code writes; it was not overwritten"
        )
    if status == "conflict":
        raise ConflictError(instance_uuid, expected_rev or 0, int(rest[0]))
    if status == "stale":
        raise MoveAbortedError(instance_uuid, store, "superseded")
    if status == "buried":
        raise SpecNotFoundError(instance_uuid, store)
    if status == "foreign":
        raise CorruptDocumentError(
            f"the {rest[0]} of {instance_uuid} holds data specstore did not write; left as is"
        )
    raise StoreError(f"unexpected script reply {fields!r}")  # pragma: no cover


def reply_error(reply: Any, instance_uuid: str) -> SpecStoreError:
    """The typed error a refusing script reply stands for (a batch reports it per spec)."""
    try:
        check_reply(reply, instance_uuid, "api", None)
    except SpecStoreError as exc:
        return exc
    return StoreError(f"unexpected script reply {reply!r} for {instance_uuid}")  # pragma: no cover
