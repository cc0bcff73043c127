"""RequestSpec <-> Nova versioned-object primitives, checked against Nova-shaped fixtures."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from specstore.errors import NovaPrimitiveError
from specstore.model import (
    ComputeNodeRef,
    Destination,
    ImageMeta,
    RequestedNetwork,
    RequestLevelParams,
    RequestSpec,
    SchedulerRetries,
)
from specstore.serializers.nova import from_nova_primitive, to_nova_primitive
from tests.factories import typical_spec

FIXTURES = Path(__file__).parent / "fixtures" / "nova"
JSON_FIXTURES = sorted(FIXTURES.glob("request_spec_*.json"))
TABLE = FIXTURES / "request_specs_table.tsv"
FIXTURE_VERSIONS = ("1.5", "1.8", "1.10", "1.11", "1.12", "1.14", "1.15")
SEEDS = (1, 2, 3, 4)

ADDED_IN = {
    "requested_destination": 6,
    "security_groups": 8,
    "user_id": 9,
    "network_metadata": 10,
    "is_bfv": 11,
    "requested_resources": 12,
    "request_level_params": 13,
    "requested_networks": 14,
}
"""RequestSpec fields Nova added after 1.5, by the minor version that added them."""

CHANGES = "nova_object.changes"
DATA = "nova_object.data"


# --- helpers -------------------------------------------------------------------------------


def load_fixture(version: str, seed: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (FIXTURES / f"request_spec_{version}_seed{seed}.json").read_text()
    )
    return data


def table_rows() -> list[tuple[str, dict[str, Any]]]:
    lines = TABLE.read_text().splitlines()
    assert lines[0] == "instance_uuid\tspec"
    rows = []
    for line in lines[1:]:
        instance_uuid, spec = line.split("\t", 1)
        rows.append((instance_uuid, json.loads(spec)))
    return rows


def canonical(value: Any) -> Any:
    """``value`` with every nova_object.changes list sorted (its order carries no meaning)."""
    if isinstance(value, dict):
        return {k: sorted(v) if k == CHANGES else canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def assert_same_primitive(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert canonical(actual) == canonical(expected)
    # == holds for 1 == 1.0 == True; the JSON text does not.
    assert json.dumps(canonical(actual), sort_keys=True) == json.dumps(
        canonical(expected), sort_keys=True
    )


def nova_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every nova_object primitive nested in ``value`` (including ``value`` itself)."""
    if isinstance(value, dict):
        if "nova_object.name" in value:
            yield value
        for item in value.values():
            yield from nova_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from nova_objects(item)


def data_of(primitive: dict[str, Any], *path: str) -> Any:
    """The value under nested ``nova_object.data`` keys."""
    value: Any = primitive
    for key in path:
        value = value[DATA][key]
    return value


def full_spec() -> RequestSpec:
    """A Python-built spec with every RequestSpec field set, transient ones included."""
    spec = typical_spec(uuid.UUID("b0b5d0b5-3c1e-4c86-9d7e-6a1c4e3f2a10"))
    return spec.model_copy(
        update={
            "request_level_params": RequestLevelParams(
                root_required={"HW_CPU_X86_AVX2"}, same_subtree=[["a", "b"]]
            ),
            "requested_networks": [
                RequestedNetwork(
                    network_id="net-1", port_id=uuid.UUID(int=7), address="10.0.0.5", tag="t"
                )
            ],
            "retry": SchedulerRetries(
                num_attempts=2,
                hosts=[ComputeNodeRef(host="cmp-3", hypervisor_hostname="cmp-3.example")],
            ),
        }
    )


# --- the fixtures --------------------------------------------------------------------------


def test_fixture_set_is_complete() -> None:
    assert len(JSON_FIXTURES) == len(FIXTURE_VERSIONS) * len(SEEDS)
    found = {json.loads(p.read_text())["nova_object.version"] for p in JSON_FIXTURES}
    assert found == set(FIXTURE_VERSIONS)
    assert len(table_rows()) == 20


@pytest.mark.parametrize("path", JSON_FIXTURES, ids=lambda p: p.stem)
def test_fixture_imports(path: Path) -> None:
    primitive = json.loads(path.read_text())
    spec = from_nova_primitive(primitive)
    assert str(spec.instance_uuid) == data_of(primitive, "instance_uuid")
    assert spec.flavor.flavorid == data_of(primitive, "flavor", "flavorid")
    assert spec.flavor.memory_mb == data_of(primitive, "flavor", "memory_mb")
    assert spec.image is not None
    assert str(spec.image.id) == data_of(primitive, "image", "id")
    assert spec.project_id == data_of(primitive, "project_id")


@pytest.mark.parametrize("path", JSON_FIXTURES, ids=lambda p: p.stem)
def test_fixture_round_trips_at_its_version(path: Path) -> None:
    primitive = json.loads(path.read_text())
    version = primitive["nova_object.version"]
    exported = to_nova_primitive(from_nova_primitive(primitive), version=version)
    assert exported["nova_object.version"] == version
    assert_same_primitive(exported, primitive)


@pytest.mark.parametrize("index", range(20))
def test_table_row_imports_and_round_trips(index: int) -> None:
    instance_uuid, primitive = table_rows()[index]
    spec = from_nova_primitive(primitive)
    assert spec.instance_uuid == uuid.UUID(instance_uuid)
    assert str(spec.instance_uuid) == instance_uuid
    assert_same_primitive(to_nova_primitive(spec, version="1.15"), primitive)


def test_values_of_a_full_fixture() -> None:
    spec = from_nova_primitive(load_fixture("1.15", 1))
    assert spec.instance_uuid == uuid.UUID("18072e8c-35bf-992d-c9e9-c616612e7696")
    assert (spec.user_id, spec.availability_zone, spec.num_instances) == ("user-1", "az2", 1)
    assert spec.flavor.extra_specs == {"quota:disk_read_bytes_sec": "10240"}
    assert spec.flavor.rxtx_factor == 1.0
    assert spec.image is not None
    assert spec.image.properties == {
        "hw_cpu_cores": 2,
        "hw_disk_bus": "scsi",
        "hw_scsi_model": "virtio-scsi",
        "os_type": "linux",
    }
    group = spec.instance_group
    assert group is not None
    assert group.policy == "soft-anti-affinity"
    assert group.rules == {"max_server_per_host": "3"}
    assert group.hosts == ["h1", "h2"]
    assert group.members == [
        "cd447e35-b8b6-d8fe-442e-3d437204e52d",
        "1a2b8f1f-f1fd-42a2-9755-d4c13a902931",
    ]
    assert spec.numa_topology is not None
    assert [c.pcpuset for c in spec.numa_topology.cells] == [{0, 1}, {2, 3}]
    assert [c.cpu_pinning for c in spec.numa_topology.cells] == [{}, {}]
    assert spec.pci_requests is not None
    (pci,) = spec.pci_requests.requests
    assert pci.request_id == uuid.UUID("05b6e6e3-07d4-bedc-5143-1193e6c3f339")
    assert pci.spec == [{"product_id": "1520", "vendor_id": "8086"}]
    assert spec.limits is not None
    assert (spec.limits.vcpu, spec.limits.memory_mb, spec.limits.disk_gb) == (16, 65536, 400)
    assert spec.retry == SchedulerRetries(num_attempts=2, hosts=[])
    assert spec.requested_destination is not None
    assert spec.requested_destination.host == "cmp-1"
    assert spec.requested_destination.aggregates == ["agg-1,agg-2"]
    assert spec.requested_destination.cell is None
    assert spec.network_metadata is not None
    assert spec.network_metadata.physnets == {"physnet1"}
    assert spec.network_metadata.tunneled is True
    (group_request,) = spec.requested_resources
    assert group_request.resources == {"VGPU": 1}
    assert group_request.required_traits == {"CUSTOM_X"}
    assert spec.request_level_params == RequestLevelParams(root_required={"HW_CPU_X86_AVX2"})
    assert spec.security_groups == []
    assert spec.is_bfv is False
    assert spec.get_scheduler_hint("same_host") == "6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"


def test_persisted_form_keeps_null_apart_from_absent() -> None:
    """Nova nulls the per-request fields it had set before persisting; unset ones stay absent."""
    rows = [primitive for _, primitive in table_rows()]
    with_group = next(p for p in rows if data_of(p, "instance_group") is not None)
    without_group = next(p for p in rows if data_of(p, "instance_group") is None)
    assert "requested_destination" in with_group[DATA]
    assert data_of(with_group, "requested_destination") is None
    assert "requested_destination" not in without_group[DATA]

    spec = from_nova_primitive(with_group)
    assert spec.requested_destination is None
    assert spec.requested_resources == []
    assert spec.instance_group is not None
    assert (spec.instance_group.members, spec.instance_group.hosts) == ([], [])
    out = to_nova_primitive(spec)
    assert out[DATA]["requested_destination"] is None
    assert out[DATA]["requested_resources"] is None
    assert data_of(out, "instance_group", "members") is None
    assert data_of(out, "instance_group", "hosts") is None

    out = to_nova_primitive(from_nova_primitive(without_group))
    assert "requested_destination" not in out[DATA]
    assert "requested_resources" not in out[DATA]
    assert "network_metadata" not in out[DATA]


# --- down-level export ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("version", FIXTURE_VERSIONS)
def test_latest_fixture_exported_down_level_matches_that_version(seed: int, version: str) -> None:
    spec = from_nova_primitive(load_fixture("1.15", seed))
    assert_same_primitive(to_nova_primitive(spec, version=version), load_fixture(version, seed))


def test_export_at_1_5_lacks_the_newer_fields() -> None:
    spec = from_nova_primitive(load_fixture("1.15", 1))
    out = to_nova_primitive(spec, version="1.5")
    assert out["nova_object.version"] == "1.5"
    for name in ADDED_IN:
        assert name not in out[DATA], name
        assert name not in out[CHANGES], name
    assert out[DATA]["flavor"]["nova_object.version"] == "1.2"
    assert data_of(out, "instance_group", "policy") == "soft-anti-affinity"
    assert "user_id" in to_nova_primitive(spec, version="1.9")[DATA]


@pytest.mark.parametrize("minor", range(16))
def test_fields_by_target_version(minor: int) -> None:
    out = to_nova_primitive(full_spec(), version=f"1.{minor}")
    assert out["nova_object.version"] == f"1.{minor}"
    carried = {name for name, since in ADDED_IN.items() if since <= minor}
    assert {name for name in ADDED_IN if name in out[DATA]} == carried
    assert {"instance_uuid", "flavor", "image", "scheduler_hints"} <= set(out[DATA])


@pytest.mark.parametrize("version", ["2.0", "0.9", "1.16", "1", "one", "", "1.x"])
def test_export_refuses_versions_it_cannot_write(version: str) -> None:
    with pytest.raises(NovaPrimitiveError):
        to_nova_primitive(full_spec(), version=version)


# --- Python-built specs --------------------------------------------------------------------


def test_python_built_spec_round_trips() -> None:
    spec = full_spec()
    out = to_nova_primitive(spec)
    back = from_nova_primitive(json.loads(json.dumps(out)))
    assert back.model_dump() == spec.model_dump()
    versions = {o["nova_object.name"]: o["nova_object.version"] for o in nova_objects(out)}
    # objects the fixtures never show: the versions of current Nova
    assert versions["NetworkRequestList"] == "1.1"
    assert versions["NetworkRequest"] == "1.3"
    assert versions["ComputeNode"] == "1.19"
    assert versions["SecurityGroup"] == "1.2"
    (network,) = data_of(out, "requested_networks", "objects")
    assert network[DATA]["port_id"] == str(uuid.UUID(int=7))
    (node,) = data_of(out, "retry", "hosts", "objects")
    assert node[DATA] == {"host": "cmp-3", "hypervisor_hostname": "cmp-3.example"}
    (group,) = data_of(out, "security_groups", "objects")
    assert group[DATA] == {"name": "default"}
    assert data_of(out, "numa_topology", "instance_uuid") == str(spec.instance_uuid)
    assert data_of(out, "pci_requests", "instance_uuid") == str(spec.instance_uuid)


def test_every_exported_object_lists_its_data_keys_as_changes() -> None:
    out = to_nova_primitive(full_spec())
    objects = list(nova_objects(out))
    assert len(objects) > 15
    for obj in objects:
        assert obj["nova_object.namespace"] == "nova"
        if obj["nova_object.name"] == "SecurityGroupList":
            assert CHANGES not in obj
        else:
            assert sorted(obj[CHANGES]) == sorted(obj[DATA]), obj["nova_object.name"]


@pytest.mark.parametrize(
    ("cell", "key"),
    [("cell1", "name"), ("9b6a8f0e-4b7c-4a53-8d36-5c1a3f0c7e21", "uuid")],
)
def test_destination_cell_is_a_cell_mapping(cell: str, key: str) -> None:
    spec = full_spec().model_copy(update={"requested_destination": Destination(cell=cell)})
    out = to_nova_primitive(spec)
    mapping = data_of(out, "requested_destination", "cell")
    assert (mapping["nova_object.name"], mapping["nova_object.version"]) == ("CellMapping", "1.1")
    assert mapping[DATA] == {key: cell}
    assert "host" not in data_of(out, "requested_destination")[DATA]
    back = from_nova_primitive(out)
    assert back.requested_destination is not None
    assert back.requested_destination.cell == cell


def test_image_dates_round_trip_in_utc() -> None:
    spec = full_spec()
    assert spec.image is not None
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    image = ImageMeta.model_validate({**spec.image.model_dump(), "created_at": created})
    out = to_nova_primitive(spec.model_copy(update={"image": image}))
    assert data_of(out, "image", "created_at") == "2024-05-06T07:08:09.123456Z"
    assert "updated_at" not in data_of(out, "image")[DATA]
    back = from_nova_primitive(out)
    assert back.image is not None
    assert back.image.created_at == created


def test_legacy_policies_list_is_read() -> None:
    primitive = load_fixture("1.15", 1)
    group = primitive[DATA]["instance_group"][DATA]
    del group["policy"]
    group["policies"] = ["anti-affinity"]
    spec = from_nova_primitive(primitive)
    assert spec.instance_group is not None
    assert spec.instance_group.policy == "anti-affinity"
    out = to_nova_primitive(spec)
    assert data_of(out, "instance_group", "policy") == "anti-affinity"
    assert "policies" not in data_of(out, "instance_group")[DATA]


def test_policy_wins_over_legacy_policies() -> None:
    primitive = load_fixture("1.15", 1)
    primitive[DATA]["instance_group"][DATA]["policies"] = ["affinity"]
    spec = from_nova_primitive(primitive)
    assert spec.instance_group is not None
    assert spec.instance_group.policy == "soft-anti-affinity"


# --- errors --------------------------------------------------------------------------------


def mutated(edit: Any) -> dict[str, Any]:
    primitive = load_fixture("1.15", 1)
    edit(primitive)
    return primitive


def _set(path: tuple[str | int, ...], value: Any) -> Any:
    def edit(primitive: dict[str, Any]) -> None:
        target: Any = primitive
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _delete(path: tuple[str | int, ...]) -> Any:
    def edit(primitive: dict[str, Any]) -> None:
        target: Any = primitive
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


D = DATA
ERROR_CASES = {
    "wrong object name": (_set(("nova_object.name",), "Instance"), "expected a RequestSpec"),
    "wrong nested name": (
        _set((D, "flavor", "nova_object.name"), "Flavour"),
        "RequestSpec.flavor: expected a Flavor object",
    ),
    "version 2.0": (_set(("nova_object.version",), "2.0"), "version 2.0 is not supported"),
    "version 1.16": (_set(("nova_object.version",), "1.16"), "version 1.16 is not supported"),
    "version not a string": (_set(("nova_object.version",), 1.15), "nova_object.version"),
    "other namespace": (_set(("nova_object.namespace",), "cinder"), "namespace"),
    "malformed instance_uuid": (
        _set((D, "instance_uuid"), "18072e8c-35bf-992d"),
        "RequestSpec.instance_uuid: malformed UUID",
    ),
    "empty instance_uuid": (
        _set((D, "instance_uuid"), ""),
        "RequestSpec.instance_uuid: malformed UUID",
    ),
    "malformed cell uuid": (
        _set(
            (D, "requested_destination", D, "cell"),
            {
                "nova_object.name": "CellMapping",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.1",
                "nova_object.data": {"uuid": "cell-one", "name": "cell1"},
            },
        ),
        "RequestSpec.requested_destination.cell.uuid: malformed UUID",
    ),
    "instance_uuid not a string": (
        _set((D, "instance_uuid"), 42),
        "RequestSpec.instance_uuid: expected a UUID string",
    ),
    "negative memory": (
        _set((D, "flavor", D, "memory_mb"), -1),
        "RequestSpec.flavor.memory_mb: Input should be greater than or equal to 1",
    ),
    "memory as a string": (
        _set((D, "flavor", D, "memory_mb"), "8192"),
        "RequestSpec.flavor.memory_mb: Input should be a valid integer",
    ),
    "unknown group policy": (
        _set((D, "instance_group", D, "policy"), "best-effort"),
        "RequestSpec.instance_group.policy",
    ),
    "unknown group rule": (
        _set((D, "instance_group", D, "_rules"), {"max_servers": "1"}),
        "RequestSpec.instance_group._rules",
    ),
    "missing flavor": (_delete((D, "flavor")), "RequestSpec.flavor: Field required"),
    "missing required nested field": (
        _delete((D, "flavor", D, "vcpus")),
        "RequestSpec.flavor.vcpus: Field required",
    ),
    "unknown field": (_set((D, "bogus"), 1), "unknown RequestSpec field(s): bogus"),
    "malformed nested UUID": (
        _set((D, "pci_requests", D, "requests", 0, D, "request_id"), "nope"),
        "RequestSpec.pci_requests.requests[0].request_id: malformed UUID",
    ),
    "pinning key not a number": (
        _set((D, "numa_topology", D, "cells", 1, D, "cpu_pinning_raw"), {"a": 1}),
        "RequestSpec.numa_topology.cells[1].cpu_pinning_raw",
    ),
    "set given as a string": (
        _set((D, "network_metadata", D, "physnets"), "physnet1"),
        "RequestSpec.network_metadata.physnets: expected a list",
    ),
    "data not an object": (_set((D,), []), "nova_object.data must be an object"),
    "stray envelope key": (_set(("nova_object.extra",), 1), "unexpected key"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_bad_primitive_raises_nova_primitive_error(case: str) -> None:
    edit, message = ERROR_CASES[case]
    primitive = mutated(edit)
    with pytest.raises(NovaPrimitiveError) as caught:
        from_nova_primitive(primitive)
    assert message in str(caught.value)


@pytest.mark.parametrize("value", [None, [], "RequestSpec", 3, {"nova_object.name": "RequestSpec"}])
def test_non_primitive_raises_nova_primitive_error(value: Any) -> None:
    with pytest.raises(NovaPrimitiveError):
        from_nova_primitive(value)


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


BAD_VALUES: list[Any] = [None, "x", -1, 2**70, 1.5, True, [], {}, [None], [{}], {"x": None}]


@pytest.mark.parametrize(("version", "seed"), [("1.15", 1), ("1.5", 3), ("1.15", 4)])
def test_any_corruption_gives_a_spec_or_nova_primitive_error(version: str, seed: int) -> None:
    """Replace or drop every node of a fixture in turn: nothing but NovaPrimitiveError escapes."""
    original = load_fixture(version, seed)
    refusals: list[str] = []
    for path in _paths(original):
        edits = [_set(path, bad) for bad in BAD_VALUES]
        if isinstance(path[-1], str):
            edits.append(_delete(path))
        for edit in edits:
            primitive = copy.deepcopy(original)
            edit(primitive)
            try:
                from_nova_primitive(primitive)
            except NovaPrimitiveError as exc:
                refusals.append(str(exc))
    assert len(refusals) > 100
    assert [m for m in refusals if not m.startswith("RequestSpec")] == []
