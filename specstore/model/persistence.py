"""The persistence policy: which parts of a RequestSpec are stored, stated once.

Some fields describe a single scheduling request (where to retry, where this move should
land, which networks this boot asked for). Persisting them makes the *next* operation
inherit stale constraints -- Nova learned this the hard way. They are stripped on persist,
and reading a stored spec never overwrites them on an object that already holds them.
"""

from __future__ import annotations

from typing import Any, Literal

from specstore.model.request_spec import RequestSpec

TRANSIENT_FIELDS: frozenset[str] = frozenset(
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
"""Top-level RequestSpec fields that are never persisted."""

TRANSIENT_GROUP_FIELDS: frozenset[str] = frozenset({"members", "hosts"})
"""InstanceGroup fields that are never persisted (they change as the group grows)."""

PERSISTED_FIELDS: tuple[str, ...] = tuple(
    name for name in RequestSpec.model_fields if name not in TRANSIENT_FIELDS
)


def persisted_payload(
    spec: RequestSpec, mode: Literal["python", "json"] = "python"
) -> dict[str, Any]:
    """The spec as stored: transient parts and fields at their default value left out.

    ``mode="python"`` keeps UUIDs and datetimes as objects (for msgpack); ``"json"`` gives
    JSON-ready values (for the JSON codec).

    Leaving defaults out keeps documents small; it makes each field's default part of the
    schema, so changing a default is a schema change (a new version with a migration step).
    """
    exclude = _EXCLUDE if spec.instance_group is None else _EXCLUDE_WITH_GROUP
    return spec.model_dump(mode=mode, exclude=exclude, exclude_defaults=True)


_EXCLUDE: dict[str, Any] = dict.fromkeys(TRANSIENT_FIELDS, True)
_EXCLUDE_WITH_GROUP: dict[str, Any] = {
    **_EXCLUDE,
    "instance_group": dict.fromkeys(TRANSIENT_GROUP_FIELDS, True),
}


def strip_transient(spec: RequestSpec) -> RequestSpec:
    """A copy of ``spec`` holding only what is persisted (transient fields at their defaults)."""
    stripped = type(spec).model_validate(persisted_payload(spec))
    stripped.newer_minor_fields = spec.newer_minor_fields
    return stripped


def keep_transient(loaded: RequestSpec, current: RequestSpec) -> RequestSpec:
    """``loaded`` with the transient fields (and group members/hosts) taken from ``current``.

    Used when a stored spec is read back into an object that already holds per-request data:
    the read must not clobber it.
    """
    update: dict[str, Any] = {name: getattr(current, name) for name in TRANSIENT_FIELDS}
    merged = loaded.model_copy(update=update)
    if merged.instance_group is not None and current.instance_group is not None:
        group_update = {n: getattr(current.instance_group, n) for n in TRANSIENT_GROUP_FIELDS}
        merged.instance_group = merged.instance_group.model_copy(update=group_update)
    return merged
