"""The fast codec paths give what the reference paths give.

The envelope writes with ormsgpack and reads with ormsgpack when it can (see
:mod:`specstore.serializers.envelope`); msgpack-python with Python hooks is the reference.
These tests pin that both write the same bytes and read the same specs, and the model's
canonical order (kept at validation, not at dump) and its bookkeeping slots.
"""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specstore.errors import CorruptDocumentError
from specstore.model import RequestSpec, persisted_payload, strip_transient
from specstore.model.base import SortedDict
from specstore.samples import typical_spec
from specstore.serializers import DEFAULT_CODEC, MAGIC
from specstore.serializers.envelope import (
    _packb,
    _packb_reference,
    decode_envelope,
    decode_envelope_fast,
)
from tests import strategies as sts

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UTC = dt.timezone.utc
UID = uuid.UUID("11111111-2222-4333-8444-555555555555")

json_like: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text()
    | st.binary(max_size=40) | st.uuids()
    | st.datetimes(timezones=st.just(UTC), min_value=dt.datetime(1, 1, 2)),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(0, 300), inner, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(sts.request_specs)
def test_fast_encoder_writes_the_reference_bytes_for_any_spec(spec: RequestSpec) -> None:
    body = ["RequestSpec", 1, 0, persisted_payload(spec)]
    assert _packb(body) == _packb_reference(body)


@SETTINGS
@given(json_like)
def test_fast_encoder_writes_the_reference_bytes_for_any_value(value: Any) -> None:
    assert _packb(value) == _packb_reference(value)


@SETTINGS
@given(sts.request_specs)
def test_fast_decoder_reads_what_the_reference_reads(spec: RequestSpec) -> None:
    doc = DEFAULT_CODEC.encode(spec)
    fast, reference = decode_envelope_fast(doc), decode_envelope(doc)
    assert (fast.schema, fast.version) == (reference.schema, reference.version)
    assert RequestSpec.model_validate(fast.payload) == RequestSpec.model_validate(
        reference.payload
    )
    assert DEFAULT_CODEC.decode(doc) == RequestSpec.model_validate(reference.payload)


def test_fast_decoder_leaves_uuids_as_their_bytes() -> None:
    spec = typical_spec()
    payload = decode_envelope_fast(DEFAULT_CODEC.encode(spec)).payload
    assert payload["instance_uuid"] == spec.instance_uuid.bytes
    assert decode_envelope(DEFAULT_CODEC.encode(spec)).payload["instance_uuid"] == (
        spec.instance_uuid
    )


@pytest.mark.parametrize("tail", [b"\x00", b"\xc0", b"\xc7\x10\x7f" + b"\x00" * 16, b"\x91"])
def test_fast_decoder_refuses_trailing_bytes(tail: bytes) -> None:
    doc = DEFAULT_CODEC.encode(typical_spec()) + tail
    with pytest.raises(CorruptDocumentError):
        decode_envelope_fast(doc)
    with pytest.raises(CorruptDocumentError):
        DEFAULT_CODEC.decode(doc)


def test_documents_with_datetimes_and_long_documents_take_the_reference_path() -> None:
    spec = typical_spec()
    assert spec.image is not None
    spec.image.created_at = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    spec.image.properties = {"blob": "x" * 20_000}
    doc = DEFAULT_CODEC.encode(spec)
    assert len(doc) > 10_000
    assert DEFAULT_CODEC.decode(doc) == strip_transient(spec)
    assert decode_envelope_fast(doc) == decode_envelope(doc)


def test_a_document_not_at_the_current_version_is_read_with_uuid_objects() -> None:
    doc = MAGIC + _packb_reference(["RequestSpec", 1, 7, {**_payload(), "later": uuid.UUID(int=9)}])
    spec = DEFAULT_CODEC.decode(doc)
    assert spec.newer_minor_fields == ((1, 7), {"later": uuid.UUID(int=9)})
    assert DEFAULT_CODEC.encode(spec) == doc


def _payload() -> dict[str, Any]:
    return persisted_payload(typical_spec(uuid.UUID(int=1)))


# -- canonical order at validation ------------------------------------------------------------


def test_maps_stay_key_sorted_under_in_place_updates() -> None:
    spec = typical_spec()
    spec.flavor.extra_specs["a"] = "1"
    spec.flavor.extra_specs.update({"zz": "2", "b": "3"})
    spec.scheduler_hints.setdefault("aaa", ["x"])
    spec.scheduler_hints |= {"b": ["y"]}
    assert list(spec.flavor.extra_specs) == sorted(spec.flavor.extra_specs)
    assert list(spec.scheduler_hints) == sorted(spec.scheduler_hints)
    assert DEFAULT_CODEC.encode(spec) == DEFAULT_CODEC.encode(
        RequestSpec.model_validate(spec.model_dump())
    )


def test_sorted_dict_is_a_dict_that_prints_as_one() -> None:
    d: SortedDict[str, int] = SortedDict([("a", 1)])
    d["c"] = 3
    d["b"] = 2
    assert d == {"a": 1, "b": 2, "c": 3}
    assert list(d) == ["a", "b", "c"]
    assert repr(d) == "{'a': 1, 'b': 2, 'c': 3}"
    assert list(pickle.loads(pickle.dumps(d))) == ["a", "b", "c"]
    assert list(copy.deepcopy(d)) == ["a", "b", "c"]
    mixed: SortedDict[Any, int] = SortedDict([("a", 1)])
    mixed[1] = 2  # keys that do not compare keep their order; validation refuses them
    assert list(mixed) == ["a", 1]


def test_the_model_runs_no_post_init() -> None:
    assert RequestSpec.__pydantic_post_init__ is None
    assert RequestSpec.__private_attributes__ == {}


def test_rev_and_newer_minor_fields_survive_copies_and_pickles() -> None:
    spec = typical_spec()
    spec._rev = 4
    spec.newer_minor_fields = ((1, 3), {"x": 1})
    for clone in (copy.copy(spec), copy.deepcopy(spec), spec.model_copy(),
                  spec.model_copy(deep=True), spec.model_copy(update={"project_id": "p"}),
                  pickle.loads(pickle.dumps(spec))):
        assert clone.rev == 4
        assert clone.newer_minor_fields == ((1, 3), {"x": 1})
    assert "_rev" not in spec.__dict__
    fresh = typical_spec()
    assert fresh.rev is None
    assert fresh.newer_minor_fields is None


def test_default_maps_stay_key_sorted_under_in_place_updates() -> None:
    built = typical_spec(UID)
    built.scheduler_hints = {"a": ["1"], "z": ["2"]}
    updated = typical_spec(UID)
    updated.scheduler_hints = {}
    fresh = RequestSpec(instance_uuid=UID, flavor=updated.flavor)
    for spec in (updated, fresh):
        spec.scheduler_hints["z"] = ["2"]
        spec.scheduler_hints["a"] = ["1"]
    assert list(fresh.scheduler_hints) == ["a", "z"]
    assert DEFAULT_CODEC.encode(updated) == DEFAULT_CODEC.encode(built)


# -- the generated payload builder ------------------------------------------------------------


def _same_payload(spec: RequestSpec) -> None:
    """The generated builder gives pydantic's dump of the spec as validation leaves it (what
    was put into its containers in place included: validated, in canonical order)."""
    from specstore.serializers.fast_payload import _DUMP

    validated = RequestSpec.model_validate(persisted_payload(spec))
    fast, reference = _DUMP(spec), persisted_payload(validated)
    assert fast == reference
    assert list(fast) == list(reference)  # the same key order at every level: the same bytes
    assert _packb(fast) == _packb(reference)


@SETTINGS
@given(sts.request_specs)
def test_fast_payload_is_the_pydantic_dump(spec: RequestSpec) -> None:
    _same_payload(spec)


def test_fast_payload_of_the_typical_spec_and_of_its_changes() -> None:
    spec = typical_spec(UID)
    _same_payload(spec)
    assert spec.image is not None and spec.numa_topology is not None
    spec.image.properties["nested"] = {"z": [1, {"b": None, "a": 2.5}], "a": True}
    spec.numa_topology.cells[0].cpuset_reserved = {7, 5}
    spec.numa_topology.cells[0].cpu_pinning = {3: 1, 0: 2}
    spec.flavor.vcpu_weight = None
    spec.flavor.rxtx_factor = 2.0
    spec.image.created_at = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    _same_payload(spec)


def test_fast_payload_copies_what_it_gives() -> None:
    from specstore.serializers.fast_payload import fast_payload

    spec = typical_spec(UID)
    payload = fast_payload(spec)
    payload["flavor"]["extra_specs"]["zzz"] = "1"
    payload["scheduler_hints"]["same_host"].append("x")
    payload["security_groups"].append("x")
    payload["image"]["properties"]["zzz"] = 1
    assert spec == typical_spec(UID)


def test_fast_payload_leaves_unusual_values_to_pydantic() -> None:
    from specstore.model import Flavor
    from specstore.serializers.fast_payload import _DUMP, _UnsupportedError, fast_payload

    class Sub(Flavor):
        pass

    spec = typical_spec(UID)
    object.__setattr__(spec, "flavor", Sub.model_validate(spec.flavor.model_dump()))
    with pytest.raises(_UnsupportedError):
        _DUMP(spec)
    assert fast_payload(spec) == persisted_payload(spec)
    broken = RequestSpec.model_construct(instance_uuid=UID)  # type: ignore[call-arg]  # no flavor
    with pytest.raises(KeyError):
        _DUMP(broken)
    assert fast_payload(broken) == persisted_payload(broken)


def _general_encode(spec: RequestSpec) -> bytes:
    from specstore.serializers.envelope import encode_envelope

    return encode_envelope(DEFAULT_CODEC.schema, DEFAULT_CODEC.current_version,
                           persisted_payload(spec))


@SETTINGS
@given(sts.request_specs)
def test_the_fast_write_gives_the_bytes_of_the_general_one(spec: RequestSpec) -> None:
    assert DEFAULT_CODEC.encode(spec) == _general_encode(spec)


def test_the_fast_write_leaves_datetimes_and_long_documents_to_the_general_one() -> None:
    from specstore.serializers.envelope import fast_write_limit, pack_document
    from specstore.serializers.fast_payload import msgpack_payload

    spec = typical_spec(UID)
    payload = msgpack_payload(spec)
    assert payload is not None
    assert pack_document("RequestSpec", (1, 0), payload, fast_write_limit(DEFAULT_CODEC.limits))
    assert pack_document("RequestSpec", (1, 0), payload, 100) is None  # too long for the limit
    assert spec.image is not None
    spec.image.created_at = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    dated = msgpack_payload(spec)
    assert dated is not None
    assert pack_document("RequestSpec", (1, 0), dated, 1 << 20) is None  # datetimes: reference
    assert DEFAULT_CODEC.encode(spec) == _general_encode(spec)
    assert DEFAULT_CODEC.decode(DEFAULT_CODEC.encode(spec)) == strip_transient(spec)
    spec.image.properties["long"] = "x" * 20_000
    assert DEFAULT_CODEC.encode(spec) == _general_encode(spec)


def test_the_current_reader_reads_only_whole_documents_of_its_version() -> None:
    from specstore.serializers.envelope import CurrentReader, _packb_reference

    reader = CurrentReader("RequestSpec", (1, 0), DEFAULT_CODEC.limits)
    doc = DEFAULT_CODEC.encode(typical_spec(UID))
    payload = reader.payload(doc)
    assert payload == decode_envelope_fast(doc).payload
    for other in (
        doc + b"\xc0",  # trailing bytes
        doc[:-1],  # cut short
        bytearray(doc),  # not bytes
        MAGIC + _packb_reference(["RequestSpec", 1, 1, {}]),  # another version
        MAGIC + _packb_reference(["RequestSpecs", 1, 0, {}]),  # another schema
        MAGIC + _packb_reference(["RequestSpec", 1, 0, [1]]),  # not a map
        MAGIC + _packb_reference(["RequestSpec", 1, 0, {1: 2}]),  # not keyed by names
        MAGIC + _packb_reference(["RequestSpec", 1, 0, {}, 5]),  # five items
    ):
        assert reader.payload(other) is None  # type: ignore[arg-type]
    with pytest.raises(CorruptDocumentError):
        DEFAULT_CODEC.decode(doc + b"\xc0")
