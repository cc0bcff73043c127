"""The RequestSpec model: validation messages and the persistence policy."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from specstore.model import (
    PERSISTED_FIELDS,
    TRANSIENT_FIELDS,
    TRANSIENT_GROUP_FIELDS,
    Destination,
    Flavor,
    ImageMeta,
    InstanceGroup,
    InstanceNUMACell,
    NetworkMetadata,
    RequestedNetwork,
    RequestGroup,
    RequestLevelParams,
    RequestSpec,
    SchedulerLimits,
    SchedulerRetries,
    keep_transient,
    persisted_payload,
    strip_transient,
)
from specstore.model.base import MAX_FREEFORM_DEPTH
from specstore.serializers import DEFAULT_CODEC
from specstore.serializers.envelope import encode_envelope
from specstore.serializers.schemas.request_spec import SCHEMA
from tests.factories import flavor, typical_spec

UID = uuid.UUID("11111111-2222-4333-8444-555555555555")
GROUP_UID = uuid.UUID("008a05a6-c464-7159-c324-c9859b810e76")


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple[int | str, ...], str]]:
    """(location, message) of every error of a ValidationError."""
    return [(e["loc"], e["msg"]) for e in exc.value.errors(include_url=False)]


def _minimal(**fields: Any) -> RequestSpec:
    data: dict[str, Any] = {
        "instance_uuid": UID,
        "flavor": {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1},
    }
    data.update(fields)
    return RequestSpec.model_validate(data)


def _nested_dicts(levels: int, leaf: Any) -> Any:
    """``levels`` dicts nested in each other, the innermost holding ``leaf`` under "k"."""
    value: Any = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


def _nested_empty_dicts(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def _all_transient_set(spec: RequestSpec) -> RequestSpec:
    """``spec`` with every transient field (and the group's members/hosts) set."""
    spec.ignore_hosts = ["cmp-9"]
    spec.requested_destination = Destination(host="cmp-2", node="node-2")
    spec.retry = SchedulerRetries(num_attempts=2)
    spec.network_metadata = NetworkMetadata(physnets={"physnet1"}, tunneled=True)
    spec.requested_resources = [RequestGroup(requester_id="port-1", resources={"VGPU": 1})]
    spec.request_level_params = RequestLevelParams(root_required={"HW_CPU_X86_AVX2"})
    spec.requested_networks = [RequestedNetwork(network_id="net-1", port_id=UID)]
    return spec


# -- validation -------------------------------------------------------------------------------


def test_instance_uuid_string_is_parsed() -> None:
    spec = _minimal(instance_uuid="11111111-2222-4333-8444-555555555555")
    assert spec.instance_uuid == UID
    assert isinstance(spec.instance_uuid, uuid.UUID)


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-uuid",
        "",
        "11111111-2222-4333-8444-55555555555",
        "11111111-2222-4333-8444-5555555555555",
        "zzzzzzzz-2222-4333-8444-555555555555",
        12345,
    ],
)
def test_malformed_instance_uuid_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as exc:
        _minimal(instance_uuid=bad)
    errors = _errors(exc)
    assert len(errors) == 1
    loc, msg = errors[0]
    assert loc == ("instance_uuid",)
    assert "UUID" in msg


def test_missing_instance_uuid_and_flavor_are_reported() -> None:
    with pytest.raises(ValidationError) as exc:
        RequestSpec.model_validate({})
    assert sorted(loc for loc, _ in _errors(exc)) == [("flavor",), ("instance_uuid",)]
    assert {msg for _, msg in _errors(exc)} == {"Field required"}


@pytest.mark.parametrize("memory_mb", [0, -1, -8192])
def test_non_positive_memory_mb_is_refused(memory_mb: int) -> None:
    with pytest.raises(ValidationError) as exc:
        _minimal(flavor={"flavorid": "1", "name": "tiny", "memory_mb": memory_mb, "vcpus": 1})
    assert _errors(exc) == [(("flavor", "memory_mb"), "Input should be greater than or equal to 1")]


def test_memory_mb_and_vcpus_come_from_the_flavor() -> None:
    spec = typical_spec(UID)
    assert (spec.memory_mb, spec.vcpus) == (8192, 4)


def test_assignment_is_validated() -> None:
    spec = typical_spec(UID)
    with pytest.raises(ValidationError) as exc:
        spec.flavor.memory_mb = 0
    assert _errors(exc) == [(("memory_mb",), "Input should be greater than or equal to 1")]
    assert spec.flavor.memory_mb == 8192


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        _minimal(boot_priority=3)
    assert _errors(exc) == [(("boot_priority",), "Extra inputs are not permitted")]


@pytest.mark.parametrize("policy", ["spread", "Affinity", "", "anti_affinity"])
def test_unknown_server_group_policy_is_refused(policy: str) -> None:
    with pytest.raises(ValidationError) as exc:
        InstanceGroup(uuid=GROUP_UID, policy=policy)
    [(loc, msg)] = _errors(exc)
    assert loc == ("policy",)
    assert msg == (
        "Input should be 'affinity', 'anti-affinity', 'soft-affinity' or 'soft-anti-affinity'"
    )


@pytest.mark.parametrize(
    "policy", ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
)
def test_known_server_group_policies_are_accepted(policy: str) -> None:
    group = InstanceGroup(uuid=GROUP_UID, policy=policy)
    assert group.policy == policy


def test_unknown_group_rule_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as exc:
        InstanceGroup(
            uuid=GROUP_UID,
            policy="anti-affinity",
            rules={"zeta": "1", "max_server_per_host": "2", "alpha": "x"},
        )
    [(loc, msg)] = _errors(exc)
    assert loc == ("rules",)
    assert msg == "Value error, unknown server group rule(s): alpha, zeta"


@pytest.mark.parametrize("limit", ["0", "-1", "two", "", "1.5", " 2", "2 ", "+3", "0x10"])
def test_bad_max_server_per_host_is_refused(limit: str) -> None:
    with pytest.raises(ValidationError) as exc:
        InstanceGroup(uuid=GROUP_UID, policy="anti-affinity", rules={"max_server_per_host": limit})
    [(loc, msg)] = _errors(exc)
    assert loc == ("rules",)
    assert msg == f"Value error, max_server_per_host must be a positive integer, got {limit!r}"


@pytest.mark.parametrize("limit", ["\u00b2", "\u2460"])
def test_max_server_per_host_with_non_ascii_digits_gets_the_clear_message(limit: str) -> None:
    """BUG: ``str.isdigit`` accepts superscripts/circled digits, then ``int()`` fails on them
    and the user sees "invalid literal for int()" instead of the rule's message."""
    with pytest.raises(ValidationError) as exc:
        InstanceGroup(uuid=GROUP_UID, policy="anti-affinity", rules={"max_server_per_host": limit})
    [(loc, msg)] = _errors(exc)
    assert loc == ("rules",)
    assert msg == f"Value error, max_server_per_host must be a positive integer, got {limit!r}"


@pytest.mark.parametrize("limit", ["1", "2", "10", "250"])
def test_good_max_server_per_host_is_kept(limit: str) -> None:
    group = InstanceGroup(
        uuid=GROUP_UID, policy="anti-affinity", rules={"max_server_per_host": limit}
    )
    assert group.rules == {"max_server_per_host": limit}


def test_image_properties_within_the_depth_limit_are_accepted() -> None:
    value = _nested_dicts(MAX_FREEFORM_DEPTH - 1, "leaf")
    image = ImageMeta(properties=value)
    assert image.properties == value


@pytest.mark.parametrize("levels", [MAX_FREEFORM_DEPTH + 1, MAX_FREEFORM_DEPTH + 5, 100])
def test_image_properties_deeper_than_the_limit_are_refused(levels: int) -> None:
    with pytest.raises(ValidationError) as exc:
        ImageMeta(properties=_nested_dicts(levels, "leaf"))
    [(loc, msg)] = _errors(exc)
    assert loc == ("properties",)
    assert msg == f"Value error, nested deeper than {MAX_FREEFORM_DEPTH} levels"


def test_deep_lists_in_image_properties_are_refused_too() -> None:
    value: Any = "leaf"
    for _ in range(MAX_FREEFORM_DEPTH + 1):
        value = [value]
    with pytest.raises(ValidationError) as exc:
        ImageMeta(properties={"k": value})
    assert _errors(exc) == [
        (("properties",), f"Value error, nested deeper than {MAX_FREEFORM_DEPTH} levels")
    ]


def test_scheduler_limits_numa_topology_has_the_same_depth_limit() -> None:
    with pytest.raises(ValidationError) as exc:
        SchedulerLimits(numa_topology=_nested_dicts(MAX_FREEFORM_DEPTH + 1, 1))
    assert _errors(exc) == [
        (("numa_topology",), f"Value error, nested deeper than {MAX_FREEFORM_DEPTH} levels")
    ]


def test_freeform_depth_counts_containers_not_scalars() -> None:
    """BUG (off by one): 16 nested empty dicts are accepted, but 16 nested dicts whose
    innermost holds a scalar are refused as "nested deeper than 16 levels" -- the scalar is
    counted as a nesting level. Both structures are 16 levels deep."""
    assert ImageMeta(properties=_nested_empty_dicts(MAX_FREEFORM_DEPTH)).properties
    value = _nested_dicts(MAX_FREEFORM_DEPTH, 1)
    assert ImageMeta(properties=value).properties == value


def test_image_properties_are_key_sorted_at_every_depth() -> None:
    image = ImageMeta(properties={"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": None})
    assert list(image.properties) == ["a", "b"]
    inner = image.properties["b"]
    assert isinstance(inner, dict)
    assert list(inner) == ["a", "z"]
    assert inner["a"] == [{"x": 3, "y": 2}]
    listed = inner["a"]
    assert isinstance(listed, list)
    assert isinstance(listed[0], dict)
    assert list(listed[0]) == ["x", "y"]


def test_image_properties_refuse_non_json_values() -> None:
    with pytest.raises(ValidationError) as exc:
        ImageMeta(properties={"k": {1, 2}})
    assert all(loc[0] == "properties" for loc, _ in _errors(exc))


def test_string_maps_are_kept_key_sorted() -> None:
    f = Flavor(
        flavorid="1", name="f", memory_mb=1, vcpus=1, extra_specs={"z": "1", "a": "2", "m": "3"}
    )
    assert list(f.extra_specs) == ["a", "m", "z"]
    cell = InstanceNUMACell(id=0, memory=1, cpu_pinning={3: 1, 0: 2, 1: 0})
    assert list(cell.cpu_pinning) == [0, 1, 3]


def test_sets_dump_as_sorted_lists() -> None:
    cell = InstanceNUMACell(id=0, memory=1, cpuset={9, 2, 5}, pcpuset=set())
    dumped = cell.model_dump()
    assert dumped["cpuset"] == [2, 5, 9]
    assert dumped["pcpuset"] == []
    assert cell.cpuset == {2, 5, 9}
    assert NetworkMetadata(physnets={"b", "a"}).model_dump()["physnets"] == ["a", "b"]


def test_bare_scheduler_hint_becomes_one_element_list() -> None:
    spec = _minimal(scheduler_hints={"group": "g-1", "same_host": ["a", "b"], "query": []})
    assert spec.scheduler_hints == {"group": ["g-1"], "query": [], "same_host": ["a", "b"]}
    assert list(spec.scheduler_hints) == ["group", "query", "same_host"]
    assert spec.get_scheduler_hint("group") == "g-1"
    assert spec.get_scheduler_hint("same_host") == ["a", "b"]
    assert spec.get_scheduler_hint("missing", "dflt") == "dflt"


def test_bare_scheduler_hint_on_assignment_becomes_one_element_list() -> None:
    spec = _minimal()
    spec.scheduler_hints = {"z": "1", "a": "2"}  # type: ignore[dict-item]
    assert spec.scheduler_hints == {"a": ["2"], "z": ["1"]}
    assert list(spec.scheduler_hints) == ["a", "z"]


def test_non_string_scheduler_hint_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        _minimal(scheduler_hints={"group": 5})
    assert [loc for loc, _ in _errors(exc)] == [("scheduler_hints", "group", 0)]


# -- persistence policy -----------------------------------------------------------------------


def test_transient_and_persisted_fields_partition_the_model() -> None:
    assert set(PERSISTED_FIELDS) | TRANSIENT_FIELDS == set(RequestSpec.model_fields)
    assert not set(PERSISTED_FIELDS) & TRANSIENT_FIELDS
    assert {
        "retry",
        "requested_destination",
        "requested_resources",
        "ignore_hosts",
        "network_metadata",
        "requested_networks",
        "request_level_params",
    } == TRANSIENT_FIELDS
    assert {"members", "hosts"} == TRANSIENT_GROUP_FIELDS


def test_persisted_payload_strips_every_transient_field_and_group_members() -> None:
    spec = _all_transient_set(typical_spec(UID))
    for name in TRANSIENT_FIELDS:  # the fixture really sets them all
        assert getattr(spec, name) != RequestSpec.model_fields[name].get_default(
            call_default_factory=True
        ), name
    assert spec.instance_group is not None
    assert spec.instance_group.members
    assert spec.instance_group.hosts

    payload = persisted_payload(spec)

    assert not set(payload) & TRANSIENT_FIELDS
    assert payload["instance_group"] == {
        "uuid": GROUP_UID,
        "policy": "anti-affinity",
        "name": "web-tier",
        "rules": {"max_server_per_host": "2"},
    }
    # the spec itself keeps its transient data
    assert spec.retry == SchedulerRetries(num_attempts=2)
    assert spec.instance_group.hosts == ["cmp-1"]


def test_persisted_payload_keeps_persisted_values_and_omits_defaults() -> None:
    payload = persisted_payload(typical_spec(UID))
    assert list(payload) == [
        "instance_uuid",
        "flavor",
        "project_id",
        "user_id",
        "availability_zone",
        "image",
        "numa_topology",
        "pci_requests",
        "limits",
        "instance_group",
        "scheduler_hints",
        "security_groups",
    ]
    assert payload["instance_uuid"] == UID
    assert payload["flavor"]["memory_mb"] == 8192
    assert "ephemeral_gb" not in payload["flavor"]  # 0 is the default
    assert payload["numa_topology"]["cells"][0]["pcpuset"] == [0, 1]
    assert payload["scheduler_hints"]["same_host"] == ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"]


def test_persisted_payload_of_a_minimal_spec() -> None:
    assert persisted_payload(_minimal()) == {
        "instance_uuid": UID,
        "flavor": {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1},
    }


def test_persisted_payload_keeps_non_default_values_of_defaulted_fields() -> None:
    payload = persisted_payload(_minimal(num_instances=3, is_bfv=True, security_groups=["sg"]))
    assert payload["num_instances"] == 3
    assert payload["is_bfv"] is True
    assert payload["security_groups"] == ["sg"]


def test_strip_transient_resets_transient_fields_and_keeps_the_rest() -> None:
    spec = _all_transient_set(typical_spec(UID))
    before = copy.deepcopy(spec)

    stripped = strip_transient(spec)

    for name in TRANSIENT_FIELDS:
        assert getattr(stripped, name) == RequestSpec.model_fields[name].get_default(
            call_default_factory=True
        ), name
    assert stripped.instance_group is not None
    assert stripped.instance_group.members == []
    assert stripped.instance_group.hosts == []
    assert stripped.instance_group.rules == {"max_server_per_host": "2"}
    for name in PERSISTED_FIELDS:
        if name != "instance_group":
            assert getattr(stripped, name) == getattr(spec, name), name
    assert stripped != spec
    assert spec == before  # the original is untouched
    assert strip_transient(stripped) == stripped


def test_strip_transient_keeps_the_spec_class() -> None:
    """BUG: strip_transient validates with the base RequestSpec, so a subclass (a newer
    schema's model, as DocumentCodec(model=...) allows) loses its class and its fields --
    with a non-default value for the subclass field it even raises ValidationError."""

    class RequestSpecV11(RequestSpec):
        boot_priority: int = 0

    spec = RequestSpecV11(instance_uuid=UID, flavor=flavor(), boot_priority=7, ignore_hosts=["x"])
    stripped = strip_transient(spec)
    assert type(stripped) is RequestSpecV11
    assert stripped.boot_priority == 7
    assert stripped.ignore_hosts is None


def test_strip_transient_keeps_fields_of_a_newer_minor_version() -> None:
    """BUG: strip_transient drops ``newer_minor_fields`` (they are persisted data), so
    encoding the stripped copy silently loses what a newer writer stored."""
    payload = persisted_payload(typical_spec(UID))
    payload["boot_priority"] = 7
    doc = encode_envelope(SCHEMA, (1, 1), payload)
    spec = DEFAULT_CODEC.decode(doc)
    assert spec.newer_minor_fields == ((1, 1), {"boot_priority": 7})

    stripped = strip_transient(spec)
    assert stripped.newer_minor_fields == ((1, 1), {"boot_priority": 7})
    assert DEFAULT_CODEC.encode(stripped) == doc


def test_keep_transient_keeps_in_memory_transient_values() -> None:
    current = _all_transient_set(typical_spec(UID))
    stored = typical_spec(UID)
    stored.availability_zone = "az-stored"
    stored.flavor = flavor("m1.xlarge", memory_mb=16384, vcpus=8)
    loaded = DEFAULT_CODEC.decode(DEFAULT_CODEC.encode(stored))
    assert loaded.retry is None  # the stored copy holds no transient data
    assert loaded.instance_group is not None
    assert loaded.instance_group.members == []
    current_before = copy.deepcopy(current)

    merged = keep_transient(loaded, current)

    for name in TRANSIENT_FIELDS:
        assert getattr(merged, name) == getattr(current, name), name
    assert merged.retry == SchedulerRetries(num_attempts=2)
    assert merged.requested_destination == Destination(host="cmp-2", node="node-2")
    assert merged.instance_group is not None
    assert merged.instance_group.members == [str(UID)]
    assert merged.instance_group.hosts == ["cmp-1"]
    # persisted fields come from the stored copy
    assert merged.availability_zone == "az-stored"
    assert merged.flavor.name == "m1.xlarge"
    assert merged.memory_mb == 16384
    assert current == current_before
    assert loaded.retry is None


def test_keep_transient_without_a_current_group_keeps_the_loaded_group() -> None:
    current = _all_transient_set(_minimal())
    loaded = DEFAULT_CODEC.decode(DEFAULT_CODEC.encode(typical_spec(UID)))
    merged = keep_transient(loaded, current)
    assert merged.instance_group == loaded.instance_group
    assert merged.ignore_hosts == ["cmp-9"]
    assert merged.flavor == loaded.flavor


def test_keep_transient_keeps_the_loaded_newer_minor_fields() -> None:
    payload = persisted_payload(typical_spec(UID))
    payload["boot_priority"] = 7
    doc = encode_envelope(SCHEMA, (1, 1), payload)
    loaded = DEFAULT_CODEC.decode(doc)
    merged = keep_transient(loaded, _all_transient_set(typical_spec(UID)))
    assert merged.newer_minor_fields == ((1, 1), {"boot_priority": 7})
    assert merged.retry == SchedulerRetries(num_attempts=2)
    assert DEFAULT_CODEC.encode(merged) == doc
