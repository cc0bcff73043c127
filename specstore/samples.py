"""Sample specs: the typical one (flavor with extra specs, image with properties, server group,
NUMA cells, a PCI request, hints, transient per-request parts) that the tests and the
benchmarks both use, so that a benchmark measures the spec the tests pin."""

from __future__ import annotations

import uuid

from specstore.model import (
    Destination,
    Flavor,
    ImageMeta,
    InstanceGroup,
    InstanceNUMACell,
    InstanceNUMATopology,
    InstancePCIRequest,
    InstancePCIRequests,
    NetworkMetadata,
    RequestGroup,
    RequestSpec,
    SchedulerLimits,
    SchedulerRetries,
)


def flavor(name: str = "m1.large", memory_mb: int = 8192, vcpus: int = 4) -> Flavor:
    return Flavor(
        id=42,
        flavorid=f"{name}-id",
        name=name,
        memory_mb=memory_mb,
        vcpus=vcpus,
        root_gb=40,
        ephemeral_gb=0,
        swap=512,
        extra_specs={
            "hw:cpu_policy": "dedicated",
            "hw:mem_page_size": "large",
            "quota:disk_read_bytes_sec": "10240",
            "trait:HW_CPU_X86_AVX2": "required",
        },
        description=f"flavor {name}",
    )


def typical_spec(instance_uuid: uuid.UUID | str | None = None) -> RequestSpec:
    """A spec as a real boot request builds it, transient fields included."""
    uid = uuid.UUID(str(instance_uuid)) if instance_uuid else uuid.uuid4()
    return RequestSpec(
        instance_uuid=uid,
        project_id="6f70656e737461636b20697320636f6f",
        user_id="8d3b1e2c5a7f4e0b9c6d2a1f3e5b7c9d",
        availability_zone="az1",
        flavor=flavor(),
        image=ImageMeta(
            id=uuid.UUID("0512bd13-1107-2231-1710-cf5327ac435a"),
            name="ubuntu-24.04",
            status="active",
            visibility="public",
            protected=False,
            checksum="cccccccccccccccccccccccccccccccc",
            owner="6f70656e737461636b20697320636f6f",
            size=12345678,
            container_format="bare",
            disk_format="qcow2",
            min_ram=0,
            min_disk=1,
            properties={
                "hw_disk_bus": "scsi",
                "hw_scsi_model": "virtio-scsi",
                "hw_cpu_cores": 2,
                "os_distro": "ubuntu",
                "os_type": "linux",
            },
        ),
        num_instances=1,
        numa_topology=InstanceNUMATopology(
            cells=[
                InstanceNUMACell(
                    id=0, memory=4096, pcpuset={0, 1}, cpu_policy="dedicated", pagesize=2048
                ),
                InstanceNUMACell(
                    id=1, memory=4096, pcpuset={2, 3}, cpu_policy="dedicated", pagesize=2048
                ),
            ]
        ),
        pci_requests=InstancePCIRequests(
            requests=[
                InstancePCIRequest(
                    count=1,
                    spec=[{"vendor_id": "8086", "product_id": "1520"}],
                    alias_name="nic1",
                    numa_policy="preferred",
                    request_id=uuid.UUID("05b6e6e3-07d4-bedc-5143-1193e6c3f339"),
                )
            ]
        ),
        force_hosts=None,
        limits=SchedulerLimits(vcpu=16, memory_mb=65536, disk_gb=400),
        instance_group=InstanceGroup(
            uuid=uuid.UUID("008a05a6-c464-7159-c324-c9859b810e76"),
            name="web-tier",
            policy="anti-affinity",
            rules={"max_server_per_host": "2"},
            members=[str(uid)],
            hosts=["cmp-1"],
        ),
        scheduler_hints={
            "same_host": ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"],
            "query": ['["=", "$free_ram_mb", 1024]'],
        },
        security_groups=["default"],
        is_bfv=False,
        # transient, per-request parts:
        retry=SchedulerRetries(num_attempts=1),
        requested_destination=Destination(host="cmp-2"),
        network_metadata=NetworkMetadata(physnets={"physnet1"}, tunneled=True),
        requested_resources=[RequestGroup(requester_id="port-1", resources={"VGPU": 1})],
        ignore_hosts=["cmp-9"],
    )
