"""Specs for instances that predate persistence: minimal specs and the online migration."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from specstore import RequestContext, SpecStore
from specstore.errors import BackendError, InvalidInputError, InvalidUUIDError
from specstore.legacy import (
    InstanceRecord,
    MigrationBatchResult,
    ensure_spec,
    migrate_instances,
    spec_from_instance,
)
from specstore.model import RequestSpec, strip_transient
from tests.factories import flavor, typical_spec

UID = uuid.UUID("0c4e8a7e-1b2d-4f3a-9c5b-6d7e8f901234")


def full_record(uid: uuid.UUID = UID) -> InstanceRecord:
    spec = typical_spec(uid)
    return InstanceRecord(
        uuid=uid,
        project_id="project-9",
        user_id="user-9",
        availability_zone="az3",
        flavor=flavor("m1.medium", 4096, 2),
        image_meta=spec.image,
        numa_topology=spec.numa_topology,
        pci_requests=spec.pci_requests,
    )


def records(count: int, seed: int = 7) -> list[InstanceRecord]:
    rng = random.Random(seed)
    result = [
        InstanceRecord(uuid=uuid.UUID(int=rng.getrandbits(128), version=4), flavor=flavor())
        for _ in range(count)
    ]
    rng.shuffle(result)
    return result


def test_spec_from_instance_copies_the_instance_fields() -> None:
    record = full_record()
    spec = spec_from_instance(record)
    assert spec.instance_uuid == UID
    assert (spec.project_id, spec.user_id, spec.availability_zone) == (
        "project-9", "user-9", "az3"
    )
    assert spec.flavor.name == "m1.medium"
    assert spec.flavor.memory_mb == 4096
    assert spec.image is not None
    assert spec.image.properties["os_distro"] == "ubuntu"
    assert spec.numa_topology is not None
    assert [c.pcpuset for c in spec.numa_topology.cells] == [{0, 1}, {2, 3}]
    assert spec.pci_requests is not None
    assert spec.pci_requests.requests[0].alias_name == "nic1"
    assert spec.num_instances == 1
    # nothing the record cannot tell is invented
    assert spec.instance_group is None
    assert spec.scheduler_hints == {}
    assert spec.force_hosts is None
    assert spec.force_nodes is None
    assert spec.is_bfv is False
    assert spec == strip_transient(spec)
    # the spec owns its values
    record.flavor.extra_specs["hw:cpu_policy"] = "shared"
    assert spec.flavor.extra_specs["hw:cpu_policy"] == "dedicated"


def test_spec_from_a_bare_record() -> None:
    spec = spec_from_instance(InstanceRecord(uuid=UID, flavor=flavor()))
    assert spec == RequestSpec(instance_uuid=UID, flavor=flavor(), num_instances=1)
    assert spec.image is None
    assert spec.project_id is None


def test_instance_record_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="scheduler_hints"):
        InstanceRecord.model_validate(
            {"uuid": str(UID), "flavor": flavor().model_dump(), "scheduler_hints": {}}
        )


def test_ensure_spec_is_idempotent(store: SpecStore, ctx: RequestContext) -> None:
    record = full_record()
    assert ensure_spec(store, ctx, record) is True
    assert ensure_spec(store, ctx, record) is False
    stored = store.get(ctx, UID)
    assert stored.rev == 1  # the second call wrote nothing
    assert stored.spec == spec_from_instance(record)
    assert store.locate(UID) == "api"


def test_ensure_spec_leaves_an_existing_spec_alone(store: SpecStore, ctx: RequestContext) -> None:
    booted = typical_spec(UID)
    store.create(ctx, booted)
    store.promote(ctx, UID, "cell1")
    assert ensure_spec(store, ctx, full_record()) is False  # lives in cell1: no api copy
    assert ensure_spec(store, ctx.target_cell("cell1"), full_record()) is False
    stored = store.get(ctx.target_cell("cell1"), UID)
    assert stored.rev == 1
    assert stored.spec == strip_transient(booted)
    assert store.locate(UID) == "cell1"


def test_ensure_spec_in_a_cell(store: SpecStore, ctx: RequestContext) -> None:
    cell1 = ctx.target_cell("cell1")
    assert ensure_spec(store, cell1, full_record()) is True
    assert store.locate(UID) == "cell1"
    assert store.get(cell1, UID).spec.availability_zone == "az3"


def test_concurrent_ensure_spec_creates_once(store: SpecStore, ctx: RequestContext) -> None:
    record = full_record()
    barrier = threading.Barrier(6)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        created = ensure_spec(store, ctx, record)
        with lock:
            outcomes.append(created)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == [False] * 5 + [True]
    assert store.get(ctx, UID).rev == 1


def run_to_completion(
    store: SpecStore, ctx: RequestContext, recs: list[InstanceRecord], batch_size: int,
    marker: str | None = None,
) -> Iterator[MigrationBatchResult]:
    while True:
        result = migrate_instances(store, ctx, recs, batch_size=batch_size, marker=marker)
        yield result
        if result.marker is None:
            return
        marker = result.marker


def test_batches_resume_from_the_marker(store: SpecStore, ctx: RequestContext) -> None:
    recs = records(23)
    ordered = sorted(str(r.uuid) for r in recs)
    for present in (ordered[1], ordered[7], ordered[22]):  # already booted with a spec
        store.create(ctx, typical_spec(present))

    results = list(run_to_completion(store, ctx, recs, batch_size=5))

    assert [(r.created, r.already_present, r.marker) for r in results] == [
        (4, 1, ordered[4]),
        (4, 1, ordered[9]),
        (5, 0, ordered[14]),
        (5, 0, ordered[19]),
        (2, 1, None),
    ]
    assert sum(r.processed for r in results) == 23
    found = store.get_many(ctx, ordered)
    assert len(found.found) == 23
    assert found.missing == []
    assert {s.rev for s in found.found} == {1}
    # the specs that existed kept their boot data; the others are minimal
    by_uid = {str(s.spec.instance_uuid): s.spec for s in found.found}
    assert by_uid[ordered[7]].availability_zone == "az1"
    assert by_uid[ordered[8]].availability_zone is None
    # a full re-run finds everything present
    again = migrate_instances(store, ctx, recs, batch_size=100)
    assert again == MigrationBatchResult(0, 23, None)


def test_interrupted_batch_rerun_creates_the_rest_without_duplicates(
    store: SpecStore, ctx: RequestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = records(17, seed=11)
    ordered = sorted(str(r.uuid) for r in recs)
    first = migrate_instances(store, ctx, recs, batch_size=6)
    assert (first.created, first.already_present, first.marker) == (6, 0, ordered[5])

    real_create = store.create
    calls = {"n": 0}

    def create_then_fail(c: RequestContext, spec: RequestSpec) -> int:
        calls["n"] += 1
        if calls["n"] == 4:  # the connection drops during the 4th create of the batch
            raise BackendError("create", ConnectionError("reset"), may_have_written=False)
        return real_create(c, spec)

    monkeypatch.setattr(store, "create", create_then_fail)
    with pytest.raises(BackendError):
        migrate_instances(store, ctx, recs, batch_size=6, marker=first.marker)
    monkeypatch.undo()
    assert store.get_many(ctx, ordered[6:9]).missing == []
    assert store.get_many(ctx, ordered[9:]).missing == ordered[9:]

    # the caller still holds the last marker it got: re-run the interrupted batch
    results = list(run_to_completion(store, ctx, recs, batch_size=6, marker=first.marker))
    assert [(r.created, r.already_present, r.marker) for r in results] == [
        (3, 3, ordered[11]),
        (5, 0, None),
    ]
    found = store.get_many(ctx, ordered)
    assert len(found.found) == 17
    assert {s.rev for s in found.found} == {1}
    keys = {k.decode() for k in store.client.scan_iter(match="*", count=1000)}
    assert len(keys) == 2 * 17  # one spec and one location record each, no copies


def test_marker_edge_cases(store: SpecStore, ctx: RequestContext) -> None:
    recs = records(10, seed=3)
    ordered = sorted(str(r.uuid) for r in recs)
    exact = migrate_instances(store, ctx, recs, batch_size=5, marker=ordered[4])
    assert exact == MigrationBatchResult(5, 0, None)  # nothing left: no empty extra call
    assert migrate_instances(store, ctx, recs, marker=ordered[9]) == MigrationBatchResult(
        0, 0, None
    )
    assert migrate_instances(store, ctx, [], batch_size=3) == MigrationBatchResult(0, 0, None)
    first = next(r for r in recs if str(r.uuid) == ordered[0])
    twice = [first, first.model_copy(update={"availability_zone": "az-dup"})]
    result = migrate_instances(store, ctx, twice, batch_size=5)
    assert result == MigrationBatchResult(1, 0, None)  # a uuid listed twice is processed once
    assert store.get(ctx, first.uuid).spec.availability_zone is None  # the first one wins
    upper = migrate_instances(store, ctx, recs, batch_size=1, marker=ordered[0].upper())
    assert upper.marker == ordered[1]
    with pytest.raises(InvalidUUIDError):
        migrate_instances(store, ctx, recs, marker="not-a-uuid")
    with pytest.raises(InvalidInputError, match="batch_size must be at least 1, got 0"):
        migrate_instances(store, ctx, recs, batch_size=0)
