"""Figure 4's moving parts: the ``specstore export`` / ``import`` commands run in-process,
raw baselines, and the peak-memory probe.

The commands are the real ones (``specstore.cli``, i.e. :func:`specstore.bulk.export_specs`
and :func:`specstore.bulk.import_specs`), called through the typer app in this process so
that no interpreter start-up is timed.

Raw baselines: the same SCAN + pipelined HGETALL writing each hash as a msgpack array
``[store, uuid, fields]`` with nothing decoded, and reading that back with pipelined HSET.

Run as ``python -m benchmarks.exporter --url URL --prefix P --out FILE --mode M`` it runs
``specstore export`` once in a fresh process and prints its peak memory as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgpack

from specstore.connection import RedisClient
from specstore.core.keys import Keyspace
from specstore.core.records import reply_text
from specstore.drivers.scanning import scan_batches
from specstore.model import RequestSpec

BATCH = 500
"""The commands' default ``--batch``; the raw baselines use the same."""


class CommandError(RuntimeError):
    pass


def run_cli(url: str, prefix: str, *args: str) -> None:
    """``specstore --redis-url URL --prefix PREFIX ARGS...`` in this process; raises unless
    it exits 0."""
    from specstore import cli

    code = cli.app(["--redis-url", url, "--prefix", prefix, *args], standalone_mode=False)
    if code not in (0, None):
        raise CommandError(f"specstore {' '.join(args)} exited {code}")


def export_cli(url: str, prefix: str, out: Path, fmt: str = "jsonl") -> None:
    run_cli(url, prefix, "export", "--output", str(out), "--format", fmt, "--quiet")


def import_cli(url: str, prefix: str, source: Path, fmt: str = "jsonl") -> None:
    run_cli(url, prefix, "import", str(source), "--format", fmt, "--quiet")


def _hashes(
    client: RedisClient, keys: Keyspace, batch: int
) -> Iterator[list[tuple[str, str, dict[bytes, bytes]]]]:
    """Batches of (store, uuid, HGETALL reply) for every spec key under ``keys``."""
    for found, _ in scan_batches(client, keys.spec_pattern(), batch):
        parsed = [keys.parse_spec_key(reply_text(k)) for k in found]
        wanted = [(p, k) for p, k in zip(parsed, found, strict=True) if p is not None]
        if not wanted:
            continue
        pipe = client.pipeline(transaction=False)
        for _, key in wanted:
            pipe.hgetall(key)
        replies: list[dict[bytes, bytes]] = pipe.execute()
        yield [(p[0], p[1], raw) for (p, _), raw in zip(wanted, replies, strict=True) if raw]


def export_raw(client: RedisClient, keys: Keyspace, out: IO[bytes], batch: int = BATCH) -> int:
    """Baseline: SCAN + pipelined HGETALL, each hash written as msgpack, nothing decoded."""
    count = 0
    for records in _hashes(client, keys, batch):
        out.write(b"".join(msgpack.packb([s, u, raw], use_bin_type=True)
                           for s, u, raw in records))
        count += len(records)
    return count


def import_raw(client: RedisClient, keys: Keyspace, data: IO[bytes], batch: int = BATCH) -> int:
    """Baseline: HSET every hash of a raw export under ``keys``, pipelined, nothing decoded."""
    count = 0
    pipe = client.pipeline(transaction=False)
    for store, uid, raw in msgpack.Unpacker(data, raw=False, strict_map_key=False):
        pipe.hset(keys.spec_key(store, uid), mapping=raw)
        count += 1
        if count % batch == 0:
            pipe.execute()
            pipe = client.pipeline(transaction=False)
    pipe.execute()
    return count


def export_hand(client: RedisClient, pattern: str, out: IO[bytes], batch: int = BATCH) -> int:
    """Hand-rolled: SCAN + pipelined GET of pydantic JSON values, one ``key<TAB>json`` line
    each (the values written as stored, not parsed)."""
    count = 0
    for found, _ in scan_batches(client, pattern, batch):
        if not found:
            continue
        pipe = client.pipeline(transaction=False)
        for key in found:
            pipe.get(key)
        values: list[bytes | None] = pipe.execute()
        out.write(b"".join(k + b"\t" + v + b"\n"
                           for k, v in zip(found, values, strict=True) if v is not None))
        count += sum(1 for v in values if v is not None)
    return count


def import_hand(client: RedisClient, prefix: str, data: IO[bytes], batch: int = BATCH) -> int:
    """Hand-rolled: each line's JSON validated with ``model_validate_json`` (a careful
    team's import), then SET under ``prefix``, pipelined."""
    count = 0
    pipe = client.pipeline(transaction=False)
    for line in data:
        key, _, value = line.rstrip(b"\n").partition(b"\t")
        RequestSpec.model_validate_json(value)
        pipe.set(prefix.encode() + b":" + key, value)
        count += 1
        if count % batch == 0:
            pipe.execute()
            pipe = client.pipeline(transaction=False)
    pipe.execute()
    return count


# -- peak memory of one export, measured in a fresh process -------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_export_memory(
    url: str, prefix: str, out: Path, mode: str, warm_prefix: str
) -> dict[str, Any]:
    """Run ``specstore export`` once; its peak Python allocations (``tracemalloc``) or its RSS
    growth (``rss``). An export of the (few) specs under ``warm_prefix`` to /dev/null first
    warms every lazy path (imports, connection, codec)."""
    export_cli(url, warm_prefix, Path(os.devnull))
    result: dict[str, Any] = {"mode": mode}
    if mode == "tracemalloc":
        tracemalloc.start()
        export_cli(url, prefix, out)
        result["peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        result["hwm_reset"] = _reset_peak_rss()
        before = _status_kb("VmRSS")
        export_cli(url, prefix, out)
        result["peak_bytes"] = max(0, _status_kb("VmHWM") - before) * 1024
    with out.open("rb") as lines:
        result["count"] = sum(1 for _ in lines)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Peak memory of one `specstore export`.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--mode", choices=["tracemalloc", "rss"], required=True)
    parser.add_argument("--warm-prefix", required=True)
    args = parser.parse_args(argv)
    json.dump(measure_export_memory(args.url, args.prefix, args.out, args.mode,
                                    args.warm_prefix), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
