"""Export records and their two encodings (pure; no I/O).

An export record is one stored spec with its metadata. JSON lines (for eyes and tools)::

    {"created_at": "...", "document": {"schema": "RequestSpec", "spec": {...}, "version": "1.0"},
     "instance_uuid": "...", "project_id": "...", "rev": 3, "store": "cell1",
     "updated_at": "...", "user_id": "..."}

msgpack (lossless and compact): a stream of maps with the same keys, where ``doc`` holds the
stored document bytes unchanged instead of ``document``.

Parsing a record for import trusts neither its bytes nor its metadata: the document is decoded
and re-encoded through the codec (so only persisted fields are ever written), the stored
schema is the one of the re-encoded document, and a record whose ``schema``, ``project_id``
or ``user_id`` disagrees with its own document is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgpack

from serializers import json_codec
from serializers.envelope import Version, format_version
from serializers.msgpack_codec import DocumentCodec
from specstore.errors import CorruptDocumentError, InvalidInputError
from specstore.keys import normalize_uuid, validate_store_name
from specstore.model import RequestSpec

META_FIELDS = ("schema", "project_id", "user_id", "created_at", "updated_at")


@dataclass(frozen=True)
class ExportRecord:
    """One stored spec: where it lives, its rev and metadata, and its document bytes."""

    instance_uuid: str
    store: str
    rev: int
    doc: bytes
    schema: str = ""
    project_id: str = ""
    user_id: str = ""
    created_at: str = ""
    updated_at: str = ""


def record_from_hash(store: str, instance_uuid: str, raw: dict[bytes, bytes]) -> ExportRecord:
    """An ExportRecord from an HGETALL reply; CorruptDocumentError when doc or rev is bad."""
    doc, rev = raw.get(b"doc"), raw.get(b"rev")
    if doc is None or rev is None or not rev.isdigit():
        raise CorruptDocumentError(f"spec record {instance_uuid} in {store!r} lacks doc or rev")
    meta = {name: raw.get(name.encode(), b"").decode("utf-8", "replace") for name in META_FIELDS}
    return ExportRecord(instance_uuid, store, int(rev), doc, **meta)


def _decode_own(record: ExportRecord, codec: DocumentCodec) -> RequestSpec:
    """The record's spec; CorruptDocumentError when it names another instance."""
    spec = codec.decode(record.doc)
    if str(spec.instance_uuid) != record.instance_uuid:
        raise CorruptDocumentError(
            f"spec record {record.instance_uuid} holds instance {spec.instance_uuid}"
        )
    return spec


def to_json_line(record: ExportRecord, codec: DocumentCodec) -> str:
    """The record as one JSON line (no newline); decodes (so validates) the document."""
    spec = _decode_own(record, codec)
    line = _meta(record)
    line["document"] = json_codec.to_json_document(spec, codec)
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def to_msgpack(record: ExportRecord, codec: DocumentCodec) -> bytes:
    """The record as one msgpack map; the document is validated but kept byte for byte."""
    _decode_own(record, codec)
    item = _meta(record)
    item["doc"] = record.doc
    packed: bytes = msgpack.packb(item, use_bin_type=True)
    return packed


def _meta(record: ExportRecord) -> dict[str, Any]:
    return {
        "instance_uuid": record.instance_uuid,
        "store": record.store,
        "rev": record.rev,
        **{name: getattr(record, name) for name in META_FIELDS},
    }


def parse_json_record(text: str | bytes, codec: DocumentCodec) -> tuple[ExportRecord, RequestSpec]:
    """An export JSON line back to a record (document re-encoded) and its validated spec."""
    try:
        item = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CorruptDocumentError(f"not valid JSON: {exc}") from exc
    if not isinstance(item, dict):
        raise CorruptDocumentError("an export line is a JSON object")
    document = item.get("document")
    if not isinstance(document, dict):
        raise CorruptDocumentError("an export line needs a 'document' object")
    spec = json_codec.from_json_document(document, codec)
    return _record(item, spec, json_codec.parse_version(document.get("version")), codec), spec


def parse_msgpack_record(item: object, codec: DocumentCodec) -> tuple[ExportRecord, RequestSpec]:
    """A decoded msgpack export map back to a record (document re-encoded) and its spec."""
    if not isinstance(item, dict) or not isinstance(item.get("doc"), bytes):
        raise CorruptDocumentError("a msgpack export record is a map with a 'doc'")
    envelope = codec.header(item["doc"])
    spec = codec.from_envelope(envelope)
    return _record(item, spec, envelope.version, codec), spec


def _record(
    item: dict[str, Any], spec: RequestSpec, read_version: Version, codec: DocumentCodec
) -> ExportRecord:
    """The record to import: its document re-encoded from ``spec`` (persisted fields only),
    its metadata derived from that document and checked against what the record claims."""
    uid = item.get("instance_uuid")
    if not isinstance(uid, str):
        raise CorruptDocumentError("record has no instance_uuid")
    try:
        uid = normalize_uuid(uid)
        store = validate_store_name(item.get("store", ""))
    except InvalidInputError as exc:
        raise CorruptDocumentError(str(exc)) from exc
    if uid != str(spec.instance_uuid):
        raise CorruptDocumentError(f"record {uid} holds the spec of {spec.instance_uuid}")
    rev = item.get("rev")
    if type(rev) is not int or rev < 1:
        raise CorruptDocumentError(f"record {uid} has no positive integer rev")
    meta = {name: item.get(name, "") for name in META_FIELDS}
    if not all(isinstance(v, str) for v in meta.values()):
        raise CorruptDocumentError(f"record {uid} has non-text metadata")
    derived = {
        "schema": f"{codec.schema}/{format_version(read_version)}",
        "project_id": spec.project_id or "",
        "user_id": spec.user_id or "",
    }
    for name, value in derived.items():
        if meta[name] and meta[name] != value:
            raise CorruptDocumentError(
                f"record {uid} says {name} {meta[name][:80]!r}, its document {value!r}"
            )
    version, doc = codec.encode_versioned(spec)
    meta.update(derived, schema=f"{codec.schema}/{format_version(version)}")
    return ExportRecord(uid, store, rev, doc, **meta)
