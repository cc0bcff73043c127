"""Export every spec (or some stores') to JSON lines or msgpack, batch by batch."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from specstore import observability
from specstore.bulk.common import (
    NOT_A_HASH,
    ExportFormat,
    Progress,
    SpecKey,
    foreign,
    hgetall_many,
    note,
    spec_key_batches,
)
from specstore.bulk.export_format import (
    EXPORT_FIELDS,
    RecordEncoder,
)
from specstore.connection import backend_errors, is_wrong_type
from specstore.errors import (
    DocumentError,
)
from specstore.store import SpecStore
from specstore.topology import Backend


@dataclass
class ExportSummary:
    exported: int = 0
    bytes_written: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def export_specs(
    store: SpecStore,
    out: BinaryIO,
    fmt: ExportFormat = "jsonl",
    stores: Collection[str] | None = None,
    batch: int = 500,
    progress: Progress | None = None,
    validate: bool = False,
) -> ExportSummary:
    """Stream every spec (of ``stores``, or all) to ``out``; corrupt ones are skipped, counted.

    Documents are checked without building a model (marker, schema, readable version, one
    whole msgpack value, the instance named by the key: see
    :func:`specstore.bulk.export_format.check_document`) and written verbatim; ``validate=True``
    also validates every document against the model.
    """
    summary = ExportSummary()
    encoder = RecordEncoder(store.codec, fmt, validate=validate)
    for backend, keys, _ in spec_key_batches(store, stores, batch):
        with observability.batch("export", len(keys), backend):
            before, skipped = summary.exported, summary.skipped
            _export_batch(store, backend, keys, out, encoder, summary)
            observability.count_records("export", summary.exported - before)
            observability.count_corrupt("export", summary.skipped - skipped)
        if progress is not None:
            progress(len(keys))
    return summary


def _export_batch(
    store: SpecStore,
    backend: Backend,
    keys: list[SpecKey],
    out: BinaryIO,
    encoder: RecordEncoder,
    summary: ExportSummary,
) -> None:
    for item, values in zip(keys, _read_for_export(backend, keys), strict=True):
        if values is None:
            summary.skipped += 1
            note(summary.problems, f"{item.store} {item.instance_uuid}: {NOT_A_HASH}")
            foreign(item)
            continue
        if not values:
            continue  # deleted since the scan saw it
        if values[-1] is not None and store.locate(item.instance_uuid) != item.store:
            continue  # the frozen source of a move whose cell copy took over
        try:
            data = encoder.from_fields(item.store, item.instance_uuid, values)
        except DocumentError as exc:
            summary.skipped += 1
            note(summary.problems, f"{item.store} {item.instance_uuid}: {exc}")
            continue
        out.write(data)  # record by record: no second copy of the batch in memory
        summary.exported += 1
        summary.bytes_written += len(data)


def _read_for_export(backend: Backend, keys: list[SpecKey]) -> list[list[bytes | None] | None]:
    """The fields an export writes (:data:`EXPORT_FIELDS`) of each spec key, in one
    pipeline of HMGET (a list per key, no map built); [] for a key deleted since the scan,
    None for a key of another type. Keys lacking doc or rev are read again whole, to tell
    a deleted key from a damaged hash (which keeps its list, to be refused)."""
    if not keys:
        return []
    with backend_errors(f"read {len(keys)} specs", writes=False):
        pipe = backend.client.pipeline(transaction=False)
        for item in keys:
            pipe.execute_command("HMGET", item.key, *EXPORT_FIELDS)
        replies: list[Any] = pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception) and not is_wrong_type(reply):
            raise reply
    found: list[list[bytes | None] | None] = [
        None if isinstance(reply, Exception) else reply for reply in replies
    ]
    lacking = [i for i, values in enumerate(found) if values and None in values[:2]]
    if lacking:
        whole = hgetall_many(backend, [keys[i] for i in lacking])
        for index, raw in zip(lacking, whole, strict=True):
            found[index] = None if raw is None else [] if not raw else found[index]
    return found
