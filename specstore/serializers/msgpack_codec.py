"""RequestSpec <-> versioned msgpack document bytes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from specstore.errors import CorruptDocumentError, IncompatibleSchemaError, InvalidSpecError
from specstore.model import RequestSpec, persisted_exclude, persisted_payload
from specstore.serializers.envelope import (
    DEFAULT_LIMITS,
    CurrentReader,
    DecodeLimits,
    Envelope,
    Version,
    decode_envelope,
    encode_envelope,
    fast_write_limit,
    format_version,
    pack_document,
)
from specstore.serializers.fast_payload import checked_payload, fast_payload, msgpack_payload
from specstore.serializers.migrations import MigrationRegistry
from specstore.serializers.schemas import REGISTRY
from specstore.serializers.schemas.request_spec import SCHEMA
from specstore.serializers.unknown_fields import Unknown, merge_unknown, split_unknown


class DocumentCodec:
    """Encodes specs as documents of one schema and decodes any readable version of it.

    ``write_version`` pins the version written (rolling upgrades: keep writing the version the
    oldest running reader knows). Unknown fields read from a newer minor version are kept on
    the decoded spec and written back untouched when the spec is written at the current
    version.
    """

    def __init__(
        self,
        *,
        model: type[RequestSpec] = RequestSpec,
        registry: MigrationRegistry = REGISTRY,
        schema: str = SCHEMA,
        write_version: Version | None = None,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        self.model = model
        self.registry = registry
        self.schema = schema
        self.limits = limits
        self.current_version = registry.current(schema)
        self.write_version = write_version or self.current_version
        self._writes_current = self.write_version == self.current_version
        self._fast_limit = fast_write_limit(limits)
        self._reader = CurrentReader(schema, self.current_version, limits)
        if self.write_version not in registry.versions(schema):
            raise IncompatibleSchemaError(
                f"cannot write {schema} {format_version(self.write_version)}: not a released "
                "version this code can produce"
            )

    # -- encode ------------------------------------------------------------------------------

    def encode(self, spec: RequestSpec) -> bytes:
        """The persisted document of ``spec`` (transient fields left out)."""
        return self.encode_versioned(spec)[1]

    def encode_versioned(self, spec: RequestSpec) -> tuple[Version, bytes]:
        """(version written, document bytes)."""
        if self._writes_current and spec.newer_minor_fields is None:
            # The usual write: the payload straight from the spec's fields, packed by the fast
            # writer; whatever either of them cannot do the same way takes the general path.
            payload = msgpack_payload(spec)
            if payload is not None:
                data = pack_document(self.schema, self.current_version, payload, self._fast_limit)
                if data is not None:
                    return self.current_version, data
        version, payload = self.payload_for_write(spec)
        return version, encode_envelope(self.schema, version, payload, self.limits)

    def payload_for_write(
        self, spec: RequestSpec, mode: Literal["python", "json"] = "python", *, fresh: bool = False
    ) -> tuple[Version, dict[str, Any]]:
        """(version to write, payload): downgraded when pinned, newer-minor fields re-emitted.

        ``mode="json"`` gives JSON-ready values (unknown fields are passed through as read).
        A spec that does not validate raises :class:`InvalidSpecError` (``fresh``: it was
        just decoded and not changed since, so it is not checked again).
        """
        payload = self._checked_payload(spec, mode, fresh)
        if self.write_version != self.current_version:
            return self.write_version, self.registry.downgrade(
                self.schema, payload, self.write_version
            )
        kept = spec.newer_minor_fields
        if kept is None:
            return self.current_version, payload
        source_version, unknown = kept
        merge_unknown(payload, unknown, self.model)
        if not all(type(name) is str for name in payload):
            raise InvalidSpecError("fields kept from a newer version must be named by text")
        return source_version, payload

    def _checked_payload(
        self, spec: RequestSpec, mode: Literal["python", "json"], fresh: bool
    ) -> dict[str, Any]:
        """The persisted payload of a spec that validates.

        Assignments are validated by the model, but what is put into a spec's lists, sets and
        maps in place is not: written as it is, it would give a document no reader accepts.
        The generated payload builder checks every container item; when it cannot vouch for
        the spec, the spec is validated as a whole here (bad data is refused with
        :class:`InvalidSpecError`, data the model normalises is written normalised)."""
        if mode == "python":
            payload = checked_payload(spec)
            if payload is not None:
                return payload
        if fresh:
            return persisted_payload(spec, mode)
        try:
            dumped = spec.model_dump(
                mode="python",
                exclude=persisted_exclude(spec),
                exclude_defaults=True,
                warnings=False,
            )
            valid = self.model.__pydantic_validator__.validate_python(dumped)
        except ValidationError as exc:
            raise InvalidSpecError(f"the spec does not validate: {_summary(exc)}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidSpecError(f"the spec cannot be written: {exc}") from exc
        return fast_payload(valid) if mode == "python" else persisted_payload(valid, mode)

    # -- decode ------------------------------------------------------------------------------

    def decode(self, data: bytes) -> RequestSpec:
        """A spec from document bytes; upgrades older versions, keeps newer-minor fields."""
        payload = self._reader.payload(data)
        if payload is not None:
            return self.validate(payload, self.current_version)
        # Any other version, bytes the fast reader leaves alone, or corrupt bytes: migration
        # steps and kept unknown fields see the payload with UUID objects.
        return self.from_envelope(decode_envelope(data, self.limits))

    def header(self, data: bytes) -> Envelope:
        """The envelope without model validation (for stats and migrate)."""
        return decode_envelope(data, self.limits)

    def from_envelope(self, envelope: Envelope) -> RequestSpec:
        if envelope.schema != self.schema:
            raise IncompatibleSchemaError(
                f"document holds schema {envelope.schema!r}, expected {self.schema!r}"
            )
        version, payload = envelope.version, envelope.payload
        unknown: Unknown = {}
        if self.registry.is_newer_minor(self.schema, version):
            payload, unknown = split_unknown(payload, self.model)
        else:
            payload = self.registry.upgrade(self.schema, payload, version)
        spec = self.validate(payload, version)
        if unknown:
            spec.newer_minor_fields = (version, unknown)
        return spec

    def validate(self, payload: dict[str, Any], version: Version) -> RequestSpec:
        try:
            spec: RequestSpec = self.model.__pydantic_validator__.validate_python(payload)
            return spec  # model_validate, less its Python layer
        except ValidationError as exc:
            raise CorruptDocumentError(
                f"{self.schema} {format_version(version)} document does not validate: "
                f"{_summary(exc)}"
            ) from exc
        except (TypeError, ValueError, RecursionError) as exc:
            raise CorruptDocumentError(f"{self.schema} document is malformed: {exc}") from exc


def _summary(exc: ValidationError, most: int = 3) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:most]]
    more = f" (+{len(errors) - most} more)" if len(errors) > most else ""
    return "; ".join(parts) + more


DEFAULT_CODEC = DocumentCodec()
"""The codec the stores use unless given another."""
