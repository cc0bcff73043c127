"""Which Redis connection and namespace serve the api store and each cell.

A *backend* is one connection (a single server or a Redis Cluster) plus a key prefix. The api
store has one; each cell either has its own (failure isolation, as Nova's cells have their own
databases) or shares the default one. Stores that share a backend keep the one-script atomic
promote; a move between backends is two-phase (see :mod:`specstore.core.two_phase`).

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from specstore.connection import AsyncRedisClient, RedisClient, connect, connect_async, redact
from specstore.core.keys import API, Keyspace, validate_cell_name
from specstore.errors import (
    ConfigurationError,
    InvalidInputError,
    SpecStoreError,
    UnknownStoreError,
)


def _require_binary(name: str, client: RedisClient | AsyncRedisClient) -> None:
    if client.get_encoder().decode_responses:
        raise InvalidInputError(
            f"backend {name!r}: specstore needs a Redis client with "
            "decode_responses=False (its documents are binary)"
        )


@dataclass(frozen=True, eq=False)
class Backend:
    """One Redis connection and the keyspace used on it."""

    name: str
    client: RedisClient
    keys: Keyspace

    def __post_init__(self) -> None:
        _require_binary(self.name, self.client)

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True, eq=False)
class AsyncBackend:
    """One ``redis.asyncio`` connection (a server or a cluster) and the keyspace used on it."""

    name: str
    client: AsyncRedisClient
    keys: Keyspace

    def __post_init__(self) -> None:
        _require_binary(self.name, self.client)

    async def aclose(self) -> None:
        await self.client.aclose()


B = TypeVar("B", Backend, AsyncBackend)


@dataclass(eq=False)
class Topology(Generic[B]):
    """The api backend, the backends of cells that have their own, and the rule for others.

    ``Topology[Backend]`` serves :class:`~specstore.store.SpecStore` and
    ``Topology[AsyncBackend]`` :class:`~specstore.aio.AsyncSpecStore`; both are configured
    the same way.
    """

    api: B
    cells: dict[str, B] = field(default_factory=dict)
    only_listed_cells: bool = False

    def __post_init__(self) -> None:
        for name in self.cells:
            validate_cell_name(name)

    @staticmethod
    def single(client: RedisClient, keys: Keyspace | None = None) -> Topology[Backend]:
        """Every store on one connection (the usual deployment, and the embedded default)."""
        return Topology(Backend(API, client, keys or Keyspace()))

    @staticmethod
    def single_async(
        client: AsyncRedisClient, keys: Keyspace | None = None
    ) -> Topology[AsyncBackend]:
        """:meth:`single` for a ``redis.asyncio`` client."""
        return Topology(AsyncBackend(API, client, keys or Keyspace()))

    @staticmethod
    def from_config(config: Mapping[str, Any]) -> Topology[Backend]:
        """Build from a mapping shaped like the module docstring's example."""
        return _from_config(config, lambda name, url, keys: Backend(name, connect(url), keys))

    @staticmethod
    def from_config_async(config: Mapping[str, Any]) -> Topology[AsyncBackend]:
        """:meth:`from_config` with ``redis.asyncio`` clients."""
        return _from_config(
            config, lambda name, url, keys: AsyncBackend(name, connect_async(url), keys)
        )

    def backend_for(self, store: str) -> B:
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

    def backends(self) -> list[B]:
        """Each distinct backend once, the api's first."""
        seen: list[B] = [self.api]
        for backend in self.cells.values():
            if all(backend is not b for b in seen):
                seen.append(backend)
        return seen

    def stores_on(self, backend: B) -> list[str] | None:
        """The store names known to live on ``backend``; None means "api and any other cell"."""
        if backend is self.api and not self.only_listed_cells:
            return None
        names: list[str] = [name for name, b in self.cells.items() if b is backend]
        return [API, *names] if backend is self.api else names

    def close(self) -> None:
        for backend in self.backends():
            if isinstance(backend, Backend):
                backend.close()

    async def aclose(self) -> None:
        for backend in self.backends():
            if isinstance(backend, AsyncBackend):
                await backend.aclose()


def _from_config(config: Mapping[str, Any], make: Callable[[str, str, Keyspace], B]) -> Topology[B]:
    url = config.get("redis_url", "memory://")
    prefix = config.get("prefix", "specstore")
    if not isinstance(url, str) or not isinstance(prefix, str):
        raise InvalidInputError("redis_url and prefix must be strings")
    api = make(API, url, Keyspace(prefix))
    # One server and prefix is one backend, however often it is named: a cell configured
    # with the api's URL shares the api backend (and its atomic one-script promote).
    shared: dict[tuple[str, str], B] = {(url, prefix): api}
    cells: dict[str, B] = {}
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
            shared[where] = make(name, where[0], Keyspace(cell_prefix))
        cells[name] = shared[where]
    _refuse_aliases(shared)
    return Topology(api, cells, bool(config.get("only_listed_cells", False)))


def _refuse_aliases(backends: Mapping[tuple[str, str], object]) -> None:
    """Refuse two URLs of one Redis database under one prefix (``localhost`` and ``127.0.0.1``,
    say): taken for two backends, each would hold the other's location records, and moves,
    resume and repair between them would destroy specs. Servers that cannot be asked now (down)
    are not checked."""
    by_prefix: dict[str, list[str]] = {}
    for url, prefix in backends:
        by_prefix.setdefault(prefix, []).append(url)
    for prefix, urls in by_prefix.items():
        if len(urls) < 2:
            continue
        seen: dict[tuple[str, ...], str] = {}
        for url in urls:
            identity = _database_identity(url)
            if identity is None:
                continue
            if identity in seen:
                raise ConfigurationError(
                    f"{redact(seen[identity])} and {redact(url)} reach the same Redis database; "
                    f"under one prefix ({prefix!r}) they must be given as one URL (or given "
                    "different prefixes)"
                )
            seen[identity] = url


def _database_identity(url: str) -> tuple[str, ...] | None:
    """What tells one Redis database from another: a server's run id and database number, a
    cluster's node ids; None for the embedded store (its name is its identity) and for a
    server that cannot be asked."""
    if url.partition("://")[0].lower() in ("memory", ""):
        return None
    try:
        client = connect(url, socket_connect_timeout=2, socket_timeout=2)
    except SpecStoreError:
        return None  # (a URL refused, a cluster that cannot be reached now)
    try:
        if isinstance(client, RedisCluster):
            nodes = client.cluster_nodes()
            return ("cluster", *sorted(str(node["node_id"]) for node in nodes.values()))
        run_id = str(client.info("server")["run_id"])
        return ("server", run_id, str(client.connection_pool.connection_kwargs.get("db", 0)))
    except (redis.RedisError, RedisClusterException, OSError, KeyError, TypeError):
        return None
    finally:
        client.close()
