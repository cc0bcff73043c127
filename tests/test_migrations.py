"""Schema evolution: upgrade and downgrade steps, newer-minor fields kept by older readers,
newer major versions refused -- exercised on copies of the real registry with schema
versions defined here (1.1 appends optional fields, 2.0 renames one)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any, cast

import msgpack
import pytest
from pydantic import ConfigDict, Field

from specstore import RequestContext, SpecStore
from specstore.errors import CorruptDocumentError, IncompatibleSchemaError
from specstore.model import (
    Flavor,
    InstanceNUMACell,
    InstanceNUMATopology,
    RequestSpec,
    persisted_payload,
    strip_transient,
)
from specstore.serializers import (
    DEFAULT_CODEC,
    MAGIC,
    REGISTRY,
    DocumentCodec,
    MigrationRegistry,
    json_codec,
)
from specstore.serializers.envelope import Envelope, encode_envelope
from specstore.serializers.schemas.request_spec import SCHEMA
from tests import factories
from tests.factories import typical_spec

Payload = dict[str, Any]
Step = Callable[[Payload], Payload]

UID = uuid.UUID("7d0e6f5a-1b2c-4d3e-8f40-5a6b7c8d9e0f")


# -- the schema versions of these tests -------------------------------------------------------


class RequestSpecV11(RequestSpec):
    """RequestSpec 1.1: appends one optional field."""

    boot_priority: int = 0


class FlavorV11(Flavor):
    tier: str | None = None


class InstanceNUMACellV11(InstanceNUMACell):
    l3_cache_kb: int | None = None


class InstanceNUMATopologyV11(InstanceNUMATopology):
    cells: list[InstanceNUMACellV11] = Field(min_length=1)  # type: ignore[assignment]


class RequestSpecV11Nested(RequestSpecV11):
    """A 1.1 that also appends fields to a nested model and to models inside a list."""

    flavor: FlavorV11
    numa_topology: InstanceNUMATopologyV11 | None = None


class RequestSpecV20(RequestSpecV11):
    """RequestSpec 2.0: ``security_groups`` is stored as ``security_group_names``."""

    model_config = ConfigDict(serialize_by_alias=True)

    security_groups: list[str] = Field(default_factory=list, alias="security_group_names")


def lift_boot_priority(payload: Payload) -> Payload:
    """Upgrade 1.0 -> 1.1: 1.0 writers passed the priority as the ``boot_priority`` scheduler
    hint; 1.1 adds the field (from the hint when there is one)."""
    if "boot_priority" in payload:
        return dict(payload)
    hint = payload.get("scheduler_hints", {}).get("boot_priority")
    return {**payload, "boot_priority": int(hint[0]) if hint else 0}


def drop_boot_priority(payload: Payload) -> Payload:
    """Downgrade 1.1 -> 1.0: drop the field."""
    return {k: v for k, v in payload.items() if k != "boot_priority"}


def drop_nested_1_1_fields(payload: Payload) -> Payload:
    """Downgrade 1.1 -> 1.0 of :class:`RequestSpecV11Nested`."""
    result = drop_boot_priority(payload)
    flavor = result.get("flavor")
    if isinstance(flavor, dict):
        result["flavor"] = {k: v for k, v in flavor.items() if k != "tier"}
    topology = result.get("numa_topology")
    if isinstance(topology, dict):
        cells = [{k: v for k, v in c.items() if k != "l3_cache_kb"} for c in topology["cells"]]
        result["numa_topology"] = {**topology, "cells": cells}
    return result


def _rename(old: str, new: str) -> Step:
    def step(payload: Payload) -> Payload:
        return {new if k == old else k: v for k, v in payload.items()}

    return step


rename_security_groups = _rename("security_groups", "security_group_names")
unrename_security_groups = _rename("security_group_names", "security_groups")

STEPS: dict[str, Step] = {
    "lift_boot_priority": lift_boot_priority,
    "drop_boot_priority": drop_boot_priority,
    "drop_nested_1_1_fields": drop_nested_1_1_fields,
    "rename_security_groups": rename_security_groups,
    "unrename_security_groups": unrename_security_groups,
}


class Recorder:
    """Wraps steps: records every call (name, input) and checks the input is not mutated."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Payload]] = []

    def wrap(self, name: str, step: Step) -> Step:
        def recorded(payload: Payload) -> Payload:
            before = copy.deepcopy(payload)
            result = step(payload)
            assert payload == before, f"step {name} mutated its input"
            assert result is not payload, f"step {name} returned its input"
            self.calls.append((name, before))
            return result

        return recorded

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def registry_11(rec: Recorder) -> MigrationRegistry:
    registry = REGISTRY.copy()
    registry.release(
        SCHEMA,
        (1, 1),
        upgrade=rec.wrap("up 1.1", lift_boot_priority),
        downgrade=rec.wrap("down 1.1", drop_boot_priority),
    )
    return registry


@pytest.fixture
def registry_11_nested(rec: Recorder) -> MigrationRegistry:
    registry = REGISTRY.copy()
    registry.release(
        SCHEMA,
        (1, 1),
        upgrade=rec.wrap("up 1.1", lift_boot_priority),
        downgrade=rec.wrap("down 1.1", drop_nested_1_1_fields),
    )
    return registry


@pytest.fixture
def registry_20(rec: Recorder, registry_11: MigrationRegistry) -> MigrationRegistry:
    registry = registry_11.copy()
    registry.release(
        SCHEMA,
        (2, 0),
        upgrade=rec.wrap("up 2.0", rename_security_groups),
        downgrade=rec.wrap("down 2.0", unrename_security_groups),
    )
    return registry


@pytest.fixture
def codec_11(registry_11: MigrationRegistry) -> DocumentCodec:
    return DocumentCodec(model=RequestSpecV11, registry=registry_11)


@pytest.fixture
def codec_11_nested(registry_11_nested: MigrationRegistry) -> DocumentCodec:
    return DocumentCodec(model=RequestSpecV11Nested, registry=registry_11_nested)


@pytest.fixture
def codec_20(registry_20: MigrationRegistry) -> DocumentCodec:
    return DocumentCodec(model=RequestSpecV20, registry=registry_20)


CODEC_10 = DEFAULT_CODEC


def _spec_10(**hints: list[str]) -> RequestSpec:
    spec = typical_spec(UID)
    spec.scheduler_hints = {**spec.scheduler_hints, **hints}
    return spec


def _spec_11(boot_priority: int = 7) -> RequestSpecV11:
    return RequestSpecV11.model_validate(
        {**typical_spec(UID).model_dump(), "boot_priority": boot_priority}
    )


def _spec_11_nested() -> RequestSpecV11Nested:
    data = typical_spec(UID).model_dump()
    data["flavor"]["tier"] = "gold"
    data["numa_topology"]["cells"][1]["l3_cache_kb"] = 2048
    data["boot_priority"] = 7
    return RequestSpecV11Nested.model_validate(data)


def _raw(doc: bytes) -> list[Any]:
    body: list[Any] = msgpack.unpackb(
        doc[len(MAGIC) :], raw=False, strict_map_key=False, ext_hook=msgpack.ExtType
    )
    return body


def _version(doc: bytes) -> tuple[int, int]:
    _, major, minor, _ = _raw(doc)
    return major, minor


# -- registry ---------------------------------------------------------------------------------


def test_the_released_registry_holds_request_spec_1_0_only() -> None:
    assert REGISTRY.versions(SCHEMA) == ((1, 0),)
    assert REGISTRY.current(SCHEMA) == (1, 0)
    assert DEFAULT_CODEC.current_version == (1, 0)
    assert DEFAULT_CODEC.write_version == (1, 0)


def test_registry_copies_are_independent(registry_20: MigrationRegistry) -> None:
    assert registry_20.versions(SCHEMA) == ((1, 0), (1, 1), (2, 0))
    assert REGISTRY.versions(SCHEMA) == ((1, 0),)
    again = registry_20.copy()
    again.release(SCHEMA, (2, 1), upgrade=dict, downgrade=dict)
    assert registry_20.current(SCHEMA) == (2, 0)
    assert again.current(SCHEMA) == (2, 1)


def test_is_newer_minor(registry_11: MigrationRegistry) -> None:
    assert registry_11.is_newer_minor(SCHEMA, (1, 2))
    assert registry_11.is_newer_minor(SCHEMA, (1, 40))
    assert not registry_11.is_newer_minor(SCHEMA, (1, 1))
    assert not registry_11.is_newer_minor(SCHEMA, (1, 0))
    assert not registry_11.is_newer_minor(SCHEMA, (2, 0))
    assert not registry_11.is_newer_minor(SCHEMA, (0, 9))


@pytest.mark.parametrize("version", [(1, 0), (0, 9), (0, 99)])
def test_release_refuses_a_version_that_is_not_newer(version: tuple[int, int]) -> None:
    registry = REGISTRY.copy()
    with pytest.raises(ValueError, match=r"is not newer than 1\.0"):
        registry.release(SCHEMA, version, upgrade=dict, downgrade=dict)
    assert registry.versions(SCHEMA) == ((1, 0),)


def test_release_refuses_going_back_after_a_newer_release(
    registry_11: MigrationRegistry,
) -> None:
    for version in [(1, 1), (1, 0)]:
        with pytest.raises(ValueError, match=r"is not newer than 1\.1"):
            registry_11.release(SCHEMA, version, upgrade=dict, downgrade=dict)
    assert registry_11.versions(SCHEMA) == ((1, 0), (1, 1))


@pytest.mark.parametrize(
    ("upgrade", "downgrade"),
    [(None, None), (lift_boot_priority, None), (None, drop_boot_priority)],
)
def test_release_refuses_missing_steps(upgrade: Step | None, downgrade: Step | None) -> None:
    registry = REGISTRY.copy()
    with pytest.raises(ValueError, match=r"RequestSpec 1\.1 needs both steps"):
        registry.release(SCHEMA, (1, 1), upgrade=upgrade, downgrade=downgrade)
    assert registry.versions(SCHEMA) == ((1, 0),)
    with pytest.raises(IncompatibleSchemaError):
        DocumentCodec(registry=registry, write_version=(1, 1))


def test_first_version_of_a_schema_needs_no_steps() -> None:
    registry = REGISTRY.copy()
    registry.release("InstanceSpec", (3, 2))
    assert registry.current("InstanceSpec") == (3, 2)
    assert registry.versions(SCHEMA) == ((1, 0),)


def test_unknown_schema_is_incompatible() -> None:
    for call in (
        lambda: REGISTRY.current("Nope"),
        lambda: REGISTRY.versions("Nope"),
        lambda: REGISTRY.upgrade("Nope", {}, (1, 0)),
        lambda: REGISTRY.downgrade("Nope", {}, (1, 0)),
    ):
        with pytest.raises(IncompatibleSchemaError, match="unknown document schema 'Nope'"):
            call()


# -- upgrade path -----------------------------------------------------------------------------


def test_1_1_codec_upgrades_a_1_0_document(codec_11: DocumentCodec, rec: Recorder) -> None:
    spec_10 = _spec_10(boot_priority=["5"])
    doc_10 = CODEC_10.encode(spec_10)
    assert _version(doc_10) == (1, 0)
    assert "boot_priority" not in _raw(doc_10)[3]

    spec = codec_11.decode(doc_10)

    assert isinstance(spec, RequestSpecV11)
    assert spec.boot_priority == 5
    assert spec.flavor == spec_10.flavor
    assert spec.scheduler_hints["boot_priority"] == ["5"]
    assert spec.newer_minor_fields is None
    assert rec.calls == [("up 1.1", persisted_payload(spec_10))]

    doc_11 = codec_11.encode(spec)
    assert _version(doc_11) == (1, 1)
    assert _raw(doc_11)[3]["boot_priority"] == 5
    assert rec.names == ["up 1.1"]  # writing the current version walks no step


def test_upgrade_of_a_document_without_the_hint_gives_the_default(
    codec_11: DocumentCodec, rec: Recorder
) -> None:
    spec = codec_11.decode(CODEC_10.encode(_spec_10()))
    assert isinstance(spec, RequestSpecV11)
    assert spec.boot_priority == 0
    assert rec.names == ["up 1.1"]
    # the default is left out of the 1.1 document again
    assert "boot_priority" not in _raw(codec_11.encode(spec))[3]


def test_current_version_documents_walk_no_step(codec_11: DocumentCodec, rec: Recorder) -> None:
    doc = codec_11.encode(_spec_11())
    spec = codec_11.decode(doc)
    assert isinstance(spec, RequestSpecV11)
    assert spec.boot_priority == 7
    assert rec.calls == []


def test_upgrade_step_sees_the_stored_payload_not_the_spec(
    codec_11: DocumentCodec, rec: Recorder
) -> None:
    codec_11.decode(CODEC_10.encode(_spec_10()))
    [(_, payload)] = rec.calls
    assert "retry" not in payload  # transient: never stored
    assert "members" not in payload["instance_group"]
    assert "num_instances" not in payload  # default: left out


# -- downgrade path ---------------------------------------------------------------------------


def test_writer_pinned_to_1_0_writes_what_1_0_code_reads(
    registry_11: MigrationRegistry, rec: Recorder
) -> None:
    pinned = DocumentCodec(model=RequestSpecV11, registry=registry_11, write_version=(1, 0))
    spec = _spec_11(boot_priority=7)

    version, doc = pinned.encode_versioned(spec)

    assert version == (1, 0)
    assert _version(doc) == (1, 0)
    assert "boot_priority" not in _raw(doc)[3]
    assert rec.names == ["down 1.1"]
    assert rec.calls[0][1]["boot_priority"] == 7
    read = CODEC_10.decode(doc)  # natively: no unknown fields, no step
    assert type(read) is RequestSpec
    assert read.newer_minor_fields is None
    assert read == strip_transient(typical_spec(UID))
    assert doc == CODEC_10.encode(typical_spec(UID))  # byte for byte what 1.0 code writes


def test_writer_pinned_to_1_0_still_reads_1_1(
    registry_11: MigrationRegistry, codec_11: DocumentCodec
) -> None:
    pinned = DocumentCodec(model=RequestSpecV11, registry=registry_11, write_version=(1, 0))
    assert pinned.current_version == (1, 1)
    spec = pinned.decode(codec_11.encode(_spec_11(boot_priority=3)))
    assert isinstance(spec, RequestSpecV11)
    assert spec.boot_priority == 3


def test_json_export_follows_the_pinned_version(registry_11: MigrationRegistry) -> None:
    pinned = DocumentCodec(model=RequestSpecV11, registry=registry_11, write_version=(1, 0))
    document = json_codec.to_json_document(_spec_11(boot_priority=7), pinned)
    assert document["version"] == "1.0"
    assert "boot_priority" not in document["spec"]
    assert json_codec.from_json_document(document) == strip_transient(typical_spec(UID))


# -- newer minor versions read by older code --------------------------------------------------


def test_1_0_code_keeps_fields_of_a_1_1_document(codec_11: DocumentCodec) -> None:
    doc_11 = codec_11.encode(_spec_11(boot_priority=7))
    assert _version(doc_11) == (1, 1)

    spec = CODEC_10.decode(doc_11)

    assert type(spec) is RequestSpec
    assert spec == strip_transient(typical_spec(UID))
    assert spec.newer_minor_fields == ((1, 1), {"boot_priority": 7})
    version, again = CODEC_10.encode_versioned(spec)
    assert version == (1, 1)
    assert again == doc_11  # byte-identical
    back = codec_11.decode(again)
    assert isinstance(back, RequestSpecV11)
    assert back.boot_priority == 7


def test_1_0_code_changing_known_fields_keeps_1_1_fields(codec_11: DocumentCodec) -> None:
    spec = CODEC_10.decode(codec_11.encode(_spec_11(boot_priority=7)))
    spec.availability_zone = "az9"
    spec.flavor = Flavor(flavorid="2", name="m1.small", memory_mb=2048, vcpus=1)

    doc = CODEC_10.encode(spec)

    assert _version(doc) == (1, 1)
    back = codec_11.decode(doc)
    assert isinstance(back, RequestSpecV11)
    assert (back.boot_priority, back.availability_zone, back.memory_mb) == (7, "az9", 2048)


def test_1_0_code_keeps_1_1_fields_through_json(codec_11: DocumentCodec) -> None:
    spec = CODEC_10.decode(codec_11.encode(_spec_11(boot_priority=7)))
    text = json_codec.dumps(spec)
    document = json.loads(text)
    assert document["version"] == "1.1"
    assert document["spec"]["boot_priority"] == 7
    back = json_codec.loads(text, codec_11)
    assert isinstance(back, RequestSpecV11)
    assert back.boot_priority == 7
    assert CODEC_10.encode(json_codec.loads(text)) == codec_11.encode(_spec_11(boot_priority=7))


def test_1_0_code_keeps_nested_1_1_fields(codec_11_nested: DocumentCodec) -> None:
    original = _spec_11_nested()
    doc_11 = codec_11_nested.encode(original)
    raw = _raw(doc_11)[3]
    assert raw["flavor"]["tier"] == "gold"
    assert raw["numa_topology"]["cells"][1]["l3_cache_kb"] == 2048
    assert "l3_cache_kb" not in raw["numa_topology"]["cells"][0]

    spec = CODEC_10.decode(doc_11)

    assert type(spec) is RequestSpec
    assert type(spec.flavor) is Flavor
    assert spec.newer_minor_fields is not None
    version, kept = spec.newer_minor_fields
    assert version == (1, 1)
    assert set(kept) == {"flavor", "numa_topology", "boot_priority"}
    assert kept["boot_priority"] == 7  # (how nested objects are keyed is the codec's business)
    again = CODEC_10.encode(spec)
    assert again == doc_11  # byte-identical
    back = codec_11_nested.decode(again)
    assert isinstance(back, RequestSpecV11Nested)
    assert back.boot_priority == 7
    assert back.flavor.tier == "gold"
    assert back.numa_topology is not None
    assert [c.l3_cache_kb for c in back.numa_topology.cells] == [None, 2048]
    assert back == RequestSpecV11Nested.model_validate(persisted_payload(original))


def test_nested_1_1_fields_go_away_with_their_container(
    codec_11_nested: DocumentCodec,
) -> None:
    doc_11 = codec_11_nested.encode(_spec_11_nested())

    shortened = CODEC_10.decode(doc_11)
    assert shortened.numa_topology is not None
    shortened.numa_topology = InstanceNUMATopology(cells=shortened.numa_topology.cells[:1])
    back = codec_11_nested.decode(CODEC_10.encode(shortened))
    assert isinstance(back, RequestSpecV11Nested)
    assert back.numa_topology is not None
    assert [c.l3_cache_kb for c in back.numa_topology.cells] == [None]
    assert (back.flavor.tier, back.boot_priority) == ("gold", 7)

    removed = CODEC_10.decode(doc_11)
    removed.numa_topology = None
    back = codec_11_nested.decode(CODEC_10.encode(removed))
    assert isinstance(back, RequestSpecV11Nested)
    assert back.numa_topology is None
    assert (back.flavor.tier, back.boot_priority) == ("gold", 7)


def test_1_0_resize_of_a_1_1_document_stores_the_new_flavor_without_the_old_ones_field(
    codec_11_nested: DocumentCodec,
) -> None:
    """BUG: 1.1-only fields of a nested object were grafted onto whatever object 1.0 code put
    in its place: a resize stored the new flavor with the old flavor's ``tier``."""
    doc_11 = codec_11_nested.encode(_spec_11_nested())  # flavor m1.large, tier gold
    resized = CODEC_10.decode(doc_11)
    resized.flavor = factories.flavor("m1.xlarge", memory_mb=16384, vcpus=8)
    raw = _raw(CODEC_10.encode(resized))[3]
    assert raw["flavor"]["name"] == "m1.xlarge" and "tier" not in raw["flavor"]
    back = codec_11_nested.decode(CODEC_10.encode(resized))
    assert isinstance(back, RequestSpecV11Nested)
    assert (back.flavor.name, back.flavor.tier) == ("m1.xlarge", None)
    assert back.boot_priority == 7  # fields of objects left alone are kept
    assert back.numa_topology is not None
    assert [c.l3_cache_kb for c in back.numa_topology.cells] == [None, 2048]


def test_1_0_store_resize_of_a_1_1_spec_stores_the_new_flavor_alone(
    store: SpecStore, codec_11_nested: DocumentCodec
) -> None:
    """The same through the store, on every backend: 1.1 code creates, 1.0 code resizes."""
    ctx = RequestContext(store=store)
    newer = SpecStore(store.topology, codec=codec_11_nested)
    newer.create(ctx, _spec_11_nested())
    read = store.get(ctx, UID)
    resized = read.spec
    resized.flavor = factories.flavor("m1.xlarge", memory_mb=16384, vcpus=8)
    assert store.save(ctx, resized, rev=read.rev) == 2
    raw = _raw(cast(bytes, store.client.hget(store.keys.spec_key("api", str(UID)), "doc")))
    assert (raw[1], raw[2]) == (1, 1)  # still a 1.1 document: its other 1.1 fields kept
    assert raw[3]["flavor"]["name"] == "m1.xlarge" and "tier" not in raw[3]["flavor"]
    back = newer.get(ctx, UID).spec
    assert isinstance(back, RequestSpecV11Nested)
    assert (back.flavor.tier, back.boot_priority) == (None, 7)


def test_1_1_fields_of_an_unchanged_nested_object_survive_a_json_export() -> None:
    """The identity check must not drop fields of an object that was left alone when the
    dump is JSON-mode (UUIDs and datetimes as text, unlike the document as read)."""
    payload = persisted_payload(typical_spec(UID))
    created = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    payload["image"] = {**payload["image"], "created_at": created}
    payload["image"]["signature_policy"] = "strict"  # an ImageMeta field 1.0 does not know
    spec = CODEC_10.decode(encode_envelope(SCHEMA, (1, 1), payload))
    document = json.loads(json_codec.dumps(spec))
    assert document["version"] == "1.1"
    assert document["spec"]["image"]["signature_policy"] == "strict"
    spec.image = None
    assert "image" not in json.loads(json_codec.dumps(spec))["spec"]


def _l3_by_cell_id(doc: bytes, codec: DocumentCodec) -> dict[int, int | None]:
    spec = codec.decode(doc)
    assert isinstance(spec, RequestSpecV11Nested)
    assert spec.numa_topology is not None
    return {c.id: c.l3_cache_kb for c in spec.numa_topology.cells}


def test_1_1_fields_of_list_items_never_move_to_another_item(
    codec_11_nested: DocumentCodec,
) -> None:
    """BUG: unknown fields of list items are kept by *index* only. When 1.0 code inserts or
    removes an item, a 1.1 field stored for one NUMA cell is written back on a different
    cell (silent data corruption). Keeping it on its own item, or dropping it, are both
    fine; moving it is not."""
    doc_11 = codec_11_nested.encode(_spec_11_nested())  # cell 1 has l3_cache_kb=2048
    assert _l3_by_cell_id(doc_11, codec_11_nested) == {0: None, 1: 2048}

    inserted = CODEC_10.decode(doc_11)
    assert inserted.numa_topology is not None
    cells = [InstanceNUMACell(id=9, memory=512), *inserted.numa_topology.cells]
    inserted.numa_topology = InstanceNUMATopology(cells=cells)
    by_id = _l3_by_cell_id(CODEC_10.encode(inserted), codec_11_nested)
    assert by_id[9] is None
    assert by_id[0] is None  # today: 2048, cell 1's value
    assert by_id[1] in (2048, None)

    data = _spec_11_nested().model_dump()
    data["numa_topology"]["cells"][0]["l3_cache_kb"] = 1024
    data["numa_topology"]["cells"][1]["l3_cache_kb"] = None
    removed = CODEC_10.decode(codec_11_nested.encode(RequestSpecV11Nested.model_validate(data)))
    assert removed.numa_topology is not None
    removed.numa_topology = InstanceNUMATopology(cells=removed.numa_topology.cells[1:])
    by_id = _l3_by_cell_id(CODEC_10.encode(removed), codec_11_nested)
    assert by_id == {1: None}  # today: {1: 1024}, cell 0's value


def test_newer_minor_document_with_invalid_known_fields_is_corrupt() -> None:
    payload = persisted_payload(typical_spec(UID))
    payload["flavor"] = {**payload["flavor"], "vcpus": 0, "tier": "gold"}
    doc = encode_envelope(SCHEMA, (1, 3), payload)
    with pytest.raises(CorruptDocumentError, match=r"RequestSpec 1\.3 .*flavor\.vcpus"):
        CODEC_10.decode(doc)


# -- newer major versions ---------------------------------------------------------------------


def test_2_0_codec_reads_1_0_through_every_step(codec_20: DocumentCodec, rec: Recorder) -> None:
    spec = codec_20.decode(CODEC_10.encode(_spec_10(boot_priority=["4"])))
    assert isinstance(spec, RequestSpecV20)
    assert spec.security_groups == ["default"]
    assert spec.boot_priority == 4
    assert rec.names == ["up 1.1", "up 2.0"]

    doc_20 = codec_20.encode(spec)
    assert _version(doc_20) == (2, 0)
    raw = _raw(doc_20)[3]
    assert raw["security_group_names"] == ["default"]
    assert "security_groups" not in raw
    assert codec_20.decode(doc_20) == spec


def test_2_0_codec_pinned_to_1_0_walks_every_step_down(
    registry_20: MigrationRegistry, codec_20: DocumentCodec, rec: Recorder
) -> None:
    spec = codec_20.decode(CODEC_10.encode(_spec_10()))
    assert isinstance(spec, RequestSpecV20)
    spec.boot_priority = 9
    rec.calls.clear()
    pinned = DocumentCodec(model=RequestSpecV20, registry=registry_20, write_version=(1, 0))

    doc = pinned.encode(spec)

    assert rec.names == ["down 2.0", "down 1.1"]
    assert _version(doc) == (1, 0)
    assert doc == CODEC_10.encode(_spec_10())
    pinned_11 = DocumentCodec(model=RequestSpecV20, registry=registry_20, write_version=(1, 1))
    doc_11 = pinned_11.encode(spec)
    assert _version(doc_11) == (1, 1)
    assert _raw(doc_11)[3]["security_groups"] == ["default"]


def _doc_20(codec_20: DocumentCodec) -> bytes:
    return codec_20.encode(codec_20.decode(CODEC_10.encode(_spec_10(boot_priority=["2"]))))


def test_1_x_code_refuses_a_2_0_document(
    codec_20: DocumentCodec,
    codec_11: DocumentCodec,
    codec_11_nested: DocumentCodec,
    registry_11: MigrationRegistry,
) -> None:
    doc_20 = _doc_20(codec_20)
    pinned = DocumentCodec(model=RequestSpecV11, registry=registry_11, write_version=(1, 0))
    for codec in (CODEC_10, codec_11, codec_11_nested, pinned):
        with pytest.raises(IncompatibleSchemaError) as exc:
            codec.decode(doc_20)
        assert type(exc.value) is IncompatibleSchemaError
        assert "RequestSpec 2.0 is a newer major version" in str(exc.value)
    assert CODEC_10.header(doc_20).version == (2, 0)  # the header is still readable


def test_1_x_code_refuses_a_2_0_json_document(codec_20: DocumentCodec) -> None:
    text = json_codec.dumps(codec_20.decode(_doc_20(codec_20)), codec_20)
    assert '"version":"2.0"' in text
    with pytest.raises(IncompatibleSchemaError, match="newer major version"):
        json_codec.loads(text)


@pytest.mark.parametrize("version", [(2, 0), (2, 7), (3, 0), (65535, 65535)])
@pytest.mark.parametrize(
    "payload",
    [{}, {"security_group_names": []}, {"flavor": 1, "instance_uuid": "x"}, {"boot": [1, {}]}],
)
def test_newer_major_is_refused_before_the_payload_is_looked_at(
    version: tuple[int, int], payload: Payload
) -> None:
    doc = encode_envelope(SCHEMA, version, payload)
    with pytest.raises(IncompatibleSchemaError) as exc:
        CODEC_10.decode(doc)
    assert type(exc.value) is IncompatibleSchemaError


# -- unreleased versions ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [(0, 9), (0, 0)])
def test_unreleased_older_version_is_incompatible(
    version: tuple[int, int], codec_11: DocumentCodec
) -> None:
    doc = encode_envelope(SCHEMA, version, persisted_payload(typical_spec(UID)))
    for codec in (CODEC_10, codec_11):
        with pytest.raises(IncompatibleSchemaError, match="is not a released version"):
            codec.decode(doc)


def test_skipped_minor_version_is_incompatible() -> None:
    registry = REGISTRY.copy()
    registry.release(SCHEMA, (1, 2), upgrade=dict, downgrade=dict)
    codec = DocumentCodec(registry=registry)
    doc = encode_envelope(SCHEMA, (1, 1), persisted_payload(typical_spec(UID)))
    with pytest.raises(IncompatibleSchemaError, match=r"1\.1 is not a released version"):
        codec.decode(doc)


@pytest.mark.parametrize("version", [(1, 1), (0, 9), (2, 0), (1, 0 + 65535)])
def test_write_version_must_be_released(version: tuple[int, int]) -> None:
    with pytest.raises(IncompatibleSchemaError, match="not a released version"):
        DocumentCodec(write_version=version)


def test_write_version_newer_than_current_is_refused(registry_11: MigrationRegistry) -> None:
    with pytest.raises(IncompatibleSchemaError, match=r"cannot write RequestSpec 1\.2"):
        DocumentCodec(model=RequestSpecV11, registry=registry_11, write_version=(1, 2))
    with pytest.raises(IncompatibleSchemaError, match=r"cannot write RequestSpec 0\.9"):
        registry_11.downgrade(SCHEMA, {}, (0, 9))


# -- steps are pure ---------------------------------------------------------------------------


def _rich_payload() -> Payload:
    spec = _spec_11_nested()
    payload = persisted_payload(spec)
    payload["scheduler_hints"] = {"boot_priority": ["3"], "same_host": ["x"]}
    payload["security_groups"] = ["a", "b"]
    return payload


@pytest.mark.parametrize("name", sorted(STEPS))
def test_steps_do_not_mutate_their_input(name: str) -> None:
    payload = _rich_payload()
    before = copy.deepcopy(payload)
    result = STEPS[name](payload)
    assert payload == before
    assert result is not payload


def test_steps_do_what_they_say() -> None:
    payload = _rich_payload()
    assert lift_boot_priority({**payload, "boot_priority": 8})["boot_priority"] == 8
    lifted = lift_boot_priority(drop_boot_priority(payload))
    assert lifted["boot_priority"] == 3
    dropped = drop_nested_1_1_fields(payload)
    assert "boot_priority" not in dropped
    assert "tier" not in dropped["flavor"]
    assert all("l3_cache_kb" not in c for c in dropped["numa_topology"]["cells"])
    renamed = rename_security_groups(payload)
    assert renamed["security_group_names"] == ["a", "b"]
    assert list(renamed) == [
        "security_group_names" if k == "security_groups" else k for k in payload
    ]
    assert unrename_security_groups(renamed) == payload


def test_registry_walks_do_not_mutate_their_input(registry_20: MigrationRegistry) -> None:
    payload = _rich_payload()
    payload.pop("boot_priority")
    before = copy.deepcopy(payload)
    upgraded = registry_20.upgrade(SCHEMA, payload, (1, 0))
    assert payload == before
    assert upgraded["security_group_names"] == ["a", "b"]
    assert upgraded["boot_priority"] == 3
    upgraded_before = copy.deepcopy(upgraded)
    downgraded = registry_20.downgrade(SCHEMA, upgraded, (1, 0))
    assert upgraded == upgraded_before
    assert downgraded == drop_boot_priority(lift_boot_priority(payload))


@pytest.mark.parametrize("version", [(1, 0), (1, 1), (1, 2)])
def test_decoding_does_not_mutate_the_envelope_payload(
    version: tuple[int, int], codec_11: DocumentCodec
) -> None:
    payload = persisted_payload(typical_spec(UID))
    payload["scheduler_hints"] = {"boot_priority": ["3"]}
    if version >= (1, 1):
        payload["boot_priority"] = 2
    if version == (1, 2):  # newer minor: unknown fields at the top and nested
        payload["later"] = {"x": 1}
        payload["flavor"] = {**payload["flavor"], "newer": True}
    before = copy.deepcopy(payload)

    spec = codec_11.from_envelope(Envelope(SCHEMA, version, payload))

    assert isinstance(spec, RequestSpecV11)
    assert spec.boot_priority == (3 if version == (1, 0) else 2)
    assert payload == before


def test_encoding_does_not_mutate_kept_newer_minor_fields(
    codec_11_nested: DocumentCodec,
) -> None:
    spec = CODEC_10.decode(codec_11_nested.encode(_spec_11_nested()))
    kept = copy.deepcopy(spec.newer_minor_fields)
    first = CODEC_10.encode(spec)
    json_codec.dumps(spec)
    assert spec.newer_minor_fields == kept
    assert CODEC_10.encode(spec) == first


def test_kept_newer_fields_named_by_anything_but_text_are_refused_on_write(
    codec_11: DocumentCodec,
) -> None:
    """A kept field changed in place to a name no reader takes (an int) is refused with
    InvalidSpecError instead of written as a document whose payload is not keyed by names."""
    from specstore.errors import InvalidSpecError

    spec = CODEC_10.decode(codec_11.encode(_spec_11(boot_priority=7)))
    assert spec.newer_minor_fields is not None
    spec.newer_minor_fields[1][5] = "x"
    with pytest.raises(InvalidSpecError):
        CODEC_10.encode(spec)
