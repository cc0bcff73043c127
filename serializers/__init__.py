"""Versioned documents for specstore: msgpack (stored), JSON (export) and Nova primitives."""

from serializers.envelope import DEFAULT_LIMITS, MAGIC, DecodeLimits, Envelope, Version
from serializers.migrations import MigrationRegistry
from serializers.msgpack_codec import DEFAULT_CODEC, DocumentCodec
from serializers.schemas import REGISTRY

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
