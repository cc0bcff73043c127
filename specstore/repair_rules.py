"""The repair rule (pure): what to do with one instance's copies and location records.

An instance is healthy when exactly one store holds a copy of its spec, the location record
on that store's backend names that store, and no other backend has a location record for it.
Anything else is repaired by this rule:

1. The api copy is marked ``moving_to`` (a two-phase move was interrupted): settle the move
   (finish it if the cell copy exists, else roll it back; see :mod:`specstore.two_phase`).
2. No copy exists: delete the location records (they point at nothing).
3. Otherwise keep one copy: the highest rev; on a tie the one a location record names (the
   api backend's record first); then a cell copy over the api copy (it was promoted); then the
   first store name in sort order. Delete the other copies (only if their rev is unchanged),
   point the keeper's backend's location record at the keeper and delete the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specstore.keys import API


@dataclass(frozen=True)
class Copy:
    rev: int
    moving_to: str | None = None


@dataclass(frozen=True)
class Observation:
    """What the backends hold for one instance."""

    instance_uuid: str
    copies: dict[str, Copy]
    """store -> its copy."""
    locations: dict[str, str]
    """backend name -> the store its location record names."""
    backend_of: dict[str, str] = field(default_factory=dict)
    """store -> name of the backend holding it (for every store in ``copies``)."""
    api_backend: str = "default"


@dataclass(frozen=True)
class Plan:
    """Actions for one instance; empty when it is healthy."""

    instance_uuid: str
    resume_move_to: str | None = None
    keep: str | None = None
    drop: dict[str, int] = field(default_factory=dict)
    """store -> rev of a copy to delete."""
    set_location: tuple[str, str] | None = None
    """(backend name, store) to write."""
    delete_locations: tuple[str, ...] = ()
    """backend names whose location record goes."""

    @property
    def healthy(self) -> bool:
        return not (self.resume_move_to or self.drop or self.set_location or self.delete_locations)

    def describe(self) -> str:
        if self.healthy:
            return "healthy"
        parts = []
        if self.resume_move_to:
            parts.append(f"settle the interrupted move to {self.resume_move_to}")
        if self.keep:
            parts.append(f"keep the copy in {self.keep}")
        parts += [f"drop the copy in {s} (rev {r})" for s, r in sorted(self.drop.items())]
        if self.set_location:
            parts.append(f"set location to {self.set_location[1]} on {self.set_location[0]}")
        parts += [f"delete the location record on {b}" for b in self.delete_locations]
        return "; ".join(parts)


def plan_repair(obs: Observation) -> Plan:
    api_copy = obs.copies.get(API)
    if api_copy is not None and api_copy.moving_to:
        return Plan(obs.instance_uuid, resume_move_to=api_copy.moving_to)
    if not obs.copies:
        return Plan(obs.instance_uuid, delete_locations=tuple(sorted(obs.locations)))
    keeper = min(obs.copies, key=lambda store: _rank(obs, store))
    keeper_backend = obs.backend_of.get(keeper, obs.api_backend)
    drop = {store: c.rev for store, c in obs.copies.items() if store != keeper}
    set_location = None
    if obs.locations.get(keeper_backend) != keeper:
        set_location = (keeper_backend, keeper)
    stale = tuple(sorted(b for b in obs.locations if b != keeper_backend))
    return Plan(obs.instance_uuid, None, keeper, drop, set_location, stale)


def _rank(obs: Observation, store: str) -> tuple[int, int, int, str]:
    named = [obs.locations.get(obs.api_backend), *obs.locations.values()]
    named_rank = named.index(store) if store in named else len(named)
    return (-obs.copies[store].rev, named_rank, 1 if store == API else 0, store)
