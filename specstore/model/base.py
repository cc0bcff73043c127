"""Shared base class and annotated field types for the model."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
)

MAX_FREEFORM_DEPTH = 16


class SpecModel(BaseModel):
    """Base of every model class: unknown fields are refused, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=False)


def _sorted_keys(value: dict[Any, Any]) -> dict[Any, Any]:
    """Order keys so that equal mappings dump (and so encode) to identical bytes.

    Applied on validation and again on dump: a map changed in place stays deterministic.
    """
    return dict(sorted(value.items()))


def _to_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError as exc:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from exc


def _sorted_list(value: set[Any]) -> list[Any]:
    return sorted(value)


def _canonical(value: Any, depth: int) -> Any:
    """Key-sort every nested mapping; refuse nesting deeper than ``MAX_FREEFORM_DEPTH``."""
    if depth > MAX_FREEFORM_DEPTH and isinstance(value, (dict, list)):
        raise ValueError(f"nested deeper than {MAX_FREEFORM_DEPTH} levels")
    if isinstance(value, dict):
        return {k: _canonical(value[k], depth + 1) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v, depth + 1) for v in value]
    return value


def _canonical_freeform(value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _canonical(value, 1)
    return result


NonEmptyStr = Annotated[str, Field(min_length=1, max_length=255)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
StrMap = Annotated[dict[str, str], AfterValidator(_sorted_keys), PlainSerializer(_sorted_keys)]
"""Free-form string-to-string mapping (flavor extra specs, group rules), kept key-sorted."""
FreeformMap = Annotated[
    dict[str, JsonValue],
    AfterValidator(_canonical_freeform),
    PlainSerializer(_canonical_freeform),
]
"""Free-form JSON-like mapping (image properties), key-sorted and depth-bounded."""
IntMap = Annotated[
    dict[NonNegativeInt, NonNegativeInt],
    AfterValidator(_sorted_keys),
    PlainSerializer(_sorted_keys),
]
"""CPU pinning map (guest CPU -> host CPU), kept key-sorted."""
CountMap = Annotated[
    dict[str, PositiveInt], AfterValidator(_sorted_keys), PlainSerializer(_sorted_keys)
]
"""Resource class -> amount, kept key-sorted."""
StrSet = Annotated[set[str], PlainSerializer(_sorted_list)]
"""A set of strings, dumped as a sorted list (deterministic bytes and JSON)."""
IntSet = Annotated[set[NonNegativeInt], PlainSerializer(_sorted_list)]
"""A set of non-negative integers (CPU ids), dumped as a sorted list."""
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC (exact in msgpack and JSON alike)."""
