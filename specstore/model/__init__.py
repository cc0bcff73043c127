"""The RequestSpec model and its parts (pydantic v2)."""

from specstore.model.flavor import Flavor
from specstore.model.image import ImageMeta
from specstore.model.instance_group import GroupPolicy, InstanceGroup
from specstore.model.persistence import (
    PERSISTED_FIELDS,
    TRANSIENT_FIELDS,
    TRANSIENT_GROUP_FIELDS,
    keep_transient,
    persisted_exclude,
    persisted_payload,
    strip_transient,
)
from specstore.model.request_spec import RequestSpec
from specstore.model.resources import (
    InstanceNUMACell,
    InstanceNUMATopology,
    InstancePCIRequest,
    InstancePCIRequests,
    RequestGroup,
    RequestLevelParams,
)
from specstore.model.scheduling import (
    ComputeNodeRef,
    Destination,
    NetworkMetadata,
    RequestedNetwork,
    SchedulerLimits,
    SchedulerRetries,
)

__all__ = [
    "PERSISTED_FIELDS",
    "TRANSIENT_FIELDS",
    "TRANSIENT_GROUP_FIELDS",
    "ComputeNodeRef",
    "Destination",
    "Flavor",
    "GroupPolicy",
    "ImageMeta",
    "InstanceGroup",
    "InstanceNUMACell",
    "InstanceNUMATopology",
    "InstancePCIRequest",
    "InstancePCIRequests",
    "NetworkMetadata",
    "RequestGroup",
    "RequestLevelParams",
    "RequestSpec",
    "RequestedNetwork",
    "SchedulerLimits",
    "SchedulerRetries",
    "keep_transient",
    "persisted_exclude",
    "persisted_payload",
    "strip_transient",
]
