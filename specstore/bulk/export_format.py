"""Export records and their two encodings (pure; no I/O).

An export record is one stored spec with its metadata. JSON lines (for eyes and tools)::

    {"created_at": "...", "document": {"schema": "RequestSpec", "spec": {...}, "version": "1.0"},
     "instance_uuid": "...", "project_id": "...", "rev": 3, "store": "cell1",
     "updated_at": "...", "user_id": "..."}

msgpack (lossless and compact): a stream of maps with the same keys, where ``doc`` holds the
stored document bytes unchanged instead of ``document``.

Two ways to write a record. ``validate=True`` decodes the document into a RequestSpec (every
field checked by the model) and writes it from the model. The default, verbatim, builds no
model: :func:`check_document` checks the format marker, the schema name, that the version is
one this code reads, that the bytes are one whole msgpack value with nothing after it and
that its payload names the record's instance; msgpack records then copy the document bytes,
and JSON lines transcode the payload (UUID and timestamp extensions to the text pydantic
writes). A current-version document written by specstore gives the same line either way
(the tests compare them); documents of another version go through the model.

Parsing a record for import trusts neither its bytes nor its metadata: the document is decoded
and re-encoded through the codec (so only persisted fields are ever written), the stored
schema is the one of the re-encoded document, and a record whose ``schema``, ``project_id``
or ``user_id`` disagrees with its own document is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson
import ormsgpack
from pydantic import TypeAdapter

from specstore.core.keys import normalize_uuid, validate_store_name
from specstore.errors import CorruptDocumentError, IncompatibleSchemaError, InvalidInputError
from specstore.model import RequestSpec
from specstore.model.persistence import PERSISTED_FIELDS, TRANSIENT_GROUP_FIELDS
from specstore.serializers import json_codec
from specstore.serializers.envelope import EXT_UUID, MAGIC, Version, decode_envelope, format_version
from specstore.serializers.msgpack_codec import DocumentCodec

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
    meta = [raw.get(name, b"").decode("utf-8", "replace") for name in _META_KEYS]
    return ExportRecord(instance_uuid, store, int(rev), doc, *meta)


_META_KEYS = tuple(name.encode() for name in META_FIELDS)
EXPORT_FIELDS = (b"doc", b"rev", *_META_KEYS, b"moving_to")
"""The fields of a spec hash an export reads: the record's, and the move marker last."""
_INSTANCE_KEY = b"\xadinstance_uuid"
_UUID_EXT = b"\xd8" + bytes([EXT_UUID])


def check_document(record: ExportRecord, codec: DocumentCodec) -> Version:
    """The document's version, after the checks a verbatim export makes (no model is built):
    format marker, schema name, a version this code reads, one whole msgpack value with no
    byte after it, and a payload naming the record's instance. DocumentError otherwise."""
    return DocumentChecker(codec).check(record.doc, record.instance_uuid)


class DocumentChecker:
    """:func:`check_document` for many documents: the header, the readable versions and one
    msgpack unpacker are made once, not per document."""

    def __init__(self, codec: DocumentCodec) -> None:
        self.codec = codec
        self.header = _header(codec.schema)
        self._readable: dict[Version, bool] = {}
        self._unpacker: msgpack.Unpacker | None = None

    def check(self, doc: bytes, instance_uuid: str) -> Version:
        """The version of ``doc`` (the document of ``instance_uuid``), or DocumentError."""
        start = len(self.header)
        if doc.startswith(self.header) and len(doc) > start + 2 + len(_INSTANCE_KEY) + 18:
            version = (doc[start], doc[start + 1])
            at = start + 2
            at += 1 if 0x80 <= doc[at] <= 0x8F else 3 if doc[at] == 0xDE else len(doc)
            uid = doc[at + len(_INSTANCE_KEY) + 2 : at + len(_INSTANCE_KEY) + 18]
            if (
                max(version) < 0x80  # both positive fixints
                and doc.startswith(_INSTANCE_KEY + _UUID_EXT, at)
                and uid.hex() == instance_uuid.replace("-", "")
                and self._one_value(doc)
            ):
                if not self._readable.get(version):
                    _check_readable(self.codec, version)
                    self._readable[version] = True
                return version
        # another layout (or corrupt): decode the envelope
        return _check_slowly(doc, instance_uuid, self.codec)

    def _one_value(self, doc: bytes) -> bool:
        """True if ``doc`` after the marker is exactly one msgpack value."""
        size = len(doc) - len(MAGIC)
        unpacker = self._unpacker
        if unpacker is None or size > _UNPACKER_BUFFER:
            unpacker = msgpack.Unpacker(max_buffer_size=max(size, _UNPACKER_BUFFER))
        unpacker.feed(memoryview(doc)[len(MAGIC) :])
        before = unpacker.tell()
        try:
            unpacker.skip()
        except Exception:  # truncated or malformed: its bytes stay behind, start afresh
            self._unpacker = None
            return False
        if unpacker.tell() - before != size:  # bytes after the value are left in the buffer
            self._unpacker = None
            return False
        if size <= _UNPACKER_BUFFER:
            self._unpacker = unpacker
        return True


_UNPACKER_BUFFER = 1 << 16
"""Documents up to this size share one unpacker (its buffer is empty after each one)."""


def _header(schema: str) -> bytes:
    header = _HEADERS.get(schema)
    if header is None:
        header = _HEADERS[schema] = MAGIC + b"\x94" + ormsgpack.packb(schema)
    return header


_HEADERS: dict[str, bytes] = {}


def _check_readable(codec: DocumentCodec, version: Version) -> None:
    current = codec.current_version
    if version in codec.registry.versions(codec.schema) or (
        version[0] == current[0] and version[1] > current[1]
    ):
        return
    if version[0] > current[0]:
        raise IncompatibleSchemaError(
            f"{codec.schema} {format_version(version)} is a newer major version than this code "
            f"reads ({format_version(current)})"
        )
    raise IncompatibleSchemaError(
        f"{codec.schema} {format_version(version)} is not a released version"
    )


def _check_slowly(doc: bytes, instance_uuid: str, codec: DocumentCodec) -> Version:
    envelope = decode_envelope(doc, codec.limits)
    if envelope.schema != codec.schema:
        raise IncompatibleSchemaError(
            f"document holds schema {envelope.schema!r}, expected {codec.schema!r}"
        )
    _check_readable(codec, envelope.version)
    uid = envelope.payload.get("instance_uuid")
    if str(uid) != instance_uuid:
        raise CorruptDocumentError(f"spec record {instance_uuid} holds instance {uid}")
    return envelope.version


def _decode_own(doc: bytes, instance_uuid: str, codec: DocumentCodec) -> RequestSpec:
    """The spec in ``doc``; CorruptDocumentError when it names another instance."""
    spec = codec.decode(doc)
    if str(spec.instance_uuid) != instance_uuid:
        raise CorruptDocumentError(
            f"spec record {instance_uuid} holds instance {spec.instance_uuid}"
        )
    return spec


def to_json_line(record: ExportRecord, codec: DocumentCodec, *, validate: bool = False) -> str:
    """The record as one JSON line (no newline).

    ``validate=True`` decodes the document through the model; otherwise the checks of
    :func:`check_document` are made and a current-version payload is transcoded as is.
    """
    encoder = RecordEncoder(codec, "jsonl", validate=validate)
    return encoder.encode(record)[:-1].decode("utf-8")


def to_msgpack(record: ExportRecord, codec: DocumentCodec, *, validate: bool = False) -> bytes:
    """The record as one msgpack map, the document kept byte for byte; checked by
    :func:`check_document`, or decoded through the model with ``validate=True``."""
    return RecordEncoder(codec, "msgpack", validate=validate).encode(record)


class RecordEncoder:
    """Export records to the bytes written for them (a JSON line with its newline, or one
    msgpack map), for a whole export: what can be made once is made once.

    The bytes are those of :func:`to_json_line` / :func:`to_msgpack`. JSON lines are written
    with orjson when that gives the very bytes of ``json.dumps(sort_keys=True,
    separators=(",", ":"))`` (ASCII text and no float: otherwise ``json.dumps`` writes them).
    """

    def __init__(self, codec: DocumentCodec, fmt: str, *, validate: bool = False) -> None:
        self.codec = codec
        self.jsonl = fmt == "jsonl"
        self.validate = validate
        self.checker = DocumentChecker(codec)
        self._document_head = {
            "schema": codec.schema,
            "version": format_version(codec.current_version),
        }

    def from_hash(self, store: str, instance_uuid: str, raw: dict[bytes, bytes]) -> bytes:
        """The bytes of the stored spec ``raw`` (an HGETALL reply); DocumentError when it
        is not a readable spec of ``instance_uuid``."""
        return self.from_fields(store, instance_uuid, [raw.get(f) for f in EXPORT_FIELDS])

    def from_fields(self, store: str, instance_uuid: str, values: list[bytes | None]) -> bytes:
        """:meth:`from_hash` of the hash's :data:`EXPORT_FIELDS` (an HMGET reply)."""
        doc, rev, schema, project_id, user_id, created_at, updated_at = values[:7]
        if doc is None or rev is None or not rev.isdigit():
            raise CorruptDocumentError(f"spec record {instance_uuid} in {store!r} lacks doc or rev")
        item: dict[str, Any] = {
            "instance_uuid": instance_uuid,
            "store": store,
            "rev": int(rev),
            "schema": _text(schema),
            "project_id": _text(project_id),
            "user_id": _text(user_id),
            "created_at": _text(created_at),
            "updated_at": _text(updated_at),
        }
        return self._encode(item, doc)

    def encode(self, record: ExportRecord) -> bytes:
        return self._encode(_meta(record), record.doc)

    def _encode(self, item: dict[str, Any], doc: bytes) -> bytes:
        if self.validate:
            return self._through_model(item, doc)
        version = self.checker.check(doc, item["instance_uuid"])
        if not self.jsonl:
            item["doc"] = doc
            return ormsgpack.packb(item)
        if version != self.codec.current_version:
            return self._through_model(item, doc)
        try:
            payload = ormsgpack.unpackb(
                memoryview(doc)[len(MAGIC) :], ext_hook=_json_ext, option=_NON_STR_KEYS
            )[3]
            item["document"] = {**self._document_head, "spec": _text_keys(payload)}
            floats = (b"\xcb" in doc or b"\xca" in doc) and _has_float(payload)
            return _json_bytes(item, fast=not floats)
        except Exception:  # a value the transcoder does not know: let the model decide
            item.pop("document", None)
            return self._through_model(item, doc)

    def _through_model(self, item: dict[str, Any], doc: bytes) -> bytes:
        """The record's bytes written from the model (every field validated)."""
        codec = self.codec
        spec = _decode_own(doc, item["instance_uuid"], codec)
        if self.jsonl:
            item["document"] = json_codec.to_json_document(spec, codec, fresh=True)
            return _json_bytes(item, fast=False)
        item["doc"] = doc
        return ormsgpack.packb(item)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def _json_bytes(item: dict[str, Any], *, fast: bool = True) -> bytes:
    """``json.dumps(item, sort_keys=True, separators=(",", ":"))`` and a newline, as bytes.

    orjson writes it when its bytes are the same: JSON without floats (their notation
    differs), whose text is printable ASCII (json.dumps escapes the rest) and whose map keys
    are all strings (orjson refuses others)."""
    if fast:
        try:
            data = orjson.dumps(item, option=_ORJSON_LINE)
        except TypeError:  # a non-text key, an integer past 64 bits
            pass
        else:
            if data.isascii() and b"\x7f" not in data:
                return data
    return json.dumps(item, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"


_ORJSON_LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def _has_float(value: Any) -> bool:
    """True if ``value`` (decoded JSON-like data) holds a float anywhere."""
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


_NON_STR_KEYS = ormsgpack.OPT_NON_STR_KEYS
_DATETIME_JSON: TypeAdapter[Any] = TypeAdapter(Any)


def _json_ext(code: int, data: bytes) -> str:
    """The JSON text of an extension value, as pydantic's JSON mode writes it."""
    if code == EXT_UUID and len(data) == 16:
        h = data.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if code == -1:
        moment = msgpack.Timestamp.from_bytes(data).to_datetime()
        return str(_DATETIME_JSON.dump_python(moment, mode="json"))
    raise CorruptDocumentError(f"unknown extension type {code}")


def _text_keys(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON object keys are text: the model's one integer-keyed map (CPU pinning) gets
    string keys, as pydantic's JSON mode gives, so that sorting them gives the same order."""
    topology = payload.get("numa_topology")
    cells = topology.get("cells") if isinstance(topology, dict) else None
    for cell in cells if isinstance(cells, list) else ():
        pinning = cell.get("cpu_pinning") if isinstance(cell, dict) else None
        if isinstance(pinning, dict):
            cell["cpu_pinning"] = {str(k): v for k, v in pinning.items()}
    return payload


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
        item = orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, integers past 64 bits, or not JSON: as json reads
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


def verbatim_msgpack_record(
    item: object, codec: DocumentCodec, checker: DocumentChecker | None = None
) -> ExportRecord:
    """A decoded msgpack export map back to a record that keeps its document bytes, without
    re-encoding it: the checks of :func:`check_document` (marker, schema, a readable
    version, one whole msgpack value, the record's instance), the document is at the
    version this codec writes, its payload a map of persisted fields only (no per-request
    field, no group members or hosts, no unknown field: otherwise it goes through
    :func:`parse_msgpack_record`), and the record's metadata is checked as there (uuid,
    store, rev, text metadata, schema, project_id and user_id agreeing with the document).

    The document is validated by the model too (a document it refuses is rejected, as on
    every other path), but not re-encoded: one specstore did not write is kept in its own
    spelling (fields at their default written out, say); ``validate=True`` on import writes
    the document anew from the model."""
    if not isinstance(item, dict) or not isinstance(item.get("doc"), bytes):
        raise CorruptDocumentError("a msgpack export record is a map with a 'doc'")
    doc: bytes = item["doc"]
    uid = _record_uuid(item)
    version = (checker or DocumentChecker(codec)).check(doc, uid)
    if version != codec.write_version:
        return parse_msgpack_record(item, codec)[0]
    try:
        payload = ormsgpack.unpackb(memoryview(doc)[len(MAGIC) :], ext_hook=_ignore_ext)[3]
    except ormsgpack.MsgpackDecodeError:
        payload = None
    if not isinstance(payload, dict) or not _only_persisted(payload):
        return parse_msgpack_record(item, codec)[0]  # the model says what is wrong, or drops
    project_id, user_id = payload.get("project_id") or "", payload.get("user_id") or ""
    if not (isinstance(project_id, str) and isinstance(user_id, str)):
        return parse_msgpack_record(item, codec)[0]
    codec.decode(doc)  # the model's own checks: a document it refuses is never stored
    return _checked(item, uid, version, project_id, user_id, (version, doc), codec)


def _record_uuid(item: dict[str, Any]) -> str:
    """The record's instance uuid, canonical; CorruptDocumentError when missing or malformed."""
    uid = item.get("instance_uuid")
    if not isinstance(uid, str):
        raise CorruptDocumentError("record has no instance_uuid")
    try:
        return normalize_uuid(uid)
    except InvalidInputError as exc:
        raise CorruptDocumentError(str(exc)) from exc


def _only_persisted(payload: dict[Any, Any]) -> bool:
    """True if ``payload`` holds only fields that are persisted (no per-request field, no
    group members or hosts, no field this version does not know)."""
    if not _PERSISTED.issuperset(payload):
        return False
    group = payload.get("instance_group")
    return not (isinstance(group, dict) and not TRANSIENT_GROUP_FIELDS.isdisjoint(group))


_PERSISTED = frozenset(PERSISTED_FIELDS)


def _ignore_ext(code: int, data: bytes) -> None:
    return None


def _record(
    item: dict[str, Any], spec: RequestSpec, read_version: Version, codec: DocumentCodec
) -> ExportRecord:
    """The record to import: its document re-encoded from ``spec`` (persisted fields only),
    its metadata derived from that document and checked against what the record claims."""
    uid = _record_uuid(item)
    if uid != str(spec.instance_uuid):
        raise CorruptDocumentError(f"record {uid} holds the spec of {spec.instance_uuid}")
    return _checked(
        item,
        uid,
        read_version,
        spec.project_id or "",
        spec.user_id or "",
        lambda: codec.encode_versioned(spec),
        codec,
    )


MAX_REV = 2**53 - 1 - 1_000_000
"""The highest rev an import writes: the scripts count exactly up to 2**53 - 1, and a spec
imported at this rev still takes a million writes."""


def _checked(
    item: dict[str, Any],
    uid: str,
    read_version: Version,
    project_id: str,
    user_id: str,
    written: tuple[Version, bytes] | Callable[[], tuple[Version, bytes]],
    codec: DocumentCodec,
) -> ExportRecord:
    """The record of ``uid`` (whose document was read at ``read_version`` and names these
    owners), its metadata checked against what the record claims, with the document
    ``written`` (version and bytes, or what makes them)."""
    try:
        store = validate_store_name(item.get("store", ""))
    except InvalidInputError as exc:
        raise CorruptDocumentError(str(exc)) from exc
    rev = item.get("rev")
    if type(rev) is not int or not 1 <= rev <= MAX_REV:
        raise CorruptDocumentError(f"record {uid} has no rev from 1 to {MAX_REV}")
    meta = {name: item.get(name, "") for name in META_FIELDS}
    if not all(isinstance(v, str) for v in meta.values()):
        raise CorruptDocumentError(f"record {uid} has non-text metadata")
    derived = {
        "schema": f"{codec.schema}/{format_version(read_version)}",
        "project_id": project_id,
        "user_id": user_id,
    }
    for name, value in derived.items():
        if meta[name] and meta[name] != value:
            raise CorruptDocumentError(
                f"record {uid} says {name} {meta[name][:80]!r}, its document {value!r}"
            )
    version, doc = written if isinstance(written, tuple) else written()
    meta.update(derived, schema=f"{codec.schema}/{format_version(version)}")
    return ExportRecord(uid, store, rev, doc, **meta)
