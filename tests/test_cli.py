"""The specstore console script, run as a subprocess like an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest

from specstore import RequestContext, SpecStore
from specstore.serializers.envelope import encode_envelope
from tests.factories import typical_spec
from tests.support.cli import run_cli, specstore_cmd
from tests.support.keyspace import set_location

FIXTURES = Path(__file__).parent / "fixtures" / "nova"


def test_demo_runs_on_the_embedded_default_with_no_server() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "memory://" in out
    assert "specstore:api:spec:{" in out and "specstore:cell:cell1:spec:{" in out
    assert "availability_zone=az1" in out and "group=anti-affinity" in out
    assert "persisted: flavor m1.large, rev 2" in out
    assert "persisted flavor back to m1.medium, rev 3" in out
    assert "cold migrate off cmp-7: request ignore_hosts=['cmp-7']" in out
    assert "persisted ignore_hosts=None" in out
    assert "evacuate from the failed cmp-2: request ignore_hosts=['cmp-2']" in out
    assert "NUMA cells=1 pinned CPUs=[0, 1, 2, 3] (re-derived from m1.large)" in out
    assert "rebuild on cmp-5 with image debian-13: scheduled again=True, on host cmp-5 only" in out
    assert "persisted image debian-13 with properties {'hw_disk_bus': 'virtio'" in out
    assert "cross-cell resize: the scheduler picks a host in cell2" in out
    assert "it lives in 'cell2'" in out
    assert "a write through cell1 is refused: WrongStoreError (lives in 'cell2')" in out
    assert "revert: the spec moves back (moved=True); it lives in 'cell1', rev 6" in out
    assert '"rev": 6' in out
    assert "destroyed the demo spec" in out


def test_help_and_usage_errors_exit_2() -> None:
    assert run_cli("--help").returncode == 0
    result = run_cli("inspect", "not-a-uuid")
    assert result.returncode == 2
    assert result.stderr.strip() == "specstore: error: not a valid UUID: 'not-a-uuid'"
    bad_url = run_cli("stats", url="ftp://nowhere")
    assert bad_url.returncode == 2 and "unsupported Redis URL scheme" in bad_url.stderr
    assert run_cli("export", "--format", "xml").returncode == 2


@pytest.mark.redis
def test_redis_down_is_one_line_and_exit_2() -> None:
    result = run_cli("stats", url="redis://127.0.0.1:1/0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "specstore: error: cannot connect to Redis at 127.0.0.1:1 (redis://127.0.0.1:1/0, "
        "the api store): connection refused (is redis-server running and listening?)"
    ]


@pytest.mark.redis
def test_nova_table_imports_completely_and_rerun_is_safe(url: str) -> None:
    table = FIXTURES / "request_specs_table.tsv"
    first = run_cli("import", str(table), url=url)
    assert first.returncode == 0, first.stderr
    assert "20 valid, 0 rejected" in first.stderr and "20 created" in first.stderr
    again = run_cli("import", str(table), url=url)
    assert again.returncode == 0 and "20 unchanged" in again.stderr
    stats = json.loads(run_cli("stats", "--json", url=url).stdout)
    assert stats["api"]["count"] == 20
    assert stats["api"]["schemas"] == {"RequestSpec/1.0": 20}
    uid = table.read_text().splitlines()[1].split("\t")[0]
    shown = json.loads(run_cli("inspect", uid, url=url).stdout)
    assert shown["store"] == "api" and shown["instance_uuid"] == uid
    assert shown["key"] == f"specstore:api:spec:{{{uid}}}" and shown["rev"] == 1


@pytest.mark.redis
def test_bad_lines_are_named_the_good_ones_imported_and_exit_is_1(url: str, tmp_path: Path) -> None:
    rows = (FIXTURES / "request_specs_table.tsv").read_text().splitlines()
    negative_vcpus = rows[3].replace('"vcpus": ', '"vcpus": -')
    broken = [rows[0], rows[1], "not-a-uuid\t{}", rows[2], negative_vcpus, rows[4][:40], rows[5]]
    path = tmp_path / "broken.tsv"
    path.write_text("\n".join(broken) + "\n")
    dry = run_cli("import", "--dry-run", str(path), url=url)
    assert dry.returncode == 1
    assert json.loads(run_cli("stats", "--json", url=url).stdout) == {}
    result = run_cli("import", str(path), url=url)
    assert result.returncode == 1
    named = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("line ")]
    assert named == ["line 3", "line 5", "line 6"]
    assert "3 rejected" in result.stderr and "3 created" in result.stderr
    assert json.loads(run_cli("stats", "--json", url=url).stdout)["api"]["count"] == 3


@pytest.mark.redis
def test_import_never_overwrites_unless_told(url: str, tmp_path: Path) -> None:
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    spec = typical_spec()
    store.create(ctx, spec)
    dump = tmp_path / "one.jsonl"
    assert run_cli("export", "-o", str(dump), url=url).returncode == 0
    spec.availability_zone = "az-changed"
    store.save(ctx, spec)
    kept = run_cli("import", str(dump), url=url)
    assert kept.returncode == 1 and "kept the spec already in 'api'" in kept.stderr
    assert store.get(ctx, spec.instance_uuid).spec.availability_zone == "az-changed"
    replaced = run_cli("import", "--overwrite", str(dump), url=url)
    assert replaced.returncode == 0 and "1 replaced" in replaced.stderr
    restored = store.get(ctx, spec.instance_uuid)
    # the restored spec's rev continues above the one it replaced: a rev held from before
    # the restore never compare-and-sets it
    assert restored.spec.availability_zone == "az1" and restored.rev == 3
    store.close()


@pytest.mark.redis
def test_export_skips_and_counts_corrupt_documents(url: str) -> None:
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    specs = [typical_spec() for _ in range(5)]
    store.create_many(ctx, specs)
    store.promote(ctx, specs[0].instance_uuid, "cell1")
    bad = str(specs[1].instance_uuid)
    store.client.hset(store.keys.spec_key("api", bad), "doc", b"SPEC\x01\xff\x00")
    newer = encode_envelope("RequestSpec", (2, 0), {})
    store.client.hset(store.keys.spec_key("api", str(specs[2].instance_uuid)), "doc", newer)
    result = run_cli("export", url=url)
    assert result.returncode == 1
    assert "exported 3 specs" in result.stderr and "skipped 2" in result.stderr
    assert bad in result.stderr
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["store"] for r in exported} == {"api", "cell1"}
    only_cell = run_cli("export", "--store", "cell1", url=url)
    assert [json.loads(x)["instance_uuid"] for x in only_cell.stdout.splitlines()] == [
        str(specs[0].instance_uuid)
    ]
    store.close()


@pytest.mark.redis
def test_msgpack_export_import_round_trip_through_stdin(url: str, tmp_path: Path) -> None:
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    specs = [typical_spec() for _ in range(30)]
    store.create_many(ctx, specs)
    for spec in specs[:10]:
        store.promote(ctx, spec.instance_uuid, "cell2")
    dump = tmp_path / "all.msgpack"
    assert run_cli("export", "--format", "msgpack", "-o", str(dump), url=url).returncode == 0
    records = list(msgpack.Unpacker(dump.open("rb"), raw=False))
    assert len(records) == 30 and all(isinstance(r["doc"], bytes) for r in records)
    stored = {
        r["instance_uuid"]: store.client.hmget(
            store.keys.spec_key(r["store"], r["instance_uuid"]), ["created_at", "updated_at"]
        )
        for r in records
    }
    assert {
        r["instance_uuid"]: [r["created_at"].encode(), r["updated_at"].encode()] for r in records
    } == stored
    store.client.flushall()
    result = subprocess.run(
        [specstore_cmd(), "import", "--format", "msgpack", "-"],
        stdin=dump.open("rb"),
        env={**os.environ, "SPECSTORE_REDIS_URL": url},
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert store.locate(specs[0].instance_uuid) == "cell2"
    assert store.locate(specs[-1].instance_uuid) == "api"
    again = tmp_path / "again.msgpack"
    assert run_cli("export", "--format", "msgpack", "-o", str(again), url=url).returncode == 0
    key = lambda r: r["instance_uuid"]  # noqa: E731
    reloaded = sorted(msgpack.Unpacker(again.open("rb"), raw=False), key=key)
    assert reloaded == sorted(records, key=key)
    for r in records:  # the import restored what was stored, not only what was exported
        key_name = store.keys.spec_key(r["store"], r["instance_uuid"])
        assert (
            store.client.hmget(key_name, ["created_at", "updated_at"]) == stored[r["instance_uuid"]]
        )
    store.close()


@pytest.mark.redis
def test_repair_finds_and_fixes_damage_by_the_documented_rule(url: str) -> None:
    store = SpecStore.from_url(url)
    ctx = RequestContext(store=store)
    dup, wrong_loc, no_loc, healthy = (typical_spec() for _ in range(4))
    for spec in (dup, wrong_loc, no_loc, healthy):
        store.create(ctx, spec)
    dangling = str(uuid.uuid4())
    keys, client = store.keys, store.client
    # a second home: a stale cell copy beside the api one (api copy has the higher rev)
    raw = client.hgetall(keys.spec_key("api", str(dup.instance_uuid)))
    client.hset(keys.spec_key("cell1", str(dup.instance_uuid)), mapping=cast(Any, raw))
    store.save(ctx, dup)
    # a location record that names the wrong store
    set_location(client, keys, str(wrong_loc.instance_uuid), "cell9")
    # a copy without a location record, and a record without a copy
    client.delete(keys.location_key(str(no_loc.instance_uuid)))
    set_location(client, keys, dangling, "api")

    report = run_cli("repair", "--dry-run", url=url)
    assert report.returncode == 1
    assert "4 need repair" in report.stdout
    assert f"{dup.instance_uuid}: keep the copy in api; drop the copy in cell1 (rev 1)" in (
        report.stdout
    )
    assert f"{dup.instance_uuid}: keep the copy in api; drop the copy in cell1 (rev 1)" in (
        report.stdout
    )
    assert f"{wrong_loc.instance_uuid}: keep the copy in api; record api as the home" in (
        report.stdout
    )
    assert f"{dangling}: bury the location record" in report.stdout
    fixed = run_cli("repair", url=url)
    assert fixed.returncode == 0 and "4 repaired" in fixed.stdout
    clean = run_cli("repair", "--dry-run", url=url)
    assert clean.returncode == 0 and "0 need repair" in clean.stdout
    assert store.get(ctx, dup.instance_uuid).rev == 2
    assert not client.exists(keys.spec_key("cell1", str(dup.instance_uuid)))
    for spec in (wrong_loc, no_loc, healthy):
        assert store.locate(spec.instance_uuid) == "api"
    assert store.locate(dangling) is None
    store.close()


@pytest.mark.redis
def test_configuration_from_file_and_environment(url: str, tmp_path: Path) -> None:
    config = tmp_path / "specstore.toml"
    config.write_text(f'[specstore]\nredis_url = "{url}"\nprefix = "other"\n')
    table = str(FIXTURES / "request_specs_table.tsv")
    assert run_cli("--config", str(config), "import", table).returncode == 0
    via_env = run_cli("stats", "--json", env={"SPECSTORE_CONFIG": str(config)})
    assert json.loads(via_env.stdout)["api"]["count"] == 20
    assert json.loads(run_cli("stats", "--json", url=url).stdout) == {}
    flag_wins = run_cli("--prefix", "other", "stats", "--json", url=url)
    assert json.loads(flag_wins.stdout)["api"]["count"] == 20


@pytest.mark.redis
def test_migrate_names_an_unreadable_document_exits_1_and_batches_are_exact(url: str) -> None:
    store = SpecStore.from_url(url)
    specs = [typical_spec() for _ in range(12)]
    store.create_many(RequestContext(store=store), specs)
    bad = str(specs[5].instance_uuid)
    store.client.hset(store.keys.spec_key("api", bad), "doc", b"garbage")
    partial = run_cli("migrate", "--batch", "5", "--max-batches", "2", url=url)
    assert "scanned 10:" in partial.stdout and "resume with --cursor" in partial.stdout
    full = run_cli("migrate", url=url)
    assert full.returncode == 1, full.stdout
    assert "scanned 12: rewrote 0, already current 11, newer 0, failed 1" in full.stdout
    assert bad in full.stderr
    store.close()
