"""Bad input: mutated and hostile documents, foreign keys under the prefix, key injection.

1. 100,000 documents built from valid ones by a seeded random (bit flips, byte sets,
   truncations, insertions, deletions, splices, huge declared lengths, hostile nesting, random
   msgpack bodies and envelopes behind the format marker, random bytes) go through
   ``DocumentCodec.decode``. Each one must give a valid spec or one of the three typed document
   errors; a valid one must be written back canonically (or refused with a typed error).
2. A sample of them is stored in a real redis-server and read by ``specstore export`` and
   ``specstore inspect``: no traceback, corrupt records named, counted and skipped, exit 1.
3. Keys that something else wrote under the prefix (a STRING or LIST at a spec key, a HASH
   without ``doc``, a location record naming a bogus store, keys of other shapes): the store's
   operations raise typed errors, bulk operations skip and count them, nothing foreign is
   overwritten.
4. UUIDs and cell names that would inject key patterns are refused before Redis is touched.
5. Documents over ``DecodeLimits`` are refused on encode and on decode.
"""

from __future__ import annotations

import copy
import io
import json
import random
import struct
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest
import redis

from specstore import bulk
from specstore.context import RequestContext
from specstore.core.keys import API, Keyspace, normalize_uuid, validate_cell_name
from specstore.errors import (
    BackendError,
    CorruptDocumentError,
    DocumentTooLargeError,
    IncompatibleSchemaError,
    InvalidCellNameError,
    InvalidInputError,
    InvalidUUIDError,
    SpecExistsError,
    SpecNotFoundError,
    SpecStoreError,
    WrongStoreError,
)
from specstore.model import Flavor, RequestSpec
from specstore.serializers.envelope import MAGIC, DecodeLimits, decode_envelope, encode_envelope
from specstore.serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec
from specstore.store import SpecStore
from tests.factories import typical_spec
from tests.support.cli import run_cli
from tests.support.keyspace import set_location
from tests.support.redis_server import free_port

pytestmark = pytest.mark.reliability

SEED = 20_240_607
TOTAL = 100_000
GOLDEN = Path(__file__).parent.parent / "golden"
BASE_UUID = "5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d"
CELL = "cell1"


# -- the corpus ---------------------------------------------------------------------------------


def minimal_spec(uid: str | uuid.UUID) -> RequestSpec:
    return RequestSpec(
        instance_uuid=uuid.UUID(str(uid)),
        flavor=Flavor(flavorid="m1.tiny-id", name="m1.tiny", memory_mb=512, vcpus=1),
    )


def base_documents() -> list[bytes]:
    """Valid documents to mutate: typical, minimal, golden files, a newer-minor document."""
    codec = DEFAULT_CODEC
    docs = [codec.encode(typical_spec(BASE_UUID)), codec.encode(minimal_spec(BASE_UUID))]
    docs += [path.read_bytes() for path in sorted(GOLDEN.glob("*.bin"))]
    payload = decode_envelope(docs[0]).payload
    payload["added_in_1_3"] = {"nested": [1, 2, {"x": "y"}], "flag": True}
    docs.append(encode_envelope("RequestSpec", (1, 3), payload))
    for doc in docs:
        codec.decode(doc)  # every base is valid: mutations start from a known-good document
    return docs


INTERESTING_BYTES = bytes(
    [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6,
     0xC7, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCF, 0xD0, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9,
     0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0xE0, 0xFF]
)  # fmt: skip
"""msgpack type bytes: fix/str/bin/array/map/ext headers, the never-used 0xC1, nil, bools."""


def huge_header(rng: random.Random) -> bytes:
    """A str/bin/array/map/ext header declaring far more than follows (or than allowed)."""
    length = rng.choice([0xFFFF, 0x10000, 0x40001, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)])
    kind = rng.randrange(8)
    if kind == 0:
        return b"\xdb" + struct.pack(">I", length)  # str 32
    if kind == 1:
        return b"\xc6" + struct.pack(">I", length)  # bin 32
    if kind == 2:
        return b"\xdd" + struct.pack(">I", length)  # array 32
    if kind == 3:
        return b"\xdf" + struct.pack(">I", length)  # map 32
    if kind == 4:
        return b"\xc9" + struct.pack(">Ib", length, rng.randrange(-128, 128))  # ext 32
    if kind == 5:
        return b"\xda" + struct.pack(">H", length & 0xFFFF)  # str 16
    if kind == 6:
        return b"\xdc" + struct.pack(">H", length & 0xFFFF)  # array 16
    return b"\xde" + struct.pack(">H", length & 0xFFFF)  # map 16


def nested(rng: random.Random, depth: int) -> bytes:
    """Raw msgpack nesting ``depth`` containers deep (built by hand: packb would refuse)."""
    kind = rng.randrange(3)
    if kind == 0:
        return b"\x91" * depth + b"\x01"
    if kind == 1:
        return b"\x81\xa1k" * depth + b"\x01"
    return b"\x91\x81\xa1k" * (depth // 2) + b"\xc0"


NEST_DEPTHS = (2, 15, 17, 64, 200, 511, 512, 1000, 1023, 1024, 1025, 5000, 100_000)


def random_text(rng: random.Random) -> str:
    alphabet = "aZ09 :{}*?[]\n\t\x00\x1b\u202e\u0430\uff11\U0001f600"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))


def random_object(rng: random.Random, depth: int = 0) -> Any:
    """Any msgpack value specstore's unpacker can produce, and some it refuses (ext types)."""
    kind = rng.randrange(14 if depth < 4 else 10)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-300, 300)
    if kind == 3:
        return rng.choice([-(2**63), 2**63 - 1, 2**64 - 1, 2**31, -(2**31) - 1, 0])
    if kind == 4:
        return rng.choice([0.0, -0.0, 1.5, 1e308, float("inf"), float("-inf"), float("nan")])
    if kind == 5:
        return random_text(rng)
    if kind == 6:
        return rng.randbytes(rng.randrange(20))
    if kind == 7:
        return uuid.UUID(int=rng.getrandbits(128))
    if kind == 8:
        code = rng.choice([1, 1, 0, 2, 127])  # negative codes: raw_ext()
        return msgpack.ExtType(code, rng.randbytes(rng.choice([0, 4, 8, 12, 15, 16, 17])))
    if kind == 9:
        seconds = rng.choice([0, 1, -1, 2**34, 253402300800, -62135596801])
        return msgpack.Timestamp(seconds, rng.choice([0, 999_999_999]))
    if kind in (10, 11):
        return [random_object(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys: list[Any] = [random_text(rng), rng.randrange(10), None, b"k", 1.5]
    return {rng.choice(keys): random_object(rng, depth + 1) for _ in range(rng.randrange(5))}


def pack(value: Any) -> bytes:
    def default(obj: object) -> object:
        if isinstance(obj, uuid.UUID):
            return msgpack.ExtType(1, obj.bytes)
        raise TypeError(type(obj).__name__)

    packed: bytes = msgpack.packb(value, default=default, use_bin_type=True, datetime=True)
    return packed


def mutate_payload(rng: random.Random, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with one leaf replaced, one key dropped or added (type confusion)."""
    result = copy.deepcopy(payload)
    slots: list[tuple[dict[Any, Any] | list[Any], Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in node:
                slots.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for index, item in enumerate(node):
                slots.append((node, index))
                walk(item)

    walk(result)
    container, key = rng.choice(slots)
    action = rng.randrange(4)
    if action == 0 and isinstance(container, dict):
        del container[key]
    elif action == 1 and isinstance(container, dict):
        container[random_text(rng) or "x"] = random_object(rng)
    else:
        container[key] = random_object(rng)
    return result


def envelope_bytes(rng: random.Random, payload: Any) -> bytes:
    schema = rng.choice(["RequestSpec"] * 8 + ["", "requestspec", "RequestSpec\x00", 7, None])
    major = rng.choice([1] * 8 + [0, 2, 65535, 65536, -1, "1", 1.5, True])
    minor = rng.choice([0] * 6 + [1, 7, 65535, 70000, -1, None])
    body: list[Any] = [schema, major, minor, payload]
    shape = rng.randrange(10)
    if shape == 0:
        body = body[:3]
    elif shape == 1:
        body = [*body, None]
    return MAGIC + pack(body)


@dataclass
class Corpus:
    rng: random.Random
    bases: list[bytes]
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.payloads = [decode_envelope(doc).payload for doc in self.bases]

    def base(self) -> bytes:
        return self.rng.choice(self.bases)

    # each mutator gives one document

    def bit_flips(self) -> bytes:
        data = bytearray(self.base())
        for _ in range(self.rng.randint(1, 8)):
            index = self.rng.randrange(len(data))
            data[index] ^= 1 << self.rng.randrange(8)
        return bytes(data)

    def byte_sets(self) -> bytes:
        data = bytearray(self.base())
        for _ in range(self.rng.randint(1, 4)):
            data[self.rng.randrange(len(data))] = self.rng.choice(INTERESTING_BYTES)
        return bytes(data)

    def truncation(self) -> bytes:
        data = self.base()
        return data[: self.rng.randrange(len(data))]

    def insertion(self) -> bytes:
        data = self.base()
        at = self.rng.randrange(len(data) + 1)
        return data[:at] + self.rng.randbytes(self.rng.randint(1, 16)) + data[at:]

    def deletion(self) -> bytes:
        data = self.base()
        at = self.rng.randrange(len(data))
        return data[:at] + data[at + self.rng.randint(1, 64) :]

    def splice(self) -> bytes:
        first, second = self.base(), self.base()
        return first[: self.rng.randrange(len(first))] + second[self.rng.randrange(len(second)) :]

    def huge_length(self) -> bytes:
        if self.rng.random() < 0.5:
            data = self.base()
            at = self.rng.randrange(len(MAGIC), len(data))
            return data[:at] + huge_header(self.rng) + data[at : at + self.rng.randrange(64)]
        head = MAGIC + b"\x94" + pack("RequestSpec") + b"\x01\x00"
        return head + huge_header(self.rng) + self.rng.randbytes(self.rng.randrange(32))

    def hostile_nesting(self) -> bytes:
        depth = self.rng.choice(NEST_DEPTHS)
        deep = nested(self.rng, depth)
        place = self.rng.randrange(5)
        if place == 0:
            return MAGIC + deep
        payload = copy.deepcopy(self.payloads[0])
        marker = "\u0000NEST\u0000"
        version = (1, 0)
        if place == 1:
            payload["image"]["properties"]["deep"] = marker
        elif place == 2:
            payload["scheduler_hints"]["deep"] = marker
        elif place == 3:
            payload["unknown_in_1_4"] = marker  # a newer minor keeps unknown fields as read
            version = (1, 4)
        else:
            return MAGIC + pack(["RequestSpec", 1, 0, marker]).replace(pack(marker), deep)
        packed = pack(["RequestSpec", version[0], version[1], payload])
        return MAGIC + packed.replace(pack(marker), deep, 1)

    def random_body(self) -> bytes:
        return MAGIC + pack(random_object(self.rng))

    def random_envelope(self) -> bytes:
        payload: Any = mutate_payload(self.rng, self.rng.choice(self.payloads))
        if self.rng.random() < 0.1:
            payload = random_object(self.rng)
        return envelope_bytes(self.rng, payload)

    def random_bytes(self) -> bytes:
        head = MAGIC if self.rng.random() < 0.7 else b""
        return head + self.rng.randbytes(self.rng.randrange(64))

    def oversize(self) -> bytes:
        """A document padded to around ``max_document_bytes`` (one byte under to two over)."""
        limit = DEFAULT_CODEC.limits.max_document_bytes
        data = self.base()
        filler = self.rng.choice([b"\xc0", b"\x00", b"\xa0"])
        return data + filler * (limit - len(data) + self.rng.randint(-1, 2))

    def mutators(self) -> dict[str, Callable[[], bytes]]:
        return {
            "bit_flips": self.bit_flips,
            "byte_sets": self.byte_sets,
            "truncation": self.truncation,
            "insertion": self.insertion,
            "deletion": self.deletion,
            "splice": self.splice,
            "huge_length": self.huge_length,
            "hostile_nesting": self.hostile_nesting,
            "random_body": self.random_body,
            "random_envelope": self.random_envelope,
            "random_bytes": self.random_bytes,
        }

    def documents(self, count: int) -> Iterator[tuple[str, bytes]]:
        """``count`` documents, the mutators taking turns (one in 100 is an oversize one)."""
        names = list(self.mutators().items())
        for index in range(count):
            if index % 100 == 99:
                yield "oversize", self.oversize()
            else:
                name, make = names[index % len(names)]
                yield name, make()


# -- decoding -----------------------------------------------------------------------------------

TYPED = (DocumentTooLargeError, CorruptDocumentError, IncompatibleSchemaError)


def outcome(codec: DocumentCodec, data: bytes) -> tuple[str, RequestSpec | None]:
    """("valid", spec) or (the typed error's name, None); anything else propagates."""
    try:
        return "valid", codec.decode(data)
    except TYPED as exc:
        return type(exc).__name__, None


@dataclass
class FuzzReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    by_mutator: dict[str, Counter[str]] = field(default_factory=dict)
    escapes: list[str] = field(default_factory=list)
    rewritten: int = 0
    not_rewritable: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[bytes]] = field(default_factory=dict)

    def note(self, mutator: str, result: str, data: bytes) -> None:
        self.outcomes[result] += 1
        self.by_mutator.setdefault(mutator, Counter())[result] += 1
        kept = self.samples.setdefault(f"{mutator}/{result}", [])
        if len(kept) < 3:
            kept.append(data)


def fuzz(count: int, seed: int = SEED, codec: DocumentCodec = DEFAULT_CODEC) -> FuzzReport:
    """Decode ``count`` generated documents; outcomes, and every untyped failure seen."""
    report = FuzzReport()
    corpus = Corpus(random.Random(seed), base_documents())
    for mutator, data in corpus.documents(count):
        try:
            result, spec = outcome(codec, data)
        except Exception as exc:  # the finding: anything but the typed errors
            report.escapes.append(f"{mutator}: {type(exc).__name__}: {exc} <- {data[:80]!r}")
            continue
        report.note(mutator, result, data)
        if spec is None:
            continue
        try:
            again = codec.encode(spec)
        except CorruptDocumentError as exc:  # typed refusal to write it back: counted
            report.not_rewritable[type(exc).__name__] += 1
            continue
        except Exception as exc:
            report.escapes.append(f"{mutator} re-encode: {type(exc).__name__}: {exc}")
            continue
        try:
            canonical = codec.encode(codec.decode(again)) == again
        except Exception as exc:
            report.escapes.append(f"{mutator} re-decode: {type(exc).__name__}: {exc}")
            continue
        if not canonical:
            report.escapes.append(f"{mutator}: re-encoded document is not canonical")
        report.rewritten += 1
    return report


def test_100k_mutated_documents_give_a_spec_or_a_typed_error() -> None:
    started = time.perf_counter()
    report = fuzz(TOTAL)
    elapsed = time.perf_counter() - started
    print(
        f"\n{TOTAL} documents in {elapsed:.1f}s: {dict(report.outcomes)}; valid ones re-encoded "
        f"{report.rewritten}, refused on re-encode {dict(report.not_rewritable)}"
    )
    for mutator, counts in sorted(report.by_mutator.items()):
        print(f"  {mutator:16} {dict(counts)}")
    assert not report.escapes, f"{len(report.escapes)} untyped failures:\n" + "\n".join(
        report.escapes[:20]
    )
    assert sum(report.outcomes.values()) == TOTAL
    # every mutator reaches past the marker check, and the corpus hits every outcome
    assert set(report.outcomes) == {
        "valid",
        "CorruptDocumentError",
        "IncompatibleSchemaError",
        "DocumentTooLargeError",
    }
    assert all(counts["CorruptDocumentError"] for counts in report.by_mutator.values())
    assert report.outcomes["valid"] == report.rewritten + sum(report.not_rewritable.values())


def test_the_fuzzer_sees_an_untyped_failure() -> None:
    """The harness must be able to fail: a codec that leaks raw errors is caught."""

    class LeakyCodec(DocumentCodec):
        def decode(self, data: bytes) -> RequestSpec:
            if data[-1:] == b"\x00":
                raise KeyError("leaked")
            spec = super().decode(data)
            if spec.availability_zone is None:
                raise RecursionError("leaked while validating")
            return spec

    report = fuzz(3000, codec=LeakyCodec())
    leaked = Counter(line.split(": ")[1] for line in report.escapes)
    assert leaked["KeyError"] > 0 and leaked["RecursionError"] > 0, leaked


def test_hostile_nesting_and_huge_lengths_are_typed_at_every_depth() -> None:
    payload = decode_envelope(DEFAULT_CODEC.encode(typical_spec(BASE_UUID))).payload
    marker = "\u0000NEST\u0000"
    payload["image"]["properties"]["deep"] = marker
    template = MAGIC + pack(["RequestSpec", 1, 0, payload])
    for depth in NEST_DEPTHS:
        for kind in range(3):
            data = template.replace(pack(marker), nested(random.Random(kind), depth))
            result, spec = outcome(DEFAULT_CODEC, data)
            # image properties are free-form but bounded at 16 levels (the map itself is one)
            containers = depth if kind < 2 else depth // 2 * 2
            if containers <= 15:
                assert spec is not None, (depth, kind, result)
                assert spec.image is not None and "deep" in spec.image.properties
            else:
                assert result == "CorruptDocumentError", (depth, kind, result)
    rng = random.Random(SEED)
    for _ in range(2000):
        data = MAGIC + huge_header(rng) + rng.randbytes(rng.randrange(16))
        assert outcome(DEFAULT_CODEC, data)[0] == "CorruptDocumentError"


# -- a sample through a real redis-server and the CLI ----------------------------------------


def write_record(
    client: redis.Redis, store: str, uid: str, doc: bytes, rev: bytes = b"1"
) -> None:
    """A spec hash as specstore writes it (whatever ``doc`` holds) and its location record."""
    keys = Keyspace()
    record = {
        "doc": doc,
        "rev": rev,
        "schema": b"RequestSpec/1.0",
        "project_id": b"p",
        "user_id": b"u",
        "created_at": b"2024-01-01T00:00:00+00:00",
        "updated_at": b"2024-01-01T00:00:00+00:00",
    }
    client.hset(keys.spec_key(store, uid), mapping=cast(Any, record))
    set_location(client, keys, uid, store)


@dataclass
class Planted:
    corrupt: dict[str, str] = field(default_factory=dict)
    """uuid -> how its record is broken."""
    valid: set[str] = field(default_factory=set)


def plant_sample(client: redis.Redis, report: FuzzReport) -> Planted:
    """Up to 3 documents of every (mutator, outcome) pair, records with a bad rev, good specs."""
    planted = Planted()
    for name, docs in sorted(report.samples.items()):
        for doc in docs:
            if name.endswith("/valid"):
                uid = str(DEFAULT_CODEC.decode(doc).instance_uuid)
                if uid in planted.valid:
                    continue
                planted.valid.add(uid)
            else:
                uid = str(uuid.uuid4())
                planted.corrupt[uid] = name
            write_record(client, API, uid, doc)
    for rev in (b"x", b"-1", b""):
        uid = str(uuid.uuid4())
        planted.corrupt[uid] = f"rev {rev!r}"
        write_record(client, API, uid, DEFAULT_CODEC.encode(minimal_spec(uid)), rev)
    for _ in range(5):
        uid = str(uuid.uuid4())
        planted.valid.add(uid)
        write_record(client, CELL, uid, DEFAULT_CODEC.encode(typical_spec(uid)))
    return planted


@pytest.mark.redis
def test_mutated_documents_in_redis_are_skipped_by_export_and_inspect(
    url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(url)
    planted = plant_sample(client, fuzz(6000, seed=SEED + 1))
    client.close()
    corrupt, valid = planted.corrupt, planted.valid
    assert len(corrupt) >= 30 and len(valid) >= 6

    for fmt in ("jsonl", "msgpack"):
        result = run_cli("export", "--format", fmt, "-o", str(tmp_path / f"out.{fmt}"), url=url)
        assert result.returncode == 1, result.stderr
        skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped api ")]
        named = {line.split()[2].rstrip(":") for line in skipped}
        assert named == set(corrupt), (fmt, {u: corrupt[u] for u in set(corrupt) - named})
        assert f"exported {len(valid)} specs" in result.stderr, fmt
        assert f"skipped {len(corrupt)}" in result.stderr, fmt
        assert "\x1b" not in result.stderr  # hostile text never reaches the terminal raw
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["instance_uuid"] for line in lines) == sorted(valid)
    with (tmp_path / "out.msgpack").open("rb") as handle:
        records = list(msgpack.Unpacker(handle, raw=False))
    assert sorted(r["instance_uuid"] for r in records) == sorted(valid)

    # inspect: one record of each kind of failure, and two valid ones
    by_kind = {kind.split("/")[-1]: uid for uid, kind in sorted(corrupt.items())}
    for uid in by_kind.values():
        result = run_cli("inspect", uid, url=url)
        assert result.returncode == 1, (corrupt[uid], result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("specstore: error: "), lines
        assert "\x1b" not in lines[0]
        assert result.stdout == ""
    for uid in sorted(valid)[:2]:
        result = run_cli("inspect", uid, url=url)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["instance_uuid"] == uid
    stats = run_cli("stats", "--json", url=url)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts[API]["count"] + counts[CELL]["count"] == len(corrupt) + len(valid)


@pytest.mark.redis
@pytest.mark.parametrize("fmt", ["jsonl", "msgpack"])
def test_export_skips_a_document_of_another_instance(url: str, tmp_path: Path, fmt: str) -> None:
    """A record whose document names another instance is corrupt in every export format
    (import refuses it: exporting it would make a backup that cannot be restored)."""
    client = redis.Redis.from_url(url)
    uid, other = str(uuid.uuid4()), str(uuid.uuid4())
    write_record(client, API, uid, DEFAULT_CODEC.encode(minimal_spec(other)))
    client.close()
    out = tmp_path / f"out.{fmt}"
    result = run_cli("export", "--format", fmt, "-o", str(out), url=url)
    assert result.returncode == 1, result.stderr
    assert "exported 0 specs" in result.stderr and "skipped 1" in result.stderr
    assert uid in result.stderr
    assert out.read_bytes() == b""


# -- keys written by something else under the prefix ------------------------------------------


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def any_store(request: pytest.FixtureRequest) -> SpecStore:
    names = {"fakeredis": "memory_store", "redis": "real_store"}
    result: SpecStore = request.getfixturevalue(names[request.param])
    return result


def snapshot(client: Any, key: str) -> tuple[bytes, Any]:
    """The key's type and content, to prove it was not touched."""
    kind: bytes = client.type(key)
    readers: dict[bytes, Callable[[str], Any]] = {
        b"string": client.get,
        b"list": lambda k: client.lrange(k, 0, -1),
        b"hash": client.hgetall,
        b"set": client.smembers,
        b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        b"none": lambda k: None,
    }
    return kind, readers[kind](key)


def assert_typed(call: Callable[[], object], *expected: type[SpecStoreError]) -> SpecStoreError:
    """``call`` raises a specstore error (one of ``expected``, if given), never a redis one."""
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is checked below
        call()
    exc = info.value
    assert isinstance(exc, SpecStoreError), f"untyped {type(exc).__name__}: {exc}"
    assert not isinstance(exc, redis.RedisError)
    if expected:
        assert isinstance(exc, expected), f"{type(exc).__name__}: {exc}"
    return exc


FOREIGN_KINDS = ("string", "list", "set")


def plant_at(client: Any, key: str, kind: str) -> None:
    if kind == "string":
        client.set(key, b"not ours \x00\xff")
    elif kind == "list":
        client.rpush(key, b"a", b"b")
    else:
        client.sadd(key, b"member")


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_wrong_type_at_a_spec_key_gives_typed_errors_and_is_kept(
    any_store: SpecStore, kind: str
) -> None:
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    uid = str(uuid.uuid4())
    key = keys.spec_key(API, uid)
    plant_at(client, key, kind)
    set_location(client, keys, uid, API)
    before = snapshot(client, key)
    assert_typed(lambda: store.get(ctx, uid))
    assert_typed(lambda: store.save(ctx, minimal_spec(uid)))
    assert_typed(lambda: store.save(ctx, minimal_spec(uid), rev=1))
    assert_typed(lambda: store.promote(ctx, uid, CELL))
    assert_typed(lambda: store.destroy(ctx, uid))
    assert_typed(lambda: store.create(ctx, minimal_spec(uid)), SpecExistsError)
    assert snapshot(client, key) == before
    assert not client.exists(keys.spec_key(CELL, uid))
    # without a location record the create still refuses to overwrite it
    client.delete(keys.location_key(uid))
    assert_typed(lambda: store.create(ctx, minimal_spec(uid)), SpecExistsError)
    assert snapshot(client, key) == before


def test_hash_without_doc_is_corrupt_and_kept(any_store: SpecStore) -> None:
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    uid = str(uuid.uuid4())
    key = keys.spec_key(API, uid)
    client.hset(key, mapping={"owner": "someone else", "payload": b"\x00\x01"})
    set_location(client, keys, uid, API)
    before = snapshot(client, key)
    assert_typed(lambda: store.get(ctx, uid), CorruptDocumentError)
    assert_typed(lambda: store.save(ctx, minimal_spec(uid)), SpecNotFoundError)
    assert_typed(lambda: store.promote(ctx, uid, CELL), CorruptDocumentError)
    assert_typed(lambda: store.destroy(ctx, uid), CorruptDocumentError)
    assert_typed(lambda: store.create(ctx, minimal_spec(uid)), SpecExistsError)
    batch = store.get_many(ctx, [uid])
    assert list(batch.corrupt) == [uid] and not batch.found
    assert snapshot(client, key) == before


@pytest.mark.parametrize("bogus", ["cell*{x}", "../../etc", "", "API", "cell1\n", "c\u0435ll1"])
def test_location_record_naming_a_bogus_store(any_store: SpecStore, bogus: str) -> None:
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    spec = minimal_spec(uuid.uuid4())
    uid = str(spec.instance_uuid)
    store.create(ctx, spec)
    set_location(client, keys, uid, bogus)
    before = snapshot(client, keys.spec_key(API, uid))
    assert store.locate(uid) == (bogus or None)  # an empty store names no home
    assert_typed(lambda: store.save(ctx, spec), WrongStoreError, SpecNotFoundError)
    assert_typed(lambda: store.promote(ctx, uid, CELL), WrongStoreError, SpecNotFoundError)
    assert_typed(lambda: store.destroy(ctx, uid), WrongStoreError, SpecNotFoundError)
    assert_typed(lambda: store.create(ctx, spec), SpecExistsError)
    assert_typed(lambda: store.get(ctx.target_cell(CELL), uid), SpecNotFoundError)
    assert snapshot(client, keys.spec_key(API, uid)) == before
    report = bulk.repair(store)
    assert report.found == 1
    assert store.locate(uid) == API
    assert store.get(ctx, uid).rev == 1


def test_location_record_of_the_wrong_type(any_store: SpecStore) -> None:
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    uid = str(uuid.uuid4())
    client.hset(keys.location_key(uid), "home", "api")
    before = snapshot(client, keys.location_key(uid))
    assert_typed(lambda: store.locate(uid))
    assert_typed(lambda: store.create(ctx, minimal_spec(uid)))
    assert_typed(lambda: store.save(ctx, minimal_spec(uid)))
    assert_typed(lambda: store.destroy(ctx, uid))
    assert_typed(lambda: store.promote(ctx, uid, CELL))
    assert snapshot(client, keys.location_key(uid)) == before
    assert not client.exists(keys.spec_key(API, uid))


def test_promote_never_overwrites_foreign_data_at_the_cell_key(any_store: SpecStore) -> None:
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    spec = minimal_spec(uuid.uuid4())
    uid = str(spec.instance_uuid)
    store.create(ctx, spec)
    cell_key = keys.spec_key(CELL, uid)
    client.set(cell_key, b"foreign data at the cell key")
    before = snapshot(client, cell_key)
    assert_typed(lambda: store.promote(ctx, uid, CELL))
    assert snapshot(client, cell_key) == before, "promote overwrote foreign data"
    assert store.locate(uid) == API and store.get(ctx, uid).rev == 1


OTHER_SHAPES = (
    "specstore",
    "specstore:",
    "specstore:api:spec:{not-a-uuid}",
    "specstore:api:spec:{}",
    "specstore:api:spec:{*}",
    "specstore:cell:bad*cell:spec:{5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d}",
    "specstore:cell:api:spec:{5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d}",
    "specstore:cell::spec:{5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d}",
    "specstore:api:spec:{5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d}:extra",
    "specstore:other:spec:{5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d}",
    "specstore:loc:{not-a-uuid}",
    "specstore:gone:{whatever}",
    "specstorex:api:spec:{5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d}",
)


def test_bulk_operations_skip_foreign_keys_and_keep_them(any_store: SpecStore) -> None:
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    specs = [minimal_spec(uuid.uuid4()) for _ in range(6)]
    store.create_many(ctx, specs)
    store.promote(ctx, specs[0].instance_uuid, CELL)
    good_doc = client.hgetall(keys.spec_key(API, str(specs[1].instance_uuid)))
    foreign: dict[str, tuple[bytes, Any]] = {}
    for key in OTHER_SHAPES:  # other shapes, some holding a whole valid spec hash
        client.hset(key, mapping=cast(Any, good_doc))
    wrong_type = {str(uuid.uuid4()): kind for kind in FOREIGN_KINDS}
    for uid, kind in wrong_type.items():  # wrong types at keys of our exact shape
        plant_at(client, keys.spec_key(API, uid), kind)
        set_location(client, keys, uid, API)
    for key in [*OTHER_SHAPES, *(keys.spec_key(API, uid) for uid in wrong_type)]:
        foreign[key] = snapshot(client, key)

    out = io.BytesIO()
    summary = bulk.export_specs(store, out)
    exported = sorted(json.loads(line)["instance_uuid"] for line in out.getvalue().splitlines())
    assert exported == sorted(str(s.instance_uuid) for s in specs)
    assert summary.skipped == len(wrong_type)
    assert all(any(uid in p for p in summary.problems) for uid in wrong_type)

    stats = bulk.collect_stats(store)
    assert stats[CELL].schemas == {"RequestSpec/1.0": 1}
    assert stats[API].schemas["RequestSpec/1.0"] == len(specs) - 1

    batch = store.get_many(ctx, [*(s.instance_uuid for s in specs[1:]), *wrong_type])
    assert len(batch.found) == len(specs) - 1 and sorted(batch.corrupt) == sorted(wrong_type)

    bulk.repair(store)
    bulk.migrate_documents(store)
    for key, before in foreign.items():
        assert snapshot(client, key) == before, f"foreign key {key} was changed"
    for spec in specs:
        assert store.locate(spec.instance_uuid) in (API, CELL)


def test_keys_with_a_non_canonical_uuid_are_not_ours(any_store: SpecStore) -> None:
    """specstore writes keys with the canonical (lower-case) uuid only; a copy that another
    writer put under the upper-case form is not a second spec of that instance."""
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    spec = minimal_spec(uuid.uuid4())
    uid = str(spec.instance_uuid)
    store.create(ctx, spec)
    copy_key = keys.spec_key(API, uid.upper())
    client.hset(copy_key, mapping=cast(Any, client.hgetall(keys.spec_key(API, uid))))
    set_location(client, keys, uid.upper(), API)
    before = snapshot(client, copy_key)
    out = io.BytesIO()
    summary = bulk.export_specs(store, out)
    assert [json.loads(line)["instance_uuid"] for line in out.getvalue().splitlines()] == [uid]
    assert summary.exported == 1
    assert bulk.collect_stats(store)[API].count == 1
    assert bulk.repair(store).found == 0
    assert snapshot(client, copy_key) == before


@pytest.mark.redis
def test_cli_export_keeps_going_past_a_foreign_key(url: str) -> None:
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    specs = [minimal_spec(uuid.uuid4()) for _ in range(4)]
    store.create_many(ctx, specs)
    intruder = str(uuid.uuid4())
    store.client.set(store.keys.spec_key(API, intruder), b"a foreign string")
    store.close()
    result = run_cli("export", url=url)
    assert result.returncode == 1, result.stderr
    assert "exported 4 specs" in result.stderr and "skipped 1" in result.stderr
    assert intruder in result.stderr
    stats = run_cli("stats", "--json", url=url)
    assert stats.returncode == 0, stats.stderr
    repair = run_cli("repair", "--dry-run", url=url)
    assert repair.returncode in (0, 1), repair.stderr


# -- injection through uuids and cell names ---------------------------------------------------

VALID = "5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d"
BAD_UUIDS: list[Any] = [
    "*",
    "",
    "5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6*",
    "5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6?",
    "5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b[5-6]",
    "{5d1c3a2b-9e8f-4a7b-8c6d-1e2f3a4b5c}",
    f"{{{VALID}}}",
    f"{VALID}}}",
    f"{VALID}\n",
    f"\n{VALID}",
    f"{VALID}:x",
    f"urn:uuid:{VALID}",
    "5d1c3a2b9e8f4a7b8c6d1e2f3a4b5c6d    ",
    "    5d1c3a2b9e8f4a7b8c6d1e2f3a4b5c6d",
    VALID.replace("-", "\u2010"),  # unicode hyphen
    VALID.replace("-", "\u2212"),  # minus sign
    VALID.replace("5", "\u0665"),  # arabic-indic five
    VALID.replace("1", "\uff11"),  # fullwidth one
    VALID.replace("a", "\u0430"),  # cyrillic a
    VALID.replace("c", "\u217d"),  # roman numeral small c
    VALID[:-1] + "\x00",
    VALID + "\x00",
    None,
    12345,
    VALID.encode(),
]
BAD_CELLS: list[Any] = [
    "*",
    "cell*",
    "cell?",
    "cell[1]",
    "cell{1}",
    "{cell1}",
    "cell}",
    "cell:1",
    "cell1:spec:{x}",
    "cell1\n",
    "cell1\r",
    "\ncell1",
    "cell 1",
    "cell1\x00",
    "",
    "api",
    "-cell",
    ".",
    "c" * 64,
    "c\u0435ll1",  # cyrillic e
    "cell\uff11",  # fullwidth one
    "cell\u0661",  # arabic-indic one
    "cel\u217c1",  # roman numeral small l
    "\u212aell",  # kelvin sign
    None,
    1,
]


@pytest.fixture
def unreachable() -> Iterator[SpecStore]:
    """A store whose server does not exist: touching Redis at all raises BackendError."""
    store = SpecStore.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    yield store
    store.close()


@pytest.mark.parametrize("bad", BAD_UUIDS, ids=repr)
def test_injecting_uuids_are_refused_before_redis(unreachable: SpecStore, bad: Any) -> None:
    store = unreachable
    ctx = RequestContext(store=store)
    calls: list[Callable[[], object]] = [
        lambda: normalize_uuid(bad),
        lambda: store.get(ctx, bad),
        lambda: store.get_many(ctx, [VALID, bad]),
        lambda: store.locate(bad),
        lambda: store.destroy(ctx, bad),
        lambda: store.destroy_bulk(ctx, [VALID, bad]),
        lambda: store.promote(ctx, bad, CELL),
        lambda: RequestSpec.get_by_instance_uuid(ctx, bad),
    ]
    for call in calls:
        assert_typed(call, InvalidUUIDError)
    # a spec holds a real UUID (pydantic refuses the string or parses it), so the keys that
    # writes build from it are always canonical
    try:
        spec = RequestSpec(instance_uuid=bad, flavor=minimal_spec(VALID).flavor)
    except ValueError:
        return
    assert str(spec.instance_uuid) == normalize_uuid(spec.instance_uuid) == VALID


def test_uppercase_uuids_are_normalized_not_refused(unreachable: SpecStore) -> None:
    assert normalize_uuid(VALID.upper()) == VALID
    with pytest.raises(BackendError):  # it is a valid uuid: the store does go to Redis
        unreachable.locate(VALID.upper())


@pytest.mark.parametrize("bad", BAD_CELLS, ids=repr)
def test_injecting_cell_names_are_refused_before_redis(unreachable: SpecStore, bad: Any) -> None:
    store = unreachable
    ctx = RequestContext(store=store)
    calls: list[Callable[[], object]] = [
        lambda: validate_cell_name(bad),
        lambda: ctx.target_cell(bad),
        lambda: store.promote(ctx, VALID, bad),
    ]
    if bad is not None:  # cell=None is the untargeted (api) context
        calls.append(lambda: RequestContext(cell=bad, store=store))
    for call in calls:
        assert_typed(call, InvalidCellNameError)
    if isinstance(bad, str) and (set(bad) & set("*?[]{} \r\n\x00") or not bad.isascii()):
        with pytest.raises(InvalidInputError):
            Keyspace(bad)  # a prefix allows ':' (it is a key segment) but no pattern chars


def test_injecting_input_on_the_command_line_exits_2_without_touching_redis() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for bad in ("*", f"{VALID}*", f"{{{VALID}}}*", VALID.replace("1", "\uff11")):
        result = run_cli("inspect", bad, url=dead)
        assert result.returncode == 2
        assert "not a valid UUID" in result.stderr and "Redis at" not in result.stderr
    # braces are a spelling uuid.UUID accepts: normalised before any key is built
    braced = run_cli("inspect", f"{{{VALID}}}", url=dead)
    assert braced.returncode == 2 and "cannot connect to Redis at" in braced.stderr
    bad_cells = run_cli("--cell-urls", f"cell*={dead}", "stats", url=dead)
    assert bad_cells.returncode == 2 and "invalid cell name" in bad_cells.stderr
    bad_prefix = run_cli("--prefix", "spec*", "stats", url=dead)
    assert bad_prefix.returncode == 2 and "invalid key prefix" in bad_prefix.stderr


@pytest.mark.redis
def test_import_refuses_records_with_injecting_names(url: str, tmp_path: Path) -> None:
    spec = typical_spec()
    store = SpecStore.from_url(url)
    store.create(RequestContext(store=store), spec)
    exported = io.BytesIO()
    bulk.export_specs(store, exported)
    line = json.loads(exported.getvalue())
    store.client.flushall()
    lines = []
    for field_name, value in [("store", "cell*"), ("store", "cell1\n"), ("store", "api:x"),
                              ("instance_uuid", "*"), ("instance_uuid", f"{{{VALID}}}")]:
        lines.append(json.dumps({**line, field_name: value}))
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli("import", str(path), url=url)
    assert result.returncode == 1
    assert f"{len(lines)} rejected" in result.stderr
    assert store.client.dbsize() == 0
    store.close()


# -- documents over the limits ----------------------------------------------------------------


def big_spec(text_bytes: int, pieces: int = 1) -> RequestSpec:
    spec = minimal_spec(uuid.uuid4())
    spec.scheduler_hints = {f"h{i}": ["x" * text_bytes] for i in range(pieces)}
    return spec


def test_documents_over_the_limits_are_refused_on_encode_and_decode() -> None:
    codec, limits = DEFAULT_CODEC, DEFAULT_CODEC.limits
    # over max_document_bytes as a whole (every part within the per-part limits)
    pieces = limits.max_document_bytes // (limits.max_str_len // 2) + 1
    with pytest.raises(DocumentTooLargeError):
        codec.encode(big_spec(limits.max_str_len // 2, pieces))
    # one string over max_str_len inside a document under max_document_bytes
    with pytest.raises(DocumentTooLargeError):
        codec.encode(big_spec(limits.max_str_len + 1))
    assert codec.decode(codec.encode(big_spec(limits.max_str_len - 64))) is not None
    # decode: any document over max_document_bytes is refused before it is parsed
    huge = MAGIC + b"\xc0" * limits.max_document_bytes
    with pytest.raises(DocumentTooLargeError):
        codec.decode(huge)
    with pytest.raises(DocumentTooLargeError):
        codec.decode(cast(bytes, bytearray(huge)))  # bytearray works too
    # a document built by another writer, with parts over the limits
    payload = decode_envelope(codec.encode(minimal_spec(VALID))).payload
    payload["scheduler_hints"] = {"h": ["x" * (limits.max_str_len + 1)]}
    raw = MAGIC + pack(["RequestSpec", 1, 0, payload])
    with pytest.raises(CorruptDocumentError):
        codec.decode(raw)
    many = MAGIC + pack(["RequestSpec", 1, 0, {"security_groups": ["g"] * (10_001)}])
    with pytest.raises(CorruptDocumentError):
        codec.decode(many)
    # limits of a custom codec apply the same way
    small = DocumentCodec(limits=DecodeLimits(max_document_bytes=2000))
    assert small.decode(small.encode(typical_spec())) is not None
    with pytest.raises(DocumentTooLargeError):
        small.encode(big_spec(3000))
    with pytest.raises(DocumentTooLargeError):
        small.decode(codec.encode(big_spec(3000)))


def test_huge_documents_are_never_written_and_never_read(any_store: SpecStore) -> None:
    store, client, keys = any_store, any_store.client, any_store.keys
    ctx = RequestContext(store=store)
    limits = store.codec.limits
    spec = big_spec(limits.max_str_len + 1)
    uid = str(spec.instance_uuid)
    assert_typed(lambda: store.create(ctx, spec), DocumentTooLargeError)
    assert client.dbsize() == 0
    assert_typed(lambda: spec.create(ctx), DocumentTooLargeError)
    small = minimal_spec(uid)
    store.create(ctx, small)
    assert_typed(lambda: store.save(ctx, spec), DocumentTooLargeError)
    assert store.get(ctx, uid).rev == 1
    with pytest.raises(DocumentTooLargeError):
        store.create_many(ctx, [minimal_spec(uuid.uuid4()), spec])
    assert client.dbsize() == 2  # the first spec's hash and location record, nothing else
    # a huge document planted by another writer is refused when read
    client.hset(keys.spec_key(API, uid), "doc", MAGIC + b"\xc0" * (limits.max_document_bytes + 1))
    assert_typed(lambda: store.get(ctx, uid), DocumentTooLargeError)
    summary = bulk.export_specs(store, io.BytesIO())
    assert summary.skipped == 1 and summary.exported == 0


def raw_ext(code: int, data: bytes) -> bytes:
    """An ext value in raw msgpack (msgpack.ExtType refuses the negative, reserved codes)."""
    return b"\xc7" + struct.pack(">Bb", len(data), code) + data


def test_timestamps_and_extensions_out_of_range_are_corrupt() -> None:
    payload = decode_envelope(DEFAULT_CODEC.encode(minimal_spec(VALID))).payload
    bad_values = [
        raw_ext(1, b"\x00" * 15),
        raw_ext(1, b"\x00" * 17),
        raw_ext(7, b"abc"),
        raw_ext(-2, b"abc"),
        raw_ext(-128, b""),
        raw_ext(-1, b"\x00" * 5),  # no timestamp has 5 bytes
        raw_ext(-1, struct.pack(">Q", (1_000_000_001 << 34) | 5)),  # 64-bit, ns > 1e9
        raw_ext(-1, struct.pack(">Iq", 2_000_000_000, 0)),  # 96-bit, ns > 1e9
        raw_ext(-1, struct.pack(">Iq", 0, 2**62)),  # year far past 9999
        raw_ext(-1, struct.pack(">Iq", 0, -(2**62))),  # year far before 1
    ]
    marker = "\u0000VALUE\u0000"
    for value in bad_values:
        for field_name in ("instance_uuid", "availability_zone", "extra_field"):
            packed = pack(["RequestSpec", 1, 0, {**payload, field_name: marker}])
            data = MAGIC + packed.replace(pack(marker), value)
            assert outcome(DEFAULT_CODEC, data)[0] == "CorruptDocumentError", (field_name, value)
