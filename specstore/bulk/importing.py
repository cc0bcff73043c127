"""Import exported specs (JSON lines, msgpack, or a Nova request_specs table)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import BinaryIO

import msgpack
import ormsgpack

from specstore import observability
from specstore.bulk.common import (
    ImportFormat,
    Progress,
    note,
)
from specstore.bulk.export_format import (
    DocumentChecker,
    ExportRecord,
    parse_json_record,
    parse_msgpack_record,
    verbatim_msgpack_record,
)
from specstore.core import lua, two_phase
from specstore.core.keys import API, normalize_uuid, validate_store_name
from specstore.core.records import reply_error, reply_text
from specstore.drivers.sync import run
from specstore.errors import (
    CorruptDocumentError,
    SpecStoreError,
)
from specstore.serializers.envelope import format_version
from specstore.serializers.msgpack_codec import DocumentCodec
from specstore.serializers.nova import from_nova_primitive
from specstore.store import SpecStore, run_batch
from specstore.topology import Backend


@dataclass
class ImportSummary:
    read: int = 0
    valid: int = 0
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    existing: int = 0
    rejected: int = 0
    failed: int = 0
    """Valid records that Redis failed to write (see ``problems``; re-running retries them)."""
    dry_run: bool = False
    problems: list[str] = field(default_factory=list)
    """"line N: reason" for rejected records, then existing specs that were kept."""

    @property
    def complete(self) -> bool:
        """True when every record was imported (or already stored unchanged)."""
        return self.rejected == 0 and self.existing == 0 and self.failed == 0


def read_records(
    source: BinaryIO,
    fmt: ImportFormat,
    store: SpecStore,
    nova_store: str = API,
    now: str | None = None,
    *,
    validate: bool = False,
) -> Iterator[tuple[int, ExportRecord | SpecStoreError]]:
    """(line or record number, record or the reason it is rejected) for every input record.

    JSON lines and Nova rows are validated through the model (a stored document is made
    from it). msgpack records keep their document bytes after the checks of
    :func:`specstore.bulk.export_format.verbatim_msgpack_record` (the model's included);
    ``validate=True`` writes their documents anew from the model."""
    for number, _, result in _records_at(source, fmt, store, nova_store, now, validate):
        yield number, result


def _records_at(
    source: BinaryIO,
    fmt: ImportFormat,
    store: SpecStore,
    nova_store: str,
    now: str | None,
    validate: bool,
) -> Iterator[tuple[int, int, ExportRecord | SpecStoreError]]:
    """:func:`read_records`, each with the offset in ``source`` just after its record."""
    codec = store.codec
    if fmt == "jsonl":
        end = 0
        for number, line in enumerate(source, 1):
            end += len(line)
            if line.strip():
                yield number, end, _guard(partial(_json_record, line, codec))
    elif fmt == "msgpack":
        limits = codec.limits
        unpacker = msgpack.Unpacker(
            source,
            raw=False,
            max_buffer_size=limits.max_document_bytes * 2,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_document_bytes,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
        )
        checker = DocumentChecker(codec)
        parse: Callable[[object], ExportRecord] = (
            partial(_msgpack_record, codec=codec)
            if validate
            else partial(verbatim_msgpack_record, codec=codec, checker=checker)
        )
        number = 0
        try:
            for number, item in enumerate(unpacker, 1):
                yield number, unpacker.tell(), _guard(partial(parse, item))
        except (ValueError, msgpack.UnpackException) as exc:
            error = CorruptDocumentError(f"unreadable msgpack stream: {exc}")
            yield number + 1, unpacker.tell(), error
    else:
        yield from _read_nova_table(source, store, validate_store_name(nova_store), now)


def _json_record(line: bytes, codec: DocumentCodec) -> ExportRecord:
    return parse_json_record(line, codec)[0]


def _msgpack_record(item: object, codec: DocumentCodec) -> ExportRecord:
    return parse_msgpack_record(item, codec)[0]


def _guard(parse: Callable[[], ExportRecord]) -> ExportRecord | SpecStoreError:
    try:
        return parse()
    except SpecStoreError as exc:
        return exc


def _read_nova_table(
    source: BinaryIO, store: SpecStore, target: str, now: str | None
) -> Iterator[tuple[int, int, ExportRecord | SpecStoreError]]:
    """Nova's api-database ``request_specs`` dump: a header, then instance_uuid<TAB>spec JSON."""
    stamp = now or store.clock()
    end = 0
    for number, raw_line in enumerate(source, 1):
        end += len(raw_line)
        line = raw_line.decode("utf-8", "replace").rstrip("\r\n")
        if not line.strip() or (number == 1 and line.startswith("instance_uuid")):
            continue
        yield number, end, _guard(partial(_nova_row, line, store, target, stamp))


def _nova_row(line: str, store: SpecStore, target: str, stamp: str) -> ExportRecord:
    column, sep, payload = line.partition("\t")
    if not sep:
        raise CorruptDocumentError("expected instance_uuid<TAB>spec JSON")
    uid = normalize_uuid(column.strip())
    try:
        primitive = json.loads(payload)
    except ValueError as exc:
        raise CorruptDocumentError(f"spec column is not JSON: {exc}") from exc
    spec = from_nova_primitive(primitive)
    if str(spec.instance_uuid) != uid:
        raise CorruptDocumentError(f"row {uid} holds the spec of {spec.instance_uuid}")
    version, doc = store.codec.encode_versioned(spec)
    return ExportRecord(
        uid,
        target,
        1,
        doc,
        f"{store.codec.schema}/{format_version(version)}",
        spec.project_id or "",
        spec.user_id or "",
        stamp,
        stamp,
    )


def import_specs(
    store: SpecStore,
    open_source: Callable[[], BinaryIO],
    fmt: ImportFormat,
    *,
    dry_run: bool = False,
    overwrite: bool = False,
    batch: int = 500,
    nova_store: str = API,
    progress: Progress | None = None,
    validate: bool = False,
) -> ImportSummary:
    """Validate every record first, then write the valid ones (unless ``dry_run``).

    ``open_source`` is called once per pass. The first pass checks every record once (see
    :func:`read_records`; ``validate`` builds the model of msgpack records too) and keeps
    the valid ones in a temporary file; the second writes them from there, reading the
    source again only as far as the records written (so that a caller counting its reads
    sees the writing progress). Existing specs are kept unless ``overwrite`` (and then only
    in the same store: a spec never gets a second home). Re-running an import is safe:
    records already stored identically count as ``unchanged``.
    """
    summary = ImportSummary(dry_run=dry_run)
    now = store.clock()
    with tempfile.TemporaryFile() as spool:
        with open_source() as source:
            for number, end, result in _records_at(source, fmt, store, nova_store, now, validate):
                summary.read += 1
                if isinstance(result, SpecStoreError):
                    summary.rejected += 1
                    note(summary.problems, f"line {number}: {result}")
                else:
                    summary.valid += 1
                    if not dry_run:
                        spool.write(_spooled(end, result))
        if dry_run or summary.valid == 0:
            return summary
        spool.seek(0)
        with open_source() as source:
            pending: list[ExportRecord] = []
            read = 0
            for end, record in _unspooled(spool, store.codec.limits.max_document_bytes):
                pending.append(record)
                if len(pending) >= batch:
                    _restore_batch(store, pending, overwrite, summary, progress)
                    read = _read_up_to(source, read, end)
                    pending = []
            _restore_batch(store, pending, overwrite, summary, progress)
            _read_up_to(source, read, None)
    return summary


def _spooled(end: int, record: ExportRecord) -> bytes:
    return ormsgpack.packb(
        [
            end,
            record.instance_uuid,
            record.store,
            record.rev,
            record.doc,
            record.schema,
            record.project_id,
            record.user_id,
            record.created_at,
            record.updated_at,
        ]
    )


def _unspooled(spool: BinaryIO, max_doc: int) -> Iterator[tuple[int, ExportRecord]]:
    """The records :func:`_spooled` wrote (checked already), each with its source offset."""
    for end, *fields in msgpack.Unpacker(spool, raw=False, max_buffer_size=2 * max_doc + 4096):
        yield end, ExportRecord(*fields)


def _read_up_to(source: BinaryIO, position: int, end: int | None) -> int:
    """Read ``source`` on from ``position`` to ``end`` (None: to its end); the position."""
    while end is None or position < end:
        chunk = source.read(1 << 16 if end is None else min(1 << 16, end - position))
        if not chunk:
            break
        position += len(chunk)
    return position


IMPORT_OUTCOMES = ("created", "replaced", "unchanged", "existing", "failed")


def _restore_batch(
    store: SpecStore,
    records: list[ExportRecord],
    overwrite: bool,
    summary: ImportSummary,
    progress: Progress | None,
) -> None:
    """:func:`_restore` in a span, its records counted by outcome."""
    if not records:
        _restore(store, records, overwrite, summary, progress)
        return
    with observability.batch("import", len(records)):
        before = [getattr(summary, name) for name in IMPORT_OUTCOMES]
        _restore(store, records, overwrite, summary, progress)
        for name, was in zip(IMPORT_OUTCOMES, before, strict=True):
            observability.count_records("import", getattr(summary, name) - was, name)


def _restore(
    store: SpecStore,
    records: list[ExportRecord],
    overwrite: bool,
    summary: ImportSummary,
    progress: Progress | None,
) -> None:
    """Write one batch of records, each through the authority: a record never makes a second
    home, and its rev continues the instance's lineage.

    Stores on the api backend take one pipeline. For a cell on its own backend, a spec that
    already lives there is restored in place (one pipeline there); any other record claims
    the instance at the authority, is adopted by the cell and committed (one pipeline each).
    """
    by_backend: dict[int, tuple[Backend, list[ExportRecord]]] = {}
    for record in records:
        backend = store.backend(record.store)
        by_backend.setdefault(id(backend), (backend, []))[1].append(record)
    for backend, group in by_backend.values():
        remote = backend is not store.topology.api
        calls: list[lua.Call] = [
            (
                lua.RESTORE,
                backend.keys.home_keys(r.store, r.instance_uuid),
                [
                    r.store,
                    r.doc,
                    r.rev,
                    r.schema,
                    r.project_id,
                    r.user_id,
                    r.created_at,
                    r.updated_at,
                    "1" if overwrite else "",
                    "" if remote else "1",
                ],
            )
            for r in group
        ]
        replies = run_batch(
            backend, calls, f"import of {len(calls)} specs", whole_failure_raises=True
        )
        unclaimed: list[ExportRecord] = []
        for record, reply in zip(group, replies, strict=True):
            if isinstance(reply, SpecStoreError):
                _import_failed(summary, record, reply)
            elif reply_text(reply[0]) == "unclaimed":
                unclaimed.append(record)
            else:
                _count_restore(summary, record, reply)
        for cell, cell_records in _by_store(unclaimed).items():
            _restore_through_authority(store, cell, cell_records, overwrite, summary)
    if progress is not None and records:
        progress(len(records))


def _by_store(records: list[ExportRecord]) -> dict[str, list[ExportRecord]]:
    grouped: dict[str, list[ExportRecord]] = {}
    for record in records:
        grouped.setdefault(record.store, []).append(record)
    return grouped


def _restore_through_authority(
    store: SpecStore,
    cell: str,
    records: list[ExportRecord],
    overwrite: bool,
    summary: ImportSummary,
) -> None:
    copies = [
        two_phase.NewCopy(
            r.instance_uuid,
            r.doc,
            r.rev,
            r.schema,
            r.project_id,
            r.user_id,
            r.created_at,
            r.updated_at,
        )
        for r in records
    ]
    results = run(
        two_phase.create_copies(
            store.topology.api,
            store.backend(cell),
            cell,
            copies,
            store.moves,
            store.clock(),
            revive=overwrite,
        )
    )
    for record, result in zip(records, results, strict=True):
        if result.status == "created":
            summary.created += 1
        elif result.status in ("exists", "moving"):
            _kept_existing(summary, record, result.home)
        elif result.status == "buried":
            _kept_destroyed(summary, record)
        else:
            assert result.error is not None
            _import_failed(summary, record, result.error)


def _count_restore(summary: ImportSummary, record: ExportRecord, reply: list[object]) -> None:
    status = reply_text(reply[0])
    if status == "buried":
        _kept_destroyed(summary, record)
        return
    outcome = reply_text(reply[1])
    if status == "ok":
        setattr(summary, outcome, getattr(summary, outcome) + 1)
    elif status in ("exists", "moving"):
        _kept_existing(summary, record, outcome)
    else:
        _import_failed(summary, record, reply_error(reply, record.instance_uuid))


def _kept_existing(summary: ImportSummary, record: ExportRecord, home: str) -> None:
    summary.existing += 1
    note(summary.problems, f"{record.instance_uuid}: kept the spec already in {home!r}")


def _kept_destroyed(summary: ImportSummary, record: ExportRecord) -> None:
    summary.existing += 1
    note(
        summary.problems,
        f"{record.instance_uuid}: destroyed since this record was exported; kept destroyed "
        "(--overwrite restores it)",
    )


def _import_failed(summary: ImportSummary, record: ExportRecord, error: SpecStoreError) -> None:
    summary.failed += 1
    note(summary.problems, f"{record.instance_uuid}: not imported: {error}")
