"""Figure 5: encode / decode time per spec, and bytes per spec.

The spec is the typical one of specstore.samples. specstore encodes it with
``DEFAULT_CODEC.encode`` (transient fields stripped) and decodes with ``DEFAULT_CODEC.decode``
(msgpack + upgrade check + pydantic validation); the baseline is pydantic's own JSON:
``model_dump_json`` with the same fields excluded and ``model_validate_json``.

Sizes: the document bytes specstore stores, and Redis's MEMORY USAGE of the spec's HASH key,
against the pydantic JSON and against Nova's JSON primitive of the same spec as Nova stores
it (``json.dumps`` of ``obj_to_primitive()`` after the transient fields are reset, which is
what Nova's ``request_specs.spec`` column holds).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import redis

from benchmarks.harness import Row, Target, interleaved_micros
from benchmarks.latency import JSON_EXCLUDE
from benchmarks.workload import BASE_SPEC, Counts, keyspace
from specstore.context import RequestContext
from specstore.core.keys import API
from specstore.model import RequestSpec, strip_transient
from specstore.serializers.msgpack_codec import DEFAULT_CODEC
from specstore.store import SpecStore

CODEC_TARGET = Target("value", "<=", 40, "us")
FASTER_THAN_JSON = Target("ratio", "<=", 1 / 1.5)
"""At least 1.5x faster than pydantic JSON on the same model."""
SIZE_TARGET = Target("ratio", "<=", 0.40)

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = "fixtures/nova/request_spec_1.15_seed1.json"


def nova_json_bytes(spec: RequestSpec) -> tuple[int, str]:
    """Size of Nova's JSON primitive of ``spec`` as persisted, and where it came from."""
    try:
        nova = importlib.import_module("specstore.serializers.nova")
    except ImportError:
        nova = None
    if nova is not None and hasattr(nova, "to_nova_primitive"):
        primitive: dict[str, Any] = nova.to_nova_primitive(strip_transient(spec))
        return (len(json.dumps(primitive).encode()),
                "specstore.serializers.nova.to_nova_primitive of the same spec (transient fields "
                "reset as Nova does before persisting), json.dumps with Nova's default separators")
    for base in (ROOT / "tests", ROOT.parent / "shared"):
        path = base / FIXTURE
        if path.exists():
            data = json.loads(path.read_text())
            return (len(json.dumps(data).encode()),
                    f"specstore.serializers.nova is missing: Nova's fixture {path.name} (a "
                    "comparable spec, NOT the same one) re-dumped with json.dumps")
    raise FileNotFoundError(f"no specstore.serializers.nova and no {FIXTURE}")


def figure_5(client: redis.Redis, prefix: str, counts: Counts) -> list[Row]:
    spec = BASE_SPEC
    codec = DEFAULT_CODEC
    doc = codec.encode(spec)
    text = spec.model_dump_json(exclude=JSON_EXCLUDE)
    if codec.decode(doc) != RequestSpec.model_validate_json(text):
        raise RuntimeError("the msgpack document and the pydantic JSON hold different specs")

    times = interleaved_micros({
        "encode": lambda: codec.encode(spec),
        "decode": lambda: codec.decode(doc),
        "json_encode": lambda: spec.model_dump_json(exclude=JSON_EXCLUDE),
        "json_decode": lambda: RequestSpec.model_validate_json(text),
    }, number=counts.codec_number, repeat=counts.codec_repeat)
    encode, decode = times["encode"], times["decode"]
    json_encode, json_decode = times["json_encode"], times["json_decode"]

    store = SpecStore(client, keyspace=keyspace(prefix, "size"))
    store.create(RequestContext(store=store), spec)
    uid = str(spec.instance_uuid)
    spec_key = store.keys.spec_key(API, uid)
    json_key = f"{prefix}:size:json:{{{uid}}}"
    client.set(json_key, text)
    hash_usage = client.memory_usage(spec_key, samples=0)
    json_usage = client.memory_usage(json_key, samples=0)
    loc_usage = client.memory_usage(store.keys.location_key(uid), samples=0)
    if hash_usage is None or json_usage is None:
        raise RuntimeError("MEMORY USAGE returned nothing")
    encoding = client.object("encoding", spec_key)
    client.unlink(spec_key, json_key, store.keys.location_key(uid))
    nova_bytes, nova_source = nova_json_bytes(spec)

    timing = (f"Figure 5: median of {counts.codec_repeat} loops of {counts.codec_number} calls "
              "on the typical spec, the four loops interleaved; pydantic JSON leaves out the "
              "same transient fields (and, unlike the document, keeps fields at their "
              "defaults). Decode validates fully in both.")
    return [
        Row(5, "encode per spec", "us", encode, json_encode, "model_dump_json",
            FASTER_THAN_JSON, note=timing, path="encode"),
        Row(5, "decode per spec", "us", decode, json_decode, "model_validate_json",
            FASTER_THAN_JSON, path="decode"),
        Row(5, "encode + decode per spec", "us", encode + decode, json_encode + json_decode,
            "pydantic JSON both ways", CODEC_TARGET),
        Row(5, "encode + decode vs pydantic JSON", "us", encode + decode,
            json_encode + json_decode, "pydantic JSON both ways", FASTER_THAN_JSON),
        Row(5, "stored document size", "B", len(doc), len(text), "pydantic JSON"),
        Row(5, "stored document size vs Nova", "B", len(doc), nova_bytes,
            "Nova JSON primitive", SIZE_TARGET, note=f"Nova size: {nova_source}."),
        Row(5, "Redis MEMORY USAGE of the spec key", "B", hash_usage, json_usage,
            "pydantic JSON STRING key",
            note=f"MEMORY USAGE ... SAMPLES 0; the spec HASH is {_text(encoding)}-encoded; the "
                 f"location key adds {loc_usage} B per spec (not counted)."),
        Row(5, "Redis MEMORY USAGE of the spec key vs Nova", "B", hash_usage, nova_bytes,
            "Nova JSON primitive", SIZE_TARGET,
            note="The stricter reading of the size target: the whole stored record in Redis "
                 "(hash overhead and metadata fields included) against Nova's JSON text."),
    ]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
