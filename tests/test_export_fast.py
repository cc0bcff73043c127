"""The verbatim export path (no model built) against the validating one.

A current-version document written by specstore must give the same JSON line and the same
msgpack record either way; corrupt documents are refused by the checks the verbatim path
makes (marker, schema, version, one whole value, the instance named by the key).
"""

from __future__ import annotations

import datetime as dt
import io
import uuid

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings

from serializers import DEFAULT_CODEC, MAGIC
from serializers.envelope import _packb_reference
from specstore import RequestContext, SpecStore
from specstore.bulk import export_specs
from specstore.errors import CorruptDocumentError, DocumentError, IncompatibleSchemaError
from specstore.export_format import ExportRecord, check_document, to_json_line, to_msgpack
from specstore.model import InstanceNUMACell, InstanceNUMATopology, RequestSpec, persisted_payload
from specstore.samples import typical_spec
from tests import strategies as sts

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UID = uuid.UUID("11111111-2222-4333-8444-555555555555")


def _record(doc: bytes, uid: uuid.UUID | str = UID) -> ExportRecord:
    return ExportRecord(str(uid), "api", 3, doc, "RequestSpec/1.0", "p", "u", "t0", "t1")


def _both(record: ExportRecord) -> None:
    assert to_json_line(record, DEFAULT_CODEC) == to_json_line(
        record, DEFAULT_CODEC, validate=True
    )
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
