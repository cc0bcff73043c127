"""The fields that describe one request only, and how a read keeps them (no model import:
the spec class itself uses this when an object reloads what is stored)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

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


def keep_transient(loaded: M, current: M) -> M:
    """``loaded`` with the transient fields (and group members/hosts) taken from ``current``.

    Used when a stored spec is read back into an object that already holds per-request data:
    the read must not clobber it.
    """
    update: dict[str, Any] = {name: getattr(current, name) for name in TRANSIENT_FIELDS}
    merged = loaded.model_copy(update=update)
    group, current_group = (
        getattr(merged, "instance_group", None),
        getattr(current, "instance_group", None),
    )
    if group is not None and current_group is not None:
        group_update = {n: getattr(current_group, n) for n in TRANSIENT_GROUP_FIELDS}
        merged.instance_group = group.model_copy(update=group_update)  # type: ignore[attr-defined]
    return merged
