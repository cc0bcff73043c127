"""Hypothesis strategies for RequestSpec and every part of it.

Values stay inside what a document can hold: integers fit msgpack's 64 bits, text has no
lone surrogates, floats are finite, datetimes are timezone-aware (any fixed UTC offset) and
free-form maps stay well inside the nesting limit. Transient fields are generated too, so
round-trip properties also check that they are stripped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st
from pydantic import JsonValue

from specstore.model import (
    ComputeNodeRef,
    Destination,
    Flavor,
    ImageMeta,
    InstanceGroup,
    InstanceNUMACell,
    InstanceNUMATopology,
    InstancePCIRequest,
    InstancePCIRequests,
    NetworkMetadata,
    RequestedNetwork,
    RequestGroup,
    RequestLevelParams,
    RequestSpec,
    SchedulerLimits,
    SchedulerRetries,
)
from specstore.model.base import SpecModel

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# -- scalars ----------------------------------------------------------------------------------

texts = st.text(max_size=12)
names = st.text(min_size=1, max_size=24)
opt_texts = st.none() | texts
non_negative = st.integers(0, 1 << 20) | st.integers(0, INT64_MAX)
positive = st.integers(1, 1 << 20) | st.integers(1, INT64_MAX)
small_ids = st.integers(0, 256)
uuids = st.uuids()
str_sets = st.sets(texts, max_size=4)
int_sets = st.sets(small_ids, max_size=6)
str_maps = st.dictionaries(texts, texts, max_size=4)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)

# Whole-minute offsets only: offsets with seconds (real ones exist, e.g. Amsterdam before
# 1937) break the JSON codec -- see test_documents.test_json_round_trip_of_an_offset_with_seconds
utc_offsets: st.SearchStrategy[dt.tzinfo] = st.just(dt.timezone.utc) | st.builds(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)), st.integers(-1439, 1439)
)
aware_datetimes = st.datetimes(
    # one day in from datetime.min/max: the value must stay representable once moved to UTC
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=utc_offsets,
)

json_scalars: st.SearchStrategy[JsonValue] = (
    st.none() | st.booleans() | st.integers(INT64_MIN, INT64_MAX) | finite_floats | texts
)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)
freeform_maps: st.SearchStrategy[dict[str, JsonValue]] = st.dictionaries(
    texts, json_values, max_size=4
)
scheduler_hints: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    texts,
    st.lists(texts, max_size=3) | texts,
    max_size=4,  # bare strings become 1-element lists
)

# -- model parts ------------------------------------------------------------------------------

flavors = st.builds(
    Flavor,
    flavorid=names,
    name=names,
    memory_mb=positive,
    vcpus=positive,
    root_gb=non_negative,
    ephemeral_gb=non_negative,
    swap=non_negative,
    id=st.none() | st.integers(INT64_MIN, INT64_MAX),
    rxtx_factor=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    vcpu_weight=st.none() | non_negative,
    disabled=st.booleans(),
    is_public=st.booleans(),
    extra_specs=str_maps,
    description=opt_texts,
)

images = st.builds(
    ImageMeta,
    id=st.none() | uuids,
    name=opt_texts,
    status=opt_texts,
    visibility=opt_texts,
    protected=st.none() | st.booleans(),
    checksum=opt_texts,
    owner=opt_texts,
    size=st.none() | non_negative,
    virtual_size=st.none() | non_negative,
    container_format=opt_texts,
    disk_format=opt_texts,
    min_ram=st.none() | non_negative,
    min_disk=st.none() | non_negative,
    created_at=st.none() | aware_datetimes,
    updated_at=st.none() | aware_datetimes,
    properties=freeform_maps,
)

group_rules: st.SearchStrategy[dict[str, str]] = st.just({}) | st.builds(
    lambda n: {"max_server_per_host": str(n)}, st.integers(1, 10_000)
)

instance_groups = st.builds(
    InstanceGroup,
    uuid=uuids,
    policy=st.sampled_from(["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]),
    name=opt_texts,
    rules=group_rules,
    members=st.lists(texts, max_size=3),
    hosts=st.lists(texts, max_size=3),
    project_id=opt_texts,
    user_id=opt_texts,
)

numa_cells = st.builds(
    InstanceNUMACell,
    id=small_ids,
    memory=positive,
    cpuset=int_sets,
    pcpuset=int_sets,
    cpuset_reserved=st.none() | int_sets,
    pagesize=st.none() | positive,
    cpu_policy=st.none() | st.sampled_from(["shared", "dedicated", "mixed"]),
    cpu_thread_policy=st.none() | st.sampled_from(["prefer", "isolate", "require"]),
    cpu_pinning=st.dictionaries(small_ids, small_ids, max_size=4),
)

numa_topologies = st.builds(
    InstanceNUMATopology,
    cells=st.lists(numa_cells, min_size=1, max_size=3),
    emulator_threads_policy=st.none() | st.sampled_from(["share", "isolate"]),
)

pci_requests = st.builds(
    InstancePCIRequest,
    count=positive,
    spec=st.lists(str_maps, max_size=2),
    alias_name=opt_texts,
    is_new=st.booleans(),
    numa_policy=st.none() | st.sampled_from(["required", "legacy", "preferred", "socket"]),
    request_id=st.none() | uuids,
    requester_id=opt_texts,
)

pci_request_lists = st.builds(InstancePCIRequests, requests=st.lists(pci_requests, max_size=3))

request_groups = st.builds(
    RequestGroup,
    requester_id=opt_texts,
    resources=st.dictionaries(texts, positive, max_size=3),
    required_traits=str_sets,
    forbidden_traits=str_sets,
    aggregates=st.lists(st.lists(texts, max_size=3), max_size=2),
    forbidden_aggregates=str_sets,
    use_same_provider=st.booleans(),
    in_tree=opt_texts,
    provider_uuids=st.lists(uuids, max_size=2),
)

request_level_params = st.builds(
    RequestLevelParams,
    root_required=str_sets,
    root_forbidden=str_sets,
    same_subtree=st.lists(st.lists(texts, max_size=3), max_size=2),
)

destinations = st.builds(
    Destination,
    host=opt_texts,
    node=opt_texts,
    cell=opt_texts,
    aggregates=st.lists(texts, max_size=3),
    forbidden_aggregates=str_sets,
    allow_cross_cell_move=st.booleans(),
)

compute_node_refs = st.builds(ComputeNodeRef, host=texts, hypervisor_hostname=opt_texts)

scheduler_retries = st.builds(
    SchedulerRetries,
    num_attempts=non_negative,
    hosts=st.lists(compute_node_refs, max_size=3),
)

scheduler_limits = st.builds(
    SchedulerLimits,
    vcpu=st.none() | non_negative,
    memory_mb=st.none() | non_negative,
    disk_gb=st.none() | non_negative,
    numa_topology=st.none() | freeform_maps,
)

network_metadata = st.builds(NetworkMetadata, physnets=str_sets, tunneled=st.booleans())

requested_networks = st.builds(
    RequestedNetwork,
    network_id=opt_texts,
    port_id=st.none() | uuids,
    address=opt_texts,
    tag=opt_texts,
)

request_specs = st.builds(
    RequestSpec,
    instance_uuid=uuids,
    flavor=flavors,
    project_id=opt_texts,
    user_id=opt_texts,
    availability_zone=opt_texts,
    image=st.none() | images,
    num_instances=positive,
    numa_topology=st.none() | numa_topologies,
    pci_requests=st.none() | pci_request_lists,
    ignore_hosts=st.none() | st.lists(texts, max_size=3),
    force_hosts=st.none() | st.lists(texts, max_size=3),
    force_nodes=st.none() | st.lists(texts, max_size=3),
    requested_destination=st.none() | destinations,
    retry=st.none() | scheduler_retries,
    limits=st.none() | scheduler_limits,
    instance_group=st.none() | instance_groups,
    scheduler_hints=scheduler_hints,
    security_groups=st.lists(texts, max_size=3),
    network_metadata=st.none() | network_metadata,
    is_bfv=st.booleans(),
    requested_resources=st.lists(request_groups, max_size=2),
    request_level_params=st.none() | request_level_params,
    requested_networks=st.lists(requested_networks, max_size=2),
)

MODEL_STRATEGIES: dict[type[SpecModel], st.SearchStrategy[Any]] = {
    ComputeNodeRef: compute_node_refs,
    Destination: destinations,
    Flavor: flavors,
    ImageMeta: images,
    InstanceGroup: instance_groups,
    InstanceNUMACell: numa_cells,
    InstanceNUMATopology: numa_topologies,
    InstancePCIRequest: pci_requests,
    InstancePCIRequests: pci_request_lists,
    NetworkMetadata: network_metadata,
    RequestGroup: request_groups,
    RequestLevelParams: request_level_params,
    RequestSpec: request_specs,
    RequestedNetwork: requested_networks,
    SchedulerLimits: scheduler_limits,
    SchedulerRetries: scheduler_retries,
}
"""One strategy per model class (a test checks that no class of the model is missing)."""
