"""The persisted payload of a spec, built by plain Python generated from the model's fields.

:func:`specstore.model.persisted_payload` asks pydantic for ``model_dump(mode="python",
exclude=<transient>, exclude_defaults=True)``. On the typical spec most of that time goes to
pydantic-core's general machinery (per-field exclusion and default checks, a Python
``__eq__`` per model-valued field compared with its default, a serializer call per set).
The functions made here do the same walk with one straight-line statement per field, read
from each model's ``__dict__``; they are generated once, at import, from the model classes,
so a field added to the model is picked up by them too.

What they give is the same data as the pydantic dump of the spec as validation leaves it
(the same keys in the same order, the same values, fresh containers): fields at their
default value and the transient fields are left out, nested models become dicts, sets become
sorted lists, mappings and lists are copied. They also check every value they write (below):
anything they are not sure of (a value validation would not leave there, a missing field)
makes :func:`checked_payload` give None, and the codec then validates the spec as a whole;
an annotation they have no statement for fails at import. Tests compare them with pydantic
on generated specs and on specs changed in place.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union
from uuid import UUID

import annotated_types
import ormsgpack
from pydantic import AfterValidator, AwareDatetime, BaseModel, WrapValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from typing_extensions import TypeAliasType

from specstore.model import (
    TRANSIENT_FIELDS,
    TRANSIENT_GROUP_FIELDS,
    InstanceGroup,
    RequestSpec,
    persisted_payload,
)
from specstore.model.base import MAX_FREEFORM_DEPTH, FreeformMap, SortedDict, StrMap, UtcDatetime
from specstore.model.request_spec import SchedulerHints
from specstore.serializers.envelope import EXT_UUID

_SCALARS = (str, int, float, bool, UUID, dt.datetime, AwareDatetime, type(None))


class _UnsupportedError(Exception):
    """An annotation the generator has no statement for, or a value it is not sure of."""


# -- what goes into a container is checked ----------------------------------------------------
# Assignments are validated by the model (validate_assignment), but what is put into a list,
# set or dict in place is not: ``spec.security_groups.append(5)`` or ``hints["x"] = uuid``
# would be written as it is, giving a document no reader accepts. So every item of a
# container is checked against the declared type (exact types, as validation leaves them;
# bounds of constrained integers; container lengths; the map validators), and anything else
# makes the caller take the general path, which validates the whole spec.

_Kind = tuple[frozenset[type], "int | None"]
"""A scalar item's allowed types and, for integers, the lowest value allowed."""


def _length(value: Any, shortest: int, longest: int | None) -> Any:
    if len(value) < shortest or (longest is not None and len(value) > longest):
        raise _UnsupportedError("length")
    return value


_FREEFORM_SCALARS = frozenset({str, bool, int, float, type(None)})


def _freeform(value: Any, depth: int = 1) -> Any:
    """A copy of a free-form value with plain dicts and lists (what pydantic dumps), checked:
    JSON values only, text keys, nested no deeper than the model allows."""
    kind = type(value)
    if kind in _FREEFORM_SCALARS:
        return value
    if depth > MAX_FREEFORM_DEPTH:
        raise _UnsupportedError("free-form value nested too deep")
    if kind is list:
        return [_freeform(v, depth + 1) for v in value]
    if isinstance(value, dict) and _TEXT.issuperset(map(type, value)):
        return {k: _freeform(v, depth + 1) for k, v in value.items()}
    raise _UnsupportedError(f"free-form {kind.__name__}")


_TEXT = frozenset({str})


def _flat_freeform(value: Any) -> dict[str, Any]:
    """A checked copy of a free-form map (a field's own SortedDict: its keys are in order)
    in canonical order: its nested maps key-sorted too."""
    if type(value) is not SortedDict or not _TEXT.issuperset(map(type, value)):
        raise _UnsupportedError("free-form map")
    if _FREEFORM_SCALARS.issuperset(map(type, value.values())):
        return dict(value)
    return {k: _canonical(_freeform(v, 2)) for k, v in value.items()}  # (the map is depth 1)


def _canonical(value: Any) -> Any:
    """``value`` (plain dicts and lists, checked) with every map key-sorted."""
    if type(value) is list:
        return [_canonical(v) for v in value]
    if type(value) is dict:
        return {k: _canonical(value[k]) for k in sorted(value)}
    return value


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise _UnsupportedError(f"union {annotation!r}")
        return args[0], True
    return annotation, False


def _metadata(annotation: Any) -> tuple[Any, list[Any]]:
    """(base annotation, its metadata with FieldInfo objects opened up)."""
    found: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *meta = typing.get_args(annotation)
        for item in meta:
            found.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return annotation, found


def _is_scalar(annotation: Any) -> bool:
    annotation = _metadata(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        return all(isinstance(a, str) for a in typing.get_args(annotation))
    return (
        isinstance(annotation, type)
        and issubclass(annotation, _SCALARS)
        and not (issubclass(annotation, BaseModel))
    )


_KNOWN_WRAPS = frozenset({typing.get_args(SchedulerHints)[1].func})
"""Wrap validators that only normalise what they are given (a bare hint value to a list) and
sort the map: the declared type, checked strictly, is at least as strict."""
_TO_UTC = frozenset({typing.get_args(UtcDatetime)[1].func})
"""The after validator of datetimes: it only converts them to UTC."""
_SORTING_ONLY = frozenset({typing.get_args(StrMap)[1].func})
"""After validators that only put a map in key order (what a SortedDict keeps itself)."""
_DONE_BY_FREEFORM = frozenset({typing.get_args(FreeformMap)[1].func})
"""The free-form map's validator: :func:`_flat_freeform` checks and orders what it does."""


def _item_kind(annotation: Any) -> _Kind:
    """The check of a scalar item (in a container) declared as ``annotation``."""
    base, meta = _metadata(annotation)
    lowest: int | None = None
    for item in meta:
        if isinstance(item, annotated_types.Ge) and type(item.ge) is int:
            lowest = item.ge
        elif isinstance(item, annotated_types.Gt) and type(item.gt) is int:
            lowest = item.gt + 1
        else:
            raise _UnsupportedError(f"item constraint {item!r}")
    if base in (str, UUID, bool) and lowest is None:
        return frozenset({base}), None
    if base is int:
        return frozenset({int}), lowest
    raise _UnsupportedError(f"container item {annotation!r}")


_UUID_EXT = f"_Ext({EXT_UUID}, {{var}}.int.to_bytes(16, 'big'))"


def _expression(annotation: Any, var: str, names: dict[str, Any], make: Callable[..., str]) -> str:
    """Python text that dumps ``var`` declared as ``annotation`` (never None here)."""
    base, meta = _metadata(annotation)
    if meta:
        return _constrained(base, meta, var, names, make)
    if annotation is UUID and names["_uuid_ext"]:
        return f"({_UUID_EXT.format(var=var)} if type({var}) is _UUID else _unsure())"
    if _is_scalar(annotation):
        return _checked_scalar(annotation, [], var, names)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"{make(annotation)}({var})"
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if item is UUID and names["_uuid_ext"]:
            inner = f"{_UUID_EXT.format(var='x')} if type(x) is _UUID else _unsure()"
        elif _is_scalar(item):
            check = _items_check(item, var, names)
            return f"(list({var}) if type({var}) is list and {check} else _unsure())"
        else:
            inner = _expression(item, "x", names, make)
        return f"[{inner} for x in ({var} if type({var}) is list else _unsure())]"
    if origin is dict:
        key, value = typing.get_args(annotation)
        if isinstance(value, TypeAliasType):
            return f"_flat_freeform({var})"
        keys = f"isinstance({var}, dict) and {_items_check(key, var, names)}"
        if _is_scalar(value):
            values = _items_check(value, f"{var}.values()", names)
            return f"(dict({var}) if {keys} and {values} else _unsure())"
        inner = _expression(value, "x", names, make)
        return f"{{k: {inner} for k, x in ({var} if {keys} else _unsure()).items()}}"
    raise _UnsupportedError(f"annotation {annotation!r}")


def _constrained(
    base: Any, meta: list[Any], var: str, names: dict[str, Any], make: Callable[..., str]
) -> str:
    """:func:`_expression` of ``base`` under the metadata ``meta`` (constraints, validators
    and the sorted serializer of sets)."""
    if _is_scalar(base):
        return _checked_scalar(base, meta, var, names)
    if typing.get_origin(base) is set:
        if not any(getattr(m, "func", None) is sorted for m in meta):
            raise _UnsupportedError(f"set without the sorted serializer: {base!r}")
        (item,) = typing.get_args(base)
        check = _items_check(item, var, names)
        return f"(sorted({var}) if type({var}) is set and {check} else _unsure())"
    expr = _expression(base, var, names, make)
    for item in meta:
        if isinstance(item, annotated_types.MinLen):
            expr = f"_length({expr}, {item.min_length}, None)"
        elif isinstance(item, annotated_types.MaxLen):
            expr = f"_length({expr}, 0, {item.max_length})"
        elif isinstance(item, AfterValidator) and item.func in _DONE_BY_FREEFORM:
            pass
        elif isinstance(item, AfterValidator):
            function = f"_after_{len(names)}"
            names[function] = item.func
            if item.func in _SORTING_ONLY:  # a SortedDict is in order already
                expr = f"({expr} if type({var}) is _SortedDict else {function}({expr}))"
            else:
                expr = f"{function}({expr})"  # (it checks, and gives the canonical order)
        elif isinstance(item, WrapValidator) and item.func in _KNOWN_WRAPS:
            expr = f"({expr} if type({var}) is _SortedDict else _unsure())"  # (its map, sorted)
        else:
            raise _UnsupportedError(f"metadata {item!r} of {base!r}")
    return expr


def _checked_scalar(base: Any, meta: list[Any], var: str, names: dict[str, Any]) -> str:
    """Python text giving ``var`` (a field's own scalar value) when it is what validation
    leaves there -- its exact type, within its bounds -- and raising otherwise: a value put in
    by ``model_copy(update=...)``, ``model_construct`` or ``__dict__`` was never validated."""
    checks: list[str] = []
    if typing.get_origin(base) is Literal:
        name = f"_literal_{len(names)}"
        names[name] = frozenset(typing.get_args(base))
        checks.append(f"type({var}) is str and {var} in {name}")
    elif base is UUID:
        checks.append(f"type({var}) is _UUID")
    elif base in (dt.datetime, AwareDatetime):
        checks.append(f"type({var}) is _datetime and {var}.tzinfo is _utc")
    elif base in (str, int, float, bool):
        checks.append(f"type({var}) is {base.__name__}")
    else:
        raise _UnsupportedError(f"scalar {base!r}")
    for item in meta:
        if isinstance(item, annotated_types.Ge):
            checks.append(f"{var} >= {item.ge!r}")
        elif isinstance(item, annotated_types.Gt):
            checks.append(f"{var} > {item.gt!r}")
        elif isinstance(item, annotated_types.MinLen):
            checks.append(f"len({var}) >= {item.min_length}")
        elif isinstance(item, annotated_types.MaxLen):
            checks.append(f"len({var}) <= {item.max_length}")
        elif isinstance(item, AfterValidator) and item.func in _TO_UTC:
            pass  # (the type check asks for UTC)
        elif not isinstance(item, annotated_types.Timezone):
            raise _UnsupportedError(f"scalar constraint {item!r}")
    return f"({var} if {' and '.join(checks)} else _unsure())"


def _items_check(annotation: Any, items: str, names: dict[str, Any]) -> str:
    """Python text that is true when every item of ``items`` (scalars) is as ``annotation``
    declares it: its exact type, and the lowest value of a constrained integer."""
    types, lowest = _item_kind(annotation)
    name = f"_types_{len(names)}"
    names[name] = types
    check = f"{name}.issuperset(map(type, {items}))"
    if lowest is not None:
        check += f" and (not {items} or min({items}) >= {lowest})"
    return check


def _unsure() -> Any:
    raise _UnsupportedError("item")


def _field_annotation(info: FieldInfo) -> Any:
    if info.metadata:
        return typing.Annotated[(info.annotation, *info.metadata)]
    return info.annotation


class _Generator:
    """Builds one dump function per (model class, excluded fields)."""

    def __init__(self, *, uuid_ext: bool = False) -> None:
        self.names: dict[str, Any] = {
            "_uuid_ext": uuid_ext,
            "_Ext": ormsgpack.Ext,
            "_UUID": UUID,
            "_freeform": _freeform,
            "_flat_freeform": _flat_freeform,
            "_length": _length,
            "_unsure": _unsure,
            "_SortedDict": SortedDict,
            "_datetime": dt.datetime,
            "_utc": dt.timezone.utc,
            "_UnsupportedError": _UnsupportedError,
        }
        self.lines: list[str] = []
        self.made: dict[tuple[type[BaseModel], frozenset[str]], str] = {}

    def function(
        self,
        model: type[BaseModel],
        exclude: frozenset[str] = frozenset(),
        nested_exclude: dict[str, frozenset[str]] | None = None,
    ) -> str:
        key = (model, exclude)
        if key in self.made:
            return self.made[key]
        name = f"_dump_{model.__name__}_{len(self.made)}"
        self.made[key] = name
        self.names[f"_cls_{name}"] = model
        body = [
            f"def {name}(m):",
            f"    if type(m) is not _cls_{name}:",
            "        raise _UnsupportedError(type(m).__name__)",
            "    d = m.__dict__",
            "    out = {}",
        ]
        for field, info in model.model_fields.items():
            if field in exclude:
                continue
            annotation, optional = _strip_optional(_field_annotation(info))
            if typing.get_origin(annotation) is typing.Annotated:
                inner, meta = typing.get_args(annotation)[0], typing.get_args(annotation)[1:]
                inner, inner_optional = _strip_optional(inner)
                if inner_optional:
                    optional = True
                    annotation = typing.Annotated[(inner, *meta)]
            sub = (nested_exclude or {}).get(field, frozenset())

            def make(cls: type[BaseModel], sub: frozenset[str] = sub) -> str:
                return self.function(cls, sub)

            expr = _expression(annotation, "v", self.names, make)
            body.append(f"    v = d[{field!r}]")
            factory = info.default_factory
            default = info.default if factory is None else factory()  # type: ignore[call-arg]
            if default is PydanticUndefined:
                condition = None
            elif default is None:
                condition = "v is not None"
            else:
                self.names[f"_default_{name}_{field}"] = default
                condition = f"v != _default_{name}_{field}"
            if optional and default is not None:
                expr = f"None if v is None else {expr}"
            assignment = f"out[{field!r}] = {expr}"
            if condition is None:
                body.append(f"    {assignment}")
            else:
                body.append(f"    if {condition}:")
                body.append(f"        {assignment}")
        body.append("    return out")
        self.lines.extend(body)
        self.lines.append("")
        return name

    def build(self, name: str) -> Callable[[Any], dict[str, Any]]:
        exec("\n".join(self.lines), self.names)  # the text made above from the model
        built: Callable[[Any], dict[str, Any]] = self.names[name]
        return built


def _make(*, uuid_ext: bool = False) -> Callable[[Any], dict[str, Any]]:
    generator = _Generator(uuid_ext=uuid_ext)
    name = generator.function(
        RequestSpec,
        frozenset(TRANSIENT_FIELDS),
        {"instance_group": frozenset(TRANSIENT_GROUP_FIELDS)},
    )
    assert "instance_group" in RequestSpec.model_fields
    assert RequestSpec.model_fields["instance_group"].annotation == InstanceGroup | None
    return generator.build(name)


_DUMP = _make()
_DUMP_EXT = _make(uuid_ext=True)


def fast_payload(spec: RequestSpec) -> dict[str, Any]:
    """``persisted_payload(spec)`` (python mode), built without pydantic's serializer."""
    try:
        return _DUMP(spec)
    except Exception:  # anything unusual: pydantic's dump decides (or raises)
        return persisted_payload(spec)


def checked_payload(spec: RequestSpec) -> dict[str, Any] | None:
    """:func:`fast_payload` when the generated builder vouches for the spec (every container
    item checked); None otherwise (the caller validates the spec)."""
    try:
        return _DUMP(spec)
    except Exception:
        return None


def msgpack_payload(spec: RequestSpec) -> dict[str, Any] | None:
    """:func:`fast_payload` with UUIDs already as msgpack extension values (what the fast
    writer packs without a Python call back per UUID); None when the generated function
    cannot say (the caller then takes the general path)."""
    try:
        return _DUMP_EXT(spec)
    except Exception:
        return None
