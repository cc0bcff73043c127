"""The repair rule (pure): what to do with one instance's copies and location records.

The authority (the location record on the api backend) decides; copies and cell records that
disagree with it are what repair removes. An instance is healthy when the authority names one
store, that store holds the copy, no other store holds one, and a cell on its own backend has
a live record for it (under the authority's epoch) exactly when it is the home.

1. An open move (see :mod:`specstore.core.two_phase`): if its lease expired, settle it (through the
   cell: finish, bury or roll back); else leave it to its mover.
2. The authority names a store that holds the copy: keep it; drop every other copy (only if
   its rev is unchanged); bury other live cell records; give the home's cell its record.
3. The authority names a store without the copy: if that cell's own record shows the copy
   destroyed under the authority's epoch, finish the destroy (bury at the authority). Else
   keep the best other copy (below) and point the authority at it under a new epoch; with no
   copy left, bury the instance (its rev is kept).
4. The authority shows the instance destroyed: the destroy wins; any copy is dropped.
5. No authority record (data written before it existed): keep the best copy -- the highest
   rev; on a tie the one a cell record names, then a cell copy over the api copy, then the
   first store name -- and record it at the authority.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specstore.core.keys import API


@dataclass(frozen=True)
class Record:
    """A location record: the authority's, or a cell backend's own."""

    store: str | None
    rev: int
    epoch: int
    state: str
    move_id: str | None = None
    move_to: str | None = None
    move_from: str | None = None
    lease_expired: bool = False
    home_epoch: int | None = None
    """The epoch the home's copy was installed under (None: the same as ``epoch``)."""

    @property
    def installed(self) -> int:
        return self.epoch if self.home_epoch is None else self.home_epoch


@dataclass(frozen=True)
class Observation:
    """What the backends hold for one instance."""

    instance_uuid: str
    authority: Record | None
    """The api backend's record; None when there is none."""
    copies: dict[str, int]
    """store -> rev of its copy."""
    cell_records: dict[str, Record] = field(default_factory=dict)
    """backend name -> its own record (cells' own backends only)."""
    backend_of: dict[str, str] = field(default_factory=dict)
    """store -> name of the backend holding it."""
    api_backend: str = "api"


@dataclass(frozen=True)
class Plan:
    """Actions for one instance; empty when it is healthy."""

    instance_uuid: str
    settle_move: tuple[str, str, str, int] | None = None
    """(source, target, move id, epoch) of an expired move to settle ("" source: a create)."""
    move_running: bool = False
    """An open move within its lease: left to its mover."""
    finish_destroy: tuple[str, int, int] | None = None
    """(cell, epoch, last rev): the cell destroyed its copy; tell the authority."""
    keep: str | None = None
    drop: dict[str, int] = field(default_factory=dict)
    """store -> rev of a copy to delete."""
    set_authority: tuple[str, int] | None = None
    """(store, rev) to record at the authority under a new epoch; store "" buries."""
    set_cell_records: dict[str, tuple[str, int]] = field(default_factory=dict)
    """backend name -> (store, rev) for the home's cell record ("" buries a stray one)."""

    @property
    def healthy(self) -> bool:
        return not (
            self.settle_move
            or self.finish_destroy
            or self.drop
            or self.set_authority
            or self.set_cell_records
        )

    def describe(self) -> str:
        if self.move_running:
            return "a move is in progress (within its lease): left to its mover"
        if self.healthy:
            return "healthy"
        parts = []
        if self.settle_move:
            parts.append(f"settle the interrupted move to {self.settle_move[1]}")
        if self.finish_destroy:
            parts.append(f"finish the destroy in {self.finish_destroy[0]}")
        if self.keep:
            parts.append(f"keep the copy in {self.keep}")
        parts += [f"drop the copy in {s} (rev {r})" for s, r in sorted(self.drop.items())]
        if self.set_authority:
            store = self.set_authority[0]
            parts.append(f"record {store} as the home" if store else "bury the location record")
        for backend, (store, _) in sorted(self.set_cell_records.items()):
            what = f"record {store} on {backend}" if store else f"bury the record on {backend}"
            parts.append(what)
        return "; ".join(parts)


def plan_repair(obs: Observation) -> Plan:
    uid, authority = obs.instance_uuid, obs.authority
    if authority is not None and authority.move_id is not None:
        if not authority.lease_expired:
            return Plan(uid, move_running=True)
        move = (
            authority.move_from or "",
            authority.move_to or "",
            authority.move_id,
            authority.epoch,
        )
        return Plan(uid, settle_move=move)
    if authority is not None and authority.store is None and authority.state != "live":
        return _buried(obs)
    home = authority.store if authority is not None else None
    if home is not None and home in obs.copies:
        return _keep(obs, home, new_epoch=False)
    if home is not None:
        record = obs.cell_records.get(obs.backend_of.get(home, ""))
        if (
            authority is not None
            and record is not None
            and record.state == "destroyed"
            and record.epoch == authority.installed
        ):
            return Plan(uid, finish_destroy=(home, authority.installed, record.rev))
    if not obs.copies:
        if authority is not None:
            return Plan(uid, set_authority=("", authority.rev))
        return _bury_stray_records(obs, Plan(uid))
    keeper = min(obs.copies, key=lambda store: _rank(obs, store))
    return _keep(obs, keeper, new_epoch=True)


def _keep(obs: Observation, keeper: str, *, new_epoch: bool) -> Plan:
    rev = obs.copies[keeper]
    drop = {store: r for store, r in obs.copies.items() if store != keeper}
    keeper_backend = obs.backend_of.get(keeper, obs.api_backend)
    authority = obs.authority
    set_authority = (keeper, rev) if new_epoch else None
    records: dict[str, tuple[str, int]] = {}
    if keeper_backend != obs.api_backend:
        own = obs.cell_records.get(keeper_backend)
        epoch_ok = authority is not None and own is not None and own.epoch == authority.installed
        if new_epoch or own is None or own.store != keeper or not epoch_ok or own.move_id:
            records[keeper_backend] = (keeper, rev)
    plan = Plan(
        obs.instance_uuid,
        keep=keeper,
        drop=drop,
        set_authority=set_authority,
        set_cell_records=records,
    )
    return _bury_stray_records(obs, plan, keeper_backend)


def _buried(obs: Observation) -> Plan:
    """The authority shows the instance destroyed: nothing may live on."""
    return _bury_stray_records(obs, Plan(obs.instance_uuid, drop=dict(obs.copies)))


def _bury_stray_records(obs: Observation, plan: Plan, keeper_backend: str | None = None) -> Plan:
    stray = {
        backend: ("", record.rev)
        for backend, record in obs.cell_records.items()
        if record.store is not None and backend != keeper_backend
    }
    if not stray:
        return plan
    return Plan(
        plan.instance_uuid,
        plan.settle_move,
        plan.move_running,
        plan.finish_destroy,
        plan.keep,
        plan.drop,
        plan.set_authority,
        {**plan.set_cell_records, **stray},
    )


def _rank(obs: Observation, store: str) -> tuple[int, int, int, str]:
    named = {record.store for record in obs.cell_records.values()}
    return (-obs.copies[store], 0 if store in named else 1, 1 if store == API else 0, store)
