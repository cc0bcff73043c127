"""Run every benchmark figure once, on one Redis, and print the ratios as a markdown table.

    python -m benchmarks.run [--quick] [--scale F] [--json out.json] [--redis-url URL]
                             [--cluster] [--profile] [--profile-paths a,b] [--figures 1,3]

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port (and
stopped at the end); with it, every key written lives under a fresh ``bench-<hex>:`` prefix
that is deleted at the end (nothing is flushed). Progress goes to stderr, the table to stdout.

Figures (each row: specstore value, baseline value measured in the same run, ratio
specstore/baseline, target, met/MISSED):

1. single-spec save / get / promote latency (p50, p99) vs raw redis-py HSET / HGETALL
2. the same vs hand-rolled pydantic ``model_dump_json`` + SET / GET + ``model_validate_json``
3. batch save / get throughput (pipelined) vs raw pipelined HSET / HGETALL
4. export / import throughput and the export's peak memory at two key counts
5. encode / decode time and bytes per spec vs pydantic JSON and Nova's JSON primitive
6. save / get latency on a 3-master Redis Cluster (``--cluster``; "not run" otherwise)
7. save / get latency vs redis-om-python's JsonModel (when redis-om and RedisJSON are there)
8. save / get latency with an OpenTelemetry provider configured vs none, and with none vs
   without the otel extra (needs opentelemetry-sdk; "not run" otherwise)
9. asyncio save / get latency (p50, p99) of AsyncSpecStore vs raw ``redis.asyncio`` HSET /
   HGETALL and vs hand-rolled pydantic JSON + SET / GET on ``redis.asyncio`` (one event loop)
10. client instructions per get / save / async get / async save (valgrind's callgrind, client
    process only) vs the hand-rolled pydantic JSON + GET / SET; opt-in: runs only when
    ``--figures`` names it (minutes), and yields no rows without ``valgrind`` on PATH
11. the floors under the missed targets: Redis time of save.lua and of a bare checked write
    vs SET, the encode between round trips, pydantic's cheapest dump + validation vs the
    codec budget, create_many's encode + create.lua time vs the hand-rolled pipeline
12. Redis's own instructions per save / create / get (valgrind's callgrind in redis-server)
    vs SET / GET of the hand-rolled JSON, and save.lua vs the bare checked write; opt-in
    like 10, and no rows without ``valgrind`` on PATH

``--chart PATH`` also draws the latencies and throughputs as a PNG (matplotlib, bench extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from benchmarks import (
    asyncbench,
    batch,
    chart,
    codecbench,
    exportbench,
    floors,
    instructions,
    latency,
    otelbench,
    profiling,
    redisom,
    server_instructions,
)
from benchmarks.harness import Row, render_table
from benchmarks.workload import (
    Counts,
    cluster_url,
    delete_prefix,
    parser_name,
    redis_url,
    run_prefix,
    server_version,
)
from specstore.connection import connect

FIGURES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
OPT_IN = {10, 12}
"""Figures run only when ``--figures`` names them (both need valgrind; 10 takes minutes)."""
ROOT = Path(__file__).resolve().parent.parent


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                     description="specstore benchmarks, as ratios.")
    parser.add_argument("--quick", action="store_true", help="small counts (export: 2,000)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every count by this (e.g. 0.05 for a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--cluster", action="store_true",
                        help="also run figure 6 on a throwaway 3-master Redis Cluster")
    parser.add_argument("--profile", action="store_true",
                        help="profile the two slowest specstore paths with pyinstrument")
    parser.add_argument("--profile-paths", default="",
                        help="comma-separated paths to profile instead (e.g. 'export,decode')")
    parser.add_argument("--chart", type=Path, help="also draw the results to this PNG")
    parser.add_argument("--figures", default=",".join(str(f) for f in FIGURES if f not in OPT_IN),
                        help="comma-separated figure numbers to run (default: all but 10, 12)")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    try:
        args.figures = sorted({int(f) for f in args.figures.split(",") if f.strip()})
    except ValueError:
        parser.error("--figures takes numbers such as 1,3,5")
    if not set(args.figures) <= set(FIGURES):
        parser.error(f"--figures: choose among {FIGURES}")
    return args


def _step(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _missing_binaries(args: argparse.Namespace) -> list[str]:
    needed = [] if args.redis_url and not OPT_IN & set(args.figures) else ["redis-server"]
    if args.cluster and 6 in args.figures:
        needed += ["redis-server", "redis-cli"]
    return sorted({name for name in needed if shutil.which(name) is None})


def _git_head() -> str:
    """The commit measured (``git rev-parse``, read-only); uncommitted changes not shown."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return done.stdout.strip() or "?"


def _environment(client: redis.Redis, args: argparse.Namespace, counts: Counts) -> dict[str, Any]:
    return {
        "git_head": _git_head(),
        "python": platform.python_version(),
        "redis_server": server_version(client),
        "redis_py": redis.__version__,
        "parser": parser_name(client),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "mode": "quick" if args.quick else "full",
        "scale": args.scale,
        "counts": counts.__dict__,
    }


def _header(env: dict[str, Any], elapsed: float) -> str:
    start, end = env["load_average_at_start"][0], env["load_average_at_end"][0]
    return (f"specstore benchmarks ({env['mode']}, scale {env['scale']:g}) at "
            f"{env['git_head']} (+ work tree) -- Python "
            f"{env['python']}, redis-server {env['redis_server']}, redis-py {env['redis_py']} "
            f"with {env['parser']}, {env['cpus']} CPUs (1-min load average {start:.2f} at start, "
            f"{end:.2f} at end), {elapsed:.0f} s. Ratio = specstore / baseline (lower is better "
            "for times and sizes, higher for throughputs).")


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any], dict[str, Path]]:
    counts = (Counts.quick() if args.quick else Counts.full()).scaled(args.scale)
    prefix = run_prefix()
    rows: list[Row] = []
    profiles: dict[str, Path] = {}
    module = redisom.rejson_module() if 7 in args.figures else None
    with redis_url(args.redis_url, [str(module)] if module else []) as url:
        client = connect(url)
        if not isinstance(client, redis.Redis):
            raise SystemExit("--redis-url must name a single server (redis://, unix://)")
        try:
            env = _environment(client, args, counts)
            figures: dict[int, Callable[[], list[Row]]] = {
                1: lambda: latency.figures_1_2(client, prefix, counts),
                3: lambda: batch.figure_3(client, prefix, counts),
                4: lambda: exportbench.figure_4(client, url, prefix, counts),
                5: lambda: codecbench.figure_5(client, prefix, counts),
                7: lambda: redisom.figure_7(client, prefix, counts),
                8: lambda: otelbench.figure_8(client, prefix, counts),
                9: lambda: asyncbench.figure_9(url, prefix, counts),
                10: instructions.figure_10,
                11: lambda: floors.figure_11(client, prefix, counts),
                12: server_instructions.figure_12,
            }
            for number, figure in figures.items():
                if number in args.figures or (number == 1 and 2 in args.figures):
                    _step(f"figure {number}{' and 2' if number == 1 else ''}")
                    rows += [r for r in figure() if r.figure in args.figures]
            if 6 in args.figures:
                if args.cluster:
                    _step("figure 6: starting a 3-master cluster")
                    with cluster_url() as url6:
                        rows += latency.figure_6(url6, prefix, counts)
                else:
                    rows += latency.figure_6(None, prefix, counts)
            paths = [p.strip() for p in args.profile_paths.split(",") if p.strip()]
            if args.profile or paths:
                paths = paths or profiling.slowest_paths(rows)
                _step(f"profiling {', '.join(paths)}")
                profiles = profiling.profile(paths, client, url, prefix, counts)
        finally:
            if args.redis_url:
                _step(f"deleting {delete_prefix(client, prefix)} keys under {prefix}:")
            client.close()
    rows.sort(key=lambda row: row.figure)
    return rows, env, profiles


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    missing = _missing_binaries(args)
    if missing:
        print(f"benchmarks: {', '.join(missing)} not on PATH", file=sys.stderr)
        return 2
    started = time.monotonic()
    rows, env, profiles = run(args)
    elapsed = time.monotonic() - started
    env["load_average_at_end"] = list(os.getloadavg())
    print(_header(env, elapsed))
    print()
    print(render_table(rows))
    for path, out in profiles.items():
        print(f"\nprofile of {path}: {out}\n")
        print(profiling.headline(out.read_text()))
    if args.chart:
        try:
            chart.draw(rows, args.chart, _header(env, elapsed))
        except ImportError:
            print("benchmarks: --chart needs matplotlib (pip install -e '.[bench]')",
                  file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({
            "environment": env, "elapsed_seconds": elapsed,
            "rows": [row.as_dict() for row in rows],
            "profiles": {path: str(out) for path, out in profiles.items()},
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
