"""``specstore demo``: the lifecycle of one server's request spec, narrated.

boot -> api store -> schedule -> promote -> resize -> revert -> migrate -> evacuate ->
rebuild with a new image -> export.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable

from specstore.bulk import export_specs
from specstore.context import RequestContext
from specstore.core.records import reply_text
from specstore.errors import WrongStoreError
from specstore.model import (
    Flavor,
    ImageMeta,
    InstanceGroup,
    InstanceNUMACell,
    InstanceNUMATopology,
    RequestSpec,
    SchedulerRetries,
)
from specstore.moves import operations as move_ops
from specstore.store import SpecStore

Printer = Callable[[str], None]


def boot_request(instance_uuid: uuid.UUID) -> RequestSpec:
    """What the API builds when a user boots a server into an anti-affinity group."""
    return RequestSpec(
        instance_uuid=instance_uuid,
        project_id="demo-project",
        user_id="demo-user",
        availability_zone="az1",
        flavor=Flavor(
            flavorid="m1.medium",
            name="m1.medium",
            memory_mb=4096,
            vcpus=2,
            root_gb=40,
            extra_specs={"hw:cpu_policy": "dedicated", "trait:HW_CPU_X86_AVX2": "required"},
        ),
        image=ImageMeta(
            id=uuid.UUID("0512bd13-1107-2231-1710-cf5327ac435a"),
            name="ubuntu-24.04",
            disk_format="qcow2",
            container_format="bare",
            properties={
                "hw_disk_bus": "scsi",
                "hw_scsi_model": "virtio-scsi",
                "os_distro": "ubuntu",
            },
        ),
        numa_topology=InstanceNUMATopology(
            cells=[
                InstanceNUMACell(id=0, memory=4096, pcpuset={0, 1}, cpu_policy="dedicated"),
            ]
        ),
        instance_group=InstanceGroup(
            uuid=uuid.UUID("008a05a6-c464-7159-c324-c9859b810e76"),
            name="web",
            policy="anti-affinity",
            rules={"max_server_per_host": "1"},
            members=[str(instance_uuid)],
        ),
        scheduler_hints={"different_host": ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"]},
        retry=SchedulerRetries(num_attempts=1),
    )


def _keys(store: SpecStore, uid: str) -> list[str]:
    found: list[str] = []
    for backend in store.topology.backends():
        for key in backend.client.scan_iter(match=f"{backend.keys.prefix}:*{{{uid}}}"):
            found.append(reply_text(key))
    return sorted(found)


def run_demo(
    store: SpecStore,
    where: str,
    print_line: Printer,
    keep: bool = False,
    kept_hint: Callable[[str], str] | None = None,
) -> None:
    """Narrate one spec's lifecycle; with ``keep``, leave it and print ``kept_hint(uuid)``."""
    out = print_line
    uid = uuid.uuid4()
    ctx = RequestContext(project_id="demo-project", user_id="demo-user", store=store)
    out(f"specstore demo on {where}")
    out("")

    spec = boot_request(uid)
    out(
        f"1. boot: server {uid} asks for {spec.flavor.name} in {spec.availability_zone}, "
        f"server group {spec.instance_group.name if spec.instance_group else '-'} "
        f"({spec.instance_group.policy if spec.instance_group else '-'}), "
        f"hints {sorted(spec.scheduler_hints)}"
    )
    spec.create(ctx)
    out(f"   saved in the api store (rev {spec.rev}); keys:")
    for key in _keys(store, str(uid)):
        out(f"     {key}")

    host, cell = "cmp-7", "cell1"
    out(f"2. schedule: the scheduler picks {host} in {cell}; promote the spec to {cell}")
    promotion = store.promote(ctx, uid, cell)
    out(f"   moved={promotion.moved}, lives in {store.locate(uid)!r}; keys:")
    for key in _keys(store, str(uid)):
        out(f"     {key}")

    cell_ctx = ctx.target_cell(cell)
    stored = store.get(cell_ctx, uid)
    out(
        f"3. read back through the {cell} context: rev {stored.rev}, transient retry "
        f"persisted? {stored.spec.retry is not None}"
    )

    bigger = stored.spec.flavor.model_copy(
        update={
            "flavorid": "m1.large",
            "name": "m1.large",
            "memory_mb": 8192,
            "vcpus": 4,
        }
    )
    plan = move_ops.resize(store, cell_ctx, uid, bigger, source_host=host)
    request = plan.request
    out(f"4. resize to {bigger.name}: the scheduler request keeps the boot constraints:")
    out(
        f"     availability_zone={request.availability_zone}  "
        f"group={request.instance_group.policy if request.instance_group else None} "
        f"rules={request.instance_group.rules if request.instance_group else None}"
    )
    out(
        f"     hints={request.scheduler_hints}  image properties="
        f"{sorted(request.image.properties) if request.image else []}"
    )
    cells = request.numa_topology.cells if request.numa_topology else []
    out(
        f"     NUMA cells={len(cells)} pinned CPUs={sorted(c for n in cells for c in n.pcpuset)} "
        f"(re-derived from {bigger.name})  ignore_hosts={request.ignore_hosts}  "
        f"flavor={request.flavor.name}"
    )
    out(
        f"   persisted: flavor {plan.persist.flavor.name}, rev {plan.persist.rev} "
        "(compare-and-set on the rev read)"
    )

    plan = move_ops.revert_resize(store, cell_ctx, uid, stored.spec.flavor)
    out(
        f"5. resize reverted: persisted flavor back to {plan.persist.flavor.name}, "
        f"rev {plan.persist.rev}"
    )
    plan = move_ops.cold_migrate(store, cell_ctx, uid, source_host=host)
    out(
        f"6. cold migrate off {host}: request ignore_hosts={plan.request.ignore_hosts}, "
        f"az={plan.request.availability_zone}; persisted ignore_hosts="
        f"{plan.persist.ignore_hosts} (transient, never stored), rev {plan.persist.rev}"
    )
    plan = move_ops.evacuate(store, cell_ctx, uid, source_host="cmp-2")
    out(
        f"7. evacuate from the failed cmp-2: request ignore_hosts={plan.request.ignore_hosts}, "
        f"group={plan.request.instance_group.policy if plan.request.instance_group else None}"
        f", flavor={plan.request.flavor.name}, rev {plan.persist.rev}"
    )

    _rebuild_with_new_image(store, cell_ctx, uid, out)

    _cross_cell_resize(store, cell_ctx, uid, "cell2", out)

    buffer = io.BytesIO()
    summary = export_specs(store, buffer, "jsonl", stores=[cell])
    out(
        f"10. export of {cell}: {summary.exported} spec(s), {summary.bytes_written} bytes; "
        "this one:"
    )
    for line in buffer.getvalue().decode().splitlines():
        record = json.loads(line)
        if record["instance_uuid"] == str(uid):
            out(
                "     "
                + json.dumps({k: record[k] for k in ("instance_uuid", "store", "rev", "schema")})
            )
    if not keep:
        store.destroy(cell_ctx, uid)
        out(
            f"11. destroyed the demo spec (use --keep to leave it); api store holds "
            f"{'nothing' if store.locate(uid) is None else store.locate(uid)} for it"
        )
    else:
        hint = kept_hint(str(uid)) if kept_hint else f"kept: specstore inspect {uid}"
        out(f"11. {hint}")


def _cross_cell_resize(
    store: SpecStore, cell_ctx: RequestContext, uid: uuid.UUID, other: str, out: Printer
) -> None:
    """Step 9: the spec moves with its instance to another cell, and back on revert."""
    source = cell_ctx.store_name
    moved = store.move_to_cell(cell_ctx, uid, other)
    out(
        f"9. cross-cell resize: the scheduler picks a host in {other}; the spec moves with the "
        f"instance (moved={moved.moved}, rev {moved.rev}); it lives in {store.locate(uid)!r}"
    )
    try:
        store.save(cell_ctx, store.get(cell_ctx.target_cell(other), uid).spec)
    except WrongStoreError as exc:
        out(f"   a write through {source} is refused: WrongStoreError (lives in {exc.actual!r})")
    back = store.move_to_cell(cell_ctx.target_cell(other), uid, source)
    out(
        f"   revert: the spec moves back (moved={back.moved}); it lives in "
        f"{store.locate(uid)!r}, rev {back.rev}"
    )


def _rebuild_with_new_image(
    store: SpecStore, cell_ctx: RequestContext, uid: uuid.UUID, out: Printer
) -> None:
    """Step 8: the persisted image (and its properties) become the new image's."""
    new_image = ImageMeta(
        id=uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        name="debian-13",
        disk_format="raw",
        container_format="bare",
        properties={"hw_disk_bus": "virtio", "os_distro": "debian"},
    )
    rebuilt_on = "cmp-5"  # where the evacuation landed
    plan = move_ops.rebuild(store, cell_ctx, uid, source_host=rebuilt_on, new_image=new_image)
    dest = plan.request.requested_destination
    out(
        f"8. rebuild on {rebuilt_on} with image {new_image.name}: scheduled again="
        f"{plan.needs_scheduling}, on host {dest.host if dest else None} only; persisted image "
        f"{plan.persist.image.name if plan.persist.image else None} with properties "
        f"{plan.persist.image.properties if plan.persist.image else {}}, "
        f"flavor {plan.persist.flavor.name}, rev {plan.persist.rev}"
    )
