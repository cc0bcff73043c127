"""Figure 4: export / import throughput, and the export's peak memory at two key counts.

Export and import are the ``specstore export`` / ``specstore import`` commands (jsonl and
msgpack, their default ``--batch`` of 500), run in-process; see :mod:`benchmarks.exporter`.
Baselines: raw SCAN + pipelined HGETALL (and HSET back), and the hand-rolled pattern (pydantic
JSON in STRING keys: SCAN + pipelined GET, and validate + pipelined SET back).
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
from benchmarks.latency import JSON_EXCLUDE, create_all
from benchmarks.workload import Counts, delete_prefix, keyspace, spec_copies
from specstore.context import RequestContext
from specstore.core.keys import Keyspace
from specstore.store import SpecStore

MSGPACK_EXPORT_TARGET = Target("ratio", ">=", 0.85)
JSONL_EXPORT_TARGET = Target("ratio", ">=", 0.4)
IMPORT_TARGET = Target("ratio", ">=", 0.35)
HAND_TARGET = Target("ratio", ">=", 1.0)
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


def populate_hand(client: redis.Redis, prefix: str, count: int, batch: int = 1_000) -> None:
    """``count`` hand-rolled specs: pydantic JSON (transient fields excluded) in STRING keys."""
    for start in range(0, count, batch):
        pipe = client.pipeline(transaction=False)
        for spec in spec_copies(min(batch, count - start)):
            pipe.set(f"{prefix}:spec:{{{spec.instance_uuid}}}",
                     spec.model_dump_json(exclude=JSON_EXCLUDE))
        pipe.execute()


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
    hand, handimp = f"{prefix}:hand", f"{prefix}:handimp"
    populate_hand(client, hand, big)
    src_keys, rawimp_keys = keyspace(prefix, "exp"), keyspace(prefix, "rawimp")

    with tempfile.TemporaryDirectory(prefix="specstore-bench-") as tmp:
        json_path, raw_path = Path(tmp) / "export.jsonl", Path(tmp) / "export.msgpack"
        msgpack_path, hand_path = Path(tmp) / "export-ss.msgpack", Path(tmp) / "hand.txt"

        def export(_run: int) -> int:
            exporter.export_cli(url, src, json_path)
            return big

        def export_msgpack(_run: int) -> int:
            exporter.export_cli(url, src, msgpack_path, "msgpack")
            return big

        def export_raw(_run: int) -> int:
            with raw_path.open("wb") as out:
                return exporter.export_raw(client, src_keys, out)

        def export_hand(_run: int) -> int:
            with hand_path.open("wb") as out:
                return exporter.export_hand(client, f"{hand}:spec:*", out)

        exports = measure_throughputs({"ss": Work(export), "ss_msgpack": Work(export_msgpack),
                                       "raw": Work(export_raw), "hand": Work(export_hand)},
                                      runs=counts.export_runs)
        with json_path.open("rb") as lines:
            exported = sum(1 for _ in lines)
        if exported != big:
            raise RuntimeError(f"specstore export wrote {exported} of {big} specs")

        def import_(_run: int) -> int:
            exporter.import_cli(url, imp, json_path)
            return big

        def import_msgpack(_run: int) -> int:
            exporter.import_cli(url, imp, msgpack_path, "msgpack")
            return big

        def import_raw(_run: int) -> int:
            with raw_path.open("rb") as data:
                return exporter.import_raw(client, rawimp_keys, data)

        def import_hand(_run: int) -> int:
            with hand_path.open("rb") as data:
                return exporter.import_hand(client, handimp, data)

        imports = measure_throughputs({
            "ss": Work(import_, teardown=_dropper(client, imp)),
            "ss_msgpack": Work(import_msgpack, teardown=_dropper(client, imp)),
            "raw": Work(import_raw, teardown=_dropper(client, rawimp)),
            "hand": Work(import_hand, teardown=_dropper(client, handimp)),
        }, runs=counts.export_runs)

        memory: dict[tuple[str, int], int] = {}
        for mode in ("tracemalloc", "rss"):
            for count, key_prefix in ((big, src), (small, small_src)):
                result = _child_export(url, key_prefix, warm, Path(tmp) / "mem.jsonl", mode)
                if result["count"] != count:
                    raise RuntimeError(f"memory export saw {result['count']} of {count} specs")
                memory[mode, count] = int(result["peak_bytes"])

    for done in (src, small_src, warm, hand):
        delete_prefix(client, done)
    setting = f"{counts.export_runs} runs over {big:,} specs, median"
    return [
        Row(4, f"export throughput, msgpack ({big:,} specs)", "specs/s",
            exports["ss_msgpack"].per_second, exports["raw"].per_second,
            "raw SCAN+HGETALL to msgpack", MSGPACK_EXPORT_TARGET,
            note=f"Figure 4: {setting}. Export = the `specstore export --format msgpack|jsonl` "
                 "command (specstore.cli, run in-process: SCAN COUNT 500 + one pipelined "
                 "HMGET of the exported fields per batch + export_format.DocumentChecker "
                 "(marker, schema, version, one whole msgpack value, the key's instance; no "
                 "model built), then the document bytes copied (msgpack) or transcoded to "
                 "JSON (jsonl, orjson where its bytes equal json.dumps'), to a file). "
                 "Raw baseline: the same scan and reads, each hash packed with msgpack, not "
                 "decoded. Hand-rolled: SCAN + pipelined GET of the pydantic JSON values, "
                 "written as lines.",
            path="export", higher_is_better=True),
        Row(4, f"export throughput, jsonl ({big:,} specs)", "specs/s", exports["ss"].per_second,
            exports["raw"].per_second, "raw SCAN+HGETALL to msgpack", JSONL_EXPORT_TARGET,
            higher_is_better=True),
        Row(4, f"export throughput, jsonl vs hand-rolled ({big:,} specs)", "specs/s",
            exports["ss"].per_second, exports["hand"].per_second,
            "SCAN + pipelined GET of JSON", higher_is_better=True),
        Row(4, f"import throughput ({big:,} specs)", "specs/s", imports["ss"].per_second,
            imports["raw"].per_second, "raw pipelined HSET of the hashes", IMPORT_TARGET,
            note="Import = `specstore import --format jsonl` into an empty prefix: every "
                 "record checked once (each line's spec validated by the model and its "
                 "document encoded from it), the valid ones spooled to a temporary file, then "
                 "written as restore.lua calls in pipelined batches of 500 (rev and "
                 "timestamps kept). msgpack: `--format msgpack` of the msgpack export, whose "
                 "documents are stored as they are after the envelope, persisted-field and "
                 "metadata checks (no model built; `--validate` builds it). Raw: the msgpack "
                 "dump HSET back, pipelined, nothing decoded. Hand-rolled: each line's JSON "
                 "validated with model_validate_json, then SET, pipelined.",
            path="import", higher_is_better=True),
        Row(4, f"import throughput, msgpack ({big:,} specs)", "specs/s",
            imports["ss_msgpack"].per_second, imports["raw"].per_second,
            "raw pipelined HSET of the hashes", higher_is_better=True),
        Row(4, f"import throughput vs hand-rolled ({big:,} specs)", "specs/s",
            imports["ss"].per_second, imports["hand"].per_second,
            "validate + pipelined SET of JSON", HAND_TARGET, higher_is_better=True),
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
