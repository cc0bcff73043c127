"""The keyspace layout (pure; no I/O).

Every key of one instance carries the hash tag ``{<instance_uuid>}``: the api copy, each cell
copy and the location record hash to the same Redis Cluster slot, so one Lua script can touch
them atomically. With the default prefix::

    specstore:api:spec:{<uuid>}            HASH    the spec while it lives in the api store
    specstore:cell:<cell>:spec:{<uuid>}    HASH    the spec once promoted to <cell>
    specstore:loc:{<uuid>}                 HASH    the location record: store, rev, epoch,
                                                   state, and any move in progress

On the api backend the location record is the authority for the instance (where its spec
lives, its rev lineage, the open move); on a cell's own backend it says what that backend holds
(see ``specstore/scripts/_lib.lua`` and :mod:`specstore.core.two_phase`).

Instance UUIDs are parsed and written in canonical form, and cell names and prefixes are
checked, before they become part of a key: no glob characters, braces or colons get in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from specstore.errors import InvalidCellNameError, InvalidInputError, InvalidUUIDError

API = "api"
"""Name of the api store (the home of a spec before scheduling)."""

_CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}(:[A-Za-z0-9][A-Za-z0-9_.-]{0,62})*")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""The form ``str(UUID(...))`` gives: a string in it is its own canonical form."""


def normalize_uuid(value: UUID | str) -> str:
    """The canonical lower-case hyphenated form, or :class:`InvalidUUIDError`."""
    if isinstance(value, UUID):
        return str(value)
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value  # (the usual case, without building a UUID)
    if isinstance(value, str):
        value = str.__str__(value)  # a str subclass's own methods are not asked
    if not isinstance(value, str) or len(value) != 36:
        raise InvalidUUIDError(value)
    try:
        canonical = str(UUID(value))
    except ValueError:
        raise InvalidUUIDError(value) from None
    if canonical != value.lower():
        raise InvalidUUIDError(value)
    return canonical


def validate_cell_name(name: str) -> str:
    if not isinstance(name, str) or not _CELL_NAME.fullmatch(name):
        raise InvalidCellNameError(
            name, "use 1-63 letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    if name == API:
        raise InvalidCellNameError(name, f"{API!r} names the api store")
    return name


def validate_store_name(name: str) -> str:
    """``"api"`` or a valid cell name."""
    return name if name == API else validate_cell_name(name)


@dataclass(frozen=True)
class Keyspace:
    """Key names under one prefix."""

    prefix: str = "specstore"

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise InvalidInputError(f"invalid key prefix {self.prefix!r}")

    def spec_key(self, store: str, instance_uuid: str) -> str:
        """Key of the spec HASH of ``instance_uuid`` (canonical) in ``store``."""
        if store == API:
            return f"{self.prefix}:api:spec:{{{instance_uuid}}}"
        return f"{self.prefix}:cell:{store}:spec:{{{instance_uuid}}}"

    def location_key(self, instance_uuid: str) -> str:
        """Key of the location record HASH of ``instance_uuid``."""
        return f"{self.prefix}:loc:{{{instance_uuid}}}"

    def fence_key(self, instance_uuid: str) -> str:
        """Key of the fence STRING (a cell's own backend): the highest epoch given up there."""
        return f"{self.prefix}:fence:{{{instance_uuid}}}"

    def home_keys(self, store: str, instance_uuid: str) -> list[str]:
        """[spec key in ``store``, location key]: what a write to one store touches."""
        return [self.spec_key(store, instance_uuid), self.location_key(instance_uuid)]

    def parse_location_key(self, key: str) -> str | None:
        """The instance uuid of a location key under this prefix, or None for other keys."""
        head, tail = f"{self.prefix}:loc:{{", "}"
        if not (key.startswith(head) and key.endswith(tail)):
            return None
        uid = key[len(head) : -len(tail)]
        try:
            canonical = normalize_uuid(uid)
        except InvalidUUIDError:
            return None
        return canonical if canonical == uid else None

    def spec_pattern(self, store: str | None = None) -> str:
        """SCAN MATCH pattern for the spec keys of one store (or of every store)."""
        if store is None:
            return f"{self.prefix}:*spec:{{*}}"
        return self.spec_key(store, "*")

    def location_pattern(self) -> str:
        return f"{self.prefix}:loc:{{*}}"

    def parse_spec_key(self, key: str) -> tuple[str, str] | None:
        """(store, instance uuid) of a spec key under this prefix, or None for other keys."""
        head = f"{self.prefix}:"
        if not (key.startswith(head) and key.endswith("}")):
            return None
        rest = key[len(head) : -1]
        store_part, sep, uuid_part = rest.partition(":spec:{")
        if not sep:
            return None
        if store_part == API:
            store = API
        elif store_part.startswith("cell:"):
            store = store_part[len("cell:") :]
            if not _CELL_NAME.fullmatch(store) or store == API:
                return None
        else:
            return None
        try:
            canonical = normalize_uuid(uuid_part)
        except InvalidUUIDError:
            return None
        # specstore writes the canonical form only; any other spelling is someone else's key
        return (store, canonical) if canonical == uuid_part else None
