"""Rewrite documents of older schema versions, in batches of exactly N specs, resumable."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from specstore import observability
from specstore.bulk.common import (
    NOT_A_HASH,
    Progress,
    SpecKey,
    foreign,
    hgetall_many,
    note,
    spec_key_batches,
)
from specstore.bulk.export_format import (
    record_from_hash,
)
from specstore.connection import backend_errors
from specstore.core import lua
from specstore.core.records import reply_text
from specstore.core.scan import ScanPosition
from specstore.drivers import lua_sync
from specstore.errors import (
    CorruptDocumentError,
    DocumentError,
    InvalidInputError,
)
from specstore.serializers.envelope import format_version
from specstore.store import SpecStore
from specstore.topology import Backend


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
    for item, raw in zip(keys, hgetall_many(backend, keys), strict=True):
        if raw is None:
            summary.failed += 1
            note(summary.problems, f"{item.store} {item.instance_uuid}: {NOT_A_HASH}")
            foreign(item)
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
            note(summary.problems, f"{item.store} {item.instance_uuid}: {exc}")
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
        replies = lua_sync.run_scripts_pipelined(backend.client, calls)
    for item, reply in zip(targets, replies, strict=True):
        if not isinstance(reply, Exception) and reply_text(reply[0]) == "ok":
            summary.rewritten += 1
        else:
            summary.failed += 1
            detail = reply if isinstance(reply, Exception) else reply_text(reply[0])
            note(summary.problems, f"{item.store} {item.instance_uuid}: {detail}")
