"""What a library user reaches from ``import specstore`` in the first five minutes."""

from __future__ import annotations

import dataclasses

import pytest

import specstore
from specstore import RequestContext, SpecStore


@pytest.mark.parametrize(
    "name",
    [
        "Flavor",
        "ImageMeta",
        "InstanceGroup",
        "InstanceNUMACell",
        "InstanceNUMATopology",
        "InstancePCIRequest",
        "InstancePCIRequests",
        "RequestGroup",
        "SchedulerRetries",
        "Destination",
        "InvalidInputError",
        "InvalidUUIDError",
        "RequestSpec",
        "SpecStore",
    ],
)
def test_model_parts_and_errors_are_importable_from_specstore(name: str) -> None:
    assert name in specstore.__all__
    assert getattr(specstore, name) is not None


def test_spec_store_is_a_context_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    with SpecStore.from_url("memory://public-api") as store:
        assert isinstance(store, SpecStore)
        monkeypatch.setattr(store.topology, "close", lambda: closed.append(True))
    assert closed == [True]


def test_the_context_names_its_store_store() -> None:
    store = SpecStore.from_url("memory://public-api-ctx")
    ctx = RequestContext(project_id="p", store=store)
    assert ctx.store is store and ctx.require_store() is store
    assert [f.name for f in dataclasses.fields(RequestContext)][-1] == "store"
    with pytest.raises(TypeError):
        RequestContext(specs=store)  # type: ignore[call-arg]
    store.close()
