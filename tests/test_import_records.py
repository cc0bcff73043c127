"""Import writes only what a store write would: persisted fields, and metadata that agrees
with the document. Records are built by hand here (not by export), and what was stored is read
back raw from Redis, so neither side of the check is the code under test."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any, cast

import msgpack
import pytest

from specstore import RequestContext, SpecStore
from specstore.bulk import ImportFormat, export_specs, import_specs, importing
from specstore.serializers import MAGIC
from specstore.serializers.envelope import encode_envelope
from specstore.serializers.schemas.request_spec import SCHEMA
from tests.factories import typical_spec

TRANSIENT = {
    "retry",
    "requested_destination",
    "requested_resources",
    "ignore_hosts",
    "network_metadata",
    "requested_networks",
    "request_level_params",
}
"""DESIGN.md's list of per-request fields, written out again on purpose."""

OWNER = {
    "project_id": "6f70656e737461636b20697320636f6f",
    "user_id": "8d3b1e2c5a7f4e0b9c6d2a1f3e5b7c9d",
}


def full_payload(uid: str) -> dict[str, Any]:
    """Every field of a typical spec, per-request ones and group members/hosts included."""
    payload: dict[str, Any] = typical_spec(uid).model_dump(mode="python")
    assert TRANSIENT & {k for k, v in payload.items() if v not in (None, [])} >= {
        "retry",
        "requested_destination",
        "ignore_hosts",
    }
    assert payload["instance_group"]["members"] and payload["instance_group"]["hosts"]
    return payload


def raw_body(doc: bytes) -> list[Any]:
    """[schema, major, minor, payload] of a document, unpacked with msgpack alone."""
    assert doc.startswith(MAGIC)
    body: list[Any] = msgpack.unpackb(
        doc[len(MAGIC) :], raw=False, strict_map_key=False, ext_hook=msgpack.ExtType
    )
    return body


def record(uid: str, meta: dict[str, str], version: tuple[int, int] = (1, 0)) -> dict[str, Any]:
    return {
        "instance_uuid": uid,
        "store": "api",
        "rev": 3,
        "created_at": "2026-01-02T03:04:05.000006+00:00",
        "updated_at": "2026-01-03T03:04:05.000006+00:00",
        **meta,
        "payload": full_payload(uid),
        "version": version,
    }


def encode(records: list[dict[str, Any]], fmt: ImportFormat) -> bytes:
    """The records as an export stream of ``fmt``, built without the export code."""
    out = io.BytesIO()
    for item in records:
        meta = {k: v for k, v in item.items() if k not in ("payload", "version")}
        if fmt == "msgpack":
            doc = encode_envelope(SCHEMA, item["version"], item["payload"])
            out.write(cast(bytes, msgpack.packb({**meta, "doc": doc}, use_bin_type=True)))
        else:
            version = "{}.{}".format(*item["version"])
            spec = json.loads(typical_spec(item["instance_uuid"]).model_dump_json())
            document = {"schema": SCHEMA, "version": version, "spec": spec}
            out.write(json.dumps({**meta, "document": document}).encode() + b"\n")
    return out.getvalue()


def run_import(store: SpecStore, data: bytes, fmt: ImportFormat) -> Any:
    return import_specs(store, lambda: io.BytesIO(data), fmt)


def stored_hash(store: SpecStore, uid: str) -> dict[bytes, bytes]:
    raw: dict[bytes, bytes] = store.client.hgetall(store.keys.spec_key("api", uid))  # type: ignore[assignment]
    return raw


FORMATS: list[ImportFormat] = ["msgpack", "jsonl"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_stores_only_persisted_fields(store: SpecStore, fmt: ImportFormat) -> None:
    """BUG (msgpack): the record's document bytes were stored verbatim, so the per-request
    fields inside an imported document came back on every read."""
    uid = str(typical_spec().instance_uuid)
    data = encode([record(uid, OWNER)], fmt)
    if fmt == "msgpack":
        sent = raw_body(next(iter(msgpack.Unpacker(io.BytesIO(data), raw=False)))["doc"])[3]
        assert TRANSIENT & set(sent) and {"members", "hosts"} <= set(sent["instance_group"])
    result = run_import(store, data, fmt)
    assert (result.created, result.rejected) == (1, 0)
    payload = raw_body(stored_hash(store, uid)[b"doc"])[3]
    assert not TRANSIENT & set(payload)
    assert not {"members", "hosts"} & set(payload["instance_group"])
    assert payload["instance_group"]["name"] == "web-tier"  # the persisted part is there
    spec = store.get(RequestContext(store=store), uid).spec
    assert (spec.retry, spec.ignore_hosts, spec.requested_destination) == (None, None, None)
    assert spec.instance_group is not None and spec.instance_group.members == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_derives_the_schema_from_the_document(store: SpecStore, fmt: ImportFormat) -> None:
    """BUG: a 1.0 document imported with "schema": "RequestSpec/9.0" was stored as 9.0, and
    every later save was refused as a newer major version."""
    lying, silent = str(typical_spec().instance_uuid), str(typical_spec().instance_uuid)
    data = encode(
        [record(lying, {"schema": "RequestSpec/9.0", **OWNER}), record(silent, OWNER)], fmt
    )
    result = run_import(store, data, fmt)
    assert (result.created, result.rejected) == (1, 1)
    assert "line 1" in result.problems[0] and "9.0" in result.problems[0]
    assert stored_hash(store, lying) == {}
    assert stored_hash(store, silent)[b"schema"] == b"RequestSpec/1.0"
    ctx = RequestContext(store=store)
    spec = store.get(ctx, silent).spec
    spec.availability_zone = "az2"
    assert store.save(ctx, spec, rev=3) == 4


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("field", ["project_id", "user_id"])
def test_import_refuses_an_owner_the_document_does_not_name(
    store: SpecStore, fmt: ImportFormat, field: str
) -> None:
    wrong, missing = str(typical_spec().instance_uuid), str(typical_spec().instance_uuid)
    other = {**OWNER, field: "someone-else"}
    absent = {k: v for k, v in OWNER.items() if k != field}
    result = run_import(store, encode([record(wrong, other), record(missing, absent)], fmt), fmt)
    assert (result.created, result.rejected) == (1, 1)
    assert field in result.problems[0] and "someone-else" in result.problems[0]
    assert stored_hash(store, wrong) == {}
    assert stored_hash(store, missing)[field.encode()] == OWNER[field].encode()


# -- one check per record, and what the verbatim msgpack path checks ----------------------------


def _exported(count: int, fmt: str) -> tuple[SpecStore, bytes]:
    source = SpecStore.from_url(f"memory://import-once-{fmt}")
    ctx = RequestContext(store=source)
    for _ in range(count):
        source.create(ctx, typical_spec())
    out = io.BytesIO()
    export_specs(source, out, fmt)  # type: ignore[arg-type]
    return SpecStore.from_url(f"memory://import-once-target-{fmt}"), out.getvalue()


class Source(io.BytesIO):
    """An input that remembers how far it was read when closed."""

    final = -1

    def close(self) -> None:
        if not self.closed:
            self.final = self.tell()
        super().close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_record_is_parsed_once_and_both_passes_read_the_whole_source(
    fmt: ImportFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, data = _exported(7, fmt)
    parsed: list[object] = []
    for name in ("parse_json_record", "parse_msgpack_record", "verbatim_msgpack_record"):
        real = getattr(importing, name)

        def counted(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            parsed.append(args[0])
            return _real(*args, **kwargs)

        monkeypatch.setattr(importing, name, counted)
    sources: list[Source] = []

    def open_source() -> Source:
        sources.append(Source(data))
        return sources[-1]

    result = import_specs(target, open_source, fmt, batch=3)
    assert (result.read, result.created) == (7, 7)
    assert len(parsed) == 7
    assert [s.final for s in sources] == [len(data), len(data)]


def test_the_second_pass_reads_as_far_as_the_records_written() -> None:
    target, data = _exported(5, "jsonl")
    opened: list[Source] = []
    seen: list[int] = []

    def open_source() -> Source:
        opened.append(Source(data))
        return opened[-1]

    import_specs(target, open_source, "jsonl", batch=2, progress=lambda _n: seen.append(
        opened[-1].tell()))
    lines = data.splitlines(keepends=True)
    # progress is called as each batch is written, before the source is read past it
    assert seen[:2] == [0, len(b"".join(lines[:2]))]
    assert opened[-1].final == len(data)


def persisted_record() -> tuple[str, dict[str, Any]]:
    """A record of a new instance whose payload holds persisted fields only."""
    uid = str(typical_spec().instance_uuid)
    item = record(uid, OWNER)
    payload = {k: v for k, v in full_payload(uid).items() if k not in TRANSIENT}
    payload["instance_group"] = {
        k: v for k, v in payload["instance_group"].items() if k not in ("members", "hosts")
    }
    item["payload"] = payload
    return uid, item


def test_a_msgpack_document_the_model_refuses_is_never_stored() -> None:
    uid, item = persisted_record()
    item["payload"]["flavor"] = {**item["payload"]["flavor"], "memory_mb": 0}  # refused
    data = encode([item], "msgpack")
    for validate in (False, True):
        store = SpecStore.from_url(f"memory://import-refused-{validate}")
        result = import_specs(store, lambda: io.BytesIO(data), "msgpack", validate=validate)
        assert (result.created, result.rejected) == (0, 1)
        assert not stored_hash(store, uid)


def test_a_valid_msgpack_document_is_stored_as_it_came_unless_validate() -> None:
    uid, item = persisted_record()
    data = encode([item], "msgpack")
    sent = next(iter(msgpack.Unpacker(io.BytesIO(data), raw=False)))["doc"]
    fast = SpecStore.from_url("memory://import-verbatim-fast")
    assert import_specs(fast, lambda: io.BytesIO(data), "msgpack").created == 1
    assert stored_hash(fast, uid)[b"doc"] == sent  # the bytes as they came
    checked = SpecStore.from_url("memory://import-verbatim-checked")
    assert import_specs(checked, lambda: io.BytesIO(data), "msgpack", validate=True).created == 1
    fast_spec = fast.get(RequestContext(store=fast), uid).spec
    assert checked.get(RequestContext(store=checked), uid).spec == fast_spec


def test_the_verbatim_msgpack_path_still_refuses_a_document_of_another_instance() -> None:
    uid, other = (str(typical_spec().instance_uuid) for _ in range(2))
    item = record(uid, OWNER)
    item["payload"] = {**item["payload"], "instance_uuid": uuid.UUID(other)}
    result = run_import(SpecStore.from_url("memory://import-verbatim-other"),
                        encode([item], "msgpack"), "msgpack")
    assert (result.created, result.rejected) == (0, 1)
