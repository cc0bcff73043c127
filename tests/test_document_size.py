"""Stored documents are compact: well under half of Nova's JSON primitive of the same spec."""

from __future__ import annotations

import json

from specstore.model import strip_transient
from specstore.serializers.msgpack_codec import DEFAULT_CODEC
from specstore.serializers.nova import to_nova_primitive
from tests.factories import typical_spec


def test_typical_spec_document_is_well_under_half_of_novas_json() -> None:
    spec = typical_spec()
    # What Nova stores: the persisted fields, serialized by jsonutils.dumps (default separators).
    nova_bytes = len(json.dumps(to_nova_primitive(strip_transient(spec))).encode())
    document_bytes = len(DEFAULT_CODEC.encode(spec))
    print(f"document {document_bytes} B vs Nova JSON {nova_bytes} B "
          f"({document_bytes / nova_bytes:.0%})")
    assert document_bytes < 0.4 * nova_bytes
