"""The verbatim export path (no model built) against the validating one.

A current-version document written by specstore must give the same JSON line and the same
msgpack record either way; corrupt documents are refused by the checks the verbatim path
makes (marker, schema, version, one whole value, the instance named by the key).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings

from specstore import RequestContext, SpecStore
from specstore.bulk import SpecKey, export_format, export_specs
from specstore.bulk.common import _spec_key_matcher
from specstore.bulk.export_format import (
    DocumentChecker,
    ExportRecord,
    RecordEncoder,
    check_document,
    to_json_line,
    to_msgpack,
)
from specstore.bulk.exporting import _read_for_export
from specstore.core.keys import Keyspace
from specstore.errors import CorruptDocumentError, DocumentError, IncompatibleSchemaError
from specstore.model import InstanceNUMACell, InstanceNUMATopology, RequestSpec, persisted_payload
from specstore.samples import typical_spec
from specstore.serializers import DEFAULT_CODEC, MAGIC
from specstore.serializers.envelope import _packb_reference
from specstore.serializers.msgpack_codec import DocumentCodec
from tests import strategies as sts

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UID = uuid.UUID("1111aaaa-2222-4333-8444-5555ffff5555")


def _record(doc: bytes, uid: uuid.UUID | str = UID) -> ExportRecord:
    return ExportRecord(str(uid), "api", 3, doc, "RequestSpec/1.0", "p", "u", "t0", "t1")


def _both(record: ExportRecord) -> None:
    assert to_json_line(record, DEFAULT_CODEC) == to_json_line(record, DEFAULT_CODEC, validate=True)
    assert to_msgpack(record, DEFAULT_CODEC) == to_msgpack(record, DEFAULT_CODEC, validate=True)


@SETTINGS
@given(sts.request_specs)
def test_verbatim_lines_equal_validated_lines(spec: RequestSpec) -> None:
    _both(_record(DEFAULT_CODEC.encode(spec), spec.instance_uuid))


def test_typical_spec_with_datetimes_and_a_wide_cpu_pinning_gives_the_same_line() -> None:
    spec = typical_spec(UID)
    assert spec.image is not None
    spec.image.created_at = dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
    spec.image.updated_at = dt.datetime(2026, 5, 6, tzinfo=dt.timezone.utc)
    spec.numa_topology = InstanceNUMATopology(
        cells=[InstanceNUMACell(id=0, memory=1, cpu_pinning={i: 20 - i for i in range(12)})]
    )
    record = _record(DEFAULT_CODEC.encode(spec))
    _both(record)
    assert '"cpu_pinning":{"0":20,"1":19,"10":10,"11":9,"2":18' in to_json_line(
        record, DEFAULT_CODEC
    )


def test_msgpack_record_keeps_the_document_bytes() -> None:
    doc = DEFAULT_CODEC.encode(typical_spec(UID))
    item = msgpack.unpackb(to_msgpack(_record(doc), DEFAULT_CODEC), raw=False)
    assert item["doc"] == doc
    assert item["instance_uuid"] == str(UID)


def _good() -> bytes:
    return DEFAULT_CODEC.encode(typical_spec(UID))


def _body(value: object) -> bytes:
    return MAGIC + _packb_reference(value)


CORRUPT = {
    "no magic": _good()[len(MAGIC) :],
    "truncated": _good()[:-1],
    "trailing byte": _good() + b"\x00",
    "two bodies": _good() + _good()[len(MAGIC) :],
    "other instance": DEFAULT_CODEC.encode(typical_spec(uuid.UUID(int=7))),
    "other schema": _body(["Flavor", 1, 0, persisted_payload(typical_spec(UID))]),
    "newer major": _body(["RequestSpec", 2, 0, persisted_payload(typical_spec(UID))]),
    "unreleased older": _body(["RequestSpec", 0, 9, persisted_payload(typical_spec(UID))]),
    "payload is a list": _body(["RequestSpec", 1, 0, [1]]),
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_verbatim_checks_refuse_corrupt_documents(name: str) -> None:
    record = _record(CORRUPT[name])
    with pytest.raises(DocumentError):
        check_document(record, DEFAULT_CODEC)
    with pytest.raises(DocumentError):
        to_json_line(record, DEFAULT_CODEC)
    with pytest.raises(DocumentError):
        to_msgpack(record, DEFAULT_CODEC)


def test_newer_major_is_an_incompatible_schema_error() -> None:
    with pytest.raises(IncompatibleSchemaError):
        check_document(_record(CORRUPT["newer major"]), DEFAULT_CODEC)
    with pytest.raises(CorruptDocumentError):
        check_document(_record(CORRUPT["other instance"]), DEFAULT_CODEC)


def test_a_document_the_model_refuses_is_exported_verbatim_but_not_with_validate() -> None:
    payload = persisted_payload(typical_spec(UID))
    payload["flavor"] = {**payload["flavor"], "memory_mb": 0}
    record = _record(_body(["RequestSpec", 1, 0, payload]))
    assert check_document(record, DEFAULT_CODEC) == (1, 0)
    to_msgpack(record, DEFAULT_CODEC)
    with pytest.raises(CorruptDocumentError):
        to_msgpack(record, DEFAULT_CODEC, validate=True)


@pytest.mark.parametrize("fmt", ["jsonl", "msgpack"])
def test_export_specs_writes_the_same_bytes_with_and_without_validate(fmt: str) -> None:
    store = SpecStore.from_url(f"memory://export-fast-{fmt}")
    ctx = RequestContext(store=store)
    for _ in range(30):
        store.create(ctx, typical_spec())
    out, checked = io.BytesIO(), io.BytesIO()
    plain = export_specs(store, out, fmt)  # type: ignore[arg-type]
    full = export_specs(store, checked, fmt, validate=True)  # type: ignore[arg-type]
    assert plain.exported == full.exported == 30
    assert out.getvalue() == checked.getvalue()


# -- the batch machinery of a whole export ----------------------------------------------------


def test_one_checker_refuses_each_bad_document_and_still_accepts_the_next_good_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checker reuses one unpacker: a truncated or over-long document must not leave
    bytes behind that spoil the next document's check (or make a bad one pass). Good
    documents pass the quick checks (the envelope is not decoded for them)."""
    slow: list[bytes] = []
    check_slowly = export_format._check_slowly

    def counted(doc: bytes, instance_uuid: str, codec: DocumentCodec) -> tuple[int, int]:
        slow.append(doc)
        return check_slowly(doc, instance_uuid, codec)

    monkeypatch.setattr(export_format, "_check_slowly", counted)
    checker = DocumentChecker(DEFAULT_CODEC)
    good = _good()
    sequence = [
        good,
        CORRUPT["truncated"],
        good,
        CORRUPT["trailing byte"],
        good,
        CORRUPT["two bodies"],
        good,
        good[:20],
        good,
    ]
    for doc in sequence:
        if doc == good:
            assert checker.check(doc, str(UID)) == (1, 0)
        else:
            with pytest.raises(DocumentError):
                checker.check(doc, str(UID))
    assert good not in slow


@pytest.mark.parametrize(
    "value",
    [
        "caf\u00e9",  # json.dumps escapes non-ASCII text
        "tab\there and \x7f",  # DEL: escaped by json.dumps, not by orjson
        1.5e-07,  # float notation differs
        2**64 - 1,  # the largest integer msgpack holds
        float("nan"),
    ],
)
def test_json_lines_are_the_bytes_of_json_dumps_whatever_the_values(value: object) -> None:
    payload = persisted_payload(typical_spec(UID))
    payload["image"] = {**payload["image"], "properties": {"p": value, "q": "x"}}
    record = ExportRecord(
        str(UID),
        "api",
        3,
        _body(["RequestSpec", 1, 0, payload]),
        "RequestSpec/1.0",
        "p",
        "u",
        "t0",
        "t1",
    )
    item = {
        **_meta_of(record),
        "document": {
            "schema": "RequestSpec",
            "version": "1.0",
            "spec": msgpack.unpackb(record.doc[len(MAGIC) :], raw=False, ext_hook=_ext)[3],
        },
    }
    expected = json.dumps(item, sort_keys=True, separators=(",", ":"))
    assert to_json_line(record, DEFAULT_CODEC) == expected


def _meta_of(record: ExportRecord) -> dict[str, object]:
    return {
        "instance_uuid": record.instance_uuid,
        "store": record.store,
        "rev": record.rev,
        "schema": record.schema,
        "project_id": record.project_id,
        "user_id": record.user_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _ext(code: int, data: bytes) -> object:
    assert code == 1
    return str(uuid.UUID(bytes=data))


def test_record_encoder_from_a_hash_gives_the_bytes_of_to_json_line_and_to_msgpack() -> None:
    doc = _good()
    raw = {
        b"doc": doc,
        b"rev": b"3",
        b"schema": b"RequestSpec/1.0",
        b"project_id": b"p",
        b"user_id": b"u",
        b"created_at": b"t0",
        b"updated_at": b"t1",
        b"other": b"x",
    }
    record = _record(doc)
    line = RecordEncoder(DEFAULT_CODEC, "jsonl").from_hash("api", str(UID), raw)
    assert line == (to_json_line(record, DEFAULT_CODEC) + "\n").encode()
    packed = RecordEncoder(DEFAULT_CODEC, "msgpack").from_hash("api", str(UID), raw)
    assert packed == to_msgpack(record, DEFAULT_CODEC)
    with pytest.raises(CorruptDocumentError):
        RecordEncoder(DEFAULT_CODEC, "msgpack").from_hash("api", str(UID), {b"doc": doc})


_U, _UP, _HEX = str(UID), str(UID).upper(), UID.hex
KEYS = [
    f"pre:api:spec:{{{_U}}}",
    f"pre:cell:c1:spec:{{{_U}}}",
    f"pre:cell:api:spec:{{{_U}}}",
    f"pre:cell:apix:spec:{{{_U}}}",
    f"pre:cell:a.b-c_d:spec:{{{_U}}}",
    f"pre:cell:-bad:spec:{{{_U}}}",
    f"pre:cell::spec:{{{_U}}}",
    f"pre:cell:{'c' * 63}:spec:{{{_U}}}",
    f"pre:cell:{'c' * 64}:spec:{{{_U}}}",
    f"pre:api:spec:{{{_UP}}}",
    f"pre:api:spec:{{{_HEX}}}",
    f"pre:api:spec:{{{{{_U}}}}}",
    f"pre:api:spec:{{{_U}}}x",
    f"pre:api:spec:{_U}",
    f"pre:loc:{{{_U}}}",
    f"prex:api:spec:{{{_U}}}",
    f"pre:sub:api:spec:{{{_U}}}",
    f"other:api:spec:{{{_U}}}",
    f"pre:api:spec:{{urn:uuid:{_U}}}",
    f"pre:cell:c1:spec:{{{_U}}}:spec:{{{_U}}}",
    f"pre:cell:c\u00e9:spec:{{{_U}}}",
]


@pytest.mark.parametrize("prefix", ["pre", "p.r-e", "pre:sub"])
def test_the_scan_key_matcher_accepts_exactly_what_parse_spec_key_parses(prefix: str) -> None:
    keys = Keyspace(prefix)
    match = _spec_key_matcher(prefix)
    for text in [k.replace("pre:", prefix + ":", 1) for k in KEYS] + KEYS:
        found = match(text.encode())
        got = None
        if found is not None:
            cell, uid = found.group(1, 2)
            got = ("api" if cell is None else cell.decode(), uid.decode())
        assert got == keys.parse_spec_key(text), text


def test_export_reads_tell_a_deleted_key_from_a_damaged_hash_and_a_foreign_value() -> None:
    store = SpecStore.from_url("memory://export-fast-fields")
    spec = typical_spec()
    store.create(RequestContext(store=store), spec)
    uid, damaged, gone, foreign = (
        str(u) for u in (spec.instance_uuid, *(uuid.uuid4() for _ in range(3)))
    )
    store.client.hset(store.keys.spec_key("api", damaged), "schema", "RequestSpec/1.0")
    store.client.set(store.keys.spec_key("api", foreign), "not a hash")
    keys = [SpecKey(store.keys.spec_key("api", u), "api", u) for u in (uid, damaged, gone, foreign)]
    found = _read_for_export(store.topology.api, keys)
    stored = store.client.hget(store.keys.spec_key("api", uid), "doc")
    assert found[0] is not None and found[0][:2] == [stored, b"1"]
    assert found[1] is not None and found[1][:3] == [None, None, b"RequestSpec/1.0"]
    assert (found[2], found[3]) == ([], None)
    summary = export_specs(store, io.BytesIO(), "jsonl")
    assert (summary.exported, summary.skipped) == (1, 2)
    assert any("lacks doc or rev" in p for p in summary.problems)
