"""Constraints derived from flavor and image (pure), and how resize and revert use them."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from specstore.errors import InvalidInputError
from specstore.model import (
    Flavor,
    ImageMeta,
    InstanceNUMACell,
    InstanceNUMATopology,
    InstancePCIRequest,
    InstancePCIRequests,
    RequestSpec,
)
from specstore.moves.derived import (
    PciAlias,
    derive,
    derive_numa_topology,
    derive_pci_alias_requests,
    merge_pci_requests,
    pci_alias_table,
)
from specstore.moves.rules import MoveOperation, spec_for_move
from tests.factories import typical_spec

R = MoveOperation
ALIASES = {
    "gpu": PciAlias("gpu", ({"vendor_id": "10de", "product_id": "1eb8"},), "preferred"),
    "nic": PciAlias("nic", ({"vendor_id": "8086", "product_id": "1520"},)),
}


def flavor(extra: dict[str, str], vcpus: int = 4, memory_mb: int = 8192) -> Flavor:
    return Flavor(
        flavorid=f"f-{vcpus}-{memory_mb}-{sorted(extra.items())}",
        name="f",
        vcpus=vcpus,
        memory_mb=memory_mb,
        extra_specs=extra,
    )


def image(props: dict[str, Any]) -> ImageMeta:
    return ImageMeta(id=uuid.UUID("0512bd13-1107-2231-1710-cf5327ac435a"), properties=props)


def cells(*parts: tuple[set[int], int], **common: Any) -> list[dict[str, Any]]:
    """Expected cells: (cpus, memory) per node; dedicated CPUs go to pcpuset."""
    dedicated = common.get("cpu_policy") == "dedicated"
    return [
        {
            "id": node,
            "memory": memory,
            "cpuset": set() if dedicated else cpus,
            "pcpuset": cpus if dedicated else set(),
            "pagesize": common.get("pagesize"),
            "cpu_policy": common.get("cpu_policy"),
            "cpu_thread_policy": common.get("cpu_thread_policy"),
        }
        for node, (cpus, memory) in enumerate(parts)
    ]


def fields(topology: InstanceNUMATopology | None) -> list[dict[str, Any]] | None:
    if topology is None:
        return None
    keys = ("id", "memory", "cpuset", "pcpuset", "pagesize", "cpu_policy", "cpu_thread_policy")
    return [{k: getattr(c, k) for k in keys} for c in topology.cells]


ALL = {0, 1, 2, 3}
NUMA_TABLE: dict[str, tuple[dict[str, str], dict[str, Any], list[dict[str, Any]] | None]] = {
    "nothing-asked": ({"quota:cpu_shares": "10"}, {"hw_disk_bus": "scsi"}, None),
    "unrelated-lists-without-topology": ({"hw:numa_cpus.0": "0-3"}, {}, None),
    "flavor-nodes-even-split": (
        {"hw:numa_nodes": "2"}, {}, cells(({0, 1}, 4096), ({2, 3}, 4096))
    ),
    "image-nodes": ({}, {"hw_numa_nodes": 2}, cells(({0, 1}, 4096), ({2, 3}, 4096))),
    "flavor-manual": (
        {"hw:numa_nodes": "2", "hw:numa_cpus.0": "0", "hw:numa_cpus.1": "1-3",
         "hw:numa_mem.0": "2048", "hw:numa_mem.1": "6144"},
        {},
        cells(({0}, 2048), ({1, 2, 3}, 6144)),
    ),
    "flavor-manual-with-exclusion": (
        {"hw:numa_nodes": "2", "hw:numa_cpus.0": "0-3,^1", "hw:numa_cpus.1": "1",
         "hw:numa_mem.0": "4096", "hw:numa_mem.1": "4096"},
        {},
        cells(({0, 2, 3}, 4096), ({1}, 4096)),
    ),
    "image-manual-under-flavor-nodes": (
        {"hw:numa_nodes": "2"},
        {"hw_numa_cpus.0": "0,1,2", "hw_numa_cpus.1": [3], "hw_numa_mem.0": "6144",
         "hw_numa_mem.1": "2048"},
        cells(({0, 1, 2}, 6144), ({3}, 2048)),
    ),
    "flavor-dedicated-one-node": (
        {"hw:cpu_policy": "dedicated"}, {"hw_cpu_policy": "shared"},
        cells((ALL, 8192), cpu_policy="dedicated"),
    ),
    "image-dedicated": (
        {}, {"hw_cpu_policy": "dedicated"}, cells((ALL, 8192), cpu_policy="dedicated")
    ),
    "image-shared-only": ({}, {"hw_cpu_policy": "shared"}, None),
    "flavor-shared-with-nodes": (
        {"hw:cpu_policy": "shared", "hw:numa_nodes": "1"}, {},
        cells((ALL, 8192), cpu_policy="shared"),
    ),
    "thread-policy-from-image": (
        {"hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "prefer"},
        {"hw_cpu_thread_policy": "isolate"},
        cells((ALL, 8192), cpu_policy="dedicated", cpu_thread_policy="isolate"),
    ),
    "thread-policy-ignored-unpinned": (
        {"hw:numa_nodes": "1", "hw:cpu_thread_policy": "require"}, {}, cells((ALL, 8192))
    ),
    "page-size-2MB": ({"hw:mem_page_size": "2MB"}, {}, cells((ALL, 8192), pagesize=2048)),
    "page-size-KiB-number": ({"hw:mem_page_size": "2048"}, {}, cells((ALL, 8192), pagesize=2048)),
    "page-size-1GiB": ({"hw:mem_page_size": "1GiB"}, {}, cells((ALL, 8192), pagesize=1048576)),
    "page-size-symbolic": ({"hw:mem_page_size": "large"}, {}, cells((ALL, 8192))),
    "page-size-image-refines-large": (
        {"hw:mem_page_size": "large"}, {"hw_mem_page_size": "1GB"},
        cells((ALL, 8192), pagesize=1048576),
    ),
    "page-size-image-refines-any": (
        {"hw:mem_page_size": "any", "hw:numa_nodes": "2"}, {"hw_mem_page_size": "2MB"},
        cells(({0, 1}, 4096), ({2, 3}, 4096), pagesize=2048),
    ),
}


@pytest.mark.parametrize(("extra", "props", "expected"), NUMA_TABLE.values(), ids=NUMA_TABLE)
def test_numa_topology_derivation(
    extra: dict[str, str], props: dict[str, Any], expected: list[dict[str, Any]] | None
) -> None:
    assert fields(derive_numa_topology(flavor(extra), image(props))) == expected


def test_no_image_and_the_pinning_results_are_empty() -> None:
    topology = derive_numa_topology(flavor({"hw:numa_nodes": "2"}), None)
    assert topology is not None
    assert [(c.cpu_pinning, c.cpuset_reserved) for c in topology.cells] == [({}, None)] * 2
    assert topology.emulator_threads_policy is None


NUMA_ERRORS: dict[str, tuple[dict[str, str], dict[str, Any], str]] = {
    "nodes-in-both": (
        {"hw:numa_nodes": "2"}, {"hw_numa_nodes": "2"},
        "the image may not set hw_numa_nodes: the flavor sets hw:numa_nodes",
    ),
    "nodes-zero": ({"hw:numa_nodes": "0"}, {}, "NUMA node count must be an integer >= 1"),
    "nodes-word": ({}, {"hw_numa_nodes": "two"}, "NUMA node count must be an integer >= 1"),
    "uneven": ({"hw:numa_nodes": "3"}, {}, "3 NUMA nodes do not divide 4 vCPUs and 8192 MiB"),
    "cpus-in-both": (
        {"hw:numa_nodes": "1", "hw:numa_cpus.0": "0-3", "hw:numa_mem.0": "8192"},
        {"hw_numa_cpus.0": "0-3"},
        "the image may not set hw_numa_cpus.N: the flavor sets hw:numa_cpus.N",
    ),
    "cpus-without-memory": (
        {"hw:numa_nodes": "1", "hw:numa_cpus.0": "0-3"}, {},
        "NUMA CPUs and memory must both be given per node, or neither",
    ),
    "incomplete": (
        {"hw:numa_nodes": "2", "hw:numa_cpus.0": "0-3", "hw:numa_mem.0": "8192"}, {},
        "numa_cpus.N must be given for nodes 0..1 exactly, got [0]",
    ),
    "cpu-out-of-range": (
        {"hw:numa_nodes": "1", "hw:numa_cpus.0": "0-4", "hw:numa_mem.0": "8192"}, {},
        "numa_cpus.0: CPU 4 is out of range (the flavor has 4 vCPUs)",
    ),
    "cpu-twice": (
        {"hw:numa_nodes": "2", "hw:numa_cpus.0": "0-2", "hw:numa_cpus.1": "2-3",
         "hw:numa_mem.0": "4096", "hw:numa_mem.1": "4096"}, {},
        "numa_cpus.1: CPU 2 is in two NUMA nodes",
    ),
    "cpu-unassigned": (
        {"hw:numa_nodes": "2", "hw:numa_cpus.0": "0", "hw:numa_cpus.1": "1",
         "hw:numa_mem.0": "4096", "hw:numa_mem.1": "4096"}, {},
        "CPUs [2, 3] are in no NUMA node",
    ),
    "memory-sum": (
        {"hw:numa_nodes": "2", "hw:numa_cpus.0": "0,1", "hw:numa_cpus.1": "2,3",
         "hw:numa_mem.0": "4096", "hw:numa_mem.1": "2048"}, {},
        "NUMA memory adds up to 6144 MiB, the flavor has 8192 MiB",
    ),
    "cpu-list-garbage": (
        {"hw:numa_nodes": "1", "hw:numa_cpus.0": "0-a", "hw:numa_mem.0": "8192"}, {},
        "numa_cpus.0: invalid CPU list '0-a'",
    ),
    "node-number-garbage": (
        {"hw:numa_nodes": "1", "hw:numa_cpus.x": "0"}, {},
        "hw:numa_cpus.x: the node number must be an integer",
    ),
    "image-pins-against-shared-flavor": (
        {"hw:cpu_policy": "shared"}, {"hw_cpu_policy": "dedicated"},
        "the image's hw_cpu_policy=dedicated contradicts the flavor's hw:cpu_policy=shared",
    ),
    "unknown-cpu-policy": ({"hw:cpu_policy": "pinned"}, {}, "hw:cpu_policy: 'pinned' is not"),
    "mixed-left-to-caller": (
        {"hw:cpu_policy": "mixed"}, {}, "hw:cpu_policy=mixed / hw:cpu_dedicated_mask are not",
    ),
    "dedicated-mask-left-to-caller": (
        {"hw:cpu_dedicated_mask": "^0"}, {}, "pass numa_topology",
    ),
    "thread-policy-conflict": (
        {"hw:cpu_policy": "dedicated", "hw:cpu_thread_policy": "isolate"},
        {"hw_cpu_thread_policy": "require"},
        "the image's hw_cpu_thread_policy=require contradicts the flavor's",
    ),
    "page-size-image-only": (
        {}, {"hw_mem_page_size": "2MB"},
        "the image asks for page size '2MB'; the flavor sets no hw:mem_page_size",
    ),
    "page-size-image-against-explicit": (
        {"hw:mem_page_size": "2MB"}, {"hw_mem_page_size": "1GB"},
        "the image's page size '1GB' contradicts the flavor's '2MB'",
    ),
    "page-size-image-against-small": (
        {"hw:mem_page_size": "small"}, {"hw_mem_page_size": "large"}, "contradicts the flavor's",
    ),
    "page-size-garbage": ({"hw:mem_page_size": "huge"}, {}, "invalid memory page size 'huge'"),
}


@pytest.mark.parametrize(("extra", "props", "message"), NUMA_ERRORS.values(), ids=NUMA_ERRORS)
def test_numa_conflicts_are_refused(
    extra: dict[str, str], props: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        derive_numa_topology(flavor(extra), image(props))


# -- PCI ----------------------------------------------------------------------------------------

GPU_2 = {"count": 2, "spec": [{"product_id": "1eb8", "vendor_id": "10de"}], "alias_name": "gpu"}
NIC_1 = {"count": 1, "spec": [{"product_id": "1520", "vendor_id": "8086"}], "alias_name": "nic"}
PCI_TABLE: dict[str, tuple[dict[str, str], dict[str, Any], list[dict[str, Any]]]] = {
    "no-alias": ({"hw:numa_nodes": "1"}, {}, []),
    "alias-policy": (
        {"pci_passthrough:alias": "gpu:2"}, {}, [{**GPU_2, "numa_policy": "preferred"}]
    ),
    "two-aliases": (
        {"pci_passthrough:alias": "gpu:2, nic:1"}, {},
        [{**GPU_2, "numa_policy": "preferred"}, {**NIC_1, "numa_policy": None}],
    ),
    "flavor-policy-overrides": (
        {"pci_passthrough:alias": "gpu:2", "hw:pci_numa_affinity_policy": "required"}, {},
        [{**GPU_2, "numa_policy": "required"}],
    ),
    "image-policy": (
        {"pci_passthrough:alias": "nic:1"}, {"hw_pci_numa_affinity_policy": "socket"},
        [{**NIC_1, "numa_policy": "socket"}],
    ),
}


@pytest.mark.parametrize(("extra", "props", "expected"), PCI_TABLE.values(), ids=PCI_TABLE)
def test_pci_alias_requests(
    extra: dict[str, str], props: dict[str, Any], expected: list[dict[str, Any]]
) -> None:
    requests = derive_pci_alias_requests(flavor(extra), image(props), ALIASES)
    got = [
        {"count": r.count, "spec": r.spec, "alias_name": r.alias_name, "numa_policy": r.numa_policy}
        for r in requests
    ]
    assert got == expected
    assert all(r.request_id is None and r.requester_id is None for r in requests)


PCI_ERRORS: dict[str, tuple[dict[str, str], dict[str, Any], Any, str]] = {
    "unknown-alias": (
        {"pci_passthrough:alias": "fpga:1"}, {}, ALIASES,
        "pci_passthrough:alias names 'fpga', which the PCI alias table does not define",
    ),
    "no-table": ({"pci_passthrough:alias": "gpu:1"}, {}, None, "does not define"),
    "no-count": ({"pci_passthrough:alias": "gpu"}, {}, ALIASES, "invalid entry 'gpu'"),
    "zero-count": ({"pci_passthrough:alias": "gpu:0"}, {}, ALIASES, "invalid entry 'gpu:0'"),
    "policy-conflict": (
        {"pci_passthrough:alias": "gpu:1", "hw:pci_numa_affinity_policy": "required"},
        {"hw_pci_numa_affinity_policy": "legacy"}, ALIASES,
        "the image's hw_pci_numa_affinity_policy=legacy contradicts",
    ),
    "unknown-policy": (
        {"pci_passthrough:alias": "gpu:1", "hw:pci_numa_affinity_policy": "near"}, {}, ALIASES,
        "'near' is not one of",
    ),
}


@pytest.mark.parametrize(
    ("extra", "props", "aliases", "message"), PCI_ERRORS.values(), ids=PCI_ERRORS
)
def test_pci_alias_errors(
    extra: dict[str, str], props: dict[str, Any], aliases: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        derive_pci_alias_requests(flavor(extra), image(props), aliases)


def test_alias_table_from_nova_entries() -> None:
    table = pci_alias_table(
        [
            {"name": "gpu", "vendor_id": "10de", "product_id": "1eb8", "numa_policy": "preferred"},
            {"name": "gpu", "vendor_id": "10de", "product_id": "1eb9", "numa_policy": "preferred"},
            {"name": "vf", "vendor_id": "8086", "product_id": "154c", "device_type": "type-VF"},
        ]
    )
    assert table["gpu"] == PciAlias(
        "gpu",
        ({"vendor_id": "10de", "product_id": "1eb8"}, {"vendor_id": "10de", "product_id": "1eb9"}),
        "preferred",
    )
    vf = {"vendor_id": "8086", "product_id": "154c", "device_type": "type-VF"}
    assert table["vf"].specs == (vf,)
    with pytest.raises(InvalidInputError, match="two numa_policy values"):
        pci_alias_table([{"name": "a", "numa_policy": "legacy"}, {"name": "a"}])
    with pytest.raises(InvalidInputError, match="without a name"):
        pci_alias_table([{"vendor_id": "1"}])


PORT = InstancePCIRequest(
    count=1, spec=[{"physical_network": "physnet1"}],
    request_id=uuid.UUID("05b6e6e3-07d4-bedc-5143-1193e6c3f339"), requester_id="port-1",
)
OLD_ALIAS = InstancePCIRequest(count=1, spec=[{"vendor_id": "8086"}], alias_name="nic")


def test_merge_keeps_port_requests_and_replaces_alias_requests() -> None:
    current = InstancePCIRequests(requests=[OLD_ALIAS, PORT])
    new = derive_pci_alias_requests(flavor({"pci_passthrough:alias": "gpu:2"}), None, ALIASES)
    merged = merge_pci_requests(current, new)
    assert merged is not None
    assert merged.requests == [PORT, *new]
    assert merge_pci_requests(InstancePCIRequests(requests=[OLD_ALIAS]), []) is None
    assert merge_pci_requests(None, []) is None
    assert derive(flavor({}), None).pci_alias_requests == []


# -- resize and revert -----------------------------------------------------------------------

SMALL = flavor(
    {"hw:cpu_policy": "dedicated", "hw:mem_page_size": "any", "pci_passthrough:alias": "nic:1"}
)
BIG = flavor(
    {"hw:numa_nodes": "2", "hw:cpu_policy": "dedicated", "hw:mem_page_size": "large",
     "pci_passthrough:alias": "gpu:2"},
    vcpus=8, memory_mb=16384,
)
PLAIN = flavor({"hw:mem_page_size": "any"}, vcpus=8, memory_mb=16384)
IMAGE = image({"hw_mem_page_size": "1GB", "os_distro": "debian"})


def booted_small() -> RequestSpec:
    """A spec booted with SMALL: what SMALL derives, plus an SR-IOV port request; rev 3."""
    spec = typical_spec(uuid.UUID("3d0a1c44-5f4b-4c1e-9a55-0d2f9e6b7a10")).model_copy(
        update={"flavor": SMALL, "image": IMAGE}, deep=True
    )
    derived = derive(SMALL, IMAGE, ALIASES)
    spec.numa_topology = derived.numa_topology
    spec.pci_requests = InstancePCIRequests(requests=[PORT, *derived.pci_alias_requests])
    spec._rev = 3
    return spec


CUSTOM_NUMA = InstanceNUMATopology(
    cells=[InstanceNUMACell(id=0, memory=16384, cpuset={0, 1, 2, 3, 4, 5, 6, 7})]
)
CUSTOM_PCI = InstancePCIRequests(requests=[InstancePCIRequest(count=3, spec=[{"a": "b"}])])
BOOT = booted_small()
SMALL_NUMA = fields(BOOT.numa_topology)
BIG_NUMA = cells(
    ({0, 1, 2, 3}, 8192), ({4, 5, 6, 7}, 8192), cpu_policy="dedicated", pagesize=1048576
)  # the image refines the flavor's "large" to 1 GiB pages
GPU_REQ = {**GPU_2, "numa_policy": "preferred", "request_id": None}
NIC_REQ = {**NIC_1, "numa_policy": None, "request_id": None}
PORT_REQ = {"count": 1, "spec": PORT.spec, "alias_name": None, "numa_policy": None,
            "request_id": PORT.request_id}
SRC: dict[str, Any] = {"source_host": "cmp-1", "source_node": "cmp-1-node"}

DERIVED_TABLE: dict[str, tuple[MoveOperation, dict[str, Any], Any, Any]] = {
    "resize-derives-from-new-flavor": (
        R.RESIZE, {"new_flavor": BIG, "pci_aliases": ALIASES, **SRC},
        BIG_NUMA, [PORT_REQ, GPU_REQ],
    ),
    "resize-to-flavor-without-alias-or-pinning": (
        R.RESIZE, {"new_flavor": PLAIN, **SRC},
        cells((set(range(8)), 16384), pagesize=1048576), [PORT_REQ],
    ),
    "resize-caller-numa-wins": (
        R.RESIZE, {"new_flavor": BIG, "numa_topology": CUSTOM_NUMA, "pci_aliases": ALIASES,
                   **SRC},
        fields(CUSTOM_NUMA), [PORT_REQ, GPU_REQ],
    ),
    "resize-caller-none-wins": (
        R.RESIZE, {"new_flavor": BIG, "numa_topology": None, "pci_requests": None, **SRC},
        None, None,
    ),
    "resize-caller-pci-wins": (
        R.RESIZE, {"new_flavor": BIG, "pci_requests": CUSTOM_PCI, **SRC},
        BIG_NUMA, [{"count": 3, "spec": [{"a": "b"}], "alias_name": None, "numa_policy": None,
                    "request_id": None}],
    ),
    "revert-restores-the-old-ones": (
        R.RESIZE_REVERT, {"old_flavor": SMALL, "numa_topology": BOOT.numa_topology,
                          "pci_requests": BOOT.pci_requests},
        SMALL_NUMA, [PORT_REQ, NIC_REQ],
    ),
    "revert-rederives-from-old-flavor": (
        R.RESIZE_REVERT, {"old_flavor": SMALL, "pci_aliases": ALIASES},
        SMALL_NUMA, [PORT_REQ, NIC_REQ],
    ),
}


def pci_fields(requests: InstancePCIRequests | None) -> list[dict[str, Any]] | None:
    if requests is None:
        return None
    keys = ("count", "spec", "alias_name", "numa_policy", "request_id")
    return [{k: getattr(r, k) for k in keys} for r in requests.requests]


@pytest.mark.parametrize(("op", "inputs", "numa", "pci"), DERIVED_TABLE.values(), ids=DERIVED_TABLE)
def test_resize_and_revert_rederive(
    op: MoveOperation, inputs: dict[str, Any], numa: Any, pci: Any
) -> None:
    start = BOOT.model_copy(deep=True)
    start._rev = 3
    if op is R.RESIZE_REVERT:  # the resize to BIG happened first
        start = spec_for_move(start, R.RESIZE, new_flavor=BIG, pci_aliases=ALIASES, **SRC).persist
        assert fields(start.numa_topology) == BIG_NUMA
    before = start.model_dump()
    plan = spec_for_move(start, op, **inputs)
    for name, got in (("persist", plan.persist), ("request", plan.request)):
        assert fields(got.numa_topology) == numa, f"{name}.numa_topology"
        assert pci_fields(got.pci_requests) == pci, f"{name}.pci_requests"
        assert got.flavor == inputs.get("new_flavor", inputs.get("old_flavor")), f"{name}.flavor"
        assert got.image == IMAGE, f"{name}.image"
        # transient fields are reset in both
        assert (got.retry, got.requested_resources, got.network_metadata) == (None, [], None)
        assert (got.requested_networks, got.request_level_params) == ([], None)
    assert plan.persist.rev == 3
    assert plan.persist.force_hosts == start.force_hosts
    assert plan.request.force_hosts is None
    assert start.model_dump() == before  # the input is untouched
    if op is R.RESIZE_REVERT:  # resize then revert comes back to the boot's constraints
        assert plan.persist.numa_topology == BOOT.numa_topology
        assert plan.persist.pci_requests == BOOT.pci_requests
    if plan.persist.numa_topology is not None:  # nothing shared with the caller's values
        assert plan.persist.numa_topology is not inputs.get("numa_topology")
        plan.persist.numa_topology.cells[0].memory = 1
        assert plan.request.numa_topology is not None
        assert plan.request.numa_topology.cells[0].memory != 1


def test_resize_refuses_what_the_new_flavor_cannot_derive() -> None:
    with pytest.raises(InvalidInputError, match="which the PCI alias table does not define"):
        spec_for_move(BOOT, R.RESIZE, new_flavor=BIG, **SRC)  # no alias table
    mixed = flavor({"hw:cpu_policy": "mixed", "hw:mem_page_size": "any"}, vcpus=8, memory_mb=16384)
    with pytest.raises(InvalidInputError, match="pass numa_topology"):
        spec_for_move(BOOT, R.RESIZE, new_flavor=mixed, **SRC)
    # ... unless the caller gives the topology itself
    plan = spec_for_move(BOOT, R.RESIZE, new_flavor=mixed, numa_topology=CUSTOM_NUMA, **SRC)
    assert plan.persist.numa_topology == CUSTOM_NUMA


def test_resize_to_a_flavor_asking_for_no_numa_drops_the_topology() -> None:
    spec = BOOT.model_copy(update={"image": image({"os_distro": "debian"})}, deep=True)
    plan = spec_for_move(spec, R.RESIZE, new_flavor=flavor({}, vcpus=8, memory_mb=16384), **SRC)
    assert plan.persist.numa_topology is None
    assert pci_fields(plan.persist.pci_requests) == [PORT_REQ]
