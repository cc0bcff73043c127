"""Versioned documents for specstore: msgpack (stored), JSON (export) and Nova primitives."""

from specstore.serializers.envelope import DEFAULT_LIMITS, MAGIC, DecodeLimits, Envelope, Version
from specstore.serializers.migrations import MigrationRegistry
from specstore.serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec
from specstore.serializers.schemas import REGISTRY

__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_LIMITS",
    "MAGIC",
    "REGISTRY",
    "DecodeLimits",
    "DocumentCodec",
    "Envelope",
    "MigrationRegistry",
    "Version",
]
