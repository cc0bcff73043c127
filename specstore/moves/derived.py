"""Constraints derived from a flavor's extra specs and an image's properties (pure).

A resize must re-derive the guest NUMA topology and the flavor's PCI alias requests from the
*new* flavor, or the instance is scheduled (and claimed) with the old flavor's shape: Nova
bugs 1805767, 1941005 and 1983753. :func:`derive` does it for the common keys, following the
precedence of Nova's ``nova.virt.hardware`` and ``nova.pci.request``:

===========================  ===========================  ====================================
flavor extra spec            image property               rule
===========================  ===========================  ====================================
hw:numa_nodes                hw_numa_nodes                either one, not both (error); an
                                                          integer >= 1
hw:numa_cpus.N               hw_numa_cpus.N               the flavor's lists win; the image
hw:numa_mem.N                hw_numa_mem.N                may not set them too (error). CPUs
                                                          and memory are given for every node
                                                          or for none; CPUs cover 0..vcpus-1
                                                          once each; memory (MiB) sums to
                                                          memory_mb. No lists: an even split
                                                          (must divide)
hw:cpu_policy                hw_cpu_policy                flavor dedicated wins; flavor shared
                                                          forbids an image dedicated/mixed;
                                                          unset flavor: the image's
hw:cpu_thread_policy         hw_cpu_thread_policy         flavor prefer/unset: the image may
                                                          set it; otherwise the image must
                                                          agree (kept only when CPUs are
                                                          pinned)
hw:mem_page_size             hw_mem_page_size             the image may refine only a flavor
                                                          large/any; an image value without a
                                                          flavor value is refused
pci_passthrough:alias        (none)                       name:count,... resolved in the
                                                          caller's alias table; an unknown
                                                          name is an error
hw:pci_numa_affinity_policy  hw_pci_numa_affinity_policy  either, or both equal; overrides the
                                                          alias's numa_policy
===========================  ===========================  ====================================

A NUMA topology exists when a node count, a page size or a ``dedicated`` CPU policy is asked
for (one node by default); the cells carry the CPUs (``pcpuset`` when dedicated, ``cpuset``
otherwise), memory, page size and policies. A page size given in numbers (``2048`` is KiB,
``2MB``, ``1GiB``) becomes the cells' ``pagesize`` in KiB; ``small``, ``large`` and ``any``
cannot be held by the model's ``pagesize`` (KiB only): the cells get none and the symbolic
request stays where the scheduler reads it, in the flavor's extra specs.

Left to the caller (pass the value to :func:`specstore.moves.spec_for_move`, it wins over the
derivation): ``hw:cpu_policy=mixed`` and ``hw:cpu_dedicated_mask`` (refused here with a
message saying so), ``hw:cpu_realtime*``, ``hw:emulator_threads_policy``, ``hw:pmem``, CPU
topology (``hw:cpu_sockets`` etc., not part of the spec), SR-IOV port PCI requests (they
come from Neutron ports and are kept as they are: only alias requests are re-derived).

Every conflict or malformed value raises :class:`~specstore.errors.InvalidInputError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast, get_args

from specstore.errors import InvalidInputError
from specstore.model import (
    Flavor,
    ImageMeta,
    InstanceNUMACell,
    InstanceNUMATopology,
    InstancePCIRequest,
    InstancePCIRequests,
)
from specstore.model.resources import CPUPolicy, CPUThreadPolicy, PCINUMAPolicy

HANDLED_FLAVOR_KEYS: tuple[str, ...] = (
    "hw:numa_nodes",
    "hw:numa_cpus.N",
    "hw:numa_mem.N",
    "hw:cpu_policy",
    "hw:cpu_thread_policy",
    "hw:mem_page_size",
    "pci_passthrough:alias",
    "hw:pci_numa_affinity_policy",
)
"""The flavor extra specs :func:`derive` reads (``N``: a node number)."""
HANDLED_IMAGE_PROPERTIES: tuple[str, ...] = (
    "hw_numa_nodes",
    "hw_numa_cpus.N",
    "hw_numa_mem.N",
    "hw_cpu_policy",
    "hw_cpu_thread_policy",
    "hw_mem_page_size",
    "hw_pci_numa_affinity_policy",
)
"""The image properties :func:`derive` reads."""
LEFT_TO_CALLER: tuple[str, ...] = (
    "hw:cpu_policy=mixed",
    "hw:cpu_dedicated_mask",
    "hw:cpu_realtime",
    "hw:cpu_realtime_mask",
    "hw:emulator_threads_policy",
    "hw:pmem",
)
"""Keys that shape the NUMA topology but are not derived: the caller passes the topology."""

SYMBOLIC_PAGE_SIZES = frozenset({"small", "large", "any"})
_UNITS = {"": 1, "K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}
_PAGE_SIZE = re.compile(r"([0-9]+)\s*(?:([KMGT])I?B?)?", re.IGNORECASE)
"""A page size in numbers: KiB without a unit, else K/M/G/T (``KB``, ``MiB``, ``G``, ...)."""


@dataclass(frozen=True)
class PciAlias:
    """One entry of the PCI alias table (Nova's ``[pci] alias``): the device specs a request
    for ``name`` matches (any one of them) and the alias's NUMA affinity policy."""

    name: str
    specs: tuple[Mapping[str, str], ...]
    numa_policy: PCINUMAPolicy | None = None


def pci_alias_table(entries: Iterable[Mapping[str, Any]]) -> dict[str, PciAlias]:
    """The alias table from Nova-style ``[pci] alias`` entries (``name``, ``numa_policy`` and
    the device spec: ``vendor_id``, ``product_id``, ``device_type``, ...). Entries with the same
    name add device specs to it; they must agree on ``numa_policy``."""
    table: dict[str, PciAlias] = {}
    for entry in entries:
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"PCI alias entry without a name: {dict(entry)!r}")
        policy = _policy(entry.get("numa_policy"), PCINUMAPolicy, f"PCI alias {name!r}")
        spec = {k: str(v) for k, v in entry.items() if k not in ("name", "numa_policy")}
        known = table.get(name)
        if known is not None and known.numa_policy != policy:
            raise InvalidInputError(f"PCI alias {name!r} is defined with two numa_policy values")
        specs = (*(known.specs if known else ()), spec)
        table[name] = PciAlias(name, specs, policy)
    return table


@dataclass(frozen=True)
class Derived:
    """What :func:`derive` found: the NUMA topology and the flavor's PCI alias requests."""

    numa_topology: InstanceNUMATopology | None
    pci_alias_requests: list[InstancePCIRequest] = field(default_factory=list)


def derive(
    flavor: Flavor,
    image: ImageMeta | None,
    pci_aliases: Mapping[str, PciAlias] | None = None,
) -> Derived:
    """The NUMA topology and PCI alias requests ``flavor`` and ``image`` ask for."""
    return Derived(
        derive_numa_topology(flavor, image),
        derive_pci_alias_requests(flavor, image, pci_aliases),
    )


def merge_pci_requests(
    current: InstancePCIRequests | None, alias_requests: list[InstancePCIRequest]
) -> InstancePCIRequests | None:
    """``current``'s requests that do not come from a flavor alias (SR-IOV ports), then
    ``alias_requests``; None when nothing is left."""
    kept = [] if current is None else [r for r in current.requests if r.alias_name is None]
    requests = [r.model_copy(deep=True) for r in kept + alias_requests]
    return InstancePCIRequests(requests=requests) if requests else None


# -- NUMA ---------------------------------------------------------------------------------------


def derive_numa_topology(flavor: Flavor, image: ImageMeta | None) -> InstanceNUMATopology | None:
    """The guest NUMA topology (None when neither flavor nor image asks for one)."""
    extra = flavor.extra_specs
    props: Mapping[str, Any] = image.properties if image is not None else {}
    nodes = _node_count(extra, props)
    pagesize, page_request = _page_size(extra, props)
    cpu_policy = _cpu_policy(extra, props)
    thread_policy = _thread_policy(extra, props)
    if "hw:cpu_dedicated_mask" in extra or cpu_policy == "mixed":
        raise InvalidInputError(
            "hw:cpu_policy=mixed / hw:cpu_dedicated_mask are not derived: pass numa_topology"
        )
    if nodes is None and page_request is None and cpu_policy != "dedicated":
        return None
    count = nodes or 1
    cpus = _per_node(extra, props, "numa_cpus", count, _cpu_set)
    mems = _per_node(extra, props, "numa_mem", count, _mebibytes)
    if (cpus is None) != (mems is None):
        raise InvalidInputError("NUMA CPUs and memory must both be given per node, or neither")
    if cpus is None or mems is None:
        cpus, mems = _even_split(flavor, count)
    else:
        _check_manual(flavor, cpus, mems)
    dedicated = cpu_policy == "dedicated"
    cells = [
        InstanceNUMACell(
            id=node,
            memory=mems[node],
            cpuset=set() if dedicated else set(cpus[node]),
            pcpuset=set(cpus[node]) if dedicated else set(),
            pagesize=pagesize,
            cpu_policy=cpu_policy,
            cpu_thread_policy=thread_policy if dedicated else None,
        )
        for node in range(count)
    ]
    return InstanceNUMATopology(cells=cells)


def _image_value(props: Mapping[str, Any], name: str) -> str | None:
    value = props.get(name)
    if value is None:
        return None
    if isinstance(value, list):  # Nova's ImageMetaProps form of hw_numa_cpus.N
        return ",".join(str(v) for v in value)
    return str(value)


def _pair(extra: Mapping[str, str], props: Mapping[str, Any], key: str) -> tuple[Any, Any]:
    return extra.get(f"hw:{key}"), _image_value(props, f"hw_{key}")


def _node_count(extra: Mapping[str, str], props: Mapping[str, Any]) -> int | None:
    flavor_nodes, image_nodes = _pair(extra, props, "numa_nodes")
    if flavor_nodes is not None and image_nodes is not None:
        raise InvalidInputError(
            "the image may not set hw_numa_nodes: the flavor sets hw:numa_nodes"
        )
    value = flavor_nodes if flavor_nodes is not None else image_nodes
    if value is None:
        return None
    if not str(value).strip().isdigit() or int(value) < 1:
        raise InvalidInputError(f"NUMA node count must be an integer >= 1, got {value!r}")
    return int(value)


def _page_size(extra: Mapping[str, str], props: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """(size in KiB or None when symbolic, the request that is in force)."""
    flavor_size, image_size = _pair(extra, props, "mem_page_size")
    if flavor_size is None:
        if image_size is not None:
            raise InvalidInputError(
                f"the image asks for page size {image_size!r}; the flavor sets no hw:mem_page_size"
            )
        return None, None
    request: str = flavor_size
    _page_kib(request)
    if image_size is not None:
        if request.strip().lower() not in ("large", "any"):
            raise InvalidInputError(
                f"the image's page size {image_size!r} contradicts the flavor's {request!r}"
            )
        request = image_size
    return _page_kib(request), request


def _page_kib(request: str) -> int | None:
    if request.strip().lower() in SYMBOLIC_PAGE_SIZES:
        return None
    match = _PAGE_SIZE.fullmatch(request.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInputError(f"invalid memory page size {request!r}")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").upper()]


def _policy(value: object, allowed: Any, what: str) -> Any:
    if value is None:
        return None
    choices = get_args(allowed)
    if value not in choices:
        raise InvalidInputError(f"{what}: {value!r} is not one of {', '.join(choices)}")
    return value


def _cpu_policy(extra: Mapping[str, str], props: Mapping[str, Any]) -> CPUPolicy | None:
    flavor_value, image_value = _pair(extra, props, "cpu_policy")
    flavor_policy = cast(CPUPolicy | None, _policy(flavor_value, CPUPolicy, "hw:cpu_policy"))
    image_policy = cast(CPUPolicy | None, _policy(image_value, CPUPolicy, "hw_cpu_policy"))
    if flavor_policy == "dedicated":
        return flavor_policy
    forbidden = {"shared": ("dedicated", "mixed"), "mixed": ("dedicated",)}
    if flavor_policy is not None:
        if image_policy in forbidden[flavor_policy]:
            raise InvalidInputError(
                f"the image's hw_cpu_policy={image_policy} contradicts the flavor's "
                f"hw:cpu_policy={flavor_policy}"
            )
        return flavor_policy
    return image_policy


def _thread_policy(extra: Mapping[str, str], props: Mapping[str, Any]) -> CPUThreadPolicy | None:
    flavor_value, image_value = _pair(extra, props, "cpu_thread_policy")
    flavor_policy = _policy(flavor_value, CPUThreadPolicy, "hw:cpu_thread_policy")
    image_policy = _policy(image_value, CPUThreadPolicy, "hw_cpu_thread_policy")
    if flavor_policy in (None, "prefer"):
        return cast(CPUThreadPolicy | None, image_policy or flavor_policy)
    if image_policy is not None and image_policy != flavor_policy:
        raise InvalidInputError(
            f"the image's hw_cpu_thread_policy={image_policy} contradicts the flavor's "
            f"hw:cpu_thread_policy={flavor_policy}"
        )
    return cast(CPUThreadPolicy, flavor_policy)


def _per_node(
    extra: Mapping[str, str], props: Mapping[str, Any], key: str, count: int, parse: Any
) -> list[Any] | None:
    """Per-node values of ``hw:<key>.N`` (or the image's ``hw_<key>.N``), None when unset."""
    flavor_nodes = _indexed(extra, f"hw:{key}.")
    image_nodes = _indexed({k: _image_value(props, k) or "" for k in props}, f"hw_{key}.")
    if flavor_nodes and image_nodes:
        raise InvalidInputError(f"the image may not set hw_{key}.N: the flavor sets hw:{key}.N")
    chosen = flavor_nodes or image_nodes
    if not chosen:
        return None
    if sorted(chosen) != list(range(count)):
        raise InvalidInputError(
            f"{key}.N must be given for nodes 0..{count - 1} exactly, got {sorted(chosen)}"
        )
    return [parse(chosen[node], f"{key}.{node}") for node in range(count)]


def _indexed(values: Mapping[str, str], prefix: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for name, value in values.items():
        if name.startswith(prefix):
            suffix = name[len(prefix) :]
            if not suffix.isdigit():
                raise InvalidInputError(f"{name}: the node number must be an integer")
            found[int(suffix)] = value
    return found


def _cpu_set(text: str, what: str) -> list[int]:
    """Nova's CPU spec: ``0-3,^2,5`` (ranges, exclusions)."""
    include: set[int] = set()
    exclude: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        target = include
        if part.startswith("^"):
            target, part = exclude, part[1:].strip()
        bounds = part.split("-")
        if not all(b.strip().isdigit() for b in bounds) or len(bounds) > 2:
            raise InvalidInputError(f"{what}: invalid CPU list {text!r}")
        low, high = int(bounds[0]), int(bounds[-1])
        if low > high:
            raise InvalidInputError(f"{what}: invalid CPU range {part!r}")
        target.update(range(low, high + 1))
    cpus = sorted(include - exclude)
    if not cpus:
        raise InvalidInputError(f"{what}: no CPU in {text!r}")
    return cpus


def _mebibytes(text: str, what: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise InvalidInputError(f"{what}: memory must be a positive integer (MiB), got {text!r}")
    return int(text)


def _even_split(flavor: Flavor, count: int) -> tuple[list[list[int]], list[int]]:
    if flavor.vcpus % count or flavor.memory_mb % count:
        raise InvalidInputError(
            f"{count} NUMA nodes do not divide {flavor.vcpus} vCPUs and {flavor.memory_mb} MiB "
            "evenly: give hw:numa_cpus.N and hw:numa_mem.N"
        )
    per_cpu, per_mem = flavor.vcpus // count, flavor.memory_mb // count
    cpus = [list(range(n * per_cpu, (n + 1) * per_cpu)) for n in range(count)]
    return cpus, [per_mem] * count


def _check_manual(flavor: Flavor, cpus: list[list[int]], mems: list[int]) -> None:
    seen: set[int] = set()
    for node, node_cpus in enumerate(cpus):
        for cpu in node_cpus:
            if cpu >= flavor.vcpus:
                raise InvalidInputError(
                    f"numa_cpus.{node}: CPU {cpu} is out of range (the flavor has "
                    f"{flavor.vcpus} vCPUs)"
                )
            if cpu in seen:
                raise InvalidInputError(f"numa_cpus.{node}: CPU {cpu} is in two NUMA nodes")
            seen.add(cpu)
    if len(seen) != flavor.vcpus:
        missing = sorted(set(range(flavor.vcpus)) - seen)
        raise InvalidInputError(f"CPUs {missing} are in no NUMA node")
    if sum(mems) != flavor.memory_mb:
        raise InvalidInputError(
            f"NUMA memory adds up to {sum(mems)} MiB, the flavor has {flavor.memory_mb} MiB"
        )


# -- PCI ----------------------------------------------------------------------------------------


def derive_pci_alias_requests(
    flavor: Flavor,
    image: ImageMeta | None = None,
    pci_aliases: Mapping[str, PciAlias] | None = None,
) -> list[InstancePCIRequest]:
    """The requests of the flavor's ``pci_passthrough:alias`` (``name:count,...``)."""
    text = flavor.extra_specs.get("pci_passthrough:alias")
    if text is None:
        return []
    props: Mapping[str, Any] = image.properties if image is not None else {}
    flavor_value, image_value = (
        flavor.extra_specs.get("hw:pci_numa_affinity_policy"),
        _image_value(props, "hw_pci_numa_affinity_policy"),
    )
    if flavor_value is not None and image_value is not None and flavor_value != image_value:
        raise InvalidInputError(
            f"the image's hw_pci_numa_affinity_policy={image_value} contradicts the flavor's "
            f"hw:pci_numa_affinity_policy={flavor_value}"
        )
    override = _policy(flavor_value or image_value, PCINUMAPolicy, "pci NUMA affinity policy")
    requests = []
    for item in text.split(","):
        name, sep, count = (part.strip() for part in item.partition(":"))
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise InvalidInputError(f"pci_passthrough:alias: invalid entry {item.strip()!r}")
        if pci_aliases is None or name not in pci_aliases:
            raise InvalidInputError(
                f"pci_passthrough:alias names {name!r}, which the PCI alias table does not define"
            )
        alias = pci_aliases[name]
        requests.append(
            InstancePCIRequest(
                count=int(count),
                spec=[dict(s) for s in alias.specs],
                alias_name=name,
                numa_policy=override or alias.numa_policy,
            )
        )
    return requests
