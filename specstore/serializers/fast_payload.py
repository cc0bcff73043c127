"""The persisted payload of a spec, built by plain Python generated from the model's fields.

:func:`specstore.model.persisted_payload` asks pydantic for ``model_dump(mode="python",
exclude=<transient>, exclude_defaults=True)``. On the typical spec most of that time goes to
pydantic-core's general machinery (per-field exclusion and default checks, a Python
``__eq__`` per model-valued field compared with its default, a serializer call per set).
The functions made here do the same walk with one straight-line statement per field, read
from each model's ``__dict__``; they are generated once, at import, from the model classes,
so a field added to the model is picked up by them too.

What they give is the same data as the pydantic dump (the same keys in the same order, the
same values, fresh containers): fields at their default value and the transient fields are
left out, nested models become dicts, sets become sorted lists, mappings and lists are
copied. Anything they are not sure of (a value of another type than the model declares, a
missing field, an unknown annotation) makes :func:`fast_payload` give pydantic's own dump
instead; tests compare the two on generated specs.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union
from uuid import UUID

import ormsgpack
from pydantic import AwareDatetime, BaseModel
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
from specstore.model.base import MAX_FREEFORM_DEPTH
from specstore.serializers.envelope import EXT_UUID

_SCALARS = (str, int, float, bool, UUID, dt.datetime, AwareDatetime, type(None))


class _UnsupportedError(Exception):
    """An annotation the generator has no statement for."""


def _freeform(value: Any, depth: int = 0) -> Any:
    """A copy of a free-form value with plain dicts and lists (what pydantic dumps)."""
    kind = type(value)
    if depth > MAX_FREEFORM_DEPTH + 1:
        raise _UnsupportedError("free-form value nested too deep for the fast path")
    if kind is list:
        return [_freeform(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _freeform(v, depth + 1) for k, v in value.items()}
    return value


def _flat_freeform(value: dict[str, Any]) -> dict[str, Any]:
    for item in value.values():
        if type(item) is list or isinstance(item, dict):
            result: dict[str, Any] = _freeform(value)
            return result
    return dict(value)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise _UnsupportedError(f"union {annotation!r}")
        return args[0], True
    return annotation, False


def _is_scalar(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Literal:
        return all(isinstance(a, str) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_scalar(typing.get_args(annotation)[0])
    return (
        isinstance(annotation, type)
        and issubclass(annotation, _SCALARS)
        and not (issubclass(annotation, BaseModel))
    )


def _expression(annotation: Any, var: str, names: dict[str, Any], make: Callable[..., str]) -> str:
    """Python text that dumps ``var`` declared as ``annotation`` (never None here)."""
    origin = typing.get_origin(annotation)
    if annotation is UUID and names["_uuid_ext"]:
        return f"_Ext({EXT_UUID}, {var}.int.to_bytes(16, 'big')) if type({var}) is _UUID else {var}"
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        if typing.get_origin(base) is set:
            if not any(getattr(m, "func", None) is sorted for m in meta):
                raise _UnsupportedError(f"set without the sorted serializer: {annotation!r}")
            return f"sorted({var})"
        return _expression(base, var, names, make)
    if _is_scalar(annotation):
        return var
    if isinstance(annotation, TypeAliasType):
        return f"_freeform({var})"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"{make(annotation)}({var})"
    if origin is list:
        (item,) = typing.get_args(annotation)
        if _is_scalar(item) and not (item is UUID and names["_uuid_ext"]):
            return f"list({var})"
        inner = _expression(item, "x", names, make)
        return f"[{inner} for x in {var}]"
    if origin is dict:
        key, value = typing.get_args(annotation)
        if not _is_scalar(key):
            raise _UnsupportedError(f"dict key {key!r}")
        if isinstance(value, TypeAliasType):
            return f"_flat_freeform({var})"
        if _is_scalar(value):
            return f"dict({var})"
        inner = _expression(value, "x", names, make)
        return f"{{k: {inner} for k, x in {var}.items()}}"
    raise _UnsupportedError(f"annotation {annotation!r}")


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


def msgpack_payload(spec: RequestSpec) -> dict[str, Any] | None:
    """:func:`fast_payload` with UUIDs already as msgpack extension values (what the fast
    writer packs without a Python call back per UUID); None when the generated function
    cannot say (the caller then takes the general path)."""
    try:
        return _DUMP_EXT(spec)
    except Exception:
        return None
