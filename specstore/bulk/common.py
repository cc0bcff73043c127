"""What the bulk operations share: spec keys found by SCAN, batched reads, formats."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Literal

from specstore import observability
from specstore.connection import backend_errors, read_hashes
from specstore.core.keys import API
from specstore.core.scan import ScanPosition
from specstore.drivers.scanning import scan_batches
from specstore.store import SpecStore
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


def hgetall_many(backend: Backend, keys: list[SpecKey]) -> list[dict[bytes, bytes] | None]:
    """The spec hashes of ``keys`` in one pipeline; None for a key of another type."""
    with backend_errors(f"read {len(keys)} specs", writes=False):
        return read_hashes(backend.client, [item.key for item in keys])


def foreign(item: SpecKey) -> None:
    """A key in specstore's keyspace holding something specstore did not write: skipped."""
    observability.logger.warning(
        "skipped %s: %s (store %s, instance %s)",
        item.key,
        NOT_A_HASH,
        item.store,
        item.instance_uuid,
    )


def note(problems: list[str], text: str) -> None:
    if len(problems) < MAX_REPORTED:
        problems.append(text)
