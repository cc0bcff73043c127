# Nova's RequestSpec versioned object, as nova/objects/request_spec.py numbers it:
#   1.0  initial version                      1.8  added security_groups
#   1.1  ImageMeta version 1.6                1.9  added user_id
#   1.2  SchedulerRetries version 1.1         1.10 added network_metadata
#   1.3  InstanceGroup version 1.10           1.11 added is_bfv
#   1.4  ImageMeta version 1.7                1.12 added requested_resources
#   1.5  get_by_instance_uuid/create/save     1.13 added request_level_params
#   1.6  added requested_destination          1.14 added requested_networks
#   1.7  added destroy()                      1.15 no new primitive field (newest we read/write)
# obj_make_compatible drops each added field for older targets; nested objects keep the
# versions below whatever the target (as the reference fixtures do).
"""RequestSpec <-> Nova versioned-object primitive (``nova_object.*`` dicts).

Pure functions. Each Nova object is described by a small table (:class:`_Obj`) of fields:
the Nova key, the model attribute it maps to (renames: ``_rules`` -> ``rules``,
``cpu_pinning_raw`` -> ``cpu_pinning``), how the value converts, when it is emitted and which
RequestSpec minor version added it.

Null versus absent follows Nova's ``obj_attr_is_set``: a field read from a primitive is marked
set on the model (pydantic's ``model_fields_set``), so a field Nova left unset stays absent on
export and one it set to null comes back as null.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import ValidationError

from specstore.errors import NovaPrimitiveError
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

__all__ = ["LATEST_VERSION", "from_nova_primitive", "to_nova_primitive"]

LATEST_VERSION = "1.15"
NAMESPACE = "nova"
_K_NAME = "nova_object.name"
_K_NAMESPACE = "nova_object.namespace"
_K_VERSION = "nova_object.version"
_K_DATA = "nova_object.data"
_K_CHANGES = "nova_object.changes"
_ENVELOPE_KEYS = frozenset({_K_NAME, _K_NAMESPACE, _K_VERSION, _K_DATA, _K_CHANGES})
_REPR_LIMIT = 80
_VERSION_RE = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})")
_DIGITS_RE = re.compile(r"[0-9]{1,9}")
_UNEXPECTED = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, RecursionError)
"""Safety net: whatever else a malformed primitive trips over still becomes NovaPrimitiveError."""


class _Unset:
    """Returned by a loader when Nova's value means "leave the model default, not set"."""


_UNSET = _Unset()


@dataclass(frozen=True)
class _Out:
    """Export context: what nested objects need from the enclosing spec."""

    instance_uuid: str


Loader = Callable[[Any, str], Any]
"""(Nova value, path for error messages) -> value handed to the model."""
Dumper = Callable[[Any, _Out], Any]
"""(model value, export context) -> JSON-ready Nova value."""


@dataclass(frozen=True)
class _Codec:
    load: Loader
    dump: Dumper


class Emit(Enum):
    """When a field is written to ``nova_object.data``."""

    ALWAYS = "always"  # always present, null when None
    OMIT_NULL = "omit-null"  # absent when None (Nova field not nullable, or never seen null)
    IF_SET = "if-set"  # absent when empty and never set (an attribute Nova never set)
    NULL_UNLESS_SET = "null-unless-set"  # null when empty and never set (Nova's persisted form)
    IMPORT_ONLY = "import-only"  # legacy key: read when the main key is missing, never written


# --- helpers -------------------------------------------------------------------------------


def _fail(path: str, message: str) -> NovaPrimitiveError:
    return NovaPrimitiveError(f"{path}: {message}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _parse_version(text: Any, path: str) -> tuple[int, int]:
    if not isinstance(text, str):
        raise _fail(path, f"nova_object.version must be a 'major.minor' string, got {_short(text)}")
    match = _VERSION_RE.fullmatch(text)
    if match is None:
        raise _fail(path, f"nova_object.version must be 'major.minor', got {_short(text)}")
    return int(match[1]), int(match[2])


def _minor(version: str) -> int:
    return int(version.partition(".")[2])


def _unwrap(
    value: Any, name: str, path: str, latest: str, newer_minor_ok: bool
) -> Mapping[str, Any]:
    """Check the envelope of one Nova object primitive and return its ``nova_object.data``."""
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a {name} object primitive, got {_type_name(value)}")
    stray = [k for k in value if k not in _ENVELOPE_KEYS]
    if stray:
        raise _fail(path, f"unexpected key(s) in a {name} primitive: {sorted(map(str, stray))}")
    got = value.get(_K_NAME)
    if got != name:
        raise _fail(path, f"expected a {name} object, got nova_object.name {_short(got)}")
    if value.get(_K_NAMESPACE) != NAMESPACE:
        raise _fail(
            path, f"nova_object.namespace must be 'nova', got {_short(value.get(_K_NAMESPACE))}"
        )
    if _K_VERSION not in value:
        raise _fail(path, "nova_object.version is missing")
    major, minor = _parse_version(value[_K_VERSION], path)
    if major != 1 or (not newer_minor_ok and minor > _minor(latest)):
        newest = "1.x" if newer_minor_ok else f"1.0 to {latest}"
        raise _fail(path, f"{name} version {value[_K_VERSION]} is not supported (reads {newest})")
    data = value.get(_K_DATA)
    if not isinstance(data, Mapping):
        raise _fail(path, f"nova_object.data must be an object, got {_type_name(data)}")
    if not all(isinstance(k, str) for k in data):
        raise _fail(path, "nova_object.data keys must be strings")
    changes = value.get(_K_CHANGES, [])
    if not isinstance(changes, list) or not all(isinstance(c, str) for c in changes):
        raise _fail(path, "nova_object.changes must be a list of field names")
    return data


def _wrap(name: str, version: str, data: dict[str, Any], *, changes: bool = True) -> dict[str, Any]:
    primitive: dict[str, Any] = {
        _K_NAME: name,
        _K_NAMESPACE: NAMESPACE,
        _K_VERSION: version,
        _K_DATA: data,
    }
    if changes:
        primitive[_K_CHANGES] = sorted(data)
    return primitive


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, dict, set, frozenset)) and not value)


# --- value codecs --------------------------------------------------------------------------


def _load_plain(value: Any, path: str) -> Any:
    return value  # the model (strict mode) checks type and range


def _dump_plain(value: Any, out: _Out) -> Any:
    return copy.deepcopy(value)


PLAIN = _Codec(_load_plain, _dump_plain)
"""JSON value the model takes as is (strict validation checks its type)."""

SAME = ""
"""``_F.rename`` default: the model attribute has the Nova field's name."""


@dataclass(frozen=True)
class _F:
    """One field of a Nova object."""

    nova: str
    codec: _Codec = PLAIN
    emit: Emit = Emit.ALWAYS
    since: int = 0  # minor version of the object that added the field
    rename: str | None = SAME  # model attribute; None: implied by the spec (instance_uuid)

    @property
    def attr(self) -> str | None:
        return self.nova if self.rename == SAME else self.rename


@dataclass(frozen=True)
class _Obj:
    """One Nova object: its name, the version written, the model class and the field table."""

    name: str
    version: str  # version written; on read any 1.x is accepted unless newer_minor_ok is False
    model: type[SpecModel]
    fields: tuple[_F, ...]
    ignored: frozenset[str] = frozenset()  # Nova fields without a slot in the model: dropped
    open: bool = False  # a foreign object we only take a few fields from: ignore the rest
    newer_minor_ok: bool = True


def _plain(*names: str) -> tuple[_F, ...]:
    """Fields that map one to one, always emitted (null when None)."""
    return tuple(_F(name) for name in names)


def _only(emit: Emit, codec: _Codec, *names: str) -> tuple[_F, ...]:
    return tuple(_F(name, codec, emit) for name in names)


def _or_default(codec: _Codec) -> _Codec:
    """Nova's null means "model default, not set" (e.g. scheduler_hints, group members)."""

    def load(value: Any, path: str) -> Any:
        return _UNSET if value is None else codec.load(value, path)

    return _Codec(load, codec.dump)


def _null_is_empty(codec: _Codec, empty: Callable[[], Any]) -> _Codec:
    """Nova's null is our empty collection, both ways (e.g. requested_resources)."""

    def load(value: Any, path: str) -> Any:
        return empty() if value is None else codec.load(value, path)

    def dump(value: Any, out: _Out) -> Any:
        return None if _is_empty(value) else codec.dump(value, out)

    return _Codec(load, dump)


def _load_uuid(value: Any, path: str) -> uuid.UUID | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(path, f"expected a UUID string, got {_type_name(value)}")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _fail(path, f"malformed UUID {_short(value)}") from None


def _dump_str(value: Any, out: _Out) -> Any:
    return None if value is None else str(value)


UUID = _Codec(_load_uuid, _dump_str)


def _require_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected a list, got {_type_name(value)}")
    return value


def _load_uuid_list(value: Any, path: str) -> Any:
    if value is None:
        return None
    items = _require_list(value, path)
    return [_load_uuid(item, f"{path}[{i}]") for i, item in enumerate(items)]


def _dump_str_list(value: Any, out: _Out) -> Any:
    return None if value is None else [str(v) for v in value]


UUID_LIST = _Codec(_load_uuid_list, _dump_str_list)


def _load_set(value: Any, path: str) -> Any:
    if value is None:
        return None
    items = _require_list(value, path)
    for i, item in enumerate(items):
        if isinstance(item, (list, dict)):
            raise _fail(f"{path}[{i}]", f"expected a scalar set member, got {_type_name(item)}")
    return set(items)


def _dump_set(value: Any, out: _Out) -> Any:
    return None if value is None else sorted(value)


SET = _Codec(_load_set, _dump_set)
"""Nova Set*Field: a JSON list; sorted on export."""


def _load_datetime(value: Any, path: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(path, f"expected an ISO 8601 date-time string, got {_type_name(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(path, f"malformed ISO 8601 date-time {_short(value)}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _dump_datetime(value: Any, out: _Out) -> Any:
    if value is None:
        return None
    moment: datetime = value.astimezone(timezone.utc)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


DATETIME = _Codec(_load_datetime, _dump_datetime)
"""Nova DateTimeField: ISO 8601, written in UTC with a ``Z`` as oslo's isotime does."""


def _load_int_map(value: Any, path: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected an object, got {_type_name(value)}")
    result: dict[int, Any] = {}
    for key, item in value.items():
        if not (isinstance(key, str) and _DIGITS_RE.fullmatch(key)):
            raise _fail(path, f"key {_short(key)} is not a non-negative integer")
        result[int(key)] = item
    return result


def _dump_int_map(value: Any, out: _Out) -> Any:
    return None if value is None else {str(k): v for k, v in value.items()}


INT_MAP = _Codec(_load_int_map, _dump_int_map)
"""Nova DictOfIntegersField with integer meaning in the keys (cpu_pinning_raw)."""


# --- objects -------------------------------------------------------------------------------


def _validate(spec: _Obj, kwargs: dict[str, Any], path: str) -> SpecModel:
    try:
        return spec.model.model_validate(kwargs, strict=True)
    except ValidationError as exc:
        nova_names = {f.attr: f.nova for f in spec.fields if f.emit is not Emit.IMPORT_ONLY}
        problems = []
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            where = path
            if loc:
                where += "." + nova_names.get(str(loc[0]), str(loc[0]))
                where += "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
            got = "" if error["type"] == "missing" else f" (got {_short(error['input'])})"
            problems.append(f"{where}: {error['msg']}{got}")
        raise NovaPrimitiveError("; ".join(problems)) from None


def _load_object(spec: _Obj, value: Any, path: str) -> SpecModel:
    data = _unwrap(value, spec.name, path, spec.version, spec.newer_minor_ok)
    if not spec.open:
        known = {f.nova for f in spec.fields} | spec.ignored
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise _fail(path, f"unknown {spec.name} field(s): {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for field in spec.fields:
        if field.nova not in data:
            continue
        if field.emit is Emit.IMPORT_ONLY and kwargs.get(field.attr or "") is not None:
            continue
        loaded = field.codec.load(data[field.nova], f"{path}.{field.nova}")
        if field.attr is not None and loaded is not _UNSET:
            kwargs[field.attr] = loaded
    return _validate(spec, kwargs, path)


def _should_emit(field: _F, value: Any, was_set: bool) -> bool:
    if field.emit is Emit.IMPORT_ONLY:
        return False
    if field.emit is Emit.OMIT_NULL:
        return value is not None
    if field.emit is Emit.IF_SET:
        return was_set or not _is_empty(value)
    return True


def _dump_object(spec: _Obj, model: SpecModel, out: _Out, version: str) -> dict[str, Any]:
    minor = _minor(version)
    data: dict[str, Any] = {}
    for field in spec.fields:
        if field.since > minor:
            continue
        value = out.instance_uuid if field.attr is None else getattr(model, field.attr)
        was_set = field.attr in model.model_fields_set
        if not _should_emit(field, value, was_set):
            continue
        if field.emit is Emit.NULL_UNLESS_SET and _is_empty(value) and not was_set:
            data[field.nova] = None
        else:
            data[field.nova] = field.codec.dump(value, out)
    return _wrap(spec.name, version, data)


def _obj(spec: _Obj) -> _Codec:
    """A nested object (nullable: None <-> null)."""

    def load(value: Any, path: str) -> Any:
        return None if value is None else _load_object(spec, value, path)

    def dump(value: Any, out: _Out) -> Any:
        return None if value is None else _dump_object(spec, value, out, spec.version)

    return _Codec(load, dump)


def _each(item: _Codec) -> _Codec:
    """A plain JSON list of items (cells, PCI requests, request groups)."""

    def load(value: Any, path: str) -> Any:
        if value is None:
            return None
        items = _require_list(value, path)
        return [item.load(v, f"{path}[{i}]") for i, v in enumerate(items)]

    def dump(value: Any, out: _Out) -> Any:
        return None if value is None else [item.dump(v, out) for v in value]

    return _Codec(load, dump)


def _list_object(name: str, version: str, item: _Codec, *, changes: bool = True) -> _Codec:
    """A Nova ObjectListBase (``{"objects": [...]}``) <-> a Python list."""

    def load(value: Any, path: str) -> Any:
        if value is None:
            return None
        data = _unwrap(value, name, path, version, True)
        unknown = sorted(k for k in data if k != "objects")
        if unknown:
            raise _fail(path, f"unknown {name} field(s): {', '.join(unknown)}")
        if "objects" not in data:
            raise _fail(path, f"{name} has no 'objects'")
        return _each(item).load(data["objects"], f"{path}.objects")

    def dump(value: Any, out: _Out) -> Any:
        if value is None:
            return None
        return _wrap(
            name, version, {"objects": [item.dump(v, out) for v in value]}, changes=changes
        )

    return _Codec(load, dump)


def _named_object(name: str, version: str, keys: tuple[str, ...]) -> _Codec:
    """A foreign object kept as one string: the first of ``keys`` it carries (a str)."""

    def load(value: Any, path: str) -> Any:
        if value is None:
            return None
        data = _unwrap(value, name, path, version, True)
        for key in keys:
            text = data.get(key)
            if text is None:
                continue
            if key == "uuid":
                return str(_load_uuid(text, f"{path}.uuid"))
            if not isinstance(text, str):
                raise _fail(f"{path}.{key}", f"expected a string, got {_type_name(text)}")
            return text
        raise _fail(path, f"{name} carries none of: {', '.join(keys)}")

    def dump(value: Any, out: _Out) -> Any:
        if value is None:
            return None
        if "uuid" in keys:
            try:
                return _wrap(name, version, {"uuid": str(uuid.UUID(value))})
            except ValueError:
                pass
        return _wrap(name, version, {"name": value})

    return _Codec(load, dump)


def _free_form_object(name: str, version: str) -> _Codec:
    """A Nova object whose fields we keep as a free-form dict (ImageMetaProps)."""

    def load(value: Any, path: str) -> Any:
        if value is None:
            return None
        return dict(_unwrap(value, name, path, version, True))

    def dump(value: Any, out: _Out) -> Any:
        return None if value is None else _wrap(name, version, copy.deepcopy(dict(value)))

    return _Codec(load, dump)


def _first_of_list(value: Any, path: str) -> Any:
    if value is None:
        return None
    items = _require_list(value, path)
    if not items:
        raise _fail(path, "legacy policies list is empty")
    return items[0]


LEGACY_FIRST = _Codec(_first_of_list, _dump_plain)
"""InstanceGroup < 1.11 carried ``policies`` (a one-element list) instead of ``policy``."""


# --- the object tables ---------------------------------------------------------------------

OMIT_NULL, IF_SET, NULL_UNLESS_SET = Emit.OMIT_NULL, Emit.IF_SET, Emit.NULL_UNLESS_SET

FLAVOR = _Obj(
    "Flavor",
    "1.2",
    Flavor,
    (
        _F("id", emit=OMIT_NULL),
        *_plain("flavorid", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap"),
        *_plain("rxtx_factor", "vcpu_weight", "disabled", "is_public", "extra_specs"),
        *_plain("description"),
    ),
    ignored=frozenset({"created_at", "updated_at", "deleted", "deleted_at", "projects"}),
)

IMAGE_META = _Obj(
    "ImageMeta",
    "1.8",
    ImageMeta,
    (
        _F("id", UUID, OMIT_NULL),
        *_only(OMIT_NULL, PLAIN, "name", "status", "visibility", "protected", "checksum"),
        *_only(OMIT_NULL, PLAIN, "owner", "size", "virtual_size", "container_format"),
        *_only(OMIT_NULL, PLAIN, "disk_format", "min_ram", "min_disk"),
        *_only(OMIT_NULL, DATETIME, "created_at", "updated_at"),
        _F("properties", _free_form_object("ImageMetaProps", "1.44")),
    ),
    ignored=frozenset({"tags", "direct_url"}),
)

INSTANCE_GROUP = _Obj(
    "InstanceGroup",
    "1.11",
    InstanceGroup,
    (
        _F("uuid", UUID),
        *_plain("name", "policy"),
        _F("policies", LEGACY_FIRST, Emit.IMPORT_ONLY, rename="policy"),
        _F("_rules", rename="rules"),
        *_only(NULL_UNLESS_SET, _or_default(PLAIN), "members", "hosts"),
        *_only(OMIT_NULL, PLAIN, "project_id", "user_id"),
    ),
    ignored=frozenset({"id", "created_at", "updated_at", "deleted", "deleted_at"}),
)

NUMA_CELL = _Obj(
    "InstanceNUMACell",
    "1.6",
    InstanceNUMACell,
    (
        *_plain("id", "memory"),
        *_only(Emit.ALWAYS, SET, "cpuset", "pcpuset", "cpuset_reserved"),
        *_plain("pagesize", "cpu_policy", "cpu_thread_policy"),
        _F("cpu_pinning_raw", _or_default(INT_MAP), NULL_UNLESS_SET, rename="cpu_pinning"),
    ),
    ignored=frozenset({"cpu_topology"}),
)

NUMA_TOPOLOGY = _Obj(
    "InstanceNUMATopology",
    "1.3",
    InstanceNUMATopology,
    (
        _F("cells", _each(_obj(NUMA_CELL))),
        *_plain("emulator_threads_policy"),
        _F("instance_uuid", UUID, rename=None),
    ),
    ignored=frozenset({"id"}),
)

PCI_REQUEST = _Obj(
    "InstancePCIRequest",
    "1.4",
    InstancePCIRequest,
    (
        *_plain("count", "spec", "alias_name", "is_new", "numa_policy"),
        _F("request_id", UUID),
        *_plain("requester_id"),
    ),
)

PCI_REQUESTS = _Obj(
    "InstancePCIRequests",
    "1.1",
    InstancePCIRequests,
    (_F("requests", _each(_obj(PCI_REQUEST))), _F("instance_uuid", UUID, rename=None)),
)

LIMITS = _Obj(
    "SchedulerLimits",
    "1.0",
    SchedulerLimits,
    _plain("vcpu", "memory_mb", "disk_gb", "numa_topology"),  # NUMATopologyLimits kept whole
)

COMPUTE_NODE = _Obj(
    "ComputeNode", "1.19", ComputeNodeRef, _plain("host", "hypervisor_hostname"), open=True
)

RETRIES = _Obj(
    "SchedulerRetries",
    "1.1",
    SchedulerRetries,
    (
        *_plain("num_attempts"),
        _F("hosts", _list_object("ComputeNodeList", "1.17", _obj(COMPUTE_NODE))),
    ),
)

DESTINATION = _Obj(
    "Destination",
    "1.4",
    Destination,
    (
        _F("host", emit=OMIT_NULL),
        *_plain("node"),
        _F("cell", _named_object("CellMapping", "1.1", ("uuid", "name"))),
        _F("aggregates", _or_default(PLAIN), NULL_UNLESS_SET),
        _F("forbidden_aggregates", _or_default(SET), NULL_UNLESS_SET),
        *_plain("allow_cross_cell_move"),
    ),
)

NETWORK_METADATA = _Obj(
    "NetworkMetadata", "1.0", NetworkMetadata, (_F("physnets", SET), *_plain("tunneled"))
)

REQUEST_GROUP = _Obj(
    "RequestGroup",
    "1.3",
    RequestGroup,
    (
        *_plain("requester_id", "resources", "aggregates", "use_same_provider", "in_tree"),
        *_only(Emit.ALWAYS, SET, "required_traits", "forbidden_traits", "forbidden_aggregates"),
        _F("provider_uuids", UUID_LIST),
    ),
)

REQUEST_LEVEL_PARAMS = _Obj(
    "RequestLevelParams",
    "1.1",
    RequestLevelParams,
    (*_only(Emit.ALWAYS, SET, "root_required", "root_forbidden"), *_plain("same_subtree")),
)

NETWORK_REQUEST = _Obj(
    "NetworkRequest",
    "1.3",
    RequestedNetwork,
    (*_plain("network_id", "address"), _F("port_id", UUID), *_plain("tag")),
    ignored=frozenset({"pci_request_id", "arq_uuid", "device_profile"}),
)

REQUEST_GROUPS = _null_is_empty(_each(_obj(REQUEST_GROUP)), list)
"""Nova's requested_resources is a nullable list: null <-> our empty list."""

NETWORK_REQUESTS = _list_object("NetworkRequestList", "1.1", _obj(NETWORK_REQUEST))

SECURITY_GROUPS = _list_object(
    "SecurityGroupList", "1.1", _named_object("SecurityGroup", "1.2", ("name",)), changes=False
)
"""Security groups by name. The reference primitives carry no changes key on this list."""

REQUEST_SPEC = _Obj(
    "RequestSpec",
    LATEST_VERSION,
    RequestSpec,
    (
        _F("instance_uuid", UUID),
        _F("flavor", _obj(FLAVOR)),
        *_plain("project_id"),
        _F("user_id", since=9),
        *_plain("availability_zone"),
        _F("image", _obj(IMAGE_META)),
        *_plain("num_instances"),
        _F("numa_topology", _obj(NUMA_TOPOLOGY)),
        _F("pci_requests", _obj(PCI_REQUESTS)),
        *_plain("ignore_hosts", "force_hosts", "force_nodes"),
        _F("requested_destination", _obj(DESTINATION), IF_SET, since=6),
        _F("retry", _obj(RETRIES)),
        _F("limits", _obj(LIMITS)),
        _F("instance_group", _obj(INSTANCE_GROUP)),
        _F("scheduler_hints", _or_default(PLAIN)),
        _F("security_groups", SECURITY_GROUPS, since=8),
        _F("network_metadata", _obj(NETWORK_METADATA), IF_SET, since=10),
        _F("is_bfv", since=11),
        _F("requested_resources", REQUEST_GROUPS, IF_SET, since=12),
        _F("request_level_params", _obj(REQUEST_LEVEL_PARAMS), IF_SET, since=13),
        _F("requested_networks", NETWORK_REQUESTS, IF_SET, since=14),
    ),
    ignored=frozenset({"id"}),
    newer_minor_ok=False,
)


# --- public API ----------------------------------------------------------------------------


def from_nova_primitive(primitive: Mapping[str, Any]) -> RequestSpec:
    """The RequestSpec described by Nova's primitive of ``RequestSpec`` 1.0 to 1.15.

    Raises :class:`NovaPrimitiveError` (naming the offending field) for anything it cannot
    convert: another object name, a version it does not read, a missing or unknown field, a
    malformed UUID, a wrong type or a value the model refuses.
    """
    path = "RequestSpec"
    try:
        spec = _load_object(REQUEST_SPEC, primitive, path)
    except _UNEXPECTED as exc:
        raise _fail(path, f"malformed primitive ({type(exc).__name__}: {exc})") from exc
    if not isinstance(spec, RequestSpec):  # pragma: no cover - the table says RequestSpec
        raise _fail(path, "did not convert to a RequestSpec")
    return spec


def to_nova_primitive(spec: RequestSpec, version: str = LATEST_VERSION) -> dict[str, Any]:
    """Nova's primitive of ``spec`` at RequestSpec ``version`` (1.0 to 1.15).

    Fields a version does not carry are left out, as Nova's ``obj_make_compatible`` does;
    nested objects are written at fixed versions (see the tables above).
    """
    major, minor = _parse_version(version, "to_nova_primitive")
    if major != 1 or minor > _minor(LATEST_VERSION):
        raise NovaPrimitiveError(
            f"cannot write RequestSpec version {version!r}: writes 1.0 to {LATEST_VERSION}"
        )
    out = _Out(instance_uuid=str(spec.instance_uuid))
    return _dump_object(REQUEST_SPEC, spec, out, f"{major}.{minor}")
