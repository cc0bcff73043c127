"""RequestSpec <-> JSON, for export lines and human eyes.

A JSON document mirrors the msgpack envelope::

    {"schema": "RequestSpec", "version": "1.0", "spec": {...persisted fields...}}

UUIDs, sets and datetimes become strings / sorted lists / ISO 8601; the model turns them back.
Keys are sorted, so equal specs give equal text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from specstore.errors import CorruptDocumentError
from specstore.model import RequestSpec
from specstore.serializers.envelope import Envelope, Version, format_version
from specstore.serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec

_VERSION = re.compile(r"([0-9]{1,5})\.([0-9]{1,5})")


def _jsonable(value: Any) -> Any:
    """JSON-ready form of a payload value (UUID -> str, set -> sorted list, datetime -> ISO)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_jsonable(v) for v in sorted(value)]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def parse_version(text: object) -> Version:
    if not isinstance(text, str):
        raise CorruptDocumentError(f"version must be a 'major.minor' string, got {text!r}")
    match = _VERSION.fullmatch(text)
    if match is None:
        raise CorruptDocumentError(f"version must be 'major.minor', got {text[:40]!r}")
    return int(match[1]), int(match[2])


def to_json_document(
    spec: RequestSpec, codec: DocumentCodec = DEFAULT_CODEC, *, fresh: bool = False
) -> dict[str, Any]:
    """The JSON document of ``spec`` (``fresh``: it was just decoded, see
    :meth:`DocumentCodec.payload_for_write`)."""
    version, payload = codec.payload_for_write(spec, mode="json", fresh=fresh)
    if spec.newer_minor_fields is not None:
        payload = _jsonable(payload)  # fields kept from a newer minor version are raw values
    return {"schema": codec.schema, "version": format_version(version), "spec": payload}


def from_json_document(document: object, codec: DocumentCodec = DEFAULT_CODEC) -> RequestSpec:
    if not isinstance(document, dict):
        raise CorruptDocumentError("a JSON spec document is an object")
    schema, spec = document.get("schema"), document.get("spec")
    if not isinstance(schema, str) or not isinstance(spec, dict):
        raise CorruptDocumentError("a JSON spec document needs 'schema' and 'spec'")
    return codec.from_envelope(Envelope(schema, parse_version(document.get("version")), spec))


def dumps(spec: RequestSpec, codec: DocumentCodec = DEFAULT_CODEC) -> str:
    """One line of JSON (no newline), keys sorted."""
    return json.dumps(to_json_document(spec, codec), sort_keys=True, separators=(",", ":"))


def loads(text: str | bytes, codec: DocumentCodec = DEFAULT_CODEC) -> RequestSpec:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CorruptDocumentError(f"not valid JSON: {exc}") from exc
    return from_json_document(document, codec)
