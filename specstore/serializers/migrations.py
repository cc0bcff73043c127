"""Registry of schema versions and the steps between them (pure; no I/O).

Evolution rules (also in the README):

* A *minor* version only adds optional fields. Older readers keep the fields they do not
  know and write them back untouched; so a minor bump never needs a reader upgrade first.
* A *major* version may rename, remove or reshape. Readers refuse a newer major version
  (:class:`~specstore.errors.IncompatibleSchemaError`) rather than guess.
* Every released version ``N`` has an upgrade step ``N -> N+1`` and a downgrade step
  ``N+1 -> N``. Reading an older document walks the upgrade steps; a writer pinned to an
  older version (``write_version``, for rolling upgrades) walks the downgrade steps.
* Steps are pure functions on payload dicts and must not mutate their input.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from specstore.errors import IncompatibleSchemaError
from specstore.serializers.envelope import Version, format_version

Payload = dict[str, Any]
Step = Callable[[Payload], Payload]


@dataclass
class _SchemaHistory:
    versions: list[Version] = field(default_factory=list)
    upgrades: dict[Version, Step] = field(default_factory=dict)
    downgrades: dict[Version, Step] = field(default_factory=dict)


class MigrationRegistry:
    """Released versions of each schema and the upgrade/downgrade steps between them."""

    def __init__(self) -> None:
        self._schemas: dict[str, _SchemaHistory] = {}

    def copy(self) -> MigrationRegistry:
        """An independent registry with the same history (tests add versions to copies)."""
        clone = MigrationRegistry()
        clone._schemas = copy.deepcopy(self._schemas)
        return clone

    def release(
        self,
        schema: str,
        version: Version,
        *,
        upgrade: Step | None = None,
        downgrade: Step | None = None,
    ) -> None:
        """Record ``version`` as the newest of ``schema``.

        ``upgrade`` turns a payload of the previous version into this one and ``downgrade``
        the reverse; both are required for every version but the first.
        """
        history = self._schemas.setdefault(schema, _SchemaHistory())
        if history.versions:
            previous = history.versions[-1]
            if version <= previous:
                raise ValueError(
                    f"{schema} {format_version(version)} is not newer than "
                    f"{format_version(previous)}"
                )
            if upgrade is None or downgrade is None:
                raise ValueError(f"{schema} {format_version(version)} needs both steps")
            history.upgrades[previous] = upgrade
            history.downgrades[version] = downgrade
        history.versions.append(version)

    def current(self, schema: str) -> Version:
        return self._history(schema).versions[-1]

    def versions(self, schema: str) -> tuple[Version, ...]:
        return tuple(self._history(schema).versions)

    def is_newer_minor(self, schema: str, version: Version) -> bool:
        current = self.current(schema)
        return version[0] == current[0] and version[1] > current[1]

    def upgrade(self, schema: str, payload: Payload, version: Version) -> Payload:
        """Bring a payload of ``version`` to the current version."""
        history = self._history(schema)
        current = history.versions[-1]
        if version[0] > current[0]:
            raise IncompatibleSchemaError(
                f"{schema} {format_version(version)} is a newer major version than this code "
                f"reads ({format_version(current)}); upgrade specstore first"
            )
        if version not in history.versions:
            raise IncompatibleSchemaError(
                f"{schema} {format_version(version)} is not a released version "
                f"(known: {', '.join(map(format_version, history.versions))})"
            )
        index = history.versions.index(version)
        for step_from in history.versions[index:-1]:
            payload = history.upgrades[step_from](payload)
        return payload

    def downgrade(self, schema: str, payload: Payload, target: Version) -> Payload:
        """Bring a payload of the current version down to ``target`` (a released version)."""
        history = self._history(schema)
        if target not in history.versions:
            raise IncompatibleSchemaError(
                f"cannot write {schema} {format_version(target)}: not a released version"
            )
        index = history.versions.index(target)
        for step_from in reversed(history.versions[index + 1 :]):
            payload = history.downgrades[step_from](payload)
        return payload

    def _history(self, schema: str) -> _SchemaHistory:
        try:
            return self._schemas[schema]
        except KeyError:
            raise IncompatibleSchemaError(f"unknown document schema {schema!r}") from None
