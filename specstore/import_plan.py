"""What an import would do, without writing: ``specstore import --dry-run``.

Each valid record is classified the way the restore script would settle it (see
``scripts/restore.lua``): ``created``, ``replaced`` (only with ``overwrite``), ``unchanged``
(same store, same document and rev) or ``existing`` (kept as it is). Reads only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from specstore.bulk import MAX_REPORTED, ImportFormat, ImportSummary, Progress, read_records
from specstore.connection import backend_errors
from specstore.errors import SpecStoreError
from specstore.export_format import ExportRecord
from specstore.keys import API
from specstore.records import reply_text
from specstore.store import SpecStore
from specstore.topology import Backend


def classify(
    home: str | None,
    stored_doc: bytes | None,
    stored_rev: bytes | None,
    exists: bool,
    record: ExportRecord,
    overwrite: bool,
) -> tuple[str, str | None]:
    """(outcome, home kept) for one record, by the restore script's rules."""
    same = home == record.store and stored_doc == record.doc and stored_rev is not None
    if same and reply_text(stored_rev) == str(record.rev):
        return "unchanged", None
    if home is not None and (home != record.store or not overwrite):
        return "existing", home
    if home is None and exists and not overwrite:
        return "existing", record.store
    return ("replaced" if home is not None else "created"), None


def _plan_batch(
    store: SpecStore, records: list[ExportRecord], overwrite: bool, summary: ImportSummary
) -> None:
    by_backend: dict[int, tuple[Backend, list[ExportRecord]]] = {}
    for record in records:
        backend = store.backend(record.store)
        by_backend.setdefault(id(backend), (backend, []))[1].append(record)
    for backend, group in by_backend.values():
        with backend_errors(f"dry run of {len(group)} records", writes=False):
            pipe = backend.client.pipeline(transaction=False)
            for r in group:
                spec_key = backend.keys.spec_key(r.store, r.instance_uuid)
                pipe.get(backend.keys.location_key(r.instance_uuid))
                pipe.hmget(spec_key, ["doc", "rev"])
                pipe.exists(spec_key)
            replies: list[Any] = pipe.execute(raise_on_error=False)
        for index, record in enumerate(group):
            loc, fields, exists = replies[3 * index : 3 * index + 3]
            if isinstance(fields, Exception):  # a foreign value at the spec key
                fields, exists = [None, None], 1
            home = reply_text(loc) if isinstance(loc, bytes) else None
            outcome, kept = classify(home, fields[0], fields[1], bool(exists), record, overwrite)
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
) -> ImportSummary:
    """Validate every record and say what a real import would do with each valid one."""
    summary = ImportSummary(dry_run=True)
    pending: list[ExportRecord] = []
    with open_source() as source:
        for number, result in read_records(source, fmt, store, nova_store, store.clock()):
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
