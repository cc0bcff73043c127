"""Whole-store operations: export, import, migrate, stats and repair.

Every scan is SCAN (never KEYS) over each backend and each cluster master, read in pipelined
batches, so memory stays bounded whatever the key count.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, BinaryIO, Literal

import msgpack
import ormsgpack
import redis

from serializers.envelope import format_version
from serializers.msgpack_codec import DocumentCodec
from serializers.nova import from_nova_primitive
from specstore import lua, observability, two_phase
from specstore.connection import backend_errors, is_wrong_type, read_hashes
from specstore.drivers.sync import run
from specstore.errors import (
    BackendError,
    CorruptDocumentError,
    DocumentError,
    InvalidInputError,
    SpecStoreError,
)
from specstore.export_format import (
    EXPORT_FIELDS,
    DocumentChecker,
    ExportRecord,
    RecordEncoder,
    parse_json_record,
    parse_msgpack_record,
    record_from_hash,
    verbatim_msgpack_record,
)
from specstore.keys import API, normalize_uuid, validate_store_name
from specstore.records import reply_error, reply_text
from specstore.repair_rules import Observation, Plan, Record, plan_repair
from specstore.scan import ScanPosition, scan_batches
from specstore.store import SpecStore, run_batch
from specstore.topology import Backend

ExportFormat = Literal["jsonl", "msgpack"]
ImportFormat = Literal["jsonl", "msgpack", "nova-tsv"]
Progress = Callable[[int], None]
"""Called with the number of records just handled."""

MAX_REPORTED = 1000
"""At most this many individual problems are kept in a summary (the counts are exact)."""


@dataclass(frozen=True)
class SpecKey:
    key: str
    store: str
    instance_uuid: str


def spec_key_batches(
    store: SpecStore,
    stores: Collection[str] | None = None,
    batch: int = 500,
    start: tuple[int, ScanPosition] | None = None,
) -> Iterator[tuple[Backend, list[SpecKey], tuple[int, ScanPosition] | None]]:
    """Batches of spec keys of every backend (or only ``stores``), with a resume position.

    A store is read only from the backend the topology assigns it to.
    """
    backends = store.topology.backends()
    first_backend, first_position = start or (0, ScanPosition())
    for index in range(first_backend, len(backends)):
        backend = backends[index]
        position = first_position if index == first_backend else None
        match = _spec_key_matcher(backend.keys.prefix)
        homes: dict[str, bool] = {}  # store -> read from this backend
        for raw_keys, next_position in scan_batches(
            backend.client, backend.keys.spec_pattern(None), batch, position
        ):
            keys = []
            for raw in raw_keys:
                found = match(raw)
                if found is None:
                    continue
                cell, uid = found.group(1, 2)
                name = API if cell is None else cell.decode()
                wanted = homes.get(name)
                if wanted is None:
                    wanted = homes[name] = (stores is None or name in stores) and (
                        store.topology.backend_for(name) is backend
                    )
                if wanted:
                    keys.append(SpecKey(raw.decode(), name, uid.decode()))
            if next_position is not None:
                resume: tuple[int, ScanPosition] | None = (index, next_position)
            elif index + 1 < len(backends):
                resume = (index + 1, ScanPosition())
            else:
                resume = None
            yield backend, keys, resume


def _spec_key_matcher(prefix: str) -> Callable[[bytes], re.Match[bytes] | None]:
    """A matcher of the spec keys under ``prefix`` as SCAN returns them; its groups are the
    cell name (None for the api store) and the instance uuid.

    It accepts exactly the keys :meth:`Keyspace.parse_spec_key` parses (the tests compare
    them): the api store or a valid cell name other than "api", and a canonical uuid."""
    cell = rb"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
    hexa = rb"[0-9a-f]"
    uid = rb"-".join(hexa + b"{%d}" % n for n in (8, 4, 4, 4, 12))
    pattern = re.compile(
        re.escape(prefix.encode())
        + rb":(?:api|cell:(?!api:)("
        + cell
        + rb")):spec:\{("
        + uid
        + rb")\}"
    )
    return pattern.fullmatch


NOT_A_HASH = "the key holds a value that is not a spec hash (written by something else)"


def _hgetall_many(backend: Backend, keys: list[SpecKey]) -> list[dict[bytes, bytes] | None]:
    """The spec hashes of ``keys`` in one pipeline; None for a key of another type."""
    with backend_errors(f"read {len(keys)} specs", writes=False):
        return read_hashes(backend.client, [item.key for item in keys])


# -- export -----------------------------------------------------------------------------------


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
    :func:`specstore.export_format.check_document`) and written verbatim; ``validate=True``
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
            _note(summary.problems, f"{item.store} {item.instance_uuid}: {NOT_A_HASH}")
            _foreign(item)
            continue
        if not values:
            continue  # deleted since the scan saw it
        if values[-1] is not None and store.locate(item.instance_uuid) != item.store:
            continue  # the frozen source of a move whose cell copy took over
        try:
            data = encoder.from_fields(item.store, item.instance_uuid, values)
        except DocumentError as exc:
            summary.skipped += 1
            _note(summary.problems, f"{item.store} {item.instance_uuid}: {exc}")
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
        whole = _hgetall_many(backend, [keys[i] for i in lacking])
        for index, raw in zip(lacking, whole, strict=True):
            found[index] = None if raw is None else [] if not raw else found[index]
    return found


def _foreign(item: SpecKey) -> None:
    """A key in specstore's keyspace holding something specstore did not write: skipped."""
    observability.logger.warning(
        "skipped %s: %s (store %s, instance %s)",
        item.key,
        NOT_A_HASH,
        item.store,
        item.instance_uuid,
    )


def _note(problems: list[str], text: str) -> None:
    if len(problems) < MAX_REPORTED:
        problems.append(text)


# -- import -----------------------------------------------------------------------------------


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
    :func:`specstore.export_format.verbatim_msgpack_record` (the model's included);
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
                    _note(summary.problems, f"line {number}: {result}")
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
    _note(summary.problems, f"{record.instance_uuid}: kept the spec already in {home!r}")


def _kept_destroyed(summary: ImportSummary, record: ExportRecord) -> None:
    summary.existing += 1
    _note(
        summary.problems,
        f"{record.instance_uuid}: destroyed since this record was exported; kept destroyed "
        "(--overwrite restores it)",
    )


def _import_failed(summary: ImportSummary, record: ExportRecord, error: SpecStoreError) -> None:
    summary.failed += 1
    _note(summary.problems, f"{record.instance_uuid}: not imported: {error}")


# -- migrate ----------------------------------------------------------------------------------


@dataclass
class MigrateSummary:
    scanned: int = 0
    rewritten: int = 0
    current: int = 0
    newer: int = 0
    failed: int = 0
    cursor: str | None = None
    """Where to resume (``--cursor``); None when the whole keyspace was covered."""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MigrateCursor:
    """Where migrate resumes: a SCAN call to (re)issue, and how much of its reply was done.

    Batches hold exactly ``batch`` keys while SCAN (whose COUNT is only a hint) returns more or
    fewer per call, so a batch can end inside a call's reply. Then the cursor names that call
    (``backend``, ``position``), how many of its keys were handled (``skip``) and a fingerprint
    of them (``seen``): a resumed run re-issues the call and skips those keys only when the
    reply starts with the very same keys; otherwise it handles the whole reply again, which
    is harmless (a rewritten document counts as current). Text: ``backend:node:cursor`` or
    ``backend:node:cursor:skip:seen``.
    """

    backend: int = 0
    position: ScanPosition = field(default_factory=ScanPosition)
    skip: int = 0
    seen: str = ""

    def __str__(self) -> str:
        text = f"{self.backend}:{self.position}"
        return f"{text}:{self.skip}:{self.seen}" if self.skip else text


def parse_cursor(text: str) -> MigrateCursor:
    parts = text.split(":")
    numbers = parts[:4] if len(parts) == 5 else parts
    if (
        len(parts) not in (3, 5)
        or not all(p.isdigit() for p in numbers)
        or (len(parts) == 5 and not _FINGERPRINT.fullmatch(parts[4]))
    ):
        raise InvalidInputError(f"a migrate cursor looks like '0:0:1234', not {text[:80]!r}")
    position = ScanPosition(int(parts[1]), int(parts[2]))
    if len(parts) == 3:
        return MigrateCursor(int(parts[0]), position)
    return MigrateCursor(int(parts[0]), position, int(parts[3]), parts[4])


_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def _fingerprint(keys: list[SpecKey]) -> str:
    return hashlib.sha1("\n".join(k.key for k in keys).encode()).hexdigest()[:16]


def exact_batches(
    store: SpecStore, batch: int, start: MigrateCursor | None = None
) -> Iterator[tuple[list[tuple[Backend, SpecKey]], MigrateCursor | None]]:
    """Batches of exactly ``batch`` spec keys (the last may be shorter), each with the cursor
    to resume after it (None once every backend was scanned to the end)."""
    if batch < 1:
        raise InvalidInputError("the batch size is at least 1")
    start = start or MigrateCursor()
    call: tuple[int, ScanPosition] = (start.backend, start.position)
    pending: list[tuple[Backend, SpecKey]] = []
    first = True
    for backend, keys, after in spec_key_batches(store, None, batch, call):
        taken = 0
        if first and start.skip and _fingerprint(keys[: start.skip]) == start.seen:
            taken = start.skip  # handled by the run that stopped here
        first = False
        while taken < len(keys):
            room = batch - len(pending)
            pending.extend((backend, key) for key in keys[taken : taken + room])
            taken = min(taken + room, len(keys))
            if len(pending) < batch:
                break
            if taken < len(keys):
                resume: MigrateCursor | None = MigrateCursor(
                    call[0], call[1], taken, _fingerprint(keys[:taken])
                )
            else:
                resume = None if after is None else MigrateCursor(*after)
            yield pending, resume
            pending = []
        if after is not None:
            call = after
    if pending:
        yield pending, None


def migrate_documents(
    store: SpecStore,
    *,
    batch: int = 500,
    cursor: str | None = None,
    max_batches: int | None = None,
    progress: Progress | None = None,
) -> MigrateSummary:
    """Rewrite documents of older schema versions at the current version, batch by batch.

    Every batch holds exactly ``batch`` specs (the last one may hold fewer). Each document is
    decoded, so one that cannot be read is counted as failed (and named), never as current.
    Each rewrite is a compare-and-set on the rev read, so a concurrent writer wins (its write
    is already current). Stop after ``max_batches`` and resume from ``cursor``.
    """
    codec = store.codec
    if codec.write_version != codec.current_version:
        raise InvalidInputError("the codec is pinned to an older write_version; unpin it first")
    summary = MigrateSummary()
    start = parse_cursor(cursor) if cursor else None
    for batches, (items, resume) in enumerate(exact_batches(store, batch, start), 1):
        summary.scanned += len(items)
        by_backend: dict[int, tuple[Backend, list[SpecKey]]] = {}
        for backend, item in items:
            by_backend.setdefault(id(backend), (backend, []))[1].append(item)
        for backend, keys in by_backend.values():
            with observability.batch("migrate", len(keys), backend):
                failed = summary.failed
                _migrate_batch(store, backend, keys, summary)
                observability.count_corrupt("migrate", summary.failed - failed)
        summary.cursor = None if resume is None else str(resume)
        if progress is not None:
            progress(len(items))
        if max_batches is not None and batches >= max_batches:
            break
    return summary


def _migrate_batch(
    store: SpecStore, backend: Backend, keys: list[SpecKey], summary: MigrateSummary
) -> None:
    codec = store.codec
    current_label = f"{codec.schema}/{format_version(codec.current_version)}"
    calls: list[lua.Call] = []
    targets: list[SpecKey] = []
    for item, raw in zip(keys, _hgetall_many(backend, keys), strict=True):
        if raw is None:
            summary.failed += 1
            _note(summary.problems, f"{item.store} {item.instance_uuid}: {NOT_A_HASH}")
            _foreign(item)
            continue
        if not raw:
            continue  # deleted since the scan saw it
        try:
            record = record_from_hash(item.store, item.instance_uuid, raw)
            envelope = codec.header(record.doc)
            if envelope.schema == codec.schema and envelope.version > codec.current_version:
                summary.newer += 1  # written by newer code: left as it is
                continue
            spec = codec.from_envelope(envelope)
            if str(spec.instance_uuid) != item.instance_uuid:
                raise CorruptDocumentError(f"the document holds instance {spec.instance_uuid}")
            if envelope.version == codec.current_version and record.schema == current_label:
                summary.current += 1
                continue
            version, doc = codec.encode_versioned(spec)
        except DocumentError as exc:
            summary.failed += 1
            _note(summary.problems, f"{item.store} {item.instance_uuid}: {exc}")
            continue
        calls.append(
            (
                lua.SAVE,
                [item.key, backend.keys.location_key(item.instance_uuid)],
                [
                    item.store,
                    str(record.rev),
                    doc,
                    f"{codec.schema}/{format_version(version)}",
                    record.project_id,
                    record.user_id,
                    store.clock(),
                    codec.current_version[0],
                ],
            )
        )
        targets.append(item)
    if not calls:
        return
    with backend_errors(f"migrate {len(calls)} specs", writes=True):
        replies = lua.run_scripts_pipelined(backend.client, calls)
    for item, reply in zip(targets, replies, strict=True):
        if not isinstance(reply, Exception) and reply_text(reply[0]) == "ok":
            summary.rewritten += 1
        else:
            summary.failed += 1
            detail = reply if isinstance(reply, Exception) else reply_text(reply[0])
            _note(summary.problems, f"{item.store} {item.instance_uuid}: {detail}")


# -- stats ------------------------------------------------------------------------------------


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


# -- repair -----------------------------------------------------------------------------------


@dataclass
class RepairReport:
    checked: int = 0
    plans: list[Plan] = field(default_factory=list)
    """The unhealthy instances found (at most MAX_REPORTED kept) and what was (or would be)
    done."""
    repaired: int = 0
    dry_run: bool = False
    found: int = 0
    skipped: int = 0
    """Instances left alone because a key of theirs holds something that is not a spec."""
    problems: list[str] = field(default_factory=list)


def repair(
    store: SpecStore,
    *,
    dry_run: bool = False,
    batch: int = 500,
    progress: Progress | None = None,
) -> RepairReport:
    """Find instances with more than one home or a location record that disagrees; fix them
    by the rule in :mod:`specstore.repair_rules` (only report with ``dry_run``).

    ``checked`` counts instances: one seen through its spec key is not counted again through
    its location record. ``progress`` is called with the instances just checked."""
    report = RepairReport(dry_run=dry_run)
    seen: set[str] = set()
    for candidates in _repair_candidates(store, batch):
        with observability.batch("repair", len(candidates)):
            counted = _repair_batch(store, candidates, seen, report, dry_run)
        if progress is not None and counted:
            progress(counted)
    return report


def _repair_batch(
    store: SpecStore,
    candidates: dict[str, set[str]],
    seen: set[str],
    report: RepairReport,
    dry_run: bool,
) -> int:
    """Check (and fix) one scanned batch; the instances counted."""
    counted = 0
    for uid, extra_stores in candidates.items():
        if uid in seen:
            continue
        # extra_stores is empty for a uid found through its location record: counted
        # already with its copy, unless it has none
        first_sighting = bool(extra_stores)
        try:
            obs = observe(store, uid, extra_stores)
        except CorruptDocumentError as exc:
            seen.add(uid)  # remembered like damage: memory bounded by what is broken
            report.checked += 1
            counted += 1
            report.skipped += 1  # not ours to fix: left as it is
            _note(report.problems, str(exc))
            observability.logger.warning("repair skipped %s: %s", uid, exc)
            continue
        if first_sighting or not obs.copies:
            report.checked += 1
            counted += 1
        plan = plan_repair(obs)
        if plan.healthy:
            continue
        seen.add(uid)  # only unhealthy ones are remembered: memory bounded by damage
        report.found += 1
        if len(report.plans) < MAX_REPORTED:
            report.plans.append(plan)
        if not dry_run:
            try:
                apply_plan(store, obs, plan)
            except BackendError:
                raise
            except SpecStoreError as exc:  # this instance only: the others go on
                report.skipped += 1
                _note(report.problems, f"{uid}: not repaired: {exc}")
                continue
            report.repaired += 1
    return counted


def _repair_candidates(store: SpecStore, batch: int) -> Iterator[dict[str, set[str]]]:
    """Per scanned batch: uuid -> stores seen holding a copy (spec keys, then location keys)."""
    for _, keys, _ in spec_key_batches(store, None, batch):
        found: dict[str, set[str]] = {}
        for item in keys:
            found.setdefault(item.instance_uuid, set()).add(item.store)
        yield found
    for backend in store.topology.backends():
        for raw_keys, _ in scan_batches(backend.client, backend.keys.location_pattern(), batch):
            uids: dict[str, set[str]] = {}
            for raw in raw_keys:
                key = reply_text(raw)
                uid = key[key.rfind("{") + 1 : -1]
                try:
                    uids[normalize_uuid(uid)] = set()
                except InvalidInputError:
                    continue
            yield uids


def observe(store: SpecStore, uid: str, extra_stores: Collection[str] = ()) -> Observation:
    """The authority, the cells' own records and the copies of ``uid`` in every store that
    could hold it; CorruptDocumentError when a key of it holds something specstore did not
    write."""
    topology = store.topology
    api = topology.api
    with backend_errors(f"repair {uid}", writes=False):
        now_ms = _server_ms(api)
        authority = _read_record(api, uid, now_ms)
        cell_records: dict[str, Record] = {}
        for backend in topology.backends()[1:]:
            record = _read_record(backend, uid, now_ms)
            if record is not None:
                cell_records[backend.name] = record
    candidates = {API, *extra_stores, *topology.cells}
    if authority is not None and authority.store:
        candidates.add(authority.store)
    copies: dict[str, int] = {}
    backend_of: dict[str, str] = {}
    for name in sorted(candidates):
        try:
            backend = topology.backend_for(validate_store_name(name))
        except SpecStoreError:
            continue
        backend_of[name] = backend.name
        key = backend.keys.spec_key(name, uid)
        with backend_errors(f"repair {uid}", writes=False):
            try:
                rev = backend.client.hget(key, "rev")
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                raise CorruptDocumentError(f"{name} {uid}: {NOT_A_HASH}") from None
        if rev is not None:
            if not rev.isdigit():
                raise CorruptDocumentError(f"{name} {uid}: the spec record has a bad rev")
            copies[name] = int(rev)
    return Observation(uid, authority, copies, cell_records, backend_of, api.name)


def _server_ms(backend: Backend) -> int:
    seconds, micros = backend.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _read_record(backend: Backend, uid: str, now_ms: int) -> Record | None:
    key = backend.keys.location_key(uid)
    try:
        raw = {reply_text(k): reply_text(v) for k, v in backend.client.hgetall(key).items()}
    except redis.ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        raise CorruptDocumentError(f"the location record of {uid} is not a hash") from None
    if not raw:
        return None
    try:
        return Record(
            store=raw["store"] or None,
            rev=int(raw.get("rev", "0")),
            epoch=int(raw.get("epoch", "0")),
            state=raw["state"],
            move_id=raw.get("move_id"),
            move_to=raw.get("move_to"),
            move_from=raw.get("move_from"),
            home_epoch=int(raw["home_epoch"]) if raw.get("home_epoch") else None,
            lease_expired=int(raw.get("lease_until", "0")) < now_ms,
        )
    except (KeyError, ValueError):
        raise CorruptDocumentError(
            f"the location record of {uid} on {backend.name} holds data specstore did not write"
        ) from None


def apply_plan(store: SpecStore, obs: Observation, plan: Plan) -> None:
    """Carry out ``plan``; every write is conditional on what ``obs`` saw."""
    topology = store.topology
    backends = {b.name: b for b in topology.backends()}
    uid = plan.instance_uuid
    ttl = store.moves.buried_seconds
    if plan.settle_move is not None:
        source, cell, move_id, epoch = plan.settle_move
        route = store.route(cell, uid, source)
        run(two_phase.settle_expired(route, two_phase.OpenMove(move_id, epoch), store.moves))
        return
    if plan.finish_destroy is not None:
        cell, epoch, rev = plan.finish_destroy
        run(two_phase.tell_destroyed(store.route(cell, uid), epoch, rev, store.moves))
    authority = obs.authority
    # a cell record names the epoch its copy was installed under: the home's, or a new one
    epoch = authority.installed if authority is not None else 0
    with backend_errors(f"repair {uid}", writes=True):
        if plan.set_authority is not None:
            home, rev = plan.set_authority
            epoch = (authority.epoch if authority is not None else 0) + 1
            reply = lua.run_script(
                topology.api.client,
                lua.LOC_REPAIR,
                [topology.api.keys.location_key(uid)],
                _repair_args(authority, home, rev, epoch, ttl),
            )
            if reply_text(reply[1]) == "changed":
                return  # the authority moved on since it was observed: nothing here is stale
        for name, rev in plan.drop.items():
            backend = topology.backend_for(name)
            lua.run_script(
                backend.client, lua.DROP_COPY, [backend.keys.spec_key(name, uid)], [str(rev)]
            )
        for backend_name, (home, rev) in plan.set_cell_records.items():
            backend = backends[backend_name]
            lua.run_script(
                backend.client,
                lua.LOC_REPAIR,
                [backend.keys.location_key(uid)],
                _repair_args(
                    obs.cell_records.get(backend_name), home, rev, epoch if home else "", ttl
                ),
            )


def _repair_args(
    seen: Record | None, home: str, rev: int, epoch: int | str, ttl: int
) -> list[object]:
    """loc_repair's ARGV: what it must still find (epoch, move id, store, state), and what to
    write."""
    if seen is None:
        return ["", home, rev, epoch, ttl, "", "", ""]
    return [
        str(seen.epoch),
        home,
        rev,
        epoch,
        ttl,
        seen.move_id or "",
        seen.store or "",
        seen.state,
    ]
