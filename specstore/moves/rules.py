"""Move operations: the spec a move is scheduled with, and what the stored spec becomes (pure).

Resize, cold and live migration, evacuation and unshelve must land the instance on a host
that satisfies the constraints it was booted with. :func:`spec_for_move` turns the persisted
spec into a :class:`MovePlan`:

``request``
    what goes to the scheduler for this move: every persisted constraint (availability zone,
    server-group policy and rules, scheduler hints, image, NUMA and PCI requests, project and
    user, ``is_bfv``), the flavor the move targets, and fresh per-request data only: the
    transient fields of an earlier request (retry, old ``requested_destination``,
    ``ignore_hosts``, ``requested_resources``, ``network_metadata``, ``requested_networks``,
    ``request_level_params``, the group's ``members``/``hosts``) are reset, then this move's
    own ``ignore_hosts`` and ``requested_destination`` are set. Forced hosts/nodes of the boot
    request are cleared (Nova's ``reset_forced_destinations``) and ``num_instances`` is 1.
    The request is never persisted: saving it would erase ``force_hosts``/``force_nodes``.

``persist``
    what the stored spec must become: the input spec with transient parts stripped, forced
    hosts/nodes kept, and the flavor the instance will have.

The flavor during a resize (the decision Nova also makes): ``RESIZE`` persists the *new*
flavor as soon as the resize is scheduled (Nova's conductor sets ``request_spec.flavor`` to the
new flavor and saves it), so a reschedule, an evacuation while the resize awaits
confirmation, or any later move is scheduled with the flavor the instance is being given.
``RESIZE_CONFIRM`` keeps it; ``RESIZE_REVERT`` writes back the old flavor, which the caller
passes explicitly as ``old_flavor`` (what Nova's revert does with ``instance.old_flavor``). A
resize whose scheduling fails is undone the same way: ``RESIZE_REVERT`` with the old flavor.

The per-operation rules are the data table :data:`MOVE_RULES` (source host exclusion, cell
restriction and cross-cell moves follow Nova's conductor). :func:`scheduler_constraints` gives a
spec as plain data for a scheduler; :func:`to_legacy_request_spec` and
:func:`to_legacy_filter_properties` give Nova's legacy dict forms. All three are
JSON-serializable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, TypeVar

from specstore.errors import InvalidInputError
from specstore.model import (
    TRANSIENT_FIELDS,
    TRANSIENT_GROUP_FIELDS,
    Destination,
    Flavor,
    ImageMeta,
    InstanceGroup,
    InstanceNUMATopology,
    InstancePCIRequests,
    RequestSpec,
)
from specstore.model.base import SpecModel
from specstore.moves.derived import (
    PciAlias,
    derive_numa_topology,
    derive_pci_alias_requests,
    merge_pci_requests,
)

_Part = TypeVar("_Part", InstanceNUMATopology, InstancePCIRequests)


class MoveOperation(str, Enum):
    """A move of an existing instance (or a step ending one) that involves its spec."""

    RESIZE = "resize"
    COLD_MIGRATE = "cold_migrate"
    LIVE_MIGRATE = "live_migrate"
    EVACUATE = "evacuate"
    UNSHELVE = "unshelve"
    RESIZE_REVERT = "resize_revert"
    RESIZE_CONFIRM = "resize_confirm"
    REBUILD = "rebuild"


FlavorRule = Literal["keep", "new", "old"]
"""Which flavor the move leaves on the spec: unchanged, ``new_flavor``, or ``old_flavor``."""
SourceRule = Literal["required", "optional", "forbidden"]
"""Whether ``source_host`` must, may, or must not be given."""
ExcludeRule = Literal["never", "unless_same_host_allowed", "always"]
"""When the source host goes into the request's ``ignore_hosts``."""
ImageRule = Literal["keep", "may_change"]
"""Whether the move may give the instance a new image (``new_image``), which is persisted."""


@dataclass(frozen=True)
class MoveRule:
    """How one operation treats the spec (one row of :data:`MOVE_RULES`)."""

    schedules: bool
    """Goes through the scheduler (revert and confirm return to / stay on a known host)."""
    flavor: FlavorRule
    source: SourceRule
    exclude_source: ExcludeRule
    cross_cell: bool
    """May leave the instance's cell when the destination says ``allow_cross_cell_move``."""
    image: ImageRule = "keep"
    same_host_on_new_image: bool = False
    """Not scheduled, unless the image changes: then scheduled on the source host only."""


MOVE_RULES: dict[MoveOperation, MoveRule] = {
    # Nova: resize/migrate ignore instance.host unless allow_resize_to_same_host (or, for a
    # migrate, a driver able to migrate to the same host); cross-cell resize is opt-in.
    MoveOperation.RESIZE: MoveRule(True, "new", "required", "unless_same_host_allowed", True),
    MoveOperation.COLD_MIGRATE: MoveRule(
        True, "keep", "required", "unless_same_host_allowed", True
    ),
    # Nova's LiveMigrationTask starts attempted_hosts = [source] and restricts to the cell.
    MoveOperation.LIVE_MIGRATE: MoveRule(True, "keep", "required", "always", False),
    # Nova's rebuild_instance(evacuate): ignore_hosts = [instance.host] (the source is down);
    # an evacuation is a rebuild elsewhere, so it may be given a new image too.
    MoveOperation.EVACUATE: MoveRule(True, "keep", "required", "always", False, image="may_change"),
    # A shelved-offloaded instance has no host; unshelve is restricted to its cell.
    MoveOperation.UNSHELVE: MoveRule(True, "keep", "forbidden", "never", False),
    # Revert goes back to the source host and confirm stays put: no scheduling.
    MoveOperation.RESIZE_REVERT: MoveRule(False, "old", "optional", "never", False),
    MoveOperation.RESIZE_CONFIRM: MoveRule(False, "keep", "optional", "never", False),
    # Nova's rebuild on the same host: no scheduling with the same image; with a new one the
    # scheduler runs again restricted to instance.host/node (the new image's properties must
    # pass the filters there).
    MoveOperation.REBUILD: MoveRule(
        False, "keep", "required", "never", False, image="may_change", same_host_on_new_image=True
    ),
}


class Derive(Enum):
    """Marks an argument left to :mod:`specstore.moves.derived` (distinct from an explicit None)."""

    FROM_FLAVOR = "derive"


DERIVE = Derive.FROM_FLAVOR
"""Default of ``numa_topology``/``pci_requests``: derive them from the flavor and image."""


@dataclass(frozen=True)
class MovePlan:
    """The outcome of :func:`spec_for_move`.

    ``request`` goes to the scheduler (never persist it); ``persist`` is what the stored spec
    must become. Both are independent deep copies (changing one never changes the other or
    the input spec). ``persist.rev`` is the rev the input spec was read with (after
    :mod:`specstore.moves.operations` saved it, the new rev).
    """

    operation: MoveOperation
    request: RequestSpec
    persist: RequestSpec
    source_host: str | None = None
    source_node: str | None = None
    image_changed: bool = False
    """A ``new_image`` with another image id than the stored one was given."""

    @property
    def needs_scheduling(self) -> bool:
        """False for ``RESIZE_REVERT``/``RESIZE_CONFIRM`` and a ``REBUILD`` keeping its image:
        their ``request`` is informational. A rebuild with a new image is scheduled, on the
        source host only (``request.requested_destination``)."""
        rule = MOVE_RULES[self.operation]
        return rule.schedules or (rule.same_host_on_new_image and self.image_changed)


def spec_for_move(
    spec: RequestSpec,
    operation: MoveOperation | str,
    *,
    new_flavor: Flavor | None = None,
    old_flavor: Flavor | None = None,
    source_host: str | None = None,
    source_node: str | None = None,
    allow_same_host: bool = False,
    destination: Destination | None = None,
    source_cell: str | None = None,
    new_image: ImageMeta | None = None,
    numa_topology: InstanceNUMATopology | Derive | None = DERIVE,
    pci_requests: InstancePCIRequests | Derive | None = DERIVE,
    pci_aliases: Mapping[str, PciAlias] | None = None,
) -> MovePlan:
    """The scheduler request and the spec to persist for ``operation`` on ``spec``.

    - ``new_flavor``: the target flavor; required for ``RESIZE`` (and it must differ from the
      current flavor by ``flavorid``), refused elsewhere.
    - ``old_flavor``: the flavor to restore; required for ``RESIZE_REVERT``, refused elsewhere.
    - ``source_host``/``source_node``: where the instance is now; required for resize, cold
      and live migration and evacuation, refused for unshelve (an offloaded instance has no
      host). The source host is put in ``request.ignore_hosts`` (always for live migration and
      evacuation; for resize and cold migration unless ``allow_same_host``). Exclusion is by
      host, as Nova's ``ignore_hosts``; the node is carried in the plan for the caller.
    - ``destination``: where the caller asks this move to land (host/node/cell,
      ``allow_cross_cell_move``, aggregates); carried in ``request.requested_destination``,
      never in ``persist``. Only operations that schedule take one.
    - ``source_cell``: the cell the instance lives in. A scheduled move is restricted to it
      (``requested_destination.cell``) unless the destination allows a cross-cell move, which
      only resize and cold migration may (Nova's ``_restrict_request_spec_to_cell``).

    - ``new_image``: the image a ``REBUILD`` or an ``EVACUATE`` gives the instance; it replaces
      the persisted image and its properties (Nova bug 2078999: left stale, the spec's image
      properties drift from the instance's), every other constraint is kept. A rebuild keeping
      its image id is not scheduled; with another image id it is scheduled on the source
      host/node only (``requested_destination``), as Nova's rebuild re-runs the scheduler
      restricted to ``instance.host``. A new image that would change the NUMA constraints
      the flavor and image derive is refused (Nova's ``ImageNUMATopologyRebuildConflict``).
    - ``numa_topology``, ``pci_requests``: ``RESIZE`` and ``RESIZE_REVERT`` re-derive them from
      the flavor they leave on the spec and the stored image (:mod:`specstore.moves.derived`: SR-IOV
      port requests are kept, flavor alias requests re-derived with the ``pci_aliases`` table)
      unless the caller passes a value (None included), which wins. A revert given the
      topology and requests from before the resize (Nova keeps them in the migration context
      as ``old_numa_topology``/``old_pci_requests``) restores exactly those. Other operations
      keep them as stored and refuse these arguments.

    Raises :class:`~specstore.errors.InvalidInputError` for arguments the operation does not
    accept or that contradict its rules.
    """
    op = _operation(operation)
    rule = MOVE_RULES[op]
    _check_flavors(op, rule, spec, new_flavor, old_flavor)
    excluded = _check_source(op, rule, source_host, source_node, allow_same_host)
    image_changed = _check_image(op, rule, spec, new_image)
    derives = rule.flavor != "keep"
    given = {"numa_topology": numa_topology, "pci_requests": pci_requests}
    for name, value in given.items():
        if not derives and not isinstance(value, Derive):
            raise InvalidInputError(f"{op.value} keeps the stored {name}; it takes no {name}")
    if not derives and pci_aliases is not None:
        raise InvalidInputError(f"{op.value} derives nothing; it takes no pci_aliases")
    if rule.same_host_on_new_image and destination is not None:
        raise InvalidInputError(f"{op.value} stays on the source host; it takes no destination")

    persisted = _without_transient(spec)
    if rule.flavor == "new" and new_flavor is not None:
        persisted.flavor = new_flavor.model_copy(deep=True)
    elif rule.flavor == "old" and old_flavor is not None:
        persisted.flavor = old_flavor.model_copy(deep=True)
    if new_image is not None:
        persisted.image = new_image.model_copy(deep=True)
    if derives:
        _rederive(persisted, numa_topology, pci_requests, pci_aliases)

    request = persisted.model_copy(deep=True)
    request._rev = None
    request.newer_minor_fields = None
    request.force_hosts = None
    request.force_nodes = None
    request.num_instances = 1
    request.ignore_hosts = [source_host] if excluded and source_host is not None else None
    if rule.same_host_on_new_image and image_changed:
        request.requested_destination = Destination(
            host=source_host, node=source_node, cell=source_cell
        )
    else:
        request.requested_destination = _request_destination(
            op, rule, destination, source_host if excluded else None, source_cell
        )
    return MovePlan(op, request, persisted, source_host, source_node, image_changed)


def _check_image(
    op: MoveOperation, rule: MoveRule, spec: RequestSpec, new_image: ImageMeta | None
) -> bool:
    """Validate ``new_image``; True when it is another image than the stored one."""
    if new_image is None:
        return False
    if rule.image != "may_change":
        raise InvalidInputError(f"{op.value} takes no new_image (rebuild and evacuate do)")
    old = spec.image
    changed = old is None or new_image.id is None or new_image.id != old.id
    if changed and derive_numa_topology(spec.flavor, new_image) != derive_numa_topology(
        spec.flavor, old
    ):
        raise InvalidInputError(
            f"{op.value}: the new image changes the NUMA constraints of the instance "
            "(hw_numa_*, hw_cpu_*, hw_mem_page_size); resize or re-create it instead"
        )
    return changed


def _rederive(
    persisted: RequestSpec,
    numa_topology: InstanceNUMATopology | Derive | None,
    pci_requests: InstancePCIRequests | Derive | None,
    pci_aliases: Mapping[str, PciAlias] | None,
) -> None:
    """Set the NUMA topology and PCI requests the persisted flavor and image derive, or the
    caller's values."""
    if isinstance(numa_topology, Derive):
        persisted.numa_topology = derive_numa_topology(persisted.flavor, persisted.image)
    else:
        persisted.numa_topology = _copy(numa_topology)
    if isinstance(pci_requests, Derive):
        alias_requests = derive_pci_alias_requests(persisted.flavor, persisted.image, pci_aliases)
        persisted.pci_requests = merge_pci_requests(persisted.pci_requests, alias_requests)
    else:
        persisted.pci_requests = _copy(pci_requests)


def _copy(value: _Part | None) -> _Part | None:
    return None if value is None else value.model_copy(deep=True)


def _operation(operation: MoveOperation | str) -> MoveOperation:
    try:
        return MoveOperation(operation)
    except ValueError:
        known = ", ".join(o.value for o in MoveOperation)
        raise InvalidInputError(f"unknown move operation {operation!r} (one of {known})") from None


def _check_flavors(
    op: MoveOperation,
    rule: MoveRule,
    spec: RequestSpec,
    new_flavor: Flavor | None,
    old_flavor: Flavor | None,
) -> None:
    if rule.flavor == "new":
        if new_flavor is None:
            raise InvalidInputError(f"{op.value} needs new_flavor")
        if new_flavor.flavorid == spec.flavor.flavorid:
            raise InvalidInputError(
                f"{op.value} to the flavor the instance already has ({new_flavor.flavorid!r});"
                " use cold_migrate to move without resizing"
            )
    elif new_flavor is not None:
        raise InvalidInputError(f"{op.value} takes no new_flavor (only resize changes flavor)")
    if rule.flavor == "old":
        if old_flavor is None:
            raise InvalidInputError(f"{op.value} needs old_flavor (the flavor to restore)")
    elif old_flavor is not None:
        raise InvalidInputError(f"{op.value} takes no old_flavor (only resize_revert does)")


def _check_source(
    op: MoveOperation,
    rule: MoveRule,
    source_host: str | None,
    source_node: str | None,
    allow_same_host: bool,
) -> bool:
    """Validate the source arguments; True when the source host must be excluded."""
    if source_node is not None and source_host is None:
        raise InvalidInputError("source_node given without source_host")
    if source_host is not None and not source_host:
        raise InvalidInputError("source_host must not be empty")
    if rule.source == "required" and source_host is None:
        raise InvalidInputError(f"{op.value} needs source_host (the host the instance is on)")
    if rule.source == "forbidden" and source_host is not None:
        raise InvalidInputError(
            f"{op.value} schedules an offloaded instance, which has no source host"
        )
    if allow_same_host and rule.exclude_source != "unless_same_host_allowed":
        raise InvalidInputError(f"{op.value} cannot allow the same host")
    if rule.exclude_source == "always":
        return True
    return rule.exclude_source == "unless_same_host_allowed" and not allow_same_host


def _request_destination(
    op: MoveOperation,
    rule: MoveRule,
    destination: Destination | None,
    excluded_host: str | None,
    source_cell: str | None,
) -> Destination | None:
    if not rule.schedules:
        if destination is not None:
            raise InvalidInputError(f"{op.value} is not scheduled; it takes no destination")
        return None
    if destination is None and source_cell is None:
        return None
    dest = destination.model_copy(deep=True) if destination is not None else Destination()
    if dest.allow_cross_cell_move and not rule.cross_cell:
        raise InvalidInputError(f"{op.value} cannot move the instance to another cell")
    if excluded_host is not None and dest.host == excluded_host:
        raise InvalidInputError(f"{op.value} must not land on the source host {excluded_host!r}")
    if source_cell is not None and not dest.allow_cross_cell_move:
        if dest.cell is not None and dest.cell != source_cell:
            raise InvalidInputError(
                f"{op.value} stays in cell {source_cell!r}; destination cell {dest.cell!r} "
                "needs allow_cross_cell_move"
            )
        dest.cell = source_cell
    return dest


def _field_default(model: type[RequestSpec] | type[InstanceGroup], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)


def _without_transient(spec: RequestSpec) -> RequestSpec:
    """A deep copy with every transient field (and the group's members/hosts) at its default.

    Unlike :func:`~specstore.model.strip_transient` it keeps the private state (the rev, and
    fields read from a newer minor schema version, which a save writes back untouched).
    """
    result = spec.model_copy(deep=True)
    for name in sorted(TRANSIENT_FIELDS):
        setattr(result, name, _field_default(RequestSpec, name))
    if result.instance_group is not None:
        for name in sorted(TRANSIENT_GROUP_FIELDS):
            setattr(result.instance_group, name, _field_default(InstanceGroup, name))
    return result


# -- plain data for a scheduler ----------------------------------------------------------------

SCHEDULING_IMAGE_PROPERTY_PREFIXES: tuple[str, ...] = ("hw_", "img_", "os_", "trait:")
"""Image properties with these prefixes reach the scheduler (Nova's ImagePropertiesFilter,
NUMA and CPU topology, image-metadata and trait prefilters, secure boot, ...)."""
SCHEDULING_IMAGE_PROPERTIES: frozenset[str] = frozenset(
    {"architecture", "hypervisor_type", "hypervisor_version_requires", "vm_mode"}
)
"""Legacy un-prefixed property names the scheduler still honours."""

_NUMA_PLACEMENT_RESULTS = {"cells": {"__all__": {"cpu_pinning", "cpuset_reserved"}}}
"""Per-host results of a NUMA fit, not requirements: left out of the constraints."""


def scheduling_image_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """The image properties that constrain scheduling (see the two tables above)."""
    return {
        name: value
        for name, value in properties.items()
        if name in SCHEDULING_IMAGE_PROPERTIES
        or name.startswith(SCHEDULING_IMAGE_PROPERTY_PREFIXES)
    }


def disk_gb(spec: RequestSpec) -> int:
    """Local disk the destination must provide: root (none when booted from volume),
    ephemeral and swap (MiB rounded up to GiB), as Nova's ``resources_from_flavor``."""
    flavor = spec.flavor
    root = 0 if spec.is_bfv else flavor.root_gb
    return root + flavor.ephemeral_gb + -(-flavor.swap // 1024)


def scheduler_constraints(spec: RequestSpec) -> dict[str, Any]:
    """What must hold on the destination, as JSON-serializable plain data.

    Keys: ``instance_uuid``, ``project_id``, ``user_id``, ``num_instances``,
    ``availability_zone``, ``flavor`` (id, name and sizes), ``resources`` (``VCPU``,
    ``MEMORY_MB``, ``DISK_GB``), ``extra_specs``, ``is_bfv``, ``image`` (id, disk format and
    the scheduling-relevant properties, or None), ``numa_topology``, ``pci_requests``,
    ``group`` (uuid, policy, rules, members, hosts, or None), ``scheduler_hints``,
    ``ignore_hosts``, ``force_hosts``, ``force_nodes``, ``requested_destination``,
    ``requested_resources``, ``request_level_params``, ``network_metadata``.
    """
    flavor = spec.flavor
    group = spec.instance_group
    image = spec.image
    return {
        "instance_uuid": str(spec.instance_uuid),
        "project_id": spec.project_id,
        "user_id": spec.user_id,
        "num_instances": spec.num_instances,
        "availability_zone": spec.availability_zone,
        "flavor": {
            "flavorid": flavor.flavorid,
            "name": flavor.name,
            "vcpus": flavor.vcpus,
            "memory_mb": flavor.memory_mb,
            "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb,
            "swap": flavor.swap,
        },
        "resources": {
            "VCPU": flavor.vcpus,
            "MEMORY_MB": flavor.memory_mb,
            "DISK_GB": disk_gb(spec),
        },
        "extra_specs": dict(flavor.extra_specs),
        "is_bfv": spec.is_bfv,
        "image": None
        if image is None
        else {
            "id": None if image.id is None else str(image.id),
            "disk_format": image.disk_format,
            "properties": scheduling_image_properties(
                image.model_dump(mode="json", include={"properties"})["properties"]
            ),
        },
        "numa_topology": None
        if spec.numa_topology is None
        else spec.numa_topology.model_dump(mode="json", exclude=_NUMA_PLACEMENT_RESULTS),
        "pci_requests": []
        if spec.pci_requests is None
        else [r.model_dump(mode="json") for r in spec.pci_requests.requests],
        "group": None
        if group is None
        else {
            "uuid": str(group.uuid),
            "policy": group.policy,
            "rules": dict(group.rules),
            "members": list(group.members),
            "hosts": list(group.hosts),
        },
        "scheduler_hints": {name: list(values) for name, values in spec.scheduler_hints.items()},
        "ignore_hosts": list(spec.ignore_hosts or []),
        "force_hosts": list(spec.force_hosts or []),
        "force_nodes": list(spec.force_nodes or []),
        "requested_destination": _dump(spec.requested_destination),
        "requested_resources": [g.model_dump(mode="json") for g in spec.requested_resources],
        "request_level_params": _dump(spec.request_level_params),
        "network_metadata": _dump(spec.network_metadata),
    }


def _dump(model: SpecModel | None) -> dict[str, Any] | None:
    if model is None:
        return None
    result: dict[str, Any] = model.model_dump(mode="json")
    return result


# -- Nova's legacy dict forms ------------------------------------------------------------------


def to_legacy_request_spec(spec: RequestSpec) -> dict[str, Any]:
    """Nova's legacy ``request_spec`` dict (``RequestSpec.to_legacy_request_spec_dict``):
    ``num_instances``, ``image`` (``{}`` when none), ``instance_properties`` (uuid, project,
    user, availability zone, NUMA topology, PCI requests and the flavor's sizes) and
    ``instance_type`` (the flavor), as JSON-serializable data."""
    flavor = spec.flavor
    return {
        "num_instances": spec.num_instances,
        "image": {} if spec.image is None else spec.image.model_dump(mode="json"),
        "instance_properties": {
            "uuid": str(spec.instance_uuid),
            "project_id": spec.project_id,
            "user_id": spec.user_id,
            "availability_zone": spec.availability_zone,
            "numa_topology": _dump(spec.numa_topology),
            "pci_requests": _dump(spec.pci_requests),
            "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb,
            "memory_mb": flavor.memory_mb,
            "vcpus": flavor.vcpus,
        },
        "instance_type": flavor.model_dump(mode="json"),
    }


def to_legacy_filter_properties(spec: RequestSpec) -> dict[str, Any]:
    """Nova's legacy ``filter_properties`` dict (``to_legacy_filter_properties_dict``).

    As in Nova, a key is present only when the field is set and non-empty: ``ignore_hosts``,
    ``force_hosts``, ``force_nodes``, ``retry`` (``num_attempts`` and ``hosts`` as
    ``[host, node]`` pairs), ``limits`` (the limits that are set), the group info
    (``group_updated``, ``group_hosts``, ``group_policies``, ``group_members``, ``group_uuid``;
    Nova's sets become sorted lists), ``scheduler_hints`` (one-element lists unwrapped, as
    ``get_scheduler_hint`` does) and ``requested_destination``.
    """
    props: dict[str, Any] = {}
    if spec.ignore_hosts:
        props["ignore_hosts"] = list(spec.ignore_hosts)
    if spec.force_hosts:
        props["force_hosts"] = list(spec.force_hosts)
    if spec.force_nodes:
        props["force_nodes"] = list(spec.force_nodes)
    if spec.retry is not None:
        props["retry"] = {
            "num_attempts": spec.retry.num_attempts,
            "hosts": [[h.host, h.hypervisor_hostname] for h in spec.retry.hosts],
        }
    if spec.limits is not None:
        props["limits"] = spec.limits.model_dump(mode="json", exclude_none=True)
    if spec.instance_group is not None:
        group = spec.instance_group
        props.update(
            {
                "group_updated": True,
                "group_hosts": sorted(set(group.hosts)),
                "group_policies": [group.policy],
                "group_members": sorted(set(group.members)),
                "group_uuid": str(group.uuid),
            }
        )
    if spec.scheduler_hints:
        props["scheduler_hints"] = {
            name: values[0] if len(values) == 1 else list(values)
            for name, values in spec.scheduler_hints.items()
        }
    if spec.requested_destination is not None:
        props["requested_destination"] = _dump(spec.requested_destination)
    return props
