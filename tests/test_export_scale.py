"""Export/import at scale on a real redis-server: round trip, and memory that does not grow
with the key count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from specstore import RequestContext, SpecStore
from tests.factories import typical_spec
from tests.support.cli import run_cli
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


def load(store: SpecStore, count: int) -> None:
    """``count`` specs, a third of them in cell1 and a third in cell2."""
    base = typical_spec()
    ctx = RequestContext(store=store)
    contexts = [ctx, ctx.target_cell("cell1"), ctx.target_cell("cell2")]
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        specs = [
            base.model_copy(update={"instance_uuid": uuid.uuid4(), "num_instances": i + 1})
            for i in range(size)
        ]
        result = store.create_many(contexts[(start // 1000) % 3], specs)
        assert len(result.created) == size


@pytest.fixture
def fresh(redis_server: RedisServer) -> SpecStore:
    client = redis_server.client()
    client.flushall()
    client.close()
    return SpecStore.from_url(redis_server.url)


def stored_meta(client: redis.Redis) -> dict[bytes, list[bytes | None]]:
    """spec key -> [rev, created_at, updated_at, schema], read with plain SCAN and HMGET."""
    keys = list(client.scan_iter(match="specstore:*spec:{*}", count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, ["rev", "created_at", "updated_at", "schema"])
    return dict(zip(keys, pipe.execute(), strict=True))


def test_10000_specs_export_flush_import_export_gives_the_same_records(
    fresh: SpecStore, redis_server: RedisServer, tmp_path: Path
) -> None:
    load(fresh, 10_000)
    client = redis_server.client()
    before = stored_meta(client)
    assert len(before) == 10_000 and all(all(v) for v in before.values())
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    exported = run_cli("export", "-o", str(first), url=redis_server.url)
    assert exported.returncode == 0 and "exported 10000 specs" in exported.stderr
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    key = fresh.keys.spec_key
    assert {
        key(r["store"], r["instance_uuid"]).encode(): [
            str(r["rev"]).encode(),
            r["created_at"].encode(),
            r["updated_at"].encode(),
            r["schema"].encode(),
        ]
        for r in lines
    } == before  # the export carries what was stored
    fresh.client.flushall()
    imported = run_cli("import", str(first), url=redis_server.url)
    assert imported.returncode == 0, imported.stderr
    assert "10000 created" in imported.stderr
    assert stored_meta(client) == before  # the import restores it
    client.close()
    assert run_cli("export", "-o", str(second), url=redis_server.url).returncode == 0
    before_lines = sorted(first.read_text().splitlines())
    after_lines = sorted(second.read_text().splitlines())
    assert len(before_lines) == 10_000 and before_lines == after_lines
    fresh.close()


PEAK_MEMORY_WRAPPER = """
import atexit, sys
def report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("VMHWM " + line.split()[1] + "\\n")
atexit.register(report)
sys.argv = ["specstore", *sys.argv[1:]]
from specstore.cli import main
main()
"""


def peak_rss_kib(args: list[str], env: dict[str, str]) -> int:
    """Peak resident set size (VmHWM, KiB) of the specstore command run with ``args``.

    Read by the process itself at exit: a child's ``ru_maxrss`` on Linux starts from the
    forking parent's high-water mark, which would hide the export's own.
    """
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_WRAPPER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (value,) = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("VMHWM")]
    return int(value)


def test_export_memory_stays_flat_from_10k_to_100k_specs(
    fresh: SpecStore, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {**os.environ, "SPECSTORE_REDIS_URL": redis_server.url}
    command = ["export", "-q", "-o", str(tmp_path / "out.jsonl")]
    load(fresh, 10_000)
    small = peak_rss_kib(command, env)
    load(fresh, 90_000)
    large = peak_rss_kib(command, env)
    lines = sum(1 for _ in (tmp_path / "out.jsonl").open("rb"))
    assert lines == 100_000
    print(f"export peak RSS: 10k specs {small} KiB, 100k specs {large} KiB")
    # Ten times the keys may not cost more than a few MiB of allocator noise.
    assert large - small < 8 * 1024, (small, large)
    fresh.close()
