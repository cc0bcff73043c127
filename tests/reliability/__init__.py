"""Reliability tests: faults, load and crashes, with bounded counts and time.

Shared here: :func:`audit_keyspace`, the check every test ends with -- every record complete and
decodable, every spec with exactly one home that its location record names.
"""

from __future__ import annotations

import re
from typing import cast

import redis
from redis.cluster import RedisCluster

from specstore.core.keys import Keyspace, normalize_uuid
from specstore.core.records import StoredSpec, parse_record
from specstore.serializers.msgpack_codec import DEFAULT_CODEC

_AUXILIARY = re.compile(r"[a-z_]+:\{[0-9a-f-]{36}\}")
"""Other per-instance keys (``<prefix>:<kind>:{<uuid>}``, e.g. a fence): not audited."""

SPEC_FIELDS = {b"doc", b"rev", b"schema", b"project_id", b"user_id", b"created_at", b"updated_at"}


def audit_keyspace(
    client: redis.Redis | RedisCluster, keys: Keyspace | None = None
) -> dict[str, StoredSpec]:
    """Every spec found (uuid -> stored spec); AssertionError naming every problem.

    Problems: a key of unknown shape (other per-instance keys, e.g. a fence, are let be), a
    spec hash missing a field or not decoding, a spec with more than one hash, a hash without a
    location record naming its store, a location record pointing at nothing.
    """
    keys = keys or Keyspace()
    problems: list[str] = []
    hashes: dict[str, list[StoredSpec]] = {}
    locations: dict[str, str] = {}
    loc_head, loc_tail = keys.location_key("X").split("X")
    for raw_key in client.scan_iter(match=f"{keys.prefix}:*", count=1000):
        key = raw_key.decode()
        if key.startswith(loc_head) and key.endswith(loc_tail):
            uid = normalize_uuid(key[len(loc_head) : -len(loc_tail)])
            value = cast("bytes | None", client.hget(key, "store"))
            if value:  # a destroyed spec's record keeps only its rev
                locations[uid] = value.decode()
            continue
        parsed = keys.parse_spec_key(key)
        if parsed is None:
            if not _AUXILIARY.fullmatch(key[len(keys.prefix) + 1 :]):
                problems.append(f"unexpected key {key}")
            continue
        store, uid = parsed
        raw = cast(dict[bytes, bytes], client.hgetall(key))
        if not raw:
            continue  # deleted between SCAN and HGETALL (no test writes while auditing)
        missing = SPEC_FIELDS - set(raw)
        if missing:
            problems.append(f"partial record {key}: lacks {sorted(m.decode() for m in missing)}")
            continue
        if b"moving_to" in raw:
            problems.append(f"record {key} is marked as moving")
        try:
            hashes.setdefault(uid, []).append(parse_record(raw, store, uid, DEFAULT_CODEC))
        except Exception as exc:  # any failure to decode is the problem we look for
            problems.append(f"record {key} does not decode: {type(exc).__name__}: {exc}")
    found: dict[str, StoredSpec] = {}
    for uid, copies in hashes.items():
        stores = sorted(c.store for c in copies)
        if len(copies) != 1:
            problems.append(f"spec {uid} has {len(copies)} homes: {stores}")
        if locations.get(uid) not in stores:
            problems.append(
                f"spec {uid} lives in {stores}, location record says {locations.get(uid)!r}"
            )
        found[uid] = copies[0]
    for uid, home in locations.items():
        if uid not in hashes:
            problems.append(f"location record of {uid} names {home!r}, which holds nothing")
    assert not problems, "keyspace damaged:\n" + "\n".join(problems[:50])
    return found
