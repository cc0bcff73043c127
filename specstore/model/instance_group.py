"""Server group (affinity / anti-affinity) the instance was booted into."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field

from specstore.model.base import SortedDict, SpecModel

GroupPolicy = Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
KNOWN_RULES = frozenset({"max_server_per_host"})
_POSITIVE_INT = re.compile(r"[1-9][0-9]{0,8}")


def _known_rules(rules: dict[str, str]) -> dict[str, str]:
    """Refuse unknown rules and a bad ``max_server_per_host``; keep the map key-sorted.

    One validator for the whole map (the check and the order), so validating a group costs
    one Python call.
    """
    if not rules:
        return SortedDict()
    if len(rules) == 1:  # the usual case: only the limit, a one-key map is sorted already
        limit = rules.get("max_server_per_host")
        if limit is not None and type(limit) is str and _POSITIVE_INT.fullmatch(limit):
            return SortedDict(rules)
    unknown = rules.keys() - KNOWN_RULES
    if unknown:
        raise ValueError(f"unknown server group rule(s): {', '.join(sorted(unknown))}")
    limit = rules.get("max_server_per_host")
    if limit is not None and not _POSITIVE_INT.fullmatch(limit):
        raise ValueError(f"max_server_per_host must be a positive integer, got {limit!r}")
    return SortedDict(sorted(rules.items()))


GroupRules = Annotated[dict[str, str], AfterValidator(_known_rules)]


class InstanceGroup(SpecModel):
    """Server-group policy and rules. ``members`` and ``hosts`` change as the group grows and
    are never persisted with the spec (see :mod:`specstore.model.persistence`)."""

    uuid: UUID
    policy: GroupPolicy
    name: str | None = None
    rules: GroupRules = Field(default_factory=SortedDict)
    members: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    project_id: str | None = None
    user_id: str | None = None
