"""The versioned document envelope: format marker, schema name, version, payload.

Layout of a document (all of it is what ``redis-cli HGET ... doc`` shows)::

    b"SPEC\\x01"                      format marker + envelope format 1
    msgpack [schema, major, minor, payload]

The payload is a msgpack map keyed by field names (self-describing). Values msgpack has no
type for use extension types, so they round-trip exactly:

    ext 1   UUID        16 raw bytes
    ext -1  datetime    msgpack's standard timestamp (always UTC-aware)

Sets are written by the model as sorted arrays and read back into sets by the model. Encoding
is deterministic: the model keeps mappings key-sorted and sets sorted, so equal specs give
identical bytes. Decoding untrusted bytes is bounded by :class:`DecodeLimits`
(total size, string/binary/array/map sizes; msgpack itself refuses deep nesting) and every
failure is a :class:`~specstore.errors.CorruptDocumentError`.

Two implementations, one format. The reference one is msgpack-python with Python hooks (the
``default=`` and ``ext_hook`` below). The fast one is ormsgpack (Rust), which writes UUID
extensions and reads maps without a Python call per value; it is used whenever it gives the
same result, and anything it cannot handle the same way (datetimes, unknown extensions,
documents long enough to need the size limits, any error) goes to the reference path, so
the bytes written and the errors raised are those of the reference. Tests compare the two.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgpack
import ormsgpack

from specstore.errors import CorruptDocumentError, DocumentTooLargeError

MAGIC = b"SPEC\x01"
EXT_UUID = 1

Version = tuple[int, int]


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds applied when decoding untrusted bytes."""

    max_document_bytes: int = 1 << 20
    max_str_len: int = 256 * 1024
    max_bin_len: int = 256 * 1024
    max_array_len: int = 10_000
    max_map_len: int = 10_000


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True)
class Envelope:
    """A decoded envelope; ``payload`` is not validated against any model yet."""

    schema: str
    version: Version
    payload: dict[str, Any]


def format_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def _pack_default(value: object) -> msgpack.ExtType:
    if isinstance(value, UUID):
        return msgpack.ExtType(EXT_UUID, value.bytes)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        raise TypeError("naive datetimes are not stored; use timezone-aware ones")
    raise TypeError(f"cannot encode {type(value).__name__}")


def _packb_reference(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, default=_pack_default, use_bin_type=True, datetime=True)
    return packed


class _UnsupportedError(Exception):
    """A value the fast path leaves to the reference implementation."""


def _fast_default(value: object) -> ormsgpack.Ext:
    if type(value) is UUID:
        return ormsgpack.Ext(EXT_UUID, value.bytes)
    raise _UnsupportedError


_FAST_PACK = (
    ormsgpack.OPT_PASSTHROUGH_UUID | ormsgpack.OPT_PASSTHROUGH_DATETIME | ormsgpack.OPT_NON_STR_KEYS
)


def _packb(value: object) -> bytes:
    """msgpack bytes of ``value``, identical to :func:`_packb_reference`'s."""
    try:
        return ormsgpack.packb(value, default=_fast_default, option=_FAST_PACK)
    except Exception:  # ormsgpack.MsgpackEncodeError, wrapping _UnsupportedError among others
        return _packb_reference(value)  # datetimes, huge ints, bad values: its result or error


def pack_document(
    schema: str, version: Version, payload: dict[str, Any], most: int
) -> bytes | None:
    """The document bytes by the fast writer alone, or None: when it cannot write the payload
    the same way (datetimes, huge ints, bad values), or the document is longer than ``most``
    (:func:`fast_write_limit`: longer ones need the limit checks of :func:`encode_envelope`)."""
    try:
        data = MAGIC + ormsgpack.packb(
            [schema, version[0], version[1], payload], default=_fast_default, option=_FAST_PACK
        )
    except Exception:
        return None
    return data if len(data) <= most else None


def fast_write_limit(limits: DecodeLimits) -> int:
    """The longest document :func:`pack_document` may give under ``limits``."""
    return min(limits.max_document_bytes, _smallest_part_limit(limits))


def encode_envelope(
    schema: str, version: Version, payload: dict[str, Any], limits: DecodeLimits = DEFAULT_LIMITS
) -> bytes:
    """Pack an envelope; refuse documents no reader would accept."""
    try:
        data = MAGIC + _packb([schema, version[0], version[1], payload])
    except (TypeError, ValueError, OverflowError) as exc:
        raise CorruptDocumentError(f"cannot encode {schema} document: {exc}") from exc
    if len(data) > limits.max_document_bytes:
        raise DocumentTooLargeError(
            f"{schema} document is {len(data)} bytes, over the {limits.max_document_bytes} limit"
        )
    if len(data) > _smallest_part_limit(limits):
        try:
            _Unpacker(limits).unpackb(data[len(MAGIC) :])
        except Exception as exc:
            raise DocumentTooLargeError(
                f"{schema} document has a part over the decode limits: {exc}"
            ) from exc
    return data


def _smallest_part_limit(limits: DecodeLimits) -> int:
    """A document no longer than this cannot hold a string, array or map over the limits
    (each element takes at least one byte), so only longer ones need the check."""
    return min(limits.max_str_len, limits.max_bin_len, limits.max_array_len, limits.max_map_len)


class _Unpacker:
    """Bounded msgpack decoding with specstore's extension types."""

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits

    def unpackb(self, data: bytes) -> Any:
        lim = self.limits
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            timestamp=3,
            ext_hook=self._ext_hook,
            max_str_len=lim.max_str_len,
            max_bin_len=lim.max_bin_len,
            max_array_len=lim.max_array_len,
            max_map_len=lim.max_map_len,
            max_ext_len=lim.max_bin_len,
        )

    def _ext_hook(self, code: int, data: bytes) -> object:
        if code == EXT_UUID:
            if len(data) != 16:
                raise ValueError(f"UUID extension holds {len(data)} bytes, not 16")
            return UUID(bytes=data)
        raise ValueError(f"unknown extension type {code}")


# The fast reader has no option to refuse trailing bytes, so the body is read as the first
# item of a 2-array whose second item is this string, unguessable from outside the process:
# any byte after the body becomes the second item instead and is seen as garbage. (A string,
# not an extension value: the reader makes it without a Python call back.)
_END_TEXT = os.urandom(8).hex()
_END = b"\xd9\x10" + _END_TEXT.encode()


def _fast_ext_hook(code: int, data: bytes) -> object:
    if code == EXT_UUID and len(data) == 16:
        return data  # pydantic makes the UUID from its 16 bytes in Rust
    raise _UnsupportedError


def _fast_body(raw: bytes, limits: DecodeLimits) -> Any:
    """The body unpacked by ormsgpack with UUIDs left as 16 bytes; None when the reference
    path must decide (long documents, datetimes, unknown extensions, any error)."""
    if len(raw) > _smallest_part_limit(limits):
        return None
    try:
        body, end = ormsgpack.unpackb(
            b"\x92" + raw[len(MAGIC) :] + _END,
            ext_hook=_fast_ext_hook,
            option=ormsgpack.OPT_NON_STR_KEYS,
        )
    except Exception:  # unpack errors, _UnsupportedError from the hook
        return None
    return body if type(end) is str and end == _END_TEXT else None


_TEXT = frozenset({str})


class CurrentReader:
    """:func:`current_payload` for one schema and version, its constants worked out once:
    the bytes every such document starts with (marker, array header, schema name, version, as
    the writer packs them) are compared as bytes, and only the payload is unpacked."""

    def __init__(self, schema: str, version: Version, limits: DecodeLimits) -> None:
        head = ormsgpack.packb([schema, version[0], version[1]])
        self.prefix = MAGIC + b"\x94" + head[1:]  # a 4-array: the payload follows
        self.most = fast_write_limit(limits)

    def payload(self, data: bytes) -> dict[str, Any] | None:
        """The payload (UUIDs as 16 bytes), or None: the caller takes the general path."""
        if type(data) is not bytes or len(data) > self.most or not data.startswith(self.prefix):
            return None
        try:
            payload, end = ormsgpack.unpackb(
                b"\x92" + data[len(self.prefix) :] + _END,
                ext_hook=_fast_ext_hook,
                option=ormsgpack.OPT_NON_STR_KEYS,
            )
        except Exception:  # unpack errors, _UnsupportedError from the hook
            return None
        if (
            type(end) is not str
            or end != _END_TEXT
            or type(payload) is not dict
            or not _TEXT.issuperset(map(type, payload))
        ):
            return None
        return payload


def current_payload(
    data: bytes, schema: str, version: Version, limits: DecodeLimits = DEFAULT_LIMITS
) -> dict[str, Any] | None:
    """The payload (UUIDs as their 16 bytes) when ``data`` is a well-formed document of
    exactly ``schema`` at ``version`` that the fast reader handles; None otherwise, and the
    caller takes the general path (which also gives the error of a corrupt document)."""
    if type(data) is not bytes or len(data) > limits.max_document_bytes:
        return None  # the general path refuses documents over the limit
    if not data.startswith(MAGIC):
        return None
    body = _fast_body(data, limits)
    if type(body) is not list or len(body) != 4:
        return None
    name, major, minor, payload = body
    if (
        name != schema
        or (major, minor) != version
        or type(major) is not int  # True == 1: bools are not versions
        or type(minor) is not int
        or type(payload) is not dict
        or not _TEXT.issuperset(map(type, payload))
    ):
        return None
    return payload


def decode_envelope(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Envelope:
    """Check the marker, unpack within ``limits`` and return the envelope's parts."""
    return _decode(data, limits, fast=False)


def decode_envelope_fast(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Envelope:
    """:func:`decode_envelope`, except that UUIDs in the payload are their 16 raw bytes (what
    the model validates fastest); for payloads that go straight to model validation."""
    return _decode(data, limits, fast=True)


def _decode(data: bytes, limits: DecodeLimits, *, fast: bool) -> Envelope:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CorruptDocumentError(f"a document is bytes, not {type(data).__name__}")
    if len(data) > limits.max_document_bytes:
        raise DocumentTooLargeError(
            f"document is {len(data)} bytes, over the {limits.max_document_bytes} limit"
        )
    raw = data if type(data) is bytes else bytes(data)
    if not raw.startswith(MAGIC):
        raise CorruptDocumentError("not a specstore document (format marker missing)")
    body = _fast_body(raw, limits) if fast else None
    if body is None:
        try:
            body = _Unpacker(limits).unpackb(raw[len(MAGIC) :])
        except Exception as exc:  # msgpack raises a zoo of types on hostile input
            raise CorruptDocumentError(
                f"undecodable document body: {type(exc).__name__}: {exc}"
            ) from exc
    if not (isinstance(body, list) and len(body) == 4):
        raise CorruptDocumentError("document body is not [schema, major, minor, payload]")
    schema, major, minor, payload = body
    if not isinstance(schema, str) or not schema:
        raise CorruptDocumentError("document schema name is not a string")
    if not (
        type(major) is int
        and type(minor) is int
        and min(major, minor) >= 0
        and max(major, minor) < 1 << 16
    ):
        raise CorruptDocumentError(f"document version {major!r}.{minor!r} is not two integers")
    if not isinstance(payload, dict) or not _TEXT.issuperset(map(type, payload)):
        raise CorruptDocumentError("document payload is not a map keyed by field names")
    return Envelope(schema, (major, minor), payload)
