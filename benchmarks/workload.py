"""What the benchmarks run on: counts, specs, key prefixes, the Redis servers, cleanup."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from benchmarks.servers import start_cluster, start_server
from specstore.connection import RedisClient
from specstore.core.keys import Keyspace
from specstore.drivers.scanning import scan_batches
from specstore.model import RequestSpec
from specstore.samples import typical_spec


@dataclass(frozen=True)
class Counts:
    """How much each figure measures. ``--quick`` and ``--scale`` shrink the full set."""

    latency_samples: int = 2_000
    latency_runs: int = 5
    latency_warmup: int = 300
    key_pool: int = 200
    batch_total: int = 20_000
    batch_size: int = 1_000
    batch_runs: int = 5
    export_specs: int = 100_000
    export_small: int = 10_000
    export_runs: int = 3
    codec_number: int = 2_000
    codec_repeat: int = 7
    cluster_samples: int = 1_000
    cluster_runs: int = 5
    profile_ops: int = 2_000

    @classmethod
    def full(cls) -> Counts:
        return cls()

    @classmethod
    def quick(cls) -> Counts:
        return cls(
            latency_samples=300, latency_runs=3, latency_warmup=50, key_pool=100,
            batch_total=2_000, batch_runs=3, export_specs=2_000, export_small=500,
            export_runs=2, codec_number=500, codec_repeat=5, cluster_samples=200,
            cluster_runs=3, profile_ops=500,
        )

    def scaled(self, factor: float) -> Counts:
        """Every count times ``factor`` (runs and repeats kept), with small floors."""
        if factor == 1.0:
            return self
        keep = {"latency_runs", "batch_runs", "export_runs", "codec_repeat", "cluster_runs"}
        changes: dict[str, int] = {}
        for f in dataclasses.fields(self):
            if f.name not in keep:
                changes[f.name] = max(10, int(getattr(self, f.name) * factor))
        scaled = dataclasses.replace(self, **changes)
        return dataclasses.replace(
            scaled,
            batch_size=min(scaled.batch_size, scaled.batch_total),
            export_small=min(scaled.export_small, scaled.export_specs),
        )


# -- specs and keys -----------------------------------------------------------------------------

BASE_SPEC = typical_spec(uuid.UUID("3f0c2a5e-9b7d-4c1e-8a6f-2d4b6c8e0a1b"))
"""The typical spec of specstore.samples (transient per-request fields included)."""


def spec_copies(count: int) -> list[RequestSpec]:
    """``count`` copies of the typical spec, each with its own fresh instance uuid."""
    return [BASE_SPEC.model_copy(update={"instance_uuid": uuid.uuid4()}) for _ in range(count)]


def run_prefix() -> str:
    """A key prefix no other run uses (so a shared Redis is never flushed)."""
    return f"bench-{secrets.token_hex(4)}"


def keyspace(prefix: str, part: str) -> Keyspace:
    return Keyspace(f"{prefix}:{part}")


def chunks(items: Sequence[RequestSpec], size: int) -> Iterator[Sequence[RequestSpec]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def delete_keys(client: redis.Redis, keys: Sequence[str], batch: int = 1_000) -> None:
    """UNLINK ``keys`` in pipelined batches (single-node clients)."""
    for start in range(0, len(keys), batch):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + batch]:
            pipe.unlink(key)
        pipe.execute()


def delete_prefix(client: RedisClient, prefix: str) -> int:
    """UNLINK every key under ``prefix`` (SCAN, never KEYS); returns how many."""
    deleted = 0
    for keys, _ in scan_batches(client, f"{prefix}:*", 1_000):
        if keys:
            _unlink_each(client, keys)
        deleted += len(keys)
    return deleted


def _unlink_each(client: RedisClient, keys: Sequence[bytes]) -> None:
    """UNLINK in one pipeline, key by key (keys may hash to different cluster slots)."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.unlink(key)
    pipe.execute()


# -- servers ------------------------------------------------------------------------------------


@contextmanager
def redis_url(given: str | None, modules: Sequence[str] = ()) -> Iterator[str]:
    """``given``, or the URL of a throwaway redis-server started (and stopped) here, with
    ``modules`` loaded."""
    if given:
        yield given
        return
    server = start_server([arg for path in modules for arg in ("--loadmodule", path)])
    try:
        yield server.url
    finally:
        server.discard()


@contextmanager
def cluster_url() -> Iterator[str]:
    """A throwaway 3-master Redis Cluster on loopback (``redis+cluster://`` URL)."""
    nodes = start_cluster()
    try:
        yield nodes.url
    finally:
        nodes.stop()


def server_version(client: RedisClient) -> str:
    info = client.info("server")
    if isinstance(info, dict) and "redis_version" in info:
        return str(info["redis_version"])
    return "?"


def parser_name(client: redis.Redis) -> str:
    """Name of the reply parser redis-py uses (``_HiredisParser`` when hiredis is in use)."""
    connection = client.connection_pool.get_connection()
    try:
        return type(getattr(connection, "_parser", None)).__name__
    finally:
        client.connection_pool.release(connection)
