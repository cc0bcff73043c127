"""Keep fields a newer *minor* schema version added, so they survive a read-modify-write.

``split_unknown`` walks a payload alongside a model class and separates the keys the model
does not know (at any depth of nested models, lists of models by index) from the rest;
``merge_unknown`` puts them back into a freshly dumped payload. Pure functions.

Fields kept for a nested object (one object, or an item of a list) are stored beside a copy
of that object's known part as read, and go back only onto the same, unchanged object: a
writer that replaced the object (a resize's new flavor) must not inherit the old one's fields.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any, Union

from pydantic import BaseModel

Unknown = dict[Any, Any]


def _nested_model(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """('one', M) for ``M`` / ``M | None``; ('many', M) for ``list[M]`` (optionally None)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _nested_model(args[0]) if len(args) == 1 else None
    if origin is list:
        (item,) = typing.get_args(annotation)
        inner = _nested_model(item)
        return ("many", inner[1]) if inner and inner[0] == "one" else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("one", annotation)
    return None


def split_unknown(
    payload: dict[str, Any], model: type[BaseModel]
) -> tuple[dict[str, Any], Unknown]:
    """(known part of ``payload``, unknown part) -- the unknown part is empty if none."""
    known: dict[str, Any] = {}
    unknown: Unknown = {}
    fields = model.model_fields
    for key, value in payload.items():
        info = fields.get(key)
        if info is None:
            unknown[key] = value
            continue
        nested = _nested_model(info.annotation)
        if nested is None or value is None:
            known[key] = value
        elif nested[0] == "one" and isinstance(value, dict):
            known[key], inner = split_unknown(value, nested[1])
            if inner:
                unknown[key] = (copy.deepcopy(known[key]), inner)
        elif nested[0] == "many" and isinstance(value, list):
            items: list[Any] = []
            by_index: Unknown = {}
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    known_item, inner = split_unknown(item, nested[1])
                    if inner:
                        by_index[index] = (copy.deepcopy(known_item), inner)
                    items.append(known_item)
                else:
                    items.append(item)
            known[key] = items
            if by_index:
                unknown[key] = by_index
        else:
            known[key] = value
    return known, unknown


def merge_unknown(payload: dict[str, Any], unknown: Unknown, model: type[BaseModel]) -> None:
    """Put ``unknown`` (from :func:`split_unknown`) back into ``payload``, in place.

    Parts whose container was removed meanwhile (a nested object set to None, a list
    item changed, moved or removed) are dropped with it: they described data that no longer
    exists as it was read.
    """
    fields = model.model_fields
    for key, value in unknown.items():
        info = fields.get(key)
        if info is None:
            payload.setdefault(key, value)
            continue
        nested = _nested_model(info.annotation)
        target = payload.get(key)
        if nested is None or target is None:
            continue
        if nested[0] == "one" and isinstance(target, dict):
            as_read, inner = value
            # Only onto the same, unchanged object: a replaced object starts afresh.
            if _same(target, as_read, nested[1]):
                merge_unknown(target, inner, nested[1])
        elif nested[0] == "many" and isinstance(target, list):
            for index, (item_as_read, inner) in value.items():
                # Only onto the same, unchanged item: a field never moves to another item.
                if index < len(target) and _same(target[index], item_as_read, nested[1]):
                    merge_unknown(target[index], inner, nested[1])


def _same(dumped: Any, as_read: Any, model: type[BaseModel]) -> bool:
    """True when a freshly dumped object is the object as read (known fields only).

    Compared as dumped data first; when that differs only in form (a JSON-mode dump holds
    UUIDs and datetimes as text), compared as validated models.
    """
    if dumped == as_read:
        return True
    if not isinstance(dumped, dict) or not isinstance(as_read, dict):
        return False
    try:
        return model.model_validate(dumped) == model.model_validate(as_read)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return False
