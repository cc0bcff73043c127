"""Golden RequestSpec 1.0 documents: the fixed specs and the script that (re)writes them.

    python -m tests.golden.regenerate           # check: report files that differ, exit 1
    python -m tests.golden.regenerate --write   # rewrite them (deliberately!)

Do not rewrite existing golden files because a test failed: a changed document format needs
a new schema version (see specstore/serializers/schemas/request_spec.py), and the 1.0 files
must keep decoding -- add golden files for the new version instead.

Every value below is fixed (no uuid4, no clock); transient fields are set on purpose to show
that they never reach the document.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

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
    RequestedNetwork,
    RequestGroup,
    RequestLevelParams,
    RequestSpec,
    SchedulerLimits,
    SchedulerRetries,
    strip_transient,
)
from specstore.serializers.envelope import Version
from specstore.serializers.json_codec import from_json_document, to_json_document
from specstore.serializers.msgpack_codec import DocumentCodec

GOLDEN_DIR = Path(__file__).resolve().parent
VERSION: Version = (1, 0)


def typical() -> RequestSpec:
    """A spec as a boot request builds it, with every persisted part filled in."""
    return RequestSpec(
        instance_uuid=UUID("2b6a1e4c-5d3f-4a8b-9c0d-1e2f3a4b5c6d"),
        project_id="6f70656e737461636b20697320636f6f",
        user_id="8d3b1e2c5a7f4e0b9c6d2a1f3e5b7c9d",
        availability_zone="az1",
        flavor=Flavor(
            id=42,
            flavorid="m1.large-id",
            name="m1.large",
            memory_mb=8192,
            vcpus=4,
            root_gb=40,
            swap=512,
            rxtx_factor=1.5,
            vcpu_weight=None,
            extra_specs={
                "trait:HW_CPU_X86_AVX2": "required",
                "hw:cpu_policy": "dedicated",
                "hw:mem_page_size": "large",
            },
            description="flavor m1.large",
        ),
        image=ImageMeta(
            id=UUID("0512bd13-1107-2231-1710-cf5327ac435a"),
            name="ubuntu-24.04",
            status="active",
            visibility="public",
            protected=False,
            checksum="cccccccccccccccccccccccccccccccc",
            size=12345678,
            container_format="bare",
            disk_format="qcow2",
            min_ram=0,
            min_disk=1,
            created_at=dt.datetime(2024, 4, 25, 12, 30, 45, 123456, tzinfo=dt.timezone.utc),
            updated_at=dt.datetime(1969, 7, 20, 20, 17, 40, 500000, tzinfo=dt.timezone.utc),
            properties={
                "os_type": "linux",
                "hw_cpu_cores": 2,
                "hw_disk_bus": "scsi",
                "hw_numa": {"nodes": [0, 1], "mem": {"1": 4096, "0": 4096}},
                "hw_rng_rate": 1.25,
                "hw_vif_multiqueue_enabled": True,
                "img_signature": None,
            },
        ),
        num_instances=2,
        numa_topology=InstanceNUMATopology(
            cells=[
                InstanceNUMACell(
                    id=0,
                    memory=4096,
                    pcpuset={1, 0},
                    cpuset_reserved={7},
                    cpu_policy="dedicated",
                    cpu_thread_policy="isolate",
                    pagesize=2048,
                    cpu_pinning={1: 5, 0: 4},
                ),
                InstanceNUMACell(id=1, memory=4096, cpuset={3, 2}, cpu_policy="mixed"),
            ],
            emulator_threads_policy="isolate",
        ),
        pci_requests=InstancePCIRequests(
            requests=[
                InstancePCIRequest(
                    count=1,
                    spec=[{"vendor_id": "8086", "product_id": "1520"}],
                    alias_name="nic1",
                    numa_policy="preferred",
                    request_id=UUID("05b6e6e3-07d4-bedc-5143-1193e6c3f339"),
                )
            ]
        ),
        force_hosts=["cmp-1"],
        force_nodes=[],
        limits=SchedulerLimits(
            vcpu=16, memory_mb=65536, disk_gb=400, numa_topology={"cells": [{"id": 0}]}
        ),
        instance_group=InstanceGroup(
            uuid=UUID("008a05a6-c464-7159-c324-c9859b810e76"),
            name="web-tier",
            policy="anti-affinity",
            rules={"max_server_per_host": "2"},
            members=["2b6a1e4c-5d3f-4a8b-9c0d-1e2f3a4b5c6d"],
            hosts=["cmp-1"],
            project_id="6f70656e737461636b20697320636f6f",
        ),
        scheduler_hints={
            "same_host": ["6ec9d286-63ca-828d-d5f4-b3b2e4b06ce6"],
            "query": '["=", "$free_ram_mb", 1024]',
        },
        security_groups=["default", "web"],
        is_bfv=True,
        # transient, per-request parts (never in the document):
        retry=SchedulerRetries(num_attempts=1),
        requested_destination=Destination(host="cmp-2"),
        network_metadata=NetworkMetadata(physnets={"physnet1"}, tunneled=True),
        requested_resources=[RequestGroup(requester_id="port-1", resources={"VGPU": 1})],
        request_level_params=RequestLevelParams(root_required={"COMPUTE_STATUS_DISABLED"}),
        requested_networks=[RequestedNetwork(network_id="net-1")],
        ignore_hosts=["cmp-9"],
    )


def minimal() -> RequestSpec:
    """Only what is required."""
    return RequestSpec(
        instance_uuid=UUID("00000000-0000-4000-8000-000000000001"),
        flavor=Flavor(flavorid="1", name="m1.tiny", memory_mb=512, vcpus=1),
    )


GOLDEN_SPECS: dict[str, Callable[[], RequestSpec]] = {"typical": typical, "minimal": minimal}


def codec() -> DocumentCodec:
    """Writes the golden version even after newer versions are released."""
    return DocumentCodec(write_version=VERSION)


def bin_path(name: str) -> Path:
    return GOLDEN_DIR / f"request_spec_{VERSION[0]}.{VERSION[1]}_{name}.bin"


def json_path(name: str) -> Path:
    return GOLDEN_DIR / f"request_spec_{VERSION[0]}.{VERSION[1]}_{name}.json"


def render_json(spec: RequestSpec) -> str:
    """The expected decoded spec as stable, readable JSON (a JSON export document)."""
    return json.dumps(to_json_document(spec, codec()), indent=2, sort_keys=True) + "\n"


def expected_spec(name: str) -> RequestSpec:
    """The spec the golden document of ``name`` must decode to (transient parts stripped)."""
    return strip_transient(GOLDEN_SPECS[name]())


def committed_json_spec(name: str) -> RequestSpec:
    """The spec described by the committed .json file."""
    return from_json_document(json.loads(json_path(name).read_text(encoding="utf-8")))


def render(name: str) -> tuple[bytes, str]:
    """(document bytes, expected decoded JSON) of golden spec ``name``."""
    data = codec().encode(GOLDEN_SPECS[name]())
    if codec().decode(data) != expected_spec(name):
        raise SystemExit(f"{name}: the document does not decode to the spec; not writing it")
    return data, render_json(expected_spec(name))


def stale_files(name: str) -> list[Path]:
    """Golden files of ``name`` that are missing or out of date: the .bin must be identical,
    the .json must describe the same spec (its text may follow the JSON codec's style)."""
    data, _ = render(name)
    stale: list[Path] = []
    if not bin_path(name).exists() or bin_path(name).read_bytes() != data:
        stale.append(bin_path(name))
    if not json_path(name).exists() or committed_json_spec(name) != expected_spec(name):
        stale.append(json_path(name))
    return stale


def main(argv: list[str]) -> int:
    write = argv == ["--write"]
    if argv and not write:
        print(__doc__)
        return 2
    stale: list[Path] = []
    for name in GOLDEN_SPECS:
        stale.extend(stale_files(name))
        if write:
            data, text = render(name)
            bin_path(name).write_bytes(data)
            json_path(name).write_text(text, encoding="utf-8")
    names = ", ".join(path.name for path in stale)
    if write:
        print(f"rewrote golden files ({names or 'none had changed'})")
        return 0
    print(f"differ: {names}" if stale else "golden files are up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
