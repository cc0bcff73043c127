"""What was put into a spec's lists, sets and maps in place is checked before it is written.

Assignments are validated by the model, in-place changes are not
(``spec.security_groups.append(5)``, ``spec.scheduler_hints["x"] = some_uuid``). Written as they
are, they would give a document no reader accepts: every later ``get`` of the spec would fail.
The expected outcome of each change comes from the model itself (pydantic validating the spec's
persisted fields), not from the writer's own checks: a spec the model refuses is refused with
:class:`InvalidSpecError` and nothing is written; one it accepts is written as validation
leaves it (normalised, in canonical order).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from specstore import RequestContext, SpecStore
from specstore.errors import InvalidSpecError
from specstore.model import InstanceNUMACell, RequestSpec, persisted_exclude
from specstore.serializers import DEFAULT_CODEC, json_codec
from tests.factories import typical_spec

Change = Callable[[RequestSpec], object]


def _cells(spec: RequestSpec) -> Any:
    assert spec.numa_topology is not None
    return spec.numa_topology.cells


def _pci_spec(spec: RequestSpec) -> Any:
    assert spec.pci_requests is not None
    return spec.pci_requests.requests[0].spec


def _properties(spec: RequestSpec) -> Any:
    assert spec.image is not None
    return spec.image.properties


def _rules(spec: RequestSpec) -> Any:
    assert spec.instance_group is not None
    return spec.instance_group.rules


def _nested(depth: int, kind: str = "map") -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value} if kind == "map" else [value]
    return value


def _deep_property(depth: int, kind: str) -> Change:
    """An image property nested ``depth`` levels (the model allows 16 from the map down)."""
    return lambda spec: _properties(spec).__setitem__("n", _nested(depth, kind))


def _set(model: Any, field: str, value: object) -> None:
    """Put ``value`` in a field's slot without validation (as model_construct and
    model_copy(update=...) do)."""
    model.__dict__[field] = value


CHANGES: dict[str, Change] = {
    "security group int": lambda s: s.security_groups.append(5),  # type: ignore[arg-type]
    "security group text": lambda s: s.security_groups.append("web"),
    "extra spec int": lambda s: s.flavor.extra_specs.__setitem__("x", 7),  # type: ignore[assignment]
    "extra spec text": lambda s: s.flavor.extra_specs.__setitem__("a:first", "1"),
    "hint bare uuid": lambda s: s.scheduler_hints.__setitem__("group", uuid.uuid4()),  # type: ignore[assignment]
    "hint bare text": lambda s: s.scheduler_hints.__setitem__("build_near", "host-1"),  # type: ignore[assignment]
    "hint list int": lambda s: s.scheduler_hints["same_host"].append(3),  # type: ignore[arg-type]
    "pcpu negative": lambda s: _cells(s)[0].pcpuset.add(-1),
    "pcpu bool": lambda s: _cells(s)[0].pcpuset.add(True),
    "pcpu text": lambda s: _cells(s)[0].pcpuset.add("7"),
    "pinning text key": lambda s: _cells(s)[0].cpu_pinning.__setitem__("0", 1),
    "no cells": lambda s: _cells(s).clear(),
    "cell as a dict": lambda s: _cells(s).append({"id": 5, "memory": 512}),
    "cell as junk": lambda s: _cells(s).append("cell"),
    "unknown group rule": lambda s: _rules(s).__setitem__("bogus", "1"),
    "zero server limit": lambda s: _rules(s).__setitem__("max_server_per_host", "0"),
    "property too deep": lambda s: _properties(s).__setitem__("deep", _nested(20)),
    "property bytes": lambda s: _properties(s).__setitem__("blob", b"x"),
    "property set": lambda s: _properties(s).__setitem__("cores", {1, 2}),
    "property int key": lambda s: _properties(s).__setitem__("m", {1: "a"}),
    "property nested unsorted": lambda s: _properties(s).__setitem__(
        "n", {"b": 1, "a": [1, {"d": 2, "c": None}]}
    ),
    "pci spec unsorted": lambda s: _pci_spec(s).append({"b": "1", "a": "2"}),
    "pci spec int": lambda s: _pci_spec(s).append({"a": 1}),
    **{
        f"property {kind} nested {depth} deep": _deep_property(depth, kind)
        for depth in (14, 15, 16)
        for kind in ("map", "list")
    },
    "num_instances zero": lambda s: _set(s, "num_instances", 0),
    "num_instances text": lambda s: _set(s, "num_instances", "2"),
    "vcpus text": lambda s: _set(s.flavor, "vcpus", "4"),
    "flavor name empty": lambda s: _set(s.flavor, "name", ""),
    "uuid as text": lambda s: _set(s, "instance_uuid", str(s.instance_uuid)),
    "policy unknown": lambda s: _set(s.instance_group, "policy", "spread"),
    "bfv as int": lambda s: _set(s, "is_bfv", 1),
    "image date naive": lambda s: _set(s.image, "created_at", dt.datetime(2024, 1, 1)),
    "image date not utc": lambda s: _set(
        s.image, "created_at", dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ),
    "hints a plain dict": lambda s: _set(s, "scheduler_hints", {"zz": ["1"], "aa": ["2"]}),
    "cell built unchecked": lambda s: _cells(s).append(
        InstanceNUMACell.model_construct(id=-1, memory=512)
    ),
    "transient junk": lambda s: s.requested_resources.append(5),  # type: ignore[arg-type]
    "group members junk": lambda s: s.instance_group.members.append(5),  # type: ignore[union-attr,arg-type]
}


def _as_the_model_has_it(spec: RequestSpec) -> RequestSpec | None:
    """The spec as the model validates its persisted fields, or None when it refuses them
    (or cannot even dump them: a set of values that do not sort)."""
    try:
        dumped = spec.model_dump(
            exclude=persisted_exclude(spec), exclude_defaults=True, warnings=False
        )
        return RequestSpec.model_validate(dumped)
    except (ValidationError, PydanticSerializationError):
        return None


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_an_in_place_change_is_written_as_the_model_has_it_or_refused(name: str) -> None:
    spec = typical_spec()
    CHANGES[name](spec)
    expected = _as_the_model_has_it(spec)
    if expected is None:
        with pytest.raises(InvalidSpecError):
            DEFAULT_CODEC.encode(spec)
        with pytest.raises(InvalidSpecError):
            json_codec.dumps(spec)
        return
    doc = DEFAULT_CODEC.encode(spec)
    assert doc == DEFAULT_CODEC.encode(expected)  # canonical: the bytes of the validated spec
    assert DEFAULT_CODEC.decode(doc) == expected
    assert json_codec.loads(json_codec.dumps(spec)) == expected


def test_the_table_has_both_outcomes() -> None:
    outcomes = set()
    for change in CHANGES.values():
        spec = typical_spec()
        change(spec)
        outcomes.add(_as_the_model_has_it(spec) is None)
    assert outcomes == {True, False}


_JUNK: st.SearchStrategy[Any] = st.sampled_from(
    [
        5,
        -1,
        0,
        True,
        1.5,
        "text",
        "",
        None,
        b"x",
        uuid.UUID(int=7),
        {"a": 1},
        {1: 2},
        ["x"],
        [3],
        set(),
        {"z": "1", "a": "2"},
    ]
)


def _targets(spec: RequestSpec) -> list[Any]:
    """Every container of the typical spec that code could change in place."""
    cell = _cells(spec)[0]
    return [
        spec.security_groups,
        spec.flavor.extra_specs,
        spec.scheduler_hints,
        spec.scheduler_hints["same_host"],
        cell.pcpuset,
        cell.cpuset,
        cell.cpu_pinning,
        _cells(spec),
        _rules(spec),
        _properties(spec),
        _pci_spec(spec),
        _pci_spec(spec)[0],
    ]


def _put(container: Any, key: Any, value: Any) -> None:
    if isinstance(container, list):
        container.append(value)
    elif isinstance(container, set):
        try:
            container.add(value)
        except TypeError:  # unhashable
            container.add(str(value))
    else:
        try:
            container[key] = value
        except TypeError:  # keys that do not compare: left unsorted by SortedDict
            dict.__setitem__(container, key, value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 11), st.sampled_from(["k", "a", 3, "same_host"]), _JUNK),
        min_size=1,
        max_size=3,
    )
)
def test_any_in_place_changes_are_written_as_the_model_has_them_or_refused(
    changes: list[tuple[int, Any, Any]],
) -> None:
    spec = typical_spec()
    targets = _targets(spec)  # (a container replaced by a change stays a target, detached)
    for target, key, value in changes:
        _put(targets[target], key, value)
    expected = _as_the_model_has_it(spec)
    if expected is None:
        with pytest.raises(InvalidSpecError):
            DEFAULT_CODEC.encode(spec)
    else:
        doc = DEFAULT_CODEC.encode(spec)
        assert doc == DEFAULT_CODEC.encode(expected)
        assert DEFAULT_CODEC.decode(doc) == expected


@pytest.fixture
def store() -> SpecStore:
    return SpecStore.from_url(f"memory://in-place-{uuid.uuid4().hex}")


def test_a_refused_save_leaves_the_stored_spec_as_it_was(store: SpecStore) -> None:
    ctx = RequestContext(store=store)
    spec = typical_spec()
    store.create(ctx, spec)
    before = store.get(ctx, spec.instance_uuid)
    spec.security_groups.append(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError, match="security_groups"):
        store.save(ctx, spec)
    after = store.get(ctx, spec.instance_uuid)
    assert (after.rev, after.spec) == (before.rev, before.spec)


def test_a_batch_holding_a_refused_spec_writes_nothing(store: SpecStore) -> None:
    ctx = RequestContext(store=store)
    good, bad = typical_spec(), typical_spec()
    bad.flavor.extra_specs["x"] = 7  # type: ignore[assignment]
    with pytest.raises(InvalidSpecError):
        store.create_many(ctx, [good, bad])
    assert store.locate(good.instance_uuid) is None
    assert store.locate(bad.instance_uuid) is None
    with pytest.raises(InvalidSpecError):
        store.create(ctx, bad)
    assert store.locate(bad.instance_uuid) is None
