"""Counts per store and schema version, and sampled memory usage."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from specstore.bulk.common import (
    SpecKey,
    spec_key_batches,
)
from specstore.connection import backend_errors, is_wrong_type
from specstore.core.records import reply_text
from specstore.store import SpecStore
from specstore.topology import Backend


@dataclass
class StoreStats:
    count: int = 0
    schemas: Counter[str] = field(default_factory=Counter)
    sampled: int = 0
    sampled_bytes: int = 0

    @property
    def estimated_bytes(self) -> int | None:
        """MEMORY USAGE of the sampled keys, scaled to the count (None if nothing sampled)."""
        if not self.sampled:
            return None
        return round(self.sampled_bytes / self.sampled * self.count)


def collect_stats(store: SpecStore, sample: int = 200, batch: int = 1000) -> dict[str, StoreStats]:
    """Counts per store and per schema version, and memory sampled with MEMORY USAGE."""
    stats: dict[str, StoreStats] = {}
    for backend, keys, _ in spec_key_batches(store, None, batch):
        if not keys:
            continue
        with backend_errors("stats", writes=False):
            pipe = backend.client.pipeline(transaction=False)
            for item in keys:
                pipe.hget(item.key, "schema")
            schemas = pipe.execute(raise_on_error=False)
            for schema in schemas:
                if isinstance(schema, Exception) and not is_wrong_type(schema):
                    raise schema
        to_sample: list[SpecKey] = []
        for item, schema in zip(keys, schemas, strict=True):
            entry = stats.setdefault(item.store, StoreStats())
            entry.count += 1
            entry.schemas[_schema_label(schema)] += 1
            if entry.sampled + sum(1 for k in to_sample if k.store == item.store) < sample:
                to_sample.append(item)
        for item, used in zip(to_sample, _memory_usage(backend, to_sample), strict=True):
            if used is not None:
                stats[item.store].sampled += 1
                stats[item.store].sampled_bytes += used
    return stats


def _schema_label(reply: object) -> str:
    if isinstance(reply, Exception):
        return "(not a hash)"
    return reply_text(reply) if reply else "(none)"


def _memory_usage(backend: Backend, keys: list[SpecKey]) -> list[int | None]:
    if not keys:
        return []
    with backend_errors("stats (MEMORY USAGE)", writes=False):
        pipe = backend.client.pipeline(transaction=False)
        for item in keys:
            pipe.memory_usage(item.key, samples=0)
        replies = pipe.execute(raise_on_error=False)
    return [r if isinstance(r, int) else None for r in replies]
