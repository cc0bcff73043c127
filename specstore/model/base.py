"""Shared base class and annotated field types for the model.

Canonical order is established when a value is validated, not when it is dumped: mappings
become :class:`SortedDict` (which stays key-sorted under in-place updates too), so dumping
needs no Python serializer and equal specs dump to identical bytes. The only serializer left
on the dump path is the C builtin :func:`sorted` for sets (a set has no order to keep).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    Strict,
)
from typing_extensions import TypeAliasType

MAX_FREEFORM_DEPTH = 16

K = TypeVar("K")
V = TypeVar("V")


class SpecModel(BaseModel):
    """Base of every model class: unknown fields are refused, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=False)

    def __eq__(self, other: object) -> bool:
        # Dumping with exclude_defaults compares every model-valued field with its default
        # (None); answer that without pydantic's general comparison.
        if other is None:
            return False
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]


class SortedDict(dict[K, V]):
    """A dict kept in key order, also after in-place inserts (``d[k] = v``, ``update``).

    Nova code updates hints and extra specs in place; keeping the order here means a dump
    (pydantic's own, in Rust) is deterministic without a Python serializer. Keys that do not
    compare (a wrong type put in by hand) leave the order as it is; validation refuses them.
    """

    __slots__ = ()

    def __setitem__(self, key: K, value: V) -> None:
        fresh = key not in self
        dict.__setitem__(self, key, value)
        if fresh and len(self) > 1:
            self._resort()

    def update(self, *args: Any, **kwargs: Any) -> None:
        dict.update(self, *args, **kwargs)
        self._resort()

    def setdefault(self, key: K, default: V = None) -> V:  # type: ignore[assignment]
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> SortedDict[K, V]:  # type: ignore[override,misc]
        self.update(other)
        return self

    def copy(self) -> SortedDict[K, V]:
        return SortedDict(self)

    def _resort(self) -> None:
        try:
            items = sorted(dict.items(self))
        except TypeError:
            return
        dict.clear(self)
        dict.update(self, items)


def _sorted_keys(value: dict[Any, Any]) -> dict[Any, Any]:
    """``value`` as a :class:`SortedDict`. Maps read from a document are in order already
    (documents are written canonically): checking that is cheaper than sorting the pairs."""
    keys = [*value]
    if keys == sorted(keys):
        return SortedDict(value)
    return SortedDict(sorted(value.items()))


def _to_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError as exc:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from exc


def _canonical(value: Any, depth: int) -> Any:
    """Key-sort every nested mapping; refuse nesting deeper than ``MAX_FREEFORM_DEPTH``."""
    if depth > MAX_FREEFORM_DEPTH and isinstance(value, (dict, list)):
        raise ValueError(f"nested deeper than {MAX_FREEFORM_DEPTH} levels")
    if isinstance(value, dict):
        return SortedDict(
            (k, _canonical(value[k], depth + 1) if type(value[k]) in _NESTED else value[k])
            for k in sorted(value)
        )
    if isinstance(value, list):
        return [_canonical(v, depth + 1) if type(v) in _NESTED else v for v in value]
    return value


_NESTED = (dict, list, SortedDict)


_NESTED_TYPES = frozenset(_NESTED)


def _canonical_freeform(value: dict[str, Any]) -> dict[str, Any]:
    if _NESTED_TYPES.isdisjoint(map(type, value.values())):
        return _sorted_keys(value)  # flat (the usual case): nothing to walk
    return cast(dict[str, Any], _canonical(value, 1))


NonEmptyStr = Annotated[str, Field(min_length=1, max_length=255)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
StrMap = Annotated[dict[str, str], AfterValidator(_sorted_keys)]
"""Free-form string-to-string mapping (flavor extra specs, group rules), kept key-sorted."""
if TYPE_CHECKING:
    FreeformValue = JsonValue  # the same set of values, as type checkers know it
else:
    FreeformValue = TypeAliasType(
        "FreeformValue",
        Union[  # noqa: UP007 -- TypeAliasType takes the typing form on Python 3.10
            Annotated[str, Strict()],
            Annotated[bool, Strict()],
            Annotated[int, Strict()],
            Annotated[float, Strict()],
            Annotated[list["FreeformValue"], Strict()],
            Annotated[dict[Annotated[str, Strict()], "FreeformValue"], Strict()],
            None,
        ],
    )
"""A JSON value. Unlike pydantic's ``JsonValue`` (a union told apart by a Python callable,
run for every value on validation and on dump), a union of strict types that pydantic tells
apart in Rust; it refuses the same things (bytes, sets, tuples, non-string keys)."""
FreeformMap = Annotated[dict[str, FreeformValue], AfterValidator(_canonical_freeform)]
"""Free-form JSON-like mapping (image properties), key-sorted and depth-bounded."""
IntMap = Annotated[dict[NonNegativeInt, NonNegativeInt], AfterValidator(_sorted_keys)]
"""CPU pinning map (guest CPU -> host CPU), kept key-sorted."""
CountMap = Annotated[dict[str, PositiveInt], AfterValidator(_sorted_keys)]
"""Resource class -> amount, kept key-sorted."""
StrSet = Annotated[set[str], PlainSerializer(sorted, return_type=list[str])]
"""A set of strings, dumped as a sorted list (deterministic bytes and JSON)."""
IntSet = Annotated[set[NonNegativeInt], PlainSerializer(sorted, return_type=list[int])]
"""A set of non-negative integers (CPU ids), dumped as a sorted list."""
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC (exact in msgpack and JSON alike)."""
