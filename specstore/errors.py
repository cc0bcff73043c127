"""Typed errors raised by specstore.

Every failure that a caller can act on has its own class. All of them derive from
:class:`SpecStoreError`, so ``except SpecStoreError`` catches everything the library raises
on purpose; anything else escaping is a bug.
"""

from __future__ import annotations


class SpecStoreError(Exception):
    """Base class of every error specstore raises on purpose."""


# --- input -------------------------------------------------------------------------------


class InvalidInputError(SpecStoreError, ValueError):
    """A value handed to specstore is malformed (bad UUID, bad cell name, bad spec data)."""


class InvalidUUIDError(InvalidInputError):
    """A string that should be a UUID is not one."""

    def __init__(self, value: object) -> None:
        super().__init__(f"not a valid UUID: {value!r}")
        self.value = value


class InvalidCellNameError(InvalidInputError):
    """A cell name would not make a safe, legible key segment."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"invalid cell name {value!r}: {reason}")
        self.value = value


class InvalidSpecError(InvalidInputError):
    """Spec data does not validate against the model."""


class ConfigurationError(InvalidInputError):
    """The settings (flags, environment, config file) are incomplete or wrong."""


# --- documents ---------------------------------------------------------------------------


class DocumentError(SpecStoreError):
    """A stored or transported document cannot be used."""


class CorruptDocumentError(DocumentError):
    """The bytes are not a well-formed specstore document."""


class DocumentTooLargeError(CorruptDocumentError):
    """A document exceeds the size limits (on decode or on encode)."""


class IncompatibleSchemaError(DocumentError):
    """The document's schema or version cannot be read (or written) by this code."""


class NovaPrimitiveError(DocumentError):
    """A Nova versioned-object primitive cannot be converted."""


# --- store -------------------------------------------------------------------------------


class StoreError(SpecStoreError):
    """A store operation was refused or failed."""


class SpecNotFoundError(StoreError, LookupError):
    """No spec is stored for the instance (in the store the context targets)."""

    def __init__(
        self, instance_uuid: str, store: str | None = None, home: str | None = None
    ) -> None:
        where = f" in store {store!r}" if store else ""
        hint = f" (it lives in {home!r})" if home and home != store else ""
        super().__init__(f"no request spec for instance {instance_uuid}{where}{hint}")
        self.instance_uuid = instance_uuid
        self.store = store
        self.home = home


class SpecExistsError(StoreError):
    """``create`` found a spec already stored for the instance."""

    def __init__(self, instance_uuid: str, store: str) -> None:
        super().__init__(f"a request spec for instance {instance_uuid} already lives in {store!r}")
        self.instance_uuid = instance_uuid
        self.store = store


class ConflictError(StoreError):
    """Compare-and-set failed: the caller's revision is stale."""

    def __init__(self, instance_uuid: str, expected_rev: int, actual_rev: int) -> None:
        super().__init__(
            f"request spec {instance_uuid} changed underneath: expected rev {expected_rev}, "
            f"stored rev is {actual_rev}"
        )
        self.instance_uuid = instance_uuid
        self.expected_rev = expected_rev
        self.actual_rev = actual_rev


class WrongStoreError(StoreError):
    """The context targets a store where the spec does not live."""

    def __init__(self, instance_uuid: str, targeted: str, actual: str) -> None:
        super().__init__(
            f"request spec {instance_uuid} lives in {actual!r}, not in {targeted!r}; "
            "target the right store (or promote it) instead of writing a second copy"
        )
        self.instance_uuid = instance_uuid
        self.targeted = targeted
        self.actual = actual


class MoveInProgressError(StoreError):
    """The spec is being moved to a cell on another backend; its api copy is frozen.

    Finish the move (call ``promote`` again, or ``resume_moves``) and write to the cell.
    """

    def __init__(self, instance_uuid: str, cell: str) -> None:
        super().__init__(
            f"request spec {instance_uuid} is being moved to {cell!r}; finish the move "
            "(promote again or resume_moves) and write through the cell"
        )
        self.instance_uuid = instance_uuid
        self.cell = cell


class MoveAbortedError(StoreError):
    """A move to a cell on another backend was given up while this call ran.

    Its lease expired and ``resume_moves``/``repair`` settled it, or the spec was destroyed or
    moved meanwhile; ``outcome`` says how it was settled. Nothing of this call's move remains:
    locate the spec and promote again if it should still move.
    """

    def __init__(self, instance_uuid: str, cell: str, outcome: str) -> None:
        super().__init__(
            f"the move of request spec {instance_uuid} to {cell!r} was given up while it ran "
            f"({outcome.replace('_', ' ')}); locate the spec and promote again if needed"
        )
        self.instance_uuid = instance_uuid
        self.cell = cell
        self.outcome = outcome


class UnknownStoreError(StoreError):
    """The context names a cell the topology does not know."""


class BackendError(StoreError):
    """Redis failed or could not be reached.

    ``may_have_written`` tells whether the failed call could have changed stored data: False
    when the failure happened before anything was sent or the call was a read, True when a write
    was sent and its reply was lost. Re-read (and retry with the held rev) when it is True.
    """

    def __init__(self, operation: str, cause: BaseException, *, may_have_written: bool) -> None:
        landed = "the write may have landed" if may_have_written else "nothing was written"
        super().__init__(
            f"redis failed during {operation} ({landed}): {type(cause).__name__}: {cause}"
        )
        self.operation = operation
        self.may_have_written = may_have_written


class BatchWriteError(BackendError):
    """Part of a batch write failed at Redis; ``result`` says per spec what landed, what
    failed (nothing of it was written) and what is unknown (it may have landed: re-read those
    before retrying)."""

    def __init__(
        self, operation: str, cause: BaseException, result: object, *, may_have_written: bool
    ) -> None:
        super().__init__(operation, cause, may_have_written=may_have_written)
        self.result = result
