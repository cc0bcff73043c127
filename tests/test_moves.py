"""Move planning (pure): the scheduler request and the persisted spec after each operation."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from specstore.errors import InvalidInputError
from specstore.model import (
    TRANSIENT_FIELDS,
    ComputeNodeRef,
    Destination,
    Flavor,
    ImageMeta,
    InstanceNUMACell,
    InstanceNUMATopology,
    RequestedNetwork,
    RequestLevelParams,
    RequestSpec,
    SchedulerRetries,
    strip_transient,
)
from specstore.moves.rules import (
    MOVE_RULES,
    MoveOperation,
    MovePlan,
    disk_gb,
    scheduler_constraints,
    spec_for_move,
    to_legacy_filter_properties,
    to_legacy_request_spec,
)
from tests.factories import flavor, typical_spec

UID = uuid.UUID("3d0a1c44-5f4b-4c1e-9a55-0d2f9e6b7a10")
GROUP_UID = "008a05a6-c464-7159-c324-c9859b810e76"
LARGE = flavor()  # m1.large, flavorid "m1.large-id"
XLARGE = flavor("m1.xlarge", 16384, 8)
FLAVORS = {"m1.large": LARGE, "m1.xlarge": XLARGE}
NEW_IMAGE = ImageMeta(
    id=uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
    name="debian-13",
    disk_format="raw",
    properties={"hw_disk_bus": "virtio", "os_distro": "debian", "hw_machine_type": "q35"},
)
_BOOT_IMAGE = typical_spec(UID).image
assert _BOOT_IMAGE is not None
REFRESHED_IMAGE = _BOOT_IMAGE.model_copy(  # the same image id, its current properties
    update={"properties": {**_BOOT_IMAGE.properties, "hw_disk_bus": "virtio"}}, deep=True
)


def boot_spec(flavor_name: str = "m1.large") -> RequestSpec:
    """A spec as the boot request left it in memory: forced host, every transient field set,
    read at rev 7."""
    spec = typical_spec(UID).model_copy(
        update={
            "flavor": FLAVORS[flavor_name].model_copy(deep=True),
            "force_hosts": ["cmp-1"],
            "force_nodes": ["cmp-1-node"],
            "num_instances": 3,
            "requested_networks": [RequestedNetwork(network_id="net-1")],
            "request_level_params": RequestLevelParams(root_required={"CUSTOM_ROOT"}),
            "retry": SchedulerRetries(
                num_attempts=2, hosts=[ComputeNodeRef(host="cmp-4", hypervisor_hostname="n4")]
            ),
        },
        deep=True,
    )
    spec._rev = 7
    return spec


def checked_fields(spec: RequestSpec) -> dict[str, Any]:
    """The fields a move sets or resets, with the group's transient members/hosts."""
    assert spec.instance_group is not None
    return {
        "flavor": spec.flavor,
        "image": spec.image,
        "force_hosts": spec.force_hosts,
        "force_nodes": spec.force_nodes,
        "num_instances": spec.num_instances,
        "ignore_hosts": spec.ignore_hosts,
        "requested_destination": spec.requested_destination,
        "retry": spec.retry,
        "requested_resources": spec.requested_resources,
        "network_metadata": spec.network_metadata,
        "requested_networks": spec.requested_networks,
        "request_level_params": spec.request_level_params,
        "group.members": spec.instance_group.members,
        "group.hosts": spec.instance_group.hosts,
    }


# Every move resets every transient field in the request; these are what is left.
REQUEST_BASE: dict[str, Any] = {
    "flavor": LARGE,
    "image": typical_spec(UID).image,
    "force_hosts": None,  # reset_forced_destinations: cleared in the request...
    "force_nodes": None,
    "num_instances": 1,
    "ignore_hosts": None,
    "requested_destination": None,
    "retry": None,
    "requested_resources": [],
    "network_metadata": None,
    "requested_networks": [],
    "request_level_params": None,
    "group.members": [],
    "group.hosts": [],
}
PERSIST_BASE: dict[str, Any] = {
    **REQUEST_BASE,
    "force_hosts": ["cmp-1"],  # ... but kept in the persisted spec
    "force_nodes": ["cmp-1-node"],
    "num_instances": 3,  # the boot request's count stays on record
}


@dataclass(frozen=True)
class Row:
    op: MoveOperation
    inputs: dict[str, Any]
    request: dict[str, Any]
    persist: dict[str, Any]
    start_flavor: str = "m1.large"
    extra: dict[str, Any] = field(default_factory=dict)
    scheduled: bool | None = None  # None: the rule table's value


SRC = {"source_host": "cmp-1", "source_node": "cmp-1-node"}
R = MoveOperation

MOVE_TABLE: dict[str, Row] = {
    "resize": Row(
        R.RESIZE, {"new_flavor": XLARGE, **SRC},
        request={"flavor": XLARGE, "ignore_hosts": ["cmp-1"]},
        persist={"flavor": XLARGE},
    ),
    "resize-same-host-allowed": Row(
        R.RESIZE, {"new_flavor": XLARGE, "allow_same_host": True, **SRC},
        request={"flavor": XLARGE},
        persist={"flavor": XLARGE},
    ),
    "resize-to-host-in-cell": Row(
        R.RESIZE,
        {"new_flavor": XLARGE, "destination": Destination(host="cmp-7"),
         "source_cell": "cell1", **SRC},
        request={"flavor": XLARGE, "ignore_hosts": ["cmp-1"],
                 "requested_destination": Destination(host="cmp-7", cell="cell1")},
        persist={"flavor": XLARGE},
    ),
    "resize-cross-cell": Row(
        R.RESIZE,
        {"new_flavor": XLARGE, "destination": Destination(allow_cross_cell_move=True),
         "source_cell": "cell1", **SRC},
        request={"flavor": XLARGE, "ignore_hosts": ["cmp-1"],
                 "requested_destination": Destination(allow_cross_cell_move=True)},
        persist={"flavor": XLARGE},
    ),
    "cold-migrate": Row(
        R.COLD_MIGRATE, {**SRC},
        request={"ignore_hosts": ["cmp-1"]},
        persist={},
    ),
    "cold-migrate-same-host-allowed": Row(
        R.COLD_MIGRATE, {"allow_same_host": True, **SRC},
        request={},
        persist={},
    ),
    "cold-migrate-same-host-allowed-to-source": Row(
        R.COLD_MIGRATE,
        {"allow_same_host": True, "destination": Destination(host="cmp-1"), **SRC},
        request={"requested_destination": Destination(host="cmp-1")},
        persist={},
    ),
    "cold-migrate-in-cell": Row(
        R.COLD_MIGRATE, {"source_cell": "cell1", **SRC},
        request={"ignore_hosts": ["cmp-1"], "requested_destination": Destination(cell="cell1")},
        persist={},
    ),
    "live-migrate": Row(
        R.LIVE_MIGRATE, {"source_host": "cmp-1"},
        request={"ignore_hosts": ["cmp-1"]},
        persist={},
    ),
    "live-migrate-to-node-in-cell": Row(
        R.LIVE_MIGRATE,
        {"destination": Destination(host="cmp-3", node="cmp-3-node"),
         "source_cell": "cell1", **SRC},
        request={"ignore_hosts": ["cmp-1"],
                 "requested_destination": Destination(host="cmp-3", node="cmp-3-node",
                                                      cell="cell1")},
        persist={},
    ),
    "evacuate": Row(
        R.EVACUATE, {"source_cell": "cell1", **SRC},
        request={"ignore_hosts": ["cmp-1"], "requested_destination": Destination(cell="cell1")},
        persist={},
    ),
    "evacuate-to-host": Row(
        R.EVACUATE, {"destination": Destination(host="cmp-8"), **SRC},
        request={"ignore_hosts": ["cmp-1"], "requested_destination": Destination(host="cmp-8")},
        persist={},
    ),
    "evacuate-new-image": Row(
        R.EVACUATE, {"new_image": NEW_IMAGE, "source_cell": "cell1", **SRC},
        request={"image": NEW_IMAGE, "ignore_hosts": ["cmp-1"],
                 "requested_destination": Destination(cell="cell1")},
        persist={"image": NEW_IMAGE},
    ),
    "evacuate-same-image-refreshed": Row(  # Nova bug 2078999: drifted properties replaced
        R.EVACUATE, {"new_image": REFRESHED_IMAGE, **SRC},
        request={"image": REFRESHED_IMAGE, "ignore_hosts": ["cmp-1"]},
        persist={"image": REFRESHED_IMAGE},
    ),
    "rebuild-same-host-same-image": Row(
        R.REBUILD, {"source_cell": "cell1", **SRC},
        request={},
        persist={},
        scheduled=False,
    ),
    "rebuild-same-image-refreshed": Row(
        R.REBUILD, {"new_image": REFRESHED_IMAGE, "source_cell": "cell1", **SRC},
        request={"image": REFRESHED_IMAGE},
        persist={"image": REFRESHED_IMAGE},
        scheduled=False,
    ),
    "rebuild-new-image": Row(  # scheduled again, on the instance's own host only
        R.REBUILD, {"new_image": NEW_IMAGE, "source_cell": "cell1", **SRC},
        request={"image": NEW_IMAGE,
                 "requested_destination": Destination(host="cmp-1", node="cmp-1-node",
                                                      cell="cell1")},
        persist={"image": NEW_IMAGE},
        scheduled=True,
    ),
    "rebuild-new-image-host-only": Row(
        R.REBUILD, {"new_image": NEW_IMAGE, "source_host": "cmp-1"},
        request={"image": NEW_IMAGE, "requested_destination": Destination(host="cmp-1")},
        persist={"image": NEW_IMAGE},
        scheduled=True,
    ),
    "unshelve": Row(
        R.UNSHELVE, {},
        request={},
        persist={},
    ),
    "unshelve-in-cell-to-host": Row(
        R.UNSHELVE, {"destination": Destination(host="cmp-5"), "source_cell": "cell2"},
        request={"requested_destination": Destination(host="cmp-5", cell="cell2")},
        persist={},
    ),
    "resize-revert": Row(
        R.RESIZE_REVERT, {"old_flavor": LARGE, "source_cell": "cell1", **SRC},
        request={"flavor": LARGE},
        persist={"flavor": LARGE},
        start_flavor="m1.xlarge",
    ),
    "migrate-revert": Row(
        R.RESIZE_REVERT, {"old_flavor": LARGE},
        request={},
        persist={},
    ),
    "resize-confirm": Row(
        R.RESIZE_CONFIRM, {"source_cell": "cell1"},
        request={"flavor": XLARGE},
        persist={"flavor": XLARGE},
        start_flavor="m1.xlarge",
    ),
}


@pytest.mark.parametrize("row", MOVE_TABLE.values(), ids=MOVE_TABLE.keys())
def test_move_table_request_and_persisted_fields(row: Row) -> None:
    spec = boot_spec(row.start_flavor)
    plan = spec_for_move(spec, row.op, **row.inputs)
    assert plan.operation is row.op
    scheduled = MOVE_RULES[row.op].schedules if row.scheduled is None else row.scheduled
    assert plan.needs_scheduling is scheduled
    assert plan.source_host == row.inputs.get("source_host")
    assert plan.source_node == row.inputs.get("source_node")

    expected_request = {**REQUEST_BASE, **row.request}
    expected_persist = {**PERSIST_BASE, **row.persist}
    if row.start_flavor != "m1.large":
        expected_request.setdefault("flavor", FLAVORS[row.start_flavor])
        expected_persist.setdefault("flavor", FLAVORS[row.start_flavor])
    for name, value in checked_fields(plan.request).items():
        assert value == expected_request[name], f"request.{name}"
    for name, value in checked_fields(plan.persist).items():
        assert value == expected_persist[name], f"persist.{name}"


@pytest.mark.parametrize("row", MOVE_TABLE.values(), ids=MOVE_TABLE.keys())
def test_every_persisted_constraint_is_kept(row: Row) -> None:
    spec = boot_spec(row.start_flavor)
    before = spec.model_dump()
    plan = spec_for_move(spec, row.op, **row.inputs)
    # the persisted spec is the stripped input, but for what the move changes: the flavor and
    # what it derives (resize/revert, see test_moves_derived.py), the image (rebuild/evacuate)
    changed = {"flavor", "image"} if "new_image" in row.inputs else {"flavor"}
    if MOVE_RULES[row.op].flavor != "keep":
        changed |= {"numa_topology", "pci_requests"}
    stripped = strip_transient(spec).model_dump(exclude=changed)
    assert plan.persist.model_dump(exclude=changed) == stripped
    # the request carries every constraint the instance was booted with
    kept = {
        "instance_uuid", "project_id", "user_id", "availability_zone", "image",
        "numa_topology", "pci_requests", "scheduler_hints", "is_bfv", "security_groups",
        "limits",
    } - changed
    assert plan.request.model_dump(include=kept) == spec.model_dump(include=kept)
    assert plan.request.availability_zone == "az1"
    assert plan.request.scheduler_hints["same_host"] == ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"]
    group = plan.request.instance_group
    assert group is not None
    assert (str(group.uuid), group.policy, group.rules, group.name) == (
        GROUP_UID, "anti-affinity", {"max_server_per_host": "2"}, "web-tier"
    )
    # the input is not changed, and request and persist share nothing
    assert spec.model_dump() == before
    assert spec.rev == 7
    plan.request.scheduler_hints["same_host"].append("x")
    assert plan.request.instance_group is not None
    assert plan.persist.instance_group is not None
    plan.request.instance_group.members.append("y")
    assert plan.persist.scheduler_hints["same_host"] == ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"]
    assert plan.persist.instance_group.members == []
    assert spec.scheduler_hints["same_host"] == ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"]


@pytest.mark.parametrize("row", MOVE_TABLE.values(), ids=MOVE_TABLE.keys())
def test_revs_and_newer_minor_fields(row: Row) -> None:
    spec = boot_spec(row.start_flavor)
    spec.newer_minor_fields = ((1, 9), {"future_field": 1})
    plan = spec_for_move(spec, row.op, **row.inputs)
    assert plan.persist.rev == 7  # the rev the input was read with: save it with CAS
    assert plan.persist.newer_minor_fields == ((1, 9), {"future_field": 1})
    assert plan.request.rev is None
    assert plan.request.newer_minor_fields is None


def test_persist_of_a_stored_spec_needs_no_stripping() -> None:
    stored = strip_transient(boot_spec())
    plan = spec_for_move(stored, MoveOperation.COLD_MIGRATE, source_host="cmp-1")
    assert plan.persist == stored
    assert set(TRANSIENT_FIELDS) <= set(RequestSpec.model_fields)


def test_rule_table_covers_every_operation_and_scheduling() -> None:
    assert set(MOVE_RULES) == set(MoveOperation)
    scheduled = {op for op in MoveOperation if MOVE_RULES[op].schedules}
    assert scheduled == {R.RESIZE, R.COLD_MIGRATE, R.LIVE_MIGRATE, R.EVACUATE, R.UNSHELVE}
    new_image = {op for op in MoveOperation if MOVE_RULES[op].image == "may_change"}
    assert new_image == {R.REBUILD, R.EVACUATE}
    assert [op for op in MoveOperation if MOVE_RULES[op].same_host_on_new_image] == [R.REBUILD]
    plan = spec_for_move(boot_spec(), "resize_confirm")
    assert isinstance(plan, MovePlan)
    assert plan.operation is R.RESIZE_CONFIRM
    assert not plan.needs_scheduling
    assert spec_for_move(boot_spec(), R.UNSHELVE).needs_scheduling


ERROR_TABLE: dict[str, tuple[MoveOperation | str, dict[str, Any], str]] = {
    "resize-without-flavor": (R.RESIZE, {**SRC}, "resize needs new_flavor"),
    "resize-same-flavor": (
        R.RESIZE,
        {"new_flavor": LARGE.model_copy(update={"memory_mb": 1}), **SRC},
        "resize to the flavor the instance already has ('m1.large-id')",
    ),
    "migrate-with-flavor": (
        R.COLD_MIGRATE, {"new_flavor": XLARGE, **SRC}, "cold_migrate takes no new_flavor"
    ),
    "revert-without-old-flavor": (R.RESIZE_REVERT, {}, "resize_revert needs old_flavor"),
    "resize-with-old-flavor": (
        R.RESIZE, {"new_flavor": XLARGE, "old_flavor": LARGE, **SRC},
        "resize takes no old_flavor",
    ),
    "confirm-with-flavor": (
        R.RESIZE_CONFIRM, {"new_flavor": XLARGE}, "resize_confirm takes no new_flavor"
    ),
    "resize-without-source": (R.RESIZE, {"new_flavor": XLARGE}, "resize needs source_host"),
    "evacuate-without-source": (R.EVACUATE, {}, "evacuate needs source_host"),
    "empty-source": (R.LIVE_MIGRATE, {"source_host": ""}, "source_host must not be empty"),
    "node-without-host": (
        R.LIVE_MIGRATE, {"source_node": "n1"}, "source_node given without source_host"
    ),
    "live-migrate-same-host": (
        R.LIVE_MIGRATE, {"allow_same_host": True, **SRC}, "live_migrate cannot allow the same"
    ),
    "evacuate-same-host": (
        R.EVACUATE, {"allow_same_host": True, **SRC}, "evacuate cannot allow the same host"
    ),
    "evacuate-to-source": (
        R.EVACUATE, {"destination": Destination(host="cmp-1"), **SRC},
        "evacuate must not land on the source host 'cmp-1'",
    ),
    "live-migrate-to-source": (
        R.LIVE_MIGRATE, {"destination": Destination(host="cmp-1"), **SRC},
        "live_migrate must not land on the source host",
    ),
    "migrate-to-source": (
        R.COLD_MIGRATE, {"destination": Destination(host="cmp-1"), **SRC},
        "cold_migrate must not land on the source host",
    ),
    "unshelve-with-source": (
        R.UNSHELVE, {"source_host": "cmp-1"}, "unshelve schedules an offloaded instance"
    ),
    "live-migrate-cross-cell": (
        R.LIVE_MIGRATE, {"destination": Destination(allow_cross_cell_move=True), **SRC},
        "live_migrate cannot move the instance to another cell",
    ),
    "other-cell-without-cross-cell": (
        R.COLD_MIGRATE,
        {"destination": Destination(cell="cell2"), "source_cell": "cell1", **SRC},
        "cold_migrate stays in cell 'cell1'; destination cell 'cell2' needs allow_cross_cell",
    ),
    "revert-with-destination": (
        R.RESIZE_REVERT, {"old_flavor": LARGE, "destination": Destination(host="cmp-2")},
        "resize_revert is not scheduled; it takes no destination",
    ),
    "unknown-operation": ("teleport", {}, "unknown move operation 'teleport'"),
    "rebuild-without-source": (R.REBUILD, {}, "rebuild needs source_host"),
    "rebuild-with-destination": (
        R.REBUILD, {"new_image": NEW_IMAGE, "destination": Destination(host="cmp-2"), **SRC},
        "rebuild stays on the source host; it takes no destination",
    ),
    "rebuild-same-host-allowed": (
        R.REBUILD, {"allow_same_host": True, **SRC}, "rebuild cannot allow the same host"
    ),
    "migrate-with-image": (
        R.COLD_MIGRATE, {"new_image": NEW_IMAGE, **SRC},
        "cold_migrate takes no new_image (rebuild and evacuate do)",
    ),
    "resize-with-image": (
        R.RESIZE, {"new_flavor": XLARGE, "new_image": NEW_IMAGE, **SRC},
        "resize takes no new_image",
    ),
    "rebuild-image-changes-numa": (
        R.REBUILD, {"new_image": NEW_IMAGE.model_copy(
            update={"properties": {"hw_numa_nodes": "2"}}), **SRC},
        "rebuild: the new image changes the NUMA constraints of the instance",
    ),
    "evacuate-image-numa-impossible": (
        R.EVACUATE, {"new_image": NEW_IMAGE.model_copy(
            update={"properties": {"hw_numa_nodes": "3"}}), **SRC},
        "3 NUMA nodes do not divide 4 vCPUs and 8192 MiB evenly",
    ),
    "migrate-with-numa": (
        R.COLD_MIGRATE, {"numa_topology": None, **SRC},
        "cold_migrate keeps the stored numa_topology; it takes no numa_topology",
    ),
    "rebuild-with-pci": (
        R.REBUILD, {"pci_requests": None, **SRC},
        "rebuild keeps the stored pci_requests; it takes no pci_requests",
    ),
    "evacuate-with-aliases": (
        R.EVACUATE, {"pci_aliases": {}, **SRC}, "evacuate derives nothing; it takes no pci_al",
    ),
}


@pytest.mark.parametrize(("op", "inputs", "message"), ERROR_TABLE.values(), ids=ERROR_TABLE)
def test_refused_inputs(op: MoveOperation | str, inputs: dict[str, Any], message: str) -> None:
    spec = boot_spec()
    before = spec.model_dump()
    with pytest.raises(InvalidInputError, match=re.escape(message)) as info:
        spec_for_move(spec, op, **inputs)
    assert isinstance(info.value, ValueError)
    assert spec.model_dump() == before


# -- scheduler constraints and legacy dicts ----------------------------------------------------


def test_scheduler_constraints_of_a_move_request() -> None:
    spec = boot_spec()
    assert spec.image is not None
    assert spec.numa_topology is not None
    spec.image.properties = {
        **spec.image.properties,
        "description": "not for the scheduler",
        "trait:CUSTOM_GOLD": "required",
        "hypervisor_type": "qemu",
    }
    spec.numa_topology.cells[0].cpu_pinning = {0: 5}
    # the caller's NUMA topology and PCI requests win over the derivation from XLARGE
    plan = spec_for_move(
        spec, R.RESIZE, new_flavor=XLARGE, source_host="cmp-1", source_cell="cell1",
        numa_topology=spec.numa_topology, pci_requests=spec.pci_requests,
    )
    constraints = scheduler_constraints(plan.request)
    assert json.loads(json.dumps(constraints)) == constraints
    assert constraints["instance_uuid"] == str(UID)
    assert constraints["num_instances"] == 1
    assert constraints["availability_zone"] == "az1"
    assert constraints["flavor"] == {
        "flavorid": "m1.xlarge-id", "name": "m1.xlarge", "vcpus": 8, "memory_mb": 16384,
        "root_gb": 40, "ephemeral_gb": 0, "swap": 512,
    }
    assert constraints["resources"] == {"VCPU": 8, "MEMORY_MB": 16384, "DISK_GB": 41}
    assert constraints["extra_specs"]["trait:HW_CPU_X86_AVX2"] == "required"
    assert constraints["image"] == {
        "id": "0512bd13-1107-2231-1710-cf5327ac435a",
        "disk_format": "qcow2",
        "properties": {
            "hw_cpu_cores": 2, "hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi",
            "hypervisor_type": "qemu", "os_distro": "ubuntu", "os_type": "linux",
            "trait:CUSTOM_GOLD": "required",
        },
    }
    cells = constraints["numa_topology"]["cells"]
    assert [(c["id"], c["memory"], c["pcpuset"], c["pagesize"]) for c in cells] == [
        (0, 4096, [0, 1], 2048), (1, 4096, [2, 3], 2048)
    ]
    assert "cpu_pinning" not in cells[0]
    assert "cpuset_reserved" not in cells[0]
    assert constraints["pci_requests"][0]["spec"] == [{"product_id": "1520", "vendor_id": "8086"}]
    assert constraints["pci_requests"][0]["alias_name"] == "nic1"
    assert constraints["group"] == {
        "uuid": GROUP_UID, "policy": "anti-affinity", "rules": {"max_server_per_host": "2"},
        "members": [], "hosts": [],
    }
    assert constraints["scheduler_hints"] == {
        "query": ['["=", "$free_ram_mb", 1024]'],
        "same_host": ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"],
    }
    assert constraints["ignore_hosts"] == ["cmp-1"]
    assert constraints["force_hosts"] == []
    assert constraints["force_nodes"] == []
    assert constraints["requested_destination"] == {
        "host": None, "node": None, "cell": "cell1", "aggregates": [],
        "forbidden_aggregates": [], "allow_cross_cell_move": False,
    }
    assert constraints["requested_resources"] == []
    assert constraints["request_level_params"] is None
    assert constraints["network_metadata"] is None


def test_scheduler_constraints_disk_and_empty_parts() -> None:
    spec = RequestSpec(
        instance_uuid=UID,
        flavor=Flavor(flavorid="t", name="tiny", memory_mb=512, vcpus=1, root_gb=10,
                      ephemeral_gb=5, swap=1025),
        is_bfv=True,
        numa_topology=InstanceNUMATopology(cells=[InstanceNUMACell(id=0, memory=512)]),
    )
    assert disk_gb(spec) == 0 + 5 + 2  # booted from volume: no local root disk; swap rounds up
    spec.is_bfv = False
    assert disk_gb(spec) == 17
    constraints = scheduler_constraints(spec)
    assert json.loads(json.dumps(constraints)) == constraints
    assert constraints["resources"] == {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 17}
    assert constraints["image"] is None
    assert constraints["group"] is None
    assert constraints["pci_requests"] == []
    assert constraints["extra_specs"] == {}
    assert constraints["project_id"] is None


def test_legacy_request_spec() -> None:
    legacy = to_legacy_request_spec(boot_spec())
    assert json.loads(json.dumps(legacy)) == legacy
    assert set(legacy) == {"num_instances", "image", "instance_properties", "instance_type"}
    assert legacy["num_instances"] == 3
    assert legacy["image"]["id"] == "0512bd13-1107-2231-1710-cf5327ac435a"
    assert legacy["image"]["properties"]["os_distro"] == "ubuntu"
    props = legacy["instance_properties"]
    assert {k: v for k, v in props.items() if k not in {"numa_topology", "pci_requests"}} == {
        "uuid": str(UID),
        "project_id": "6f70656e737461636b20697320636f6f",
        "user_id": "8d3b1e2c5a7f4e0b9c6d2a1f3e5b7c9d",
        "availability_zone": "az1",
        "root_gb": 40,
        "ephemeral_gb": 0,
        "memory_mb": 8192,
        "vcpus": 4,
    }
    assert [c["pcpuset"] for c in props["numa_topology"]["cells"]] == [[0, 1], [2, 3]]
    assert props["pci_requests"]["requests"][0]["request_id"] == (
        "05b6e6e3-07d4-bedc-5143-1193e6c3f339"
    )
    assert legacy["instance_type"]["flavorid"] == "m1.large-id"
    assert legacy["instance_type"]["extra_specs"]["hw:cpu_policy"] == "dedicated"
    minimal = RequestSpec(instance_uuid=UID, flavor=LARGE)
    assert to_legacy_request_spec(minimal)["image"] == {}
    assert to_legacy_request_spec(minimal)["instance_properties"]["numa_topology"] is None


def test_legacy_filter_properties_of_the_boot_request() -> None:
    legacy = to_legacy_filter_properties(boot_spec())
    assert json.loads(json.dumps(legacy)) == legacy
    assert legacy == {
        "ignore_hosts": ["cmp-9"],
        "force_hosts": ["cmp-1"],
        "force_nodes": ["cmp-1-node"],
        "retry": {"num_attempts": 2, "hosts": [["cmp-4", "n4"]]},
        "limits": {"vcpu": 16, "memory_mb": 65536, "disk_gb": 400},
        "group_updated": True,
        "group_hosts": ["cmp-1"],
        "group_policies": ["anti-affinity"],
        "group_members": [str(UID)],
        "group_uuid": GROUP_UID,
        "scheduler_hints": {
            "query": '["=", "$free_ram_mb", 1024]',
            "same_host": "6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6",
        },
        "requested_destination": {
            "host": "cmp-2", "node": None, "cell": None, "aggregates": [],
            "forbidden_aggregates": [], "allow_cross_cell_move": False,
        },
    }


def test_legacy_filter_properties_of_a_move_request() -> None:
    plan = spec_for_move(boot_spec(), R.EVACUATE, source_host="cmp-1", source_cell="cell1")
    legacy = to_legacy_filter_properties(plan.request)
    assert legacy["ignore_hosts"] == ["cmp-1"]
    assert "force_hosts" not in legacy
    assert "force_nodes" not in legacy
    assert "retry" not in legacy
    assert legacy["requested_destination"]["cell"] == "cell1"
    assert legacy["group_members"] == []
    assert legacy["group_hosts"] == []
    # the persisted spec still remembers the forced host of the boot request
    assert to_legacy_filter_properties(plan.persist)["force_hosts"] == ["cmp-1"]
    assert to_legacy_filter_properties(RequestSpec(instance_uuid=UID, flavor=LARGE)) == {}


def test_multi_value_hint_stays_a_list_in_legacy_form() -> None:
    spec = RequestSpec(
        instance_uuid=UID, flavor=LARGE, scheduler_hints={"different_host": ["a", "b"], "x": "1"}
    )
    assert to_legacy_filter_properties(spec) == {
        "scheduler_hints": {"different_host": ["a", "b"], "x": "1"}
    }
