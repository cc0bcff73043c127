"""Property tests: round trips, determinism, and decoding of hostile bytes never raising
anything but the documented errors."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from typing import Any, cast

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specstore.core.keys import normalize_uuid
from specstore.errors import CorruptDocumentError, IncompatibleSchemaError, InvalidUUIDError
from specstore.model import RequestSpec, persisted_payload
from specstore.model.base import SpecModel
from specstore.serializers import DEFAULT_CODEC, MAGIC, json_codec
from specstore.serializers.schemas.request_spec import SCHEMA
from tests import strategies as sts
from tests.factories import typical_spec

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE = settings(max_examples=150, deadline=None)

DOCUMENT_ERRORS = (CorruptDocumentError, IncompatibleSchemaError)


def _decode_or_refuse(data: bytes) -> RequestSpec | None:
    """Decode ``data``; a refusal must be one of the documented errors (anything else fails
    the test). A spec that decodes must re-encode to a document that decodes and re-encodes
    to the same bytes (bytes, not ==: kept unknown fields may hold NaN)."""
    try:
        spec = DEFAULT_CODEC.decode(data)
    except DOCUMENT_ERRORS:
        return None
    assert isinstance(spec, RequestSpec)
    doc = DEFAULT_CODEC.encode(spec)
    again = DEFAULT_CODEC.decode(doc)
    assert DEFAULT_CODEC.encode(again) == doc
    assert (again.newer_minor_fields is None) == (spec.newer_minor_fields is None)
    return spec


def _shuffled_dicts(value: Any, rnd: random.Random) -> Any:
    """``value`` with the insertion order of every dict shuffled (lists keep their order)."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: _shuffled_dicts(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [_shuffled_dicts(v, rnd) for v in value]
    return value


def _all_model_classes() -> set[type[SpecModel]]:
    found: set[type[SpecModel]] = set()
    pending: list[type[SpecModel]] = [SpecModel]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__.startswith("specstore.model") and sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


TRANSIENT = frozenset(
    {
        "retry",
        "requested_destination",
        "requested_resources",
        "ignore_hosts",
        "network_metadata",
        "requested_networks",
        "request_level_params",
    }
)
"""DESIGN.md's per-request fields, written out here rather than taken from the code."""


def _expected_persisted(spec: RequestSpec) -> RequestSpec:
    """What a stored spec should read back as, built from the model alone: every transient
    field at its declared default, the server group without members and hosts."""
    defaults = {
        name: RequestSpec.model_fields[name].get_default(call_default_factory=True)
        for name in TRANSIENT
    }
    expected = spec.model_copy(update=defaults, deep=True)
    if expected.instance_group is not None:
        expected.instance_group = expected.instance_group.model_copy(
            update={"members": [], "hosts": []}
        )
    return expected


def _raw_payload(doc: bytes) -> dict[Any, Any]:
    """A document's payload unpacked with msgpack alone (UUID extension -> UUID)."""

    def ext(code: int, data: bytes) -> Any:
        return uuid.UUID(bytes=data) if code == 1 else msgpack.ExtType(code, data)

    assert doc.startswith(MAGIC)
    schema, _, _, payload = msgpack.unpackb(
        doc[len(MAGIC) :], raw=False, strict_map_key=False, ext_hook=ext, timestamp=3
    )
    assert schema == SCHEMA
    return cast(dict[Any, Any], payload)


def test_strategies_cover_every_model_class() -> None:
    assert set(sts.MODEL_STRATEGIES) == _all_model_classes()


# -- round trips ------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_every_model_part_round_trips_through_its_dump(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(sorted(sts.MODEL_STRATEGIES, key=lambda m: m.__name__)))
    value = data.draw(sts.MODEL_STRATEGIES[model])
    assert type(value) is model
    assert model.model_validate(value.model_dump()) == value
    assert model.model_validate_json(value.model_dump_json()) == value


@SETTINGS
@given(sts.request_specs)
def test_document_round_trip_gives_the_persisted_spec(spec: RequestSpec) -> None:
    doc = DEFAULT_CODEC.encode(spec)
    decoded = DEFAULT_CODEC.decode(doc)
    assert decoded == _expected_persisted(spec)
    assert decoded.newer_minor_fields is None
    assert DEFAULT_CODEC.encode(decoded) == doc
    if spec.image is not None and spec.image.created_at is not None:
        assert decoded.image is not None
        assert decoded.image.created_at == spec.image.created_at
        assert type(decoded.image.created_at) is dt.datetime
    if spec.numa_topology is not None:
        assert decoded.numa_topology is not None
        for got, sent in zip(decoded.numa_topology.cells, spec.numa_topology.cells, strict=True):
            assert type(got.cpuset) is set
            assert got.cpuset == sent.cpuset


@SETTINGS
@given(sts.request_specs)
def test_json_round_trip_gives_the_persisted_spec(spec: RequestSpec) -> None:
    text = json_codec.dumps(spec)
    assert json_codec.loads(text) == _expected_persisted(spec)
    assert json_codec.dumps(json_codec.loads(text)) == text


def _check_only_persisted_fields_stored(spec: RequestSpec) -> None:
    payload = _raw_payload(DEFAULT_CODEC.encode(spec))
    assert not TRANSIENT & set(payload)
    assert not {"members", "hosts"} & set(payload.get("instance_group") or {})
    assert RequestSpec.model_validate(payload) == _expected_persisted(spec)


@SETTINGS
@given(sts.request_specs)
def test_transient_fields_never_reach_the_document(spec: RequestSpec) -> None:
    _check_only_persisted_fields_stored(spec)


def test_transient_field_check_sees_every_transient_field() -> None:
    """The property above is not vacuous: the typical spec holds per-request data."""
    spec = typical_spec("6f3a2c1e-0b9d-4e8f-a7c6-5d4e3f2a1b0c")
    held = {name for name in TRANSIENT if getattr(spec, name)}
    assert held >= {"retry", "requested_destination", "ignore_hosts", "network_metadata"}
    assert spec.instance_group is not None and spec.instance_group.members
    assert _expected_persisted(spec) != spec
    _check_only_persisted_fields_stored(spec)


# -- determinism ------------------------------------------------------------------------------


@SETTINGS
@given(sts.request_specs, st.randoms(use_true_random=False))
def test_encoding_is_deterministic(spec: RequestSpec, rnd: random.Random) -> None:
    doc = DEFAULT_CODEC.encode(spec)
    assert DEFAULT_CODEC.encode(spec) == doc
    rebuilt = RequestSpec.model_validate(_shuffled_dicts(spec.model_dump(), rnd))
    assert rebuilt == spec
    assert DEFAULT_CODEC.encode(rebuilt) == doc
    assert json_codec.dumps(rebuilt) == json_codec.dumps(spec)


# -- hostile input ----------------------------------------------------------------------------


@HOSTILE
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    _decode_or_refuse(data)
    _decode_or_refuse(MAGIC + data)


Mutation = tuple[str, int, int]

mutations: st.SearchStrategy[list[Mutation]] = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate", "set"]),
        st.integers(0, 1 << 16),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(doc: bytes, ops: list[Mutation]) -> bytes:
    data = bytearray(doc)
    for op, where, byte in ops:
        at = where % (len(data) + 1)
        if op == "insert":
            data.insert(at, byte)
        elif not data:
            continue
        elif op == "flip":
            data[at % len(data)] ^= 1 << (byte % 8)
        elif op == "set":
            data[at % len(data)] = byte
        elif op == "delete":
            del data[at % len(data)]
        else:
            del data[at:]
    return bytes(data)


@HOSTILE
@given(mutations)
def test_mutated_typical_document_never_raises_anything_else(ops: list[Mutation]) -> None:
    doc = DEFAULT_CODEC.encode(typical_spec("6f3a2c1e-0b9d-4e8f-a7c6-5d4e3f2a1b0c"))
    mutated = _mutate(doc, ops)
    _decode_or_refuse(mutated)


@SETTINGS
@given(sts.request_specs, mutations)
def test_mutated_arbitrary_document_never_raises_anything_else(
    spec: RequestSpec, ops: list[Mutation]
) -> None:
    _decode_or_refuse(_mutate(DEFAULT_CODEC.encode(spec), ops))


hashable_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
ext_values = st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=20)) | st.builds(
    lambda b: msgpack.ExtType(1, b), st.binary(min_size=14, max_size=18)
)
timestamps = st.builds(msgpack.Timestamp, st.integers(-(2**40), 2**40), st.integers(0, 999_999_999))
hostile_values: st.SearchStrategy[Any] = st.recursive(
    hashable_scalars | ext_values | timestamps,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hashable_scalars, children, max_size=4)
    ),
    max_leaves=12,
)

FIELD_NAMES = sorted(
    {name for model in sts.MODEL_STRATEGIES for name in model.model_fields} | {"boot_priority"}
)
field_maps: st.SearchStrategy[dict[Any, Any]] = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | hashable_scalars,
    hostile_values | st.dictionaries(st.sampled_from(FIELD_NAMES), hostile_values, max_size=5),
    max_size=8,
)
versions = st.tuples(st.integers(0, 3), st.integers(0, 3)) | st.tuples(
    st.integers(-(2**63), 2**64 - 1), st.integers(-(2**63), 2**64 - 1)
)


def _pack(value: Any) -> bytes:
    return MAGIC + cast(bytes, msgpack.packb(value, use_bin_type=True, datetime=True))


@HOSTILE
@given(hostile_values)
def test_hostile_msgpack_bodies_never_raise_anything_else(body: Any) -> None:
    _decode_or_refuse(_pack(body))


@HOSTILE
@given(st.sampled_from([SCHEMA, "", "Other"]) | st.text(max_size=5), versions, field_maps)
def test_hostile_envelopes_never_raise_anything_else(
    schema: str, version: tuple[int, int], payload: dict[Any, Any]
) -> None:
    _decode_or_refuse(_pack([schema, version[0], version[1], payload]))


@HOSTILE
@given(st.sampled_from([(1, 0), (1, 1), (1, 9)]), st.data())
def test_real_payloads_with_hostile_parts_never_raise_anything_else(
    version: tuple[int, int], data: st.DataObject
) -> None:
    payload = persisted_payload(typical_spec("6f3a2c1e-0b9d-4e8f-a7c6-5d4e3f2a1b0c"))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(payload)))
        _replace(payload, path, data.draw(hostile_values | field_maps))
    _decode_or_refuse(_pack([SCHEMA, version[0], version[1], _uuids_as_ext(payload)]))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts/lists."""
    found: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, item in items:
        found.append((*prefix, key))
        found.extend(_paths(item, (*prefix, key)))
    return found


def _replace(root: Any, path: tuple[Any, ...], new: Any) -> None:
    target = root
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new


def _uuids_as_ext(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return msgpack.ExtType(1, value.bytes)
    if isinstance(value, dict):
        return {k: _uuids_as_ext(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_uuids_as_ext(v) for v in value]
    return value


@pytest.mark.parametrize("version", [(1, 1), (1, 5)])
def test_decode_or_refuse_helper_sees_newer_minor_fields(version: tuple[int, int]) -> None:
    """The helper used above really checks re-encoding of kept unknown fields."""
    payload = persisted_payload(typical_spec("6f3a2c1e-0b9d-4e8f-a7c6-5d4e3f2a1b0c"))
    payload["later"] = {"x": [1, 2]}
    spec = _decode_or_refuse(_pack([SCHEMA, version[0], version[1], _uuids_as_ext(payload)]))
    assert spec is not None
    assert spec.newer_minor_fields == (version, {"later": {"x": [1, 2]}})



def _reference_normalize(text: str) -> str | None:
    """What a uuid string normalizes to by the uuid module alone: the hyphenated form when
    the text is that form in any letter case, else None (refused)."""
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        return None
    return canonical if len(text) == 36 and text.lower() == canonical else None


def _check_normalize(candidate: str) -> None:
    """normalize_uuid gives what the uuid module says, or refuses what it refuses."""
    expected = _reference_normalize(candidate)
    if expected is None:
        with pytest.raises(InvalidUUIDError):
            normalize_uuid(candidate)
    else:
        assert normalize_uuid(candidate) == expected


_UUID_EDITS = st.lists(
    st.tuples(st.booleans(), st.integers(0, 36), st.sampled_from("0aAfF9-{}gG: ")), max_size=3
)
"""(insert or replace, where, which character): near misses of a canonical uuid."""


@given(st.uuids(), _UUID_EDITS, st.booleans())
def test_normalize_uuid_agrees_with_the_uuid_module(
    value: uuid.UUID, edits: list[tuple[bool, int, str]], upper: bool
) -> None:
    text = list(str(value).upper() if upper else str(value))
    for insert, position, char in edits:
        if insert:
            text.insert(position, char)
        else:
            text[min(position, len(text) - 1)] = char
    _check_normalize("".join(text))


def test_normalize_uuid_refuses_every_one_character_miss() -> None:
    """Every one-character replacement or insertion, against the uuid module."""
    canonical = str(uuid.UUID(int=0x0123456789ABCDEF0123456789ABCDEF))
    for position in range(len(canonical) + 1):
        for char in "0aAfF9-{}gG: \u0660":
            for candidate in (
                canonical[:position] + char + canonical[position + 1 :],
                canonical[:position] + char + canonical[position:],
            ):
                _check_normalize(candidate)


@given(st.lists(st.integers(0, 253402300799_999_999_999), min_size=1, max_size=5))
def test_utc_now_writes_what_datetime_writes(moments: list[int]) -> None:
    """The store's clock against datetime's own ISO text, for any instants (nanoseconds since
    the epoch, up to the year 9999), read one after the other (its cache of the second)."""
    from specstore.core import operations

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    for nanos in moments:
        expected = (epoch + dt.timedelta(microseconds=nanos // 1000)).isoformat(
            timespec="microseconds"
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(time, "time_ns", lambda nanos=nanos: nanos)
            assert operations.utc_now() == expected


def test_normalize_uuid_asks_nothing_of_a_str_subclass() -> None:
    """A str subclass whose methods lie (``lower``, ``replace``, ``strip``) is read as the text
    it holds."""

    class Lying(str):
        def lower(self) -> str:
            return str(uuid.UUID(int=1))

        def replace(self, *args: object, **kwargs: object) -> str:
            return "0" * 32

        def strip(self, *args: object) -> str:
            return "0" * 32

    with pytest.raises(InvalidUUIDError):
        normalize_uuid(Lying("x" * 36))
    canonical = str(uuid.UUID(int=5))
    assert normalize_uuid(Lying(canonical.upper())) == canonical
    assert type(normalize_uuid(Lying(canonical))) is str
