"""Which Redis connection and namespace serve the api store and each cell.

A *backend* is one connection (a single server or a Redis Cluster) plus a key prefix. The api
store has one; each cell either has its own (failure isolation, as Nova's cells have their own
databases) or shares the default one. Stores that share a backend keep the one-script atomic
promote; a move between backends is two-phase (see :mod:`specstore.two_phase`).

Configuration (a mapping, e.g. from a TOML file's ``[specstore]`` table)::

    redis_url = "redis://api-redis:6379/0"   # the api store, and cells without their own
    prefix = "specstore"
    only_listed_cells = false                 # true: unknown cell names are an error
    [cells.cell1]
    redis_url = "redis://cell1-redis:6379/0"
    [cells.cell2]
    redis_url = "redis+cluster://cell2-node1:7000"
    prefix = "cell2"                          # optional, defaults to the top-level prefix
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from specstore.connection import RedisClient, as_dict, connect
from specstore.errors import InvalidInputError, UnknownStoreError
from specstore.held import HeldConnections, held_connections
from specstore.keys import API, Keyspace, validate_cell_name


@dataclass(frozen=True, eq=False)
class Backend:
    """One Redis connection and the keyspace used on it."""

    name: str
    client: RedisClient
    keys: Keyspace
    held: HeldConnections | None = field(init=False, repr=False)
    """Spare connections for single commands and pipelines (plain redis.Redis clients only)."""

    def __post_init__(self) -> None:
        if self.client.get_encoder().decode_responses:
            raise InvalidInputError(
                f"backend {self.name!r}: specstore needs a Redis client with "
                "decode_responses=False (its documents are binary)"
            )
        object.__setattr__(self, "held", held_connections(self.client))

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        """HGETALL of one key (on a spare connection when the client has them)."""
        if self.held is None:
            return cast(dict[bytes, bytes], self.client.hgetall(key))
        return cast(dict[bytes, bytes], as_dict(self.held.execute("HGETALL", key)))

    def close(self) -> None:
        self.client.close()


@dataclass(eq=False)
class Topology:
    """The api backend, the backends of cells that have their own, and the rule for others."""

    api: Backend
    cells: dict[str, Backend] = field(default_factory=dict)
    only_listed_cells: bool = False

    def __post_init__(self) -> None:
        for name in self.cells:
            validate_cell_name(name)

    @classmethod
    def single(cls, client: RedisClient, keys: Keyspace | None = None) -> Topology:
        """Every store on one connection (the usual deployment, and the embedded default)."""
        return cls(Backend(API, client, keys or Keyspace()))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Topology:
        """Build from a mapping shaped like the module docstring's example."""
        url = config.get("redis_url", "memory://")
        prefix = config.get("prefix", "specstore")
        if not isinstance(url, str) or not isinstance(prefix, str):
            raise InvalidInputError("redis_url and prefix must be strings")
        api = Backend(API, connect(url), Keyspace(prefix))
        # One server and prefix is one backend, however often it is named: a cell configured
        # with the api's URL shares the api backend (and its atomic one-script promote).
        shared: dict[tuple[str, str], Backend] = {(url, prefix): api}
        cells: dict[str, Backend] = {}
        raw_cells = config.get("cells", {})
        if not isinstance(raw_cells, Mapping):
            raise InvalidInputError("cells must be a table of cell name -> settings")
        for name, settings in raw_cells.items():
            validate_cell_name(name)
            if not isinstance(settings, Mapping) or not isinstance(settings.get("redis_url"), str):
                raise InvalidInputError(f"cell {name!r} needs a redis_url")
            cell_prefix = settings.get("prefix", prefix)
            if not isinstance(cell_prefix, str):
                raise InvalidInputError(f"cell {name!r}: prefix must be a string")
            where = (settings["redis_url"], cell_prefix)
            if where not in shared:
                shared[where] = Backend(name, connect(where[0]), Keyspace(cell_prefix))
            cells[name] = shared[where]
        return cls(api, cells, bool(config.get("only_listed_cells", False)))

    def backend_for(self, store: str) -> Backend:
        """The backend holding ``store`` ("api" or a cell name)."""
        if store == API:
            return self.api
        backend = self.cells.get(store)
        if backend is not None:
            return backend
        if self.only_listed_cells:
            raise UnknownStoreError(
                f"cell {store!r} is not configured (known: {', '.join(sorted(self.cells))})"
            )
        return self.api

    def backends(self) -> list[Backend]:
        """Each distinct backend once, the api's first."""
        seen: list[Backend] = [self.api]
        for backend in self.cells.values():
            if all(backend is not b for b in seen):
                seen.append(backend)
        return seen

    def stores_on(self, backend: Backend) -> list[str] | None:
        """The store names known to live on ``backend``; None means "api and any other cell"."""
        if backend is self.api and not self.only_listed_cells:
            return None
        names = [name for name, b in self.cells.items() if b is backend]
        return [API, *names] if backend is self.api else names

    def close(self) -> None:
        for backend in self.backends():
            backend.close()
