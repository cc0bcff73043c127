"""What an import would do, without writing: ``specstore import --dry-run``.

Each valid record is classified the way the restore script would settle it (see
``scripts/restore.lua``): ``created``, ``replaced`` (only with ``overwrite``), ``unchanged``
(same store, same document) or ``existing`` (kept as it is). Reads only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from specstore.bulk.common import MAX_REPORTED, ImportFormat, Progress
from specstore.bulk.export_format import ExportRecord
from specstore.bulk.importing import ImportSummary, read_records
from specstore.connection import backend_errors
from specstore.core.keys import API
from specstore.core.records import reply_text
from specstore.errors import SpecStoreError
from specstore.store import SpecStore
from specstore.topology import Backend


def classify(
    home: str | None,
    moving_to: str | None,
    destroyed: bool,
    stored_doc: bytes | None,
    exists: bool,
    record: ExportRecord,
    overwrite: bool,
) -> tuple[str, str | None]:
    """(outcome, home kept) for one record, by the rules of the import's write path: the
    authority's ``home`` (and open move) decides, then the record's own store."""
    if moving_to is not None:
        return "existing", moving_to
    if home == record.store:
        if stored_doc == record.doc:
            return "unchanged", None
        return ("replaced", None) if overwrite else ("existing", home)
    if home is not None:
        return "existing", home
    if destroyed and not overwrite:  # destroyed since the export: stays destroyed
        return "existing", "(destroyed)"
    if exists:  # something specstore did not write sits at the key
        return "existing", record.store
    return "created", None


def _plan_batch(
    store: SpecStore, records: list[ExportRecord], overwrite: bool, summary: ImportSummary
) -> None:
    if not records:
        return
    api = store.topology.api
    with backend_errors(f"dry run of {len(records)} records", writes=False):
        pipe = api.client.pipeline(transaction=False)
        for r in records:
            pipe.hmget(api.keys.location_key(r.instance_uuid), ["store", "move_to", "state"])
        authority: list[Any] = pipe.execute(raise_on_error=False)
    stored: dict[int, tuple[Any, Any]] = {}
    by_backend: dict[int, tuple[Backend, list[int]]] = {}
    for index, record in enumerate(records):
        backend = store.backend(record.store)
        by_backend.setdefault(id(backend), (backend, []))[1].append(index)
    for backend, indexes in by_backend.values():
        with backend_errors(f"dry run of {len(indexes)} records", writes=False):
            pipe = backend.client.pipeline(transaction=False)
            for index in indexes:
                spec_key = backend.keys.spec_key(records[index].store, records[index].instance_uuid)
                pipe.hget(spec_key, "doc")
                pipe.exists(spec_key)
            replies: list[Any] = pipe.execute(raise_on_error=False)
        for position, index in enumerate(indexes):
            stored[index] = (replies[2 * position], replies[2 * position + 1])
    for index, record in enumerate(records):
        loc = authority[index]
        home, moving_to, state = (None, None, None) if isinstance(loc, Exception) else loc
        doc, exists = stored[index]
        if isinstance(doc, Exception):  # a foreign value at the spec key
            doc, exists = None, 1
        outcome, kept = classify(
            reply_text(home) if home else None,
            reply_text(moving_to) if moving_to else None,
            state == b"destroyed",
            doc,
            bool(exists),
            record,
            overwrite,
        )
        setattr(summary, outcome, getattr(summary, outcome) + 1)
        if kept is not None and len(summary.problems) < MAX_REPORTED:
            summary.problems.append(
                f"{record.instance_uuid}: would keep the spec already in {kept!r}"
            )


def dry_run_import(
    store: SpecStore,
    open_source: Callable[[], BinaryIO],
    fmt: ImportFormat,
    *,
    overwrite: bool = False,
    batch: int = 500,
    nova_store: str = API,
    progress: Progress | None = None,
    validate: bool = False,
) -> ImportSummary:
    """Validate every record (as :func:`specstore.bulk.read_records` does, ``validate`` as
    there) and say what a real import would do with each valid one."""
    summary = ImportSummary(dry_run=True)
    pending: list[ExportRecord] = []
    with open_source() as source:
        for number, result in read_records(
            source, fmt, store, nova_store, store.clock(), validate=validate
        ):
            summary.read += 1
            if isinstance(result, SpecStoreError):
                summary.rejected += 1
                if len(summary.problems) < MAX_REPORTED:
                    summary.problems.append(f"line {number}: {result}")
                continue
            summary.valid += 1
            pending.append(result)
            if len(pending) >= batch:
                _plan_batch(store, pending, overwrite, summary)
                if progress is not None:
                    progress(len(pending))
                pending = []
    _plan_batch(store, pending, overwrite, summary)
    if progress is not None and pending:
        progress(len(pending))
    return summary
