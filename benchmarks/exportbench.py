"""Figure 4: export / import throughput, and the export's peak memory at two key counts.

Export and import are the ``specstore export`` / ``specstore import`` commands (jsonl, their
default ``--batch`` of 500), run in-process; see :mod:`benchmarks.exporter`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from benchmarks import exporter
from benchmarks.harness import Row, Target, Work, measure_throughputs
from benchmarks.latency import create_all
from benchmarks.workload import Counts, delete_prefix, keyspace, spec_copies
from specstore.context import RequestContext
from specstore.keys import Keyspace
from specstore.store import SpecStore

EXPORT_TARGET = Target("value", ">=", 50_000, "specs/s")
MEMORY_TARGET = Target("ratio", "<=", 2.0)
"""Our reading of "independent of the key count": with 10x the keys, an export that holds
every record would peak about 10x higher; one bounded by its batch stays near 1x."""

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def populate(client: redis.Redis, prefix: str, count: int, batch: int = 1_000) -> None:
    store = SpecStore(client, keyspace=Keyspace(prefix))
    ctx = RequestContext(store=store)
    for start in range(0, count, batch):
        create_all(store, ctx, spec_copies(min(batch, count - start)), batch)


def _child_export(url: str, prefix: str, warm_prefix: str, out: Path,
                  mode: str) -> dict[str, Any]:
    """One ``specstore export`` in a fresh interpreter (so its peak RSS is the export's)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.exporter", "--url", url, "--prefix", prefix,
         "--warm-prefix", warm_prefix, "--out", str(out), "--mode", mode],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=1_800,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _dropper(client: redis.Redis, prefix: str) -> Callable[[int], None]:
    def drop(_run: int) -> None:
        delete_prefix(client, prefix)
    return drop


def figure_4(client: redis.Redis, url: str, prefix: str, counts: Counts) -> list[Row]:
    big, small = counts.export_specs, counts.export_small
    src, small_src, warm = f"{prefix}:exp", f"{prefix}:small", f"{prefix}:warm"
    imp, rawimp = f"{prefix}:imp", f"{prefix}:rawimp"
    populate(client, src, big)
    populate(client, small_src, small)
    populate(client, warm, 10)
    src_keys, rawimp_keys = keyspace(prefix, "exp"), keyspace(prefix, "rawimp")

    with tempfile.TemporaryDirectory(prefix="specstore-bench-") as tmp:
        json_path, raw_path = Path(tmp) / "export.jsonl", Path(tmp) / "export.msgpack"

        def export(_run: int) -> int:
            exporter.export_cli(url, src, json_path)
            return big

        def export_raw(_run: int) -> int:
            with raw_path.open("wb") as out:
                return exporter.export_raw(client, src_keys, out)

        exports = measure_throughputs({"ss": Work(export), "raw": Work(export_raw)},
                                      runs=counts.export_runs)
        with json_path.open("rb") as lines:
            exported = sum(1 for _ in lines)
        if exported != big:
            raise RuntimeError(f"specstore export wrote {exported} of {big} specs")

        def import_(_run: int) -> int:
            exporter.import_cli(url, imp, json_path)
            return big

        def import_raw(_run: int) -> int:
            with raw_path.open("rb") as data:
                return exporter.import_raw(client, rawimp_keys, data)

        imports = measure_throughputs({
            "ss": Work(import_, teardown=_dropper(client, imp)),
            "raw": Work(import_raw, teardown=_dropper(client, rawimp)),
        }, runs=counts.export_runs)

        memory: dict[tuple[str, int], int] = {}
        for mode in ("tracemalloc", "rss"):
            for count, key_prefix in ((big, src), (small, small_src)):
                result = _child_export(url, key_prefix, warm, Path(tmp) / "mem.jsonl", mode)
                if result["count"] != count:
                    raise RuntimeError(f"memory export saw {result['count']} of {count} specs")
                memory[mode, count] = int(result["peak_bytes"])

    for done in (src, small_src, warm):
        delete_prefix(client, done)
    setting = f"{counts.export_runs} runs over {big:,} specs, median"
    return [
        Row(4, f"export throughput ({big:,} specs)", "specs/s", exports["ss"].per_second,
            exports["raw"].per_second, "raw SCAN+HGETALL to msgpack", EXPORT_TARGET,
            note=f"Figure 4: {setting}. Export = the `specstore export --format jsonl` command "
                 "(specstore.cli, run in-process: SCAN COUNT 500 + one pipelined HGETALL per "
                 "batch + decode/validate + export_format.to_json_line, to a file). Raw "
                 "baseline: the same scan and reads, each hash packed with msgpack, not decoded.",
            path="export", higher_is_better=True),
        Row(4, f"import throughput ({big:,} specs)", "specs/s", imports["ss"].per_second,
            imports["raw"].per_second, "raw pipelined HSET of the hashes",
            note="Import = `specstore import --format jsonl` into an empty prefix: it parses "
                 "and validates every line once, then parses them again and writes batches "
                 "of 500 with pipelined restore.lua calls (rev and timestamps kept), not "
                 "create.lua. Raw: the msgpack dump HSET back, pipelined, nothing decoded.",
            path="import", higher_is_better=True),
        Row(4, f"export peak memory, tracemalloc, {big:,} vs {small:,} keys", "MiB",
            memory["tracemalloc", big] / MIB, memory["tracemalloc", small] / MIB,
            f"same, {small:,} keys", MEMORY_TARGET,
            note="Peak memory: each `specstore export` runs in a fresh process (python -m "
                 "benchmarks.exporter) after a warm-up export of 10 specs; tracemalloc = peak "
                 "traced Python allocations during the export; RSS = VmHWM (reset through "
                 "/proc/self/clear_refs) minus VmRSS before it. Baseline = the same export of "
                 f"the smaller key count ({big / small:g}x fewer keys): memory that grew with "
                 f"the key count would give a ratio near {big / small:g}, a batch-bounded export "
                 "stays near 1 (our target: <= 2)."),
        Row(4, f"export peak RSS delta, {big:,} vs {small:,} keys", "MiB",
            memory["rss", big] / MIB, memory["rss", small] / MIB,
            f"same, {small:,} keys", MEMORY_TARGET),
    ]
