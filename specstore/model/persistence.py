"""The persistence policy: which parts of a RequestSpec are stored, stated once.

Some fields describe a single scheduling request (where to retry, where this move should
land, which networks this boot asked for). Persisting them makes the *next* operation
inherit stale constraints -- Nova learned this the hard way. They are stripped on persist,
and reading a stored spec never overwrites them on an object that already holds them.
"""

from __future__ import annotations

from typing import Any, Literal

from specstore.model.request_spec import RequestSpec
from specstore.model.transient import TRANSIENT_FIELDS, TRANSIENT_GROUP_FIELDS, keep_transient

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
    return spec.model_dump(mode=mode, exclude=persisted_exclude(spec), exclude_defaults=True)


def persisted_exclude(spec: RequestSpec) -> dict[str, Any]:
    """What ``model_dump`` leaves out of ``spec`` for :func:`persisted_payload`."""
    return _EXCLUDE if spec.instance_group is None else _EXCLUDE_WITH_GROUP


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


__all__ = [
    "PERSISTED_FIELDS",
    "TRANSIENT_FIELDS",
    "TRANSIENT_GROUP_FIELDS",
    "keep_transient",
    "persisted_exclude",
    "persisted_payload",
    "strip_transient",
]
